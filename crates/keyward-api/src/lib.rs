//! The native API's contract (`/api/v1`): the request and response bodies ([`wire`]), the route
//! paths ([`paths`]) and the closed set of error codes ([`ErrorCode`]). The server answers in
//! these types and the CLI reads them; neither has a copy of its own.
pub mod dotenv;
pub mod error;
pub mod paths;
pub mod wire;

pub use error::{ErrorBody, ErrorCode, ErrorDetail};
