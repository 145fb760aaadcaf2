//! Changes take effect live: reloads (SIGHUP, API) with good and broken files, and two
//! instances sharing one PostgreSQL store seeing each other's changes within a second.

use crate::common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Dir, client, start, status};
use serde_json::json;

const GROUP_A: &str = "[[groups]]\nname = \"team-a\"\n";
const GROUP_B: &str = "[[groups]]\nname = \"team-b\"\n";

#[tokio::test]
async fn api_reload_with_a_broken_file_keeps_the_old_config() {
    let dir = Dir::new();
    dir.write_config(None, GROUP_A);
    let gw = start(&dir).await;
    let admin = client(&gw, Some(&dir.bootstrap_token()));
    std::fs::write(dir.config_path(), "[listen]\nadmin = \"nowhere\"\n").unwrap();
    let err = admin
        .post("/api/config/reload", json!({}))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("422") && err.contains("listen.admin"),
        "{err}"
    );
    assert_eq!(status(admin.get("/api/groups/team-a").await), 200);

    dir.write_config(None, GROUP_B);
    admin.post("/api/config/reload", json!({})).await.unwrap();
    assert_eq!(status(admin.get("/api/groups/team-b").await), 200);
    assert_eq!(
        status(admin.get("/api/groups/team-a").await),
        404,
        "undeclared file objects go"
    );
    gw.shutdown().await;
}

async fn wait_for(mut probe: impl AsyncFnMut() -> bool, limit: Duration) -> Duration {
    let start = Instant::now();
    while !probe().await {
        assert!(
            start.elapsed() < limit,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

/// A fresh upstream role and database on the local PostgreSQL, and the common people and
/// resource roles declared on it (for a config).
async fn upstream() -> (tokio_postgres::Client, String) {
    let (role, db) = (common::unique("r"), common::unique("d"));
    let admin_pg = common::pg_admin().await;
    let create = format!("CREATE ROLE {role} LOGIN PASSWORD 'up-pw'");
    admin_pg.batch_execute(&create).await.unwrap();
    let create = format!("CREATE DATABASE {db} OWNER {role}");
    admin_pg.batch_execute(&create).await.unwrap();
    let declared = common::declarations(
        "pg",
        "postgres",
        "127.0.0.1:5432",
        "disable",
        &db,
        &role,
        "up-pw",
    );
    (admin_pg, declared)
}

/// Two instances on the store at `url` with one store key, each from `config` with `edit`
/// applied to the written file; started one after the other.
async fn pair(
    url: &str,
    config: &str,
    edit: impl Fn(&str) -> String,
) -> (Dir, portcullis::app::Running, Dir, portcullis::app::Running) {
    let (d1, d2) = (Dir::new(), Dir::new());
    let write = |d: &Dir| {
        let path = d.write_config(Some(url), config);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, edit(&text)).unwrap();
    };
    write(&d1);
    let one = start(&d1).await;
    std::fs::create_dir_all(d2.path().join("data")).unwrap();
    std::fs::copy(
        d1.path().join("data/store.key"),
        d2.path().join("data/store.key"),
    )
    .unwrap();
    write(&d2);
    let two = start(&d2).await;
    (d1, one, d2, two)
}

#[tokio::test]
async fn sighup_reloads_and_a_broken_file_keeps_serving_the_old_config() {
    let dir = Dir::new();
    let path = dir.write_config(None, GROUP_A);
    // A fixed free port: the child must be reachable at a known address.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "admin = \"127.0.0.1:0\"",
        &format!("admin = \"127.0.0.1:{port}\""),
    );
    std::fs::write(&path, &text).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["serve", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let token_file = dir.path().join("data/bootstrap-token");
    wait_for(async || token_file.exists(), Duration::from_secs(30)).await;
    let api = portcullis::cli::client::Client::new(&base, Some(dir.bootstrap_token()));
    wait_for(
        async || api.get("/api/groups/team-a").await.is_ok(),
        Duration::from_secs(30),
    )
    .await;

    let hup = || {
        let ok = Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    };
    std::fs::write(
        &path,
        format!("{text}\n[[users]]\nname = \"x\"\ngroups = [\"missing\"]\n"),
    )
    .unwrap();
    hup();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        api.get("/api/groups/team-a").await.is_ok(),
        "still serving the old config"
    );
    assert!(api.get("/api/users/x").await.is_err());

    std::fs::write(&path, text.replace("team-a", "team-c")).unwrap();
    hup();
    wait_for(
        async || api.get("/api/groups/team-c").await.is_ok(),
        Duration::from_secs(5),
    )
    .await;

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "clean exit on SIGTERM");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("config not reloaded") && log.contains("group `missing` is not declared"),
        "{log}"
    );
}

