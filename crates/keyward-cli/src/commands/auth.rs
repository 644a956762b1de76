//! `keyward auth …`, `keyward approle …` and `keyward login --method approle`: login methods, on
//! the server's Vault-compatible paths (`sys/auth`, `auth/<path>/…`), where they live.
use std::io::Read;

use anyhow::{anyhow, bail, Context, Result};
use keyward_api::paths::fill;
use reqwest::Method;
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

use crate::cli::{
    ApproleCommand, AuthCommand, Format, LoginArgs, RoleCommand, SecretIdCommand, TotpCommand, UserCommand,
};
use crate::client::Client;
use crate::config;
use crate::output::{json as print_json, table};

/// Reads a credential (a secret ID, a JWT) from a file or stdin (`-`), trimmed.
fn read_credential(path: &std::path::Path, what: &str) -> Result<Zeroizing<String>> {
    let mut s = Zeroizing::new(String::new());
    if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut s).with_context(|| format!("cannot read the {what} from stdin"))?;
    } else {
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_string(&mut s))
            .with_context(|| format!("cannot read the {what} from {}", path.display()))?;
    }
    Ok(Zeroizing::new(s.trim().to_owned()))
}

/// `keyward login --method approle`: logs in with a role ID and a secret ID, then stores (or
/// prints) the token.
pub async fn login_approle(addr: &str, args: LoginArgs) -> Result<()> {
    let role_id = args
        .role_id
        .filter(|r| !r.is_empty())
        .ok_or_else(|| anyhow!("--method approle needs --role-id (or KEYWARD_ROLE_ID)"))?;
    let file = args.secret_id_file.ok_or_else(|| {
        anyhow!("--method approle needs --secret-id-file FILE (or - for stdin): secret IDs are not taken as arguments")
    })?;
    let secret_id = read_credential(&file, "secret ID")?;
    let client = Client::new(addr)?;
    let body = json!({ "role_id": role_id, "secret_id": secret_id.as_str() });
    let mount = args.path.as_deref().unwrap_or("approle");
    let answer = client.vault(Method::POST, &fill("auth/{path}/login", &[mount]), Some(&body), false).await?;
    finish_login(addr, "approle", &answer, args.print_token)
}

/// Prints (`print_token`) or stores the token a login answered.
fn finish_login(addr: &str, method: &str, answer: &Value, print_token: bool) -> Result<()> {
    let auth = &answer["auth"];
    let token =
        Zeroizing::new(auth["client_token"].as_str().ok_or_else(|| anyhow!("the server issued no token"))?.to_owned());
    if print_token {
        println!("{}", token.as_str());
        return Ok(());
    }
    store_login(addr, method, auth, &token)
}

/// The job's OIDC token from GitHub Actions' token service, for `audience`.
async fn github_actions_token(audience: &str) -> Result<Zeroizing<String>> {
    let var = |name: &str| {
        std::env::var(name).ok().filter(|v| !v.is_empty()).ok_or_else(|| {
            anyhow!("{name} is not set: run inside a GitHub Actions job with `permissions: id-token: write`")
        })
    };
    let (url, bearer) = (var("ACTIONS_ID_TOKEN_REQUEST_URL")?, Zeroizing::new(var("ACTIONS_ID_TOKEN_REQUEST_TOKEN")?));
    let mut url = reqwest::Url::parse(&url).context("ACTIONS_ID_TOKEN_REQUEST_URL is not a URL")?;
    url.query_pairs_mut().append_pair("audience", audience);
    let resp = reqwest::Client::new()
        .get(url)
        .bearer_auth(bearer.as_str())
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .context("cannot reach GitHub Actions' token service")?;
    if !resp.status().is_success() {
        bail!("GitHub Actions' token service answered {}", resp.status());
    }
    let body: Value = resp.json().await.context("GitHub Actions' token service sent no JSON")?;
    let value = body["value"].as_str().ok_or_else(|| anyhow!("GitHub Actions' token service sent no token"))?;
    Ok(Zeroizing::new(value.to_owned()))
}

/// `keyward login --method jwt`: a token from a file or GitHub Actions, exchanged for a keyward
/// token of the role.
pub async fn login_jwt(addr: &str, args: LoginArgs) -> Result<()> {
    let jwt = match (&args.jwt_file, args.github_actions) {
        (_, true) => github_actions_token(&args.audience).await?,
        (Some(file), false) => read_credential(file, "JWT")?,
        (None, false) => bail!("--method jwt needs --jwt-file FILE (or - for stdin) or --github-actions"),
    };
    let client = Client::new(addr)?;
    let body = json!({ "role": args.role.as_deref().unwrap_or_default(), "jwt": jwt.trim() });
    let mount = args.path.as_deref().unwrap_or("jwt");
    let answer = client.vault(Method::POST, &fill("auth/{path}/login", &[mount]), Some(&body), false).await?;
    finish_login(addr, "jwt", &answer, args.print_token)
}

