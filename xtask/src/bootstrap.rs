//! Creates template.yaml's tables, buckets and topics in the local emulator.
//! Generic over the template on purpose: adding a table to the template is all it
//! takes to have it locally. Existing resources are left alone, so it can run on
//! every start.

use crate::function_env::local_resolver;
use crate::intrinsics::Resolver;
use crate::template::{BUCKET, EMAIL_IDENTITY, QUEUE, Resource, SECRET, TABLE, TOPIC, Template};
use crate::{local_aws, paths};
use anyhow::{Context, Result, bail};
use aws_sdk_dynamodb::operation::create_table::builders::CreateTableInputBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, PointInTimeRecoverySpecification, Projection, ProjectionType,
    ProvisionedThroughput, ScalarAttributeType, SseSpecification, SseType, StreamSpecification,
    StreamViewType, TableStatus, TimeToLiveSpecification,
};
use serde_norway::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// Creates the resources; `parameters` set template parameters for this stack (the
/// Slack webhook the local stand-in answers at, say).
pub async fn run(
    root: &Path,
    endpoint: &str,
    region: &str,
    parameters: &[(&str, String)],
) -> Result<()> {
    let template = Template::load(&paths::template(root))?;
    let config = local_aws::sdk_config(endpoint, region).await;
    let mut resolver = local_resolver(root, &template, region)?;
    for (name, value) in parameters {
        resolver = resolver.with_parameter(name, value.clone());
    }
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    // moto at 127.0.0.1 has no per-bucket host names.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let sns = aws_sdk_sns::Client::new(&config);
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let ses = aws_sdk_sesv2::Client::new(&config);

    println!("bootstrap: creating template.yaml's resources at {endpoint}");
    for resource in template.resources() {
        let outcome = match resource.kind {
            TABLE => table(&dynamodb, &resolver, &resource).await,
            BUCKET => bucket(&s3, &resolver, &resource, region).await,
            TOPIC => topic(&sns, &resolver, &resource).await,
            SECRET => secret(&secrets, &resolver, &resource).await,
            QUEUE => queue(&sqs, &resolver, &resource).await,
            EMAIL_IDENTITY => email_identity(&ses, &resolver, &resource).await,
            _ => continue,
        };
        let outcome =
            outcome.with_context(|| format!("{} ({})", resource.logical_id, resource.kind))?;
        println!(
            "  {:<28} {:<22} {outcome}",
            resource.logical_id, resource.kind
        );
    }
    Ok(())
}

/// A table's CreateTable request plus what CreateTable cannot set.
pub struct TablePlan {
    pub create: CreateTableInputBuilder,
    pub ttl_attribute: Option<String>,
    pub point_in_time_recovery: bool,
}

pub fn plan_table(resolver: &Resolver, resource: &Resource) -> Result<TablePlan> {
    let props = resolver.value(&Value::Mapping(resource.properties.clone()))?;
    let name = resolver.physical_name(resource)?;

    let billing = match props.get("BillingMode").and_then(Value::as_str) {
        Some(mode) => parse_enum::<BillingMode>(mode, BillingMode::values(), "BillingMode")?,
        // CloudFormation's default, as for a table.
        None => BillingMode::Provisioned,
    };
    let provisioned = billing == BillingMode::Provisioned;

    let mut create = CreateTableInputBuilder::default()
        .table_name(&name)
        .billing_mode(billing)
        .set_key_schema(Some(key_schema(props.get("KeySchema"))?))
        .set_attribute_definitions(Some(attribute_definitions(
            props.get("AttributeDefinitions"),
        )?));
    if provisioned {
        create = create.provisioned_throughput(throughput(props.get("ProvisionedThroughput"))?);
    }
    for index in list(props.get("GlobalSecondaryIndexes"))? {
        let mut gsi = GlobalSecondaryIndex::builder()
            .index_name(text(index.get("IndexName"), "IndexName")?)
            .set_key_schema(Some(key_schema(index.get("KeySchema"))?))
            .projection(projection(index.get("Projection"))?);
        if provisioned {
            gsi = gsi.provisioned_throughput(throughput(index.get("ProvisionedThroughput"))?);
        }
        create = create.global_secondary_indexes(gsi.build()?);
    }
    for index in list(props.get("LocalSecondaryIndexes"))? {
        let lsi = LocalSecondaryIndex::builder()
            .index_name(text(index.get("IndexName"), "IndexName")?)
            .set_key_schema(Some(key_schema(index.get("KeySchema"))?))
            .projection(projection(index.get("Projection"))?)
            .build()?;
        create = create.local_secondary_indexes(lsi);
    }
    if let Some(stream) = props.get("StreamSpecification") {
        let view = text(stream.get("StreamViewType"), "StreamViewType")?;
        create = create.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(parse_enum::<StreamViewType>(
                    &view,
                    StreamViewType::values(),
                    "StreamViewType",
                )?)
                .build()?,
        );
    }
    if let Some(sse) = props.get("SSESpecification") {
        let mut spec = SseSpecification::builder().enabled(flag(sse.get("SSEEnabled")));
        if let Some(kind) = sse.get("SSEType").and_then(Value::as_str) {
            spec = spec.sse_type(parse_enum::<SseType>(kind, SseType::values(), "SSEType")?);
        }
        if let Some(key) = sse.get("KMSMasterKeyId").and_then(Value::as_str) {
            spec = spec.kms_master_key_id(key);
        }
        create = create.sse_specification(spec.build());
    }

    let ttl = props.get("TimeToLiveSpecification");
    let ttl_attribute = match ttl {
        Some(spec) if flag(spec.get("Enabled")) => Some(text(
            spec.get("AttributeName"),
            "TimeToLiveSpecification.AttributeName",
        )?),
        _ => None,
    };
    let point_in_time_recovery = flag(
        props
            .get("PointInTimeRecoverySpecification")
            .and_then(|p| p.get("PointInTimeRecoveryEnabled")),
    );
    Ok(TablePlan {
        create,
        ttl_attribute,
        point_in_time_recovery,
    })
}

