//! The end-of-crawl summary: nodes by network (fork id), by client, by eth version, and
//! the share that accepted a dial.

use std::{collections::BTreeMap, fmt};

use super::{
    node::CrawledNode,
    probe::{HelloInfo, ProbeResult, StatusReport},
};
use crate::record::ForkId;

/// A client id split the way crawlers report it: `Geth/v1.14.0-stable/linux-amd64/go1.22.2`
/// is client `Geth`, version `v1.14.0-stable`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientName {
    /// The client's name (`Geth`, `reth`, `Nethermind`, `erigon`, `besu`, ...).
    pub name: String,
    /// Its version, if the id carries one.
    pub version: Option<String>,
}

impl ClientName {
    /// Splits a client id. A node name inserted after the client's name
    /// (`Geth/mynode/v1.14.0/...`) is skipped: the version is the first part that looks like
    /// one (`v` or a digit, then a digit).
    pub fn parse(client_id: &str) -> Self {
        let mut parts = client_id.split('/');
        let name = parts.next().unwrap_or_default().trim().to_string();
        let looks_like_version = |part: &&str| {
            let digits = part.strip_prefix('v').unwrap_or(part);
            digits.chars().next().is_some_and(|c| c.is_ascii_digit())
        };
        let version = parts.find(looks_like_version).map(str::to_string);
        Self { name, version }
    }
}

/// Counts per key, printed largest first; JSON: an object of counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Tally(BTreeMap<String, usize>);

impl Tally {
    fn add(&mut self, key: impl Into<String>) {
        *self.0.entry(key.into()).or_default() += 1;
    }

    /// The count for `key`.
    pub fn get(&self, key: &str) -> usize {
        self.0.get(key).copied().unwrap_or(0)
    }

    /// `(key, count)`, largest count first, then by key.
    pub fn sorted(&self) -> Vec<(&str, usize)> {
        let mut rows: Vec<_> = self.0.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        rows
    }
}

/// Shares of a total, in percent: counts per key and the denominator they are shares of.
/// JSON: an object of percentages rounded to 0.1 (`{"Geth": 42.9}`); the counts and the
/// denominator are served beside it, so nothing is lost to the rounding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shares {
    counts: Tally,
    of: usize,
}

impl Shares {
    /// `counts` as shares of `of`.
    pub fn new(counts: Tally, of: usize) -> Self {
        Self { counts, of }
    }

    /// The share of `key` in percent (0 when the denominator is 0).
    pub fn percent(&self, key: &str) -> f64 {
        percent(self.counts.get(key), self.of)
    }

    /// The denominator.
    pub fn of(&self) -> usize {
        self.of
    }
}

impl serde::Serialize for Shares {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.counts.0.len()))?;
        for (key, n) in &self.counts.0 {
            map.serialize_entry(key, &((percent(*n, self.of) * 10.0).round() / 10.0))?;
        }
        map.end()
    }
}

fn percent(n: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        100.0 * n as f64 / of as f64
    }
}

/// The summary table printed at the end of a crawl (and served as JSON by the HTTP API).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Summary {
    /// Nodes in the summary.
    pub nodes: usize,
    /// Nodes that answered discovery at least once.
    pub answered: usize,
    /// Nodes found by discv4 / by discv5.
    pub discv4: usize,
    /// See `discv4`.
    pub discv5: usize,
    /// Nodes probed over RLPx.
    pub probed: usize,
    /// Probed nodes that completed the Hello.
    pub dialable: usize,
    /// By fork id (`<hash>/<next>`, from Status, else from the record; `unknown`).
    pub by_network: Tally,
    /// By client name (from Hello).
    pub by_client: Tally,
    /// By client name and version.
    pub by_client_version: Tally,
    /// Nodes whose client is known (they completed a Hello with us, when we dialed them or
    /// when they dialed us): the denominator of [`client_share`](Self::client_share) and
    /// [`client_version_share`](Self::client_version_share).
    pub known_client: usize,
    /// Of `known_client`, the nodes known only from dialing us (NAT'd nodes, or nodes our
    /// probe could not reach): their Hello and Status count in the census too.
    pub known_from_inbound: usize,
    /// `by_client` in percent of `known_client`.
    pub client_share: Shares,
    /// `by_client_version` in percent of `known_client`.
    pub client_version_share: Shares,
    /// By highest eth version offered (`eth/68`).
    pub by_eth_version: Tally,
    /// By disconnect reason or probe error.
    pub by_failure: Tally,
    /// Census: each eth version offered in the Hello (`eth/66` … `eth/72`); a node offering
    /// several counts once under each.
    pub by_eth_offered: Tally,
    /// Census: nodes with a known client (see `known_client`) offering snap.
    pub snap: usize,
    /// Census: history served, from the eth/69+ Status block range: `full` (earliest block
    /// 0), `expired` (a later earliest block), `unknown (eth/68 or older)`.
    pub by_history: Tally,
    /// Census: nodes without a record (no EIP-868, or none fetched) whose network and client
    /// came from their Hello and Status instead.
    pub classified_without_record: usize,
    /// Census: fork id readiness against [`expected_fork`](Self::expected_fork), filled by
    /// [`fork_readiness`](Self::fork_readiness): `ready`, `not ready` (same fork, another or
    /// no next fork), `other fork`, `unknown`.
    pub by_fork_readiness: Tally,
    /// The fork id nodes should announce (the chosen network's current fork and its next
    /// scheduled one), if given.
    pub expected_fork: Option<String>,
}

