//! Runbooks against the real PostgreSQL and MariaDB: every parameter type bound by the
//! server, bad values refused before anything runs, injection attempts arriving as one
//! value, a failed step undoing the run, the runbook's own limits, the files linted, the
//! runs in the log with the runbook's name and hash.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common;
use common::my::MyEnv;
use common::pg::PgEnv;
use common::{status, user_client};

const RECORD: &str = r#"-- description = "Record one row of every type"
-- resource_roles = ["rr-*"]
--
-- [[params]]
-- name = "i"
-- type = "integer"
-- min = 1
-- description = "A positive integer"
--
-- [[params]]
-- name = "n"
-- type = "numeric"
--
-- [[params]]
-- name = "t"
-- type = "text"
--
-- [[params]]
-- name = "b"
-- type = "boolean"
-- default = false
--
-- [[params]]
-- name = "d"
-- type = "date"
--
-- [[params]]
-- name = "ts"
-- type = "timestamp"
--
-- [[params]]
-- name = "u"
-- type = "uuid"
--
-- [[params]]
-- name = "e"
-- type = "enum"
-- values = ["red", "blue"]

insert into rb (i, n, t, b, d, ts, u, e) values (:i, :n, :t, :b, :d, :ts, :u, :e);
"#;

const FORGET: &str = r#"-- description = "Forget the rows with this text"
-- resource_roles = ["rr-ops"]
-- [[params]]
-- name = "t"
-- type = "text"
delete from rb where t = :t;
"#;

const TWO_STEPS: &str = r#"-- description = "Two steps; the second fails, so the first is undone"
-- resource_roles = ["rr-ops"]
-- [[params]]
-- name = "i"
-- type = "integer"
insert into rb (i) values (:i);
insert into no_such_table values (:i);
"#;

const SALES_ONLY: &str = r#"-- description = "For sales"
-- resource_roles = ["rr-ops"]
-- groups = ["sales"]
select 1;
"#;

const ELSEWHERE: &str = r#"-- description = "Runs on another role"
-- resource_roles = ["other"]
select 1;
"#;

/// A runbooks directory with the files above.
fn runbooks() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("record", RECORD),
        ("forget", FORGET),
        ("two-steps", TWO_STEPS),
        ("sales-only", SALES_ONLY),
        ("elsewhere", ELSEWHERE),
    ] {
        std::fs::write(dir.path().join(format!("{name}.sql")), text).unwrap();
    }
    dir
}

fn values(v: Value) -> Value {
    json!({"resource_role": "rr-ops", "params": v})
}

