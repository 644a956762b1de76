use thiserror::Error;

/// A storage failure, as reported by a [`crate::Store`] implementation. Never carries a value.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database could not be reached or answered with an error.
    #[error("database error: {0}")]
    Database(String),
    /// A concurrent change got in the way (e.g. two servers created the same path at once, or
    /// one deleted a mount another was writing into); retrying may succeed.
    #[error("conflicting concurrent change")]
    Conflict,
    /// Stored data does not have the expected shape.
    #[error("corrupt stored record: {0}")]
    Corrupt(String),
    /// A row that decides who may do what failed its MAC (or is missing where its absence would
    /// grant something): it was changed outside keyward. Names the table and key, never a value.
    #[error("the stored row {table}/{key} failed its integrity check: it was changed outside keyward")]
    Tampered {
        /// The table.
        table: String,
        /// The row's primary key.
        key: String,
    },
}

/// Errors of the domain layer; the HTTP edge maps each variant to a status explicitly.
#[derive(Debug, Error)]
pub enum CoreError {
    /// Input failed validation; the message says which input and why (never a value).
    #[error("{0}")]
    InvalidInput(String),
    /// The named thing does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The caller may not do this (the message says why, never a secret).
    #[error("permission denied: {0}")]
    Forbidden(String),
    /// The thing already exists, or a check-and-set did not match.
    #[error("{0}")]
    Conflict(String),
    /// A blob or wrapped key failed its integrity check.
    #[error("integrity check failed for {0}: the stored ciphertext was modified or moved")]
    Integrity(String),
    /// The server has not been initialised yet (`keyward operator init`).
    #[error("keyward is not initialized: run `keyward operator init`")]
    NotInitialized,
    /// `operator init` ran before.
    #[error("keyward is already initialized")]
    AlreadyInitialized,
    /// The database cannot be trusted as it stands: rows changed outside keyward, or written by a
    /// newer keyward. Says why, naming tables and versions, never a value.
    #[error("{0}")]
    Untrusted(String),
    /// The master keyring does not fit the database.
    #[error("{0}")]
    KeyMismatch(String),
    /// The audit log could not be written, so the request was not served (fail-closed).
    #[error("the audit log cannot be written: {0}")]
    AuditUnavailable(String),
    /// Too many failed logins: refused for a while, right credentials or not.
    #[error("{0}")]
    Locked(String),
    /// The audit archive directory cannot be written or read; nothing was deleted.
    #[error("the audit archive: {0}")]
    Archive(String),
    /// The writer task is gone or the server is shutting down.
    #[error("the server is shutting down")]
    Unavailable,
    /// A feature keyward does not implement (answered 501).
    #[error("{0}")]
    NotSupported(String),
    /// An outside service keyward needs (an identity provider's key set) could not be used.
    #[error("{0}")]
    Upstream(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<keyward_crypto::CryptoError> for CoreError {
    fn from(e: keyward_crypto::CryptoError) -> Self {
        match e {
            keyward_crypto::CryptoError::Unsupported(why) => CoreError::InvalidInput(why.into()),
            e => CoreError::Integrity(e.to_string()),
        }
    }
}
