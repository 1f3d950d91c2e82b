use super::*;
use crate::domain::DeliveryId;
use crate::domain::NotificationKind;
use crate::store::{Durability, Store};

async fn store(dir: &tempfile::TempDir) -> Store {
    let url = format!("sqlite://{}/deliveries.db", dir.path().display());
    Store::open(&url, Durability::Normal).await.unwrap()
}

async fn insert(store: &Store, kind: &str) -> DeliveryId {
    let mut tx = store.begin_write().await.unwrap();
    let id = sqlx::query_scalar(
        "INSERT INTO deliveries (incident_id, episode, channel, kind, status, next_attempt_at, \
         created_at) VALUES (NULL, 0, 'ops', ?, 'pending', 0, 0) RETURNING id",
    )
    .bind(kind)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

#[tokio::test]
async fn an_unknown_kind_is_that_rows_error_and_does_not_fail_the_claim() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let bogus = insert(&store, "carrier_pigeon").await;
    let good = insert(&store, "opened").await;

    let rows = claim_due(&store, "ops", 10, 100, 16).await.unwrap();

    assert_eq!(rows.len(), 2);
    let by_id = |id| rows.iter().find(|d| d.id == id).unwrap();
    let err = by_id(bogus).kind.clone().unwrap_err();
    assert_eq!(
        (err.table, err.id, err.field),
        ("deliveries", bogus.get(), "kind")
    );
    assert!(err.reason.contains("`carrier_pigeon`"), "{}", err.reason);
    assert_eq!(by_id(bogus).kind_word, "carrier_pigeon");
    assert_eq!(
        by_id(good).kind,
        Ok(DeliveryKind::Notification(NotificationKind::Opened))
    );
    assert!(rows.iter().all(|d| d.status == DeliveryStatus::Sending));
    // The API shows the stored word, whether or not it decodes.
    let listed = serde_json::to_value(list(store.reader(), None, 10).await.unwrap()).unwrap();
    let kinds: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["opened", "carrier_pigeon"]);
}

#[tokio::test]
async fn a_recorded_attempt_moves_the_row_to_its_typed_status() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let id = insert(&store, "opened").await;
    let rows = claim_due(&store, "ops", 10, 100, 16).await.unwrap();
    let result = AttemptResult {
        started_at: 20,
        duration_ms: 5,
        status_code: Some(500),
        outcome: AttemptOutcome::Retry,
        response: "boom".into(),
        new_status: DeliveryStatus::Failed,
        next_attempt_at: 1_000,
        remote: None,
    };
    record_attempt(&store, &rows[0], &result).await.unwrap();

    let d = &list(store.reader(), Some(DeliveryStatus::Failed), 10)
        .await
        .unwrap()[0];
    assert_eq!(
        (d.id, d.status, d.attempts),
        (id, DeliveryStatus::Failed, 1)
    );
    assert_eq!(d.last_error.as_deref(), Some("boom"));
    assert_eq!(d.delivered_at, None);
    let outcome: String = sqlx::query_scalar("SELECT outcome FROM delivery_attempts")
        .fetch_one(&**store.reader())
        .await
        .unwrap();
    assert_eq!(outcome, "retry");
}

#[tokio::test]
async fn only_a_dead_row_is_requeued_by_hand_and_keeps_its_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let id = insert(&store, "opened").await;
    assert_eq!(
        requeue_dead(&store, id, "ana", crate::domain::Via::Web, 50)
            .await
            .unwrap(),
        Requeue::NotDead(DeliveryStatus::Pending)
    );
    assert_eq!(
        requeue_dead(
            &store,
            DeliveryId(id.get() + 100),
            "ana",
            crate::domain::Via::Web,
            50
        )
        .await
        .unwrap(),
        Requeue::NotFound
    );
    let mut tx = store.begin_write().await.unwrap();
    sqlx::query(
        "UPDATE deliveries SET status = 'dead', attempts = 8, lease_until = 7 WHERE id = ?",
    )
    .bind(id)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();

    // A notice belongs to no incident: nothing to note on a timeline.
    assert_eq!(
        requeue_dead(&store, id, "ana", crate::domain::Via::Web, 50)
            .await
            .unwrap(),
        Requeue::Requeued {
            incident_id: None,
            channel: "ops".to_string()
        }
    );
    let rows = list(store.reader(), None, 10).await.unwrap();
    let row = rows.iter().find(|d| d.id == id).unwrap();
    assert_eq!(
        (
            row.status,
            row.attempts,
            row.next_attempt_at,
            row.lease_until
        ),
        (DeliveryStatus::Pending, 8, 50, None)
    );
    // Due now: the worker claims it.
    let claimed = claim_due(&store, "ops", 50, 100, 16).await.unwrap();
    assert_eq!(claimed.iter().map(|d| d.id).collect::<Vec<_>>(), [id]);
}