async fn table(
    client: &aws_sdk_dynamodb::Client,
    resolver: &Resolver<'_>,
    resource: &Resource<'_>,
) -> Result<String> {
    let plan = plan_table(resolver, resource)?;
    let name = plan.create.get_table_name().clone().unwrap_or_default();
    match client.describe_table().table_name(&name).send().await {
        Ok(_) => return Ok("exists, left alone".into()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) => {}
        Err(e) => return Err(e).context("DescribeTable"),
    }
    plan.create.send_with(client).await.context("CreateTable")?;
    wait_until_active(client, &name).await?;

    let mut notes = vec!["created".to_owned()];
    if let Some(attribute) = plan.ttl_attribute {
        let spec = TimeToLiveSpecification::builder()
            .attribute_name(&attribute)
            .enabled(true)
            .build()?;
        let outcome = client
            .update_time_to_live()
            .table_name(&name)
            .time_to_live_specification(spec)
            .send()
            .await;
        notes.push(match outcome {
            Ok(_) => format!("TTL on {attribute}"),
            Err(e) => format!("TTL skipped (the emulator said: {})", error_text(&e)),
        });
    }
    if plan.point_in_time_recovery {
        let spec = PointInTimeRecoverySpecification::builder()
            .point_in_time_recovery_enabled(true)
            .build()?;
        let outcome = client
            .update_continuous_backups()
            .table_name(&name)
            .point_in_time_recovery_specification(spec)
            .send()
            .await;
        notes.push(match outcome {
            Ok(_) => "PITR on".to_owned(),
            Err(e) => format!("PITR skipped (the emulator said: {})", error_text(&e)),
        });
    }
    Ok(notes.join(", "))
}

/// TTL and PITR updates are refused while a table is still CREATING.
async fn wait_until_active(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = client.describe_table().table_name(name).send().await?;
        if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("table {name} is not ACTIVE after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn bucket(
    client: &aws_sdk_s3::Client,
    resolver: &Resolver<'_>,
    resource: &Resource<'_>,
    region: &str,
) -> Result<String> {
    use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
    let name = resolver.physical_name(resource)?;
    match client.head_bucket().bucket(&name).send().await {
        Ok(_) => return Ok("exists, left alone".into()),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => {}
        Err(e) => return Err(e).context("HeadBucket"),
    }
    let mut create = client.create_bucket().bucket(&name);
    // us-east-1 is the one region that rejects an explicit location constraint.
    if region != "us-east-1" {
        create = create.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build(),
        );
    }
    create.send().await.context("CreateBucket")?;
    Ok("created".into())
}

