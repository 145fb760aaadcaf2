//! PostgreSQL: which columns of a result are masked (from `RowDescription`'s table OID
//! and attribute number, through the resource's `catalog`), and a `DataRow` rewritten
//! with them, in text or binary format — a masked binary `int4` is still four bytes of a
//! valid `int4`. The row's length fields are written anew.

use std::sync::Arc;

use super::catalog::PgCatalog;
use super::value::{Kind, Masked, mask, uuid_text};
use super::{Mask, Masker, Origin};

/// One masked column of a result.
#[derive(Clone, Debug)]
pub struct MaskedColumn {
    pub mask: Arc<Mask>,
    pub kind: Kind,
    pub binary: bool,
    /// `schema.table.column`, for the monitoring log.
    pub origin: Arc<str>,
}

/// A result's columns, `Some` where masked.
pub type Columns = Arc<[Option<MaskedColumn>]>;

/// A described column: its origin and type, before the result's formats are known.
#[derive(Clone, Debug)]
pub struct Field {
    pub name: String,
    pub table_oid: u32,
    pub attnum: i16,
    pub type_oid: u32,
    pub format: i16,
}

/// `RowDescription`'s fields, or `None` if the body does not read.
pub fn fields(body: &[u8]) -> Option<Vec<Field>> {
    let mut r = Reader(body);
    let n = r.i16()?.max(0) as usize;
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let name = r.cstr()?;
        let table_oid = r.i32()? as u32;
        let attnum = r.i16()?;
        let type_oid = r.i32()? as u32;
        r.take(6)?; // typlen, typmod
        let format = r.i16()?;
        out.push(Field {
            name,
            table_oid,
            attnum,
            type_oid,
            format,
        });
    }
    Some(out)
}

/// The masked columns of `fields` under `formats` (Bind's result format codes: none means
/// text, one applies to all; `None`: each field's own). `None` when nothing is masked.
pub fn columns(
    masker: &Masker,
    catalog: &PgCatalog,
    fields: &[Field],
    formats: Option<&[i16]>,
) -> Option<Columns> {
    let mut any = false;
    let out: Vec<Option<MaskedColumn>> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let (mask, origin) = resolve(masker, catalog, f)?;
            any = true;
            let format = match formats {
                None => f.format,
                Some([]) => 0,
                Some([one]) => *one,
                Some(many) => many.get(i).copied().unwrap_or(0),
            };
            Some(MaskedColumn {
                mask,
                kind: kind(f.type_oid),
                binary: format == 1,
                origin: Arc::from(origin.as_str()),
            })
        })
        .collect();
    any.then(|| out.into())
}

/// The mask for a field and the origin it is logged under.
pub fn resolve(masker: &Masker, catalog: &PgCatalog, f: &Field) -> Option<(Arc<Mask>, String)> {
    if f.table_oid == 0 {
        return None;
    }
    if let Some(origin) = catalog.column(f.table_oid, f.attnum) {
        return masker.lookup(origin).map(|m| (m, origin.qualified()));
    }
    if let Some(view) = catalog.view(f.table_oid) {
        // A view over a masked column: what its columns derive from is not known here.
        let mask = Arc::new(Mask::nulled(masker.first_rule()));
        return Some((mask, format!("{view}.{}", f.name)));
    }
    if catalog.is_newer(f.table_oid) {
        // A table created since the catalog was read: the weaker, name-based matcher.
        let origin = Origin::new("?", &format!("oid {}", f.table_oid), &f.name);
        return masker.by_name(&f.name).map(|m| (m, origin.qualified()));
    }
    None
}

/// The masking family of a type OID.
pub fn kind(oid: u32) -> Kind {
    match oid {
        16 => Kind::Bool,
        17 => Kind::Bytes,
        20 => Kind::Int(8),
        21 => Kind::Int(2),
        23 | 26 => Kind::Int(4),
        18 | 19 | 25 | 705 | 1042 | 1043 => Kind::Text,
        114 => Kind::Json,
        3802 => Kind::Jsonb,
        700 => Kind::Float(4),
        701 => Kind::Float(8),
        1700 => Kind::Numeric,
        1082 => Kind::Date,
        1083 => Kind::Time,
        1114 => Kind::Timestamp,
        1184 => Kind::TimestampTz,
        2950 => Kind::Uuid,
        _ => Kind::Other,
    }
}

