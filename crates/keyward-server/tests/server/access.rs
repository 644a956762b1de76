//! Tokens, policies, isolation and abuse resistance over real HTTP, on SQLite and PostgreSQL.
use crate::common;

use std::num::NonZeroU32;
use std::time::Duration;

use common::{backends, random_name, second_server_refused_on_sqlite, try_start_with, TestServer, KEY_A};
use keyward_server::Rate;
use reqwest::Method;
use serde_json::{json, Value};

const CAREFLEX_READER: &str = r#"
[[rules]]
path = "careflex/production"
capabilities = ["list", "read"]

[[rules]]
path = "careflex/+/stripe"
capabilities = ["list"]
"#;

async fn dev(db: &common::TestDb) -> TestServer {
    TestServer::start(db, KEY_A).await
}

#[tokio::test]
async fn policies_grant_exactly_what_they_say() {
    for db in backends().await {
        let srv = dev(&db).await;
        srv.json(Method::POST, "/api/v1/mounts", Some(json!({"path": "careflex"}))).await;
        srv.json(Method::POST, "/api/v1/mounts", Some(json!({"path": "other"}))).await;
        srv.set("careflex", "production", json!({"STRIPE_KEY": "sk_live_abcdefghijklmnop1234"})).await;
        srv.set("careflex", "staging", json!({"K": "staging-value"})).await;
        srv.set("careflex", "acme/stripe", json!({"K": "acme-stripe-value"})).await;
        srv.set("careflex", "acme/deep/stripe", json!({"K": "deep"})).await;
        srv.set("other", "production", json!({"K": "other-value"})).await;
        srv.policy("reader", CAREFLEX_READER).await;
        let t = srv.token_with(&["reader"]).await;

        // read on production: masked and revealed.
        let (s, b) = srv.json_as(&t, Method::GET, "/api/v1/mounts/careflex/secrets/production?reveal=true", None).await;
        assert_eq!((s, b["fields"][0]["value"].as_str()), (200, Some("sk_live_abcdefghijklmnop1234")), "{}", db.label);
        // `+` matches one segment: list (masks) yes, reveal no.
        let (s, b) = srv.json_as(&t, Method::GET, "/api/v1/mounts/careflex/secrets/acme/stripe", None).await;
        assert_eq!((s, b["fields"][0]["value"].as_str()), (200, Some("....alue")));
        let (s, b) =
            srv.json_as(&t, Method::GET, "/api/v1/mounts/careflex/secrets/acme/stripe?reveal=true", None).await;
        assert_eq!(s, 403);
        let msg = b["error"]["message"].as_str().unwrap();
        assert!(msg.contains("\"read\"") && msg.contains("careflex/acme/stripe"), "{msg}");
        assert!(!b.to_string().contains("acme-stripe-value"));
        // Not matched at all: two segments for `+`, other paths, other mounts.
        for url in [
            "/api/v1/mounts/careflex/secrets/acme/deep/stripe",
            "/api/v1/mounts/careflex/secrets/staging",
            "/api/v1/mounts/other/secrets/production",
            "/api/v1/mounts/careflex/history/staging",
        ] {
            let (s, b) = srv.json_as(&t, Method::GET, url, None).await;
            assert_eq!(s, 403, "{url}: {b}");
        }
        // Writes need create/update/patch; delete needs delete.
        let (s, _) = srv
            .json_as(&t, Method::PATCH, "/api/v1/mounts/careflex/secrets/production", Some(json!({"set": {"X": "1"}})))
            .await;
        assert_eq!(s, 403);
        let (s, _) = srv.json_as(&t, Method::DELETE, "/api/v1/mounts/careflex/secrets/production", None).await;
        assert_eq!(s, 403);
        // Listings show only what the token may list; mounts it has nothing under stay hidden.
        let (s, b) = srv.json_as(&t, Method::GET, "/api/v1/mounts/careflex/secrets", None).await;
        assert_eq!(s, 200);
        let paths: Vec<&str> = b["items"].as_array().unwrap().iter().map(|i| i["path"].as_str().unwrap()).collect();
        assert_eq!(paths, vec!["acme/stripe", "production"]);
        let (s, _) = srv.json_as(&t, Method::GET, "/api/v1/mounts/other/secrets", None).await;
        assert_eq!(s, 403);
        let (_, b) = srv.json_as(&t, Method::GET, "/api/v1/mounts", None).await;
        assert_eq!(
            b["mounts"].as_array().unwrap().iter().map(|m| m["path"].as_str().unwrap()).collect::<Vec<_>>(),
            vec!["careflex"]
        );
        // Administration needs sudo.
        for (m, url, body) in [
            (Method::POST, "/api/v1/mounts", Some(json!({"path": "x"}))),
            (Method::DELETE, "/api/v1/mounts/careflex", None),
            (Method::GET, "/api/v1/policies", None),
            (Method::PUT, "/api/v1/policies/x", Some(json!({"document": CAREFLEX_READER}))),
            (Method::GET, "/api/v1/tokens", None),
            (Method::POST, "/api/v1/tokens", Some(json!({"policies": ["reader"]}))),
        ] {
            let (s, b) = srv.json_as(&t, m.clone(), url, body).await;
            assert_eq!(s, 403, "{m} {url}: {b}");
        }

        // create vs update, deny wins, and policy changes apply at once.
        srv.policy(
            "writer",
            "[[rules]]\npath = \"careflex/*\"\ncapabilities = [\"create\", \"list\"]\n[[rules]]\npath = \"careflex/locked\"\ncapabilities = [\"deny\"]\n",
        )
        .await;
        let w = srv.token_with(&["writer"]).await;
        let (s, _) = srv
            .json_as(&w, Method::PATCH, "/api/v1/mounts/careflex/secrets/new-env", Some(json!({"set": {"A": "1"}})))
            .await;
        assert_eq!(s, 200);
        let (s, b) = srv
            .json_as(&w, Method::PATCH, "/api/v1/mounts/careflex/secrets/new-env", Some(json!({"set": {"A": "2"}})))
            .await;
        assert_eq!(s, 403, "create does not allow update: {b}");
        let (s, _) = srv
            .json_as(&w, Method::PATCH, "/api/v1/mounts/careflex/secrets/locked", Some(json!({"set": {"A": "1"}})))
            .await;
        assert_eq!(s, 403);
        let (s, _) = srv.json_as(&w, Method::GET, "/api/v1/mounts/careflex/secrets/locked", None).await;
        assert_eq!(s, 403);
        srv.json(Method::DELETE, "/api/v1/policies/writer", None).await;
        let (s, _) = srv.json_as(&w, Method::GET, "/api/v1/mounts/careflex/secrets/new-env", None).await;
        assert_eq!(s, 403, "a deleted policy grants nothing");

        // Policy documents: TOML and JSON, validation, built-ins.
        let (s, b) = srv
            .json(
                Method::PUT,
                "/api/v1/policies/json-one",
                Some(json!({"document": "{\"rules\": [{\"path\": \"careflex/*\", \"capabilities\": [\"list\"]}]}"})),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let (_, b) = srv.json(Method::GET, "/api/v1/policies/json-one", None).await;
        assert_eq!(b["rules"][0]["path"], "careflex/*");
        for bad in [
            "[[rules]]\npath = \"a/*/b\"\ncapabilities = [\"read\"]",
            "[[rules]]\npath = \"a\"\ncapabilities = [\"fly\"]",
            "not toml [",
        ] {
            let (s, _) = srv.json(Method::PUT, "/api/v1/policies/bad", Some(json!({"document": bad}))).await;
            assert_eq!(s, 400, "{bad}");
        }
        let (s, _) = srv.json(Method::PUT, "/api/v1/policies/root", Some(json!({"document": CAREFLEX_READER}))).await;
        assert_eq!(s, 400);
        let (_, b) = srv.json(Method::GET, "/api/v1/policies", None).await;
        for p in ["default", "root", "reader", "json-one"] {
            assert!(b["policies"].as_array().unwrap().iter().any(|x| x == p), "{p}");
        }
        srv.stop().await;
    }
}

#[tokio::test]
async fn tokens_lifecycle_children_and_revocation_across_servers() {
    for db in backends().await {
        let a = dev(&db).await;
        if second_server_refused_on_sqlite(&db).await {
            a.stop().await;
            continue;
        }
        let b = TestServer::wrap(try_start_with(&db, KEY_A, false, |_| {}).await.unwrap(), a.token.clone());
        a.policy("ops", "[[rules]]\npath = \"sys/tokens\"\ncapabilities = [\"sudo\"]\n[[rules]]\npath = \"secret/*\"\ncapabilities = [\"read\"]\n").await;
        a.policy("admin", "[[rules]]\npath = \"*\"\ncapabilities = [\"sudo\", \"read\"]\n").await;
        a.set("secret", "prod", json!({"K": "v"})).await;

        let (s, created) = a
            .json(Method::POST, "/api/v1/tokens", Some(json!({"policies": ["ops"], "ttl": "1h", "display_name": "ci"})))
            .await;
        assert_eq!(s, 201, "{created}");
        let ops = created["token"].as_str().unwrap().to_owned();
        assert!(ops.starts_with("kw_") && ops.len() == 46);
        assert_eq!(created["info"]["policies"], json!(["ops", "default"]));
        let ops_accessor = created["info"]["accessor"].as_str().unwrap().to_owned();

        // The parent can hand on only what it holds.
        let (s, e) = a.json_as(&ops, Method::POST, "/api/v1/tokens", Some(json!({"policies": ["admin"]}))).await;
        assert_eq!(s, 403, "{e}");
        // An orphan needs the sudo on sys/tokens that creating tokens needs (DESIGN §4), which ops holds.
        let (s, orphan) = a
            .json_as(&ops, Method::POST, "/api/v1/tokens", Some(json!({"policies": ["ops"], "no_parent": true})))
            .await;
        assert_eq!((s, &orphan["info"]["parent_accessor"]), (201, &Value::Null), "{orphan}");
        let (s, child) =
            a.json_as(&ops, Method::POST, "/api/v1/tokens", Some(json!({"policies": ["ops"], "ttl": "2h"}))).await;
        assert_eq!(s, 201);
        let child_token = child["token"].as_str().unwrap().to_owned();
        let child_exp = child["info"]["expire_time"].as_str().unwrap().to_owned();
        assert!(
            child_exp.as_str() <= created["info"]["expire_time"].as_str().unwrap(),
            "a child never outlives its parent"
        );
        let (s, grandchild) =
            a.json_as(&child_token, Method::POST, "/api/v1/tokens", Some(json!({"policies": ["ops"]}))).await;
        assert_eq!(s, 201);
        let grandchild = grandchild["token"].as_str().unwrap().to_owned();
        let (s, _) = a.json(Method::POST, "/api/v1/tokens", Some(json!({"policies": ["nope"]}))).await;
        assert_eq!(s, 400);
        let (s, _) = a.json(Method::POST, "/api/v1/tokens", Some(json!({"policies": ["ops"], "ttl": "9999d"}))).await;
        assert_eq!(s, 400);

        // Lookup and list show records, never token values.
        let (s, me) = a.json_as(&ops, Method::GET, "/api/v1/tokens/self", None).await;
        assert_eq!((s, me["accessor"].as_str()), (200, Some(ops_accessor.as_str())));
        let (s, looked) = a.json(Method::POST, "/api/v1/tokens/lookup", Some(json!({"token": child_token}))).await;
        assert_eq!((s, looked["parent_accessor"].as_str()), (200, Some(ops_accessor.as_str())));
        let (s, list) = a.json(Method::GET, "/api/v1/tokens", None).await;
        assert_eq!(s, 200);
        assert_eq!(list["tokens"].as_array().unwrap().len(), 5, "root, ops, its orphan, child, grandchild");
        for t in [&ops, &child_token, &grandchild, &a.token] {
            assert!(!list.to_string().contains(&t[3..]));
        }

        // Revoking the parent on server A revokes its descendants, at once on server B too.
        for t in [&ops, &child_token, &grandchild] {
            let (s, _) = b.json_as(t, Method::GET, "/api/v1/mounts/secret/secrets/prod?reveal=true", None).await;
            assert_eq!(s, 200);
        }
        let (s, r) = a.json(Method::DELETE, &format!("/api/v1/tokens/accessors/{ops_accessor}"), None).await;
        assert_eq!((s, r["revoked"].as_u64()), (200, Some(3)), "{}", db.label);
        for t in [&ops, &child_token, &grandchild] {
            let (s, _) = b.json_as(t, Method::GET, "/api/v1/mounts/secret/secrets/prod", None).await;
            assert_eq!(s, 401);
        }

        // Expired tokens are refused.
        let (_, short) = a.json(Method::POST, "/api/v1/tokens", Some(json!({"policies": ["ops"], "ttl": "1s"}))).await;
        let short = short["token"].as_str().unwrap().to_owned();
        let (s, _) = b.json_as(&short, Method::GET, "/api/v1/tokens/self", None).await;
        assert_eq!(s, 200);
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let (s, _) = b.json_as(&short, Method::GET, "/api/v1/tokens/self", None).await;
        assert_eq!(s, 401);

        // Revoke-self.
        let (_, mine) = a.json(Method::POST, "/api/v1/tokens", Some(json!({"policies": ["ops"]}))).await;
        let mine = mine["token"].as_str().unwrap().to_owned();
        let (s, _) = a.json_as(&mine, Method::POST, "/api/v1/tokens/self/revoke", None).await;
        assert_eq!(s, 200);
        let (s, _) = b.json_as(&mine, Method::GET, "/api/v1/tokens/self", None).await;
        assert_eq!(s, 401);
        a.stop().await;
        b.stop().await;
    }
}

#[tokio::test]
async fn source_ip_allowlists_and_trusted_proxies() {
    for db in backends().await {
        let srv =
            TestServer::start_with(&db, KEY_A, |o| o.guard.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()])
                .await;
        srv.policy("ops", "[[rules]]\npath = \"sys/tokens\"\ncapabilities = [\"sudo\"]\n").await;
        let (s, b) = srv
            .json(Method::POST, "/api/v1/tokens", Some(json!({"policies": ["ops"], "allowed_cidrs": ["10.0.0.0/8"]})))
            .await;
        assert_eq!(s, 201, "{b}");
        let office = b["token"].as_str().unwrap().to_owned();
        // From the peer itself (127.0.0.1): refused with 403.
        let (s, e) = srv.json_as(&office, Method::GET, "/api/v1/tokens/self", None).await;
        assert_eq!(s, 403, "{}: {e}", db.label);
        assert!(e["error"]["message"].as_str().unwrap().contains("address"));
        // Through the trusted proxy, from inside the range: allowed.
        let (s, _) = srv.json_from(&office, Some("10.1.2.3"), Method::GET, "/api/v1/tokens/self", None).await;
        assert_eq!(s, 200);
        let (s, _) = srv.json_from(&office, Some("192.0.2.1"), Method::GET, "/api/v1/tokens/self", None).await;
        assert_eq!(s, 403);
        // Children stay inside the parent's range, and inherit it by default.
        let (s, _) = srv
            .json_from(
                &office,
                Some("10.1.2.3"),
                Method::POST,
                "/api/v1/tokens",
                Some(json!({"policies": ["ops"], "allowed_cidrs": ["192.168.0.0/16"]})),
            )
            .await;
        assert_eq!(s, 403);
        let (s, child) = srv
            .json_from(&office, Some("10.1.2.3"), Method::POST, "/api/v1/tokens", Some(json!({"policies": ["ops"]})))
            .await;
        assert_eq!(s, 201);
        assert_eq!(child["info"]["allowed_cidrs"], json!(["10.0.0.0/8"]));
        let (s, _) = srv
            .json(Method::POST, "/api/v1/tokens", Some(json!({"policies": ["ops"], "allowed_cidrs": ["not-a-cidr"]})))
            .await;
        assert_eq!(s, 400);
        let root = srv.token.clone();
        srv.stop().await;

        // Without trusted proxies, X-Forwarded-For is ignored.
        let srv = TestServer::wrap(try_start_with(&db, KEY_A, false, |_| {}).await.unwrap(), root);
        let (_, b) = srv
            .json(Method::POST, "/api/v1/tokens", Some(json!({"policies": ["ops"], "allowed_cidrs": ["10.0.0.0/8"]})))
            .await;
        let office = b["token"].as_str().unwrap().to_owned();
        let (s, _) = srv.json_from(&office, Some("10.1.2.3"), Method::GET, "/api/v1/tokens/self", None).await;
        assert_eq!(s, 403);
        srv.stop().await;
    }
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let db = backends().await.remove(0);
    let srv = TestServer::start(&db, KEY_A).await;
    let token = srv.token.clone();
    srv.stop().await;
    let server = try_start_with(&db, KEY_A, false, |o| {
        o.guard.token_rate = Some(Rate { count: NonZeroU32::new(5).unwrap(), per: Duration::from_secs(60) });
    })
    .await
    .unwrap();
    let srv = TestServer::wrap(server, token);
    for i in 0..5 {
        let (s, _) = srv.json(Method::GET, "/api/v1/mounts", None).await;
        assert_eq!(s, 200, "request {i}");
    }
    let resp = srv.call(Method::GET, "/api/v1/mounts", None).await;
    assert_eq!(resp.status(), 429);
    let wait: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], "rate_limited");
    srv.stop().await;

    let server = try_start_with(&db, KEY_A, false, |o| {
        o.guard.ip_rate = Some(Rate { count: NonZeroU32::new(3).unwrap(), per: Duration::from_secs(60) });
    })
    .await
    .unwrap();
    let srv = TestServer::wrap(server, String::new());
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(srv.json_as("", Method::GET, "/v1/sys/health", None).await.0);
    }
    assert_eq!(statuses, vec![200, 200, 200, 429]);
    // Routes that are audited (not only the probes) are under the per-IP limit too.
    let (status, body) = srv.json_as("", Method::GET, "/api/v1/mounts", None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (429, Some("rate_limited")), "{body}");
    srv.stop().await;
}

