//! SDK clients, built once per container from the standard AWS configuration chain.
//!
//! `AWS_ENDPOINT_URL` is honoured by aws-config itself, so local runs against moto need no
//! special case in the code.

use aws_config::BehaviorVersion;
pub use aws_config::SdkConfig;

pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// The string value of the Secrets Manager secret `id` (a name or an ARN): how a
/// function gets a key at cold start without it ever being in its configuration.
pub async fn secret_string(config: &aws_config::SdkConfig, id: &str) -> Result<String, String> {
    let out = aws_sdk_secretsmanager::Client::new(config)
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| crate::error::error_chain(&e))?;
    out.secret_string
        .ok_or_else(|| format!("secret {id} holds no string"))
}

pub fn dynamodb(config: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(config)
}

/// S3 with path-style addressing when `S3_FORCE_PATH_STYLE=true`: a local emulator on
/// 127.0.0.1 has no per-bucket host names. Real S3 uses virtual-hosted addressing.
#[cfg(feature = "s3")]
pub fn s3(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let path_style =
        std::env::var("S3_FORCE_PATH_STYLE").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(path_style)
            .build(),
    )
}
