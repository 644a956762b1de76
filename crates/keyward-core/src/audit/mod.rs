//! The tamper-evident audit log: entries, the HMAC chain, and its verification.
//!
//! `hash_n = HMAC-SHA256(chain_key, hash_{n-1} || canonical_json(entry_n))` with RFC 8785
//! canonical JSON and `hash_0` = 32 zero bytes. `chain_key` and `correlation_key` are separate
//! HKDF subkeys of the audit key, which is stored only wrapped under the master key.
use keyward_crypto::Key256;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::CoreError;

pub mod archive;
mod retention;

pub use retention::{ArchiveOutcome, ArchiveRequest};

/// One audit record. Holds names, never secret values or tokens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// Position in the chain, assigned by the writer (gap-free from 1).
    pub seq: u64,
    /// RFC 3339.
    pub time: String,
    /// The request's id (`X-Request-Id`).
    pub request_id: String,
    /// Accessor of the caller's token, or empty when unauthenticated.
    pub accessor: String,
    /// The client address.
    pub remote_addr: String,
    /// The client's `User-Agent`.
    pub user_agent: String,
    /// What was done, e.g. `secrets.read`, `tokens.create`, `auth.failed`.
    pub operation: String,
    /// The mount concerned, if any.
    pub mount: String,
    /// The path concerned (secret path, policy name, accessor …).
    pub path: String,
    /// Field names touched (never values).
    pub fields: Vec<String>,
    /// HTTP status answered.
    pub status: u16,
    /// Error code, empty on success.
    pub error: String,
    /// Engine-specific facts (reveal, counts, correlation HMACs …).
    pub details: Map<String, Value>,
}

/// A stored row of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    /// Its sequence number (the row key).
    pub seq: u64,
    /// The entry as stored (canonical JSON).
    pub entry: String,
    /// `hash_seq`.
    pub hash: Vec<u8>,
}

/// The keys derived from the audit key.
#[derive(Debug)]
pub struct AuditKeys {
    chain: Key256,
    correlation: Key256,
    archive: Key256,
}

/// Length of a chain hash.
pub const HASH_LEN: usize = 32;

impl AuditKeys {
    /// Derives the chain and correlation keys.
    pub fn new(audit_key: &Key256) -> Self {
        Self {
            chain: audit_key.derive(b"keyward/audit/chain"),
            correlation: audit_key.derive(b"keyward/audit/correlation"),
            archive: audit_key.derive(b"keyward/audit/archive"),
        }
    }

    /// The MAC of an archive segment's bytes (its header, entries and chain heads).
    pub fn archive_mac(&self, bytes: &[u8]) -> [u8; HASH_LEN] {
        self.archive.hmac(bytes)
    }

    /// A searchable, keyed HMAC of a sensitive value (e.g. a presented but unknown token).
    pub fn correlate(&self, value: &[u8]) -> String {
        format!("hmac-sha256:{}", hex::encode(self.correlation.hmac(value)))
    }

    /// The next chain hash.
    pub fn chain(&self, prev: &[u8], canonical_entry: &str) -> [u8; HASH_LEN] {
        let mut data = Vec::with_capacity(prev.len() + canonical_entry.len());
        data.extend_from_slice(prev);
        data.extend_from_slice(canonical_entry.as_bytes());
        self.chain.hmac(&data)
    }
}

/// RFC 8785 canonical JSON of an entry.
pub fn canonical(entry: &AuditEntry) -> Result<String, CoreError> {
    serde_jcs::to_string(entry)
        .map_err(|e| CoreError::InvalidInput(format!("audit entry cannot be canonicalised: {e}")))
}

/// An entry's canonical JSON with its `seq` left open. The request builds it before it queues
/// (in parallel with other requests), so the single writer only splices the number in.
#[derive(Debug, Clone)]
pub(crate) struct PendingEntry {
    /// Up to and including `"seq":`.
    head: String,
    /// From the `,` after the number.
    tail: String,
}

