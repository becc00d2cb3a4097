//! Fuzz target bodies: one function per parser that takes untrusted bytes.
//!
//! Each body feeds its input to a parser and checks properties of the
//! result, panicking when one does not hold: decoding what was encoded gives
//! back the same value, a parser never returns bytes that were not in its
//! input, lengths agree with what a record announces, nothing is sized by a
//! claimed length, and independent reference implementations agree with the
//! real ones. Two drivers call them: the cargo-fuzz crate in `fuzz/` (one
//! coverage-guided target per body) and the integration test
//! `tests/it/fuzz.rs`, which replays the committed corpus and a bounded
//! number of deterministic mutations of it.
//!
//! Not part of the crate's API: compiled only for the crate's own unit tests and with
//! the `fuzzing` feature, which the `fuzz/` crate and the integration tests turn on.

use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::auth::{
    self, digest_md5, Attempt, AuthError, CramAlgorithm, CryptScheme, Method, Policy, StoredSecret,
    Verdict,
};
use crate::authindi::{self, AuthType, RecordError, ServiceClass, ServiceMap};
use crate::chain::{ReadError, AUTH_SIZE};
use crate::config::{self, ConfigError, Env, FifoConfig, MysqlConfig};
use crate::db::{control_files, Address};
use crate::fifo::{self, ReplyDirs};
use crate::protocol::frames::{self as framing, Frame};
use crate::protocol::{
    DecodeError, EncodeError, FlushRequest, PasswordReply, PwStruct, QueryType, Reply, Request,
    VLimits, MAX_BODY_LEN, PIPE_BUF,
};
use crate::query::PackedRow;
use crate::vchkpass;

/// xorshift64*: a deterministic generator for seeded mutations and
/// generated inputs, so that a failure reproduces exactly.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// An index into `weights`, chosen in proportion to them.
    pub fn weighted(&mut self, weights: &[u64]) -> usize {
        let mut r = self.next_u64() % weights.iter().sum::<u64>().max(1);
        for (i, &w) in weights.iter().enumerate() {
            if r < w {
                return i;
            }
            r -= w;
        }
        weights.len() - 1
    }
}

/// A fuzz target body: panics when a property does not hold for the input.
pub type Body = fn(&[u8]);

/// Every target: its name (the cargo-fuzz target and corpus directory) and body.
pub const TARGETS: &[(&str, Body)] = &[
    ("request", request),
    ("frames", frames),
    ("reply", reply),
    ("pwstruct", pwstruct),
    ("vchkpass", vchkpass),
    ("authindi", authindi),
    ("control", control),
    ("auth", auth),
];

// ---------------------------------------------------------------------------
// Helpers

/// Cuts a fuzz input into pieces: single bytes, and byte strings preceded by
/// a one-byte length. Reading past the end gives zeros and empty strings.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    /// A string of at most 255 bytes, its length taken from the input.
    fn bytes(&mut self) -> &'a [u8] {
        let n = usize::from(self.byte()).min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }

    fn rest(self) -> &'a [u8] {
        self.0
    }
}

/// Is `inner` a part of `outer` (the same memory, not a copy)? Empty slices
/// may point anywhere and always pass.
fn within(outer: &[u8], inner: &[u8]) -> bool {
    let (o, i) = (outer.as_ptr_range(), inner.as_ptr_range());
    inner.is_empty() || (o.start <= i.start && i.end <= o.end)
}

/// Offset of `inner` in `outer`; `inner` must be a part of it.
fn offset(outer: &[u8], inner: &[u8]) -> usize {
    assert!(within(outer, inner), "a field is not part of the input");
    (inner.as_ptr() as usize).wrapping_sub(outer.as_ptr() as usize)
}

fn without(bytes: &[u8], forbidden: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .copied()
        .filter(|b| !forbidden.contains(b))
        .collect()
}

/// Lowercase hex, written independently of the crate's encoder.
fn to_hex(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .flat_map(|b| format!("{b:02x}").into_bytes())
        .collect()
}

/// A reader that hands out `data` in pieces whose sizes come from `sizes`,
/// with an interrupted read now and then, as a pipe may.
struct Trickle<'a> {
    data: &'a [u8],
    /// Sizes of the pieces, in turn; a 0 is an interrupted read.
    sizes: &'a [u8],
    turn: usize,
    interrupted: bool,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let size = self.sizes.get(self.turn % self.sizes.len().max(1)).copied();
        self.turn += 1;
        let size = match size {
            Some(0) if !self.interrupted => {
                self.interrupted = true;
                return Err(io::Error::from(io::ErrorKind::Interrupted));
            }
            Some(s) => usize::from(s).max(1),
            None => usize::MAX,
        };
        self.interrupted = false;
        let n = size.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn query_type(b: u8) -> QueryType {
    QueryType::ALL[usize::from(b) % QueryType::ALL.len()]
}

// ---------------------------------------------------------------------------
// Requests

/// A request made of pieces of the input, as a client might send it.
fn some_request(input: &mut Input<'_>) -> Request {
    Request {
        qtype: query_type(input.byte()),
        email: input.bytes().to_vec(),
        reply_path: input.bytes().to_vec(),
        ip: input.bytes().to_vec(),
    }
}

/// Checks `Request::encode` against what it may refuse, and that what it
/// writes decodes to the same request.
fn check_request_encoding(req: &Request) {
    let body_len = 2 + req.email.len() + 1 + req.reply_path.len() + 1 + req.ip.len() + 1;
    let has_nul = [&req.email, &req.reply_path, &req.ip]
        .iter()
        .any(|f| f.contains(&0));
    match req.encode() {
        Ok(record) => {
            assert!(!has_nul, "a field with a NUL was encoded");
            assert_eq!(record.len(), 4 + body_len);
            assert!(record.len() <= PIPE_BUF);
            let prefix: [u8; 4] = record[..4].try_into().unwrap();
            assert_eq!(Request::body_len(prefix), Ok(body_len));
            assert_eq!(Request::decode(&record).as_ref(), Ok(req));
            assert_eq!(Request::decode_body(&record[4..]).as_ref(), Ok(req));
        }
        Err(EncodeError::ForbiddenByte { byte: 0, .. }) => assert!(has_nul),
        Err(EncodeError::RequestTooLong(n)) => {
            assert!(!has_nul);
            assert_eq!(n, 4 + body_len);
            assert!(n > PIPE_BUF);
        }
        Err(e) => panic!("unexpected encode error {e:?}"),
    }
}

/// The directories reply FIFOs may be in, for the reply-path checks.
fn reply_dirs() -> ReplyDirs {
    ReplyDirs::new(["/tmp", "/run/indimail/inlookup/reply/", "/"].map(PathBuf::from))
        .expect("valid reply directories")
}

fn check_reply_path(path: &[u8], dirs: &ReplyDirs) {
    let Ok(place) = fifo::reply::check_reply_path(path, dirs) else {
        return;
    };
    assert!(dirs.dirs().iter().any(|d| d == place.dir));
    let mut names = vec![place.name.as_bytes()];
    names.extend(place.subdir.map(|s| s.as_bytes()));
    for name in &names {
        assert!(!name.is_empty() && *name != b"." && *name != b"..");
        assert!(!name.contains(&b'/') && !name.contains(&0));
    }
    let dir = place.dir.as_os_str().as_bytes();
    let mut expected = if dir == b"/" {
        Vec::new()
    } else {
        dir.to_vec()
    };
    for name in names.iter().rev() {
        expected.push(b'/');
        expected.extend_from_slice(name);
    }
    assert_eq!(
        path,
        &expected[..],
        "the accepted path is not dir/[subdir/]name"
    );
    assert!(path.len() < libc::PATH_MAX as usize);
}

