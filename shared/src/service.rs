//! What every function's state holds and builds the same way at cold start.

use crate::audit::AuditTrail;
use crate::auth::TokenKeys;
use crate::auth::accounts::{self, Accounts};
use crate::config::{AuditSettings, AuthSettings, ConfigError, Env};
use crate::store::users::UserStore;
use std::time::Duration;

/// The parts of a function's state the router needs: the keys that check tokens, the
/// check that a token's account still exists as it says, and this instance's audit
/// chain.
pub struct Common {
    pub tokens: TokenKeys,
    pub accounts: Accounts,
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
    /// The audit settings, key included, as read (audit-logs verifies with the key).
    pub audit_settings: AuditSettings,
    pub common: Common,
}

impl ColdStart {
    /// Reads the token and audit settings (refusing to start, naming the variable, when
    /// one is missing), the audit key from its secret, and builds the clients once.
    pub async fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
    ) -> Result<Self, ConfigError> {
        let auth = AuthSettings::from_env(env)?;
        let users_table = env.required("USERS_TABLE")?;
        let account_ttl = Duration::from_secs(env.number_or(
            "ACCOUNT_CHECK_TTL_SECONDS",
            accounts::DEFAULT_TTL.as_secs(),
            0..=300,
        )?);
        let sdk = crate::aws::sdk_config().await;
        // The audit key comes from Secrets Manager, never from the configuration.
        let audit = AuditSettings::from_manager(env, &sdk).await?;
        let dynamodb = crate::aws::dynamodb(&sdk);
        Ok(Self {
            common: Common {
                tokens: TokenKeys::new(auth),
                accounts: Accounts::new(UserStore::new(dynamodb.clone(), users_table), account_ttl),
                audit: AuditTrail::new(dynamodb.clone(), audit.clone()),
            },
            audit_settings: audit,
            dynamodb,
            sdk,
        })
    }
}
