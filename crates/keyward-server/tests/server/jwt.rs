//! JWT login end to end: keys and tokens minted here, served by a local JWKS and discovery server
//! on 127.0.0.1 over HTTPS with a CA from rcgen; a valid CI login and its narrow access, then
//! each validation rule attacked — on SQLite and PostgreSQL.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{json, Value};

use crate::common::{backends, TestServer, KEY_A};

const ISSUER_PATH: &str = "https://issuer.keyward.test";
const RSA_PK8: &[u8] = include_bytes!("testdata/jwt/rsa2048-test-only.pk8");
const WEAK: &str = include_str!("testdata/jwt/rsa1024-test-only.json");

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

/// A signing key of the test's issuer.
enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl Signer {
    fn rsa() -> Self {
        Signer::Rsa(RsaKeyPair::from_pkcs8(RSA_PK8).unwrap())
    }

    fn ec() -> Self {
        let rng = SystemRandom::new();
        let pk8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        Signer::Ec(EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pk8.as_ref(), &rng).unwrap())
    }

    fn ed() -> Self {
        let pk8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Signer::Ed(Ed25519KeyPair::from_pkcs8(pk8.as_ref()).unwrap())
    }

    fn alg(&self) -> &'static str {
        match self {
            Signer::Rsa(_) => "RS256",
            Signer::Ec(_) => "ES256",
            Signer::Ed(_) => "EdDSA",
        }
    }

    /// Its public JWK under `kid`.
    fn jwk(&self, kid: &str) -> Value {
        match self {
            Signer::Rsa(k) => {
                let p: ring::rsa::PublicKeyComponents<Vec<u8>> = k.public().into();
                json!({"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
                    "n": URL_SAFE_NO_PAD.encode(&p.n), "e": URL_SAFE_NO_PAD.encode(&p.e)})
            }
            Signer::Ec(k) => {
                let point = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "kid": kid,
                    "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])})
            }
            Signer::Ed(k) => json!({"kty": "OKP", "crv": "Ed25519", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(k.public_key().as_ref())}),
        }
    }

    /// A PEM SubjectPublicKeyInfo of an Ed25519 key.
    fn ed_pem(&self) -> String {
        let Signer::Ed(k) = self else { panic!("an Ed25519 key") };
        let der =
            [&[0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00][..], k.public_key().as_ref()]
                .concat();
        format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", STANDARD.encode(der))
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64(header), b64(claims));
        let rng = SystemRandom::new();
        let sig = match self {
            Signer::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig).unwrap();
                sig
            }
            Signer::Ec(k) => k.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
            Signer::Ed(k) => k.sign(input.as_bytes()).as_ref().to_vec(),
        };
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    fn token(&self, kid: Option<&str>, claims: &Value) -> String {
        let mut header = json!({"alg": self.alg(), "typ": "JWT"});
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        self.sign(&header, claims)
    }
}

/// What GitHub Actions puts in a job's token, for `iss`.
fn claims(iss: &str) -> Value {
    json!({"iss": iss, "aud": "keyward", "sub": "repo:acme/app:ref:refs/heads/main", "repository": "acme/app",
        "ref": "refs/heads/main", "run_id": "42", "iat": now(), "nbf": now() - 5, "exp": now() + 300})
}

/// A local issuer over HTTPS: `/jwks` (swappable) and `/.well-known/openid-configuration`.
struct Issuer {
    url: String,
    ca_pem: String,
    jwks: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else { continue };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

impl Issuer {
    async fn start(keys: Value) -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        let key = rustls_pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key)
            .unwrap();
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://127.0.0.1:{}", tcp.local_addr().unwrap().port());
        let jwks = Arc::new(Mutex::new(json!({ "keys": keys })));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (doc_jwks, doc_fetches, issuer) = (jwks.clone(), fetches.clone(), url.clone());
        let app = axum::Router::new()
            .route(
                "/jwks",
                axum::routing::get(move || {
                    let (jwks, fetches) = (doc_jwks.clone(), doc_fetches.clone());
                    async move {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        axum::Json(jwks.lock().unwrap().clone())
                    }
                }),
            )
            // Larger than the 256 KiB a key set may be.
            .route(
                "/big",
                axum::routing::get(|| async { axum::Json(json!({"keys": [], "pad": "x".repeat(300 * 1024)})) }),
            )
            // A redirect keyward must not follow.
            .route(
                "/redirect",
                axum::routing::get(|| async { (axum::http::StatusCode::FOUND, [("location", "/jwks")], "") }),
            )
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || {
                    let issuer = issuer.clone();
                    async move { axum::Json(json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")})) }
                }),
            );
        let listener = TlsListener { tcp, acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)) };
        tokio::spawn(async move { axum::serve(listener, app).await });
        Issuer { url, ca_pem: ca.pem(), jwks, fetches }
    }

    fn publish(&self, keys: Value) {
        *self.jwks.lock().unwrap() = json!({ "keys": keys });
    }

    /// Serves `doc` as the key set, whatever it is.
    fn publish_raw(&self, doc: Value) {
        *self.jwks.lock().unwrap() = doc;
    }
}