/// A `DataRow` body rewritten under `columns` (the whole frame, header included), or
/// `None` if the body does not read as a row of that many columns.
pub fn data_row(body: &[u8], columns: &[Option<MaskedColumn>]) -> Option<Vec<u8>> {
    let mut r = Reader(body);
    let n = r.i16()?;
    if n < 0 || n as usize != columns.len() {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(b'D');
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&n.to_be_bytes());
    for col in columns {
        let len = r.i32()?;
        let value = if len < 0 {
            None
        } else {
            Some(r.take(len as usize)?)
        };
        match (col, value) {
            (Some(c), Some(v)) => put(&mut out, render(c, v).as_deref()),
            (_, v) => put(&mut out, v),
        }
    }
    if !r.0.is_empty() {
        return None;
    }
    let len = i32::try_from(out.len() - 1).ok()?;
    out[1..5].copy_from_slice(&len.to_be_bytes());
    Some(out)
}

/// A `DataRow` of as many NULLs as `body` has columns (the whole frame).
pub fn null_row(body: &[u8]) -> Vec<u8> {
    let n = match body {
        [a, b, ..] => i16::from_be_bytes([*a, *b]).max(0),
        _ => 0,
    };
    let mut out = Vec::with_capacity(7 + 4 * n as usize);
    out.push(b'D');
    out.extend_from_slice(&(6 + 4 * i32::from(n)).to_be_bytes());
    out.extend_from_slice(&n.to_be_bytes());
    for _ in 0..n {
        out.extend_from_slice(&(-1i32).to_be_bytes());
    }
    out
}

fn put(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(v) => {
            out.extend_from_slice(&(v.len() as i32).to_be_bytes());
            out.extend_from_slice(v);
        }
    }
}

/// The masked bytes of one value (`None`: NULL).
pub fn render(c: &MaskedColumn, value: &[u8]) -> Option<Vec<u8>> {
    let canonical = if c.binary {
        canonical(c.kind, value)
    } else {
        None
    };
    let masked = mask(&c.mask, c.kind, canonical.as_deref().unwrap_or(value));
    if c.binary {
        binary(c.kind, masked)
    } else {
        text(c.kind, masked)
    }
}

/// A binary value's text form, where hashing must agree with the text format's.
fn canonical(kind: Kind, v: &[u8]) -> Option<Vec<u8>> {
    let n = match (kind, v.len()) {
        (Kind::Int(2), 2) => i64::from(i16::from_be_bytes([v[0], v[1]])),
        (Kind::Int(4), 4) => i64::from(i32::from_be_bytes([v[0], v[1], v[2], v[3]])),
        (Kind::Int(8), 8) => i64::from_be_bytes(v.try_into().ok()?),
        (Kind::Uuid, 16) => return Some(uuid_text(v).into_bytes()),
        (Kind::Jsonb, _) => return v.get(1..).map(<[u8]>::to_vec),
        _ => return None,
    };
    Some(n.to_string().into_bytes())
}

fn text(kind: Kind, m: Masked) -> Option<Vec<u8>> {
    let s = match m {
        Masked::Null => return None,
        Masked::Text(s) => s,
        Masked::Int(n) => n.to_string(),
        Masked::Uuid(u) => uuid_text(&u),
        Masked::Zero => match kind {
            Kind::Int(_) | Kind::Float(_) | Kind::Numeric => "0".into(),
            Kind::Bool => "f".into(),
            Kind::Date => "1970-01-01".into(),
            Kind::Timestamp => "1970-01-01 00:00:00".into(),
            Kind::TimestampTz => "1970-01-01 00:00:00+00".into(),
            Kind::Time => "00:00:00".into(),
            Kind::Uuid => uuid_text(&[0; 16]),
            Kind::Bytes => "\\x".into(),
            Kind::Json | Kind::Jsonb => "\"\"".into(),
            Kind::Text | Kind::Other => String::new(),
        },
    };
    Some(s.into_bytes())
}

