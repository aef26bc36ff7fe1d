//! The integrity check: recompute every chain that has entries in a time range and
//! report, per entry, what does not hold.
//!
//! - `modified`: the entry's content no longer matches its `content_hash` (or an
//!   attribute is missing): it was edited after it was written.
//! - `bad_mac`: the content matches its hash, but the MAC does not match: the entry was
//!   made or remade by someone without the key — a forgery.
//! - `missing`: a gap in the sequence numbers, or an entry chained after one that is no
//!   longer in the chain (entries removed and the rest renumbered).
//! - `reordered`: an intact entry in the wrong slot: its `prev_mac` is the MAC of some
//!   other entry than the one its slot follows.
//!
//! The order check walks each chain along its links (an entry follows the one whose MAC
//! is its `prev_mac`), from the chain's first entry, so that a swapped pair reports the
//! two moved entries and not the untouched one after them. Deleting a chain's tail is
//! not detectable here; see the module documentation of [`crate::audit`].
//!
//! The check is in two steps so that a chain never has to be held whole: each entry is
//! checked on its own as soon as it is read ([`check_entry`]), which leaves only its
//! [`Link`]; the links are then checked together ([`check_links`]). [`verify_chain`]
//! does both over a list of items; [`AuditReader::verify`] reads the chains around it.

use super::query::AuditReader;
use super::{BY_DAY_INDEX, SealedEntry};
use crate::store::{Item, StoreError, n, s, sdk_error};
use crate::time::TimeRange;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    Modified,
    Missing,
    Reordered,
    BadMac,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub chain: String,
    pub sequence: u64,
    pub kind: ProblemKind,
    /// For the person reading the report; not for matching on.
    pub detail: String,
}

/// One stored item of a chain: its slot, and the entry if the item has the shape the
/// writer gives every item (else what is wrong with it).
#[derive(Debug, Clone)]
pub struct StoredEntry {
    pub seq: u64,
    pub sealed: Result<SealedEntry, String>,
}

impl StoredEntry {
    /// `None` only for an item without a numeric `seq`, which the table's key schema
    /// rules out.
    pub fn from_item(item: &Item) -> Option<Self> {
        let seq = item.get("seq")?.as_n().ok()?.parse().ok()?;
        Some(Self {
            seq,
            sealed: SealedEntry::from_item(item),
        })
    }
}

impl From<SealedEntry> for StoredEntry {
    fn from(sealed: SealedEntry) -> Self {
        Self {
            seq: sealed.entry.seq,
            sealed: Ok(sealed),
        }
    }
}

/// What the order check needs of an entry once its content has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub seq: u64,
    /// `None` when the item is too damaged to say: it links to nothing.
    pub prev_mac: Option<String>,
    pub mac: Option<String>,
    /// What is wrong with the entry itself. Its own links are then suspect, so a broken
    /// link next to it is already explained.
    pub problem: Option<(ProblemKind, String)>,
}

