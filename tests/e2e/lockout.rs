//! Brute force: failed logins count per user name and per client address across both
//! protocols and the admin API; past the quota the user (or address) is locked out with
//! the same message a wrong password gets, the log has the reason, and an admin can
//! clear it.

use crate::common;

use common::my::{MyEnv, PASSWORD};
use common::status;

async fn pg_login(env: &MyEnv, user: &str, password: &str) -> Result<(), String> {
    let port = env.gw.postgres_addr.unwrap().port();
    let conn = format!(
        "host=127.0.0.1 port={port} user={user} password={password} dbname=rr sslmode=disable"
    );
    match tokio_postgres::connect(&conn, tokio_postgres::NoTls).await {
        Ok(_) => Ok(()),
        Err(e) => Err(e
            .as_db_error()
            .map(|d| format!("{} {}", d.code().code(), d.message()))
            .unwrap_or_else(|| e.to_string())),
    }
}

#[tokio::test]
async fn repeated_failures_lock_the_user_out_on_both_protocols_until_cleared() {
    let env = MyEnv::new("[limits]\nfailed_logins_per_user = 4\n").await;
    let wrong_pg = pg_login(&env, "alice", "wrong").await.unwrap_err();
    assert!(wrong_pg.starts_with("28P01"), "{wrong_pg}");
    pg_login(&env, "alice", "wrong").await.unwrap_err();
    let (ok, _, wrong_my) = env
        .client("alice", "wrong", "rr", &["-e", "select 1"])
        .await;
    assert!(!ok && wrong_my.contains("1045"), "{wrong_my}");
    env.client("alice", "wrong", "rr", &["-e", "select 1"])
        .await;
    // The fifth failure within the minute locks alice out.
    pg_login(&env, "alice", "wrong").await.unwrap_err();

    // Now even the right password is refused, with the wrong-password message.
    let locked_pg = pg_login(&env, "alice", PASSWORD).await.unwrap_err();
    assert_eq!(locked_pg, wrong_pg, "a lockout looks like a wrong password");
    let (ok, _, locked_my) = env
        .client("alice", PASSWORD, "rr", &["-e", "select 1"])
        .await;
    assert!(!ok);
    assert_eq!(
        locked_my.lines().last(),
        wrong_my.lines().last(),
        "same MySQL error as a wrong password"
    );
    // Other users are not affected.
    let (ok, _, err) = env
        .client("erin", PASSWORD, "rr", &["-e", "select 1"])
        .await;
    assert!(ok, "{err}");

    let events = env.events().await;
    let locked = events
        .iter()
        .filter(|e| e["kind"] == "auth_failed" && e["user"] == "alice")
        .filter(|e| e["reason"].as_str().unwrap().contains("locked out"))
        .count();
    assert_eq!(locked, 2, "the log says why: {events:?}");

    let admin = common::client(&env.gw, Some(&env.dir.bootstrap_token()));
    let list = admin.get("/api/lockouts").await.unwrap();
    assert_eq!(list[0]["kind"], "user");
    assert_eq!(list[0]["subject"], "alice");
    assert!(list[0]["remaining_s"].as_u64().unwrap() > 200);
    admin.delete("/api/lockouts/user/alice").await.unwrap();
    assert_eq!(status(admin.delete("/api/lockouts/user/alice").await), 404);
    let (ok, _, err) = env
        .client("alice", PASSWORD, "rr", &["-e", "select 1"])
        .await;
    assert!(ok, "{err}");
    let changes = admin.get("/api/changes?limit=5").await.unwrap();
    assert!(
        changes
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["action"] == "lockout.clear" && c["object"] == "lockout/user/alice")
    );
}

#[tokio::test]
async fn an_address_probing_many_user_names_is_locked_out() {
    let env = MyEnv::new("[limits]\nfailed_logins_per_address = 5\n").await;
    for i in 0..6 {
        let user = format!("nobody{i}");
        let err = pg_login(&env, &user, "guess").await.unwrap_err();
        assert!(err.starts_with("28P01"), "{err}");
    }
    // The address is locked: a real user from it is refused too.
    let err = pg_login(&env, "alice", PASSWORD).await.unwrap_err();
    assert!(err.starts_with("28P01"), "{err}");
    let admin = common::client(&env.gw, Some(&env.dir.bootstrap_token()));
    // The admin API refuses calls from a locked address, even with a good token.
    assert_eq!(status(admin.get("/api/lockouts").await), 429);
}

#[tokio::test]
async fn bad_api_tokens_count_against_the_address() {
    let env = MyEnv::new("[limits]\nfailed_logins_per_address = 3\n").await;
    let stranger = common::client(&env.gw, Some("pcat_not-a-real-token"));
    for _ in 0..4 {
        assert_eq!(status(stranger.get("/api/me").await), 401);
    }
    assert_eq!(status(stranger.get("/api/me").await), 429);
    let events = env.events().await;
    let api_failures: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "auth_failed" && e["protocol"] == "http")
        .collect();
    assert_eq!(api_failures.len(), 5, "{api_failures:?}");
    assert!(
        api_failures[4]["reason"]
            .as_str()
            .unwrap()
            .contains("locked out")
    );
    assert!(
        !events
            .iter()
            .any(|e| e.to_string().contains("not-a-real-token"))
    );
}
