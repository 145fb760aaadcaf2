use std::sync::Arc;

use proptest::prelude::*;

use super::pg::{self, MaskedColumn};
use super::value::{Kind, Masked, mask, test_mask};
use super::*;
use crate::guardrail::expose::{exposure, refusal};
use crate::model::Protocol;

fn rule(name: &str, columns: &[&str], names: &[&str], method: MaskMethod) -> Arc<MaskingRule> {
    Arc::new(MaskingRule {
        name: name.into(),
        resource_roles: vec!["rr".into()],
        columns: columns.iter().map(|c| c.to_string()).collect(),
        column_names: names.iter().map(|c| c.to_string()).collect(),
        method,
        keep_first: 0,
        keep_last: 0,
        except_groups: vec!["leads".into()],
    })
}

fn masker() -> Masker {
    let rules = [
        rule("emails", &["public.users.email"], &[], MaskMethod::Email),
        rule("cards", &[], &["card_*"], MaskMethod::Redact),
        rule("any-ssn", &["*.ssn"], &[], MaskMethod::Hash),
    ];
    Masker::new(&rules, "rr", &["eng".into()], [1; 32]).expect("rules apply")
}

#[test]
fn rules_apply_by_role_and_group_and_match_origins_first_rule_first() {
    let rules = [rule("emails", &["users.email"], &[], MaskMethod::Email)];
    assert!(Masker::new(&rules, "other", &[], [0; 32]).is_none());
    assert!(Masker::new(&rules, "rr", &["leads".into()], [0; 32]).is_none());
    let m = masker();
    let look = |s, t, c| m.lookup(&Origin::new(s, t, c)).map(|m| m.rule.to_string());
    assert_eq!(look("public", "users", "email").as_deref(), Some("emails"));
    assert_eq!(
        look("PUBLIC", "Users", "EMAIL").as_deref(),
        Some("emails"),
        "names fold case"
    );
    assert_eq!(look("other", "users", "email"), None, "another schema");
    assert_eq!(look("x", "orders", "card_number").as_deref(), Some("cards"));
    assert_eq!(look("x", "people", "ssn").as_deref(), Some("any-ssn"));
    assert_eq!(look("public", "users", "name"), None);
    assert_eq!(
        m.by_name("email").map(|m| m.rule.to_string()).as_deref(),
        Some("emails")
    );
}

#[test]
fn each_method_on_text() {
    let text = |method, v: &str| match mask(&test_mask(method), Kind::Text, v.as_bytes()) {
        Masked::Text(s) => Some(s),
        Masked::Null => None,
        other => panic!("{other:?}"),
    };
    assert_eq!(text(MaskMethod::Redact, "secret").as_deref(), Some("****"));
    assert_eq!(text(MaskMethod::Null, "secret"), None);
    assert_eq!(text(MaskMethod::Default, "secret").as_deref(), Some(""));
    assert_eq!(
        text(MaskMethod::Partial, "4111111111111111").as_deref(),
        Some("************1111")
    );
    assert_eq!(
        text(MaskMethod::Partial, "abc").as_deref(),
        Some("****"),
        "too short to show any"
    );
    assert_eq!(
        text(MaskMethod::Email, "alice@example.com").as_deref(),
        Some("a***@example.com")
    );
    assert_eq!(
        text(MaskMethod::Email, "not an address").as_deref(),
        Some("****")
    );
    let h = text(MaskMethod::Hash, "x").expect("a value");
    assert_eq!(h.len(), 32);
    assert_eq!(text(MaskMethod::Hash, "x").expect("a value"), h, "stable");
    assert_ne!(text(MaskMethod::Hash, "y").expect("a value"), h);
    // Characters, not bytes, are kept.
    assert_eq!(text(MaskMethod::Partial, "ééééé").as_deref(), Some("*éééé"));
}

#[test]
fn hash_keys_change_with_the_period() {
    let a = period_key(&[9; 32], 1_780_000_000);
    assert_eq!(a, period_key(&[9; 32], 1_780_000_100), "same month");
    assert_ne!(
        a,
        period_key(&[9; 32], 1_780_000_000 + 40 * 86_400),
        "next month"
    );
    assert_ne!(a, period_key(&[8; 32], 1_780_000_000), "another store key");
}