/// Stores a login's token and says so.
fn store_login(addr: &str, method: &str, auth: &Value, token: &str) -> Result<()> {
    let path = config::store_token(token)?;
    let policies: Vec<&str> =
        auth["policies"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    println!(
        "Logged in to {addr} with {method} as {} ({}), for {}s; token stored in {} (mode 0600)",
        auth["accessor"].as_str().unwrap_or_default(),
        policies.join(", "),
        auth["lease_duration"],
        path.display()
    );
    Ok(())
}

/// A secret asked for on the terminal (echo off), or one line of stdin when it is not a terminal.
fn ask(prompt: &str) -> Result<Zeroizing<String>> {
    use std::io::IsTerminal;
    let line = if std::io::stdin().is_terminal() {
        crate::commands::session::prompt_hidden(prompt)?
    } else {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin().read_line(&mut line).context("cannot read stdin")?;
        line
    };
    Ok(Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned()))
}

/// `keyward login --method userpass`: password, then the TOTP code; on a first login, enrols
/// TOTP (prints the otpauth URI for an authenticator app and checks a code from it).
pub async fn login_userpass(addr: &str, args: LoginArgs) -> Result<()> {
    let name = args.username.filter(|u| !u.is_empty()).ok_or_else(|| anyhow!("--method userpass needs --username"))?;
    let mount = args.path.as_deref().unwrap_or("userpass").to_owned();
    let password = ask("Password: ")?;
    let code = ask("TOTP code (empty if you have none yet): ")?;
    let client = Client::new(addr)?;
    let mut body = json!({ "password": password.as_str() });
    if !code.is_empty() {
        body["totp"] = json!(code.as_str());
    }
    let login_path = fill("auth/{path}/login/{name}", &[&mount, &name]);
    let answer = client.vault(Method::POST, &login_path, Some(&body), false).await?;
    let auth = &answer["auth"];
    let token =
        Zeroizing::new(auth["client_token"].as_str().ok_or_else(|| anyhow!("the server issued no token"))?.to_owned());
    let enrolling = answer["warnings"]
        .as_array()
        .is_some_and(|w| w.iter().any(|m| m.as_str().is_some_and(|m| m.contains("enrolment"))));
    if enrolling {
        let client = Client::with_token(addr, secrecy::SecretString::from(token.as_str().to_owned()))?;
        return enrol(&client, &mount, &name, &json!({})).await;
    }
    if args.print_token {
        println!("{}", token.as_str());
        return Ok(());
    }
    store_login(addr, "userpass", auth, &token)
}

/// Starts enrolment with `client`'s token, shows the URI, and confirms a code from the app.
async fn enrol(client: &Client, mount: &str, name: &str, body: &Value) -> Result<()> {
    let start = fill("auth/{path}/users/{name}/totp/enroll", &[mount, name]);
    let started = client.vault(Method::POST, &start, Some(body), true).await?;
    eprintln!("TOTP enrolment: add this to your authenticator app (it is shown once):");
    println!("{}", started["data"]["url"].as_str().unwrap_or_default());
    let first = ask("Code from the app: ")?;
    let confirm = fill("auth/{path}/users/{name}/totp/confirm", &[mount, name]);
    client.vault(Method::POST, &confirm, Some(&json!({ "code": first.as_str() })), true).await?;
    eprintln!("Enrolled. Log in with the next code your app shows.");
    Ok(())
}

/// A password asked for twice on a terminal, or read once from stdin.
fn new_password() -> Result<Zeroizing<String>> {
    use std::io::IsTerminal;
    let first = ask("New password: ")?;
    if std::io::stdin().is_terminal() && *ask("Again: ")? != *first {
        bail!("the two passwords differ");
    }
    Ok(first)
}

