//! Each function's environment as SAM would give it: Globals.Function's variables
//! merged with the function's own, every intrinsic resolved for the local stack.

use crate::intrinsics::Resolver;
use crate::template::{LAMBDA_FUNCTION, SECRET, SERVERLESS_FUNCTION, Template};
use crate::{dev_secrets, paths};
use anyhow::{Context, Result, bail};
use serde_norway::Mapping;
use std::collections::BTreeMap;
use std::path::Path;

pub type Env = BTreeMap<String, String>;

pub const DEFAULT_REGION: &str = "us-east-1";

/// Parameters whose deployed default means "none here" but which the local stack
/// provides: the Redis that `cargo xtask dev` and `test` ensure on 6379, and somebody to
/// e-mail alerts to.
pub const LOCAL_PARAMETERS: [(&str, &str); 2] = [
    ("RedisUrl", "redis://127.0.0.1:6379"),
    // Alert e-mails go to the emulator's SES, where they can be read (README).
    ("AlertEmails", "oncall@inferloop.example"),
];

/// Parameters that are the two halves of one key pair (private, public): generated
/// together, once, as an Ed25519 pair (the token keys).
pub const KEY_PAIR_PARAMETERS: [(&str, &str); 1] = [("JwtSigningKey", "JwtPublicKey")];

/// The resolver for this checkout: parameter defaults, and development secrets
/// generated once into `.inferloop/dev.env` for NoEcho parameters without a default and
/// for the template's generated Secrets Manager secrets (by logical id: parameters and
/// resources share one namespace, so the names cannot clash).
pub fn local_resolver<'t>(
    root: &Path,
    template: &'t Template,
    region: &str,
) -> Result<Resolver<'t>> {
    let parameters = template.parameters()?;
    let paired = |name: &str| {
        KEY_PAIR_PARAMETERS
            .iter()
            .any(|(private, public)| name == *private || name == *public)
    };
    let secret_parameters: Vec<&str> = parameters
        .iter()
        .filter(|(name, p)| p.default.is_none() && p.no_echo && !paired(name))
        .map(|(name, _)| name.as_str())
        .collect();
    let generated_secrets: Vec<&str> = template
        .resources()
        .filter(|r| r.kind == SECRET && r.property("GenerateSecretString").is_some())
        .map(|r| r.logical_id)
        .collect();
    let names: Vec<&str> = secret_parameters
        .iter()
        .chain(&generated_secrets)
        .copied()
        .collect();
    let mut values = if names.is_empty() {
        Env::new()
    } else {
        dev_secrets::load_or_create(&paths::dev_env(root), &names)?
    };
    let secrets: Env = generated_secrets
        .iter()
        .filter_map(|id| Some((id.to_string(), values.remove(*id)?)))
        .collect();
    for (private, public) in KEY_PAIR_PARAMETERS {
        if parameters.contains_key(private) && parameters.contains_key(public) {
            let (private_key, public_key) =
                dev_secrets::load_or_create_pair(&paths::dev_env(root), private, public)?;
            values.insert(private.to_owned(), private_key);
            values.insert(public.to_owned(), public_key);
        }
    }
    for (name, parameter) in &parameters {
        if let Some(default) = &parameter.default {
            values.insert(name.clone(), default.clone());
        }
    }
    for (name, value) in LOCAL_PARAMETERS {
        if parameters.contains_key(name) {
            values.insert(name.to_owned(), value.to_owned());
        }
    }
    Ok(Resolver::new(template, values, region).with_secrets(secrets))
}

/// Every function's resolved environment, by logical id.
pub fn function_envs(resolver: &Resolver) -> Result<BTreeMap<String, Env>> {
    let template = resolver.template();
    let globals = template.global_function_variables();
    let mut out = BTreeMap::new();
    for function in template.resources() {
        let inherits_globals = match function.kind {
            SERVERLESS_FUNCTION => true,
            LAMBDA_FUNCTION => false,
            _ => continue,
        };
        let own = function
            .property("Environment")
            .and_then(|e| e.get("Variables"))
            .and_then(|v| v.as_mapping());
        let mut env = Env::new();
        let layers = [globals.filter(|_| inherits_globals), own];
        for variables in layers.into_iter().flatten() {
            resolve_into(resolver, variables, &mut env)
                .with_context(|| format!("environment of {}", function.logical_id))?;
        }
        out.insert(function.logical_id.to_owned(), env);
    }
    Ok(out)
}

