//! inferloop's shared crate: what two or more Lambda functions need, once.

pub mod audit;
pub mod auth;
#[cfg(feature = "stats")]
pub mod autoretrain;
pub mod aws;
#[cfg(feature = "cache")]
pub mod cache;
pub mod coalesce;
pub mod config;
pub mod dispatch;
pub mod domain;
#[cfg(feature = "stats")]
pub mod drift;
pub mod error;
#[cfg(feature = "stats")]
pub mod gate;
pub mod http;
#[cfg(feature = "model")]
pub mod model;
pub mod notify;
pub mod retry;
pub use inferloop_nn::rng;
pub mod service;
pub mod settings;
#[cfg(feature = "stats")]
pub mod stats;
pub mod store;
pub mod telemetry;
pub mod time;

pub use error::ApiError;
