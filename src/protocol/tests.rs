//! Totality: every decoder takes any bytes, random or mutated records, without a panic,
//! and what decodes encodes back to the same bytes.

use super::test_support::*;
use super::*;

use crate::fuzz::Rng as XorShift;

/// Mostly bytes that matter to the parsers, sometimes any byte.
fn byte(rng: &mut XorShift) -> u8 {
    const INTERESTING: &[u8] = b"\x00\x01\x02\x03\x07\x08:@\n01{SCRAM-SHA-}PWSTRUCT=No such user ";
    if rng.below(4) == 0 {
        rng.next_u64() as u8
    } else {
        INTERESTING[rng.below(INTERESTING.len())]
    }
}

/// Decodes `bytes` every way there is; a decoded request must re-encode to the same
/// bytes, a decoded reply must survive encode and decode unchanged.
fn decode_every_way(bytes: &[u8]) {
    if let Ok(request) = Request::decode(bytes) {
        assert_eq!(request.encode().as_deref(), Ok(bytes));
    }
    if let Ok(request) = Request::decode_body(bytes) {
        assert_eq!(request.encode().unwrap()[4..], *bytes);
    }
    if let Some(prefix) = bytes.first_chunk::<4>() {
        let _ = Request::body_len(*prefix);
    }
    for qtype in QueryType::ALL {
        if let Ok(reply) = Reply::decode(qtype, bytes) {
            assert!(reply.is_valid_for(qtype), "{reply:?} for {qtype:?}");
            if let Ok(again) = reply.encode() {
                assert_eq!(Reply::decode(qtype, &again).as_ref(), Ok(&reply));
            }
        }
        if let Some(first) = bytes.first_chunk::<4>() {
            let _ = Reply::payload_len(qtype, i32::from_ne_bytes(*first));
        }
    }
}

#[test]
fn decoding_random_bytes_never_panics() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..100_000 {
        let len = rng.below(64);
        let mut bytes: Vec<u8> = (0..len).map(|_| byte(&mut rng)).collect();
        // Half the time make the leading int a plausible count, so that the body and
        // payload parsers are reached rather than the length check.
        if len >= 4 && rng.below(2) == 0 {
            let count = match rng.below(4) {
                0 => -1,
                1 => 0,
                _ => (len - 4) as i32,
            };
            bytes[..4].copy_from_slice(&count.to_ne_bytes());
        }
        decode_every_way(&bytes);
    }
}

#[test]
fn decoding_mutated_records_never_panics() {
    let mut scram = joe();
    scram.passwd = SCRAM_TWO_COLONS.to_vec();
    let seeds: Vec<Vec<u8>> = vec![
        user_query().encode().unwrap(),
        relay_query().encode().unwrap(),
        Reply::Password(PasswordReply::Found(joe()))
            .encode()
            .unwrap(),
        Reply::Password(PasswordReply::Found(scram))
            .encode()
            .unwrap(),
        Reply::Password(PasswordReply::NoSuchUser(b"joe@x".to_vec()))
            .encode()
            .unwrap(),
        Reply::Alias(vec![b"a@x".to_vec(), b"b@y".to_vec()])
            .encode()
            .unwrap(),
        Reply::Limits(distinct_limits()).encode().unwrap(),
        Reply::Host(b"example.com:mail1:25".to_vec())
            .encode()
            .unwrap(),
    ];
    let mut rng = XorShift(0x0123_4567_89ab_cdef);
    let mut decoded_requests = 0;
    for round in 0..100_000 {
        let mut bytes = seeds[round % seeds.len()].clone();
        for _ in 0..=rng.below(3) {
            match rng.below(4) {
                0 if !bytes.is_empty() => {
                    let at = rng.below(bytes.len());
                    bytes[at] = byte(&mut rng);
                }
                1 if !bytes.is_empty() => {
                    bytes.remove(rng.below(bytes.len()));
                }
                2 => {
                    let at = rng.below(bytes.len() + 1);
                    bytes.insert(at, byte(&mut rng));
                }
                _ => bytes.truncate(rng.below(bytes.len() + 1)),
            }
        }
        // Keep the leading int consistent in some rounds, so that field mutations are
        // judged by the field parsers.
        if bytes.len() >= 4 && rng.below(2) == 0 {
            let count = (bytes.len() - 4) as i32;
            bytes[..4].copy_from_slice(&count.to_ne_bytes());
        }
        if Request::decode(&bytes).is_ok() {
            decoded_requests += 1;
        }
        decode_every_way(&bytes);
    }
    // The loop must actually exercise the success path, not only the errors.
    assert!(
        decoded_requests > 100,
        "only {decoded_requests} mutated requests decoded"
    );
}
