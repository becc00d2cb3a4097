//! The CRAM family: an RFC 2104 HMAC of the server's challenge, keyed by the clear-text
//! secret, sent back by the client as hex (RFC 2195 for CRAM-MD5; IndiMail applies the
//! same construction to SHA-1, the SHA-2 family and RIPEMD-160).

use hmac::{EagerHash, Hmac, KeyInit, Mac};
use md5::Md5;
use ripemd::Ripemd160;
use sha1::Sha1;
use sha2::{Sha224, Sha256, Sha384, Sha512};

use super::{hex, Method};

/// The hash under one CRAM method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CramAlgorithm {
    /// CRAM-MD5, HMAC-MD5 (16 bytes).
    Md5,
    /// CRAM-SHA1, HMAC-SHA-1 (20 bytes).
    Sha1,
    /// CRAM-SHA224, HMAC-SHA-224 (28 bytes).
    Sha224,
    /// CRAM-SHA256, HMAC-SHA-256 (32 bytes).
    Sha256,
    /// CRAM-SHA384, HMAC-SHA-384 (48 bytes).
    Sha384,
    /// CRAM-SHA512, HMAC-SHA-512 (64 bytes).
    Sha512,
    /// CRAM-RIPEMD, HMAC-RIPEMD-160 (20 bytes).
    Ripemd160,
}

impl CramAlgorithm {
    /// The order in which IndiMail's pw_comp tries them when the method is unspecified.
    pub const ALL: [CramAlgorithm; 7] = [
        CramAlgorithm::Md5,
        CramAlgorithm::Sha1,
        CramAlgorithm::Sha224,
        CramAlgorithm::Sha256,
        CramAlgorithm::Sha384,
        CramAlgorithm::Sha512,
        CramAlgorithm::Ripemd160,
    ];

    /// The method this algorithm implements.
    pub fn method(self) -> Method {
        match self {
            CramAlgorithm::Md5 => Method::CramMd5,
            CramAlgorithm::Sha1 => Method::CramSha1,
            CramAlgorithm::Sha224 => Method::CramSha224,
            CramAlgorithm::Sha256 => Method::CramSha256,
            CramAlgorithm::Sha384 => Method::CramSha384,
            CramAlgorithm::Sha512 => Method::CramSha512,
            CramAlgorithm::Ripemd160 => Method::CramRipemd,
        }
    }

    /// The algorithm behind a CRAM method; `None` for any other method.
    pub fn for_method(method: Method) -> Option<CramAlgorithm> {
        CramAlgorithm::ALL
            .into_iter()
            .find(|a| a.method() == method)
    }

    /// Length of the HMAC in bytes (the hex response is twice as long).
    pub fn output_len(self) -> usize {
        match self {
            CramAlgorithm::Md5 => 16,
            CramAlgorithm::Sha1 | CramAlgorithm::Ripemd160 => 20,
            CramAlgorithm::Sha224 => 28,
            CramAlgorithm::Sha256 => 32,
            CramAlgorithm::Sha384 => 48,
            CramAlgorithm::Sha512 => 64,
        }
    }

    /// HMAC of `challenge` keyed by `secret`.
    pub fn hmac(self, secret: &[u8], challenge: &[u8]) -> Vec<u8> {
        match self {
            CramAlgorithm::Md5 => tag::<Md5>(secret, challenge),
            CramAlgorithm::Sha1 => tag::<Sha1>(secret, challenge),
            CramAlgorithm::Sha224 => tag::<Sha224>(secret, challenge),
            CramAlgorithm::Sha256 => tag::<Sha256>(secret, challenge),
            CramAlgorithm::Sha384 => tag::<Sha384>(secret, challenge),
            CramAlgorithm::Sha512 => tag::<Sha512>(secret, challenge),
            CramAlgorithm::Ripemd160 => tag::<Ripemd160>(secret, challenge),
        }
    }

    /// The response a client holding `secret` sends: the HMAC in lowercase hex.
    pub fn response(self, secret: &[u8], challenge: &[u8]) -> Vec<u8> {
        hex::encode(&self.hmac(secret, challenge))
    }

    /// Is `response` the right answer to `challenge` for `secret`? The comparison of the
    /// derived bytes is constant-time; hex of either case is accepted.
    #[must_use]
    pub fn verify(self, secret: &[u8], challenge: &[u8], response: &[u8]) -> bool {
        hex::response_matches(response, &self.hmac(secret, challenge))
    }
}

