use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::model::{MaskMethod, MaskingRule};

fn masker(method: MaskMethod) -> Masker {
    let rule = Arc::new(MaskingRule {
        name: "m".into(),
        resource_roles: vec!["rr".into()],
        columns: vec!["d.t.secret".into()],
        column_names: vec![],
        method,
        keep_first: 0,
        keep_last: 0,
        except_groups: vec![],
    });
    Masker::new([&rule], "rr", &[], [5; 32]).expect("applies")
}

/// A ColumnDefinition41 of `d.t.<name>` with this type code.
fn def(name: &str, code: u8) -> Vec<u8> {
    let mut b = Vec::new();
    for s in ["def", "d", "t", "t", name, name] {
        lenenc_str(&mut b, s.as_bytes());
    }
    b.push(0x0c);
    b.extend_from_slice(&45u16.to_le_bytes());
    b.extend_from_slice(&255u32.to_le_bytes());
    b.push(code);
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&[0, 0, 0]);
    b
}

fn setup(method: MaskMethod, types: &[(bool, u8)], binary: bool) -> MyMasking {
    let mut m = MyMasking::new(masker(method));
    m.start(binary);
    for (i, (secret, code)) in types.iter().enumerate() {
        let name = if *secret {
            "secret".to_owned()
        } else {
            format!("c{i}")
        };
        m.column(&def(&name, *code));
    }
    m
}

fn header(len: usize, seq: u8) -> [u8; 4] {
    let l = (len as u32).to_le_bytes();
    [l[0], l[1], l[2], seq]
}

/// A binary value of type `code` for `seed`.
fn binary_value(code: u8, seed: u8) -> Vec<u8> {
    match code {
        0x01 => vec![seed],
        0x02 => vec![seed, 0],
        0x03 => vec![seed, 0, 0, 0],
        0x08 | 0x05 => vec![seed; 8],
        0x0a => vec![4, 0xE8, 0x07, 1, seed % 28 + 1],
        0x0c => vec![7, 0xE8, 0x07, 1, 2, 3, 4, 5],
        0x0b => vec![0],
        _ => {
            let mut v = Vec::new();
            lenenc_str(&mut v, &vec![b'a' + seed % 26; usize::from(seed)]);
            v
        }
    }
}

#[test]
fn text_rows_are_rewritten_and_reframed() {
    let mut m = setup(MaskMethod::Email, &[(false, 0x03), (true, 0xfd)], false);
    assert_eq!(m.masked(), [Arc::from("d.t.secret")]);
    let mut body = Vec::new();
    lenenc_str(&mut body, b"42");
    lenenc_str(&mut body, b"alice@example.com");
    let out = m.row(&header(body.len(), 7), &body).expect("rewritten");
    let mut want = Vec::new();
    lenenc_str(&mut want, b"42");
    lenenc_str(&mut want, b"a***@example.com");
    assert_eq!(
        &out[..4],
        &header(want.len(), 7),
        "new length, same sequence id"
    );
    assert_eq!(&out[4..], &want[..]);
    // NULL stays NULL.
    let body = [0x02, b'4', b'2', 0xFB];
    let out = m.row(&header(4, 8), &body).expect("rewritten");
    assert_eq!(&out[4..], &body);
}

#[test]
fn binary_rows_keep_types_and_null_bitmaps() {
    let mut m = setup(MaskMethod::Default, &[(true, 0x03), (false, 0xfd)], true);
    let mut body = vec![0x00, 0x00];
    body.extend_from_slice(&99i32.to_le_bytes());
    lenenc_str(&mut body, b"kept");
    let out = m.row(&header(body.len(), 1), &body).expect("rewritten");
    let mut want = vec![0x00, 0x00, 0, 0, 0, 0];
    lenenc_str(&mut want, b"kept");
    assert_eq!(&out[4..], &want[..], "a masked INT stays 4 bytes");
    let mut m = setup(MaskMethod::Null, &[(false, 0x08), (true, 0x0a)], true);
    let mut body = vec![0x00, 0x00];
    body.extend_from_slice(&7i64.to_le_bytes());
    body.extend_from_slice(&[4, 0xE8, 0x07, 1, 2]);
    let out = m.row(&header(body.len(), 1), &body).expect("rewritten");
    assert_eq!(out[5], 1 << 3, "the masked column's NULL bit (offset 2)");
    assert_eq!(&out[6..], &7i64.to_le_bytes());
}

