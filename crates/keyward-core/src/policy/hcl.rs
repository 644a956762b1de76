//! Vault HCL (or JSON) ACL policies, translated at write time into keyward's one policy model,
//! so the Vault API and the native API share one authorization path.
//!
//! | Vault path                     | Vault capability            | keyward rule on `M/P`          |
//! |--------------------------------|-----------------------------|--------------------------------|
//! | `M/data/P`                     | read, create, update, patch | the same                       |
//! | `M/data/P`                     | delete (soft delete)        | delete                         |
//! | `M/data/P`                     | list                        | nothing (no effect in Vault)   |
//! | `M/metadata/P`, `M/subkeys/P`  | read, list                  | list (names, metadata, masks)  |
//! | `M/metadata/P`                 | delete (all versions)       | destroy                        |
//! | `M/metadata/P`                 | create, update, patch       | update, only if `M/data/P` has update |
//! | `M/delete/P`                   | create, update              | delete                         |
//! | `M/undelete/P`                 | create, update              | update, only if `M/data/P` has update |
//! | `M/destroy/P`                  | create, update              | destroy                        |
//! | `M/*`, `M/+/P`                 | any                         | every family above at once     |
//! | any KV path                    | deny                        | deny                           |
//! | transit `M/encrypt/K` etc.     | any but sudo                | the same path and capabilities |
//! | KV version 1 `M/P`             | any                         | the same path and capabilities |
//! | `auth/<method>/…`, token roles, `sys/wrapping/wrap` | any | the same path and capabilities |
//! | `sys/mounts`, `sys/auth`, `sys/policies/acl`, `sys/policy` (and below) | all that `sudo` covers | native `sudo` |
//!
//! Login paths and the self-service paths every token holds compile to nothing (with a note);
//! paths keyward serves nowhere are kept inert ([`INERT`]); anything else — `sudo` or `subscribe`
//! on a KV path, part of what one native `sudo` covers, acting on other tokens, parameter
//! constraints, partial globs over the engine segment or the mount — cannot be expressed without
//! widening access, and the policy is rejected with a message naming the rule.
use std::collections::{BTreeMap, BTreeSet};

use crate::{Capability, CoreError, MountKind, Rule};

const KV_FAMILIES: [&str; 6] = ["data", "metadata", "delete", "undelete", "destroy", "subkeys"];
const TRANSIT_SEGMENTS: [&str; 12] = [
    "keys",
    "encrypt",
    "decrypt",
    "rewrap",
    "datakey",
    "random",
    "hash",
    "hmac",
    "sign",
    "verify",
    "export",
    "cache-config",
];
const SELF_SERVICE: [&str; 4] =
    ["auth/token/lookup-self", "auth/token/renew-self", "auth/token/revoke-self", "sys/capabilities-self"];

/// One `path "…" { capabilities = […] }` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HclRule {
    /// The Vault path pattern.
    pub path: String,
    /// Vault capability names.
    pub capabilities: Vec<String>,
}

/// The native rules of a translated policy, with notes on what was dropped as meaningless.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Translation {
    /// Native rules.
    pub rules: Vec<Rule>,
    /// Notes for the client (Vault's `warnings`).
    pub warnings: Vec<String>,
}

fn invalid(msg: String) -> CoreError {
    CoreError::InvalidInput(msg)
}

