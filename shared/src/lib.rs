//! inferloop's shared crate: what two or more Lambda functions need, once.

pub mod audit;
pub mod auth;
pub mod aws;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
#[cfg(feature = "model")]
pub mod model;
pub mod store;
pub mod telemetry;

pub use error::ApiError;
