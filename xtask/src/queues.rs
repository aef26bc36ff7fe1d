//! What stands locally for Lambda's SQS event source mapping (DESIGN.md §11): for each
//! function with an `SQS` event in template.yaml, a task polls that queue in moto and
//! invokes the function through watch with the event Lambda would send — a batch of
//! records, `eventSource: aws:sqs`. A record the function does not report in
//! `batchItemFailures` is deleted; the others, and a whole batch whose invocation
//! failed, are left for the queue to deliver again after its visibility timeout (and
//! moto's redrive policy to move to the dead-letter queue after `maxReceiveCount`), as
//! in AWS.
//!
//! A small loop over the SQS client written here: nothing on crates.io stands in for an
//! event source mapping.

use crate::intrinsics::Resolver;
use crate::template::Template;
use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::time::Duration;

/// Short polls, this far apart while the queue is empty. Not long polling: the local
/// moto answers one request at a time (xtask/moto_server_serial.py), so a
/// ReceiveMessage that waits holds every other call to the stack for that long (a full
/// test run went from minutes to hours).
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// A run of a function can take minutes (a retrain's epochs under the debug build).
const INVOKE_TIMEOUT: Duration = Duration::from_secs(1_800);

/// A function fed by a queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    /// The function's binary, as watch knows it.
    pub function: String,
    /// The queue's ARN, as the template resolves it locally.
    pub queue_arn: String,
    pub batch_size: i32,
}

/// Every function's SQS events in the template.
pub fn mappings(template: &Template, resolver: &Resolver) -> Result<Vec<Mapping>> {
    let mut out = Vec::new();
    for (function, binary, properties) in template.function_events("SQS")? {
        let queue = properties
            .and_then(|p| p.get("Queue"))
            .with_context(|| format!("{}: an SQS event without a Queue", function.logical_id))?;
        let batch_size = properties
            .and_then(|p| p.get("BatchSize"))
            .and_then(|b| b.as_i64())
            .unwrap_or(10) as i32;
        out.push(Mapping {
            function: binary.to_owned(),
            queue_arn: resolver.string(queue)?,
            batch_size,
        });
    }
    Ok(out)
}

/// Polls each mapping's queue until the runtime stops, invoking through `invoke_api`.
pub async fn spawn(
    sqs: aws_sdk_sqs::Client,
    mappings: Vec<Mapping>,
    invoke_api: String,
) -> Result<()> {
    let http = reqwest::Client::new();
    for mapping in mappings {
        let name = mapping
            .queue_arn
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_owned();
        let url = sqs
            .get_queue_url()
            .queue_name(&name)
            .send()
            .await
            .with_context(|| format!("GetQueueUrl {name}"))?
            .queue_url
            .context("no queue URL")?;
        println!("  {:<28} SQS ← {name}", mapping.function);
        let (sqs, http, invoke_api) = (sqs.clone(), http.clone(), invoke_api.clone());
        tokio::spawn(async move {
            loop {
                if let Err(why) = poll_once(&sqs, &http, &invoke_api, &mapping, &url).await {
                    eprintln!("queue bridge: {}: {why:#}", mapping.function);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        });
    }
    Ok(())
}

async fn poll_once(
    sqs: &aws_sdk_sqs::Client,
    http: &reqwest::Client,
    invoke_api: &str,
    mapping: &Mapping,
    url: &str,
) -> Result<()> {
    let received = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(mapping.batch_size.clamp(1, 10))
        .wait_time_seconds(0)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .send()
        .await
        .context("ReceiveMessage")?;
    let messages = received.messages();
    if messages.is_empty() {
        tokio::time::sleep(POLL_INTERVAL).await;
        return Ok(());
    }
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": m.attributes().map(|a| {
                    a.iter().map(|(k, v)| (k.as_str().to_owned(), json!(v))).collect::<serde_json::Map<_, _>>()
                }),
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": mapping.queue_arn,
                "awsRegion": mapping.queue_arn.split(':').nth(3).unwrap_or_default(),
            })
        })
        .collect();
    let event = json!({"Records": records});
    let response = http
        .post(format!(
            "{invoke_api}/2015-03-31/functions/{}/invocations",
            mapping.function
        ))
        .json(&event)
        .timeout(INVOKE_TIMEOUT)
        .send()
        .await
        .context("no answer from watch")?;
    let failed_invocation =
        !response.status().is_success() || response.headers().contains_key("x-amz-function-error");
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if failed_invocation || answer.get("errorMessage").is_some() {
        // The whole batch goes back to the queue, as Lambda's mapping does.
        anyhow::bail!("the invocation failed: {answer}");
    }
    let failures: Vec<&str> = answer["batchItemFailures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["itemIdentifier"].as_str())
        .collect();
    for message in messages {
        if failures.contains(&message.message_id().unwrap_or_default()) {
            continue;
        }
        if let Some(handle) = message.receipt_handle() {
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(handle)
                .send()
                .await
                .context("DeleteMessage")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retrain_is_fed_by_its_queue_one_message_at_a_time() {
        let root = crate::paths::root();
        let template = Template::load(&root.join("template.yaml")).unwrap();
        let resolver = Resolver::new(&template, Default::default(), "us-east-1");
        let all = mappings(&template, &resolver).unwrap();
        let retrain = all.iter().find(|m| m.function == "retrain").unwrap();
        assert!(
            retrain.queue_arn.ends_with(":RetrainQueue"),
            "{}",
            retrain.queue_arn
        );
        assert_eq!(retrain.batch_size, 1);
    }
}
