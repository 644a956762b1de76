//! The operation table is the server: every route comes from it, every operation that takes a
//! token refuses a request without one (401 native, 403 Vault) and a token lacking its capability
//! (403) before its handler runs, and both refusals are audited. A route added outside the table,
//! or an operation whose handler forgot its check, fails here; so does an operation that takes no
//! token other than the probes, initialisation and the API document (DESIGN §8).
use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use common::{backends, TestServer, KEY_A};
use keyward_server::{operations, AuthClass, VaultOp};
use reqwest::Method;
use serde_json::{json, Value};

/// A concrete path for a route template.
fn concrete(template: &str) -> String {
    template
        .replace("{kv}", "secret")
        .replace("{approle}", "approle")
        .replace("{userpass}", "userpass")
        .replace("{jwt}", "jwt")
        .replace("{transit}", "transit")
        .replace("{mount}", "secret")
        .replace("{*path}", "t/x")
        .replace("{*rest}", "r")
        .replace("{name}", "n1")
        .replace("{accessor}", "acc_x")
        .replace("{id}", "6f1c0a52-7a3e-4b5b-9d4c-2f9e8a1b3c4d")
        .replace("{kind}", "plaintext")
}

/// `(operation, method, URL path, whether it is the Vault API)` for every route of the table.
fn routes() -> Vec<(&'static str, Method, String, bool)> {
    let mut out = Vec::new();
    for op in operations().iter().filter(|op| op.auth == AuthClass::Token) {
        if let Some(r) = &op.native {
            out.push((op.id, r.method.clone().unwrap_or(Method::GET), concrete(r.path), false));
        }
        if let Some(r) = &op.vault {
            let method = match r.ops[0] {
                VaultOp::Read => Method::GET,
                VaultOp::List => Method::from_bytes(b"LIST").unwrap(),
                VaultOp::Write => Method::POST,
                VaultOp::Patch => Method::PATCH,
                VaultOp::Delete => Method::DELETE,
            };
            out.push((op.id, method, format!("/v1/{}", concrete(r.path)), true));
        }
    }
    out
}

