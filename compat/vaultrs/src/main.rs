//! vaultrs (the Rust Vault client from crates.io) against a keyward server, unchanged: KV v2 and
//! v1, Transit, tokens, their terms and roles, response wrapping, AppRole and userpass logins. Reads `VAULT_ADDR` and
//! `VAULT_TOKEN` (a root token); prints how many checks passed, or the first that failed and exits
//! non-zero. Run by `scripts/compat` on SQLite and PostgreSQL.
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use vaultrs::api::auth::approle::requests::{GenerateNewSecretIDRequest, SetAppRoleRequest};
use vaultrs::api::auth::userpass::requests::CreateUserRequest;
use vaultrs::api::kv2::requests::{ReadSecretRequest, SetSecretRequestOptions};
use vaultrs::api::sys::requests::EnableEngineRequest;
use vaultrs::api::token::requests::{CreateTokenRequest, SetTokenRoleRequest};
use vaultrs::api::transit::requests::{
    CreateKeyRequest, ExportKeyType, ExportVersion, HashDataRequest, RestoreKeyRequest, SignDataRequest,
    VerifySignedDataRequest,
};
use vaultrs::api::transit::{HashAlgorithm, KeyType, MarshalingAlgorithm};
use vaultrs::api::ResponseWrapper;
use vaultrs::client::{Client, VaultClient, VaultClientSettingsBuilder};
use vaultrs::{auth, kv1, kv2, sys, token, transit};

/// Counts checks; the first that fails ends the run.
struct Checks(u32);

impl Checks {
    fn check(&mut self, ok: bool, what: &str) -> Result<()> {
        if !ok {
            bail!("FAILED: {what}");
        }
        self.0 += 1;
        Ok(())
    }
}

fn client(addr: &str, token: &str) -> Result<VaultClient> {
    let settings = VaultClientSettingsBuilder::default().address(addr).token(token).build()?;
    Ok(VaultClient::new(settings)?)
}

