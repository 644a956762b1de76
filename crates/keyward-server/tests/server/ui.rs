//! The web UI over HTTP, on both engines: sessions are `ui-session` tokens in an HttpOnly,
//! SameSite=Strict cookie; every page carries the strict CSP and no-store; a change without the
//! CSRF token or from another site is refused and changes nothing; a reveal is a pipeline read
//! with exactly one audit entry, refused to a session without `read`; logout ends the session
//! (and, for a token login, only the child). The browser tests (`compat/ui`) drive the same pages
//! in Chromium.
use crate::common;

use common::{backends, TestServer, KEY_A};
use reqwest::Method;
use serde_json::{json, Value};

/// A browser-like client of one server: no redirects followed, the session cookie kept by hand.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

impl Browser {
    fn new(srv: &TestServer) -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { http, base: srv.base.clone(), cookie: String::new() }
    }

    /// Posts a form (no session needed); keeps a session cookie the answer sets.
    async fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let resp = self.with_cookie(self.http.post(format!("{}{path}", self.base)).form(form)).send().await.unwrap();
        if let Some(c) = resp.headers().get("set-cookie").and_then(|v| v.to_str().ok()) {
            let value = c.split(';').next().unwrap().strip_prefix("kw_session=").unwrap();
            value.clone_into(&mut self.cookie);
        }
        resp
    }

    fn with_cookie(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.cookie.is_empty() {
            true => req,
            false => req.header("cookie", format!("kw_session={}", self.cookie)),
        }
    }

    async fn get(&self, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
        let resp = self.with_cookie(self.http.get(format!("{}{path}", self.base))).send().await.unwrap();
        let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
        (status, headers, resp.text().await.unwrap())
    }

    /// The CSRF token of the session, from a page's `<meta>`.
    async fn csrf(&self) -> String {
        let (s, _, page) = self.get("/ui").await;
        assert_eq!(s, 200, "{page}");
        let needle = "name=\"csrf-token\" content=\"";
        let at = page.find(needle).unwrap() + needle.len();
        page[at..at + page[at..].find('"').unwrap()].to_owned()
    }

    async fn reveal(&self, path: &str, field: &str, csrf: Option<&str>) -> (u16, Value) {
        let mut req = self
            .with_cookie(self.http.post(format!("{}/ui/api/reveal/{path}", self.base)))
            .json(&json!({ "field": field }));
        if let Some(c) = csrf {
            req = req.header("x-csrf-token", c);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
    }
}

async fn token_session(srv: &TestServer, token: &str) -> Browser {
    let mut b = Browser::new(srv);
    let resp = b.post_form("/ui/session/token", &[("token", token)]).await;
    assert_eq!(resp.status().as_u16(), 303);
    assert!(!b.cookie.is_empty());
    b
}

async fn audit_entries(srv: &TestServer, operation: &str) -> Vec<Value> {
    let (s, page) = srv.json(Method::GET, &format!("/api/v1/audit?operation={operation}&limit=1000"), None).await;
    assert_eq!(s, 200);
    page["entries"].as_array().unwrap().clone()
}