#[tokio::test]
async fn two_instances_sharing_a_postgres_store_see_each_others_changes_within_a_second() {
    let url = common::fresh_pg_database().await;
    let (d1, d2) = (Dir::new(), Dir::new());
    // Both instances must share the store key to read each other's sealed secrets.
    let key = "store.key";
    d1.write_config(Some(&url), "");
    let one = start(&d1).await;
    std::fs::create_dir_all(d2.path().join("data")).unwrap();
    std::fs::copy(
        d1.path().join("data").join(key),
        d2.path().join("data").join(key),
    )
    .unwrap();
    d2.write_config(Some(&url), "");
    let two = start(&d2).await;
    let token = d1.bootstrap_token();
    let (a, b) = (client(&one, Some(&token)), client(&two, Some(&token)));

    a.post("/api/groups", json!({"name": "eng"})).await.unwrap();
    a.post(
        "/api/users",
        json!({"name": "alice", "groups": ["eng"], "password": "alice-password"}),
    )
    .await
    .unwrap();
    let snap2 = two.control.clone();
    let took = wait_for(
        async || snap2.snapshot().users.contains_key("alice"),
        Duration::from_secs(1),
    )
    .await;
    eprintln!("instance two saw the new user after {took:?}");

    b.patch("/api/users/alice", json!({"status": "inactive"}))
        .await
        .unwrap();
    let snap1 = one.control.clone();
    wait_for(
        async || {
            snap1
                .snapshot()
                .users
                .get("alice")
                .is_some_and(|u| u.status == portcullis::model::Status::Inactive)
        },
        Duration::from_secs(1),
    )
    .await;
    one.shutdown().await;
    two.shutdown().await;
}

