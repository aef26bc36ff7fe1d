//! The AWS settings that point the SDK (ours and the functions') at moto. The
//! code under test has no local special case: it honours AWS_ENDPOINT_URL.

use crate::function_env::{DEFAULT_REGION, Env};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

pub const ACCESS_KEY_ID: &str = "test";
pub const SECRET_ACCESS_KEY: &str = "test";

/// What a child process needs to talk to moto at `endpoint`.
pub fn env(endpoint: &str) -> Env {
    Env::from([
        ("AWS_ENDPOINT_URL".to_owned(), endpoint.to_owned()),
        ("AWS_REGION".to_owned(), DEFAULT_REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID".to_owned(), ACCESS_KEY_ID.to_owned()),
        (
            "AWS_SECRET_ACCESS_KEY".to_owned(),
            SECRET_ACCESS_KEY.to_owned(),
        ),
        // Nothing local runs on EC2; without this a missing setting costs an IMDS timeout.
        ("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned()),
        // moto at 127.0.0.1 has no per-bucket host names (shared/src/aws.rs).
        ("S3_FORCE_PATH_STYLE".to_owned(), "true".to_owned()),
    ])
}

/// The region for commands that honour the caller's AWS_REGION.
pub fn region_from_env() -> String {
    std::env::var("AWS_REGION").unwrap_or_else(|_| DEFAULT_REGION.to_owned())
}

/// An SDK config for moto at `endpoint`: the credentials from the environment if
/// both keys are set, else moto's dummy ones. It never falls through to a real
/// profile.
pub async fn sdk_config(endpoint: &str, region: &str) -> SdkConfig {
    let credentials = match (
        std::env::var("AWS_ACCESS_KEY_ID"),
        std::env::var("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Ok(id), Ok(secret)) => Credentials::new(id, secret, None, None, "environment"),
        _ => Credentials::new(ACCESS_KEY_ID, SECRET_ACCESS_KEY, None, None, "moto"),
    };
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region.to_owned()))
        .credentials_provider(credentials)
        .load()
        .await
}
