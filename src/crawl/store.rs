//! The crawler's SQLite database: one row per node, one per crawl round, one per uptime
//! session; written in transactions.
//!
//! Every save is one transaction, so a crash leaves the rows of the last committed batch
//! and none of a half-written one; a rerun [`load`](SqliteStore::load)s them and continues.
//! The columns are flat so the file answers questions with plain SQL (see the README);
//! `probe_json` keeps the whole probe result so a reload loses nothing.
//!
//! ## Rounds and sessions
//! Each round is a row in `crawls`. A node seen up in a round (it answered discovery,
//! completed a Hello, or contacted us) extends its open row in `node_sessions` or opens one;
//! an open session of a node not seen up is ended at that round's start. A node unseen for
//! `gone_after` rounds in a row gets `gone = 1`; its rows stay, and it comes back (`gone = 0`,
//! a new session) the next time it is seen up.
//!
//! ## Schema versions
//! `PRAGMA user_version` holds the schema version. A file from before versioning (version 0
//! with a `nodes` table) is version 1. Opening an older file runs every migration step in one
//! transaction: it ends at the newest version or, on any error, leaves the file as it was. A
//! file that is not a database, is damaged, or has a newer version is refused with its path
//! and nothing written to it.

use std::{net::IpAddr, path::Path, str::FromStr};

use alloy_primitives::FixedBytes;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::{
    node::{CrawledNode, InboundVia},
    probe::ProbeResult,
    summary::ClientName,
    CrawlError, CrawlSink, RoundReport,
};
use crate::record::{parse_enr, ForkId, PeerId};

/// The newest schema version; [`MIGRATIONS`] leads to it from version 1.
pub(crate) const SCHEMA_VERSION: i64 = 3;

/// Version 1, the crawler's first schema (before versioning): a new file starts from it and
/// runs every migration, so new and migrated files are built by the same statements.
pub(crate) const SCHEMA_V1: &str = "
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

/// `MIGRATIONS[i]` takes a file from version `i + 1` to `i + 2`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 2: rounds, uptime sessions, gone nodes, inbound sightings, census columns.
    "
ALTER TABLE nodes ADD COLUMN first_crawl INTEGER;
ALTER TABLE nodes ADD COLUMN last_up_crawl INTEGER;
ALTER TABLE nodes ADD COLUMN last_up INTEGER;
ALTER TABLE nodes ADD COLUMN gone INTEGER NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN gone_since INTEGER;
ALTER TABLE nodes ADD COLUMN dialable INTEGER;
ALTER TABLE nodes ADD COLUMN seen_inbound INTEGER NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN last_inbound INTEGER;
ALTER TABLE nodes ADD COLUMN inbound_json TEXT;
ALTER TABLE nodes ADD COLUMN snap INTEGER;
ALTER TABLE nodes ADD COLUMN earliest_block INTEGER;
UPDATE nodes SET
    dialable = CASE WHEN probed_at IS NULL THEN NULL WHEN client_id IS NOT NULL THEN 1 ELSE 0 END,
    snap = CASE WHEN capabilities IS NULL THEN NULL
                WHEN (',' || capabilities || ',') LIKE '%,snap/%' THEN 1 ELSE 0 END,
    earliest_block = json_extract(probe_json, '$.status.earliest_block');
ALTER TABLE crawls ADD COLUMN up INTEGER;
ALTER TABLE crawls ADD COLUMN gone INTEGER;
CREATE TABLE node_sessions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    node_id     TEXT NOT NULL,
    first_up    INTEGER NOT NULL,
    last_up     INTEGER NOT NULL,
    ended       INTEGER,
    first_crawl INTEGER NOT NULL,
    last_crawl  INTEGER NOT NULL,
    ended_crawl INTEGER,
    up_rounds   INTEGER NOT NULL
);
CREATE INDEX node_sessions_node ON node_sessions (node_id);
CREATE UNIQUE INDEX node_sessions_open ON node_sessions (node_id) WHERE ended IS NULL;
CREATE INDEX nodes_gone ON nodes (gone);
",
    // 3: how a node contacted us (discovery sightings besides RLPx); the RLPx ones before
    // it were the only kind.
    "