/// Checks one entry on its own: its shape, its content against its hash, its MAC.
pub fn check_entry(stored: &StoredEntry, key: &[u8]) -> Link {
    let sealed = match &stored.sealed {
        Ok(sealed) => sealed,
        Err(why) => {
            return Link {
                seq: stored.seq,
                prev_mac: None,
                mac: None,
                problem: Some((ProblemKind::Modified, why.clone())),
            };
        }
    };
    let problem = if sealed.entry.content_hash() != sealed.content_hash {
        Some((
            ProblemKind::Modified,
            "the content does not match its content_hash".to_owned(),
        ))
    } else if sealed.entry.mac(key, &sealed.prev_mac) != sealed.mac {
        Some((
            ProblemKind::BadMac,
            "the content matches its hash but the MAC does not: not written with the audit key"
                .to_owned(),
        ))
    } else {
        None
    };
    Link {
        seq: stored.seq,
        prev_mac: Some(sealed.prev_mac.clone()),
        mac: Some(sealed.mac.clone()),
        problem,
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainCheck {
    pub entries_checked: u64,
    pub problems: Vec<Problem>,
}

/// Whether the first entries of a chain may already have been removed by TTL: only if
/// the chain began (its ULID's time) at least `retention` ago. A chain id that is not a
/// ULID was not made by the writer, and gets no such allowance.
pub fn head_may_have_expired(chain_id: &str, retention: Duration, now: OffsetDateTime) -> bool {
    let Ok(ulid) = ulid::Ulid::from_string(chain_id) else {
        return false;
    };
    let began_ms = i128::from(ulid.timestamp_ms());
    let now_ms = now.unix_timestamp_nanos() / 1_000_000;
    began_ms + retention.as_millis() as i128 <= now_ms
}

/// Checks one chain from its items, in any order: each entry, then the links.
pub fn verify_chain(
    chain_id: &str,
    entries: Vec<StoredEntry>,
    key: &[u8],
    head_may_have_expired: bool,
) -> ChainCheck {
    let links = entries.iter().map(|e| check_entry(e, key)).collect();
    check_links(chain_id, links, head_may_have_expired)
}

/// Checks a chain's links, in any order: the entries' own problems, gaps in the
/// numbering, and the order of the links.
pub fn check_links(
    chain_id: &str,
    mut links: Vec<Link>,
    head_may_have_expired: bool,
) -> ChainCheck {
    links.sort_by_key(|l| l.seq);
    let mut found: BTreeMap<(u64, ProblemKind), String> = BTreeMap::new();
    let mut report = |seq: u64, kind: ProblemKind, detail: String| {
        found.entry((seq, kind)).or_insert(detail);
    };

    let flagged: Vec<bool> = links.iter().map(|l| l.problem.is_some()).collect();
    for link in &links {
        if let Some((kind, detail)) = &link.problem {
            report(link.seq, *kind, detail.clone());
        }
    }

    // Gaps in the numbering.
    let slot_of: HashMap<u64, usize> = links.iter().enumerate().map(|(i, l)| (l.seq, i)).collect();
    let mut expected = match (links.first(), head_may_have_expired) {
        (Some(first), true) => first.seq,
        _ => 0,
    };
    for link in &links {
        if link.seq > expected {
            let last = link.seq - 1;
            let detail = if last == expected {
                format!("sequence {expected} is absent")
            } else {
                format!(
                    "sequences {expected}–{last} are absent ({} entries)",
                    last - expected + 1
                )
            };
            report(expected, ProblemKind::Missing, detail);
        }
        expected = link.seq.saturating_add(1);
    }

    // The order of the links.
    let mut by_mac: HashMap<&str, usize> = HashMap::new();
    let mut successors: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, link) in links.iter().enumerate() {
        if let (Some(prev_mac), Some(mac)) = (&link.prev_mac, &link.mac) {
            by_mac.entry(mac.as_str()).or_insert(i);
            successors.entry(prev_mac.as_str()).or_default().push(i);
        }
    }
    let mut visited: Vec<bool> = links.iter().map(|l| l.mac.is_none()).collect();
    let walker = Walker {
        links: &links,
        successors: &successors,
    };
    let prev_mac = |i: usize| links[i].prev_mac.as_deref();

    // From the chain's first entry…
    if let Some(first) = (0..links.len()).find(|&i| prev_mac(i) == Some("")) {
        walker.walk(first, 0, &mut visited, &mut report);
    }
    // …then from each entry chained after one that is not here (a gap, an expired head,
    // or a removal hidden by renumbering)…
    for i in 0..links.len() {
        let Some(prev) = prev_mac(i) else { continue };
        if visited[i] || prev.is_empty() || by_mac.contains_key(prev) {
            continue;
        }
        let seq = links[i].seq;
        let slot_before = seq.checked_sub(1).and_then(|p| slot_of.get(&p).copied());
        let explained = flagged[i]
            || slot_before.is_some_and(|p| flagged[p])
            || (slot_before.is_none() && seq > 0)
            || (i == 0 && head_may_have_expired);
        if !explained {
            report(
                seq,
                ProblemKind::Missing,
                "it is chained after an entry that is no longer in the chain".into(),
            );
        }
        walker.walk(i, seq, &mut visited, &mut report);
    }
    // …and what is left is chained after an entry that already has its successor: a
    // copy, or a second start of the chain.
    for i in 0..links.len() {
        if visited[i] {
            continue;
        }
        if !flagged[i] {
            let detail = if prev_mac(i) == Some("") {
                "a second first entry of the chain"
            } else {
                "it is chained after an entry that is already followed by another"
            };
            report(links[i].seq, ProblemKind::Reordered, detail.into());
        }
        walker.walk(i, links[i].seq, &mut visited, &mut |_, _, _| {});
    }

    ChainCheck {
        entries_checked: links.len() as u64,
        problems: found
            .into_iter()
            .map(|((sequence, kind), detail)| Problem {
                chain: chain_id.to_owned(),
                sequence,
                kind,
                detail,
            })
            .collect(),
    }
}

/// A chain's links with the index from each MAC to the entries chained after it.
struct Walker<'a> {
    links: &'a [Link],
    successors: &'a HashMap<&'a str, Vec<usize>>,
}

