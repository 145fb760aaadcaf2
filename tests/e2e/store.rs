//! The same store suite on the embedded SQLite and on PostgreSQL (a fresh database per
//! run), through the one code path.

use crate::common;

use portcullis::model::{
    AccessModes, Protocol, Resource, ResourceRole, Role, Status, TlsMode, User,
};
use portcullis::seal::Sealer;
use portcullis::store::{
    IndexWrite, ResourceRecord, ResourceRoleRecord, SessionEnd, SessionRecord, Store, StoreError,
    UserRecord,
};

async fn sqlite() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/s.db", dir.path().display());
    (
        Store::open(&url, Sealer::from_key(&[1; 32])).await.unwrap(),
        dir,
    )
}

async fn postgres() -> (Store, ()) {
    let url = common::fresh_pg_database().await;
    (
        Store::open(&url, Sealer::from_key(&[1; 32])).await.unwrap(),
        (),
    )
}

fn user(name: &str, groups: &[&str]) -> UserRecord {
    UserRecord {
        user: User {
            name: name.into(),
            email: format!("{name}@example.com"),
            display_name: name.to_uppercase(),
            status: Status::Active,
            role: Role::Standard,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        },
        managed: false,
    }
}

fn role(name: &str, secret: Option<&str>, groups: &[&str]) -> ResourceRoleRecord {
    ResourceRoleRecord {
        role: ResourceRole {
            name: name.into(),
            resource: "db".into(),
            database: "orders".into(),
            user: "orders_ro".into(),
            allowed_groups: groups.iter().map(|g| g.to_string()).collect(),
            access_modes: AccessModes::default(),
            forward_options: None,
        },
        secret: secret.map(str::to_owned),
        managed: false,
    }
}

