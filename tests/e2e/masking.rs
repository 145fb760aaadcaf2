//! Masking against the real PostgreSQL and MariaDB with real clients: psql and the
//! mariadb CLI (text results), tokio-postgres and mysql_async (binary results), a
//! hand-made pipeline; each method, aliases, joins, CTEs and subqueries (origins kept),
//! the bypasses through expressions, set operations, copies and views (refused),
//! `except_groups`, large results whose values change length, and the events.

use serde_json::{Value, json};

use crate::common;
use common::my::MyEnv;
use common::pg::{PASSWORD, PgEnv, RawPg, psql};

const RULES: &str = r#"
[[groups]]
name = "leads"

[[users]]
name = "lena"
groups = ["eng", "leads"]
password = "alice-password"

[[masking]]
name = "emails"
resource_roles = ["rr", "rr-ops"]
columns = ["public.users.email", "big.email", "huge.email"]
method = "email"
except_groups = ["leads"]

[[masking]]
name = "phones"
resource_roles = ["rr", "rr-ops"]
columns = ["users.phone"]
method = "partial"
keep_last = 4
except_groups = ["leads"]

[[masking]]
name = "cards"
resource_roles = ["rr", "rr-ops"]
column_names = ["card_number"]
method = "redact"
except_groups = ["leads"]

[[masking]]
name = "ids"
resource_roles = ["rr", "rr-ops"]
columns = ["*.users.ssn", "users.uid"]
method = "hash"
except_groups = ["leads"]

[[masking]]
name = "ages"
resource_roles = ["rr", "rr-ops"]
columns = ["users.age"]
method = "default"
except_groups = ["leads"]

[[masking]]
name = "births"
resource_roles = ["rr", "rr-ops"]
columns = ["users.born"]
method = "null"
except_groups = ["leads"]
"#;

async fn pg_tables(env: &PgEnv) {
    let conn = format!("host=127.0.0.1 user=postgres dbname={}", env.db);
    let (c, task) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(task);
    let role = &env.role;
    c.batch_execute(&format!(
        "create table users (id int primary key, email text, phone varchar(20), ssn text,
            age int, born date, uid uuid, name text);
         insert into users values
            (1, 'alice@example.com', '+1 555 0100 1234', '123-45-6789', 34, '1990-02-03',
             'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'Alice'),
            (2, 'bob@example.org', '555-9876', '987-65-4321', 41, '1983-07-08',
             'b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', 'Bob');
         create table orders (id int, user_id int, card_number text);
         insert into orders values (10, 1, '4111111111111111'), (11, 2, '5500000000000004');
         create table huge (id int, email text);
         insert into huge values (1, repeat('x', 6000000) || '@example.com');
         create table big (id int, email text);
         insert into big select i, 'someone.with.a.long.name.' || i || '@example.com'
            from generate_series(1, 50000) i;
         create view users_v as select id, email from users;
         create view plain_v as select id, name from users;
         create view users_vv as select * from users_v;
         create materialized view users_mv as select id, email from users;
         alter table users owner to {role}; alter table orders owner to {role};
         alter table big owner to {role}; alter table huge owner to {role}; alter view users_v owner to {role};
         alter view plain_v owner to {role}; alter view users_vv owner to {role};
         alter materialized view users_mv owner to {role};"
    ))
    .await
    .unwrap();
}

fn query_event<'a>(events: &'a [Value], statement: &str) -> &'a Value {
    events
        .iter()
        .rev()
        .find(|e| e["kind"] == "query" && e["statement"] == statement)
        .unwrap_or_else(|| panic!("no query event for `{statement}`"))
}

async fn psql_rows(env: &PgEnv, user: &str, sql: &str) -> Result<String, String> {
    let (ok, out, err) = psql(&env.conn_str(user, PASSWORD, "rr"), &["-At", "-c", sql]).await;
    if ok { Ok(out) } else { Err(err) }
}

