//! Test support shared by keyward's crates (a dev-dependency only).
//!
//! - [`TestPostgres`]: a fresh PostgreSQL database on the server `KEYWARD_TEST_DATABASE_URL`
//!   names, dropped (connections and all) when the value is dropped. Without that variable the
//!   PostgreSQL half of a test is skipped, except under `CI=true`, where it must run.
//! - [`ServerProcess`]: the `keyward server` binary as a child process, with its address and, for
//!   `--dev`, its root token read from its banner; killed when dropped.
mod postgres;
mod process;

pub use postgres::{postgres_admin_url, TestPostgres};
pub use process::{ServerProcess, StartFailed};
