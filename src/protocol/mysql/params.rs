//! Bind parameters of `COM_STMT_EXECUTE`, decoded to text for the monitoring log using the
//! types the execute packet binds (or the ones bound before, for the same statement). A
//! value that cannot be decoded ends decoding: the statement is logged without params.

use super::packet::Reader;

/// The parameter count (from the prepare response) and the types last bound.
#[derive(Debug, Default, Clone)]
pub struct Bound {
    pub count: usize,
    /// `(type, flags)` per parameter; flags bit 0x80 is unsigned.
    pub types: Vec<(u8, u8)>,
}

/// Decodes the parameters of an execute packet's body after the command byte
/// (`stmt_id u32, flags u8, iterations u32, null bitmap, new-params-bound, types, values`).
pub fn decode(body: &[u8], bound: &mut Bound) -> Option<Vec<Option<String>>> {
    if bound.count == 0 {
        return None;
    }
    let mut r = Reader(body);
    r.take(9)?;
    let nulls = r.take(bound.count.div_ceil(8))?;
    if r.u8()? == 1 {
        let types = r.take(bound.count * 2)?;
        bound.types = types.chunks_exact(2).map(|t| (t[0], t[1])).collect();
    }
    if bound.types.len() != bound.count {
        return None;
    }
    let mut out = Vec::with_capacity(bound.count);
    for (i, &(ty, flags)) in bound.types.iter().enumerate() {
        if nulls[i / 8] & (1 << (i % 8)) != 0 {
            out.push(None);
            continue;
        }
        out.push(Some(value(&mut r, ty, flags & 0x80 != 0)?));
    }
    Some(out)
}

fn int(bytes: &[u8], unsigned: bool) -> String {
    let mut b = [0u8; 8];
    b[..bytes.len()].copy_from_slice(bytes);
    let negative = !unsigned && bytes.last().is_some_and(|x| x & 0x80 != 0);
    if negative {
        b[bytes.len()..].fill(0xFF);
        i64::from_le_bytes(b).to_string()
    } else {
        u64::from_le_bytes(b).to_string()
    }
}

fn value(r: &mut Reader<'_>, ty: u8, unsigned: bool) -> Option<String> {
    Some(match cell(r, ty, unsigned)? {
        Cell::Text(s) => s,
        Cell::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
    })
}

/// One binary-protocol value: numbers, dates and times in their text form; strings,
/// decimals, blobs, JSON, BIT, ENUM, SET, GEOMETRY as the bytes sent.
pub enum Cell<'a> {
    Text(String),
    Bytes(&'a [u8]),
}

/// Reads one binary-protocol value of type `ty` (a parameter, or a row's column).
pub fn cell<'a>(r: &mut Reader<'a>, ty: u8, unsigned: bool) -> Option<Cell<'a>> {
    Some(Cell::Text(match ty {
        0x01 => int(r.take(1)?, unsigned),        // TINY
        0x02 | 0x0d => int(r.take(2)?, unsigned), // SHORT, YEAR
        0x03 | 0x09 => int(r.take(4)?, unsigned), // LONG, INT24
        0x08 => int(r.take(8)?, unsigned),        // LONGLONG
        0x04 => f32::from_le_bytes(r.take(4)?.try_into().ok()?).to_string(),
        0x05 => f64::from_le_bytes(r.take(8)?.try_into().ok()?).to_string(),
        0x06 => return Some(Cell::Text(String::new())), // NULL type: no value
        0x07 | 0x0a | 0x0c => datetime(r)?,
        0x0b => time(r)?,
        _ => {
            let len = usize::try_from(r.lenenc()?).ok()?;
            return Some(Cell::Bytes(r.take(len)?));
        }
    }))
}

