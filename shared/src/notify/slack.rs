//! The Slack Incoming Webhook payload of an alert (DESIGN.md §10), as Block Kit inside one
//! coloured attachment: the colour bar is the only way a webhook message gets a colour,
//! and it tells firing from resolved at a glance.
//!
//! Pure: slack-alert sends what [`message`] builds, after [`check_limits`] as a last guard.
//!
//! Slack rejects a whole message that breaks one of its limits (and an empty text), and an
//! alert's title and details come from anywhere: a drift run's feature list, an alarm's
//! reason, a user's input. So [`message`] lays the details out against the limits and, when
//! they do not all fit, says at the end how much it left out and where to see it all.
//!
//! Lengths are counted in UTF-16 code units ([`text_len`]): Slack documents its limits in
//! characters without saying which; UTF-16 units (what a JavaScript `length` counts) are
//! never fewer than Unicode scalar values, so a text within the limit by this count is
//! within it by either. Texts are cut between `char`s only, so a cut never splits a
//! surrogate pair, and never inside an `&amp;`-style escape.

use super::{Alert, Severity, State};
use serde_json::{Value, json};

/// Blocks in the whole message (Slack: 50 per message, attachments included).
pub const MAX_BLOCKS: usize = 50;
/// A section's `text` (Slack: 3,000).
pub const MAX_SECTION_CHARS: usize = 3000;
/// All the text in the message, the fallback `text` included.
pub const MAX_TOTAL_CHARS: usize = 12_000;
/// A header block's text (Slack: 150).
pub const MAX_HEADER_CHARS: usize = 150;
/// One field of a section (Slack: 2,000, below the section's 3,000).
pub const MAX_FIELD_CHARS: usize = 2000;
/// Fields in one section block (Slack: 10).
pub const MAX_FIELDS: usize = 10;
/// Elements in one context block (Slack: 10).
pub const MAX_CONTEXT_ELEMENTS: usize = 10;

pub const COLOR_RESOLVED: &str = "#2eb886";
pub const COLOR_CRITICAL: &str = "#d00000";
pub const COLOR_WARNING: &str = "#daa038";
pub const COLOR_INFO: &str = "#439fe0";

/// The notification preview (the fallback `text`): a line, not the message.
const FALLBACK_CHARS: usize = 300;
/// Each item of the context line: ids and names, not prose.
const CONTEXT_ITEM_CHARS: usize = 200;
/// A detail's name is a bold label; a longer one is cut like a long value.
const NAME_CHARS: usize = 200;
/// The alert id as quoted in the cut notice.
const NOTICE_ID_CHARS: usize = 100;
/// Kept free for the cut notice when one is needed: its words, three numbers of at most
/// 26 characters each (`usize::MAX` grouped) and the id (a test holds it to this).
const NOTICE_RESERVE: usize = 400;
/// Below this much room a detail is not started: a field of a few characters helps no one.
const MIN_FIELD_CHARS: usize = 40;
/// Blocks every message has: the header and the context line.
const FIXED_BLOCKS: usize = 2;

/// The webhook payload for `alert`; within every limit [`check_limits`] checks.
pub fn message(alert: &Alert) -> Value {
    let header = header_text(alert);
    let whole_title = title_section(alert);
    let fallback = fallback_text(alert);
    let context = context_items(alert);
    let used = text_len(&header)
        + whole_title.as_deref().map_or(0, text_len)
        + text_len(&fallback)
        + context.iter().map(|item| text_len(item)).sum::<usize>();
    let room = MAX_TOTAL_CHARS.saturating_sub(used);
    let fixed = FIXED_BLOCKS + usize::from(whole_title.is_some());

    // First as if nothing will be cut; only when something is, lay out again leaving room
    // (a block and characters) for the notice that says so.
    let mut layout = lay_out(&alert.details, room, MAX_BLOCKS - fixed);
    if layout.is_cut() {
        layout = lay_out(
            &alert.details,
            room.saturating_sub(NOTICE_RESERVE),
            MAX_BLOCKS - fixed - 1,
        );
    }

    let mut blocks = Vec::with_capacity(layout.sections.len() + fixed + 1);
    blocks.push(json!({
        "type": "header",
        "text": {"type": "plain_text", "text": header, "emoji": true},
    }));
    if let Some(text) = whole_title {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}));
    }
    for fields in &layout.sections {
        let fields: Vec<Value> = fields
            .iter()
            .map(|text| json!({"type": "mrkdwn", "text": text}))
            .collect();
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    let elements: Vec<Value> = context
        .iter()
        .map(|text| json!({"type": "mrkdwn", "text": text}))
        .collect();
    blocks.push(json!({"type": "context", "elements": elements}));
    if layout.is_cut() {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": cut_notice(&layout, &alert.alert_id)},
        }));
    }

    json!({
        "text": fallback,
        "attachments": [{"color": color(alert), "blocks": blocks}],
    })
}

