//! The decrypted value of one secret version.
use std::fmt;

use serde_json::{Map, Value};
use zeroize::{Zeroize, Zeroizing};

use crate::CoreError;

/// A decrypted secret map. Strings are zeroized on drop and `Debug` shows only field names.
#[derive(Clone, Default, PartialEq)]
pub struct SecretData(Map<String, Value>);

impl SecretData {
    /// Wraps a map.
    pub fn new(map: Map<String, Value>) -> Self {
        Self(map)
    }

    /// Parses a decrypted blob (a JSON object).
    pub(crate) fn from_plaintext(bytes: &[u8]) -> Result<Self, CoreError> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(m)) => Ok(Self(m)),
            _ => Err(CoreError::Integrity("secret value (not a JSON object)".into())),
        }
    }

    /// Serialises for sealing, into zeroizing memory.
    pub(crate) fn to_plaintext(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(serde_json::to_vec(&self.0).expect("a JSON map always serialises"))
    }

    /// The fields.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.0
    }

    /// Mutable access to the fields.
    pub fn fields_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.0
    }
}

fn scrub(v: &mut Value) {
    match v {
        Value::String(s) => s.zeroize(),
        Value::Array(a) => a.iter_mut().for_each(scrub),
        Value::Object(m) => m.values_mut().for_each(scrub),
        _ => {}
    }
}

impl Drop for SecretData {
    fn drop(&mut self) {
        self.0.values_mut().for_each(scrub);
    }
}

impl fmt::Debug for SecretData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretData").field("fields", &self.0.keys().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_names_only() {
        let mut m = Map::new();
        m.insert("API_KEY".into(), Value::String("canary-value-123".into()));
        let d = SecretData::new(m);
        let s = format!("{d:?}");
        assert!(s.contains("API_KEY") && !s.contains("canary"));
        let back = SecretData::from_plaintext(&d.to_plaintext()).unwrap();
        assert_eq!(back, d);
        assert!(SecretData::from_plaintext(b"[1]").is_err());
    }
}
