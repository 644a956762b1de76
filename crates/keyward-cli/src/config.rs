//! The user's stored token (`keyward login`): `$KEYWARD_CONFIG_DIR`, else
//! `$XDG_CONFIG_HOME/keyward`, else `~/.config/keyward`, file `token`, mode 0600.
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use secrecy::SecretString;

/// The token file's path.
pub fn token_path() -> Result<PathBuf> {
    let dir = if let Some(d) = std::env::var_os("KEYWARD_CONFIG_DIR").filter(|d| !d.is_empty()) {
        PathBuf::from(d)
    } else if let Some(d) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        PathBuf::from(d).join("keyward")
    } else if let Some(h) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        PathBuf::from(h).join(".config").join("keyward")
    } else {
        bail!("cannot find a config directory: set HOME, XDG_CONFIG_HOME or KEYWARD_CONFIG_DIR");
    };
    Ok(dir.join("token"))
}

/// The stored token, if there is one; a file others can read is refused, not used.
pub fn stored_token() -> Result<Option<SecretString>> {
    let Ok(path) = token_path() else { return Ok(None) };
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if meta.permissions().mode() & 0o077 != 0 {
        bail!(
            "{} is readable by other users (mode {:o}): refusing to use it; run `chmod 600 {}` or `keyward login` again",
            path.display(),
            meta.permissions().mode() & 0o777,
            path.display()
        );
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let token = text.trim();
    Ok((!token.is_empty()).then(|| SecretString::from(token.to_owned())))
}

/// Stores a token (directory 0700, file 0600, replaced atomically).
pub fn store_token(token: &str) -> Result<PathBuf> {
    let path = token_path()?;
    let dir = path.parent().context("token path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).ok();
    let tmp = dir.join(".token.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(token.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Removes the stored token; returns whether there was one.
pub fn forget_token() -> Result<bool> {
    let path = token_path()?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}
