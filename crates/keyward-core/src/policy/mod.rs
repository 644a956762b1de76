//! Path policies: named lists of rules `{path, capabilities}`, and the ACL built from a token's
//! policies. Deny by default; `deny` on any matching rule wins over everything.
//!
//! A rule path is `<mount>/<secret path>` and applies to whole secrets. Globbing is Vault's: a
//! trailing `*` matches any suffix (including `/`), and a `+` segment matches exactly one path
//! segment. Capabilities of all matching rules are combined.
use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::CoreError;

mod hcl;
mod service;

pub use hcl::{parse_hcl_policy, translate as translate_hcl, HclRule, Translation};

/// What a rule may grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    /// Names, masks and metadata.
    List,
    /// Plaintext (reveal, export).
    Read,
    /// Create new secrets.
    Create,
    /// Change existing secrets.
    Update,
    /// Remove fields (a patch).
    Patch,
    /// Delete secrets.
    Delete,
    /// Destroy versions for good.
    Destroy,
    /// Use a credential through the proxy without seeing it.
    Use,
    /// Administer mounts, policies, tokens, keys and proxy routes.
    Sudo,
    /// Refuse everything, whatever other rules grant.
    Deny,
}

impl Capability {
    /// Every capability.
    pub const ALL: [Capability; 10] = [
        Self::List,
        Self::Read,
        Self::Create,
        Self::Update,
        Self::Patch,
        Self::Delete,
        Self::Destroy,
        Self::Use,
        Self::Sudo,
        Self::Deny,
    ];

    /// The capability of a name in policy documents.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Its name in policy documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::List => "list",
            Self::Read => "read",
            Self::Create => "create",
            Self::Update => "update",
            Self::Patch => "patch",
            Self::Delete => "delete",
            Self::Destroy => "destroy",
            Self::Use => "use",
            Self::Sudo => "sudo",
            Self::Deny => "deny",
        }
    }
}

/// One rule of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// `<mount>/<secret path>`, with an optional trailing `*` and `+` segments.
    pub path: String,
    /// Granted capabilities.
    pub capabilities: Vec<Capability>,
}

/// A named policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Its name.
    pub name: String,
    /// Its rules.
    pub rules: Vec<Rule>,
    /// The Vault HCL text it was written as, if it came through the Vault API (returned as
    /// written by `sys/policies/acl`).
    pub hcl: Option<String>,
}

/// A stored policy row: live, or the tombstone its deletion leaves — so a policy whose row is
/// simply missing was removed outside keyward, and a token naming it is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyRow {
    /// A policy in force.
    Live(Policy),
    /// A deleted policy's name: it grants nothing.
    Deleted(String),
}

impl PolicyRow {
    /// The policy's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Live(p) => &p.name,
            Self::Deleted(n) => n,
        }
    }
}

/// The built-in policy that grants everything.
pub const ROOT_POLICY: &str = "root";
/// The built-in policy every token gets unless asked otherwise: look up and revoke itself.
pub const DEFAULT_POLICY: &str = "default";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    rules: Vec<Rule>,
}

/// Validates a policy name: 1–128 characters of `A-Z a-z 0-9 . _ -`.
pub fn validate_policy_name(name: &str) -> Result<(), CoreError> {
    let ok =
        !name.is_empty() && name.len() <= 128 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(CoreError::InvalidInput(format!("policy name {name:?} must be 1-128 characters of A-Z a-z 0-9 . _ -")))
    }
}

/// Validates a rule path: `<mount>/…` segments of `A-Z a-z 0-9 . _ -`, or `+`, with an optional
/// trailing `*` (a lone `*` matches everything).
pub fn validate_rule_path(path: &str) -> Result<(), CoreError> {
    let bad = |why: &str| Err(CoreError::InvalidInput(format!("rule path {path:?}: {why}")));
    if path.is_empty() {
        return bad("empty");
    }
    if path == "*" {
        return Ok(());
    }
    let (body, glob) = match path.strip_suffix('*') {
        Some(b) => (b, true),
        None => (path, false),
    };
    if body.contains('*') {
        return bad("'*' may only end the path");
    }
    let segments: Vec<&str> = body.split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        if seg.is_empty() {
            if i + 1 == segments.len() && glob && i > 0 {
                continue;
            }
            return bad("empty segment");
        }
        if *seg == "." || *seg == ".." {
            return bad("'.' and '..' are not allowed");
        }
        if *seg != "+" && !seg.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
            return bad("segments use A-Z a-z 0-9 . _ - (or are exactly '+')");
        }
    }
    Ok(())
}

