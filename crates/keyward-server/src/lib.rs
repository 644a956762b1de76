//! Keyward's HTTP server: the native API under `/api/v1`, the Vault-compatible API under `/v1`,
//! authentication, JSON errors and the OpenAPI documents. It answers in the wire types of
//! `keyward-api`, which the CLI's client reads.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod app;
mod audit;
mod auth;
mod background;
mod error;
mod extract;
mod guard;
mod jwks;
mod metrics;
mod openapi;
mod outward;
mod pipeline;
mod proxy;
mod routes;
mod serve;
mod stale;
mod tls;
mod ui;
mod vault;

use keyward_api::wire;

pub use app::{router, HttpLimits};
pub use audit::{AuditOptions, AuditSinks, AuditState};
pub use error::ApiError;
pub use guard::{GuardConfig, Rate};
pub use jwks::AuthConfig;
pub use openapi::{native_document, vault_document};
pub use pipeline::{capability_table, operations, AuthClass, Effect, Need, Operation, VaultOp};
pub use proxy::ProxyConfig;
pub use serve::{
    start, RunningServer, ServerOptions, StartError, DEFAULT_SHUTDOWN_TIMEOUT, DEFAULT_STALE_SCAN_INTERVAL,
};
pub use tls::TlsMaterial;
