//! MySQL packets: `Int24 length, Int8 sequence id, payload`, capability flags, and the
//! few packets the gateway writes itself (handshake, OK, ERR, auth switch).

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub mod caps {
    pub const LONG_PASSWORD: u32 = 1;
    pub const FOUND_ROWS: u32 = 1 << 1;
    pub const LONG_FLAG: u32 = 1 << 2;
    pub const CONNECT_WITH_DB: u32 = 1 << 3;
    pub const COMPRESS: u32 = 1 << 5;
    pub const LOCAL_FILES: u32 = 1 << 7;
    pub const IGNORE_SPACE: u32 = 1 << 8;
    pub const PROTOCOL_41: u32 = 1 << 9;
    pub const INTERACTIVE: u32 = 1 << 10;
    pub const SSL: u32 = 1 << 11;
    pub const TRANSACTIONS: u32 = 1 << 13;
    pub const SECURE_CONNECTION: u32 = 1 << 15;
    pub const MULTI_STATEMENTS: u32 = 1 << 16;
    pub const MULTI_RESULTS: u32 = 1 << 17;
    pub const PS_MULTI_RESULTS: u32 = 1 << 18;
    pub const PLUGIN_AUTH: u32 = 1 << 19;
    pub const CONNECT_ATTRS: u32 = 1 << 20;
    pub const PLUGIN_AUTH_LENENC: u32 = 1 << 21;
    pub const SESSION_TRACK: u32 = 1 << 23;
    pub const DEPRECATE_EOF: u32 = 1 << 24;

    /// What the gateway offers clients (plus SSL when TLS is configured). No compression
    /// and no DEPRECATE_EOF: relayed result sets keep their EOF packets.
    pub const GATEWAY: u32 = LONG_PASSWORD
        | FOUND_ROWS
        | LONG_FLAG
        | CONNECT_WITH_DB
        | LOCAL_FILES
        | IGNORE_SPACE
        | PROTOCOL_41
        | INTERACTIVE
        | TRANSACTIONS
        | SECURE_CONNECTION
        | MULTI_STATEMENTS
        | MULTI_RESULTS
        | PS_MULTI_RESULTS
        | PLUGIN_AUTH
        | CONNECT_ATTRS
        | PLUGIN_AUTH_LENENC
        | SESSION_TRACK;
}

/// Largest packet accepted before authentication.
pub const MAX_LOGIN_PACKET: usize = 64 * 1024;

/// MySQL error codes the gateway answers with (the server's own numbers).
pub mod code {
    /// ER_CON_COUNT_ERROR
    pub const TOO_MANY_CONNECTIONS: u16 = 1040;
    /// ER_DBACCESS_DENIED_ERROR
    pub const DB_ACCESS_DENIED: u16 = 1044;
    /// ER_ACCESS_DENIED_ERROR
    pub const ACCESS_DENIED: u16 = 1045;
    /// ER_NO_DB_ERROR
    pub const NO_DB: u16 = 1046;
    /// ER_NO_SUCH_THREAD ("Unknown thread id")
    pub const NO_SUCH_THREAD: u16 = 1094;
    /// ER_UNKNOWN_ERROR
    pub const UNKNOWN: u16 = 1105;
    /// ER_SPECIFIC_ACCESS_DENIED_ERROR
    pub const SPECIFIC_ACCESS_DENIED: u16 = 1227;
    /// ER_SECURE_TRANSPORT_REQUIRED
    pub const SECURE_TRANSPORT_REQUIRED: u16 = 3159;
}
pub const SERVER_MORE_RESULTS_EXISTS: u16 = 0x0008;
pub const STATUS_AUTOCOMMIT: u16 = 0x0002;
pub const STATUS_IN_TRANS: u16 = 0x0001;

/// Reads one packet, refusing payloads over `max`.
pub async fn read<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> std::io::Result<(u8, Vec<u8>)> {
    let mut header = [0u8; 4];
    r.read_exact(&mut header).await?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
    if len > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("packet of {len} bytes during login"),
        ));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    Ok((header[3], payload))
}

pub async fn write<W: AsyncWrite + Unpin>(
    w: &mut W,
    seq: u8,
    payload: &[u8],
) -> std::io::Result<()> {
    w.write_all(&frame(seq, payload)).await?;
    w.flush().await
}

pub fn frame(seq: u8, payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_le_bytes();
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&[len[0], len[1], len[2], seq]);
    out.extend_from_slice(payload);
    out
}

/// OK: 0x00, affected rows 0, last insert id 0, status, warnings 0.
pub fn ok() -> Vec<u8> {
    let mut p = vec![0x00, 0, 0];
    p.extend_from_slice(&STATUS_AUTOCOMMIT.to_le_bytes());
    p.extend_from_slice(&[0, 0]);
    p
}

