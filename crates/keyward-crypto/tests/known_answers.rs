//! Known answers for every format keyward keeps in a database or hands to a client: wrapped keys
//! and key-check values, secret blobs with their AAD, token digests, transit ciphertexts, row MACs. The
//! values in `testdata/known-answers.json` were made once by keyward and are opened here with
//! their fixed keys: a change of encoding that would make existing databases or ciphertexts
//! unreadable fails this test.
#![allow(clippy::unwrap_used)] // test helpers panic on purpose

use keyward_crypto::{
    blob_dek_version, derive_transit_key, open_secret_blob, open_transit, parse_transit, BlobContext, Key256, MacValue,
    MasterKeyring, RowInput, RowMacKeys, Token, TokenKey, TransitCipher, WrappedKey, WrappedKeyDomain,
};
use serde_json::Value;

fn vectors() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/testdata/known-answers.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn hex_of(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn key_of(v: &Value) -> Key256 {
    Key256::from_slice(&hex_of(v)).unwrap()
}

fn uuid(v: &Value) -> [u8; 16] {
    hex::decode(v.as_str().unwrap().replace('-', "")).unwrap().try_into().unwrap()
}

fn domain(label: &str) -> WrappedKeyDomain {
    WrappedKeyDomain::from_label(label).unwrap_or_else(|| panic!("unknown domain {label}"))
}

#[test]
fn wrapped_keys_and_key_check_values_open() {
    let v = vectors();
    let ring = MasterKeyring::parse(v["master_keyring"].as_str().unwrap()).unwrap();
    assert_eq!(hex::encode(ring.active().check_value()), v["kek_check_value"].as_str().unwrap());
    assert!(ring.active().verifies(&hex_of(&v["kek_check_value"])));
    for w in v["wrapped_keys"].as_array().unwrap() {
        let d = domain(w["domain"].as_str().unwrap());
        let wrapped = WrappedKey { kek_tag: w["kek_tag"].as_str().unwrap().to_owned(), bytes: hex_of(&w["wrapped"]) };
        let owner = uuid(&w["owner"]);
        let version = u32::try_from(w["version"].as_u64().unwrap()).unwrap();
        let key = ring.unwrap(d, &owner, version, &wrapped).unwrap();
        assert_eq!(key.expose().as_slice(), hex_of(&w["key"]).as_slice(), "{}", d.label());
        // Bound to its domain, owner and version.
        let other = if d == WrappedKeyDomain::Dek { WrappedKeyDomain::TokenKey } else { WrappedKeyDomain::Dek };
        assert!(ring.unwrap(other, &owner, version, &wrapped).is_err());
        assert!(ring.unwrap(d, &[0u8; 16], version, &wrapped).is_err());
        assert!(ring.unwrap(d, &owner, version + 1, &wrapped).is_err());
    }
}

#[test]
fn a_secret_blob_opens_with_its_context() {
    let v = &vectors()["secret_blob"];
    let blob = hex_of(&v["blob"]);
    assert_eq!(u64::from(blob_dek_version(&blob).unwrap()), v["dek_version"].as_u64().unwrap());
    let ctx =
        BlobContext { mount: uuid(&v["mount"]), secret: uuid(&v["secret"]), version: v["version"].as_u64().unwrap() };
    let plain = open_secret_blob(&key_of(&v["dek"]), &ctx, &blob).unwrap();
    assert_eq!(std::str::from_utf8(&plain).unwrap(), v["plaintext"].as_str().unwrap());
    // The AAD binds mount, secret and version: a blob moved anywhere else does not open.
    for moved in [
        BlobContext { version: ctx.version + 1, ..ctx },
        BlobContext { secret: ctx.mount, ..ctx },
        BlobContext { mount: ctx.secret, ..ctx },
    ] {
        assert!(open_secret_blob(&key_of(&v["dek"]), &moved, &blob).is_err());
    }
}

#[test]
fn token_digests_are_stable() {
    let v = &vectors()["token_digest"];
    let key = TokenKey(key_of(&v["token_key"]));
    let token = Token::parse(v["token"].as_str().unwrap()).unwrap();
    assert_eq!(key.digest(&token).0, v["digest"].as_str().unwrap());
}

#[test]
fn transit_ciphertexts_open() {
    let v = &vectors()["transit"];
    let key = key_of(&v["key"]);
    for c in v["ciphertexts"].as_array().unwrap() {
        let (version, sealed) = parse_transit(c["ciphertext"].as_str().unwrap()).unwrap();
        assert_eq!(version, 4);
        let key = match c.get("context") {
            Some(ctx) => {
                let derived = derive_transit_key(&key, ctx.as_str().unwrap().as_bytes());
                assert_eq!(derived.expose().as_slice(), hex_of(&c["derived_key"]).as_slice());
                derived
            }
            None => key_of(&v["key"]),
        };
        let ad = c.get("associated_data").and_then(Value::as_str).unwrap_or_default();
        let plain = open_transit(TransitCipher::Aes256Gcm, &key, ad.as_bytes(), &sealed).unwrap();
        assert_eq!(std::str::from_utf8(&plain).unwrap(), c["plaintext"].as_str().unwrap());
    }
}

#[test]
fn row_macs_are_stable() {
    let v = vectors();
    let r = &v["row_macs"];
    let keys =
        RowMacKeys::new(&key_of(&r["integrity_key"]), r["cluster_id"].as_str().unwrap(), &["tokens", "policies"]);
    let typed = |vals: &Value| -> Vec<(String, Value)> {
        vals.as_array().unwrap().iter().map(|p| (p[0].as_str().unwrap().to_owned(), p[1].clone())).collect()
    };
    fn value((ty, v): &(String, Value)) -> MacValue<'_> {
        match ty.as_str() {
            "null" => MacValue::Null,
            "int" => MacValue::Int(v.as_i64().unwrap()),
            _ => MacValue::Text(v.as_str().unwrap()),
        }
    }
    for row in r["rows"].as_array().unwrap() {
        let (k, c) = (typed(&row["key"]), typed(&row["columns"]));
        let key: Vec<MacValue> = k.iter().map(value).collect();
        let columns: Vec<MacValue> = c.iter().map(value).collect();
        let layout = u32::try_from(row["layout"].as_u64().unwrap()).unwrap();
        let input = RowInput { table: row["table"].as_str().unwrap(), layout, key: &key, columns: &columns };
        assert_eq!(hex::encode(keys.mac(&input).unwrap()), row["mac"].as_str().unwrap(), "{}", input.table);
        assert!(keys.verify(&input, &hex_of(&row["mac"])));
    }
}