#[tokio::test]
async fn lockout_refuses_bad_tokens_never_a_valid_one() {
    for db in backends().await {
        let srv = TestServer::start(&db, KEY_A).await;
        let token = srv.token.clone();
        srv.stop().await;
        let server = try_start_with(&db, KEY_A, false, |o| {
            o.guard.lockout_failures = 3;
            o.guard.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        })
        .await
        .unwrap();
        let srv = TestServer::wrap(server, token.clone());
        let nat = Some("198.51.100.7");
        // Requests without a token are not failures: a browser or a health check behind the same
        // NAT must not lock everyone out.
        for _ in 0..10 {
            let resp = srv
                .http
                .get(format!("{}/api/v1/mounts", srv.base))
                .header("x-forwarded-for", "198.51.100.7")
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 401);
        }
        for i in 0..3 {
            let bad = format!("kw_{}", random_name(43));
            let (s, _) = srv.json_from(&bad, nat, Method::GET, "/api/v1/mounts", None).await;
            assert_eq!(s, 401, "{}: unknown token {i}", db.label);
        }
        // Locked out: a malformed or unknown token is refused with 429…
        for bad in [format!("kw_{}", random_name(43)), "not-a-token".to_owned()] {
            let resp = srv
                .http
                .get(format!("{}/api/v1/mounts", srv.base))
                .bearer_auth(&bad)
                .header("x-forwarded-for", "198.51.100.7")
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 429, "{}", db.label);
            assert!(resp.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
        }
        // …but the valid token from the locked address is served, on both APIs.
        let (s, _) = srv.json_from(&token, nat, Method::GET, "/api/v1/mounts", None).await;
        assert_eq!(s, 200, "{}: a valid token is never refused for others' failures", db.label);
        let resp = srv
            .http
            .get(format!("{}/v1/sys/mounts", srv.base))
            .header("x-vault-token", &token)
            .header("x-forwarded-for", "198.51.100.7")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        // Another address is not locked.
        let bad = format!("kw_{}", random_name(43));
        let (s, _) = srv.json_from(&bad, Some("198.51.100.8"), Method::GET, "/api/v1/mounts", None).await;
        assert_eq!(s, 401);
        srv.stop().await;
    }
}