#[tokio::test]
async fn every_operation_authenticates_and_authorises_before_it_runs() {
    let open: BTreeSet<&str> = operations().iter().filter(|op| op.auth == AuthClass::None).map(|op| op.id).collect();
    let expected: BTreeSet<&str> = [
        "sys.health",
        "sys.seal-status",
        "sys.init-status",
        "sys.init",
        "api.openapi",
        "api.openapi-vault",
        "ui.assets.css",
        "ui.assets.js",
        "ui.login-page",
    ]
    .into_iter()
    .collect();
    assert_eq!(open, expected, "only these operations may take no token (DESIGN §8)");
    // Logins take credentials instead of a token, and are nothing else.
    let logins: Vec<&str> = operations().iter().filter(|op| op.auth == AuthClass::Login).map(|op| op.id).collect();
    assert_eq!(
        logins,
        ["approle.login", "userpass.login", "jwt.login", "ui.login", "ui.login-token"],
        "only login operations are of class login"
    );
    // Sessions are the UI's, and the UI is sessions (besides its login page, assets and logins).
    for op in operations() {
        let ui = op.native.as_ref().is_some_and(|r| r.path.starts_with("/ui"));
        assert_eq!(
            op.auth == AuthClass::Session,
            ui && ![AuthClass::None, AuthClass::Login].contains(&op.auth),
            "{}: class session is for /ui pages only",
            op.id
        );
        assert!(op.auth != AuthClass::Session || op.vault.is_none(), "{}", op.id);
    }
    for db in backends().await {
        let srv = TestServer::start(&db, KEY_A).await;
        // The login-method routes exist once a method is enabled.
        for kind in ["approle", "userpass", "jwt"] {
            let (s, b) = srv.vault(&srv.token, "POST", &format!("sys/auth/{kind}"), Some(json!({"type": kind}))).await;
            assert_eq!(s, 204, "{b}");
        }
        // A token that holds nothing: no `default` policy, and a policy that only denies.
        srv.policy("nothing", "[[rules]]\npath = \"nothing/here\"\ncapabilities = [\"deny\"]\n").await;
        let (s, b) = srv
            .json(Method::POST, "/api/v1/tokens", Some(json!({"policies": ["nothing"], "no_default_policy": true})))
            .await;
        assert_eq!(s, 201, "{b}");
        let nothing = b["token"].as_str().unwrap().to_owned();
        let mut sent: BTreeMap<String, (u16, String)> = BTreeMap::new();
        for (id, method, path, vault) in routes() {
            for (who, token) in [("no token", None), ("a token lacking the capability", Some(nothing.as_str()))] {
                let request_id = format!("optest-{}", sent.len());
                let mut req = srv.http.request(method.clone(), format!("{}{path}", srv.base));
                req = req.header("x-request-id", &request_id);
                if let Some(t) = token {
                    req = if vault { req.header("x-vault-token", t) } else { req.bearer_auth(t) };
                }
                if [Method::POST, Method::PUT, Method::PATCH].contains(&method) {
                    let ct = if method == Method::PATCH && vault {
                        "application/merge-patch+json"
                    } else {
                        "application/json"
                    };
                    req = req.header("content-type", ct).body("{}");
                }
                let status = req.send().await.unwrap().status().as_u16();
                let want = match (token, vault) {
                    (None, false) => 401,
                    _ => 403,
                };
                assert_eq!(status, want, "{}: {id} ({method} {path}) with {who}", db.label);
                sent.insert(request_id, (status, format!("{id} with {who}")));
            }
        }
        // Every session page refuses a request without a session (to the login page) and a session
        // lacking the capability (403) before its handler runs.
        let session = ui_session(&srv, &nothing).await;
        let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        for op in operations().iter().filter(|op| op.auth == AuthClass::Session) {
            let r = op.native.as_ref().unwrap();
            let method = r.method.clone().unwrap_or(Method::GET);
            if op.id == "ui.logout" {
                continue; // any session may end itself
            }
            for (who, cookie) in [("no session", None), ("a session lacking the capability", Some(&session))] {
                let request_id = format!("optest-{}", sent.len());
                let mut req = browser.request(method.clone(), format!("{}{}", srv.base, concrete(r.path)));
                req = req.header("x-request-id", &request_id);
                if let Some((cookie, csrf)) = cookie {
                    req = req.header("cookie", format!("kw_session={cookie}")).header("x-csrf-token", csrf);
                }
                if method == Method::POST {
                    req = req.header("content-type", "application/json").body("{}");
                }
                let resp = req.send().await.unwrap();
                let status = resp.status().as_u16();
                let want = match (cookie.is_some(), r.path.starts_with("/ui/api/")) {
                    (false, true) => 401,
                    (false, false) => 303,
                    (true, _) => 403,
                };
                assert_eq!(status, want, "{}: {} ({method} {}) with {who}", db.label, op.id, r.path);
                sent.insert(request_id, (status, format!("{} with {who}", op.id)));
            }
        }
        // Every refusal is on record, with its status.
        // (A page without a session answers 303 to the login page: its entry is a failed
        // authentication with that status.)
        let mut recorded: BTreeMap<String, u64> = BTreeMap::new();
        for filter in ["failed=true", "operation=auth.failed"] {
            let (s, page) = srv.json(Method::GET, &format!("/api/v1/audit?{filter}&limit=1000"), None).await;
            assert_eq!(s, 200);
            recorded.extend(
                page["entries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| (e["request_id"].as_str().unwrap().to_owned(), e["status"].as_u64().unwrap())),
            );
        }
        for (request_id, (status, what)) in &sent {
            assert_eq!(recorded.get(request_id), Some(&u64::from(*status)), "{}: {what} was not audited", db.label);
        }
        srv.stop().await;
    }
}

/// A UI session of `token` (a token login), with its CSRF token.
async fn ui_session(srv: &TestServer, token: &str) -> (String, String) {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let resp = http.post(format!("{}/ui/session/token", srv.base)).form(&[("token", token)]).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap();
    let cookie = cookie.strip_prefix("kw_session=").unwrap().to_owned();
    let resp = http.get(format!("{}/ui/login", srv.base)).header("cookie", format!("kw_session={cookie}")).send();
    drop(resp.await.unwrap());
    // The CSRF token is a digest of the session: a test computes it as the server does.
    let digest = ring::digest::digest(&ring::digest::SHA256, format!("keyward/ui/csrf\0{cookie}").as_bytes());
    use base64::Engine;
    let csrf = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref());
    (cookie, csrf)
}