async fn topic(
    client: &aws_sdk_sns::Client,
    resolver: &Resolver<'_>,
    resource: &Resource<'_>,
) -> Result<String> {
    let name = resolver.physical_name(resource)?;
    // What `!Ref` gives the functions, so both sides agree on the ARN.
    let arn = resolver.reference(resource.logical_id)?;
    match client.get_topic_attributes().topic_arn(&arn).send().await {
        Ok(_) => return Ok("exists, left alone".into()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_not_found_exception()) => {}
        Err(e) => return Err(e).context("GetTopicAttributes"),
    }
    let mut create = client.create_topic().name(&name);
    if flag(resource.property("FifoTopic")) {
        create = create.attributes("FifoTopic", "true");
    }
    let created = create.send().await.context("CreateTopic")?;
    Ok(format!("created {}", created.topic_arn().unwrap_or(&arn)))
}

/// A queue (SQS answers an existing one with its URL, so this can run every start).
async fn queue(
    client: &aws_sdk_sqs::Client,
    resolver: &Resolver<'_>,
    resource: &Resource<'_>,
) -> Result<String> {
    let name = resolver.physical_name(resource)?;
    let created = client
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .context("CreateQueue")?;
    let url = created.queue_url().unwrap_or(&name).to_owned();
    // The template's attributes, set on every start (CreateQueue with other attributes
    // than an existing queue's is refused): a dead-letter queue's redrive above all.
    use aws_sdk_sqs::types::QueueAttributeName;
    let mut attributes = Vec::new();
    for (property, attribute) in [
        ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
        (
            "MessageRetentionPeriod",
            QueueAttributeName::MessageRetentionPeriod,
        ),
    ] {
        if let Some(value) = resource.property(property) {
            attributes.push((attribute, resolver.string(value)?));
        }
    }
    if let Some(redrive) = resource.property("RedrivePolicy") {
        let resolved = serde_json::to_value(resolver.value(redrive)?)?;
        attributes.push((QueueAttributeName::RedrivePolicy, resolved.to_string()));
    }
    if !attributes.is_empty() {
        let mut request = client.set_queue_attributes().queue_url(&url);
        for (attribute, value) in attributes {
            request = request.attributes(attribute, value);
        }
        request.send().await.context("SetQueueAttributes")?;
    }
    Ok(format!("ready {url}"))
}

/// An SES identity, so mail from it is accepted (the emulator refuses unverified
/// senders, as SES's sandbox does).
async fn email_identity(
    client: &aws_sdk_sesv2::Client,
    resolver: &Resolver<'_>,
    resource: &Resource<'_>,
) -> Result<String> {
    let identity = resolver.string(
        resource
            .property("EmailIdentity")
            .context("EmailIdentity is missing")?,
    )?;
    match client
        .create_email_identity()
        .email_identity(&identity)
        .send()
        .await
    {
        Ok(_) => Ok(format!("created {identity}")),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_already_exists_exception()) =>
        {
            Ok("exists, left alone".into())
        }
        Err(e) => Err(e).context("CreateEmailIdentity"),
    }
}

/// A secret with its local value (the generated one, or its `SecretString`), so the
/// functions read their keys from Secrets Manager locally as in AWS. An existing one
/// gets the current value: the local values live in `.inferloop/dev.env`.
async fn secret(
    client: &aws_sdk_secretsmanager::Client,
    resolver: &Resolver<'_>,
    resource: &Resource<'_>,
) -> Result<String> {
    let name = resolver.physical_name(resource)?;
    let value = resolver.secret_value(resource)?;
    match client.describe_secret().secret_id(&name).send().await {
        Ok(_) => {
            client
                .put_secret_value()
                .secret_id(&name)
                .secret_string(&value)
                .send()
                .await
                .context("PutSecretValue")?;
            Ok("exists, value set".into())
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            client
                .create_secret()
                .name(&name)
                .secret_string(&value)
                .send()
                .await
                .context("CreateSecret")?;
            Ok(format!("created {name}"))
        }
        Err(e) => Err(e).context("DescribeSecret"),
    }
}

fn key_schema(value: Option<&Value>) -> Result<Vec<KeySchemaElement>> {
    let elements = list(value)?;
    if elements.is_empty() {
        bail!("KeySchema is missing");
    }
    elements
        .into_iter()
        .map(|e| {
            let key_type = text(e.get("KeyType"), "KeyType")?;
            Ok(KeySchemaElement::builder()
                .attribute_name(text(e.get("AttributeName"), "AttributeName")?)
                .key_type(parse_enum::<KeyType>(
                    &key_type,
                    KeyType::values(),
                    "KeyType",
                )?)
                .build()?)
        })
        .collect()
}

