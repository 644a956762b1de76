//! Backups (DESIGN §9): an online, consistent snapshot of every backed-up table, encrypted as a
//! whole under a per-backup key wrapped under the active master key; and reading one back.
//!
//! The file (see `keyward_crypto::BackupSealer`) is a manifest — format, cluster id, the master
//! key tag and wrapped key needed, counts per table, the audit head — followed by sealed chunks
//! of JSON lines: `{"table", "columns"}` starts a table, `{"row": [cells]}` is one of its rows,
//! `{"end": rows}` closes the stream. The store reads the rows in one read transaction and this
//! module seals them as they come, so a backup of any size streams in constant memory.
use std::io::Read;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use keyward_crypto::{
    backup_preamble, BackupOpener, BackupSealer, Key256, MasterKeyring, WrappedKey, WrappedKeyDomain, BACKUP_CHUNK,
    BACKUP_MAGIC, BACKUP_MAX_HEADER, BACKUP_MAX_SEALED,
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::{CoreError, Keyward, StoreError};

/// The backup file format this build writes and reads.
pub const BACKUP_FORMAT: u32 = 1;

/// One value of a stored row, as a backup carries it: the schema uses only these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes, base64 in the file.
    Bytes(Bytes),
}

/// Bytes in a backup: `{"b": base64}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bytes {
    /// Base64 (standard, padded).
    pub b: String,
}

impl Cell {
    /// Bytes as a cell.
    pub fn bytes(b: &[u8]) -> Self {
        Self::Bytes(Bytes { b: STANDARD.encode(b) })
    }

    /// The bytes of a bytes cell.
    pub fn decode_bytes(b: &Bytes) -> Result<Vec<u8>, CoreError> {
        STANDARD.decode(&b.b).map_err(|_| CoreError::InvalidInput("the backup holds malformed bytes".into()))
    }
}

/// What a store's snapshot yields, in order: its head, then each table and its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotItem {
    /// Rows per table and the audit head, read in the snapshot before any row.
    Head {
        /// `(table, rows)` in the order the tables follow.
        counts: Vec<(String, u64)>,
        /// The audit chain's head: `(seq, hash)`.
        audit: Option<(u64, Vec<u8>)>,
        /// The master key tags the stored keys are wrapped under.
        kek_tags: Vec<String>,
    },
    /// A table starts.
    Table {
        /// Its name.
        name: String,
        /// Its columns, in the order of every row's cells.
        columns: Vec<String>,
    },
    /// A row of the current table.
    Row(Vec<Cell>),
}

/// A store that can be backed up.
#[async_trait]
pub trait BackupReads {
    /// Sends a consistent snapshot (one read transaction) of every backed-up table to `sink`,
    /// `Head` first; stops early, without error, when the sink is closed.
    async fn snapshot(&self, sink: mpsc::Sender<SnapshotItem>) -> Result<(), StoreError>;
}

/// A table and how many rows the backup holds of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCount {
    /// The table.
    pub table: String,
    /// Its rows.
    pub rows: u64,
}

/// A backup's manifest: its file header, authenticated by every chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`BACKUP_FORMAT`].
    pub format: u32,
    /// This backup's id (the owner its key is wrapped for).
    pub backup_id: String,
    /// The cluster the rows belong to (their MACs are bound to it).
    pub cluster_id: String,
    /// When it was taken (RFC 3339).
    pub created_time: String,
    /// The keyward version that took it.
    pub keyward_version: String,
    /// The master key tag the backup key is wrapped under (needed to restore).
    pub kek_tag: String,
    /// Every master key tag needed to restore: the backup key's and those the stored keys are
    /// wrapped under.
    pub kek_tags: Vec<String>,
    /// The backup key, wrapped (base64).
    pub wrapped_key: String,
    /// Rows per table.
    pub tables: Vec<TableCount>,
    /// The audit chain's head seq (0: empty).
    pub audit_seq: u64,
    /// The audit chain's head hash (hex).
    pub audit_hash: String,
}

/// One JSON line of a backup's plaintext.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Record {
    Table { table: String, columns: Vec<String> },
    Row { row: Vec<Cell> },
    End { end: u64 },
}

