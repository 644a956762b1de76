//! Login methods: auth mounts on Vault's `sys/auth`, AppRole end to end over HTTP — roles, role
//! IDs, secret IDs counted exactly under concurrency, bound CIDRs, the policy-subset rule, and
//! revocation with the secret ID, the role and the auth mount — on SQLite and PostgreSQL.
use crate::common;

use common::{backends, TestServer, KEY_A};
use serde_json::{json, Value};

/// Enables AppRole at `approle`, writes role `ci` granting `app-read` with `role` settings, and
/// returns its role ID.
async fn approle_with_role(srv: &TestServer, role: Value) -> String {
    let root = srv.token.clone();
    let (s, b) =
        srv.vault(&root, "POST", "sys/auth/approle", Some(json!({"type": "approle", "description": "CI"}))).await;
    assert_eq!(s, 204, "{b}");
    srv.policy("app-read", "[[rules]]\npath = \"secret/app\"\ncapabilities = [\"read\"]\n").await;
    let (s, b) = srv.vault(&root, "POST", "auth/approle/role/ci", Some(role)).await;
    assert_eq!(s, 204, "{b}");
    let (s, b) = srv.vault(&root, "GET", "auth/approle/role/ci/role-id", None).await;
    assert_eq!(s, 200, "{b}");
    b["data"]["role_id"].as_str().unwrap().to_owned()
}

async fn secret_id(srv: &TestServer, body: Value) -> (String, String) {
    let (s, b) = srv.vault(&srv.token, "POST", "auth/approle/role/ci/secret-id", Some(body)).await;
    assert_eq!(s, 200, "{b}");
    (b["data"]["secret_id"].as_str().unwrap().to_owned(), b["data"]["secret_id_accessor"].as_str().unwrap().to_owned())
}

async fn login(srv: &TestServer, role_id: &str, secret_id: &str) -> (u16, Value) {
    srv.vault("", "POST", "auth/approle/login", Some(json!({"role_id": role_id, "secret_id": secret_id}))).await
}

