//! The crawler's SQLite database: one row per node, written in transactions.
//!
//! Every save is one transaction, so a crash leaves the rows of the last committed batch
//! and none of a half-written one; a rerun [`load`](SqliteStore::load)s them and continues.
//! The columns are flat so the file answers questions with plain SQL (see the README);
//! `probe_json` keeps the whole probe result so a reload loses nothing.

use std::{net::IpAddr, path::Path, str::FromStr};

use alloy_primitives::FixedBytes;
use rusqlite::{params, Connection, OptionalExtension};

use super::{node::CrawledNode, probe::ProbeResult, summary::ClientName, CrawlError, CrawlSink};
use crate::record::{parse_enr, ForkId, PeerId};

/// The schema. `IF NOT EXISTS` everywhere: opening an existing file is a no-op.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS nodes (
    node_id           TEXT PRIMARY KEY,
    peer_id           TEXT NOT NULL,
    ip                TEXT NOT NULL,
    tcp_port          INTEGER,
    udp_port          INTEGER,
    enr               TEXT,
    enode             TEXT,
    seq               INTEGER NOT NULL,
    discv4            INTEGER NOT NULL,
    discv5            INTEGER NOT NULL,
    fork_id           TEXT,
    first_seen        INTEGER NOT NULL,
    last_seen         INTEGER NOT NULL,
    score             INTEGER NOT NULL,
    first_response    INTEGER,
    last_response     INTEGER,
    last_check        INTEGER,
    probed_at         INTEGER,
    client_id         TEXT,
    client_name       TEXT,
    client_version    TEXT,
    capabilities      TEXT,
    eth_version       INTEGER,
    network_id        INTEGER,
    genesis           TEXT,
    status_fork_id    TEXT,
    head              TEXT,
    latest_block      INTEGER,
    disconnect_reason TEXT,
    probe_error       TEXT,
    probe_json        TEXT
);
CREATE INDEX IF NOT EXISTS nodes_client ON nodes (client_name);
CREATE INDEX IF NOT EXISTS nodes_fork ON nodes (fork_id);
CREATE TABLE IF NOT EXISTS crawls (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    started   INTEGER NOT NULL,
    finished  INTEGER,
    found     INTEGER,
    answered  INTEGER,
    probed    INTEGER,
    dialable  INTEGER
);
";

const UPSERT: &str = "
INSERT OR REPLACE INTO nodes (
    node_id, peer_id, ip, tcp_port, udp_port, enr, enode, seq, discv4, discv5, fork_id,
    first_seen, last_seen, score, first_response, last_response, last_check,
    probed_at, client_id, client_name, client_version, capabilities, eth_version,
    network_id, genesis, status_fork_id, head, latest_block, disconnect_reason, probe_error, probe_json
) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
          ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31)";

/// The SQLite store. Owned by whoever drives the crawl; `rusqlite::Connection` is not
/// `Sync`, so it is never shared.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    crawl: Option<i64>,
}

