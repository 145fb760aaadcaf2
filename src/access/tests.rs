//! The decision table: every combination of status, role, group overlap and mode.

use super::*;
use crate::model::{AccessModes, Resource, ResourceRole, TlsMode, User};
use crate::snapshot::Verifiers;

fn user(name: &str, status: Status, role: Role, groups: &[&str]) -> (String, Arc<UserEntry>) {
    let entry = UserEntry {
        user: User {
            name: name.into(),
            email: String::new(),
            display_name: String::new(),
            status,
            role,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        },
        verifiers: Verifiers::default(),
        managed: false,
    };
    (name.into(), Arc::new(entry))
}

fn snapshot(modes: AccessModes) -> Snapshot {
    let mut s = Snapshot::default();
    s.groups
        .extend(["engineering".to_string(), "sales".to_string()]);
    s.users.extend([
        user("alice", Status::Active, Role::Standard, &["engineering"]),
        user("bob", Status::Active, Role::Standard, &["sales"]),
        user("carol", Status::Inactive, Role::Standard, &["engineering"]),
        user("dave", Status::Invited, Role::Standard, &["engineering"]),
        user("root", Status::Active, Role::Admin, &[]),
        user("olga", Status::Inactive, Role::Admin, &[]),
        user("audrey", Status::Active, Role::Auditor, &[]),
        user("ghost", Status::Active, Role::Standard, &["deleted-team"]),
    ]);
    s.resources.insert(
        "orders-db".into(),
        Arc::new(ResourceEntry {
            resource: Resource {
                name: "orders-db".into(),
                protocol: Protocol::Postgres,
                address: "127.0.0.1:5432".into(),
                tls: TlsMode::Prefer,
            },
            managed: false,
        }),
    );
    s.resource_roles.insert(
        "orders-ro".into(),
        Arc::new(ResourceRoleEntry {
            role: ResourceRole {
                name: "orders-ro".into(),
                resource: "orders-db".into(),
                database: "orders".into(),
                user: "orders_ro".into(),
                // `deleted-team` was granted, then the group was deleted.
                allowed_groups: vec!["engineering".into(), "deleted-team".into()],
                access_modes: modes,
                forward_options: None,
            },
            secret: None,
            managed: false,
        }),
    );
    s
}

fn ask(s: &Snapshot, who: &str, rr: &str, mode: AccessMode) -> Result<(), Denied> {
    let id = Identity::for_tests(who);
    decide(s, &id, rr, mode).map(|_| ())
}

const ALL_ON: AccessModes = AccessModes {
    native: true,
    web: true,
    runbooks: true,
};

#[test]
fn decision_table() {
    use AccessMode::*;
    let s = snapshot(ALL_ON);
    let inactive = Err(Denied::NotActive(Status::Inactive));
    let cases: &[(&str, &str, AccessMode, Result<(), Denied>)] = &[
        ("alice", "orders-ro", Native, Ok(())),
        ("alice", "orders-ro", Web, Ok(())),
        ("alice", "orders-ro", Runbooks, Ok(())),
        ("bob", "orders-ro", Native, Err(Denied::NoSharedGroup)),
        ("carol", "orders-ro", Native, inactive.clone()),
        (
            "dave",
            "orders-ro",
            Native,
            Err(Denied::NotActive(Status::Invited)),
        ),
        ("root", "orders-ro", Native, Ok(())),
        ("olga", "orders-ro", Native, inactive),
        ("audrey", "orders-ro", Native, Err(Denied::NoSharedGroup)),
        ("ghost", "orders-ro", Native, Err(Denied::NoSharedGroup)),
        ("nobody", "orders-ro", Native, Err(Denied::UnknownUser)),
        ("alice", "missing", Native, Err(Denied::UnknownResourceRole)),
        ("root", "missing", Native, Err(Denied::UnknownResourceRole)),
    ];
    for (who, rr, mode, want) in cases {
        assert_eq!(&ask(&s, who, rr, *mode), want, "{who} → {rr} ({mode})");
    }
}

#[test]
fn each_mode_switches_independently() {
    for mode in [AccessMode::Native, AccessMode::Web, AccessMode::Runbooks] {
        let mut modes = ALL_ON;
        match mode {
            AccessMode::Native => modes.native = false,
            AccessMode::Web => modes.web = false,
            AccessMode::Runbooks => modes.runbooks = false,
        }
        let s = snapshot(modes);
        for other in [AccessMode::Native, AccessMode::Web, AccessMode::Runbooks] {
            let want = if other == mode {
                Err(Denied::ModeDisabled(mode))
            } else {
                Ok(())
            };
            assert_eq!(ask(&s, "alice", "orders-ro", other), want);
            // Admins bypass groups, not modes.
            assert_eq!(ask(&s, "root", "orders-ro", other), want);
        }
    }
}

#[test]
fn deleting_a_group_revokes_its_grant() {
    let mut s = snapshot(ALL_ON);
    assert_eq!(ask(&s, "alice", "orders-ro", AccessMode::Native), Ok(()));
    s.groups.remove("engineering");
    assert_eq!(
        ask(&s, "alice", "orders-ro", AccessMode::Native),
        Err(Denied::NoSharedGroup)
    );
}

#[test]
fn native_checks_the_listener_protocol() {
    let s = snapshot(ALL_ON);
    let id = Identity::for_tests("alice");
    assert!(decide_native(&s, &id, "orders-ro", Protocol::Postgres).is_ok());
    assert!(matches!(
        decide_native(&s, &id, "orders-ro", Protocol::Mysql),
        Err(Denied::WrongProtocol { .. })
    ));
}

#[test]
fn reachable_modes_lists_what_decide_allows() {
    let s = snapshot(AccessModes {
        native: true,
        web: false,
        runbooks: true,
    });
    assert_eq!(
        reachable_modes(&s, "alice", "orders-ro"),
        vec![AccessMode::Native, AccessMode::Runbooks]
    );
    assert!(reachable_modes(&s, "bob", "orders-ro").is_empty());
}

#[test]
fn a_permit_is_rechecked_against_a_newer_snapshot() {
    let mut s = snapshot(ALL_ON);
    let permit = decide(
        &s,
        &Identity::for_tests("alice"),
        "orders-ro",
        AccessMode::Web,
    )
    .expect("alice may use orders-ro");
    assert_eq!(permit.recheck(&s), Ok(()));
    s.groups.remove("engineering");
    assert_eq!(permit.recheck(&s), Err(Denied::NoSharedGroup));
}

#[test]
fn kills_reach_only_the_callers_own_sessions_on_the_same_resource() {
    let party = |user: &str, resource: &str, admin| KillParty {
        user: user.into(),
        resource: (!resource.is_empty()).then(|| resource.into()),
        admin,
    };
    let cases = [
        (
            party("alice", "db1", false),
            party("alice", "db1", false),
            true,
        ),
        (
            party("alice", "db1", false),
            party("bob", "db1", false),
            false,
        ),
        (
            party("alice", "db1", false),
            party("alice", "db2", false),
            false,
        ),
        (party("root", "db1", true), party("bob", "db1", false), true),
        (
            party("root", "db1", true),
            party("bob", "db2", false),
            false,
        ),
        // A control session: the user's own sessions anywhere; an admin's: anyone's.
        (
            party("alice", "", false),
            party("alice", "db2", false),
            true,
        ),
        (party("alice", "", false), party("bob", "db2", false), false),
        (party("root", "", true), party("bob", "db2", false), true),
    ];
    for (killer, target, want) in cases {
        assert_eq!(
            may_kill(&killer, &target),
            want,
            "{killer:?} kills {target:?}"
        );
    }
}
