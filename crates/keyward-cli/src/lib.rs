//! The parts of the `keyward` CLI other crates use: the `.env` and flat-JSON parser and
//! renderers (the fuzz targets exercise the parser).
#![forbid(unsafe_code)]

pub use keyward_api::dotenv;
