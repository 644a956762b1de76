//! TOTP (RFC 6238): HMAC-SHA1 (ring's legacy SHA-1 HMAC, as the RFC and every authenticator app
//! use), 6 digits, 30-second steps, one step of drift either way, and each step used once.
use ring::hmac;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::random_bytes;

/// Seconds per step.
pub const TOTP_STEP_SECS: u64 = 30;
/// Bytes of a new seed (160 bits, RFC 4226's recommendation).
pub const TOTP_SEED_LEN: usize = 20;

/// A new random seed.
pub fn totp_seed() -> Zeroizing<Vec<u8>> {
    random_bytes(TOTP_SEED_LEN)
}

/// The code of `step` with `digits` digits (RFC 4226 dynamic truncation).
fn code(seed: &[u8], step: u64, digits: u32) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, seed);
    let mac = hmac::sign(&key, &step.to_be_bytes());
    let m = mac.as_ref();
    let offset = usize::from(m[m.len() - 1] & 0x0f);
    let bin = u32::from_be_bytes([m[offset] & 0x7f, m[offset + 1], m[offset + 2], m[offset + 3]]);
    bin % 10u32.pow(digits)
}

/// The 6-digit code of time `unix_secs`, as text.
pub fn totp_now(seed: &[u8], unix_secs: u64) -> String {
    format!("{:06}", code(seed, unix_secs / TOTP_STEP_SECS, 6))
}

/// The step `presented` is the code of — within one step of `unix_secs` and after `last_step`
/// (a step is used once) — or `None`. Each candidate is compared in constant time.
pub fn totp_check(seed: &[u8], presented: &str, unix_secs: u64, last_step: Option<u64>) -> Option<u64> {
    let presented = presented.trim();
    if presented.len() != 6 || !presented.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = unix_secs / TOTP_STEP_SECS;
    let mut found = None;
    for step in [now.saturating_sub(1), now, now + 1] {
        let expected = format!("{:06}", code(seed, step, 6));
        let fresh = last_step.is_none_or(|l| step > l);
        if bool::from(expected.as_bytes().ct_eq(presented.as_bytes())) && fresh && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// An `otpauth://` URI for authenticator apps (the seed in unpadded base32).
pub fn totp_uri(issuer: &str, account: &str, seed: &[u8]) -> Zeroizing<String> {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let secret = Zeroizing::new(data_encoding::BASE32_NOPAD.encode(seed));
    Zeroizing::new(format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits=6&period={TOTP_STEP_SECS}",
        enc(issuer),
        enc(account),
        secret.as_str(),
        enc(issuer)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 (its 8-digit codes; the 6-digit ones are their last six).
    #[test]
    fn rfc_6238_vectors() {
        let seed = b"12345678901234567890";
        for (t, want) in [
            (59u64, 94_287_082u32),
            (1_111_111_109, 7_081_804),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
        ] {
            assert_eq!(code(seed, t / TOTP_STEP_SECS, 8), want, "T={t}");
            assert_eq!(totp_now(seed, t), format!("{:06}", want % 1_000_000));
        }
    }

    #[test]
    fn a_code_counts_within_a_step_of_drift_and_once() {
        let seed = totp_seed();
        let t = 1_700_000_000;
        let now = totp_now(&seed, t);
        assert_eq!(totp_check(&seed, &now, t, None), Some(t / TOTP_STEP_SECS));
        assert_eq!(totp_check(&seed, &now, t + TOTP_STEP_SECS, None), Some(t / TOTP_STEP_SECS), "one step late");
        assert_eq!(totp_check(&seed, &now, t + 2 * TOTP_STEP_SECS, None), None, "two steps late");
        assert_eq!(totp_check(&seed, &now, t, Some(t / TOTP_STEP_SECS)), None, "replayed");
        assert_eq!(totp_check(&seed, "12345", t, None), None);
        assert_eq!(totp_check(&seed, "abcdef", t, None), None);
        let uri = totp_uri("keyward", "alice@ci", &seed);
        assert!(
            uri.starts_with("otpauth://totp/keyward:alice%40ci?secret=") && uri.contains("&digits=6&period=30"),
            "{}",
            uri.as_str()
        );
    }
}