/// A revoke on one instance ends a live session on another through the store's change
/// notification, with the poll (30 s here) far behind. `REVOKES=50` measures p50/p99.
#[tokio::test]
async fn a_revoke_on_one_instance_ends_a_live_session_on_another() {
    let url = common::fresh_pg_database().await;
    let (admin_pg, declared) = upstream().await;
    let slow_poll = |t: &str| t.replace("poll_interval = \"100ms\"", "poll_interval = \"30s\"");
    let (d1, one, _d2, two) = pair(&url, &declared, slow_poll).await;
    let a = client(&one, Some(&d1.bootstrap_token()));
    a.post(
        "/api/users",
        json!({"name": "ann", "groups": ["eng"], "password": "ann-password"}),
    )
    .await
    .unwrap();
    let port = two.postgres_addr.unwrap().port();
    let conn = format!(
        "host=127.0.0.1 port={port} user=ann password=ann-password dbname=rr sslmode=disable"
    );
    let n: usize = std::env::var("REVOKES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut took = Vec::new();
    for _ in 0..n {
        let snap = two.control.clone();
        wait_for(
            async || {
                snap.snapshot()
                    .users
                    .get("ann")
                    .is_some_and(|u| u.status == portcullis::model::Status::Active)
            },
            Duration::from_secs(5),
        )
        .await;
        let (c, task) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
            .await
            .unwrap();
        let task = tokio::spawn(task);
        c.simple_query("select 1").await.unwrap();
        // From the moment the admin asks: the API's write, the notification, the other
        // instance's refresh and decision, the session's end.
        let revoked = Instant::now();
        a.patch("/api/users/ann", json!({"status": "inactive"}))
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the session on the other instance ended well before the 30 s poll")
            .unwrap()
            .ok();
        took.push(revoked.elapsed());
        a.patch("/api/users/ann", json!({"status": "active"}))
            .await
            .unwrap();
    }
    took.sort();
    let at = |q: f64| took[((took.len() as f64 * q).ceil() as usize).clamp(1, took.len()) - 1];
    eprintln!(
        "revoke on one instance to session end on another, {n} revokes: p50 {:?}, p99 {:?}, max {:?}",
        at(0.5),
        at(0.99),
        took[took.len() - 1]
    );
    // The listening connections are cut: they are made again, and a change then still
    // arrives long before the poll.
    let store_db = url.rsplit('/').next().unwrap();
    let cut = format!(
        "select count(pg_terminate_backend(pid)) from pg_stat_activity where datname = '{store_db}' and query ilike 'listen%'"
    );
    let rows = admin_pg.query(cut.as_str(), &[]).await.unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 2, "each instance listens");
    let snap = two.control.clone();
    wait_for(
        async || {
            snap.snapshot()
                .users
                .get("ann")
                .is_some_and(|u| u.status == portcullis::model::Status::Active)
        },
        Duration::from_secs(5),
    )
    .await;
    let (c, task) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(task);
    c.simple_query("select 1").await.unwrap();
    a.patch("/api/users/ann", json!({"status": "inactive"}))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("ended after the listener came back")
        .unwrap()
        .ok();
    one.shutdown().await;
    two.shutdown().await;
}

/// `DELETE /api/sessions/{id}` on one instance ends a session another holds, answering
/// once it has ended; one whose instance does not answer is said so.
#[tokio::test]
async fn a_session_is_ended_from_any_instance() {
    let url = common::fresh_pg_database().await;
    let (_, declared) = upstream().await;
    let (d1, one, _d2, two) = pair(&url, &declared, |t| t.to_owned()).await;
    let a = client(&one, Some(&d1.bootstrap_token()));
    let port = two.postgres_addr.unwrap().port();
    let conn = format!(
        "host=127.0.0.1 port={port} user=alice password=alice-password dbname=rr sslmode=disable"
    );
    let (c, task) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(task);
    c.simple_query("select 1").await.unwrap();
    let id = two.gateway.registry.list()[0].id.clone();
    let ids = {
        let mut listed = Vec::new();
        let until = Instant::now() + Duration::from_secs(5);
        while listed.is_empty() && Instant::now() < until {
            let live = a.get("/api/sessions?status=live").await.unwrap();
            listed = live.as_array().unwrap().clone();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        listed
    };
    assert_eq!(
        ids[0]["id"],
        id.as_str(),
        "instance one lists the other's session"
    );
    a.delete(&format!("/api/sessions/{id}")).await.unwrap();
    assert!(
        two.gateway.registry.get(&id).is_none(),
        "ended before the answer"
    );
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("the client's connection ends")
        .unwrap()
        .ok();
    let again = a.delete(&format!("/api/sessions/{id}")).await;
    assert_eq!(status(again), 404, "no longer live");
    // A live session of an instance that does not answer.
    let mut ghost = one.control.store.get_session(&id).await.unwrap().unwrap();
    ghost.id = "ghost-session".into();
    ghost.instance = "ghost-instance".into();
    ghost.ended_at = None;
    ghost.ended_by = None;
    let write = portcullis::store::IndexWrite::Started(Box::new(ghost));
    one.control.store.index_writes(&[write]).await.unwrap();
    let err = a
        .delete("/api/sessions/ghost-session")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("503") && err.contains("ghost-instance") && err.contains("did not answer"),
        "{err}"
    );
    one.shutdown().await;
    two.shutdown().await;
}