/// A server that honours `allow_private_network` (the issuer is on 127.0.0.1), with a lockout
/// threshold above the failed logins each test makes on purpose.
async fn server(db: &crate::common::TestDb) -> TestServer {
    TestServer::start_with(db, KEY_A, |o| {
        o.auth = keyward_server::AuthConfig { allow_private_network: true };
        o.guard.lockout_failures = 100;
    })
    .await
}

/// Enables `jwt` at `path` with `config` and a role `deploy` for acme/app's main-like branches.
async fn jwt_method(srv: &TestServer, path: &str, config: Value) {
    let root = srv.token.clone();
    let (s, b) = srv.vault(&root, "POST", &format!("sys/auth/{path}"), Some(json!({"type": "jwt"}))).await;
    assert_eq!(s, 204, "{b}");
    let (s, b) = srv.vault(&root, "POST", &format!("auth/{path}/config"), Some(config)).await;
    assert_eq!(s, 204, "{b}");
    srv.policy("app-read", "[[rules]]\npath = \"secret/app\"\ncapabilities = [\"read\"]\n").await;
    let role = json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": ["keyward"],
        "bound_claims_type": "glob", "bound_claims": {"repository": "acme/app", "ref": ["refs/heads/main", "refs/tags/v*"]},
        "claim_mappings": {"repository": "repo", "run_id": "run"}, "token_policies": ["app-read"], "token_ttl": "15m"});
    let (s, b) = srv.vault(&root, "POST", &format!("auth/{path}/role/deploy"), Some(role)).await;
    assert_eq!(s, 204, "{b}");
}

async fn login(srv: &TestServer, path: &str, jwt: &str) -> (u16, Value) {
    srv.vault("", "POST", &format!("auth/{path}/login"), Some(json!({"role": "deploy", "jwt": jwt}))).await
}