/// `docs/capabilities.md` is the operation table, as documentation.
#[test]
fn the_capability_table_in_the_docs_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/capabilities.md");
    let table = keyward_server::capability_table();
    if std::env::var("KEYWARD_WRITE_DOCS").as_deref() == Ok("1") {
        std::fs::write(path, &table).unwrap();
    }
    let doc = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        doc == table,
        "docs/capabilities.md is not the operation table: run `KEYWARD_WRITE_DOCS=1 cargo test -p keyward-server \
         --test server operations` and commit it"
    );
    let json: Value = serde_json::to_value(operations().iter().map(|o| o.id).collect::<Vec<_>>()).unwrap();
    assert!(json.as_array().unwrap().len() > 70);
}

/// Every route of the table is in its OpenAPI document with an id, a schema for each path
/// parameter and its error answers (401 native / 403 Vault for a missing token, 429, 503, 413 for
/// a body): a route added without its documentation fails here.
#[test]
fn every_operation_is_documented_completely() {
    let native = serde_json::to_value(keyward_server::native_document()).unwrap();
    let vault = serde_json::to_value(keyward_server::vault_document()).unwrap();
    let mut checked = 0;
    for op in operations() {
        let mut entries: Vec<(&Value, String, Vec<&str>, &str)> = Vec::new();
        // The UI's pages are HTML for browsers, not part of the API documents.
        if let Some(r) = op.native.as_ref().filter(|r| !r.path.starts_with("/ui")) {
            let methods = match &r.method {
                Some(m) => vec![if *m == Method::GET {
                    "get"
                } else if *m == Method::POST {
                    "post"
                } else if *m == Method::PUT {
                    "put"
                } else if *m == Method::PATCH {
                    "patch"
                } else {
                    "delete"
                }],
                None => vec!["get", "post", "put", "patch", "delete"],
            };
            entries.push((&native, r.path.replace("{*", "{"), methods, "401"));
        }
        if let Some(r) = &op.vault {
            let path =
                format!("/v1/{}", r.path.replace("{kv}", "{mount}").replace("{transit}", "{mount}").replace("{*", "{"));
            let methods = r
                .ops
                .iter()
                .flat_map(|o| match o {
                    VaultOp::Read | VaultOp::List => vec!["get"],
                    VaultOp::Write => vec!["post", "put"],
                    VaultOp::Patch => vec!["patch"],
                    VaultOp::Delete => vec!["delete"],
                })
                .collect();
            entries.push((&vault, path, methods, "403"));
        }
        for (doc, path, methods, unauthenticated) in entries {
            for method in methods {
                let d = &doc["paths"][&path][method];
                assert!(d.is_object(), "{} {method} {path} is not documented", op.id);
                assert!(
                    d["operationId"].as_str().is_some_and(|id| id.contains(op.id)),
                    "{} {method} {path}: id",
                    op.id
                );
                let responses = d["responses"].as_object().unwrap();
                for param in path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))) {
                    let p = d["parameters"]
                        .as_array()
                        .and_then(|ps| ps.iter().find(|p| p["name"] == param && p["in"] == "path"));
                    assert!(
                        p.is_some_and(|p| p["schema"].is_object()),
                        "{} {method} {path}: {{{param}}} has no schema",
                        op.id
                    );
                }
                if responses.contains_key("default") {
                    checked += 1;
                    continue;
                }
                let mut needed = vec!["400", "429", "503"];
                if op.auth == AuthClass::Token {
                    needed.extend([unauthenticated, "403"]);
                }
                if ["post", "put", "patch"].contains(&method) {
                    needed.push("413");
                }
                for status in needed {
                    assert!(responses.contains_key(status), "{} {method} {path} does not document {status}", op.id);
                }
                assert!(responses.keys().any(|s| s.starts_with('2')), "{} {method} {path}: no success answer", op.id);
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "{checked} documented operations checked");
}