fn datetime(r: &mut Reader<'_>) -> Option<String> {
    let len = r.u8()?;
    let b = r.take(len.into())?;
    let (y, mo, d) = match b {
        [] => (0, 0, 0),
        [y0, y1, mo, d, ..] => (u16::from_le_bytes([*y0, *y1]), *mo, *d),
        _ => return None,
    };
    let mut s = format!("{y:04}-{mo:02}-{d:02}");
    if let [_, _, _, _, h, mi, se, rest @ ..] = b {
        s.push_str(&format!(" {h:02}:{mi:02}:{se:02}"));
        if let [a, b2, c, e] = rest {
            s.push_str(&format!(".{:06}", u32::from_le_bytes([*a, *b2, *c, *e])));
        }
    }
    Some(s)
}

fn time(r: &mut Reader<'_>) -> Option<String> {
    let len = r.u8()?;
    let b = r.take(len.into())?;
    let [neg, d0, d1, d2, d3, h, mi, se, rest @ ..] = b else {
        return (b.is_empty()).then(|| "00:00:00".to_owned());
    };
    let hours = u64::from(u32::from_le_bytes([*d0, *d1, *d2, *d3])) * 24 + u64::from(*h);
    let sign = if *neg == 1 { "-" } else { "" };
    let mut s = format!("{sign}{hours:02}:{mi:02}:{se:02}");
    if let [a, b2, c, e] = rest {
        s.push_str(&format!(".{:06}", u32::from_le_bytes([*a, *b2, *c, *e])));
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn execute(nulls: u8, types: &[(u8, u8)], values: &[u8]) -> Vec<u8> {
        let mut b = vec![1, 0, 0, 0, 0, 1, 0, 0, 0, nulls, 1];
        for (t, f) in types {
            b.extend([*t, *f]);
        }
        b.extend_from_slice(values);
        b
    }

    #[test]
    fn integers_strings_nulls_and_dates_decode() {
        let types = [
            (0x08, 0),
            (0x01, 0),
            (0xfd, 0),
            (0x03, 0x80),
            (0x0c, 0),
            (0x05, 0),
        ];
        let mut values = vec![];
        values.extend(42i64.to_le_bytes());
        values.push(0xff); // -1 as a signed TINY
        values.extend([5, b'h', b'e', b'l', b'l', b'o']);
        // 4th is NULL (bit 3)
        values.extend([7, 0xea, 0x07, 12, 1, 10, 30, 5]); // 2026-12-01 10:30:05
        values.extend(1.5f64.to_le_bytes());
        let mut bound = Bound {
            count: 6,
            types: vec![],
        };
        let got = decode(&execute(0b1000, &types, &values), &mut bound).expect("decodes");
        let want = [
            Some("42"),
            Some("-1"),
            Some("hello"),
            None,
            Some("2026-12-01 10:30:05"),
            Some("1.5"),
        ];
        assert_eq!(got, want.map(|v| v.map(str::to_owned)));
        // A later execute may omit the types: the bound ones are reused.
        let mut again = vec![1, 0, 0, 0, 0, 1, 0, 0, 0, 0b1100, 0];
        again.extend(7i64.to_le_bytes());
        again.push(1);
        again.extend([7, 0xea, 0x07, 1, 2, 0, 0, 0]);
        again.extend(2.0f64.to_le_bytes());
        let got = decode(&again, &mut bound).expect("reuses types");
        assert_eq!(got[0].as_deref(), Some("7"));
        assert_eq!(got[4].as_deref(), Some("2026-01-02 00:00:00"));
    }

    #[test]
    fn unsigned_and_truncated_input() {
        let mut bound = Bound {
            count: 1,
            types: vec![],
        };
        let body = execute(0, &[(0x03, 0x80)], &u32::MAX.to_le_bytes());
        assert_eq!(
            decode(&body, &mut bound),
            Some(vec![Some("4294967295".into())])
        );
        for cut in 0..body.len() {
            let mut fresh = Bound {
                count: 1,
                types: vec![],
            };
            assert_eq!(decode(&body[..cut], &mut fresh), None, "cut at {cut}");
        }
    }
}
