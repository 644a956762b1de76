//! Route handlers, one module per resource.
pub mod mounts;
pub mod secrets;
pub mod sys;