/// Parses a policy file: TOML `[[rules]]` tables, or JSON `{"rules": [...]}`.
pub fn parse_policy_document(text: &str) -> Result<Vec<Rule>, CoreError> {
    let doc: Document = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| CoreError::InvalidInput(format!("invalid JSON policy: {e}")))?
    } else {
        toml::from_str(text).map_err(|e| CoreError::InvalidInput(format!("invalid TOML policy: {}", e.message())))?
    };
    validate_rules(&doc.rules)?;
    Ok(doc.rules)
}

/// Checks every rule of a policy.
pub fn validate_rules(rules: &[Rule]) -> Result<(), CoreError> {
    if rules.is_empty() {
        return Err(CoreError::InvalidInput("a policy needs at least one rule".into()));
    }
    for r in rules {
        validate_rule_path(&r.path)?;
        if r.capabilities.is_empty() {
            return Err(CoreError::InvalidInput(format!("rule {:?} grants no capability", r.path)));
        }
    }
    Ok(())
}

/// How a rule path meets a template whose `placeholder` segments stand for any one segment.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Instances {
    /// The rule matches every instance.
    All,
    /// The rule may match some instance.
    Some,
}

/// Whether `pattern` matches every instance (`All`) or some instance (`Some`) of `template`.
fn matches_instances(pattern: &str, template: &str, placeholder: &str, how: Instances) -> bool {
    let (body, glob) = match pattern.strip_suffix('*') {
        Some(b) => (b, true),
        None => (pattern, false),
    };
    let pat: Vec<&str> = body.split('/').collect();
    let tgt: Vec<&str> = template.split('/').collect();
    if tgt.len() < pat.len() || (!glob && tgt.len() != pat.len()) {
        return false;
    }
    let last = pat.len() - 1;
    pat.iter().zip(&tgt).enumerate().all(|(i, (p, t))| {
        let glob_here = i == last && glob;
        if *t == placeholder {
            // Every instance: `+`, or a bare `*` from this segment on. Some instance: anything.
            how == Instances::Some || *p == "+" || (glob_here && p.is_empty())
        } else if *p == "+" {
            !t.is_empty()
        } else if glob_here {
            t.starts_with(p)
        } else {
            p == t
        }
    })
}

/// Whether `pattern` (a rule path) matches `target` (`<mount>/<path>` or a system path).
pub fn rule_matches(pattern: &str, target: &str) -> bool {
    let (body, glob) = match pattern.strip_suffix('*') {
        Some(b) => (b, true),
        None => (pattern, false),
    };
    let pat: Vec<&str> = body.split('/').collect();
    let tgt: Vec<&str> = target.split('/').collect();
    if tgt.len() < pat.len() || (!glob && tgt.len() != pat.len()) {
        return false;
    }
    let last = pat.len() - 1;
    for (i, p) in pat.iter().enumerate() {
        let t = tgt[i];
        let ok = if *p == "+" {
            !t.is_empty()
        } else if i == last && glob {
            t.starts_with(p)
        } else {
            *p == t
        };
        if !ok {
            return false;
        }
    }
    true
}

/// The capabilities a set of policies grants, bounded by the ACL of every live ancestor of the
/// token (a child token never exceeds its parent, whatever policies it was given: dropping the
/// parent's `deny` policy widens nothing).
#[derive(Debug, Clone, Default)]
pub struct Acl {
    root: bool,
    default: bool,
    rules: Vec<(String, BTreeSet<Capability>)>,
    /// The ACLs of the token's ancestors, nearest first: each must grant a capability too.
    bounds: Vec<std::sync::Arc<Acl>>,
}

/// `read` implies `list`.
fn with_implied(mut caps: BTreeSet<Capability>) -> BTreeSet<Capability> {
    if caps.contains(&Capability::Read) {
        caps.insert(Capability::List);
    }
    caps
}

