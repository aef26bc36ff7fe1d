//! CloudFormation's intrinsic functions, evaluated the way the local stack needs
//! them: `!Ref`, `!GetAtt`, `!Sub` and `!Join` (short or long form) become the
//! strings CloudFormation would produce if each resource's physical name were its
//! logical id (or its explicit name property), in moto's account. Dynamic references
//! to the template's own Secrets Manager secrets (`{{resolve:secretsmanager:…}}`)
//! become their local development values.

use crate::template::{
    self, BUCKET, LAMBDA_FUNCTION, QUEUE, Resource, SECRET, SERVERLESS_FUNCTION, TABLE, TOPIC,
    Template,
};
use anyhow::{Context, Result, bail};
use serde_norway::{Mapping, Value};
use std::collections::BTreeMap;

/// moto's default account, so ARNs built here match the ones moto returns.
pub const ACCOUNT_ID: &str = "123456789012";
pub const STACK_NAME: &str = "inferloop";

pub struct Resolver<'t> {
    template: &'t Template,
    /// Values of the parameters that have one locally; a parameter missing here
    /// is an error only when something refers to it.
    parameters: BTreeMap<String, String>,
    /// Local values of the template's secrets, by logical id.
    secrets: BTreeMap<String, String>,
    region: String,
}

impl<'t> Resolver<'t> {
    pub fn new(
        template: &'t Template,
        parameters: BTreeMap<String, String>,
        region: impl Into<String>,
    ) -> Self {
        Self {
            template,
            parameters,
            secrets: BTreeMap::new(),
            region: region.into(),
        }
    }

    /// The same resolver with `name` (a parameter) set to `value`.
    pub fn with_parameter(mut self, name: &str, value: String) -> Self {
        self.parameters.insert(name.to_owned(), value);
        self
    }

    /// The values that dynamic references to the template's secrets resolve to, by the
    /// secrets' logical ids.
    pub fn with_secrets(mut self, secrets: BTreeMap<String, String>) -> Self {
        self.secrets = secrets;
        self
    }