fn resolve_into(resolver: &Resolver, variables: &Mapping, env: &mut Env) -> Result<()> {
    for (name, value) in variables {
        let name = name.as_str().context("a variable name is not a string")?;
        let value = resolver
            .string(value)
            .with_context(|| format!("variable {name}"))?;
        env.insert(name.to_owned(), value);
    }
    Ok(())
}

/// One environment that serves every function at once, as `cargo lambda watch` and
/// the tests need. Two functions giving one variable different values cannot share
/// it, so that is an error rather than a silent pick.
pub fn union(envs: &BTreeMap<String, Env>) -> Result<Env> {
    let mut out = Env::new();
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for (function, env) in envs {
        for (name, value) in env {
            match out.get(name) {
                Some(existing) if existing != value => bail!(
                    "{name} differs between {} ({existing:?}) and {function} ({value:?}); one local environment cannot serve both",
                    owner[name.as_str()]
                ),
                Some(_) => {}
                None => {
                    out.insert(name.clone(), value.clone());
                    owner.insert(name, function);
                }
            }
        }
    }
    Ok(out)
}

/// What tools and tests of this checkout hold besides the functions' environment: the
/// local token signing key (tests sign tokens as login would) and the audit key as a
/// value (tests and benches that write or check entries directly). The functions
/// themselves read both from Secrets Manager.
pub fn local_tool_env(root: &Path, region: &str) -> Result<Env> {
    let template = Template::load(&paths::template(root))?;
    let resolver = local_resolver(root, &template, region)?;
    let mut env = Env::new();
    env.insert(
        "JWT_SIGNING_KEY".into(),
        resolver.reference("JwtSigningKey")?,
    );
    let audit_key = template
        .resource("AuditKeySecret")
        .context("template.yaml has no AuditKeySecret")?;
    env.insert("AUDIT_HMAC_KEY".into(), resolver.secret_value(&audit_key)?);
    Ok(env)
}