/// Parses the `path` blocks of an HCL policy (or Vault's JSON form `{"path": {P: {...}}}`).
pub fn parse_hcl_policy(text: &str) -> Result<Vec<HclRule>, CoreError> {
    if text.trim_start().starts_with('{') {
        return parse_json_policy(text);
    }
    let body = hcl::parse(text).map_err(|e| invalid(format!("invalid HCL policy: {e}")))?;
    if let Some(a) = body.attributes().next() {
        return Err(invalid(format!("unsupported top-level attribute {:?} in the policy", a.key())));
    }
    let mut out = Vec::new();
    for block in body.blocks() {
        if block.identifier() != "path" || block.labels().len() != 1 {
            return Err(invalid(format!(
                "unsupported block {:?}: a policy holds only `path \"…\" {{ capabilities = […] }}` blocks",
                block.identifier()
            )));
        }
        let path = block.labels()[0].as_str().to_owned();
        if let Some(b) = block.body().blocks().next() {
            return Err(invalid(format!("path {path:?}: unsupported block {:?}", b.identifier())));
        }
        let mut capabilities = Vec::new();
        for attr in block.body().attributes() {
            if attr.key() != "capabilities" {
                return Err(invalid(format!(
                    "path {path:?}: {:?} is not supported (only `capabilities`; parameter constraints cannot be \
                     enforced, and ignoring them would widen access)",
                    attr.key()
                )));
            }
            let hcl::Expression::Array(items) = attr.expr() else {
                return Err(invalid(format!("path {path:?}: capabilities must be a list of strings")));
            };
            for item in items {
                let hcl::Expression::String(s) = item else {
                    return Err(invalid(format!("path {path:?}: capabilities must be a list of strings")));
                };
                capabilities.push(s.clone());
            }
        }
        out.push(HclRule { path, capabilities });
    }
    Ok(out)
}

fn parse_json_policy(text: &str) -> Result<Vec<HclRule>, CoreError> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| invalid(format!("invalid JSON policy: {e}")))?;
    let Some(paths) = v.get("path").and_then(|p| p.as_object()) else {
        return Err(invalid("a JSON policy is {\"path\": {\"<path>\": {\"capabilities\": [...]}}}".into()));
    };
    let mut out = Vec::new();
    for (path, body) in paths {
        let obj = body.as_object().ok_or_else(|| invalid(format!("path {path:?}: expected an object")))?;
        if let Some(k) = obj.keys().find(|k| *k != "capabilities") {
            return Err(invalid(format!("path {path:?}: {k:?} is not supported (only `capabilities`)")));
        }
        let caps = obj
            .get("capabilities")
            .and_then(|c| c.as_array())
            .ok_or_else(|| invalid(format!("path {path:?}: capabilities must be a list of strings")))?;
        let capabilities = caps
            .iter()
            .map(|c| c.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid(format!("path {path:?}: capabilities must be a list of strings")))?;
        out.push(HclRule { path: path.clone(), capabilities });
    }
    Ok(out)
}

/// Per native path: Vault capabilities per KV family.
type Families = BTreeMap<String, BTreeMap<&'static str, BTreeSet<String>>>;

fn engine_of(mount: &str, second: Option<&str>, kind: Option<MountKind>) -> Option<MountKind> {
    kind.or(match second {
        Some(s) if KV_FAMILIES.contains(&s) => Some(MountKind::Kv),
        Some(s) if TRANSIT_SEGMENTS.contains(&s) => Some(MountKind::Transit),
        _ => None,
    })
    .filter(|_| !mount.contains('*') && mount != "+")
}

/// What a warning calls a rule that matches no operation keyward has: stored with the policy,
/// and inert — written again after an upgrade, it may take effect.
pub const INERT: &str = "inert in this version";

/// Administrative Vault paths that keyward guards with one native `sudo` grant: a rule takes
/// effect only when it grants every Vault capability that `sudo` covers, since granting fewer
/// cannot be enforced without widening.
const ADMIN: [(&str, &str, &[&str]); 4] = [
    ("sys/mounts", "sys/mounts", &["create", "read", "update", "delete"]),
    ("sys/auth", "sys/auth", &["create", "read", "update", "delete", "sudo"]),
    ("sys/policies/acl", "sys/policies", &["create", "read", "update", "delete"]),
    ("sys/policy", "sys/policies", &["create", "read", "update", "delete"]),
];

/// The capability of a Vault verb on a path keyward checks as it is named (`auth/…` identities,
/// token roles, `sys/wrapping/wrap`, KV version 1 secrets).
fn same_path_capability(c: &str) -> Result<Capability, String> {
    Ok(match c {
        "create" => Capability::Create,
        "read" => Capability::Read,
        "update" => Capability::Update,
        "patch" => Capability::Patch,
        "delete" => Capability::Delete,
        "list" => Capability::List,
        "sudo" => Capability::Sudo,
        "deny" => Capability::Deny,
        other => return Err(format!("{other:?} has no meaning on this path in keyward")),
    })
}

