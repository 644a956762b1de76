//! `keyward audit …`.
use anyhow::{anyhow, bail, Context, Result};
use keyward_api::wire::{ArchiveRequest, AuditEntryOut as AuditEntry};

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
        AuditCommand::Verify { anchor_file, archive, out } => {
            let anchor = anchor_file.as_deref().map(read_anchor).transpose()?;
            let report = client.audit_verify(anchor, archive.as_deref()).await?;
            if out.format == Format::Json {
                json(&report)?;
            }
            if let Some(a) = report.archive.as_ref().filter(|a| !a.ok) {
                let file = a.broken_file.as_deref().map_or_else(String::new, |f| format!(" in {f}"));
                bail!("audit archive broken{file}: {}", a.reason.as_deref().unwrap_or("unknown reason"));
            }
            if !report.ok {
                let at = report.broken_seq.map_or_else(|| "?".to_owned(), |s| s.to_string());
                bail!("audit log broken at entry {at}: {}", report.reason.as_deref().unwrap_or("unknown reason"));
            }
            if out.format == Format::Table {
                if let Some(a) = &report.archive {
                    println!("Audit archive intact: {} segments, entries 1..{}", a.segments, a.last_seq);
                    if !a.unfinished.is_empty() {
                        println!(
                            "  past the archived head (the next run sets them aside): {}",
                            a.unfinished.join(", ")
                        );
                    }
                }
                let from = match report.archived_seq {
                    0 => String::new(),
                    n => format!(" after archived entry {n}"),
                };
                println!("Audit log intact: {} entries{from}, head {}", report.entries, report.last_hash);
            }
        }
        AuditCommand::Archive { before, vacuum, out } => {
            if before.is_none() && !vacuum {
                bail!("give --before AGE (e.g. 30d: entries older than that are archived), --vacuum, or both");
            }
            let report = client.audit_archive(&ArchiveRequest { before, vacuum }).await?;
            if out.format == Format::Json {
                return json(&report);
            }
            match report.segments.as_slice() {
                [] => println!("Nothing to archive (the database's log begins after entry {}).", report.archived_seq),
                files => println!(
                    "Archived {} entries in {} segments ({} .. {}); the database's log now begins after entry {}.",
                    report.entries,
                    files.len(),
                    files[0],
                    files[files.len() - 1],
                    report.archived_seq
                ),
            }
            if let Some(space) = &report.space {
                let size = |b: Option<u64>| b.map_or_else(|| "?".to_owned(), |b| format!("{:.1} MB", b as f64 / 1e6));
                match (space.bytes_before, space.bytes_after) {
                    (Some(_), Some(_)) => println!(
                        "{} (database file {} -> {})",
                        space.action,
                        size(space.bytes_before),
                        size(space.bytes_after)
                    ),
                    _ => println!("{}", space.action),
                }
            }
            if let Some(error) = &report.error {
                bail!("the archive stopped early (what is listed above was archived): {error}");
            }
        }
    }
    Ok(())
}
