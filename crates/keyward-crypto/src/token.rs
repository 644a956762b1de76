//! Bearer tokens: `kw_` + 43 base62 characters; only their keyed digests are stored.
use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use crate::random::random_base62;
use crate::Key256;

/// Prefix of every keyward token.
pub const TOKEN_PREFIX: &str = "kw_";
const TOKEN_BODY_LEN: usize = 43;

/// A token as presented by a client or minted by the server. `Debug` is redacted.
pub struct Token(SecretString);

impl Token {
    /// Mints a new random token.
    pub fn generate() -> Self {
        let body = random_base62(TOKEN_BODY_LEN);
        Self(SecretString::from(format!("{TOKEN_PREFIX}{}", &*body)))
    }

    /// Accepts a presented token only if it has the exact shape of a keyward token.
    pub fn parse(s: &str) -> Option<Self> {
        let body = s.strip_prefix(TOKEN_PREFIX)?;
        (body.len() == TOKEN_BODY_LEN && body.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| Self(SecretString::from(s.to_owned())))
    }

    /// The token text, for showing once to its owner.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token([REDACTED])")
    }
}

/// Prefix of every AppRole secret ID.
pub const SECRET_ID_PREFIX: &str = "kwsid_";

/// An AppRole secret ID: `kwsid_` + 43 base62 characters, as much entropy as a token; only its
/// keyed digest is stored. `Debug` is redacted.
pub struct SecretId(SecretString);

impl SecretId {
    /// Mints a new random secret ID.
    pub fn generate() -> Self {
        let body = random_base62(TOKEN_BODY_LEN);
        Self(SecretString::from(format!("{SECRET_ID_PREFIX}{}", &*body)))
    }

    /// Accepts a presented secret ID only if it has the exact shape of one.
    pub fn parse(s: &str) -> Option<Self> {
        let body = s.strip_prefix(SECRET_ID_PREFIX)?;
        (body.len() == TOKEN_BODY_LEN && body.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| Self(SecretString::from(s.to_owned())))
    }

    /// The secret ID text, for showing once to its owner.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for SecretId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretId([REDACTED])")
    }
}

/// The key under which token digests are computed (wrapped under the KEK in the database).
#[derive(Debug)]
pub struct TokenKey(pub Key256);

/// HMAC-SHA256 of a token under the token key, hex-encoded; tokens are looked up by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenDigest(pub String);

impl TokenKey {
    /// The digest of `token`.
    pub fn digest(&self, token: &Token) -> TokenDigest {
        TokenDigest(hex::encode(self.0.hmac(token.expose().as_bytes())))
    }

    /// The digest of an AppRole secret ID (its prefix keeps it apart from every token's).
    pub fn secret_id_digest(&self, secret_id: &SecretId) -> TokenDigest {
        TokenDigest(hex::encode(self.0.hmac(secret_id.expose().as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_and_parse() {
        let t = Token::generate();
        assert_eq!(t.expose().len(), 46);
        assert!(Token::parse(t.expose()).is_some());
        assert!(Token::parse("kw_short").is_none());
        assert!(Token::parse(&format!("xx_{}", &t.expose()[3..])).is_none());
        assert!(Token::parse(&format!("{}!", &t.expose()[..45])).is_none());
        assert!(!format!("{t:?}").contains(&t.expose()[3..]));
    }

    #[test]
    fn secret_ids_have_their_own_shape() {
        let s = SecretId::generate();
        assert_eq!(s.expose().len(), 49);
        assert!(SecretId::parse(s.expose()).is_some());
        assert!(Token::parse(s.expose()).is_none() && SecretId::parse(Token::generate().expose()).is_none());
        assert!(SecretId::parse("kwsid_short").is_none());
        assert!(!format!("{s:?}").contains(&s.expose()[6..]));
        let key = TokenKey(Key256::generate());
        assert_ne!(key.secret_id_digest(&s).0, key.secret_id_digest(&SecretId::generate()).0);
    }

    #[test]
    fn digest_depends_on_key() {
        let t = Token::generate();
        let a = TokenKey(Key256::generate());
        let b = TokenKey(Key256::generate());
        assert_eq!(a.digest(&t), a.digest(&t));
        assert_ne!(a.digest(&t), b.digest(&t));
        assert!(!a.digest(&t).0.contains(&t.expose()[3..]));
    }
}
