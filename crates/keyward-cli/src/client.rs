//! The HTTP client of the native API, in the wire types and paths of `keyward-api`.
use anyhow::{anyhow, bail, Context, Result};
use keyward_api::paths::{self, fill};
use keyward_api::wire::{
    ArchiveReport, ArchiveRequest, AuditPage, AuditVerifyReport, DekRotated, DiffOut, DoctorQuery, DoctorReport,
    History, InitResponse, KeyJob, KeyStatus, MigrateRequest, MountCreateRequest, MountDeleted, MountInfo, MountList,
    PolicyList, PolicyOut, PolicyWriteRequest, ProxyRouteList, ProxyRouteOut, ProxyRouteRequest, Pruned, ReadQuery,
    Revoked, Rewrapped, RollbackRequest, SecretList, SecretView, SecretWriteRequest, StaleOut, StaleQuery, TokenBody,
    TokenCreateRequest, TokenCreated, TokenInfo, TokenList, WriteResult,
};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

/// A client bound to one server and (optionally) one token.
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<SecretString>,
}

impl Client {
    /// A client for `addr`, with the token from KEYWARD_TOKEN if set.
    pub fn new(addr: &str) -> Result<Self> {
        let token = match std::env::var("KEYWARD_TOKEN").ok().filter(|t| !t.is_empty()) {
            Some(t) => Some(SecretString::from(t)),
            None => crate::config::stored_token()?,
        };
        let base = addr.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("KEYWARD_ADDR must start with http:// or https:// (got {base:?})");
        }
        let mut builder = reqwest::Client::builder().user_agent(concat!("keyward-cli/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = std::env::var_os("KEYWARD_CACERT").filter(|p| !p.is_empty()) {
            let pem = std::fs::read(&path)
                .with_context(|| format!("cannot read KEYWARD_CACERT {}", path.to_string_lossy()))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .with_context(|| format!("KEYWARD_CACERT {} is not a PEM certificate", path.to_string_lossy()))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().context("cannot build the HTTP client")?;
        Ok(Self { http, base, token })
    }

    /// A client for `addr` with an explicit token (`login` checks a token before storing it).
    pub fn with_token(addr: &str, token: SecretString) -> Result<Self> {
        let mut c = Self::new(addr)?;
        c.token = Some(token);
        Ok(c)
    }

    /// The server address.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.expose_secret());
        }
        req
    }

    async fn send<T: DeserializeOwned>(&self, req: RequestBuilder, needs_token: bool) -> Result<T> {
        if needs_token && self.token.is_none() {
            bail!("no token: set KEYWARD_TOKEN (the root token printed by `keyward operator init` or `server --dev`)");
        }
        let resp =
            req.send().await.map_err(|e| anyhow!("cannot reach keyward at {}: {}", self.base, root_cause(&e)))?;
        decode(resp).await
    }

    /// `PUT /v1/sys/init`.
    pub async fn init(&self) -> Result<InitResponse> {
        let resp = self
            .http
            .put(format!("{}/v1/sys/init", self.base))
            .json(&serde_json::json!({}))
            .send()
            .await
            .map_err(|e| anyhow!("cannot reach keyward at {}: {}", self.base, root_cause(&e)))?;
        if resp.status() == StatusCode::BAD_REQUEST {
            bail!("keyward is already initialized");
        }
        decode(resp).await
    }

    /// `GET /api/v1/mounts`.
    pub async fn mounts(&self) -> Result<MountList> {
        self.send(self.request(Method::GET, paths::MOUNTS), true).await
    }

    /// `POST /api/v1/mounts`.
    pub async fn create_mount(&self, path: &str, kind: &str, rotate_after: Option<String>) -> Result<MountInfo> {
        let body = MountCreateRequest { path: path.to_owned(), kind: kind.to_owned(), rotate_after };
        self.send(self.request(Method::POST, paths::MOUNTS).json(&body), true).await
    }

    /// `DELETE /api/v1/mounts/{mount}`.
    pub async fn delete_mount(&self, path: &str) -> Result<MountDeleted> {
        self.send(self.request(Method::DELETE, &fill(paths::MOUNT, &[path])), true).await
    }

    fn secret_url(template: &str, mount: &str, path: &str) -> Result<String> {
        // Checked here too: an HTTP client would silently resolve `..` before sending.
        keyward_core::validate_mount_path(mount)?;
        keyward_core::validate_secret_path(path)?;
        Ok(fill(template, &[mount, path]))
    }

    /// `PATCH …/secrets/{path}`.
    pub async fn write(&self, mount: &str, path: &str, body: &SecretWriteRequest) -> Result<WriteResult> {
        self.send(self.request(Method::PATCH, &Self::secret_url(paths::SECRET, mount, path)?).json(body), true).await
    }

    /// `GET …/secrets/{path}` with `?version=&reveal=&field=&export=`.
    pub async fn read(&self, mount: &str, path: &str, query: &ReadQuery) -> Result<SecretView> {
        self.send(self.request(Method::GET, &Self::secret_url(paths::SECRET, mount, path)?).query(query), true).await
    }

    /// `DELETE …/secrets/{path}`.
    pub async fn delete_secret(&self, mount: &str, path: &str) -> Result<()> {
        let _: serde_json::Value =
            self.send(self.request(Method::DELETE, &Self::secret_url(paths::SECRET, mount, path)?), true).await?;
        Ok(())
    }

    /// `GET …/secrets` (one page).
    pub async fn list(&self, mount: &str, after: Option<&str>) -> Result<SecretList> {
        let mut query = vec![("limit", "1000".to_owned())];
        if let Some(a) = after {
            query.push(("after", a.to_owned()));
        }
        let url = fill(paths::SECRETS, &[mount]);
        self.send(self.request(Method::GET, &url).query(&query), true).await
    }

    /// `GET …/history/{path}`.
    pub async fn history(&self, mount: &str, path: &str) -> Result<History> {
        self.send(self.request(Method::GET, &Self::secret_url(paths::HISTORY, mount, path)?), true).await
    }

    /// `POST …/rollback/{path}`.
    pub async fn rollback(&self, mount: &str, path: &str, version: u64) -> Result<WriteResult> {
        let req = self
            .request(Method::POST, &Self::secret_url(paths::ROLLBACK, mount, path)?)
            .json(&RollbackRequest { version });
        self.send(req, true).await
    }
}

