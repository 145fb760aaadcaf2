//! mysql_async (the Rust driver) through the gateway: text and binary protocol, prepared
//! statements with parameters, a transaction, multiple result sets and error codes; the
//! monitoring log gets each statement with its decoded parameters.

use crate::common;

use common::my::{MyEnv, PASSWORD};
use mysql_async::prelude::*;

#[tokio::test]
async fn mysql_async_text_binary_transactions_and_errors() {
    let env = MyEnv::new("").await;
    let url = format!(
        "mysql://alice:{PASSWORD}@127.0.0.1:{}/rr?prefer_socket=false",
        env.port
    );
    let pool = mysql_async::Pool::new(url.as_str());
    let mut c = pool.get_conn().await.unwrap();
    c.query_drop("create table t (id int primary key, name varchar(40))")
        .await
        .unwrap();
    let mut tx = c
        .start_transaction(mysql_async::TxOpts::default())
        .await
        .unwrap();
    tx.exec_batch(
        "insert into t values (?, ?)",
        (1..=20).map(|i| (i, format!("name {i} ✓"))),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let name: Option<String> = c
        .exec_first("select name from t where id = ?", (7,))
        .await
        .unwrap();
    assert_eq!(name.as_deref(), Some("name 7 ✓"));
    let count: Option<i64> = c.query_first("select count(*) from t").await.unwrap();
    assert_eq!(count, Some(20));
    let mut result = c.query_iter("select 1; select 2, 3").await.unwrap();
    let first: Vec<i64> = result.collect().await.unwrap();
    let second: Vec<(i64, i64)> = result.collect().await.unwrap();
    assert_eq!((first, second), (vec![1], vec![(2, 3)]));
    drop(result);
    let err = c.query_drop("select * from missing").await.unwrap_err();
    match err {
        mysql_async::Error::Server(e) => assert_eq!(e.code, 1146),
        other => panic!("expected a server error, got {other:?}"),
    }
    let user: Option<String> = c.query_first("select current_user()").await.unwrap();
    assert!(user.unwrap().starts_with(&format!("{}@", env.user)));
    drop(c);
    pool.disconnect().await.unwrap();

    let events = env.events().await;
    let selects: Vec<_> = events
        .iter()
        .filter(|e| {
            e["op"] == "stmt_execute" && e["statement"] == "select name from t where id = ?"
        })
        .collect();
    assert_eq!(selects.len(), 1, "{events:?}");
    assert_eq!(selects[0]["params"], serde_json::json!(["7"]));
    assert_eq!(selects[0]["rows"], 1);
    let inserts = events
        .iter()
        .filter(|e| e["op"] == "stmt_execute" && e["statement"] == "insert into t values (?, ?)")
        .count();
    assert_eq!(inserts, 20);
    let failed: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "query" && e["status"] == "error")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["error_code"], "1146");
    env.gw.shutdown().await;
}
