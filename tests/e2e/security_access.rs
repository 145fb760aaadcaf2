//! The adversarial review's findings about access decisions, tokens and exposure, each
//! against the real servers: a decision must hold.

use serde_json::json;

use crate::common;
use common::pg::{PASSWORD, PgEnv, psql};
use common::{client, status};

/// Finding 8: startup `options` go upstream only as the resource role allows, never
/// `role` / `session_authorization`, and `session_started` records what was forwarded.
#[tokio::test]
async fn startup_options_are_checked_and_recorded() {
    let env = PgEnv::new("").await;
    let base = env.conn_str("alice", PASSWORD, "rr");
    let (ok, _, err) = psql(
        &format!("{base} options='-c role=pg_read_server_files'"),
        &["-c", "select current_user"],
    )
    .await;
    assert!(!ok);
    assert!(
        err.contains("startup parameter \"role\" is not forwarded"),
        "{err}"
    );
    let (ok, out, err) = psql(
        &format!("{base} options='-c search_path=pg_catalog -c geqo=off'"),
        &["-c", "select 1"],
    )
    .await;
    assert!(!ok, "geqo is not on the default list: {out}");
    assert!(err.contains("\"geqo\""), "{err}");
    let (ok, out, err) = psql(
        &format!("{base} options='-c search_path=pg_catalog'"),
        &["-c", "show search_path"],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "pg_catalog");
    let events = env.events().await;
    let started = events
        .iter()
        .rfind(|e| e["kind"] == "session_started")
        .unwrap();
    assert_eq!(started["parameters"]["search_path"], "pg_catalog");
    assert_eq!(started["parameters"]["application_name"], "psql");
    let denied: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "access_denied")
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert!(denied.iter().any(|r| r.contains("`role`")), "{denied:?}");
    // A resource role may forward more; never `role`.
    let admin = client(&env.gw, Some(&env.dir.bootstrap_token()));
    let role = json!({"name": "rr-geqo", "resource": "pg", "database": env.db, "user": env.role,
        "password": env.upstream_password, "allowed_groups": ["eng"],
        "forward_options": ["application_name", "client_encoding", "geqo"]});
    admin.post("/api/resource-roles", role).await.unwrap();
    let (ok, out, err) = psql(
        &format!(
            "{} options='-c geqo=off'",
            env.conn_str("alice", PASSWORD, "rr-geqo")
        ),
        &["-c", "show geqo"],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "off");
    let bad = json!({"name": "rr-role", "resource": "pg", "database": env.db, "user": env.role,
        "forward_options": ["ROLE"]});
    assert_eq!(status(admin.post("/api/resource-roles", bad).await), 422);
    env.gw.shutdown().await;
}

/// Finding 9: a token cannot make a token that outlives it, cannot change the account's
/// password without the current one, and the bootstrap token expires.
#[tokio::test]
async fn tokens_cannot_outlive_their_parent_or_change_the_password() {
    let dir = common::Dir::new();
    dir.write_config(None, &common::people(PASSWORD));
    let gw = common::start(&dir).await;
    let admin = client(&gw, Some(&dir.bootstrap_token()));
    let tokens = admin.get("/api/tokens?user=admin").await.unwrap();
    let boot = tokens[0]["expires_at"]
        .as_i64()
        .expect("the bootstrap token expires");
    let in_a_day = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 24 * 3600;
    assert!((boot - in_a_day).abs() < 60, "{boot} vs {in_a_day}");
    let short = admin
        .post("/api/tokens", json!({"user": "alice", "expires": "1h"}))
        .await
        .unwrap();
    let alice = client(&gw, short["token"].as_str());
    // No expiry asked: the parent's; a later one: refused; an earlier one: fine.
    let child = alice.post("/api/tokens", json!({})).await.unwrap();
    assert_eq!(child["expires_at"], short["expires_at"]);
    assert_eq!(
        status(alice.post("/api/tokens", json!({"expires": "2h"})).await),
        422
    );
    assert_eq!(
        status(alice.post("/api/tokens", json!({"expires": "30m"})).await),
        200
    );
    // The password: not with the token alone.
    let change = json!({"password": "a-new-password-1"});
    assert_eq!(status(alice.patch("/api/users/alice", change).await), 403);
    let wrong = json!({"password": "a-new-password-1", "current_password": "nope-nope"});
    assert_eq!(status(alice.patch("/api/users/alice", wrong).await), 403);
    let right = json!({"password": "a-new-password-1", "current_password": PASSWORD});
    // alice is declared in the file: the API refuses to change her (409), after the
    // current password was checked.
    assert_eq!(status(alice.patch("/api/users/alice", right).await), 409);
    gw.shutdown().await;
}