/// What a finished backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    /// Its manifest.
    pub manifest: Manifest,
}

impl Keyward {
    /// Takes a backup, sending the file's bytes to `out` as they are sealed. Returns once the
    /// last chunk is sent (or `out` closed, which is an error: the backup is incomplete).
    pub async fn backup(&self, out: mpsc::Sender<Vec<u8>>) -> Result<BackupSummary, CoreError> {
        let cluster = self.integrity_key().await?.map(|(c, _)| c.to_string()).ok_or(CoreError::NotInitialized)?;
        let (tx, mut rx) = mpsc::channel::<SnapshotItem>(256);
        let store = self.store.clone();
        let reader = tokio::spawn(async move { store.snapshot(tx).await });
        let closed = || CoreError::Unavailable;
        let Some(SnapshotItem::Head { counts, audit, mut kek_tags }) = rx.recv().await else {
            return Err(reader_error(reader).await);
        };
        let id = Uuid::new_v4();
        let key = Key256::generate();
        let keyring = self.keys.keyring();
        let wrapped = keyring.wrap(WrappedKeyDomain::BackupKey, id.as_bytes(), 1, &key);
        let (audit_seq, audit_hash) = audit.map_or((0, String::new()), |(s, h)| (s, hex::encode(h)));
        kek_tags.push(wrapped.kek_tag.clone());
        kek_tags.sort_unstable();
        kek_tags.dedup();
        let manifest = Manifest {
            format: BACKUP_FORMAT,
            backup_id: id.to_string(),
            cluster_id: cluster,
            created_time: crate::format_rfc3339(crate::now_nanos()),
            keyward_version: env!("CARGO_PKG_VERSION").to_owned(),
            kek_tag: wrapped.kek_tag.clone(),
            kek_tags,
            wrapped_key: STANDARD.encode(&wrapped.bytes),
            tables: counts.into_iter().map(|(table, rows)| TableCount { table, rows }).collect(),
            audit_seq,
            audit_hash,
        };
        let header = serde_json::to_vec(&manifest).map_err(|e| CoreError::Integrity(e.to_string()))?;
        out.send(backup_preamble(&header)).await.map_err(|_| closed())?;
        let mut sealer = BackupSealer::new(key, &header);
        let mut buf: Vec<u8> = Vec::with_capacity(2 * BACKUP_CHUNK);
        let mut rows = 0u64;
        while let Some(item) = rx.recv().await {
            let record = match item {
                SnapshotItem::Head { .. } => continue,
                SnapshotItem::Table { name, columns } => Record::Table { table: name, columns },
                SnapshotItem::Row(row) => {
                    rows += 1;
                    Record::Row { row }
                }
            };
            push_line(&mut buf, &record)?;
            while buf.len() >= BACKUP_CHUNK {
                let rest = buf.split_off(BACKUP_CHUNK);
                out.send(sealer.seal(&buf, false)).await.map_err(|_| closed())?;
                buf = rest;
            }
        }
        // The reader ended: a failure mid-way must not pass for the end of the data.
        reader.await.map_err(|e| CoreError::Integrity(e.to_string()))??;
        push_line(&mut buf, &Record::End { end: rows })?;
        while buf.len() > BACKUP_CHUNK {
            let rest = buf.split_off(BACKUP_CHUNK);
            out.send(sealer.seal(&buf, false)).await.map_err(|_| closed())?;
            buf = rest;
        }
        out.send(sealer.seal(&buf, true)).await.map_err(|_| closed())?;
        Ok(BackupSummary { manifest })
    }
}

async fn reader_error(reader: tokio::task::JoinHandle<Result<(), StoreError>>) -> CoreError {
    match reader.await {
        Ok(Err(e)) => e.into(),
        Ok(Ok(())) => CoreError::Integrity("the snapshot yielded no head".into()),
        Err(e) => CoreError::Integrity(e.to_string()),
    }
}

fn push_line(buf: &mut Vec<u8>, record: &Record) -> Result<(), CoreError> {
    serde_json::to_writer(&mut *buf, record).map_err(|e| CoreError::Integrity(e.to_string()))?;
    buf.push(b'\n');
    Ok(())
}