fn reason(b: &Value) -> String {
    b["errors"][0].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_ci_job_logs_in_with_its_platform_token_and_each_rule_is_enforced() {
    for db in backends().await {
        let label = db.label;
        let srv = server(&db).await;
        let (rsa, ec) = (Signer::rsa(), Signer::ec());
        let weak: Value = serde_json::from_str(WEAK).unwrap();
        let issuer = Issuer::start(json!([rsa.jwk("k-rsa"), ec.jwk("k-ec"), weak["jwk"]])).await;
        srv.set("secret", "app", json!({"DB_PASSWORD": "s3cret-value"})).await;
        srv.set("secret", "other", json!({"K": "v"})).await;
        let config = json!({"jwks_url": format!("{}/jwks", issuer.url), "jwks_ca_pem": issuer.ca_pem,
            "bound_issuer": ISSUER_PATH, "allow_private_network": true});
        jwt_method(&srv, "jwt", config).await;

        // A valid login, with either key, and its token's narrow access.
        let (s, auth) = login(&srv, "jwt", &rsa.token(Some("k-rsa"), &claims(ISSUER_PATH))).await;
        assert_eq!(s, 200, "{label}: {auth}");
        assert_eq!(auth["auth"]["policies"], json!(["app-read", "default"]), "{label}");
        assert_eq!(auth["auth"]["metadata"], json!({"repo": "acme/app", "role": "deploy", "run": "42"}), "{label}");
        assert_eq!((auth["auth"]["lease_duration"].as_u64(), &auth["auth"]["orphan"]), (Some(900), &json!(true)));
        let token = auth["auth"]["client_token"].as_str().unwrap().to_owned();
        let (s, read) = srv.vault(&token, "GET", "secret/data/app", None).await;
        assert_eq!((s, &read["data"]["data"]["DB_PASSWORD"]), (200, &json!("s3cret-value")), "{label}");
        assert_eq!(srv.vault(&token, "GET", "secret/data/other", None).await.0, 403, "{label}");
        let (_, me) = srv.vault(&token, "GET", "auth/token/lookup-self", None).await;
        assert_eq!(me["data"]["display_name"], "token-jwt-repo:acme/app:ref:refs/heads/main", "{label}: {me}");
        let mut tag = claims(ISSUER_PATH);
        tag["ref"] = json!("refs/tags/v1.2.0");
        assert_eq!(login(&srv, "jwt", &ec.token(None, &tag)).await.0, 200, "{label}: no kid, the EC key fits");

        // A 1024-bit RSA key is refused even when the issuer publishes it.
        let (s, b) = login(&srv, "jwt", weak["token"].as_str().unwrap()).await;
        assert!(s == 400 && reason(&b).contains("2048"), "{label}: a 1024-bit key: {b}");

        // A key rotated in is fetched on its first unknown kid and accepted (later unknown kids
        // within 30 s, like the forged one below, fetch nothing).
        let next = Signer::ed();
        issuer.publish(json!([rsa.jwk("k-rsa"), next.jwk("k-next")]));
        let (s, b) = login(&srv, "jwt", &next.token(Some("k-next"), &claims(ISSUER_PATH))).await;
        assert_eq!(s, 200, "{label}: a rotated-in key: {b}");

        // Each rule, attacked: refused with a reason that names the rule, never a value.
        let t = now();
        let cases: Vec<(&str, Value, &str)> = vec![
            ("wrong issuer", json!({"iss": "https://evil.example"}), "issuer"),
            ("wrong audience", json!({"aud": ["someone-else"]}), "audience"),
            ("expired", json!({"exp": t - 120}), "expired"),
            ("not yet valid", json!({"nbf": t + 600}), "nbf"),
            ("no exp", json!({"exp": null}), "exp is required"),
            ("a branch the glob does not bind", json!({"ref": "refs/heads/evil"}), "\"ref\""),
            ("another repository", json!({"repository": "evil/app"}), "\"repository\""),
        ];
        for (what, patch, why) in cases {
            let mut c = claims(ISSUER_PATH);
            for (k, v) in patch.as_object().unwrap() {
                if v.is_null() {
                    c.as_object_mut().unwrap().remove(k);
                } else {
                    c[k] = v.clone();
                }
            }
            let (s, b) = login(&srv, "jwt", &rsa.token(Some("k-rsa"), &c)).await;
            assert!(s == 400 && reason(&b).contains(why), "{label}: {what}: {s} {b}");
            assert!(!b.to_string().contains("evil"), "{label}: {what}: the refusal echoes a value: {b}");
        }
        let good = claims(ISSUER_PATH);
        // alg=none, unsigned.
        let none = format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&good));
        let (s, b) = login(&srv, "jwt", &none).await;
        assert!(s == 400 && reason(&b).contains("algorithm refused"), "{label}: none: {b}");
        // HS256 "signed" with the RSA public key as the HMAC secret (the classic confusion).
        let input = format!("{}.{}", b64(&json!({"alg": "HS256", "kid": "k-rsa"})), b64(&good));
        let secret = serde_json::to_vec(&rsa.jwk("k-rsa")).unwrap();
        let mac = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret), input.as_bytes());
        let (s, b) = login(&srv, "jwt", &format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()))).await;
        assert!(s == 400 && reason(&b).contains("algorithm refused"), "{label}: HS256: {b}");
        // A jku naming the attacker's own key set is ignored: its kid is simply unknown.
        let attacker = Signer::ed();
        let forged = attacker.sign(&json!({"alg": "EdDSA", "kid": "evil", "jku": "https://evil.example/jwks"}), &good);
        let (s, b) = login(&srv, "jwt", &forged).await;
        assert!(s == 400 && reason(&b).contains("key ID"), "{label}: jku: {b}");
        // A crit header is refused.
        let crit = rsa.sign(&json!({"alg": "RS256", "kid": "k-rsa", "crit": ["b64"], "b64": false}), &good);
        assert!(reason(&login(&srv, "jwt", &crit).await.1).contains("crit"), "{label}");
        // The algorithm comes from the key: an RSA kid with an EdDSA signature fails.
        let swapped = attacker.sign(&json!({"alg": "EdDSA", "kid": "k-rsa"}), &good);
        assert_eq!(login(&srv, "jwt", &swapped).await.0, 400, "{label}");

        // A flood of unknown kids refetches nothing more within 30 s.
        let before = issuer.fetches.load(Ordering::SeqCst);
        for i in 0..20 {
            let (s, _) = login(&srv, "jwt", &attacker.token(Some(&format!("nope-{i}")), &good)).await;
            assert_eq!(s, 400, "{label}");
        }
        assert_eq!(issuer.fetches.load(Ordering::SeqCst), before, "{label}: refetched under a flood of unknown kids");
        srv.stop().await;
    }
}