/// `keyward user …`.
pub async fn user(addr: &str, cmd: UserCommand) -> Result<()> {
    let client = Client::new(addr)?;
    let user_path = |mount: &str, name: &str| fill("auth/{path}/users/{name}", &[mount, name]);
    match cmd {
        UserCommand::Write { name, policies, token_ttl, no_totp, password, at } => {
            let exists = client.vault(Method::GET, &user_path(&at.path, &name), None, true).await.is_ok();
            let mut body = Map::new();
            if password || !exists {
                body.insert("password".into(), json!(new_password()?.as_str()));
            }
            if !policies.is_empty() {
                body.insert("token_policies".into(), json!(policies));
            }
            if let Some(t) = token_ttl {
                body.insert("token_ttl".into(), json!(t));
            }
            if no_totp {
                body.insert("totp_required".into(), json!(false));
                eprintln!("note: {name} logs in with the password alone (no TOTP)");
            }
            client.vault(Method::POST, &user_path(&at.path, &name), Some(&Value::Object(body)), true).await?;
            println!("User {name} written at auth/{}/", at.path);
        }
        UserCommand::Passwd { name, at } => {
            let body = json!({ "password": new_password()?.as_str() });
            let path = fill("auth/{path}/users/{name}/password", &[&at.path, &name]);
            client.vault(Method::POST, &path, Some(&body), true).await?;
            println!("Password of {name} changed; its tokens are revoked");
        }
        UserCommand::List { at } => {
            let list = Method::from_bytes(b"LIST").map_err(|e| anyhow!("{e}"))?;
            match client.vault(list, &fill("auth/{path}/users", &[&at.path]), None, true).await {
                Ok(answer) => keys(&answer).iter().for_each(|k| println!("{k}")),
                Err(e) if e.to_string().starts_with("server answered 404") => {}
                Err(e) => return Err(e),
            }
        }
        UserCommand::Delete { name, at } => {
            client.vault(Method::DELETE, &user_path(&at.path, &name), None, true).await?;
            println!("User {name} deleted; its tokens are revoked");
        }
        UserCommand::Totp(TotpCommand::Enroll { name, at }) => {
            let current = ask("Current code (empty if not enrolled yet): ")?;
            let body = if current.is_empty() { json!({}) } else { json!({ "code": current.as_str() }) };
            enrol(&client, &at.path, &name, &body).await?;
        }
        UserCommand::Totp(TotpCommand::Reset { name, at }) => {
            let path = fill("auth/{path}/users/{name}/totp/reset", &[&at.path, &name]);
            client.vault(Method::POST, &path, Some(&json!({})), true).await?;
            println!("TOTP of {name} reset: its next login enrols again; its tokens are revoked");
        }
    }
    Ok(())
}

/// `keyward auth …`.
pub async fn run(addr: &str, cmd: AuthCommand) -> Result<()> {
    let client = Client::new(addr)?;
    match cmd {
        AuthCommand::Enable { kind, path, description } => {
            let path = path.unwrap_or_else(|| kind.clone());
            let body = json!({ "type": kind, "description": description });
            client.vault(Method::POST, &fill("sys/auth/{path}", &[&path]), Some(&body), true).await?;
            println!("Enabled {kind} at auth/{path}/");
        }
        AuthCommand::List(out) => {
            let answer = client.vault(Method::GET, "sys/auth", None, true).await?;
            let data = answer["data"].as_object().cloned().unwrap_or_default();
            if out.format == Format::Json {
                return print_json(&data);
            }
            let rows = data
                .iter()
                .map(|(path, m)| {
                    let s = |k: &str| m[k].as_str().unwrap_or_default().to_owned();
                    vec![path.clone(), s("type"), s("accessor"), s("description")]
                })
                .collect();
            table(&["PATH", "TYPE", "ACCESSOR", "DESCRIPTION"], rows);
        }
        AuthCommand::Disable { path } => {
            client.vault(Method::DELETE, &fill("sys/auth/{path}", &[&path]), None, true).await?;
            println!("Disabled auth/{path}/: its roles and secret IDs are gone, and every token it issued is revoked");
        }
    }
    Ok(())
}

/// `KEY=VALUE` pairs as a JSON object.
fn pairs(items: &[String]) -> Result<Map<String, Value>> {
    items
        .iter()
        .map(|p| {
            let (k, v) = p.split_once('=').ok_or_else(|| anyhow!("metadata {p:?} is not KEY=VALUE"))?;
            Ok((k.to_owned(), Value::from(v)))
        })
        .collect()
}

