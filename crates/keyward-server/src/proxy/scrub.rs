//! Replaces credential values an upstream echoes by their masks, in a byte stream whose chunks
//! may split a match anywhere.
//!
//! A value is found in whatever form an upstream is likely to echo it: each of its characters
//! raw, percent-encoded (either hex case), or JSON-escaped (`\/`, `\"`, `\\`, `\n`…, or `\uXXXX` in
//! either case, surrogate pairs included) — independently, so a mix such as Go's `\u003c` for one
//! character and raw text for the rest is caught too. Base64 forms (standard and URL-safe, padded
//! or not) are looked for as well: of the value alone, and the parts of it that stay the same
//! wherever the value sits inside a longer base64 text.
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use zeroize::Zeroizing;

/// One step of a needle.
#[derive(Clone, Copy)]
enum Unit {
    /// A character, in any of the encodings above.
    Char(char),
    /// Exactly this byte.
    Byte(u8),
}

/// What to look for and what to put instead.
struct Needle {
    units: Zeroizing<Vec<UnitCell>>,
    replacement: Vec<u8>,
}

/// A [`Unit`] that zeroizes (needles hold credential characters).
#[derive(Clone, Copy, Default)]
struct UnitCell(u32);

impl zeroize::DefaultIsZeroes for UnitCell {}

impl UnitCell {
    const BYTE: u32 = 1 << 31;

    fn of(u: Unit) -> Self {
        match u {
            Unit::Char(c) => Self(c as u32),
            Unit::Byte(b) => Self(Self::BYTE | u32::from(b)),
        }
    }

    fn get(self) -> Unit {
        match self.0 & Self::BYTE {
            0 => Unit::Char(char::from_u32(self.0).unwrap_or('\0')),
            _ => Unit::Byte((self.0 & 0xff) as u8),
        }
    }
}

/// Where a match attempt got to.
enum Attempt {
    /// The needle matched bytes up to this end.
    Match(usize),
    /// The needle cannot start here.
    No,
    /// The buffer ended while the needle could still match.
    NeedMore,
}

fn hex_val(b: u8) -> Option<u32> {
    (b as char).to_digit(16)
}

/// `n` hex digits at `buf[at..]`, either case: the value, `Err(true)` if the buffer ends first
/// while all seen are hex digits, `Err(false)` if not hex.
fn hex_at(buf: &[u8], at: usize, n: usize) -> Result<u32, bool> {
    let mut v = 0;
    for k in 0..n {
        let Some(&b) = buf.get(at + k) else { return Err(true) };
        v = v * 16 + hex_val(b).ok_or(false)?;
    }
    Ok(v)
}

/// Does `lit` appear at `buf[at..]`? `Err(true)`: the buffer ends within a prefix of it.
fn lit_at(buf: &[u8], at: usize, lit: &[u8]) -> Result<usize, bool> {
    let rest = buf.get(at..).unwrap_or_default();
    if rest.starts_with(lit) {
        Ok(at + lit.len())
    } else {
        Err(lit.starts_with(rest))
    }
}

/// The ends at which character `c` may be encoded starting at `buf[at]`; `more` is set when the
/// buffer ends inside a possible encoding.
fn char_ends(buf: &[u8], at: usize, c: char, more: &mut bool, ends: &mut Vec<usize>) {
    let mut utf8 = [0u8; 4];
    let raw = c.encode_utf8(&mut utf8).as_bytes();
    let mut push = |r: Result<usize, bool>, ends: &mut Vec<usize>| match r {
        Ok(e) => ends.push(e),
        Err(m) => *more |= m,
    };
    push(lit_at(buf, at, raw), ends);
    // Percent-encoded: every byte as %XX.
    let pct = raw.iter().try_fold(at, |p, b| match buf.get(p) {
        None => Err(true),
        Some(b'%') => match hex_at(buf, p + 1, 2) {
            Ok(v) if v == u32::from(*b) => Ok(p + 3),
            Ok(_) => Err(false),
            Err(m) => Err(m),
        },
        Some(_) => Err(false),
    });
    push(pct, ends);
    // JSON: a short escape, or \uXXXX (a surrogate pair beyond the BMP).
    let short: Option<&[u8]> = match c {
        '"' => Some(b"\\\""),
        '\\' => Some(b"\\\\"),
        '/' => Some(b"\\/"),
        '\u{8}' => Some(b"\\b"),
        '\u{c}' => Some(b"\\f"),
        '\n' => Some(b"\\n"),
        '\r' => Some(b"\\r"),
        '\t' => Some(b"\\t"),
        _ => None,
    };
    if let Some(s) = short {
        push(lit_at(buf, at, s), ends);
    }
    let mut units = [0u16; 2];
    let u = c.encode_utf16(&mut units);
    let escaped = u.iter().try_fold(at, |p, unit| {
        lit_at(buf, p, b"\\u")?;
        match hex_at(buf, p + 2, 4) {
            Ok(v) if v == u32::from(*unit) => Ok(p + 6),
            Ok(_) => Err(false),
            Err(m) => Err(m),
        }
    });
    push(escaped, ends);
}