/// The union environment of every function in this checkout's template.yaml.
pub fn local_union_env(root: &Path, region: &str) -> Result<Env> {
    let template = Template::load(&paths::template(root))?;
    let resolver = local_resolver(root, &template, region)?;
    union(&function_envs(&resolver)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver(t: &Template) -> Resolver<'_> {
        let values = BTreeMap::from([
            ("JwtSigningKey".to_owned(), "private".to_owned()),
            ("JwtPublicKey".to_owned(), "p".repeat(43)),
            ("ApiRateLimit".to_owned(), "100".to_owned()),
            ("LogLevel".to_owned(), "info".to_owned()),
            ("AuditRetentionDays".to_owned(), "400".to_owned()),
            ("RedisUrl".to_owned(), "redis://cache:6379".to_owned()),
            ("CacheName".to_owned(), String::new()),
            ("RateLimitPerHour".to_owned(), "1000".to_owned()),
            ("AbV2Percent".to_owned(), "50".to_owned()),
            ("PredictionRetentionDays".to_owned(), "90".to_owned()),
            (
                "SlackWebhookUrl".to_owned(),
                "https://hooks.slack.test/T0/B0/x".to_owned(),
            ),
            ("AlertEmails".to_owned(), "oncall@example.com".to_owned()),
            ("EmailMinSeverity".to_owned(), "critical".to_owned()),
            ("AlertSender".to_owned(), "alerts@example.com".to_owned()),
        ]);
        let secrets = BTreeMap::from([("AuditKeySecret".to_owned(), "a".repeat(96))]);
        Resolver::new(t, values, DEFAULT_REGION).with_secrets(secrets)
    }

    #[test]
    fn login_env_from_the_real_template() {
        let t = Template::load(&paths::template(&paths::root())).unwrap();
        let envs = function_envs(&resolver(&t)).unwrap();
        let login = &envs["LoginFunction"];
        assert_eq!(login["RUST_LOG"], "info");
        assert_eq!(login["JWT_ISSUER"], "inferloop");
        assert_eq!(login["JWT_AUDIENCE"], "inferloop-api");
        assert_eq!(login["USERS_TABLE"], "UsersTable");
        assert_eq!(login["AUDIT_TABLE"], "AuditTable");
        assert_eq!(login["JWT_PUBLIC_KEY"], "p".repeat(43));
        assert!(
            login["JWT_SIGNING_KEY_SECRET"].starts_with("arn:aws:secretsmanager:"),
            "login reads its key from a secret: {}",
            login["JWT_SIGNING_KEY_SECRET"]
        );
        assert!(
            login["AUDIT_KEY_SECRET"].contains(":secret:"),
            "{}",
            login["AUDIT_KEY_SECRET"]
        );
        assert_eq!(login["AUDIT_RETENTION_DAYS"], "400");
        for (function, env) in &envs {
            for (name, value) in env {
                assert!(
                    !value.contains("a".repeat(96).as_str()) && *value != "private",
                    "{function}'s {name} holds a secret's value; it must name the secret"
                );
            }
        }
        let predict = &envs["PredictFunction"];
        assert_eq!(predict["MODELS_BUCKET"], "modelsbucket");
        assert_eq!(predict["REDIS_URL"], "redis://cache:6379");
        assert_eq!(predict["PREDICTIONS_TABLE"], "PredictionsTable");
        let audit_logs = &envs["AuditLogsFunction"];
        assert_eq!(audit_logs["AUDIT_TABLE"], "AuditTable");
        assert_eq!(
            audit_logs["AUDIT_KEY_SECRET"], login["AUDIT_KEY_SECRET"],
            "every writer and the verifier share one key"
        );
        assert!(
            !audit_logs.contains_key("JWT_SIGNING_KEY_SECRET"),
            "only login signs"
        );
        let slack = &envs["SlackAlertFunction"];
        assert!(
            slack["SLACK_WEBHOOK_SECRET"].contains(":secret:"),
            "the webhook is read from its secret: {}",
            slack["SLACK_WEBHOOK_SECRET"]
        );
        assert!(
            envs.values()
                .flat_map(|env| env.values())
                .all(|v| !v.contains("hooks.slack.test")),
            "no function's configuration holds the webhook URL"
        );
        assert_eq!(slack["ALERT_EMAILS"], "oncall@example.com");
        union(&envs).unwrap();
    }

    #[test]
    fn own_variables_override_globals_and_conflicts_are_reported() {
        let t = Template::parse(
            r#"
Globals:
  Function:
    Environment:
      Variables: {SHARED: global, LEVEL: info}
Resources:
  A:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables: {LEVEL: debug}
  B:
    Type: AWS::Serverless::Function
  Raw:
    Type: AWS::Lambda::Function
    Properties:
      Environment:
        Variables: {ONLY: raw}
"#,
        )
        .unwrap();
        let envs = function_envs(&Resolver::new(&t, BTreeMap::new(), DEFAULT_REGION)).unwrap();
        assert_eq!(envs["A"]["LEVEL"], "debug");
        assert_eq!(envs["A"]["SHARED"], "global");
        assert_eq!(envs["B"]["LEVEL"], "info");
        assert!(
            !envs["Raw"].contains_key("SHARED"),
            "globals are SAM's, not Lambda's"
        );
        let err = union(&envs).unwrap_err().to_string();
        assert!(err.contains("LEVEL differs"), "{err}");
    }

    #[test]
    fn local_resolver_generates_missing_secrets() {
        let root = std::env::temp_dir().join(format!("xtask-env-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let t = Template::load(&paths::template(&paths::root())).unwrap();
        let first =
            union(&function_envs(&local_resolver(&root, &t, DEFAULT_REGION).unwrap()).unwrap())
                .unwrap();
        let again =
            union(&function_envs(&local_resolver(&root, &t, DEFAULT_REGION).unwrap()).unwrap())
                .unwrap();
        // The public key of a generated pair, whose private half is stored beside it.
        assert_eq!(first["JWT_PUBLIC_KEY"].len(), 43);
        let stored = crate::env_file::read(&paths::dev_env(&root)).unwrap();
        assert_eq!(stored["JwtPublicKey"], first["JWT_PUBLIC_KEY"]);
        let auth =
            inferloop::config::AuthSettings::from_env(&inferloop::config::Env::new(|name| {
                first.get(name).cloned()
            }))
            .unwrap();
        assert!(
            inferloop::auth::TokenKeys::with_signing_key(auth, &stored["JwtSigningKey"]).is_ok(),
            "the stored private key is the public key's pair"
        );
        assert_eq!(stored["AuditKeySecret"].len(), 96);
        assert_eq!(first, again, "secrets are reused, not regenerated");
        // The local stack's Redis, although the deployed default is "none".
        assert_eq!(first["REDIS_URL"], "redis://127.0.0.1:6379");
        std::fs::remove_dir_all(root).unwrap();
    }
}
