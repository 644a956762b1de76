/// Additional authenticated data built from length-prefixed parts (u32 big-endian length, then
/// the bytes), so that no two different part lists can produce the same AAD.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Aad(Vec<u8>);

impl Aad {
    /// Starts an AAD with its domain label (e.g. `keyward/kv`).
    pub fn new(domain: &str) -> Self {
        Self::default().part(domain.as_bytes())
    }

    /// Appends one length-prefixed part.
    pub fn part(mut self, bytes: &[u8]) -> Self {
        let len = u32::try_from(bytes.len()).expect("AAD part longer than 4 GiB");
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(bytes);
        self
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_unambiguous() {
        let a = Aad::new("d").part(b"ab").part(b"c");
        let b = Aad::new("d").part(b"a").part(b"bc");
        assert_ne!(a, b);
        assert_eq!(a.as_bytes()[..5], [0, 0, 0, 1, b'd']);
    }
}
