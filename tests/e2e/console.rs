//! The web console in real headless Chromium: signing in (good, bad, locked out), an
//! admin building access (group, user, resource role with modes, a grant) and that user
//! then seeing only what they may use and running SQL; an auditor reading sessions and
//! their statements with no edit controls (and a forged write refused); CSRF, cookie
//! flags, security headers; an XSS payload rendered inert.

use serde_json::json;

use crate::common;
use common::browser::{Browser, get, post, raw};
use common::pg::{PASSWORD, PgEnv};

/// The admin listener's base URL.
fn base(env: &PgEnv) -> String {
    format!("http://{}", env.gw.admin_addr.unwrap())
}

/// Signs in over raw HTTP; the session cookie (`name=value`) and the Set-Cookie line.
async fn cookie_of(env: &PgEnv, name: &str, secret: &str) -> (String, String) {
    let form = format!("name={name}&secret={}", common::console_encode(secret));
    let (head, _) = raw(env.gw.admin_addr.unwrap(), &post("/ui/login", None, &form)).await;
    let line = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {head}"))
        .to_owned();
    let value = line.split_once(':').unwrap().1.trim();
    (value.split(';').next().unwrap().to_owned(), line)
}

/// The form token on a page the cookie can open.
async fn csrf_of(env: &PgEnv, cookie: &str, path: &str) -> String {
    let (_, body) = raw(env.gw.admin_addr.unwrap(), &get(path, Some(cookie))).await;
    let at = body.find("name=\"csrf\" value=\"").expect("a form token");
    body[at + 19..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn sign_in_good_bad_and_locked_out_with_safe_cookies_and_headers() {
    let env = PgEnv::new("[limits]\nfailed_logins_per_user = 3\n").await;
    let b = Browser::start(&base(&env)).await;
    b.sign_in("alice", "wrong-password").await;
    assert!(
        b.wait_for("wrong user name, password or token")
            .await
            .contains("Sign in")
    );
    b.sign_in("alice", PASSWORD).await;
    let text = b.wait_for("Developer portal").await;
    assert!(
        !text.contains("Users"),
        "a standard user sees no admin sections:\n{text}"
    );
    b.screenshot("portal").await;
    b.click(".who button").await;
    b.wait_for("Signed out").await;
    b.open("/ui/portal").await;
    b.wait_for("Sign in").await;
    // Locked out after three failures, even with the right password.
    for _ in 0..4 {
        b.sign_in("erin", "nope").await;
        b.wait_for("wrong user name, password or token").await;
    }
    b.sign_in("erin", PASSWORD).await;
    b.wait_for("too many failed sign-ins").await;
    b.close().await;
    // The cookie and the headers.
    let (_, set_cookie) = cookie_of(&env, "alice", PASSWORD).await;
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(flag), "{set_cookie}");
    }
    let (head, body) = raw(env.gw.admin_addr.unwrap(), &get("/ui/login", None)).await;
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("content-security-policy: default-src 'none'; script-src 'self'"),
        "{head}"
    );
    assert!(
        head.contains("frame-ancestors 'none'") && head.contains("x-frame-options: deny"),
        "{head}"
    );
    assert!(head.contains("referrer-policy: no-referrer"), "{head}");
    assert!(
        !body.contains("<script>") && !body.contains("onclick="),
        "no inline script"
    );
    for src in body.split("src=\"").skip(1) {
        assert!(
            src.starts_with('/'),
            "everything from the gateway itself: {src}"
        );
    }
    let events = env.events().await;
    let failed = events
        .iter()
        .filter(|e| e["kind"] == "auth_failed" && e["user"] == "erin")
        .count();
    assert!(failed >= 4, "every failed sign-in is logged ({failed})");
    env.gw.shutdown().await;
}