/// Under default flags: 30 random tokens from one address are locked out while a 1,000 req/s
/// read load with one valid token from the same address gets no 429 at all (a busy app, or a
/// Vault client library's own test suite, is not throttled by default).
#[tokio::test]
async fn default_limits_stop_guessing_without_throttling_a_busy_client() {
    for db in backends().await {
        let srv = TestServer::start(&db, KEY_A).await;
        srv.set("secret", "busy", json!({"K": "v"})).await;
        let token = srv.token.clone();
        srv.stop().await;
        let server =
            try_start_with(&db, KEY_A, false, |o| o.guard = keyward_server::GuardConfig::default()).await.unwrap();
        let srv = std::sync::Arc::new(TestServer::wrap(server, token.clone()));
        let load = (0..10).map(|_| {
            let srv = srv.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(10));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut statuses = Vec::new();
                for _ in 0..200 {
                    tick.tick().await;
                    statuses.push(srv.json(Method::GET, "/api/v1/mounts/secret/secrets/busy", None).await.0);
                }
                statuses
            })
        });
        let load: Vec<_> = load.collect();
        let mut guesses = Vec::new();
        for _ in 0..30 {
            let bad = format!("kw_{}", random_name(43));
            guesses.push(srv.json_as(&bad, Method::GET, "/api/v1/mounts/secret/secrets/busy", None).await.0);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut served = Vec::new();
        for task in load {
            served.extend(task.await.unwrap());
        }
        assert_eq!(&guesses[..10], &[401; 10], "{}: {guesses:?}", db.label);
        assert_eq!(&guesses[10..], &[429; 20], "{}: the address is locked out", db.label);
        assert_eq!(served.len(), 2000);
        assert!(served.iter().all(|s| *s == 200), "{}: {:?}", db.label, served.iter().filter(|s| **s != 200).count());
        std::sync::Arc::into_inner(srv).unwrap().stop().await;
    }
}