/// Why a backup file cannot be restored, in one line.
fn refused(why: impl Into<String>) -> CoreError {
    CoreError::InvalidInput(why.into())
}

/// A backup file being read: its manifest, then its items in order (every chunk checked).
pub struct BackupFile<R: Read> {
    reader: R,
    opener: BackupOpener,
    manifest: Manifest,
    lines: std::collections::VecDeque<Vec<u8>>,
    partial: Vec<u8>,
    last_seen: bool,
    ended: Option<u64>,
    rows: u64,
    /// Rows read per table, in the order the tables came.
    counted: Vec<TableCount>,
}

impl<R: Read> BackupFile<R> {
    /// Reads the manifest and unwraps the backup key with `keyring` (which must hold the master
    /// key the manifest names).
    pub fn open(mut reader: R, keyring: &MasterKeyring) -> Result<Self, CoreError> {
        let mut magic = [0u8; 8];
        read_exact(&mut reader, &mut magic)?;
        if &magic != BACKUP_MAGIC {
            return Err(refused("this is not a keyward backup file"));
        }
        let mut len = [0u8; 4];
        read_exact(&mut reader, &mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        if len > BACKUP_MAX_HEADER {
            return Err(refused("the backup's header is malformed"));
        }
        let mut header = vec![0u8; len];
        read_exact(&mut reader, &mut header)?;
        let manifest: Manifest =
            serde_json::from_slice(&header).map_err(|_| refused("the backup's header is malformed"))?;
        if manifest.format != BACKUP_FORMAT {
            return Err(refused(format!(
                "the backup is in format {}, this keyward reads format {BACKUP_FORMAT}",
                manifest.format
            )));
        }
        let mut missing: Vec<&str> = manifest
            .kek_tags
            .iter()
            .chain([&manifest.kek_tag])
            .map(String::as_str)
            .filter(|t| keyring.get(t).is_none())
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            return Err(refused(format!(
                "the backup needs master key(s) {missing:?}, which the configured keyring does not hold (a retired \
                 master key makes the backups taken under it unrestorable)"
            )));
        }
        let id = Uuid::parse_str(&manifest.backup_id).map_err(|_| refused("the backup's header is malformed"))?;
        let wrapped = WrappedKey {
            kek_tag: manifest.kek_tag.clone(),
            bytes: STANDARD.decode(&manifest.wrapped_key).map_err(|_| refused("the backup's header is malformed"))?,
        };
        let key = keyring.unwrap(WrappedKeyDomain::BackupKey, id.as_bytes(), 1, &wrapped).map_err(|_| {
            refused(format!(
                "master key {:?} does not open this backup's key: a different key under the same tag, or an altered file",
                manifest.kek_tag
            ))
        })?;
        let opener = BackupOpener::new(key, &header);
        Ok(Self {
            reader,
            opener,
            manifest,
            lines: Default::default(),
            partial: vec![],
            last_seen: false,
            ended: None,
            rows: 0,
            counted: vec![],
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn next_chunk(&mut self) -> Result<(), CoreError> {
        let mut len = [0u8; 4];
        read_exact(&mut self.reader, &mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 || len > BACKUP_MAX_SEALED + 1 {
            return Err(refused("the backup is damaged: a chunk has an impossible length"));
        }
        let mut frame = vec![0u8; len];
        read_exact(&mut self.reader, &mut frame)?;
        let (plain, last) = self
            .opener
            .open(&frame)
            .map_err(|_| refused("the backup is damaged or altered: a chunk does not verify"))?;
        self.partial.extend_from_slice(&plain);
        while let Some(nl) = self.partial.iter().position(|&b| b == b'\n') {
            let rest = self.partial.split_off(nl + 1);
            let mut line = std::mem::replace(&mut self.partial, rest);
            line.pop();
            self.lines.push_back(line);
        }
        if last {
            self.last_seen = true;
            if !self.partial.is_empty() {
                return Err(refused("the backup is damaged: its last line is cut"));
            }
            let mut extra = [0u8; 1];
            if self.reader.read(&mut extra).map_err(io_refused)? != 0 {
                return Err(refused("the backup has bytes after its last chunk"));
            }
        }
        Ok(())
    }

    /// The next item, `None` at the end (after the end record and the last chunk, with the row
    /// count checked against the manifest).
    pub fn next_item(&mut self) -> Result<Option<SnapshotItem>, CoreError> {
        loop {
            if let Some(line) = self.lines.pop_front() {
                if self.ended.is_some() {
                    return Err(refused("the backup holds data after its end"));
                }
                let record: Record =
                    serde_json::from_slice(&line).map_err(|_| refused("the backup holds a malformed record"))?;
                return match record {
                    Record::Table { table, columns } => {
                        self.counted.push(TableCount { table: table.clone(), rows: 0 });
                        Ok(Some(SnapshotItem::Table { name: table, columns }))
                    }
                    Record::Row { row } => {
                        self.rows += 1;
                        let table = self
                            .counted
                            .last_mut()
                            .ok_or_else(|| refused("the backup holds a row before its table"))?;
                        table.rows += 1;
                        Ok(Some(SnapshotItem::Row(row)))
                    }
                    Record::End { end } => {
                        self.ended = Some(end);
                        continue;
                    }
                };
            }
            if self.last_seen {
                // Every table with rows, in the manifest's order and with its count.
                let expected: Vec<&TableCount> = self.manifest.tables.iter().filter(|t| t.rows > 0).collect();
                let whole = self.ended == Some(self.rows) && self.counted.iter().collect::<Vec<_>>() == expected;
                return match whole {
                    true => Ok(None),
                    false => Err(refused("the backup is incomplete: its rows do not add up to its manifest")),
                };
            }
            self.next_chunk()?;
        }
    }
}

fn io_refused(e: std::io::Error) -> CoreError {
    refused(format!("cannot read the backup: {e}"))
}

fn read_exact(r: &mut impl Read, buf: &mut [u8]) -> Result<(), CoreError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => refused("the backup is truncated"),
        _ => io_refused(e),
    })
}

impl Keyward {
    /// The cluster's id (the owner of its integrity key), once initialised.
    pub async fn cluster_id(&self) -> Result<Option<String>, CoreError> {
        Ok(self.integrity_key().await?.map(|(c, _)| c.to_string()))
    }
}

impl Keyward {
    /// For a database restored from a backup taken before a compromise, before any server uses
    /// it: revokes every live token and issues a new root token, in one transaction with one
    /// audit entry (`audit`, with the count added). Returns how many were revoked and the token.
    pub async fn revoke_all_tokens_and_reissue_root(
        &self,
        mut audit: crate::AuditEntry,
    ) -> Result<(u64, keyward_crypto::Token), CoreError> {
        use crate::engine::writer::{genesis, Chain};
        let audit_keys = self.keys.audit_keys(self.store.as_ref()).await?;
        let token_key = self.keys.token_key(self.store.as_ref()).await?;
        let now = crate::now_nanos();
        let (mut after, mut live) = (None::<String>, Vec::new());
        loop {
            let page = self.list_tokens(after.as_deref(), 1000).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.accessor.clone());
            live.extend(page.into_iter().filter(|t| t.is_live(now)).map(|t| t.accessor));
        }
        let mut tx = self.store.begin_write(true).await?;
        for accessor in &live {
            tx.revoke_token(accessor).await?;
        }
        let (root, record) = crate::service::new_root_token(&token_key);
        tx.insert_token(&record).await?;
        audit.details.insert("revoked".into(), live.len().into());
        audit.details.insert("root_accessor".into(), record.accessor.clone().into());
        let pending = crate::audit::PendingEntry::new(audit)?;
        let mut chain = Chain::new(&audit_keys, Some(tx.audit_head_for_update().await?.unwrap_or_else(genesis)));
        chain.next(&pending);
        tx.append_audit(&chain.rows).await?;
        tx.commit().await?;
        Ok((live.len() as u64, root))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &str = "v1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

