//! Splits one direction of a stream into frames as bytes arrive, without holding them
//! back: the relay forwards every read as it is, and the framer reports each frame's
//! header and, for the frames the caller wants to see, its body (up to a limit). A body
//! that lies wholly inside one read is passed as a slice of it; only a wanted body split
//! across reads is copied. The wire format — PostgreSQL's `Byte1 tag, Int32 len` or
//! MySQL's `Int24 len, Int8 seq` — is a `Wire`.

use std::marker::PhantomData;

use sha2::{Digest, Sha256};

/// Longest body kept for observation by default; longer ones are reported truncated.
pub const CAPTURE_LIMIT: usize = 1 << 20;

#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// A declared length that cannot be (below 4 for PostgreSQL).
    BadLength(i64),
}

/// A frame header format.
pub trait Wire {
    const HEADER: usize;
    /// The body length `header` (exactly `HEADER` bytes) declares.
    fn body_len(header: &[u8]) -> Result<usize, FrameError>;
    /// Where a statement's text lies in the body of a frame with this header, for the
    /// length and hash of one too long to keep whole.
    fn text_window(header: &[u8]) -> TextWindow;
}

/// A statement text inside a body: after `skip_nuls` NUL-terminated strings and
/// `skip_bytes` bytes, up to the next NUL (`nul_ends`) or the end of the body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TextWindow {
    pub skip_nuls: u8,
    pub skip_bytes: u8,
    pub nul_ends: bool,
}

pub use crate::audit::Cut;

/// Hashes a statement's text as the bytes of its frame pass.
#[derive(Debug)]
struct TextHash {
    window: TextWindow,
    done: bool,
    len: u64,
    hasher: Sha256,
}

impl TextHash {
    fn new(window: TextWindow) -> TextHash {
        TextHash {
            window,
            done: false,
            len: 0,
            hasher: Sha256::new(),
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() && !self.done {
            let w = &mut self.window;
            if w.skip_nuls > 0 {
                match data.iter().position(|&b| b == 0) {
                    Some(i) => {
                        w.skip_nuls -= 1;
                        data = &data[i + 1..];
                    }
                    None => return,
                }
            } else if w.skip_bytes > 0 {
                let n = data.len().min(usize::from(w.skip_bytes));
                w.skip_bytes -= n as u8;
                data = &data[n..];
            } else {
                let end = if w.nul_ends {
                    data.iter().position(|&b| b == 0)
                } else {
                    None
                };
                let text = &data[..end.unwrap_or(data.len())];
                self.hasher.update(text);
                self.len += text.len() as u64;
                self.done = end.is_some();
                return;
            }
        }
    }

    fn finish(self) -> Cut {
        Cut {
            len: self.len,
            sha256: self.hasher.finalize().into(),
        }
    }
}

/// PostgreSQL after startup: `Byte1 tag, Int32 length-including-itself`.
#[derive(Debug, Default)]
pub struct Pg;

impl Wire for Pg {
    const HEADER: usize = 5;
    fn text_window(h: &[u8]) -> TextWindow {
        // Query: the text; Parse: a statement name, then the text.
        let skip_nuls = u8::from(h.first() == Some(&b'P'));
        TextWindow {
            skip_nuls,
            skip_bytes: 0,
            nul_ends: true,
        }
    }

    fn body_len(h: &[u8]) -> Result<usize, FrameError> {
        let len = match h {
            [_, a, b, c, d] => i32::from_be_bytes([*a, *b, *c, *d]),
            _ => return Err(FrameError::BadLength(-1)),
        };
        if len < 4 {
            return Err(FrameError::BadLength(len.into()));
        }
        Ok(len as usize - 4)
    }
}

/// MySQL: `Int24 payload length (LE), Int8 sequence id`.
#[derive(Debug, Default)]
pub struct My;

impl Wire for My {
    const HEADER: usize = 4;
    fn text_window(_: &[u8]) -> TextWindow {
        // A command byte, then the text to the end of the packet.
        TextWindow {
            skip_nuls: 0,
            skip_bytes: 1,
            nul_ends: false,
        }
    }

