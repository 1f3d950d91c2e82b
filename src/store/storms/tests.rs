use super::*;
use crate::store::{Durability, Store};

/// Issue 10, target 3: every intake batch that may open an incident reads the open storms. On a
/// database of 100,000 incidents SQLite scanned them all (16 ms a batch, intake at a fifth of
/// its empty-database rate), preferring rowid order to the partial index on severity.
#[tokio::test]
async fn open_storms_walk_only_the_open_storms() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/storms.db", dir.path().display());
    let store = Store::open(&url, Durability::Normal).await.unwrap();
    let steps: Vec<String> = sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(
        format!("EXPLAIN QUERY PLAN {OPEN_STORMS}"),
    ))
    .fetch_all(&**store.reader())
    .await
    .unwrap()
    .into_iter()
    .map(|(_, _, _, detail)| detail)
    .collect();
    assert_eq!(steps, ["SCAN incidents USING INDEX incidents_open_storms"]);
}
