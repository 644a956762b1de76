//! Digests keyward computes for others: the HMAC-SHA256 signature of a proxied request (the
//! exchange-style `hmac-sha256-query` recipe) and the SHA-256 fingerprint of a certificate.
use ring::{digest, hmac};
use zeroize::Zeroizing;

/// The lowercase hex HMAC-SHA256 of the concatenated `parts` under `key` — the signature
/// exchanges such as Binance check over the query as sent followed by the body. The key is the
/// credential: it is copied nowhere but into `ring`'s key schedule.
pub fn hmac_sha256_hex(key: &[u8], parts: &[&[u8]]) -> Zeroizing<String> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    for part in parts {
        ctx.update(part);
    }
    Zeroizing::new(hex::encode(ctx.sign().as_ref()))
}

/// The SHA-256 fingerprint of `der` (a certificate), as uppercase hex pairs joined by `:`
/// (`AB:CD:…`), the form `openssl x509 -fingerprint -sha256` prints.
pub fn sha256_fingerprint(der: &[u8]) -> String {
    let d = digest::digest(&digest::SHA256, der);
    d.as_ref().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let sig = hmac_sha256_hex(b"Jefe", &[b"what do ya ", b"want for nothing?"]);
        assert_eq!(sig.as_str(), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn fingerprint_of_abc_is_its_sha256() {
        assert_eq!(
            sha256_fingerprint(b"abc"),
            "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
    }

    proptest! {
        #[test]
        fn how_the_message_is_split_does_not_change_the_signature(
            key in proptest::collection::vec(any::<u8>(), 0..80),
            msg in proptest::collection::vec(any::<u8>(), 0..200),
            at in 0usize..200,
        ) {
            let at = at.min(msg.len());
            let whole = hmac_sha256_hex(&key, &[&msg]);
            let split = hmac_sha256_hex(&key, &[&msg[..at], &msg[at..]]);
            prop_assert_eq!(whole.as_str(), split.as_str());
            prop_assert_eq!(whole.len(), 64);
        }
    }
}
