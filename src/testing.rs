//! What the integration tests in `tests/` and the fuzz targets in `fuzz/` reach, in one place:
//! the rest of the crate is private. For integration tests and fuzzing only: nothing in the
//! crate imports it (`tests/layering.rs` puts it above `app`). The modules mirror the crate's
//! own paths, so `paiid_alerts::testing::notify::Channel` is `crate::notify::Channel`.

use sqlx::SqlitePool;

use crate::store::Store;

/// The store's read pool, for a test's own `SELECT`s. A test that writes rows itself (a
/// corrupt row, a clock moved back) does it in [`Store::begin_write`] like the service does.
///
/// # Panics
/// On a PostgreSQL store: these tests read SQLite's own tables.
pub fn read_pool(store: &Store) -> &SqlitePool {
    store
        .reader()
        .sqlite_pool()
        .expect("the integration tests' own reads are of a SQLite store")
}

/// The SQLite connection under a write, for a test that sets rows up with its own SQL (a corrupt
/// row, a clock moved back).
///
/// # Panics
/// On a PostgreSQL store.
pub fn sqlite_conn(tx: &mut crate::store::WriteTx) -> &mut sqlx::SqliteConnection {
    tx.sqlite_conn()
        .expect("the integration tests' own writes are to a SQLite store")
}

/// One integer a test's own `SELECT` reads (a count, a column of one row), on whichever
/// backend the store is on. Cast to `BIGINT` around the query: PostgreSQL types `1` as a
/// 4-byte integer and sums as numerics, where SQLite has one integer type.
pub async fn scalar(store: &Store, sql: &str) -> Result<i64, crate::store::StoreError> {
    let wrapped = format!("SELECT CAST(({sql}) AS BIGINT)");
    Ok(crate::store::on!(store.reader(), |c, Db| {
        sqlx::query_scalar(sqlx::AssertSqlSafe(wrapped.clone()))
            .fetch_one(c)
            .await
    })?)
}

/// Rows of a test's own `SELECT`, on whichever backend the store is on (tuples or `FromRow`
/// structs). Values go into the text: these are the tests' own constants and ids.
pub async fn fetch_all<T>(store: &Store, sql: &str) -> Result<Vec<T>, crate::store::StoreError>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + Send
        + Unpin,
{
    Ok(crate::store::on!(store.reader(), |c, Db| {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_all(c)
            .await
    })?)
}

/// The first column of every row of a test's own `SELECT`, on either backend.
pub async fn column<T>(store: &Store, sql: &str) -> Result<Vec<T>, crate::store::StoreError>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Sqlite>
        + sqlx::Type<sqlx::Sqlite>
        + for<'r> sqlx::Decode<'r, sqlx::Postgres>
        + sqlx::Type<sqlx::Postgres>
        + Send
        + Unpin,
{
    Ok(crate::store::on!(store.reader(), |c, Db| {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_all(c)
            .await
    })?)
}

/// A test's own change to the rows (a corrupt row, a clock moved back), committed in a write
/// like the service's own; the number of rows it changed.
pub async fn execute(store: &Store, sql: &str) -> Result<u64, crate::store::StoreError> {
    let mut tx = store.begin_write().await?;
    let n = crate::store::on!(&mut tx, |c, Db| {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(c)
            .await
            .map(|r| r.rows_affected())
    })?;
    tx.commit().await?;
    Ok(n)
}

/// Running the real app: build it, step its workers, read its state.
pub mod app {
    pub use crate::app::{Application, Workers};
}

/// Signed ack links and vendor signatures (parsers under property tests and fuzzing).
pub mod auth {
    pub mod ack_token {
        pub use crate::auth::ack_token::{
            AckAction, AckClaims, AckKeys, MAX_TOKEN_LEN, TokenError,
        };
    }
    pub mod pagerduty_signature {
        pub use crate::auth::pagerduty_signature::verify_pagerduty_signature;
    }
    pub mod slack_signature {
        pub use crate::auth::slack_signature::{MAX_SKEW_SECS, verify_slack_request};
    }
}

