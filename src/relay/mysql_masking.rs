//! A MySQL session under masking, server → client. A result set's column definitions
//! carry each column's origin (schema, `org_table`, `org_name`) and type; once they are
//! read, each row of a result with a masked column is rewritten — a text row
//! (length-encoded strings, `0xFB` for NULL) or a binary row (`COM_STMT_EXECUTE`: a NULL
//! bitmap, then each value in its type's encoding) — and its packet length written anew.
//! A row split over several packets (16 MiB and more) in such a result ends the session:
//! it cannot be rewritten in place, and nothing unmasked may get out.

use std::sync::Arc;

use crate::masking::my::kind;
use crate::masking::value::{Kind, Masked, mask};
use crate::masking::{Mask, Masker, Origin};
use crate::protocol::mysql::packet::{Reader, lenenc_str};

/// One column of the result being read, `mask` set when masked.
#[derive(Clone, Debug)]
struct Column {
    kind: Kind,
    /// MySQL's type code (binary rows are encoded by it).
    code: u8,
    unsigned: bool,
    mask: Option<Arc<Mask>>,
}

#[derive(Debug)]
pub struct MyMasking {
    masker: Masker,
    columns: Vec<Column>,
    origins: Vec<Arc<str>>,
    binary: bool,
    /// The result being read has a masked column.
    active: bool,
    failed: Option<String>,
}

impl MyMasking {
    pub fn new(masker: Masker) -> MyMasking {
        MyMasking {
            masker,
            columns: Vec::new(),
            origins: Vec::new(),
            binary: false,
            active: false,
            failed: None,
        }
    }

    /// A result set starts (its column count was read).
    pub fn start(&mut self, binary: bool) {
        self.columns.clear();
        self.origins.clear();
        self.binary = binary;
        self.active = false;
    }

    /// A column definition.
    pub fn column(&mut self, body: &[u8]) {
        let def = definition(body);
        let mask = def.as_ref().and_then(|d| {
            let origin = Origin::new(&d.schema, &d.org_table, &d.org_name);
            let m = if d.org_table.is_empty() {
                None
            } else {
                self.masker.lookup(&origin)
            };
            if m.is_some() {
                self.origins.push(Arc::from(origin.qualified().as_str()));
            }
            m
        });
        // A definition that does not read: its values cannot be known safe.
        let mask = if def.is_none() {
            Some(self.unknown())
        } else {
            mask
        };
        self.active |= mask.is_some();
        let (code, charset, flags) = def.map_or((0xfd, 0, 0), |d| (d.code, d.charset, d.flags));
        self.columns.push(Column {
            kind: kind(code, charset),
            code,
            unsigned: flags & 0x20 != 0,
            mask,
        });
    }

    fn unknown(&self) -> Arc<Mask> {
        Arc::new(Mask::nulled(self.masker.first_rule()))
    }

    /// The columns masked in the result read last (for its statement's event).
    pub fn masked(&self) -> &[Arc<str>] {
        &self.origins
    }

    /// A row packet (`header` and body): the packet rewritten, when its result masks.
    pub fn row(&mut self, header: &[u8], body: &[u8]) -> Option<Vec<u8>> {
        if !self.active {
            return None;
        }
        if header.first().is_some_and(|_| body.len() >= 0xFF_FFFF) {
            self.failed = Some("a row of 16 MiB or more in a result with masked columns".into());
            return None;
        }
        let rewritten = if self.binary {
            binary_row(body, &self.columns)
        } else {
            text_row(body, &self.columns)
        };
        let Some(payload) = rewritten.filter(|p| p.len() < 0xFF_FFFF) else {
            self.failed = Some("a row in a result with masked columns did not read".into());
            return None;
        };
        let len = (payload.len() as u32).to_le_bytes();
        let seq = header.get(3).copied().unwrap_or(0);
        let mut out = Vec::with_capacity(payload.len() + 4);
        out.extend_from_slice(&[len[0], len[1], len[2], seq]);
        out.extend_from_slice(&payload);
        Some(out)
    }

    pub fn failed(&mut self) -> Option<String> {
        self.failed.take()
    }
}

struct Definition {
    schema: String,
    org_table: String,
    org_name: String,
    charset: u16,
    code: u8,
    flags: u16,
}

/// ColumnDefinition41: catalog, schema, table, org_table, name, org_name (length-encoded
/// strings), the fixed fields' length, charset, column length, type, flags, decimals.
fn definition(body: &[u8]) -> Option<Definition> {
    let mut r = Reader(body);
    let mut strings = Vec::with_capacity(6);
    for _ in 0..6 {
        strings.push(String::from_utf8_lossy(lenenc_value(&mut r)?).into_owned());
    }
    r.lenenc()?;
    let charset = u16::from_le_bytes(r.take(2)?.try_into().ok()?);
    r.take(4)?;
    let code = r.take(1)?[0];
    let flags = u16::from_le_bytes(r.take(2)?.try_into().ok()?);
    Some(Definition {
        schema: strings[1].clone(),
        org_table: strings[3].clone(),
        org_name: strings[5].clone(),
        charset,
        code,
        flags,
    })
}

/// A text row: each value a length-encoded string, `0xFB` for NULL.
fn text_row(body: &[u8], columns: &[Column]) -> Option<Vec<u8>> {
    let mut r = Reader(body);
    let mut out = Vec::with_capacity(body.len());
    for c in columns {
        let value = if r.0.first() == Some(&0xFB) {
            r.take(1)?;
            None
        } else {
            Some(lenenc_value(&mut r)?)
        };
        match (&c.mask, value) {
            (Some(m), Some(v)) => match text(c.kind, mask(m, c.kind, v)) {
                Some(t) => lenenc_str(&mut out, &t),
                None => out.push(0xFB),
            },
            (_, Some(v)) => lenenc_str(&mut out, v),
            (_, None) => out.push(0xFB),
        }
    }
    r.0.is_empty().then_some(out)
}

