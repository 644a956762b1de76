//! A token's terms (DESIGN §4): use-limited tokens counted exactly under concurrency, periodic
//! and non-renewable tokens, metadata, exact lease arithmetic, orphans created with `sudo`, and
//! the same terms on the tokens AppRole and userpass logins issue — on SQLite and PostgreSQL.
use crate::common;

use common::{backends, TestServer, KEY_A};
use reqwest::Method;
use serde_json::{json, Value};

async fn create(srv: &TestServer, token: &str, body: Value) -> (u16, Value) {
    srv.vault(token, "POST", "auth/token/create", Some(body)).await
}

fn client_token(auth: &Value) -> String {
    auth["auth"]["client_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_use_limited_token_admits_exactly_its_uses_even_concurrently() {
    for db in backends().await {
        let label = db.label;
        let srv = std::sync::Arc::new(TestServer::start(&db, KEY_A).await);
        let (s, b) = create(&srv, &srv.token, json!({"policies": ["default"], "num_uses": 2})).await;
        assert_eq!((s, &b["auth"]["num_uses"]), (200, &json!(2)), "{label}: {b}");
        let two = client_token(&b);
        // Each request takes one use before it is served: the first sees one left.
        let (s, me) = srv.vault(&two, "GET", "auth/token/lookup-self", None).await;
        assert_eq!((s, &me["data"]["num_uses"]), (200, &json!(1)), "{label}: {me}");
        assert_eq!(srv.vault(&two, "GET", "auth/token/lookup-self", None).await.0, 200, "{label}");
        // The last use revoked it.
        let (s, b) = srv.vault(&two, "GET", "auth/token/lookup-self", None).await;
        assert_eq!(s, 403, "{label}: a used-up token still answered: {b}");
        let (_, all) = srv.vault(&srv.token, "LIST", "auth/token/accessors", None).await;
        assert!(!all["data"]["keys"].as_array().unwrap().contains(&me["data"]["accessor"]), "{label}");

        let (_, b) = create(&srv, &srv.token, json!({"policies": ["default"], "num_uses": 5})).await;
        let five = client_token(&b);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (srv, five) = (srv.clone(), five.clone());
            tasks.spawn(async move { srv.vault(&five, "GET", "auth/token/lookup-self", None).await.0 });
        }
        let mut ok = 0;
        while let Some(s) = tasks.join_next().await {
            match s.unwrap() {
                200 => ok += 1,
                403 => {}
                other => panic!("{label}: a request answered {other}"),
            }
        }
        assert_eq!(ok, 5, "{label}: 16 concurrent requests with a 5-use token");

        // A use-limited token cannot create tokens: its children would outlive its uses.
        srv.policy("token-admin", "[[rules]]\npath = \"sys/tokens\"\ncapabilities = [\"sudo\"]\n").await;
        let (_, b) = create(&srv, &srv.token, json!({"policies": ["token-admin"], "num_uses": 3})).await;
        let limited = client_token(&b);
        assert_eq!(create(&srv, &limited, json!({"policies": ["token-admin"]})).await.0, 403, "{label}");
        let (s, b) =
            srv.json_as(&limited, Method::POST, "/api/v1/tokens", Some(json!({"policies": ["token-admin"]}))).await;
        assert!(s == 403 && b.to_string().contains("use-limited"), "{label}: {b}");
        // Out of range is a 400, not a 500.
        let (s, b) = create(&srv, &srv.token, json!({"num_uses": 5_000_000_000u64})).await;
        assert_eq!(s, 400, "{label}: {b}");
        std::sync::Arc::try_unwrap(srv).ok().unwrap().stop().await;
    }
}