impl PendingEntry {
    /// Writes the entry's RFC 8785 form directly (its keys are fixed and already in order);
    /// [`canonical`], which verification uses, is the reference it is tested against.
    pub(crate) fn new(entry: AuditEntry) -> Result<Self, CoreError> {
        let mut head = String::with_capacity(256);
        head.push_str("{\"accessor\":");
        json_str(&mut head, &entry.accessor);
        head.push_str(",\"details\":");
        canonical_details(&mut head, &entry.details)?;
        head.push_str(",\"error\":");
        json_str(&mut head, &entry.error);
        head.push_str(",\"fields\":[");
        for (i, f) in entry.fields.iter().enumerate() {
            if i > 0 {
                head.push(',');
            }
            json_str(&mut head, f);
        }
        for (key, value) in [
            ("],\"mount\":", &entry.mount),
            (",\"operation\":", &entry.operation),
            (",\"path\":", &entry.path),
            (",\"remote_addr\":", &entry.remote_addr),
            (",\"request_id\":", &entry.request_id),
        ] {
            head.push_str(key);
            json_str(&mut head, value);
        }
        head.push_str(",\"seq\":");
        let mut tail = format!(",\"status\":{},\"time\":", entry.status);
        json_str(&mut tail, &entry.time);
        tail.push_str(",\"user_agent\":");
        json_str(&mut tail, &entry.user_agent);
        tail.push('}');
        Ok(Self { head, tail })
    }

    /// The canonical JSON of the entry numbered `seq`.
    pub(crate) fn line(&self, seq: u64) -> String {
        let mut out = String::with_capacity(self.head.len() + 20 + self.tail.len());
        out.push_str(&self.head);
        let _ = std::fmt::Write::write_fmt(&mut out, format_args!("{seq}"));
        out.push_str(&self.tail);
        out
    }
}

/// A JSON string as RFC 8785 writes it (serde_json escapes exactly the same characters: `"`, `\\`
/// and the controls, with the same short forms and lowercase `\\u00xx`).
fn json_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).expect("a string serialises"));
}

/// The integers RFC 8785 writes as plain digits (IEEE doubles hold them exactly).
const SAFE_INT: u64 = 1 << 53;

/// `details` in RFC 8785 form: keys in UTF-16 order; strings, booleans, null and safe integers
/// written directly, anything else (floats, nested values) by the reference serialiser.
fn canonical_details(out: &mut String, details: &Map<String, Value>) -> Result<(), CoreError> {
    let mut keys: Vec<&String> = details.keys().collect();
    keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
    out.push('{');
    for (i, key) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_str(out, key);
        out.push(':');
        match &details[key] {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::String(s) => json_str(out, s),
            Value::Number(n) if n.as_u64().is_some_and(|v| v <= SAFE_INT) => out.push_str(&n.to_string()),
            Value::Number(n) if n.as_i64().is_some_and(|v| v.unsigned_abs() <= SAFE_INT) => {
                out.push_str(&n.to_string());
            }
            other => out.push_str(
                &serde_jcs::to_string(other)
                    .map_err(|e| CoreError::InvalidInput(format!("audit detail cannot be canonicalised: {e}")))?,
            ),
        }
    }
    out.push('}');
    Ok(())
}

/// The result of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Whether the whole chain is intact.
    pub ok: bool,
    /// Entries checked.
    pub entries: u64,
    /// The last archived entry: the walk began after it (0: nothing archived).
    pub archived_seq: u64,
    /// Last sequence number found.
    pub last_seq: u64,
    /// Hash of the last entry (hex).
    pub last_hash: String,
    /// The first broken sequence number.
    pub broken_seq: Option<u64>,
    /// Why: modified, deleted, reordered, inserted or truncated, in a sentence.
    pub reason: Option<String>,
}

