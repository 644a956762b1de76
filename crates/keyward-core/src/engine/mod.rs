//! The machinery: the single group-committing writer and its typed commands, the SQLite audit
//! appender, and the caches.
pub(crate) mod appender;
pub(crate) mod cache;
pub(crate) mod command;
pub(crate) mod read_cache;
pub(crate) mod writer;

pub use writer::Writer;