/// Injected time.
pub mod clock {
    pub use crate::clock::{Clock, ManualClock, SharedClock};
}

/// `routing.yaml`.
pub mod config {
    pub use crate::config::{Live, RoutingConfig};
}

/// Digests, run by hand.
pub mod digest {
    pub use crate::digest::{
        DigestError, DigestKind, DigestOutcome, DigestRunner, DigestStatus, SkipReason,
    };
}

/// Ids and kinds.
pub mod domain {
    pub use crate::domain::{ChannelKind, Episode, IncidentId, IncidentState, Severity};
}

/// The transports' parsers (property tests and fuzzing) and the state the real app serves.
pub mod http {
    pub use crate::http::AppState;
    pub mod form {
        pub use crate::http::form::{decode, parse, text};
    }
    pub mod inbound {
        pub use crate::http::inbound::{
            button_target, parse_pagerduty_webhook, parse_slack_interaction,
        };
    }
}

/// The outbound client the app uses (tests talk to it with the same TLS set-up).
pub mod watch {
    pub use crate::watch::{PipelineWatch, WatchError, WatchReport};
}

pub mod http_client {
    pub use crate::http_client::{builder, client};
}

/// Dedup keys.
pub mod incidents {
    pub mod model {
        pub use crate::domain::parse_dedup_key;
    }
    pub mod silences {
        pub use crate::incidents::silences::Silences;
    }
}

/// Sentry payload parsing, event details, scrubbing and webhook signing.
pub mod intake {
    pub use crate::intake::dedup_key;
    pub use crate::intake::sentry::AlertFacts;
    pub mod details {
        pub use crate::intake::details::event_details;
    }
    pub mod redact {
        pub use crate::intake::redact::scrub_text;
    }
    pub mod sentry {
        pub use crate::intake::sentry::{issue_id_from_url, parse, value_from_description};
    }
    pub mod signature {
        pub use crate::intake::signature::sign;
    }
}

/// Channels driven directly against fake servers and a real SMTP sink.
pub mod notify {
    pub use crate::domain::{NotificationKind, RemoteRef, RemoteState};
    pub use crate::notify::message::Notification;
    pub use crate::notify::{Channel, Outgoing, SendOutcome};
    pub mod email {
        pub use crate::notify::email::EmailChannel;
    }
    pub mod log {
        pub use crate::notify::log::LogChannel;
    }
    pub mod message {
        pub use crate::notify::message::Breadcrumb;
    }
    pub mod pagerduty {
        pub use crate::notify::pagerduty::PagerDutyChannel;
    }
    pub mod registry {
        pub use crate::notify::registry::{ChannelEnv, Channels};
    }
    pub mod render {
        pub use crate::notify::render::Templates;
    }
    pub mod slack {
        pub use crate::notify::slack::SlackChannel;
    }
    pub mod worker {
        pub use crate::notify::worker::Step;
    }
}

/// Flags and secrets the tests start the app with.
pub mod settings {
    pub use crate::settings::{Secret, Secrets, Settings};
}

/// The store, and the reads tests check the outbox and digest claims with.
pub mod store {
    pub use crate::store::{Durability, Store};
    pub mod deliveries {
        use crate::store::{Store, StoreError};

        /// When the next delivery of `channel` falls due, if one waits.
        pub async fn next_due(store: &Store, channel: &str) -> Result<Option<i64>, StoreError> {
            crate::store::deliveries::next_due(store.reader(), channel).await
        }
    }
    pub mod digests {
        pub use crate::store::digests::{ClaimResult, ClaimRules, DigestRecord, PeriodKey, claim};
        use crate::store::{Store, StoreError};

        /// The latest `limit` digest records, newest first.
        pub async fn recent(store: &Store, limit: i64) -> Result<Vec<DigestRecord>, StoreError> {
            crate::store::digests::recent(store.reader(), limit).await
        }
    }
}
