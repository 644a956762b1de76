//! Row authentication for untrusted storage: every row that decides who may do what carries
//! `HMAC-SHA256(K_row, lp(table, layout version, cluster id, primary key, columns))`, where
//! `K_row` is the HKDF subkey `keyward/row-mac/<table>` of the random integrity key. Values are
//! typed and length-prefixed in one encoding, whatever the database engine, so a row moved
//! between engines keeps its MAC and no two rows encode alike.
use std::fmt;

use ring::hmac;

use crate::Key256;

/// One typed value of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacValue<'a> {
    /// SQL `NULL`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// Text.
    Text(&'a str),
    /// Bytes.
    Bytes(&'a [u8]),
}

impl MacValue<'_> {
    fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            Self::Null => out.push(0),
            Self::Bool(b) => out.extend_from_slice(&[1, u8::from(b)]),
            Self::Int(i) => {
                out.push(2);
                out.extend_from_slice(&i.to_be_bytes());
            }
            Self::Text(s) => length_prefixed(out, 3, s.as_bytes()),
            Self::Bytes(b) => length_prefixed(out, 4, b),
        }
    }
}

fn length_prefixed(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// What a row MAC covers: its table, the table's MAC-layout version, its primary key and every
/// column that is not volatile, in the table's declared order.
#[derive(Debug, Clone, Copy)]
pub struct RowInput<'a> {
    /// The table.
    pub table: &'a str,
    /// The table's MAC-layout version.
    pub layout: u32,
    /// The primary key's values.
    pub key: &'a [MacValue<'a>],
    /// The covered columns' values.
    pub columns: &'a [MacValue<'a>],
}

/// The per-table row-MAC keys of one cluster, derived once from the integrity key.
pub struct RowMacKeys {
    cluster: String,
    tables: Vec<(String, hmac::Key)>,
}

impl fmt::Debug for RowMacKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tables: Vec<&str> = self.tables.iter().map(|(t, _)| t.as_str()).collect();
        f.debug_struct("RowMacKeys").field("cluster", &self.cluster).field("tables", &tables).finish_non_exhaustive()
    }
}

impl RowMacKeys {
    /// Derives the keys of `tables` for the cluster `cluster_id` from the integrity key.
    pub fn new(integrity: &Key256, cluster_id: &str, tables: &[&str]) -> Self {
        let tables = tables
            .iter()
            .map(|t| {
                let k = integrity.derive(format!("keyward/row-mac/{t}").as_bytes());
                ((*t).to_owned(), hmac::Key::new(hmac::HMAC_SHA256, k.expose()))
            })
            .collect();
        Self { cluster: cluster_id.to_owned(), tables }
    }

    /// The cluster these keys belong to.
    pub fn cluster_id(&self) -> &str {
        &self.cluster
    }

    fn key(&self, table: &str) -> Option<&hmac::Key> {
        self.tables.iter().find(|(t, _)| t == table).map(|(_, k)| k)
    }

    fn message(&self, row: &RowInput<'_>) -> Vec<u8> {
        let mut m = Vec::with_capacity(96);
        MacValue::Text(row.table).encode(&mut m);
        MacValue::Int(i64::from(row.layout)).encode(&mut m);
        MacValue::Text(&self.cluster).encode(&mut m);
        MacValue::Int(row.key.len() as i64).encode(&mut m);
        row.key.iter().for_each(|v| v.encode(&mut m));
        MacValue::Int(row.columns.len() as i64).encode(&mut m);
        row.columns.iter().for_each(|v| v.encode(&mut m));
        m
    }

    /// The row's MAC; `None` for a table these keys were not derived for.
    pub fn mac(&self, row: &RowInput<'_>) -> Option<[u8; 32]> {
        let tag = hmac::sign(self.key(row.table)?, &self.message(row));
        tag.as_ref().try_into().ok()
    }

