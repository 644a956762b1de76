//! Validation of mount names, secret paths and field names.
use crate::CoreError;

/// Longest accepted field name, mount name or path segment, in bytes.
pub const MAX_NAME_LEN: usize = 256;
const MAX_SEGMENTS: usize = 16;

fn check_segment(kind: &str, seg: &str) -> Result<(), CoreError> {
    if seg.is_empty() {
        return Err(CoreError::InvalidInput(format!("{kind} has an empty segment")));
    }
    if seg == "." || seg == ".." {
        return Err(CoreError::InvalidInput(format!("{kind} may not contain '.' or '..' segments")));
    }
    if seg.len() > MAX_NAME_LEN {
        return Err(CoreError::InvalidInput(format!("{kind} segment is longer than {MAX_NAME_LEN} bytes")));
    }
    if let Some(c) = seg.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(CoreError::InvalidInput(format!(
            "{kind} may only use A-Z a-z 0-9 . _ - in its segments (found {c:?})"
        )));
    }
    Ok(())
}

/// A mount name is one segment.
pub fn validate_mount_path(path: &str) -> Result<(), CoreError> {
    check_segment("mount name", path)
}

/// A secret path (environment) is 1–16 `/`-separated segments.
pub fn validate_secret_path(path: &str) -> Result<(), CoreError> {
    if path.is_empty() {
        return Err(CoreError::InvalidInput("secret path is empty".into()));
    }
    let segments: Vec<&str> = path.split('/').collect();
    if segments.len() > MAX_SEGMENTS {
        return Err(CoreError::InvalidInput(format!("secret path has more than {MAX_SEGMENTS} segments")));
    }
    segments.iter().try_for_each(|s| check_segment("secret path", s))
}

/// A field name is 1–256 bytes with no control characters.
pub fn validate_field_name(name: &str) -> Result<(), CoreError> {
    if name.is_empty() {
        return Err(CoreError::InvalidInput("field name is empty".into()));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(CoreError::InvalidInput(format!("field name is longer than {MAX_NAME_LEN} bytes")));
    }
    if name.chars().any(char::is_control) {
        return Err(CoreError::InvalidInput("field name contains a control character".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        for ok in ["production", "accounts/42", "a.b_c-d/E"] {
            assert!(validate_secret_path(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/x", "x/", "a//b", "..", "a/../b", "a/./b", "a b", "ü", "a%2f", &"x".repeat(257)] {
            assert!(validate_secret_path(bad).is_err(), "{bad}");
        }
        assert!(validate_mount_path("careflex").is_ok());
        assert!(validate_mount_path("a/b").is_err());
    }

    #[test]
    fn names() {
        assert!(validate_field_name("STRIPE_KEY").is_ok());
        assert!(validate_field_name("ünï code").is_ok());
        assert!(validate_field_name("").is_err());
        assert!(validate_field_name("a\nb").is_err());
        assert!(validate_field_name(&"n".repeat(257)).is_err());
        assert!(validate_field_name(&"n".repeat(256)).is_ok());
    }
}
