//! `keyward token …`.
use std::io::Read;

use anyhow::{bail, Context, Result};
use keyward_api::wire::{TokenCreateRequest, TokenInfo};
use zeroize::Zeroizing;

use crate::cli::{Format, TokenCommand};
use crate::client::Client;
use crate::output::{json, table};

/// Reads a token from stdin when the argument is `-` (tokens are never taken as arguments).
fn token_from(arg: &str) -> Result<Zeroizing<String>> {
    if arg != "-" {
        bail!("pass `-` and give the token on stdin: tokens are not accepted as arguments (they would land in shell history)");
    }
    let mut s = Zeroizing::new(String::new());
    std::io::stdin().read_to_string(&mut s).context("cannot read the token from stdin")?;
    Ok(Zeroizing::new(s.trim().to_owned()))
}

fn row(t: &TokenInfo) -> Vec<String> {
    vec![
        t.accessor.clone(),
        t.display_name.clone(),
        t.policies.join(","),
        t.expire_time.clone().unwrap_or_else(|| "never".into()),
        t.last_used.clone().unwrap_or_else(|| "never".into()),
        if t.revoked { "revoked".into() } else { String::new() },
    ]
}

const HEADER: [&str; 6] = ["ACCESSOR", "NAME", "POLICIES", "EXPIRES", "LAST USED", "STATE"];

fn show(t: &TokenInfo, format: Format) -> Result<()> {
    match format {
        Format::Json => json(t),
        Format::Table => {
            table(&HEADER, vec![row(t)]);
            if !t.allowed_cidrs.is_empty() {
                println!("Allowed from: {}", t.allowed_cidrs.join(", "));
            }
            if let Some(rate) = &t.rate_limit {
                println!("Rate limit:   {rate}");
            }
            let limits: Vec<String> = [
                t.period.as_ref().map(|p| format!("periodic ({p})")),
                t.explicit_max_ttl.as_ref().map(|m| format!("explicit max TTL {m}")),
                (t.num_uses > 0).then(|| format!("{} uses left", t.num_uses)),
                (!t.renewable).then(|| "not renewable".to_owned()),
            ]
            .into_iter()
            .flatten()
            .collect();
            if !limits.is_empty() {
                println!("Limits:       {}", limits.join(", "));
            }
            let meta: Vec<String> = t.meta.iter().map(|(k, v)| format!("{k}={v}")).collect();
            if !meta.is_empty() {
                println!("Metadata:     {}", meta.join(", "));
            }
            if let Some(login) = &t.login {
                println!("Logged in as: role {} (auth mount {})", login.role, login.auth_mount);
                let meta: Vec<String> = login.meta.iter().map(|(k, v)| format!("{k}={v}")).collect();
                if !meta.is_empty() {
                    println!("Metadata:     {}", meta.join(", "));
                }
            }
            Ok(())
        }
    }
}

/// Runs a token command.
pub async fn run(addr: &str, cmd: TokenCommand) -> Result<()> {
    let client = Client::new(addr)?;
    match cmd {
        TokenCommand::Create {
            policies,
            ttl,
            display_name,
            allowed_cidrs,
            no_default_policy,
            orphan,
            rate_limit,
            explicit_max_ttl,
            period,
            num_uses,
            no_renew,
            meta,
            out,
        } => {
            let req = TokenCreateRequest {
                policies,
                ttl,
                display_name,
                allowed_cidrs,
                no_parent: orphan,
                no_default_policy,
                rate_limit,
                explicit_max_ttl,
                period,
                num_uses,
                renewable: no_renew.then_some(false),
                meta: meta.into_iter().collect(),
            };
            let created = client.create_token(&req).await?;
            match out.format {
                Format::Json => json(&created)?,
                Format::Table => {
                    println!("Token:    {}", created.token);
                    println!("Accessor: {}", created.info.accessor);
                    println!("Policies: {}", created.info.policies.join(", "));
                    println!("Expires:  {}", created.info.expire_time.as_deref().unwrap_or("never"));
                    eprintln!("The token is shown only this once.");
                }
            }
        }
        TokenCommand::Lookup { token, accessor, out } => {
            let info = match (token, accessor) {
                (Some(t), _) => client.lookup_token(&token_from(&t)?).await?,
                (None, Some(a)) => client.lookup_accessor(&a).await?,
                (None, None) => client.lookup_self().await?,
            };
            show(&info, out.format)?;
        }
        TokenCommand::Revoke { token, accessor, own } => {
            let r = match (token, accessor, own) {
                (Some(t), _, _) => client.revoke_token(&token_from(&t)?).await?,
                (None, Some(a), _) => client.revoke_accessor(&a).await?,
                (None, None, true) => client.revoke_self().await?,
                (None, None, false) => bail!("say which token: `-` (token on stdin), --accessor A, or --self"),
            };
            println!("Revoked {} token(s)", r.revoked);
        }
        TokenCommand::List(out) => {
            let mut all = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = client.list_tokens(after.as_deref()).await?;
                all.extend(page.tokens);
                match page.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            match out.format {
                Format::Json => json(&all)?,
                Format::Table => table(&HEADER, all.iter().map(row).collect()),
            }
        }
    }
    Ok(())
}