#[tokio::test]
async fn approle_logs_in_with_the_roles_policies_and_is_revoked_with_its_origin() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start(&db, KEY_A).await;
        srv.set("secret", "app", json!({"DB_PASSWORD": "s3cret-value"})).await;
        srv.set("secret", "other", json!({"K": "v"})).await;
        let role_id = approle_with_role(
            &srv,
            json!({"token_policies": "app-read", "token_ttl": "1h", "token_max_ttl": "2h", "secret_id_num_uses": 3}),
        )
        .await;
        let (s, list) = srv.vault(&srv.token, "GET", "sys/auth", None).await;
        assert_eq!(s, 200);
        assert_eq!(list["data"]["approle/"]["type"], "approle", "{label}: {list}");
        assert_eq!(list["data"]["token/"]["type"], "token");
        let (_, role) = srv.vault(&srv.token, "GET", "auth/approle/role/ci", None).await;
        assert_eq!(role["data"]["token_policies"], json!(["app-read"]), "{label}: {role}");
        assert_eq!(
            (role["data"]["token_ttl"].as_u64(), role["data"]["bind_secret_id"].as_bool()),
            (Some(3600), Some(true))
        );

        let (sid, sid_accessor) = secret_id(&srv, json!({"metadata": "{\"pipeline\":\"deploy\"}"})).await;
        let (s, auth) = login(&srv, &role_id, &sid).await;
        assert_eq!(s, 200, "{label}: {auth}");
        let token = auth["auth"]["client_token"].as_str().unwrap().to_owned();
        assert_eq!(auth["auth"]["policies"], json!(["app-read", "default"]), "{label}");
        assert_eq!(auth["auth"]["metadata"]["role_name"], "ci");
        assert_eq!(auth["auth"]["metadata"]["pipeline"], "deploy");
        assert_eq!(auth["auth"]["orphan"], true);
        assert!(auth["auth"]["lease_duration"].as_u64().unwrap() <= 3600);
        // The token reads what the role grants and nothing else.
        let (s, read) = srv.vault(&token, "GET", "secret/data/app", None).await;
        assert_eq!((s, &read["data"]["data"]["DB_PASSWORD"]), (200, &json!("s3cret-value")), "{label}");
        assert_eq!(srv.vault(&token, "GET", "secret/data/other", None).await.0, 403);
        let (_, me) = srv.vault(&token, "GET", "auth/token/lookup-self", None).await;
        assert_eq!(me["data"]["meta"]["role_name"], "ci", "{label}: {me}");

        // Wrong or malformed credentials: one answer, naming neither part.
        for (r, s) in [(role_id.as_str(), "kwsid_wrong"), ("no-such-role-id", sid.as_str()), (role_id.as_str(), "")] {
            let (status, b) = login(&srv, r, s).await;
            assert_eq!(status, 400, "{label}: {b}");
            assert_eq!(b["errors"], json!(["invalid role or secret ID"]), "{label}");
        }
        // Three uses: two more logins, then the secret ID is spent.
        assert_eq!(login(&srv, &role_id, &sid).await.0, 200);
        assert_eq!(login(&srv, &role_id, &sid).await.0, 200);
        assert_eq!(login(&srv, &role_id, &sid).await.0, 400, "{label}: a spent secret ID logged in");

        // Destroying a secret ID revokes the tokens it logged in.
        let (sid2, acc2) = secret_id(&srv, json!({})).await;
        let (_, auth2) = login(&srv, &role_id, &sid2).await;
        let token2 = auth2["auth"]["client_token"].as_str().unwrap().to_owned();
        let (s, looked) = srv
            .vault(
                &srv.token,
                "POST",
                "auth/approle/role/ci/secret-id-accessor/lookup",
                Some(json!({"secret_id_accessor": acc2})),
            )
            .await;
        assert_eq!((s, &looked["data"]["secret_id_accessor"]), (200, &json!(acc2)), "{label}: {looked}");
        let (s, _) = srv
            .vault(
                &srv.token,
                "POST",
                "auth/approle/role/ci/secret-id-accessor/destroy",
                Some(json!({"secret_id_accessor": acc2})),
            )
            .await;
        assert_eq!(s, 204);
        assert_eq!(srv.vault(&token2, "GET", "secret/data/app", None).await.0, 403, "{label}: its token outlived it");
        assert_eq!(
            srv.vault(&token, "GET", "secret/data/app", None).await.0,
            200,
            "{label}: another secret ID's token went too"
        );
        let (s, _) = srv.vault(&srv.token, "LIST", "auth/approle/role/ci/secret-id", None).await;
        assert_eq!(s, 404, "{label}: the spent one and the destroyed one are both gone");
        let _ = sid_accessor;

        // Deleting the role revokes every token it issued; disabling the mount, every one left.
        let (sid3, _) = secret_id(&srv, json!({})).await;
        let (_, auth3) = login(&srv, &role_id, &sid3).await;
        let token3 = auth3["auth"]["client_token"].as_str().unwrap().to_owned();
        assert_eq!(srv.vault(&srv.token, "DELETE", "auth/approle/role/ci", None).await.0, 204);
        for t in [&token, &token3] {
            assert_eq!(
                srv.vault(t, "GET", "secret/data/app", None).await.0,
                403,
                "{label}: a role's token outlived it"
            );
        }
        let role_id = {
            let (s, _) = srv
                .vault(&srv.token, "POST", "auth/approle/role/ci", Some(json!({"token_policies": ["app-read"]})))
                .await;
            assert_eq!(s, 204);
            srv.vault(&srv.token, "GET", "auth/approle/role/ci/role-id", None).await.1["data"]["role_id"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let (sid4, _) = secret_id(&srv, json!({})).await;
        let token4 = login(&srv, &role_id, &sid4).await.1["auth"]["client_token"].as_str().unwrap().to_owned();
        assert_eq!(srv.vault(&srv.token, "DELETE", "sys/auth/approle", None).await.0, 204);
        assert_eq!(
            srv.vault(&token4, "GET", "secret/data/app", None).await.0,
            403,
            "{label}: the mount's token outlived it"
        );
        assert_eq!(login(&srv, &role_id, &sid4).await.0, 404, "{label}: the mount is gone");

        // Every login is on record, with its role and the token's accessor, never the secret ID.
        let (_, audit) = srv.json(reqwest::Method::GET, "/api/v1/audit?operation=approle.login&limit=100", None).await;
        let entries = audit["entries"].as_array().unwrap();
        assert!(entries.iter().any(|e| e["status"] == 200
            && e["details"]["role"] == "ci"
            && e["details"]["issued_accessor"].is_string()));
        assert!(entries.iter().any(|e| e["status"] == 400), "{label}: failed logins are recorded");
        let text = audit.to_string();
        for secret in [&sid, &sid2, &sid3, &sid4, &token] {
            assert!(!text.contains(&secret[6..]), "{label}: a credential is in the audit log");
        }
        srv.stop().await;
    }
}

