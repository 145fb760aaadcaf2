//! Access requests against the real PostgreSQL: just-in-time grants (request → approve →
//! native login → expiry ends the live session → guidance at the next login), revoke,
//! deny, cancel, no self-approval, N-of-M across approver groups, break-glass, undecided
//! requests expiring; per-command approval of one-offs and runbook runs (run once, a
//! changed runbook refused, native refused); signed webhooks; every change in the log,
//! whose chain verifies.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common;
use common::pg::{PASSWORD, PgEnv, psql};
use common::{status, user_client};
use portcullis::cli::client::Client;

/// Approvers and an on-call group beside the common people.
fn people(extra: &str) -> String {
    let mut out = String::new();
    for g in ["leads", "security", "oncall"] {
        out.push_str(&format!("[[groups]]\nname = \"{g}\"\n"));
    }
    for (name, groups, role) in [
        ("lee", "\"leads\"", "standard"),
        ("leo", "\"leads\"", "standard"),
        ("sam", "\"security\"", "standard"),
        ("olly", "\"eng\", \"oncall\"", "standard"),
        ("ada", "\"eng\"", "admin"),
    ] {
        out.push_str(&format!(
            "[[users]]\nname = \"{name}\"\ngroups = [{groups}]\nrole = \"{role}\"\npassword = \"{PASSWORD}\"\n"
        ));
    }
    out.push_str(extra);
    out
}

async fn request(c: &Client, role: &str, duration: &str, reason: &str) -> Value {
    c.post(
        "/api/access-requests",
        json!({"resource_role": role, "duration": duration, "reason": reason}),
    )
    .await
    .unwrap()
}

async fn vote(c: &Client, id: &Value, what: &str, comment: &str) -> Result<Value, u16> {
    let path = format!("/api/access-requests/{}/{what}", id.as_str().unwrap());
    c.post(&path, json!({"comment": comment}))
        .await
        .map_err(|e| match e {
            portcullis::cli::client::ClientError::Api { status, .. } => status,
            other => panic!("{other}"),
        })
}

async fn run(c: &Client, id: &Value) -> Result<Value, portcullis::cli::client::ClientError> {
    let path = format!("/api/access-requests/{}/run", id.as_str().unwrap());
    c.post(&path, json!({})).await
}