#[tokio::test]
async fn pages_are_session_operations_under_a_strict_policy() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start(&db, KEY_A).await;
        srv.set("secret", "production", json!({"STRIPE_KEY": "sk_live_ui_canary_0123456789abcd"})).await;
        let anon = Browser::new(&srv);
        // The login page and assets need nothing; every page has the policy and no-store.
        let (s, h, page) = anon.get("/ui/login").await;
        assert_eq!(s, 200, "{label}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(h["cache-control"], "no-store");
        assert_eq!(h["x-frame-options"], "DENY");
        assert!(!page.contains("<script>") && page.contains("src=\"/ui/assets/ui.js\""), "no inline script");
        // A page that does not exist is a page too, under the same policy.
        let (s, h, page) = anon.get("/ui/no-such-page").await;
        assert_eq!(s, 404, "{label}");
        assert!(h["content-type"].to_str().unwrap().starts_with("text/html") && page.contains("no such route"));
        assert!(h["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
        // Without a session a page leads to the login page.
        let (s, h, _) = anon.get("/ui/env/secret/production").await;
        assert_eq!((s, h["location"].to_str().unwrap()), (303, "/ui/login?expired=1"), "{label}");
        assert!(h["set-cookie"].to_str().unwrap().contains("Max-Age=0"), "{label}: a dead cookie is kept");
        // An API token pasted into the cookie is not a session; a session is not an API token.
        let mut pasted = Browser::new(&srv);
        pasted.cookie.clone_from(&srv.token);
        assert_eq!(pasted.get("/ui").await.0, 303, "{label}: an API token is not a session");
        let b = token_session(&srv, &srv.token).await;
        let (s, h, page) = b.get("/ui/env/secret/production").await;
        assert_eq!(s, 200, "{label}: {page}");
        assert!(h["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
        assert!(page.contains("STRIPE_KEY") && !page.contains("ui_canary"), "{label}: plaintext in the page");
        let (s, body) = srv.json_as(&b.cookie, Method::GET, "/api/v1/mounts/secret/secrets/production", None).await;
        assert_eq!(s, 403, "{label}: a session used as a bearer token: {body}");
        srv.stop().await;
    }
}

#[tokio::test]
async fn a_reveal_is_one_audited_read_and_changes_need_csrf_from_this_origin() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start(&db, KEY_A).await;
        srv.set("secret", "production", json!({"STRIPE_KEY": "sk_live_ui_canary_0123456789abcd"})).await;
        let b = token_session(&srv, &srv.token).await;
        let csrf = b.csrf().await;
        // A reveal without the CSRF header is refused; with it, one entry names the field.
        assert_eq!(b.reveal("secret/production", "STRIPE_KEY", None).await.0, 403, "{label}");
        let before = audit_entries(&srv, "ui.secrets.reveal").await.iter().filter(|e| e["status"] == 200).count();
        let (s, v) = b.reveal("secret/production", "STRIPE_KEY", Some(&csrf)).await;
        assert_eq!((s, v["value"].as_str()), (200, Some("sk_live_ui_canary_0123456789abcd")), "{label}: {v}");
        let entries = audit_entries(&srv, "ui.secrets.reveal").await;
        let ok: Vec<&Value> = entries.iter().filter(|e| e["status"] == 200).collect();
        assert_eq!(ok.len(), before + 1, "{label}: exactly one entry per reveal");
        assert_eq!(ok.last().unwrap()["fields"], json!(["STRIPE_KEY"]));
        assert!(!serde_json::to_string(&entries).unwrap().contains("ui_canary"), "{label}: a value in the log");

        // A change without the token, or sent from another site, changes nothing.
        let set = |c: Option<&str>| {
            let mut form = vec![("name", "NEW_KEY"), ("value", "new-value-1")];
            if let Some(c) = c {
                form.push(("csrf", c));
            }
            b.with_cookie(b.http.post(format!("{}/ui/set/secret/production", b.base)).form(&form))
        };
        assert_eq!(set(None).send().await.unwrap().status(), 403, "{label}: no CSRF token");
        let cross = set(Some(&csrf)).header("sec-fetch-site", "cross-site").send().await.unwrap();
        assert_eq!(cross.status(), 403, "{label}: Sec-Fetch-Site cross-site");
        let origin = set(Some(&csrf)).header("origin", "https://evil.example").send().await.unwrap();
        assert_eq!(origin.status(), 403, "{label}: a foreign Origin");
        assert!(!srv.reveal_map("secret", "production").await.contains_key("NEW_KEY"), "{label}: it was written");
        let ok = set(Some(&csrf)).header("origin", b.base.clone()).send().await.unwrap();
        assert_eq!(ok.status(), 303, "{label}");
        assert_eq!(srv.reveal_map("secret", "production").await["NEW_KEY"], "new-value-1");
        // One entry per change, committed with it (the form's 303 does not add a second), and one
        // per refusal.
        let sets = audit_entries(&srv, "ui.secrets.set").await;
        assert_eq!(sets.iter().filter(|e| e["status"].as_u64() < Some(400)).count(), 1, "{label}: {sets:?}");
        assert_eq!(sets.iter().filter(|e| e["status"] == 403).count(), 3, "{label}: {sets:?}");
        srv.stop().await;
    }
}

#[tokio::test]
async fn a_session_without_read_sees_masks_and_cannot_forge_a_reveal() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start(&db, KEY_A).await;
        srv.set("secret", "production", json!({"STRIPE_KEY": "sk_live_ui_canary_0123456789abcd"})).await;
        srv.policy("lister", "[[rules]]\npath = \"secret/*\"\ncapabilities = [\"list\"]\n").await;
        let (s, b) = srv.json(Method::POST, "/api/v1/mounts", Some(json!({"path": "other", "kind": "kv"}))).await;
        assert_eq!(s, 201, "{b}");
        let lister = srv.token_with(&["lister"]).await;
        let b = token_session(&srv, &lister).await;
        let (s, _, projects) = b.get("/ui").await;
        assert!(s == 200 && projects.contains("href=\"/ui/p/secret\""), "{label}: {projects}");
        assert!(!projects.contains("/ui/p/other"), "{label}: a project the session cannot list is shown");
        let (s, _, page) = b.get("/ui/env/secret/production").await;
        assert_eq!(s, 200, "{label}: {page}");
        assert!(page.contains("STRIPE_KEY") && !page.contains("class=\"reveal"), "{label}: a reveal button shown");
        let csrf = b.csrf().await;
        let (s, body) = b.reveal("secret/production", "STRIPE_KEY", Some(&csrf)).await;
        assert_eq!(s, 403, "{label}: {body}");
        assert!(!body.to_string().contains("ui_canary"));
        let refused = audit_entries(&srv, "ui.secrets.reveal").await;
        assert!(refused.iter().any(|e| e["status"] == 403), "{label}: the refusal is on record");
        // Administration pages need sudo.
        assert_eq!(b.get("/ui/tokens").await.0, 403, "{label}");
        srv.stop().await;
    }
}

