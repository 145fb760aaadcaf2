//! MySQL: what masking must know of a column's type (the row rewriting itself is the
//! relay's, `relay::mysql_masking`).

use super::value::Kind;

/// The masking family of a MySQL type code (charset 63: binary).
pub fn kind(code: u8, charset: u16) -> Kind {
    match code {
        0x01 => Kind::Int(1),
        0x02 | 0x0d => Kind::Int(2),
        0x03 | 0x09 => Kind::Int(4),
        0x08 => Kind::Int(8),
        0x04 => Kind::Float(4),
        0x05 => Kind::Float(8),
        0x00 | 0xf6 => Kind::Numeric,
        0x0a => Kind::Date,
        0x07 | 0x0c => Kind::Timestamp,
        0x0b => Kind::Time,
        0xf5 => Kind::Json,
        0x0f | 0xf9..=0xfe if charset == 63 => Kind::Bytes,
        _ => Kind::Text,
    }
}
