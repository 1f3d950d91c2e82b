//! WAL checkpoints off the commit path.
//!
//! SQLite's default copies the WAL back into the database inside whichever `COMMIT` pushes the
//! WAL past 1,000 pages: that commit, and every webhook waiting on it, then also waits for the
//! copy and its `fsync` (a quarter of the writer's SQLite time in the issue-10 profile, and the
//! slowest commits). The writer connection turns that off (`wal_autocheckpoint=0`, see
//! [`super::Store::open`]) and this task checkpoints instead, `PASSIVE`ly, from a read
//! connection: it copies what no reader still needs without taking the write lock, so intake
//! keeps committing while it runs.
//!
//! Should passive checkpoints keep falling behind (a reader holding an old snapshot for long),
//! a WAL past [`RESTART_AFTER_PAGES`] gets a `RESTART` checkpoint, which waits for readers and
//! briefly holds writers, so the file cannot grow without bound.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Store, StoreError};

/// How often the WAL is checkpointed. At the intake's peak (~20 MB of WAL a second) this keeps
/// it to a few MB.
const EVERY: Duration = Duration::from_millis(250);
/// About 64 MB of 4 KiB pages.
const RESTART_AFTER_PAGES: i64 = 16_384;

/// What one `PRAGMA wal_checkpoint` reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    /// True when it could not finish because another connection held a lock it needed.
    pub busy: bool,
    /// Frames in the WAL.
    pub wal_pages: i64,
    /// Frames copied into the database so far.
    pub checkpointed: i64,
}

impl Checkpoint {
    /// Frames still only in the WAL.
    pub(crate) fn behind(&self) -> i64 {
        (self.wal_pages - self.checkpointed).max(0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Passive,
    Restart,
}

impl Store {
    /// Runs one checkpoint on a read connection.
    pub(crate) async fn checkpoint(&self, mode: Mode) -> Result<Checkpoint, StoreError> {
        let sql = match mode {
            Mode::Passive => "PRAGMA wal_checkpoint(PASSIVE)",
            Mode::Restart => "PRAGMA wal_checkpoint(RESTART)",
        };
        let (busy, wal_pages, checkpointed): (i64, i64, i64) =
            sqlx::query_as(sql).fetch_one(&*self.read).await?;
        Ok(Checkpoint {
            busy: busy != 0,
            wal_pages,
            checkpointed,
        })
    }
}

/// Checkpoints every [`EVERY`] until `cancel`. A failure (full disk, I/O error) is logged at
/// debug level and tried again at the next tick: the write-health tracker already reports the
/// outage, and a WAL not yet copied loses nothing.
pub(crate) fn spawn_checkpointer(
    store: Store,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = cancel.cancelled() => return,
            }
            match store.checkpoint(Mode::Passive).await {
                Ok(c) if c.behind() > RESTART_AFTER_PAGES => {
                    tracing::warn!(
                        wal_pages = c.wal_pages,
                        behind = c.behind(),
                        "WAL checkpoints fall behind; restarting the WAL"
                    );
                    if let Err(e) = store.checkpoint(Mode::Restart).await {
                        tracing::debug!(error = %e, "WAL restart checkpoint failed; retrying");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "WAL checkpoint failed; retrying"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Durability;

    async fn wal_pages(store: &Store) -> i64 {
        store
            .checkpoint(Mode::Passive)
            .await
            .map(|c| c.wal_pages)
            .expect("checkpoint")
    }

    #[tokio::test]
    async fn commits_leave_the_wal_to_the_checkpointer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url, Durability::Full).await.expect("open");
        // Well past SQLite's default auto-checkpoint (1,000 pages): with it, some commit would
        // have copied the WAL back and started it over, and the WAL would hold fewer pages.
        for i in 0..60 {
            let mut tx = store.begin_write().await.expect("begin");
            sqlx::query("INSERT INTO settings (key, value) VALUES (?, ?)")
                .bind(format!("k{i}"))
                .bind("x".repeat(100_000))
                .execute(&mut *tx)
                .await
                .expect("insert");
            tx.commit().await.expect("commit");
        }
        let c = store.checkpoint(Mode::Passive).await.expect("checkpoint");
        assert!(
            c.wal_pages > 1_000,
            "no commit checkpointed by itself: {c:?}"
        );
        assert_eq!(c.behind(), 0, "the passive checkpoint copied it all: {c:?}");
        // The next write starts the WAL over from its beginning.
        let mut tx = store.begin_write().await.expect("begin");
        sqlx::query("INSERT INTO settings (key, value) VALUES ('after', 'x')")
            .execute(&mut *tx)
            .await
            .expect("insert");
        tx.commit().await.expect("commit");
        assert!(wal_pages(&store).await < 10, "the WAL was reused");
    }
}