impl Client {
    /// `POST /api/v1/tokens`.
    pub async fn create_token(&self, req: &TokenCreateRequest) -> Result<TokenCreated> {
        self.send(self.request(Method::POST, paths::TOKENS).json(req), true).await
    }

    /// `GET /api/v1/tokens/self`.
    pub async fn lookup_self(&self) -> Result<TokenInfo> {
        self.send(self.request(Method::GET, paths::TOKEN_SELF), true).await
    }

    /// `POST /api/v1/tokens/lookup`.
    pub async fn lookup_token(&self, token: &str) -> Result<TokenInfo> {
        let body = TokenBody { token: token.to_owned() };
        self.send(self.request(Method::POST, paths::TOKEN_LOOKUP).json(&body), true).await
    }

    /// `GET /api/v1/tokens/accessors/{accessor}`.
    pub async fn lookup_accessor(&self, accessor: &str) -> Result<TokenInfo> {
        let url = fill(paths::TOKEN_ACCESSOR, &[accessor]);
        self.send(self.request(Method::GET, &url), true).await
    }

    /// `POST /api/v1/tokens/self/revoke`.
    pub async fn revoke_self(&self) -> Result<Revoked> {
        self.send(self.request(Method::POST, paths::TOKEN_SELF_REVOKE), true).await
    }

    /// `POST /api/v1/tokens/revoke`.
    pub async fn revoke_token(&self, token: &str) -> Result<Revoked> {
        let body = TokenBody { token: token.to_owned() };
        self.send(self.request(Method::POST, paths::TOKEN_REVOKE).json(&body), true).await
    }

    /// `DELETE /api/v1/tokens/accessors/{accessor}`.
    pub async fn revoke_accessor(&self, accessor: &str) -> Result<Revoked> {
        let url = fill(paths::TOKEN_ACCESSOR, &[accessor]);
        self.send(self.request(Method::DELETE, &url), true).await
    }

    /// `GET /api/v1/tokens` (one page).
    pub async fn list_tokens(&self, after: Option<&str>) -> Result<TokenList> {
        let mut query = vec![("limit", "1000".to_owned())];
        if let Some(a) = after {
            query.push(("after", a.to_owned()));
        }
        self.send(self.request(Method::GET, paths::TOKENS).query(&query), true).await
    }

