//! `keyward audit …`.
use anyhow::{anyhow, bail, Context, Result};
use keyward_api::wire::AuditEntryOut as AuditEntry;

use crate::cli::{AuditCommand, AuditFilter, Format};
use crate::client::Client;
use crate::output::{json, table};

fn query(f: &AuditFilter) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    if let Some(s) = &f.since {
        q.push(("since", s.clone()));
    }
    if let Some(a) = &f.accessor {
        q.push(("accessor", a.clone()));
    }
    if let Some(p) = &f.path {
        q.push(("path", p.clone()));
    }
    if f.failed {
        q.push(("failed", "true".into()));
    }
    if let Some(o) = &f.operation {
        q.push(("operation", o.clone()));
    }
    q
}

fn print(entries: &[AuditEntry], format: Format) -> Result<()> {
    match format {
        Format::Json => entries.iter().try_for_each(|e| {
            println!("{}", serde_json::to_string(e)?);
            Ok(())
        }),
        Format::Table => {
            if !entries.is_empty() {
                table(
                    &["SEQ", "TIME", "ACCESSOR", "OPERATION", "TARGET", "STATUS", "FROM"],
                    entries
                        .iter()
                        .map(|e| {
                            let target =
                                if e.path.is_empty() { e.mount.clone() } else { format!("{}/{}", e.mount, e.path) };
                            vec![
                                e.seq.to_string(),
                                e.time.clone(),
                                e.accessor.clone(),
                                e.operation.clone(),
                                target,
                                e.status.to_string(),
                                e.remote_addr.clone(),
                            ]
                        })
                        .collect(),
                );
            }
            Ok(())
        }
    }
}

/// The last `{"seq","hash"}` line of an anchor file.
fn read_anchor(path: &std::path::Path) -> Result<(u64, String)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let line =
        text.lines().rev().find(|l| !l.trim().is_empty()).ok_or_else(|| anyhow!("{} is empty", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(line).with_context(|| format!("{} is not an anchor file", path.display()))?;
    let seq = v["seq"].as_u64().ok_or_else(|| anyhow!("anchor without seq in {}", path.display()))?;
    let hash = v["hash"].as_str().ok_or_else(|| anyhow!("anchor without hash in {}", path.display()))?;
    Ok((seq, hash.to_owned()))
}

/// Runs an audit command.
pub async fn run(addr: &str, cmd: AuditCommand) -> Result<()> {
    let client = Client::new(addr)?;
    match cmd {
        AuditCommand::Tail { lines, follow, filter } => {
            let mut q = query(&filter);
            q.push(("last", lines.to_string()));
            let page = client.audit(&q).await?;
            print(&page.entries, filter.out.format)?;
            let mut after = page.next;
            if !follow {
                return Ok(());
            }
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                let mut q = query(&filter);
                q.push(("after", after.to_string()));
                q.push(("limit", "1000".into()));
                let page = client.audit(&q).await?;
                print(&page.entries, filter.out.format)?;
                after = page.next.max(after);
            }
        }
        AuditCommand::Search { filter } => {
            let mut after = 0;
            loop {
                let mut q = query(&filter);
                q.push(("after", after.to_string()));
                q.push(("limit", "1000".into()));
                let page = client.audit(&q).await?;
                print(&page.entries, filter.out.format)?;
                if page.entries.is_empty() || page.next <= after {
                    break;
                }
                after = page.next;
            }
        }
        AuditCommand::Verify { anchor_file, out } => {
            let anchor = anchor_file.as_deref().map(read_anchor).transpose()?;
            let report = client.audit_verify(anchor).await?;
            if out.format == Format::Json {
                json(&report)?;
            }
            if report.ok {
                if out.format == Format::Table {
                    println!("Audit log intact: {} entries, head {}", report.entries, report.last_hash);
                }
            } else {
                let at = report.broken_seq.map_or_else(|| "?".to_owned(), |s| s.to_string());
                bail!("audit log broken at entry {at}: {}", report.reason.as_deref().unwrap_or("unknown reason"));
            }
        }
    }
    Ok(())
}
