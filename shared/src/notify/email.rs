//! The SES e-mail of an alert (DESIGN.md §10): a plain-text part and an HTML part saying
//! the same. Pure: slack-alert sends what [`email`] builds.
//!
//! The HTML is one self-contained document with inline styles only: mail clients drop
//! `<style>` blocks and block remote resources, and a remote image would tell a third
//! party when the alert was read.

use super::{Alert, Severity, State};

/// What SES sends: the subject and both bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The e-mail for `alert`.
pub fn email(alert: &Alert) -> Email {
    let facts = facts(alert);
    Email {
        subject: super::subject_line(alert),
        text: text_part(alert, &facts),
        html: html_part(alert, &facts),
    }
}

/// The e-mail the test-email route sends, so that whoever set up the recipients sees
/// that alerts reach them; `recipients_note` says to whom it went (or why).
pub fn test_email(recipients_note: &str) -> Email {
    let lead = "This is a test e-mail from inferloop.";
    let after = "If you can read it, alert e-mails reach this address; nothing needs doing.";
    let text = if recipients_note.trim().is_empty() {
        format!("{lead}\n\n{after}\n")
    } else {
        format!("{lead}\n\n{recipients_note}\n\n{after}\n")
    };
    let note = if recipients_note.trim().is_empty() {
        String::new()
    } else {
        format!(
            r#"<p style="margin:0 0 12px 0;white-space:pre-wrap">{}</p>"#,
            escape_html(recipients_note)
        )
    };
    let body = format!(
        r#"<p style="margin:0 0 12px 0">{lead}</p>{note}<p style="margin:0;color:#555555">{after}</p>"#
    );
    Email {
        subject: "[info] inferloop test e-mail".to_owned(),
        text,
        html: document(
            "inferloop test e-mail",
            COLOR_INFO,
            "inferloop test e-mail",
            &body,
        ),
    }
}

/// HTML-escapes text for element content and quoted attribute values alike.
pub fn escape_html(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

// The same colours as the Slack messages, so that an alert looks alike in both.
const COLOR_RESOLVED: &str = super::slack::COLOR_RESOLVED;
const COLOR_CRITICAL: &str = super::slack::COLOR_CRITICAL;
const COLOR_WARNING: &str = super::slack::COLOR_WARNING;
const COLOR_INFO: &str = super::slack::COLOR_INFO;

fn color(alert: &Alert) -> &'static str {
    match (alert.state, alert.severity) {
        (State::Resolved, _) => COLOR_RESOLVED,
        (State::Firing, Severity::Critical) => COLOR_CRITICAL,
        (State::Firing, Severity::Warning) => COLOR_WARNING,
        (State::Firing, Severity::Info) => COLOR_INFO,
    }
}

/// The alert's own fields, in the order both parts show them.
fn facts(alert: &Alert) -> Vec<(&'static str, String)> {
    let mut facts = vec![
        ("State", alert.state.as_str().to_owned()),
        ("Severity", alert.severity.as_str().to_owned()),
        ("Kind", alert.kind.as_str().to_owned()),
        ("Source", alert.source.clone()),
        ("Alert id", alert.alert_id.clone()),
        ("Fingerprint", alert.fingerprint.clone()),
    ];
    if let Some(run_id) = &alert.run_id {
        facts.push(("Run id", run_id.clone()));
    }
    if let Some(request_id) = &alert.request_id {
        facts.push(("Request id", request_id.clone()));
    }
    facts.push(("Time", alert.created_at.clone()));
    facts
}

fn text_part(alert: &Alert, facts: &[(&str, String)]) -> String {
    let mut text = format!("{}\n\n", alert.title);
    for (name, value) in facts {
        text.push_str(&format!("{name}: {value}\n"));
    }
    if !alert.details.is_empty() {
        text.push_str("\nDetails\n");
        for (name, value) in &alert.details {
            text.push_str(&format!("{name}: {value}\n"));
        }
    }
    text
}

const CELL: &str =
    "padding:4px 12px 4px 0;vertical-align:top;text-align:left;border-bottom:1px solid #eeeeee";

fn rows<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .map(|(name, value)| {
            format!(
                // pre-wrap: a multi-line value (an alarm's reason, a stack of codes) keeps
                // its lines.
                r#"<tr><th style="{CELL};font-weight:600;white-space:nowrap">{}</th><td style="{CELL};white-space:pre-wrap;word-break:break-word">{}</td></tr>"#,
                escape_html(name),
                escape_html(value)
            )
        })
        .collect()
}

