//! CloudWatch alarm notifications, as SNS delivers them to slack-alert (DESIGN.md §10):
//! the alarms (errors, predict's p99 latency, DLQ depth) publish to the same alerts topic
//! as the functions do, but their message is CloudWatch's JSON, not an [`Alert`].
//! [`to_alert`] turns one into an alert so that both reach people the same way.
//!
//! The message (the SNS `Message`, itself a JSON document) looks like:
//!
//! ```json
//! {"AlarmName": "inferloop-predict-errors", "AlarmDescription": null,
//!  "AWSAccountId": "123456789012", "NewStateValue": "ALARM",
//!  "NewStateReason": "Threshold Crossed: 1 datapoint [3.0 (01/12/26 18:00:00)] was greater than the threshold (0.0).",
//!  "StateChangeTime": "2026-12-01T18:00:00.000+0000", "Region": "EU (Ireland)",
//!  "AlarmArn": "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:inferloop-predict-errors",
//!  "OldStateValue": "OK",
//!  "Trigger": {"MetricName": "Errors", "Namespace": "AWS/Lambda", "StatisticType": "Statistic",
//!              "Statistic": "SUM", "Unit": null,
//!              "Dimensions": [{"value": "predict", "name": "FunctionName"}],
//!              "Period": 60, "EvaluationPeriods": 1,
//!              "ComparisonOperator": "GreaterThanThreshold", "Threshold": 0.0}}
//! ```
//!
//! A percentile alarm has `"StatisticType": "ExtendedStatistic", "ExtendedStatistic": "p99"`
//! instead of `Statistic`; a metric-math alarm has `Trigger.Metrics` (queries) instead of
//! one metric. Fields beyond `AlarmName` and `NewStateValue` are read when present and
//! of the expected type, and left out of the details otherwise: an alarm with an odd
//! field still reaches people.

use super::{Alert, Kind, Severity, State};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Where alarm alerts say they come from.
pub const SOURCE: &str = "cloudwatch";

/// Whether an SNS message is a CloudWatch alarm notification (and not an [`Alert`]).
pub fn is_alarm(message: &str) -> bool {
    serde_json::from_str::<Value>(message)
        .ok()
        .and_then(|value| {
            let map = value.as_object()?;
            Some(str_of(map, "AlarmName").is_some() && str_of(map, "NewStateValue").is_some())
        })
        .unwrap_or(false)
}

/// The alert a CloudWatch alarm notification stands for.
///
/// - `ALARM`: firing, critical; warning for a latency alarm (a name containing
///   "Duration", in any case: predict's p99 alarm), which is slow answers, not failed ones.
/// - `OK`: resolved, with the severity that alarm fires with, so that the resolved
///   message reads as the end of the firing one.
/// - `INSUFFICIENT_DATA`: firing, info: nothing is known to be wrong, but the alarm
///   cannot tell (a metric that stopped reporting is itself worth knowing).
///
/// One alarm is one alert: the id is a hash of the alarm's ARN, so an `ALARM` and the
/// `OK` after it are the same alert, which goes firing → resolved (→ firing again).
pub fn to_alert(message: &str) -> Result<Alert, String> {
    let value: Value = serde_json::from_str(message)
        .map_err(|e| format!("not a CloudWatch alarm notification: {e}"))?;
    let map = value
        .as_object()
        .ok_or("not a CloudWatch alarm notification: not a JSON object")?;
    let name = str_of(map, "AlarmName").ok_or("AlarmName missing or not a string")?;
    let new_state = str_of(map, "NewStateValue").ok_or("NewStateValue missing or not a string")?;
    let firing_severity = if name.to_ascii_lowercase().contains("duration") {
        Severity::Warning
    } else {
        Severity::Critical
    };
    let (state, severity) = match new_state {
        "ALARM" => (State::Firing, firing_severity),
        "OK" => (State::Resolved, firing_severity),
        "INSUFFICIENT_DATA" => (State::Firing, Severity::Info),
        other => return Err(format!("unknown NewStateValue {other:?}")),
    };
    let created_at = str_of(map, "StateChangeTime")
        .and_then(parse_state_change_time)
        .map(crate::time::format_timestamp)
        .unwrap_or_else(crate::time::now_rfc3339);
    Ok(Alert {
        alert_id: alert_id(str_of(map, "AlarmArn").unwrap_or(name)),
        kind: Kind::Alarm,
        severity,
        state,
        title: format!("{name}: {new_state}"),
        details: details(map),
        source: SOURCE.to_owned(),
        fingerprint: format!("alarm:{name}"),
        run_id: None,
        request_id: None,
        created_at,
        repeat: 0,
    })
}