/// The attachment's colour bar: green once resolved, else by severity.
pub fn color(alert: &Alert) -> &'static str {
    match (alert.state, alert.severity) {
        (State::Resolved, _) => COLOR_RESOLVED,
        (State::Firing, Severity::Critical) => COLOR_CRITICAL,
        (State::Firing, Severity::Warning) => COLOR_WARNING,
        (State::Firing, Severity::Info) => COLOR_INFO,
    }
}

/// Checks a payload against Slack's limits (the constants above) and that no text is
/// empty; the reason names the first limit broken and where.
pub fn check_limits(message: &Value) -> Result<(), String> {
    let mut walk = Walk::default();
    walk.value(message, "$")?;
    if walk.blocks > MAX_BLOCKS {
        return Err(format!("{} blocks, more than {MAX_BLOCKS}", walk.blocks));
    }
    if walk.total > MAX_TOTAL_CHARS {
        return Err(format!(
            "{} characters of text, more than {MAX_TOTAL_CHARS}",
            walk.total
        ));
    }
    Ok(())
}

/// Slack's mrkdwn escaping: these three start links, mentions (`<!channel>`) and
/// entities, so a detail that contains them could ping a channel or vanish.
pub fn escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        push_escaped(&mut out, c);
    }
    out
}

/// The length Slack's limits are held to (see the module doc).
pub fn text_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// How long `text` is as a mrkdwn section's text once escaped, as Slack counts it: what
/// a manual alert's message is held to, so that the section under the header shows it
/// whole.
pub fn mrkdwn_len(text: &str) -> usize {
    clean(text).chars().map(escaped_len).sum()
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        c => out.push(c),
    }
}

fn escaped_len(c: char) -> usize {
    match c {
        '&' => 5,
        '<' | '>' => 4,
        c => c.len_utf16(),
    }
}

/// Control characters other than newline and tab become spaces: JSON carries them, but a
/// NUL or an escape sequence in a chat message is never what the sender meant, and some
/// receivers cut the text at a NUL.
fn clean(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// A detail's name as its bold label: on one line and without surrounding spaces, or
/// mrkdwn shows the asterisks instead of bold.
fn label(raw: &str) -> String {
    let flat: String = clean(raw)
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect();
    flat.trim().to_owned()
}

/// `raw`, escaped (or not, for plain text) and cut to at most `max` units with a closing
/// `…`; with the number of `raw`'s chars left out.
fn fit(raw: &str, max: usize, escaped: bool) -> (String, usize) {
    let len_of = |c: char| {
        if escaped {
            escaped_len(c)
        } else {
            c.len_utf16()
        }
    };
    let push = |out: &mut String, c: char| {
        if escaped {
            push_escaped(out, c)
        } else {
            out.push(c)
        }
    };
    let full: usize = raw.chars().map(len_of).sum();
    let mut out = String::new();
    if full <= max {
        raw.chars().for_each(|c| push(&mut out, c));
        return (out, 0);
    }
    if max == 0 {
        return (out, raw.chars().count());
    }
    let keep = max - 1; // the `…`
    let mut used = 0;
    let mut kept = 0;
    for c in raw.chars() {
        let n = len_of(c);
        if used + n > keep {
            break;
        }
        used += n;
        kept += 1;
        push(&mut out, c);
    }
    out.push('…');
    (out, raw.chars().count() - kept)
}

fn severity_badge(alert: &Alert) -> &'static str {
    match (alert.state, alert.severity) {
        (State::Resolved, _) => "✅ RESOLVED",
        (State::Firing, Severity::Critical) => "🔴 CRITICAL",
        (State::Firing, Severity::Warning) => "🟠 WARNING",
        (State::Firing, Severity::Info) => "🔵 INFO",
    }
}