fn check_address(email: &[u8], default_domain: Option<&str>) {
    let Some(a) = Address::parse(email, default_domain) else {
        return;
    };
    assert!(email.iter().all(u8::is_ascii_graphic));
    assert!(!a.user.is_empty() && !a.domain.is_empty());
    assert!(!a.user.contains(['@', '%', ':']));
    assert_eq!(a.user, a.user.to_ascii_lowercase());
    assert_eq!(a.domain, a.typed_domain.to_ascii_lowercase());
    match email.iter().position(|b| b"@%:".contains(b)) {
        Some(i) => {
            assert_eq!(a.user.as_bytes(), email[..i].to_ascii_lowercase());
            assert_eq!(a.typed_domain.as_bytes(), &email[i + 1..]);
        }
        None => {
            assert_eq!(a.user.as_bytes(), email.to_ascii_lowercase());
            assert_eq!(Some(a.typed_domain.as_str()), default_domain);
        }
    }
}

/// The request decoder: whole records, bodies, flush requests, length
/// prefixes, and what the daemon does next with a request's fields (the
/// address split and the reply-path check).
pub fn request(data: &[u8]) {
    // A record decodes only to a request that encodes back to the same bytes.
    match Request::decode(data) {
        Ok(req) => assert_eq!(req.encode().as_deref(), Ok(data)),
        Err(DecodeError::UnknownType {
            type_byte,
            reply_path,
        }) => {
            assert_eq!(Some(&type_byte), data.get(4));
            assert!(QueryType::from_u8(type_byte).is_none());
            assert!(!reply_path.contains(&0));
        }
        Err(_) => {}
    }
    match Request::decode_body(data) {
        Ok(req) => {
            let record = req.encode().expect("a decoded request encodes");
            assert_eq!(&record[4..], data);
            check_address(&req.email, None);
            check_address(&req.email, Some("Example.COM"));
            check_reply_path(&req.reply_path, &reply_dirs());
        }
        Err(DecodeError::UnknownType { reply_path, .. }) => {
            check_reply_path(&reply_path, &reply_dirs());
        }
        Err(DecodeError::TooLong(n)) => assert!(n == data.len() && n > MAX_BODY_LEN),
        Err(_) => {}
    }
    if let Ok(flush) = FlushRequest::decode_body(data) {
        let record = flush.encode().expect("a decoded flush request encodes");
        assert_eq!(&record[4..], data);
    }
    if let Some(prefix) = data.first_chunk::<4>() {
        let announced = i32::from_ne_bytes(*prefix);
        match Request::body_len(*prefix) {
            Ok(n) => {
                assert!((1..=MAX_BODY_LEN).contains(&n));
                assert_eq!(i32::try_from(n), Ok(announced));
            }
            Err(_) => assert!(announced <= 0 || announced as usize > MAX_BODY_LEN),
        }
    }
    check_address(data, None);
    check_reply_path(data, &reply_dirs());

    // Encoding: refuses exactly what it must, and round-trips the rest.
    let mut input = Input(data);
    let req = some_request(&mut input);
    check_request_encoding(&req);
    let flush = FlushRequest {
        name: req.email.clone(),
        reply_path: req.reply_path.clone(),
    };
    if let Ok(record) = flush.encode() {
        assert_eq!(FlushRequest::decode_body(&record[4..]), Ok(flush.clone()));
        assert_eq!(
            record.len(),
            4 + 2 + flush.name.len() + flush.reply_path.len() + 3
        );
    }
    // Long fields: the size limit is exact.
    let long = Request {
        email: input.rest().repeat(8),
        ..req
    };
    check_request_encoding(&long);
}

/// Checks the frames of `buf`: every byte is accounted for once, in order,
/// and every request is there at the position its bytes are.
fn check_frames(buf: &[u8], frames: &[Frame]) {
    let mut pos = 0;
    let mut previous_bad = false;
    for (i, frame) in frames.iter().enumerate() {
        match frame {
            Frame::Request(r) => {
                let record = r.encode().expect("a framed request encodes");
                assert_eq!(buf.get(pos..pos + record.len()), Some(&record[..]));
                pos += record.len();
                previous_bad = false;
            }
            Frame::Flush(f) => {
                let record = f.encode().expect("a framed flush request encodes");
                assert_eq!(buf.get(pos..pos + record.len()), Some(&record[..]));
                pos += record.len();
                previous_bad = false;
            }
            Frame::UnknownType {
                type_byte,
                reply_path,
            } => {
                // Reported where it starts; the bad bytes that follow cover it.
                assert_eq!(buf.get(pos + 4), Some(type_byte));
                let len = Request::body_len(buf[pos..pos + 4].try_into().unwrap()).unwrap();
                match Request::decode_body(&buf[pos + 4..pos + 4 + len]) {
                    Err(DecodeError::UnknownType {
                        type_byte: t,
                        reply_path: p,
                    }) => assert!(t == *type_byte && p == *reply_path),
                    other => panic!("unknown-type frame over {other:?}"),
                }
                assert!(matches!(frames.get(i + 1), Some(Frame::Bad { .. })));
            }
            Frame::Bad { skipped, .. } => {
                assert!(*skipped > 0);
                assert!(!previous_bad, "two runs of bad bytes not merged");
                pos += skipped;
                previous_bad = true;
            }
        }
    }
    assert_eq!(pos, buf.len(), "bytes not accounted for");
}

/// Framing: the bytes read from a server FIFO cut into requests.
pub fn frames(data: &[u8]) {
    check_frames(data, &framing::frames(data));

    // Whatever a broken writer left before them, whole requests that follow
    // are all found, in order. Real clients send a non-empty address and an
    // absolute reply path.
    let mut input = Input(data);
    let garbage = input.bytes();
    let mut genuine = Vec::new();
    let mut buf = garbage.to_vec();
    for _ in 0..3 {
        let mut req = some_request(&mut input);
        req.email = without(&req.email, b"\0");
        req.reply_path = [b"/tmp/", &without(&req.reply_path, b"\0/")[..]].concat();
        req.ip = without(&req.ip, b"\0");
        if req.email.is_empty() {
            req.email = b"u@x".to_vec();
        }
        buf.extend(req.encode().expect("a request of short fields encodes"));
        genuine.push(req);
    }
    let found = framing::frames(&buf);
    check_frames(&buf, &found);
    let requests: Vec<&Request> = found
        .iter()
        .filter_map(|f| match f {
            Frame::Request(r) => Some(r),
            _ => None,
        })
        .collect();
    let tail = &requests[requests.len().saturating_sub(genuine.len())..];
    assert!(
        tail.iter().copied().eq(genuine.iter()),
        "a genuine request was lost after {} bytes of garbage",
        garbage.len()
    );
}

// ---------------------------------------------------------------------------
// Replies

/// The reply decoders of the client: whatever a server sends is either
/// refused or read as a reply that is meaningful for the query and that
/// encodes back to the same reply.
pub fn reply(data: &[u8]) {
    let Some((&t, bytes)) = data.split_first() else {
        return;
    };
    let qtype = query_type(t);
    let decoded = Reply::decode(qtype, bytes);
    if let Some((first, payload)) = bytes.split_first_chunk::<4>() {
        let first = i32::from_ne_bytes(*first);
        // A client sizes its read by this; it never exceeds one pipe write.
        match Reply::payload_len(qtype, first) {
            Ok(n) => {
                assert!(n <= PIPE_BUF);
                let parts = Reply::decode_parts(qtype, first, payload);
                assert_eq!(parts, decoded);
                if payload.len() != n {
                    assert!(decoded.is_err(), "decoded a reply of the wrong length");
                }
            }
            Err(e) => assert_eq!(Err(e), decoded),
        }
    } else {
        assert!(decoded.is_err());
    }
    if let Ok(r) = &decoded {
        check_reply(qtype, r, bytes);
    }
    if let Ok(text) = PasswordReply::parse_text(bytes) {
        check_password_text(&text, bytes);
    }
    if let Some(raw) = bytes.first_chunk::<{ VLimits::SIZE }>() {
        check_limits(raw);
    }
}

