//! Splits one direction of a stream into frames as bytes arrive, without holding them
//! back: the relay forwards every read as it is, and the framer reports each frame's
//! header and, for the frames the caller wants to see, its body (up to a limit). A body
//! that lies wholly inside one read is passed as a slice of it; only a wanted body split
//! across reads is copied. The wire format — PostgreSQL's `Byte1 tag, Int32 len` or
//! MySQL's `Int24 len, Int8 seq` — is a `Wire`.

use std::marker::PhantomData;

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
}

/// PostgreSQL after startup: `Byte1 tag, Int32 length-including-itself`.
#[derive(Debug, Default)]
pub struct Pg;

impl Wire for Pg {
    const HEADER: usize = 5;
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
    /// The current frame's declared body length.
    declared: usize,
    capturing: bool,
    body: Vec<u8>,
    limit: usize,
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
            declared: 0,
            capturing: false,
            body: Vec::new(),
            limit,
            wire: PhantomData,
        }
    }

    /// True between frames: a message can be injected here without corrupting the stream.
    pub fn at_boundary(&self) -> bool {
        self.header_len == 0 && self.remaining == 0
    }

    /// Feeds one read. `wants(header)` says whether the body is needed; `on_frame(header,
    /// body, truncated)` is called once per completed frame (with an empty body when not
    /// wanted; a wanted body beyond the limit is cut and reported truncated).
    pub fn feed(
        &mut self,
        mut data: &[u8],
        wants: impl Fn(&[u8]) -> bool,
        mut on_frame: impl FnMut(&[u8], &[u8], bool),
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
                    let kept = if want {
                        &body[..body.len().min(self.limit)]
                    } else {
                        &[]
                    };
                    on_frame(header, kept, want && body.len() > self.limit);
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
                    on_frame(&header[..h], &[], false);
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
            }
            self.remaining -= take;
            data = &data[take..];
            if self.remaining == 0 {
                let truncated = self.capturing && self.declared > self.limit;
                let header = self.header;
                on_frame(&header[..h], &self.body, truncated);
                self.body.clear();
                self.capturing = false;
            }
        }
        Ok(())
    }

    fn start(&mut self, body_len: usize, capture: bool) {
        self.remaining = body_len;
        self.declared = body_len;
        self.capturing = capture;
        self.header_len = 0;
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
                    |h, b, trunc| seen = Some((h[0], b.len(), trunc)),
                )
                .expect("valid");
        }
        assert_eq!(seen, Some((b'Q', CAPTURE_LIMIT, true)));
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
                f.feed(part, |_| true, |h, b, t| out.push((h[3], b.to_vec(), t)))
                    .expect("valid");
            }
            out
        };
        let whole = frames(0);
        assert_eq!(whole.len(), 3);
        assert_eq!(whole[2].1.len(), 16, "bodies are cut at the limit");
        assert!(whole[2].2);
        for split in 0..stream.len() {
            assert_eq!(frames(split), whole, "split at {split}");
        }
    }
}
