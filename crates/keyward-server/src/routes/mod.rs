//! Route handlers, one module per resource.
pub mod audit;
pub mod keys;
pub mod mounts;
pub mod policies;
pub mod secrets;
pub mod sys;
pub mod tokens;