fn check_reply(qtype: QueryType, r: &Reply, bytes: &[u8]) {
    assert!(r.is_valid_for(qtype), "{r:?} is no answer to {qtype:?}");
    let encoded = match r.encode() {
        Ok(e) => e,
        Err(EncodeError::PayloadTooLong(n)) => {
            // Only a PWD reply can grow: the client also reads records
            // without the PWSTRUCT= prefix, the '@' or canonical numbers.
            assert!(matches!(r, Reply::Password(_)) && n > PIPE_BUF);
            return;
        }
        Err(e) => panic!("decoded reply {r:?} does not encode: {e}"),
    };
    assert_eq!(Reply::decode(qtype, &encoded).as_ref(), Ok(r));
    let first = i32::from_ne_bytes(encoded[..4].try_into().unwrap());
    assert_eq!(Reply::payload_len(qtype, first), Ok(encoded.len() - 4));
    match r {
        // The padding of struct vlimits is not kept.
        Reply::Limits(_) => assert_eq!(encoded[..4 + 122], bytes[..4 + 122]),
        // A PWD "0" reads as an error, which encodes as -1; a PWD record
        // may be written differently (see above).
        Reply::Password(_) | Reply::Error => {}
        _ => assert_eq!(encoded, bytes, "{r:?} was not read exactly"),
    }
}

fn check_password_text(reply: &PasswordReply, text: &[u8]) {
    match reply.to_text() {
        Ok(again) => assert_eq!(PasswordReply::parse_text(&again).as_ref(), Ok(reply)),
        Err(EncodeError::ForbiddenByte { byte: 0, .. }) => assert!(text.contains(&0)),
        Err(e) => panic!("parsed PWSTRUCT text does not encode: {e}"),
    }
    if let PasswordReply::Found(pw) = reply {
        let name_at = text
            .strip_prefix(b"PWSTRUCT=")
            .unwrap_or(text)
            .starts_with(&pw.name);
        assert!(name_at, "the name is not where the record starts");
        assert!(!pw.name.contains(&b':') && !pw.name.contains(&b'@'));
        for field in [&pw.domain, &pw.gecos, &pw.dir, &pw.shell] {
            assert!(!field.contains(&b':'));
        }
        let colons = pw.passwd.iter().filter(|&&b| b == b':').count();
        assert!(colons == 0 || (colons == 2 && pw.passwd.starts_with(b"{SCRAM-SHA-")));
    }
}

fn check_limits(raw: &[u8; VLimits::SIZE]) {
    let limits = VLimits::from_bytes(raw).expect("128 bytes are a struct vlimits");
    let bytes = limits.to_bytes();
    assert_eq!(bytes[..122], raw[..122]);
    assert_eq!(bytes[122..], [0; 6], "padding not zero");
    assert_eq!(VLimits::from_bytes(&bytes), Ok(limits));
    let reply = Reply::Limits(limits).encode().unwrap();
    assert_eq!(reply.len(), 4 + VLimits::SIZE);
}

/// Does the C parser read `pw` back as written? Written independently of
/// `PwStruct`'s own checks.
fn writable(pw: &PwStruct) -> bool {
    let clean = |f: &[u8], bad: &[u8]| !f.iter().any(|b| bad.contains(b));
    let colons = pw.passwd.iter().filter(|&&b| b == b':').count();
    clean(&pw.name, b"\0:@")
        && !pw.name.starts_with(b"No such user")
        && clean(&pw.domain, b"\0:")
        && clean(&pw.passwd, b"\0")
        && (colons == 0 || (colons == 2 && pw.passwd.starts_with(b"{SCRAM-SHA-")))
        && clean(&pw.gecos, b"\0:")
        && clean(&pw.dir, b"\0:")
        && clean(&pw.shell, b"\0:")
}

/// The PWSTRUCT record: any record the server can write is read back as the
/// same record, and the server refuses exactly the records the C client
/// would misread.
pub fn pwstruct(data: &[u8]) {
    let mut input = Input(data);
    let flags = input.byte();
    let pw = PwStruct {
        name: input.bytes().to_vec(),
        domain: input.bytes().to_vec(),
        passwd: input.bytes().to_vec(),
        uid: input.u32(),
        gid: input.u32(),
        gecos: input.bytes().to_vec(),
        dir: input.bytes().to_vec(),
        shell: input.bytes().to_vec(),
        inactive: flags & 1 != 0,
    };
    let found = PasswordReply::Found(pw.clone());
    match found.to_text() {
        Ok(text) => {
            assert!(writable(&pw), "wrote a record the C client misreads");
            assert_eq!(PasswordReply::parse_text(&text).as_ref(), Ok(&found));
            // As the C client cuts it: 8 fields, 10 with a SCRAM password.
            let fields = text.split(|&b| b == b':').count();
            let scram = pw.passwd.contains(&b':');
            assert_eq!(fields, if scram { 10 } else { 8 });
            match Reply::Password(found.clone()).encode() {
                Ok(bytes) => {
                    assert_eq!(bytes.len(), 4 + text.len() + 1);
                    assert_eq!(
                        Reply::decode(QueryType::Password, &bytes),
                        Ok(Reply::Password(found))
                    );
                }
                Err(EncodeError::PayloadTooLong(n)) => assert!(n > PIPE_BUF),
                Err(e) => panic!("{e}"),
            }
        }
        Err(_) => assert!(!writable(&pw), "refused a record the C client reads"),
    }
    check_packed_row(&pw, flags);
    let absent = PasswordReply::NoSuchUser(pw.name.clone());
    match absent.to_text() {
        Ok(text) => assert_eq!(PasswordReply::parse_text(&text), Ok(absent)),
        Err(_) => assert!(pw.name.contains(&0)),
    }
    let rest = input.rest();
    if let Ok(text) = PasswordReply::parse_text(rest) {
        check_password_text(&text, rest);
    }
    if let Some(raw) = rest.first_chunk::<{ VLimits::SIZE }>() {
        check_limits(raw);
    }
}

/// The cache keeps a password row packed into one allocation: unpacking
/// gives back the row; a field too long for its 16-bit length is cut, not
/// misread, and the other fields stay whole.
fn check_packed_row(pw: &PwStruct, flags: u8) {
    let row = pw.clone();
    assert_eq!(PackedRow::pack(&row).unpack(), row);
    if flags & 2 != 0 && !row.gecos.is_empty() {
        let long = PwStruct {
            gecos: row
                .gecos
                .repeat(usize::from(u16::MAX) / row.gecos.len() + 1),
            ..row.clone()
        };
        let back = PackedRow::pack(&long).unpack();
        assert_eq!(back.gecos, long.gecos[..usize::from(u16::MAX)]);
        let others = PwStruct {
            gecos: row.gecos.clone(),
            ..back
        };
        assert_eq!(others, row);
    }
}

// ---------------------------------------------------------------------------
// vchkpass