fn html_part(alert: &Alert, facts: &[(&str, String)]) -> String {
    let badge = match alert.state {
        State::Resolved => "RESOLVED".to_owned(),
        State::Firing => alert.severity.as_str().to_uppercase(),
    };
    let table = |rows: String| {
        format!(
            r#"<table role="presentation" cellspacing="0" cellpadding="0" style="border-collapse:collapse;margin:0 0 16px 0;font-size:14px">{rows}</table>"#
        )
    };
    let mut body = table(rows(facts.iter().map(|(n, v)| (*n, v.as_str()))));
    if !alert.details.is_empty() {
        body.push_str(r#"<h2 style="font-size:16px;margin:0 0 8px 0">Details</h2>"#);
        body.push_str(&table(rows(
            alert.details.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        )));
    }
    document(
        &alert.title,
        color(alert),
        &format!("{badge} — {}", alert.title),
        &body,
    )
}

/// The one page every e-mail is: a coloured bar, a heading, the body.
fn document(title: &str, color: &str, heading: &str, body: &str) -> String {
    format!(
        concat!(
            r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">"#,
            r#"<meta name="viewport" content="width=device-width"><title>{title}</title></head>"#,
            r#"<body style="margin:0;padding:16px;font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#1d1c1d;background:#ffffff">"#,
            r#"<div style="border-left:6px solid {color};padding:4px 0 4px 12px;margin:0 0 16px 0">"#,
            r#"<h1 style="font-size:18px;margin:0">{heading}</h1></div>"#,
            r#"{body}"#,
            r#"<p style="font-size:12px;color:#777777;margin:16px 0 0 0">Sent by inferloop.</p>"#,
            r#"</body></html>"#,
        ),
        title = escape_html(title),
        color = color,
        heading = escape_html(heading),
        body = body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Kind;

    fn alert() -> Alert {
        let mut alert = Alert::firing(
            Kind::CriticalError,
            Severity::Critical,
            "predict answered a 5xx: internal",
            "predict",
            "critical_error:predict:internal",
        )
        .detail("code", "internal")
        .detail("path", "/api/v1/predict")
        .detail("payload", r#"<script>alert("x") & 'y'</script>"#);
        alert.request_id = Some("req-1".to_owned());
        alert
    }

    #[test]
    fn the_subject_is_the_subject_line() {
        let alert = alert();
        assert_eq!(email(&alert).subject, super::super::subject_line(&alert));
    }

    #[test]
    fn html_is_escaped_and_text_is_verbatim() {
        let email = email(&alert());
        let raw = r#"<script>alert("x") & 'y'</script>"#;
        assert!(email.text.contains(&format!("payload: {raw}\n")));
        assert!(!email.html.contains("<script"));
        assert!(
            email
                .html
                .contains("&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;")
        );
    }

    #[test]
    fn every_detail_and_fact_is_in_both_parts() {
        let alert = alert();
        let email = email(&alert);
        for (name, value) in &alert.details {
            assert!(email.text.contains(&format!("{name}: {value}\n")));
            assert!(email.html.contains(&escape_html(name)));
            assert!(email.html.contains(&escape_html(value)));
        }
        assert_eq!(email.html.matches("<tr>").count(), 8 + alert.details.len());
        for part in [
            "State: firing",
            "Severity: critical",
            "Kind: critical_error",
            "Source: predict",
            "Request id: req-1",
        ] {
            assert!(email.text.contains(part), "{part}");
        }
        assert!(email.text.starts_with("predict answered a 5xx: internal\n"));
        assert!(email.text.contains(&format!("Time: {}", alert.created_at)));
        assert!(!email.text.contains("Run id"));
        assert!(email.html.contains(COLOR_CRITICAL));
        assert!(email.html.contains(&alert.alert_id));
    }

    #[test]
    fn the_html_is_self_contained() {
        let mut alert = alert();
        alert.state = State::Resolved;
        let html = email(&alert).html;
        assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>"));
        assert!(html.contains(COLOR_RESOLVED) && html.contains("RESOLVED — "));
        for external in ["http:", "https:", "src=", "<link", "<style", "<script"] {
            assert!(!html.contains(external), "{external}");
        }
    }

    #[test]
    fn the_test_email_says_what_it_is() {
        let email = test_email("sent to <ops@example.com>");
        assert!(email.subject.contains("test"));
        assert!(email.subject.is_ascii() && email.subject.len() <= 100);
        assert!(email.text.contains("test e-mail from inferloop"));
        assert!(email.text.contains("sent to <ops@example.com>"));
        assert!(email.html.contains("sent to &lt;ops@example.com&gt;"));
        assert!(!test_email("").text.contains("\n\n\n"));
    }
}