#[tokio::test]
async fn postgres_text_results_are_masked_by_origin() {
    let env = PgEnv::new(RULES).await;
    pg_tables(&env).await;
    let sql = "select id, email, phone, ssn, age, born, uid, name from users order by id";
    let out = psql_rows(&env, "alice", sql).await.unwrap();
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split('|').collect()).collect();
    assert_eq!(rows.len(), 2, "{out}");
    let alice = &rows[0];
    assert_eq!(alice[0], "1");
    assert_eq!(alice[1], "a***@example.com");
    assert_eq!(
        alice[2], "************1234",
        "partial keeps the last 4 and the length"
    );
    assert_eq!(alice[3].len(), 32, "hash: {}", alice[3]);
    assert_ne!(alice[3], rows[1][3], "different values hash differently");
    assert_eq!(alice[4], "0", "default for an int");
    assert_eq!(alice[5], "", "null");
    assert!(alice[6].len() == 36 && alice[6] != "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    assert_eq!(alice[7], "Alice", "unmasked columns as they are");
    assert_eq!(rows[1][1], "b***@example.org");
    // The hash is stable: the same value hashes the same in another session.
    let again = psql_rows(&env, "alice", "select ssn from users where id = 1")
        .await
        .unwrap();
    assert_eq!(again.trim(), alice[3]);
    // An alias, a CTE, a subquery and a join keep the origin.
    for sql in [
        "select email as e from users where id = 1",
        "with x as (select email from users) select email from x where email like 'alice%'",
        "select s.m from (select email m, id from users) s where s.id = 1",
        "select (email) from users where id = 1",
    ] {
        let out = psql_rows(&env, "alice", sql).await.unwrap();
        assert_eq!(out.trim(), "a***@example.com", "{sql}");
    }
    let join = "select u.email, o.card_number from users u join orders o on o.user_id = u.id order by o.id";
    let out = psql_rows(&env, "alice", join).await.unwrap();
    assert_eq!(out.lines().next(), Some("a***@example.com|****"), "{out}");
    // A table made after the session read its catalog is matched by column name, and the
    // next session reads the catalog again.
    let alice_c = env.alice().await;
    alice_c.simple_query("select 1").await.unwrap();
    let conn = format!("host=127.0.0.1 user=postgres dbname={}", env.db);
    let (direct, task) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(task);
    direct
        .batch_execute(&format!(
            "create table people (id int, age int); insert into people values (1, 77);
             alter table people owner to {}",
            env.role
        ))
        .await
        .unwrap();
    let rows = alice_c
        .simple_query("select id, age from people")
        .await
        .unwrap();
    let row = rows.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(1).map(str::to_owned)),
        _ => None,
    });
    assert_eq!(row, Some(Some("0".to_owned())), "matched by the name `age`");
    // A member of `except_groups` reads clear values.
    let out = psql_rows(&env, "lena", sql).await.unwrap();
    assert!(
        out.starts_with("1|alice@example.com|+1 555 0100 1234|123-45-6789|34|1990-02-03|"),
        "{out}"
    );
    // The log says which columns were masked, never the values.
    let events = env.events().await;
    let e = query_event(&events, join);
    assert_eq!(
        e["masked"],
        json!(["public.users.email", "public.orders.card_number"])
    );
    let log = serde_json::to_string(&events).unwrap();
    let alice_events: Vec<&Value> = events.iter().filter(|e| e["user"] == "alice").collect();
    let alice_log = serde_json::to_string(&alice_events).unwrap();
    assert!(!alice_log.contains("alice@example.com") && !alice_log.contains("123-45-6789"));
    assert!(log.contains("\"masked\""));
    let lena = query_event(&events, sql);
    assert!(
        events
            .iter()
            .any(|e| e["user"] == "lena" && e["kind"] == "query" && e["masked"].is_null()),
        "{lena}"
    );
}