ALTER TABLE nodes ADD COLUMN inbound_via TEXT;
UPDATE nodes SET inbound_via = 'rlpx' WHERE seen_inbound = 1;
",
];

/// Writes the columns a [`CrawledNode`] has; the round bookkeeping (`gone`, `last_up`, ...)
/// and inbound columns are kept, which `INSERT OR REPLACE` would reset.
const UPSERT: &str = "
INSERT INTO nodes (
    node_id, peer_id, ip, tcp_port, udp_port, enr, enode, seq, discv4, discv5, fork_id,
    first_seen, last_seen, score, first_response, last_response, last_check, probed_at,
    client_id, client_name, client_version, capabilities, eth_version, network_id,
    genesis, status_fork_id, head, latest_block, disconnect_reason, probe_error,
    probe_json, dialable, snap, earliest_block, seen_inbound, last_inbound, inbound_json,
    inbound_via
)
VALUES (
    ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
    ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35, ?36, ?37,
    ?38
)
ON CONFLICT (node_id) DO UPDATE SET
    peer_id = excluded.peer_id,
    ip = excluded.ip,
    tcp_port = excluded.tcp_port,
    udp_port = excluded.udp_port,
    enr = excluded.enr,
    enode = excluded.enode,
    seq = excluded.seq,
    discv4 = excluded.discv4,
    discv5 = excluded.discv5,
    fork_id = excluded.fork_id,
    first_seen = excluded.first_seen,
    last_seen = excluded.last_seen,
    score = excluded.score,
    first_response = excluded.first_response,
    last_response = excluded.last_response,
    last_check = excluded.last_check,
    probed_at = excluded.probed_at,
    client_id = excluded.client_id,
    client_name = excluded.client_name,
    client_version = excluded.client_version,
    capabilities = excluded.capabilities,
    eth_version = excluded.eth_version,
    network_id = excluded.network_id,
    genesis = excluded.genesis,
    status_fork_id = excluded.status_fork_id,
    head = excluded.head,
    latest_block = excluded.latest_block,
    disconnect_reason = excluded.disconnect_reason,
    probe_error = excluded.probe_error,
    probe_json = excluded.probe_json,
    dialable = excluded.dialable,
    snap = excluded.snap,
    earliest_block = excluded.earliest_block,
    seen_inbound = excluded.seen_inbound,
    last_inbound = excluded.last_inbound,
    inbound_json = excluded.inbound_json,
    inbound_via = excluded.inbound_via";

/// The SQLite store. Owned by whoever drives the crawl; `rusqlite::Connection` is not
/// `Sync`, so it is never shared.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    crawl: Option<i64>,
}

impl SqliteStore {
    /// Opens (or creates) the database at `path`, migrating an older schema (see the module
    /// docs). WAL mode: readers (a `sqlite3` shell, the HTTP API) do not block the writer.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CrawlError> {
        let path = path.as_ref();
        let refuse = |reason: String| CrawlError::Database { path: path.to_path_buf(), reason };
        if path.exists() {
            // Looked at read-only first: a file that is not a database must come out of this
            // byte for byte (opening it read-write and setting WAL mode would create files
            // beside it, and a migration would write to it).
            check_readable(path).map_err(refuse)?;
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL in WAL mode: a power cut may lose the last commits, never consistency.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let mut store = Self { conn, crawl: None };
        store.migrate().map_err(|e| match e {
            CrawlError::Config(reason) => refuse(reason.to_string()),
            other => other,
        })?;
        Ok(store)
    }

    /// An in-memory database (for tests).
    pub fn in_memory() -> Result<Self, CrawlError> {
        let mut store = Self { conn: Connection::open_in_memory()?, crawl: None };
        store.migrate()?;
        Ok(store)
    }

