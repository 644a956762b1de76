//! `keyward import cloak|gcm-hex`: decrypt another store's ciphertexts locally and write each row
//! as one secret through the API (the old store's keys never reach the server). A row either
//! imports whole or is reported by id and left out.
use std::io::BufRead;
use std::path::Path;

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use keyward_api::wire::SecretWriteRequest;
use keyward_crypto::{decrypt_cloak, decrypt_gcm_hex, CloakKey, CryptoError};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::cli::{ImportCommand, ImportTarget};
use crate::client::Client;

/// One source row: its id and each column's raw value (`None` for NULL).
struct Row {
    id: String,
    columns: Vec<(String, Option<Zeroizing<Vec<u8>>>)>,
}

#[derive(Debug, Default)]
struct Report {
    read: u64,
    imported: u64,
    skipped: u64,
    failed: Vec<(String, String)>,
}

fn sql_ident(s: &str) -> Result<String> {
    let ok = s.split('.').count() <= 2
        && s.split('.').all(|p| {
            !p.is_empty()
                && p.len() <= 63
                && p.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
    if !ok {
        bail!("{s:?} is not a plain SQL identifier (letters, digits, _; optionally schema.table)");
    }
    Ok(s.split('.').map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join("."))
}

fn key_bytes(text: &str, what: &str) -> Result<Zeroizing<[u8; 32]>> {
    let text = text.trim();
    let raw = if let Some(path) = text.strip_prefix('@') {
        Zeroizing::new(std::fs::read_to_string(path).with_context(|| format!("cannot read the {what} file {path}"))?)
    } else {
        Zeroizing::new(text.to_owned())
    };
    let t = raw.trim();
    let bytes = Zeroizing::new(if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex_decode(t)?
    } else {
        STANDARD.decode(t).map_err(|_| anyhow::anyhow!("the {what} is neither base64 nor 64 hex characters"))?
    });
    let arr: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| anyhow::anyhow!("the {what} must be 32 bytes (got {})", bytes.len()))?;
    Ok(Zeroizing::new(arr))
}

fn hex_decode(t: &str) -> Result<Vec<u8>> {
    (0..t.len()).step_by(2).map(|i| u8::from_str_radix(&t[i..i + 2], 16).context("invalid hex")).collect()
}

/// `TAG=BASE64[:iv=12]` or `TAG=@file[:iv=12]`.
fn cloak_key(spec: &str) -> Result<CloakKey> {
    let (tag, rest) = spec.split_once('=').context("a --key is TAG=BASE64[:iv=12] or TAG=@file")?;
    let (material, iv_len) = match rest.rsplit_once(":iv=") {
        Some((m, "12")) => (m, 12),
        Some((m, "16")) => (m, 16),
        Some(_) => bail!("key {tag:?}: iv must be 12 or 16"),
        None => (rest, 16),
    };
    Ok(CloakKey { tag: tag.as_bytes().to_vec(), key: key_bytes(material, &format!("key {tag:?}"))?, iv_len })
}

fn why(e: &CryptoError) -> String {
    match e {
        CryptoError::DecryptionFailed => "does not decrypt (wrong key or modified data)".into(),
        other => other.to_string(),
    }
}

fn row_path(template: &str, id: &str) -> Result<String> {
    if !template.contains("{id}") {
        bail!("--path-template must contain {{id}} (e.g. accounts/{{id}}/credentials)");
    }
    let path = template.replace("{id}", id);
    keyward_core::validate_secret_path(&path)
        .map_err(|_| anyhow::anyhow!("id {id:?} does not make a valid secret path"))?;
    Ok(path)
}

fn json_lines_rows(path: &Path, id_column: &str, columns: &[String]) -> Result<Vec<Row>> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut rows = Vec::new();
    for (n, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = Zeroizing::new(line.with_context(|| format!("cannot read {}", path.display()))?);
        if line.trim().is_empty() {
            continue;
        }
        let v: Map<String, Value> =
            serde_json::from_str(&line).map_err(|_| anyhow::anyhow!("line {}: not a JSON object", n + 1))?;
        let id = match v.get(id_column) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(x)) => x.to_string(),
            _ => bail!("line {}: no {id_column:?}", n + 1),
        };
        let mut cols = Vec::new();
        for c in columns {
            cols.push((
                c.clone(),
                match v.get(c) {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(Zeroizing::new(s.as_bytes().to_vec())),
                    Some(_) => bail!("line {}: {c:?} must be a string or null", n + 1),
                },
            ));
        }
        rows.push(Row { id, columns: cols });
    }
    Ok(rows)
}