async fn users_groups_and_verifiers(store: Store) {
    let r0 = store.revision().await.unwrap();
    store.put_group("eng", false, false).await.unwrap();
    store.put_group("ops", false, false).await.unwrap();
    assert!(matches!(
        store.put_group("eng", false, false).await,
        Err(StoreError::Conflict(_))
    ));
    store
        .create_user(&user("alice", &["eng", "ops"]), Some("pw-alice-1"))
        .await
        .unwrap();
    assert!(matches!(
        store.create_user(&user("alice", &[]), None).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.create_user(&user("bob", &["nope"]), None).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(store.revision().await.unwrap() > r0);

    let alice = store.get_user("alice").await.unwrap().unwrap();
    assert_eq!(alice.groups, ["eng", "ops"]);
    assert!(alice.has_password);
    let snap = store.load_snapshot().await.unwrap();
    let v = &snap.users["alice"].verifiers;
    assert!(
        v.scram
            .as_deref()
            .unwrap()
            .starts_with("SCRAM-SHA-256$4096:")
    );
    assert_eq!(
        v.mysql_native.as_deref().unwrap(),
        portcullis::auth::mysql_native_verifier("pw-alice-1")
    );
    assert_eq!(
        v.mysql_sha2.as_deref().unwrap(),
        portcullis::auth::mysql_sha2_verifier("pw-alice-1")
    );

    let mut changed = user("alice", &["ops"]);
    changed.user.status = Status::Inactive;
    store.put_user(&changed, None).await.unwrap();
    let alice = store.get_user("alice").await.unwrap().unwrap();
    assert_eq!(
        (alice.status, alice.groups.clone()),
        (Status::Inactive, vec!["ops".to_string()])
    );
    assert!(
        alice.has_password,
        "an update without a password keeps the verifiers"
    );

    store.delete_group("ops").await.unwrap();
    assert!(
        store
            .get_user("alice")
            .await
            .unwrap()
            .unwrap()
            .groups
            .is_empty()
    );
    store.delete_user("alice").await.unwrap();
    assert!(store.get_user("alice").await.unwrap().is_none());
    assert!(matches!(
        store.delete_user("alice").await,
        Err(StoreError::NotFound(_))
    ));
}

async fn resources_roles_and_grants(store: Store) {
    store.put_group("eng", false, false).await.unwrap();
    let db = ResourceRecord {
        resource: Resource {
            name: "db".into(),
            protocol: Protocol::Postgres,
            address: "127.0.0.1:5432".into(),
            tls: TlsMode::Require,
        },
        managed: false,
    };
    store.put_resource(&db, false).await.unwrap();
    assert!(matches!(
        store
            .put_resource_role(
                &{
                    let mut r = role("x", None, &[]);
                    r.role.resource = "missing".into();
                    r
                },
                false
            )
            .await,
        Err(StoreError::Invalid(_))
    ));
    store
        .put_resource_role(
            &role("orders-ro", Some("up-secret"), &["eng", "eng"]),
            false,
        )
        .await
        .unwrap();
    let snap = store.load_snapshot().await.unwrap();
    let rr = &snap.resource_roles["orders-ro"];
    assert_eq!(rr.secret.as_ref().unwrap().expose(), "up-secret");
    assert_eq!(rr.allowed_groups, ["eng"]);
    assert_eq!(snap.resources["db"].tls, TlsMode::Require);

    // An update without a secret keeps the stored one.
    store
        .put_resource_role(&role("orders-ro", None, &[]), true)
        .await
        .unwrap();
    let snap = store.load_snapshot().await.unwrap();
    assert_eq!(
        snap.resource_roles["orders-ro"]
            .secret
            .as_ref()
            .unwrap()
            .expose(),
        "up-secret"
    );
    assert!(snap.resource_roles["orders-ro"].allowed_groups.is_empty());

    assert!(matches!(
        store.delete_resource("db").await,
        Err(StoreError::Conflict(_))
    ));
    store.delete_resource_role("orders-ro").await.unwrap();
    store.delete_resource("db").await.unwrap();
    assert!(store.list_resources().await.unwrap().is_empty());
}

async fn tokens_and_changes(store: Store) {
    store.create_user(&user("alice", &[]), None).await.unwrap();
    let (meta, value) = store
        .create_token("alice", "laptop", Some(4_000_000_000))
        .await
        .unwrap();
    assert!(value.starts_with("pcat_"));
    let snap = store.load_snapshot().await.unwrap();
    let t = &snap.tokens[&portcullis::auth::token_hash(&value)];
    assert_eq!(
        (t.user.as_str(), t.id.as_str()),
        ("alice", meta.id.as_str())
    );
    store.touch_token(&meta.id).await.unwrap();
    let list = store.list_tokens(Some("alice")).await.unwrap();
    assert!(list[0].last_used_at.is_some());
    assert!(store.list_tokens(Some("bob")).await.unwrap().is_empty());
    assert!(matches!(
        store.create_token("bob", "", None).await,
        Err(StoreError::NotFound(_))
    ));
    store.delete_token(&meta.id).await.unwrap();
    assert!(store.load_snapshot().await.unwrap().tokens.is_empty());

    let change = portcullis::store::ChangeRecord {
        id: "c1".into(),
        ts: 5,
        ts_us: 0,
        actor: "admin".into(),
        action: "user.update".into(),
        object: "user/alice".into(),
        before: Some(serde_json::json!({"status": "active"})),
        after: Some(serde_json::json!({"status": "inactive"})),
    };
    store.record_change(&change).await.unwrap();
    assert_eq!(store.list_changes(10).await.unwrap(), vec![change]);
}

fn session(id: &str) -> SessionRecord {
    SessionRecord {
        id: id.into(),
        user: "alice".into(),
        resource_role: "pg-ro".into(),
        resource: "pg".into(),
        protocol: "postgres".into(),
        mode: "native".into(),
        client_addr: "127.0.0.1:5000".into(),
        application_name: "psql".into(),
        started_at: 100,
        ended_at: None,
        statements: 0,
        bytes_in: 0,
        bytes_out: 0,
        ended_by: None,
        error: None,
        instance: "i1".into(),
    }
}

fn end(id: &str, statements: i64) -> SessionEnd {
    SessionEnd {
        id: id.into(),
        ended_at: 110,
        statements,
        bytes_in: 7,
        bytes_out: 9,
        ended_by: "client".into(),
        error: (statements == 0).then(|| "no statements".into()),
        application_name: Some("renamed".into()),
    }
}

/// Index writes in bursts: a session started and ended in one burst is one row written
/// whole, an end for an earlier burst's session updates its row (both with the
/// application name the client set), and a burst larger than one `INSERT` holds is split.
async fn session_index_bursts(store: Store) {
    store
        .index_writes(&[IndexWrite::Started(Box::new(session("a")))])
        .await
        .unwrap();
    let mut burst = vec![
        IndexWrite::Started(Box::new(session("b"))),
        IndexWrite::Ended(end("a", 3)),
        IndexWrite::Started(Box::new(session("c"))),
        IndexWrite::Ended(end("c", 0)),
    ];
    burst.extend((0..150).map(|i| IndexWrite::Started(Box::new(session(&format!("m{i:03}"))))));
    store.index_writes(&burst).await.unwrap();

    let a = store.get_session("a").await.unwrap().unwrap();
    assert_eq!(
        (a.ended_at, a.statements, a.bytes_in, a.bytes_out),
        (Some(110), 3, 7, 9)
    );
    assert_eq!((a.ended_by.as_deref(), a.error), (Some("client"), None));
    assert_eq!(
        a.application_name, "renamed",
        "the name the client set, at its end"
    );
    let b = store.get_session("b").await.unwrap().unwrap();
    assert_eq!(b, session("b"));
    let c = store.get_session("c").await.unwrap().unwrap();
    assert_eq!(c.ended_at, Some(110));
    assert_eq!(c.error.as_deref(), Some("no statements"));
    assert_eq!(c.application_name, "renamed");
    let live = store.open_sessions("i1").await.unwrap();
    assert_eq!(live.len(), 151, "b and the 150 of the large burst");
    // A duplicate id fails the whole burst; nothing of it is written.
    let dup = vec![
        IndexWrite::Started(Box::new(session("d"))),
        IndexWrite::Started(Box::new(session("b"))),
    ];
    assert!(store.index_writes(&dup).await.is_err());
    assert!(store.get_session("d").await.unwrap().is_none());
}

macro_rules! on_both_backends {
    ($($case:ident),*) => {
        mod sqlite_backend { $(#[tokio::test] async fn $case() { let (s, _d) = super::sqlite().await; super::$case(s).await })* }
        mod postgres_backend { $(#[tokio::test] async fn $case() { let (s, _d) = super::postgres().await; super::$case(s).await })* }
    };
}

on_both_backends!(
    session_index_bursts,
    users_groups_and_verifiers,
    resources_roles_and_grants,
    tokens_and_changes
);