    pub fn template(&self) -> &'t Template {
        self.template
    }

    /// A value that must end up a string: a scalar or an intrinsic.
    pub fn string(&self, value: &Value) -> Result<String> {
        let text = match intrinsic(value) {
            Some((function, argument)) => self.call(&function, argument)?,
            None => template::scalar(value)?,
        };
        self.resolve_dynamic_references(&text)
    }

    /// The value with every intrinsic inside it replaced by its string.
    pub fn value(&self, value: &Value) -> Result<Value> {
        if intrinsic(value).is_some() {
            return self.string(value).map(Value::String);
        }
        Ok(match value {
            Value::Sequence(items) => {
                Value::Sequence(items.iter().map(|v| self.value(v)).collect::<Result<_>>()?)
            }
            Value::Mapping(map) => {
                let mut out = Mapping::new();
                for (k, v) in map {
                    out.insert(k.clone(), self.value(v)?);
                }
                Value::Mapping(out)
            }
            other => other.clone(),
        })
    }

    /// The local physical name: the resource's explicit name property if it has
    /// one, else its logical id.
    pub fn physical_name(&self, resource: &Resource) -> Result<String> {
        let name_property = match resource.kind {
            TABLE => Some("TableName"),
            BUCKET => Some("BucketName"),
            TOPIC => Some("TopicName"),
            SERVERLESS_FUNCTION | LAMBDA_FUNCTION => Some("FunctionName"),
            SECRET => Some("Name"),
            QUEUE => Some("QueueName"),
            _ => None,
        };
        match name_property.and_then(|p| resource.property(p)) {
            Some(name) => self
                .string(name)
                .with_context(|| format!("the name of {}", resource.logical_id)),
            // S3 bucket names are lower-case; CloudFormation's generated ones are too.
            None if resource.kind == BUCKET => Ok(resource.logical_id.to_ascii_lowercase()),
            None => Ok(resource.logical_id.to_owned()),
        }
    }

    fn call(&self, function: &str, argument: &Value) -> Result<String> {
        match function {
            "Ref" => self.reference(&self.string(argument)?),
            "GetAtt" => {
                let (id, attribute) = match argument {
                    Value::String(s) => s
                        .split_once('.')
                        .with_context(|| format!("!GetAtt {s}: expected Resource.Attribute"))?,
                    Value::Sequence(parts) if parts.len() == 2 => (
                        parts[0]
                            .as_str()
                            .context("!GetAtt: resource is not a string")?,
                        parts[1]
                            .as_str()
                            .context("!GetAtt: attribute is not a string")?,
                    ),
                    other => bail!("!GetAtt: unexpected argument {other:?}"),
                };
                self.attribute(id, attribute)
            }
            "Sub" => match argument {
                Value::String(s) => self.substitute(s, None),
                Value::Sequence(parts) if parts.len() == 2 => {
                    let text = parts[0]
                        .as_str()
                        .context("!Sub: the text is not a string")?;
                    let variables = parts[1]
                        .as_mapping()
                        .context("!Sub: variables are not a mapping")?;
                    self.substitute(text, Some(variables))
                }
                other => bail!("!Sub: unexpected argument {other:?}"),
            },
            "Join" => match argument {
                Value::Sequence(parts) if parts.len() == 2 => {
                    let separator = parts[0]
                        .as_str()
                        .context("!Join: separator is not a string")?;
                    let items = parts[1]
                        .as_sequence()
                        .context("!Join: items are not a list")?;
                    let items = items
                        .iter()
                        .map(|v| self.string(v))
                        .collect::<Result<Vec<_>>>()?;
                    Ok(items.join(separator))
                }
                other => bail!("!Join: unexpected argument {other:?}"),
            },
            other => bail!("unsupported intrinsic function !{other}"),
        }
    }

    /// The local value of one of the template's secrets: the generated one for a secret
    /// Secrets Manager generates (`GenerateSecretString`), else its `SecretString`.
    pub fn secret_value(&self, resource: &Resource) -> Result<String> {
        if resource.property("GenerateSecretString").is_some() {
            return self
                .secrets
                .get(resource.logical_id)
                .cloned()
                .with_context(|| format!("{}: no local value generated", resource.logical_id));
        }
        let value = resource.property("SecretString").with_context(|| {
            format!(
                "{}: neither GenerateSecretString nor SecretString",
                resource.logical_id
            )
        })?;
        self.string(value)
    }

    /// What `!Ref name` evaluates to.
    pub fn reference(&self, name: &str) -> Result<String> {
        if let Some(pseudo) = self.pseudo_parameter(name) {
            return pseudo;
        }
        if let Some(value) = self.parameters.get(name) {
            return Ok(value.clone());
        }
        if self.template.parameters()?.contains_key(name) {
            bail!(
                "parameter {name} has no Default and is not NoEcho, so it has no local value: give it a Default"
            );
        }
        let resource = self
            .template
            .resource(name)
            .with_context(|| format!("!Ref {name}: no such parameter or resource"))?;
        let physical = self.physical_name(&resource)?;
        Ok(match resource.kind {
            // What CloudFormation's Ref returns for these is an ARN, not the name.
            TOPIC => self.arn("sns", &physical),
            // A queue's Ref is its URL; the emulator finds the queue by the URL's name.
            QUEUE => format!(
                "https://sqs.{}.amazonaws.com/{ACCOUNT_ID}/{physical}",
                self.region
            ),
            SECRET => self.arn("secretsmanager", &format!("secret:{physical}")),
            _ => physical,
        })
    }

    /// `{{resolve:service:reference}}` anywhere in `text`, as CloudFormation resolves it
    /// at deploy time.
    fn resolve_dynamic_references(&self, text: &str) -> Result<String> {
        const OPEN: &str = "{{resolve:";
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find(OPEN) {
            out.push_str(&rest[..start]);
            let after = &rest[start + OPEN.len()..];
            let end = after
                .find("}}")
                .with_context(|| format!("{text:?}: unclosed {{{{resolve:"))?;
            out.push_str(&self.dynamic_reference(&after[..end])?);
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// `secretsmanager:secret-id[:SecretString[:json-key[:version-stage[:version-id]]]]`
    /// for a secret of this template; nothing else has a local value.
    fn dynamic_reference(&self, spec: &str) -> Result<String> {
        let Some(reference) = spec.strip_prefix("secretsmanager:") else {
            bail!(
                "{{{{resolve:{spec}}}}}: only secretsmanager references to this template's secrets resolve locally"
            );
        };
        // The id may be an ARN, whose seven parts hold colons of their own.
        let (id, options) = if reference.starts_with("arn:") {
            let parts: Vec<&str> = reference.splitn(8, ':').collect();
            if parts.len() < 7 {
                bail!("{{{{resolve:{spec}}}}}: malformed secret ARN");
            }
            (parts[..7].join(":"), parts.get(7).copied().unwrap_or(""))
        } else {
            let (id, options) = reference.split_once(':').unwrap_or((reference, ""));
            (id.to_owned(), options)
        };
        let mut options = options.split(':');
        if !matches!(options.next(), None | Some("" | "SecretString")) {
            bail!("{{{{resolve:{spec}}}}}: only SecretString can be resolved");
        }
        if options.next().is_some_and(|key| !key.is_empty()) {
            bail!("{{{{resolve:{spec}}}}}: JSON keys of a secret are not supported locally");
        }
        // Version stages and ids are ignored: a local secret has one version.
        let secret = self
            .template
            .resources()
            .filter(|r| r.kind == SECRET)
            .find(|r| {
                self.reference(r.logical_id).is_ok_and(|arn| arn == id)
                    || self.physical_name(r).is_ok_and(|name| name == id)
            })
            .with_context(|| {
                format!("{{{{resolve:{spec}}}}}: {id} is not a secret of this template")
            })?;
        if let Some(value) = self.secrets.get(secret.logical_id) {
            return Ok(value.clone());
        }
        match secret.property("SecretString") {
            Some(value) => self.string(value),
            None => bail!(
                "secret {} has no local value (it is generated into .inferloop/dev.env)",
                secret.logical_id
            ),
        }
    }

    fn attribute(&self, id: &str, attribute: &str) -> Result<String> {
        let resource = self
            .template
            .resource(id)
            .with_context(|| format!("!GetAtt {id}.{attribute}: no such resource"))?;
        let name = self.physical_name(&resource)?;
        let value = match (resource.kind, attribute) {
            (TABLE, "Arn") => self.arn("dynamodb", &format!("table/{name}")),
            (BUCKET, "Arn") => format!("arn:aws:s3:::{name}"),
            (BUCKET, "DomainName") => format!("{name}.s3.amazonaws.com"),
            (TOPIC, "TopicArn") => self.arn("sns", &name),
            (TOPIC, "TopicName") => name,
            (QUEUE, "Arn") => self.arn("sqs", &name),
            (QUEUE, "QueueName") => name,
            (SERVERLESS_FUNCTION | LAMBDA_FUNCTION, "Arn") => {
                self.arn("lambda", &format!("function:{name}"))
            }
            (kind, _) => bail!("!GetAtt {id}.{attribute}: not known locally for {kind}"),
        };
        Ok(value)
    }

    fn substitute(&self, text: &str, variables: Option<&Mapping>) -> Result<String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .with_context(|| format!("!Sub {text:?}: unclosed ${{"))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                // `${!Name}` is CloudFormation's escape for a literal `${Name}`.
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(value) = variables.and_then(|v| v.get(name)) {
                out.push_str(&self.string(value)?);
            } else if let Some((id, attribute)) = name.split_once('.') {
                out.push_str(&self.attribute(id, attribute)?);
            } else {
                out.push_str(&self.reference(name)?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn pseudo_parameter(&self, name: &str) -> Option<Result<String>> {
        let value = match name {
            "AWS::Region" => self.region.clone(),
            "AWS::AccountId" => ACCOUNT_ID.to_owned(),
            "AWS::Partition" => "aws".to_owned(),
            "AWS::URLSuffix" => "amazonaws.com".to_owned(),
            "AWS::StackName" => STACK_NAME.to_owned(),
            "AWS::StackId" => self.arn("cloudformation", &format!("stack/{STACK_NAME}/local")),
            "AWS::NoValue" => {
                return Some(Err(anyhow::anyhow!("AWS::NoValue has no string value")));
            }
            _ => return None,
        };
        Some(Ok(value))
    }

    fn arn(&self, service: &str, resource: &str) -> String {
        format!("arn:aws:{service}:{}:{ACCOUNT_ID}:{resource}", self.region)
    }
}

/// `!Name arg` or `{ "Ref" | "Fn::Name": arg }` as (Name, arg).
fn intrinsic(value: &Value) -> Option<(String, &Value)> {
    match value {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            Some((tag.trim_start_matches('!').to_owned(), &tagged.value))
        }
        Value::Mapping(map) if map.len() == 1 => {
            let (key, argument) = map.iter().next()?;
            let key = key.as_str()?;
            let name = if key == "Ref" {
                key
            } else {
                key.strip_prefix("Fn::")?
            };
            Some((name.to_owned(), argument))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Parameters:
  Level: {Type: String, Default: debug}
  Days: {Type: Number, Default: 30}
  Secret: {Type: String, NoEcho: true}
  Required: {Type: String}
Resources:
  Users:
    Type: AWS::DynamoDB::Table
  Named:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-named"
  Alerts:
    Type: AWS::SNS::Topic
  Models:
    Type: AWS::S3::Bucket
  Key:
    Type: AWS::SecretsManager::Secret
    Properties:
      GenerateSecretString: {PasswordLength: 64}
  Fixed:
    Type: AWS::SecretsManager::Secret
    Properties:
      Name: fixed-secret
      SecretString: !Sub "${Level}-value"
"#;

    fn resolver(t: &Template) -> Resolver<'_> {
        let mut params = BTreeMap::from([
            ("Level".to_owned(), "debug".to_owned()),
            ("Days".to_owned(), "30".to_owned()),
        ]);
        params.insert("Secret".to_owned(), "s3cr3t".to_owned());
        Resolver::new(t, params, "eu-west-1")
            .with_secrets(BTreeMap::from([("Key".to_owned(), "k3y".to_owned())]))
    }

    fn eval(r: &Resolver, yaml: &str) -> Result<String> {
        r.string(&serde_norway::from_str(yaml).unwrap())
    }

    #[test]
    fn refs_resolve_to_parameters_names_and_arns() {
        let t = Template::parse(TEMPLATE).unwrap();
        let r = resolver(&t);
        assert_eq!(eval(&r, "!Ref Level").unwrap(), "debug");
        assert_eq!(eval(&r, "!Ref Days").unwrap(), "30");
        assert_eq!(eval(&r, "!Ref Secret").unwrap(), "s3cr3t");
        assert_eq!(eval(&r, "!Ref Users").unwrap(), "Users");
        assert_eq!(eval(&r, "{Ref: Users}").unwrap(), "Users");
        assert_eq!(eval(&r, "!Ref Named").unwrap(), "inferloop-named");
        // A bucket without BucketName: lower-case, as S3 requires.
        assert_eq!(eval(&r, "!Ref Models").unwrap(), "models");
        assert_eq!(
            eval(&r, "!Ref Alerts").unwrap(),
            "arn:aws:sns:eu-west-1:123456789012:Alerts"
        );
        assert_eq!(eval(&r, "!Ref AWS::Region").unwrap(), "eu-west-1");
    }

    #[test]
    fn getatt_sub_and_join() {
        let t = Template::parse(TEMPLATE).unwrap();
        let r = resolver(&t);
        let arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/Users";
        assert_eq!(eval(&r, "!GetAtt Users.Arn").unwrap(), arn);
        assert_eq!(eval(&r, "{'Fn::GetAtt': [Users, Arn]}").unwrap(), arn);
        assert_eq!(
            eval(&r, "!Sub '${Users}/${Users.Arn}/${!Literal}/${Extra}'")
                .unwrap_err()
                .to_string(),
            "!Ref Extra: no such parameter or resource"
        );
        assert_eq!(
            eval(&r, "!Sub ['${Users}:${X}', {X: !Ref Level}]").unwrap(),
            "Users:debug"
        );
        assert_eq!(
            eval(&r, "!Sub '${Users}/${!Literal}'").unwrap(),
            "Users/${Literal}"
        );
        assert_eq!(eval(&r, "!Join ['-', [a, !Ref Level]]").unwrap(), "a-debug");
    }

    #[test]
    fn secrets_resolve_through_dynamic_references() {
        let t = Template::parse(TEMPLATE).unwrap();
        let r = resolver(&t);
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:Key";
        assert_eq!(eval(&r, "!Ref Key").unwrap(), arn);
        assert_eq!(
            eval(&r, "!Sub '{{resolve:secretsmanager:${Key}:SecretString}}'").unwrap(),
            "k3y"
        );
        assert_eq!(
            eval(
                &r,
                "'x-{{resolve:secretsmanager:Key}}-{{resolve:secretsmanager:Key::::}}'"
            )
            .unwrap(),
            "x-k3y-k3y"
        );
        assert_eq!(
            eval(&r, "'{{resolve:secretsmanager:fixed-secret:SecretString}}'").unwrap(),
            "debug-value"
        );
        for unresolvable in [
            "'{{resolve:ssm:/a/b}}'",
            "'{{resolve:secretsmanager:Key:SecretString:password}}'",
            "'{{resolve:secretsmanager:Other}}'",
            "'{{resolve:secretsmanager:Key'",
        ] {
            assert!(eval(&r, unresolvable).is_err(), "{unresolvable}");
        }
        let without_values = Resolver::new(&t, BTreeMap::new(), "eu-west-1");
        assert!(eval(&without_values, "'{{resolve:secretsmanager:Key}}'").is_err());
    }

    #[test]
    fn missing_values_are_errors_not_guesses() {
        let t = Template::parse(TEMPLATE).unwrap();
        let r = resolver(&t);
        assert!(
            eval(&r, "!Ref Required")
                .unwrap_err()
                .to_string()
                .contains("no Default")
        );
        assert!(eval(&r, "!Ref Nothing").is_err());
        assert!(eval(&r, "!GetAtt Users.StreamArn").is_err());
        assert!(eval(&r, "!Select [0, [a]]").is_err());
    }
}