    /// `GET /api/v1/policies`.
    pub async fn list_policies(&self) -> Result<PolicyList> {
        self.send(self.request(Method::GET, paths::POLICIES), true).await
    }

    /// `GET /api/v1/policies/{name}`.
    pub async fn read_policy(&self, name: &str) -> Result<PolicyOut> {
        self.send(self.request(Method::GET, &fill(paths::POLICY, &[name])), true).await
    }

    /// `PUT /api/v1/policies/{name}` with a TOML/JSON document.
    pub async fn write_policy(&self, name: &str, document: String) -> Result<PolicyOut> {
        let body = PolicyWriteRequest { rules: None, document: Some(document) };
        self.send(self.request(Method::PUT, &fill(paths::POLICY, &[name])).json(&body), true).await
    }

    /// `DELETE /api/v1/policies/{name}`.
    pub async fn delete_policy(&self, name: &str) -> Result<()> {
        let url = fill(paths::POLICY, &[name]);
        let _: serde_json::Value = self.send(self.request(Method::DELETE, &url), true).await?;
        Ok(())
    }
}

impl Client {
    /// `GET /api/v1/mounts/{mount}/diff`.
    pub async fn diff(&self, mount: &str, a: &str, b: &str) -> Result<DiffOut> {
        keyward_core::validate_mount_path(mount)?;
        let url = fill(paths::DIFF, &[mount]);
        self.send(self.request(Method::GET, &url).query(&[("a", a), ("b", b)]), true).await
    }

    /// `PUT /api/v1/proxy-routes/{name}`.
    pub async fn put_proxy_route(&self, name: &str, body: &ProxyRouteRequest) -> Result<ProxyRouteOut> {
        let url = fill(paths::PROXY_ROUTE, &[name]);
        self.send(self.request(Method::PUT, &url).json(body), true).await
    }

    /// `GET /api/v1/proxy-routes/{name}`.
    pub async fn proxy_route(&self, name: &str) -> Result<ProxyRouteOut> {
        self.send(self.request(Method::GET, &fill(paths::PROXY_ROUTE, &[name])), true).await
    }

    /// `GET /api/v1/proxy-routes`.
    pub async fn proxy_routes(&self) -> Result<ProxyRouteList> {
        self.send(self.request(Method::GET, paths::PROXY_ROUTES), true).await
    }

    /// `DELETE /api/v1/proxy-routes/{name}`.
    pub async fn delete_proxy_route(&self, name: &str) -> Result<()> {
        let url = fill(paths::PROXY_ROUTE, &[name]);
        let _: serde_json::Value = self.send(self.request(Method::DELETE, &url), true).await?;
        Ok(())
    }
}

impl Client {
    /// `GET /api/v1/audit`.
    pub async fn audit(&self, query: &[(&str, String)]) -> Result<AuditPage> {
        self.send(self.request(Method::GET, paths::AUDIT).query(query), true).await
    }

    /// `GET /api/v1/keys`.
    pub async fn key_status(&self) -> Result<KeyStatus> {
        self.send(self.request(Method::GET, paths::KEYS), true).await
    }

    /// `POST /api/v1/mounts/{mount}/keys/rotate`.
    pub async fn rotate_dek(&self, mount: &str) -> Result<DekRotated> {
        self.send(self.request(Method::POST, &fill(paths::KEYS_ROTATE, &[mount])), true).await
    }

    /// `POST /api/v1/keys/rewrap`.
    pub async fn rewrap(&self) -> Result<Rewrapped> {
        self.send(self.request(Method::POST, paths::KEYS_REWRAP), true).await
    }

    /// `POST /api/v1/mounts/{mount}/keys/prune`.
    pub async fn prune_deks(&self, mount: &str) -> Result<Pruned> {
        self.send(self.request(Method::POST, &fill(paths::KEYS_PRUNE, &[mount])), true).await
    }

    /// `GET /api/v1/stale`.
    pub async fn stale(&self, query: &StaleQuery) -> Result<Vec<StaleOut>> {
        self.send(self.request(Method::GET, paths::STALE).query(query), true).await
    }

    /// `GET /api/v1/doctor`.
    pub async fn doctor(&self, verify_all: bool) -> Result<DoctorReport> {
        let query = DoctorQuery { verify_all: Some(verify_all) };
        self.send(self.request(Method::GET, paths::DOCTOR).query(&query), true).await
    }

