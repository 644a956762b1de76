//! Credential-proxy routes: where a credential may be sent and how it is injected. A route binds
//! one upstream origin to a secret path (optionally with one `{account}` segment) and a list of
//! injection recipes; the credential is decrypted only inside keyward, at the moment of use.
use serde::{Deserialize, Serialize};

use async_trait::async_trait;

use crate::engine::command::Command;
use crate::secrets::{validate_field_name, validate_mount_path, validate_secret_path};
use crate::{now_nanos, AuditEntry, CoreError, KeyManager, Keyward, Nanos, StoreTx};

/// The placeholder a route's secret path may hold once, as a whole segment.
pub const ACCOUNT: &str = "{account}";
const MAX_RECIPES: usize = 16;

/// How a credential is put into the upstream request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Recipe {
    /// `Authorization: Bearer <field>`.
    Bearer {
        /// The secret field.
        field: String,
    },
    /// Any header, from a template with `{FIELD}` placeholders.
    Header {
        /// Header name.
        name: String,
        /// Template, e.g. `{api_key}`.
        template: String,
    },
    /// HTTP basic authentication.
    Basic {
        /// Field holding the user.
        user: String,
        /// Field holding the password.
        pass: String,
    },
    /// A query parameter.
    Query {
        /// Parameter name.
        name: String,
        /// The secret field.
        field: String,
    },
    /// Exchange-style signing (Binance): `timestamp` added when absent, then `signature` = hex
    /// HMAC-SHA256 of `<query string><raw body>` under the field, appended last.
    HmacSha256Query {
        /// Field holding the signing secret.
        field: String,
    },
}

/// Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection, so a proxy never
/// forwards them either way, and a recipe may not set them.
pub const HOP_BY_HOP: [&str; 7] =
    ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"];

/// Headers a recipe may never set besides the hop-by-hop ones: framing, routing and keyward's own.
const FORBIDDEN_HEADERS: [&str; 7] =
    ["host", "content-length", "proxy-authorization", "cookie", "x-vault-token", "accept-encoding", "content-encoding"];

/// Whether a recipe may set the header `lower` (lowercase).
fn settable(lower: &str) -> bool {
    !HOP_BY_HOP.contains(&lower) && !FORBIDDEN_HEADERS.contains(&lower)
}

fn valid_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn valid_field(s: &str) -> bool {
    validate_field_name(s).is_ok() && !s.contains(['{', '}', ':', '='])
}

/// The fields a template refers to, in order (`{name}` placeholders; `{{`/`}}` are not special).
pub fn template_fields(template: &str) -> Result<Vec<String>, CoreError> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let end = after
            .find('}')
            .ok_or_else(|| CoreError::InvalidInput(format!("template {template:?} has an unclosed '{{'")))?;
        let field = &after[..end];
        if !valid_field(field) {
            return Err(CoreError::InvalidInput(format!("template {template:?}: {field:?} is not a field name")));
        }
        out.push(field.to_owned());
        rest = &after[end + 1..];
    }
    if rest.contains('}') {
        return Err(CoreError::InvalidInput(format!("template {template:?} has an unmatched '}}'")));
    }
    Ok(out)
}

