//! Audit archive segments: entries moved out of the database, in files that prove themselves.
//!
//! A segment is JSON lines: a header (`format`, `cluster_id`, `first_seq`, `last_seq`,
//! `entries`, `prev_hash` — the chain head before its first entry — and `last_hash`), one line
//! per entry (`{"entry":{…},"hash":"…"}`, the entry as its canonical JSON), and a last line
//! `{"mac":"…"}`: an HMAC, under the archive subkey of the audit key, of every byte before it.
//! Each entry's hash chains from `prev_hash` as in the database, so a segment checks alone and
//! the segments of a directory check as one chain from entry 1 to the database's archived head.
//! Segments are written to a temporary file, synced with their directory, read back and checked,
//! then renamed into place: a segment under its final name is complete.
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{canonical, AuditEntry, AuditKeys, AuditRow, HASH_LEN};
use crate::CoreError;

/// The `format` of a segment header.
pub const SEGMENT_FORMAT: &str = "keyward-audit-archive/1";

/// The most entries one segment holds (about 25 MB).
pub const SEGMENT_ENTRIES: usize = 50_000;

/// What a segment says about itself (its first line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentHeader {
    /// [`SEGMENT_FORMAT`].
    pub format: String,
    /// The cluster whose log this is.
    pub cluster_id: String,
    /// Its first entry's seq.
    pub first_seq: u64,
    /// Its last entry's seq.
    pub last_seq: u64,
    /// How many entries it holds.
    pub entries: u64,
    /// The chain head before its first entry (hex).
    pub prev_hash: String,
    /// Its last entry's hash (hex).
    pub last_hash: String,
    /// When it was written (RFC 3339).
    pub created: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryLine {
    entry: AuditEntry,
    hash: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MacLine {
    mac: String,
}

/// The file name of the segment holding entries `first..=last` (zero-padded, so names sort
/// in seq order).
pub fn segment_name(first: u64, last: u64) -> String {
    format!("audit-{first:020}-{last:020}.jsonl")
}

/// The `(first, last)` a segment file name stands for.
fn parse_segment_name(name: &str) -> Option<(u64, u64)> {
    let middle = name.strip_prefix("audit-")?.strip_suffix(".jsonl")?;
    let (first, last) = middle.split_once('-')?;
    Some((first.parse().ok()?, last.parse().ok()?))
}

fn io(what: &str, path: &Path, e: std::io::Error) -> CoreError {
    CoreError::Archive(format!("cannot {what} {}: {e}", path.display()))
}

/// The bytes of a segment holding `rows`, which follow `prev` in the chain.
fn encode(
    keys: &AuditKeys,
    cluster: &str,
    prev: &(u64, Vec<u8>),
    rows: &[AuditRow],
) -> Result<(SegmentHeader, Vec<u8>), CoreError> {
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Err(CoreError::InvalidInput("an archive segment needs at least one entry".into()));
    };
    let header = SegmentHeader {
        format: SEGMENT_FORMAT.into(),
        cluster_id: cluster.into(),
        first_seq: first.seq,
        last_seq: last.seq,
        entries: rows.len() as u64,
        prev_hash: hex::encode(&prev.1),
        last_hash: hex::encode(&last.hash),
        created: crate::format_rfc3339(crate::now_nanos()),
    };
    let mut out = serde_json::to_vec(&header).map_err(|e| CoreError::Archive(e.to_string()))?;
    out.push(b'\n');
    for row in rows {
        // The entry exactly as stored: its canonical JSON.
        out.extend_from_slice(b"{\"entry\":");
        out.extend_from_slice(row.entry.as_bytes());
        out.extend_from_slice(b",\"hash\":\"");
        out.extend_from_slice(hex::encode(&row.hash).as_bytes());
        out.extend_from_slice(b"\"}\n");
    }
    let mac = keys.archive_mac(&out);
    out.extend_from_slice(format!("{{\"mac\":\"{}\"}}\n", hex::encode(mac)).as_bytes());
    Ok((header, out))
}

/// Writes the segment of `rows` (following `prev`) into `dir`: a temporary file, synced, read
/// back and checked, renamed into place, the directory synced. Returns its header and path.
pub fn write_segment(
    dir: &Path,
    keys: &AuditKeys,
    cluster: &str,
    prev: &(u64, Vec<u8>),
    rows: &[AuditRow],
) -> Result<(SegmentHeader, PathBuf), CoreError> {
    let (header, bytes) = encode(keys, cluster, prev, rows)?;
    let name = segment_name(header.first_seq, header.last_seq);
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = (|| {
        let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io("write", &tmp, e));
    }
    // What reached the disk is what was meant: read back and checked before anything relies on it.
    match read_segment(&tmp, keys, cluster) {
        Ok(back) if back == header => {}
        Ok(_) => {
            let _ = fs::remove_file(&tmp);
            return Err(CoreError::Archive(format!("{} reads back differently than written", tmp.display())));
        }
        Err(why) => {
            let _ = fs::remove_file(&tmp);
            return Err(CoreError::Archive(format!("{} does not verify once written: {why}", tmp.display())));
        }
    }
    let path = dir.join(&name);
    fs::rename(&tmp, &path).map_err(|e| io("rename", &tmp, e))?;
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io("sync", dir, e))?;
    Ok((header, path))
}