/// vchkpass's fd-3 data: `login\0field2\0field3\0[method]`.
pub fn vchkpass(data: &[u8]) {
    // Reference split: at least two NULs, the second not the last byte.
    let pieces: Vec<&[u8]> = data.splitn(4, |&b| b == 0).collect();
    let complete = pieces.len() >= 3 && (!pieces[2].is_empty() || pieces.len() == 4);
    match vchkpass::parse_fields(data) {
        Some(f) => {
            assert!(complete, "accepted incomplete fd-3 data");
            assert_eq!(offset(data, f.login), 0);
            assert_eq!(f.login, pieces[0]);
            assert_eq!(f.field2, pieces[1]);
            assert_eq!(f.field3, pieces[2]);
            assert_eq!(offset(data, f.field2), f.login.len() + 1);
            assert_eq!(offset(data, f.field3), f.login.len() + f.field2.len() + 2);
            let method = pieces.get(3).and_then(|m| m.first()).copied().unwrap_or(0);
            assert_eq!(f.method_byte, method);
            if let Some(m) = vchkpass::supported_method(f.method_byte) {
                assert_eq!(m.code(), f.method_byte);
                assert!(m.code() <= Method::DigestMd5.code());
            }
            vchkpass::method_log_name(f.method_byte);
            let method = Method::from_code(f.method_byte).unwrap_or(Method::Unspecified);
            let attempt = Attempt::from_checkpassword(method, f.login, f.field2, f.field3);
            if f.field3.is_empty() {
                assert!(attempt.challenge.is_empty() && attempt.response == f.field2);
            } else {
                assert!(attempt.challenge == f.field2 && attempt.response == f.field3);
            }
            check_login(f.login);
        }
        None => assert!(!complete, "refused complete fd-3 data"),
    }
    check_login(data);

    // Reading fd 3: at most AUTH_SIZE bytes, however the pipe hands them out.
    let (sizes, payload) = data.split_at(data.len().min(3));
    let reader = Trickle {
        data: payload,
        sizes,
        turn: 0,
        interrupted: false,
    };
    match crate::chain::read_auth_data(reader) {
        Ok(read) => {
            assert!(payload.len() <= AUTH_SIZE);
            assert_eq!(read, payload);
        }
        Err(ReadError::TooLong) => assert!(payload.len() > AUTH_SIZE),
        Err(ReadError::Io(e)) => panic!("{e}"),
    }
}

/// `plausible_login` against its documented rule.
fn check_login(login: &[u8]) {
    let printable = login
        .iter()
        .all(|b| b.is_ascii_graphic() && !b"\"'`\\".contains(b));
    let expected = printable
        && match login.iter().position(|b| b"@%:".contains(b)) {
            Some(i) => (1..=40).contains(&i) && (1..=67).contains(&(login.len() - i - 1)),
            None => (1..=40).contains(&login.len()),
        };
    assert_eq!(crate::db::plausible_login(login), expected);
}

// ---------------------------------------------------------------------------
// authindi

/// Standard base64 decoding, written independently of `authindi::base64_decode`.
fn reference_base64(text: &[u8]) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let body = text
        .strip_suffix(b"==")
        .or_else(|| text.strip_suffix(b"="))
        .unwrap_or(text);
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = Vec::new();
    for &c in body {
        let v = ALPHABET.iter().position(|&a| a == c)?;
        bits = bits << 6 | v as u32;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    // One character alone cannot make a byte: "A===" is refused.
    if body.len() % 4 == 1 {
        return None;
    }
    Some(out)
}

fn to_base64(bytes: &[u8]) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
    out
}

/// authindi's fd-3 data: `service\nauthtype\nauthdata`, and what it makes of
/// the account afterwards.
pub fn authindi(data: &[u8]) {
    check_record(data);
    for text in [data, data.trim_ascii()] {
        let decoded = authindi::base64_decode(text);
        assert_eq!(decoded, reference_base64(text), "base64 decoders disagree");
        if let Some(d) = decoded {
            assert!(d.len() <= text.len() / 4 * 3);
        }
    }
    assert_eq!(
        authindi::base64_decode(&to_base64(data)).as_deref(),
        Some(data)
    );

    let mut input = Input(data);
    let login = input.bytes();
    let default_domain = std::str::from_utf8(input.bytes()).ok();
    check_lookup_address(login, default_domain);
    check_quota(&mut input);
    if let Ok(value) = std::str::from_utf8(input.bytes()) {
        check_service_map(value);
    }
    let pw = PwStruct {
        name: login.to_vec(),
        domain: Vec::new(),
        passwd: input.bytes().to_vec(),
        uid: 7,
        gid: 8,
        gecos: input.bytes().to_vec(),
        dir: input.bytes().to_vec(),
        shell: input.bytes().to_vec(),
        inactive: false,
    };
    // The record exported to the child has no password field, whatever it was.
    let exported = authindi::pwstruct_without_secret(&pw, "u@x");
    let other = PwStruct {
        passwd: b"other".to_vec(),
        ..pw.clone()
    };
    assert_eq!(exported, authindi::pwstruct_without_secret(&other, "u@x"));
    assert!(exported.as_bytes().starts_with(b"u@x:x:7:8:"));
}

fn check_record(data: &[u8]) {
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    // Three lines that each end in '\n' with something after the third.
    let complete = lines.len() >= 4 && !(lines.len() == 4 && lines[3].is_empty());
    let record = match authindi::parse_record(data) {
        Ok(r) => r,
        Err(RecordError::TooShort) => return assert!(!complete),
        Err(RecordError::BadBase64) => {
            assert!(complete);
            let cram =
                matches!(AuthType::from_name(lines[1]), AuthType::Login(m) if m.is_cram_class());
            assert!(
                cram && (reference_base64(lines[2]).is_none()
                    || reference_base64(lines[3]).is_none())
            );
            return;
        }
    };
    assert!(complete, "accepted a record without three lines");
    assert_eq!(record.service, lines[0]);
    assert_eq!(record.authtype, lines[1]);
    assert_eq!(record.kind, AuthType::from_name(lines[1]));
    let method = record.method();
    if method.is_cram_class() {
        assert_eq!(reference_base64(lines[2]).as_ref(), Some(&record.challenge));
        let reply = reference_base64(lines[3]).expect("a decoded CRAM reply");
        match reply.iter().position(u8::is_ascii_whitespace) {
            Some(i) => {
                assert_eq!(record.login, reply[..i]);
                assert_eq!(record.response, reply[i + 1..]);
            }
            None => assert!(record.login == reply && record.response.is_empty()),
        }
        let attempt = record.attempt();
        assert!(attempt.challenge == record.challenge && attempt.response == record.response);
    } else {
        assert_eq!(record.login, lines[2]);
        assert!(record.challenge.is_empty());
        let password = match lines[3] {
            b"" => lines.get(4).copied().unwrap_or(b""),
            line => line,
        };
        assert_eq!(record.response, password);
        assert!(record.attempt().challenge.is_empty());
    }
    assert!(!record.service.contains(&b'\n') && !record.authtype.contains(&b'\n'));
}

fn check_lookup_address(login: &[u8], default_domain: Option<&str>) {
    let address = authindi::lookup_address(login, default_domain);
    assert_eq!(address, address.to_ascii_lowercase());
    match login.iter().position(|b| b"@%:".contains(b)) {
        Some(i) => {
            assert_eq!(address.len(), login.len());
            assert_eq!(address[i], b'@');
            assert!(address[..i].eq_ignore_ascii_case(&login[..i]));
            assert!(address[i + 1..].eq_ignore_ascii_case(&login[i + 1..]));
        }
        None => match default_domain {
            Some(d) => {
                assert_eq!(address.len(), login.len() + 1 + d.len());
                assert!(address[..login.len()].eq_ignore_ascii_case(login));
            }
            None => assert!(address.eq_ignore_ascii_case(login)),
        },
    }
}

