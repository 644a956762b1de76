//! One module per top-level command.
pub mod audit;
pub mod auth;
pub mod docs;
pub mod envs;
pub mod gen;
pub mod import;
pub mod keys;
pub mod mounts;
pub mod operator;
pub mod policy;
pub mod proxy;
pub mod run;
pub mod secrets;
pub mod server;
pub mod session;
pub mod token;
