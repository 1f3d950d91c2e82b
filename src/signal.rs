//! A wake-up that is never lost: unlike `Notify::notify_waiters`, a signal sent while the
//! worker is busy is still seen when it next waits (it is a version counter).

use std::sync::{Arc, OnceLock};

use tokio::sync::watch;

use crate::domain::Effects;

#[derive(Clone, Debug)]
pub struct Signal {
    tx: watch::Sender<u64>,
}

impl Default for Signal {
    fn default() -> Self {
        Self {
            tx: watch::Sender::new(0),
        }
    }
}

impl Signal {
    pub fn notify(&self) {
        self.tx.send_modify(|v| *v = v.wrapping_add(1));
    }

    pub fn subscribe(&self) -> Waiter {
        Waiter {
            rx: self.tx.subscribe(),
        }
    }
}

pub struct Waiter {
    rx: watch::Receiver<u64>,
}

impl Waiter {
    /// Returns once a signal was sent since the last call (immediately if one is pending).
    pub async fn wait(&mut self) {
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Which of a replica's tasks a wake-up is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    Outbox,
    Scheduler,
    Silences,
}

impl Wake {
    pub const ALL: [Wake; 3] = [Wake::Outbox, Wake::Scheduler, Wake::Silences];

    /// The word sent to other replicas.
    pub fn as_str(self) -> &'static str {
        match self {
            Wake::Outbox => "outbox",
            Wake::Scheduler => "scheduler",
            Wake::Silences => "silences",
        }
    }

    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.as_str() == word)
    }
}

/// Passes a wake-up on to the other replicas of a shared database (set by the app).
pub(crate) type TellOthers = Arc<dyn Fn(Wake) + Send + Sync>;

/// Wake-ups for the tasks that act on what was committed: this replica's, and through
/// [`Wakers::tell_others_with`] every other replica's, since a webhook taken in by one replica
/// may be sent by another.
#[derive(Clone, Default)]
pub struct Wakers {
    pub outbox: Signal,
    pub scheduler: Signal,
    /// The silence expiry worker: a silence was created (its end may be the next one).
    pub silences: Signal,
    others: Arc<OnceLock<TellOthers>>,
}

impl Wakers {
    /// Wakes the task here and on every other replica.
    pub fn wake(&self, what: Wake) {
        self.wake_here(what);
        if let Some(tell) = self.others.get() {
            tell(what);
        }
    }

    /// Wakes this replica's task only (a wake-up another replica sent).
    pub fn wake_here(&self, what: Wake) {
        match what {
            Wake::Outbox => self.outbox.notify(),
            Wake::Scheduler => self.scheduler.notify(),
            Wake::Silences => self.silences.notify(),
        }
    }

    /// How wake-ups reach the other replicas; set once, when the database is shared.
    pub fn tell_others_with(&self, tell: TellOthers) {
        let _ = self.others.set(tell);
    }

    pub fn after_commit(&self, fx: &Effects) {
        if !fx.deliveries.is_empty() {
            self.wake(Wake::Outbox);
        }
        if fx.timers_changed {
            self.wake(Wake::Scheduler);
        }
    }
}