/// `alarm-` and 128 bits of SHA-256 in hex: stable across notifications, and safe in the
/// alerts function's `/alerts/{alert_id}` path, which an ARN (with its `:`) is not.
fn alert_id(arn: &str) -> String {
    let digest = Sha256::digest(arn.as_bytes());
    format!("alarm-{}", hex::encode(&digest[..16]))
}

/// `StateChangeTime`: RFC 3339, or CloudWatch's own form, which writes the offset without
/// its colon (`2026-12-01T18:00:00.000+0000`).
fn parse_state_change_time(raw: &str) -> Option<OffsetDateTime> {
    if let Ok(at) = OffsetDateTime::parse(raw, &Rfc3339) {
        return Some(at);
    }
    let split = raw.len().checked_sub(5)?;
    let (local, offset) = (raw.get(..split)?, raw.get(split..)?);
    let bytes = offset.as_bytes();
    let is_offset = matches!(bytes[0], b'+' | b'-') && bytes[1..].iter().all(u8::is_ascii_digit);
    if !is_offset {
        return None;
    }
    let with_colon = format!("{local}{}:{}", &offset[..3], &offset[3..]);
    OffsetDateTime::parse(&with_colon, &Rfc3339).ok()
}

fn str_of<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key).and_then(Value::as_str)
}