#[tokio::test]
async fn forwarded_for_cannot_be_chosen_by_the_client() {
    for db in backends().await {
        let srv =
            TestServer::start_with(&db, KEY_A, |o| o.guard.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()])
                .await;
        srv.policy("ops", "[[rules]]\npath = \"sys/tokens\"\ncapabilities = [\"sudo\"]\n").await;
        let (_, b) = srv
            .json(Method::POST, "/api/v1/tokens", Some(json!({"policies": ["ops"], "allowed_cidrs": ["10.0.0.0/8"]})))
            .await;
        let office = b["token"].as_str().unwrap().to_owned();
        let get = |lines: &[&str]| {
            let mut req = srv.http.get(format!("{}/api/v1/tokens/self", srv.base)).bearer_auth(&office);
            for l in lines {
                req = req.header("x-forwarded-for", *l);
            }
            req.header("x-request-id", format!("xff-{}", random_name(8)))
        };
        // The client's own line comes first; the proxy appends what it saw as a second line.
        let resp = get(&["10.1.2.3", "192.0.2.1"]).send().await.unwrap();
        assert_eq!(resp.status(), 403, "{}: the client picked its address", db.label);
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
        let resp = get(&["10.1.2.3, 192.0.2.1"]).send().await.unwrap();
        assert_eq!(resp.status(), 403);
        // A malformed entry is refused, never read as the proxy's own (trusted) address.
        for bad in [&["garbage"][..], &["10.1.2.3, unknown"], &["10.1.2.3", "not-an-ip"]] {
            let resp = get(bad).send().await.unwrap();
            assert_eq!(resp.status(), 400, "{}: {bad:?}", db.label);
            let body: Value = resp.json().await.unwrap();
            assert!(body["error"]["message"].as_str().unwrap().contains("X-Forwarded-For"), "{body}");
        }
        let resp = get(&["10.1.2.3"]).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        // The audit entry has the address the proxy saw.
        let (_, entries) = srv.json(Method::GET, "/api/v1/audit?limit=1000", None).await;
        let entry = entries["entries"].as_array().unwrap().iter().find(|e| e["request_id"] == id.as_str()).unwrap();
        assert_eq!(entry["remote_addr"], "192.0.2.1", "{entry}");
        srv.stop().await;
    }
}