impl SqliteStore {
    /// Opens (or creates) the database at `path` and its schema. WAL mode: readers (a
    /// `sqlite3` shell watching the crawl) do not block the writer.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CrawlError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL in WAL mode: a power cut may lose the last commits, never consistency.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self { conn, crawl: None })
    }

    /// An in-memory database (for tests).
    pub fn in_memory() -> Result<Self, CrawlError> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self { conn, crawl: None })
    }

    /// Every node stored by earlier runs. Rows that no longer parse (edited by hand) are
    /// skipped.
    pub fn load(&self) -> Result<Vec<CrawledNode>, CrawlError> {
        let mut stmt = self.conn.prepare(
            "SELECT node_id, peer_id, ip, tcp_port, udp_port, enr, discv4, discv5, fork_id, first_seen,
                    last_seen, score, first_response, last_response, last_check, probe_json FROM nodes",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(StoredRow {
                peer_id: row.get(1)?,
                ip: row.get(2)?,
                tcp_port: row.get(3)?,
                udp_port: row.get(4)?,
                enr: row.get(5)?,
                discv4: row.get(6)?,
                discv5: row.get(7)?,
                fork_id: row.get(8)?,
                first_seen: row.get(9)?,
                last_seen: row.get(10)?,
                score: row.get(11)?,
                first_response: row.get(12)?,
                last_response: row.get(13)?,
                last_check: row.get(14)?,
                probe_json: row.get(15)?,
            })
        })?;
        let mut nodes = Vec::new();
        for row in rows {
            if let Some(node) = row?.into_node() {
                nodes.push(node);
            }
        }
        Ok(nodes)
    }

    /// Writes `nodes` in one transaction.
    pub fn save(&mut self, nodes: &[CrawledNode]) -> Result<(), CrawlError> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(UPSERT)?;
            for node in nodes {
                let probe = node.probe.as_ref();
                let hello = probe.and_then(|p| p.hello.as_ref());
                let status = probe.and_then(|p| p.status.as_ref());
                let client = hello.map(|h| ClientName::parse(&h.client_id));
                stmt.execute(params![
                    hex::encode(node.node_id),
                    hex::encode(node.peer_id),
                    node.ip.to_string(),
                    node.tcp_port,
                    node.udp_port,
                    node.enr.as_ref().map(|e| e.to_base64()),
                    node.enode().map(|e| e.to_string()),
                    node.seq() as i64,
                    node.discv4,
                    node.discv5,
                    node.fork_id.map(|f| f.to_string()),
                    node.first_seen as i64,
                    node.last_seen as i64,
                    node.score,
                    node.first_response.map(|t| t as i64),
                    node.last_response.map(|t| t as i64),
                    node.last_check.map(|t| t as i64),
                    probe.map(|p| p.at as i64),
                    hello.map(|h| h.client_id.clone()),
                    client.as_ref().map(|c| c.name.clone()),
                    client.and_then(|c| c.version),
                    hello.map(|h| h.capabilities.join(",")),
                    hello.and_then(|h| h.eth_version()),
                    status.map(|s| s.network_id as i64),
                    status.map(|s| s.genesis.to_string()),
                    status.map(|s| s.fork_id.to_string()),
                    status.map(|s| s.head.to_string()),
                    status.and_then(|s| s.latest_block.map(|b| b as i64)),
                    probe.and_then(|p| p.disconnect.clone()),
                    probe.and_then(|p| p.error.clone()),
                    probe.map(|p| serde_json::to_string(p).unwrap_or_default()),
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Records the start of a crawl run.
    pub fn begin_crawl(&mut self, started: u64) -> Result<(), CrawlError> {
        self.conn.execute("INSERT INTO crawls (started) VALUES (?1)", params![started as i64])?;
        self.crawl = Some(self.conn.last_insert_rowid());
        Ok(())
    }

    /// Records the end of the current crawl run with its counts.
    pub fn finish_crawl(&mut self, finished: u64, counts: &super::CrawlCounts) -> Result<(), CrawlError> {
        let Some(id) = self.crawl else { return Ok(()) };
        self.conn.execute(
            "UPDATE crawls SET finished = ?1, found = ?2, answered = ?3, probed = ?4, dialable = ?5
             WHERE id = ?6",
            params![
                finished as i64,
                counts.found as i64,
                counts.answered as i64,
                counts.probed as i64,
                counts.dialable as i64,
                id
            ],
        )?;
        Ok(())
    }

    /// How many crawl runs the file records.
    pub fn crawl_runs(&self) -> Result<u64, CrawlError> {
        let n: Option<i64> =
            self.conn.query_row("SELECT COUNT(*) FROM crawls", [], |r| r.get(0)).optional()?;
        Ok(n.unwrap_or(0) as u64)
    }

    /// The underlying connection, for ad-hoc queries.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

impl CrawlSink for SqliteStore {
    fn save(&mut self, nodes: &[CrawledNode]) -> Result<(), CrawlError> {
        SqliteStore::save(self, nodes)
    }
}

struct StoredRow {
    peer_id: String,
    ip: String,
    tcp_port: Option<u16>,
    udp_port: Option<u16>,
    enr: Option<String>,
    discv4: bool,
    discv5: bool,
    fork_id: Option<String>,
    first_seen: i64,
    last_seen: i64,
    score: i64,
    first_response: Option<i64>,
    last_response: Option<i64>,
    last_check: Option<i64>,
    probe_json: Option<String>,
}

impl StoredRow {
    fn into_node(self) -> Option<CrawledNode> {
        let peer_id = PeerId::from_str(&self.peer_id).ok()?;
        let enr = match self.enr {
            Some(text) => Some(parse_enr(&text).ok()?),
            None => None,
        };
        let probe: Option<ProbeResult> = self.probe_json.and_then(|json| serde_json::from_str(&json).ok());
        let unix = |t: i64| u64::try_from(t).unwrap_or(0);
        Some(CrawledNode {
            node_id: crate::record::node_id(&peer_id),
            peer_id,
            ip: IpAddr::from_str(&self.ip).ok()?,
            tcp_port: self.tcp_port,
            udp_port: self.udp_port,
            enr,
            discv4: self.discv4,
            discv5: self.discv5,
            fork_id: self.fork_id.as_deref().and_then(parse_fork_id),
            first_seen: unix(self.first_seen),
            last_seen: unix(self.last_seen),
            score: self.score,
            first_response: self.first_response.map(unix),
            last_response: self.last_response.map(unix),
            last_check: self.last_check.map(unix),
            probe,
        })
    }
}

/// Parses `hash/next` as [`ForkId`]'s `Display` writes it.
fn parse_fork_id(text: &str) -> Option<ForkId> {
    let (hash, next) = text.split_once('/')?;
    let hash: [u8; 4] = hex::decode(hash).ok()?.try_into().ok()?;
    Some(ForkId { hash: FixedBytes(hash), next: next.parse().ok()? })
}