impl Walker<'_> {
    /// Follows the links from `start`, which belongs at sequence `position`, reporting
    /// every entry on the way that is not in the slot its links give it. Where an entry
    /// has more than one successor (a copy), the one in the expected slot is followed.
    fn walk(
        &self,
        start: usize,
        mut position: u64,
        visited: &mut [bool],
        report: &mut dyn FnMut(u64, ProblemKind, String),
    ) {
        let mut current = start;
        loop {
            visited[current] = true;
            let link = &self.links[current];
            if link.seq != position {
                report(
                    link.seq,
                    ProblemKind::Reordered,
                    format!("its links place it at sequence {position}"),
                );
            }
            let Some(mac) = &link.mac else { return };
            let next = self.successors.get(mac.as_str()).and_then(|candidates| {
                candidates
                    .iter()
                    .copied()
                    .filter(|&j| !visited[j])
                    .min_by_key(|&j| (self.links[j].seq != position + 1, self.links[j].seq))
            });
            match next {
                Some(j) => {
                    current = j;
                    position += 1;
                }
                None => return,
            }
        }
    }
}

/// What `GET /admin/audit_logs/verify` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub verified: bool,
    pub chains: u64,
    pub entries_checked: u64,
    pub problems: Vec<Problem>,
    /// True when more problems were found than the report lists.
    pub problems_truncated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The range holds more entries than one check may hold in memory.
    #[error("the range holds more than {0} audit entries; verify it in shorter ranges")]
    TooLarge(u64),
}

/// A report lists at most this many problems: a wholesale rewrite should not produce a
/// response too large to read or send.
pub const MAX_PROBLEMS: usize = 1000;
/// In-range entries one check holds (as links, ~200 bytes each): within the function's
/// memory, and far above what a 7-day window holds at this service's rate.
pub const MAX_ENTRIES: u64 = 1_000_000;
/// Queries in flight at once, for the days of the range and then for the chains.
const CONCURRENCY: usize = 8;

type ChainLinks = BTreeMap<String, Vec<Link>>;

