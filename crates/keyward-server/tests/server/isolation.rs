//! Isolation, property-tested: random policies and requests against a reference model. No token
//! ever reads, lists or learns of a secret outside its policies. 10,000 cases run in-process
//! against the router (authorization + domain + SQLite); a few hundred run over real HTTP on every
//! backend.
use crate::common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use common::{backends, test_entry, TestDb, TestServer, KEY_A};
use http_body_util::BodyExt;
use keyward_core::{Keyward, KeywardConfig, MountKind};
use keyward_crypto::MasterKeyring;
use keyward_server::{router, AuditState, GuardConfig, HttpLimits};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use tower::ServiceExt;

const MOUNTS: [&str; 3] = ["m0", "m1", "m2"];
const PATHS: [&str; 4] = ["a", "b", "a/x", "b/y/z"];
const CAPS: [&str; 5] = ["list", "read", "create", "update", "deny"];

fn value_of(mount: &str, path: &str) -> String {
    format!("V-{mount}-{}-0123456789", path.replace('/', "_"))
}

/// The reference matcher: an independent, character-level reading of Vault's globs.
fn ref_match(pattern: &[u8], target: &[u8]) -> bool {
    match pattern.first() {
        None => target.is_empty(),
        Some(b'*') if pattern.len() == 1 => true,
        Some(b'+') if pattern.get(1).is_none_or(|c| *c == b'/' || *c == b'*') => {
            let seg = target.iter().position(|c| *c == b'/').unwrap_or(target.len());
            seg > 0 && ref_match(&pattern[1..], &target[seg..])
        }
        Some(c) => target.first() == Some(c) && ref_match(&pattern[1..], &target[1..]),
    }
}

#[derive(Debug, Clone)]
struct Rule {
    path: String,
    caps: Vec<&'static str>,
}

fn ref_caps(rules: &[Rule], target: &str) -> Vec<&'static str> {
    let mut caps = Vec::new();
    for r in rules.iter().filter(|r| ref_match(r.path.as_bytes(), target.as_bytes())) {
        if r.caps.contains(&"deny") {
            return vec![];
        }
        caps.extend(r.caps.iter().copied());
    }
    caps
}

fn rule_strategy() -> impl Strategy<Value = Rule> {
    let head = prop::sample::select(vec!["m0", "m1", "m2", "+", "m*", "*"]);
    let tail = prop::sample::select(vec!["", "/a", "/b", "/a/x", "/+", "/*", "/a/*", "/+/x", "/b/+/z", "/a*"]);
    let caps = prop::sample::subsequence(CAPS.to_vec(), 1..=3);
    (head, tail, caps).prop_map(|(h, t, caps)| {
        let path = if h.ends_with('*') { h.to_owned() } else { format!("{h}{t}") };
        Rule { path, caps }
    })
}

#[derive(Debug, Clone)]
enum Op {
    Masked(usize, usize),
    Reveal(usize, usize),
    Write(usize, usize),
    ListEnvs(usize),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize, 0..4usize).prop_map(|(m, p)| Op::Masked(m, p)),
        (0..3usize, 0..4usize).prop_map(|(m, p)| Op::Reveal(m, p)),
        (0..3usize, 0..4usize).prop_map(|(m, p)| Op::Write(m, p)),
        (0..3usize).prop_map(Op::ListEnvs),
    ]
}

/// Where requests go: the router in-process, or a real server over HTTP.
enum Target {
    InProcess { app: axum::Router, root: String },
    Http { srv: Box<TestServer> },
}

impl Target {
    fn root(&self) -> &str {
        match self {
            Target::InProcess { root, .. } => root,
            Target::Http { srv } => &srv.token,
        }
    }