impl Recipe {
    /// Parses `bearer:FIELD`, `header:NAME=TEMPLATE`, `basic:USER:PASS`, `query:NAME=FIELD` or
    /// `hmac-sha256-query:FIELD`.
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        let bad = |why: &str| {
            Err(CoreError::InvalidInput(format!(
                "injection recipe {s:?}: {why} (bearer:FIELD, header:NAME=TEMPLATE, basic:USERFIELD:PASSFIELD, \
                 query:NAME=FIELD, hmac-sha256-query:SECRETFIELD)"
            )))
        };
        let Some((kind, arg)) = s.split_once(':') else { return bad("no kind") };
        let recipe = match kind {
            "bearer" => Recipe::Bearer { field: arg.to_owned() },
            "header" => match arg.split_once('=') {
                Some((name, template)) => {
                    Recipe::Header { name: name.trim().to_owned(), template: template.to_owned() }
                }
                None => return bad("expected NAME=TEMPLATE"),
            },
            "basic" => match arg.split_once(':') {
                Some((user, pass)) => Recipe::Basic { user: user.to_owned(), pass: pass.to_owned() },
                None => return bad("expected USERFIELD:PASSFIELD"),
            },
            "query" => match arg.split_once('=') {
                Some((name, field)) => Recipe::Query { name: name.to_owned(), field: field.to_owned() },
                None => return bad("expected NAME=FIELD"),
            },
            "hmac-sha256-query" => Recipe::HmacSha256Query { field: arg.to_owned() },
            _ => return bad("unknown kind"),
        };
        recipe.validate()?;
        Ok(recipe)
    }

    /// Checks names and fields.
    pub fn validate(&self) -> Result<(), CoreError> {
        let field = |f: &str| {
            if valid_field(f) {
                Ok(())
            } else {
                Err(CoreError::InvalidInput(format!("{f:?} is not a valid field name")))
            }
        };
        match self {
            Recipe::Bearer { field: f } | Recipe::HmacSha256Query { field: f } => field(f),
            Recipe::Basic { user, pass } => field(user).and(field(pass)),
            Recipe::Query { name, field: f } => {
                if name.is_empty() || name.len() > 128 || name.contains(['&', '=', '#', ' ']) || name == "signature" {
                    return Err(CoreError::InvalidInput(format!("{name:?} is not a usable query parameter name")));
                }
                field(f)
            }
            Recipe::Header { name, template } => {
                if !valid_token(name) || !settable(&name.to_ascii_lowercase()) {
                    return Err(CoreError::InvalidInput(format!("{name:?} cannot be set by a recipe")));
                }
                if template_fields(template)?.is_empty() {
                    return Err(CoreError::InvalidInput(format!("header template {template:?} uses no field")));
                }
                Ok(())
            }
        }
    }

    /// The secret fields this recipe reads.
    pub fn fields(&self) -> Vec<String> {
        match self {
            Recipe::Bearer { field } | Recipe::Query { field, .. } | Recipe::HmacSha256Query { field } => {
                vec![field.clone()]
            }
            Recipe::Basic { user, pass } => vec![user.clone(), pass.clone()],
            Recipe::Header { template, .. } => template_fields(template).unwrap_or_default(),
        }
    }

    /// The header this recipe sets, lowercased, if any.
    pub fn header(&self) -> Option<String> {
        match self {
            Recipe::Bearer { .. } | Recipe::Basic { .. } => Some("authorization".into()),
            Recipe::Header { name, .. } => Some(name.to_ascii_lowercase()),
            _ => None,
        }
    }
}

impl std::fmt::Display for Recipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Recipe::Bearer { field } => write!(f, "bearer:{field}"),
            Recipe::Header { name, template } => write!(f, "header:{name}={template}"),
            Recipe::Basic { user, pass } => write!(f, "basic:{user}:{pass}"),
            Recipe::Query { name, field } => write!(f, "query:{name}={field}"),
            Recipe::HmacSha256Query { field } => write!(f, "hmac-sha256-query:{field}"),
        }
    }
}

/// A proxy route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyRoute {
    /// Its name (the first segment after `/api/v1/proxy/`).
    pub name: String,
    /// The upstream origin, `https://host[:port]` (fixed: nothing in a request changes it).
    pub upstream: String,
    /// The kv mount holding the credential.
    pub mount: String,
    /// The secret path, possibly with one `{account}` segment.
    pub path: String,
    /// How the credential is injected.
    pub inject: Vec<Recipe>,
    /// Per-route rate limit such as `20/s` (checked by the server).
    pub rate_limit: Option<String>,
    /// Upstream timeout in seconds.
    pub timeout_secs: u64,
    /// This route may use an `http://` upstream and addresses that are not global unicast; it
    /// takes effect only on a server started with `--proxy-allow-insecure`.
    #[serde(default)]
    pub allow_insecure: bool,
    /// Creation time.
    pub created_at: Nanos,
    /// Last change.
    pub updated_at: Nanos,
}