/// A plain Vault API write, for keyward's own fields vaultrs has no setter for.
async fn write(addr: &str, token: &str, path: &str, body: serde_json::Value) -> Result<()> {
    let status = reqwest::Client::new()
        .post(format!("{addr}/v1/{path}"))
        .header("X-Vault-Token", token)
        .json(&body)
        .send()
        .await?
        .status();
    if !status.is_success() {
        bail!("POST {path} answered {status}");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    // vaultrs is built without its default TLS provider (aws-lc): ring's, as everywhere in keyward.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let addr = std::env::var("VAULT_ADDR").context("VAULT_ADDR is not set")?;
    let root_token = std::env::var("VAULT_TOKEN").context("VAULT_TOKEN is not set")?;
    let root = client(&addr, &root_token)?;
    let run = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
    let mut c = Checks(0);

    // KV v2 on a mount of its own.
    let kv = format!("kvrs-{run}");
    let options = HashMap::from([("version".to_owned(), "2".to_owned())]);
    sys::mount::enable(&root, &kv, "kv", Some(EnableEngineRequest::builder().options(options))).await?;
    c.check(sys::mount::list(&root).await?.contains_key(&format!("{kv}/")), "mount listed")?;
    let data = HashMap::from([("DB_PASSWORD", "s3cret"), ("DB_USER", "app")]);
    let meta = kv2::set(&root, &kv, "app/db", &data).await?;
    c.check(meta.version == 1, "kv2 set answers version 1")?;
    let read: HashMap<String, String> = kv2::read(&root, &kv, "app/db").await?;
    c.check(read.get("DB_PASSWORD").map(String::as_str) == Some("s3cret"), "kv2 read")?;
    kv2::set(&root, &kv, "app/db", &HashMap::from([("DB_PASSWORD", "rotated")])).await?;
    let old: HashMap<String, String> = kv2::read_version(&root, &kv, "app/db", 1).await?;
    c.check(old.get("DB_USER").map(String::as_str) == Some("app"), "kv2 read_version")?;
    c.check(kv2::list(&root, &kv, "app").await? == vec!["db".to_owned()], "kv2 list")?;
    let stale = kv2::set_with_options(&root, &kv, "app/db", &data, SetSecretRequestOptions { cas: 1 }).await;
    c.check(stale.is_err(), "a stale check-and-set is refused")?;
    let md = kv2::read_metadata(&root, &kv, "app/db").await?;
    c.check(md.current_version == 2 && md.versions.len() == 2, "kv2 metadata")?;

    // Response wrapping: a read handed over as a one-time token.
    let endpoint = ReadSecretRequest::builder().mount(kv.as_str()).path("app/db").build()?;
    let wrapped = endpoint.wrap(&root).await?;
    c.check(wrapped.info.creation_path == format!("{kv}/data/app/db"), "wrap_info names the path")?;
    let looked = wrapped.lookup(&root).await?;
    c.check(looked.creation_ttl == 600, "wrapping lookup (vaultrs wraps for 10m)")?;
    let unwrapped = wrapped.unwrap(&root).await?;
    c.check(unwrapped.data.get("DB_PASSWORD").and_then(|v| v.as_str()) == Some("rotated"), "unwrap")?;
    c.check(wrapped.unwrap(&root).await.is_err(), "a second unwrap fails")?;

    // A policy (Vault HCL) and a token under it, with terms.
    let policy = format!("path \"{kv}/data/app/*\" {{ capabilities = [\"read\"] }}");
    sys::policy::set(&root, "vaultrs-reader", &policy).await?;
    let mut req = CreateTokenRequest::builder();
    req.policies(vec!["vaultrs-reader".to_owned()])
        .ttl("1h")
        .num_uses(3u64)
        .meta(HashMap::from([("team".to_owned(), "payments".to_owned())]));
    let issued = token::new(&root, Some(&mut req)).await?;
    c.check(issued.policies.contains(&"vaultrs-reader".to_owned()), "token created with its policy")?;
    let reader = client(&addr, &issued.client_token)?;
    let me = token::lookup_self(&reader).await?;
    c.check(me.accessor == issued.accessor && me.num_uses == 2, "lookup-self counts a use")?;
    c.check(me.id == issued.client_token, "lookup-self shows the token it was given")?;
    c.check(me.meta.as_ref().and_then(|m| m.get("team")).map(String::as_str) == Some("payments"), "meta kept")?;
    let read: HashMap<String, String> = kv2::read(&reader, &kv, "app/db").await?;
    c.check(read.get("DB_PASSWORD").map(String::as_str) == Some("rotated"), "the token reads under its policy")?;
    c.check(kv2::set(&reader, &kv, "app/db", &data).await.is_err(), "the token cannot write")?;
    c.check(token::lookup_self(&reader).await.is_err(), "a used-up token is refused")?;
    let mut req = CreateTokenRequest::builder();
    req.policies(vec!["default".to_owned()]).period("1h");
    let periodic = token::new(&root, Some(&mut req)).await?;
    let renewed = token::renew_self(&client(&addr, &periodic.client_token)?, Some("1m")).await?;
    c.check(renewed.lease_duration == 3600, "a periodic token renews for its period")?;
    token::revoke_accessor(&root, &periodic.accessor).await?;
    c.check(token::lookup_self(&client(&addr, &periodic.client_token)?).await.is_err(), "revoke-accessor")?;

    // A token role: tokens within its allowed policies, for a caller that may use it.
    let mut role = SetTokenRoleRequest::builder();
    role.allowed_policies(vec!["vaultrs-reader".to_owned()]).orphan(true).token_period("1h");
    token::role::set(&root, &format!("rs-{run}"), Some(&mut role)).await?;
    let read_role = token::role::read(&root, &format!("rs-{run}")).await?;
    c.check(
        read_role.allowed_policies == vec!["vaultrs-reader".to_owned()] && read_role.orphan,
        "token role reads back",
    )?;
    let minted = token::new_role(&root, &format!("rs-{run}"), None).await?;
    c.check(minted.orphan && minted.lease_duration == 3600, "a token from the role")?;
    token::role::delete(&root, &format!("rs-{run}")).await?;

    // KV version 1, then tuned to version 2 in place.
    let kv1 = format!("kv1rs-{run}");
    sys::mount::enable(&root, &kv1, "kv", None).await?;
    kv1::set(&root, &kv1, "legacy/db", &HashMap::from([("password", "hunter2")])).await?;
    let legacy: HashMap<String, String> = kv1::get(&root, &kv1, "legacy/db").await?;
    c.check(legacy.get("password").map(String::as_str) == Some("hunter2"), "kv1 read")?;
    c.check(kv1::list(&root, &kv1, "legacy").await?.data.keys == vec!["db".to_owned()], "kv1 list")?;
    let options = HashMap::from([("version".to_owned(), "2".to_owned())]);
    write(&addr, &root_token, &format!("sys/mounts/{kv1}/tune"), serde_json::json!({"options": options})).await?;
    let tuned: HashMap<String, String> = kv2::read(&root, &kv1, "legacy/db").await?;
    c.check(tuned.get("password").map(String::as_str) == Some("hunter2"), "tuned to kv v2 in place")?;
    sys::mount::disable(&root, &kv1).await?;

    // Transit.
    let tr = format!("transit-rs-{run}");
    sys::mount::enable(&root, &tr, "transit", None).await?;
    transit::key::create(&root, &tr, "orders", None).await?;
    let plaintext = "Y2FyZCA0MjQy"; // base64 of "card 4242"
    let enc = transit::data::encrypt(&root, &tr, "orders", plaintext, None).await?;
    c.check(enc.ciphertext.starts_with("vault:v1:"), "transit encrypt")?;
    let dec = transit::data::decrypt(&root, &tr, "orders", &enc.ciphertext, None).await?;
    c.check(dec.plaintext == plaintext, "transit decrypt")?;
    // Signing keys: ECDSA with JWS marshaling, a backup restored under a new name (vaultrs sends
    // the name in the body), the public key exported, hashes and HMACs.
    let mut ec = CreateKeyRequest::builder();
    ec.key_type(KeyType::EcdsaP256).exportable(true).allow_plaintext_backup(true);
    transit::key::create(&root, &tr, "releases", Some(&mut ec)).await?;
    let mut jws = SignDataRequest::builder();
    jws.hash_algorithm(HashAlgorithm::Sha2_256).marshaling_algorithm(MarshalingAlgorithm::Jws);
    let sig = transit::data::sign(&root, &tr, "releases", plaintext, Some(&mut jws)).await?.signature;
    c.check(sig.starts_with("vault:v1:") && !sig.ends_with('='), "transit sign (ecdsa-p256, jws)")?;
    let mut check = VerifySignedDataRequest::builder();
    check.signature(sig.clone()).marshaling_algorithm(MarshalingAlgorithm::Jws);
    let valid = transit::data::verify(&root, &tr, "releases", plaintext, Some(&mut check)).await?.valid;
    c.check(valid, "transit verify (jws)")?;
    let backup = transit::key::backup(&root, &tr, "releases").await?.backup;
    let mut restore = RestoreKeyRequest::builder();
    restore.name("releases-copy");
    transit::key::restore(&root, &tr, &backup, Some(&mut restore)).await?;
    let mut check = VerifySignedDataRequest::builder();
    check.signature(sig).marshaling_algorithm(MarshalingAlgorithm::Jws);
    let valid = transit::data::verify(&root, &tr, "releases-copy", plaintext, Some(&mut check)).await?.valid;
    c.check(valid, "transit restore under a new name keeps the key pair")?;
    let public =
        transit::key::export(&root, &tr, "releases", ExportKeyType::PublicKey, ExportVersion::Latest).await?.keys;
    c.check(public.get("1").is_some_and(|k| k.starts_with("-----BEGIN PUBLIC KEY-----")), "transit export public key")?;
    let mut sha3 = HashDataRequest::builder();
    sha3.algorithm(HashAlgorithm::Sha3_256);
    let sum = transit::generate::hash(&root, &tr, "YWJj", Some(&mut sha3)).await?.sum;
    c.check(sum == "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532", "transit hash sha3-256")?;

    // AppRole: a machine logs in with a role ID and a secret ID.
    let ar = format!("approle-rs-{run}");
    sys::auth::enable(&root, &ar, "approle", None).await?;
    let mut role = SetAppRoleRequest::builder();
    role.token_policies(vec!["vaultrs-reader".to_owned()]).token_ttl("10m").secret_id_num_uses(1u64);
    auth::approle::role::set(&root, &ar, "ci", Some(&mut role)).await?;
    let role_id = auth::approle::role::read_id(&root, &ar, "ci").await?.role_id;
    let mut sid_req = GenerateNewSecretIDRequest::builder();
    sid_req.metadata("{\"pipeline\":\"deploy\"}");
    let sid = auth::approle::role::secret::generate(&root, &ar, "ci", Some(&mut sid_req)).await?;
    let login = auth::approle::login(&root, &ar, &role_id, &sid.secret_id).await?;
    c.check(login.orphan && login.policies.contains(&"vaultrs-reader".to_owned()), "approle login")?;
    c.check(login.lease_duration == 600, "the role's token_ttl")?;
    let mut machine = client(&addr, "")?;
    machine.set_token(&login.client_token);
    let meta = token::lookup_self(&machine).await?.meta.unwrap_or_default();
    c.check(meta.get("pipeline").map(String::as_str) == Some("deploy"), "secret-ID metadata on the token")?;
    let again = auth::approle::login(&root, &ar, &role_id, &sid.secret_id).await;
    c.check(again.is_err(), "a spent secret ID is refused")?;
    sys::auth::disable(&root, &ar).await?;
    c.check(token::lookup_self(&machine).await.is_err(), "disabling the method revokes its tokens")?;

    // userpass: a person must enrol TOTP first; a service account logs in with its password.
    let up = format!("userpass-rs-{run}");
    sys::auth::enable(&root, &up, "userpass", None).await?;
    let mut user = CreateUserRequest::builder();
    user.token_policies(vec!["vaultrs-reader".to_owned()]);
    auth::userpass::user::set(&root, &up, "ada", "correct horse battery", Some(&mut user)).await?;
    let enrol = auth::userpass::login(&root, &up, "ada", "correct horse battery").await?;
    c.check(enrol.policies.is_empty() && enrol.lease_duration <= 600, "before TOTP enrolment: an enrolment token")?;
    let svc = serde_json::json!({"password": "service password 1", "token_policies": "vaultrs-reader",
        "totp_required": false});
    write(&addr, &root_token, &format!("auth/{up}/users/svc"), svc).await?;
    let person = auth::userpass::login(&root, &up, "svc", "service password 1").await?;
    c.check(person.policies.contains(&"vaultrs-reader".to_owned()), "userpass login")?;
    c.check(auth::userpass::login(&root, &up, "svc", "wrong password").await.is_err(), "a wrong password is refused")?;
    sys::auth::disable(&root, &up).await?;
    sys::mount::disable(&root, &kv).await?;
    sys::mount::disable(&root, &tr).await?;

    println!("vaultrs: {} checks passed against {addr}", c.0);
    Ok(())
}
