//! The domain limits record of a LIMIT reply.

use super::DecodeError;

/// The domain limits record (`struct vlimits`), sent raw in the LP64 in-memory layout.
///
/// `-1` in the seven `i64` fields means unlimited or never expires; `0` in the four quota
/// fields means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VLimits {
    pub domain_expiry: i64,
    pub passwd_expiry: i64,
    pub maxpopaccounts: i64,
    pub maxaliases: i64,
    pub maxforwards: i64,
    pub maxautoresponders: i64,
    pub maxmailinglists: i64,
    pub diskquota: u64,
    pub maxmsgcount: u64,
    pub defaultquota: u64,
    pub defaultmaxmsgcount: u64,
    pub disable_pop: i16,
    pub disable_imap: i16,
    pub disable_dialup: i16,
    pub disable_passwordchanging: i16,
    pub disable_webmail: i16,
    pub disable_relay: i16,
    pub disable_smtp: i16,
    pub perm_account: i16,
    pub perm_alias: i16,
    pub perm_forward: i16,
    pub perm_autoresponder: i16,
    /// Bits 0-2 of the database's single `perm_maillist` column.
    pub perm_maillist: i16,
    /// Bits 3-5 of the database's `perm_maillist` column.
    pub perm_maillist_users: i16,
    /// Bits 6-8 of the database's `perm_maillist` column.
    pub perm_maillist_moderators: i16,
    pub perm_quota: i16,
    pub perm_defaultquota: i16,
    /// 1 = a domain row was found, 2 = a per-user row was found.
    pub limit_type: i16,
}

impl Default for VLimits {
    /// The limits of a domain without a vlimits row: nothing limited, nothing disabled.
    fn default() -> Self {
        VLimits {
            domain_expiry: -1,
            passwd_expiry: -1,
            maxpopaccounts: -1,
            maxaliases: -1,
            maxforwards: -1,
            maxautoresponders: -1,
            maxmailinglists: -1,
            diskquota: 0,
            maxmsgcount: 0,
            defaultquota: 0,
            defaultmaxmsgcount: 0,
            disable_pop: 0,
            disable_imap: 0,
            disable_dialup: 0,
            disable_passwordchanging: 0,
            disable_webmail: 0,
            disable_relay: 0,
            disable_smtp: 0,
            perm_account: 0,
            perm_alias: 0,
            perm_forward: 0,
            perm_autoresponder: 0,
            perm_maillist: 0,
            perm_maillist_users: 0,
            perm_maillist_moderators: 0,
            perm_quota: 0,
            perm_defaultquota: 0,
            limit_type: 0,
        }
    }
}

impl VLimits {
    /// `sizeof(struct vlimits)` on LP64 (x86-64, aarch64), trailing padding included.
    pub const SIZE: usize = 128;

    /// The C struct's bytes: fields in declaration order at their natural alignment,
    /// native endian, the 6 bytes of trailing padding zero.
    pub fn to_bytes(&self) -> [u8; 128] {
        let mut out = StructWriter::default();
        for long in [
            self.domain_expiry,
            self.passwd_expiry,
            self.maxpopaccounts,
            self.maxaliases,
            self.maxforwards,
            self.maxautoresponders,
            self.maxmailinglists,
        ] {
            out.put(&long.to_ne_bytes());
        }
        for quota in [
            self.diskquota,
            self.maxmsgcount,
            self.defaultquota,
            self.defaultmaxmsgcount,
        ] {
            out.put(&quota.to_ne_bytes());
        }
        for short in [
            self.disable_pop,
            self.disable_imap,
            self.disable_dialup,
            self.disable_passwordchanging,
            self.disable_webmail,
            self.disable_relay,
            self.disable_smtp,
            self.perm_account,
            self.perm_alias,
            self.perm_forward,
            self.perm_autoresponder,
            self.perm_maillist,
            self.perm_maillist_users,
            self.perm_maillist_moderators,
            self.perm_quota,
            self.perm_defaultquota,
            self.limit_type,
        ] {
            out.put(&short.to_ne_bytes());
        }
        out.bytes
    }

