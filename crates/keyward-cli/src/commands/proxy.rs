//! `keyward proxy …`: credential-proxy routes.
use anyhow::Result;
use keyward_api::wire::{ProxyRouteOut, ProxyRouteRequest};

use crate::cli::{Format, ProxyCommand};
use crate::client::Client;
use crate::output::{confirm, json, table};

fn row(r: &ProxyRouteOut) -> Vec<String> {
    vec![
        r.name.clone(),
        r.upstream.clone(),
        r.secret.clone(),
        r.inject.join(" "),
        r.rate_limit.clone().unwrap_or_else(|| "-".into()),
        r.timeout.clone(),
    ]
}

const HEADERS: [&str; 6] = ["NAME", "UPSTREAM", "SECRET", "INJECT", "RATE LIMIT", "TIMEOUT"];

/// Runs a proxy command.
pub async fn run(addr: &str, cmd: ProxyCommand) -> Result<()> {
    let client = Client::new(addr)?;
    match cmd {
        ProxyCommand::Create { name, upstream, secret, inject, rate_limit, timeout, allow_insecure } => {
            let req = ProxyRouteRequest { upstream, secret, inject, rate_limit, timeout, allow_insecure };
            let r = client.put_proxy_route(&name, &req).await?;
            println!(
                "Route {:?}: {}/api/v1/proxy/{}/… → {} with {}",
                r.name,
                client.base(),
                r.name,
                r.upstream,
                r.secret
            );
        }
        ProxyCommand::List(out) => {
            let l = client.proxy_routes().await?;
            match out.format {
                Format::Json => json(&l)?,
                Format::Table => table(&HEADERS, l.routes.iter().map(row).collect()),
            }
        }
        ProxyCommand::Show { name, out } => {
            let r = client.proxy_route(&name).await?;
            match out.format {
                Format::Json => json(&r)?,
                Format::Table => table(&HEADERS, vec![row(&r)]),
            }
        }
        ProxyCommand::Delete { name, yes } => {
            confirm(&format!("delete proxy route {name:?}"), yes)?;
            client.delete_proxy_route(&name).await?;
            println!("Deleted proxy route {name:?}");
        }
    }
    Ok(())
}