/// Days and microseconds from 2000-01-01 (PostgreSQL's epoch) back to 1970-01-01.
const EPOCH_DAYS: i32 = -10_957;
const EPOCH_MICROS: i64 = -946_684_800_000_000;

fn binary(kind: Kind, m: Masked) -> Option<Vec<u8>> {
    Some(match (kind, m) {
        (_, Masked::Null) | (Kind::Other, _) => return None,
        (Kind::Jsonb, Masked::Text(s)) => [&[1u8][..], s.as_bytes()].concat(),
        (_, Masked::Text(s)) => s.into_bytes(),
        (Kind::Int(2), Masked::Int(n)) => (n as i16).to_be_bytes().to_vec(),
        (Kind::Int(4), Masked::Int(n)) => (n as i32).to_be_bytes().to_vec(),
        (Kind::Int(_), Masked::Int(n)) => n.to_be_bytes().to_vec(),
        (Kind::Float(4), Masked::Int(n)) => (n as f32).to_be_bytes().to_vec(),
        (Kind::Float(_), Masked::Int(n)) => (n as f64).to_be_bytes().to_vec(),
        (Kind::Numeric, Masked::Int(n)) => numeric(n),
        (_, Masked::Uuid(u)) => u.to_vec(),
        (_, Masked::Int(_)) => return None,
        (Kind::Int(w), Masked::Zero) => vec![0; usize::from(w)],
        (Kind::Float(w), Masked::Zero) => vec![0; usize::from(w)],
        (Kind::Numeric, Masked::Zero) => numeric(0),
        (Kind::Bool, Masked::Zero) => vec![0],
        (Kind::Date, Masked::Zero) => EPOCH_DAYS.to_be_bytes().to_vec(),
        (Kind::Timestamp | Kind::TimestampTz, Masked::Zero) => EPOCH_MICROS.to_be_bytes().to_vec(),
        (Kind::Time, Masked::Zero) => vec![0; 8],
        (Kind::Uuid, Masked::Zero) => vec![0; 16],
        (Kind::Jsonb, Masked::Zero) => b"\x01\"\"".to_vec(),
        (Kind::Json, Masked::Zero) => b"\"\"".to_vec(),
        (Kind::Bytes | Kind::Text, Masked::Zero) => Vec::new(),
    })
}

/// A non-negative integer in `numeric`'s binary form: ndigits, weight, sign, dscale,
/// then base-10000 digits.
fn numeric(n: i64) -> Vec<u8> {
    let mut digits = Vec::new();
    let mut x = n.unsigned_abs();
    while x > 0 {
        digits.push((x % 10_000) as i16);
        x /= 10_000;
    }
    digits.reverse();
    let nd = digits.len() as i16;
    let mut out = Vec::with_capacity(8 + digits.len() * 2);
    out.extend_from_slice(&nd.to_be_bytes());
    out.extend_from_slice(&(nd - 1).max(0).to_be_bytes());
    out.extend_from_slice(&0i16.to_be_bytes());
    out.extend_from_slice(&0i16.to_be_bytes());
    for d in digits {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out
}

/// Bind's result format codes, from the body after its portal and statement names
/// (formats, then values): `None` when it does not read.
pub fn result_formats(after_names: &[u8]) -> Option<Vec<i16>> {
    let mut r = Reader(after_names);
    let nf = r.i16()?.max(0) as usize;
    r.take(nf * 2)?;
    let np = r.i16()?.max(0);
    for _ in 0..np {
        let len = r.i32()?;
        if len > 0 {
            r.take(len as usize)?;
        }
    }
    let nr = r.i16()?.max(0);
    (0..nr).map(|_| r.i16()).collect()
}

/// Bounds-checked reads; every read is `None` past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn i16(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Option<i32> {
        self.take(4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn cstr(&mut self) -> Option<String> {
        let end = self.0.iter().position(|&b| b == 0)?;
        let s = String::from_utf8_lossy(&self.0[..end]).into_owned();
        self.0 = &self.0[end + 1..];
        Some(s)
    }
}