/// Translates Vault rules into native rules; `mount_kind` tells what each existing mount is (and
/// whether a kv mount speaks KV version 1). A rule that matches no operation keyward has is
/// kept inert with a warning; one keyward cannot enforce without widening access is refused.
pub fn translate(
    rules: &[HclRule],
    mount_kind: impl Fn(&str) -> Option<(MountKind, bool)>,
) -> Result<Translation, CoreError> {
    const VAULT_CAPS: [&str; 10] =
        ["create", "read", "update", "patch", "delete", "list", "sudo", "deny", "subscribe", "recover"];
    let mut t = Translation::default();
    let mut kv: Families = BTreeMap::new();
    let mut transit: BTreeMap<String, BTreeSet<Capability>> = BTreeMap::new();
    let mut same: BTreeMap<String, BTreeSet<Capability>> = BTreeMap::new();
    let mut inert = 0;
    for r in rules {
        let path = r.path.trim_start_matches('/');
        let reject = |why: &str| Err(invalid(format!("policy rule {:?} cannot be translated: {why}", r.path)));
        if let Some(c) = r.capabilities.iter().find(|c| !VAULT_CAPS.contains(&c.as_str())) {
            return reject(&format!("unknown capability {c:?}"));
        }
        if r.capabilities.is_empty() {
            return reject("it grants no capability");
        }
        if SELF_SERVICE.contains(&path) {
            t.warnings.push(format!("{path:?} is granted by keyward's default policy; the rule was not needed"));
            continue;
        }
        if path == "*" {
            for fam in KV_FAMILIES {
                kv.entry("*".into()).or_default().entry(fam).or_default().extend(r.capabilities.iter().cloned());
            }
            continue;
        }
        let mut segs = path.splitn(3, '/');
        let mount = segs.next().unwrap_or_default();
        let second = segs.next();
        let rest = segs.next();
        let mut keep_inert = |why: &str| {
            inert += 1;
            t.warnings.push(format!("{:?} is {INERT}: {why}; it is kept with the policy and grants nothing", r.path));
        };
        let grants = |c: &str| r.capabilities.iter().any(|x| x == c);
        match mount {
            "sys" => {
                if let Some((_, native, needed)) =
                    ADMIN.iter().find(|(p, _, _)| path == *p || path.starts_with(&format!("{p}/")))
                {
                    if grants("deny") {
                        same.entry((*native).to_owned()).or_default().insert(Capability::Deny);
                    } else if needed.iter().all(|c| grants(c)) {
                        same.entry((*native).to_owned()).or_default().insert(Capability::Sudo);
                    } else {
                        return reject(&format!(
                            "keyward guards {native} with one grant (sudo) covering {}; a rule granting fewer \
                             cannot be enforced without widening",
                            needed.join(", ")
                        ));
                    }
                    continue;
                }
                match path {
                    "sys/wrapping/wrap" => {
                        let caps = same.entry(path.to_owned()).or_default();
                        for c in &r.capabilities {
                            let cap =
                                same_path_capability(c).map_err(|e| invalid(format!("policy rule {path:?}: {e}")))?;
                            caps.insert(cap);
                        }
                    }
                    "sys/capabilities" | "sys/capabilities-accessor" => {
                        return reject("keyward answers for another token to sudo on sys/tokens; write that natively")
                    }
                    "sys/wrapping/unwrap" | "sys/wrapping/lookup" | "sys/wrapping/rewrap" => t.warnings.push(format!(
                        "{path:?} is open to every token (and to wrapping tokens); the rule was not needed"
                    )),
                    _ => keep_inert("keyward serves no operation on this sys/ path"),
                }
                continue;
            }
            "auth" => {
                let under = rest.unwrap_or_default();
                if under == "login" || under.starts_with("login/") {
                    t.warnings.push(format!("{path:?}: logins take no token, so the rule has no effect"));
                    continue;
                }
                if second == Some("token") && !(under.starts_with("roles") || under.starts_with("create/")) {
                    return reject(
                        "keyward creates, lists and revokes other tokens with sudo on sys/tokens (one grant for all \
                         of them); write that natively, or use a token role (auth/token/create/<role>)",
                    );
                }
                crate::validate_rule_path(path)?;
                let caps = same.entry(path.to_owned()).or_default();
                for c in &r.capabilities {
                    caps.insert(
                        same_path_capability(c).map_err(|e| invalid(format!("policy rule {:?}: {e}", r.path)))?,
                    );
                }
                continue;
            }
            "identity" | "cubbyhole" => {
                keep_inert("keyward has no such engine");
                continue;
            }
            _ => {}
        }
        let known = mount_kind(mount);
        if known.is_some_and(|(k, v1)| k == MountKind::Kv && v1) {
            // KV version 1: the Vault path is the secret's path.
            crate::validate_rule_path(path)?;
            let caps = same.entry(path.to_owned()).or_default();
            for c in &r.capabilities {
                caps.insert(same_path_capability(c).map_err(|e| invalid(format!("policy rule {:?}: {e}", r.path)))?);
            }
            continue;
        }
        match engine_of(mount, second, known.map(|(k, _)| k)) {
            Some(MountKind::Transit) => {
                if r.capabilities.iter().any(|c| c == "sudo" || c == "subscribe" || c == "recover") {
                    return reject("only create, read, update, delete, list and deny apply to transit paths");
                }
                crate::validate_rule_path(path)?;
                let caps = transit.entry(path.to_owned()).or_default();
                for c in &r.capabilities {
                    caps.insert(match c.as_str() {
                        "create" => Capability::Create,
                        "read" => Capability::Read,
                        "update" | "patch" => Capability::Update,
                        "delete" => Capability::Delete,
                        "list" => Capability::List,
                        _ => Capability::Deny,
                    });
                }
            }
            Some(MountKind::Kv) => {
                if r.capabilities.iter().any(|c| c == "sudo" || c == "subscribe" || c == "recover") {
                    return reject("sudo, subscribe and recover have no KV meaning in keyward");
                }
                let (families, native): (Vec<&'static str>, String) =
                    match (second, rest) {
                        (Some("*"), None) => (KV_FAMILIES.to_vec(), "*".into()),
                        (Some("+"), Some(rest)) => (KV_FAMILIES.to_vec(), rest.to_owned()),
                        (Some(fam), rest) => match KV_FAMILIES.iter().find(|f| **f == fam) {
                            Some(f) => (vec![*f], rest.unwrap_or_default().to_owned()),
                            None if fam == "config" => {
                                return reject("the engine configuration needs native sudo on sys/mounts")
                            }
                            None => return reject(
                                "KV v2 paths are M/data/…, M/metadata/…, M/delete/…, M/undelete/…, M/destroy/… or M/*",
                            ),
                        },
                        (None, _) => return reject("a KV path names an engine segment (data/, metadata/, …)"),
                    };
                if native.is_empty() {
                    t.warnings.push(format!(
                        "{:?}: listing is filtered by `list` on each secret; the rule adds nothing",
                        r.path
                    ));
                    continue;
                }
                let target = format!("{mount}/{native}");
                crate::validate_rule_path(&target)?;
                for fam in families {
                    kv.entry(target.clone())
                        .or_default()
                        .entry(fam)
                        .or_default()
                        .extend(r.capabilities.iter().cloned());
                }
            }
            None if mount.contains('*') || mount == "+" => {
                return reject("a glob over the mount name maps onto several engines' paths at once")
            }
            None => keep_inert(&format!(
                "no mount {mount:?} exists and the path does not say a keyward engine (M/data/…, M/metadata/… for KV \
                 v2, M/encrypt/… for transit)"
            )),
        }
    }
    for (target, fams) in &kv {
        let caps = kv_caps(target, fams)?;
        if !caps.is_empty() {
            t.rules.push(Rule { path: target.clone(), capabilities: caps.into_iter().collect() });
        }
    }
    for (target, caps) in transit.into_iter().chain(same) {
        let caps = if caps.contains(&Capability::Deny) { [Capability::Deny].into() } else { caps };
        t.rules.push(Rule { path: target, capabilities: caps.into_iter().collect() });
    }
    if t.rules.is_empty() && inert == 0 {
        return Err(invalid("the policy grants nothing keyward can express".into()));
    }
    Ok(t)
}

fn kv_caps(target: &str, fams: &BTreeMap<&'static str, BTreeSet<String>>) -> Result<BTreeSet<Capability>, CoreError> {
    let has = |fam: &str, cap: &str| fams.get(fam).is_some_and(|s| s.contains(cap));
    let any = |fam: &str, caps: &[&str]| caps.iter().any(|c| has(fam, c));
    if KV_FAMILIES.iter().any(|f| has(f, "deny")) {
        return Ok([Capability::Deny].into());
    }
    let mut out = BTreeSet::new();
    for (cap, native) in [
        ("read", Capability::Read),
        ("create", Capability::Create),
        ("update", Capability::Update),
        ("patch", Capability::Patch),
        ("delete", Capability::Delete),
    ] {
        if has("data", cap) {
            out.insert(native);
        }
    }
    if any("metadata", &["read", "list"]) || has("subkeys", "read") {
        out.insert(Capability::List);
    }
    if has("metadata", "delete") || any("destroy", &["create", "update"]) {
        out.insert(Capability::Destroy);
    }
    if any("delete", &["create", "update"]) {
        out.insert(Capability::Delete);
    }
    let data_update = has("data", "update");
    for fam in ["metadata", "undelete"] {
        let wants =
            if fam == "metadata" { any(fam, &["create", "update", "patch"]) } else { any(fam, &["create", "update"]) };
        if wants && !data_update {
            return Err(invalid(format!(
                "the policy rules for {target:?} cannot be translated: writing {fam}/ is gated by `update` in keyward, \
                 which also allows writing the secret; grant update on the data/ path too, or drop it"
            )));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Capability::*;

    fn tr(text: &str) -> Result<Translation, CoreError> {
        let rules = parse_hcl_policy(text)?;
        translate(&rules, |m| match m {
            "secret" | "app" => Some((MountKind::Kv, false)),
            "legacy" => Some((MountKind::Kv, true)),
            "transit" => Some((MountKind::Transit, false)),
            _ => None,
        })
    }

    fn caps(t: &Translation, path: &str) -> Vec<Capability> {
        t.rules.iter().find(|r| r.path == path).map(|r| r.capabilities.clone()).unwrap_or_default()
    }

    #[test]
    fn kv_v2_paths_map_onto_one_rule() {
        let t = tr(r#"
            # app credentials
            path "secret/data/app/*" { capabilities = ["create", "read", "update"] }
            path "secret/metadata/app/*" { capabilities = ["list", "read"] }
            path "secret/data/admin" { capabilities = ["deny"] }
            path "secret/metadata/" { capabilities = ["list"] }
        "#)
        .unwrap();
        assert_eq!(caps(&t, "secret/app/*"), vec![List, Read, Create, Update]);
        assert_eq!(caps(&t, "secret/admin"), vec![Deny]);
        assert_eq!(t.rules.len(), 2);
        assert_eq!(t.warnings.len(), 1);
        let t = tr(r#"path "secret/*" { capabilities = ["create", "read", "update", "delete", "list"] }"#).unwrap();
        assert_eq!(caps(&t, "secret/*"), vec![List, Read, Create, Update, Delete, Destroy]);
        let t = tr(r#"path "secret/destroy/x" { capabilities = ["update"] }
                      path "secret/metadata/y" { capabilities = ["delete"] }"#)
        .unwrap();
        assert_eq!(caps(&t, "secret/x"), vec![Destroy]);
        assert_eq!(caps(&t, "secret/y"), vec![Destroy]);
        let t = tr(r#"{"path": {"secret/data/j": {"capabilities": ["read"]}}}"#).unwrap();
        assert_eq!(caps(&t, "secret/j"), vec![Read]);
    }

    #[test]
    fn transit_paths_keep_their_meaning() {
        let t = tr(r#"path "transit/encrypt/orders" { capabilities = ["update"] }
                      path "transit/keys" { capabilities = ["list"] }"#)
        .unwrap();
        assert_eq!(caps(&t, "transit/encrypt/orders"), vec![Update]);
        assert_eq!(caps(&t, "transit/keys"), vec![List]);
    }

    proptest::proptest! {
        #[test]
        fn any_policy_text_is_an_answer_not_a_panic(text in "(path|capabilities|[\"{}\\[\\]=,#*+/ a-z\n])*") {
            let _ = tr(&text);
        }
    }

    #[test]
    fn what_would_widen_is_rejected() {
        for bad in [
            r#"path "secret/metadata/x" { capabilities = ["update"] }"#,
            r#"path "secret/undelete/x" { capabilities = ["update"] }"#,
            r#"path "secret/data/x" { capabilities = ["sudo"] }"#,
            r#"path "sys/mounts/*" { capabilities = ["update"] }"#,
            r#"path "auth/token/create" { capabilities = ["update"] }"#,
            r#"path "secret/data/x" { capabilities = ["read"] allowed_parameters = { "a" = [] } }"#,
            r#"path "secret/da*" { capabilities = ["read"] }"#,
            r#"path "auth/token/lookup" { capabilities = ["update"] }"#,
            r#"path "sys/policies/acl/*" { capabilities = ["read"] }"#,
            r#"path "auth/approle/role/x" { capabilities = ["subscribe"] }"#,
            r#"path "secret/data/x" { capabilities = ["fly"] }"#,
            r#"path "secret*" { capabilities = ["read"] }"#,
            r#"key "x" {}"#,
            "not hcl {{{",
            "",
        ] {
            assert!(tr(bad).is_err(), "{bad}");
        }
        assert!(tr(r#"path "secret/data/x" { capabilities = ["update"] }
                       path "secret/metadata/x" { capabilities = ["update"] }"#)
        .is_ok());
        assert!(tr(r#"path "newkv/data/x" { capabilities = ["read"] }"#).is_ok());
    }

    #[test]
    fn vault_paths_keyward_serves_elsewhere_take_effect_and_the_rest_stays_inert() {
        let t = tr(r#"
            path "sys/mounts/*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }
            path "auth/approle/role/ci/secret-id" { capabilities = ["update"] }
            path "auth/token/create/ci" { capabilities = ["update"] }
            path "auth/approle/login" { capabilities = ["create", "update"] }
            path "sys/wrapping/wrap" { capabilities = ["update"] }
            path "legacy/apps/*" { capabilities = ["read", "list"] }
            path "sys/health" { capabilities = ["read"] }
            path "pki/issue/web" { capabilities = ["update"] }
        "#)
        .unwrap();
        assert_eq!(caps(&t, "sys/mounts"), vec![Sudo]);
        assert_eq!(caps(&t, "auth/approle/role/ci/secret-id"), vec![Update]);
        assert_eq!(caps(&t, "auth/token/create/ci"), vec![Update]);
        assert_eq!(caps(&t, "sys/wrapping/wrap"), vec![Update]);
        assert_eq!(caps(&t, "legacy/apps/*"), vec![List, Read]);
        let inert: Vec<&String> = t.warnings.iter().filter(|w| w.contains(INERT)).collect();
        assert_eq!(inert.len(), 2, "{:?}", t.warnings);
        assert!(t.warnings.iter().any(|w| w.contains("logins take no token")));
        // A policy of inert rules alone is kept (it grants nothing).
        let only = tr(r#"path "sys/health" { capabilities = ["read"] }"#).unwrap();
        assert!(only.rules.is_empty() && only.warnings[0].contains(INERT));
        // A deny on an admin path is kept as a deny.
        let t = tr(r#"path "sys/auth/*" { capabilities = ["deny"] }"#).unwrap();
        assert_eq!(caps(&t, "sys/auth"), vec![Deny]);
    }
}