    fn body_len(h: &[u8]) -> Result<usize, FrameError> {
        match h {
            [a, b, c, _] => Ok(u32::from_le_bytes([*a, *b, *c, 0]) as usize),
            _ => Err(FrameError::BadLength(-1)),
        }
    }
}

#[derive(Debug)]
pub struct Framer<W: Wire> {
    header: [u8; 5],
    header_len: usize,
    /// Body bytes still to come for the current frame.
    remaining: usize,
    capturing: bool,
    body: Vec<u8>,
    limit: usize,
    /// The statement text of a wanted body longer than `limit`, hashed as it passes.
    text: Option<TextHash>,
    wire: PhantomData<W>,
}

impl<W: Wire> Default for Framer<W> {
    fn default() -> Self {
        Framer::with_limit(CAPTURE_LIMIT)
    }
}

impl<W: Wire> Framer<W> {
    /// A framer that keeps at most `limit` bytes of a wanted body.
    pub fn with_limit(limit: usize) -> Self {
        Framer {
            header: [0; 5],
            header_len: 0,
            remaining: 0,
            capturing: false,
            body: Vec::new(),
            limit,
            text: None,
            wire: PhantomData,
        }
    }

    /// True between frames: a message can be injected here without corrupting the stream.
    pub fn at_boundary(&self) -> bool {
        self.header_len == 0 && self.remaining == 0
    }

    /// Feeds one read. `wants(header)` says whether the body is needed; `on_frame(header,
    /// body, cut)` is called once per completed frame (with an empty body when not wanted;
    /// a wanted body beyond the limit is cut, with the full statement text's length and
    /// hash in `cut`).
    pub fn feed(
        &mut self,
        mut data: &[u8],
        wants: impl Fn(&[u8]) -> bool,
        mut on_frame: impl FnMut(&[u8], &[u8], Option<&Cut>),
    ) -> Result<(), FrameError> {
        let h = W::HEADER;
        while !data.is_empty() {
            if self.remaining == 0 && self.header_len == 0 && data.len() >= h {
                // Fast path: the header is whole in this read.
                let (header, rest) = data.split_at(h);
                let body_len = W::body_len(header)?;
                data = rest;
                if data.len() >= body_len {
                    let (body, rest) = data.split_at(body_len);
                    let want = wants(header);
                    if want && body.len() > self.limit {
                        let mut text = TextHash::new(W::text_window(header));
                        text.update(body);
                        let cut = text.finish();
                        on_frame(header, &body[..self.limit], Some(&cut));
                    } else {
                        on_frame(header, if want { body } else { &[] }, None);
                    }
                    data = rest;
                    continue;
                }
                self.header[..h].copy_from_slice(header);
                self.start(body_len, wants(header));
                continue;
            }
            if self.remaining == 0 {
                // Assemble a header split across reads.
                let take = (h - self.header_len).min(data.len());
                self.header[self.header_len..self.header_len + take].copy_from_slice(&data[..take]);
                self.header_len += take;
                data = &data[take..];
                if self.header_len < h {
                    return Ok(());
                }
                let header = self.header;
                let body_len = W::body_len(&header[..h])?;
                self.header_len = 0;
                if body_len == 0 {
                    on_frame(&header[..h], &[], None);
                    continue;
                }
                self.start(body_len, wants(&header[..h]));
                continue;
            }
            // Inside a body that spans reads.
            let take = self.remaining.min(data.len());
            if self.capturing {
                let room = self.limit.saturating_sub(self.body.len());
                self.body.extend_from_slice(&data[..take.min(room)]);
                if let Some(text) = &mut self.text {
                    text.update(&data[..take]);
                }
            }
            self.remaining -= take;
            data = &data[take..];
            if self.remaining == 0 {
                let cut = self.text.take().map(TextHash::finish);
                let header = self.header;
                on_frame(&header[..h], &self.body, cut.as_ref());
                self.body.clear();
                self.capturing = false;
            }
        }
        Ok(())
    }

    fn start(&mut self, body_len: usize, capture: bool) {
        self.remaining = body_len;
        self.capturing = capture;
        self.header_len = 0;
        self.text = (capture && body_len > self.limit)
            .then(|| TextHash::new(W::text_window(&self.header[..W::HEADER])));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut f = vec![tag];
        f.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        f.extend_from_slice(body);
        f
    }

    fn frames_of(stream: &[u8], split: &[usize]) -> Vec<(u8, Vec<u8>)> {
        let mut framer = Framer::<Pg>::default();
        let mut out = vec![];
        let mut start = 0;
        for &end in split.iter().chain([stream.len()].iter()) {
            framer
                .feed(
                    &stream[start..end],
                    |h| h[0] != b'D',
                    |h, b, _| out.push((h[0], b.to_vec())),
                )
                .expect("valid stream");
            start = end;
        }
        assert!(framer.at_boundary());
        out
    }