fn title_or_placeholder(alert: &Alert) -> String {
    let title = clean(&alert.title);
    if title.trim().is_empty() {
        "(untitled alert)".to_owned()
    } else {
        title
    }
}

/// The whole title, as a section under the header, when the header cannot show it (longer
/// than a header takes, or on several lines): a manual alert's message (up to 3,000
/// characters) is read there, not cut at 150.
fn title_section(alert: &Alert) -> Option<String> {
    let title = title_or_placeholder(alert);
    let header_room = MAX_HEADER_CHARS.saturating_sub(text_len(&header_prefix(alert)));
    if text_len(&title) <= header_room && !title.contains('\n') {
        return None;
    }
    Some(fit(&title, MAX_SECTION_CHARS, true).0)
}

fn header_prefix(alert: &Alert) -> String {
    format!("{} — ", severity_badge(alert))
}

/// Plain text (Slack shows it as written, no escaping), on one line.
fn header_text(alert: &Alert) -> String {
    let title: String = title_or_placeholder(alert)
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect();
    let prefix = header_prefix(alert);
    let (title, _) = fit(
        &title,
        MAX_HEADER_CHARS.saturating_sub(text_len(&prefix)),
        false,
    );
    prefix + &title
}

/// The top-level `text`: what a notification or a client without Block Kit shows. Slack
/// reads it as mrkdwn, so it is escaped too.
fn fallback_text(alert: &Alert) -> String {
    let raw = format!(
        "{} — {}",
        severity_badge(alert),
        title_or_placeholder(alert)
    );
    fit(&raw, FALLBACK_CHARS, true).0
}

fn context_items(alert: &Alert) -> Vec<String> {
    let item = |name: &str, value: &str| {
        let value = clean(value);
        let value = if value.trim().is_empty() {
            "(none)"
        } else {
            &value
        };
        fit(&format!("{name}: {value}"), CONTEXT_ITEM_CHARS, true).0
    };
    let mut items = vec![
        item("alert", &alert.alert_id),
        item("kind", alert.kind.as_str()),
        item("source", &alert.source),
    ];
    if let Some(run_id) = &alert.run_id {
        items.push(item("run", run_id));
    }
    if let Some(request_id) = &alert.request_id {
        items.push(item("request", request_id));
    }
    items.push(item("at", &alert.created_at));
    items
}

/// The details as section fields, within `room` units of text and `max_sections` blocks.
#[derive(Debug, Default)]
struct Layout {
    sections: Vec<Vec<String>>,
    /// Details not shown at all, and their chars (names and values).
    omitted: usize,
    omitted_chars: usize,
    /// Details shown in part, and the chars of them not shown.
    shortened: usize,
    shortened_chars: usize,
}

impl Layout {
    fn is_cut(&self) -> bool {
        self.omitted > 0 || self.shortened > 0
    }

    fn fields(&self) -> usize {
        self.sections.iter().map(Vec::len).sum()
    }
}

fn lay_out(details: &[(String, String)], room: usize, max_sections: usize) -> Layout {
    let mut layout = Layout::default();
    let mut left = room;
    for (i, (name, value)) in details.iter().enumerate() {
        let max = left.min(MAX_FIELD_CHARS);
        let full = layout.fields() >= max_sections * MAX_FIELDS;
        if full || max < MIN_FIELD_CHARS {
            let rest = &details[i..];
            layout.omitted = rest.len();
            layout.omitted_chars = rest
                .iter()
                .map(|(n, v)| n.chars().count() + v.chars().count())
                .sum();
            break;
        }
        let (text, cut) = field(name, value, max);
        if cut > 0 {
            layout.shortened += 1;
            layout.shortened_chars += cut;
        }
        left = left.saturating_sub(text_len(&text));
        match layout.sections.last_mut() {
            Some(fields) if fields.len() < MAX_FIELDS => fields.push(text),
            _ => layout.sections.push(vec![text]),
        }
    }
    layout
}

/// `*name*` over the value, at most `max` units (≥ [`MIN_FIELD_CHARS`]); with the chars
/// of the name and value left out.
fn field(name: &str, value: &str, max: usize) -> (String, usize) {
    let name = label(name);
    // At most half the field, so that the value always has room to start.
    let name_max = NAME_CHARS.min(max / 2);
    let (name, name_cut) = if name.is_empty() {
        ("_(no name)_".to_owned(), 0)
    } else {
        let (text, cut) = fit(&name, name_max, true);
        (format!("*{text}*"), cut)
    };
    let value = clean(value);
    let room = max.saturating_sub(text_len(&name) + 1);
    let (value, value_cut) = if value.trim().is_empty() {
        ("_(empty)_".to_owned(), 0)
    } else {
        fit(&value, room, true)
    };
    (format!("{name}\n{value}"), name_cut + value_cut)
}