#[tokio::test]
async fn postgres_bypasses_through_expressions_copies_and_views_are_refused() {
    let env = PgEnv::new(RULES).await;
    pg_tables(&env).await;
    let c = env.alice().await;
    let refused = [
        "select upper(email) from users",
        "select email || '' from users",
        "select substring(email from 1 for 40) from users",
        "select substring(email, 1, 40) from users",
        "select email::varchar from users",
        "select cast(email as text) from users",
        "select row_to_json(u) from users u",
        "select json_agg(u) from users u",
        "select to_json(u.*) from users u",
        "select (select email from users limit 1)",
        "with x as (select lower(email) e from users) select e from x",
        "select email from users union select 'x'",
        "select 'x' union all select email from users",
        "copy users to stdout",
        "copy (select email from users) to stdout",
        "select * from users_v",
        "select id from users_vv",
        "select * from users_mv",
        "create table t2 as select email from users",
        "select email into t3 from users",
        "create view v2 as select upper(email) e from users",
        "insert into orders (card_number) select email from users",
        "update orders set card_number = (select email from users limit 1)",
        "select o.card_number || '' from orders o",
        "create function f() returns text language sql as 'select email from users limit 1'",
        "DO $$ BEGIN RAISE NOTICE '%', (select email from users limit 1); END $$",
    ];
    for sql in refused {
        let e = c.simple_query(sql).await.expect_err(sql);
        let db = e.as_db_error().unwrap_or_else(|| panic!("{sql}: {e}"));
        assert_eq!(db.code().code(), "42501", "{sql}: {db}");
        assert!(db.message().contains("masking rule"), "{sql}: {db}");
    }
    // The same through the extended protocol, and through psql's \copy.
    let e = c
        .query("select upper(email) from users where id = $1", &[&1i32])
        .await;
    assert_eq!(e.unwrap_err().as_db_error().unwrap().code().code(), "42501");
    let (ok, _, err) = psql(
        &env.conn_str("alice", PASSWORD, "rr"),
        &["-c", "\\copy users to stdout"],
    )
    .await;
    assert!(!ok && err.contains("masking rule"), "{err}");
    // What keeps no masked value goes on: expressions over other columns, a view without
    // masked columns, filters, counts.
    for sql in [
        "select upper(name) from users",
        "select * from plain_v",
        "select count(*) from users where email like '%example%'",
    ] {
        c.simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let out = psql_rows(&env, "alice", "copy orders (id) to stdout")
        .await
        .unwrap();
    assert_eq!(out, "10\n11\n");
    // Nothing refused ran.
    let rows = c.query("select count(*) from orders", &[]).await.unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 2);
    let events = env.events().await;
    let e = query_event(&events, "select upper(email) from users");
    assert_eq!(e["status"], "blocked");
    assert_eq!(e["guardrails"], json!(["emails"]));
}