#[tokio::test]
async fn periodic_non_renewable_and_capped_tokens_renew_as_vaults_do() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start(&db, KEY_A).await;
        // A periodic token lives one period at a time, whatever ttl and increment say.
        let (s, b) = create(&srv, &srv.token, json!({"period": "1h", "ttl": "10m"})).await;
        assert_eq!((s, &b["auth"]["lease_duration"]), (200, &json!(3600)), "{label}: {b}");
        let periodic = client_token(&b);
        let (_, me) = srv.vault(&periodic, "GET", "auth/token/lookup-self", None).await;
        assert_eq!((&me["data"]["period"], &me["data"]["renewable"]), (&json!(3600), &json!(true)), "{label}");
        let (s, r) = srv.vault(&periodic, "POST", "auth/token/renew-self", Some(json!({"increment": "1m"}))).await;
        assert_eq!((s, &r["auth"]["lease_duration"]), (200, &json!(3600)), "{label}: {r}");
        // … within its explicit_max_ttl, when it has one.
        let (_, b) = create(&srv, &srv.token, json!({"period": "1h", "explicit_max_ttl": "90m"})).await;
        let (_, r) = srv.vault(&client_token(&b), "POST", "auth/token/renew-self", None).await;
        let lease = r["auth"]["lease_duration"].as_u64().unwrap();
        assert!((3590..=3600).contains(&lease), "{label}: {r}");

        // Exact arithmetic: ttl 30m under explicit_max_ttl 5m is 300 s, not 299.
        let (_, b) = create(&srv, &srv.token, json!({"ttl": "30m", "explicit_max_ttl": "5m"})).await;
        assert_eq!(b["auth"]["lease_duration"], 300, "{label}: {b}");

        let (s, b) = create(&srv, &srv.token, json!({"renewable": false, "ttl": "1h"})).await;
        assert_eq!((s, &b["auth"]["renewable"]), (200, &json!(false)), "{label}: {b}");
        let fixed = client_token(&b);
        let (s, r) = srv.vault(&fixed, "POST", "auth/token/renew-self", None).await;
        assert!(s == 400 && r["errors"][0].as_str().unwrap().contains("not renewable"), "{label}: {r}");
        let (s, _) = srv.vault(&srv.token, "POST", "auth/token/renew", Some(json!({"token": fixed}))).await;
        assert_eq!(s, 400, "{label}");

        // Metadata is stored and shown; bad metadata is a 400.
        let (_, b) = create(&srv, &srv.token, json!({"meta": {"team": "payments", "ticket": "OPS-7"}})).await;
        let (_, me) = srv.vault(&client_token(&b), "GET", "auth/token/lookup-self", None).await;
        assert_eq!(me["data"]["meta"], json!({"team": "payments", "ticket": "OPS-7"}), "{label}");
        let (s, _) = create(&srv, &srv.token, json!({"meta": {"n": 1}})).await;
        assert_eq!(s, 400, "{label}");
        let (s, _) = create(&srv, &srv.token, json!({"period": "100000d"})).await;
        assert_eq!(s, 400, "{label}");

        // The native API shows the same terms.
        let (s, b) = srv
            .json(
                Method::POST,
                "/api/v1/tokens",
                Some(json!({"policies": ["default"], "period": "2h", "num_uses": 4, "meta": {"k": "v"}})),
            )
            .await;
        assert_eq!(s, 201, "{label}: {b}");
        let info = &b["info"];
        assert_eq!(
            (&info["period"], &info["num_uses"], &info["type"], &info["meta"]["k"]),
            (&json!("2h0m0s"), &json!(4), &json!("service"), &json!("v")),
            "{label}: {b}"
        );
        srv.stop().await;
    }
}

#[tokio::test]
async fn orphans_need_sudo_on_sys_tokens_not_root() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start(&db, KEY_A).await;
        srv.policy("token-admin", "[[rules]]\npath = \"sys/tokens\"\ncapabilities = [\"sudo\"]\n").await;
        let admin = srv.token_with(&["token-admin"]).await;
        let (s, b) =
            srv.vault(&admin, "POST", "auth/token/create-orphan", Some(json!({"policies": ["default"]}))).await;
        assert_eq!((s, &b["auth"]["orphan"]), (200, &json!(true)), "{label}: {b}");
        // The orphan outlives its creator.
        let orphan = client_token(&b);
        assert_eq!(srv.vault(&admin, "POST", "auth/token/revoke-self", None).await.0, 204, "{label}");
        assert_eq!(srv.vault(&orphan, "GET", "auth/token/lookup-self", None).await.0, 200, "{label}");
        srv.stop().await;
    }
}