impl ProxyRoute {
    /// Whether the secret path has an `{account}` segment.
    pub fn has_account(&self) -> bool {
        self.path.split('/').any(|s| s == ACCOUNT)
    }

    /// The concrete secret path for an account (validated like any path segment).
    pub fn secret_path(&self, account: Option<&str>) -> Result<String, CoreError> {
        match (self.has_account(), account) {
            (false, _) => Ok(self.path.clone()),
            (true, Some(a)) => {
                let p = self.path.replace(ACCOUNT, a);
                validate_mount_path(a).map_err(|_| {
                    CoreError::InvalidInput(format!("account {a:?} must be one segment of A-Z a-z 0-9 . _ -"))
                })?;
                validate_secret_path(&p)?;
                Ok(p)
            }
            (true, None) => {
                Err(CoreError::InvalidInput("this route needs an account: /api/v1/proxy/NAME/ACCOUNT/…".into()))
            }
        }
    }

    /// Every field the recipes read.
    pub fn fields(&self) -> Vec<String> {
        let mut f: Vec<String> = self.inject.iter().flat_map(Recipe::fields).collect();
        f.sort();
        f.dedup();
        f
    }

    fn validate(&self) -> Result<(), CoreError> {
        validate_mount_path(&self.name).map_err(|_| {
            CoreError::InvalidInput(format!("route name {:?} must be one segment of A-Z a-z 0-9 . _ -", self.name))
        })?;
        validate_mount_path(&self.mount)?;
        if self.path.split('/').filter(|s| *s == ACCOUNT).count() > 1
            || (self.path.contains(ACCOUNT) && !self.has_account())
        {
            return Err(CoreError::InvalidInput("{account} may appear once, as a whole path segment".into()));
        }
        validate_secret_path(&self.path.replace(ACCOUNT, "account"))?;
        if self.inject.is_empty() || self.inject.len() > MAX_RECIPES {
            return Err(CoreError::InvalidInput(format!("a route needs 1-{MAX_RECIPES} injection recipes")));
        }
        self.inject.iter().try_for_each(Recipe::validate)?;
        let mut headers: Vec<String> = self.inject.iter().filter_map(Recipe::header).collect();
        let n = headers.len();
        headers.sort();
        headers.dedup();
        if headers.len() != n {
            return Err(CoreError::InvalidInput("two recipes set the same header".into()));
        }
        if self.inject.iter().filter(|r| matches!(r, Recipe::HmacSha256Query { .. })).count() > 1 {
            return Err(CoreError::InvalidInput("a route signs at most once".into()));
        }
        if self.timeout_secs == 0 || self.timeout_secs > 300 {
            return Err(CoreError::InvalidInput("timeout must be between 1s and 5m0s".into()));
        }
        Ok(())
    }
}

/// Creates or replaces a route, if its stored upstream is still the one the writer saw.
#[derive(Debug)]
struct PutProxyRoute {
    route: ProxyRoute,
    /// The upstream it replaces, as the writer saw it (`None`: a new route).
    previous_upstream: Option<String>,
}

#[async_trait]
impl Command for PutProxyRoute {
    type Reply = ();

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<(), CoreError> {
        let name = &self.route.name;
        let stored = tx.proxy_route(name).await?.map(|r| r.upstream);
        if stored != self.previous_upstream || !tx.put_proxy_route(&self.route, stored.is_some()).await? {
            return Err(CoreError::Conflict(format!("proxy route {name:?} changed meanwhile; try again")));
        }
        Ok(())
    }
}

/// Deletes a route.
#[derive(Debug)]
struct DeleteProxyRoute {
    name: String,
}