/// `keyward approle …`.
pub async fn approle(addr: &str, cmd: ApproleCommand) -> Result<()> {
    let client = Client::new(addr)?;
    match cmd {
        ApproleCommand::Role(RoleCommand::Write {
            name,
            policies,
            token_ttl,
            token_max_ttl,
            token_period,
            token_num_uses,
            token_bound_cidrs,
            secret_id_ttl,
            secret_id_num_uses,
            secret_id_bound_cidrs,
            at,
        }) => {
            let mut body = Map::new();
            if !policies.is_empty() {
                body.insert("token_policies".into(), json!(policies));
            }
            for (k, v) in [
                ("token_ttl", token_ttl),
                ("token_max_ttl", token_max_ttl),
                ("token_period", token_period),
                ("secret_id_ttl", secret_id_ttl),
            ] {
                if let Some(v) = v {
                    body.insert(k.into(), json!(v));
                }
            }
            for (k, n) in [("token_num_uses", token_num_uses), ("secret_id_num_uses", secret_id_num_uses)] {
                if let Some(n) = n {
                    body.insert(k.into(), json!(n));
                }
            }
            for (k, v) in [("token_bound_cidrs", token_bound_cidrs), ("secret_id_bound_cidrs", secret_id_bound_cidrs)] {
                if !v.is_empty() {
                    body.insert(k.into(), json!(v));
                }
            }
            let path = fill("auth/{path}/role/{name}", &[&at.path, &name]);
            client.vault(Method::POST, &path, Some(&Value::Object(body)), true).await?;
            println!("Role {name} written at auth/{}/", at.path);
        }
        ApproleCommand::Role(RoleCommand::Read { name, at, out }) => {
            let answer =
                client.vault(Method::GET, &fill("auth/{path}/role/{name}", &[&at.path, &name]), None, true).await?;
            let data = answer["data"].as_object().cloned().unwrap_or_default();
            if out.format == Format::Json {
                return print_json(&data);
            }
            table(&["SETTING", "VALUE"], data.iter().map(|(k, v)| vec![k.clone(), v.to_string()]).collect());
        }
        ApproleCommand::Role(RoleCommand::List { at }) => {
            let list = Method::from_bytes(b"LIST").map_err(|e| anyhow!("{e}"))?;
            match client.vault(list, &fill("auth/{path}/role", &[&at.path]), None, true).await {
                Ok(answer) => keys(&answer).iter().for_each(|k| println!("{k}")),
                Err(e) if e.to_string().starts_with("server answered 404") => {}
                Err(e) => return Err(e),
            }
        }
        ApproleCommand::Role(RoleCommand::Delete { name, at }) => {
            client.vault(Method::DELETE, &fill("auth/{path}/role/{name}", &[&at.path, &name]), None, true).await?;
            println!("Role {name} deleted: its secret IDs are gone and the tokens it issued are revoked");
        }
        ApproleCommand::Role(RoleCommand::RoleId { name, at }) => {
            let path = fill("auth/{path}/role/{name}/role-id", &[&at.path, &name]);
            let answer = client.vault(Method::GET, &path, None, true).await?;
            println!("{}", answer["data"]["role_id"].as_str().unwrap_or_default());
        }
        ApproleCommand::SecretId(SecretIdCommand::Create { role, metadata, cidrs, ttl, num_uses, at, out }) => {
            let mut body = Map::new();
            let meta = pairs(&metadata)?;
            if !meta.is_empty() {
                body.insert("metadata".into(), Value::from(serde_json::to_string(&meta)?));
            }
            if !cidrs.is_empty() {
                body.insert("cidr_list".into(), json!(cidrs));
            }
            if let Some(t) = ttl {
                body.insert("ttl".into(), json!(t));
            }
            if let Some(n) = num_uses {
                body.insert("num_uses".into(), json!(n));
            }
            let path = fill("auth/{path}/role/{name}/secret-id", &[&at.path, &role]);
            let answer = client.vault(Method::POST, &path, Some(&Value::Object(body)), true).await?;
            let data = &answer["data"];
            if out.format == Format::Json {
                return print_json(data);
            }
            // The secret ID alone on stdout (for a file or a pipe); what describes it on stderr.
            println!("{}", data["secret_id"].as_str().unwrap_or_default());
            eprintln!(
                "secret ID accessor {} (ttl {}s, uses {}; shown once, only its digest is kept)",
                data["secret_id_accessor"].as_str().unwrap_or_default(),
                data["secret_id_ttl"],
                data["secret_id_num_uses"]
            );
        }
        ApproleCommand::SecretId(SecretIdCommand::List { role, at }) => {
            let list = Method::from_bytes(b"LIST").map_err(|e| anyhow!("{e}"))?;
            match client.vault(list, &fill("auth/{path}/role/{name}/secret-id", &[&at.path, &role]), None, true).await {
                Ok(answer) => keys(&answer).iter().for_each(|k| println!("{k}")),
                Err(e) if e.to_string().starts_with("server answered 404") => {}
                Err(e) => return Err(e),
            }
        }
        ApproleCommand::SecretId(SecretIdCommand::Destroy { role, accessor, at }) => {
            if accessor.is_empty() {
                bail!("--accessor must not be empty");
            }
            let path = fill("auth/{path}/role/{name}/secret-id-accessor/destroy", &[&at.path, &role]);
            client.vault(Method::POST, &path, Some(&json!({ "secret_id_accessor": accessor })), true).await?;
            println!("Secret ID {accessor} destroyed; the tokens it logged in are revoked");
        }
    }
    Ok(())
}

fn keys(answer: &Value) -> Vec<String> {
    answer["data"]["keys"]
        .as_array()
        .map(|a| a.iter().filter_map(|k| k.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}
