//! For the plan tests beside the SQL: which index a statement walks, as SQLite says.

use super::Store;

/// `EXPLAIN QUERY PLAN` of `sql` (with its parameters bound), one line per step.
pub(crate) async fn plan(store: &Store, sql: &str, binds: &[&str]) -> Vec<String> {
    let mut q = sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(format!(
        "EXPLAIN QUERY PLAN {sql}"
    )));
    for b in binds {
        q = q.bind(*b);
    }
    q.fetch_all(&**store.reader())
        .await
        .expect("explain query plan")
        .into_iter()
        .map(|(_, _, _, detail)| detail)
        .collect()
}
