//! Node.js drivers through the gateway to real servers: node-postgres (`pg`) and `mysql2`
//! — parameters, named prepared statements, pipelined queries, transactions, errors,
//! server-side prepared statements (binary protocol) — and what the log records of them.

use crate::common;

use common::clients::{assert_lines, node};
use common::my::MyEnv;
use common::pg::{PASSWORD, PgEnv};

#[tokio::test]
async fn node_postgres_works_through_the_gateway() {
    let env = PgEnv::new("").await;
    let out = node(&format!(
        r#"
  const {{ Client }} = require("pg");
  const c = new Client({{ host: "127.0.0.1", port: {port}, user: "alice", password: "{PASSWORD}",
                          database: "rr", application_name: "node-app" }});
  await c.connect();
  await c.query("create table n (id int primary key, v text)");
  await c.query("begin");
  // Pipelined: node-postgres queues them all on the connection at once.
  await Promise.all([...Array(20).keys()].map(i =>
    c.query("insert into n values ($1, $2)", [i, "v" + i])));
  await c.query("rollback");
  console.log("after rollback", (await c.query("select count(*)::int as n from n")).rows[0].n);
  for (let i = 0; i < 20; i++) await c.query("insert into n values ($1, $2)", [i, "v" + i]);
  for (let i = 0; i < 3; i++) {{
    const r = await c.query({{ name: "by-id", text: "select v from n where id = $1", values: [i + 5] }});
    console.log("named", r.rows[0].v);
  }}
  try {{ await c.query("select 1/0"); }} catch (e) {{ console.log("code", e.code); }}
  console.log("unicode", (await c.query("select $1::text as t", ["héllo ✓ 你好"])).rows[0].t === "héllo ✓ 你好");
  await c.end();
  const bad = new Client({{ host: "127.0.0.1", port: {port}, user: "alice", password: "wrong", database: "rr" }});
  try {{ await bad.connect(); }} catch (e) {{ console.log("login code", e.code); }}
"#,
        port = env.port
    ))
    .await;
    assert_lines(
        &out,
        &[
            "after rollback 0",
            "named v5",
            "named v7",
            "code 22012",
            "unicode true",
            "login code 28P01",
        ],
    );
    let events = env.events().await;
    let started = events
        .iter()
        .find(|e| e["kind"] == "session_started")
        .unwrap();
    assert_eq!(started["application_name"], "node-app");
    let inserts = events
        .iter()
        .filter(|e| e["kind"] == "query" && e["statement"] == "insert into n values ($1, $2)")
        .count();
    assert_eq!(inserts, 40, "pipelined and one-by-one inserts, each logged");
    let named: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "query" && e["statement"] == "select v from n where id = $1")
        .map(|e| e["params"][0].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(named, ["5", "6", "7"]);
    env.gw.shutdown().await;
}

#[tokio::test]
async fn mysql2_works_through_the_gateway() {
    let env = MyEnv::new("").await;
    let out = node(&format!(
        r#"
  const mysql = require("mysql2/promise");
  const c = await mysql.createConnection({{ host: "127.0.0.1", port: {port}, user: "alice",
                                            password: "{PASSWORD}", database: "rr", multipleStatements: true }});
  await c.query("create table n (id int primary key, v varchar(20))");
  await c.beginTransaction();
  for (let i = 0; i < 20; i++) await c.query("insert into n values (?, ?)", [i, "v" + i]);
  await c.rollback();
  const [[{{ n }}]] = await c.query("select count(*) as n from n");
  console.log("after rollback", n);
  for (let i = 0; i < 20; i++) await c.execute("insert into n values (?, ?)", [i, "v" + i]);
  for (let i = 0; i < 3; i++) {{
    const [rows] = await c.execute("select v from n where id = ?", [i + 5]);
    console.log("prepared", rows[0].v);
  }}
  const [sets] = await c.query("select 1 as a; select 2 as b");
  console.log("multi", sets[0][0].a, sets[1][0].b);
  try {{ await c.query("select * from missing"); }} catch (e) {{ console.log("errno", e.errno); }}
  await c.end();
  try {{
    await mysql.createConnection({{ host: "127.0.0.1", port: {port}, user: "alice", password: "wrong", database: "rr" }});
  }} catch (e) {{ console.log("login errno", e.errno); }}
"#,
        port = env.port
    ))
    .await;
    assert_lines(
        &out,
        &[
            "after rollback 0",
            "prepared v5",
            "prepared v7",
            "multi 1 2",
            "errno 1146",
            "login errno 1045",
        ],
    );
    let events = env.events().await;
    let started = events
        .iter()
        .find(|e| e["kind"] == "session_started")
        .unwrap();
    assert_eq!(
        started["application_name"], "Node-MySQL-2",
        "the driver's name from its connect attributes"
    );
    let executes: Vec<_> = events
        .iter()
        .filter(|e| e["op"] == "stmt_execute" && e["statement"] == "select v from n where id = ?")
        .map(|e| e["params"][0].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(executes, ["5", "6", "7"]);
    env.gw.shutdown().await;
}
