//! Replaces credential values an upstream echoes (raw or URL-encoded) by their masks, in a byte
//! stream whose chunks may split a match anywhere.
use zeroize::Zeroizing;

/// A streaming find-and-replace over a fixed set of patterns.
pub struct Scrubber {
    /// `(pattern, replacement)`, longest first.
    patterns: Vec<(Zeroizing<Vec<u8>>, Vec<u8>)>,
    longest: usize,
    /// Bytes held back because they might start a match that continues in the next chunk.
    carry: Zeroizing<Vec<u8>>,
    /// How many replacements were made.
    pub replaced: u64,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrubber").field("patterns", &self.patterns.len()).finish_non_exhaustive()
    }
}

impl Scrubber {
    /// Patterns shorter than 4 bytes are ignored (they would mangle ordinary text).
    pub fn new(patterns: Vec<(Zeroizing<Vec<u8>>, Vec<u8>)>) -> Self {
        let mut patterns: Vec<_> = patterns.into_iter().filter(|(p, _)| p.len() >= 4).collect();
        patterns.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        patterns.dedup_by(|a, b| a.0 == b.0);
        let longest = patterns.first().map_or(0, |(p, _)| p.len());
        Self { patterns, longest, carry: Zeroizing::new(Vec::new()), replaced: 0 }
    }

    /// Whether there is nothing to look for.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    fn run(&mut self, buf: &[u8], last: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(buf.len());
        let mut i = 0;
        'scan: while i < buf.len() {
            let rest = &buf[i..];
            for (p, r) in &self.patterns {
                if rest.starts_with(p) {
                    out.extend_from_slice(r);
                    self.replaced += 1;
                    i += p.len();
                    continue 'scan;
                }
            }
            if !last && rest.len() < self.longest && self.patterns.iter().any(|(p, _)| p.starts_with(rest)) {
                self.carry = Zeroizing::new(rest.to_vec());
                return out;
            }
            out.push(buf[i]);
            i += 1;
        }
        self.carry = Zeroizing::new(Vec::new());
        out
    }

    /// Scrubs the next chunk; may hold back its tail until the next call.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.patterns.is_empty() {
            return chunk.to_vec();
        }
        let mut buf = Zeroizing::new(std::mem::take(&mut *self.carry));
        buf.extend_from_slice(chunk);
        self.run(&buf, false)
    }

    /// The held-back tail at the end of the stream.
    pub fn finish(&mut self) -> Vec<u8> {
        let buf = Zeroizing::new(std::mem::take(&mut *self.carry));
        self.run(&buf, true)
    }

    /// Scrubs a whole value (a header).
    pub fn whole(&mut self, value: &[u8]) -> Vec<u8> {
        let mut out = self.push(value);
        out.extend(self.finish());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scrubber() -> Scrubber {
        Scrubber::new(vec![
            (Zeroizing::new(b"sk_live_SECRET1234".to_vec()), b"sk_live_....1234".to_vec()),
            (Zeroizing::new(b"a%2Bb%3Dc_secret".to_vec()), b"****".to_vec()),
        ])
    }

    #[test]
    fn replaces_across_chunks() {
        let mut s = scrubber();
        let mut out = s.push(b"{\"echo\": \"sk_live_SEC");
        out.extend(s.push(b"RET1234\", \"x\": \"sk_live_SE\"}"));
        out.extend(s.finish());
        assert_eq!(String::from_utf8(out).unwrap(), "{\"echo\": \"sk_live_....1234\", \"x\": \"sk_live_SE\"}");
        assert_eq!(s.replaced, 1);
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_result(prefix in "[a-z ]{0,40}", suffix in "[a-z ]{0,40}", cuts in proptest::collection::vec(0usize..120, 0..6)) {
            let text = format!("{prefix}sk_live_SECRET1234{suffix}a%2Bb%3Dc_secret{prefix}");
            let expected = scrubber().whole(text.as_bytes());
            prop_assert!(!String::from_utf8_lossy(&expected).contains("SECRET1234"));
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(text.len())).collect();
            cuts.sort_unstable();
            let mut s = scrubber();
            let (mut out, mut at) = (Vec::new(), 0);
            for c in cuts {
                out.extend(s.push(&text.as_bytes()[at..c]));
                at = c;
            }
            out.extend(s.push(&text.as_bytes()[at..]));
            out.extend(s.finish());
            prop_assert_eq!(out, expected);
        }
    }
}