#[async_trait]
impl Command for DeleteProxyRoute {
    type Reply = ();

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<(), CoreError> {
        match tx.delete_proxy_route(&self.name).await? {
            true => Ok(()),
            false => Err(CoreError::NotFound(format!("proxy route {:?}", self.name))),
        }
    }
}

impl Keyward {
    /// Creates or replaces a route, with its audit entry in the same transaction. `previous` is
    /// the upstream the caller saw (`None`: the route did not exist); if the stored route has
    /// changed since, nothing is written (409), so the entry always names the upstream replaced.
    pub async fn put_proxy_route(
        &self,
        mut route: ProxyRoute,
        previous: Option<String>,
        audit: AuditEntry,
    ) -> Result<ProxyRoute, CoreError> {
        route.validate()?;
        let now = now_nanos();
        route.created_at = self.store.proxy_route(&route.name).await?.map_or(now, |r| r.created_at);
        route.updated_at = now;
        let reply =
            self.writer.submit(PutProxyRoute { route: route.clone(), previous_upstream: previous }, audit).await;
        self.routes.forget(&route.name);
        reply.map(|()| route)
    }

    /// A route by name, as read on every proxied call: a copy at most a second old (dropped at
    /// once when this process changes the route).
    pub async fn proxy_route(&self, name: &str) -> Result<ProxyRoute, CoreError> {
        self.routes
            .get(name, || self.store.proxy_route(name))
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("proxy route {name:?}")))
    }

    /// A route as stored now (no cached copy), if it exists.
    pub async fn stored_proxy_route(&self, name: &str) -> Result<Option<ProxyRoute>, CoreError> {
        Ok(self.store.proxy_route(name).await?)
    }

    /// Every route, by name.
    pub async fn proxy_routes(&self) -> Result<Vec<ProxyRoute>, CoreError> {
        Ok(self.store.proxy_routes().await?)
    }

    /// Deletes a route.
    pub async fn delete_proxy_route(&self, name: &str, audit: AuditEntry) -> Result<(), CoreError> {
        let reply = self.writer.submit(DeleteProxyRoute { name: name.to_owned() }, audit).await;
        self.routes.forget(name);
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipes_parse_and_print() {
        for s in [
            "bearer:api_key",
            "header:X-MBX-APIKEY={api_key}",
            "header:X-Auth=Token {id}:{secret}",
            "basic:user:password",
            "query:apiKey=key",
            "hmac-sha256-query:api_secret",
        ] {
            assert_eq!(Recipe::parse(s).unwrap().to_string(), s);
        }
        for bad in [
            "bearer",
            "oauth:x",
            "header:Host={k}",
            "header:Content-Length={k}",
            "header:X-A=static",
            "header:X-A={k",
            "header:Bad Name={k}",
            "basic:onlyuser",
            "query:signature=k",
            "query:a=",
            "bearer:",
        ] {
            assert!(Recipe::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(template_fields("{a}-{b}").unwrap(), vec!["a", "b"]);
    }

    #[test]
    fn account_paths() {
        let r = ProxyRoute {
            name: "binance".into(),
            upstream: "https://api.binance.com".into(),
            mount: "secret".into(),
            path: "users/{account}/binance".into(),
            inject: vec![Recipe::parse("hmac-sha256-query:api_secret").unwrap()],
            rate_limit: None,
            timeout_secs: 10,
            allow_insecure: false,
            created_at: 0,
            updated_at: 0,
        };
        r.validate().unwrap();
        assert_eq!(r.secret_path(Some("42")).unwrap(), "users/42/binance");
        for bad in ["..", "a/b", "", "x y", "%2e"] {
            assert!(r.secret_path(Some(bad)).is_err(), "{bad}");
        }
        assert!(r.secret_path(None).is_err());
        let twice = ProxyRoute { path: "{account}/{account}".into(), ..r.clone() };
        assert!(twice.validate().is_err());
        let partial = ProxyRoute { path: "u-{account}".into(), ..r };
        assert!(partial.validate().is_err());
    }
}