#[tokio::test]
async fn a_child_token_cannot_shed_its_parents_deny() {
    for db in backends().await {
        let srv = dev(&db).await;
        srv.policy("wide", "[[rules]]\npath = \"secret/*\"\ncapabilities = [\"read\", \"list\"]\n").await;
        srv.policy("no-admin", "[[rules]]\npath = \"secret/admin\"\ncapabilities = [\"deny\"]\n").await;
        srv.policy("ops", "[[rules]]\npath = \"sys/tokens\"\ncapabilities = [\"sudo\"]\n").await;
        srv.set("secret", "admin", json!({"ROOT_PW": "hunter2-admin"})).await;
        srv.set("secret", "production", json!({"K": "v"})).await;
        let parent = srv.token_with(&["wide", "no-admin", "ops"]).await;
        let (s, _) = srv.json_as(&parent, Method::GET, "/api/v1/mounts/secret/secrets/admin", None).await;
        assert_eq!(s, 403);
        // The parent hands on a subset of its policies that leaves out the deny.
        let (s, b) =
            srv.json_as(&parent, Method::POST, "/api/v1/tokens", Some(json!({"policies": ["wide", "ops"]}))).await;
        assert_eq!(s, 201, "{b}");
        let child = b["token"].as_str().unwrap().to_owned();
        let (s, _) = srv.json_as(&child, Method::GET, "/api/v1/mounts/secret/secrets/admin?reveal=true", None).await;
        assert_eq!(s, 403, "{}: the child widened its parent's access", db.label);
        let (s, _) = srv.vault(&child, "GET", "secret/data/admin", None).await;
        assert_eq!(s, 403);
        let (s, b) =
            srv.json_as(&child, Method::GET, "/api/v1/mounts/secret/secrets/production?reveal=true", None).await;
        assert_eq!(s, 200, "{b}");
        // The grandchild, too, and a narrowed parent narrows its descendants at once.
        let (_, b) = srv.json_as(&child, Method::POST, "/api/v1/tokens", Some(json!({"policies": ["wide"]}))).await;
        let grandchild = b["token"].as_str().unwrap().to_owned();
        let (s, _) = srv.json_as(&grandchild, Method::GET, "/api/v1/mounts/secret/secrets/admin", None).await;
        assert_eq!(s, 403);
        srv.policy("no-admin", "[[rules]]\npath = \"secret/*\"\ncapabilities = [\"deny\"]\n").await;
        let (s, _) = srv.json_as(&grandchild, Method::GET, "/api/v1/mounts/secret/secrets/production", None).await;
        assert_eq!(s, 403, "{}: the parent's deny now covers everything", db.label);
        srv.stop().await;
    }
}