#[tokio::test]
async fn password_logins_enrol_totp_and_logout_ends_only_the_session() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start_with(&db, KEY_A, |o| o.guard.lockout_failures = 1000).await;
        srv.set("secret", "production", json!({"K": "v"})).await;
        srv.policy("prod-read", "[[rules]]\npath = \"secret/production\"\ncapabilities = [\"read\"]\n").await;
        let root = srv.token.clone();
        assert_eq!(srv.vault(&root, "POST", "sys/auth/userpass", Some(json!({"type": "userpass"}))).await.0, 204);
        let user = json!({"password": "correct horse battery", "token_policies": "prod-read"});
        assert_eq!(srv.vault(&root, "POST", "auth/userpass/users/alice", Some(user)).await.0, 204);

        let admin = token_session(&srv, &root).await;
        let (s, _, access) = admin.get("/ui/access").await;
        assert!(s == 200 && access.contains("user alice") && access.contains("TOTP not enrolled yet"), "{label}");
        let mut b = Browser::new(&srv);
        let login = [("username", "alice"), ("password", "wrong password!!"), ("code", "")];
        let resp = b.post_form("/ui/session", &login).await;
        assert_eq!(resp.status(), 400, "{label}: a wrong password");
        assert!(resp.text().await.unwrap().contains("invalid username, password or TOTP code"));
        let login = [("username", "alice"), ("password", "correct horse battery"), ("code", "")];
        let resp = b.post_form("/ui/session", &login).await;
        assert_eq!((resp.status().as_u16(), resp.headers()["location"].to_str().unwrap()), (303, "/ui/enrol"));
        let set_cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"), "{set_cookie}");
        // The enrolment session does nothing else.
        assert_eq!(b.get("/ui/env/secret/production").await.0, 403, "{label}");
        let (s, _, page) = b.get("/ui/enrol").await;
        assert_eq!(s, 200, "{label}: {page}");
        let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
        let mut enrolling = Browser::new(&srv);
        enrolling.cookie.clone_from(&b.cookie);
        let resp = enrolling.post_form("/ui/enrol", &[("csrf", &csrf)]).await;
        let page = resp.text().await.unwrap();
        assert!(page.contains("<svg") && page.contains("id=\"totp-secret\""), "{label}: no QR code");
        let secret = page.split("id=\"totp-secret\">").nth(1).unwrap().split('<').next().unwrap();
        let seed = data_encoding::BASE32_NOPAD.decode(secret.as_bytes()).unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let resp = enrolling.post_form("/ui/enrol/confirm", &[("csrf", &csrf), ("code", "000000")]).await;
        assert_eq!(resp.status(), 400, "{label}: a wrong code");
        let code = keyward_crypto::totp_now(&seed, now);
        let resp = enrolling.post_form("/ui/enrol/confirm", &[("csrf", &csrf), ("code", &code)]).await;
        assert_eq!(resp.headers()["location"], "/ui/login?enrolled=1", "{label}");
        assert_eq!(b.get("/ui/enrol").await.0, 303, "{label}: the enrolment session is over");

        // Password and the next step's code: a session of type ui-session, at most 8 hours.
        let next = keyward_crypto::totp_now(&seed, now + 30);
        let mut b = Browser::new(&srv);
        let resp = b
            .post_form("/ui/session", &[("username", "alice"), ("password", "correct horse battery"), ("code", &next)])
            .await;
        assert_eq!(resp.headers()["location"], "/ui", "{label}");
        let (s, info) = srv.json(Method::POST, "/api/v1/tokens/lookup", Some(json!({"token": b.cookie}))).await;
        assert_eq!(s, 200, "{label}: {info}");
        assert_eq!(info["type"], "ui-session", "{label}: {info}");
        let (s, v) = srv.vault(&root, "POST", "auth/token/lookup", Some(json!({"token": b.cookie}))).await;
        let ttl = v["data"]["ttl"].as_u64().unwrap_or(0);
        assert!(s == 200 && ttl > 0 && ttl <= 8 * 3600, "{label}: ttl {ttl}: {v}");
        assert_eq!(b.get("/ui/env/secret/production").await.0, 200, "{label}");
        let csrf = b.csrf().await;
        let resp =
            b.with_cookie(b.http.post(format!("{}/ui/logout", b.base)).form(&[("csrf", &csrf)])).send().await.unwrap();
        assert_eq!(resp.headers()["location"], "/ui/login?out=1", "{label}");
        assert_eq!(b.get("/ui/env/secret/production").await.0, 303, "{label}: the session outlived its logout");

        // A token login's logout revokes the child, never the pasted token.
        let t = token_session(&srv, &root).await;
        let csrf = t.csrf().await;
        t.with_cookie(t.http.post(format!("{}/ui/logout", t.base)).form(&[("csrf", &csrf)])).send().await.unwrap();
        assert_eq!(t.get("/ui").await.0, 303, "{label}");
        assert_eq!(srv.json(Method::GET, "/api/v1/mounts/secret/secrets/production", None).await.0, 200, "{label}");
        srv.stop().await;
    }
}