#[tokio::test]
async fn an_admin_builds_access_and_the_user_then_sees_only_that() {
    let env = PgEnv::new("").await;
    let token = env.dir.bootstrap_token();
    let b = Browser::start(&base(&env)).await;
    b.sign_in("admin", &token).await;
    b.wait_for("New user").await;
    b.screenshot("users").await;
    // A group, a user in it, a resource role with web mode, the grant.
    b.open("/ui/groups").await;
    b.fill("#name", "analysts").await;
    b.click("form.card button[type=submit]").await;
    b.wait_for("group analysts created").await;
    b.screenshot("groups").await;
    b.open("/ui/users").await;
    b.fill("#name", "zoe").await;
    b.fill("#email", "zoe@example.com").await;
    b.fill("#groups", "analysts").await;
    b.fill("#password", "zoe-password-1").await;
    b.click("form.card button[type=submit]").await;
    b.wait_for("user zoe created").await;
    b.open("/ui/resources").await;
    b.fill("form[action='/ui/resource-roles'] #name", "zoe-sql")
        .await;
    b.fill("#database", &env.db).await;
    b.fill("form[action='/ui/resource-roles'] #user", &env.role)
        .await;
    b.fill(
        "form[action='/ui/resource-roles'] #password",
        &env.upstream_password,
    )
    .await;
    b.click("form[action='/ui/resource-roles'] input[name=mode_native]")
        .await; // off
    b.click("form[action='/ui/resource-roles'] input[name=mode_web]")
        .await; // on
    b.click("form[action='/ui/resource-roles'] button[type=submit]")
        .await;
    b.wait_for("resource role zoe-sql created").await;
    b.screenshot("resources").await;
    b.open("/ui/access").await;
    b.client
        .find(fantoccini::Locator::Css(
            "form[action='/ui/access/zoe-sql/grant'] select",
        ))
        .await
        .unwrap()
        .select_by_value("analysts")
        .await
        .unwrap();
    b.click("form[action='/ui/access/zoe-sql/grant'] button")
        .await;
    b.wait_for("analysts may now use zoe-sql").await;
    b.screenshot("access-control").await;
    // Every write was an admin change, like the API's.
    let changes = common::client(&env.gw, Some(&token))
        .get("/api/changes")
        .await
        .unwrap();
    let actions: Vec<&str> = changes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    for want in [
        "group.create",
        "user.create",
        "resource_role.create",
        "access.grant",
    ] {
        assert!(
            actions
                .iter()
                .any(|a| a.contains(want.split('.').next().unwrap())),
            "{want} in {actions:?}"
        );
    }
    b.click(".who button").await;
    // Zoe sees only her role, runs SQL in the portal.
    b.sign_in("zoe", "zoe-password-1").await;
    let text = b.wait_for("Developer portal").await;
    assert!(
        text.contains("zoe-sql") && !text.contains("rr-ops"),
        "{text}"
    );
    assert!(!b.has("a[href='/ui/users']").await);
    b.open("/ui/portal/sql/zoe-sql").await;
    b.fill("#statement", "select 41 + 1 as answer, current_user as who")
        .await;
    b.click("form button[type=submit]").await;
    let text = b.wait_for("1 row").await;
    assert!(text.contains("42"), "{text}");
    b.screenshot("sql-editor").await;
    // Her one-off is a session like any other.
    let sessions = common::client(&env.gw, Some(&token))
        .get("/api/sessions?user=zoe&mode=web")
        .await
        .unwrap();
    assert_eq!(sessions.as_array().unwrap().len(), 1, "{sessions}");
    b.open("/ui/users").await;
    let text = b.wait_for("zoe@example.com").await;
    assert!(
        !text.contains("alice") && !text.contains("New user"),
        "only herself:\n{text}"
    );
    b.close().await;
    env.gw.shutdown().await;
}