fn attribute_definitions(value: Option<&Value>) -> Result<Vec<AttributeDefinition>> {
    list(value)?
        .into_iter()
        .map(|d| {
            let kind = text(d.get("AttributeType"), "AttributeType")?;
            Ok(AttributeDefinition::builder()
                .attribute_name(text(d.get("AttributeName"), "AttributeName")?)
                .attribute_type(parse_enum::<ScalarAttributeType>(
                    &kind,
                    ScalarAttributeType::values(),
                    "AttributeType",
                )?)
                .build()?)
        })
        .collect()
}

fn projection(value: Option<&Value>) -> Result<Projection> {
    let Some(value) = value else {
        bail!("Projection is missing");
    };
    let mut projection = Projection::builder();
    if let Some(kind) = value.get("ProjectionType").and_then(Value::as_str) {
        projection = projection.projection_type(parse_enum::<ProjectionType>(
            kind,
            ProjectionType::values(),
            "ProjectionType",
        )?);
    }
    for attribute in list(value.get("NonKeyAttributes"))? {
        projection = projection.non_key_attributes(text(Some(attribute), "NonKeyAttributes")?);
    }
    Ok(projection.build())
}

/// Provisioned capacity only matters to the emulator as a required field.
fn throughput(value: Option<&Value>) -> Result<ProvisionedThroughput> {
    let units = |field: &str| -> Result<i64> {
        match value.and_then(|v| v.get(field)) {
            None => Ok(5),
            Some(Value::Number(n)) => n
                .as_i64()
                .with_context(|| format!("{field} is not an integer")),
            Some(Value::String(s)) => s
                .parse()
                .with_context(|| format!("{field} is not an integer")),
            Some(other) => bail!("{field}: unexpected {other:?}"),
        }
    };
    Ok(ProvisionedThroughput::builder()
        .read_capacity_units(units("ReadCapacityUnits")?)
        .write_capacity_units(units("WriteCapacityUnits")?)
        .build()?)
}

fn list(value: Option<&Value>) -> Result<Vec<&Value>> {
    match value {
        None => Ok(Vec::new()),
        Some(Value::Sequence(items)) => Ok(items.iter().collect()),
        Some(other) => bail!("expected a list, found {other:?}"),
    }
}

fn text(value: Option<&Value>, what: &str) -> Result<String> {
    match value {
        Some(v) => crate::template::scalar(v).with_context(|| what.to_owned()),
        None => bail!("{what} is missing"),
    }
}

