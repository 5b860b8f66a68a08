//! MD5 and HMAC-MD5 (RFC 2104) as RADIUS uses them. Both hash incrementally so the
//! parser can feed a packet piecewise (authenticator swapped, Message-Authenticator
//! zeroed) without copying it.

use md5::{Digest, Md5};

const BLOCK: usize = 64;

pub(crate) struct HmacMd5 {
    inner: Md5,
    opad_key: [u8; BLOCK],
}

impl HmacMd5 {
    pub(crate) fn new(key: &[u8]) -> Self {
        let mut k = [0u8; BLOCK];
        if key.len() > BLOCK {
            k[..16].copy_from_slice(&md5_of(&[key]));
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let mut ipad_key = [0u8; BLOCK];
        let mut opad_key = [0u8; BLOCK];
        for ((i, o), k) in ipad_key.iter_mut().zip(opad_key.iter_mut()).zip(k) {
            *i = k ^ 0x36;
            *o = k ^ 0x5c;
        }
        let mut inner = Md5::new();
        inner.update(ipad_key);
        HmacMd5 { inner, opad_key }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
    }

    pub(crate) fn finalize(self) -> [u8; 16] {
        let inner: [u8; 16] = self.inner.finalize().into();
        md5_of(&[&self.opad_key, &inner])
    }
}

pub(crate) fn md5_of(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Authenticators are secrets-derived MACs; comparing them with an early exit would
/// leak how many leading octets an attacker guessed right.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hmac(key: &[u8], msg: &[u8]) -> [u8; 16] {
        let mut h = HmacMd5::new(key);
        h.update(msg);
        h.finalize()
    }

    // RFC 2202 §2 test cases 1, 2 and 6 (key longer than the block size).
    #[test]
    fn rfc2202_vectors() {
        assert_eq!(
            hex::encode(hmac(&[0x0b; 16], b"Hi There")),
            "9294727a3638bb1c13f48ef8158bfc9d"
        );
        assert_eq!(
            hex::encode(hmac(b"Jefe", b"what do ya want for nothing?")),
            "750c783e6ab0b503eaa86e310a5db738"
        );
        assert_eq!(
            hex::encode(hmac(
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd"
        );
    }

    #[test]
    fn ct_eq_compares_content_and_length() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