impl Acl {
    /// Builds the ACL of a token from its policies' names and the stored policies.
    pub fn new(names: &[String], policies: &[Policy]) -> Self {
        let mut acl = Acl {
            root: names.iter().any(|n| n == ROOT_POLICY),
            default: names.iter().any(|n| n == DEFAULT_POLICY),
            rules: Vec::new(),
            bounds: Vec::new(),
        };
        for p in policies.iter().filter(|p| names.contains(&p.name)) {
            for r in &p.rules {
                acl.rules.push((r.path.clone(), r.capabilities.iter().copied().collect()));
            }
        }
        acl
    }

    /// This ACL, bounded by an ancestor's: what both grant.
    pub fn bounded_by(mut self, ancestor: Acl) -> Self {
        self.bounds.push(std::sync::Arc::new(ancestor));
        self
    }

    /// Whether this is a root ACL (its ancestors' too).
    pub fn is_root(&self) -> bool {
        self.root && self.bounds.iter().all(|b| b.is_root())
    }

    /// Whether the token holds the `default` policy (look up and revoke itself). Its own
    /// policies decide: this is self-service on the token alone.
    pub fn has_default(&self) -> bool {
        self.root || self.default
    }

    /// What this ACL's own policies grant on `target` (empty when a matching rule denies),
    /// with `read` implying `list`.
    fn own_capabilities(&self, target: &str) -> BTreeSet<Capability> {
        if self.root {
            return Capability::ALL.iter().copied().filter(|c| *c != Capability::Deny).collect();
        }
        let mut caps = BTreeSet::new();
        for (pattern, granted) in &self.rules {
            if rule_matches(pattern, target) {
                if granted.contains(&Capability::Deny) {
                    return BTreeSet::new();
                }
                caps.extend(granted.iter().copied());
            }
        }
        with_implied(caps)
    }

    /// The capabilities granted on `target` — by the token's policies and by every ancestor's —
    /// with `read` implying `list` (empty when any matching rule denies).
    pub fn capabilities(&self, target: &str) -> BTreeSet<Capability> {
        let mut caps = self.own_capabilities(target);
        for b in &self.bounds {
            if caps.is_empty() {
                break;
            }
            let theirs = b.capabilities(target);
            caps.retain(|c| theirs.contains(c));
        }
        caps
    }

    /// Whether any rule grants something (other than `deny`) under `mount` — the mounts a
    /// token may learn exist — here and in every ancestor.
    pub fn touches_mount(&self, mount: &str) -> bool {
        let own = self.root
            || self.rules.iter().any(|(pattern, caps)| {
                caps.iter().any(|c| *c != Capability::Deny)
                    && match pattern.split_once('/') {
                        Some((first, _)) => first == mount || first == "+",
                        None => rule_matches(pattern, mount),
                    }
            });
        own && self.bounds.iter().all(|b| b.touches_mount(mount))
    }

    /// Whether one of `capabilities` is granted on every instance of `template`, a target whose
    /// `placeholder` segments stand for any one segment (a proxy route's `{account}`): a single
    /// rule granting it must cover each placeholder with `+` or a bare `*`, and no `deny` rule may
    /// match any instance — here and in every ancestor.
    pub fn covers_template(&self, capabilities: &[Capability], template: &str, placeholder: &str) -> bool {
        let own = self.root || {
            let denied = self.rules.iter().any(|(p, caps)| {
                caps.contains(&Capability::Deny) && matches_instances(p, template, placeholder, Instances::Some)
            });
            let granted = self.rules.iter().any(|(p, caps)| {
                let caps = with_implied(caps.clone());
                capabilities.iter().any(|c| caps.contains(c))
                    && matches_instances(p, template, placeholder, Instances::All)
            });
            !denied && granted
        };
        own && self.bounds.iter().all(|b| b.covers_template(capabilities, template, placeholder))
    }

    /// Whether any rule grants anything at all (other than `deny`), here and in every ancestor:
    /// a token that may see something.
    pub fn grants_anything(&self) -> bool {
        let own = self.root || self.rules.iter().any(|(_, caps)| caps.iter().any(|c| *c != Capability::Deny));
        own && self.bounds.iter().all(|b| b.grants_anything())
    }

