//! Every change of the production pointer (DESIGN.md §11), kept in the Models table
//! beside the versions: one item per change, written in the promotion's own transaction,
//! so the history cannot miss a change or record one that did not happen.
//!
//! Its sort key is `@history#<line>#<at>#<revision>` (`@` is never a version name, and
//! stored timestamps sort as times), so "which version served line L at time T" is one
//! Query for the newest key at or before T, and a line's history is one range.

use super::super::{Item, StoreError, get_n_opt, get_s, n, s, sdk_error};
use aws_sdk_dynamodb::Client;

/// Every history key starts so.
const HISTORY_PREFIX: &str = "@history#";
/// Reading a history stops here: a line changes a few times a week, not thousands.
const MAX_CHANGES: usize = 10_000;

/// How the pointer came to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// The shipped models, published by `cargo xtask dev` or a deployment.
    Published,
    /// A candidate that passed the promotion gate.
    Gated,
    /// Promoted without the gate (`force: true`).
    Forced,
    /// Back to the version that served before.
    Rollback,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Published => "published",
            Self::Gated => "gated",
            Self::Forced => "forced",
            Self::Rollback => "rollback",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Published, Self::Gated, Self::Forced, Self::Rollback]
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

/// Who changes the pointer and why: what a promotion records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotion {
    pub actor: String,
    pub reason: String,
    pub kind: ChangeKind,
    /// sha256 of the gate report the change was judged by (none when forced, rolled
    /// back or published).
    pub gate_report_sha256: Option<String>,
    /// When, in the stored format.
    pub at: String,
}

impl Promotion {
    /// A shipped model made a line's first production version by publishing.
    pub fn published(actor: &str, at: impl Into<String>) -> Self {
        Self {
            actor: actor.to_owned(),
            reason: "published: the line had no production version".to_owned(),
            kind: ChangeKind::Published,
            gate_report_sha256: None,
            at: at.into(),
        }
    }
}

/// One change of one line's production version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PointerChange {
    pub line: String,
    /// The version that served before; `None` for the line's first.
    pub from: Option<String>,
    pub to: String,
    pub actor: String,
    pub reason: String,
    pub kind: ChangeKind,
    pub gate_report_sha256: Option<String>,
    pub at: String,
    /// The pointer's revision after the change.
    pub revision: u64,
}

impl PointerChange {
    pub(super) fn sort_key(&self) -> String {
        format!(
            "{HISTORY_PREFIX}{}#{}#{:012}",
            self.line, self.at, self.revision
        )
    }

    pub(super) fn to_item(&self, name: &str) -> Item {
        let mut item = Item::from([
            ("name".to_owned(), s(name)),
            ("version".to_owned(), s(self.sort_key())),
            ("line".to_owned(), s(&self.line)),
            ("to".to_owned(), s(&self.to)),
            ("actor".to_owned(), s(&self.actor)),
            ("reason".to_owned(), s(&self.reason)),
            ("kind".to_owned(), s(self.kind.as_str())),
            ("at".to_owned(), s(&self.at)),
            ("revision".to_owned(), n(self.revision)),
        ]);
        if let Some(from) = &self.from {
            item.insert("from".to_owned(), s(from));
        }
        if let Some(hash) = &self.gate_report_sha256 {
            item.insert("gate_report_sha256".to_owned(), s(hash));
        }
        item
    }

    fn from_item(item: &Item) -> Result<Self, StoreError> {
        let optional = |key: &str| item.get(key).and_then(|v| v.as_s().ok()).cloned();
        let kind = get_s(item, "kind")?;
        Ok(Self {
            line: get_s(item, "line")?.to_owned(),
            from: optional("from"),
            to: get_s(item, "to")?.to_owned(),
            actor: get_s(item, "actor")?.to_owned(),
            reason: get_s(item, "reason")?.to_owned(),
            kind: ChangeKind::parse(kind)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown change kind {kind:?}")))?,
            gate_report_sha256: optional("gate_report_sha256"),
            at: get_s(item, "at")?.to_owned(),
            revision: get_n_opt(item, "revision")?.unwrap_or(0),
        })
    }
}

/// The version a rollback of `line` returns to, from its history (newest first): the
/// version that served before the current one was first promoted, so that successive
/// rollbacks walk back instead of bouncing between two versions (a rollback's own
/// change is passed over).
pub fn rollback_target<'a>(history: &'a [PointerChange], current: &str) -> Option<&'a str> {
    history
        .iter()
        .find(|change| change.to == current && change.kind != ChangeKind::Rollback)
        .and_then(|change| change.from.as_deref())
}