/// Two instances starting together on an empty PostgreSQL store: both start, the
/// migrations run once, and exactly one makes the first admin and its bootstrap token.
#[tokio::test]
async fn instances_starting_together_make_one_first_admin() {
    let url = common::fresh_pg_database().await;
    let (d1, d2) = (Dir::new(), Dir::new());
    // One store key for both, as a deployment shares it.
    for d in [&d1, &d2] {
        std::fs::create_dir_all(d.path().join("data")).unwrap();
        std::fs::write(
            d.path().join("data/store.key"),
            "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n",
        )
        .unwrap();
        d.write_config(Some(&url), GROUP_A);
    }
    let (one, two) = tokio::join!(start(&d1), start(&d2));
    let tokens: Vec<bool> = [&d1, &d2]
        .iter()
        .map(|d| d.path().join("data/bootstrap-token").exists())
        .collect();
    assert_eq!(
        tokens.iter().filter(|t| **t).count(),
        1,
        "one bootstrap token: {tokens:?}"
    );
    let users = one.control.store.list_users().await.unwrap();
    let admins: Vec<_> = users.iter().filter(|u| u.user.name == "admin").collect();
    assert_eq!(admins.len(), 1);
    let tokens = one.control.store.list_tokens(None).await.unwrap();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    one.shutdown().await;
    two.shutdown().await;
}

/// Failed logins on several instances count against one quota, and a lockout made or
/// cleared on one holds on all (shared through the store, each second).
#[tokio::test]
async fn failed_logins_and_lockouts_are_shared_by_instances() {
    let url = common::fresh_pg_database().await;
    let (_, declared) = upstream().await;
    let config = format!(
        "[limits]\nfailed_logins_per_user = 3\nfailed_logins_per_address = 1000\n{declared}"
    );
    let (d1, one, _d2, two) = pair(&url, &config, |t| t.to_owned()).await;
    let ports = [
        one.postgres_addr.unwrap().port(),
        two.postgres_addr.unwrap().port(),
    ];
    let login = |port: u16, password: &'static str| async move {
        let conn = format!(
            "host=127.0.0.1 port={port} user=alice password={password} dbname=rr sslmode=disable"
        );
        tokio_postgres::connect(&conn, tokio_postgres::NoTls)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    // Two failures on each instance: within each one's quota of 3, over it together.
    for port in ports.iter().chain(ports.iter()) {
        assert!(login(*port, "wrong").await.is_err());
    }
    let locked_everywhere = async || {
        let mut all = true;
        for port in ports {
            all &= login(port, "alice-password").await.is_err();
        }
        all
    };
    let took = wait_for(locked_everywhere, Duration::from_secs(5)).await;
    eprintln!("locked out on both instances after {took:?}");
    assert_eq!(one.gateway.lockout.list().len(), 1);
    // Cleared on one, lifted on both.
    let a = client(&one, Some(&d1.bootstrap_token()));
    a.delete("/api/lockouts/user/alice").await.unwrap();
    let open_everywhere = async || {
        let mut all = true;
        for port in ports {
            all &= login(port, "alice-password").await.is_ok();
        }
        all
    };
    wait_for(open_everywhere, Duration::from_secs(5)).await;
    one.shutdown().await;
    two.shutdown().await;
}

