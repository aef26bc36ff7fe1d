//! template.yaml read as data: it is the one list of the service's resources, so the
//! local stack is derived from it rather than kept beside it.

use anyhow::{Context, Result, bail};
use serde_norway::{Mapping, Value};
use std::collections::BTreeMap;
use std::path::Path;

pub const TABLE: &str = "AWS::DynamoDB::Table";
pub const BUCKET: &str = "AWS::S3::Bucket";
pub const TOPIC: &str = "AWS::SNS::Topic";
pub const SERVERLESS_FUNCTION: &str = "AWS::Serverless::Function";
pub const LAMBDA_FUNCTION: &str = "AWS::Lambda::Function";
pub const SECRET: &str = "AWS::SecretsManager::Secret";
pub const QUEUE: &str = "AWS::SQS::Queue";
pub const EMAIL_IDENTITY: &str = "AWS::SES::EmailIdentity";

pub struct Template {
    root: Mapping,
}

#[derive(Clone, Copy)]
pub struct Resource<'t> {
    pub logical_id: &'t str,
    pub kind: &'t str,
    pub properties: &'t Mapping,
    /// The resource's `Metadata` (a function's build properties: its binary).
    pub metadata: &'t Mapping,
}

impl<'t> Resource<'t> {
    pub fn property(&self, name: &str) -> Option<&'t Value> {
        self.properties.get(name)
    }
}

pub struct Parameter {
    pub default: Option<String>,
    pub no_echo: bool,
}

impl Template {
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self> {
        match serde_norway::from_str(text)? {
            Value::Mapping(root) => Ok(Self { root }),
            _ => bail!("the template is not a YAML mapping"),
        }
    }

    /// Resources in document order; those without a Type are malformed and skipped.
    pub fn resources(&self) -> impl Iterator<Item = Resource<'_>> {
        static EMPTY: std::sync::LazyLock<Mapping> = std::sync::LazyLock::new(Mapping::new);
        self.section("Resources").into_iter().flat_map(|resources| {
            resources.iter().filter_map(|(id, body)| {
                let logical_id = id.as_str()?;
                let kind = body.get("Type")?.as_str()?;
                let section = |name: &str| match body.get(name) {
                    Some(Value::Mapping(m)) => m,
                    _ => &EMPTY,
                };
                Some(Resource {
                    logical_id,
                    kind,
                    properties: section("Properties"),
                    metadata: section("Metadata"),
                })
            })
        })
    }

    /// Every serverless function's events of `event_type` (`SNS`, `SQS`): the function,
    /// its binary (`Metadata.BuildProperties.Binary`) and the event's `Properties`.
    pub fn function_events<'a>(
        &'a self,
        event_type: &str,
    ) -> Result<Vec<(Resource<'a>, &'a str, Option<&'a Value>)>> {
        let mut out = Vec::new();
        for function in self.resources().filter(|r| r.kind == SERVERLESS_FUNCTION) {
            let Some(events) = function.property("Events").and_then(|e| e.as_mapping()) else {
                continue;
            };
            let binary = function
                .metadata
                .get("BuildProperties")
                .and_then(|b| b.get("Binary"))
                .and_then(|b| b.as_str())
                .with_context(|| {
                    format!("{}: Metadata.BuildProperties.Binary", function.logical_id)
                })?;
            for (_, event) in events {
                if event.get("Type").and_then(|t| t.as_str()) == Some(event_type) {
                    out.push((function, binary, event.get("Properties")));
                }
            }
        }
        Ok(out)
    }

    #[cfg(test)]
    pub fn resources_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = Resource<'a>> {
        self.resources().filter(move |r| r.kind == kind)
    }

    pub fn resource(&self, logical_id: &str) -> Option<Resource<'_>> {
        self.resources().find(|r| r.logical_id == logical_id)
    }

    pub fn parameters(&self) -> Result<BTreeMap<String, Parameter>> {
        let mut out = BTreeMap::new();
        for (name, body) in self.section("Parameters").into_iter().flatten() {
            let name = name.as_str().context("a parameter name is not a string")?;
            let default = body
                .get("Default")
                .map(|d| scalar(d).with_context(|| format!("Default of parameter {name}")))
                .transpose()?;
            let no_echo = match body.get("NoEcho") {
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
                _ => false,
            };
            out.insert(name.to_owned(), Parameter { default, no_echo });
        }
        Ok(out)
    }

    /// Globals.Function.Environment.Variables: SAM merges it into every
    /// AWS::Serverless::Function's own variables.
    pub fn global_function_variables(&self) -> Option<&Mapping> {
        self.section("Globals")?
            .get("Function")?
            .get("Environment")?
            .get("Variables")?
            .as_mapping()
    }

    fn section(&self, name: &str) -> Option<&Mapping> {
        self.root.get(name)?.as_mapping()
    }
}

/// A plain YAML scalar as CloudFormation sees it: every parameter and environment
/// value ends up a string.
pub fn scalar(value: &Value) -> Result<String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => bail!("expected a scalar, found {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_form_intrinsics_parse_as_tagged_values() {
        let t = Template::parse(
            "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      A: !Ref X\n      B: !GetAtt T.Arn\n      C: !Sub '${X}-y'\n",
        )
        .unwrap();
        let f = t.resource("F").unwrap();
        for key in ["A", "B", "C"] {
            assert!(
                matches!(f.property(key), Some(Value::Tagged(_))),
                "{key} should be a tagged value"
            );
        }
    }

    #[test]
    fn the_real_template_parses() {
        let t = Template::load(&crate::paths::root().join("template.yaml")).unwrap();
        assert!(t.resources_of(TABLE).count() >= 2);
        let params = t.parameters().unwrap();
        assert!(params["JwtSigningKey"].no_echo && params["JwtSigningKey"].default.is_none());
        assert_eq!(params["AuditRetentionDays"].default.as_deref(), Some("400"));
        assert!(t.global_function_variables().is_some());
    }
}