#[tokio::test]
async fn an_auditor_reads_sessions_and_changes_nothing() {
    let env = PgEnv::new(
        "[[users]]\nname = \"audrey\"\nrole = \"auditor\"\npassword = \"audrey-password\"\n",
    )
    .await;
    let c = env.alice().await;
    c.simple_query("select 'audited statement' as x")
        .await
        .unwrap();
    c.simple_query("select 2").await.unwrap();
    let b = Browser::start(&base(&env)).await;
    b.sign_in("audrey", "audrey-password").await;
    let text = b.wait_for("Sessions").await;
    assert!(text.contains("alice") && text.contains("live"), "{text}");
    assert!(
        !b.has("button.danger").await,
        "no end-session button for an auditor"
    );
    b.screenshot("sessions").await;
    b.click("table a").await;
    let text = b.wait_for("audited statement").await;
    assert!(text.contains("Statements (2)"), "{text}");
    b.screenshot("session").await;
    b.open("/ui/sessions?q=audited").await;
    assert!(b.wait_for("alice").await.contains("rr"));
    b.open("/ui/sessions").await;
    b.click("#verify button").await;
    b.wait_for("the chain holds").await;
    b.open("/ui/users").await;
    let text = b.text().await;
    assert!(
        text.contains("alice") && !text.contains("New user"),
        "read-only for an auditor:\n{text}"
    );
    assert!(!b.has("form[method=post][action='/ui/users']").await);
    b.open("/ui/review").await;
    b.wait_for("Last used").await;
    b.screenshot("access-review").await;
    b.close().await;
    // A forged write: refused by the API's own check (with the form token) or by the
    // form-token check (without).
    let addr = env.gw.admin_addr.unwrap();
    let (cookie, _) = cookie_of(&env, "audrey", "audrey-password").await;
    let csrf = csrf_of(&env, &cookie, "/ui/sessions").await;
    let form = format!("csrf={csrf}&name=mallory&password=mallory-pass");
    let (head, _) = raw(addr, &post("/ui/users", Some(&cookie), &form)).await;
    assert!(
        head.contains("303") && head.contains("error=this%20requires%20the%20admin%20role"),
        "{head}"
    );
    let (head, _) = raw(addr, &post("/ui/users", Some(&cookie), "name=mallory")).await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let users = common::client(&env.gw, Some(&env.dir.bootstrap_token()))
        .get("/api/users")
        .await
        .unwrap();
    assert!(!users.to_string().contains("mallory"));
    env.gw.shutdown().await;
}