#[test]
fn typed_values_stay_valid_in_both_formats() {
    let col = |method, kind, binary| MaskedColumn {
        mask: Arc::new(test_mask(method)),
        kind,
        binary,
        origin: Arc::from("s.t.c"),
    };
    let r = |c: &MaskedColumn, v: &[u8]| pg::render(c, v);
    assert_eq!(
        r(
            &col(MaskMethod::Redact, Kind::Int(4), true),
            &7i32.to_be_bytes()
        ),
        Some(vec![0; 4])
    );
    assert_eq!(
        r(&col(MaskMethod::Redact, Kind::Int(4), false), b"7"),
        Some(b"0".to_vec())
    );
    let hashed = r(
        &col(MaskMethod::Hash, Kind::Int(8), true),
        &7i64.to_be_bytes(),
    )
    .expect("a value");
    let text = r(&col(MaskMethod::Hash, Kind::Int(8), false), b"7").expect("a value");
    let n = i64::from_be_bytes(hashed.clone().try_into().expect("a value"));
    assert!(n >= 0);
    assert_eq!(n.to_string().into_bytes(), text, "both formats hash alike");
    let small = r(
        &col(MaskMethod::Hash, Kind::Int(2), true),
        &7i16.to_be_bytes(),
    )
    .expect("a value");
    assert_eq!(small.len(), 2);
    assert_eq!(
        r(&col(MaskMethod::Email, Kind::Date, true), &[0, 0, 0, 1]),
        Some((-10_957i32).to_be_bytes().to_vec())
    );
    assert_eq!(
        r(&col(MaskMethod::Redact, Kind::Bool, false), b"t"),
        Some(b"f".to_vec())
    );
    assert_eq!(
        r(
            &col(MaskMethod::Redact, Kind::Jsonb, true),
            b"\x01{\"a\":1}"
        ),
        Some(b"\x01\"****\"".to_vec())
    );
    assert_eq!(
        r(&col(MaskMethod::Redact, Kind::Json, false), b"{}"),
        Some(b"\"****\"".to_vec())
    );
    assert_eq!(
        r(&col(MaskMethod::Redact, Kind::Other, true), b"\x00\x01"),
        None,
        "binary of an unknown type: NULL"
    );
    let uuid = r(&col(MaskMethod::Hash, Kind::Uuid, true), &[7; 16]).expect("a value");
    assert_eq!(uuid.len(), 16);
    let numeric = r(&col(MaskMethod::Hash, Kind::Numeric, true), &[0; 8]).expect("a value");
    assert_eq!(numeric.len() % 2, 0);
}

fn statement_refusal(sql: &str) -> Option<String> {
    let m = masker();
    let patterns: Vec<_> = m.patterns().collect();
    let views = [("public".to_owned(), "users_v".to_owned())];
    let e = exposure(Protocol::Postgres, sql)?;
    refusal(&e, &patterns, &views, Some("public")).map(|(_, why)| why)
}

#[test]
fn what_loses_the_origin_is_refused() {
    for sql in [
        "select upper(email) from users",
        "select u.email || 'x' from users u",
        "select coalesce(email, '') from public.users",
        "select row_to_json(u) from users u",
        "select to_json(u.*) from users u",
        "select email from users union select 'a'",
        "insert into other select email from users",
        "create table t2 as select * from users",
        "insert into t2 select * from users",
        "select * from users union all select * from users",
        "copy users to stdout",
        "copy (select email from users) to stdout",
        "select * from users_v",
        "select card_number::text from orders",
        "select (select email from users limit 1)",
        "update orders set note = (select email from users limit 1)",
        "create function f() returns int language sql as 'select 1'",
    ] {
        assert!(statement_refusal(sql).is_some(), "{sql}");
    }
    for sql in [
        "select email from users",
        "select email as e, upper(name) from users",
        "select (email) from users",
        "with x as (select email from users) select email from x",
        "select count(*) from users where email like 'a%'",
        "select upper(email) from other.users",
        "copy users (id) to stdout",
        "select lower(name) from orders",
    ] {
        assert_eq!(statement_refusal(sql), None, "{sql}");
    }
    assert!(exposure(Protocol::Postgres, "select from where (").is_none());
}

/// A DataRow body of these values.
fn data_row_body(values: &[Option<Vec<u8>>]) -> Vec<u8> {
    let mut b = (values.len() as i16).to_be_bytes().to_vec();
    for v in values {
        match v {
            None => b.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(v) => {
                b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                b.extend_from_slice(v);
            }
        }
    }
    b
}