    /// A backup file of `lines` (already JSON) whose manifest claims `tables`.
    fn file(tables: &[(&str, u64)], lines: &[&str]) -> Vec<u8> {
        let keyring = MasterKeyring::parse(KEYS).expect("keyring");
        let (id, key) = (Uuid::new_v4(), Key256::generate());
        let wrapped = keyring.wrap(WrappedKeyDomain::BackupKey, id.as_bytes(), 1, &key);
        let manifest = Manifest {
            format: BACKUP_FORMAT,
            backup_id: id.to_string(),
            cluster_id: Uuid::new_v4().to_string(),
            created_time: "2026-12-04T00:00:00Z".into(),
            keyward_version: "test".into(),
            kek_tag: "v1".into(),
            kek_tags: vec!["v1".into()],
            wrapped_key: STANDARD.encode(&wrapped.bytes),
            tables: tables.iter().map(|(t, n)| TableCount { table: (*t).into(), rows: *n }).collect(),
            audit_seq: 0,
            audit_hash: String::new(),
        };
        let header = serde_json::to_vec(&manifest).expect("manifest");
        let mut out = backup_preamble(&header);
        let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
        out.extend(BackupSealer::new(key, &header).seal(body.as_bytes(), true));
        out
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<SnapshotItem>, CoreError> {
        let keyring = MasterKeyring::parse(KEYS).expect("keyring");
        let mut f = BackupFile::open(bytes, &keyring)?;
        let mut items = vec![];
        while let Some(item) = f.next_item()? {
            items.push(item);
        }
        Ok(items)
    }

    #[test]
    fn a_file_reads_back_as_its_items() {
        let bytes = file(
            &[("mounts", 1), ("secrets", 0)],
            &[
                r#"{"table":"mounts","columns":["id","n","b","x"]}"#,
                r#"{"row":["m1",7,{"b":"AAE="},null]}"#,
                r#"{"end":1}"#,
            ],
        );
        let items = read_all(&bytes).expect("reads");
        assert_eq!(
            items[0],
            SnapshotItem::Table {
                name: "mounts".into(),
                columns: vec!["id".into(), "n".into(), "b".into(), "x".into()]
            }
        );
        assert_eq!(
            items[1],
            SnapshotItem::Row(vec![Cell::Text("m1".into()), Cell::Int(7), Cell::bytes(&[0, 1]), Cell::Null])
        );
    }

    #[test]
    fn rows_that_do_not_match_the_manifest_are_refused() {
        let table = r#"{"table":"mounts","columns":["id"]}"#;
        for (claimed, lines) in [
            (2, vec![table, r#"{"row":["a"]}"#, r#"{"end":1}"#]),
            (1, vec![table, r#"{"row":["a"]}"#, r#"{"row":["b"]}"#, r#"{"end":2}"#]),
            (1, vec![table, r#"{"row":["a"]}"#]),
            (1, vec![table, r#"{"row":["a"]}"#, r#"{"end":1}"#, r#"{"row":["b"]}"#]),
        ] {
            let e = read_all(&file(&[("mounts", claimed)], &lines)).expect_err("refused");
            assert!(e.to_string().contains("backup"), "{e}");
        }
        let e = read_all(&file(&[("mounts", 1)], &[r#"{"row":["a"]}"#, r#"{"end":1}"#])).expect_err("refused");
        assert!(e.to_string().contains("before its table"), "{e}");
    }

    #[test]
    fn other_files_and_wrong_keys_are_named() {
        assert!(read_all(b"PK\x03\x04 not a backup")
            .expect_err("refused")
            .to_string()
            .contains("not a keyward backup"));
        let bytes = file(&[], &[r#"{"end":0}"#]);
        let other = MasterKeyring::parse("v1:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=").expect("keyring");
        let e = BackupFile::open(bytes.as_slice(), &other).err().expect("refused");
        assert!(e.to_string().contains("does not open"), "{e}");
        let v2 = MasterKeyring::parse("v2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=").expect("keyring");
        let e = BackupFile::open(bytes.as_slice(), &v2).err().expect("refused");
        assert!(e.to_string().contains(r#"["v1"]"#), "{e}");
    }
}