    /// The file's schema version (2, the newest, once open).
    pub fn schema_version(&self) -> Result<i64, CrawlError> {
        Ok(self.conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// Brings the schema to [`SCHEMA_VERSION`] in one transaction.
    fn migrate(&mut self) -> Result<(), CrawlError> {
        let tx = self.conn.transaction()?;
        let mut version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(CrawlError::Config("written by a newer crawler (schema version above ours)"));
        }
        if version == 0 {
            // A new file, or one from before versioning: both are version 1 after this
            // (every statement of version 1 is `IF NOT EXISTS`).
            tx.execute_batch(SCHEMA_V1)?;
            version = 1;
        }
        let from = version;
        for step in &MIGRATIONS[(version - 1) as usize..] {
            tx.execute_batch(step)?;
            version += 1;
        }
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        if from != version {
            tracing::debug!(target: "ethp2p::crawl", from, to = version, "crawl database migrated");
        }
        Ok(())
    }

    /// Opens `path` read-only, for a reader beside the crawl (the HTTP API): no migration;
    /// a file of another schema version is refused.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, CrawlError> {
        let path = path.as_ref();
        let refuse = |reason: String| CrawlError::Database { path: path.to_path_buf(), reason };
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| refuse(format!("cannot open: {e}")))?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| refuse(format!("not a usable SQLite database: {e}")))?;
        if version != SCHEMA_VERSION {
            return Err(refuse(format!("schema version {version}, expected {SCHEMA_VERSION}")));
        }
        Ok(Self { conn, crawl: None })
    }

    /// Every node stored by earlier runs. Rows that no longer parse (edited by hand) are
    /// skipped.
    pub fn load(&self) -> Result<Vec<CrawledNode>, CrawlError> {
        self.load_where("1")
    }

    /// The nodes not marked gone.
    pub fn load_current(&self) -> Result<Vec<CrawledNode>, CrawlError> {
        self.load_where("gone = 0")
    }

    fn load_where(&self, condition: &str) -> Result<Vec<CrawledNode>, CrawlError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT node_id, peer_id, ip, tcp_port, udp_port, enr, discv4, discv5, fork_id, first_seen,
                    last_seen, score, first_response, last_response, last_check, probe_json,
                    seen_inbound, last_inbound, inbound_json, inbound_via FROM nodes
             WHERE {condition}"
        ))?;
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
                seen_inbound: row.get(16)?,
                last_inbound: row.get(17)?,
                inbound_json: row.get(18)?,
                inbound_via: row.get(19)?,
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
                    probe.map(|p| p.hello.is_some()),
                    hello.map(|h| h.capabilities.iter().any(|c| c.starts_with("snap/"))),
                    status.and_then(|s| s.earliest_block.map(|b| b as i64)),
                    node.seen_inbound,
                    node.last_inbound.map(|t| t as i64),
                    node.inbound.as_ref().map(|p| serde_json::to_string(p).unwrap_or_default()),
                    (!node.inbound_via.is_empty()).then(|| node.inbound_via.to_string()),
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Records the start of a crawl round (a row in `crawls`).
    pub fn begin_crawl(&mut self, started: u64) -> Result<(), CrawlError> {
        self.conn.execute("INSERT INTO crawls (started) VALUES (?1)", params![started as i64])?;
        self.crawl = Some(self.conn.last_insert_rowid());
        Ok(())
    }

    /// Records the end of the current crawl round with its counts.
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

    /// Ends the current round (see the module docs), in one transaction: its `crawls` row,
    /// the uptime sessions of the nodes it saw up and of those it did not, and which nodes
    /// are now gone. Rows of nodes it saw must have been saved already.
    pub fn end_round(&mut self, round: &RoundReport) -> Result<(), CrawlError> {
        let crawl = match self.crawl.take() {
            Some(id) => id,
            None => {
                self.begin_crawl(round.started)?;
                self.crawl.take().unwrap_or_default()
            }
        };
        let tx = self.conn.transaction()?;
        tx.execute("UPDATE nodes SET first_crawl = ?1 WHERE first_crawl IS NULL", params![crawl])?;
        {
            let mut node_up = tx.prepare_cached(
                "UPDATE nodes SET last_up_crawl = ?2, last_up = ?3, gone = 0, gone_since = NULL
                 WHERE node_id = ?1",
            )?;
            let mut extend = tx.prepare_cached(
                "UPDATE node_sessions SET last_up = ?3, last_crawl = ?2, up_rounds = up_rounds + 1
                 WHERE node_id = ?1 AND ended IS NULL",
            )?;
            let mut open = tx.prepare_cached(
                "INSERT INTO node_sessions (node_id, first_up, last_up, first_crawl, last_crawl, up_rounds)
                 VALUES (?1, ?3, ?3, ?2, ?2, 1)",
            )?;
            for (id, at) in &round.up {
                let id = hex::encode(id);
                node_up.execute(params![id, crawl, *at as i64])?;
                if extend.execute(params![id, crawl, *at as i64])? == 0 {
                    open.execute(params![id, crawl, *at as i64])?;
                }
            }
        }
        // Sessions not extended by this round end at its start: the node was down (or
        // silent to us) at some point during it.
        tx.execute(
            "UPDATE node_sessions SET ended = ?2, ended_crawl = ?1 WHERE ended IS NULL AND last_crawl < ?1",
            params![crawl, round.started as i64],
        )?;
        // Unseen for `gone_after` rounds in a row; a node never seen up counts from the round
        // before the one that found it.
        tx.execute(
            "UPDATE nodes SET gone = 1, gone_since = ?3
             WHERE gone = 0 AND ?1 - COALESCE(last_up_crawl, first_crawl - 1) >= ?2",
            params![crawl, round.gone_after, round.finished as i64],
        )?;
        let gone: i64 = tx.query_row("SELECT COUNT(*) FROM nodes WHERE gone = 1", [], |r| r.get(0))?;
        let counts = &round.counts;
        tx.execute(
            "UPDATE crawls SET finished = ?1, found = ?2, answered = ?3, probed = ?4, dialable = ?5,
                               up = ?6, gone = ?7
             WHERE id = ?8",
            params![
                round.finished as i64,
                counts.found as i64,
                counts.answered as i64,
                counts.probed as i64,
                counts.dialable as i64,
                round.up.len() as i64,
                gone,
                crawl
            ],
        )?;
        tx.commit()?;
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

    fn begin_round(&mut self, started: u64) -> Result<(), CrawlError> {
        self.begin_crawl(started)
    }

    fn end_round(&mut self, round: &RoundReport) -> Result<(), CrawlError> {
        SqliteStore::end_round(self, round)
    }
}

