//! The native API's route templates, in the router's syntax: `{name}` is one path segment and
//! `{*name}` the rest of the path. The server routes on them; clients build URLs with [`fill`].

/// The OpenAPI document of the native API.
pub const OPENAPI: &str = "/api/v1/openapi.json";
/// Mounts (projects): list, create.
pub const MOUNTS: &str = "/api/v1/mounts";
/// One mount: delete.
pub const MOUNT: &str = "/api/v1/mounts/{mount}";
/// A mount's secret paths.
pub const SECRETS: &str = "/api/v1/mounts/{mount}/secrets";
/// One secret: read, set/unset fields, delete.
pub const SECRET: &str = "/api/v1/mounts/{mount}/secrets/{*path}";
/// A secret's versions.
pub const HISTORY: &str = "/api/v1/mounts/{mount}/history/{*path}";
/// A new version equal to an older one.
pub const ROLLBACK: &str = "/api/v1/mounts/{mount}/rollback/{*path}";
/// Names that differ between two paths of a mount.
pub const DIFF: &str = "/api/v1/mounts/{mount}/diff";
/// Fields past their rotation limit.
pub const STALE: &str = "/api/v1/stale";
/// Tokens: list, create.
pub const TOKENS: &str = "/api/v1/tokens";
/// The caller's own token.
pub const TOKEN_SELF: &str = "/api/v1/tokens/self";
/// Revoke the caller's own token.
pub const TOKEN_SELF_REVOKE: &str = "/api/v1/tokens/self/revoke";
/// Look up a token given in the body.
pub const TOKEN_LOOKUP: &str = "/api/v1/tokens/lookup";
/// Revoke a token given in the body.
pub const TOKEN_REVOKE: &str = "/api/v1/tokens/revoke";
/// A token by accessor: look up, revoke.
pub const TOKEN_ACCESSOR: &str = "/api/v1/tokens/accessors/{accessor}";
/// Policy names.
pub const POLICIES: &str = "/api/v1/policies";
/// One policy: read, write, delete.
pub const POLICY: &str = "/api/v1/policies/{name}";
/// Master keys and data-key versions.
pub const KEYS: &str = "/api/v1/keys";
/// Add a data-key version to a mount.
pub const KEYS_ROTATE: &str = "/api/v1/mounts/{mount}/keys/rotate";
/// Delete a mount's unused older data-key versions.
pub const KEYS_PRUNE: &str = "/api/v1/mounts/{mount}/keys/prune";
/// Re-wrap every key under the active master key.
pub const KEYS_REWRAP: &str = "/api/v1/keys/rewrap";
/// Start re-encrypting under the newest data keys.
pub const KEYS_MIGRATE: &str = "/api/v1/keys/migrate";
/// Key jobs.
pub const KEY_JOBS: &str = "/api/v1/keys/jobs";
/// One key job.
pub const KEY_JOB: &str = "/api/v1/keys/jobs/{id}";
/// Check every key and, on request, every blob.
pub const DOCTOR: &str = "/api/v1/doctor";
/// Search and tail the audit log.
pub const AUDIT: &str = "/api/v1/audit";
/// Verify the audit chain.
pub const AUDIT_VERIFY: &str = "/api/v1/audit/verify";
/// Anchor the audit chain's head.
pub const AUDIT_ANCHOR: &str = "/api/v1/audit/anchor";
/// Archive old entries into the server's archive directory.
pub const AUDIT_ARCHIVE: &str = "/api/v1/audit/archive";
/// Take a backup (the response is the encrypted file).
pub const BACKUP: &str = "/api/v1/backup";
/// Credential-proxy routes.
pub const PROXY_ROUTES: &str = "/api/v1/proxy-routes";
/// One credential-proxy route: read, write, delete.
pub const PROXY_ROUTE: &str = "/api/v1/proxy-routes/{name}";
/// A call through the credential proxy, to the upstream's root.
pub const PROXY_CALL: &str = "/api/v1/proxy/{name}";
/// A call through the credential proxy, to a path under the upstream.
pub const PROXY_CALL_PATH: &str = "/api/v1/proxy/{name}/{*rest}";

/// Fills a template's parameters, in order, percent-encoding each value: a `{name}` value is
/// one segment (a `/` in it is encoded), a `{*name}` value keeps its `/` separators.
///
/// Panics if the number of values differs from the template's parameters (a programming error
/// of the caller, caught by its tests).
pub fn fill(template: &str, values: &[&str]) -> String {
    let mut values = values.iter();
    let mut out = String::with_capacity(template.len() + 32);
    for (i, seg) in template.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => {
                let value = values.next().unwrap_or_else(|| panic!("{template}: no value for {{{name}}}"));
                if name.starts_with('*') {
                    out.push_str(&value.split('/').map(encode_segment).collect::<Vec<_>>().join("/"));
                } else {
                    out.push_str(&encode_segment(value));
                }
            }
            None => out.push_str(seg),
        }
    }
    assert!(values.next().is_none(), "{template}: more values than parameters");
    out
}

/// Percent-encodes everything in a path segment but the unreserved characters of RFC 3986.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_segments_and_rest_paths() {
        assert_eq!(fill(SECRET, &["app", "accounts/42"]), "/api/v1/mounts/app/secrets/accounts/42");
        assert_eq!(fill(SECRET, &["a b", "a b/ü"]), "/api/v1/mounts/a%20b/secrets/a%20b/%C3%BC");
        assert_eq!(fill(POLICY, &["x/y"]), "/api/v1/policies/x%2Fy");
        assert_eq!(fill(KEYS, &[]), KEYS);
    }

    #[test]
    #[should_panic(expected = "no value")]
    fn a_missing_value_is_a_caller_bug() {
        fill(MOUNT, &[]);
    }
}
