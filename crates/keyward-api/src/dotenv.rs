//! Reading `.env` files and flat JSON objects, and writing dotenv, shell and JSON so that a
//! re-import gives the identical map. Errors name a line, never a value.
use std::collections::BTreeMap;
use std::fmt::Write as _;

use thiserror_free::ParseError;

/// Parses `.env` text or, when it starts with `{`, a flat JSON object.
pub fn parse(text: &str) -> Result<BTreeMap<String, String>, ParseError> {
    if text.trim_start().starts_with('{') {
        parse_json(text)
    } else {
        parse_dotenv(text)
    }
}

/// Whether `name` can be a dotenv key: `[A-Za-z_][A-Za-z0-9_.-]*`.
pub fn valid_dotenv_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Whether `name` can be a POSIX shell variable: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn valid_shell_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_json(text: &str) -> Result<BTreeMap<String, String>, ParseError> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| ParseError { line: e.line(), message: "invalid JSON (expected a flat object)".into() })?;
    let obj = value.as_object().ok_or(ParseError { line: 1, message: "expected a JSON object".into() })?;
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        let s = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => {
                return Err(ParseError {
                    line: 0,
                    message: format!("value of {k:?} is not a string, number or boolean (the object must be flat)"),
                })
            }
        };
        out.insert(k.clone(), s);
    }
    Ok(out)
}

fn parse_dotenv(text: &str) -> Result<BTreeMap<String, String>, ParseError> {
    let mut out = BTreeMap::new();
    // Lines keep a trailing '\r' (CRLF files): it is trimmed like other white space outside
    // quotes, and kept inside a quoted value that spans lines.
    let lines: Vec<&str> = text.split('\n').collect();
    let mut i = 0;
    while i < lines.len() {
        let lineno = i + 1;
        let err = |message: String| ParseError { line: lineno, message };
        let line = lines[i].trim_start();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let (name, rest) = line.split_once('=').ok_or_else(|| err("expected NAME=VALUE".into()))?;
        let name = name.trim_end();
        if !valid_dotenv_name(name) {
            return Err(err("invalid name (expected letters, digits, _ . - and not starting with a digit)".into()));
        }
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => {
                // A quoted value may continue over the following lines until its closing quote.
                let mut buf = rest[1..].to_owned();
                loop {
                    if let Some((value, after)) = close_quote(&buf, q) {
                        let after = after.trim_start();
                        if !(after.is_empty() || after.starts_with('#')) {
                            return Err(err("unexpected text after the closing quote".into()));
                        }
                        break value;
                    }
                    if i >= lines.len() {
                        return Err(err(format!("unterminated {q} quote")));
                    }
                    buf.push('\n');
                    buf.push_str(lines[i]);
                    i += 1;
                }
            }
            _ => {
                let v = match rest.find(" #").or_else(|| rest.find("\t#")) {
                    Some(pos) => &rest[..pos],
                    None => rest,
                };
                let v = v.trim_end();
                if v.contains(['"', '\'']) {
                    return Err(err("quotes inside an unquoted value (quote the whole value)".into()));
                }
                v.to_owned()
            }
        };
        out.insert(name.to_owned(), value);
    }
    Ok(out)
}

/// Finds the closing quote in `s`; returns the decoded value and what follows the quote.
fn close_quote(s: &str, q: char) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((idx, c)) = chars.next() {
        if c == q {
            return Some((value, &s[idx + 1..]));
        }
        if c == '\\' && q == '"' {
            match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, 'r')) => value.push('\r'),
                Some((_, 't')) => value.push('\t'),
                Some((_, e @ ('"' | '\\' | '$' | '`'))) => value.push(e),
                Some((_, '\n')) => {}
                Some((_, other)) => {
                    value.push('\\');
                    value.push(other);
                }
                None => value.push('\\'),
            }
        } else {
            value.push(c);
        }
    }
    None
}

/// `NAME="value"` lines (escaping `\ " $ `` ` `` and newlines) that [`parse`] reads back.
pub fn render_dotenv(map: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (k, v) in map {
        let mut esc = String::with_capacity(v.len() + 2);
        for c in v.chars() {
            match c {
                '\\' => esc.push_str("\\\\"),
                '"' => esc.push_str("\\\""),
                '$' => esc.push_str("\\$"),
                '`' => esc.push_str("\\`"),
                '\n' => esc.push_str("\\n"),
                '\r' => esc.push_str("\\r"),
                c => esc.push(c),
            }
        }
        let _ = writeln!(out, "{k}=\"{esc}\"");
    }
    out
}

/// `export NAME="value"` lines: POSIX double quotes (newlines literal, `\ " $ `` ` `` escaped),
/// which both `sh` and [`parse`] read back to the same value.
pub fn render_shell(map: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (k, v) in map {
        let mut esc = String::with_capacity(v.len() + 2);
        for c in v.chars() {
            if matches!(c, '\\' | '"' | '$' | '`') {
                esc.push('\\');
            }
            esc.push(c);
        }
        let _ = writeln!(out, "export {k}=\"{esc}\"");
    }
    out
}