fn csv_rows(path: &Path, id_column: &str, column: &str) -> Result<Vec<Row>> {
    let mut r = csv::Reader::from_path(path).with_context(|| format!("cannot open {}", path.display()))?;
    let headers = r.headers().context("the CSV file has no header row")?.clone();
    let find =
        |name: &str| headers.iter().position(|h| h == name).with_context(|| format!("the CSV has no column {name:?}"));
    let (id_i, c_i) = (find(id_column)?, find(column)?);
    let mut rows = Vec::new();
    for (n, rec) in r.records().enumerate() {
        let rec = rec.map_err(|_| anyhow::anyhow!("CSV record {} is malformed", n + 1))?;
        let value = rec.get(c_i).unwrap_or_default();
        rows.push(Row {
            id: rec.get(id_i).unwrap_or_default().to_owned(),
            columns: vec![(column.to_owned(), (!value.is_empty()).then(|| Zeroizing::new(value.as_bytes().to_vec())))],
        });
    }
    Ok(rows)
}

async fn database_rows(url: &str, table: &str, id_column: &str, columns: &[String]) -> Result<Vec<Row>> {
    use sqlx::{Connection, Row as _};
    if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
        bail!("--database-url must be a postgres:// URL");
    }
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to the source database: {}", redact(&e.to_string())))?;
    let cols: Vec<String> = columns.iter().map(|c| sql_ident(c)).collect::<Result<_>>()?;
    let sql =
        format!("SELECT {}::text, {} FROM {} ORDER BY 1", sql_ident(id_column)?, cols.join(", "), sql_ident(table)?);
    let records = sqlx::query(&sql)
        .fetch_all(&mut conn)
        .await
        .map_err(|e| anyhow::anyhow!("cannot read {table}: {}", redact(&e.to_string())))?;
    let mut rows = Vec::with_capacity(records.len());
    for rec in records {
        let id: Option<String> = rec.try_get(0)?;
        let mut out = Vec::new();
        for (i, c) in columns.iter().enumerate() {
            let v: Option<Vec<u8>> = rec.try_get(i + 1).with_context(|| format!("column {c:?} must be bytea"))?;
            out.push((c.clone(), v.map(Zeroizing::new)));
        }
        rows.push(Row { id: id.unwrap_or_default(), columns: out });
    }
    conn.close().await.ok();
    Ok(rows)
}

/// Drops anything URL-like from a driver error (it could hold a password).
fn redact(text: &str) -> String {
    text.split_whitespace().map(|w| if w.contains("://") { "[url]" } else { w }).collect::<Vec<_>>().join(" ")
}