#[tokio::test]
async fn values_are_escaped_and_forms_need_their_token() {
    let env = PgEnv::new("").await;
    let admin = common::client(&env.gw, Some(&env.dir.bootstrap_token()));
    admin
        .post(
            "/api/users",
            json!({"name": "xss", "display_name": "<script>alert(1)</script>", "email": "\"><img src=x onerror=alert(2)>"}),
        )
        .await
        .unwrap();
    let b = Browser::start(&base(&env)).await;
    b.sign_in("admin", &env.dir.bootstrap_token()).await;
    b.wait_for("New user").await;
    b.open("/ui/users/xss").await;
    b.wait_for("Details").await;
    assert!(b.client.get_alert_text().await.is_err(), "no script ran");
    let source = b.source().await;
    assert!(!source.contains("<script>alert(1)</script>"), "escaped");
    assert!(
        source.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
            || source.contains("&#60;script&#62;"),
        "{source}"
    );
    assert!(!source.contains("<img src=x"), "escaped");
    b.close().await;
    // Without its form token a state-changing request is refused.
    let addr = env.gw.admin_addr.unwrap();
    let (cookie, _) = cookie_of(&env, "admin", &env.dir.bootstrap_token()).await;
    let (head, _) = raw(addr, &post("/ui/groups", Some(&cookie), "name=sneaky")).await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let (head, _) = raw(
        addr,
        &post("/ui/groups", Some(&cookie), "name=sneaky&csrf=guess"),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let csrf = csrf_of(&env, &cookie, "/ui/groups").await;
    let (head, _) = raw(
        addr,
        &post(
            "/ui/groups",
            Some(&cookie),
            &format!("name=fine&csrf={csrf}"),
        ),
    )
    .await;
    assert!(head.contains("303") && head.contains("notice="), "{head}");
    // Signed out: the cookie no longer works.
    raw(
        addr,
        &post("/ui/logout", Some(&cookie), &format!("csrf={csrf}")),
    )
    .await;
    let (head, _) = raw(addr, &get("/ui/users", Some(&cookie))).await;
    assert!(
        head.contains("303") && head.contains("location: /ui/login"),
        "{head}"
    );
    env.gw.shutdown().await;
}

#[tokio::test]
async fn access_requests_and_runbook_forms_in_the_console() {
    let runbooks = tempfile::tempdir().unwrap();
    std::fs::write(
        runbooks.path().join("double.sql"),
        "-- description = \"Doubles a number\"\n-- resource_roles = [\"rr-ops\"]\n-- [[params]]\n-- name = \"n\"\n-- type = \"integer\"\n-- min = 1\n-- description = \"The number\"\nselect :n * 2 as doubled;\n",
    )
    .unwrap();
    let config = format!(
        "[runbooks]\ndir = \"{}\"\n[[groups]]\nname = \"leads\"\n[[users]]\nname = \"lee\"\ngroups = [\"leads\"]\npassword = \"{PASSWORD}\"\n\
         [[access_request_rules]]\nname = \"rr-jit\"\nresource_roles = [\"rr\"]\nkind = \"jit\"\napprover_groups = [\"leads\"]\nmax_duration = \"1h\"\n",
        runbooks.path().display()
    );
    let env = PgEnv::new(&config).await;
    let b = Browser::start(&base(&env)).await;
    // A runbook's form, drawn from its parameters, checked before anything runs.
    b.sign_in("alice", PASSWORD).await;
    b.wait_for("Doubles a number").await;
    b.open("/ui/portal/runbooks/double").await;
    b.fill("input[name='p.n']", "0").await;
    b.client
        .execute(
            "document.querySelector(\"input[name='p.n']\").removeAttribute('min')",
            vec![],
        )
        .await
        .ok();
    b.click("form.card button[type=submit]").await;
    b.wait_for("parameter `n` 0 is outside 1..").await;
    b.fill("input[name='p.n']", "21").await;
    b.click("form.card button[type=submit]").await;
    // (The statement itself says "doubled": wait for the result's value.)
    let text = b.wait_for("42").await;
    assert!(text.contains("doubled"), "{text}");
    b.screenshot("runbook").await;
    // Ask for just-in-time access; an approver approves it from the queue.
    b.open("/ui/requests").await;
    b.fill("#reason", "quarterly numbers").await;
    b.click("form.card button[type=submit]").await;
    b.wait_for("is pending").await;
    b.click(".who button").await;
    b.sign_in("lee", PASSWORD).await;
    b.open("/ui/requests").await;
    let text = b.wait_for("Waiting for your vote").await;
    assert!(
        text.contains("alice") && text.contains("quarterly numbers"),
        "{text}"
    );
    b.screenshot("access-requests").await;
    b.click("form[action$='/approve'] button").await;
    b.wait_for("request is approved").await;
    b.close().await;
    let (ok, _, err) =
        common::pg::psql(&env.conn_str("alice", PASSWORD, "rr"), &["-c", "select 1"]).await;
    assert!(ok, "the approved grant lets alice in: {err}");
    env.gw.shutdown().await;
}

#[tokio::test]
async fn sign_ins_time_out_and_the_access_review_exports() {
    let env = PgEnv::new("[console]\nidle_timeout = \"1s\"\n").await;
    let addr = env.gw.admin_addr.unwrap();
    let c = env.alice().await;
    c.simple_query("select 1").await.unwrap();
    drop(c);
    let (cookie, _) = cookie_of(&env, "admin", &env.dir.bootstrap_token()).await;
    // The review: alice used rr, erin never did (flagged); as CSV too.
    let (head, csv) = raw(addr, &get("/ui/review.csv?unused_for=30d", Some(&cookie))).await;
    assert!(
        head.to_ascii_lowercase().contains("content-type: text/csv"),
        "{head}"
    );
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "resource_role,resource,user,modes,via,last_used_at,unused"
    );
    let alice = lines
        .iter()
        .find(|l| l.starts_with("rr,pg,alice,"))
        .unwrap();
    assert!(alice.ends_with(",false"), "{alice}");
    let erin = lines.iter().find(|l| l.starts_with("rr,pg,erin,")).unwrap();
    assert!(erin.ends_with(",,true"), "never used: {erin}");
    let server = format!("http://{addr}");
    let token = env.dir.bootstrap_token();
    let vars = [
        ("PORTCULLIS_SERVER", server.as_str()),
        ("PORTCULLIS_TOKEN", token.as_str()),
    ];
    let (code, out, err) =
        common::clients::portcullis(&["access", "review", "--output", "csv"], &vars, None).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("rr,erin,") && l.ends_with(",true")),
        "{out}"
    );
    // Idle for longer than the timeout: signed out.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (head, _) = raw(addr, &get("/ui/users", Some(&cookie))).await;
    assert!(head.contains("location: /ui/login"), "{head}");
    env.gw.shutdown().await;
}