#[tokio::test]
async fn pem_keys_discovery_and_the_refetch_limit() {
    for db in backends().await {
        let label = db.label;
        let srv = server(&db).await;
        let ed = Signer::ed();
        // PEM keys in the config: nothing is fetched.
        jwt_method(&srv, "jwt-pem", json!({"jwt_validation_pubkeys": [ed.ed_pem()], "bound_issuer": ISSUER_PATH}))
            .await;
        let (s, b) = login(&srv, "jwt-pem", &ed.token(None, &claims(ISSUER_PATH))).await;
        assert_eq!(s, 200, "{label}: {b}");
        let other = Signer::ed();
        assert_eq!(login(&srv, "jwt-pem", &other.token(None, &claims(ISSUER_PATH))).await.0, 400, "{label}");

        // OIDC discovery: the document's issuer is the URL, and tokens must name it.
        let issuer = Issuer::start(json!([ed.jwk("d1")])).await;
        let config = json!({"oidc_discovery_url": issuer.url, "oidc_discovery_ca_pem": issuer.ca_pem,
            "allow_private_network": true});
        jwt_method(&srv, "jwt-oidc", config).await;
        let (s, b) = login(&srv, "jwt-oidc", &ed.token(Some("d1"), &claims(&issuer.url))).await;
        assert_eq!(s, 200, "{label}: {b}");
        let (s, b) = login(&srv, "jwt-oidc", &ed.token(Some("d1"), &claims(ISSUER_PATH))).await;
        assert!(s == 400 && reason(&b).contains("issuer"), "{label}: {b}");

        // Concurrent unknown kids right after the first fetch: one refetch at most.
        let before = issuer.fetches.load(Ordering::SeqCst);
        let srv = Arc::new(srv);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..16 {
            let (srv, jwt) = (srv.clone(), ed.token(Some(&format!("unknown-{i}")), &claims(&issuer.url)));
            tasks.spawn(async move { login(&srv, "jwt-oidc", &jwt).await.0 });
        }
        while let Some(s) = tasks.join_next().await {
            assert_eq!(s.unwrap(), 400, "{label}");
        }
        let extra = issuer.fetches.load(Ordering::SeqCst) - before;
        assert!(extra <= 1, "{label}: {extra} JWKS fetches for 16 concurrent unknown kids");
        Arc::try_unwrap(srv).ok().unwrap().stop().await;
    }
}