fn flag(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// The SDK's enums accept any string (as `Unknown`); a typo in the template
/// should fail here, not as a confusing emulator error.
fn parse_enum<T: for<'a> From<&'a str>>(value: &str, allowed: &[&str], what: &str) -> Result<T> {
    if !allowed.contains(&value) {
        bail!("{what} {value:?} is not one of {allowed:?}");
    }
    Ok(T::from(value))
}

fn error_text<E: std::error::Error>(error: &E) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn keys(plan: &TablePlan) -> Vec<(String, String)> {
        plan.create
            .get_key_schema()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|k| {
                (
                    k.attribute_name().to_owned(),
                    k.key_type().as_str().to_owned(),
                )
            })
            .collect()
    }

    fn attributes(plan: &TablePlan) -> Vec<(String, String)> {
        plan.create
            .get_attribute_definitions()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|a| {
                (
                    a.attribute_name().to_owned(),
                    a.attribute_type().as_str().to_owned(),
                )
            })
            .collect()
    }

    fn pairs(value: Option<&Value>, a: &str, b: &str) -> Vec<(String, String)> {
        list(value)
            .unwrap()
            .into_iter()
            .map(|e| (text(e.get(a), a).unwrap(), text(e.get(b), b).unwrap()))
            .collect()
    }

    #[test]
    fn every_table_in_the_real_template_becomes_a_matching_create_table() {
        let template = Template::load(&paths::template(&paths::root())).unwrap();
        let resolver = Resolver::new(&template, BTreeMap::new(), "us-east-1");
        let mut seen = 0;
        for table in template.resources_of(TABLE) {
            let plan = plan_table(&resolver, &table).unwrap();
            assert_eq!(
                plan.create.get_table_name().as_deref(),
                Some(table.logical_id),
                "the local name is the logical id"
            );
            assert_eq!(
                keys(&plan),
                pairs(table.property("KeySchema"), "AttributeName", "KeyType")
            );
            assert_eq!(
                attributes(&plan),
                pairs(
                    table.property("AttributeDefinitions"),
                    "AttributeName",
                    "AttributeType"
                )
            );
            plan.create
                .clone()
                .build()
                .expect("a complete CreateTable input");
            seen += 1;
        }
        assert_eq!(seen, template.resources_of(TABLE).count());

        let users = plan_table(&resolver, &template.resource("UsersTable").unwrap()).unwrap();
        assert_eq!(keys(&users), [("username".into(), "HASH".into())]);
        assert_eq!(
            users.create.get_billing_mode(),
            &Some(BillingMode::PayPerRequest)
        );
        assert!(users.point_in_time_recovery);
        assert_eq!(
            users
                .create
                .get_sse_specification()
                .as_ref()
                .and_then(|s| s.enabled()),
            Some(true)
        );

        let audit = plan_table(&resolver, &template.resource("AuditTable").unwrap()).unwrap();
        assert_eq!(
            keys(&audit),
            [
                ("chain_id".into(), "HASH".into()),
                ("seq".into(), "RANGE".into())
            ]
        );
        assert_eq!(
            attributes(&audit),
            [
                ("chain_id".into(), "S".into()),
                ("seq".into(), "N".into()),
                ("actor".into(), "S".into()),
                ("day".into(), "S".into()),
                ("ts".into(), "S".into())
            ]
        );
        let indexes: Vec<&str> = audit
            .create
            .get_global_secondary_indexes()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|i| i.index_name())
            .collect();
        assert_eq!(indexes, ["by_actor", "by_day"]);
        assert_eq!(audit.ttl_attribute.as_deref(), Some("expires_at"));
        assert!(audit.point_in_time_recovery);
    }

    #[test]
    fn indexes_streams_and_provisioned_capacity() {
        let template = Template::parse(
            r#"
Resources:
  Predictions:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-predictions"
      AttributeDefinitions:
        - {AttributeName: prediction_id, AttributeType: S}
        - {AttributeName: hour, AttributeType: S}
        - {AttributeName: ts, AttributeType: N}
      KeySchema:
        - {AttributeName: prediction_id, KeyType: HASH}
        - {AttributeName: ts, KeyType: RANGE}
      ProvisionedThroughput: {ReadCapacityUnits: 2, WriteCapacityUnits: 3}
      GlobalSecondaryIndexes:
        - IndexName: by-hour
          KeySchema: [{AttributeName: hour, KeyType: HASH}]
          Projection: {ProjectionType: INCLUDE, NonKeyAttributes: [digit]}
          ProvisionedThroughput: {ReadCapacityUnits: 1, WriteCapacityUnits: 1}
      LocalSecondaryIndexes:
        - IndexName: by-hour-local
          KeySchema:
            - {AttributeName: prediction_id, KeyType: HASH}
            - {AttributeName: hour, KeyType: RANGE}
          Projection: {ProjectionType: KEYS_ONLY}
      StreamSpecification: {StreamViewType: NEW_IMAGE}
  Broken:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{AttributeName: id, AttributeType: STRING}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
"#,
        )
        .unwrap();
        let resolver = Resolver::new(&template, BTreeMap::new(), "us-east-1");
        let plan = plan_table(&resolver, &template.resource("Predictions").unwrap()).unwrap();
        let input = plan.create.build().unwrap();
        assert_eq!(input.table_name(), Some("inferloop-predictions"));
        assert_eq!(input.billing_mode(), Some(&BillingMode::Provisioned));
        assert_eq!(
            input
                .provisioned_throughput()
                .unwrap()
                .write_capacity_units(),
            3
        );
        let gsi = &input.global_secondary_indexes()[0];
        assert_eq!(gsi.index_name(), "by-hour");
        assert_eq!(gsi.projection().unwrap().non_key_attributes(), ["digit"]);
        assert_eq!(input.local_secondary_indexes()[0].key_schema().len(), 2);
        assert_eq!(
            input.stream_specification().unwrap().stream_view_type(),
            Some(&StreamViewType::NewImage)
        );
        assert!(plan.ttl_attribute.is_none() && !plan.point_in_time_recovery);

        let broken = plan_table(&resolver, &template.resource("Broken").unwrap());
        assert!(broken.err().unwrap().to_string().contains("STRING"));
    }
}
