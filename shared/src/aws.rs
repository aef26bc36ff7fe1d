//! SDK clients, built once per container from the standard AWS configuration chain.
//!
//! `AWS_ENDPOINT_URL` is honoured by aws-config itself, so local runs against moto need no
//! special case in the code.

use aws_config::BehaviorVersion;

pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

pub fn dynamodb(config: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(config)
}