impl Summary {
    /// Summarises `nodes`.
    pub fn of<'a>(nodes: impl IntoIterator<Item = &'a CrawledNode>) -> Self {
        let mut s = Self::default();
        for node in nodes {
            s.nodes += 1;
            s.answered += usize::from(node.first_response.is_some());
            s.discv4 += usize::from(node.discv4);
            s.discv5 += usize::from(node.discv5);
            match status_fork(node).or(node.fork_id) {
                Some(id) => s.by_network.add(id.to_string()),
                None => s.by_network.add("unknown"),
            }
            // The census takes the Hello and Status of our probe, else those the node sent
            // when it dialed us.
            let said = |p: &'a ProbeResult| p.hello.as_ref().map(|hello| (hello, p.status.as_ref()));
            let probed = node.probe.as_ref().and_then(said);
            if let Some((hello, status)) = probed.or_else(|| node.inbound.as_ref().and_then(said)) {
                s.known_from_inbound += usize::from(probed.is_none());
                s.census(node, hello, status);
            }
            let Some(probe) = &node.probe else { continue };
            s.probed += 1;
            match &probe.hello {
                Some(_) => s.dialable += 1,
                None => s.by_failure.add(
                    probe
                        .disconnect
                        .clone()
                        .or_else(|| probe.error.clone())
                        .unwrap_or_else(|| "unknown".into()),
                ),
            }
        }
        s.client_share = Shares::new(s.by_client.clone(), s.known_client);
        s.client_version_share = Shares::new(s.by_client_version.clone(), s.known_client);
        s
    }

    /// Counts one node's client, eth versions, snap and history.
    fn census(&mut self, node: &CrawledNode, hello: &HelloInfo, status: Option<&StatusReport>) {
        let s = self;
        s.known_client += 1;
        let client = ClientName::parse(&hello.client_id);
        s.by_client.add(client.name.clone());
        s.by_client_version.add(match client.version {
            Some(version) => format!("{} {version}", client.name),
            None => client.name,
        });
        s.by_eth_version.add(match hello.eth_version() {
            Some(v) => format!("eth/{v}"),
            None => "no eth".to_string(),
        });
        for cap in hello.capabilities.iter().filter(|c| c.starts_with("eth/")) {
            s.by_eth_offered.add(cap.clone());
        }
        s.snap += usize::from(hello.capabilities.iter().any(|c| c.starts_with("snap/")));
        if let Some(status) = status {
            s.by_history.add(match status.earliest_block {
                Some(0) => "full",
                Some(_) => "expired",
                None => "unknown (eth/68 or older)",
            });
        }
        s.classified_without_record += usize::from(node.enr.is_none());
    }

    /// Fills [`by_fork_readiness`](Self::by_fork_readiness): each node's fork id (from
    /// Status, else from its record) against `expected` (e.g. `ChainSpec::fork_id` at today's
    /// head: the current fork and the next one scheduled). A node on the current fork whose
    /// `next` differs has not been configured for the coming fork.
    pub fn fork_readiness<'a>(&mut self, nodes: impl IntoIterator<Item = &'a CrawledNode>, expected: ForkId) {
        self.expected_fork = Some(expected.to_string());
        self.by_fork_readiness = Tally::default();
        for node in nodes {
            self.by_fork_readiness.add(match status_fork(node).or(node.fork_id) {
                None => "unknown",
                Some(id) if id.hash == expected.hash && id.next == expected.next => "ready",
                Some(id) if id.hash == expected.hash => "not ready",
                Some(_) => "other fork",
            });
        }
    }

    /// Share of probed nodes that completed the Hello, in percent.
    pub fn dialable_percent(&self) -> f64 {
        percent(self.dialable, self.probed)
    }
}