/// Reads and checks one segment: its MAC, its header and every entry's place in the chain.
/// The error is the reason, in a sentence.
pub fn read_segment(path: &Path, keys: &AuditKeys, cluster: &str) -> Result<SegmentHeader, String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot be read: {e}"))?;
    let body_end = bytes
        .strip_suffix(b"\n")
        .and_then(|b| b.iter().rposition(|c| *c == b'\n'))
        .map(|i| i + 1)
        .ok_or("truncated: it has no MAC line")?;
    let (body, mac_line) = bytes.split_at(body_end);
    let mac: MacLine = serde_json::from_slice(mac_line).map_err(|_| "truncated: its last line is not its MAC")?;
    let mac = hex::decode(mac.mac).map_err(|_| "its MAC is not hex")?;
    let expected = keys.archive_mac(body);
    if !bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], &mac[..])) {
        return Err("modified: its MAC does not verify (changed, cut, or not written by this cluster)".into());
    }
    let mut lines = body.split(|c| *c == b'\n').filter(|l| !l.is_empty());
    let header: SegmentHeader =
        lines.next().and_then(|l| serde_json::from_slice(l).ok()).ok_or("its header is not a segment header")?;
    if header.format != SEGMENT_FORMAT {
        return Err(format!("format {:?} is not {SEGMENT_FORMAT:?}", header.format));
    }
    if header.cluster_id != cluster {
        return Err(format!("it belongs to cluster {}, not {cluster}", header.cluster_id));
    }
    let mut prev = hex::decode(&header.prev_hash).map_err(|_| "its prev_hash is not hex")?;
    let mut seq = header.first_seq;
    let mut count = 0u64;
    for line in lines {
        let e: EntryLine = serde_json::from_slice(line).map_err(|_| format!("entry {seq} is malformed"))?;
        if e.entry.seq != seq {
            return Err(format!("entry {seq} says it is entry {}", e.entry.seq));
        }
        let c = canonical(&e.entry).map_err(|_| format!("entry {seq} cannot be canonicalised"))?;
        let hash = keys.chain(&prev, &c);
        if hex::encode(hash) != e.hash {
            return Err(format!("entry {seq} does not match its chain hash"));
        }
        prev = hash.to_vec();
        seq += 1;
        count += 1;
    }
    if count != header.entries || count == 0 || seq - 1 != header.last_seq {
        return Err(format!(
            "it holds {count} entries, its header says {} ending at {}",
            header.entries, header.last_seq
        ));
    }
    if hex::encode(&prev) != header.last_hash {
        return Err("its last entry's hash differs from its header's".into());
    }
    Ok(header)
}