    async fn send(&self, token: &str, method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
        match self {
            Target::InProcess { app, .. } => {
                let mut req =
                    Request::builder().method(method).uri(url).header("authorization", format!("Bearer {token}"));
                let body = match body {
                    Some(b) => {
                        req = req.header("content-type", "application/json");
                        Body::from(b.to_string())
                    }
                    None => Body::empty(),
                };
                let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
                let status = resp.status().as_u16();
                let bytes = resp.into_body().collect().await.unwrap().to_bytes();
                (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
            }
            Target::Http { srv } => srv.json_as(token, method.parse().unwrap(), url, body).await,
        }
    }
}

/// Creates the mounts and secrets, and a token whose only policy is `p` (rewritten per case).
async fn seed(t: &Target) -> String {
    let root = t.root().to_owned();
    for m in MOUNTS {
        let (s, b) = t.send(&root, "POST", "/api/v1/mounts", Some(json!({"path": m}))).await;
        assert_eq!(s, 201, "{b}");
        for p in PATHS {
            let body = json!({"set": {"K": value_of(m, p)}});
            let (s, b) = t.send(&root, "PATCH", &format!("/api/v1/mounts/{m}/secrets/{p}"), Some(body)).await;
            assert_eq!(s, 200, "{b}");
        }
    }
    let doc = json!({"rules": [{"path": "m0/a", "capabilities": ["list"]}]}).to_string();
    t.send(&root, "PUT", "/api/v1/policies/p", Some(json!({ "document": doc }))).await;
    let (s, b) =
        t.send(&root, "POST", "/api/v1/tokens", Some(json!({"policies": ["p"], "no_default_policy": true}))).await;
    assert_eq!(s, 201, "{b}");
    b["token"].as_str().unwrap().to_owned()
}

/// Runs one case: rewrites the policy, then checks each operation against the reference.
async fn check_case(t: &Target, token: &str, rules: &[Rule], ops: &[Op]) -> Result<(), String> {
    let doc =
        json!({"rules": rules.iter().map(|r| json!({"path": r.path, "capabilities": r.caps})).collect::<Vec<_>>()});
    let root = t.root().to_owned();
    let (s, b) = t.send(&root, "PUT", "/api/v1/policies/p", Some(json!({ "document": doc.to_string() }))).await;
    if s != 200 {
        return Err(format!("policy write failed: {s} {b}"));
    }
    for op in ops {
        match *op {
            Op::Masked(m, p) | Op::Reveal(m, p) => {
                let reveal = matches!(op, Op::Reveal(..));
                let target = format!("{}/{}", MOUNTS[m], PATHS[p]);
                let caps = ref_caps(rules, &target);
                let allowed = caps.contains(&"read") || (!reveal && caps.contains(&"list"));
                let url = format!(
                    "/api/v1/mounts/{target_m}/secrets/{}{}",
                    PATHS[p],
                    if reveal { "?reveal=true" } else { "" },
                    target_m = MOUNTS[m]
                );
                let (s, b) = t.send(token, "GET", &url, None).await;
                let plain = value_of(MOUNTS[m], PATHS[p]);
                if allowed {
                    let got = b["fields"][0]["value"].as_str().unwrap_or_default().to_owned();
                    let want = if reveal { plain.clone() } else { keyward_crypto::mask_value(&plain) };
                    if s != 200 || got != want {
                        return Err(format!("{op:?} on {target} should be allowed: {s} {b}"));
                    }
                } else if s != 403 || b.to_string().contains(&plain) {
                    return Err(format!("{op:?} on {target} should be denied: {s} {b}"));
                }
            }
            Op::Write(m, p) => {
                let target = format!("{}/{}", MOUNTS[m], PATHS[p]);
                let allowed = ref_caps(rules, &target).contains(&"update");
                let url = format!("/api/v1/mounts/{}/secrets/{}", MOUNTS[m], PATHS[p]);
                let body = json!({"set": {"K": value_of(MOUNTS[m], PATHS[p])}});
                let (s, b) = t.send(token, "PATCH", &url, Some(body)).await;
                if !((allowed && s == 200) || (!allowed && s == 403)) {
                    return Err(format!("write on {target}: allowed={allowed} but {s} {b}"));
                }
            }
            Op::ListEnvs(m) => {
                let (s, b) = t.send(token, "GET", &format!("/api/v1/mounts/{}/secrets", MOUNTS[m]), None).await;
                let mut want: Vec<&str> = PATHS
                    .iter()
                    .copied()
                    .filter(|p| {
                        let c = ref_caps(rules, &format!("{}/{p}", MOUNTS[m]));
                        c.contains(&"list") || c.contains(&"read")
                    })
                    .collect();
                want.sort_unstable();
                match s {
                    200 => {
                        let mut got: Vec<&str> =
                            b["items"].as_array().unwrap().iter().map(|i| i["path"].as_str().unwrap()).collect();
                        got.sort_unstable();
                        if got != want {
                            return Err(format!("env list of {}: got {got:?}, reference {want:?}", MOUNTS[m]));
                        }
                    }
                    403 if want.is_empty() => {}
                    _ => return Err(format!("env list of {}: {s} {b} (reference {want:?})", MOUNTS[m])),
                }
            }
        }
    }
    Ok(())
}

fn run_cases(t: &Target, token: &str, cases: u32, rt: &tokio::runtime::Handle) {
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let strategy = (prop::collection::vec(rule_strategy(), 1..4), prop::collection::vec(op_strategy(), 1..8));
    runner
        .run(&strategy, |(rules, ops)| {
            let r = tokio::task::block_in_place(|| rt.block_on(check_case(t, token, &rules, &ops)));
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
            Ok(())
        })
        .unwrap();
}

async fn in_process(db: &TestDb) -> Target {
    let store = keyward_store::connect(&db.url, 4).await.unwrap();
    let kw = Keyward::open(Arc::new(store), MasterKeyring::parse(KEY_A).unwrap(), KeywardConfig::default(), None)
        .await
        .unwrap();
    let root = kw.initialize(test_entry()).await.unwrap().expose().to_owned();
    kw.create_mount("secret", MountKind::Kv, None, test_entry()).await.unwrap();
    let guard = GuardConfig { ip_rate: None, token_rate: None, ..GuardConfig::default() };
    Target::InProcess {
        app: router(
            kw,
            guard,
            HttpLimits::default(),
            Arc::new(AuditState::new(true, None)),
            keyward_server::ProxyConfig::default(),
            keyward_server::AuthConfig::default(),
        ),
        root,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_reaches_outside_its_policies_in_process() {
    let cases = std::env::var("KEYWARD_ISOLATION_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let db = backends().await.remove(0);
    let target = in_process(&db).await;
    let token = seed(&target).await;
    run_cases(&target, &token, cases, &tokio::runtime::Handle::current());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_reaches_outside_its_policies_over_http() {
    for db in backends().await {
        let target = Target::Http { srv: Box::new(TestServer::start(&db, KEY_A).await) };
        let token = seed(&target).await;
        run_cases(&target, &token, 300, &tokio::runtime::Handle::current());
        if let Target::Http { srv } = target {
            srv.stop().await;
        }
    }
}

#[test]
fn reference_matcher_agrees_on_examples() {
    assert!(ref_match(b"m0/*", b"m0/a/x"));
    assert!(!ref_match(b"m0/*", b"m0"));
    assert!(ref_match(b"+/a", b"m1/a"));
    assert!(!ref_match(b"+/a", b"m1/b/a"));
    assert!(ref_match(b"m*", b"m2/b/y/z"));
    assert!(ref_match(b"m0/a*", b"m0/a/x"));
    assert!(ref_match(b"m0/b/+/z", b"m0/b/y/z"));
}