/// The fork id a node's Status gave: our probe's, else the one it sent when it dialed us.
fn status_fork(node: &CrawledNode) -> Option<ForkId> {
    [&node.probe, &node.inbound].into_iter().flatten().find_map(|p| p.status.as_ref()).map(|st| st.fork_id)
}

/// Rows shown per table; the rest are summed into one `(other)` row.
const MAX_ROWS: usize = 15;

fn write_table(f: &mut fmt::Formatter<'_>, title: &str, tally: &Tally, total: usize) -> fmt::Result {
    if tally.0.is_empty() {
        return Ok(());
    }
    writeln!(f, "\n{title:<44} {:>7} {:>6}", "nodes", "share")?;
    let rows = tally.sorted();
    for (key, n) in rows.iter().take(MAX_ROWS) {
        writeln!(f, "  {key:<42} {n:>7} {:>5.1}%", percent(*n, total))?;
    }
    let rest: usize = rows.iter().skip(MAX_ROWS).map(|(_, n)| n).sum();
    if rest > 0 {
        writeln!(f, "  {:<42} {rest:>7} {:>5.1}%", "(other)", percent(rest, total))?;
    }
    Ok(())
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "nodes {}  answered {}  discv4 {}  discv5 {}  probed {}  dialable {} ({:.1}%)",
            self.nodes,
            self.answered,
            self.discv4,
            self.discv5,
            self.probed,
            self.dialable,
            self.dialable_percent()
        )?;
        write_table(f, "network (fork id)", &self.by_network, self.nodes)?;
        let of_known = match self.known_from_inbound {
            0 => format!("(share of {} with a known client)", self.known_client),
            n => format!(
                "(share of {} with a known client, {n} of them only from dialing us)",
                self.known_client
            ),
        };
        write_table(f, &format!("client {of_known}"), &self.by_client, self.known_client)?;
        write_table(f, &format!("client version {of_known}"), &self.by_client_version, self.known_client)?;
        write_table(f, "eth version", &self.by_eth_version, self.known_client)?;
        write_table(f, "eth versions offered", &self.by_eth_offered, self.known_client)?;
        if self.known_client > 0 {
            writeln!(
                f,
                "\nsnap offered by {} of {} nodes with a known client",
                self.snap, self.known_client
            )?;
        }
        write_table(f, "history (eth/69+ block range)", &self.by_history, self.known_client)?;
        if let Some(expected) = &self.expected_fork {
            write_table(
                f,
                &format!("fork readiness (expected {expected})"),
                &self.by_fork_readiness,
                self.nodes,
            )?;
        }
        if self.classified_without_record > 0 {
            writeln!(
                f,
                "\n{} nodes without a record classified from Hello and Status",
                self.classified_without_record
            )?;
        }
        write_table(f, "not dialable", &self.by_failure, self.probed - self.dialable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_names() {
        let geth = ClientName::parse("Geth/v1.14.0-stable-abc/linux-amd64/go1.22.2");
        assert_eq!((geth.name.as_str(), geth.version.as_deref()), ("Geth", Some("v1.14.0-stable-abc")));
        let named = ClientName::parse("Geth/my-node/v1.13.5-stable/linux-amd64/go1.21");
        assert_eq!(named.version.as_deref(), Some("v1.13.5-stable"));
        let neth = ClientName::parse("Nethermind/v1.25.4+20b10b35/linux-x64/dotnet8.0.2");
        assert_eq!((neth.name.as_str(), neth.version.as_deref()), ("Nethermind", Some("v1.25.4+20b10b35")));
        let bare = ClientName::parse("weird");
        assert_eq!((bare.name.as_str(), bare.version), ("weird", None));
        let reth = ClientName::parse("reth/v1.0.0-abcdef/x86_64-unknown-linux-gnu");
        assert_eq!(reth.version.as_deref(), Some("v1.0.0-abcdef"));
    }
}