    #[test]
    fn any_split_yields_the_same_frames() {
        let mut stream = frame(b'Q', b"select 1\0");
        stream.extend(frame(b'D', b"row-data"));
        stream.extend(frame(b'S', b""));
        stream.extend(frame(b'P', &[b'x'; 300]));
        let whole = frames_of(&stream, &[]);
        assert_eq!(whole.len(), 4);
        assert_eq!(whole[1], (b'D', vec![]), "unwanted bodies are not passed");
        for a in 0..stream.len() {
            for b in a..stream.len() {
                assert_eq!(frames_of(&stream, &[a, b]), whole, "split at {a},{b}");
            }
        }
    }

    #[test]
    fn a_bad_length_is_an_error_not_a_panic() {
        let mut framer = Framer::<Pg>::default();
        let r = framer.feed(&[b'Q', 0, 0, 0, 1], |_| true, |_, _, _| {});
        assert_eq!(r, Err(FrameError::BadLength(1)));
        let r =
            Framer::<Pg>::default().feed(&[b'Q', 0xff, 0xff, 0xff, 0xff], |_| true, |_, _, _| {});
        assert!(r.is_err());
    }

    #[test]
    fn long_split_bodies_are_truncated_at_the_limit() {
        let body = vec![b'a'; CAPTURE_LIMIT + 10];
        let stream = frame(b'Q', &body);
        let mut framer = Framer::<Pg>::default();
        let mut seen = None;
        for chunk in stream.chunks(65536) {
            framer
                .feed(
                    chunk,
                    |_| true,
                    |h, b, cut| seen = Some((h[0], b.len(), cut.cloned())),
                )
                .expect("valid");
        }
        let cut = Cut {
            len: body.len() as u64,
            sha256: Sha256::digest(&body).into(),
        };
        assert_eq!(seen, Some((b'Q', CAPTURE_LIMIT, Some(cut))));
    }

    #[test]
    fn a_cut_statement_is_measured_and_hashed_whole_however_it_arrives() {
        let text = vec![b'x'; CAPTURE_LIMIT * 2 + 3];
        let mut parse = b"stmt\0".to_vec();
        parse.extend(&text);
        parse.extend(b"\0\0\x01\0\0\0\x17");
        let stream = frame(b'P', &parse);
        let want = Cut {
            len: text.len() as u64,
            sha256: Sha256::digest(&text).into(),
        };
        for size in [stream.len(), 7, 65536, 1 << 20] {
            let mut framer = Framer::<Pg>::default();
            let mut seen = None;
            for chunk in stream.chunks(size) {
                framer
                    .feed(
                        chunk,
                        |_| true,
                        |_, b, cut| seen = Some((b.len(), cut.cloned())),
                    )
                    .expect("valid");
            }
            assert_eq!(
                seen,
                Some((CAPTURE_LIMIT, Some(want.clone()))),
                "reads of {size}"
            );
        }
    }
}

#[cfg(test)]
mod mysql_tests {
    use super::*;

    #[test]
    fn mysql_packets_split_anywhere_yield_the_same_frames() {
        let mut stream = vec![];
        for (seq, body) in [(0u8, &b"\x03select 1"[..]), (1, b""), (2, &[0u8; 300][..])] {
            stream.extend_from_slice(&(body.len() as u32).to_le_bytes()[..3]);
            stream.push(seq);
            stream.extend_from_slice(body);
        }
        let frames = |split: usize| {
            let mut f = Framer::<My>::with_limit(16);
            let mut out = vec![];
            for part in [&stream[..split], &stream[split..]] {
                f.feed(
                    part,
                    |_| true,
                    |h, b, t| out.push((h[3], b.to_vec(), t.cloned())),
                )
                .expect("valid");
            }
            out
        };
        let whole = frames(0);
        assert_eq!(whole.len(), 3);
        assert_eq!(whole[2].1.len(), 16, "bodies are cut at the limit");
        assert_eq!(whole[2].2.as_ref().map(|c| c.len), Some(299));
        for split in 0..stream.len() {
            assert_eq!(frames(split), whole, "split at {split}");
        }
    }
}
