//! Admin API end to end: a real gateway on a free port with a real SQLite store.

use crate::common;

use common::{Dir, client, start, status};
use serde_json::json;

const DECLARED: &str = r#"
[[groups]]
name = "engineering"

[[resources]]
name = "pg"
protocol = "postgres"
address = "127.0.0.1:5432"

[[resource_roles]]
name = "declared-ro"
resource = "pg"
database = "test"
user = "postgres"
allowed_groups = ["engineering"]
"#;

#[tokio::test]
async fn requests_without_a_valid_token_get_401() {
    let dir = Dir::new();
    dir.write_config(None, "");
    let gw = start(&dir).await;
    assert_eq!(status(client(&gw, None).get("/api/users").await), 401);
    assert_eq!(
        status(client(&gw, Some("pcat_nope")).get("/api/users").await),
        401
    );
    let err = client(&gw, None)
        .get("/api/users")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing bearer token"), "{err}");
    // Health and metrics are public.
    assert_eq!(status(client(&gw, None).get("/healthz").await), 200);
    gw.shutdown().await;
}

#[tokio::test]
async fn each_role_gets_what_it_may() {
    let dir = Dir::new();
    dir.write_config(None, DECLARED);
    let gw = start(&dir).await;
    let admin = client(&gw, Some(&dir.bootstrap_token()));
    for (name, role, groups) in [
        ("audrey", "auditor", vec![]),
        ("sam", "standard", vec!["engineering"]),
        ("nina", "standard", vec![]),
    ] {
        admin
            .post(
                "/api/users",
                json!({"name": name, "role": role, "groups": groups, "password": "password-123"}),
            )
            .await
            .unwrap();
    }
    let token = |user: &str| {
        let admin = &admin;
        let user = user.to_owned();
        async move {
            let t = admin
                .post("/api/tokens", json!({"user": user}))
                .await
                .unwrap();
            t["token"].as_str().unwrap().to_owned()
        }
    };
    let auditor = client(&gw, Some(&token("audrey").await));
    let sam = client(&gw, Some(&token("sam").await));
    let nina = client(&gw, Some(&token("nina").await));

    // Auditor: reads everything, changes nothing.
    for path in [
        "/api/users",
        "/api/groups",
        "/api/resources",
        "/api/resource-roles",
        "/api/access",
        "/api/changes",
        "/api/tokens",
    ] {
        assert_eq!(status(auditor.get(path).await), 200, "auditor GET {path}");
    }
    assert_eq!(
        status(auditor.post("/api/groups", json!({"name": "x"})).await),
        403
    );
    assert_eq!(
        status(
            auditor
                .patch("/api/users/sam", json!({"status": "inactive"}))
                .await
        ),
        403
    );
    assert_eq!(status(auditor.delete("/api/users/sam").await), 403);
    assert_eq!(
        status(auditor.post("/api/config/reload", json!({})).await),
        403
    );

    // Standard: its own profile, and the resource roles it can use.
    let users = sam.get("/api/users").await.unwrap();
    assert_eq!(users.as_array().unwrap().len(), 1);
    assert_eq!(users[0]["name"], "sam");
    assert_eq!(sam.get("/api/me").await.unwrap()["name"], "sam");
    assert_eq!(status(sam.get("/api/users/audrey").await), 403);
    assert_eq!(status(sam.get("/api/groups").await), 403);
    assert_eq!(
        status(sam.post("/api/groups", json!({"name": "y"})).await),
        403
    );
    assert_eq!(status(sam.get("/api/access?user=audrey").await), 403);
    let roles = sam.get("/api/resource-roles").await.unwrap();
    assert_eq!(roles.as_array().unwrap().len(), 1);
    assert_eq!(nina.get("/api/resource-roles").await.unwrap(), json!([]));
    assert_eq!(
        status(nina.get("/api/resource-roles/declared-ro").await),
        404
    );
    // A standard user may change only its own password, and only with the current one
    // (a token alone may not: docs/security.md).
    assert_eq!(
        status(
            sam.patch("/api/users/sam", json!({"password": "another-pass"}))
                .await
        ),
        403
    );
    let change = json!({"password": "another-pass", "current_password": "password-123"});
    assert_eq!(status(sam.patch("/api/users/sam", change).await), 200);
    assert_eq!(
        status(sam.patch("/api/users/sam", json!({"role": "admin"})).await),
        403
    );

    // Deactivating a user invalidates its tokens at once.
    admin
        .patch("/api/users/sam", json!({"status": "inactive"}))
        .await
        .unwrap();
    assert_eq!(status(sam.get("/api/me").await), 401);
    gw.shutdown().await;
}

