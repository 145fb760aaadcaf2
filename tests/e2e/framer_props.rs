//! Property tests of the relay framers: any split of a valid stream into reads yields the
//! same frames as the whole stream (bodies cut at the capture limit the same way), and no
//! byte sequence, however split, makes a framer panic.

use portcullis::relay::framer::{Cut, Framer, My, Pg, Wire};
use proptest::prelude::*;

type Seen = Vec<(Vec<u8>, Vec<u8>, Option<Cut>)>;

fn feed_split<W: Wire>(stream: &[u8], cuts: &[usize], limit: usize) -> Result<Seen, String> {
    let mut framer = Framer::<W>::with_limit(limit);
    let mut out = Vec::new();
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    cuts.sort_unstable();
    let mut start = 0;
    for end in cuts.into_iter().chain([stream.len()]) {
        framer
            .feed(
                &stream[start..end],
                // Keep the bodies of frames whose first header byte is even.
                |h| h[0] % 2 == 0,
                |h, b, t| out.push((h.to_vec(), b.to_vec(), t.cloned())),
            )
            .map_err(|e| format!("{e:?}"))?;
        start = end;
    }
    if !framer.at_boundary() {
        return Err("stream ended inside a frame".into());
    }
    Ok(out)
}

fn pg_stream(frames: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut s = Vec::new();
    for (tag, body) in frames {
        s.push(*tag);
        s.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        s.extend_from_slice(body);
    }
    s
}

fn my_stream(frames: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut s = Vec::new();
    for (seq, body) in frames {
        s.extend_from_slice(&(body.len() as u32).to_le_bytes()[..3]);
        s.push(*seq);
        s.extend_from_slice(body);
    }
    s
}

fn frames() -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
    prop::collection::vec(
        (any::<u8>(), prop::collection::vec(any::<u8>(), 0..400)),
        0..12,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn postgres_any_split_yields_the_same_frames(
        frames in frames(),
        cuts in prop::collection::vec(any::<usize>(), 0..16),
        limit in 1usize..512,
    ) {
        let stream = pg_stream(&frames);
        let whole = feed_split::<Pg>(&stream, &[], limit).unwrap();
        prop_assert_eq!(whole.len(), frames.len());
        for ((h, b, t), (tag, body)) in whole.iter().zip(&frames) {
            prop_assert_eq!(h[0], *tag);
            if tag % 2 == 0 {
                prop_assert_eq!(&b[..], &body[..body.len().min(limit)]);
                prop_assert_eq!(t.is_some(), body.len() > limit);
            } else {
                prop_assert!(b.is_empty());
            }
        }
        prop_assert_eq!(feed_split::<Pg>(&stream, &cuts, limit).unwrap(), whole);
    }

    #[test]
    fn mysql_any_split_yields_the_same_frames(
        frames in frames(),
        cuts in prop::collection::vec(any::<usize>(), 0..16),
        limit in 1usize..512,
    ) {
        let stream = my_stream(&frames);
        let whole = feed_split::<My>(&stream, &[], limit).unwrap();
        prop_assert_eq!(whole.len(), frames.len());
        prop_assert_eq!(feed_split::<My>(&stream, &cuts, limit).unwrap(), whole);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        cuts in prop::collection::vec(any::<usize>(), 0..16),
        limit in 1usize..4096,
    ) {
        // Either frames or a clean error; the same answer however the bytes are split.
        let pg = feed_split::<Pg>(&bytes, &[], limit);
        let my = feed_split::<My>(&bytes, &[], limit);
        prop_assert_eq!(feed_split::<Pg>(&bytes, &cuts, limit).is_ok(), pg.is_ok());
        prop_assert_eq!(feed_split::<My>(&bytes, &cuts, limit).is_ok(), my.is_ok());
    }
}