    /// Whether `capability` is granted on `target`. `read` implies `list`.
    pub fn allows(&self, capability: Capability, target: &str) -> bool {
        self.own_capabilities(target).contains(&capability) && self.bounds.iter().all(|b| b.allows(capability, target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(rules: &[(&str, &[Capability])]) -> Acl {
        let p = Policy {
            name: "p".into(),
            rules: rules
                .iter()
                .map(|(path, caps)| Rule { path: (*path).into(), capabilities: caps.to_vec() })
                .collect(),
            hcl: None,
        };
        Acl::new(&["p".into()], &[p])
    }

    #[test]
    fn globs_follow_vault() {
        assert!(rule_matches("careflex/*", "careflex/production"));
        assert!(rule_matches("careflex/*", "careflex/accounts/42"));
        assert!(!rule_matches("careflex/*", "careflex"));
        assert!(!rule_matches("careflex/*", "careflexx/production"));
        assert!(rule_matches("careflex/prod*", "careflex/production"));
        assert!(rule_matches("careflex/+/stripe", "careflex/42/stripe"));
        assert!(!rule_matches("careflex/+/stripe", "careflex/42/43/stripe"));
        assert!(!rule_matches("careflex/+/stripe", "careflex/stripe"));
        assert!(rule_matches("careflex/production", "careflex/production"));
        assert!(!rule_matches("careflex/production", "careflex/production/x"));
        assert!(rule_matches("+/+/*", "a/b/c/d"));
        assert!(rule_matches("*", "anything/at/all"));
    }

    #[test]
    fn deny_wins_and_read_implies_list() {
        use Capability::*;
        let a = acl(&[("careflex/*", &[Read, Update]), ("careflex/admin", &[Deny])]);
        assert!(a.allows(Read, "careflex/production"));
        assert!(a.allows(List, "careflex/production"));
        assert!(!a.allows(Sudo, "careflex/production"));
        assert!(!a.allows(Read, "careflex/admin"));
        assert!(!a.allows(Read, "other/production"));
        let list_only = acl(&[("m/p", &[List])]);
        assert!(!list_only.allows(Read, "m/p"));
        assert!(Acl::new(&["root".into()], &[]).allows(Sudo, "sys/mounts"));
        assert!(!Acl::new(&["default".into()], &[]).allows(List, "m/p"));
        assert!(a.touches_mount("careflex") && !a.touches_mount("other"));
        assert!(acl(&[("care*", &[List])]).touches_mount("careflex"));
        assert!(!acl(&[("other/x", &[Deny])]).touches_mount("other"));
    }

    #[test]
    fn a_child_is_bounded_by_its_parent() {
        use Capability::*;
        let parent = acl(&[("careflex/*", &[Read, Update]), ("careflex/admin", &[Deny])]);
        // The child was given a policy that grants everything, without the parent's deny.
        let child = acl(&[("*", &[Read, Update, Sudo, List])]).bounded_by(parent);
        assert!(child.allows(Read, "careflex/production"));
        assert!(!child.allows(Read, "careflex/admin"), "the parent's deny holds");
        assert!(!child.allows(Sudo, "sys/tokens"), "the parent never had sudo");
        assert!(!child.allows(Read, "other/x"));
        assert!(child.touches_mount("careflex") && !child.touches_mount("other"));
        let root_child = Acl::new(&["root".into()], &[]).bounded_by(acl(&[("m/*", &[List])]));
        assert!(!root_child.is_root() && !root_child.allows(Read, "m/a") && root_child.allows(List, "m/a"));
        assert!(Acl::new(&["root".into()], &[]).bounded_by(Acl::new(&["root".into()], &[])).is_root());
    }

    #[test]
    fn templates_are_covered_only_by_rules_for_every_instance() {
        use Capability::*;
        let t = "secret/users/{account}/binance";
        let covers = |rules: &[(&str, &[Capability])]| acl(rules).covers_template(&[Use, Read], t, "{account}");
        assert!(covers(&[("secret/users/+/binance", &[Use])]));
        assert!(covers(&[("secret/users/*", &[Use])]));
        assert!(covers(&[("secret/*", &[Read])]));
        assert!(covers(&[("*", &[Use])]));
        assert!(!covers(&[("secret/users/42/binance", &[Use])]), "one instance is not every instance");
        assert!(!covers(&[("secret/users/a*", &[Use])]), "a prefix is not every account");
        assert!(!covers(&[("secret/users/+/binance", &[List])]), "list uses nothing");
        assert!(!covers(&[("secret/users/+/binance", &[Use]), ("secret/users/42/binance", &[Deny])]));
        assert!(!covers(&[("secret/*", &[Use]), ("secret/users/vip*", &[Deny])]));
        assert!(covers(&[("secret/*", &[Use]), ("secret/users/42/other", &[Deny])]), "a deny elsewhere");
        assert!(Acl::new(&["root".into()], &[]).covers_template(&[Use], t, "{account}"));
        let bounded = acl(&[("*", &[Use])]).bounded_by(acl(&[("secret/users/7/binance", &[Use])]));
        assert!(!bounded.covers_template(&[Use], t, "{account}"), "the parent covers one account only");
    }

    fn arb_rules() -> impl proptest::strategy::Strategy<Value = Vec<(String, Vec<Capability>)>> {
        use proptest::prelude::*;
        let seg = prop::sample::select(vec!["a", "b", "+", "c"]);
        let path = (prop::sample::select(vec!["m", "n", "+"]), prop::collection::vec(seg, 0..3), any::<bool>())
            .prop_map(|(m, segs, glob)| {
                let mut p = std::iter::once(m).chain(segs).collect::<Vec<_>>().join("/");
                if glob {
                    p.push('*');
                }
                p
            });
        let caps = prop::collection::vec(prop::sample::select(Capability::ALL.to_vec()), 1..4);
        prop::collection::vec((path, caps), 0..5)
    }

    fn acl_of(rules: &[(String, Vec<Capability>)], root: bool) -> Acl {
        let p = Policy {
            name: "p".into(),
            rules: rules.iter().map(|(path, caps)| Rule { path: path.clone(), capabilities: caps.clone() }).collect(),
            hcl: None,
        };
        let names: Vec<String> = if root { vec!["root".into(), "p".into()] } else { vec!["p".into()] };
        Acl::new(&names, &[p])
    }

    proptest::proptest! {
        /// Whatever policies a child holds, it never exceeds any ancestor on any path.
        #[test]
        fn a_child_never_exceeds_its_ancestors(
            grand in arb_rules(), parent in arb_rules(), child in arb_rules(), child_root: bool,
            target in proptest::sample::select(vec!["m/a", "m/a/b", "m/b/c", "n/a", "m", "n/c/a/b", "sys/tokens"]),
        ) {
            let (g, p) = (acl_of(&grand, false), acl_of(&parent, false));
            let c = acl_of(&child, child_root).bounded_by(p.clone()).bounded_by(g.clone());
            for cap in Capability::ALL {
                if c.allows(cap, target) {
                    proptest::prop_assert!(p.allows(cap, target) && g.allows(cap, target), "{cap:?} on {target}");
                }
            }
            let caps = c.capabilities(target);
            proptest::prop_assert!(caps.is_subset(&p.capabilities(target)) && caps.is_subset(&g.capabilities(target)));
            if c.touches_mount("m") {
                proptest::prop_assert!(p.touches_mount("m") && g.touches_mount("m"));
            }
            proptest::prop_assert!(!c.is_root());
        }
    }

    #[test]
    fn documents_parse_and_validate() {
        let toml = "[[rules]]\npath = \"careflex/production\"\ncapabilities = [\"list\", \"read\"]\n\n[[rules]]\npath = \"careflex/+/stripe\"\ncapabilities = [\"deny\"]\n";
        let rules = parse_policy_document(toml).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[1].capabilities, vec![Capability::Deny]);
        let json = r#"{"rules": [{"path": "careflex/*", "capabilities": ["update"]}]}"#;
        assert_eq!(parse_policy_document(json).unwrap()[0].path, "careflex/*");
        for bad in [
            "[[rules]]\npath = \"a/*/b\"\ncapabilities = [\"read\"]",
            "[[rules]]\npath = \"a/../b\"\ncapabilities = [\"read\"]",
            "[[rules]]\npath = \"a\"\ncapabilities = [\"fly\"]",
            "[[rules]]\npath = \"a\"\ncapabilities = []",
            "",
            "{\"rules\": 3}",
        ] {
            assert!(parse_policy_document(bad).is_err(), "{bad}");
        }
        assert!(validate_policy_name("ci-deploy.v2").is_ok());
        assert!(validate_policy_name("bad name").is_err());
    }
}
