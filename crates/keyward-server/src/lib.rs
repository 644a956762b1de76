//! Keyward's HTTP server: the native API under `/api/v1`, the Vault-compatible API under `/v1`,
//! authentication, JSON errors and the OpenAPI document. The wire types in [`wire`] are shared
//! with the CLI's HTTP client.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod app;
mod audit;
mod auth;
mod error;
mod extract;
mod guard;
mod openapi;
mod pipeline;
mod proxy;
mod routes;
mod serve;
mod stale;
mod tls;
mod vault;
pub mod wire;

pub use app::{router, HttpLimits};
pub use audit::{AuditOptions, AuditSinks, AuditState};
pub use error::ApiError;
pub use guard::{GuardConfig, Rate};
pub use openapi::openapi_document;
pub use pipeline::{capability_table, operations, AuthClass, Effect, Need, Operation, VaultOp};
pub use proxy::ProxyConfig;
pub use serve::{start, RunningServer, ServerOptions, StartError};
pub use tls::TlsMaterial;