/// Children minted while their parent is being revoked never outlive it: on PostgreSQL the
/// creations and the revocation run on two servers at once.
#[tokio::test]
async fn token_creation_racing_the_parents_revocation_leaves_no_live_child() {
    for db in backends().await {
        let a = dev(&db).await;
        let two = !second_server_refused_on_sqlite(&db).await;
        let b = match two {
            true => Some(TestServer::wrap(try_start_with(&db, KEY_A, false, |_| {}).await.unwrap(), a.token.clone())),
            false => None,
        };
        a.policy("ops", "[[rules]]\npath = \"sys/tokens\"\ncapabilities = [\"sudo\"]\n").await;
        let a = std::sync::Arc::new(a);
        for round in 0..8 {
            let (_, p) = a.json(Method::POST, "/api/v1/tokens", Some(json!({"policies": ["ops"]}))).await;
            let parent = p["token"].as_str().unwrap().to_owned();
            let parent_accessor = p["info"]["accessor"].as_str().unwrap().to_owned();
            let minting: Vec<_> = (0..12)
                .map(|_| {
                    let (a, parent) = (a.clone(), parent.clone());
                    tokio::spawn(async move {
                        let mut made = Vec::new();
                        for _ in 0..4 {
                            let (s, c) = a
                                .json_as(&parent, Method::POST, "/api/v1/tokens", Some(json!({"policies": ["ops"]})))
                                .await;
                            if s == 201 {
                                made.push(c["token"].as_str().unwrap().to_owned());
                            }
                        }
                        made
                    })
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(3 * round)).await;
            let revoker = b.as_ref().unwrap_or(&a);
            let (s, _) =
                revoker.json(Method::DELETE, &format!("/api/v1/tokens/accessors/{parent_accessor}"), None).await;
            assert_eq!(s, 200);
            let mut children = Vec::new();
            for m in minting {
                children.extend(m.await.unwrap());
            }
            for c in &children {
                let (s, _) = a.json_as(c, Method::GET, "/api/v1/tokens/self", None).await;
                assert_eq!(s, 401, "{} round {round}: a child of a revoked token is live", db.label);
            }
        }
        if let Some(b) = b {
            b.stop().await;
        }
        std::sync::Arc::into_inner(a).unwrap().stop().await;
    }
}

#[tokio::test]
async fn renewing_never_revives_an_expired_or_revoked_token() {
    for db in backends().await {
        let srv = dev(&db).await;
        srv.policy("ops", "[[rules]]\npath = \"secret/*\"\ncapabilities = [\"read\"]\n").await;
        for how in ["expired", "revoked"] {
            // A one-second token, left to expire (never used, so no server holds it in memory).
            let ttl = if how == "expired" { "1s" } else { "1h" };
            let (_, b) = srv.json(Method::POST, "/api/v1/tokens", Some(json!({"policies": ["ops"], "ttl": ttl}))).await;
            let token = b["token"].as_str().unwrap().to_owned();
            let accessor = b["info"]["accessor"].as_str().unwrap().to_owned();
            match how {
                "expired" => tokio::time::sleep(Duration::from_millis(1100)).await,
                _ => {
                    let (s, _) = srv.json(Method::DELETE, &format!("/api/v1/tokens/accessors/{accessor}"), None).await;
                    assert_eq!(s, 200);
                }
            }
            let (s, e) = srv.vault(&srv.token, "POST", "auth/token/renew", Some(json!({"token": token}))).await;
            assert_eq!(s, 400, "{} {how}: {e}", db.label);
            let (s, _) = srv.vault(&token, "POST", "auth/token/renew-self", None).await;
            assert_eq!(s, 403, "{how}");
            let (s, _) = srv.json_as(&token, Method::GET, "/api/v1/tokens/self", None).await;
            assert_eq!(s, 401, "{} {how}: the token came back to life", db.label);
        }
        srv.stop().await;
    }
}

#[tokio::test]
async fn a_tokens_own_rate_limit_holds_and_stays_within_its_creators() {
    for db in backends().await {
        let srv = dev(&db).await;
        srv.policy("ops", "[[rules]]\npath = \"sys/tokens\"\ncapabilities = [\"sudo\"]\n").await;
        let (s, b) =
            srv.json(Method::POST, "/api/v1/tokens", Some(json!({"policies": ["ops"], "rate_limit": "3/m"}))).await;
        assert_eq!((s, b["info"]["rate_limit"].as_str()), (201, Some("3/m")), "{b}");
        let limited = b["token"].as_str().unwrap().to_owned();
        // A child cannot go above its creator's limit, and inherits it by default.
        let (s, e) = srv
            .json_as(&limited, Method::POST, "/api/v1/tokens", Some(json!({"policies": ["ops"], "rate_limit": "10/s"})))
            .await;
        assert_eq!(s, 403, "{e}");
        let (s, c) = srv.json_as(&limited, Method::POST, "/api/v1/tokens", Some(json!({"policies": ["ops"]}))).await;
        assert_eq!((s, c["info"]["rate_limit"].as_str()), (201, Some("3/m")), "{c}");
        let (s, _) = srv.json_as(&limited, Method::GET, "/api/v1/tokens/self", None).await;
        assert_eq!(s, 200, "{}: the third request in a minute", db.label);
        let (s, _) = srv.json_as(&limited, Method::GET, "/api/v1/tokens/self", None).await;
        assert_eq!(s, 429, "{}: the fourth request in a minute", db.label);
        let (s, _) =
            srv.json(Method::POST, "/api/v1/tokens", Some(json!({"policies": ["ops"], "rate_limit": "fast"}))).await;
        assert_eq!(s, 400);
        // The root token has no limit of its own, and the server's is off by default.
        for _ in 0..20 {
            assert_eq!(srv.json(Method::GET, "/api/v1/tokens/self", None).await.0, 200);
        }
        srv.stop().await;
    }
}

#[tokio::test]
async fn one_projects_data_key_cannot_open_anothers_blobs() {
    use keyward_crypto::{open_secret_blob, BlobContext, MasterKeyring, WrappedKey, WrappedKeyDomain};
    use sqlx::Row;
    for db in backends().await {
        let srv = dev(&db).await;
        let mut ids = Vec::new();
        for m in ["tenant-a", "tenant-b"] {
            let (_, b) = srv.json(Method::POST, "/api/v1/mounts", Some(json!({"path": m}))).await;
            ids.push(uuid::Uuid::parse_str(b["id"].as_str().unwrap()).unwrap());
            srv.set(m, "production", json!({"K": format!("{m}-secret")})).await;
        }
        let pool = db.pool().await;
        let keyring = MasterKeyring::parse(KEY_A).unwrap();
        let mut deks = Vec::new();
        let mut blobs = Vec::new();
        for id in &ids {
            let row = sqlx::query("SELECT kek_tag, wrapped FROM wrapped_keys WHERE owner = $1")
                .bind(id.to_string())
                .fetch_one(&pool)
                .await
                .unwrap();
            let wrapped = WrappedKey { kek_tag: row.get(0), bytes: row.get(1) };
            deks.push(keyring.unwrap(WrappedKeyDomain::Dek, id.as_bytes(), 1, &wrapped).unwrap());
            let row = sqlx::query(
                "SELECT s.id, v.blob FROM secret_versions v JOIN secrets s ON s.id = v.secret_id WHERE s.mount_id = $1",
            )
            .bind(id.to_string())
            .fetch_one(&pool)
            .await
            .unwrap();
            let secret = uuid::Uuid::parse_str(&row.get::<String, _>(0)).unwrap();
            blobs.push((secret, row.get::<Vec<u8>, _>(1)));
        }
        assert_ne!(deks[0].expose(), deks[1].expose(), "each project has its own data key");
        for (i, (secret, blob)) in blobs.iter().enumerate() {
            let own = BlobContext { mount: *ids[i].as_bytes(), secret: *secret.as_bytes(), version: 1 };
            let plain = open_secret_blob(&deks[i], &own, blob).unwrap();
            assert!(String::from_utf8_lossy(&plain).contains("-secret"));
            // The other project's key fails, whatever context it is given.
            let other = 1 - i;
            assert!(open_secret_blob(&deks[other], &own, blob).is_err());
            let moved = BlobContext { mount: *ids[other].as_bytes(), ..own };
            assert!(open_secret_blob(&deks[other], &moved, blob).is_err());
            assert!(open_secret_blob(&deks[i], &moved, blob).is_err(), "AAD binds the mount");
        }
        // A wrapped key cannot be replayed as another project's key either.
        let row = sqlx::query("SELECT kek_tag, wrapped FROM wrapped_keys WHERE owner = $1")
            .bind(ids[0].to_string())
            .fetch_one(&pool)
            .await
            .unwrap();
        let wrapped = WrappedKey { kek_tag: row.get(0), bytes: row.get(1) };
        assert!(keyring.unwrap(WrappedKeyDomain::Dek, ids[1].as_bytes(), 1, &wrapped).is_err());
        pool.close().await;
        srv.stop().await;
    }
}

async fn raw(addr: std::net::SocketAddr, head: &str, body_part: &str, keep_open: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body_part.as_bytes()).await.unwrap();
    let mut out = vec![0u8; 4096];
    match tokio::time::timeout(keep_open, s.read(&mut out)).await {
        Ok(Ok(n)) => String::from_utf8_lossy(&out[..n]).into_owned(),
        _ => String::new(),
    }
}

#[tokio::test]
async fn request_hardening_sheds_load_times_out_and_limits_headers() {
    let db = backends().await.remove(0);
    let srv = TestServer::start_with(&db, KEY_A, |o| {
        o.limits.max_in_flight = 1;
        o.limits.request_timeout = Duration::from_secs(1);
    })
    .await;
    let url = format!("{}/api/v1/mounts", srv.base);
    let huge = "x".repeat(40 * 1024);
    let resp = srv.http.get(&url).bearer_auth(&srv.token).header("x-padding", &huge).send().await.unwrap();
    assert_eq!(resp.status(), 431);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], "headers_too_large");
    // Refused before any handler, and still audited.
    let (_, page) = srv.json(Method::GET, "/api/v1/audit?failed=true", None).await;
    let refused = page["entries"].as_array().unwrap().iter().find(|e| e["status"] == 431).cloned();
    assert_eq!(refused.map(|e| e["error"].clone()), Some(Value::from("headers_too_large")), "{page}");

    // A slow client holds the only slot (its body never completes)…
    let head = format!(
        "PATCH /api/v1/mounts/secret/secrets/slow HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n",
        srv.token
    );
    let addr = srv.addr;
    let slow = tokio::spawn(async move { raw(addr, &head, "{\"set\":", Duration::from_secs(5)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // …so the next request is shed at once with 503 and Retry-After, not queued.
    let resp = srv.http.get(&url).bearer_auth(&srv.token).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], "overloaded");
    // The slow request itself is cut off by the request timeout.
    let answer = slow.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("timeout"), "{answer}");
    let (s, _) = srv.json(Method::GET, "/api/v1/mounts", None).await;
    assert_eq!(s, 200, "the slot is free again");
    srv.stop().await;
}