/// Waits until `check` holds (up to `secs`).
async fn until(secs: u64, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

const JIT: &str = "[[access_request_rules]]\nname = \"rr-jit\"\nresource_roles = [\"rr\"]\nkind = \"jit\"\nrequester_groups = [\"eng\"]\napprover_groups = [\"leads\"]\nmax_duration = \"1h\"\nbreak_glass_groups = [\"oncall\"]\n";

#[tokio::test]
async fn just_in_time_access_is_granted_used_and_ends_with_its_sessions() {
    let env = PgEnv::new(&people(JIT)).await;
    let conn = env.conn_str("alice", PASSWORD, "rr");
    let (ok, _, err) = psql(&conn, &["-c", "select 1"]).await;
    assert!(
        !ok && err.contains("requires an approved request: portcullis request rr --for 1h"),
        "{err}"
    );
    let alice = user_client(&env.gw, &env.dir, "alice").await;
    let lee = user_client(&env.gw, &env.dir, "lee").await;
    let bob = user_client(&env.gw, &env.dir, "bob").await;
    // Access control first: bob (sales) cannot even ask.
    assert_eq!(
        status(
            bob.post(
                "/api/access-requests",
                json!({"resource_role": "rr", "reason": "x"})
            )
            .await
        ),
        403
    );
    assert_eq!(
        status(
            alice
                .post("/api/access-requests", json!({"resource_role": "rr"}))
                .await
        ),
        422,
        "a reason is required"
    );
    assert_eq!(
        status(
            alice
                .post(
                    "/api/access-requests",
                    json!({"resource_role": "rr", "duration": "2h", "reason": "x"})
                )
                .await
        ),
        422,
        "over the rule's 1h"
    );
    let r = request(&alice, "rr", "3s", "incident 42").await;
    assert_eq!(r["status"], "pending");
    let id = &r["id"];
    // Nobody approves their own request; bob is no approver.
    assert_eq!(vote(&alice, id, "approve", "").await, Err(403));
    assert_eq!(
        vote(&bob, id, "approve", "").await,
        Err(404),
        "bob may not even see it"
    );
    let listed = lee.get("/api/access-requests?scope=pending").await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let approved = vote(&lee, id, "approve", "go ahead").await.unwrap();
    assert_eq!(approved["status"], "approved");
    assert_eq!(
        (
            approved["approvals"].clone(),
            approved["approvals_needed"].clone()
        ),
        (json!(1), json!(1))
    );
    // In: a live session, ended when the grant ends.
    let live = env.alice().await;
    live.simple_query("select 1").await.unwrap();
    let started = Instant::now();
    let ended = until(8, async || live.simple_query("select 1").await.is_err()).await;
    assert!(ended, "the session outlived its grant");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    let (ok, _, err) = psql(&conn, &["-c", "select 1"]).await;
    assert!(!ok && err.contains("requires an approved request"), "{err}");
    let shown = alice
        .get(&format!("/api/access-requests/{}", id.as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(shown["status"], "expired");

    // Revoked early: its live session ends within a second.
    let r = request(&alice, "rr", "1h", "again").await;
    vote(&lee, &r["id"], "approve", "").await.unwrap();
    let live = env.alice().await;
    live.simple_query("select 1").await.unwrap();
    assert_eq!(
        vote(&alice, &r["id"], "revoke", "no").await,
        Err(403),
        "only admins revoke"
    );
    let admin = common::client(&env.gw, Some(&env.dir.bootstrap_token()));
    vote(&admin, &r["id"], "revoke", "ended early")
        .await
        .unwrap();
    assert!(until(2, async || live.simple_query("select 1").await.is_err()).await);
    // Denied by one approver; cancelled by its requester.
    let r = request(&alice, "rr", "1h", "third").await;
    assert_eq!(
        vote(&lee, &r["id"], "deny", "").await,
        Err(422),
        "a denial needs a reason"
    );
    assert_eq!(
        vote(&lee, &r["id"], "deny", "not now").await.unwrap()["status"],
        "denied"
    );
    let r = request(&alice, "rr", "1h", "fourth").await;
    assert_eq!(
        vote(&alice, &r["id"], "cancel", "").await.unwrap()["status"],
        "cancelled"
    );
    // Even an admin does not approve their own request.
    let ada = user_client(&env.gw, &env.dir, "ada").await;
    let r = request(&ada, "rr", "1h", "admin work").await;
    assert_eq!(vote(&ada, &r["id"], "approve", "").await, Err(403));
    // Break-glass: approved at once, flagged, logged loudly.
    let olly = user_client(&env.gw, &env.dir, "olly").await;
    let r = request(&olly, "rr", "30m", "prod down").await;
    assert_eq!(
        (r["status"].clone(), r["break_glass"].clone()),
        (json!("approved"), json!(true))
    );
    let olly_conn = env.conn_str("olly", PASSWORD, "rr");
    let (ok, _, err) = psql(&olly_conn, &["-c", "select 1"]).await;
    assert!(ok, "{err}");

    let events = env.events().await;
    let states: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["kind"] == "access_request")
        .map(|e| {
            (
                e["state"].as_str().unwrap().to_owned(),
                e["by"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for want in [
        ("created", "alice"),
        ("approved", "lee"),
        ("expired", "gateway"),
        ("revoked", "admin"),
        ("denied", "lee"),
        ("cancelled", "alice"),
        ("break_glass", "olly"),
    ] {
        assert!(
            states.contains(&(want.0.into(), want.1.into())),
            "{want:?} in {states:?}"
        );
    }
    let ended: Vec<&Value> = events
        .iter()
        .filter(|e| {
            e["kind"] == "session_ended" && e["user"] == "alice" && e["ended_by"] == "killed"
        })
        .collect();
    assert_eq!(ended.len(), 2, "expiry and revocation each ended a session");
    let report = admin.get("/api/audit/verify").await.unwrap();
    assert_eq!(report["ok"], true, "{report}");
    env.gw.shutdown().await;
}

#[tokio::test]
async fn n_of_m_across_approver_groups_and_undecided_requests_expire() {
    let rule = "[access_requests]\npending_timeout = \"2s\"\n[[access_request_rules]]\nname = \"two\"\nresource_roles = [\"rr\"]\nkind = \"jit\"\napprover_groups = [\"leads\", \"security\"]\nmin_approvals = 2\nall_approver_groups = true\nmax_duration = \"1h\"\n";
    let env = PgEnv::new(&people(rule)).await;
    let alice = user_client(&env.gw, &env.dir, "alice").await;
    let (lee, leo, sam) = (
        user_client(&env.gw, &env.dir, "lee").await,
        user_client(&env.gw, &env.dir, "leo").await,
        user_client(&env.gw, &env.dir, "sam").await,
    );
    let r = request(&alice, "rr", "1h", "migration").await;
    let id = &r["id"];
    let after = vote(&lee, id, "approve", "").await.unwrap();
    assert_eq!(
        (after["status"].clone(), after["approvals"].clone()),
        (json!("pending"), json!(1))
    );
    assert_eq!(
        vote(&lee, id, "approve", "").await,
        Err(409),
        "one vote each"
    );
    let after = vote(&leo, id, "approve", "").await.unwrap();
    assert_eq!(
        after["status"], "pending",
        "two approvals, but security has not approved"
    );
    assert_eq!(after["groups_missing"], json!(["security"]));
    let after = vote(&sam, id, "approve", "").await.unwrap();
    assert_eq!(after["status"], "approved");
    let (ok, _, err) = psql(&env.conn_str("alice", PASSWORD, "rr"), &["-c", "select 1"]).await;
    assert!(ok, "{err}");
    // Nobody decides: expired.
    let r = request(&alice, "rr", "1h", "later").await;
    let path = format!("/api/access-requests/{}", r["id"].as_str().unwrap());
    let expired = until(6, async || {
        alice.get(&path).await.unwrap()["status"] == "expired"
    })
    .await;
    assert!(expired);
    env.gw.shutdown().await;
}

/// A local HTTP server that records each request's headers and body, answering 500 to
/// the first `fail` and 200 after.
async fn webhook_sink_failing(fail: usize) -> (u16, Arc<Mutex<Vec<(String, String)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&got);
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() < len {
                        continue;
                    }
                    let n = {
                        let mut seen = seen.lock().unwrap();
                        seen.push((head.to_owned(), body.to_owned()));
                        seen.len()
                    };
                    let answer: &[u8] = if n <= fail {
                        b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n"
                    } else {
                        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
                    };
                    let _ = s.write_all(answer).await;
                    return;
                }
            });
        }
    });
    (port, got)
}

