use super::*;
use crate::store::{Durability, Store};

async fn store(dir: &tempfile::TempDir) -> Store {
    let url = format!("sqlite://{}/listings.db", dir.path().display());
    Store::open(&url, Durability::Normal).await.unwrap()
}

/// An incident row of `kind` in `storm` (if any), with `events` events.
async fn insert(
    store: &Store,
    kind: &str,
    storm: Option<i64>,
    project: Option<&str>,
    events: i64,
) -> i64 {
    let mut tx = store.begin_write().await.unwrap();
    let id = sqlx::query_scalar(
        "INSERT INTO incidents (incident_key, severity, state, title, project, event_count, \
           first_seen, last_seen, opened_at, policy, updated_at, kind, storm_id) \
         VALUES (lower(hex(randomblob(8))), 'critical', 'triggered', 'title ' || ?3, ?2, ?3, \
           0, 0, 0, '{}', 0, ?1, ?4) RETURNING id",
    )
    .bind(kind)
    .bind(project)
    .bind(events)
    .bind(storm)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

#[tokio::test]
async fn a_storms_summary_counts_its_members_and_names_the_noisiest() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let s = insert(&store, "storm", None, Some("api"), 0).await;
    let other = insert(&store, "storm", None, None, 0).await;
    let mut members = Vec::new();
    for (project, events) in [
        (Some("web"), 5),
        (Some("api"), 50),
        (None, 7),
        (Some("api"), 50),
        (Some("db"), 1),
        (Some("web"), 9),
        (Some("zz"), 2),
    ] {
        members.push(insert(&store, "issue", Some(s), project, events).await);
    }
    // Neither another storm's member nor an incident on its own counts.
    insert(&store, "issue", Some(other), Some("elsewhere"), 1000).await;
    insert(&store, "issue", None, Some("alone"), 1000).await;

    let sum = storm_members_summary(store.reader(), IncidentId(s), 3, 2)
        .await
        .unwrap();
    assert_eq!((sum.members, sum.events), (7, 124));
    // Distinct, in name order, two of the four.
    assert_eq!(sum.projects, ["api", "db"]);
    assert_eq!(sum.project_count, 4);
    // Most events first; equal counts by id.
    let top: Vec<(i64, i64)> = sum
        .top
        .iter()
        .map(|m| (m.id.get(), m.event_count))
        .collect();
    assert_eq!(top, [(members[1], 50), (members[3], 50), (members[5], 9)]);

    let ids = storm_member_ids(store.reader(), IncidentId(s))
        .await
        .unwrap();
    assert_eq!(ids.iter().map(|i| i.get()).collect::<Vec<_>>(), members);
    let listed = storm_members(store.reader(), IncidentId(s), 4)
        .await
        .unwrap();
    assert_eq!(listed.len(), 4);

    // A storm with no members (all left it) is an empty summary, not an error.
    let empty = insert(&store, "storm", None, None, 0).await;
    let sum = storm_members_summary(store.reader(), IncidentId(empty), 5, 10)
        .await
        .unwrap();
    assert_eq!(sum, StormMembers::default());
}

/// Every part of the summary is a walk of the storm's members in `incidents_storm_members`,
/// whatever the size of the table: a count update of a growing storm must not scan it.
#[tokio::test]
async fn the_storm_summary_walks_the_members_index_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let plan = crate::store::test_plan::plan(&store, STORM_SUMMARY_SQL, &["1", "5", "10"]).await;
    let reads: Vec<&String> = plan
        .iter()
        .filter(|l| l.starts_with("SCAN") || l.starts_with("SEARCH"))
        .filter(|l| l.contains("incidents"))
        .collect();
    assert!(reads.len() >= 3, "{plan:#?}");
    for l in reads {
        assert!(
            l.starts_with("SEARCH") && l.contains("incidents_storm_members"),
            "{l}: {plan:#?}"
        );
    }
}
