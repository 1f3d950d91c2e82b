//! The databases the storage tests run on: a SQLite file in a temporary directory, and a fresh
//! database on the PostgreSQL server named by `PAIID_TEST_POSTGRES_URL` (`.ci/run` starts one
//! with `scripts/test-postgres.sh`). Without that variable the PostgreSQL half is skipped, with
//! a line saying so, except under CI, where it fails: CI must run both.

use super::{Durability, Store};

/// A SQLite store in `dir`.
pub(crate) async fn sqlite(dir: &tempfile::TempDir) -> Store {
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    Store::open(&url, Durability::Normal).await.unwrap()
}

/// A store on a new, empty PostgreSQL database, or `None` when no server is configured.
pub(crate) async fn postgres() -> Option<Store> {
    let Some(url) = std::env::var("PAIID_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs the storage tests on PostgreSQL too: set PAIID_TEST_POSTGRES_URL (scripts/test-postgres.sh)"
        );
        eprintln!("PAIID_TEST_POSTGRES_URL is not set: PostgreSQL half skipped");
        return None;
    };
    let name = format!("paiid_test_{:016x}", fastrand::u64(..));
    // A plain connection: a store on the server's own database would take the one-replica lock
    // there, which the tests running beside this one take too.
    {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let _ = admin.close().await;
    }
    let (base, _) = url
        .rsplit_once('/')
        .expect("a database URL ends with /<database>");
    Some(
        Store::open(&format!("{base}/{name}"), Durability::Normal)
            .await
            .unwrap(),
    )
}

/// Runs `$body` (an async block using `store: Store`) on SQLite, then on PostgreSQL: one test
/// function per backend, named `$name::sqlite` and `$name::postgres`.
macro_rules! on_both {
    ($(#[$meta:meta])* async fn $name:ident($store:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$meta])*
            #[tokio::test]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let $store = $crate::store::testdb::sqlite(&dir).await;
                $body
            }

            $(#[$meta])*
            #[tokio::test]
            async fn postgres() {
                let Some($store) = $crate::store::testdb::postgres().await else {
                    return;
                };
                $body
            }
        }
    };
}
pub(crate) use on_both;