/// Walks the log page by page. Feed rows in `seq` order with [`ChainVerifier::push`], then call
/// [`ChainVerifier::finish`] with the heads that must be covered.
#[derive(Debug)]
pub struct ChainVerifier<'k> {
    keys: &'k AuditKeys,
    /// The last archived entry the walk starts after (0: none).
    start: u64,
    expected: u64,
    prev: Vec<u8>,
    /// Highest seq the log is known to have reached (stored head or anchor), for truncation.
    known_head: u64,
    /// The last head written by keyward itself that an attacker cannot move: the anchor when
    /// there is one, else the stored head. A bad MAC past it is an insertion.
    trusted_head: u64,
    anchor: Option<(u64, Vec<u8>)>,
    anchor_seen: bool,
    broken: Option<(u64, String)>,
}

impl<'k> ChainVerifier<'k> {
    /// Starts a walk; `known_head` is the head recorded by the database, `anchor` the last
    /// externally anchored head (seq, hash), if any.
    pub fn new(keys: &'k AuditKeys, known_head: u64, anchor: Option<(u64, Vec<u8>)>) -> Self {
        Self::resume(keys, (0, vec![0; HASH_LEN]), known_head, anchor)
    }

    /// Starts a walk after `start` = `(seq, hash)`, the last archived entry (entries up to it
    /// are no longer in the database). An anchor at or before it is checked only when it is
    /// the start itself: older ones are in the archives.
    pub fn resume(keys: &'k AuditKeys, start: (u64, Vec<u8>), known_head: u64, anchor: Option<(u64, Vec<u8>)>) -> Self {
        let known = known_head.max(anchor.as_ref().map_or(0, |a| a.0));
        let trusted = anchor.as_ref().map_or(known_head, |a| a.0);
        let mut broken = None;
        let anchor_seen = match &anchor {
            Some((a, h)) if *a == start.0 && *a > 0 => {
                if h[..] != start.1[..] {
                    broken = Some((*a, format!("modified: archived entry {a} differs from the anchored head")));
                }
                true
            }
            Some((a, _)) => *a < start.0,
            None => false,
        };
        Self {
            keys,
            start: start.0,
            expected: start.0 + 1,
            prev: start.1,
            known_head: known,
            trusted_head: trusted,
            anchor,
            anchor_seen,
            broken,
        }
    }

    /// Whether a break was found (the walk can stop).
    pub fn is_broken(&self) -> bool {
        self.broken.is_some()
    }

    fn fail(&mut self, seq: u64, reason: String) {
        if self.broken.is_none() {
            self.broken = Some((seq, reason));
        }
    }