/// A Kubernetes `Secret` manifest with `stringData` (values as JSON strings, which YAML reads
/// verbatim).
pub fn render_k8s_secret(map: &BTreeMap<String, String>, name: &str, namespace: Option<&str>) -> String {
    let q = |s: &str| serde_json::to_string(s).expect("a string serialises");
    let mut out = String::from("apiVersion: v1\nkind: Secret\nmetadata:\n");
    let _ = writeln!(out, "  name: {}", q(name));
    if let Some(ns) = namespace {
        let _ = writeln!(out, "  namespace: {}", q(ns));
    }
    out.push_str("type: Opaque\nstringData:\n");
    for (k, v) in map {
        let _ = writeln!(out, "  {}: {}", q(k), q(v));
    }
    out
}

/// Whether `name` can be a key of a Kubernetes Secret.
pub fn valid_k8s_key(name: &str) -> bool {
    !name.is_empty() && name.len() <= 253 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
}

/// Whether `name` can name a Kubernetes object (a DNS subdomain).
pub fn valid_k8s_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Lines for `$GITHUB_ENV`: `NAME=value`, or `NAME<<DELIMITER` … `DELIMITER` for values with line
/// breaks (a random delimiter that does not occur in the value).
pub fn render_github_env(map: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (k, v) in map {
        if v.contains('\n') || v.contains('\r') {
            let delim = loop {
                let d = format!("KEYWARD_EOF_{}", &*keyward_crypto::random_base62(16));
                if !v.contains(&d) {
                    break d;
                }
            };
            let _ = writeln!(out, "{k}<<{delim}\n{v}\n{delim}");
        } else {
            let _ = writeln!(out, "{k}={v}");
        }
    }
    out
}

/// A `docker run --env-file` file: `NAME=value` lines taken literally (no quoting or escapes).
pub fn render_docker_env(map: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (k, v) in map {
        let _ = writeln!(out, "{k}={v}");
    }
    out
}

/// A pretty JSON object.
pub fn render_json(map: &BTreeMap<String, String>) -> String {
    let mut s = serde_json::to_string_pretty(map).expect("a string map serialises");
    s.push('\n');
    s
}

mod thiserror_free {
    /// A syntax error at a line (1-based; 0 when not tied to a line).
    #[derive(Debug, PartialEq, Eq)]
    pub struct ParseError {
        /// Line number.
        pub line: usize,
        /// What is wrong (never the value).
        pub message: String,
    }

    impl std::fmt::Display for ParseError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            if self.line == 0 {
                write!(f, "{}", self.message)
            } else {
                write!(f, "line {}: {}", self.line, self.message)
            }
        }
    }

    impl std::error::Error for ParseError {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_common_syntax() {
        let text = "# comment\n\nA=plain\nexport B = 'single $x \\n'\nC=\"dq \\\"x\\\" \\n y\" # trailing\nD=\"multi\nline\"\nE=v # c\nF=\nG=a=b=c\r\n";
        let m = parse(text).unwrap();
        assert_eq!(m["A"], "plain");
        assert_eq!(m["B"], "single $x \\n");
        assert_eq!(m["C"], "dq \"x\" \n y");
        assert_eq!(m["D"], "multi\nline");
        assert_eq!(m["E"], "v");
        assert_eq!(m["F"], "");
        assert_eq!(m["G"], "a=b=c");
    }

    #[test]
    fn errors_name_the_line_not_the_value() {
        let e = parse("A=1\nB\"=2\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse("A=1\nB=\"sk_live_unterminated\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(!e.to_string().contains("sk_live"));
        assert_eq!(parse("OK=1\nnot a pair\n").unwrap_err().line, 2);
        assert_eq!(parse("A='x' y\n").unwrap_err().line, 1);
        assert!(parse("{\"A\": {\"b\": 1}}").is_err());
    }

    #[test]
    fn reads_flat_json() {
        let m = parse("{\"A\": \"x\", \"PORT\": 8080, \"ON\": true}").unwrap();
        assert_eq!((m["A"].as_str(), m["PORT"].as_str(), m["ON"].as_str()), ("x", "8080", "true"));
    }

    proptest! {
        #[test]
        fn every_format_round_trips(map in proptest::collection::btree_map("[A-Za-z_][A-Za-z0-9_]{0,12}", "\\PC*|[\"'\\\\$`\n\r\t #=a-z]{0,20}", 0..8)) {
            prop_assert_eq!(&parse(&render_dotenv(&map)).unwrap(), &map);
            prop_assert_eq!(&parse(&render_shell(&map)).unwrap(), &map);
            if !map.is_empty() {
                prop_assert_eq!(&parse(&render_json(&map)).unwrap(), &map);
            }
        }
    }
}