fn good() -> Value {
    json!({"i": 7, "n": "12.50", "t": "1; drop table rb", "b": true, "d": "2026-02-28",
           "ts": "2026-01-02T03:04:05+02:00", "u": "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "e": "blue"})
}

#[tokio::test]
async fn runbooks_on_postgres_bind_every_type_and_refuse_bad_values() {
    let dir = runbooks();
    let env = PgEnv::new(&format!("[runbooks]\ndir = \"{}\"\n", dir.path().display())).await;
    let alice = user_client(&env.gw, &env.dir, "alice").await;
    exec(&alice, "create table rb (i bigint, n numeric, t text, b bool, d date, ts timestamp, u uuid, e text)").await;
    let run = |body: Value| {
        let alice = &alice;
        async move { alice.post("/api/runbooks/record/run", body).await }
    };
    let done = run(values(good())).await.unwrap();
    assert!(done["failed"].is_null(), "{done}");
    assert_eq!(done["results"][0]["rows_affected"], 1);
    assert_eq!(
        exec(
            &alice,
            "select i, n, t, b, d::text, ts::text, u::text, e from rb"
        )
        .await,
        json!([[
            7,
            12.5,
            "1; drop table rb",
            true,
            "2026-02-28",
            "2026-01-02 01:04:05",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "blue"
        ]])
    );
    // Injection attempts arrive as one value each and change nothing else.
    let mut sneaky = good();
    sneaky["t"] = json!("' or 1=1 --");
    run(values(sneaky)).await.unwrap();
    assert_eq!(exec(&alice, "select count(*) from rb").await, json!([[2]]));
    let forgot = alice
        .post(
            "/api/runbooks/forget/run",
            values(json!({"t": "' or 1=1 --"})),
        )
        .await
        .unwrap();
    assert_eq!(forgot["results"][0]["rows_affected"], 1);
    assert_eq!(
        exec(&alice, "select t from rb").await,
        json!([["1; drop table rb"]])
    );
    // Bad values: 422 naming each parameter, nothing run.
    let mut bad = good();
    bad.as_object_mut().unwrap().remove("i");
    bad["e"] = json!("green");
    bad["extra"] = json!(1);
    let err = run(values(bad)).await.unwrap_err().to_string();
    for want in [
        "parameter `extra` is not a parameter",
        "parameter `i` is required",
        "parameter `e` `green` is not one of red, blue",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
    for (name, value) in [
        ("i", json!("7; drop table rb")),
        ("i", json!(0)),
        ("u", json!("' or 1=1 --")),
    ] {
        let mut one = good();
        one[name] = value;
        assert_eq!(status(run(values(one)).await), 422);
    }
    assert_eq!(exec(&alice, "select count(*) from rb").await, json!([[1]]));
    // A failed step undoes the run.
    let two = alice
        .post("/api/runbooks/two-steps/run", values(json!({"i": 99})))
        .await
        .unwrap();
    assert_eq!(two["failed"], 2, "{two}");
    let texts: Vec<&str> = two["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["statement"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "BEGIN",
            "insert into rb (i) values ($1)",
            "insert into no_such_table values ($1)",
            "ROLLBACK"
        ]
    );
    assert_eq!(
        exec(&alice, "select count(*) from rb where i = 99").await,
        json!([[0]])
    );
    // The runbook's own limits.
    assert_eq!(
        status(
            alice
                .post("/api/runbooks/sales-only/run", values(json!({})))
                .await
        ),
        404
    );
    let elsewhere = alice.post(
        "/api/runbooks/record/run",
        json!({"resource_role": "rr", "params": good()}),
    );
    assert_eq!(status(elsewhere.await), 403);
    let listed = alice.get("/api/runbooks").await.unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["forget", "record", "two-steps"]);
    let record = alice.get("/api/runbooks/record").await.unwrap();
    assert_eq!(
        record["params"][0],
        json!({"name": "i", "type": "integer", "required": true,
        "default": null, "pattern": null, "min": 1.0, "max": null, "description": "A positive integer"})
    );
    assert_eq!(record["params"][7]["values"], json!(["red", "blue"]));
    // In the log: the runbook and its file's hash, the bound values, mode runbooks.
    let events = env.events().await;
    let started = events
        .iter()
        .find(|e| e["kind"] == "session_started" && e["runbook"]["name"] == "record")
        .unwrap();
    assert_eq!(started["mode"], "runbooks");
    assert_eq!(
        started["runbook"]["sha256"],
        hex::encode(Sha256::digest(RECORD))
    );
    let query = events
        .iter()
        .find(|e| e["kind"] == "query" && e["mode"] == "runbooks")
        .unwrap();
    assert_eq!(
        query["params"],
        json!([
            "7",
            "12.50",
            "1; drop table rb",
            "true",
            "2026-02-28",
            "2026-01-02 01:04:05.000000",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "blue"
        ])
    );
    let runs = alice.get("/api/sessions?mode=runbooks").await.unwrap();
    assert_eq!(
        runs.as_array().unwrap().len(),
        4,
        "record ×2, forget, two-steps: {runs}"
    );
    let denied = events
        .iter()
        .find(|e| e["kind"] == "access_denied")
        .unwrap();
    assert!(
        denied["reason"]
            .as_str()
            .unwrap()
            .contains("runbooks is disabled"),
        "{denied}"
    );
    env.gw.shutdown().await;
}

#[tokio::test]
async fn runbooks_on_mariadb_bind_every_type() {
    let dir = runbooks();
    let env = MyEnv::new(&format!("[runbooks]\ndir = \"{}\"\n", dir.path().display())).await;
    let alice = user_client(&env.gw, &env.dir, "alice").await;
    exec(&alice, "create table rb (i bigint, n decimal(10,2), t text, b bool, d date, ts datetime(6), u char(36), e varchar(10))").await;
    let done = alice
        .post("/api/runbooks/record/run", values(good()))
        .await
        .unwrap();
    assert!(done["failed"].is_null(), "{done}");
    assert_eq!(
        exec(&alice, "select i, n, t, b, d, ts, u, e from rb").await,
        json!([[
            7,
            12.5,
            "1; drop table rb",
            1,
            "2026-02-28",
            "2026-01-02 01:04:05.000000",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "blue"
        ]])
    );
    let forgot = alice
        .post(
            "/api/runbooks/forget/run",
            values(json!({"t": "' or 1=1 --"})),
        )
        .await
        .unwrap();
    assert_eq!(forgot["results"][0]["rows_affected"], 0);
    assert_eq!(exec(&alice, "select count(*) from rb").await, json!([[1]]));
    let two = alice
        .post("/api/runbooks/two-steps/run", values(json!({"i": 99})))
        .await
        .unwrap();
    assert_eq!(two["results"][0]["statement"], "START TRANSACTION");
    assert_eq!(two["failed"], 2);
    assert_eq!(
        exec(&alice, "select count(*) from rb where i = 99").await,
        json!([[0]])
    );
    env.gw.shutdown().await;
}

async fn portcullis(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    common::clients::portcullis(args, env, None).await
}

/// A one-off's first result's rows.
async fn exec(alice: &portcullis::cli::client::Client, sql: &str) -> Value {
    let done = alice
        .post("/api/resource-roles/rr-ops/exec", json!({"statement": sql}))
        .await
        .unwrap();
    done["results"][0]["rows"].clone()
}

#[tokio::test]
async fn runbooks_lint_run_from_the_cli_and_reload_with_the_config() {
    let dir = runbooks();
    let path = dir.path().display().to_string();
    let (code, out, err) = portcullis(&["runbooks", "lint", &path], &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("5 runbooks ok"), "{out}");
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(
        bad.path().join("broken.sql"),
        "-- description = \"x\"\n-- resource_roles = [\"rr\"]\n-- [[params]]\n-- name = \"a\"\n-- type = \"integer\"\nselect :b;\n",
    )
    .unwrap();
    let (code, _, err) = portcullis(
        &["runbooks", "lint", &bad.path().display().to_string()],
        &[],
    )
    .await;
    assert_eq!(code, 1);
    let file = bad.path().join("broken.sql").display().to_string();
    assert!(
        err.contains(&format!("{file}:6: unknown placeholder :b")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{file}:0: parameter `a` is never used")),
        "{err}"
    );

    let env = PgEnv::new(&format!("[runbooks]\ndir = \"{path}\"\n")).await;
    let alice = user_client(&env.gw, &env.dir, "alice").await;
    alice
        .post(
            "/api/resource-roles/rr-ops/exec",
            json!({"statement": "create table rb (i bigint, t text)"}),
        )
        .await
        .unwrap();
    let admin = common::client(&env.gw, Some(&env.dir.bootstrap_token()));
    let made = admin
        .post("/api/tokens", json!({"user": "alice"}))
        .await
        .unwrap();
    let token = made["token"].as_str().unwrap();
    let server = format!("http://{}", env.gw.admin_addr.unwrap());
    let vars = [
        ("PORTCULLIS_SERVER", server.as_str()),
        ("PORTCULLIS_TOKEN", token),
    ];
    let (code, out, err) = portcullis(&["runbook", "list"], &vars).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("record") && !out.contains("sales-only"),
        "{out}"
    );
    let run = [
        "runbook",
        "run",
        "two-steps",
        "--role",
        "rr-ops",
        "--param",
        "i=5",
    ];
    let (code, _, err) = portcullis(&run, &vars).await;
    assert_eq!(code, 1, "the second step fails");
    assert!(err.contains("ERROR 42P01"), "{err}");
    let (code, out, err) = portcullis(
        &[
            "runbook", "run", "forget", "--role", "rr-ops", "--param", "t=x",
        ],
        &vars,
    )
    .await;
    assert_eq!((code, out.as_str()), (0, "OK, 0 rows affected\n"), "{err}");
    let (code, _, err) = portcullis(
        &[
            "runbook", "run", "forget", "--role", "rr-ops", "--param", "nope=1",
        ],
        &vars,
    )
    .await;
    assert_eq!(code, 1);
    assert!(
        err.contains("422") || err.contains("not a parameter"),
        "{err}"
    );
    // A runbook added to the directory is there after a reload.
    std::fs::write(
        dir.path().join("later.sql"),
        "-- description = \"Later\"\n-- resource_roles = [\"rr-ops\"]\nselect 2;\n",
    )
    .unwrap();
    assert_eq!(status(alice.get("/api/runbooks/later").await), 404);
    admin.post("/api/config/reload", json!({})).await.unwrap();
    assert_eq!(status(alice.get("/api/runbooks/later").await), 200);
    env.gw.shutdown().await;
}

#[tokio::test]
async fn the_demo_runbooks_lint_clean() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks");
    let (code, out, err) = portcullis(&["runbooks", "lint", &dir.display().to_string()], &[]).await;
    assert_eq!(code, 0, "{out}{err}");
}