#[tokio::test]
async fn roles_configs_and_private_addresses_are_checked() {
    for db in backends().await {
        let label = db.label;
        // Without --auth-allow-private-network the config's switch alone does nothing.
        let srv = TestServer::start(&db, KEY_A).await;
        let ed = Signer::ed();
        let issuer = Issuer::start(json!([ed.jwk("k")])).await;
        let config = json!({"jwks_url": format!("{}/jwks", issuer.url), "jwks_ca_pem": issuer.ca_pem,
            "allow_private_network": true});
        jwt_method(&srv, "jwt", config).await;
        let (s, b) = login(&srv, "jwt", &ed.token(Some("k"), &claims(ISSUER_PATH))).await;
        assert!(s == 502 && reason(&b).contains("global unicast"), "{label}: {s} {b}");
        assert_eq!(issuer.fetches.load(Ordering::SeqCst), 0, "{label}");

        let root = srv.token.clone();
        let write_role = |body: Value| {
            let srv = &srv;
            let root = root.clone();
            async move { srv.vault(&root, "POST", "auth/jwt/role/r", Some(body)).await }
        };
        // A role bound only to an issuer would admit every token it signs.
        let (s, b) = write_role(json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "keyward"})).await;
        assert!(s == 400 && reason(&b).contains("bound_subject"), "{label}: {b}");
        let (s, b) = write_role(json!({"user_claim": "sub", "bound_subject": "x"})).await;
        assert!(s == 400 && reason(&b).contains("bound_audiences"), "{label}: {b}");
        let (s, b) =
            write_role(json!({"role_type": "oidc", "user_claim": "sub", "bound_audiences": "k", "bound_subject": "x"}))
                .await;
        assert!(s == 501 && reason(&b).contains("oidc"), "{label}: {s} {b}");
        // Writing a role needs every policy it grants.
        srv.policy("jwt-admin", "[[rules]]\npath = \"auth/jwt/role/*\"\ncapabilities = [\"update\"]\n").await;
        let admin = srv.token_with(&["jwt-admin"]).await;
        let role = json!({"user_claim": "sub", "bound_audiences": "k", "bound_subject": "x", "token_policies": "root"});
        let (s, b) = srv.vault(&admin, "POST", "auth/jwt/role/r", Some(role)).await;
        assert_eq!(s, 403, "{label}: {b}");
        // Configs: one key source, https, no HMAC.
        for bad in [
            json!({"jwks_url": "http://127.0.0.1/jwks"}),
            json!({"jwks_url": "https://a/jwks", "jwt_supported_algs": ["HS256"]}),
            json!({"jwks_url": "https://a/jwks", "oidc_discovery_url": "https://a"}),
            json!({"jwt_validation_pubkeys": ["not a key"]}),
            json!({"jwks_url": "https://a/jwks", "oidc_client_secret": "s"}),
        ] {
            let (s, b) = srv.vault(&root, "POST", "auth/jwt/config", Some(bad.clone())).await;
            assert_eq!(s, 400, "{label}: {bad}: {b}");
        }
        let (_, read) = srv.vault(&root, "GET", "auth/jwt/config", None).await;
        assert_eq!(read["data"]["allow_private_network"], true, "{label}: a refused write changed nothing");

        // The config row is MAC'd: repointing the JWKS URL through SQL is refused, not followed.
        let pool = db.pool().await;
        let body: String =
            sqlx::query_scalar("SELECT body FROM auth_items WHERE kind = 'jwt-config'").fetch_one(&pool).await.unwrap();
        let evil = body.replace(&issuer.url, "https://evil.example");
        sqlx::query(&format!("UPDATE auth_items SET body = '{}' WHERE kind = 'jwt-config'", evil.replace('\'', "''")))
            .execute(&pool)
            .await
            .unwrap();
        let (s, b) = login(&srv, "jwt", &ed.token(Some("k"), &claims(ISSUER_PATH))).await;
        assert_eq!(s, 500, "{label}: a tampered config: {b}");
        assert!(!b["errors"].to_string().contains("evil"), "{label}");

        // Disabling the method deletes its config and roles.
        assert_eq!(srv.vault(&root, "DELETE", "sys/auth/jwt", None).await.0, 204, "{label}");
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM auth_items").fetch_one(&pool).await.unwrap();
        assert_eq!(left, 0, "{label}");
        srv.stop().await;
    }
}

#[tokio::test]
async fn fetching_is_bounded_and_keeps_the_last_good_key_set() {
    for db in backends().await {
        let label = db.label;
        let srv = server(&db).await;
        let ed = Signer::ed();
        let issuer = Issuer::start(json!([ed.jwk("k")])).await;
        for (path, url, why) in [("jwt-big", "/big", "256 KiB"), ("jwt-redirect", "/redirect", "302")] {
            let config = json!({"jwks_url": format!("{}{url}", issuer.url), "jwks_ca_pem": issuer.ca_pem,
                "allow_private_network": true});
            jwt_method(&srv, path, config).await;
            let (s, b) = login(&srv, path, &ed.token(Some("k"), &claims(ISSUER_PATH))).await;
            assert!(s == 502 && reason(&b).contains(why), "{label}: {path}: {s} {b}");
        }
        // A CA that did not sign the issuer's certificate: no connection.
        let stranger = Issuer::start(json!([])).await;
        let config = json!({"jwks_url": format!("{}/jwks", issuer.url), "jwks_ca_pem": stranger.ca_pem,
            "allow_private_network": true});
        jwt_method(&srv, "jwt-wrong-ca", config).await;
        assert_eq!(login(&srv, "jwt-wrong-ca", &ed.token(Some("k"), &claims(ISSUER_PATH))).await.0, 502, "{label}");

        let config = json!({"jwks_url": format!("{}/jwks", issuer.url), "jwks_ca_pem": issuer.ca_pem,
            "allow_private_network": true});
        jwt_method(&srv, "jwt", config).await;
        assert_eq!(login(&srv, "jwt", &ed.token(Some("k"), &claims(ISSUER_PATH))).await.0, 200, "{label}");
        // The issuer breaks: a refetch (asked for by an unknown kid) fails, and the last good set stays.
        issuer.publish_raw(json!({"not": "a key set"}));
        let (s, b) = login(&srv, "jwt", &ed.token(Some("unknown"), &claims(ISSUER_PATH))).await;
        assert!(s == 400 && reason(&b).contains("key ID"), "{label}: {b}");
        assert_eq!(login(&srv, "jwt", &ed.token(Some("k"), &claims(ISSUER_PATH))).await.0, 200, "{label}: kept set");
        srv.stop().await;
    }
}
