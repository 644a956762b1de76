//! The credential proxy against real upstreams started on 127.0.0.1: injection recipes (with an
//! independent HMAC verifier), no credential or caller token leaking either way, SSRF refusals,
//! redirects, timeouts, rate limits, `use` vs `read`, and auditing.
use crate::common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use base64::Engine;
use common::{backends, TestServer, KEY_A};
use reqwest::Method;
use serde_json::{json, Value};

const STRIPE: &str = "sk_test_51HproxyCanary000AAAA4242";
/// A key with characters that URL encoding changes.
const ECHOED: &str = "sk_test_echo+Canary/0000=4242";
const BINANCE_KEY: &str = "binanceApiKeyCanary0000000000000000000001";
const BINANCE_SECRET: &str = "binanceSecretCanary+/=000000000000000002";

async fn upstream(app: Router) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    addr
}

/// An exchange that checks Binance-style signing itself: `signature` is the last parameter and
/// the hex HMAC-SHA256 of everything before `&signature=` plus the raw body; `timestamp` must be
/// within 5 s; the API key arrives in `X-MBX-APIKEY`.
async fn exchange(headers: HeaderMap, req: Request) -> Response {
    let query = req.uri().query().unwrap_or_default().to_owned();
    let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap();
    let Some((signed, sig)) =
        query.rsplit_once("&signature=").or_else(|| query.strip_prefix("signature=").map(|s| ("", s)))
    else {
        return (StatusCode::BAD_REQUEST, "no signature").into_response();
    };
    let mut mac =
        ring::hmac::Context::with_key(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, BINANCE_SECRET.as_bytes()));
    mac.update(signed.as_bytes());
    mac.update(&body);
    if hex::encode(mac.sign().as_ref()) != sig {
        return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
    }
    let ts: i64 =
        signed.split('&').find_map(|p| p.strip_prefix("timestamp=")).and_then(|t| t.parse().ok()).unwrap_or(0);
    let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    if (now - ts).abs() > 5000 {
        return (StatusCode::BAD_REQUEST, "timestamp outside the window").into_response();
    }
    if headers.get("x-mbx-apikey").and_then(|v| v.to_str().ok()) != Some(BINANCE_KEY) {
        return (StatusCode::UNAUTHORIZED, "bad api key").into_response();
    }
    Json(json!({"orderId": 7, "signed": signed})).into_response()
}

/// Echoes everything it received, and the credential in a header and split across body chunks.
async fn echo(headers: HeaderMap, req: Request) -> Response {
    let uri = req.uri().to_string();
    let method = req.method().to_string();
    let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap();
    let hs: serde_json::Map<String, Value> =
        headers.iter().map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or("?")))).collect();
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let doc = json!({"method": method, "uri": uri, "headers": hs, "body": String::from_utf8_lossy(&body)}).to_string();
    // The key, raw, URL-encoded (both hex cases), JSON-escaped and in base64, split over chunk
    // boundaries.
    let enc = ECHOED.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    let b64 = base64::engine::general_purpose::STANDARD.encode(ECHOED);
    let tail = format!(" raw={ECHOED} enc={enc} lower={} json={} b64={b64}", lower_hex(&enc), json_escaped(ECHOED));
    let (a, b) = tail.split_at(tail.len() - 9);
    let chunks = vec![Ok::<_, std::io::Error>(doc), Ok(a.to_owned()), Ok(b.to_owned())];
    Response::builder().header("x-echo-auth", auth).body(Body::from_stream(futures_util::stream::iter(chunks))).unwrap()
}

/// A JSON encoder's escapes: PHP's `\/` and Go's `\u002b`.
fn json_escaped(v: &str) -> String {
    v.replace('/', "\\/").replace('+', "\\u002b")
}

fn lower_hex(enc: &str) -> String {
    enc.replace("%2B", "%2b").replace("%2F", "%2f").replace("%3D", "%3d")
}

