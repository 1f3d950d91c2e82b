use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;

use super::Scheduler;
use crate::clock::ManualClock;
use crate::metrics::Metrics;
use crate::signal::{Signal, Wakers};
use crate::store::{Durability, Store};

async fn scheduler(dir: &tempfile::TempDir) -> Scheduler {
    let url = format!("sqlite://{}/escalation.db", dir.path().display());
    let store = Store::open(&url, Durability::Normal).await.unwrap();
    let metrics = Arc::new(Metrics::new(
        store.health.clone(),
        store.corrupt_rows.clone(),
    ));
    Scheduler {
        store,
        clock: Arc::new(ManualClock::new(1_700_000_000_000)),
        wakers: Wakers::default(),
        metrics,
    }
}

#[tokio::test]
async fn ready_does_not_wait_for_start_up_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let s = scheduler(&dir).await;
    // Something else holds the one write connection (as intake's commits or a long recovery
    // batch would): recovery cannot run, and ready must not wait for it.
    let held = s.store.begin_write().await.unwrap();
    let ready = Arc::new(AtomicBool::new(false));
    let cancel = CancellationToken::new();
    let task = s
        .clone()
        .spawn(Signal::default(), ready.clone(), cancel.clone());
    assert!(
        ready.load(Ordering::SeqCst),
        "ready as soon as the scheduler runs, before overdue escalations fire"
    );
    drop(held);
    // Recovery then runs on the freed connection and the scheduler goes to sleep.
    assert_eq!(s.fire_due().await.unwrap(), 0);
    cancel.cancel();
    task.await.unwrap();
}
