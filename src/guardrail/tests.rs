use super::analyze::{Table, analyze};
use super::*;
use crate::model::{StatementClass as C, Unparsed};

fn rule(name: &str, action: GuardAction) -> Guardrail {
    Guardrail {
        name: name.into(),
        resource_roles: vec!["r".into()],
        action,
        groups: vec![],
        except_groups: vec![],
        classes: vec![],
        tables: vec![],
        update_without_where: false,
        delete_without_where: false,
        select_star: false,
        allow_multi: true,
        unparsed: None,
    }
}

fn guard(protocol: Protocol, rules: Vec<Guardrail>) -> Guard {
    let rules: Vec<Arc<Guardrail>> = rules.into_iter().map(Arc::new).collect();
    let schema = if protocol == Protocol::Postgres {
        "public"
    } else {
        "shop"
    };
    Guard::new(&rules, "r", &[], protocol, schema).expect("rules apply")
}

fn pg(text: &str) -> Vec<analyze::Facts> {
    analyze(Protocol::Postgres, text).unwrap_or_else(|| panic!("does not parse: {text}"))
}

fn classes_of(protocol: Protocol, text: &str) -> Vec<C> {
    let facts = analyze(protocol, text).unwrap_or_else(|| panic!("does not parse: {text}"));
    C::ALL
        .iter()
        .map(|c| c.parse::<C>().expect("class"))
        .filter(|c| facts.iter().any(|f| f.has(*c)))
        .collect()
}

#[test]
fn classes() {
    let p = Protocol::Postgres;
    let m = Protocol::Mysql;
    for (protocol, text, want) in [
        (p, "select 1", vec![C::Read]),
        (p, "insert into t values (1)", vec![C::Write]),
        (
            p,
            "with d as (delete from t returning *) select * from d",
            vec![C::Read, C::Write],
        ),
        (p, "create table x (a int)", vec![C::Ddl]),
        (p, "alter table x add column b int", vec![C::Ddl]),
        (p, "drop table x", vec![C::Ddl]),
        (p, "truncate x", vec![C::Ddl]),
        (p, "drop role bob", vec![C::Dcl]),
        (p, "grant select on t to bob", vec![C::Dcl]),
        (p, "create role bob", vec![C::Dcl]),
        (p, "copy t to stdout", vec![C::Copy]),
        (p, "set role postgres", vec![C::Session]),
        (p, "set session authorization postgres", vec![C::Session]),
        (p, "set search_path = billing", vec![C::Session]),
        (p, "begin", vec![C::TransactionControl]),
        (p, "commit", vec![C::TransactionControl]),
        (p, "call p()", vec![C::Call]),
        (p, "prepare x as delete from t", vec![C::Write, C::Other]),
        (p, "explain analyze delete from t", vec![C::Read, C::Write]),
        (
            p,
            "insert into t values (1) on conflict do nothing",
            vec![C::Write],
        ),
        (p, "declare c cursor for select 1", vec![C::Read]),
        (m, "describe t", vec![C::Read]),
        (
            m,
            "insert into t values (1) on duplicate key update a = 1",
            vec![C::Write],
        ),
        (m, "rename table a to b", vec![C::Ddl]),
        (m, "replace into t values (1)", vec![C::Write]),
        (m, "load data infile '/tmp/x' into table t", vec![C::Copy]),
        (m, "select * from t into outfile '/tmp/x'", vec![C::Copy]),
        (m, "prepare s from 'drop table t'", vec![C::Ddl]),
        (m, "use shop", vec![C::Session]),
        (m, "show tables", vec![C::Read]),
        (m, "execute immediate 'drop table t'", vec![C::Ddl, C::Call]),
    ] {
        let got = classes_of(protocol, text);
        for c in &want {
            assert!(got.contains(c), "{text}: {got:?} lacks {c}");
        }
    }
}

#[test]
fn where_that_names_no_column_is_none() {
    for (text, none) in [
        ("delete from t", true),
        ("delete from t where true", true),
        ("delete from t where 1 = 1", true),
        ("delete from t where 'a' = 'a' or 2 > 1", true),
        ("delete from t where id = 5", false),
        ("delete from t where exists (select 1)", false),
        ("delete from t where 1 = 1 and id = 5", false),
    ] {
        assert_eq!(pg(text)[0].delete_without_where, none, "{text}");
    }
    assert!(pg("update t set a = 1")[0].update_without_where);
    assert!(pg("update t set a = 1 where 1=1")[0].update_without_where);
    assert!(!pg("update t set a = 1 where id = 3")[0].update_without_where);
    let nested = pg("with x as (delete from t returning 1) select * from x");
    assert!(
        nested[0].delete_without_where,
        "a DELETE inside a CTE is a DELETE"
    );
}