/// Decrypts and (unless dry-run) writes every row; prints the report.
async fn import_rows(
    client: &Client,
    target: &ImportTarget,
    rows: Vec<Row>,
    decrypt: impl Fn(&[u8]) -> Result<Zeroizing<Vec<u8>>, String>,
) -> Result<Report> {
    let mut report = Report::default();
    let bar = indicatif::ProgressBar::new(rows.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    for row in rows {
        report.read += 1;
        bar.inc(1);
        let path = match row_path(&target.path_template, &row.id) {
            Ok(p) => p,
            Err(e) => {
                report.failed.push((row.id, e.to_string()));
                continue;
            }
        };
        let mut set = Map::new();
        let mut error = None;
        for (col, raw) in &row.columns {
            let Some(raw) = raw else { continue };
            match decrypt(raw) {
                Ok(plain) => match String::from_utf8(plain.to_vec()) {
                    Ok(s) => {
                        set.insert(col.clone(), Value::String(s));
                    }
                    Err(_) => error = Some(format!("column {col:?} is not UTF-8 text")),
                },
                Err(e) => error = Some(format!("column {col:?}: {e}")),
            }
            if error.is_some() {
                break;
            }
        }
        if let Some(e) = error {
            report.failed.push((row.id, e));
            continue;
        }
        if set.is_empty() {
            report.skipped += 1;
            continue;
        }
        if !target.dry_run {
            let body = SecretWriteRequest { set, unset: vec![], cas: None, rotate_after: None };
            if let Err(e) = client.write(&target.mount, &path, &body).await {
                report.failed.push((row.id, e.to_string()));
                continue;
            }
        }
        report.imported += 1;
    }
    bar.finish_and_clear();
    Ok(report)
}

fn print(report: &Report, dry_run: bool) -> Result<()> {
    let verb = if dry_run { "would import" } else { "imported" };
    println!(
        "read {}, {verb} {}, skipped {} (nothing to import), failed {}",
        report.read,
        report.imported,
        report.skipped,
        report.failed.len()
    );
    for (id, why) in &report.failed {
        println!("  failed: row {id}: {why}");
    }
    if !report.failed.is_empty() {
        bail!("{} row(s) were not imported", report.failed.len());
    }
    Ok(())
}

/// Runs an import command.
pub async fn run(addr: &str, cmd: ImportCommand) -> Result<()> {
    let client = Client::new(addr)?;
    match cmd {
        ImportCommand::Cloak { database_url, database_insecure, input, table, id_column, columns, keys, target } => {
            let mut specs = keys;
            if let Ok(env) = std::env::var("KEYWARD_IMPORT_KEYS") {
                specs.extend(env.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned));
            }
            if specs.is_empty() {
                bail!("give at least one --key TAG=BASE64 (or KEYWARD_IMPORT_KEYS)");
            }
            let keys = specs.iter().map(|s| cloak_key(s)).collect::<Result<Vec<_>>>()?;
            let (rows, base64_cells) = match (database_url, input, table) {
                (_, Some(path), _) => (json_lines_rows(&path, &id_column, &columns)?, true),
                (Some(url), None, Some(table)) => {
                    let url = keyward_store::secure_postgres_url(&url, database_insecure)
                        .map_err(|e| anyhow::anyhow!("source database: {e}"))?;
                    (database_rows(&url, &table, &id_column, &columns).await?, false)
                }
                _ => bail!("give --database-url with --table, or --input FILE"),
            };
            let report = import_rows(&client, &target, rows, |raw| {
                let bytes = if base64_cells {
                    Zeroizing::new(STANDARD.decode(raw).map_err(|_| "not base64".to_owned())?)
                } else {
                    Zeroizing::new(raw.to_vec())
                };
                decrypt_cloak(&keys, &bytes).map_err(|e| why(&e))
            })
            .await?;
            print(&report, target.dry_run)
        }
        ImportCommand::GcmHex { key, input, id_column, ciphertext_column, field, target } => {
            let key = key_bytes(&key, "key")?;
            let csv = input.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
            let mut rows = if csv {
                csv_rows(&input, &id_column, &ciphertext_column)?
            } else {
                json_lines_rows(&input, &id_column, std::slice::from_ref(&ciphertext_column))?
            };
            for r in &mut rows {
                for c in &mut r.columns {
                    c.0.clone_from(&field);
                }
            }
            let report = import_rows(&client, &target, rows, |raw| {
                let text = std::str::from_utf8(raw).map_err(|_| "not text".to_owned())?;
                decrypt_gcm_hex(&key, text).map_err(|e| why(&e))
            })
            .await?;
            print(&report, target.dry_run)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_keys_and_paths() {
        assert_eq!(sql_ident("public.api_credentials").unwrap(), "\"public\".\"api_credentials\"");
        for bad in ["a;drop", "a b", "\"x\"", "a.b.c", "", "1abc"] {
            assert!(sql_ident(bad).is_err(), "{bad}");
        }
        let k = cloak_key(&format!("V1={}:iv=12", STANDARD.encode([5u8; 32]))).unwrap();
        assert_eq!((k.tag.as_slice(), k.iv_len, *k.key), (&b"V1"[..], 12, [5u8; 32]));
        assert_eq!(*key_bytes(&"ab".repeat(32), "key").unwrap(), [0xab; 32]);
        assert!(key_bytes("c2hvcnQ=", "key").is_err());
        assert_eq!(row_path("accounts/{id}/credentials", "42").unwrap(), "accounts/42/credentials");
        assert!(row_path("accounts/{id}", "../x").is_err() && row_path("static", "1").is_err());
        assert_eq!(redact("error connecting to postgres://u:pw@h/db refused"), "error connecting to [url] refused");
    }
}
