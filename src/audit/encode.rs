//! The writer's per-event encoding, by hand for the one event there is one of per statement
//! (`query`): the same bytes serde_json writes (a test holds the two equal), without its
//! generic machinery. Every other kind goes through serde. Also the line timestamp, with
//! the date and time formatted once a second.

use std::time::{SystemTime, UNIX_EPOCH};

use super::Kind;

/// Writes the kind's fields as a JSON object, exactly as `serde_json::to_writer` would.
pub fn kind_json(kind: &Kind, out: &mut Vec<u8>) -> std::io::Result<()> {
    let Kind::Query {
        statement,
        op,
        params,
        duration_us,
        rows,
        status,
        error_code,
        guardrails,
        masked,
        cut,
    } = kind
    else {
        return serde_json::to_writer(out, kind).map_err(std::io::Error::other);
    };
    out.extend_from_slice(b"{\"kind\":\"query\",\"statement\":");
    string(out, statement);
    out.extend_from_slice(b",\"op\":");
    string(out, op.as_str());
    if let Some(params) = params {
        out.extend_from_slice(b",\"params\":[");
        for (i, p) in params.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match p {
                Some(p) => string(out, p),
                None => out.extend_from_slice(b"null"),
            }
        }
        out.push(b']');
    }
    out.extend_from_slice(b",\"duration_us\":");
    number(out, *duration_us);
    out.extend_from_slice(b",\"rows\":");
    number(out, *rows);
    out.extend_from_slice(b",\"status\":");
    string(out, status.as_str());
    if let Some(code) = error_code {
        out.extend_from_slice(b",\"error_code\":");
        string(out, code);
    }
    if let Some(rules) = guardrails {
        list(out, b",\"guardrails\":[", rules.iter().map(|r| &**r));
    }
    if let Some(columns) = masked {
        list(out, b",\"masked\":[", columns.iter().map(|c| &**c));
    }
    if let Some(c) = cut {
        out.extend_from_slice(b",\"statement_truncated\":true,\"statement_length\":");
        number(out, c.len);
        out.extend_from_slice(b",\"statement_sha256\":");
        string(out, &hex::encode(c.sha256));
    }
    out.push(b'}');
    Ok(())
}

fn number(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// A JSON string with serde_json's escapes: `"` `\` and control characters only.
fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    // Most statements need no escape: one pass without an early exit (it vectorizes),
    // then a copy.
    let plain = !bytes.iter().fold(false, |any, &b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if plain {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0C => b"\\f",
            0..=0x1F => &[],
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xF)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// RFC 3339 UTC timestamps with microseconds; the part up to the second is formatted once
/// a second.
#[derive(Default)]
pub struct Clock {
    second: u64,
    prefix: Vec<u8>,
}

impl Clock {
    /// The current time, into a reused buffer.
    pub fn now_into(&mut self, out: &mut Vec<u8>) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.at_into(now.as_secs(), now.subsec_micros(), out);
    }

    fn at_into(&mut self, second: u64, micros: u32, out: &mut Vec<u8>) {
        if self.prefix.is_empty() || second != self.second {
            self.prefix.clear();
            let fmt =
                time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
            let at = i64::try_from(second)
                .ok()
                .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            let _ = at.format_into(&mut self.prefix, &fmt);
            self.second = second;
        }
        out.clear();
        out.extend_from_slice(&self.prefix);
        // `.` and six digits by hand: `write!` was ~380 instructions a line (callgrind).
        let mut digits = [b'0'; 6];
        let mut left = micros.min(999_999);
        for d in digits.iter_mut().rev() {
            *d = b'0' + (left % 10) as u8;
            left /= 10;
        }
        out.push(b'.');
        out.extend_from_slice(&digits);
        out.push(b'Z');
    }
}

/// `prefix`, the strings as a JSON array's items, and `]`.
fn list<'a>(out: &mut Vec<u8>, prefix: &[u8], items: impl Iterator<Item = &'a str>) {
    out.extend_from_slice(prefix);
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, item);
    }
    out.push(b']');
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;

    fn query(statement: &str, params: Option<Vec<Option<String>>>, code: Option<String>) -> Kind {
        Kind::Query {
            statement: Arc::from(statement),
            op: crate::audit::Op::ComQuery,
            params: params.map(Arc::from),
            duration_us: 1234,
            rows: 7,
            status: if code.is_some() {
                crate::audit::Status::Error
            } else {
                crate::audit::Status::Ok
            },
            guardrails: code
                .as_ref()
                .map(|_| Arc::from(vec![Box::from("no-ddl"), Box::from("a \"b\"")])),
            masked: code
                .as_ref()
                .map(|_| Arc::from(vec![Arc::from("public.users.email"), Arc::from("x\\y")])),
            error_code: code,
            cut: None,
        }
    }

    fn both(kind: &Kind) -> (Vec<u8>, Vec<u8>) {
        let mut ours = Vec::new();
        kind_json(kind, &mut ours).unwrap();
        (ours, serde_json::to_vec(kind).unwrap())
    }

    #[test]
    fn query_matches_serde_byte_for_byte() {
        for kind in [
            query("select 1", None, None),
            query("", Some(vec![]), Some("42P01".into())),
            query(
                "insert \"x\"\\ \n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f} é 😀",
                Some(vec![Some("a\"b".into()), None, Some(String::new())]),
                None,
            ),
        ] {
            let (ours, serde) = both(&kind);
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&serde)
            );
        }
    }

    #[test]
    fn a_cut_statement_is_marked_with_its_length_and_hash() {
        let mut kind = query("select 'x", None, None);
        if let Kind::Query { cut, .. } = &mut kind {
            *cut = Some(Arc::new(crate::audit::Cut {
                len: 2_000_000,
                sha256: [0xab; 32],
            }));
        }
        let (ours, serde) = both(&kind);
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&serde)
        );
        let v: serde_json::Value = serde_json::from_slice(&ours).unwrap();
        assert_eq!(v["statement_truncated"], true);
        assert_eq!(v["statement_length"], 2_000_000);
        assert_eq!(v["statement_sha256"], "ab".repeat(32));
    }

    #[test]
    fn other_kinds_go_through_serde() {
        let kind = Kind::AuthFailed {
            reason: "wrong \"password\"".into(),
        };
        let (ours, serde) = both(&kind);
        assert_eq!(ours, serde);
    }

    proptest! {
        #[test]
        fn any_text_matches_serde(
            statement in any::<String>(),
            params in proptest::option::of(proptest::collection::vec(proptest::option::of(any::<String>()), 0..4)),
            code in proptest::option::of("[0-9A-Z]{5}"),
        ) {
            let (ours, serde) = both(&query(&statement, params, code));
            prop_assert_eq!(ours, serde);
        }
    }

    #[test]
    fn clock_matches_the_time_crate() {
        let mut clock = Clock::default();
        let mut out = Vec::new();
        for (second, micros) in [
            (0, 0),
            (1_764_550_000, 5),
            (1_764_550_000, 999_999),
            (1_764_550_001, 42),
        ] {
            clock.at_into(second, micros, &mut out);
            let at = time::OffsetDateTime::from_unix_timestamp(second as i64).unwrap()
                + time::Duration::microseconds(micros.into());
            let fmt = time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
            );
            assert_eq!(
                String::from_utf8(out.clone()).unwrap(),
                at.format(&fmt).unwrap()
            );
        }
    }
}
