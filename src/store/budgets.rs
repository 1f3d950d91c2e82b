//! Send budgets shared by every replica of a PostgreSQL database: Slack's one message a second
//! per channel and PagerDuty's 120 events a minute per routing key are the destination's
//! limits, not one replica's. Each take is a write (under the database's write lock, so two
//! replicas never take the same slot). The same GCRA as the in-memory limiter
//! (`notify::ratelimit`), at millisecond resolution: `tat` is when the next send conforms, and a
//! burst of `capacity` may start at once.

use std::time::Duration;

use super::{Store, StoreError, on};

/// Takes one send of `key` at `now_ms` under `capacity` sends per `per`; else how long until one
/// conforms (or a pause ends). `margin`: space the slots a tenth wider (on real time: see below).
pub(crate) async fn try_take(
    store: &Store,
    key: &str,
    capacity: u32,
    per: Duration,
    now_ms: i64,
    margin: bool,
) -> Result<Result<(), Duration>, StoreError> {
    let per_ms = i64::try_from(per.as_millis()).unwrap_or(i64::MAX / 4);
    if per_ms == 0 {
        return Ok(Ok(()));
    }
    let capacity = i64::from(capacity.max(1));
    // With `margin`, a tenth more than the destination's own spacing: the slot is taken before
    // the message is built and sent, and two replicas' sends take different times to arrive (a
    // new connection, a busy host), while the destination counts arrivals. An injected clock
    // that only moves when told (tests) has no such jitter, and steps by the exact spacing.
    let exact = (per_ms + capacity - 1) / capacity;
    let interval = if margin { exact + exact / 10 } else { exact };
    let tolerance = interval * (capacity - 1);
    let mut tx = store.begin_write().await?;
    // A budget's commit need not wait for the disk: a slot lost to a crash of the database
    // server is at worst one send more within that moment, while a flush per send would double
    // what each send costs the one writer all replicas share.
    tx.set_local_on_postgres("synchronous_commit TO off")
        .await?;
    let row: Option<(i64, Option<i64>)> = on!(&mut tx, |c, Db| sqlx::query_as(
        "SELECT tat_ms, paused_until_ms FROM send_budgets WHERE key = $1"
    )
    .bind(key)
    .fetch_optional(c)
    .await)?;
    let (tat, paused_until) = row.unwrap_or((now_ms, None));
    if let Some(until) = paused_until.filter(|u| *u > now_ms) {
        return Ok(Err(wait(until - now_ms)));
    }
    let tat = tat.max(now_ms);
    if tat - tolerance > now_ms {
        return Ok(Err(wait(tat - tolerance - now_ms)));
    }
    on!(&mut tx, |c, Db| sqlx::query(
        "INSERT INTO send_budgets (key, tat_ms) VALUES ($1, $2) \
         ON CONFLICT (key) DO UPDATE SET tat_ms = excluded.tat_ms, paused_until_ms = NULL"
    )
    .bind(key)
    .bind(tat + interval)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(Ok(()))
}

/// Nothing is sent to `key` for `length` from `now_ms` (a 429's `Retry-After`), on any replica.
pub(crate) async fn pause(
    store: &Store,
    key: &str,
    now_ms: i64,
    length: Duration,
) -> Result<(), StoreError> {
    let until = now_ms.saturating_add(i64::try_from(length.as_millis()).unwrap_or(i64::MAX / 4));
    let mut tx = store.begin_write().await?;
    on!(&mut tx, |c, Db| {
        sqlx::query(
        "INSERT INTO send_budgets (key, tat_ms, paused_until_ms) VALUES ($1, $2, $2) \
         ON CONFLICT (key) DO UPDATE SET \
           tat_ms = GREATEST(send_budgets.tat_ms, excluded.tat_ms), \
           paused_until_ms = GREATEST(COALESCE(send_budgets.paused_until_ms, 0), excluded.paused_until_ms)"
    )
    .bind(key)
    .bind(until)
    .execute(c)
    .await
    .map(|r| r.rows_affected())
    })?;
    tx.commit().await?;
    Ok(())
}

fn wait(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms.max(1)).unwrap_or(u64::MAX))
}