    /// Reads the C struct's bytes; exactly [`VLimits::SIZE`] of them. The padding is
    /// ignored: C servers send whatever was in memory there.
    pub fn from_bytes(b: &[u8]) -> Result<VLimits, DecodeError> {
        if b.len() != Self::SIZE {
            return Err(DecodeError::BadPayload(format!(
                "struct vlimits must be {} bytes, got {}",
                Self::SIZE,
                b.len()
            )));
        }
        let mut r = StructReader { rest: b };
        // Field initialisers run in the order written, which is the struct's order.
        Ok(VLimits {
            domain_expiry: i64::from_ne_bytes(r.take()?),
            passwd_expiry: i64::from_ne_bytes(r.take()?),
            maxpopaccounts: i64::from_ne_bytes(r.take()?),
            maxaliases: i64::from_ne_bytes(r.take()?),
            maxforwards: i64::from_ne_bytes(r.take()?),
            maxautoresponders: i64::from_ne_bytes(r.take()?),
            maxmailinglists: i64::from_ne_bytes(r.take()?),
            diskquota: u64::from_ne_bytes(r.take()?),
            maxmsgcount: u64::from_ne_bytes(r.take()?),
            defaultquota: u64::from_ne_bytes(r.take()?),
            defaultmaxmsgcount: u64::from_ne_bytes(r.take()?),
            disable_pop: i16::from_ne_bytes(r.take()?),
            disable_imap: i16::from_ne_bytes(r.take()?),
            disable_dialup: i16::from_ne_bytes(r.take()?),
            disable_passwordchanging: i16::from_ne_bytes(r.take()?),
            disable_webmail: i16::from_ne_bytes(r.take()?),
            disable_relay: i16::from_ne_bytes(r.take()?),
            disable_smtp: i16::from_ne_bytes(r.take()?),
            perm_account: i16::from_ne_bytes(r.take()?),
            perm_alias: i16::from_ne_bytes(r.take()?),
            perm_forward: i16::from_ne_bytes(r.take()?),
            perm_autoresponder: i16::from_ne_bytes(r.take()?),
            perm_maillist: i16::from_ne_bytes(r.take()?),
            perm_maillist_users: i16::from_ne_bytes(r.take()?),
            perm_maillist_moderators: i16::from_ne_bytes(r.take()?),
            perm_quota: i16::from_ne_bytes(r.take()?),
            perm_defaultquota: i16::from_ne_bytes(r.take()?),
            limit_type: i16::from_ne_bytes(r.take()?),
        })
    }
}

/// Lays out consecutive struct fields. The fields are written in descending alignment
/// (8-byte, then 2-byte), so consecutive placement equals the C layout.
struct StructWriter {
    bytes: [u8; VLimits::SIZE],
    offset: usize,
}

impl Default for StructWriter {
    fn default() -> Self {
        StructWriter {
            bytes: [0; VLimits::SIZE],
            offset: 0,
        }
    }
}

impl StructWriter {
    fn put(&mut self, field: &[u8]) {
        let end = self.offset + field.len();
        if let Some(slot) = self.bytes.get_mut(self.offset..end) {
            slot.copy_from_slice(field);
        }
        self.offset = end;
    }
}

/// Reads consecutive struct fields; the counterpart of [`StructWriter`].
struct StructReader<'a> {
    rest: &'a [u8],
}

impl StructReader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let (field, rest) = self.rest.split_first_chunk::<N>().ok_or_else(|| {
            DecodeError::BadPayload("struct vlimits ends inside a field".to_owned())
        })?;
        self.rest = rest;
        Ok(*field)
    }
}