/// The values of a whole DataRow frame, checking its framing.
fn parse_frame(frame: &[u8]) -> Vec<Option<Vec<u8>>> {
    assert_eq!(frame[0], b'D');
    let len = i32::from_be_bytes(frame[1..5].try_into().expect("a value")) as usize;
    assert_eq!(len, frame.len() - 1, "the length field");
    let n = i16::from_be_bytes([frame[5], frame[6]]) as usize;
    let mut at = 7;
    let mut out = Vec::new();
    for _ in 0..n {
        let l = i32::from_be_bytes(frame[at..at + 4].try_into().expect("a value"));
        at += 4;
        if l < 0 {
            out.push(None);
        } else {
            out.push(Some(frame[at..at + l as usize].to_vec()));
            at += l as usize;
        }
    }
    assert_eq!(at, frame.len(), "nothing after the last value");
    out
}

fn kinds() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Text),
        Just(Kind::Int(2)),
        Just(Kind::Int(4)),
        Just(Kind::Int(8)),
        Just(Kind::Float(8)),
        Just(Kind::Numeric),
        Just(Kind::Bool),
        Just(Kind::Date),
        Just(Kind::TimestampTz),
        Just(Kind::Uuid),
        Just(Kind::Jsonb),
        Just(Kind::Bytes),
        Just(Kind::Other),
    ]
}

fn methods() -> impl Strategy<Value = MaskMethod> {
    prop_oneof![
        Just(MaskMethod::Redact),
        Just(MaskMethod::Null),
        Just(MaskMethod::Partial),
        Just(MaskMethod::Email),
        Just(MaskMethod::Hash),
        Just(MaskMethod::Default),
    ]
}

proptest! {
    #[test]
    fn a_rewritten_data_row_parses_back_with_its_columns(
        cols in proptest::collection::vec(
            (proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
             proptest::option::of((methods(), kinds(), any::<bool>()))),
            0..40),
    ) {
        let values: Vec<Option<Vec<u8>>> = cols.iter().map(|(v, _)| v.clone()).collect();
        let columns: Vec<Option<MaskedColumn>> = cols
            .iter()
            .map(|(_, m)| m.map(|(method, kind, binary)| MaskedColumn {
                mask: Arc::new(test_mask(method)),
                kind,
                binary,
                origin: Arc::from("s.t.c"),
            }))
            .collect();
        let frame = pg::data_row(&data_row_body(&values), &columns).expect("a row of its columns");
        let back = parse_frame(&frame);
        prop_assert_eq!(back.len(), values.len());
        for ((before, after), col) in values.iter().zip(&back).zip(&columns) {
            match col {
                None => prop_assert_eq!(before, after, "unmasked columns as they were"),
                Some(_) if before.is_none() => prop_assert!(after.is_none(), "NULL stays NULL"),
                Some(_) => {}
            }
        }
        let nulls = pg::null_row(&data_row_body(&values));
        prop_assert!(parse_frame(&nulls).iter().all(Option::is_none));
    }

    #[test]
    fn a_row_of_another_width_is_not_rewritten(n in 0usize..10, m in 0usize..10) {
        prop_assume!(n != m);
        let values = vec![Some(b"x".to_vec()); n];
        let columns = vec![None; m];
        prop_assert!(pg::data_row(&data_row_body(&values), &columns).is_none());
    }
}

/// The examples in docs/masking.md are rules `check-config` accepts.
#[test]
fn the_documented_rules_are_valid() {
    let doc = include_str!("../../docs/masking.md");
    let start = doc.find("<!-- example:begin -->").expect("the example");
    let end = doc.find("<!-- example:end -->").expect("its end");
    let toml_text: String = doc[start..end]
        .lines()
        .filter_map(|l| l.strip_prefix("    "))
        .collect::<Vec<_>>()
        .join("\n");
    #[derive(serde::Deserialize)]
    struct File {
        masking: Vec<MaskingRule>,
    }
    let file: File = toml::from_str(&toml_text).expect("the example reads");
    assert_eq!(file.masking.len(), 3);
    let known = crate::model::Known {
        resource_role: &|_| true,
        group: &|_| true,
        approvers: &|_| 0,
    };
    for rule in &file.masking {
        assert!(rule.problems(&known).is_empty(), "{}", rule.name);
    }
    let m = Masker::new(
        file.masking
            .iter()
            .map(|r| Arc::new(r.clone()))
            .collect::<Vec<_>>()
            .iter(),
        "support",
        &[],
        [0; 32],
    )
    .expect("rules apply");
    let look = |s, t, c| m.lookup(&Origin::new(s, t, c)).map(|m| m.rule.to_string());
    assert_eq!(look("crm", "contacts", "email").as_deref(), Some("emails"));
    assert_eq!(look("x", "orders", "pan").as_deref(), Some("cards"));
    assert_eq!(
        look("x", "customers", "ssn").as_deref(),
        Some("national-ids")
    );
}
