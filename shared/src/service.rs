//! What every function's state holds and builds the same way at cold start.

use crate::audit::AuditTrail;
use crate::auth::TokenKeys;
use crate::auth::accounts::{self, Accounts};
use crate::config::{AuditSettings, AuthSettings, ConfigError, Env};
use crate::notify::Notifier;
use crate::notify::store::AlertStore;
use crate::store::users::UserStore;
use std::time::Duration;

/// The parts of a function's state the router needs: the keys that check tokens, the
/// check that a token's account still exists as it says, and this instance's audit
/// chain.
pub struct Common {
    pub tokens: TokenKeys,
    pub accounts: Accounts,
    pub audit: AuditTrail,
    /// Publishes alerts (and a critical one after a 5xx); `None` where no alerts topic
    /// is configured.
    pub notifier: Option<Notifier>,
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
                notifier: notifier_from_env(env, &sdk, &dynamodb),
            },
            audit_settings: audit,
            dynamodb,
            sdk,
        })
    }
}

/// The alerts topic and table (`ALERTS_TOPIC_ARN`, `ALERTS_TABLE`), when both are set;
/// the alerts name this function (`AWS_LAMBDA_FUNCTION_NAME`, set by Lambda and by
/// `cargo lambda watch`) as their source.
fn notifier_from_env<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    sdk: &crate::aws::SdkConfig,
    dynamodb: &aws_sdk_dynamodb::Client,
) -> Option<Notifier> {
    let topic = env.optional("ALERTS_TOPIC_ARN")?;
    let table = env.optional("ALERTS_TABLE")?;
    let source = env
        .optional("AWS_LAMBDA_FUNCTION_NAME")
        .unwrap_or_else(|| "inferloop".to_owned());
    Some(Notifier::new(
        aws_sdk_sns::Client::new(sdk),
        topic,
        AlertStore::new(dynamodb.clone(), table),
        source,
    ))
}