/// MAILDIRQUOTA from a quota field made of a number, a suffix and a count.
fn check_quota(input: &mut Input<'_>) {
    let raw = input.bytes();
    if let Some(q) = authindi::maildir_quota(raw) {
        let (size, count) = q.split_once("S,").expect("<size>S,<count>C");
        let count = count.strip_suffix('C').expect("<size>S,<count>C");
        assert!(size.parse::<u64>().is_ok() && count.parse::<u64>().is_ok());
    }
    let number = u64::from(input.u32()) << (input.byte() % 40);
    let count = input.u32();
    let (suffix, factor) = match input.byte() % 6 {
        0 => ("", 1i64),
        5 => ("S", 1),
        1 => ("k", 1 << 10),
        2 => ("M", 1 << 20),
        3 => ("g", 1 << 30),
        _ => ("x", 0),
    };
    let shell = format!(" {number}{suffix} , {count}");
    let expected = match factor {
        0 => None,
        // parse_quota's limit: C's strtoll (and so IndiMail) stops at i64::MAX.
        f => i64::try_from(number)
            .ok()
            .and_then(|n| n.checked_mul(f))
            .map(|b| format!("{b}S,{count}C")),
    };
    assert_eq!(
        authindi::maildir_quota(shell.as_bytes()),
        expected,
        "{shell}"
    );
    assert_eq!(
        authindi::maildir_quota(b"NOQUOTA").as_deref(),
        Some("0S,0C")
    );
}

fn check_service_map(value: &str) {
    let class_of = |name: &str| match name {
        "imap" => Some(ServiceClass::Imap),
        "pop3" => Some(ServiceClass::Pop3),
        "webmail" => Some(ServiceClass::Webmail),
        _ => None,
    };
    let mut expected: Vec<(String, ServiceClass)> = Vec::new();
    let mut valid = true;
    for entry in value.split(':').filter(|e| !e.is_empty()) {
        let pair = entry.split_once('=').and_then(|(n, c)| {
            let n = n.trim().to_ascii_lowercase();
            let c = class_of(&c.trim().to_ascii_lowercase())?;
            (!n.is_empty()).then_some((n, c))
        });
        match pair {
            Some((n, c)) => {
                expected.retain(|(m, _)| *m != n);
                expected.push((n, c));
            }
            None => valid = false,
        }
    }
    match ServiceMap::parse(Some(value)) {
        Ok(map) => {
            assert!(valid, "accepted a bad service map");
            for (name, class) in &expected {
                assert_eq!(map.class(name.as_bytes()), Some(*class));
                assert_eq!(
                    map.class(name.to_ascii_uppercase().as_bytes()),
                    Some(*class)
                );
            }
            for default in ["imap", "imaps", "pop3", "pop3s", "webmail"] {
                assert!(map.class(default.as_bytes()).is_some());
            }
        }
        Err(e) => {
            assert!(!valid, "refused a good service map: {e}");
            assert!(e.contains(authindi::SERVICE_MAP_VAR));
        }
    }
}

// ---------------------------------------------------------------------------
// Control files

/// The control-file and environment parsers. The first byte picks one.
pub fn control(data: &[u8]) {
    let Some((&which, data)) = data.split_first() else {
        return;
    };
    match which % 8 {
        0 => check_timeout_line(data),
        1 => {
            if let Ok(line) = std::str::from_utf8(data) {
                check_host_line(line);
            }
        }
        2 => check_envdir_file(data),
        3 => {
            if let Ok(text) = std::str::from_utf8(data) {
                check_numbers(text);
            }
        }
        4 => check_routes(data),
        5 => check_rcpthosts(data),
        6 => check_cdb_value(data),
        _ => {
            if let Ok(text) = std::str::from_utf8(data) {
                check_domain_lists(text);
            }
        }
    }
}

fn check_timeout_line(line: &[u8]) {
    let trimmed = line.trim_ascii();
    let expected = if trimmed.is_empty() {
        Some(4)
    } else if trimmed.len() <= 10 && trimmed.iter().all(u8::is_ascii_digit) {
        std::str::from_utf8(trimmed)
            .unwrap()
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=86_400).contains(n))
    } else {
        None
    };
    assert_eq!(
        config::control::timeout_line(line),
        expected.map(Duration::from_secs)
    );
}

fn mysql_defaults() -> MysqlConfig {
    MysqlConfig {
        host: "localhost".into(),
        user: "indimail".into(),
        password: "ssh-1.5-".into(),
        socket: None,
        port: 0,
        ssl: false,
        database: "indimail".into(),
        table: "indimail".into(),
        inactive_table: "indibak".into(),
        relay_table: "relay".into(),
        connect_timeout: Duration::from_secs(120),
        read_timeout: Duration::from_secs(20),
        write_timeout: Duration::from_secs(20),
        source: "host.mysql".into(),
    }
}

/// `host[:user[:password[:socket-or-port[:ssl]]]]`.
fn check_host_line(line: &str) {
    let d = mysql_defaults();
    let fields: Vec<&str> = line.split(':').collect();
    let field = |i: usize| fields.get(i).copied().filter(|f| !f.is_empty());
    let port = field(3).filter(|f| !f.starts_with(['/', '.'])).map(|f| {
        f.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| f.parse::<u16>().ok())
            .flatten()
            .filter(|&p| p > 0)
    });
    let result = MysqlConfig::parse_host_line(line, d.clone());
    // The user and password never show in errors or Debug output: the
    // same line with other credentials gives the same text.
    let mut masked = fields.clone();
    for i in 1..3.min(masked.len()) {
        masked[i] = "secret";
    }
    let masked = MysqlConfig::parse_host_line(&masked.join(":"), d.clone());
    match (&result, &masked) {
        (Ok(a), Ok(b)) => {
            let mut a = a.clone();
            a.user = b.user.clone();
            assert_eq!(format!("{a:?}"), format!("{b:?}"));
            let other = MysqlConfig {
                password: "other".into(),
                ..a.clone()
            };
            assert_eq!(format!("{a:?}"), format!("{other:?}"));
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("the credentials changed the outcome"),
    }
    let cfg = match result {
        Ok(cfg) => cfg,
        Err(ConfigError::HostLine { origin, .. }) => {
            assert_eq!(origin, d.source);
            return assert!(fields.len() > 5 || port == Some(None));
        }
        Err(e) => panic!("unexpected error {e}"),
    };
    assert!(fields.len() <= 5);
    assert_eq!(cfg.host, field(0).unwrap_or(&d.host));
    assert_eq!(cfg.user, field(1).unwrap_or(&d.user));
    assert_eq!(cfg.password, field(2).unwrap_or(&d.password));
    match (field(3), port) {
        (None, _) => assert!(cfg.socket.is_none() && cfg.port == 0),
        (Some(socket), None) => {
            assert_eq!(cfg.socket.as_deref(), Some(Path::new(socket)));
            assert_eq!(cfg.port, 0);
        }
        (Some(_), Some(p)) => {
            assert_eq!(Some(cfg.port), p);
            assert!(cfg.socket.is_none());
        }
    }
    assert_eq!(cfg.ssl, field(4) == Some("ssl"));
    let unchanged = MysqlConfig {
        host: d.host.clone(),
        user: d.user.clone(),
        password: d.password.clone(),
        socket: None,
        port: 0,
        ssl: false,
        ..cfg
    };
    assert_eq!(unchanged, d);
}

/// An envdir file: its first line becomes the value; an empty file unsets.
fn check_envdir_file(content: &[u8]) {
    let line = config::control::first_line_of(content, Path::new("envdir/name"));
    let line = match line {
        Ok(Some(line)) => line,
        Ok(None) => return assert!(content.is_empty()),
        Err(_) => return assert!(content.len() as u64 > config::control::MAX_LINE),
    };
    let expected_line = content.split(|&b| b == b'\n').next().unwrap();
    assert_eq!(line, expected_line);
    let value = config::env::envdir_value(line.clone());
    let value = value.as_bytes();
    assert!(!value.ends_with(b" ") && !value.ends_with(b"\t"));
    assert!(!value.contains(&0));
    assert!(line.starts_with(
        &value
            .iter()
            .map(|&b| if b == b'\n' { 0 } else { b })
            .collect::<Vec<_>>()
    ));
    assert!(line[value.len()..]
        .iter()
        .all(|b| *b == b' ' || *b == b'\t'));
}

