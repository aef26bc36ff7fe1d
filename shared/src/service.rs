//! What every function's state holds and builds the same way at cold start.

use crate::audit::AuditTrail;
use crate::auth::TokenKeys;
use crate::config::{AuditSettings, AuthSettings, ConfigError, Env};

/// The parts of a function's state the router needs: the keys that check tokens, and
/// this instance's audit chain.
pub struct Common {
    pub tokens: TokenKeys,
    pub audit: AuditTrail,
}

/// A function's state, as the router sees it.
pub trait Service: Send + Sync + 'static {
    fn common(&self) -> &Common;
}

/// What a cold start builds before the function's own parts: the SDK configuration, one
/// DynamoDB client for every table, and the [`Common`] parts.
pub struct ColdStart {
    pub sdk: crate::aws::SdkConfig,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub common: Common,
}

impl ColdStart {
    /// Reads the token and audit settings (refusing to start, naming the variable, when
    /// one is missing) and builds the clients once.
    pub async fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
    ) -> Result<Self, ConfigError> {
        let auth = AuthSettings::from_env(env)?;
        let audit = AuditSettings::from_env(env)?;
        let sdk = crate::aws::sdk_config().await;
        let dynamodb = crate::aws::dynamodb(&sdk);
        Ok(Self {
            common: Common {
                tokens: TokenKeys::new(auth),
                audit: AuditTrail::new(dynamodb.clone(), audit),
            },
            dynamodb,
            sdk,
        })
    }
}
