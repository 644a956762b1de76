//! The server's integration tests, as one test binary (one link, one process): every module
//! starts real servers on 127.0.0.1:0 and talks HTTP to them, on SQLite and — when
//! KEYWARD_TEST_DATABASE_URL is set — on PostgreSQL (see docs/testing.md).
#![allow(clippy::unwrap_used)] // test helpers panic on purpose

mod common;

mod access;
mod audit;
mod foundation;
mod identity;
mod isolation;
mod jwt;
mod keys;
mod metrics;
mod operations;
mod proxy;
mod read_path;
mod retention;
mod token_terms;
mod transit;
mod ui;
mod untrusted_storage;
mod upgrade;
mod vault;
mod wrapping;