#[tokio::test]
async fn secret_id_uses_are_exact_under_concurrent_logins() {
    for db in backends().await {
        let srv = std::sync::Arc::new(TestServer::start(&db, KEY_A).await);
        let role_id = approle_with_role(&srv, json!({"token_policies": ["app-read"], "secret_id_num_uses": 5})).await;
        let (sid, _) = secret_id(&srv, json!({})).await;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (srv, role_id, sid) = (srv.clone(), role_id.clone(), sid.clone());
            tasks.spawn(async move { login(&srv, &role_id, &sid).await.0 });
        }
        let mut ok = 0;
        while let Some(s) = tasks.join_next().await {
            match s.unwrap() {
                200 => ok += 1,
                400 => {}
                other => panic!("{}: login answered {other}", db.label),
            }
        }
        assert_eq!(ok, 5, "{}: 16 concurrent logins with a 5-use secret ID", db.label);
        std::sync::Arc::try_unwrap(srv).ok().unwrap().stop().await;
    }
}

#[tokio::test]
async fn bound_cidrs_and_the_policy_subset_rule_hold() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start(&db, KEY_A).await;
        // A role bound to an address range other than the client's: its logins are refused.
        let role_id =
            approle_with_role(&srv, json!({"token_policies": ["app-read"], "secret_id_bound_cidrs": ["10.0.0.0/8"]}))
                .await;
        let (s, b) = srv
            .vault(&srv.token, "POST", "auth/approle/role/ci/secret-id", Some(json!({"cidr_list": "192.168.0.0/16"})))
            .await;
        assert_eq!(s, 400, "{label}: a secret ID wider than its role: {b}");
        let (sid, _) = secret_id(&srv, json!({"cidr_list": "10.1.0.0/16"})).await;
        let (s, b) = login(&srv, &role_id, &sid).await;
        assert_eq!(s, 403, "{label}: {b}");
        // A role with neither a secret ID nor a CIDR binding would let its role ID alone log in.
        let (s, b) =
            srv.vault(&srv.token, "POST", "auth/approle/role/open", Some(json!({"bind_secret_id": false}))).await;
        assert_eq!(s, 400, "{label}: {b}");
        // Unsupported settings are refused by name, not ignored.
        let (s, b) =
            srv.vault(&srv.token, "POST", "auth/approle/role/ci", Some(json!({"token_no_default_policy": true}))).await;
        assert!(s == 400 && b["errors"][0].as_str().unwrap().contains("token_no_default_policy"), "{label}: {b}");

        // Writing a role needs a capability on its path, and every policy it grants.
        srv.policy("admin", "[[rules]]\npath = \"*\"\ncapabilities = [\"read\", \"list\", \"create\", \"update\", \"delete\", \"sudo\"]\n").await;
        srv.policy(
            "role-writer",
            "[[rules]]\npath = \"auth/approle/role/*\"\ncapabilities = [\"create\", \"update\", \"read\"]\n",
        )
        .await;
        let writer = srv.token_with(&["role-writer", "app-read"]).await;
        let (s, b) =
            srv.vault(&writer, "POST", "auth/approle/role/escalate", Some(json!({"token_policies": ["admin"]}))).await;
        assert_eq!(s, 403, "{label}: a role granting a policy its writer lacks: {b}");
        let (s, b) =
            srv.vault(&writer, "POST", "auth/approle/role/fine", Some(json!({"token_policies": ["app-read"]}))).await;
        assert_eq!(s, 204, "{label}: {b}");
        // sudo on sys/auth alone makes no secret IDs.
        srv.policy("auth-admin", "[[rules]]\npath = \"sys/auth\"\ncapabilities = [\"sudo\"]\n").await;
        let auth_admin = srv.token_with(&["auth-admin"]).await;
        assert_eq!(srv.vault(&auth_admin, "GET", "sys/auth", None).await.0, 200);
        let (s, _) = srv.vault(&auth_admin, "POST", "auth/approle/role/fine/secret-id", Some(json!({}))).await;
        assert_eq!(s, 403, "{label}");
        // A secret ID bound by its own cidr_list (its role bound nowhere) from another address.
        let role2 = {
            let (s, b) = srv
                .vault(&srv.token, "POST", "auth/approle/role/cidr", Some(json!({"token_policies": ["app-read"]})))
                .await;
            assert_eq!(s, 204, "{b}");
            srv.vault(&srv.token, "GET", "auth/approle/role/cidr/role-id", None).await.1["data"]["role_id"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let (s, b) = srv
            .vault(&srv.token, "POST", "auth/approle/role/cidr/secret-id", Some(json!({"cidr_list": "10.9.0.0/16"})))
            .await;
        assert_eq!(s, 200, "{b}");
        let bound = b["data"]["secret_id"].as_str().unwrap().to_owned();
        assert_eq!(login(&srv, &role2, &bound).await.0, 403, "{label}: a secret ID's cidr_list");
        // An expired secret ID is refused like a wrong one.
        let (s, b) =
            srv.vault(&srv.token, "POST", "auth/approle/role/cidr/secret-id", Some(json!({"ttl": "1s"}))).await;
        assert_eq!(s, 200, "{b}");
        let short = b["data"]["secret_id"].as_str().unwrap().to_owned();
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let (s, b) = login(&srv, &role2, &short).await;
        assert_eq!((s, &b["errors"]), (400, &json!(["invalid role or secret ID"])), "{label}: an expired secret ID");
        // Out-of-range counts are input errors, never a server error.
        let (s, b) = srv
            .vault(&srv.token, "POST", "auth/approle/role/cidr/secret-id", Some(json!({"num_uses": u64::MAX})))
            .await;
        assert_eq!(s, 400, "{label}: {b}");
        let (s, b) = srv
            .vault(&srv.token, "POST", "auth/approle/role/cidr", Some(json!({"secret_id_num_uses": 1u64 << 62})))
            .await;
        assert_eq!(s, 400, "{label}: {b}");
        let (s, b) = srv
            .vault(
                &srv.token,
                "POST",
                "auth/token/create",
                Some(json!({"ttl": "1h", "explicit_max_ttl": u64::MAX / 2})),
            )
            .await;
        assert_eq!(s, 200, "{label}: a cap past the server's maximum is the maximum: {b}");
        let t = b["auth"]["client_token"].as_str().unwrap().to_owned();
        let (_, me) = srv.vault(&t, "GET", "auth/token/lookup-self", None).await;
        assert_eq!(me["data"]["explicit_max_ttl"], 32 * 86_400, "{label}: {me}");
        // sudo on sys/auth sets no password and resets no TOTP.
        assert_eq!(srv.vault(&srv.token, "POST", "sys/auth/userpass", Some(json!({"type": "userpass"}))).await.0, 204);
        let body = json!({"password": "a long password", "totp_required": false});
        assert_eq!(srv.vault(&srv.token, "POST", "auth/userpass/users/carol", Some(body)).await.0, 204);
        let (s, _) = srv
            .vault(&auth_admin, "POST", "auth/userpass/users/carol/password", Some(json!({"password": "taken over!"})))
            .await;
        assert_eq!(s, 403, "{label}");
        assert_eq!(
            srv.vault(&auth_admin, "POST", "auth/userpass/users/carol/totp/reset", Some(json!({}))).await.0,
            403,
            "{label}"
        );
        // A login path of a method that is not enabled.
        let (s, _) = srv.vault("", "POST", "auth/nothing/login", Some(json!({"role_id": "x", "secret_id": "y"}))).await;
        assert_eq!(s, 404, "{label}");
        srv.stop().await;
    }
}

