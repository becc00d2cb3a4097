//! Cutting the bytes read from a server FIFO into requests, without trusting
//! any writer.
//!
//! Every well-behaved client (libindimail's inquery(), ours) writes a whole
//! request with one write() of at most PIPE_BUF bytes, which the kernel
//! keeps atomic: a reader sees all of it or none of it. So once the FIFO has
//! been read until it is empty, everything read is made of whole requests,
//! and whatever is not a whole, valid request came from a writer that broke
//! the protocol. Such bytes are skipped by looking for the next position
//! where a valid request starts; the requests of other clients that follow
//! are therefore never lost or mis-framed.

use super::{DecodeError, FlushRequest, Request, FLUSH_TYPE, INT_LEN};

#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A valid request.
    Request(Request),
    /// A valid cache-flush request (our extension).
    Flush(FlushRequest),
    /// A well-formed record of an unknown query type: answered with -1 on its
    /// reply path (when that path is acceptable), then treated as bad bytes.
    UnknownType { type_byte: u8, reply_path: Vec<u8> },
    /// Bytes that are no request: why the first of them was refused, and how
    /// many were skipped.
    Bad { error: DecodeError, skipped: usize },
}

/// Try to read one request at the start of `b`; on success, its frame and
/// length.
fn try_record(b: &[u8]) -> Result<(Frame, usize), DecodeError> {
    if b.len() < INT_LEN {
        return Err(DecodeError::ShortBody {
            expected: INT_LEN,
            got: b.len(),
        });
    }
    let prefix = [b[0], b[1], b[2], b[3]];
    let len = Request::body_len(prefix)?;
    let end = INT_LEN + len;
    if b.len() < end {
        return Err(DecodeError::ShortBody {
            expected: len,
            got: b.len() - INT_LEN,
        });
    }
    let body = &b[INT_LEN..end];
    if body.first() == Some(&FLUSH_TYPE) {
        return FlushRequest::decode_body(body).map(|f| (Frame::Flush(f), end));
    }
    Request::decode_body(body).map(|r| (Frame::Request(r), end))
}

/// Is the record at `pos` (of `len` bytes) well placed: at the end of the
/// buffer or followed by another record?
fn well_placed(buf: &[u8], pos: usize, len: usize) -> bool {
    pos + len == buf.len() || try_record(&buf[pos + len..]).is_ok()
}

/// When the record at `pos` is not well placed, the start of a well-placed
/// record inside it, if there is one: that one is genuine, and the outer one
/// was made by bytes of two writers.
fn overlapped(buf: &[u8], pos: usize, len: usize) -> Option<usize> {
    if well_placed(buf, pos, len) {
        return None;
    }
    (pos + 1..pos + len).find(|&q| match try_record(&buf[q..]) {
        Ok((_, l)) => well_placed(buf, q, l),
        Err(_) => false,
    })
}

