//! Dropping what is kept only for a while.

use super::{Store, StoreError};
use crate::store::on;

/// Drops raw bodies past the retention period; the event rows stay for counts and history.
pub(crate) async fn purge_raw_payloads(store: &Store, older_than: i64) -> Result<u64, StoreError> {
    let mut tx = store.begin_write().await?;
    let r = on!(&mut tx, |c, Db| {
        sqlx::query(
        "UPDATE events SET body = NULL, details = NULL WHERE received_at < $1 AND body IS NOT NULL",
    )
    .bind(older_than)
    .execute(c)
    .await.map(|r| r.rows_affected())
    })?;
    tx.commit().await?;
    Ok(r)
}

/// Drops the bundle cards (Slack bot mode, migration 0011) last touched before `older_than`
/// whose every member episode is over (resolved, or superseded by a newer episode): nothing
/// re-renders such a card again. A card with a member still open stays, however old, so that
/// member's acknowledgement or resolution still updates its line.
pub(crate) async fn purge_bundles(store: &Store, older_than: i64) -> Result<u64, StoreError> {
    let mut tx = store.begin_write().await?;
    let r = on!(&mut tx, |c, Db| sqlx::query(
        "DELETE FROM bundle_members WHERE bundle_id IN ( \
           SELECT b.id FROM bundles b WHERE b.updated_at < $1 AND NOT EXISTS ( \
             SELECT 1 FROM bundle_members m JOIN incidents i ON i.id = m.incident_id \
             WHERE m.bundle_id = b.id AND i.episode = m.episode AND i.state != 'resolved'))",
    )
    .bind(older_than)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    let cards = on!(&mut tx, |c, Db| sqlx::query(
        "DELETE FROM bundles WHERE updated_at < $1 AND NOT EXISTS ( \
           SELECT 1 FROM bundle_members m WHERE m.bundle_id = bundles.id)",
    )
    .bind(older_than)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    tx.commit().await?;
    tracing::debug!(members = r, "purged bundle members");
    Ok(cards)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Durability;

    async fn exec(store: &Store, sql: &'static str) {
        let mut tx = store.begin_write().await.unwrap();
        on!(&mut tx, |c, Db| sqlx::query(sql)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .unwrap();
        tx.commit().await.unwrap();
    }

    async fn cards(store: &Store) -> Vec<i64> {
        sqlx::query_scalar("SELECT id FROM bundles ORDER BY id")
            .fetch_all(&**store.reader())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn old_cards_go_once_every_member_episode_is_over() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/retention.db", dir.path().display());
        let store = Store::open(&url, Durability::Normal).await.unwrap();
        // 1 resolved; 2 open in episode 2 (its episode 1 is over); 3 open.
        exec(
            &store,
            "INSERT INTO incidents (id, incident_key, episode, severity, state, title, \
             first_seen, last_seen, opened_at, updated_at) VALUES \
             (1, 'a', 1, 'critical', 'resolved', 'a', 0, 0, 0, 0), \
             (2, 'b', 2, 'critical', 'triggered', 'b', 0, 0, 0, 0), \
             (3, 'c', 1, 'critical', 'acknowledged', 'c', 0, 0, 0, 0)",
        )
        .await;
        // Card 10: old, members over. 11: old, one member still open. 12: members over, recent.
        exec(
            &store,
            "INSERT INTO bundles (id, channel, slack_channel, slack_ts, created_at, updated_at) \
             VALUES (10, 'slack', 'C1', '1.0', 0, 100), (11, 'slack', 'C1', '2.0', 0, 100), \
             (12, 'slack', 'C1', '3.0', 0, 5000)",
        )
        .await;
        exec(
            &store,
            "INSERT INTO bundle_members (bundle_id, position, incident_id, episode) VALUES \
             (10, 0, 1, 1), (10, 1, 2, 1), (11, 0, 1, 1), (11, 1, 3, 1), (12, 0, 1, 1)",
        )
        .await;

        assert_eq!(purge_bundles(&store, 1000).await.unwrap(), 1);

        assert_eq!(cards(&store).await, [11, 12]);
        let members: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bundle_members")
            .fetch_one(&**store.reader())
            .await
            .unwrap();
        assert_eq!(members, 3, "card 10's two members went with it");
        assert_eq!(purge_bundles(&store, 1000).await.unwrap(), 0, "idempotent");
    }
}