fn tables(text: &str) -> Vec<Table> {
    pg(text).into_iter().flat_map(|f| f.tables).collect()
}

#[test]
fn tables_through_ctes_subqueries_joins_and_aliases() {
    let names = |text: &str| -> Vec<String> {
        tables(text)
            .into_iter()
            .map(|t| format!("{}.{}", t.schema.unwrap_or_default(), t.name))
            .collect()
    };
    let got = names(
        "with c as (select * from billing.cards) select * from c join public.users u on u.id = c.u \
         where u.id in (select id from \"Secrets\".keys)",
    );
    assert!(got.contains(&"billing.cards".into()), "{got:?}");
    assert!(got.contains(&"public.users".into()), "{got:?}");
    assert!(got.contains(&"secrets.keys".into()), "{got:?}");
    assert!(
        !got.iter().any(|n| n == ".c"),
        "a CTE is not a table: {got:?}"
    );
    let got = names("select a from x.one union all select b from y.two");
    assert!(
        got.contains(&"x.one".into()) && got.contains(&"y.two".into()),
        "{got:?}"
    );
}

#[test]
fn what_moves_the_default_schema() {
    for (protocol, text) in [
        (Protocol::Postgres, "set search_path to billing, public"),
        (
            Protocol::Postgres,
            "select set_config('search_path', 'billing', false)",
        ),
        (Protocol::Mysql, "use billing"),
    ] {
        let facts = analyze(protocol, text).expect("parses");
        assert!(facts[0].moves_schema, "{text}");
    }
    assert!(!pg("set application_name = 'x'")[0].moves_schema);
    // MySQL: an unqualified name is in the resource role's database until `USE`.
    let mut r = rule("no-billing", GuardAction::Block);
    r.tables = vec!["billing.*".into()];
    let mut g = guard(Protocol::Mysql, vec![r]);
    assert!(g.check("select * from invoices").is_none());
    assert!(g.check("select * from billing.invoices").is_some());
    assert!(g.check("use billing").is_none());
    assert!(g.check("select * from invoices").is_some());
}

#[test]
fn a_rule_must_match_something() {
    let known = crate::model::Known {
        resource_role: &|r| r == "r",
        group: &|g| g == "eng",
        approvers: &|_| 0,
    };
    let mut r = rule("empty", GuardAction::Block);
    r.groups = vec!["nope".into()];
    r.tables = vec!["a.b.c".into()];
    let fields: Vec<&str> = r.problems(&known).iter().map(|p| p.0).collect();
    assert_eq!(fields, ["groups", "tables"]);
    r.tables.clear();
    let fields: Vec<&str> = r.problems(&known).iter().map(|p| p.0).collect();
    assert_eq!(fields, ["groups", "classes"], "no matcher");
}

#[test]
fn rules_match_through_tricks() {
    let mut no_billing = rule("no-billing", GuardAction::Block);
    no_billing.tables = vec!["billing.*".into()];
    let mut g = guard(Protocol::Postgres, vec![no_billing]);
    for text in [
        "select * from billing.cards",
        "select 1 from users where id in (select u from billing.cards)",
        "with c as (select * from billing.cards) select * from c",
        "select /* billing */ * from \"billing\".cards",
        "select * from users u join billing.cards c on c.u = u.id",
    ] {
        assert!(g.check(text).is_some_and(|d| d.block), "{text}");
    }
    for text in [
        "select 'from billing.cards' from users",
        "select 1 -- from billing.cards",
        "select $$billing.cards$$",
        "select * from cards",
    ] {
        assert!(g.check(text).is_none(), "{text}");
    }
    // After `SET search_path`, an unqualified name may be in billing.
    assert!(g.check("set search_path = billing").is_none());
    assert!(g.check("select * from cards").is_some_and(|d| d.block));
}

#[test]
fn mysql_comments_backticks_and_version_comments() {
    let mut no_ddl = rule("no-ddl", GuardAction::Block);
    no_ddl.classes = vec![C::Ddl];
    let mut g = guard(Protocol::Mysql, vec![no_ddl]);
    for text in [
        "drop table t",
        "/*!50000 drop table t */",
        "/*M!100000 drop table t */",
        "select 1; drop table `t`",
        "execute immediate 'drop table t'",
    ] {
        assert!(g.check(text).is_some_and(|d| d.block), "{text}");
    }
    for text in [
        "select '; drop table t'",
        "select `drop table t` from x",
        "select 1 # drop table t",
    ] {
        assert!(g.check(text).is_none(), "{text}");
    }
    // Reads differently with NO_BACKSLASH_ESCAPES: cannot be read, so blocked.
    let d = g
        .check(r"select 'a\' ; drop table t; -- '")
        .expect("decided");
    assert!(d.block && d.unparsed);
}