/// A number as CloudWatch wrote it (`60`, `0.0`), or a string as it is.
fn number_of(map: &Map<String, Value>, key: &str) -> Option<String> {
    match map.get(key)? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn dimensions_of(value: Option<&Value>) -> Option<String> {
    let dimensions: Vec<String> = value?
        .as_array()?
        .iter()
        .filter_map(|d| {
            // CloudWatch writes `name`/`value` in alarm notifications and `Name`/`Value`
            // in metric-math queries.
            let name = d.get("name").or_else(|| d.get("Name"))?.as_str()?;
            let value = d.get("value").or_else(|| d.get("Value"))?.as_str()?;
            Some(format!("{name}={value}"))
        })
        .collect();
    (!dimensions.is_empty()).then(|| dimensions.join(", "))
}

fn comparison(operator: &str) -> &str {
    match operator {
        "GreaterThanThreshold" => ">",
        "GreaterThanOrEqualToThreshold" => "≥",
        "LessThanThreshold" => "<",
        "LessThanOrEqualToThreshold" => "≤",
        other => other,
    }
}

/// A metric-math query: its expression, or the metric it reads.
fn query_of(query: &Value) -> Option<String> {
    let id = query.get("Id").and_then(Value::as_str).unwrap_or("?");
    if let Some(expression) = query.get("Expression").and_then(Value::as_str) {
        return Some(format!("{id} = {expression}"));
    }
    let stat = query.get("MetricStat")?;
    let metric = stat.get("Metric")?;
    let namespace = metric
        .get("Namespace")
        .and_then(Value::as_str)
        .unwrap_or("?");
    let name = metric
        .get("MetricName")
        .and_then(Value::as_str)
        .unwrap_or("?");
    let statistic = stat.get("Stat").and_then(Value::as_str).unwrap_or("?");
    let mut text = format!("{id} = {namespace}/{name} {statistic}");
    if let Some(dimensions) = dimensions_of(metric.get("Dimensions")) {
        text.push_str(&format!(" ({dimensions})"));
    }
    Some(text)
}

/// In the order someone acting on the alarm reads them: why, what, where.
fn details(map: &Map<String, Value>) -> Vec<(String, String)> {
    let mut details: Vec<(String, String)> = Vec::new();
    let mut push = |name: &str, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            details.push((name.to_owned(), value));
        }
    };
    push("reason", str_of(map, "NewStateReason").map(str::to_owned));
    push(
        "description",
        str_of(map, "AlarmDescription").map(str::to_owned),
    );
    let empty = Map::new();
    let trigger = map
        .get("Trigger")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let metric = match (str_of(trigger, "Namespace"), str_of(trigger, "MetricName")) {
        (Some(namespace), Some(name)) => Some(format!("{namespace}/{name}")),
        (None, Some(name)) => Some(name.to_owned()),
        _ => None,
    };
    push("metric", metric);
    let queries = trigger
        .get("Metrics")
        .and_then(Value::as_array)
        .map(|q| q.iter().filter_map(query_of).collect::<Vec<_>>().join("\n"));
    push("metric math", queries);
    push(
        "statistic",
        str_of(trigger, "ExtendedStatistic")
            .or_else(|| str_of(trigger, "Statistic"))
            .map(str::to_owned),
    );
    push("dimensions", dimensions_of(trigger.get("Dimensions")));
    let threshold = number_of(trigger, "Threshold")
        .or_else(|| str_of(trigger, "ThresholdMetricId").map(|id| format!("the band {id}")));
    let condition = match (str_of(trigger, "ComparisonOperator"), threshold) {
        (Some(operator), Some(threshold)) => {
            Some(format!("{} {threshold} ({operator})", comparison(operator)))
        }
        (Some(operator), None) => Some(operator.to_owned()),
        (None, Some(threshold)) => Some(threshold),
        (None, None) => None,
    };
    push("threshold", condition);
    let evaluation = match (
        number_of(trigger, "Period"),
        number_of(trigger, "EvaluationPeriods"),
    ) {
        (Some(period), Some(periods)) => Some(format!("{period} s × {periods}")),
        (Some(period), None) => Some(format!("{period} s")),
        (None, Some(periods)) => Some(format!("× {periods}")),
        (None, None) => None,
    };
    push("period", evaluation);
    push("old state", str_of(map, "OldStateValue").map(str::to_owned));
    push("region", str_of(map, "Region").map(str::to_owned));
    push("account", str_of(map, "AWSAccountId").map(str::to_owned));
    push("alarm", str_of(map, "AlarmArn").map(str::to_owned));
    details
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented shape, as CloudWatch sends it for a Lambda errors alarm.
    const ALARM: &str = r#"{"AlarmName":"inferloop-predict-errors","AlarmDescription":"predict returned errors","AWSAccountId":"123456789012","NewStateValue":"ALARM","NewStateReason":"Threshold Crossed: 1 out of the last 1 datapoints [3.0 (01/12/26 18:00:00)] was greater than the threshold (0.0) (minimum 1 datapoint for OK -> ALARM transition).","StateChangeTime":"2026-12-01T18:00:00.123+0000","Region":"EU (Ireland)","AlarmArn":"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:inferloop-predict-errors","OldStateValue":"OK","Trigger":{"MetricName":"Errors","Namespace":"AWS/Lambda","StatisticType":"Statistic","Statistic":"SUM","Unit":null,"Dimensions":[{"value":"inferloop-predict","name":"FunctionName"}],"Period":60,"EvaluationPeriods":1,"ComparisonOperator":"GreaterThanThreshold","Threshold":0.0,"TreatMissingData":"- TreatMissingData: notBreaching","EvaluateLowSampleCountPercentile":""}}"#;

    const OK: &str = r#"{"AlarmName":"inferloop-predict-errors","AlarmDescription":null,"AWSAccountId":"123456789012","NewStateValue":"OK","NewStateReason":"Threshold Crossed: 1 out of the last 1 datapoints [0.0 (01/12/26 18:05:00)] was not greater than the threshold (0.0) (minimum 1 datapoint for ALARM -> OK transition).","StateChangeTime":"2026-12-01T18:05:00.456+0000","Region":"EU (Ireland)","AlarmArn":"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:inferloop-predict-errors","OldStateValue":"ALARM","Trigger":{"MetricName":"Errors","Namespace":"AWS/Lambda","StatisticType":"Statistic","Statistic":"SUM","Unit":null,"Dimensions":[{"value":"inferloop-predict","name":"FunctionName"}],"Period":60,"EvaluationPeriods":1,"ComparisonOperator":"GreaterThanThreshold","Threshold":0.0}}"#;

    const LATENCY: &str = r#"{"AlarmName":"inferloop-predict-p99-Duration","AlarmDescription":null,"AWSAccountId":"123456789012","NewStateValue":"ALARM","NewStateReason":"Threshold Crossed: 3 out of the last 3 datapoints were greater than the threshold (800.0).","StateChangeTime":"2026-12-01T18:00:00.000Z","Region":"EU (Ireland)","AlarmArn":"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:inferloop-predict-p99-Duration","OldStateValue":"OK","Trigger":{"MetricName":"Duration","Namespace":"AWS/Lambda","StatisticType":"ExtendedStatistic","ExtendedStatistic":"p99","Unit":null,"Dimensions":[{"value":"inferloop-predict","name":"FunctionName"}],"Period":300,"EvaluationPeriods":3,"ComparisonOperator":"GreaterThanOrEqualToThreshold","Threshold":800.0}}"#;

    fn detail<'a>(alert: &'a Alert, name: &str) -> &'a str {
        alert
            .details
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} in {:?}", alert.details))
    }

    #[test]
    fn an_alarm_fires_a_critical_alert() {
        assert!(is_alarm(ALARM));
        let alert = to_alert(ALARM).unwrap();
        assert_eq!(alert.kind, Kind::Alarm);
        assert_eq!(alert.state, State::Firing);
        assert_eq!(alert.severity, Severity::Critical);
        assert_eq!(alert.title, "inferloop-predict-errors: ALARM");
        assert_eq!(alert.fingerprint, "alarm:inferloop-predict-errors");
        assert_eq!(alert.source, SOURCE);
        assert_eq!(alert.created_at, "2026-12-01T18:00:00.123000Z");
        assert!(alert.alert_id.starts_with("alarm-") && alert.alert_id.len() == 38);
        assert!(detail(&alert, "reason").starts_with("Threshold Crossed"));
        assert_eq!(detail(&alert, "description"), "predict returned errors");
        assert_eq!(detail(&alert, "metric"), "AWS/Lambda/Errors");
        assert_eq!(detail(&alert, "statistic"), "SUM");
        assert_eq!(
            detail(&alert, "dimensions"),
            "FunctionName=inferloop-predict"
        );
        assert_eq!(detail(&alert, "threshold"), "> 0.0 (GreaterThanThreshold)");
        assert_eq!(detail(&alert, "period"), "60 s × 1");
        assert_eq!(detail(&alert, "old state"), "OK");
        assert_eq!(detail(&alert, "region"), "EU (Ireland)");
        assert_eq!(detail(&alert, "account"), "123456789012");
        assert_eq!(alert.details[0].0, "reason");
    }

    #[test]
    fn its_ok_resolves_the_same_alert() {
        let firing = to_alert(ALARM).unwrap();
        let resolved = to_alert(OK).unwrap();
        assert_eq!(resolved.alert_id, firing.alert_id);
        assert_eq!(resolved.fingerprint, firing.fingerprint);
        assert_eq!(resolved.state, State::Resolved);
        assert_eq!(resolved.severity, firing.severity);
        assert_eq!(resolved.title, "inferloop-predict-errors: OK");
        assert_eq!(resolved.created_at, "2026-12-01T18:05:00.456000Z");
        // A null description is left out, not shown as "null".
        assert!(!resolved.details.iter().any(|(n, _)| n == "description"));
        let other = ALARM.replace("alarm:inferloop-predict-errors", "alarm:other");
        assert_ne!(to_alert(&other).unwrap().alert_id, firing.alert_id);
    }

    #[test]
    fn latency_alarms_warn_and_percentiles_show() {
        let alert = to_alert(LATENCY).unwrap();
        assert_eq!(alert.severity, Severity::Warning);
        assert_eq!(detail(&alert, "statistic"), "p99");
        assert_eq!(
            detail(&alert, "threshold"),
            "≥ 800.0 (GreaterThanOrEqualToThreshold)"
        );
        assert_eq!(detail(&alert, "period"), "300 s × 3");
        assert_eq!(alert.created_at, "2026-12-01T18:00:00.000000Z");
        let ok =
            to_alert(&LATENCY.replace(r#""NewStateValue":"ALARM""#, r#""NewStateValue":"OK""#))
                .unwrap();
        assert_eq!(
            (ok.state, ok.severity),
            (State::Resolved, Severity::Warning)
        );
    }

    #[test]
    fn insufficient_data_is_information() {
        let message = ALARM.replace(
            r#""NewStateValue":"ALARM""#,
            r#""NewStateValue":"INSUFFICIENT_DATA""#,
        );
        let alert = to_alert(&message).unwrap();
        assert_eq!(
            (alert.state, alert.severity),
            (State::Firing, Severity::Info)
        );
        assert_eq!(alert.title, "inferloop-predict-errors: INSUFFICIENT_DATA");
    }

    #[test]
    fn metric_math_alarms_show_their_queries() {
        let message = r#"{"AlarmName":"dlq","NewStateValue":"ALARM","AlarmArn":"arn:x","StateChangeTime":"2026-12-01T19:00:00.000-0130","Trigger":{"Metrics":[{"Id":"e1","Expression":"m1 + m2","ReturnData":true},{"Id":"m1","MetricStat":{"Metric":{"Namespace":"AWS/SQS","MetricName":"ApproximateNumberOfMessagesVisible","Dimensions":[{"Name":"QueueName","Value":"dlq"}]},"Period":60,"Stat":"Maximum"},"ReturnData":false}],"Period":60,"EvaluationPeriods":1,"ComparisonOperator":"GreaterThanThreshold","Threshold":0}}"#;
        let alert = to_alert(message).unwrap();
        assert_eq!(
            detail(&alert, "metric math"),
            "e1 = m1 + m2\nm1 = AWS/SQS/ApproximateNumberOfMessagesVisible Maximum (QueueName=dlq)"
        );
        assert!(!alert.details.iter().any(|(n, _)| n == "metric"));
        assert_eq!(alert.created_at, "2026-12-01T20:30:00.000000Z");
    }

    #[test]
    fn odd_times_fall_back_to_now() {
        for time in [
            "yesterday",
            "",
            "2026-12-01T18:00:00.000+00",
            "2026-12-01T18:00:00.000+0é00",
            "é",
        ] {
            let message = ALARM.replace("2026-12-01T18:00:00.123+0000", time);
            let alert = to_alert(&message).unwrap();
            let at = crate::time::parse_timestamp(&alert.created_at).unwrap();
            let age = OffsetDateTime::now_utc() - at;
            assert!(age.whole_seconds().abs() < 60, "{time}");
        }
        assert!(parse_state_change_time("2026-12-01T18:00:00+01:00").is_some());
    }

    #[test]
    fn garbage_is_an_error() {
        for message in [
            "",
            "not json",
            "[]",
            "null",
            r#"{"AlarmName":"x"}"#,
            r#"{"NewStateValue":"ALARM"}"#,
            r#"{"AlarmName":1,"NewStateValue":"ALARM"}"#,
            r#"{"AlarmName":"x","NewStateValue":"PANIC"}"#,
        ] {
            assert!(to_alert(message).is_err(), "{message}");
        }
        assert!(!is_alarm("not json"));
        assert!(!is_alarm(r#"{"alert_id":"01J","kind":"drift"}"#));
        // Odd optional fields are left out, not an error.
        let alert =
            to_alert(r#"{"AlarmName":"x","NewStateValue":"ALARM","Trigger":"?","Region":5}"#)
                .unwrap();
        assert!(alert.details.is_empty());
    }
}