fn check_numbers(text: &str) {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    match config::env::parse_decimal(text) {
        Some(n) => {
            assert!(digits);
            let canonical = text.trim_start_matches('0');
            assert_eq!(
                n.to_string(),
                if canonical.is_empty() { "0" } else { canonical }
            );
        }
        None => assert!(!digits || text.parse::<u64>().is_err()),
    }
    let octal = !text.is_empty() && text.bytes().all(|b| (b'0'..=b'7').contains(&b));
    let mode = config::fifo::parse_mode(text);
    match mode {
        Some(m) => {
            assert!(octal && m <= 0o777);
            assert_eq!(u32::from_str_radix(text, 8), Ok(m));
        }
        None => assert!(!octal || !matches!(u32::from_str_radix(text, 8), Ok(m) if m <= 0o777)),
    }
    let env = Env::from_pairs([("FIFO_MODE", text)]);
    match FifoConfig::load(&env) {
        Ok(f) => assert_eq!(f.fifo_mode, mode),
        Err(_) => assert!(mode.is_none()),
    }
}

/// A line of smtproutes or qmtproutes (`domain:relay[:port]`), as the
/// reference reads it: the domain (empty for the wildcard) and its port.
fn route_line(line: &str) -> Option<(&str, Option<u16>)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut it = line.splitn(3, ':');
    let domain = it.next().unwrap();
    it.next();
    Some((domain, it.next().and_then(|p| p.trim().parse().ok())))
}

fn check_routes(data: &[u8]) {
    let mut input = Input(data);
    let domain = String::from_utf8_lossy(input.bytes()).into_owned();
    let port = u16::from_le_bytes([input.byte(), input.byte()]);
    let text = input.rest();

    let lossy = String::from_utf8_lossy(text);
    let lines: Vec<(&str, Option<u16>)> = lossy.split('\n').filter_map(route_line).collect();
    let exact = lines
        .iter()
        .find(|(d, _)| !d.is_empty() && d.eq_ignore_ascii_case(&domain));
    let expected = match exact {
        Some((_, p)) => *p,
        None => lines
            .iter()
            .find(|(d, _)| d.is_empty())
            .and_then(|(_, p)| *p),
    };
    assert_eq!(
        control_files::routes_port(text, &domain),
        expected.filter(|&p| p != 0)
    );
    // A line for the domain put first wins over everything after it.
    let plain = !domain.is_empty()
        && domain.trim() == domain
        && !domain.starts_with('#')
        && !domain.contains([':', '\n']);
    if plain {
        let routed = [format!("{domain}:relay.example:{port}\n").as_bytes(), text].concat();
        let want = (port != 0).then_some(port);
        assert_eq!(control_files::routes_port(&routed, &domain), want);
        assert_eq!(
            control_files::routes_port(&routed, &domain.to_ascii_uppercase()),
            want
        );
    }
}

fn check_rcpthosts(data: &[u8]) {
    let mut input = Input(data);
    let domain = String::from_utf8_lossy(input.bytes()).into_owned();
    let text = input.rest();
    let lossy = String::from_utf8_lossy(text);
    let expected = lossy.split('\n').any(|l| {
        let l = l.trim();
        !l.starts_with('#') && l.eq_ignore_ascii_case(&domain)
    });
    assert_eq!(control_files::lists(text, &domain), expected);
    let plain = !domain.is_empty() && domain.trim() == domain && !domain.starts_with('#');
    if plain && !domain.contains('\n') {
        let listed = [text, b"\n ", domain.to_ascii_uppercase().as_bytes(), b" \n"].concat();
        assert!(control_files::lists(&listed, &domain));
    }
}

fn check_cdb_value(value: &[u8]) {
    let fields: Vec<&[u8]> = value.split(|&b| b == 0).collect();
    let dir = control_files::cdb_dir_field(value);
    assert_eq!(dir, fields.get(3).copied().filter(|d| !d.is_empty()));
    if let Some(dir) = dir {
        assert!(within(value, dir) && !dir.contains(&0));
    }
}