#[tokio::test]
async fn list_cursors_reveal_no_path_the_caller_cannot_list() {
    for db in backends().await {
        let srv = dev(&db).await;
        for p in ["a-hidden", "b-pub", "c-hidden", "d-hidden", "e-pub", "f-hidden", "g-pub", "h-hidden"] {
            srv.set("secret", p, json!({"K": "v"})).await;
        }
        srv.policy("pubs", "[[rules]]\npath = \"secret/+\"\ncapabilities = [\"list\"]\n[[rules]]\npath = \"secret/a-hidden\"\ncapabilities = [\"deny\"]\n[[rules]]\npath = \"secret/c-hidden\"\ncapabilities = [\"deny\"]\n[[rules]]\npath = \"secret/d-hidden\"\ncapabilities = [\"deny\"]\n[[rules]]\npath = \"secret/f-hidden\"\ncapabilities = [\"deny\"]\n[[rules]]\npath = \"secret/h-hidden\"\ncapabilities = [\"deny\"]\n").await;
        let t = srv.token_with(&["pubs"]).await;
        let (mut seen, mut after) = (Vec::new(), None::<String>);
        loop {
            let q = after.as_ref().map_or(String::new(), |a| format!("&after={a}"));
            let (s, page) =
                srv.json_as(&t, Method::GET, &format!("/api/v1/mounts/secret/secrets?limit=1{q}"), None).await;
            assert_eq!(s, 200, "{page}");
            assert!(!page.to_string().contains("hidden"), "{}: {page}", db.label);
            seen.extend(page["items"].as_array().unwrap().iter().map(|i| i["path"].as_str().unwrap().to_owned()));
            match page["next"].as_str() {
                Some(n) => after = Some(n.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen, ["b-pub", "e-pub", "g-pub"], "{}", db.label);
        srv.stop().await;
    }
}

#[tokio::test]
async fn writers_without_read_learn_nothing_about_equality() {
    for db in backends().await {
        let srv = dev(&db).await;
        srv.policy("blind", "[[rules]]\npath = \"secret/p\"\ncapabilities = [\"list\", \"update\", \"create\"]\n")
            .await;
        srv.policy("sighted", "[[rules]]\npath = \"secret/p\"\ncapabilities = [\"read\", \"update\"]\n").await;
        srv.set("secret", "p", json!({"K": "sk_live_the_real_value", "OTHER": "x"})).await;
        let blind = srv.token_with(&["blind"]).await;
        let write = |token: String, value: &'static str| {
            let srv = &srv;
            async move {
                srv.json_as(
                    &token,
                    Method::PATCH,
                    "/api/v1/mounts/secret/secrets/p",
                    Some(json!({"set": {"K": value}})),
                )
                .await
            }
        };
        // The right guess and a wrong one answer alike: a new version, the field "changed".
        for (n, guess) in [(2, "sk_live_the_real_value"), (3, "sk_live_wrong_guess")] {
            let (s, b) = write(blind.clone(), guess).await;
            assert_eq!(s, 200, "{b}");
            // (`OTHER`, which the write did not set, is carried over: that says nothing of K.)
            let shape = (b["version"].as_u64(), &b["changed"], &b["unchanged"]);
            assert_eq!(shape, (Some(n), &json!(["K"]), &json!(["OTHER"])), "{}: {b}", db.label);
            let (_, view) = srv.json_as(&blind, Method::GET, "/api/v1/mounts/secret/secrets/p", None).await;
            let k = view["fields"].as_array().unwrap().iter().find(|f| f["name"] == "K").unwrap().clone();
            assert_eq!(k["version"].as_u64(), Some(n), "{}: the field's stamp says nothing either: {view}", db.label);
        }
        // Rollback to the right guess's version: also a new version, every field reported changed.
        let (s, b2) =
            srv.json_as(&blind, Method::POST, "/api/v1/mounts/secret/rollback/p", Some(json!({"version": 3}))).await;
        assert_eq!((s, b2["version"].as_u64(), &b2["unchanged"]), (200, Some(4), &json!([])), "{}: {b2}", db.label);
        // Through Vault's API, too: the stamp of an equal value moves with a blind write.
        let (s, _) = srv
            .vault(&blind, "POST", "secret/data/p", Some(json!({"data": {"K": "sk_live_wrong_guess", "OTHER": "x"}})))
            .await;
        assert_eq!(s, 200);
        let (_, view) = srv.json_as(&blind, Method::GET, "/api/v1/mounts/secret/secrets/p", None).await;
        for f in view["fields"].as_array().unwrap() {
            assert_eq!(f["version"].as_u64(), Some(5), "{}: {view}", db.label);
        }
        // A writer who may read is told, as before.
        let sighted = srv.token_with(&["sighted"]).await;
        let (s, b) = write(sighted, "sk_live_wrong_guess").await;
        assert_eq!((s, b["version"].as_u64(), &b["unchanged"]), (200, Some(5), &json!(["K", "OTHER"])), "{b}");
        srv.stop().await;
    }
}

#[tokio::test]
async fn comparing_two_secrets_takes_read_on_both() {
    for db in backends().await {
        let srv = dev(&db).await;
        srv.set("secret", "dev", json!({"K": "same", "ONLY_DEV": "1"})).await;
        srv.set("secret", "prod", json!({"K": "same", "ONLY_PROD": "1"})).await;
        srv.policy("dev-reader", "[[rules]]\npath = \"secret/dev\"\ncapabilities = [\"read\"]\n[[rules]]\npath = \"secret/prod\"\ncapabilities = [\"list\"]\n").await;
        srv.policy("both", "[[rules]]\npath = \"secret/*\"\ncapabilities = [\"read\"]\n").await;
        let url = "/api/v1/mounts/secret/diff?a=dev&b=prod";
        // Equality is information about values: `list` on one side is not enough, whichever side.
        let one = srv.token_with(&["dev-reader"]).await;
        for url in [url, "/api/v1/mounts/secret/diff?a=prod&b=dev"] {
            let (s, b) = srv.json_as(&one, Method::GET, url, None).await;
            assert_eq!(s, 403, "{}: {url}: {b}", db.label);
            assert!(b["error"]["message"].as_str().unwrap().contains("secret/prod"), "{b}");
        }
        let both = srv.token_with(&["both"]).await;
        let (s, b) = srv.json_as(&both, Method::GET, url, None).await;
        assert_eq!((s, &b["same"]), (200, &json!(["K"])), "{}: {b}", db.label);
        // Both refusals and the answer are on record under the operation's name.
        let (_, log) = srv.json(Method::GET, "/api/v1/audit?limit=1000", None).await;
        let diffs: Vec<u64> = log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["operation"] == "secrets.diff")
            .map(|e| e["status"].as_u64().unwrap())
            .collect();
        assert_eq!(diffs, vec![403, 403, 200], "{}", db.label);
        srv.stop().await;
    }
}