fn cut_notice(layout: &Layout, alert_id: &str) -> String {
    let (id, _) = fit(&clean(alert_id), NOTICE_ID_CHARS, true);
    let plural = |n: usize, one: &str, many: &str| {
        if n == 1 {
            format!("{} {one}", grouped(n))
        } else {
            format!("{} {many}", grouped(n))
        }
    };
    let omitted = format!(
        "{} ({}) not shown",
        plural(layout.omitted, "more detail", "more details"),
        plural(layout.omitted_chars, "character", "characters"),
    );
    let shortened = format!(
        "{} shortened ({} not shown)",
        plural(layout.shortened, "detail", "details"),
        plural(layout.shortened_chars, "character", "characters"),
    );
    let what = match (layout.omitted > 0, layout.shortened > 0) {
        (true, true) => format!("{omitted}, {shortened}"),
        (true, false) => omitted,
        _ => shortened,
    };
    format!("… {what}; see the alert {id}")
}

/// `48220` → `48,220`.
fn grouped(n: usize) -> String {
    inferloop_preprocess::thousands(n as u64)
}

/// What [`check_limits`] has counted so far.
#[derive(Default)]
struct Walk {
    blocks: usize,
    total: usize,
}

impl Walk {
    fn value(&mut self, value: &Value, at: &str) -> Result<(), String> {
        match value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.value(item, &format!("{at}[{i}]"))?;
                }
            }
            Value::Object(map) => {
                if let Some(Value::Array(blocks)) = map.get("blocks") {
                    self.blocks += blocks.len();
                }
                if map.get("type").and_then(Value::as_str).is_some() {
                    block_limits(map, at)?;
                }
                for (key, child) in map {
                    let at = format!("{at}.{key}");
                    match (key.as_str(), child) {
                        ("text", Value::String(text)) => {
                            if text.trim().is_empty() {
                                return Err(format!("{at} is empty"));
                            }
                            self.total += text_len(text);
                        }
                        _ => self.value(child, &at)?,
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The limits of one block or text object, by its `type`.
fn block_limits(map: &serde_json::Map<String, Value>, at: &str) -> Result<(), String> {
    let inner_text = |key: &str| {
        map.get(key)
            .and_then(|t| t.get("text"))
            .and_then(Value::as_str)
    };
    let within = |text: &str, max: usize, what: &str| {
        let len = text_len(text);
        if len > max {
            Err(format!(
                "{at}: {what} has {len} characters, more than {max}"
            ))
        } else {
            Ok(())
        }
    };
    match map.get("type").and_then(Value::as_str) {
        Some("header") => {
            let text = inner_text("text").ok_or(format!("{at}: a header without text"))?;
            within(text, MAX_HEADER_CHARS, "the header")?;
        }
        Some("section") => {
            let fields = map.get("fields").and_then(Value::as_array);
            let text = inner_text("text");
            if text.is_none() && fields.is_none() {
                return Err(format!("{at}: a section with neither text nor fields"));
            }
            if let Some(text) = text {
                within(text, MAX_SECTION_CHARS, "the section text")?;
            }
            if let Some(fields) = fields {
                if fields.is_empty() || fields.len() > MAX_FIELDS {
                    return Err(format!(
                        "{at}: {} fields, not 1 to {MAX_FIELDS}",
                        fields.len()
                    ));
                }
                for field in fields {
                    let text = field
                        .get("text")
                        .and_then(Value::as_str)
                        .ok_or(format!("{at}: a field without text"))?;
                    within(text, MAX_FIELD_CHARS, "a field")?;
                }
            }
        }
        Some("context") => {
            let elements = map
                .get("elements")
                .and_then(Value::as_array)
                .ok_or(format!("{at}: a context without elements"))?;
            if elements.is_empty() || elements.len() > MAX_CONTEXT_ELEMENTS {
                return Err(format!(
                    "{at}: {} context elements, not 1 to {MAX_CONTEXT_ELEMENTS}",
                    elements.len()
                ));
            }
            for element in elements {
                if let Some(text) = element.get("text").and_then(Value::as_str) {
                    within(text, MAX_SECTION_CHARS, "a context element")?;
                }
            }
        }
        // Text objects (`mrkdwn`, `plain_text`) anywhere else: Slack's 3,000.
        Some("mrkdwn" | "plain_text") => {
            if let Some(text) = map.get("text").and_then(Value::as_str) {
                within(text, MAX_SECTION_CHARS, "a text")?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Kind;
    use proptest::prelude::*;

    fn alert(severity: Severity) -> Alert {
        let mut alert = Alert::firing(
            Kind::Drift,
            severity,
            "drift on v2",
            "drift",
            "drift:v2:v2.0",
        )
        .detail("psi", 0.31)
        .detail("feature", "mean_brightness");
        alert.alert_id = "01JTESTALERT".to_owned();
        alert.run_id = Some("run-7".to_owned());
        alert
    }

    fn blocks(message: &Value) -> &Vec<Value> {
        message["attachments"][0]["blocks"].as_array().unwrap()
    }

    /// Every string under a `text` key, as Slack would count them.
    fn texts(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Array(items) => items.iter().for_each(|v| texts(v, out)),
            Value::Object(map) => {
                for (key, child) in map {
                    match (key.as_str(), child) {
                        ("text", Value::String(s)) => out.push(s.clone()),
                        _ => texts(child, out),
                    }
                }
            }
            _ => {}
        }
    }

    fn all_text(message: &Value) -> String {
        let mut out = Vec::new();
        texts(message, &mut out);
        out.join("\n")
    }

    fn notice(message: &Value) -> Option<String> {
        let last = blocks(message).last()?;
        let text = last["text"]["text"].as_str()?;
        text.contains("; see the alert ").then(|| text.to_owned())
    }

    #[test]
    fn a_typical_alert_shows_its_header_details_and_context() {
        let message = message(&alert(Severity::Critical));
        check_limits(&message).unwrap();
        assert_eq!(message["text"], "🔴 CRITICAL — drift on v2");
        let blocks = blocks(&message);
        assert_eq!(blocks.len(), 3);
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["text"], "🔴 CRITICAL — drift on v2");
        assert_eq!(blocks[1]["type"], "section");
        assert_eq!(blocks[1]["fields"][0]["text"], "*psi*\n0.31");
        assert_eq!(blocks[1]["fields"][1]["text"], "*feature*\nmean_brightness");
        assert_eq!(blocks[2]["type"], "context");
        let context = all_text(&blocks[2]);
        for part in [
            "alert: 01JTESTALERT",
            "kind: drift",
            "source: drift",
            "run: run-7",
            "at: ",
        ] {
            assert!(context.contains(part), "{part} in {context}");
        }
        assert!(!context.contains("request"));
        assert_eq!(notice(&message), None);
    }

    #[test]
    fn the_colour_and_badge_follow_severity_and_state() {
        for (severity, color, badge) in [
            (Severity::Critical, COLOR_CRITICAL, "🔴 CRITICAL"),
            (Severity::Warning, COLOR_WARNING, "🟠 WARNING"),
            (Severity::Info, COLOR_INFO, "🔵 INFO"),
        ] {
            let mut alert = alert(severity);
            let firing = message(&alert);
            assert_eq!(firing["attachments"][0]["color"], color);
            assert!(firing["text"].as_str().unwrap().starts_with(badge));
            alert.state = State::Resolved;
            let resolved = message(&alert);
            assert_eq!(resolved["attachments"][0]["color"], COLOR_RESOLVED);
            assert_eq!(
                blocks(&resolved)[0]["text"]["text"],
                "✅ RESOLVED — drift on v2"
            );
        }
    }

    #[test]
    fn mrkdwn_is_escaped_and_plain_text_is_not() {
        let mut alert = alert(Severity::Warning);
        alert.title = "a <b> & c".to_owned();
        alert.details = vec![("<!channel>".to_owned(), "x < y && y > z".to_owned())];
        let message = message(&alert);
        check_limits(&message).unwrap();
        assert_eq!(
            blocks(&message)[0]["text"]["text"],
            "🟠 WARNING — a <b> & c"
        );
        assert_eq!(message["text"], "🟠 WARNING — a &lt;b&gt; &amp; c");
        assert_eq!(
            blocks(&message)[1]["fields"][0]["text"],
            "*&lt;!channel&gt;*\nx &lt; y &amp;&amp; y &gt; z"
        );
    }

    #[test]
    fn empty_and_blank_texts_get_placeholders() {
        let mut alert = alert(Severity::Info);
        alert.title = " \n ".to_owned();
        alert.source = String::new();
        alert.alert_id = String::new();
        alert.details = vec![(String::new(), String::new()), ("\u{0}".into(), " ".into())];
        let message = message(&alert);
        check_limits(&message).unwrap();
        assert_eq!(message["text"], "🔵 INFO — (untitled alert)");
        assert_eq!(
            blocks(&message)[1]["fields"][0]["text"],
            "_(no name)_\n_(empty)_"
        );
        assert!(all_text(&message).contains("source: (none)"));
    }

    #[test]
    fn long_titles_fit_the_header() {
        let mut alert = alert(Severity::Critical);
        alert.title = "😀".repeat(500);
        let message = message(&alert);
        check_limits(&message).unwrap();
        let header = blocks(&message)[0]["text"]["text"].as_str().unwrap();
        assert!(text_len(header) <= MAX_HEADER_CHARS);
        assert!(header.ends_with('…'));
        assert!(text_len(message["text"].as_str().unwrap()) <= FALLBACK_CHARS);
        // The whole title is read under the header, in a section of its own.
        assert_eq!(blocks(&message)[1]["text"]["text"], alert.title);

        alert.title = "deploy at 14:00\nrollback at 14:30 if <errors> & alarms".into();
        let lines = super::message(&alert);
        assert_eq!(
            blocks(&lines)[1]["text"]["text"],
            "deploy at 14:00\nrollback at 14:30 if &lt;errors&gt; &amp; alarms",
            "several lines are kept, escaped as mrkdwn"
        );
        alert.title = "short".into();
        let short = super::message(&alert);
        assert_eq!(blocks(&short)[1]["type"], "section");
        assert!(
            blocks(&short)[1].get("text").is_none(),
            "a title the header shows whole is not repeated"
        );
    }

    #[test]
    fn many_details_are_cut_with_a_notice_that_counts_them() {
        let mut alert = alert(Severity::Critical);
        alert.details = (0..1000)
            .map(|i| (format!("d{i}"), "v".repeat(10)))
            .collect();
        let message = message(&alert);
        check_limits(&message).unwrap();
        let blocks = blocks(&message);
        assert_eq!(blocks.len(), MAX_BLOCKS);
        let shown = (MAX_BLOCKS - FIXED_BLOCKS - 1) * MAX_FIELDS;
        let hidden = 1000 - shown;
        let chars: usize = (shown..1000).map(|i| format!("d{i}").len() + 10).sum();
        assert_eq!(
            notice(&message).unwrap(),
            format!(
                "… {hidden} more details ({} characters) not shown; see the alert 01JTESTALERT",
                grouped(chars)
            )
        );
        assert!(all_text(&message).contains(&format!("*d{}*", shown - 1)));
        assert!(!all_text(&message).contains(&format!("*d{shown}*")));
    }

    #[test]
    fn long_details_are_shortened_within_the_total() {
        let mut alert = alert(Severity::Warning);
        alert.details = (0..20)
            .map(|i| (format!("d{i}"), "&".repeat(3000)))
            .collect();
        let message = message(&alert);
        check_limits(&message).unwrap();
        let notice = notice(&message).unwrap();
        assert!(notice.contains("more details"), "{notice}");
        assert!(notice.contains("shortened"), "{notice}");
        // No escape is cut in half.
        for field in blocks(&message)[1]["fields"].as_array().unwrap() {
            let value = field["text"].as_str().unwrap().split('\n').nth(1).unwrap();
            let value = value.trim_end_matches('…');
            assert_eq!(value.replace("&amp;", ""), "", "{value}");
        }
    }

    #[test]
    fn the_notice_fits_its_reserve() {
        let layout = Layout {
            omitted: usize::MAX,
            omitted_chars: usize::MAX,
            shortened: usize::MAX,
            shortened_chars: usize::MAX,
            ..Layout::default()
        };
        let text = cut_notice(&layout, &"<".repeat(1000));
        assert!(text_len(&text) <= NOTICE_RESERVE, "{}", text_len(&text));
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(48_220), "48,220");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }

    #[test]
    fn check_limits_rejects_what_slack_would() {
        let ok = json!({"text": "x", "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h"}}]});
        check_limits(&ok).unwrap();
        let empty = json!({"text": ""});
        assert!(check_limits(&empty).unwrap_err().contains("empty"));
        let header = json!({"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h".repeat(151)}}]});
        assert!(check_limits(&header).is_err());
        let section = json!({"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "s".repeat(3001)}}]});
        assert!(check_limits(&section).is_err());
        let fields: Vec<Value> = (0..11)
            .map(|_| json!({"type": "mrkdwn", "text": "f"}))
            .collect();
        let many = json!({"blocks": [{"type": "section", "fields": fields}]});
        assert!(check_limits(&many).is_err());
        let blocks: Vec<Value> = (0..51).map(|_| json!({"type": "divider"})).collect();
        assert!(check_limits(&json!({"attachments": [{"blocks": blocks}]})).is_err());
        let texts: Vec<Value> = (0..5)
            .map(|_| json!({"type": "section", "text": {"type": "mrkdwn", "text": "t".repeat(2500)}}))
            .collect();
        assert!(
            check_limits(&json!({"blocks": texts}))
                .unwrap_err()
                .contains("12000")
        );
        // Emoji count twice: two UTF-16 units each.
        let emoji = json!({"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "😀".repeat(76)}}]});
        assert!(check_limits(&emoji).is_err());
    }

    /// Text meant to break things: emoji, combining marks, mrkdwn and escape characters,
    /// controls, and anything else.
    fn nasty(max: usize) -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("😀".to_owned()),
            Just("👩‍👩‍👧".to_owned()),
            Just("e\u{301}".to_owned()),
            Just("\u{0}".to_owned()),
            Just("\n".to_owned()),
            Just(" ".to_owned()),
            "[<>&*_~`]".prop_map(|s| s.to_owned()),
            any::<char>().prop_map(|c| c.to_string()),
            "[a-z]{1,8}".prop_map(|s| s.to_owned()),
        ]
        .boxed();
        // A long run of one piece, or a mix: both ends of the distribution.
        prop_oneof![
            (piece.clone(), 0..=max).prop_map(|(p, n)| p.repeat(n)),
            proptest::collection::vec(piece, 0..=max.min(200)).prop_map(|v| v.concat()),
        ]
        .prop_map(move |s| s.chars().take(max).collect())
    }

    fn any_alert() -> impl Strategy<Value = Alert> {
        let severity = prop_oneof![
            Just(Severity::Info),
            Just(Severity::Warning),
            Just(Severity::Critical)
        ];
        let state = prop_oneof![Just(State::Firing), Just(State::Resolved)];
        let details = prop_oneof![
            proptest::collection::vec((nasty(40), nasty(60)), 0..=400),
            proptest::collection::vec((nasty(3000), nasty(3000)), 0..=12),
            proptest::collection::vec((nasty(30), nasty(3000)), 0..=60),
        ];
        (
            severity,
            state,
            nasty(5000),
            details,
            nasty(300),
            proptest::option::of(nasty(300)),
        )
            .prop_map(|(severity, state, title, details, source, run_id)| {
                let mut alert = Alert::firing(Kind::Manual, severity, title, source, "f");
                alert.state = state;
                alert.details = details;
                alert.run_id = run_id.clone();
                alert.request_id = run_id;
                alert
            })
    }

    proptest! {
        // No regression files: a failure prints its minimal case, and the tests must not
        // write into the source tree.
        #![proptest_config(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::with_cases(64)
        })]

        #[test]
        fn every_alert_fits_slack(alert in any_alert()) {
            let message = message(&alert);
            prop_assert_eq!(check_limits(&message), Ok(()));
            let mut all = Vec::new();
            texts(&message, &mut all);
            prop_assert!(all.iter().all(|t| !t.trim().is_empty()));
            // By chars, too, whatever Slack counts.
            let chars: usize = all.iter().map(|t| t.chars().count()).sum();
            prop_assert!(chars <= MAX_TOTAL_CHARS);
            let header = blocks(&message)[0]["text"]["text"].as_str().unwrap_or_default();
            prop_assert!(header.chars().count() <= MAX_HEADER_CHARS);
            if notice(&message).is_none() {
                let text = all.join("\n");
                for (name, _) in &alert.details {
                    let shown = escape(&label(name));
                    prop_assert!(text.contains(&shown), "{:?} not shown", name);
                }
            }
        }
    }
}