#[tokio::test]
async fn postgres_binary_results_stay_valid_values_of_their_type() {
    let env = PgEnv::new(RULES).await;
    pg_tables(&env).await;
    let c = env.alice().await;
    // tokio-postgres asks for binary results and decodes each by its type.
    let rows = c
        .query(
            "select id, email, age, ssn, born, name from users where id = $1",
            &[&1i32],
        )
        .await
        .unwrap();
    let r = &rows[0];
    assert_eq!(r.get::<_, i32>("id"), 1);
    assert_eq!(r.get::<_, &str>("email"), "a***@example.com");
    assert_eq!(r.get::<_, i32>("age"), 0, "a masked int4 is still an int4");
    assert_eq!(r.get::<_, &str>("ssn").len(), 32);
    assert_eq!(r.get::<_, Option<&str>>("name"), Some("Alice"));
    let text = psql_rows(&env, "alice", "select ssn from users where id = 1")
        .await
        .unwrap();
    assert_eq!(
        r.get::<_, &str>("ssn"),
        text.trim(),
        "hashes agree across formats"
    );
    // A prepared statement run again without a Describe (named, as pgjdbc does).
    let st = c
        .prepare("select email, age from users where id = $1")
        .await
        .unwrap();
    for id in [1i32, 2, 1] {
        let row = c.query_one(&st, &[&id]).await.unwrap();
        assert!(row.get::<_, &str>(0).contains("***@"));
        assert_eq!(row.get::<_, i32>(1), 0);
    }
    // A statement executed without ever being described: the gateway cannot know its
    // columns, so every value is NULL.
    let mut raw = RawPg::connect(env.port, "alice", PASSWORD, "rr").await;
    let mut b = bytes::BytesMut::new();
    use postgres_protocol::message::frontend;
    frontend::parse(
        "",
        "select email, id from users where id = 1",
        std::iter::empty(),
        &mut b,
    )
    .unwrap();
    frontend::bind(
        "",
        "",
        std::iter::empty::<i16>(),
        std::iter::empty::<Option<i32>>(),
        |_: Option<i32>, _| Ok(postgres_protocol::IsNull::Yes),
        Some(0),
        &mut b,
    )
    .map_err(|_| ())
    .unwrap();
    frontend::execute("", 0, &mut b).unwrap();
    frontend::sync(&mut b);
    raw.send(&b).await;
    let answer = raw.until_ready().await;
    let row = answer.iter().find(|m| m.0 == b'D').expect("a row");
    assert_eq!(
        row.1,
        [0, 2, 255, 255, 255, 255, 255, 255, 255, 255],
        "{answer:?}"
    );
    // pgjdbc's way: a named statement described through a portal once, then bound and
    // executed without a Describe.
    let mut b = bytes::BytesMut::new();
    let sql = "select email from users where id = 2";
    frontend::parse("S_1", sql, std::iter::empty(), &mut b).unwrap();
    let bind = |b: &mut bytes::BytesMut| {
        frontend::bind(
            "",
            "S_1",
            std::iter::empty::<i16>(),
            std::iter::empty::<Option<i32>>(),
            |_: Option<i32>, _| Ok(postgres_protocol::IsNull::Yes),
            Some(0),
            b,
        )
        .map_err(|_| ())
        .unwrap()
    };
    bind(&mut b);
    frontend::describe(b'P', "", &mut b).unwrap();
    frontend::execute("", 0, &mut b).unwrap();
    frontend::sync(&mut b);
    bind(&mut b);
    frontend::execute("", 0, &mut b).unwrap();
    frontend::sync(&mut b);
    raw.send(&b).await;
    for _ in 0..2 {
        let answer = raw.until_ready().await;
        let row = answer.iter().find(|m| m.0 == b'D').expect("a row");
        assert!(row.1.ends_with(b"b***@example.org"), "{answer:?}");
    }
    let events = env.events().await;
    let e = query_event(&events, "select email, id from users where id = 1");
    assert_eq!(e["masked"], json!(["*"]), "columns it could not know");
}

#[tokio::test]
async fn postgres_large_results_keep_their_framing() {
    let env = PgEnv::new(RULES).await;
    pg_tables(&env).await;
    // 50k rows whose values shrink (email) through psql's text protocol, and 50k through
    // tokio-postgres's binary one; reads land mid-row all the time.
    let out = psql_rows(&env, "alice", "select id, email from big order by id")
        .await
        .unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 50_000);
    assert_eq!(lines[41], "42|s***@example.com");
    assert!(lines.iter().all(|l| l.ends_with("|s***@example.com")));
    let c = env.alice().await;
    let rows = c.query("select email, id from big", &[]).await.unwrap();
    assert_eq!(rows.len(), 50_000);
    assert!(
        rows.iter()
            .all(|r| r.get::<_, &str>(0) == "s***@example.com")
    );
    // A 6 MB value arrives over many reads, and is rewritten whole.
    let rows = c.query("select id, email from huge", &[]).await.unwrap();
    assert_eq!(rows[0].get::<_, &str>(1), "x***@example.com");
    let out = psql_rows(&env, "alice", "select email from huge")
        .await
        .unwrap();
    assert_eq!(out.trim(), "x***@example.com");
    // A role without masking rules streams the same table as it is.
    let lena = env.connect("lena", PASSWORD, "rr").await.unwrap();
    let rows = lena
        .query("select email from big where id = 7", &[])
        .await
        .unwrap();
    assert_eq!(
        rows[0].get::<_, &str>(0),
        "someone.with.a.long.name.7@example.com"
    );
}