    /// `POST /api/v1/keys/migrate`.
    pub async fn start_migration(&self, mount: Option<String>) -> Result<KeyJob> {
        let body = MigrateRequest { mount };
        self.send(self.request(Method::POST, paths::KEYS_MIGRATE).json(&body), true).await
    }

    /// `GET /api/v1/keys/jobs/{id}`.
    pub async fn key_job(&self, id: &str) -> Result<KeyJob> {
        self.send(self.request(Method::GET, &fill(paths::KEY_JOB, &[id])), true).await
    }

    /// `GET /api/v1/keys/jobs`.
    pub async fn key_jobs(&self) -> Result<Vec<KeyJob>> {
        self.send(self.request(Method::GET, paths::KEY_JOBS), true).await
    }

    /// `POST /api/v1/backup`: the response, to be streamed into a file.
    pub async fn backup(&self) -> Result<Response> {
        if self.token.is_none() {
            bail!("no token: set KEYWARD_TOKEN (a token with sudo on sys/backup)");
        }
        let resp = self
            .request(Method::POST, paths::BACKUP)
            .send()
            .await
            .map_err(|e| anyhow!("cannot reach keyward at {}: {}", self.base, root_cause(&e)))?;
        if !resp.status().is_success() {
            let _: serde_json::Value = decode(resp).await?;
            bail!("the server refused the backup");
        }
        Ok(resp)
    }

    /// `GET /api/v1/audit/verify`; `archive`: also check an archive directory (`""`: the
    /// server's own).
    pub async fn audit_verify(
        &self,
        anchor: Option<(u64, String)>,
        archive: Option<&str>,
    ) -> Result<AuditVerifyReport> {
        let mut query: Vec<(&str, String)> = vec![];
        if let Some((seq, hash)) = anchor {
            query.push(("anchor_seq", seq.to_string()));
            query.push(("anchor_hash", hash));
        }
        match archive {
            Some("") => query.push(("archive", "true".into())),
            Some(dir) => query.push(("archive_dir", dir.to_owned())),
            None => {}
        }
        self.send(self.request(Method::GET, paths::AUDIT_VERIFY).query(&query), true).await
    }

    /// A request to the Vault-compatible API, where login methods live (`/v1/` + `path`, made
    /// with [`fill`]); its JSON answer (`null` for 204). Logins need no token.
    pub async fn vault(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        needs_token: bool,
    ) -> Result<serde_json::Value> {
        let mut req = self.request(method, &format!("/v1/{path}"));
        if let Some(b) = body {
            req = req.json(b);
        }
        self.send(req, needs_token).await
    }

    /// A Vault API write whose answer is wrapped for `ttl` (`X-Vault-Wrap-TTL`).
    pub async fn vault_wrapped(&self, path: &str, body: &serde_json::Value, ttl: &str) -> Result<serde_json::Value> {
        let req = self.request(Method::POST, &format!("/v1/{path}")).header("x-vault-wrap-ttl", ttl).json(body);
        self.send(req, true).await
    }

    /// `POST /api/v1/audit/archive`.
    pub async fn audit_archive(&self, body: &ArchiveRequest) -> Result<ArchiveReport> {
        self.send(self.request(Method::POST, paths::AUDIT_ARCHIVE).json(body), true).await
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Turns a response into a value, or a one-line error built from the server's JSON error.
async fn decode<T: DeserializeOwned>(resp: Response) -> Result<T> {
    let status = resp.status();
    let bytes = resp.bytes().await.context("the server closed the connection")?;
    if status.is_success() {
        let body: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
        return serde_json::from_slice(body).map_err(|e| anyhow!("unexpected answer from the server: {e}"));
    }
    // Read loosely: a newer server may answer with a code this client does not know.
    let message = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(v) => v["error"]["message"]
            .as_str()
            .or_else(|| v["errors"].get(0).and_then(|e| e.as_str()))
            .unwrap_or("")
            .to_owned(),
        Err(_) => String::new(),
    };
    let hint = match status {
        StatusCode::UNAUTHORIZED => " (check KEYWARD_TOKEN)",
        _ => "",
    };
    if message.is_empty() {
        bail!("server answered {status}{hint}");
    }
    bail!("{message}{hint}")
}
