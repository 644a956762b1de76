//! Keys: the key manager (the master keyring and unwrapped keys, in memory only) and the key
//! lifecycle — status, data-key rotation, rewrap, prune, re-encryption jobs, the doctor.
mod commands;
mod manager;
mod service;

#[cfg(test)]
pub(crate) use commands::{MigrateBatch, RotateDek};
pub use commands::{ResealedBatch, UnmigratedCount};
pub use manager::KeyManager;
pub(crate) use manager::{AuthKeys, SYSTEM_OWNER};