// ---------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::*;
    use super::*;

    #[test]
    fn vlimits_layout_matches_lp64_offsets() {
        let limits = distinct_limits();
        let bytes = limits.to_bytes();
        let longs = [
            (0, limits.domain_expiry),
            (8, limits.passwd_expiry),
            (16, limits.maxpopaccounts),
            (24, limits.maxaliases),
            (32, limits.maxforwards),
            (40, limits.maxautoresponders),
            (48, limits.maxmailinglists),
        ];
        for (offset, value) in longs {
            assert_eq!(
                bytes[offset..offset + 8],
                value.to_ne_bytes(),
                "offset {offset}"
            );
        }
        let quotas = [
            (56, limits.diskquota),
            (64, limits.maxmsgcount),
            (72, limits.defaultquota),
            (80, limits.defaultmaxmsgcount),
        ];
        for (offset, value) in quotas {
            assert_eq!(
                bytes[offset..offset + 8],
                value.to_ne_bytes(),
                "offset {offset}"
            );
        }
        let shorts = [
            (88, limits.disable_pop),
            (90, limits.disable_imap),
            (92, limits.disable_dialup),
            (94, limits.disable_passwordchanging),
            (96, limits.disable_webmail),
            (98, limits.disable_relay),
            (100, limits.disable_smtp),
            (102, limits.perm_account),
            (104, limits.perm_alias),
            (106, limits.perm_forward),
            (108, limits.perm_autoresponder),
            (110, limits.perm_maillist),
            (112, limits.perm_maillist_users),
            (114, limits.perm_maillist_moderators),
            (116, limits.perm_quota),
            (118, limits.perm_defaultquota),
            (120, limits.limit_type),
        ];
        for (offset, value) in shorts {
            assert_eq!(
                bytes[offset..offset + 2],
                value.to_ne_bytes(),
                "offset {offset}"
            );
        }
        assert_eq!(bytes[122..128], [0; 6], "padding");
        assert_eq!(VLimits::from_bytes(&bytes), Ok(limits));
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn vlimits_perm_maillist_trio_is_three_shorts() {
        let limits = VLimits {
            perm_maillist: 1,
            perm_maillist_users: 2,
            perm_maillist_moderators: 4,
            ..VLimits::default()
        };
        let bytes = limits.to_bytes();
        assert_eq!(bytes[108..118], [0, 0, 1, 0, 2, 0, 4, 0, 0, 0]);
        assert_eq!(VLimits::from_bytes(&bytes), Ok(limits));
    }

    #[test]
    fn vlimits_defaults() {
        let bytes = VLimits::default().to_bytes();
        assert_eq!(bytes[..56], [0xff; 56], "seven longs of -1");
        assert_eq!(bytes[56..], [0; 72], "quotas, shorts and padding zero");
    }

    #[test]
    fn limits_reply_round_trips_and_checks_sizes() {
        let reply = Reply::Limits(distinct_limits());
        let bytes = reply.encode().unwrap();
        assert_eq!(bytes[..4], 128i32.to_ne_bytes());
        assert_eq!(bytes.len(), 4 + 128);
        assert_eq!(Reply::decode(QueryType::Limit, &bytes), Ok(reply));

        // Non-zero padding from a C server is ignored.
        let mut padded = bytes.clone();
        padded[4 + 127] = 0xaa;
        assert_eq!(
            Reply::decode(QueryType::Limit, &padded),
            Ok(Reply::Limits(distinct_limits()))
        );

        assert_eq!(
            Reply::decode(QueryType::Limit, &reply_bytes(96, &[0; 96])),
            Err(bad_status(QueryType::Limit, 96))
        );
        assert_eq!(
            Reply::decode(QueryType::Limit, &bytes[..100]),
            Err(DecodeError::ShortBody {
                expected: 128,
                got: 96
            })
        );
        assert!(matches!(
            VLimits::from_bytes(&[0; 127]),
            Err(DecodeError::BadPayload(_))
        ));
        assert!(matches!(
            VLimits::from_bytes(&[0; 129]),
            Err(DecodeError::BadPayload(_))
        ));
    }
}
