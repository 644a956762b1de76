//! `keyward operator init|backup|restore`.
use std::io::{BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use keyward_core::{AuditEntry, BackupFile, Keyward, KeywardConfig, Manifest, Store};
use keyward_store::{DatabaseUrl, RowLoader};

use crate::cli::{Format, OperatorCommand};
use crate::client::Client;

/// Runs an operator command.
pub async fn run(addr: &str, cmd: OperatorCommand) -> Result<()> {
    match cmd {
        OperatorCommand::Init(out) => {
            let resp = Client::new(addr)?.init().await?;
            match out.format {
                Format::Json => {
                    println!("{}", serde_json::json!({ "root_token": resp.root_token }))
                }
                Format::Table => {
                    println!("Root token: {}", resp.root_token);
                    eprintln!("Keep it safe: it is shown only this once. Create narrower tokens for daily use.");
                }
            }
            Ok(())
        }
        OperatorCommand::Backup { file, out } => backup(addr, &file, out.format).await,
        OperatorCommand::Restore { file, database, master_key_file, database_insecure, revoke_tokens, out } => {
            let keyring = || super::server::load_keyring(master_key_file.as_deref());
            let target = Target { url: DatabaseUrl::parse(&database), insecure: database_insecure, revoke_tokens };
            restore(&file, &target, &keyring, out.format).await
        }
    }
}

/// The manifest at the start of a backup's first bytes.
fn manifest_of(preamble: &[u8]) -> Option<Manifest> {
    preamble.get(12..).and_then(|h| serde_json::from_slice(h).ok())
}

/// Streams a backup into `file` (0600; written beside it, then renamed, so `file` is whole or absent).
async fn backup(addr: &str, file: &Path, format: Format) -> Result<()> {
    if file.exists() {
        bail!("{} exists: choose a new file name", file.display());
    }
    let partial = file.with_extension("partial");
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let result = async {
        let mut resp = Client::new(addr)?.backup().await?;
        let bar = (format == Format::Table && std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {bytes} written ({bytes_per_sec})")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar
        });
        let (mut written, mut manifest, mut last_report) = (0u64, None, 0u64);
        while let Some(chunk) =
            resp.chunk().await.map_err(|_| anyhow!("the backup was cut off: the server failed part-way"))?
        {
            if manifest.is_none() {
                manifest = manifest_of(&chunk);
            }
            out.write_all(&chunk).with_context(|| format!("cannot write {}", partial.display()))?;
            written += chunk.len() as u64;
            match &bar {
                Some(b) => b.set_position(written),
                None if format == Format::Json && written - last_report >= 1 << 20 => {
                    println!("{}", serde_json::json!({ "bytes": written }));
                    last_report = written;
                }
                None => {}
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        out.sync_all().with_context(|| format!("cannot write {}", partial.display()))?;
        let manifest = manifest.ok_or_else(|| anyhow!("the server's answer is not a keyward backup"))?;
        Ok::<_, anyhow::Error>((written, manifest))
    }
    .await;
    let (written, manifest) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, file).with_context(|| format!("cannot write {}", file.display()))?;
    let rows: u64 = manifest.tables.iter().map(|t| t.rows).sum();
    match format {
        Format::Json => println!(
            "{}",
            serde_json::json!({
                "file": file.display().to_string(), "bytes": written, "backup_id": manifest.backup_id, "rows": rows,
                "audit_seq": manifest.audit_seq, "kek_tag": manifest.kek_tag,
            })
        ),
        Format::Table => println!(
            "Backup {} written to {} ({written} bytes): {rows} rows, audit head {}; restoring needs master key {:?}",
            manifest.backup_id,
            file.display(),
            manifest.audit_seq,
            manifest.kek_tag
        ),
    }
    Ok(())
}

/// Restores `file` into the empty database `target`: the file is read into a scratch SQLite
/// database first and checked there whole — every chunk, row MAC, wrapped key, sealed value and
/// the audit chain — so nothing reaches the target unless all of it holds; then the rows are
/// copied into the target in one transaction and `sys.restore` is appended to its audit log.
/// Where a restore goes, and how.
struct Target {
    url: DatabaseUrl,
    insecure: bool,
    revoke_tokens: bool,
}

async fn restore(
    file: &Path,
    to: &Target,
    keyring: &dyn Fn() -> Result<keyward_crypto::MasterKeyring>,
    format: Format,
) -> Result<()> {
    let (target, insecure) = (&to.url, to.insecure);
    let reader = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let mut backup = BackupFile::open(BufReader::new(reader), &keyring()?).map_err(|e| anyhow!("{e}"))?;
    let manifest = backup.manifest().clone();

    // The target first: an unusable or non-empty one is refused before any work.
    let opened = keyward_store::open_for_server(target, 4, insecure).await?;
    let target_store = Arc::new(opened.store);
    if keyward_core::IntegrityReads::holds_rows(target_store.as_ref()).await? {
        bail!("{} is not empty: a backup is restored only into an empty database", target.redacted());
    }

    let scratch_dir = tempfile::Builder::new().prefix("keyward-restore-").tempdir()?;
    let scratch =
        Arc::new(keyward_store::connect(&DatabaseUrl::Sqlite(scratch_dir.path().join("restore.db")), 2).await?);
    let mut loader = RowLoader::begin(&scratch).await?;
    while let Some(item) = backup.next_item().map_err(|e| anyhow!("{e}"))? {
        loader.load(item).await.map_err(|e| anyhow!("the backup does not load: {e}"))?;
    }
    let rows = loader.commit().await?;

    // Checked whole, with the keyring, before the target is touched.
    let check = Keyward::open(scratch.clone(), keyring()?, KeywardConfig::default(), None)
        .await
        .map_err(|e| anyhow!("the backup does not verify: {e}"))?;
    let cluster = check.cluster_id().await?.unwrap_or_default();
    if cluster != manifest.cluster_id {
        bail!(
            "the backup does not verify: its manifest names cluster {} but its rows belong to {cluster}",
            manifest.cluster_id
        );
    }
    let head = check.audit_head().await?.map_or((0, String::new()), |(s, h)| (s, hex::encode(h)));
    if head != (manifest.audit_seq, manifest.audit_hash.clone()) {
        bail!("the backup does not verify: its audit head differs from its manifest's");
    }
    let report = check.doctor(true).await?;
    if !report.ok {
        let mut why = report.problems.clone();
        why.extend(report.failures.iter().cloned());
        bail!("the backup does not verify: {}", why.join("; "));
    }
    let live = live_tokens(&check).await?;
    drop(check);

    keyward_store::copy_database(&scratch, &target_store).await?;
    scratch.close().await;
    let kw = Keyward::open(target_store.clone(), keyring()?, KeywardConfig::default(), None).await?;
    let mut entry = AuditEntry {
        operation: "sys.restore".into(),
        status: 200,
        time: keyward_core::format_rfc3339(keyward_core::now_nanos()),
        ..AuditEntry::default()
    };
    for (k, v) in [
        ("backup_id", serde_json::json!(manifest.backup_id)),
        ("backup_time", serde_json::json!(manifest.created_time)),
        ("rows", serde_json::json!(rows)),
        ("backup_audit_seq", serde_json::json!(manifest.audit_seq)),
    ] {
        entry.details.insert(k.into(), v);
    }
    kw.audit(entry.clone()).await?;
    let reissued = if to.revoke_tokens {
        entry.operation = "sys.restore.revoke-tokens".into();
        entry.details.clear();
        Some(kw.revoke_all_tokens_and_reissue_root(entry).await?)
    } else {
        None
    };
    drop(kw);
    target_store.close().await;
    drop(opened.lock);
    // Printed, never logged: the new root token is shown this once.
    let root = reissued.as_ref().map(|(_, t)| t.expose().to_owned());
    match format {
        Format::Json => println!(
            "{}",
            serde_json::json!({
                "database": target.redacted(), "rows": rows, "backup_id": manifest.backup_id, "live_tokens": live,
                "revoked_tokens": reissued.as_ref().map(|(n, _)| n), "root_token": root,
            })
        ),
        Format::Table => {
            println!(
                "Restored backup {} ({}) into {}: {rows} rows, verified.",
                manifest.backup_id,
                manifest.created_time,
                target.redacted()
            );
            match &reissued {
                Some((n, token)) => {
                    println!("Revoked its {n} live token(s). New root token: {}", token.expose());
                    eprintln!("Keep it safe: it is shown only this once.");
                }
                None => println!(
                    "It holds {live} live token(s); they work against the restored database as they did before \
                     (--revoke-tokens revokes them all after a compromise)."
                ),
            }
        }
    }
    Ok(())
}

/// Tokens neither revoked nor expired.
async fn live_tokens(kw: &Keyward) -> Result<u64> {
    let now = keyward_core::now_nanos();
    let (mut after, mut live) = (None::<String>, 0u64);
    loop {
        let page = kw.list_tokens(after.as_deref(), 1000).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.accessor.clone());
        live += page.iter().filter(|t| t.is_live(now)).count() as u64;
    }
    Ok(live)
}
