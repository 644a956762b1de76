use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::distr::{Alphanumeric, SampleString};
use rand::RngCore;
use zeroize::Zeroizing;

/// `n` characters of base62 (`[A-Za-z0-9]`), uniformly drawn from the OS-seeded CSPRNG.
pub fn random_base62(n: usize) -> Zeroizing<String> {
    Zeroizing::new(Alphanumeric.sample_string(&mut rand::rng(), n))
}

/// `nbytes` random bytes, base64-encoded (for `keyward gen secret|key`).
pub fn random_base64_secret(nbytes: usize) -> Zeroizing<String> {
    let mut bytes = Zeroizing::new(vec![0u8; nbytes]);
    rand::rng().fill_bytes(&mut bytes);
    Zeroizing::new(STANDARD.encode(&*bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_alphabet() {
        let s = random_base62(43);
        assert_eq!(s.len(), 43);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(*s, *random_base62(43));
        assert_eq!(STANDARD.decode(&*random_base64_secret(64)).unwrap().len(), 64);
    }
}
