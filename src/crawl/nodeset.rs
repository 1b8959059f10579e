//! go-ethereum's `nodes.json` ("nodeset") format, so `devp2p nodeset filter`, the DNS tree
//! signer and other existing tools read what the crawler writes.
//!
//! The file is one JSON object keyed by the hex node id (no `0x`, as Go's `enode.ID`
//! marshals), each value `{"seq", "record", "score", "firstResponse", "lastResponse",
//! "lastCheck"}` with RFC 3339 times; `record` is the `enr:` text, or the `enode://` URL
//! for a node whose record we never got (geth's parser accepts both).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::node::CrawledNode;

/// One value of the nodeset object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct NodesetEntry {
    /// The record's sequence number.
    pub seq: u64,
    /// `enr:...` or `enode://...`.
    pub record: String,
    /// The liveness score (+1 per answer, halved per failure).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub score: i64,
    /// First answer, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_response: Option<String>,
    /// Last answer, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_response: Option<String>,
    /// Last attempt, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<String>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl NodesetEntry {
    /// The entry for `node`, or `None` if it has neither a record nor a dialable address.
    pub fn of(node: &CrawledNode) -> Option<Self> {
        let record = match (&node.enr, node.enode()) {
            (Some(enr), _) => enr.to_base64(),
            (None, Some(enode)) => enode.to_string(),
            (None, None) => return None,
        };
        Some(Self {
            seq: node.seq(),
            record,
            score: node.score,
            first_response: node.first_response.map(rfc3339),
            last_response: node.last_response.map(rfc3339),
            last_check: node.last_check.map(rfc3339),
        })
    }
}

/// The nodeset: node id (hex, no prefix) to entry, sorted by id as Go writes maps.
pub type Nodeset = BTreeMap<String, NodesetEntry>;

/// Builds the nodeset of `nodes`.
pub fn nodeset<'a>(nodes: impl IntoIterator<Item = &'a CrawledNode>) -> Nodeset {
    nodes.into_iter().filter_map(|node| Some((hex::encode(node.node_id), NodesetEntry::of(node)?))).collect()
}

/// `nodes` as pretty-printed nodeset JSON (geth indents with two spaces too).
pub fn to_nodes_json<'a>(nodes: impl IntoIterator<Item = &'a CrawledNode>) -> String {
    serde_json::to_string_pretty(&nodeset(nodes)).unwrap_or_else(|_| "{}".into())
}

/// Writes the nodeset of `nodes` to `path` atomically (a reader, or a crawler killed
/// mid-write, never leaves a torn file), clearing temporaries an earlier kill left.
pub fn write_nodes_json<'a>(
    path: &std::path::Path,
    nodes: impl IntoIterator<Item = &'a CrawledNode>,
) -> std::io::Result<()> {
    crate::fsutil::remove_stale_temporaries(path);
    crate::fsutil::write_atomically(path, to_nodes_json(nodes).as_bytes())
}

/// Parses a nodeset file.
pub fn parse_nodes_json(text: &str) -> Result<Nodeset, serde_json::Error> {
    serde_json::from_str(text)
}

/// Unix seconds as RFC 3339 UTC (`2024-03-13T13:55:35Z`), the form Go's `time.Time`
/// marshals to at second precision.
pub fn rfc3339(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Howard Hinnant's days-to-civil algorithm (proleptic Gregorian, era of 400 years).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3_600, secs % 3_600 / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_710_338_135), "2024-03-13T13:55:35Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
