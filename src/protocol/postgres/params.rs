//! Bind parameters as the monitoring log shows them: text-format values as sent; binary
//! ones (pgjdbc binds numbers in binary once a statement is server-prepared) decoded to
//! PostgreSQL's text form when the statement's Parse named a type we read, otherwise as
//! `\x` and hex — which is also the text form of `bytea`.

/// Type OIDs (`pg_type.oid`).
mod oid {
    pub const BOOL: u32 = 16;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
}

/// One binary value of type `oid` in text form.
pub fn binary(oid: u32, bytes: &[u8]) -> String {
    decoded(oid, bytes).unwrap_or_else(|| format!("\\x{}", hex::encode(bytes)))
}

fn decoded(oid: u32, b: &[u8]) -> Option<String> {
    let text = |b: &[u8]| std::str::from_utf8(b).ok().map(str::to_owned);
    Some(match oid {
        oid::BOOL => match b {
            [0] => "f".into(),
            [1] => "t".into(),
            _ => return None,
        },
        oid::INT2 => i16::from_be_bytes(b.try_into().ok()?).to_string(),
        oid::INT4 => i32::from_be_bytes(b.try_into().ok()?).to_string(),
        oid::INT8 => i64::from_be_bytes(b.try_into().ok()?).to_string(),
        oid::OID => u32::from_be_bytes(b.try_into().ok()?).to_string(),
        oid::FLOAT4 => float(f32::from_be_bytes(b.try_into().ok()?).into()),
        oid::FLOAT8 => float(f64::from_be_bytes(b.try_into().ok()?)),
        oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME | oid::JSON => text(b)?,
        oid::JSONB => match b.split_first() {
            Some((1, rest)) => text(rest)?,
            _ => return None,
        },
        oid::UUID => {
            let h = hex::encode(<[u8; 16]>::try_from(b).ok()?);
            format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            )
        }
        _ => return None,
    })
}

/// PostgreSQL's spelling of the non-finite floats.
fn float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        f.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_values_in_text_form() {
        assert_eq!(binary(oid::INT4, &9i32.to_be_bytes()), "9");
        assert_eq!(binary(oid::INT8, &(-7i64).to_be_bytes()), "-7");
        assert_eq!(binary(oid::INT2, &300i16.to_be_bytes()), "300");
        assert_eq!(binary(oid::BOOL, &[1]), "t");
        assert_eq!(binary(oid::FLOAT8, &2.5f64.to_be_bytes()), "2.5");
        assert_eq!(binary(oid::FLOAT4, &f32::NAN.to_be_bytes()), "NaN");
        assert_eq!(binary(oid::VARCHAR, "naïve".as_bytes()), "naïve");
        assert_eq!(binary(oid::JSONB, b"\x01{\"a\":1}"), "{\"a\":1}");
        assert_eq!(
            binary(oid::UUID, &[0x12; 16]),
            "12121212-1212-1212-1212-121212121212"
        );
        // Unknown types, unnamed types and malformed values: hex, as bytea is shown.
        assert_eq!(binary(0, &[0, 0, 0, 9]), "\\x00000009");
        assert_eq!(binary(oid::INT4, &[1, 2]), "\\x0102");
        assert_eq!(binary(oid::TEXT, &[0xff]), "\\xff");
        assert_eq!(binary(oid::BOOL, &[2]), "\\x02");
    }
}
