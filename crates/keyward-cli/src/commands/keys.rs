//! `keyward keys …`.
use anyhow::Result;

use crate::cli::{Format, KeysCommand};
use crate::client::Client;
use crate::output::{json, table};

fn yes(b: bool) -> String {
    if b { "yes" } else { "" }.to_owned()
}

/// Runs a keys command.
pub async fn run(addr: &str, cmd: KeysCommand) -> Result<()> {
    let client = Client::new(addr)?;
    match cmd {
        KeysCommand::Status(out) => {
            let s = client.key_status().await?;
            match out.format {
                Format::Json => json(&s)?,
                Format::Table => {
                    table(
                        &["MASTER KEY", "ACTIVE", "CONFIGURED", "WRAPPED KEYS", "RETIRABLE"],
                        s.keks
                            .iter()
                            .map(|k| {
                                vec![
                                    k.tag.clone(),
                                    yes(k.active),
                                    yes(k.configured),
                                    k.wrapped_keys.to_string(),
                                    yes(k.retirable),
                                ]
                            })
                            .collect(),
                    );
                    table(
                        &["PROJECT", "DATA KEY", "WRAPPED BY", "BLOBS"],
                        s.deks
                            .iter()
                            .map(|d| {
                                vec![d.mount.clone(), format!("v{}", d.version), d.kek_tag.clone(), d.blobs.to_string()]
                            })
                            .collect(),
                    );
                }
            }
        }
        KeysCommand::Rotate { project, out } => {
            let r = client.rotate_dek(&project).await?;
            match out.format {
                Format::Json => json(&r)?,
                Format::Table => println!("{}: new writes now use data key v{}", r.mount, r.version),
            }
        }
        KeysCommand::Rewrap(out) => {
            let r = client.rewrap().await?;
            match out.format {
                Format::Json => json(&r)?,
                Format::Table => println!("Rewrapped {} key(s) under the active master key", r.rewrapped),
            }
        }
        KeysCommand::Migrate { project, all: _, no_wait, out } => {
            let job = client.start_migration(project).await?;
            if no_wait {
                match out.format {
                    Format::Json => json(&job)?,
                    Format::Table => println!("Started key job {} ({} row(s) to re-encrypt)", job.id, job.total),
                }
                return Ok(());
            }
            follow_job(&client, job, out.format).await?;
        }
        KeysCommand::Jobs(out) => {
            let jobs = client.key_jobs().await?;
            match out.format {
                Format::Json => json(&jobs)?,
                Format::Table => table(
                    &["JOB", "KIND", "PROJECT", "STATUS", "DONE", "TOTAL", "SERVER", "ERROR"],
                    jobs.iter()
                        .map(|j| {
                            vec![
                                j.id.to_string(),
                                j.kind.clone(),
                                j.mount.clone().unwrap_or_else(|| "(all)".into()),
                                j.status.clone(),
                                j.done.to_string(),
                                j.total.to_string(),
                                j.owner.clone(),
                                j.error.clone(),
                            ]
                        })
                        .collect(),
                ),
            }
        }
        KeysCommand::Prune { project, out } => {
            let r = client.prune_deks(&project).await?;
            match out.format {
                Format::Json => json(&r)?,
                Format::Table => {
                    let list = |v: &[u32]| v.iter().map(|n| format!("v{n}")).collect::<Vec<_>>().join(", ");
                    println!(
                        "{}: deleted [{}]; kept (still sealing secrets) [{}]",
                        r.mount,
                        list(&r.deleted),
                        list(&r.kept)
                    );
                }
            }
        }
    }
    Ok(())
}

/// Polls a job until it ends, with a progress bar (rows done/total, rate, ETA) or JSON lines.
async fn follow_job(client: &Client, mut job: keyward_api::wire::KeyJob, format: Format) -> Result<()> {
    let bar = (format == Format::Table).then(|| {
        let bar = indicatif::ProgressBar::new(job.total);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows  {per_sec}  ETA {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    loop {
        match &bar {
            Some(b) => b.set_position(job.done.min(job.total)),
            None => println!(
                "{}",
                serde_json::json!({"job": job.id, "status": job.status, "done": job.done, "total": job.total})
            ),
        }
        if job.status != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        job = client.key_job(&job.id).await?;
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    match job.status.as_str() {
        "done" => {
            if format == Format::Table {
                println!("Re-encrypted {} row(s) under the newest data keys (job {})", job.done, job.id);
            }
            Ok(())
        }
        _ => anyhow::bail!("key job {} {}: {}", job.id, job.status, job.error),
    }
}

/// `keyward doctor`.
pub async fn doctor(addr: &str, verify_all: bool, format: Format) -> Result<()> {
    let r = Client::new(addr)?.doctor(verify_all).await?;
    match format {
        Format::Json => json(&r)?,
        Format::Table => {
            let mark = |ok: bool| if ok { "ok" } else { "FAILED" };
            println!("database      ok");
            println!("master keys   {}", mark(r.master_keys_ok));
            println!("self-test     {}", mark(r.self_test_ok));
            println!("audit chain   {}", mark(r.audit_ok));
            println!("row MACs      {} ({} rows)", mark(r.rows_ok), r.rows_checked);
            if verify_all {
                for (mount, n) in &r.mounts {
                    println!("{mount:<13} {n} version(s) decrypt");
                }
                println!("blobs         {} checked, {} failed", r.checked, r.failures.len());
            }
            for f in &r.failures {
                println!("cannot decrypt: {f}");
            }
            for p in &r.problems {
                println!("problem: {p}");
            }
            for i in &r.inert_rules {
                println!("inert policy rule: {i}");
            }
        }
    }
    if !r.ok {
        anyhow::bail!("doctor found {} failure(s) and {} problem(s)", r.failures.len(), r.problems.len());
    }
    Ok(())
}
