use super::*;

#[test]
fn postgres_gets_the_text_without_sqlite_planner_hints() {
    let sql = "SELECT id FROM events INDEXED BY events_rate_facts WHERE x = 1 \
               UNION ALL SELECT d.t FROM deliveries d WHERE (+d.channel = $1 AND +d.status <> 'x')";
    assert_eq!(
        without_sqlite_hints(sql),
        "SELECT id FROM events WHERE x = 1 \
         UNION ALL SELECT d.t FROM deliveries d WHERE (d.channel = $1 AND d.status <> 'x')"
    );
    assert_eq!(Sqlite::hinted(sql), sql);
    assert_eq!(Postgres::hinted(sql), without_sqlite_hints(sql));
    // Arithmetic keeps its plus.
    assert_eq!(
        without_sqlite_hints("SELECT a + 1, $1 + b.c"),
        "SELECT a + 1, $1 + b.c"
    );
}

use super::testdb::on_both;

on_both! {
    /// Opening migrates, readiness counts the migrations of the store's own backend, the probe
    /// writes, and a setting is kept by the first writer.
    async fn opens_migrates_writes_and_keeps_the_first_setting(store) {
        store.ready().await.unwrap();
        store.probe_write(1).await.unwrap();
        store.probe_write(2).await.unwrap();
        let first = settings::get_or_insert_setting(&store, "k", "one").await.unwrap();
        let second = settings::get_or_insert_setting(&store, "k", "two").await.unwrap();
        assert_eq!((first.as_str(), second.as_str()), ("one", "one"));
        let (applied, expected) = store.reader().migrations_applied().await.unwrap();
        assert_eq!(applied, expected);
        store.close().await;
    }
}

#[tokio::test]
async fn writes_of_two_replicas_on_one_postgres_database_take_turns() {
    let Some(a) = testdb::postgres().await else {
        return;
    };
    let b = Store::open(a.url_for_tests(), Durability::Normal)
        .await
        .unwrap();
    let first = a.begin_write().await.unwrap();
    let second = tokio::spawn(async move {
        let tx = b.begin_write().await.unwrap();
        (b, tx)
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !second.is_finished(),
        "the other replica waits for the write in progress"
    );
    first.commit().await.unwrap();
    let (b, tx) = tokio::time::timeout(std::time::Duration::from_secs(5), second)
        .await
        .expect("its turn comes at the commit")
        .unwrap();
    tx.commit().await.unwrap();
    b.close().await;
    a.close().await;
}
