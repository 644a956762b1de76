//! SQLite and PostgreSQL implementations of [`keyward_core::Store`], through sqlx.
//!
//! Both engines share one implementation over sqlx's `Any` driver (the SQL is written once, with
//! `$n` parameters both engines accept) and differ only in connection setup, migrations
//! (`migrations/sqlite`, `migrations/postgres`) and locking: SQLite write transactions start with
//! `BEGIN IMMEDIATE`; PostgreSQL locks rows with `FOR UPDATE` and serialises initialisation with
//! an advisory lock. On SQLite, audit entries that go with no write are appended through a
//! rusqlite connection of its own, synchronously on the audit appender's thread (the same
//! libsqlite3 build as sqlx's), which takes an async round trip per statement out of every
//! audited read.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod connect;
mod rows;
mod sql_store;
mod sql_tx;
mod sqlite_audit;

pub use connect::{connect, lock_sqlite, DatabaseUrl};
pub use sql_store::SqlStore;