#[tokio::test]
async fn ui_logins_lock_out_an_address_as_api_logins_do() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start_with(&db, KEY_A, |o| o.guard.lockout_failures = 3).await;
        let root = srv.token.clone();
        assert_eq!(srv.vault(&root, "POST", "sys/auth/userpass", Some(json!({"type": "userpass"}))).await.0, 204);
        let mut b = Browser::new(&srv);
        for _ in 0..3 {
            let resp = b.post_form("/ui/session", &[("username", "mallory"), ("password", "guess guess guess")]).await;
            assert_eq!(resp.status(), 400, "{label}");
        }
        let resp = b.post_form("/ui/session", &[("username", "mallory"), ("password", "guess guess guess")]).await;
        assert_eq!(resp.status(), 429, "{label}: the address is locked out");
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"), "{label}: a page");
        assert!(resp.text().await.unwrap().contains("too many failed authentication attempts"), "{label}");
        // So are guessed tokens at the token form.
        let resp =
            b.post_form("/ui/session/token", &[("token", "kw_0000000000000000000000000000000000000000000")]).await;
        assert_eq!(resp.status(), 429, "{label}");
        assert!(b.cookie.is_empty());
        srv.stop().await;
    }
}

#[tokio::test]
async fn administration_pages_revoke_tokens_and_show_policy_errors_inline() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start(&db, KEY_A).await;
        let b = token_session(&srv, &srv.token).await;
        let csrf = b.csrf().await;
        let post = |path: &str, form: Vec<(&str, &str)>| {
            b.with_cookie(b.http.post(format!("{}{path}", b.base)).form(&form)).send()
        };
        // Tokens: listed by accessor, revoked from the page.
        let victim = srv.token_with(&["default"]).await;
        let (s, info) = srv.json(Method::POST, "/api/v1/tokens/lookup", Some(json!({"token": victim}))).await;
        assert_eq!(s, 200);
        let accessor = info["accessor"].as_str().unwrap().to_owned();
        let (s, _, page) = b.get("/ui/tokens").await;
        assert!(s == 200 && page.contains(&accessor), "{label}");
        assert!(!page.contains(&victim) && !page.contains(&srv.token), "{label}: a token value in the page");
        let resp = post("/ui/tokens/revoke", vec![("csrf", &csrf), ("accessor", &accessor)]).await.unwrap();
        assert_eq!(resp.status(), 303, "{label}");
        assert_eq!(srv.json_as(&victim, Method::GET, "/api/v1/tokens/self", None).await.0, 401, "{label}: not revoked");

        // Policies: a document that does not validate is shown again with its error.
        let bad = "[[rules]]\npath = \"secret/*\"\ncapabilities = [\"fly\"]\n";
        let resp = post("/ui/policies/ops", vec![("csrf", &csrf), ("document", bad)]).await.unwrap();
        assert_eq!(resp.status(), 400, "{label}");
        let page = resp.text().await.unwrap();
        assert!(page.contains("id=\"policy-error\"") && page.contains("fly"), "{label}: {page}");
        assert_eq!(srv.json(Method::GET, "/api/v1/policies/ops", None).await.0, 404, "{label}: it was saved");
        let good = "[[rules]]\npath = \"secret/*\"\ncapabilities = [\"list\"]\n";
        let resp = post("/ui/policies/ops", vec![("csrf", &csrf), ("document", good)]).await.unwrap();
        assert_eq!(resp.status(), 303, "{label}");
        let (s, p) = srv.json(Method::GET, "/api/v1/policies/ops", None).await;
        assert_eq!((s, &p["rules"][0]["capabilities"]), (200, &json!(["list"])), "{label}");

        // Audit: newest first, read backwards from the head in windows — 1,100 reads later the
        // policy writes are still found by a filter; "same request" links filter by request id.
        for _ in 0..1_100 {
            assert_eq!(srv.json(Method::GET, "/api/v1/mounts", None).await.0, 200);
        }
        let (s, _, page) = b.get("/ui/audit").await;
        assert_eq!(s, 200, "{label}");
        let seqs: Vec<u64> = page
            .split("<tr data-operation=")
            .skip(1)
            .map(|row| row.split("<td>").nth(1).unwrap().split('<').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(seqs.len(), 200, "{label}: a page of the newest 200");
        assert!(seqs.windows(2).all(|w| w[0] == w[1] + 1), "{label}: not newest first and contiguous: {seqs:?}");
        let (s, _, page) = b.get("/ui/audit?operation=ui.policy.write&verify=1").await;
        assert_eq!(s, 200, "{label}");
        assert!(page.contains("The chain verifies") && page.contains("ui.policy.write"), "{label}");
        assert_eq!(page.matches("<tr data-operation=").count(), 2, "{label}: the refused and the saved write");
        assert!(!page.contains("\"ui.tokens.revoke\""), "{label}: the filter let other operations through");
        let request = page.split("/ui/audit?request_id=").nth(1).unwrap().split('"').next().unwrap().to_owned();
        let (_, _, same) = b.get(&format!("/ui/audit?request_id={request}")).await;
        assert_eq!(same.matches("<tr data-operation=").count(), 1, "{label}: one entry for that request");
        // Keys: the status at once; doctor (which walks the chain) when asked.
        let (s, _, page) = b.get("/ui/keys").await;
        assert!(s == 200 && page.contains("Run doctor") && !page.contains("Every check passed"), "{label}");
        assert!(page.contains("Master keys") && page.contains("secret"), "{label}: {page}");
        let (s, _, page) = b.get("/ui/keys?doctor=1").await;
        assert!(s == 200 && page.contains("Every check passed"), "{label}: {page}");
        srv.stop().await;
    }
}