/// Opens `path` read-only and checks that it is an intact SQLite database, writing nothing.
fn check_readable(path: &Path) -> Result<(), String> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("cannot open: {e}"))?;
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| format!("not a usable SQLite database: {e}"))?;
    if check != "ok" {
        return Err(format!("damaged: {check}"));
    }
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| format!("cannot read the schema version: {e}"))?;
    if version > SCHEMA_VERSION {
        return Err(format!("written by a newer crawler (schema version {version}, ours {SCHEMA_VERSION})"));
    }
    Ok(())
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
    seen_inbound: bool,
    last_inbound: Option<i64>,
    inbound_json: Option<String>,
    inbound_via: Option<String>,
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
            seen_inbound: self.seen_inbound,
            last_inbound: self.last_inbound.map(unix),
            inbound: self.inbound_json.and_then(|json| serde_json::from_str(&json).ok()),
            inbound_via: self.inbound_via.as_deref().map(InboundVia::parse).unwrap_or_default(),
        })
    }
}

/// Parses `hash/next` as [`ForkId`]'s `Display` writes it.
fn parse_fork_id(text: &str) -> Option<ForkId> {
    let (hash, next) = text.split_once('/')?;
    let hash: [u8; 4] = hex::decode(hash).ok()?.try_into().ok()?;
    Some(ForkId { hash: FixedBytes(hash), next: next.parse().ok()? })
}