fn text(kind: Kind, m: Masked) -> Option<Vec<u8>> {
    let s = match m {
        Masked::Null => return None,
        Masked::Text(s) => s,
        Masked::Int(n) => n.to_string(),
        Masked::Uuid(u) => hex::encode(u),
        Masked::Zero => match kind {
            Kind::Int(_) | Kind::Float(_) | Kind::Numeric | Kind::Bool => "0".into(),
            Kind::Date => "1970-01-01".into(),
            Kind::Timestamp | Kind::TimestampTz => "1970-01-01 00:00:00".into(),
            Kind::Time => "00:00:00".into(),
            Kind::Json | Kind::Jsonb => "\"\"".into(),
            _ => String::new(),
        },
    };
    Some(s.into_bytes())
}

/// A binary row: `0x00`, the NULL bitmap (offset 2), then the non-NULL values.
fn binary_row(body: &[u8], columns: &[Column]) -> Option<Vec<u8>> {
    let n = columns.len();
    let bitmap_len = (n + 7 + 2) / 8;
    let mut r = Reader(body);
    if r.take(1)? != [0x00] {
        return None;
    }
    let mut bitmap = r.take(bitmap_len)?.to_vec();
    let mut values = Vec::with_capacity(body.len());
    for (i, c) in columns.iter().enumerate() {
        let (byte, bit) = ((i + 2) / 8, (i + 2) % 8);
        if bitmap[byte] & (1 << bit) != 0 {
            continue;
        }
        let raw = binary_value(&mut r, c.code)?;
        let Some(m) = &c.mask else {
            values.extend_from_slice(raw);
            continue;
        };
        let canonical = canonical(c, raw);
        let masked = mask(m, c.kind, canonical.as_deref().unwrap_or(raw));
        match encode(c, masked) {
            Some(bytes) => values.extend_from_slice(&bytes),
            None => bitmap[byte] |= 1 << bit,
        }
    }
    if !r.0.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(1 + bitmap_len + values.len());
    out.push(0x00);
    out.extend_from_slice(&bitmap);
    out.extend_from_slice(&values);
    Some(out)
}

/// One binary value's bytes as sent (for strings: with their length).
fn binary_value<'a>(r: &mut Reader<'a>, code: u8) -> Option<&'a [u8]> {
    let start = r.0;
    let len = match code {
        0x01 => 1,
        0x02 | 0x0d => 2,
        0x03 | 0x09 | 0x04 => 4,
        0x08 | 0x05 => 8,
        0x07 | 0x0a | 0x0c | 0x0b => 1 + usize::from(*r.0.first()?),
        _ => {
            let before = r.0.len();
            let n = usize::try_from(r.lenenc()?).ok()?;
            let header = before - r.0.len();
            r.0 = start;
            header.checked_add(n)?
        }
    };
    r.take(len)
}

/// The text a binary value hashes as (so both row formats hash alike); `None`: as is.
fn canonical(c: &Column, raw: &[u8]) -> Option<Vec<u8>> {
    let int = |b: &[u8]| {
        let mut le = [0u8; 8];
        le[..b.len()].copy_from_slice(b);
        let v = u64::from_le_bytes(le);
        let bits = b.len() * 8;
        if c.unsigned || bits == 64 {
            if c.unsigned {
                v.to_string()
            } else {
                (v as i64).to_string()
            }
        } else {
            let shift = 64 - bits;
            (((v << shift) as i64) >> shift).to_string()
        }
    };
    match c.kind {
        Kind::Int(w) if raw.len() == usize::from(w) => Some(int(raw).into_bytes()),
        Kind::Int(_) | Kind::Float(_) | Kind::Date | Kind::Timestamp | Kind::Time => None,
        _ => Some(strip_lenenc(raw).to_vec()),
    }
}

fn strip_lenenc(raw: &[u8]) -> &[u8] {
    let mut r = Reader(raw);
    lenenc_value(&mut r).unwrap_or(raw)
}

/// A masked value in the column's binary encoding (`None`: NULL).
fn encode(c: &Column, m: Masked) -> Option<Vec<u8>> {
    let width = match c.kind {
        Kind::Int(w) | Kind::Float(w) => usize::from(w),
        _ => 0,
    };
    let mut out = Vec::new();
    match (c.kind, m) {
        (_, Masked::Null) => return None,
        (Kind::Int(_), Masked::Int(n)) => out.extend_from_slice(&n.to_le_bytes()[..width]),
        (Kind::Float(4), Masked::Int(n)) => out.extend_from_slice(&(n as f32).to_le_bytes()),
        (Kind::Float(_), Masked::Int(n)) => out.extend_from_slice(&(n as f64).to_le_bytes()),
        (Kind::Int(_) | Kind::Float(_), Masked::Zero) => out.resize(width, 0),
        (Kind::Date | Kind::Timestamp | Kind::TimestampTz, Masked::Zero) => {
            out.extend_from_slice(&[4, 0xB2, 0x07, 1, 1]);
        }
        (Kind::Time, Masked::Zero) => out.push(0),
        (kind, m) => lenenc_str(&mut out, &text(kind, m)?),
    }
    Some(out)
}

/// A length-encoded string's bytes.
fn lenenc_value<'a>(r: &mut Reader<'a>) -> Option<&'a [u8]> {
    let n = usize::try_from(r.lenenc()?).ok()?;
    r.take(n)
}

#[cfg(test)]
#[path = "mysql_masking_tests.rs"]
mod tests;