impl Needle {
    /// Tries the needle at `buf[at..]`, backtracking over the encodings of each character.
    fn attempt(&self, buf: &[u8], at: usize) -> Attempt {
        let mut more = false;
        // Depth-first over (unit index, position); each character has at most four encodings.
        let mut stack = vec![(0usize, at)];
        let mut ends = Vec::new();
        while let Some((k, pos)) = stack.pop() {
            let Some(unit) = self.units.get(k) else { return Attempt::Match(pos) };
            ends.clear();
            match unit.get() {
                Unit::Byte(b) => match buf.get(pos) {
                    Some(x) if *x == b => ends.push(pos + 1),
                    Some(_) => {}
                    None => more = true,
                },
                Unit::Char(c) => char_ends(buf, pos, c, &mut more, &mut ends),
            }
            stack.extend(ends.iter().map(|e| (k + 1, *e)));
        }
        if more {
            Attempt::NeedMore
        } else {
            Attempt::No
        }
    }
}

/// A streaming find-and-replace of credential values in any of their echoed forms.
pub struct Scrubber {
    needles: Vec<Needle>,
    /// Bytes that can start a match.
    starts: [bool; 256],
    /// Bytes held back because they might start a match that continues in the next chunk.
    carry: Zeroizing<Vec<u8>>,
    /// How many replacements were made.
    pub replaced: u64,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrubber").field("needles", &self.needles.len()).finish_non_exhaustive()
    }
}

/// The base64 texts of `value` to look for: the whole encoding (padded or not) in both alphabets,
/// and for each of the three alignments the value can have inside a longer encoded text, the
/// characters that depend on the value's bytes alone (when there are at least 8 of them).
fn base64_forms(value: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        let whole = engine.encode(value);
        out.push(whole.clone().into_bytes());
        for shift in 1..3usize {
            let mut shifted = Zeroizing::new(vec![0u8; shift]);
            shifted.extend_from_slice(value);
            let text = Zeroizing::new(engine.encode(&*shifted));
            // Character j covers bits 6j..6j+6: it depends on the value alone once 6j ≥ 8·shift,
            // and while 6j + 6 ≤ 8·(shift + len).
            let first = (8 * shift).div_ceil(6);
            let end = (8 * (shift + value.len())) / 6;
            if end > first && end - first >= 8 {
                out.push(text.as_bytes()[first..end].to_vec());
            }
        }
        // The unshifted core, without its last (partial) character, for a value followed by more.
        let end = (8 * value.len()) / 6;
        if end >= 8 {
            out.push(whole.as_bytes()[..end].to_vec());
        }
    }
    out
}

impl Scrubber {
    /// A scrubber for credential `values` (each with its mask) and `exact` byte strings (each
    /// replaced by `****`). Values shorter than 4 characters are ignored (they would mangle
    /// ordinary text).
    pub fn new(values: &[(&str, String)], exact: &[&[u8]]) -> Self {
        let mut needles = Vec::new();
        for (value, mask) in values.iter().filter(|(v, _)| v.chars().count() >= 4) {
            let units = value.chars().map(|c| UnitCell::of(Unit::Char(c))).collect();
            needles.push(Needle { units: Zeroizing::new(units), replacement: mask.clone().into_bytes() });
            for form in base64_forms(value.as_bytes()) {
                let units = form.iter().map(|b| UnitCell::of(Unit::Byte(*b))).collect();
                needles.push(Needle { units: Zeroizing::new(units), replacement: b"****".to_vec() });
            }
        }
        for e in exact.iter().filter(|e| e.len() >= 4) {
            let units = e.iter().map(|b| UnitCell::of(Unit::Byte(*b))).collect();
            needles.push(Needle { units: Zeroizing::new(units), replacement: b"****".to_vec() });
        }
        // Longest first, so a whole value wins over a part of it.
        needles.sort_by_key(|n| std::cmp::Reverse(n.units.len()));
        let mut starts = [false; 256];
        for n in &needles {
            match n.units.first().map(|u| u.get()) {
                Some(Unit::Byte(b)) => starts[usize::from(b)] = true,
                Some(Unit::Char(c)) => {
                    let mut utf8 = [0u8; 4];
                    starts[usize::from(c.encode_utf8(&mut utf8).as_bytes()[0])] = true;
                    starts[usize::from(b'%')] = true;
                    starts[usize::from(b'\\')] = true;
                }
                None => {}
            }
        }
        Self { needles, starts, carry: Zeroizing::new(Vec::new()), replaced: 0 }
    }