async fn my_tables(env: &MyEnv) {
    common::my::direct(&format!(
        "create table {db}.users (id int primary key, email varchar(100), phone varchar(20),
            ssn varchar(20), age int, born date, name varchar(20));
         insert into {db}.users values
            (1, 'alice@example.com', '+1 555 0100 1234', '123-45-6789', 34, '1990-02-03', 'Alice'),
            (2, 'bob@example.org', '555-9876', '987-65-4321', 41, '1983-07-08', 'Bob');
         create table {db}.orders (id int, user_id int, card_number varchar(20));
         insert into {db}.orders values (10, 1, '4111111111111111'), (11, 2, '5500000000000004');
         create view {db}.users_v as select id, email from {db}.users;
         create table {db}.big (id int, email varchar(100));
         insert into {db}.big select seq, concat('someone.with.a.long.name.', seq, '@example.com')
            from {db}.seq_1_to_50000;",
        db = env.db
    ))
    .await;
}

impl MyEnv {
    async fn mariadb(&self, user: &str, rr: &str, sql: &str) -> Result<String, String> {
        let (ok, out, err) = self.client(user, PASSWORD, rr, &["-e", sql]).await;
        if ok { Ok(out) } else { Err(err) }
    }

    async fn mysql_async(&self, user: &str, rr: &str) -> mysql_async::Conn {
        let url = format!(
            "mysql://{user}:{PASSWORD}@127.0.0.1:{}/{rr}?prefer_socket=false",
            self.port
        );
        mysql_async::Conn::from_url(url).await.unwrap()
    }
}

#[tokio::test]
async fn mariadb_text_and_binary_results_are_masked() {
    let env = MyEnv::new(&RULES.replace("public.users.email", "users.email")).await;
    my_tables(&env).await;
    let out = env
        .mariadb(
            "alice",
            "rr",
            "select id, email, phone, ssn, age, born, name from users order by id",
        )
        .await
        .unwrap();
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows[0][1], "a***@example.com", "{out}");
    assert_eq!(rows[0][2], "************1234");
    assert_eq!(rows[0][3].len(), 32);
    assert_eq!(rows[0][4], "0");
    assert_eq!(rows[0][5], "NULL");
    assert_eq!(rows[0][6], "Alice");
    let join = "select u.email as e, o.card_number from users u join orders o on o.user_id = u.id order by o.id";
    let out = env.mariadb("alice", "rr", join).await.unwrap();
    assert_eq!(out.lines().next(), Some("a***@example.com\t****"), "{out}");
    for sql in [
        "select upper(email) from users",
        "select concat(email, '') from users",
        "select email from users union select 'x'",
        "select * from users_v",
    ] {
        let err = env.mariadb("alice", "rr", sql).await.expect_err(sql);
        assert!(err.contains("masking rule"), "{sql}: {err}");
    }
    let out = env
        .mariadb("lena", "rr", "select email from users where id = 1")
        .await
        .unwrap();
    assert_eq!(out.trim(), "alice@example.com");
    // mysql_async's prepared statements read binary rows.
    use mysql_async::prelude::Queryable;
    let mut conn = env.mysql_async("alice", "rr").await;
    let row: (i32, String, Option<i32>, Option<String>, String) = conn
        .exec_first(
            "select id, email, age, born, ssn from users where id = ?",
            (1,),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.0, 1);
    assert_eq!(row.1, "a***@example.com");
    assert_eq!(row.2, Some(0), "a masked INT is still an INT");
    assert_eq!(row.3, None);
    assert_eq!(
        row.4, rows[0][3],
        "hashes agree across text and binary rows"
    );
    // 50k rows whose values shrink, text and binary: the packets stay in step.
    let out = env
        .mariadb("alice", "rr", "select id, email from big order by id")
        .await
        .unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 50_000);
    assert!(
        lines.iter().all(|l| l.ends_with("\ts***@example.com")),
        "{}",
        lines[0]
    );
    let all: Vec<(i32, String)> = conn
        .exec("select id, email from big where id > ?", (0,))
        .await
        .unwrap();
    assert_eq!(all.len(), 50_000);
    assert!(all.iter().all(|(_, e)| e == "s***@example.com"));
    let events = env.events().await;
    let e = query_event(&events, join);
    assert_eq!(
        e["masked"],
        json!([
            format!("{}.users.email", env.db),
            format!("{}.orders.card_number", env.db)
        ])
    );
}