impl AuditReader {
    /// Recomputes every chain with at least one entry in `range` — each chain whole, from
    /// its first entry to its last, including entries outside the range — and reports
    /// what does not hold.
    ///
    /// Each entry is read once: the entries in the range from the by-day index (one query
    /// stream per day, in parallel), the rest of each chain from the table. An index lags
    /// the table by up to a second or so, and a fresh entry not yet in it would look
    /// missing, so a chain with problems is read again whole from the table with
    /// consistent reads, and only what that shows is reported.
    pub async fn verify(&self, range: &TimeRange) -> Result<VerifyReport, VerifyError> {
        let in_range = self.links_in(range).await?;
        let now = OffsetDateTime::now_utc();
        let mut report = VerifyReport {
            verified: true,
            chains: in_range.len() as u64,
            entries_checked: 0,
            problems: Vec::new(),
            problems_truncated: false,
        };
        let mut pending = in_range.into_iter();
        let mut running = tokio::task::JoinSet::new();
        loop {
            while running.len() < CONCURRENCY {
                let Some((chain_id, links)) = pending.next() else {
                    break;
                };
                let reader = self.clone();
                let expired = head_may_have_expired(&chain_id, self.retention, now);
                running.spawn(async move { reader.check_chain(chain_id, links, expired).await });
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let check = joined
                .map_err(|e| StoreError::Corrupt(format!("a chain check did not finish: {e}")))??;
            report.entries_checked += check.entries_checked;
            for problem in check.problems {
                report.verified = false;
                if report.problems.len() < MAX_PROBLEMS {
                    report.problems.push(problem);
                } else {
                    report.problems_truncated = true;
                }
            }
        }
        report
            .problems
            .sort_by(|a, b| (&a.chain, a.sequence, a.kind).cmp(&(&b.chain, b.sequence, b.kind)));
        Ok(report)
    }

    /// One chain: its in-range links plus the rest of it from the table; confirmed from
    /// the table alone when something looks wrong.
    async fn check_chain(
        &self,
        chain_id: String,
        mut links: Vec<Link>,
        expired: bool,
    ) -> Result<ChainCheck, StoreError> {
        let (first, last) = links
            .iter()
            .fold((u64::MAX, 0), |(lo, hi), l| (lo.min(l.seq), hi.max(l.seq)));
        if first > 0 && first != u64::MAX {
            links.extend(
                self.read_links(&chain_id, Some(("seq < :edge", first)))
                    .await?,
            );
        }
        links.extend(
            self.read_links(&chain_id, Some(("seq > :edge", last)))
                .await?,
        );
        let check = check_links(&chain_id, links, expired);
        if check.problems.is_empty() {
            return Ok(check);
        }
        let whole = self.read_links(&chain_id, None).await?;
        Ok(check_links(&chain_id, whole, expired))
    }

    /// The links of the entries in `range`, by chain, from the by-day index.
    async fn links_in(&self, range: &TimeRange) -> Result<ChainLinks, VerifyError> {
        let mut days = range.days_newest_first().into_iter();
        let mut running = tokio::task::JoinSet::new();
        let mut chains = ChainLinks::new();
        let mut total = 0u64;
        loop {
            while running.len() < CONCURRENCY {
                let Some(day) = days.next() else { break };
                let (reader, range) = (self.clone(), range.clone());
                running.spawn(async move { reader.day_links(&day, &range).await });
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let day = joined
                .map_err(|e| StoreError::Corrupt(format!("a day's read did not finish: {e}")))??;
            for (chain_id, links) in day {
                total += links.len() as u64;
                chains.entry(chain_id).or_default().extend(links);
            }
            if total > MAX_ENTRIES {
                return Err(VerifyError::TooLarge(MAX_ENTRIES));
            }
        }
        Ok(chains)
    }

    async fn day_links(&self, day: &str, range: &TimeRange) -> Result<ChainLinks, StoreError> {
        let mut chains = ChainLinks::new();
        let mut start = None;
        let mut read = 0u64;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_DAY_INDEX)
                .key_condition_expression("#day = :day AND #ts BETWEEN :from AND :to")
                .expression_attribute_names("#day", "day")
                .expression_attribute_names("#ts", "ts")
                .expression_attribute_values(":day", s(day))
                .expression_attribute_values(":from", s(range.from_key()))
                .expression_attribute_values(":to", s(range.to_key()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk_error)?;
            for item in out.items() {
                let Some(chain_id) = item.get("chain_id").and_then(|v| v.as_s().ok()) else {
                    continue;
                };
                if let Some(stored) = StoredEntry::from_item(item) {
                    let link = check_entry(&stored, &self.hmac_key);
                    chains.entry(chain_id.clone()).or_default().push(link);
                }
            }
            read += out.items().len() as u64;
            start = out.last_evaluated_key().cloned();
            // Stops one day from growing past the limit before the total is looked at.
            if start.is_none() || read > MAX_ENTRIES {
                return Ok(chains);
            }
        }
    }

    /// A chain's links from the table itself, consistently read: all of them, or those
    /// on one side of `edge` (`"seq < :edge"` or `"seq > :edge"`).
    async fn read_links(
        &self,
        chain_id: &str,
        edge: Option<(&str, u64)>,
    ) -> Result<Vec<Link>, StoreError> {
        let key = Arc::clone(&self.hmac_key);
        let mut links = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":chain", s(chain_id))
                .consistent_read(true)
                .set_exclusive_start_key(start);
            query = match edge {
                Some((condition, seq)) => query
                    .key_condition_expression(format!("chain_id = :chain AND {condition}"))
                    .expression_attribute_values(":edge", n(seq)),
                None => query.key_condition_expression("chain_id = :chain"),
            };
            let out = query.send().await.map_err(sdk_error)?;
            links.extend(
                out.items()
                    .iter()
                    .filter_map(StoredEntry::from_item)
                    .map(|stored| check_entry(&stored, &key)),
            );
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(links);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::AuditEntry;
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
    const CHAIN: &str = "01JCHAIN";

    fn chain(len: u64) -> Vec<SealedEntry> {
        let mut prev = String::new();
        (0..len)
            .map(|seq| {
                let sealed = AuditEntry {
                    chain_id: CHAIN.into(),
                    seq,
                    timestamp: format!("2026-03-01T10:00:{seq:02}.000000Z"),
                    actor: "bob".into(),
                    action: "login".into(),
                    outcome: "success".into(),
                    details: format!(r#"{{"n":{seq}}}"#),
                    source_ip: "203.0.113.7".into(),
                    user_agent: "curl".into(),
                    request_id: format!("r{seq}"),
                }
                .seal(KEY, &prev, 0);
                prev = sealed.mac.clone();
                sealed
            })
            .collect()
    }

    fn check(entries: Vec<SealedEntry>) -> Vec<(u64, ProblemKind)> {
        check_with(entries, false)
    }

    fn check_with(entries: Vec<SealedEntry>, expired: bool) -> Vec<(u64, ProblemKind)> {
        let result = verify_chain(
            CHAIN,
            entries.into_iter().map(Into::into).collect(),
            KEY,
            expired,
        );
        result
            .problems
            .iter()
            .map(|p| {
                assert_eq!(p.chain, CHAIN);
                assert!(!p.detail.is_empty());
                (p.sequence, p.kind)
            })
            .collect()
    }

    /// Puts `entry`'s content into slot `seq`, as a direct table edit would.
    fn at_slot(mut entry: SealedEntry, seq: u64) -> SealedEntry {
        entry.entry.seq = seq;
        entry
    }

    #[test]
    fn an_untouched_chain_verifies_in_any_read_order() {
        let mut entries = chain(20);
        entries.reverse();
        let result = verify_chain(
            CHAIN,
            entries.into_iter().map(Into::into).collect(),
            KEY,
            false,
        );
        assert_eq!(result.entries_checked, 20);
        assert!(result.problems.is_empty(), "{:?}", result.problems);
        assert!(check(Vec::new()).is_empty());
    }

    #[test]
    fn an_edited_field_is_modified() {
        let mut entries = chain(10);
        entries[4].entry.outcome = "denied".into();
        assert_eq!(check(entries), [(4, ProblemKind::Modified)]);
    }

    #[test]
    fn a_missing_attribute_is_modified() {
        let mut stored: Vec<StoredEntry> = chain(5).into_iter().map(Into::into).collect();
        stored[2].sealed = Err("attribute outcome is missing or not a string".into());
        let result = verify_chain(CHAIN, stored, KEY, false);
        let kinds: Vec<_> = result
            .problems
            .iter()
            .map(|p| (p.sequence, p.kind))
            .collect();
        assert_eq!(kinds, [(2, ProblemKind::Modified)]);
    }

    #[test]
    fn a_deleted_entry_in_the_middle_is_missing() {
        let mut entries = chain(10);
        entries.remove(6);
        assert_eq!(check(entries), [(6, ProblemKind::Missing)]);
        let mut entries = chain(10);
        entries.drain(3..6);
        assert_eq!(check(entries), [(3, ProblemKind::Missing)]);
    }

    #[test]
    fn a_deletion_hidden_by_renumbering_is_missing() {
        let entries: Vec<SealedEntry> = chain(10)
            .into_iter()
            .filter(|e| e.entry.seq != 4)
            .enumerate()
            .map(|(slot, e)| at_slot(e, slot as u64))
            .collect();
        assert_eq!(check(entries), [(4, ProblemKind::Missing)]);
    }

    #[test]
    fn a_deleted_head_is_missing_unless_it_may_have_expired() {
        let entries: Vec<SealedEntry> = chain(10).into_iter().skip(3).collect();
        assert_eq!(check(entries.clone()), [(0, ProblemKind::Missing)]);
        assert!(check_with(entries, true).is_empty());
        // Renumbered down to 0, it still does not start with a first entry.
        let renumbered: Vec<SealedEntry> = chain(10)
            .into_iter()
            .skip(3)
            .enumerate()
            .map(|(slot, e)| at_slot(e, slot as u64))
            .collect();
        assert_eq!(check(renumbered), [(0, ProblemKind::Missing)]);
    }

    #[test]
    fn a_deleted_tail_is_not_detectable() {
        let mut entries = chain(10);
        entries.truncate(7);
        assert!(check(entries).is_empty());
    }

    #[test]
    fn a_swapped_pair_is_reordered_and_nothing_else() {
        let mut entries = chain(10);
        let (a, b) = (entries[4].clone(), entries[5].clone());
        entries[4] = at_slot(b, 4);
        entries[5] = at_slot(a, 5);
        assert_eq!(
            check(entries),
            [(4, ProblemKind::Reordered), (5, ProblemKind::Reordered)]
        );
        let mut entries = chain(10);
        let (a, b) = (entries[3].clone(), entries[7].clone());
        entries[3] = at_slot(b, 3);
        entries[7] = at_slot(a, 7);
        assert_eq!(
            check(entries),
            [(3, ProblemKind::Reordered), (7, ProblemKind::Reordered)]
        );
        let mut entries = chain(10);
        let (first, second) = (entries[0].clone(), entries[1].clone());
        entries[0] = at_slot(second, 0);
        entries[1] = at_slot(first, 1);
        assert_eq!(
            check(entries),
            [(0, ProblemKind::Reordered), (1, ProblemKind::Reordered)]
        );
    }

    #[test]
    fn a_moved_entry_is_reordered_and_its_empty_slot_missing() {
        let mut entries = chain(10);
        let moved = entries.remove(3);
        entries.push(at_slot(moved, 10));
        assert_eq!(
            check(entries),
            [(3, ProblemKind::Missing), (10, ProblemKind::Reordered)]
        );
    }

    #[test]
    fn a_copied_entry_is_reordered() {
        let mut entries = chain(10);
        let copy = at_slot(entries[2].clone(), 10);
        entries.push(copy);
        assert_eq!(check(entries), [(10, ProblemKind::Reordered)]);
    }

    fn forge(seq: u64, prev_mac: &str) -> SealedEntry {
        let mut forged = chain(1).remove(0);
        forged.entry.seq = seq;
        forged.entry.actor = "mallory".into();
        forged.entry.timestamp = "2026-03-01T11:00:00.000000Z".into();
        let sealed = forged
            .entry
            .seal(b"not the key, but just as long!!!", prev_mac, 0);
        assert_eq!(sealed.content_hash, sealed.entry.content_hash());
        sealed
    }

    #[test]
    fn a_forged_entry_has_a_bad_mac() {
        let mut entries = chain(10);
        let last_mac = entries[9].mac.clone();
        entries.push(forge(10, &last_mac));
        assert_eq!(check(entries), [(10, ProblemKind::BadMac)]);

        // In place of a real entry: the next entry's broken link is explained by it.
        let mut entries = chain(10);
        let prev = entries[4].mac.clone();
        entries[5] = forge(5, &prev);
        assert_eq!(check(entries), [(5, ProblemKind::BadMac)]);
    }

    #[test]
    fn a_rewritten_link_is_a_bad_mac() {
        let mut entries = chain(10);
        entries[6].prev_mac = entries[2].mac.clone();
        assert_eq!(check(entries), [(6, ProblemKind::BadMac)]);
    }

    #[test]
    fn an_entry_from_another_chain_is_modified() {
        let mut entries = chain(5);
        let mut copied = entries[2].clone();
        copied.entry.chain_id = "01JOTHER".into();
        let mut copied = copied.entry.seal(KEY, &entries[1].mac, 0);
        // Stored under this chain's key, its chain_id attribute is this chain's.
        copied.entry.chain_id = CHAIN.into();
        entries[2] = copied;
        assert_eq!(check(entries), [(2, ProblemKind::Modified)]);
    }

    #[test]
    fn only_old_enough_chains_may_have_lost_their_head() {
        // The chain's id first: its ULID's millisecond must not be later than `now`.
        let young = ulid::Ulid::new().to_string();
        let now = OffsetDateTime::now_utc();
        let day = Duration::from_secs(86_400);
        assert!(!head_may_have_expired(&young, day, now));
        assert!(head_may_have_expired(&young, day, now + day));
        assert!(!head_may_have_expired("not-a-ulid", day, now + day * 1000));
    }
}
