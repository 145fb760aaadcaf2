//! Splits one direction of a PostgreSQL stream into frames (`Byte1 tag, Int32 len, body`)
//! as bytes arrive, without holding them back: the relay forwards every read as it is,
//! and the framer reports each frame's tag and, for the tags the caller wants to see, its
//! body. A body that lies wholly inside one read is passed as a slice of it; only a
//! wanted body split across reads is copied (up to `CAPTURE_LIMIT`).

/// Longest body kept for observation; longer ones are reported truncated.
pub const CAPTURE_LIMIT: usize = 1 << 20;

#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// A length below 4 cannot be a PostgreSQL frame.
    BadLength(i32),
}

#[derive(Debug, Default)]
pub struct Framer {
    header: [u8; 5],
    header_len: usize,
    /// Body bytes still to come for the current frame.
    remaining: usize,
    tag: u8,
    capturing: bool,
    body: Vec<u8>,
}

impl Framer {
    /// True between frames: a message can be injected here without corrupting the stream.
    pub fn at_boundary(&self) -> bool {
        self.header_len == 0 && self.remaining == 0
    }

    /// Feeds one read. `wants(tag)` says whether the body is needed; `on_frame(tag, body,
    /// truncated)` is called once per completed frame (with an empty body when not wanted).
    pub fn feed(
        &mut self,
        mut data: &[u8],
        wants: impl Fn(u8) -> bool,
        mut on_frame: impl FnMut(u8, &[u8], bool),
    ) -> Result<(), FrameError> {
        while !data.is_empty() {
            if self.remaining == 0 && self.header_len == 0 && data.len() >= 5 {
                // Fast path: the header is whole in this read.
                let len = i32::from_be_bytes([data[1], data[2], data[3], data[4]]);
                let body_len = body_len(len)?;
                let tag = data[0];
                data = &data[5..];
                if data.len() >= body_len {
                    let (body, rest) = data.split_at(body_len);
                    on_frame(tag, if wants(tag) { body } else { &[] }, false);
                    data = rest;
                    continue;
                }
                self.start(tag, body_len, wants(tag));
                continue;
            }
            if self.remaining == 0 {
                // Assemble a header split across reads.
                let take = (5 - self.header_len).min(data.len());
                self.header[self.header_len..self.header_len + take].copy_from_slice(&data[..take]);
                self.header_len += take;
                data = &data[take..];
                if self.header_len < 5 {
                    return Ok(());
                }
                let h = self.header;
                let body_len = body_len(i32::from_be_bytes([h[1], h[2], h[3], h[4]]))?;
                self.header_len = 0;
                if body_len == 0 {
                    on_frame(h[0], &[], false);
                    continue;
                }
                self.start(h[0], body_len, wants(h[0]));
                continue;
            }
            // Inside a body that spans reads.
            let take = self.remaining.min(data.len());
            if self.capturing {
                let room = CAPTURE_LIMIT.saturating_sub(self.body.len());
                self.body.extend_from_slice(&data[..take.min(room)]);
            }
            self.remaining -= take;
            data = &data[take..];
            if self.remaining == 0 {
                let truncated = self.capturing && self.body.len() >= CAPTURE_LIMIT;
                on_frame(self.tag, &self.body, truncated);
                self.body.clear();
                self.capturing = false;
            }
        }
        Ok(())
    }

    fn start(&mut self, tag: u8, body_len: usize, capture: bool) {
        self.tag = tag;
        self.remaining = body_len;
        self.capturing = capture;
        self.header_len = 0;
    }
}

fn body_len(len: i32) -> Result<usize, FrameError> {
    if len < 4 {
        return Err(FrameError::BadLength(len));
    }
    Ok(len as usize - 4)
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
        let mut framer = Framer::default();
        let mut out = vec![];
        let mut start = 0;
        for &end in split.iter().chain([stream.len()].iter()) {
            framer
                .feed(
                    &stream[start..end],
                    |t| t != b'D',
                    |t, b, _| out.push((t, b.to_vec())),
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
        let mut framer = Framer::default();
        let r = framer.feed(&[b'Q', 0, 0, 0, 1], |_| true, |_, _, _| {});
        assert_eq!(r, Err(FrameError::BadLength(1)));
        let r = Framer::default().feed(&[b'Q', 0xff, 0xff, 0xff, 0xff], |_| true, |_, _, _| {});
        assert!(r.is_err());
    }

    #[test]
    fn long_split_bodies_are_truncated_at_the_limit() {
        let body = vec![b'a'; CAPTURE_LIMIT + 10];
        let stream = frame(b'Q', &body);
        let mut framer = Framer::default();
        let mut seen = None;
        for chunk in stream.chunks(65536) {
            framer
                .feed(
                    chunk,
                    |_| true,
                    |t, b, trunc| seen = Some((t, b.len(), trunc)),
                )
                .expect("valid");
        }
        assert_eq!(seen, Some((b'Q', CAPTURE_LIMIT, true)));
    }
}
