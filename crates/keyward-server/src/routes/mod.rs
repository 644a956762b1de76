//! Handlers of the native API (`/api/v1`), one module per resource. Each is a row of the
//! operation table (`pipeline/table.rs`): the pipeline has authenticated and authorised the
//! request before a handler decodes it.
pub mod audit;
pub mod backup;
pub mod keys;
pub mod mounts;
pub mod policies;
pub mod secrets;
pub mod tokens;
