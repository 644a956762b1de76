//! SQLite and PostgreSQL implementations of [`keyward_core::Store`].
//!
//! Both engines share one implementation (the SQL is written once, with `$n` parameters both
//! accept, run through `db::Exec`) and differ only in connection setup, migrations
//! (`migrations/sqlite`, `migrations/postgres`), drivers and locking. Reads go through a sqlx
//! pool on both, except the batches of re-encryption jobs on SQLite, read on a thread of their
//! own at the lowest CPU priority (`lite_scan`). PostgreSQL write transactions are sqlx
//! transactions that lock rows with `FOR UPDATE` and serialise initialisation with an advisory
//! lock. SQLite write transactions
//! (`BEGIN IMMEDIATE`) run on one rusqlite connection of the store's own, synchronously on the
//! caller's thread — the single writer's — so each statement is a local call rather than an async
//! round trip to a pool connection's worker thread; audit entries that go with no write are
//! appended the same way on the audit appender's own connection and thread. Both drivers link the
//! same libsqlite3 build.
//!
//! One module per aggregate — `secrets`, `mounts`, `tokens`, `policies`, `keys`, `transit`,
//! `proxy`, `audit` — holds its SQL: the pool reads ([`keyward_core::SecretReads`]…), the
//! transaction's reads and writes ([`keyward_core::SecretTx`]…) and the queries both share.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod audit;
mod auth;
mod backup;
mod checkpoint;
mod connect;
mod db;
mod integrity;
mod keys;
mod lite_scan;
mod locks;
mod mounts;
mod policies;
mod proxy;
mod rows;
mod secrets;
mod sql_store;
mod sql_tx;
mod sqlite_audit;
mod tokens;
mod transit;

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL (several replicas may share it).
    Postgres,
}

pub use backup::{copy_database, RowLoader, BACKED_UP, NOT_BACKED_UP};
pub use connect::{
    connect, connect_with, lock_sqlite, open_for_server, secure_postgres_url, DatabaseUrl, OpenError, Opened,
};
pub use integrity::classification_table;
pub use sql_store::SqlStore;
