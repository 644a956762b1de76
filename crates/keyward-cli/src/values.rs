//! `NAME=VALUE`, `NAME=-` (stdin) and `NAME=@path` (file) arguments.
use std::io::Read;

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};

/// Reads the pairs into a map of string values. At most one value may come from stdin.
pub fn read_pairs(pairs: &[String]) -> Result<Map<String, Value>> {
    let mut map = Map::new();
    let mut stdin_used = false;
    for pair in pairs {
        let Some((name, raw)) = pair.split_once('=') else {
            bail!("expected NAME=VALUE, NAME=- or NAME=@path (got an argument without '=')");
        };
        if name.is_empty() {
            bail!("empty name in a NAME=VALUE argument");
        }
        let value = if raw == "-" {
            if stdin_used {
                bail!("only one value can be read from stdin (NAME=-)");
            }
            stdin_used = true;
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .with_context(|| format!("cannot read the value of {name} from stdin"))?;
            // `echo value | keyward secrets set NAME=-` should not store echo's newline.
            if let Some(stripped) = s.strip_suffix('\n') {
                s = stripped.strip_suffix('\r').unwrap_or(stripped).to_owned();
            }
            s
        } else if let Some(lit) = raw.strip_prefix("@@") {
            format!("@{lit}")
        } else if let Some(path) = raw.strip_prefix('@') {
            std::fs::read_to_string(path).with_context(|| format!("cannot read the value of {name} from {path}"))?
        } else {
            raw.to_owned()
        };
        if map.insert(name.to_owned(), Value::String(value)).is_some() {
            bail!("{name} is given twice");
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("v");
        std::fs::write(&f, "line1\nline2\n").unwrap();
        let m =
            read_pairs(&["A=x=y z".into(), format!("B=@{}", f.display()), "C=@@literal".into(), "D=".into()]).unwrap();
        assert_eq!(m["A"], "x=y z");
        assert_eq!(m["B"], "line1\nline2\n");
        assert_eq!(m["C"], "@literal");
        assert_eq!(m["D"], "");
        assert!(read_pairs(&["novalue".into()]).is_err());
        assert!(read_pairs(&["A=1".into(), "A=2".into()]).is_err());
        let e = read_pairs(&["A=@/nonexistent/file".into()]).unwrap_err();
        assert!(format!("{e:#}").contains("/nonexistent/file"));
    }
}