#[tokio::test]
async fn vault_metadata_writes_create_only_with_create() {
    for db in backends().await {
        let srv = dev(&db).await;
        srv.policy("upd", "[[rules]]\npath = \"secret/*\"\ncapabilities = [\"update\", \"list\"]\n").await;
        srv.policy("crt", "[[rules]]\npath = \"secret/*\"\ncapabilities = [\"create\", \"list\"]\n").await;
        let upd = srv.token_with(&["upd"]).await;
        let (s, _) = srv.vault(&upd, "POST", "secret/metadata/fresh", Some(json!({"max_versions": 3}))).await;
        assert_eq!(s, 403, "{}", db.label);
        let (s, _) = srv.vault(&srv.token, "GET", "secret/metadata/fresh", None).await;
        assert_eq!(s, 404, "{}: nothing was created", db.label);
        let crt = srv.token_with(&["crt"]).await;
        let (s, _) = srv.vault(&crt, "POST", "secret/metadata/fresh", Some(json!({"max_versions": 3}))).await;
        assert_eq!(s, 204);
        // Now it exists: changing it takes update, which `crt` lacks and `upd` has.
        let (s, _) = srv.vault(&crt, "POST", "secret/metadata/fresh", Some(json!({"max_versions": 4}))).await;
        assert_eq!(s, 403);
        let (s, _) = srv.vault(&upd, "POST", "secret/metadata/fresh", Some(json!({"max_versions": 4}))).await;
        assert_eq!(s, 204);
        srv.stop().await;
    }
}

#[tokio::test]
async fn out_of_range_versions_and_wild_request_ids_are_input_errors() {
    for db in backends().await {
        let srv = dev(&db).await;
        srv.set("secret", "p", json!({"K": "v"})).await;
        let huge = "9223372036854775808";
        let (s, b) = srv.json(Method::GET, &format!("/api/v1/mounts/secret/secrets/p?version={huge}"), None).await;
        assert_eq!(s, 400, "{}: {b}", db.label);
        let (s, _) = srv.vault(&srv.token, "GET", &format!("secret/data/p?version={huge}"), None).await;
        assert_eq!(s, 400);
        let (s, _) = srv
            .json(Method::POST, "/api/v1/mounts/secret/rollback/p", Some(json!({"version": 9223372036854775808u64})))
            .await;
        assert_eq!(s, 400);
        let (s, _) =
            srv.json(Method::GET, "/api/v1/mounts/secret/secrets/p?version=99999999999999999999999", None).await;
        assert_eq!(s, 400);

        let id_of = |sent: String| {
            let srv = &srv;
            async move {
                let resp = srv
                    .http
                    .get(format!("{}/api/v1/mounts", srv.base))
                    .bearer_auth(&srv.token)
                    .header("x-request-id", sent)
                    .send()
                    .await
                    .unwrap();
                resp.headers()["x-request-id"].to_str().unwrap().to_owned()
            }
        };
        assert_eq!(id_of("trace-42.a:b_c".into()).await, "trace-42.a:b_c", "a sane id is kept");
        for wild in ["x".repeat(300), "<script>alert(1)</script>".into(), "a b".into()] {
            let got = id_of(wild.clone()).await;
            assert!(got != wild && uuid::Uuid::parse_str(&got).is_ok(), "{got}");
        }
        let (_, entries) = srv.json(Method::GET, "/api/v1/audit?limit=1000", None).await;
        for e in entries["entries"].as_array().unwrap() {
            let id = e["request_id"].as_str().unwrap();
            assert!(id.len() <= 128 && !id.contains('<'), "{id}");
        }
        srv.stop().await;
    }
}

#[tokio::test]
async fn the_stale_scan_needs_a_capability() {
    for db in backends().await {
        let srv = dev(&db).await;
        srv.set("secret", "p", json!({"K": "v"})).await;
        srv.set("secret", "q", json!({"K": "v"})).await;
        srv.policy("dev", "[[rules]]\npath = \"secret/p\"\ncapabilities = [\"list\"]\n").await;
        srv.policy("stale", "[[rules]]\npath = \"sys/stale\"\ncapabilities = [\"list\"]\n").await;
        // Ages are whole seconds: both fields are a second old, past a limit of 0s.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let dev_token = srv.token_with(&["dev"]).await;
        let (s, _) = srv.json_as(&dev_token, Method::GET, "/api/v1/stale?older_than=0s", None).await;
        assert_eq!(s, 403, "{}", db.label);
        let allowed = srv.token_with(&["dev", "stale"]).await;
        let (s, b) = srv.json_as(&allowed, Method::GET, "/api/v1/stale?older_than=0s", None).await;
        assert_eq!(s, 200, "{b}");
        let paths: Vec<&str> = b.as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
        assert_eq!(paths, ["p"], "{}: only what it may list", db.label);
        srv.stop().await;
    }
}