#[tokio::test]
async fn one_offs_read_masked_values_and_are_refused_the_same_bypasses() {
    let env = PgEnv::new(RULES).await;
    pg_tables(&env).await;
    let alice = common::user_client(&env.gw, &env.dir, "alice").await;
    let exec = |sql: &str| {
        let body = json!({"statement": sql});
        let alice = &alice;
        async move {
            alice
                .post("/api/resource-roles/rr-ops/exec", body)
                .await
                .unwrap()
        }
    };
    let done = exec("select id, email, age, ssn, born, name from users where id = 1").await;
    let row = &done["results"][0]["rows"][0];
    assert_eq!(row[0], 1, "{done}");
    assert_eq!(row[1], "a***@example.com");
    assert_eq!(row[2], 0);
    let native = psql_rows(&env, "alice", "select ssn from users where id = 1")
        .await
        .unwrap();
    assert_eq!(row[3], native.trim(), "one-offs hash as native sessions do");
    assert!(row[4].is_null());
    assert_eq!(row[5], "Alice");
    let done = exec("select upper(email) from users").await;
    assert_eq!(done["results"][0]["error"]["code"], "42501", "{done}");
    let events = env.events().await;
    let e = events
        .iter()
        .rev()
        .find(|e| e["kind"] == "query" && e["mode"] == "web" && e["status"] == "ok")
        .expect("the one-off's event");
    assert_eq!(
        e["masked"],
        json!([
            "public.users.email",
            "public.users.age",
            "public.users.ssn",
            "public.users.born"
        ])
    );
    // MariaDB one-offs too.
    let my = MyEnv::new(&RULES.replace("public.users.email", "users.email")).await;
    my_tables(&my).await;
    let alice = common::user_client(&my.gw, &my.dir, "alice").await;
    let done = alice
        .post(
            "/api/resource-roles/rr-ops/exec",
            json!({"statement": "select email, age from users where id = ?", "params": [2]}),
        )
        .await
        .unwrap();
    assert_eq!(
        done["results"][0]["rows"][0],
        json!(["b***@example.org", 0]),
        "{done}"
    );
}

#[tokio::test]
async fn masking_rules_through_the_api() {
    let env = PgEnv::new(RULES).await;
    pg_tables(&env).await;
    let admin = common::client(&env.gw, Some(&env.dir.bootstrap_token()));
    let list = admin.get("/api/masking").await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 6, "{list}");
    assert_eq!(list[0]["managed"], true);
    let bad = admin
        .post("/api/masking", json!({"name": "x", "resource_roles": ["rr"], "columns": ["email"], "method": "redact"}))
        .await;
    assert_eq!(common::status(bad), 422, "a column pattern names its table");
    let bad = admin
        .post("/api/masking", json!({"name": "x", "resource_roles": ["rr"], "columns": ["t.c"], "method": "scramble"}))
        .await;
    assert_eq!(common::status(bad), 400, "no such method");
    let rule = json!({"name": "names", "resource_roles": ["rr"], "columns": ["users.name"], "method": "partial", "keep_first": 1, "keep_last": 0});
    let made = admin.post("/api/masking", rule).await.unwrap();
    assert_eq!(made["managed"], false);
    // New sessions mask with it.
    let out = psql_rows(&env, "alice", "select name from users where id = 2")
        .await
        .unwrap();
    assert_eq!(out.trim(), "B**");
    let managed = admin.delete("/api/masking/emails").await;
    assert_eq!(common::status(managed), 409, "declared in the config");
    let alice = common::user_client(&env.gw, &env.dir, "alice").await;
    assert_eq!(
        common::status(alice.delete("/api/masking/names").await),
        403
    );
    admin.delete("/api/masking/names").await.unwrap();
    let out = psql_rows(&env, "alice", "select name from users where id = 2")
        .await
        .unwrap();
    assert_eq!(out.trim(), "Bob");
    let changes = admin.get("/api/changes").await.unwrap();
    assert!(
        changes.to_string().contains("masking_rule.create"),
        "{changes}"
    );
}