pub(super) async fn query(
    client: &Client,
    table: &str,
    name: &str,
    low: &str,
    high: &str,
    limit: Option<i32>,
) -> Result<Vec<PointerChange>, StoreError> {
    let mut changes = Vec::new();
    let mut start = None;
    loop {
        let out = client
            .query()
            .table_name(table)
            .key_condition_expression("#n = :n AND #v BETWEEN :low AND :high")
            .expression_attribute_names("#n", "name")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":n", s(name))
            .expression_attribute_values(":low", s(low))
            .expression_attribute_values(":high", s(high))
            .scan_index_forward(false)
            .set_limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(sdk_error)?;
        for item in out.items() {
            changes.push(PointerChange::from_item(item)?);
        }
        start = out.last_evaluated_key().cloned();
        if start.is_none() || limit.is_some() || changes.len() >= MAX_CHANGES {
            break;
        }
    }
    Ok(changes)
}

/// The key range of one line's history, or of every line's.
pub(super) fn range(line: Option<&str>) -> (String, String) {
    match line {
        Some(line) => (
            format!("{HISTORY_PREFIX}{line}#"),
            format!("{HISTORY_PREFIX}{line}#~"),
        ),
        None => (HISTORY_PREFIX.to_owned(), format!("{HISTORY_PREFIX}~")),
    }
}

/// The range of `line`'s changes at or before `at`.
pub(super) fn range_until(line: &str, at: &str) -> (String, String) {
    (
        format!("{HISTORY_PREFIX}{line}#"),
        // Every key of a change at `at` itself (`…#<at>#<revision>`) sorts below this.
        format!("{HISTORY_PREFIX}{line}#{at}#~"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(from: Option<&str>, to: &str, kind: ChangeKind, revision: u64) -> PointerChange {
        PointerChange {
            line: "v2".into(),
            from: from.map(str::to_owned),
            to: to.into(),
            actor: "admin".into(),
            reason: "r".into(),
            kind,
            gate_report_sha256: (kind == ChangeKind::Gated).then(|| "ab".repeat(32)),
            at: format!("2026-12-0{revision}T00:00:00.000000Z"),
            revision,
        }
    }

    #[test]
    fn changes_round_trip_and_sort_by_line_then_time() {
        let first = change(None, "v2.0", ChangeKind::Published, 1);
        let second = change(Some("v2.0"), "v2.1", ChangeKind::Gated, 2);
        for c in [&first, &second] {
            assert_eq!(&PointerChange::from_item(&c.to_item("mnist")).unwrap(), c);
        }
        assert!(first.sort_key() < second.sort_key());
        let (low, high) = range(Some("v2"));
        assert!(low < first.sort_key() && second.sort_key() < high);
        // A change at exactly `at` is inside the range until `at`; a later one is not.
        let (low, high) = range_until("v2", &first.at);
        assert!(low < first.sort_key() && first.sort_key() < high);
        assert!(second.sort_key() > high);
        // Another line's keys are outside this line's range, inside the whole history's.
        let other = PointerChange {
            line: "v1".into(),
            ..first.clone()
        };
        let (low, high) = range(Some("v2"));
        assert!(!(low < other.sort_key() && other.sort_key() < high));
        let (low, high) = range(None);
        assert!(low < other.sort_key() && other.sort_key() < high);
        // No history key is ever a version name, and none sorts among the versions.
        assert!(crate::domain::VersionName::parse(&first.sort_key()).is_err());
        assert!(first.sort_key().as_str() < "A");
    }

    #[test]
    fn rollbacks_walk_back_instead_of_bouncing() {
        // v2.0 published, v2.1 and v2.2 promoted, then two rollbacks (newest first).
        let mut history = vec![
            change(Some("v2.1"), "v2.2", ChangeKind::Gated, 3),
            change(Some("v2.0"), "v2.1", ChangeKind::Forced, 2),
            change(None, "v2.0", ChangeKind::Published, 1),
        ];
        assert_eq!(rollback_target(&history, "v2.2"), Some("v2.1"));
        history.insert(0, change(Some("v2.2"), "v2.1", ChangeKind::Rollback, 4));
        assert_eq!(rollback_target(&history, "v2.1"), Some("v2.0"));
        history.insert(0, change(Some("v2.1"), "v2.0", ChangeKind::Rollback, 5));
        // The line's first version has nothing before it.
        assert_eq!(rollback_target(&history, "v2.0"), None);
        assert_eq!(rollback_target(&[], "v2.0"), None);
    }
}