#[tokio::test]
async fn environments_show_staleness_search_unset_and_tell_changes_only_to_readers() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start(&db, KEY_A).await;
        let (s, b) = srv
            .json(Method::POST, "/api/v1/mounts", Some(json!({"path": "aged", "kind": "kv", "rotate_after": "1s"})))
            .await;
        assert_eq!(s, 201, "{b}");
        srv.set("aged", "prod", json!({"A_KEY": "value-a-1", "B_KEY": "value-b-1"})).await;
        srv.set("secret", "prod", json!({"A_KEY": "value-a-1"})).await;
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        let b = token_session(&srv, &srv.token).await;
        let (_, _, page) = b.get("/ui/env/aged/prod").await;
        assert_eq!(page.matches("class=\"stale\"").count(), 2, "{label}: past the project's 1 s limit");
        let (_, _, page) = b.get("/ui/env/secret/prod").await;
        assert!(!page.contains("class=\"stale\""), "{label}: within the default limit");
        // Search by name (case-insensitive).
        let (_, _, page) = b.get("/ui/env/aged/prod?q=a_k").await;
        assert!(page.contains("data-name=\"A_KEY\"") && !page.contains("data-name=\"B_KEY\""), "{label}");
        // Unset.
        let csrf = b.csrf().await;
        let form = [("csrf", csrf.as_str()), ("name", "B_KEY")];
        let resp = b.with_cookie(b.http.post(format!("{}/ui/unset/aged/prod", b.base)).form(&form)).send().await;
        assert_eq!(resp.unwrap().status(), 303, "{label}");
        assert!(!srv.reveal_map("aged", "prod").await.contains_key("B_KEY"), "{label}: not removed");

        // An import preview tells "changed" only to a session that may read the values.
        let writer = "[[rules]]\npath = \"aged/*\"\ncapabilities = [\"list\", \"create\", \"update\", \"patch\"]\n";
        srv.policy("writer", writer).await;
        let w = token_session(&srv, &srv.token_with(&["writer"]).await).await;
        let csrf = w.csrf().await;
        let form = [("csrf", csrf.as_str()), ("text", "A_KEY=value-a-2\nNEW_KEY=n\n")];
        let resp = w.with_cookie(w.http.post(format!("{}/ui/import/aged/prod", w.base)).form(&form)).send().await;
        let page = resp.unwrap().text().await.unwrap();
        assert!(page.contains("Added (1)") && page.contains("NEW_KEY"), "{label}: {page}");
        assert!(!page.contains("Changed (") && page.contains("only to those who may read"), "{label}: {page}");
        let resp = b.with_cookie(
            b.http
                .post(format!("{}/ui/import/aged/prod", b.base))
                .form(&[("csrf", b.csrf().await.as_str()), ("text", "A_KEY=value-a-2\nNEW_KEY=n\n")]),
        );
        let page = resp.send().await.unwrap().text().await.unwrap();
        assert!(page.contains("Changed (1)"), "{label}: a reader is told: {page}");
        assert_eq!(srv.reveal_map("aged", "prod").await["A_KEY"], "value-a-1", "{label}: a preview wrote");
        srv.stop().await;
    }
}
