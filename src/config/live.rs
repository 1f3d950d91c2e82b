//! A value that can be replaced while the service runs (the routing file on reload, and the
//! channels built from it). Readers take a snapshot with [`Live::load`] once per batch or step
//! and use it to the end, so one batch never mixes two configurations.
//!
//! A `std::sync::RwLock<Arc<T>>` rather than the `arc-swap` crate: it is read a few times per
//! batch (not per event) and written on a reload, so an uncontended read lock costs nothing
//! measurable and no dependency is added for it.

use std::sync::{Arc, RwLock};

pub struct Live<T> {
    current: Arc<RwLock<Arc<T>>>,
}

impl<T> Clone for Live<T> {
    fn clone(&self) -> Self {
        Self {
            current: self.current.clone(),
        }
    }
}

impl<T> Live<T> {
    pub fn new(value: Arc<T>) -> Self {
        Self {
            current: Arc::new(RwLock::new(value)),
        }
    }

    /// The value in force now. Keep it for the batch; call again for the next.
    pub fn load(&self) -> Arc<T> {
        // The lock only guards a pointer swap: a panic while holding it cannot leave it
        // half-written, so a poisoned lock is used as is.
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `value` in force for every later [`Live::load`].
    pub fn store(&self, value: Arc<T>) {
        match self.current.write() {
            Ok(mut g) => *g = value,
            Err(poisoned) => *poisoned.into_inner() = value,
        }
    }
}

impl<T> From<Arc<T>> for Live<T> {
    fn from(value: Arc<T>) -> Self {
        Self::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_keeps_its_value_after_a_store_and_later_loads_see_the_new_one() {
        let live = Live::from(Arc::new(1));
        let before = live.load();
        let other = live.clone();
        other.store(Arc::new(2));
        assert_eq!(*before, 1);
        assert_eq!(*live.load(), 2);
        assert!(!Arc::ptr_eq(&before, &live.load()));
    }
}
