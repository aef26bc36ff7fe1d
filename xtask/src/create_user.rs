//! `cargo xtask create-user --username U --role admin|user`: the only way the first admin
//! comes to exist (DESIGN.md §4). The password comes from stdin, or from a prompt that
//! does not echo. It writes through the same store, hashing and audit code as the login
//! function.
//!
//! Where it writes: with `USERS_TABLE` set, to that table at whatever endpoint the AWS
//! environment names (a deployed stack, or `AWS_ENDPOINT_URL`); without it, to the local
//! dev stack that `cargo xtask dev` runs.

use crate::{dev, function_env, local_aws, paths};
use anyhow::{Context, Result, bail};
use inferloop::audit::{Action, AuditTrail, Outcome};
use inferloop::config::{AuditSettings, Env};
use inferloop::domain::{Password, Role, Username};
use inferloop::http::RequestMeta;
use inferloop::store::StoreError;
use inferloop::store::users::{NewUser, UserStore};
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal};

pub async fn run(username: &str, role: &str) -> Result<()> {
    let username = Username::parse(username)?;
    let role = Role::parse(role)?;
    let password = Password::parse(read_password()?)?;

    let (sdk, settings) = target().await?;
    let lookup = |name: &str| settings.get(name).cloned();
    let env = Env::new(lookup);
    let users_table = env.required("USERS_TABLE")?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let store = UserStore::new(dynamodb.clone(), &users_table);

    let user = NewUser {
        password_hash: inferloop::auth::password::hash(&password)?,
        username: username.clone(),
        role,
    };
    // With an audit table, the account and its entry are one transaction.
    // The audit key as given (AUDIT_HMAC_KEY), or read from the secret the stack names.
    let audit_settings = match (env.optional("AUDIT_TABLE"), env.optional("AUDIT_HMAC_KEY")) {
        (None, _) => None,
        (Some(_), Some(_)) => Some(AuditSettings::from_env(&env)?),
        (Some(_), None) => Some(AuditSettings::from_manager(&env, &sdk).await?),
    };
    let audit = audit_settings.map(|settings| AuditTrail::new(dynamodb, settings));
    let meta = RequestMeta {
        request_id: format!("xtask-{}", ulid::Ulid::new()),
        source_ip: None,
        user_agent: Some("cargo xtask create-user".to_owned()),
    };
    let operator = format!(
        "xtask:{}",
        std::env::var("USER").unwrap_or_else(|_| "operator".to_owned())
    );
    let entry = match &audit {
        Some(trail) => Some(
            trail
                .prepare(
                    &meta,
                    &operator,
                    Action::UserCreated,
                    Outcome::Success,
                    serde_json::json!({"username": username, "role": role}),
                )
                .await,
        ),
        None => None,
    };
    match store
        .create(&user, &inferloop::time::now_rfc3339(), entry)
        .await
    {
        Ok(_) => {}
        Err(StoreError::Conflict) => bail!("a user named {username} already exists"),
        Err(err) => return Err(err).context(format!("writing to table {users_table}")),
    }
    println!("created {role} {username} in {users_table}");
    Ok(())
}

/// The SDK config and the settings (table names, audit key) of the stack to write to.
async fn target() -> Result<(aws_config::SdkConfig, BTreeMap<String, String>)> {
    if std::env::var("USERS_TABLE").is_ok_and(|t| !t.is_empty()) {
        let settings = std::env::vars().collect();
        return Ok((inferloop::aws::sdk_config().await, settings));
    }
    let root = paths::root();
    let region = local_aws::region_from_env();
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .unwrap_or_else(|_| crate::services::moto_url(dev::MOTO_PORT));
    eprintln!("USERS_TABLE is not set: using the local dev stack at {endpoint}");
    let settings = function_env::local_union_env(&root, &region)?;
    Ok((local_aws::sdk_config(&endpoint, &region).await, settings))
}

fn read_password() -> Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let first = rpassword::prompt_password("password: ")?;
        let second = rpassword::prompt_password("again: ")?;
        if first != second {
            bail!("the two passwords differ");
        }
        return Ok(first);
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