#[test]
fn strictest_action_and_every_rule_named() {
    let mut warn = rule("watch-writes", GuardAction::Warn);
    warn.classes = vec![C::Write];
    let mut block = rule("no-bare-delete", GuardAction::Block);
    block.delete_without_where = true;
    let mut g = guard(Protocol::Postgres, vec![warn, block]);
    let d = g.check("delete from t").expect("matched");
    assert!(d.block);
    assert_eq!(
        &*d.rules,
        &[Box::from("watch-writes"), Box::from("no-bare-delete")]
    );
    let d = g.check("delete from t where id = 1").expect("matched");
    assert!(!d.block);
    assert_eq!(&*d.rules, &[Box::from("watch-writes")]);
    assert!(g.check("select 1").is_none());
}

#[test]
fn select_star_multi_and_unparsed() {
    let mut star = rule("no-star-users", GuardAction::Block);
    star.select_star = true;
    star.tables = vec!["users".into()];
    let mut single = rule("one-at-a-time", GuardAction::Warn);
    single.allow_multi = false;
    let mut g = guard(Protocol::Postgres, vec![star, single]);
    assert!(g.check("select * from users").is_some_and(|d| d.block));
    assert!(g.check("select u.* from users u").is_some_and(|d| d.block));
    assert!(g.check("select id from users").is_none());
    let d = g.check("select 1; select 2").expect("multi");
    assert!(!d.block && *d.rules == [Box::from("one-at-a-time")]);
    let d = g.check("selec 1").expect("unparsed");
    assert!(d.block && d.unparsed && *d.rules == [Box::from("no-star-users")]);
    let mut allow = rule("lenient", GuardAction::Block);
    allow.classes = vec![C::Ddl];
    allow.unparsed = Some(Unparsed::Allow);
    let mut g = guard(Protocol::Postgres, vec![allow]);
    let d = g
        .check("DO $$ BEGIN DROP TABLE t; END $$")
        .expect("unparsed");
    assert!(!d.block && d.unparsed);
}

#[test]
fn groups_and_roles_select_the_rules() {
    let mut r = rule("ops-only", GuardAction::Block);
    r.classes = vec![C::Ddl];
    r.except_groups = vec!["dba".into()];
    let rules = vec![Arc::new(r)];
    let dba = ["dba".to_owned()];
    assert!(Guard::new(&rules, "r", &dba, Protocol::Postgres, "public").is_none());
    assert!(Guard::new(&rules, "other", &[], Protocol::Postgres, "public").is_none());
    assert!(Guard::new(&rules, "r", &[], Protocol::Postgres, "public").is_some());
}

#[test]
fn numbers_share_a_parse_names_do_not() {
    for (a, b, same) in [
        (
            "select v from t where id = 48213",
            "select v from t where id = 7",
            true,
        ),
        (
            "delete from t where 1=1 limit 5",
            "delete from t where 2=2 limit 10",
            true,
        ),
        ("select * from t1", "select * from t2", false),
        ("select * from \"1\"", "select * from \"2\"", false),
        ("select * from `1`", "select * from `2`", false),
        ("select $1", "select $2", false),
        ("select '1'", "select '2'", false),
        ("kill 5", "kill 99999999999999999999", false),
        ("select 1e5", "select 2e5", false),
    ] {
        assert_eq!(super::shape(a) == super::shape(b), same, "{a} / {b}");
    }
    assert_eq!(super::shape("a = 12 and b = 3;"), "a = 0 and b = 0;");
    assert_eq!(super::shape("é1 = 1"), "é1 = 0");
}

#[test]
fn globs() {
    assert!(glob("*", "anything"));
    assert!(glob("bill*", "billing"));
    assert!(glob("*_secret", "api_secret"));
    assert!(glob("a*c*e", "abcde"));
    assert!(!glob("a*c*e", "abcd"));
    assert!(!glob("users", "users2"));
}

proptest::proptest! {
    #[test]
    fn never_panics_on_any_text(text in ".{0,200}") {
        let mut block = rule("b", GuardAction::Block);
        block.classes = vec![C::Ddl];
        block.tables = vec!["s.*".into()];
        for protocol in [Protocol::Postgres, Protocol::Mysql] {
            let mut g = guard(protocol, vec![block.clone()]);
            let _ = g.check(&text);
        }
    }
}
