//! The masked value for a method and a column's type family, in the form both protocols
//! render: a string for text columns; for numbers, dates, booleans and UUIDs a value of
//! their own type (`hash` keeps numbers and UUIDs joinable; every other method gives the
//! type's zero: 0, false, the epoch, the nil UUID), so a client decoding the column by its
//! declared type still can.

use super::Mask;
use crate::model::MaskMethod;

/// What a column holds, as far as masking must know to keep its values valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// An integer of this many bytes.
    Int(u8),
    /// A float of this many bytes.
    Float(u8),
    Numeric,
    Bool,
    Date,
    Timestamp,
    TimestampTz,
    Time,
    Uuid,
    Json,
    Jsonb,
    Bytes,
    /// A type masking cannot write a valid value of in binary (masked values are NULL
    /// there; in text format it is treated as text).
    Other,
}

/// A masked value before a protocol renders it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Masked {
    Null,
    Text(String),
    Int(i64),
    Uuid([u8; 16]),
    /// The type's zero value.
    Zero,
}

/// The masked form of `value` (the text form of a text-format value, or the raw bytes of
/// a string in binary format) for a column of `kind`.
pub fn mask(m: &Mask, kind: Kind, value: &[u8]) -> Masked {
    if m.method == MaskMethod::Null {
        return Masked::Null;
    }
    match kind {
        Kind::Text | Kind::Json | Kind::Jsonb | Kind::Other => {
            let text = text_mask(m, &String::from_utf8_lossy(value));
            if matches!(kind, Kind::Json | Kind::Jsonb) {
                Masked::Text(json_string(&text))
            } else {
                Masked::Text(text)
            }
        }
        Kind::Int(bytes) if m.method == MaskMethod::Hash => {
            Masked::Int(hashed_int(m, value, bytes))
        }
        Kind::Float(_) | Kind::Numeric if m.method == MaskMethod::Hash => {
            Masked::Int(hashed_int(m, value, 4))
        }
        Kind::Uuid if m.method == MaskMethod::Hash => {
            let d = m.digest(value);
            let mut u = [0u8; 16];
            u.copy_from_slice(&d[..16]);
            u[6] = (u[6] & 0x0f) | 0x80; // version 8: custom
            u[8] = (u[8] & 0x3f) | 0x80;
            Masked::Uuid(u)
        }
        _ => Masked::Zero,
    }
}

/// A non-negative integer from the value's HMAC that fits `bytes` bytes signed.
fn hashed_int(m: &Mask, value: &[u8], bytes: u8) -> i64 {
    let d = m.digest(value);
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    let n = u64::from_be_bytes(b);
    let bits = u32::from(bytes.clamp(1, 8)) * 8 - 1;
    (n & ((1u64 << bits) - 1)) as i64
}

/// The masked text of a string value.
fn text_mask(m: &Mask, value: &str) -> String {
    match m.method {
        MaskMethod::Redact => "****".to_owned(),
        MaskMethod::Null | MaskMethod::Default => String::new(),
        MaskMethod::Hash => hex::encode(&m.digest(value.as_bytes())[..16]),
        MaskMethod::Partial => partial(value, m.kept),
        MaskMethod::Email => email(value),
    }
}

/// The first and last characters kept, the rest `*` (all `*` when it is too short to
/// hide anything).
fn partial(value: &str, (first, last): (usize, usize)) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= first + last {
        return "*".repeat(chars.len().max(4));
    }
    let mut out: String = chars[..first].iter().collect();
    out.push_str(&"*".repeat(chars.len() - first - last));
    out.extend(&chars[chars.len() - last..]);
    out
}

/// `alice@example.com` → `a***@example.com`; anything else `****`.
fn email(value: &str) -> String {
    match value.split_once('@') {
        Some((local, domain)) if !domain.is_empty() => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        _ => "****".to_owned(),
    }
}

/// A UUID's text form (`8-4-4-4-12` hex digits).
pub fn uuid_text(u: &[u8]) -> String {
    let h = hex::encode(u);
    match (
        h.get(..8),
        h.get(8..12),
        h.get(12..16),
        h.get(16..20),
        h.get(20..),
    ) {
        (Some(a), Some(b), Some(c), Some(d), Some(e)) => format!("{a}-{b}-{c}-{d}-{e}"),
        _ => h,
    }
}

/// A JSON string holding `text`.
fn json_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

#[cfg(test)]
pub(super) fn test_mask(method: MaskMethod) -> Mask {
    Mask {
        rule: std::sync::Arc::from("t"),
        method,
        kept: (0, 4),
        key: [3u8; 32],
    }
}