/// ERR: 0xFF, code, '#', SQLSTATE, message.
pub fn err(code: u16, sqlstate: &str, message: &str) -> Vec<u8> {
    let mut p = vec![0xFF];
    p.extend_from_slice(&code.to_le_bytes());
    p.push(b'#');
    p.extend_from_slice(sqlstate.as_bytes());
    p.extend_from_slice(message.as_bytes());
    p
}

/// EOF: 0xFE, warnings 0, status.
pub fn eof() -> Vec<u8> {
    let mut p = vec![0xFE, 0, 0];
    p.extend_from_slice(&STATUS_AUTOCOMMIT.to_le_bytes());
    p
}

/// Appends a length-encoded string.
pub fn lenenc_str(p: &mut Vec<u8>, s: &[u8]) {
    lenenc_int(p, s.len() as u64);
    p.extend_from_slice(s);
}

/// Appends a length-encoded integer.
pub fn lenenc_int(p: &mut Vec<u8>, n: u64) {
    match n {
        0..0xFB => p.push(n as u8),
        0xFB..0x1_0000 => {
            p.push(0xFC);
            p.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..0x100_0000 => {
            p.push(0xFD);
            p.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
        }
        _ => {
            p.push(0xFE);
            p.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// A text result set of string columns (for a client without `DEPRECATE_EOF`, which the
/// gateway never offers): the payloads, in order.
pub fn text_result(columns: &[&str], rows: &[Vec<Option<String>>]) -> Vec<Vec<u8>> {
    let mut out = vec![vec![columns.len() as u8]];
    for name in columns {
        let mut p = Vec::new();
        for part in [&b"def"[..], b"", b"", b"", name.as_bytes(), name.as_bytes()] {
            lenenc_str(&mut p, part);
        }
        p.push(0x0c);
        p.extend_from_slice(&45u16.to_le_bytes()); // utf8mb4_general_ci
        p.extend_from_slice(&1024u32.to_le_bytes());
        p.push(0xFD); // VAR_STRING
        p.extend_from_slice(&[0, 0, 0x1F, 0, 0]); // flags, decimals, filler
        out.push(p);
    }
    out.push(eof());
    for row in rows {
        let mut p = Vec::new();
        for value in row {
            match value {
                Some(v) => lenenc_str(&mut p, v.as_bytes()),
                None => p.push(0xFB),
            }
        }
        out.push(p);
    }
    out.push(eof());
    out
}

/// HandshakeV10 with a 20-byte scramble and the default plugin.
pub fn handshake(
    conn_id: u32,
    scramble: &[u8; 20],
    caps: u32,
    version: &str,
    plugin: &str,
) -> Vec<u8> {
    let mut p = vec![10];
    p.extend_from_slice(version.as_bytes());
    p.push(0);
    p.extend_from_slice(&conn_id.to_le_bytes());
    p.extend_from_slice(&scramble[..8]);
    p.push(0);
    p.extend_from_slice(&(caps as u16).to_le_bytes());
    p.push(45); // utf8mb4_general_ci
    p.extend_from_slice(&STATUS_AUTOCOMMIT.to_le_bytes());
    p.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    p.push(21);
    p.extend_from_slice(&[0; 10]);
    p.extend_from_slice(&scramble[8..]);
    p.push(0);
    p.extend_from_slice(plugin.as_bytes());
    p.push(0);
    p
}

/// AuthSwitchRequest: 0xFE, plugin, data.
pub fn auth_switch(plugin: &str, scramble: &[u8; 20]) -> Vec<u8> {
    let mut p = vec![0xFE];
    p.extend_from_slice(plugin.as_bytes());
    p.push(0);
    p.extend_from_slice(scramble);
    p.push(0);
    p
}

/// AuthSwitchRequest to `mysql_clear_password` (sent only over TLS).
pub fn auth_switch_clear() -> Vec<u8> {
    let mut p = vec![0xFE];
    p.extend_from_slice(super::handshake::CLEAR.as_bytes());
    p.push(0);
    p
}

/// Bounds-checked reads over a payload; every read is `None` past the end.
pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    pub fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    pub fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// Length-encoded integer.
    pub fn lenenc(&mut self) -> Option<u64> {
        match self.u8()? {
            n @ 0..=0xFA => Some(n.into()),
            0xFC => self
                .take(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]).into()),
            0xFD => self
                .take(3)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], 0]).into()),
            0xFE => self
                .take(8)
                .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))),
            _ => None,
        }
    }
    pub fn nul_str(&mut self) -> Option<&'a [u8]> {
        let end = self.0.iter().position(|&b| b == 0)?;
        let s = &self.0[..end];
        self.0 = &self.0[end + 1..];
        Some(s)
    }
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