#[test]
fn results_without_masked_columns_and_bad_rows() {
    let mut m = setup(MaskMethod::Redact, &[(false, 0xfd)], false);
    assert!(
        m.row(&header(2, 1), &[1, b'x']).is_none(),
        "streams through"
    );
    let mut m = setup(MaskMethod::Redact, &[(true, 0xfd)], false);
    assert!(m.row(&header(2, 1), &[9, b'x']).is_none());
    assert!(
        m.failed().is_some(),
        "a row that does not read ends the session"
    );
}

proptest! {
    #[test]
    fn a_rewritten_binary_row_parses_back_with_its_columns(
        cols in proptest::collection::vec(
            (any::<bool>(), prop_oneof![Just(0x01u8), Just(0x02), Just(0x03), Just(0x08),
                Just(0x05), Just(0x0a), Just(0x0c), Just(0x0b), Just(0xfd), Just(0xfc)],
             any::<u8>(), any::<bool>()),
            1..30),
        method in prop_oneof![Just(MaskMethod::Redact), Just(MaskMethod::Null),
            Just(MaskMethod::Hash), Just(MaskMethod::Partial), Just(MaskMethod::Default)],
    ) {
        let types: Vec<(bool, u8)> = cols.iter().map(|(s, c, _, _)| (*s, *c)).collect();
        let mut m = setup(method, &types, true);
        let n = cols.len();
        let mut bitmap = vec![0u8; (n + 9) / 8];
        let mut values = Vec::new();
        for (i, (_, code, seed, null)) in cols.iter().enumerate() {
            if *null {
                bitmap[(i + 2) / 8] |= 1 << ((i + 2) % 8);
            } else {
                values.extend_from_slice(&binary_value(*code, *seed));
            }
        }
        let mut body = vec![0x00];
        body.extend_from_slice(&bitmap);
        body.extend_from_slice(&values);
        let out = m.row(&header(body.len(), 3), &body);
        prop_assert!(m.failed().is_none());
        let out = match out {
            Some(o) => o,
            None => { prop_assert!(!types.iter().any(|(s, _)| *s)); return Ok(()); }
        };
        let len = u32::from_le_bytes([out[0], out[1], out[2], 0]) as usize;
        prop_assert_eq!(len, out.len() - 4);
        // Every column reads back in its own encoding, to the packet's end.
        let columns: Vec<Column> = types
            .iter()
            .map(|(_, code)| Column { kind: Kind::Text, code: *code, unsigned: false, mask: None })
            .collect();
        prop_assert!(binary_row(&out[4..], &columns).is_some());
    }
}

proptest! {
    #[test]
    fn a_rewritten_text_row_parses_back_with_its_columns(
        cols in proptest::collection::vec(
            (any::<bool>(), proptest::option::of(proptest::collection::vec(any::<u8>(), 0..400))),
            1..30),
        method in prop_oneof![Just(MaskMethod::Redact), Just(MaskMethod::Null),
            Just(MaskMethod::Hash), Just(MaskMethod::Email), Just(MaskMethod::Default)],
    ) {
        let types: Vec<(bool, u8)> = cols.iter().map(|(s, _)| (*s, 0xfd)).collect();
        let mut m = setup(method, &types, false);
        let mut body = Vec::new();
        for (_, v) in &cols {
            match v {
                Some(v) => lenenc_str(&mut body, v),
                None => body.push(0xFB),
            }
        }
        let Some(out) = m.row(&header(body.len(), 3), &body) else {
            prop_assert!(!types.iter().any(|(s, _)| *s));
            return Ok(());
        };
        let len = u32::from_le_bytes([out[0], out[1], out[2], 0]) as usize;
        prop_assert_eq!(len, out.len() - 4);
        let mut r = Reader(&out[4..]);
        for (secret, v) in &cols {
            if r.0.first() == Some(&0xFB) {
                r.take(1);
                prop_assert!(v.is_none() || (*secret && method == MaskMethod::Null));
            } else {
                let back = lenenc_value(&mut r).expect("a value");
                if !secret {
                    prop_assert_eq!(Some(back), v.as_deref());
                }
            }
        }
        prop_assert!(r.0.is_empty());
    }
}