    /// Checks the next row.
    pub fn push(&mut self, row: &AuditRow) {
        if self.broken.is_some() {
            return;
        }
        let e = self.expected;
        if row.seq > e {
            let missing = if row.seq == e + 1 {
                format!("entry {e} is missing")
            } else {
                format!("entries {e}..{} are missing", row.seq - 1)
            };
            return self.fail(e, format!("deleted: {missing}"));
        }
        let entry: AuditEntry = match serde_json::from_str(&row.entry) {
            Ok(v) => v,
            Err(_) => return self.fail(row.seq, format!("modified: entry {} is not a valid audit entry", row.seq)),
        };
        if entry.seq != row.seq {
            return self
                .fail(row.seq, format!("reordered: the entry stored at {} says it is entry {}", row.seq, entry.seq));
        }
        let hash = match canonical(&entry) {
            Ok(c) => self.keys.chain(&self.prev, &c),
            Err(_) => return self.fail(row.seq, format!("modified: entry {} cannot be canonicalised", row.seq)),
        };
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&hash[..], &row.hash[..])) {
            let why = if row.seq > self.trusted_head {
                format!("inserted: entry {} was not written by keyward (its MAC does not verify)", row.seq)
            } else {
                format!("modified: entry {} does not match its MAC", row.seq)
            };
            return self.fail(row.seq, why);
        }
        if let Some((aseq, ahash)) = &self.anchor {
            if *aseq == row.seq {
                self.anchor_seen = true;
                if ahash[..] != hash[..] {
                    let seq = row.seq;
                    return self.fail(seq, format!("modified: entry {seq} differs from the anchored head"));
                }
            }
        }
        self.prev = hash.to_vec();
        self.expected += 1;
    }

    /// Ends the walk: the log must reach the stored head and the anchor.
    pub fn finish(mut self) -> VerifyReport {
        let last = self.expected - 1;
        if self.broken.is_none() && self.known_head > last {
            let (which, seq) = match &self.anchor {
                Some((a, _)) if *a >= self.known_head => ("the last anchored head", *a),
                _ => ("the recorded head", self.known_head),
            };
            self.fail(last + 1, format!("truncated: the log ends at entry {last} but {which} is entry {seq}"));
        }
        if self.broken.is_none() {
            if let Some((a, _)) = &self.anchor {
                if !self.anchor_seen && *a > 0 {
                    let a = *a;
                    self.fail(a, format!("truncated: anchored entry {a} is not in the log"));
                }
            }
        }
        let (broken_seq, reason) = match self.broken {
            Some((s, r)) => (Some(s), Some(r)),
            None => (None, None),
        };
        VerifyReport {
            ok: broken_seq.is_none(),
            entries: last - self.start,
            archived_seq: self.start,
            last_seq: last,
            last_hash: hex::encode(&self.prev),
            broken_seq,
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain_of(keys: &AuditKeys, n: u64) -> Vec<AuditRow> {
        let mut prev = vec![0u8; HASH_LEN];
        (1..=n)
            .map(|seq| {
                let e = AuditEntry { seq, operation: format!("op{seq}"), status: 200, ..Default::default() };
                let c = canonical(&e).unwrap();
                let hash = keys.chain(&prev, &c).to_vec();
                prev = hash.clone();
                AuditRow { seq, entry: c, hash }
            })
            .collect()
    }

    fn verify(keys: &AuditKeys, rows: &[AuditRow], head: u64) -> VerifyReport {
        let mut v = ChainVerifier::new(keys, head, None);
        rows.iter().for_each(|r| v.push(r));
        v.finish()
    }

    #[test]
    fn intact_and_each_tampering_is_named() {
        let keys = AuditKeys::new(&Key256::generate());
        let rows = chain_of(&keys, 6);
        assert!(verify(&keys, &rows, 6).ok);

        let mut m = rows.clone();
        m[2].entry = m[2].entry.replace("op3", "opX");
        let r = verify(&keys, &m, 6);
        assert_eq!((r.broken_seq, r.reason.unwrap().starts_with("modified")), (Some(3), true));

        let mut d = rows.clone();
        d.remove(3);
        let r = verify(&keys, &d, 6);
        assert_eq!((r.broken_seq, r.reason.unwrap().starts_with("deleted")), (Some(4), true));

        let mut s = rows.clone();
        let (a, b) = (s[1].entry.clone(), s[2].entry.clone());
        s[1].entry = b;
        s[2].entry = a;
        let r = verify(&keys, &s, 6);
        assert_eq!((r.broken_seq, r.reason.unwrap().starts_with("reordered")), (Some(2), true));

        let mut f = rows.clone();
        let forged = AuditEntry { seq: 7, operation: "forged".into(), ..Default::default() };
        f.push(AuditRow { seq: 7, entry: canonical(&forged).unwrap(), hash: vec![7; 32] });
        let r = verify(&keys, &f, 6);
        assert_eq!((r.broken_seq, r.reason.unwrap().starts_with("inserted")), (Some(7), true));

        let r = verify(&keys, &rows[..4], 6);
        assert_eq!((r.broken_seq, r.reason.unwrap().starts_with("truncated")), (Some(5), true));

        // A chain forged with another key does not verify.
        let other = AuditKeys::new(&Key256::generate());
        assert!(!verify(&keys, &chain_of(&other, 3), 3).ok);
    }

    #[test]
    fn a_walk_resumes_after_the_archived_head() {
        let keys = AuditKeys::new(&Key256::generate());
        let rows = chain_of(&keys, 8);
        let start = (3, rows[2].hash.clone());
        let walk = |rows: &[AuditRow], anchor: Option<(u64, Vec<u8>)>| {
            let mut v = ChainVerifier::resume(&keys, start.clone(), 8, anchor);
            rows.iter().for_each(|r| v.push(r));
            v.finish()
        };
        let r = walk(&rows[3..], None);
        assert!(r.ok, "{r:?}");
        assert_eq!((r.entries, r.archived_seq, r.last_seq), (5, 3, 8));
        // The first row past the head deleted.
        let r = walk(&rows[4..], None);
        assert_eq!((r.broken_seq, r.reason.unwrap().starts_with("deleted")), (Some(4), true));
        // The rows past the head do not follow it (another head, or rows from before it).
        let r = walk(&rows[2..], None);
        assert!(!r.ok);
        let mut other = ChainVerifier::resume(&keys, (3, vec![9; HASH_LEN]), 8, None);
        rows[3..].iter().for_each(|row| other.push(row));
        assert_eq!(other.finish().broken_seq, Some(4));
        // An anchor inside the archive is the archive's to check; one at the head must match it.
        assert!(walk(&rows[3..], Some((2, rows[1].hash.clone()))).ok);
        assert!(walk(&rows[3..], Some((3, rows[2].hash.clone()))).ok);
        assert!(!walk(&rows[3..], Some((3, vec![1; HASH_LEN]))).ok);
        assert!(walk(&rows[3..], Some((6, rows[5].hash.clone()))).ok);
    }

    fn detail_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<String>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            proptest::collection::vec(any::<u32>(), 0..3).prop_map(|v| serde_json::json!({"n": v, "é": 1.5})),
        ]
    }

    proptest::proptest! {
        #[test]
        fn the_written_entry_is_the_reference_canonical_json(
            seq in 0u64..(1 << 53),
            strings in proptest::collection::vec(proptest::prelude::any::<String>(), 8),
            status in proptest::prelude::any::<u16>(),
            details in proptest::collection::btree_map(
                "(seq|status|[a-z\"]{0,6}|\\PC{1,3})", detail_value(), 0..5),
            fields in proptest::collection::vec(proptest::prelude::any::<String>(), 0..3),
        ) {
            let entry = AuditEntry {
                seq,
                time: strings[0].clone(),
                request_id: strings[1].clone(),
                accessor: strings[2].clone(),
                remote_addr: strings[3].clone(),
                user_agent: strings[4].clone(),
                operation: strings[5].clone(),
                path: strings[6].clone(),
                mount: strings[7].clone(),
                error: format!("{}\u{1f}\u{7f}\u{2028}", strings[0]),
                fields,
                status,
                details: details.into_iter().collect(),
            };
            let pending = PendingEntry::new(entry.clone()).unwrap();
            proptest::prop_assert_eq!(pending.line(seq), canonical(&entry).unwrap());
        }
    }

    #[test]
    fn detail_keys_sort_by_utf16_code_units() {
        let mut details = Map::new();
        details.insert("\u{e000}".into(), Value::from(1));
        details.insert("\u{10000}".into(), Value::from(2));
        let e = AuditEntry { details, ..Default::default() };
        let line = PendingEntry::new(e.clone()).unwrap().line(0);
        assert!(line.contains("{\"\u{10000}\":2,\"\u{e000}\":1}"), "{line}");
        assert_eq!(line, canonical(&e).unwrap());
    }

    #[test]
    fn canonical_json_is_sorted_and_compact() {
        let mut details = Map::new();
        details.insert("z".into(), Value::from(1));
        details.insert("a".into(), Value::from("x"));
        let e = AuditEntry { seq: 1, details, ..Default::default() };
        let c = canonical(&e).unwrap();
        assert!(c.starts_with("{\"accessor\":\"\",\"details\":{\"a\":\"x\",\"z\":1},"), "{c}");
        assert!(!c.contains(' '));
    }
}
