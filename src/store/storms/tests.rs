use super::*;
use crate::store::test_plan::plan;
use crate::store::{Durability, Store};

/// Issue 10, target 3: every intake batch that may open an incident reads the open storms. On a
/// database of 100,000 incidents SQLite scanned them all (16 ms a batch, intake at a fifth of
/// its empty-database rate), preferring rowid order to the partial index on severity.
#[tokio::test]
async fn open_storms_walk_only_the_open_storms() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/storms.db", dir.path().display());
    let store = Store::open(&url, Durability::Normal).await.unwrap();
    let steps = plan(&store, OPEN_STORMS, &[]).await;
    assert_eq!(steps, ["SCAN incidents USING INDEX incidents_open_storms"]);
}

/// A storm's open members are counted from the index alone: reading each member's row for its
/// state took 16 ms a count for a storm of 1,000.
#[tokio::test]
async fn open_members_are_counted_from_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/storms.db", dir.path().display());
    let store = Store::open(&url, Durability::Normal).await.unwrap();
    let steps = plan(&store, OPEN_MEMBERS, &[]).await;
    assert_eq!(
        steps,
        ["SEARCH incidents USING COVERING INDEX incidents_storm_open (storm_id=?)"]
    );
}