fn tag<D>(key: &[u8], message: &[u8]) -> Vec<u8>
where
    D: EagerHash,
    Hmac<D>: KeyInit + Mac,
{
    let mut mac = <Hmac<D> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use CramAlgorithm::*;

    const HI_THERE: &[u8] = b"Hi There";
    const JEFE: &[u8] = b"Jefe";
    const WHAT: &[u8] = b"what do ya want for nothing?";
    const BIG_KEY_MSG: &[u8] = b"Test Using Larger Than Block-Size Key - Hash Key First";

    fn check(alg: CramAlgorithm, key: &[u8], msg: &[u8], hex: &str) {
        assert_eq!(
            String::from_utf8(alg.response(key, msg)).unwrap(),
            hex,
            "{alg:?}"
        );
        assert_eq!(alg.hmac(key, msg).len(), alg.output_len());
        assert!(alg.verify(key, msg, hex.as_bytes()));
        assert!(alg.verify(key, msg, hex.to_ascii_uppercase().as_bytes()));
        let mut wrong = hex.as_bytes().to_vec();
        wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
        assert!(!alg.verify(key, msg, &wrong));
        assert!(!alg.verify(key, msg, &hex.as_bytes()[1..]));
    }

    #[test]
    fn rfc2195_cram_md5() {
        check(
            Md5,
            b"tanstaaftanstaaf",
            b"<1896.697170952@postoffice.reston.mci.net>",
            "b913a602c7eda7a495b4e6e7334d3890",
        );
    }

    #[test]
    fn rfc2202_hmac_md5() {
        check(
            Md5,
            &[0x0b; 16],
            HI_THERE,
            "9294727a3638bb1c13f48ef8158bfc9d",
        );
        check(Md5, JEFE, WHAT, "750c783e6ab0b503eaa86e310a5db738");
        // Key longer than the 64-byte block: hashed first.
        check(
            Md5,
            &[0xaa; 80],
            BIG_KEY_MSG,
            "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd",
        );
    }

    #[test]
    fn rfc2202_hmac_sha1() {
        check(
            Sha1,
            &[0x0b; 20],
            HI_THERE,
            "b617318655057264e28bc0b6fb378c8ef146be00",
        );
        check(Sha1, JEFE, WHAT, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
        check(
            Sha1,
            &[0xaa; 80],
            BIG_KEY_MSG,
            "aa4ae5e15272d00e95705637ce8a3b55ed402112",
        );
    }

    #[test]
    fn rfc4231_hmac_sha2() {
        // Test case 1.
        check(
            Sha224,
            &[0x0b; 20],
            HI_THERE,
            "896fb1128abbdf196832107cd49df33f47b4b1169912ba4f53684b22",
        );
        check(
            Sha256,
            &[0x0b; 20],
            HI_THERE,
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        );
        check(
            Sha384,
            &[0x0b; 20],
            HI_THERE,
            "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec6\
             82aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6",
        );
        check(
            Sha512,
            &[0x0b; 20],
            HI_THERE,
            "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde\
             daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
        );
        // Test case 2.
        check(
            Sha224,
            JEFE,
            WHAT,
            "a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44",
        );
        check(
            Sha256,
            JEFE,
            WHAT,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        );
        check(
            Sha384,
            JEFE,
            WHAT,
            "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47\
             e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
        );
        check(
            Sha512,
            JEFE,
            WHAT,
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
             9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
        );
        // Test case 6: a 131-byte key, longer than both block sizes (64 and 128).
        check(
            Sha224,
            &[0xaa; 131],
            BIG_KEY_MSG,
            "95e9a0db962095adaebe9b2d6f0dbce2d499f112f2d2b7273fa6870e",
        );
        check(
            Sha256,
            &[0xaa; 131],
            BIG_KEY_MSG,
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        );
        check(
            Sha384,
            &[0xaa; 131],
            BIG_KEY_MSG,
            "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f\
             3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952",
        );
        check(
            Sha512,
            &[0xaa; 131],
            BIG_KEY_MSG,
            "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352\
             6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
        );
    }

    #[test]
    fn rfc2286_hmac_ripemd160() {
        check(
            Ripemd160,
            &[0x0b; 20],
            HI_THERE,
            "24cb4bd67d20fc1a5d2ed7732dcc39377f0a5668",
        );
        check(
            Ripemd160,
            JEFE,
            WHAT,
            "dda6c0213a485a9e24f4742064a7f033b43c4069",
        );
        check(
            Ripemd160,
            &[0xaa; 80],
            BIG_KEY_MSG,
            "6466ca07ac5eac29e1bd523e5ada7605b791fd8b",
        );
    }

    #[test]
    fn methods_map_both_ways() {
        for alg in CramAlgorithm::ALL {
            assert_eq!(CramAlgorithm::for_method(alg.method()), Some(alg));
            assert!(alg.method().is_cram_class());
        }
        assert_eq!(CramAlgorithm::for_method(Method::DigestMd5), None);
        assert_eq!(CramAlgorithm::for_method(Method::Login), None);
    }
}
