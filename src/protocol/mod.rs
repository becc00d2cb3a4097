//! The inlookup wire format: query types, request records and replies.
//!
//! Everything here is a pure function over bytes. Moving those bytes through a FIFO or a
//! TCP stream is the transport's job; keeping the two apart lets the format be tested
//! byte for byte against the C peers without any I/O.
//!
//! Every integer on the wire is a C `int` in host byte order: the C client and server
//! never convert it. This module therefore always uses `i32::to_ne_bytes` and
//! `i32::from_ne_bytes`, which is little-endian on every platform IndiMail ships for.
//!
//! Decoding is total: any byte string either decodes or yields a [`DecodeError`], and
//! nothing in here panics on input, because requests come from any local process that can
//! write a server FIFO. Encoding refuses values that a C peer would read back as something
//! else ([`EncodeError`]), so what we send always means what we meant.
//!
//! One file per message: [`request`] (a lookup request), [`flush`] (the cache-flush
//! extension), [`reply`] (the answers), [`pwstruct`] (the PWD record), [`limits`] (the
//! LIMIT struct); [`frames`] cuts what a server FIFO delivers into requests.

mod error;
pub mod flush;
pub mod frames;
pub mod limits;
pub mod pwstruct;
mod query_type;
pub mod reply;
pub mod request;

pub use error::{DecodeError, EncodeError};
pub use flush::{FlushReply, FlushRequest, FLUSH_TYPE};
pub use limits::VLimits;
pub use pwstruct::{PasswordReply, PwStruct};
pub use query_type::QueryType;
pub use reply::{RelayStatus, Reply, UserStatus};
pub use request::Request;

/// Linux `PIPE_BUF`: the largest write a FIFO keeps atomic. A whole request must fit in
/// one such write so that requests from concurrent clients never interleave, and the C
/// client refuses replies whose byte count is larger.
pub const PIPE_BUF: usize = 4096;

/// The largest accepted value of a request's length prefix: the prefix counts only the
/// bytes after itself, and prefix plus body must fit in one atomic write.
pub const MAX_BODY_LEN: usize = PIPE_BUF - INT_LEN;

/// Size of the C `int` that starts every request and every reply.
const INT_LEN: usize = 4;

/// Fails with [`EncodeError::ForbiddenByte`] on the first byte of `value` that is in
/// `forbidden`.
fn refuse_bytes(field: &'static str, value: &[u8], forbidden: &[u8]) -> Result<(), EncodeError> {
    match value.iter().find(|b| forbidden.contains(b)) {
        Some(&byte) => Err(EncodeError::ForbiddenByte { field, byte }),
        None => Ok(()),
    }
}

/// Converts a length already checked against `PIPE_BUF` to the wire int.
fn bounded_int(len: usize) -> i32 {
    debug_assert!(len <= PIPE_BUF);
    i32::try_from(len).unwrap_or(i32::MAX)
}

/// Splits off the leading C int of a request or reply.
fn split_leading_int(bytes: &[u8]) -> Result<(&[u8; INT_LEN], &[u8]), DecodeError> {
    bytes
        .split_first_chunk::<INT_LEN>()
        .ok_or(DecodeError::ShortPrefix { got: bytes.len() })
}

/// `bytes` if it is exactly `expected` long; otherwise says which way it is off.
fn exact_len(bytes: &[u8], expected: usize) -> Result<&[u8], DecodeError> {
    match bytes.len().checked_sub(expected) {
        Some(0) => Ok(bytes),
        Some(extra) => Err(DecodeError::TrailingBytes(extra)),
        None => Err(DecodeError::ShortBody {
            expected,
            got: bytes.len(),
        }),
    }
}

/// Splits `bytes` at its first NUL into the string before it and the rest after it.
fn take_c_string<'a>(
    bytes: &'a [u8],
    field: &'static str,
) -> Result<(&'a [u8], &'a [u8]), DecodeError> {
    let (text, rest) = split_at_first(bytes, 0);
    if text.len() == bytes.len() {
        return Err(DecodeError::MissingNul { field });
    }
    Ok((text, rest))
}

/// Splits at the first `separator`, which belongs to neither part; without one, the whole
/// input is the first part and the second is empty.
fn split_at_first(bytes: &[u8], separator: u8) -> (&[u8], &[u8]) {
    match bytes.iter().position(|&b| b == separator) {
        Some(at) => (
            bytes.get(..at).unwrap_or_default(),
            bytes.get(at + 1..).unwrap_or_default(),
        ),
        None => (bytes, &[]),
    }
}

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
