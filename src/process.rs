//! The process layer (outline).
pub mod upid;
pub use upid::{Upid, UpidError};