#[tokio::test]
async fn login_tokens_carry_their_roles_and_users_token_terms() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start(&db, KEY_A).await;
        let root = srv.token.clone();
        for (path, kind) in [("approle", "approle"), ("userpass", "userpass")] {
            let (s, b) = srv.vault(&root, "POST", &format!("sys/auth/{path}"), Some(json!({"type": kind}))).await;
            assert_eq!(s, 204, "{label}: {b}");
        }
        let terms = json!({"token_policies": ["default"], "token_num_uses": 2, "token_period": "1h"});
        let (s, b) = srv.vault(&root, "POST", "auth/approle/role/worker", Some(terms.clone())).await;
        assert_eq!(s, 204, "{label}: {b}");
        let (_, role) = srv.vault(&root, "GET", "auth/approle/role/worker", None).await;
        assert_eq!((&role["data"]["token_num_uses"], &role["data"]["token_period"]), (&json!(2), &json!(3600)));
        let (_, rid) = srv.vault(&root, "GET", "auth/approle/role/worker/role-id", None).await;
        let (_, sid) = srv.vault(&root, "POST", "auth/approle/role/worker/secret-id", Some(json!({}))).await;
        let login = json!({"role_id": rid["data"]["role_id"], "secret_id": sid["data"]["secret_id"]});
        let (s, auth) = srv.vault("", "POST", "auth/approle/login", Some(login)).await;
        assert_eq!(s, 200, "{label}: {auth}");
        assert_eq!(
            (&auth["auth"]["num_uses"], &auth["auth"]["lease_duration"], &auth["auth"]["renewable"]),
            (&json!(2), &json!(3600), &json!(true)),
            "{label}: {auth}"
        );
        let token = client_token(&auth);
        let (s, me) = srv.vault(&token, "GET", "auth/token/lookup-self", None).await;
        assert_eq!((s, &me["data"]["path"]), (200, &json!("auth/approle/login")), "{label}: {me}");
        assert_eq!(srv.vault(&token, "GET", "auth/token/lookup-self", None).await.0, 200);
        assert_eq!(srv.vault(&token, "GET", "auth/token/lookup-self", None).await.0, 403, "{label}");

        let user = json!({"password": "correct horse battery", "totp_required": false, "token_policies": ["default"],
            "token_explicit_max_ttl": "10m", "token_ttl": "1h"});
        let (s, b) = srv.vault(&root, "POST", "auth/userpass/users/ada", Some(user)).await;
        assert_eq!(s, 204, "{label}: {b}");
        let (_, read) = srv.vault(&root, "GET", "auth/userpass/users/ada", None).await;
        assert_eq!(read["data"]["token_explicit_max_ttl"], 600, "{label}: {read}");
        let (s, auth) =
            srv.vault("", "POST", "auth/userpass/login/ada", Some(json!({"password": "correct horse battery"}))).await;
        assert_eq!((s, &auth["auth"]["lease_duration"]), (200, &json!(600)), "{label}: {auth}");
        srv.stop().await;
    }
}

/// The terms are covered by the token row's MAC: a database writer who gives a spent-down token
/// more uses, or makes a fixed token periodic or renewable, gets a token that is refused.
#[tokio::test]
async fn terms_changed_through_sql_make_the_token_refused() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start(&db, KEY_A).await;
        let pool = db.pool().await;
        let mut tokens = Vec::new();
        for (body, column, value) in [
            (json!({"num_uses": 2}), "num_uses", "1000"),
            (json!({"renewable": false}), "renewable", "1"),
            (json!({"ttl": "1h"}), "period", "86400"),
        ] {
            let (_, b) = create(&srv, &srv.token, body).await;
            let (token, accessor) = (client_token(&b), b["auth"]["accessor"].as_str().unwrap().to_owned());
            let statement = format!("UPDATE tokens SET {column} = {value} WHERE accessor = '{accessor}'");
            sqlx::query(&statement).execute(&pool).await.unwrap();
            tokens.push((token, column));
        }
        // Not used before the change: nothing of them is cached.
        for (token, column) in tokens {
            let (s, b) = srv.vault(&token, "GET", "auth/token/lookup-self", None).await;
            assert_eq!(s, 403, "{label}: a token whose {column} was changed in the database answered {b}");
        }
        srv.stop().await;
    }
}