    /// Whether there is nothing to look for.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    fn run(&mut self, buf: &[u8], last: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(buf.len());
        let mut i = 0;
        'scan: while i < buf.len() {
            if self.starts[usize::from(buf[i])] {
                let mut need_more = false;
                for n in &self.needles {
                    match n.attempt(buf, i) {
                        Attempt::Match(end) => {
                            out.extend_from_slice(&n.replacement);
                            self.replaced += 1;
                            i = end;
                            continue 'scan;
                        }
                        Attempt::NeedMore => need_more = true,
                        Attempt::No => {}
                    }
                }
                if need_more && !last {
                    self.carry = Zeroizing::new(buf[i..].to_vec());
                    return out;
                }
            }
            out.push(buf[i]);
            i += 1;
        }
        self.carry = Zeroizing::new(Vec::new());
        out
    }

    /// Scrubs the next chunk; may hold back its tail until the next call.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.needles.is_empty() {
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
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    use proptest::prelude::*;

    const KEY: &str = "sk_live_SECRET/1234+é<x>";

    fn scrubber() -> Scrubber {
        Scrubber::new(&[(KEY, "sk_live_....<x>".into()), ("a+b=c_secret", "****".into())], &[b"dXNlcjpwYXNz"])
    }

    fn scrub(text: &str) -> String {
        String::from_utf8(scrubber().whole(text.as_bytes())).unwrap()
    }

    #[test]
    fn replaces_across_chunks() {
        let mut s = scrubber();
        let mut out = s.push(b"{\"echo\": \"sk_live_SEC");
        out.extend(s.push("RET/1234+é<x>\", \"x\": \"sk_live_SE\"}".as_bytes()));
        out.extend(s.finish());
        assert_eq!(String::from_utf8(out).unwrap(), "{\"echo\": \"sk_live_....<x>\", \"x\": \"sk_live_SE\"}");
        assert_eq!(s.replaced, 1);
    }

    #[test]
    fn every_echoed_form_is_masked() {
        let json_std = serde_json::to_string(KEY).unwrap();
        let forms = [
            KEY.to_owned(),
            // JSON encoders: `\/` (PHP), `\u003c` (Go) in either case, `\u00e9`, everything escaped.
            KEY.replace('/', "\\/"),
            KEY.replace('<', "\\u003c").replace('>', "\\u003E"),
            KEY.replace('é', "\\u00e9").replace('/', "\\/"),
            KEY.chars().map(|c| format!("\\u{:04x}", c as u32)).collect(),
            json_std[1..json_std.len() - 1].to_owned(),
            // Percent-encoding, whole or in part, either hex case.
            KEY.bytes().map(|b| format!("%{b:02X}")).collect(),
            KEY.replace('/', "%2f").replace('+', "%2B").replace('é', "%C3%a9"),
            // Base64 of the value, both alphabets, with or without padding.
            STANDARD.encode(KEY),
            URL_SAFE.encode(KEY),
            STANDARD_NO_PAD.encode(KEY),
        ];
        for form in forms {
            let out = scrub(&format!("{{\"echo\":\"{form}\"}}"));
            assert!(!out.contains(&form), "{form} -> {out}");
            assert!(out.contains("****") || out.contains("sk_live_....<x>"), "{form} -> {out}");
        }
        // The value inside a longer base64 text, at each alignment.
        for prefix in ["", "a", "ab", "abc"] {
            let blob = STANDARD.encode(format!("{prefix}{{\"api_key\":\"{KEY}\",\"n\":1}}"));
            let out = scrub(&blob);
            assert_ne!(out, blob, "prefix {prefix:?}");
            let decoded = STANDARD.decode(out.replace("****", "AAAA")).unwrap_or_default();
            assert!(!String::from_utf8_lossy(&decoded).contains("SECRET"), "prefix {prefix:?}");
        }
        assert_eq!(scrub("Basic dXNlcjpwYXNz"), "Basic ****");
        assert_eq!(scrub("no secrets here: sk_live_other %41 \\u0041"), "no secrets here: sk_live_other %41 \\u0041");
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_result(
            prefix in "[a-z \\\\%]{0,40}", suffix in "[a-z %\\\\]{0,40}",
            cuts in proptest::collection::vec(0usize..200, 0..6),
            escaped: bool,
        ) {
            let key = if escaped { KEY.replace('/', "\\/").replace('<', "\\u003c") } else { KEY.to_owned() };
            let text = format!("{prefix}{key}{suffix}a%2Bb%3Dc_secret{prefix}");
            let expected = scrubber().whole(text.as_bytes());
            prop_assert!(!String::from_utf8_lossy(&expected).contains("SECRET"));
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