/// The store goes away: `/readyz` says so, live sessions go on, new logins follow the last
/// snapshot for `store.max_staleness` and are then refused; all comes back with the store.
#[tokio::test]
async fn without_its_store_an_instance_keeps_sessions_and_refuses_new_logins() {
    let url = common::fresh_pg_database().await;
    let store_db = url.rsplit('/').next().unwrap().to_owned();
    let (admin_pg, declared) = upstream().await;
    let d = Dir::new();
    let path = d.write_config(Some(&url), &declared);
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replace(
        "poll_interval = \"100ms\"",
        "poll_interval = \"100ms\"\nmax_staleness = \"2s\"",
    );
    std::fs::write(&path, text).unwrap();
    let gw = start(&d).await;
    let port = gw.postgres_addr.unwrap().port();
    let conn = format!(
        "host=127.0.0.1 port={port} user=alice password=alice-password dbname=rr sslmode=disable"
    );
    let login = || async {
        tokio_postgres::connect(&conn, tokio_postgres::NoTls)
            .await
            .map(|(c, task)| {
                tokio::spawn(task);
                c
            })
    };
    let live = login().await.unwrap();
    let ready = |gw: &portcullis::app::Running| {
        let addr = gw.admin_addr.unwrap();
        async move {
            let out = tokio::process::Command::new("curl")
                .args(["-s", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}"])
                .arg(format!("http://{addr}/readyz"))
                .output()
                .await
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    assert_eq!(ready(&gw).await, "200");
    // The store goes away.
    let cut = |allow: bool| format!("ALTER DATABASE {store_db} WITH ALLOW_CONNECTIONS {allow}");
    admin_pg.batch_execute(&cut(false)).await.unwrap();
    let kill = format!(
        "select pg_terminate_backend(pid) from pg_stat_activity where datname = '{store_db}'"
    );
    admin_pg.batch_execute(&kill).await.unwrap();
    wait_for(async || ready(&gw).await == "503", Duration::from_secs(10)).await;
    // Within max_staleness, logins still follow the last snapshot.
    let within = login().await;
    assert!(within.is_ok(), "{within:?}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let Err(err) = login().await else {
        panic!("refused past max_staleness");
    };
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "57P03", "{db}");
    assert!(db.message().contains("cannot reach its store"), "{db}");
    live.simple_query("select 1")
        .await
        .expect("the live session goes on");
    // The store comes back.
    admin_pg.batch_execute(&cut(true)).await.unwrap();
    wait_for(async || ready(&gw).await == "200", Duration::from_secs(10)).await;
    wait_for(async || login().await.is_ok(), Duration::from_secs(10)).await;
    gw.shutdown().await;
}

/// Every monitoring-log event names the instance that wrote it, and the session index
/// (and so `sessions`) too: the configured `instance`, or a readable default kept in the
/// data directory.
#[tokio::test]
async fn every_event_and_session_names_its_instance() {
    let env = common::pg::PgEnv::new("instance = \"gw-a\"\n").await;
    let c = env.alice().await;
    c.simple_query("select 1").await.unwrap();
    drop(c);
    let admin = client(&env.gw, Some(&env.dir.bootstrap_token()));
    let list = admin.get("/api/sessions").await.unwrap();
    assert_eq!(list[0]["instance"], "gw-a", "{list}");
    let events = env.events().await;
    assert!(events.len() > 3);
    for e in &events {
        assert_eq!(e["instance"], "gw-a", "{e}");
    }
    // Without one configured: the host name and a suffix, kept for the next start.
    let d = Dir::new();
    d.write_config(None, "");
    let gw = start(&d).await;
    let id = std::fs::read_to_string(d.path().join("data/instance-id")).unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert!(id.starts_with(host.trim()), "{id}");
    assert_eq!(&*gw.gateway.instance, id.trim());
    gw.shutdown().await;
}

/// The open sessions of an instance not seen for `store.instance_timeout` are ended by a
/// peer: one `session_ended` (in the peer's log, saying why) and the index closed.
#[tokio::test]
async fn a_peer_ends_the_sessions_of_a_silent_instance() {
    let env = common::pg::PgEnv::new("").await;
    let c = env.alice().await;
    c.simple_query("select 1").await.unwrap();
    drop(c);
    let url = common::fresh_pg_database().await;
    let d = Dir::new();
    d.write_config(Some(&url), "");
    let path = d.config_path();
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replace(
        "poll_interval = \"100ms\"",
        "poll_interval = \"100ms\"\ninstance_timeout = \"2s\"",
    );
    std::fs::write(&path, text).unwrap();
    let gw = start(&d).await;
    let store = &gw.control.store;
    // A session some other instance left open, and that instance last seen long ago.
    let mut s = env
        .gw
        .control
        .store
        .list_sessions(&Default::default())
        .await
        .unwrap()
        .remove(0);
    s.id = "left-open".into();
    s.instance = "gw-gone".into();
    s.ended_at = None;
    s.ended_by = None;
    let write = portcullis::store::IndexWrite::Started(Box::new(s));
    store.index_writes(&[write]).await.unwrap();
    store.instance_seen("gw-gone").await.unwrap();
    let ended = async || {
        store
            .get_session("left-open")
            .await
            .unwrap()
            .is_some_and(|r| r.ended_at.is_some())
    };
    let took = wait_for(ended, Duration::from_secs(10)).await;
    eprintln!("ended {took:?} after the silent instance's last sign");
    let r = store.get_session("left-open").await.unwrap().unwrap();
    assert_eq!(r.ended_by.as_deref(), Some("error"));
    assert!(r.error.as_deref().unwrap().contains("gw-gone"), "{r:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let events = common::pg::read_events(&d.path().join("audit"));
    let ends: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "session_ended" && e["session_id"] == "left-open")
        .collect();
    assert_eq!(ends.len(), 1, "exactly one session_ended");
    gw.shutdown().await;
}

/// The same across two gateway processes (`portcullis serve`): a user deactivated through
/// one's API has a live session through the other ended.
#[tokio::test]
async fn a_revoke_through_one_process_ends_a_session_in_another() {
    let url = common::fresh_pg_database().await;
    let (_, declared) = upstream().await;
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n";
    let mut children = Vec::new();
    let mut ports = Vec::new();
    let dirs = [Dir::new(), Dir::new()];
    for d in &dirs {
        let (pg, admin) = (free(), free());
        std::fs::create_dir_all(d.path().join("data")).unwrap();
        std::fs::write(d.path().join("data/store.key"), key).unwrap();
        let path = d.write_config(Some(&url), &declared);
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text
            .replace(
                "postgres = \"127.0.0.1:0\"",
                &format!("postgres = \"127.0.0.1:{pg}\""),
            )
            .replace(
                "admin = \"127.0.0.1:0\"",
                &format!("admin = \"127.0.0.1:{admin}\""),
            )
            .replace("poll_interval = \"100ms\"", "poll_interval = \"30s\"");
        std::fs::write(&path, text).unwrap();
        children.push(
            Command::new(env!("CARGO_BIN_EXE_portcullis"))
                .args(["serve", "--config"])
                .arg(&path)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        ports.push((pg, admin));
        // One after the other: the first makes the admin and its token.
        let until = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", admin)).is_err() {
            assert!(Instant::now() < until, "a gateway process did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let token = dirs[0].bootstrap_token();
    let api = portcullis::cli::client::Client::new(
        &format!("http://127.0.0.1:{}", ports[0].1),
        Some(token),
    );
    api.post(
        "/api/users",
        json!({"name": "ann", "groups": ["eng"], "password": "ann-password"}),
    )
    .await
    .unwrap();
    let conn = format!(
        "host=127.0.0.1 port={} user=ann password=ann-password dbname=rr sslmode=disable",
        ports[1].0
    );
    let mut session = None;
    let until = Instant::now() + Duration::from_secs(5);
    while session.is_none() {
        if let Ok((c, task)) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await {
            session = Some((c, tokio::spawn(task)));
        }
        assert!(
            Instant::now() < until,
            "ann cannot log in through the second process"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (c, task) = session.unwrap();
    c.simple_query("select 1").await.unwrap();
    let asked = Instant::now();
    api.patch("/api/users/ann", json!({"status": "inactive"}))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("ended by the other process well before its 30 s poll")
        .unwrap()
        .ok();
    eprintln!(
        "revoke through one process ended the session in the other after {:?}",
        asked.elapsed()
    );
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
}