/// Token roles: a caller allowed to use a role creates tokens within the role's allowed policies
/// (not its own), with the role's settings; writing a role needs every policy it allows.
#[tokio::test]
async fn token_roles_bound_what_their_users_create() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start(&db, KEY_A).await;
        srv.policy("app-read", "[[rules]]\npath = \"secret/app\"\ncapabilities = [\"read\"]\n").await;
        srv.policy("app-write", "[[rules]]\npath = \"secret/app\"\ncapabilities = [\"update\"]\n").await;
        let role = json!({"allowed_policies": ["app-read"], "disallowed_policies": ["app-write"], "orphan": true,
            "token_period": "1h", "renewable": true, "path_suffix": "v2", "token_bound_cidrs": ["127.0.0.1/32"]});
        let (s, b) = srv.vault(&srv.token, "POST", "auth/token/roles/ci", Some(role)).await;
        assert_eq!(s, 204, "{label}: {b}");
        let (_, read) = srv.vault(&srv.token, "GET", "auth/token/roles/ci", None).await;
        assert_eq!((&read["data"]["allowed_policies"], &read["data"]["orphan"]), (&json!(["app-read"]), &json!(true)));
        let (_, list) = srv.vault(&srv.token, "LIST", "auth/token/roles", None).await;
        assert_eq!(list["data"]["keys"], json!(["ci"]), "{label}");

        // An orchestrator that may use the role, holding none of its policies.
        srv.policy("use-ci", "[[rules]]\npath = \"auth/token/create/ci\"\ncapabilities = [\"update\"]\n").await;
        let orchestrator = srv.token_with(&["use-ci"]).await;
        let (s, b) = srv.vault(&orchestrator, "POST", "auth/token/create/ci", Some(json!({}))).await;
        assert_eq!(s, 200, "{label}: {b}");
        let a = &b["auth"];
        assert_eq!(
            (&a["policies"], &a["orphan"], &a["lease_duration"]),
            (&json!(["app-read", "default"]), &json!(true), &json!(3600)),
            "{label}: {b}"
        );
        let minted = client_token(&b);
        srv.set("secret", "app", json!({"K": "v"})).await;
        assert_eq!(srv.vault(&minted, "GET", "secret/data/app", None).await.0, 200, "{label}");
        let (_, me) = srv.vault(&minted, "GET", "auth/token/lookup-self", None).await;
        assert_eq!((&me["data"]["path"], &me["data"]["period"]), (&json!("auth/token/create/ci/v2"), &json!(3600)));
        // lookup-self and lookup show the token the caller holds; lookup-accessor does not.
        assert_eq!(me["data"]["id"], minted.as_str(), "{label}");
        let (_, other) = srv.vault(&srv.token, "POST", "auth/token/lookup", Some(json!({"token": minted}))).await;
        assert_eq!(other["data"]["id"], minted.as_str(), "{label}");
        let (_, by_acc) = srv
            .vault(&srv.token, "POST", "auth/token/lookup-accessor", Some(json!({"accessor": me["data"]["accessor"]})))
            .await;
        assert_eq!(by_acc["data"]["id"], "", "{label}");
        let (s, _) =
            srv.vault(&srv.token, "POST", "auth/token/lookup-accessor", Some(json!({"accessor": "acc_nope"}))).await;
        assert_eq!(s, 400, "{label}: an unknown accessor");
        // Outside the role: disallowed, not allowed, or another role.
        for policies in [json!(["app-write"]), json!(["root"])] {
            let (s, b) =
                srv.vault(&orchestrator, "POST", "auth/token/create/ci", Some(json!({"policies": policies}))).await;
            assert_eq!(s, 403, "{label}: {policies}: {b}");
        }
        assert_eq!(srv.vault(&orchestrator, "POST", "auth/token/create", Some(json!({}))).await.0, 403, "{label}");
        let (s, _) = srv.vault(&srv.token, "POST", "auth/token/create/nope", Some(json!({}))).await;
        assert_eq!(s, 400, "{label}: an unknown role");

        // Writing a role needs every policy it allows.
        srv.policy("roles", "[[rules]]\npath = \"auth/token/roles/*\"\ncapabilities = [\"update\"]\n").await;
        let roles_admin = srv.token_with(&["roles"]).await;
        let (s, b) =
            srv.vault(&roles_admin, "POST", "auth/token/roles/evil", Some(json!({"allowed_policies": "root"}))).await;
        assert_eq!(s, 403, "{label}: {b}");
        let (s, b) =
            srv.vault(&srv.token, "POST", "auth/token/roles/ci", Some(json!({"allowed_policies_glob": "*"}))).await;
        assert_eq!(s, 400, "{label}: {b}");
        assert_eq!(srv.vault(&srv.token, "DELETE", "auth/token/roles/ci", None).await.0, 204, "{label}");
        assert_eq!(
            srv.vault(&minted, "GET", "secret/data/app", None).await.0,
            200,
            "{label}: tokens outlive their role"
        );

        // KV check-and-set: -1 and a stale version are both Vault's 400.
        for cas in [json!(-1), json!(0)] {
            let (s, b) = srv
                .vault(
                    &srv.token,
                    "POST",
                    "secret/data/app",
                    Some(json!({"data": {"K": "w"}, "options": {"cas": cas}})),
                )
                .await;
            assert_eq!(
                (s, reason(&b)),
                (400, "check-and-set parameter did not match the current version".into()),
                "{label}"
            );
        }
        srv.stop().await;
    }
}

fn reason(b: &Value) -> String {
    b["errors"][0].as_str().unwrap_or_default().to_owned()
}