/// Guessing secret IDs from one address locks that address out, and a locked address is refused
/// the same way whether or not its credentials are right; the role itself is never locked.
#[tokio::test]
async fn failed_logins_lock_the_address_out_not_the_role() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start_with(&db, KEY_A, |o| o.guard.lockout_failures = 3).await;
        let role_id = approle_with_role(&srv, json!({"token_policies": ["app-read"]})).await;
        let (sid, _) = secret_id(&srv, json!({})).await;
        for i in 0..3 {
            let (s, b) = login(&srv, &role_id, &format!("kwsid_guess{i}")).await;
            assert_eq!(s, 400, "{label}: {b}");
        }
        let (right, wrong) = (login(&srv, &role_id, &sid).await, login(&srv, &role_id, "kwsid_guess9").await);
        assert_eq!((right.0, wrong.0), (429, 429), "{label}: {right:?} {wrong:?}");
        assert_eq!(right.1, wrong.1, "{label}: a locked address learns nothing from the answer");
        // Requests with a valid token go on; so would logins from any other address.
        assert_eq!(srv.vault(&srv.token, "GET", "auth/approle/role/ci", None).await.0, 200, "{label}");
        srv.stop().await;
    }
}

/// A login to `auth/userpass/login/<name>`, with a TOTP code in Vault's MFA header.
async fn user_login(srv: &TestServer, name: &str, password: &str, code: Option<&str>) -> (u16, Value) {
    let mut req =
        srv.http.post(format!("{}/v1/auth/userpass/login/{name}", srv.base)).json(&json!({ "password": password }));
    if let Some(c) = code {
        req = req.header("x-vault-mfa", format!("totp:{c}"));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn seed_of(url: &str) -> Vec<u8> {
    let secret = url.split("secret=").nth(1).unwrap().split('&').next().unwrap();
    data_encoding::BASE32_NOPAD.decode(secret.as_bytes()).unwrap()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn people_log_in_with_a_password_and_totp_enrolled_on_first_login() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start_with(&db, KEY_A, |o| o.guard.lockout_failures = 1000).await;
        srv.set("secret", "app", json!({"K": "v"})).await;
        srv.policy("app-read", "[[rules]]\npath = \"secret/app\"\ncapabilities = [\"read\"]\n").await;
        let root = srv.token.clone();
        assert_eq!(srv.vault(&root, "POST", "sys/auth/userpass", Some(json!({"type": "userpass"}))).await.0, 204);
        let (s, b) = srv.vault(&root, "POST", "auth/userpass/users/alice", Some(json!({"password": "short"}))).await;
        assert_eq!(s, 400, "{label}: {b}");
        let (s, b) = srv
            .vault(
                &root,
                "POST",
                "auth/userpass/users/alice",
                Some(json!({"password": "correct horse battery", "token_policies": "app-read"})),
            )
            .await;
        assert_eq!(s, 204, "{label}: {b}");
        let (_, user) = srv.vault(&root, "GET", "auth/userpass/users/alice", None).await;
        assert_eq!(
            (user["data"]["totp_required"].as_bool(), user["data"]["totp_enrolled"].as_bool()),
            (Some(true), Some(false))
        );
        assert!(!user.to_string().contains("argon2"), "{label}: the hash is never shown");

        // First login: the password yields an enrolment-only token.
        let (s, first) = user_login(&srv, "alice", "correct horse battery", None).await;
        assert_eq!(s, 200, "{label}: {first}");
        assert!(first["warnings"][0].as_str().unwrap().contains("enrol"), "{label}: {first}");
        let enrol = first["auth"]["client_token"].as_str().unwrap().to_owned();
        assert_eq!(
            srv.vault(&enrol, "GET", "secret/data/app", None).await.0,
            403,
            "{label}: the enrolment token reads nothing"
        );
        assert_eq!(srv.vault(&enrol, "GET", "auth/token/lookup-self", None).await.0, 403);
        let (s, b) =
            srv.vault(&root, "POST", "auth/userpass/users/bob", Some(json!({"password": "another password"}))).await;
        assert_eq!(s, 204, "{b}");
        assert_eq!(
            srv.vault(&enrol, "POST", "auth/userpass/users/bob/totp/enroll", Some(json!({}))).await.0,
            403,
            "{label}"
        );
        let (s, started) = srv.vault(&enrol, "POST", "auth/userpass/users/alice/totp/enroll", Some(json!({}))).await;
        assert_eq!(s, 200, "{label}: {started}");
        let url = started["data"]["url"].as_str().unwrap().to_owned();
        assert!(url.starts_with("otpauth://totp/keyward:"), "{url}");
        let seed = seed_of(&url);
        let t = now_secs();
        let (s, b) =
            srv.vault(&enrol, "POST", "auth/userpass/users/alice/totp/confirm", Some(json!({"code": "000000"}))).await;
        assert_eq!(s, 400, "{label}: a wrong code does not enrol: {b}");
        let code_now = keyward_crypto::totp_now(&seed, t);
        assert_eq!(
            srv.vault(&enrol, "POST", "auth/userpass/users/alice/totp/confirm", Some(json!({"code": code_now})))
                .await
                .0,
            204
        );

        // From now on: password and a fresh code (the next step's, since this one was used).
        let (s, _) = user_login(&srv, "alice", "correct horse battery", None).await;
        assert_eq!(s, 400, "{label}: no code");
        let next = keyward_crypto::totp_now(&seed, t + 30);
        let (s, b) = user_login(&srv, "alice", "wrong password!", Some(&next)).await;
        assert_eq!(s, 400, "{label}: {b}");
        assert_eq!(b["errors"], json!(["invalid username, password or TOTP code"]));
        let (s, ok) = user_login(&srv, "alice", "correct horse battery", Some(&next)).await;
        assert_eq!(s, 200, "{label}: {ok}");
        assert_eq!(ok["auth"]["policies"], json!(["app-read", "default"]));
        let token = ok["auth"]["client_token"].as_str().unwrap().to_owned();
        assert_eq!(srv.vault(&token, "GET", "secret/data/app", None).await.0, 200, "{label}");
        let (s, _) = user_login(&srv, "alice", "correct horse battery", Some(&next)).await;
        assert_eq!(s, 400, "{label}: a used code was accepted again");
        let (s, b) = user_login(&srv, "nobody", "correct horse battery", Some(&next)).await;
        assert_eq!(
            (s, &b["errors"]),
            (400, &json!(["invalid username, password or TOTP code"])),
            "{label}: unknown users answer the same"
        );

        // A new password revokes the user's tokens; an admin TOTP reset too, and asks to enrol again.
        assert_eq!(
            srv.vault(
                &root,
                "POST",
                "auth/userpass/users/alice/password",
                Some(json!({"password": "a new long password"}))
            )
            .await
            .0,
            204
        );
        assert_eq!(
            srv.vault(&token, "GET", "secret/data/app", None).await.0,
            403,
            "{label}: a token outlived the password"
        );
        assert_eq!(srv.vault(&root, "POST", "auth/userpass/users/alice/totp/reset", Some(json!({}))).await.0, 204);
        let (s, again) = user_login(&srv, "alice", "a new long password", None).await;
        assert!(s == 200 && again["warnings"][0].as_str().unwrap().contains("enrol"), "{label}: {again}");

        // A service account without MFA, flagged as such.
        let (s, _) = srv
            .vault(
                &root,
                "POST",
                "auth/userpass/users/svc",
                Some(json!({"password": "service password", "token_policies": ["app-read"], "totp_required": false})),
            )
            .await;
        assert_eq!(s, 204);
        assert_eq!(user_login(&srv, "svc", "service password", None).await.0, 200, "{label}");
        srv.stop().await;
    }
}

/// Five failures lock the user: then right and wrong credentials get the same answer.
#[tokio::test]
async fn a_locked_user_gets_the_same_answer_for_right_and_wrong_passwords() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start_with(&db, KEY_A, |o| o.guard.lockout_failures = 1000).await;
        let root = srv.token.clone();
        srv.vault(&root, "POST", "sys/auth/userpass", Some(json!({"type": "userpass"}))).await;
        let body = json!({"password": "service password", "totp_required": false});
        assert_eq!(srv.vault(&root, "POST", "auth/userpass/users/svc", Some(body)).await.0, 204);
        for _ in 0..5 {
            assert_eq!(user_login(&srv, "svc", "wrong password", None).await.0, 400, "{label}");
        }
        // Failures are counted off the answer's path (so a known user's failure takes no longer
        // than an unknown one's): the lock engages within a commit's time.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let (right, wrong) = (
            user_login(&srv, "svc", "service password", None).await,
            user_login(&srv, "svc", "wrong password", None).await,
        );
        assert_eq!((right.0, wrong.0), (429, 429), "{label}: {right:?} {wrong:?}");
        assert_eq!(right.1, wrong.1, "{label}: the lock must not confirm a right password");
        // Another user is not locked.
        let body = json!({"password": "other password", "totp_required": false});
        srv.vault(&root, "POST", "auth/userpass/users/other", Some(body)).await;
        assert_eq!(user_login(&srv, "other", "other password", None).await.0, 200, "{label}");
        // A writer cannot hand out a policy it lacks.
        srv.policy("admin", "[[rules]]\npath = \"*\"\ncapabilities = [\"read\", \"sudo\"]\n").await;
        srv.policy(
            "user-admin",
            "[[rules]]\npath = \"auth/userpass/users/*\"\ncapabilities = [\"create\", \"update\"]\n",
        )
        .await;
        let writer = srv.token_with(&["user-admin"]).await;
        let (s, b) = srv
            .vault(
                &writer,
                "POST",
                "auth/userpass/users/mallory",
                Some(json!({"password": "mallory password", "token_policies": ["admin"]})),
            )
            .await;
        assert_eq!(s, 403, "{label}: {b}");
        srv.stop().await;
    }
}