/// Split all the bytes that were waiting in a FIFO into frames. Every byte is
/// accounted for: an incomplete request at the end is bad, because a
/// complete one would have arrived in one piece.
pub fn frames(buf: &[u8]) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut pos = 0;
    // Start and first error of the run of bad bytes being skipped.
    let mut bad: Option<(usize, DecodeError)> = None;
    let flush = |bad: &mut Option<(usize, DecodeError)>, pos: usize, out: &mut Vec<Frame>| {
        if let Some((start, error)) = bad.take() {
            out.push(Frame::Bad {
                error,
                skipped: pos - start,
            });
        }
    };
    while pos < buf.len() {
        match try_record(&buf[pos..]) {
            Ok((frame, len)) => {
                // A record that overlaps a better-placed one is not taken:
                // a writer that broke the protocol can make its bytes and the
                // start of another client's request decode as one record.
                if let Some(inner) = overlapped(buf, pos, len) {
                    if bad.is_none() {
                        bad = Some((pos, DecodeError::TrailingBytes(inner - pos)));
                    }
                    pos = inner;
                    continue;
                }
                flush(&mut bad, pos, &mut out);
                out.push(frame);
                pos += len;
            }
            Err(DecodeError::UnknownType {
                type_byte,
                reply_path,
            }) if bad.is_none() => {
                out.push(Frame::UnknownType {
                    type_byte,
                    reply_path: reply_path.clone(),
                });
                bad = Some((
                    pos,
                    DecodeError::UnknownType {
                        type_byte,
                        reply_path,
                    },
                ));
                pos += 1;
            }
            Err(e) => {
                if bad.is_none() {
                    bad = Some((pos, e));
                }
                pos += 1;
            }
        }
    }
    flush(&mut bad, pos, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::QueryType;

    fn req(email: &str) -> Request {
        Request {
            qtype: QueryType::User,
            email: email.as_bytes().to_vec(),
            reply_path: b"/tmp/1231700000000".to_vec(),
            ip: Vec::new(),
        }
    }

    fn requests(frames: &[Frame]) -> Vec<String> {
        frames
            .iter()
            .filter_map(|f| match f {
                Frame::Request(r) => Some(String::from_utf8_lossy(&r.email).into_owned()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn back_to_back_requests() {
        let mut buf = req("a@x").encode().unwrap();
        buf.extend(req("b@y").encode().unwrap());
        let f = frames(&buf);
        assert_eq!(requests(&f), ["a@x", "b@y"]);
        assert_eq!(f.len(), 2);
    }

    /// Each hostile record followed by a good one: the good one survives.
    #[test]
    fn hostile_prefixes_do_not_swallow_the_next_request() {
        let good = req("good@example.com").encode().unwrap();
        let mut missing_nul = good.clone();
        let n = missing_nul.len();
        missing_nul[n - 1] = b'x';
        let mut bad_sep = good.clone();
        bad_sep[5] = 1;
        let mut unknown = good.clone();
        unknown[4] = 9;
        let hostile: Vec<(&str, Vec<u8>)> = vec![
            ("negative length", (-5i32).to_ne_bytes().to_vec()),
            ("length 0", 0i32.to_ne_bytes().to_vec()),
            ("length 5000", 5000i32.to_ne_bytes().to_vec()),
            ("length, no body", 57i32.to_ne_bytes().to_vec()),
            ("length 5000 with body", {
                let mut v = 5000i32.to_ne_bytes().to_vec();
                v.extend(vec![b'A'; 5000]);
                v
            }),
            ("short body", good[..20].to_vec()),
            ("missing NUL", missing_nul),
            ("separator not 0", bad_sep),
            ("unknown type", unknown),
            ("three bytes", vec![1, 2, 3]),
        ];
        for (name, bytes) in hostile {
            let mut buf = bytes.clone();
            buf.extend(&good);
            buf.extend(&good);
            let f = frames(&buf);
            assert_eq!(
                requests(&f),
                ["good@example.com", "good@example.com"],
                "{name}: {f:?}"
            );
            let skipped: usize = f
                .iter()
                .map(|f| match f {
                    Frame::Bad { skipped, .. } => *skipped,
                    _ => 0,
                })
                .sum();
            assert_eq!(skipped, bytes.len(), "{name}: every hostile byte skipped");
        }
    }

    #[test]
    fn unknown_type_is_reported_with_its_reply_path() {
        let mut rec = req("u@x").encode().unwrap();
        rec[4] = 42;
        let f = frames(&rec);
        assert_eq!(
            f[0],
            Frame::UnknownType {
                type_byte: 42,
                reply_path: b"/tmp/1231700000000".to_vec()
            }
        );
        assert!(matches!(f[1], Frame::Bad { skipped, .. } if skipped == rec.len()));
    }

    #[test]
    fn incomplete_tail_is_bad() {
        let mut buf = req("a@x").encode().unwrap();
        let tail = req("b@y").encode().unwrap();
        buf.extend(&tail[..10]);
        let f = frames(&buf);
        assert_eq!(requests(&f), ["a@x"]);
        assert!(matches!(f[1], Frame::Bad { skipped: 10, .. }));
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u64 = 0x2545F4914F6CDD1D;
        for _ in 0..2000 {
            let len = (x % 300) as usize;
            let mut buf = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf.push((x % 9) as u8);
            }
            let f = frames(&buf);
            let total: usize = f
                .iter()
                .map(|f| match f {
                    Frame::Request(r) => r.encode().unwrap().len(),
                    Frame::Flush(f) => f.encode().unwrap().len(),
                    Frame::Bad { skipped, .. } => *skipped,
                    Frame::UnknownType { .. } => 0,
                })
                .sum();
            assert_eq!(total, buf.len());
        }
    }

    /// Bytes of a broken writer that, together with the start of another
    /// client's request, decode as a record: the genuine request wins.
    #[test]
    fn a_forged_record_cannot_swallow_the_next_request() {
        let victim = req("victim@example.com").encode().unwrap();
        // Type 1, separator, email "h", then a reply path that runs into the
        // victim's length prefix, whose zero bytes end the path and the ip.
        let mut buf = 8i32.to_ne_bytes().to_vec();
        buf.extend([1, 0, b'h', 0, b'p']);
        let hostile = buf.len();
        buf.extend(&victim);
        // Without the victim the forged record needs 3 of its bytes.
        assert!(try_record(&buf).is_ok(), "the forged record decodes");
        let f = frames(&buf);
        assert_eq!(requests(&f), ["victim@example.com"], "{f:?}");
        assert!(matches!(f[0], Frame::Bad { skipped, .. } if skipped == hostile));
        // Two genuine requests back to back are both taken.
        let mut two = victim.clone();
        two.extend(&victim);
        assert_eq!(frames(&two).len(), 2);
    }
}