#[tokio::test]
async fn declared_objects_are_read_only_through_the_api() {
    let dir = Dir::new();
    let path = dir.write_config(None, DECLARED);
    let gw = start(&dir).await;
    let admin = client(&gw, Some(&dir.bootstrap_token()));
    let err = admin
        .patch(
            "/api/resource-roles/declared-ro",
            json!({"database": "other"}),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("409"), "{err}");
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert_eq!(status(admin.delete("/api/groups/engineering").await), 409);
    assert_eq!(status(admin.delete("/api/resources/pg").await), 409);
    assert_eq!(
        status(
            admin
                .post(
                    "/api/resource-roles/declared-ro/access",
                    json!({"group": "engineering"})
                )
                .await
        ),
        409
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_json_errors_with_the_right_status() {
    let dir = Dir::new();
    dir.write_config(None, "");
    let gw = start(&dir).await;
    let admin = client(&gw, Some(&dir.bootstrap_token()));
    assert_eq!(
        status(
            admin
                .post("/api/users", json!({"name": "a", "bogus": 1}))
                .await
        ),
        400
    );
    assert_eq!(
        status(admin.post("/api/users", json!({"name": "bad name"})).await),
        422
    );
    assert_eq!(
        status(
            admin
                .post("/api/users", json!({"name": "x", "groups": ["nope"]}))
                .await
        ),
        422
    );
    assert_eq!(
        status(
            admin
                .post("/api/users", json!({"name": "x", "password": "short"}))
                .await
        ),
        422
    );
    assert_eq!(status(admin.get("/api/users/ghost").await), 404);
    admin
        .post("/api/groups", json!({"name": "g"}))
        .await
        .unwrap();
    assert_eq!(
        status(admin.post("/api/groups", json!({"name": "g"})).await),
        409
    );
    assert_eq!(
        status(
            admin
                .post(
                    "/api/resources",
                    json!({"name": "r", "protocol": "oracle", "address": "h:1"})
                )
                .await
        ),
        400
    );
    assert_eq!(
        status(
            admin
                .post(
                    "/api/resources",
                    json!({"name": "r", "protocol": "mysql", "address": "nohost"})
                )
                .await
        ),
        422
    );
    assert_eq!(
        status(admin.post("/api/tokens", json!({"expires": "soon"})).await),
        422
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn the_new_user_flow_survives_a_restart_and_never_shows_secrets() {
    let dir = Dir::new();
    dir.write_config(None, "");
    let gw = start(&dir).await;
    let token = dir.bootstrap_token();
    let admin = client(&gw, Some(&token));
    admin
        .post("/api/groups", json!({"name": "engineering"}))
        .await
        .unwrap();
    admin
        .post("/api/users", json!({"name": "alice", "email": "a@x", "groups": ["engineering"], "password": "alice-password"}))
        .await
        .unwrap();
    admin
        .post(
            "/api/resources",
            json!({"name": "orders-db", "protocol": "postgres", "address": "127.0.0.1:5432"}),
        )
        .await
        .unwrap();
    let upstream_pw = "Upstream-Secret-4242";
    admin
        .post(
            "/api/resource-roles",
            json!({"name": "orders-ro", "resource": "orders-db", "database": "orders", "user": "orders_ro", "password": upstream_pw}),
        )
        .await
        .unwrap();
    admin
        .post(
            "/api/resource-roles/orders-ro/access",
            json!({"group": "engineering"}),
        )
        .await
        .unwrap();
    let reach = admin
        .get("/api/access?resource_role=orders-ro")
        .await
        .unwrap();
    let users: Vec<&str> = reach
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["user"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["admin", "alice"]);
    assert_eq!(reach[1]["via"], json!(["engineering"]));
    admin
        .patch("/api/users/alice", json!({"status": "inactive"}))
        .await
        .unwrap();
    let changes = admin.get("/api/changes").await.unwrap().to_string();
    assert!(changes.contains("access.grant") && changes.contains("user.update"));
    assert!(!changes.contains(upstream_pw) && !changes.contains("alice-password"));
    gw.shutdown().await;

    // Restart on the same store: everything is still there, no new bootstrap token.
    let gw = start(&dir).await;
    assert_eq!(dir.bootstrap_token(), token);
    let admin = client(&gw, Some(&token));
    let alice = admin.get("/api/users/alice").await.unwrap();
    assert_eq!(alice["status"], "inactive");
    assert_eq!(alice["groups"], json!(["engineering"]));
    let role = admin.get("/api/resource-roles/orders-ro").await.unwrap();
    assert_eq!(role["allowed_groups"], json!(["engineering"]));
    assert!(!role.to_string().contains(upstream_pw));
    let snap = gw.control.snapshot();
    let secret = snap.resource_roles["orders-ro"].secret.clone().unwrap();
    assert_eq!(secret.expose(), upstream_pw);
    gw.shutdown().await;
    // Encrypted at rest: the plaintext is nowhere in the database file.
    let db = std::fs::read(dir.path().join("portcullis.db")).unwrap();
    assert!(
        !db.windows(upstream_pw.len())
            .any(|w| w == upstream_pw.as_bytes())
    );
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let dir = Dir::new();
    dir.write_config(None, "");
    let gw = start(&dir).await;
    let admin = client(&gw, Some(&dir.bootstrap_token()));
    let t = admin
        .post("/api/tokens", json!({"expires": "0s"}))
        .await
        .unwrap();
    assert_eq!(
        status(client(&gw, t["token"].as_str()).get("/api/me").await),
        401
    );
    let t = admin
        .post("/api/tokens", json!({"expires": "1h", "name": "ci"}))
        .await
        .unwrap();
    assert_eq!(
        status(client(&gw, t["token"].as_str()).get("/api/me").await),
        200
    );
    let id = t["id"].as_str().unwrap();
    admin.delete(&format!("/api/tokens/{id}")).await.unwrap();
    assert_eq!(
        status(client(&gw, t["token"].as_str()).get("/api/me").await),
        401
    );
    gw.shutdown().await;
}

/// The contract is generated from the handlers: every documented path and method is
/// routed (a router miss answers 404/405 without our JSON error), every route is
/// documented (no handler in src/admin is added with a bare `.route(`), and SPEC §5's
/// paths are all there.
#[tokio::test]
async fn every_documented_path_is_routed_and_every_route_documented() {
    let dir = Dir::new();
    dir.write_config(None, "");
    let gw = start(&dir).await;
    let admin = client(&gw, Some(&dir.bootstrap_token()));
    let doc = client(&gw, None).get("/openapi.json").await.unwrap();
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/api/users",
        "/api/groups",
        "/api/resources",
        "/api/resource-roles",
        "/api/resource-roles/{name}/access",
        "/api/sessions",
        "/api/sessions/{id}",
        "/api/audit/verify",
        "/api/tokens",
        "/api/lockouts",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    let mut calls = 0;
    for (path, item) in paths {
        let concrete = path.replace('{', "x").replace('}', "");
        for method in item.as_object().unwrap().keys() {
            let m = hyper::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = matches!(method.as_str(), "post" | "put" | "patch").then(|| json!({}));
            let miss = match admin.call(m, &concrete, body).await {
                Err(portcullis::cli::client::ClientError::Api { status, message }) => {
                    matches!(status, 404 | 405) && (message == "null" || message.is_empty())
                }
                _ => false,
            };
            assert!(!miss, "{method} {path} is documented but not routed");
            calls += 1;
        }
    }
    assert!(calls > 30, "only {calls} operations documented");
    let admin_src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/admin");
    for file in std::fs::read_dir(admin_src).unwrap() {
        let path = file.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains(".route("),
            "{} routes a handler without documenting it (use utoipa_axum::routes!)",
            path.display()
        );
    }
    gw.shutdown().await;
}