async fn webhook_sink() -> (u16, Arc<Mutex<Vec<(String, String)>>>) {
    webhook_sink_failing(0).await
}

#[tokio::test]
async fn a_webhook_that_fails_is_retried() {
    let (hook, got) = webhook_sink_failing(2).await;
    let config = format!("[[notify.webhooks]]\nurl = \"http://127.0.0.1:{hook}/x\"\n{JIT}");
    let env = PgEnv::new(&people(&config)).await;
    let alice = user_client(&env.gw, &env.dir, "alice").await;
    request(&alice, "rr", "1h", "retry me").await;
    let three = until(10, async || got.lock().unwrap().len() >= 3).await;
    assert!(three, "three attempts: {:?}", got.lock().unwrap());
    let bodies: Vec<String> = got.lock().unwrap().iter().map(|(_, b)| b.clone()).collect();
    assert_eq!(bodies[0], bodies[2], "the same delivery again");
    assert!(bodies[0].contains("access_request.created"));
    env.gw.shutdown().await;
}

#[tokio::test]
async fn commands_wait_for_approval_run_once_and_webhooks_are_signed() {
    let (hook, got) = webhook_sink().await;
    let runbooks = tempfile::tempdir().unwrap();
    let file = runbooks.path().join("touch.sql");
    std::fs::write(&file, "-- description = \"Insert one row\"\n-- resource_roles = [\"rr-ops\"]\n-- [[params]]\n-- name = \"v\"\n-- type = \"integer\"\ninsert into t values (:v);\n").unwrap();
    let rule = format!(
        "[runbooks]\ndir = \"{}\"\n[[notify.webhooks]]\nurl = \"http://127.0.0.1:{hook}/hook\"\nsecret = \"hook-secret\"\n\
         [[access_request_rules]]\nname = \"cmd\"\nresource_roles = [\"rr-ops\", \"rr\"]\nkind = \"command\"\napprover_groups = [\"leads\"]\nreason_required = false\n",
        runbooks.path().display()
    );
    let env = PgEnv::new(&people(&rule)).await;
    let (ok, _, err) = psql(&env.conn_str("alice", PASSWORD, "rr"), &["-c", "select 1"]).await;
    assert!(
        !ok && err.contains("runs approved commands only: portcullis exec rr"),
        "{err}"
    );
    let alice = user_client(&env.gw, &env.dir, "alice").await;
    let lee = user_client(&env.gw, &env.dir, "lee").await;
    let admin = common::client(&env.gw, Some(&env.dir.bootstrap_token()));
    // Admins run commands without a rule governing them? No: the rule governs everyone
    // who passes access control — so set up the table through a held command as well.
    let held = alice
        .post(
            "/api/resource-roles/rr-ops/exec",
            json!({"statement": "create table t (v int)", "reason": "setup"}),
        )
        .await
        .unwrap();
    assert_eq!(held["status"], "pending", "{held}");
    assert_eq!(
        held["work"],
        json!({"type": "statement", "statement": "create table t (v int)", "params": []})
    );
    let id = held["id"].clone();
    assert_eq!(status(run(&alice, &id).await), 409, "not approved yet");
    vote(&lee, &id, "approve", "ok").await.unwrap();
    assert_eq!(
        status(run(&lee, &id).await),
        403,
        "only the requester runs it"
    );
    let done = run(&alice, &id).await.unwrap();
    assert!(done["failed"].is_null(), "{done}");
    assert_eq!(status(run(&alice, &id).await), 409, "at most once");
    // A runbook run is held with its file's hash and parameters.
    let held = alice
        .post(
            "/api/runbooks/touch/run",
            json!({"resource_role": "rr-ops", "params": {"v": 7}}),
        )
        .await
        .unwrap();
    assert_eq!(held["work"]["type"], "runbook");
    vote(&lee, &held["id"], "approve", "").await.unwrap();
    // The file changes after the approval: the run is refused.
    std::fs::write(&file, "-- description = \"Insert one row, twice\"\n-- resource_roles = [\"rr-ops\"]\n-- [[params]]\n-- name = \"v\"\n-- type = \"integer\"\ninsert into t values (:v);\ninsert into t values (:v);\n").unwrap();
    admin.post("/api/config/reload", json!({})).await.unwrap();
    let refused = run(&alice, &held["id"]).await.unwrap_err().to_string();
    assert!(
        refused.contains("changed since it was approved"),
        "{refused}"
    );
    let again = alice
        .post(
            "/api/runbooks/touch/run",
            json!({"resource_role": "rr-ops", "params": {"v": 8}}),
        )
        .await
        .unwrap();
    vote(&lee, &again["id"], "approve", "").await.unwrap();
    let done = run(&alice, &again["id"]).await.unwrap();
    assert!(done["failed"].is_null(), "{done}");
    let count = alice
        .post(
            "/api/resource-roles/rr-ops/exec",
            json!({"statement": "select count(*) from t"}),
        )
        .await
        .unwrap();
    assert_eq!(count["status"], "pending", "every command waits, reads too");

    // The webhook got each change, signed.
    assert!(
        until(5, async || got.lock().unwrap().len() >= 9).await,
        "{:?}",
        got.lock().unwrap().len()
    );
    let deliveries = got.lock().unwrap().clone();
    for (head, body) in &deliveries {
        let sig = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("x-portcullis-signature:")
                    .map(|v| v.trim().to_owned())
            })
            .expect("signed");
        assert_eq!(
            sig,
            portcullis::notify::signature(b"hook-secret", body.as_bytes())
        );
        let v: Value = serde_json::from_str(body).unwrap();
        assert!(
            v["event"].as_str().unwrap().starts_with("access_request."),
            "{v}"
        );
    }
    let events: Vec<String> = deliveries
        .iter()
        .map(|(_, b)| {
            serde_json::from_str::<Value>(b).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for want in [
        "access_request.created",
        "access_request.approved",
        "access_request.executed",
    ] {
        assert!(events.iter().any(|e| e == want), "{want} in {events:?}");
    }
    let log = env.events().await;
    let executed = log
        .iter()
        .find(|e| e["kind"] == "access_request" && e["state"] == "executed")
        .unwrap();
    assert_eq!(executed["requester"], "alice");
    let report = admin.get("/api/audit/verify").await.unwrap();
    assert_eq!(report["ok"], true, "{report}");
    env.gw.shutdown().await;
}

#[tokio::test]
async fn the_cli_asks_lists_approves_and_runs() {
    let env = PgEnv::new(&people(&format!(
        "{JIT}[[access_request_rules]]\nname = \"ops-cmd\"\nresource_roles = [\"rr-ops\"]\nkind = \"command\"\napprover_groups = [\"leads\"]\n"
    )))
    .await;
    let admin = common::client(&env.gw, Some(&env.dir.bootstrap_token()));
    let token = |user: &'static str| {
        let admin = &admin;
        async move {
            let made = admin
                .post("/api/tokens", json!({"user": user}))
                .await
                .unwrap();
            made["token"].as_str().unwrap().to_owned()
        }
    };
    let (alice, lee) = (token("alice").await, token("lee").await);
    let server = format!("http://{}", env.gw.admin_addr.unwrap());
    let as_user = |t: &str| {
        [
            ("PORTCULLIS_SERVER", server.clone()),
            ("PORTCULLIS_TOKEN", t.to_owned()),
        ]
    };
    let cli = async |t: &str, args: &[&str]| {
        let env = as_user(t);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        common::clients::portcullis(args, &env, None).await
    };
    let (code, out, err) = cli(
        &alice,
        &[
            "request", "rr", "--for", "30m", "--reason", "deploy", "--output", "json",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let id = serde_json::from_str::<Value>(&out).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, out, _) = cli(&lee, &["requests", "--pending"]).await;
    assert!(
        out.contains(&id) && out.contains("alice") && out.contains("0/1") && out.contains("30m"),
        "{out}"
    );
    let (code, _, err) = cli(&alice, &["request", "approve", &id]).await;
    assert_eq!(code, 1);
    assert!(err.contains("nobody approves their own request"), "{err}");
    let (code, out, _) = cli(&lee, &["request", "approve", &id, "--comment", "ok"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("approved"), "{out}");
    let (ok, _, err) = psql(&env.conn_str("alice", PASSWORD, "rr"), &["-c", "select 1"]).await;
    assert!(ok, "{err}");
    // A held command: the CLI says so and how to run it once approved.
    let (code, out, err) = cli(
        &alice,
        &[
            "exec",
            "rr-ops",
            "-e",
            "select 41 + 1 as answer",
            "--reason",
            "check",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("held for approval under rule `ops-cmd`"),
        "{err}"
    );
    let held = out.trim().to_owned();
    cli(&lee, &["request", "approve", &held]).await;
    let (code, out, err) = cli(&alice, &["request", "run", &held]).await;
    assert_eq!((code, out.as_str()), (0, "answer\n42\n(1 row)\n"), "{err}");
    let (_, out, _) = cli(&alice, &["requests", "--mine"]).await;
    assert!(
        out.contains("executed") && out.contains("approved"),
        "{out}"
    );
    let (_, out, _) = cli(&alice, &["request", "rules"]).await;
    assert!(
        out.contains("rr-jit") && out.contains("1h") && out.contains("ops-cmd"),
        "{out}"
    );
    env.gw.shutdown().await;
}
