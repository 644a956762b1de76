//! Policies: write, read, list, delete.
use async_trait::async_trait;

use super::{validate_policy_name, validate_rules};
use crate::engine::command::{Command, Evict};
use crate::{
    AuditEntry, Capability, CoreError, KeyManager, Keyward, Policy, PolicyRow, Rule, StoreTx, DEFAULT_POLICY,
    ROOT_POLICY,
};

/// Creates or replaces a policy.
#[derive(Debug)]
struct PutPolicy(Policy);

#[async_trait]
impl Command for PutPolicy {
    type Reply = ();

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<(), CoreError> {
        tx.put_policy(&self.0).await?;
        Ok(())
    }

    fn evicts(&self) -> Evict<'_> {
        Evict::Callers
    }
}

/// Deletes a policy.
#[derive(Debug)]
struct DeletePolicy {
    name: String,
}

#[async_trait]
impl Command for DeletePolicy {
    type Reply = ();

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<(), CoreError> {
        match tx.delete_policy(&self.name).await? {
            true => Ok(()),
            false => Err(CoreError::NotFound(format!("policy {:?}", self.name))),
        }
    }

    fn evicts(&self) -> Evict<'_> {
        Evict::Callers
    }
}

fn builtin(name: &str) -> Option<Policy> {
    match name {
        ROOT_POLICY => Some(Policy {
            name: ROOT_POLICY.into(),
            rules: vec![Rule {
                path: "*".into(),
                capabilities: Capability::ALL.iter().copied().filter(|c| *c != Capability::Deny).collect(),
            }],
            hcl: None,
        }),
        // `default` grants only self-service on the token itself (lookup-self, revoke-self).
        DEFAULT_POLICY => Some(Policy { name: DEFAULT_POLICY.into(), rules: vec![], hcl: None }),
        _ => None,
    }
}

impl Keyward {
    /// Creates or replaces a policy, with its audit entry. The built-in `root` and `default`
    /// cannot be changed.
    pub async fn write_policy(&self, name: &str, rules: Vec<Rule>, audit: AuditEntry) -> Result<(), CoreError> {
        self.put_policy(name, rules, None, audit).await
    }

    async fn put_policy(
        &self,
        name: &str,
        rules: Vec<Rule>,
        hcl: Option<String>,
        audit: AuditEntry,
    ) -> Result<(), CoreError> {
        validate_policy_name(name)?;
        if builtin(name).is_some() {
            return Err(CoreError::InvalidInput(format!("{name:?} is a built-in policy and cannot be changed")));
        }
        // A Vault policy whose every rule is inert in this version is kept (it grants nothing).
        if !(rules.is_empty() && hcl.is_some()) {
            validate_rules(&rules)?;
        }
        self.writer.submit(PutPolicy(Policy { name: name.to_owned(), rules, hcl }), audit).await
    }

    /// Creates or replaces a policy from Vault HCL (or JSON) text, translated into native rules
    /// at write time (see the translation table in `hcl.rs`); returns the translation's notes.
    pub async fn write_policy_hcl(&self, name: &str, text: &str, audit: AuditEntry) -> Result<Vec<String>, CoreError> {
        let vault_rules = super::parse_hcl_policy(text)?;
        let mounts = self.store.list_mounts().await?;
        let kind = |m: &str| mounts.iter().find(|x| x.path == m).map(|x| (x.kind, crate::KvConfig::of(x).is_v1()));
        let t = super::translate_hcl(&vault_rules, kind)?;
        self.put_policy(name, t.rules, Some(text.to_owned()), audit).await?;
        Ok(t.warnings)
    }

    /// The Vault policy rules that grant nothing as stored (`policy: rule (why)`): rules inert in
    /// this version, and rules that were inert when written but would take effect if the
    /// policy were written again. Each is re-read from the policy's own text.
    pub async fn inert_policy_rules(&self) -> Result<Vec<String>, CoreError> {
        let mounts = self.store.list_mounts().await?;
        let kind = |m: &str| mounts.iter().find(|x| x.path == m).map(|x| (x.kind, crate::KvConfig::of(x).is_v1()));
        let names = self.store.policy_names().await?;
        let mut out = Vec::new();
        for row in self.store.policies(&names).await? {
            let PolicyRow::Live(p) = row else { continue };
            let Some(text) = &p.hcl else { continue };
            let Ok(rules) = super::parse_hcl_policy(text) else { continue };
            for rule in rules {
                let Ok(t) = super::translate_hcl(std::slice::from_ref(&rule), kind) else { continue };
                if t.warnings.iter().any(|w| w.contains(super::hcl::INERT)) {
                    out.push(format!("{}: {:?} ({})", p.name, rule.path, super::hcl::INERT));
                } else if t.rules.iter().any(|r| !p.rules.iter().any(|s| s.path == r.path)) {
                    out.push(format!(
                        "{}: {:?} (inert as stored: write the policy again to apply it)",
                        p.name, rule.path
                    ));
                }
            }
        }
        Ok(out)
    }

    /// A policy (built-ins included).
    pub async fn read_policy(&self, name: &str) -> Result<Policy, CoreError> {
        if let Some(p) = builtin(name) {
            return Ok(p);
        }
        validate_policy_name(name)?;
        match self.store.policies(&[name.to_owned()]).await?.pop() {
            Some(PolicyRow::Live(p)) => Ok(p),
            _ => Err(CoreError::NotFound(format!("policy {name:?}"))),
        }
    }

    /// Every policy name, built-ins first.
    pub async fn list_policies(&self) -> Result<Vec<String>, CoreError> {
        let mut names = vec![DEFAULT_POLICY.to_owned(), ROOT_POLICY.to_owned()];
        names.extend(self.store.policy_names().await?);
        Ok(names)
    }

    /// Deletes a policy, with its audit entry; tokens holding it lose what it granted at once.
    pub async fn delete_policy(&self, name: &str, audit: AuditEntry) -> Result<(), CoreError> {
        if builtin(name).is_some() {
            return Err(CoreError::InvalidInput(format!("{name:?} is a built-in policy and cannot be deleted")));
        }
        validate_policy_name(name)?;
        self.writer.submit(DeletePolicy { name: name.to_owned() }, audit).await
    }
}