async fn bearer(headers: HeaderMap) -> Response {
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some(v) if v == format!("Bearer {STRIPE}") => {
            Json(json!({"object": "balance", "available": 100})).into_response()
        }
        _ => (StatusCode::UNAUTHORIZED, "no").into_response(),
    }
}

async fn basic(headers: HeaderMap, Query(q): Query<std::collections::HashMap<String, String>>) -> Response {
    let want = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("svc-user:svc-pass-canary-0001"));
    let ok = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(want.as_str());
    let key_ok = q.get("key").map(String::as_str) == Some("query-key-canary-0001");
    if ok && key_ok {
        Json(json!({"ok": true})).into_response()
    } else {
        (StatusCode::UNAUTHORIZED, format!("auth={ok} key={key_ok}")).into_response()
    }
}

async fn start_upstreams() -> SocketAddr {
    let app = Router::new()
        .route("/v1/balance", get(bearer))
        .route("/api/v3/order", any(exchange))
        .route("/basic", get(basic))
        .route("/echo/{*rest}", any(echo))
        .route(
            "/redirect",
            get(|| async { (StatusCode::FOUND, [("location", "http://169.254.169.254/latest/meta-data")]) }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
    upstream(app).await
}

/// Writes a route; one to a plain-HTTP test upstream opts in to insecure upstreams (which the
/// server must allow too).
async fn route(srv: &TestServer, name: &str, mut body: Value) -> (u16, Value) {
    if body["upstream"].as_str().is_some_and(|u| u.starts_with("http://")) && body.get("allow_insecure").is_none() {
        body["allow_insecure"] = json!(true);
    }
    srv.json(Method::PUT, &format!("/api/v1/proxy-routes/{name}"), Some(body)).await
}

async fn call(
    srv: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&str>,
) -> (u16, HeaderMap, String) {
    // A client that shows redirects instead of following them.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut req = http.request(method, format!("{}/api/v1/proxy/{path}", srv.base)).bearer_auth(token);
    if let Some(b) = body {
        req = req.body(b.to_owned());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let mut headers = HeaderMap::new();
    for (k, v) in resp.headers() {
        headers.insert(k.clone(), v.clone());
    }
    (status, headers, resp.text().await.unwrap())
}

#[tokio::test]
async fn recipes_inject_credentials_the_caller_never_sees() {
    let up = start_upstreams().await;
    for db in backends().await {
        let srv = TestServer::start_with(&db, KEY_A, |o| o.proxy.allow_insecure = true).await;
        srv.set("secret", "stripe", json!({"api_key": STRIPE})).await;
        srv.set("secret", "echo", json!({"api_key": ECHOED})).await;
        srv.set("secret", "users/42/binance", json!({"api_key": BINANCE_KEY, "api_secret": BINANCE_SECRET})).await;
        srv.set("secret", "users/43/binance", json!({"api_key": "other", "api_secret": "other-secret-000000"})).await;
        srv.set(
            "secret",
            "svc",
            json!({"user": "svc-user", "pass": "svc-pass-canary-0001", "key": "query-key-canary-0001"}),
        )
        .await;
        let origin = format!("http://{up}");
        for (name, secret, inject) in [
            ("stripe", "secret/stripe", vec!["bearer:api_key"]),
            (
                "binance",
                "secret/users/{account}/binance",
                vec!["header:X-MBX-APIKEY={api_key}", "hmac-sha256-query:api_secret"],
            ),
            ("svc", "secret/svc", vec!["basic:user:pass", "query:key=key"]),
            ("echo", "secret/echo", vec!["bearer:api_key"]),
        ] {
            let (s, b) = route(&srv, name, json!({"upstream": origin, "secret": secret, "inject": inject})).await;
            assert_eq!(s, 200, "{b}");
        }
        // A token that may use the keys but not read them.
        srv.policy("app", "[[rules]]\npath = \"secret/stripe\"\ncapabilities = [\"use\"]\n\n[[rules]]\npath = \"secret/users/42/binance\"\ncapabilities = [\"use\"]\n\n[[rules]]\npath = \"secret/svc\"\ncapabilities = [\"use\"]\n\n[[rules]]\npath = \"secret/echo\"\ncapabilities = [\"use\"]\n").await;
        let app = srv.token_with(&["app"]).await;
        assert_eq!(
            srv.json_as(&app, Method::GET, "/api/v1/mounts/secret/secrets/stripe?reveal=true", None).await.0,
            403
        );

        let (s, _, body) = call(&srv, &app, Method::GET, "stripe/v1/balance", None).await;
        assert_eq!((s, body.contains("balance")), (200, true), "{}: {body}", db.label);
        // Binance signing: the exchange verifies the HMAC over the query as sent plus the body.
        let (s, _, body) = call(
            &srv,
            &app,
            Method::POST,
            "binance/42/api/v3/order?symbol=BTCUSDT&side=BUY&signature=forged",
            Some("quantity=1"),
        )
        .await;
        assert_eq!(s, 200, "{body}");
        let signed: Value = serde_json::from_str(&body).unwrap();
        let signed = signed["signed"].as_str().unwrap();
        assert!(signed.starts_with("symbol=BTCUSDT&side=BUY&timestamp="), "{signed}");
        // The caller's own timestamp is kept.
        let ts = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
        let (s, _, body) =
            call(&srv, &app, Method::GET, &format!("binance/42/api/v3/order?timestamp={ts}&symbol=X"), None).await;
        assert_eq!(s, 200, "{body}");
        assert!(body.contains(&format!("timestamp={ts}&symbol=X")), "{body}");
        // Account isolation: the policy names account 42 only.
        assert_eq!(call(&srv, &app, Method::GET, "binance/43/api/v3/order", None).await.0, 403);
        for bad in ["binance/..%2f43/api/v3/order", "binance/4%2e2/api/v3/order"] {
            let (s, _, _) = call(&srv, &app, Method::GET, bad, None).await;
            assert!(s == 400 || s == 404, "{bad}: {s}");
        }
        let (s, _, body) = call(&srv, &app, Method::GET, "svc/basic", None).await;
        assert_eq!(s, 200, "{body}");
        // Calls are counted by route and upstream status class, nothing more.
        let metrics = srv
            .http
            .get(format!("{}/v1/sys/metrics?format=prometheus", srv.base))
            .bearer_auth(&srv.token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(metrics.contains(r#"keyward_proxy_calls_total{route="svc",upstream_status="2xx"}"#), "{metrics}");

        // The echo upstream sees neither the caller's token nor its cookies; the client never
        // sees the credential, raw or URL-encoded, in headers or in a body split across chunks.
        let resp = srv
            .http
            .post(format!("{}/api/v1/proxy/echo/echo/x?a=1", srv.base))
            .bearer_auth(&app)
            .header("x-vault-token", &app)
            .header("cookie", "session=abc")
            .header("proxy-authorization", "Basic eA==")
            .header("x-custom", "kept")
            .header("connection", "x-hop")
            .header("x-hop", "dropped")
            .body("payload")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let echo_auth = resp.headers().get("x-echo-auth").unwrap().to_str().unwrap().to_owned();
        let text = resp.text().await.unwrap();
        let enc = ECHOED.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
        let b64 = base64::engine::general_purpose::STANDARD.encode(ECHOED);
        for leaked in [ECHOED.to_owned(), lower_hex(&enc), enc, json_escaped(ECHOED), b64] {
            assert!(
                !text.contains(&leaked) && !echo_auth.contains(&leaked),
                "{leaked} came back: {text} / {echo_auth}"
            );
        }
        assert!(
            text.contains(
                "raw=sk_test_....4242 enc=sk_test_....4242 lower=sk_test_....4242 json=sk_test_....4242 b64=****"
            ),
            "{text}"
        );
        assert!(echo_auth.contains("sk_test_....4242"), "{echo_auth}");
        assert!(!text.contains(&app), "the caller's token reached the upstream: {text}");
        let (doc, _) = text.split_once(" raw=").unwrap();
        let doc: Value = serde_json::from_str(doc).unwrap();
        for h in ["cookie", "x-vault-token", "proxy-authorization", "x-hop"] {
            assert!(doc["headers"].get(h).is_none(), "{h} reached the upstream");
        }
        assert_eq!((doc["headers"]["x-custom"].as_str(), doc["body"].as_str()), (Some("kept"), Some("payload")));
        assert_eq!(doc["headers"]["accept-encoding"].as_str(), Some("identity"));

        // Every call is audited, without the credential, signature or upstream query string. A
        // call's own entry commits after its answer went, so the last one may still be on its way.
        let mut waited = 0;
        let calls = loop {
            let (_, a) = srv.json(Method::GET, "/api/v1/audit?limit=1000&operation=proxy.call", None).await;
            let calls = a["entries"].as_array().unwrap().clone();
            if calls.iter().any(|e| e["details"]["route"] == "echo") || waited == 100 {
                break calls;
            }
            waited += 1;
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert!(calls.len() >= 8 && calls.iter().any(|e| e["details"]["route"] == "echo"), "{calls:?}");
        let c = calls.iter().find(|e| e["details"]["route"] == "binance").unwrap();
        assert_eq!(
            (c["details"]["account"].as_str(), c["details"]["upstream_status"].as_u64()),
            (Some("42"), Some(200))
        );
        assert_eq!(c["details"]["upstream_path"], "/api/v3/order");
        assert!(c["details"]["latency_ms"].is_u64());
        let (_, all) = srv.json(Method::GET, "/api/v1/audit?limit=1000", None).await;
        let all = all.to_string();
        for secret in
            [STRIPE, ECHOED, BINANCE_KEY, BINANCE_SECRET, "BTCUSDT", "svc-pass-canary-0001", "query-key-canary-0001"]
        {
            assert!(!all.contains(secret), "{secret} in the audit log");
        }
        assert!(all.contains("\"proxy.use\""), "each use is recorded before the call");
        srv.stop().await;
    }
}

#[tokio::test]
async fn ssrf_redirects_timeouts_and_limits() {
    let up = start_upstreams().await;
    let db = backends().await.remove(0);
    let srv = TestServer::start_with(&db, KEY_A, |o| o.proxy.allow_insecure = true).await;
    srv.set("secret", "stripe", json!({"api_key": STRIPE})).await;
    let origin = format!("http://{up}");
    route(&srv, "s", json!({"upstream": origin, "secret": "secret/stripe", "inject": ["bearer:api_key"], "timeout": "1s", "rate_limit": "8/m"})).await;
    let t = srv.token.clone();
    // Redirects are returned as they are, never followed.
    let (s, h, _) = call(&srv, &t, Method::GET, "s/redirect", None).await;
    assert_eq!((s, h.get("location").unwrap().to_str().unwrap()), (302, "http://169.254.169.254/latest/meta-data"));
    let (s, _, body) = call(&srv, &t, Method::GET, "s/slow", None).await;
    assert_eq!(s, 504, "{body}");
    assert!(body.contains("upstream_timeout"));
    // Traversal and absolute-form targets are refused before anything is sent.
    for p in ["s/../admin", "s/a/%2e%2e/b", "s/a%2F..%2Fb", "s/x@evil.example/", "s//evil.example/x"] {
        let (s, _, b) = call(&srv, &t, Method::GET, p, None).await;
        assert!(s == 400 || s == 404, "{p}: {s} {b}");
    }
    for raw in [
        format!("GET http://evil.example/api/v1/proxy/s/v1/balance HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer {t}\r\nConnection: close\r\n\r\n"),
        format!("CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\nAuthorization: Bearer {t}\r\nConnection: close\r\n\r\n"),
    ] {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut c = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
        c.write_all(raw.as_bytes()).await.unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 4"), "{raw}: {out}");
    }
    // The route's rate limit: 8 a minute in all (the calls above count), then 429.
    let mut codes = Vec::new();
    for _ in 0..8 {
        codes.push(call(&srv, &t, Method::GET, "s/v1/balance", None).await.0);
    }
    assert!(codes.contains(&429), "{codes:?}");
    // An unreachable upstream is a clear 502.
    route(
        &srv,
        "dead",
        json!({"upstream": "http://127.0.0.1:9", "secret": "secret/stripe", "inject": ["bearer:api_key"]}),
    )
    .await;
    let (s, _, body) = call(&srv, &t, Method::GET, "dead/x", None).await;
    assert_eq!(s, 502, "{body}");
    // Route management: validation and sudo.
    for bad in [
        json!({"upstream": "ftp://x", "secret": "secret/stripe", "inject": ["bearer:api_key"]}),
        json!({"upstream": origin, "secret": "secret/stripe", "inject": []}),
        json!({"upstream": origin, "secret": "secret/stripe", "inject": ["header:Host={api_key}"]}),
        json!({"upstream": origin, "secret": "nopath", "inject": ["bearer:api_key"]}),
        json!({"upstream": origin, "secret": "secret/a/{account}/{account}", "inject": ["bearer:api_key"]}),
        json!({"upstream": format!("{origin}/v1"), "secret": "secret/stripe", "inject": ["bearer:api_key"]}),
        json!({"upstream": origin, "secret": "secret/stripe", "inject": ["bearer:api_key"], "rate_limit": "fast"}),
    ] {
        let (s, b) = route(&srv, "bad", bad.clone()).await;
        assert_eq!(s, 400, "{bad}: {b}");
    }
    srv.policy("user", "[[rules]]\npath = \"secret/stripe\"\ncapabilities = [\"use\", \"read\"]\n").await;
    let user = srv.token_with(&["user"]).await;
    let (s, _) = srv
        .json_as(
            &user,
            Method::PUT,
            "/api/v1/proxy-routes/mine",
            Some(json!({"upstream": origin, "secret": "secret/stripe", "inject": ["bearer:api_key"]})),
        )
        .await;
    assert_eq!(s, 403, "creating a route needs sudo");
    let (s, l) = srv.json(Method::GET, "/api/v1/proxy-routes", None).await;
    assert_eq!((s, l["routes"].as_array().unwrap().len()), (200, 2));
    assert!(!l.to_string().contains(STRIPE));
    assert_eq!(srv.json(Method::DELETE, "/api/v1/proxy-routes/dead", None).await.0, 204);
    assert_eq!(call(&srv, &t, Method::GET, "dead/x", None).await.0, 404);
    srv.stop().await;
}

#[tokio::test]
async fn internal_upstreams_need_the_insecure_flag() {
    let up = start_upstreams().await;
    let db = backends().await.remove(0);
    let srv = TestServer::start(&db, KEY_A).await;
    srv.set("secret", "stripe", json!({"api_key": STRIPE})).await;
    for upstream in [
        format!("http://{up}"),
        format!("https://127.0.0.1:{}", up.port()),
        "https://169.254.169.254".into(),
        "https://[::1]".into(),
    ] {
        let (s, b) =
            route(&srv, "x", json!({"upstream": upstream, "secret": "secret/stripe", "inject": ["bearer:api_key"]}))
                .await;
        assert_eq!(s, 400, "{upstream}: {b}");
    }
    // A name is checked after resolution, on every connection: localhost resolves to loopback.
    let (s, b) = route(&srv, "local", json!({"upstream": format!("https://localhost:{}", up.port()), "secret": "secret/stripe", "inject": ["bearer:api_key"]})).await;
    assert_eq!(s, 200, "{b}");
    let (s, _, body) = call(&srv, &srv.token, Method::GET, "local/v1/balance", None).await;
    assert_eq!(s, 502, "{body}");
    assert!(body.contains("upstream_forbidden"), "{body}");
    srv.stop().await;
}

/// A call's own entry commits after its answer went; stopping the server right after the call
/// still leaves it on record (on every backend).
#[tokio::test]
async fn a_calls_entry_is_on_record_once_the_server_has_stopped() {
    let up = start_upstreams().await;
    for db in backends().await {
        let srv = TestServer::start_with(&db, KEY_A, |o| o.proxy.allow_insecure = true).await;
        srv.set("secret", "stripe", json!({"api_key": STRIPE})).await;
        let origin = format!("http://{up}");
        route(&srv, "last", json!({"upstream": origin, "secret": "secret/stripe", "inject": ["bearer:api_key"]})).await;
        let (s, _, body) = call(&srv, &srv.token, Method::GET, "last/v1/balance", None).await;
        assert_eq!(s, 200, "{}: {body}", db.label);
        srv.stop().await;
        let pool = db.pool().await;
        let entries: Vec<(String,)> =
            sqlx::query_as("SELECT entry FROM audit_log ORDER BY seq").fetch_all(&pool).await.unwrap();
        let last = entries.last().map(|e| e.0.as_str()).unwrap_or_default();
        assert!(
            last.contains("\"operation\":\"proxy.call\"") && last.contains("\"route\":\"last\""),
            "{}: the call's entry was lost at shutdown: {last}",
            db.label
        );
        pool.close().await;
    }
}

#[tokio::test]
async fn a_route_can_only_send_what_its_writer_may_use() {
    let up = start_upstreams().await;
    for db in backends().await {
        let srv = TestServer::start_with(&db, KEY_A, |o| o.proxy.allow_insecure = true).await;
        srv.set("secret", "stripe", json!({"api_key": STRIPE})).await;
        srv.set("secret", "users/42/binance", json!({"api_key": BINANCE_KEY, "api_secret": BINANCE_SECRET})).await;
        let origin = format!("http://{up}");
        srv.policy("routes", "[[rules]]\npath = \"sys/proxy\"\ncapabilities = [\"sudo\"]\n").await;
        srv.policy("use-stripe", "[[rules]]\npath = \"secret/stripe\"\ncapabilities = [\"use\"]\n").await;
        srv.policy("use-42", "[[rules]]\npath = \"secret/users/42/binance\"\ncapabilities = [\"use\"]\n").await;
        srv.policy("use-all", "[[rules]]\npath = \"secret/users/+/binance\"\ncapabilities = [\"use\"]\n").await;
        srv.policy("no-vip", "[[rules]]\npath = \"secret/users/vip/binance\"\ncapabilities = [\"deny\"]\n").await;
        let put = |token: String, name: &'static str, secret: &'static str| {
            let (srv, origin) = (&srv, origin.clone());
            async move {
                let body =
                    json!({"upstream": origin, "secret": secret, "inject": ["bearer:api_key"], "allow_insecure": true});
                srv.json_as(&token, Method::PUT, &format!("/api/v1/proxy-routes/{name}"), Some(body)).await
            }
        };
        // `sudo` on sys/proxy alone cannot point a key it may not use anywhere.
        let admin = srv.token_with(&["routes"]).await;
        let (s, e) = put(admin.clone(), "s", "secret/stripe").await;
        assert_eq!(s, 403, "{}: {e}", db.label);
        let stripe_admin = srv.token_with(&["routes", "use-stripe"]).await;
        assert_eq!(put(stripe_admin.clone(), "s", "secret/stripe").await.0, 200);
        // A template needs every instance covered, and no deny on any.
        assert_eq!(
            put(srv.token_with(&["routes", "use-42"]).await, "b", "secret/users/{account}/binance").await.0,
            403
        );
        let (s, _) =
            put(srv.token_with(&["routes", "use-all", "no-vip"]).await, "b", "secret/users/{account}/binance").await;
        assert_eq!(s, 403, "{}: a deny on one account refuses the template", db.label);
        assert_eq!(
            put(srv.token_with(&["routes", "use-all"]).await, "b", "secret/users/{account}/binance").await.0,
            200
        );
        // Repointing a route is its own audited event, naming both upstreams.
        let (s, b) = srv
            .json_as(
                &stripe_admin,
                Method::PUT,
                "/api/v1/proxy-routes/s",
                Some(json!({"upstream": "http://127.0.0.1:9", "secret": "secret/stripe", "inject": ["bearer:api_key"], "allow_insecure": true})),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let (_, a) = srv.json(Method::GET, "/api/v1/audit?limit=1000&operation=proxy.routes.repoint", None).await;
        let e = &a["entries"].as_array().unwrap()[0];
        assert_eq!((e["path"].as_str(), e["status"].as_u64()), (Some("s"), Some(200)), "{e}");
        assert_eq!(e["details"]["previous_upstream"].as_str(), Some(origin.as_str()), "{e}");
        assert_eq!(e["details"]["upstream"].as_str(), Some("http://127.0.0.1:9"), "{e}");
        let (_, a) = srv.json(Method::GET, "/api/v1/audit?limit=1000&operation=proxy.routes.create", None).await;
        assert_eq!(a["entries"].as_array().unwrap().len(), 2);
        srv.stop().await;
    }
}

#[tokio::test]
async fn only_global_unicast_unless_server_and_route_opt_in() {
    let up = start_upstreams().await;
    let db = backends().await.remove(0);
    let srv = TestServer::start_with(&db, KEY_A, |o| o.proxy.allow_insecure = true).await;
    srv.set("secret", "stripe", json!({"api_key": STRIPE})).await;
    // The server allows it, but a route that did not opt in gets the strict rule.
    let plain = json!({"upstream": format!("http://{up}"), "secret": "secret/stripe", "inject": ["bearer:api_key"], "allow_insecure": false});
    let (s, b) = route(&srv, "plain", plain).await;
    assert_eq!(s, 400, "{b}");
    for upstream in
        ["https://198.18.0.1", "https://[2002:a9fe:a9fe::1]", "https://[::169.254.169.254]", "https://[fec0::1]"]
    {
        let (s, b) = route(&srv, "x", json!({"upstream": upstream, "secret": "secret/stripe", "inject": ["bearer:api_key"], "allow_insecure": false})).await;
        assert_eq!(s, 400, "{upstream}: {b}");
    }
    let by_name = json!({"upstream": format!("https://localhost:{}", up.port()), "secret": "secret/stripe", "inject": ["bearer:api_key"], "allow_insecure": false});
    assert_eq!(route(&srv, "local", by_name).await.0, 200);
    let (s, _, body) = call(&srv, &srv.token, Method::GET, "local/v1/balance", None).await;
    assert_eq!(s, 502, "a name resolving to loopback: {body}");
    assert!(body.contains("upstream_forbidden"), "{body}");
    // Opted in: reaches the internal upstream.
    let (s, b) = route(
        &srv,
        "internal",
        json!({"upstream": format!("http://{up}"), "secret": "secret/stripe", "inject": ["bearer:api_key"]}),
    )
    .await;
    assert_eq!((s, b["allow_insecure"].as_bool()), (200, Some(true)), "{b}");
    let (s, _, body) = call(&srv, &srv.token, Method::GET, "internal/v1/balance", None).await;
    assert_eq!(s, 200, "{body}");
    let root = srv.token.clone();
    srv.stop().await;
    // A server without the flag refuses the opt-in itself.
    let srv = TestServer::wrap(common::try_start_with(&db, KEY_A, false, |_| {}).await.unwrap(), root);
    let (s, b) = route(
        &srv,
        "internal2",
        json!({"upstream": format!("http://{up}"), "secret": "secret/stripe", "inject": ["bearer:api_key"]}),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("--proxy-allow-insecure"), "{b}");
    srv.stop().await;
}