/// The segment files of `dir` (by the range their names give), in seq order.
fn segments_in(dir: &Path) -> Result<Vec<(u64, u64, PathBuf)>, CoreError> {
    let mut out = Vec::new();
    for item in fs::read_dir(dir).map_err(|e| io("list", dir, e))? {
        let item = item.map_err(|e| io("list", dir, e))?;
        let name = item.file_name();
        if let Some((first, last)) = name.to_str().and_then(parse_segment_name) {
            out.push((first, last, item.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// The subdirectory segments past the archived head are moved to.
pub const SUPERSEDED: &str = "superseded";

/// Clears what an interrupted archive run left in `dir`: temporary files are removed, and
/// segments past the database's archived head `archived_seq` — written, but their rows never
/// deleted, so the database still holds them (or, after a restore from an older backup, holds
/// the entries that replaced them) — are moved into `superseded/`, never deleted. Only one
/// archive runs at a time; returns what was set aside.
pub fn set_aside_unfinished(dir: &Path, archived_seq: u64) -> Result<Vec<String>, CoreError> {
    let mut set_aside = Vec::new();
    for item in fs::read_dir(dir).map_err(|e| io("list", dir, e))? {
        let item = item.map_err(|e| io("list", dir, e))?;
        let name = item.file_name().to_string_lossy().into_owned();
        if name.starts_with(".audit-") && name.ends_with(".tmp") {
            fs::remove_file(item.path()).map_err(|e| io("remove", &item.path(), e))?;
            set_aside.push(name);
        } else if parse_segment_name(&name).is_some_and(|(first, _)| first > archived_seq) {
            let aside = dir.join(SUPERSEDED);
            fs::create_dir_all(&aside).map_err(|e| io("make", &aside, e))?;
            let to = aside.join(format!("{name}.{}", crate::now_nanos()));
            fs::rename(item.path(), &to).map_err(|e| io("move", &item.path(), e))?;
            set_aside.push(name);
        }
    }
    if !set_aside.is_empty() {
        fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io("sync", dir, e))?;
    }
    Ok(set_aside)
}

/// The result of checking an archive directory against the database's archived head.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveCheck {
    /// Whether the segments chain from entry 1 to the archived head.
    pub ok: bool,
    /// Segments checked.
    pub segments: u64,
    /// Entries in them.
    pub entries: u64,
    /// The last entry they cover.
    pub last_seq: u64,
    /// Segments past the archived head (left by an interrupted run; the next run moves them to
    /// `superseded/`), not counted.
    pub unfinished: Vec<String>,
    /// The segment where the check failed.
    pub broken_file: Option<String>,
    /// Why, in a sentence.
    pub reason: Option<String>,
}

/// Checks every segment of `dir` and that together they chain from entry 1 to `archived`, the
/// database's archived head `(seq, hash)`.
pub fn check_archive(
    dir: &Path,
    keys: &AuditKeys,
    cluster: &str,
    archived: &(u64, Vec<u8>),
) -> Result<ArchiveCheck, CoreError> {
    let mut report = ArchiveCheck::default();
    let (mut next, mut prev) = (1u64, hex::encode([0u8; HASH_LEN]));
    let fail = |mut r: ArchiveCheck, file: Option<&Path>, why: String| {
        r.broken_file = file.map(|f| f.file_name().unwrap_or_default().to_string_lossy().into_owned());
        r.reason = Some(why);
        r
    };
    for (first, last, path) in segments_in(dir)? {
        if first > archived.0 {
            report.unfinished.push(path.file_name().unwrap_or_default().to_string_lossy().into_owned());
            continue;
        }
        let header = match read_segment(&path, keys, cluster) {
            Ok(h) => h,
            Err(why) => return Ok(fail(report, Some(&path), why)),
        };
        if (header.first_seq, header.last_seq) != (first, last) {
            let why = format!("renamed: it holds entries {}..{}", header.first_seq, header.last_seq);
            return Ok(fail(report, Some(&path), why));
        }
        if first > next {
            let why = format!("dropped: entries {next}..{} are in no archive", first - 1);
            return Ok(fail(report, Some(&path), why));
        }
        if first < next {
            let why = format!("overlaps: entries {first}..{} are also in an earlier segment", next - 1);
            return Ok(fail(report, Some(&path), why));
        }
        if header.prev_hash != prev {
            let why = "does not follow the segment before it (its chain starts elsewhere)".to_owned();
            return Ok(fail(report, Some(&path), why));
        }
        report.segments += 1;
        report.entries += header.entries;
        report.last_seq = last;
        next = last + 1;
        prev = header.last_hash;
    }
    if next - 1 < archived.0 {
        let why = format!(
            "dropped: entries {next}..{} are in no archive (the database's archived head is entry {})",
            archived.0, archived.0
        );
        return Ok(fail(report, None, why));
    }
    if prev != hex::encode(&archived.1) {
        let why = format!("the archives do not end at the database's archived head (entry {})", archived.0);
        return Ok(fail(report, None, why));
    }
    report.ok = true;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use keyward_crypto::Key256;

    use super::*;

    fn rows(keys: &AuditKeys, from: &(u64, Vec<u8>), n: u64) -> Vec<AuditRow> {
        let mut prev = from.1.clone();
        (from.0 + 1..=from.0 + n)
            .map(|seq| {
                let e = AuditEntry { seq, operation: format!("op{seq}"), status: 200, ..Default::default() };
                let entry = canonical(&e).unwrap();
                let hash = keys.chain(&prev, &entry).to_vec();
                prev = hash.clone();
                AuditRow { seq, entry, hash }
            })
            .collect()
    }

    fn genesis() -> (u64, Vec<u8>) {
        (0, vec![0; HASH_LEN])
    }

    /// Three segments of 4, 3 and 5 entries; returns the head after them.
    fn three(dir: &Path, keys: &AuditKeys) -> (u64, Vec<u8>) {
        let mut head = genesis();
        for n in [4, 3, 5] {
            let r = rows(keys, &head, n);
            write_segment(dir, keys, "c1", &head, &r).unwrap();
            let last = r.last().unwrap();
            head = (last.seq, last.hash.clone());
        }
        head
    }

    #[test]
    fn segments_chain_and_each_tampering_is_named() {
        let keys = AuditKeys::new(&Key256::generate());
        let dir = tempfile::tempdir().unwrap();
        let head = three(dir.path(), &keys);
        let ok = check_archive(dir.path(), &keys, "c1", &head).unwrap();
        assert!(ok.ok, "{ok:?}");
        assert_eq!((ok.segments, ok.entries, ok.last_seq), (3, 12, 12));
        let mode = fs::metadata(dir.path().join(segment_name(1, 4))).unwrap();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777, 0o600);

        // Another cluster's key, or the name of another cluster.
        let other = AuditKeys::new(&Key256::generate());
        assert!(!check_archive(dir.path(), &other, "c1", &head).unwrap().ok);
        let r = check_archive(dir.path(), &keys, "c2", &head).unwrap();
        assert!(r.reason.unwrap().contains("cluster c1"));

        // A byte changed in an entry.
        let middle = dir.path().join(segment_name(5, 7));
        let text = fs::read_to_string(&middle).unwrap();
        fs::write(&middle, text.replace("op6", "opX")).unwrap();
        let r = check_archive(dir.path(), &keys, "c1", &head).unwrap();
        assert!(!r.ok);
        assert_eq!(r.broken_file.as_deref(), Some(segment_name(5, 7).as_str()));
        assert!(r.reason.unwrap().starts_with("modified"));

        // The middle segment dropped.
        fs::remove_file(&middle).unwrap();
        let r = check_archive(dir.path(), &keys, "c1", &head).unwrap();
        assert_eq!(r.reason.as_deref(), Some("dropped: entries 5..7 are in no archive"));

        // The last one dropped: the archives stop short of the database's archived head.
        let dir2 = tempfile::tempdir().unwrap();
        let head2 = three(dir2.path(), &keys);
        fs::remove_file(dir2.path().join(segment_name(8, 12))).unwrap();
        let r = check_archive(dir2.path(), &keys, "c1", &head2).unwrap();
        assert!(r.reason.unwrap().starts_with("dropped: entries 8..12"));

        // A segment cut short loses its MAC line.
        let dir3 = tempfile::tempdir().unwrap();
        let head3 = three(dir3.path(), &keys);
        let first = dir3.path().join(segment_name(1, 4));
        let bytes = fs::read(&first).unwrap();
        fs::write(&first, &bytes[..bytes.len() - 20]).unwrap();
        let r = check_archive(dir3.path(), &keys, "c1", &head3).unwrap();
        assert_eq!(r.broken_file.as_deref(), Some(segment_name(1, 4).as_str()), "{r:?}");
    }

    #[test]
    fn a_segment_renamed_or_past_the_head_is_told_apart() {
        let keys = AuditKeys::new(&Key256::generate());
        let dir = tempfile::tempdir().unwrap();
        let head = three(dir.path(), &keys);
        // Written, but the database never recorded it as archived: unfinished, and removed.
        let r = rows(&keys, &head, 2);
        write_segment(dir.path(), &keys, "c1", &head, &r).unwrap();
        fs::write(dir.path().join(".audit-x.tmp"), b"partial").unwrap();
        let report = check_archive(dir.path(), &keys, "c1", &head).unwrap();
        assert!(report.ok);
        assert_eq!(report.unfinished, vec![segment_name(13, 14)]);
        let aside = set_aside_unfinished(dir.path(), head.0).unwrap();
        assert_eq!(aside.len(), 2, "{aside:?}");
        assert!(check_archive(dir.path(), &keys, "c1", &head).unwrap().unfinished.is_empty());
        // The segment is kept, out of the way; the temporary file is gone.
        let kept: Vec<_> = fs::read_dir(dir.path().join(SUPERSEDED)).unwrap().collect();
        assert_eq!(kept.len(), 1);
        assert!(!dir.path().join(".audit-x.tmp").exists());

        fs::rename(dir.path().join(segment_name(5, 7)), dir.path().join(segment_name(5, 6))).unwrap();
        let report = check_archive(dir.path(), &keys, "c1", &head).unwrap();
        assert!(report.reason.unwrap().starts_with("renamed"));
    }

    proptest::proptest! {
        /// Whatever bytes a segment file holds, reading it answers a reason, never a panic.
        #[test]
        fn reading_any_bytes_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let keys = AuditKeys::new(&Key256::from_slice(&[3; 32]).unwrap());
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(segment_name(1, 1));
            fs::write(&path, &bytes).unwrap();
            proptest::prop_assert!(read_segment(&path, &keys, "c1").is_err());
        }
    }
}
