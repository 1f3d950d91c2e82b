//! A wake-up that is never lost: unlike `Notify::notify_waiters`, a signal sent while the
//! worker is busy is still seen when it next waits (it is a version counter).

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

/// Wake-ups for the tasks that act on what was committed.
#[derive(Clone, Default)]
pub struct Wakers {
    pub outbox: Signal,
    pub scheduler: Signal,
    /// The silence expiry worker: a silence was created (its end may be the next one).
    pub silences: Signal,
}

impl Wakers {
    pub fn after_commit(&self, fx: &Effects) {
        if !fx.deliveries.is_empty() {
            self.outbox.notify();
        }
        if fx.timers_changed {
            self.scheduler.notify();
        }
    }
}