    /// Whether `mac` is the row's MAC (compared in constant time); `false` for a table these
    /// keys were not derived for.
    pub fn verify(&self, row: &RowInput<'_>, mac: &[u8]) -> bool {
        self.key(row.table).is_some_and(|k| hmac::verify(k, &self.message(row), mac).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn keys() -> RowMacKeys {
        let k = Key256::from_slice(&[7; 32]).unwrap();
        RowMacKeys::new(&k, "cluster-a", &["tokens", "policies"])
    }

    fn row<'a>(table: &'a str, key: &'a [MacValue<'a>], columns: &'a [MacValue<'a>]) -> RowInput<'a> {
        RowInput { table, layout: 1, key, columns }
    }

    #[test]
    fn a_mac_binds_table_layout_cluster_key_and_columns() {
        let k = keys();
        let cols = [MacValue::Text("[\"root\"]"), MacValue::Bool(false), MacValue::Null];
        let r = row("tokens", &[MacValue::Text("acc_1")], &cols);
        let mac = k.mac(&r).unwrap();
        assert!(k.verify(&r, &mac));
        // Another table, layout, cluster, key or column value: refused.
        assert!(!k.verify(&row("policies", &[MacValue::Text("acc_1")], &cols), &mac));
        assert!(!k.verify(&RowInput { layout: 2, ..r }, &mac));
        let other = RowMacKeys::new(&Key256::from_slice(&[7; 32]).unwrap(), "cluster-b", &["tokens"]);
        assert!(!other.verify(&r, &mac));
        assert!(!k.verify(&row("tokens", &[MacValue::Text("acc_2")], &cols), &mac));
        let widened = [MacValue::Text("[\"root\",\"x\"]"), MacValue::Bool(false), MacValue::Null];
        assert!(!k.verify(&row("tokens", &[MacValue::Text("acc_1")], &widened), &mac));
        // A table the keys were not made for has no MAC at all.
        assert!(k.mac(&row("mounts", &[], &[])).is_none());
        assert!(!k.verify(&row("mounts", &[], &[]), &mac));
    }

    #[test]
    fn types_are_part_of_the_value() {
        let k = keys();
        let as_text = k.mac(&row("tokens", &[MacValue::Text("1")], &[])).unwrap();
        let as_int = k.mac(&row("tokens", &[MacValue::Int(1)], &[])).unwrap();
        let as_bytes = k.mac(&row("tokens", &[MacValue::Bytes(b"1")], &[])).unwrap();
        let null = k.mac(&row("tokens", &[MacValue::Null], &[])).unwrap();
        let empty = k.mac(&row("tokens", &[MacValue::Text("")], &[])).unwrap();
        let all = [as_text, as_int, as_bytes, null, empty];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    fn value() -> impl Strategy<Value = (u8, i64, String)> {
        (0u8..5, any::<i64>(), "[a-z\"\\[\\],]{0,6}")
    }

    fn as_value((tag, i, s): &(u8, i64, String)) -> MacValue<'_> {
        match tag {
            0 => MacValue::Null,
            1 => MacValue::Bool(i % 2 == 0),
            2 => MacValue::Int(*i),
            3 => MacValue::Text(s),
            _ => MacValue::Bytes(s.as_bytes()),
        }
    }

    proptest! {
        /// The encoding is injective: rows that differ anywhere — a value, where the key ends
        /// and the columns begin — never share a message.
        #[test]
        fn distinct_rows_encode_distinctly(
            a in proptest::collection::vec(value(), 0..5),
            b in proptest::collection::vec(value(), 0..5),
            split_a in 0usize..5,
            split_b in 0usize..5,
        ) {
            let k = keys();
            let (va, vb): (Vec<_>, Vec<_>) = (a.iter().map(as_value).collect(), b.iter().map(as_value).collect());
            let (sa, sb) = (split_a.min(va.len()), split_b.min(vb.len()));
            let ra = row("tokens", &va[..sa], &va[sa..]);
            let rb = row("tokens", &vb[..sb], &vb[sb..]);
            let same = va[..sa] == vb[..sb] && va[sa..] == vb[sb..];
            prop_assert_eq!(k.message(&ra) == k.message(&rb), same);
            prop_assert!(k.verify(&ra, &k.mac(&ra).unwrap()));
        }
    }
}