/// REAL_DOMAINS and ALIAS_DOMAINS, and the lookup settings read with them.
fn check_domain_lists(text: &str) {
    let load = |name: &str| {
        let env = Env::from_pairs([("INDIMAIL_DOMAIN", "Example.COM"), (name, text)]);
        let paths = config::Paths::from_env(&env).expect("paths from defaults");
        config::LookupConfig::load(&env, &paths)
    };
    let expected: Vec<String> = text
        .split(':')
        .filter(|d| !d.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let real = load("REAL_DOMAINS").expect("any text is a domain list");
    assert_eq!(real.real_domains, expected);
    assert_eq!(real.default_domain.as_deref(), Some("example.com"));
    let alias = load("ALIAS_DOMAINS").expect("any text is a domain list");
    assert_eq!(alias.alias_domains, expected);

    let minutes = config::env::parse_decimal(text).and_then(|n| u32::try_from(n).ok());
    match load("RELAY_CLEAR_MINUTES") {
        Ok(l) if text.is_empty() => assert_eq!(l.relay_clear_minutes, 30),
        Ok(l) => assert_eq!(Some(l.relay_clear_minutes), minutes),
        Err(_) => assert!(minutes.is_none()),
    }
    match load("ROUTES") {
        Ok(l) if text.is_empty() => assert_eq!(l.routes_qmtp, None),
        Ok(l) => assert_eq!(l.routes_qmtp, Some(text.starts_with("qmtp"))),
        Err(_) => assert!(!text.starts_with("qmtp") && !text.starts_with("smtp")),
    }
}

// ---------------------------------------------------------------------------
// Stored secrets, CRAM and DIGEST-MD5

/// The password field of an account and the challenge-response checks. The
/// first byte picks one.
pub fn auth(data: &[u8]) {
    let Some((&which, data)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => check_stored(data),
        1 => check_directives(data),
        2 => check_cram(data),
        3 => check_digest(data),
        _ => check_crypt(data),
    }
}

fn check_stored(stored: &[u8]) {
    let scram = [
        &b"{SCRAM-SHA-1}"[..],
        b"{SCRAM-SHA-256}",
        b"{SCRAM-SHA-512}",
    ]
    .into_iter()
    .find(|p| stored.starts_with(p));
    let parsed = match StoredSecret::parse(stored) {
        Ok(p) => p,
        Err(AuthError::MalformedScram { .. }) => return assert!(scram.is_some()),
        Err(e) => panic!("unexpected error {e:?}"),
    };
    match parsed {
        StoredSecret::Scram(s) => {
            let prefix = scram.expect("a SCRAM value with a SCRAM prefix");
            let rest = &stored[prefix.len()..];
            for field in [
                s.iterations,
                s.salt,
                s.stored_key,
                s.server_key,
                s.crypt_hash,
            ] {
                assert!(within(stored, field));
            }
            // Each field runs to a comma; its first byte is always data.
            for field in [s.iterations, s.salt, s.stored_key] {
                assert!(!field.is_empty() && !field[1..].contains(&b','));
            }
            assert!(!s.crypt_hash.is_empty());
            assert_eq!(offset(rest, s.iterations), 0);
            assert_eq!(offset(rest, s.salt), s.iterations.len() + 1);
            let key = s.iterations.len() + s.salt.len() + 2;
            assert_eq!(offset(rest, s.stored_key), key);
            assert_eq!(offset(rest, s.server_key), key + s.stored_key.len() + 1);
            match (s.salted_password_hex, s.clear_text) {
                (Some(hex), Some(clear)) => {
                    assert!(!clear.is_empty() && within(stored, hex) && within(stored, clear));
                    let server = offset(rest, s.server_key) + s.server_key.len();
                    assert_eq!(rest[server], b':');
                    assert_eq!(offset(rest, hex), server + 1);
                    assert_eq!(rest[server + 1 + hex.len()], b':');
                    assert_eq!(offset(rest, clear), server + 2 + hex.len());
                    // The hash follows the last comma, the clear text ends there.
                    assert!(!s.crypt_hash.contains(&b','));
                    assert_eq!(
                        offset(rest, clear) + clear.len() + 1,
                        offset(rest, s.crypt_hash)
                    );
                    assert_eq!(s.field_count(), 8);
                }
                (None, None) => {
                    assert_eq!(offset(rest, s.crypt_hash) + s.crypt_hash.len(), rest.len());
                    assert_eq!(s.field_count(), 6);
                }
                _ => panic!("salted password without clear text"),
            }
            if let Some(n) = s.iteration_count() {
                assert_eq!(
                    std::str::from_utf8(s.iterations).unwrap().parse::<u32>(),
                    Ok(n)
                );
            }
        }
        StoredSecret::Cram {
            clear_text,
            crypt_hash,
        } => {
            let rest = stored.strip_prefix(b"{CRAM}").expect("a {CRAM} value");
            assert!(scram.is_none());
            assert!(within(stored, clear_text) && within(stored, crypt_hash));
            match rest.iter().rposition(|&b| b == b',') {
                Some(c) => assert!(clear_text == &rest[..c] && crypt_hash == &rest[c + 1..]),
                None => assert!(clear_text == rest && crypt_hash == rest),
            }
        }
        StoredSecret::Plain(p) => {
            assert!(scram.is_none() && !stored.starts_with(b"{CRAM}"));
            assert_eq!(p, stored);
        }
    }
    // The secret each method compares against.
    for method in Method::ALL {
        for cram_from_hash in [false, true] {
            let secret = parsed.secret_for(method, cram_from_hash);
            if !method.is_cram_class() {
                assert_eq!(secret, Some(parsed.crypt_hash()));
            } else if let Some(clear) = parsed.clear_text() {
                assert_eq!(secret, Some(clear));
            } else {
                assert_eq!(secret, cram_from_hash.then(|| parsed.crypt_hash()));
            }
        }
    }
    // Debug output shows no secret: it is the same for another clear text
    // of the same length.
    if let Some(clear) = parsed.clear_text() {
        let disjoint = !within(clear, parsed.crypt_hash()) && !within(parsed.crypt_hash(), clear);
        let at = offset(stored, clear);
        if disjoint && !clear.contains(&b',') && !clear.is_empty() {
            let mut other = stored.to_vec();
            for b in &mut other[at..at + clear.len()] {
                *b = if *b == b'x' { b'y' } else { b'x' };
            }
            let again = StoredSecret::parse(&other).expect("parses as before");
            assert_eq!(format!("{parsed:?}"), format!("{again:?}"));
        }
    }
    let _ = CryptScheme::identify(parsed.crypt_hash());
}

/// The directives of DIGEST-MD5's field 3, as a reference reads them.
fn check_directives(field: &[u8]) {
    let last = |key: &[u8]| {
        field
            .split(|&b| b == b'\n')
            .filter_map(|line| {
                let eq = line.iter().position(|&b| b == b'=')?;
                (&line[..eq] == key).then(|| &line[eq + 1..])
            })
            .next_back()
    };
    let parsed = digest_md5::Directives::parse(field);
    let required = [
        last(b"nc"),
        last(b"qop"),
        last(b"realm"),
        last(b"nonce"),
        last(b"cnonce"),
        last(b"digest-uri"),
    ];
    match parsed {
        Some(d) => {
            let got = [d.nc, d.qop, d.realm, d.nonce, d.cnonce, d.digest_uri];
            for (value, want) in got.iter().zip(required) {
                assert_eq!(Some(*value), want);
                assert!(within(field, value));
            }
            assert_eq!(d.authzid, last(b"authzid"));
        }
        None => assert!(required.iter().any(Option::is_none)),
    }
    // The realm a bare login is completed with.
    let mut input = Input(field);
    let login = input.bytes();
    let directives = input.rest();
    let realm = directives
        .split(|&b| b == b'\n')
        .filter_map(|l| l.strip_prefix(b"realm="))
        .next_back();
    match auth::login_with_realm(login, directives) {
        Some(address) => {
            assert!(!login.contains(&b'@'));
            let domain = &address[login.len() + 1..];
            assert!(address.starts_with(login) && address[login.len()] == b'@');
            assert!(!domain.is_empty());
            assert!(!domain
                .iter()
                .any(|&b| b == b',' || b == b'"' || b.is_ascii_whitespace()));
            assert!(domain.len() <= realm.map_or(0, <[u8]>::len));
        }
        None => {
            let usable = realm.is_some_and(|r| {
                r.iter()
                    .take_while(|&&b| b != b',')
                    .any(|&b| b != b'"' && !b.is_ascii_whitespace())
            });
            assert!(login.contains(&b'@') || !usable);
        }
    }
}

fn cram_method(b: u8) -> CramAlgorithm {
    CramAlgorithm::ALL[usize::from(b) % CramAlgorithm::ALL.len()]
}

/// CRAM: the right response matches, in either case, through the whole
/// check an account goes through; any other response does not.
fn check_cram(data: &[u8]) {
    let mut input = Input(data);
    let algorithm = cram_method(input.byte());
    let flip = input.byte();
    let secret = input.bytes();
    let challenge = input.bytes();
    let response = input.rest();

    let expected = algorithm.hmac(secret, challenge);
    assert_eq!(expected.len(), algorithm.output_len());
    let right = algorithm.response(secret, challenge);
    assert_eq!(right, to_hex(&expected));
    assert!(algorithm.verify(secret, challenge, &right));
    assert!(algorithm.verify(secret, challenge, &right.to_ascii_uppercase()));
    // Any one changed hex digit is refused.
    let mut wrong = right.clone();
    let at = usize::from(flip) % wrong.len();
    wrong[at] = if wrong[at] == b'0' { b'1' } else { b'0' };
    assert!(!algorithm.verify(secret, challenge, &wrong));
    assert!(!algorithm.verify(secret, challenge, &right[1..]));
    // An arbitrary response: a match is exactly the right hex, any case.
    let matches = response.len() == right.len() && response.to_ascii_lowercase() == right;
    assert_eq!(algorithm.verify(secret, challenge, response), matches);

    // Through the stored password field, as vchkpass and authindi check it.
    let secret = auth::c_str(secret);
    let challenge = auth::c_str(challenge);
    if secret.is_empty() || challenge.is_empty() {
        return;
    }
    let right = algorithm.response(secret, challenge);
    let stored = [b"{CRAM}", secret, b",$1$x$"].concat();
    let policy = Policy::default();
    let attempt = Attempt::challenge_response(algorithm.method(), b"u@x", challenge, &right);
    let verdict = auth::verify(&stored, &attempt, &policy);
    assert!(
        matches!(verdict, Ok(Verdict::Match { rspauth: None })),
        "{verdict:?}"
    );
    let attempt = Attempt::challenge_response(algorithm.method(), b"u@x", challenge, &wrong);
    let verdict = auth::verify(&stored, &attempt, &policy);
    assert!(matches!(verdict, Ok(Verdict::Mismatch)));
    // Without a method, a challenge is keyed as the CRAM methods are: with the
    // clear text (IndiMail took the crypt hash); every CRAM variant is tried.
    let unspecified = Attempt::challenge_response(Method::Unspecified, b"u@x", challenge, &right);
    let verdict = auth::verify(&stored, &unspecified, &policy);
    assert!(
        matches!(verdict, Ok(Verdict::Match { rspauth: None })),
        "{verdict:?}"
    );
    // The stored hash is no key without ENABLE_CRAM.
    let from_hash = algorithm.response(b"$1$x$", challenge);
    if from_hash != right {
        for method in [algorithm.method(), Method::Unspecified] {
            let attempt = Attempt::challenge_response(method, b"u@x", challenge, &from_hash);
            let verdict = auth::verify(&stored, &attempt, &policy);
            assert!(matches!(verdict, Ok(Verdict::Mismatch)), "{verdict:?}");
        }
    }
    let verdict = auth::check_secret(secret, &unspecified, &policy);
    assert!(
        matches!(verdict, Ok(Verdict::Match { rspauth: None })),
        "{verdict:?}"
    );
    let mut policy = policy;
    policy.disable_when_unspecified(algorithm.method());
    let verdict = auth::check_secret(secret, &unspecified, &policy);
    assert!(matches!(verdict, Ok(Verdict::Mismatch)), "{verdict:?}");
    let policy = Policy::default();
    // Another CRAM method than the requested one never matches.
    let other = cram_method(flip.wrapping_add(1));
    if other != algorithm && algorithm.hmac(secret, challenge) != other.hmac(secret, challenge) {
        let attempt = Attempt::challenge_response(other.method(), b"u@x", challenge, &right);
        let verdict = auth::verify(&stored, &attempt, &policy);
        assert!(matches!(verdict, Ok(Verdict::Mismatch)));
    }
}

/// DIGEST-MD5: the response a client computes is accepted with the right
/// rspauth; a wrong one is not.
fn check_digest(data: &[u8]) {
    let mut input = Input(data);
    let qop_choice = input.byte();
    let user = without(input.bytes(), b"\0");
    let password = without(input.bytes(), b"\0");
    let values: Vec<Vec<u8>> = (0..5).map(|_| without(input.bytes(), b"\0\n")).collect();
    let qop: &[u8] = match qop_choice % 3 {
        0 => b"auth",
        1 => b"auth-int",
        _ => b"auth-conf",
    };
    let mut field3 = Vec::new();
    for (key, value) in [
        (&b"nc"[..], &values[0][..]),
        (b"nonce", &values[1]),
        (b"cnonce", &values[2]),
        (b"realm", &values[3]),
        (b"digest-uri", &values[4]),
        (b"qop", qop),
    ] {
        field3.extend([key, b"=", value, b"\n"].concat());
    }
    field3.extend(input.rest().iter().filter(|&&b| b != 0));
    let Some(d) = digest_md5::Directives::parse(&field3) else {
        panic!("directives with every required key were refused");
    };
    let response = digest_md5::expected_response(&user, &password, &d);
    let rspauth = digest_md5::rspauth(&user, &password, &d);
    assert_eq!(
        digest_md5::verify(&user, &password, &response, &field3),
        Some(rspauth)
    );
    assert!(response.iter().all(|b| b"0123456789abcdef".contains(b)));
    let mut wrong = response;
    wrong[usize::from(qop_choice) % 32] ^= 1;
    assert_eq!(digest_md5::verify(&user, &password, &wrong, &field3), None);

    if password.is_empty() {
        return;
    }
    let attempt = Attempt::challenge_response(Method::DigestMd5, &user, &response, &field3);
    let verdict = auth::check_secret(&password, &attempt, &Policy::default());
    match verdict {
        Ok(Verdict::Match { rspauth: Some(r) }) => assert_eq!(r, rspauth),
        other => panic!("the right DIGEST-MD5 response gave {other:?}"),
    }
    let attempt = Attempt::challenge_response(Method::DigestMd5, &user, &wrong, &field3);
    let verdict = auth::check_secret(&password, &attempt, &Policy::default());
    assert!(matches!(verdict, Ok(Verdict::Mismatch)));
}

/// Crypt hashes: every hash is identified or refused without panicking, and
/// checked when its scheme is cheap to compute.
fn check_crypt(data: &[u8]) {
    let mut input = Input(data);
    let password = input.bytes();
    let hash = input.rest();
    let scheme = CryptScheme::identify(hash);
    let cheap = match scheme {
        Ok(CryptScheme::Md5Crypt | CryptScheme::Des) => true,
        Ok(CryptScheme::Sha256Crypt | CryptScheme::Sha512Crypt) => {
            // A rounds= value makes it as slow as it says.
            !hash[3..].starts_with(b"rounds=")
        }
        Ok(CryptScheme::Bcrypt) => hash.get(4..6).is_some_and(|c| c <= &b"05"[..]),
        Ok(CryptScheme::Yescrypt | CryptScheme::Locked) | Err(_) => false,
    };
    if let Ok(s) = scheme {
        match s {
            CryptScheme::Des => assert_eq!(hash.len(), 13),
            CryptScheme::Locked => assert!(hash.starts_with(b"!") || hash.starts_with(b"*")),
            _ => assert!(hash.starts_with(b"$")),
        }
    }
    if !cheap {
        return;
    }
    match auth::verify_crypt(password, hash) {
        Ok(Verdict::Match { .. }) => {
            // Then a longer password does not, unless the scheme cuts it
            // (DES at 8 bytes, bcrypt at 72) or it ends at a NUL.
            let other = [password, b"!"].concat();
            let cut = match scheme {
                Ok(CryptScheme::Des) => 8,
                Ok(CryptScheme::Bcrypt) => 72,
                _ => usize::MAX,
            };
            if auth::c_str(password).len() < cut && !password.contains(&0) {
                let verdict = auth::verify_crypt(&other, hash);
                assert!(matches!(verdict, Ok(Verdict::Mismatch)));
            }
        }
        Ok(Verdict::Mismatch) => {}
        Err(AuthError::MalformedHash(name)) => assert_eq!(Ok(name), scheme.map(CryptScheme::name)),
        Err(AuthError::CostTooHigh(_)) => {}
        Err(e) => panic!("unexpected error {e:?} for a {scheme:?} hash"),
    }
    // A hash made here for the password matches it.
    let salt: String = password
        .iter()
        .map(|&b| char::from(b))
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    #[allow(deprecated)] // an old scheme, still found in account tables
    let made = pwhash::md5_crypt::hash_with(format!("$1${salt}$").as_str(), auth::c_str(password));
    if let Ok(made) = made {
        let verdict = auth::verify_crypt(password, made.as_bytes());
        assert!(matches!(verdict, Ok(Verdict::Match { .. })), "{made}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_base64_agrees_on_known_values() {
        assert_eq!(reference_base64(b"").as_deref(), Some(&b""[..]));
        assert_eq!(reference_base64(b"Zm9v").as_deref(), Some(&b"foo"[..]));
        assert_eq!(reference_base64(b"Zm8=").as_deref(), Some(&b"fo"[..]));
        assert_eq!(reference_base64(b"Zg==").as_deref(), Some(&b"f"[..]));
        assert_eq!(reference_base64(b"Z==="), None);
        assert_eq!(reference_base64(b"Zg=a"), None);
        assert_eq!(to_base64(b"fo"), b"Zm8=");
    }

    #[test]
    fn within_tells_parts_from_copies() {
        let a = b"abcdef".to_vec();
        let copy = a[1..3].to_vec();
        assert!(within(&a, &a[1..3]));
        assert!(!within(&a, &copy));
        assert_eq!(offset(&a, &a[2..]), 2);
    }
}