/// A token's lifetime cap holds through renewals: Vault's `explicit_max_ttl`, and a role's
/// `token_max_ttl` for the tokens its logins get.
#[tokio::test]
async fn renewals_never_pass_a_tokens_lifetime_cap() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start(&db, KEY_A).await;
        let (s, created) = srv
            .vault(&srv.token, "POST", "auth/token/create", Some(json!({"ttl": "1m", "explicit_max_ttl": "2m"})))
            .await;
        assert_eq!(s, 200, "{created}");
        let capped = created["auth"]["client_token"].as_str().unwrap().to_owned();
        let (s, renewed) = srv.vault(&capped, "POST", "auth/token/renew-self", Some(json!({"increment": "1h"}))).await;
        assert_eq!(s, 200, "{label}: {renewed}");
        assert!(renewed["auth"]["lease_duration"].as_u64().unwrap() <= 120, "{label}: {renewed}");
        let (_, me) = srv.vault(&capped, "GET", "auth/token/lookup-self", None).await;
        assert_eq!(me["data"]["explicit_max_ttl"], 120, "{label}");

        let role_id =
            approle_with_role(&srv, json!({"token_policies": ["app-read"], "token_ttl": "1m", "token_max_ttl": "2m"}))
                .await;
        let (sid, _) = secret_id(&srv, json!({})).await;
        let (_, auth) = login(&srv, &role_id, &sid).await;
        let token = auth["auth"]["client_token"].as_str().unwrap().to_owned();
        assert!(auth["auth"]["lease_duration"].as_u64().unwrap() <= 60, "{label}: {auth}");
        let (s, renewed) = srv.vault(&token, "POST", "auth/token/renew-self", Some(json!({"increment": "10h"}))).await;
        assert_eq!(s, 200, "{label}: {renewed}");
        assert!(
            renewed["auth"]["lease_duration"].as_u64().unwrap() <= 120,
            "{label}: a login token renewed past its role's token_max_ttl: {renewed}"
        );
        srv.stop().await;
    }
}
