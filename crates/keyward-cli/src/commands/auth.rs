//! `keyward auth …`, `keyward approle …` and `keyward login --method approle`: login methods, on
//! the server's Vault-compatible paths (`sys/auth`, `auth/<path>/…`), where they live.
use std::io::Read;

use anyhow::{anyhow, bail, Context, Result};
use keyward_api::paths::fill;
use reqwest::Method;
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

use crate::cli::{ApproleCommand, AuthCommand, Format, LoginArgs, RoleCommand, SecretIdCommand};
use crate::client::Client;
use crate::config;
use crate::output::{json as print_json, table};

/// Reads a secret ID from a file or stdin (`-`), trimmed.
fn read_secret_id(path: &std::path::Path) -> Result<Zeroizing<String>> {
    let mut s = Zeroizing::new(String::new());
    if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut s).context("cannot read the secret ID from stdin")?;
    } else {
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_string(&mut s))
            .with_context(|| format!("cannot read the secret ID from {}", path.display()))?;
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
    let secret_id = read_secret_id(&file)?;
    let client = Client::new(addr)?;
    let body = json!({ "role_id": role_id, "secret_id": secret_id.as_str() });
    let answer = client.vault(Method::POST, &fill("auth/{path}/login", &[&args.path]), Some(&body), false).await?;
    let auth = &answer["auth"];
    let token =
        Zeroizing::new(auth["client_token"].as_str().ok_or_else(|| anyhow!("the server issued no token"))?.to_owned());
    if args.print_token {
        println!("{}", token.as_str());
        return Ok(());
    }
    let path = config::store_token(&token)?;
    let policies: Vec<&str> =
        auth["policies"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    println!(
        "Logged in to {addr} with approle as {} ({}), for {}s; token stored in {} (mode 0600)",
        auth["accessor"].as_str().unwrap_or_default(),
        policies.join(", "),
        auth["lease_duration"],
        path.display()
    );
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
            for (k, v) in [("token_ttl", token_ttl), ("token_max_ttl", token_max_ttl), ("secret_id_ttl", secret_id_ttl)]
            {
                if let Some(v) = v {
                    body.insert(k.into(), json!(v));
                }
            }
            if let Some(n) = secret_id_num_uses {
                body.insert("secret_id_num_uses".into(), json!(n));
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
