//! Known answers for the audit chain: entries, their RFC 8785 canonical lines and the HMAC chain
//! over them, made once by keyward (`testdata/audit-chain.json`). A change to the entry's
//! encoding or the chain's keys that would make existing audit logs fail to verify fails here.
#![allow(clippy::unwrap_used)] // test helpers panic on purpose

use keyward_core::{canonical, AuditEntry, AuditKeys, AuditRow, ChainVerifier};
use keyward_crypto::Key256;
use serde_json::Value;

fn vectors() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/testdata/audit-chain.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_audit_chain_verifies_and_its_encoding_is_stable() {
    let v = vectors();
    let key = Key256::from_slice(&hex::decode(v["audit_key"].as_str().unwrap()).unwrap()).unwrap();
    let keys = AuditKeys::new(&key);
    let mut prev = vec![0u8; 32];
    let mut rows = Vec::new();
    for link in v["chain"].as_array().unwrap() {
        let entry: AuditEntry = serde_json::from_value(link["entry"].clone()).unwrap();
        let line = link["line"].as_str().unwrap();
        assert_eq!(canonical(&entry).unwrap(), line, "the canonical encoding of seq {}", entry.seq);
        let hash = keys.chain(&prev, line);
        assert_eq!(hex::encode(hash), link["hash"].as_str().unwrap(), "the chain hash of seq {}", entry.seq);
        prev = hash.to_vec();
        rows.push(AuditRow { seq: entry.seq, entry: line.to_owned(), hash: hash.to_vec() });
    }
    let mut verifier = ChainVerifier::new(&keys, rows.len() as u64, Some((3, prev.clone())));
    rows.iter().for_each(|r| verifier.push(r));
    let report = verifier.finish();
    assert!(report.ok && report.entries == 3, "{report:?}");
    let c = &v["correlate"];
    assert_eq!(keys.correlate(c["value"].as_str().unwrap().as_bytes()), c["hmac"].as_str().unwrap());
}
