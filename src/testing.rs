//! What the integration tests in `tests/` need beyond the public API, in one place. Not for
//! production code: nothing in the crate imports it (`tests/layering.rs` puts it above `app`).

use sqlx::SqlitePool;

use crate::store::Store;

/// The store's read pool, for a test's own `SELECT`s. A test that writes rows itself (a
/// corrupt row, a clock moved back) does it in [`Store::begin_write`] like the service does.
pub fn read_pool(store: &Store) -> &SqlitePool {
    store.reader()
}
