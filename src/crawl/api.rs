//! The crawler's HTTP API (feature `observatory`): what the SQLite file knows, as JSON, plain
//! enode lists and Prometheus text, plus "check my node".
//!
//! The server reads the database through its own read-only connection per request (in
//! `spawn_blocking`), so it never shares the crawl task's connection and never blocks it (WAL
//! mode: readers and the writer do not wait for each other). Checks go to the [`Checker`]
//! task. Endpoints:
//!
//! | | |
//! |---|---|
//! | `GET /` | the page (one self-contained HTML file) |
//! | `GET /api/summary` | [`Summary`] of the nodes not gone, the census, the last round |
//! | `GET /api/nodes?client=&network=&eth=&dialable=&inbound=&gone=&limit=` | nodes as JSON |
//! | `GET /api/nodes/{id}` | one node with its probe and uptime sessions |
//! | `GET /api/enodes?…` | the same filters, one `enode://` per line |
//! | `POST /api/check` `{"enode": "enode://…"}` | probe it now ([`CheckReport`]) |
//! | `GET /metrics` | Prometheus text |

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::Arc,
};

use axum::{
    extract::{ConnectInfo, Path, Query, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use rusqlite::{types::Value, Connection};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use super::{
    check::{CheckError, Checker},
    summary::Summary,
    unix_now, CrawlError, SqliteStore,
};
use crate::record::ForkId;

const TARGET: &str = "ethp2p::crawl";
/// `/api/nodes` answers at most this many rows per request.
pub const MAX_NODES_PER_REQUEST: u32 = 10_000;
/// `/api/nodes` without `limit`.
const DEFAULT_NODES_LIMIT: u32 = 100;
/// The page, built into the binary.
const PAGE: &str = include_str!("observatory.html");

/// What the server needs: the database to read and, for `/api/check`, a checker.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ApiConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The crawl's SQLite file.
    pub db: PathBuf,
    /// The checker for `POST /api/check`; without one it answers 503.
    pub checker: Option<Checker>,
    /// The fork id nodes should announce, for the census's fork readiness (e.g.
    /// `ChainSpec::fork_id` at today's head). Default: none (no readiness table).
    pub expected_fork: Option<ForkId>,
}

impl ApiConfig {
    /// Serve `db` on `listen`, with `checker` for `/api/check`.
    pub fn new(listen: SocketAddr, db: impl Into<PathBuf>, checker: Option<Checker>) -> Self {
        Self { listen, db: db.into(), checker, expected_fork: None }
    }

    /// Sets [`expected_fork`](Self::expected_fork).
    pub fn expected_fork(mut self, fork: ForkId) -> Self {
        self.expected_fork = Some(fork);
        self
    }
}

/// The running server; dropping it does not stop it, [`shutdown`](Self::shutdown) does.
#[derive(Debug)]
pub struct ApiServer {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl ApiServer {
    /// Binds and starts serving.
    pub async fn start(config: ApiConfig) -> Result<Self, CrawlError> {
        let listener = TcpListener::bind(config.listen).await?;
        let local_addr = listener.local_addr()?;
        let state = Arc::new(ApiState {
            db: config.db,
            checker: config.checker,
            expected_fork: config.expected_fork,
        });
        let app = Router::new()
            .route("/", get(page))
            .route("/api/summary", get(summary))
            .route("/api/nodes", get(nodes))
            .route("/api/nodes/{id}", get(node))
            .route("/api/enodes", get(enodes))
            .route("/api/check", post(check))
            .route("/metrics", get(metrics))
            .with_state(state);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                });
            if let Err(e) = serve.await {
                tracing::warn!(target: TARGET, error = %e, "HTTP API stopped");
            }
        });
        tracing::debug!(target: TARGET, %local_addr, "HTTP API listening");
        Ok(Self { local_addr, stop: Some(stop), task })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets requests in progress finish, and returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Shared, immutable: the path and the checker handle.
#[derive(Debug)]
struct ApiState {
    db: PathBuf,
    checker: Option<Checker>,
    expected_fork: Option<ForkId>,
}

type Shared = State<Arc<ApiState>>;

/// An error as `{"error": "…"}` with its status.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<CrawlError> for ApiError {
    fn from(e: CrawlError) -> Self {
        Self(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        Self(StatusCode::INTERNAL_SERVER_ERROR, format!("database: {e}"))
    }
}

/// Runs `f` on a read-only connection, off the async threads.
async fn with_db<T: Send + 'static>(
    state: &ApiState,
    f: impl FnOnce(&SqliteStore) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let path = state.db.clone();
    tokio::task::spawn_blocking(move || {
        let store = SqliteStore::open_read_only(&path)?;
        f(&store)
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

async fn page() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE)
}

/// The last round, as `crawls` records it.
#[derive(Debug, Serialize)]
struct Round {
    id: i64,
    started: i64,
    finished: Option<i64>,
    found: Option<i64>,
    up: Option<i64>,
    gone: Option<i64>,
}

async fn summary(State(state): Shared) -> Result<Json<serde_json::Value>, ApiError> {
    let expected_fork = state.expected_fork;
    let value = with_db(&state, move |store| {
        let conn = store.connection();
        let nodes = store.load_current()?;
        let mut summary = Summary::of(&nodes);
        if let Some(fork) = expected_fork {
            summary.fork_readiness(&nodes, fork);
        }
        let last_round = conn
            .query_row(
                "SELECT id, started, finished, found, up, gone FROM crawls
                 WHERE finished IS NOT NULL ORDER BY id DESC LIMIT 1",
                [],
                |r| {
                    Ok(Round {
                        id: r.get(0)?,
                        started: r.get(1)?,
                        finished: r.get(2)?,
                        found: r.get(3)?,
                        up: r.get(4)?,
                        gone: r.get(5)?,
                    })
                },
            )
            .ok();
        let count = |sql: &str| -> Result<i64, rusqlite::Error> { conn.query_row(sql, [], |r| r.get(0)) };
        Ok(json!({
            "generated": unix_now(),
            "rounds": count("SELECT COUNT(*) FROM crawls")?,
            "last_round": last_round,
            "gone": count("SELECT COUNT(*) FROM nodes WHERE gone = 1")?,
            "seen_inbound": count("SELECT COUNT(*) FROM nodes WHERE gone = 0 AND seen_inbound = 1")?,
            "summary": summary,
        }))
    })
    .await?;
    Ok(Json(value))
}

/// Filters shared by `/api/nodes` and `/api/enodes`.
#[derive(Debug, Default, Deserialize)]
struct NodeFilter {
    /// Client name, case-insensitive (`geth`, `reth`).
    client: Option<String>,
    /// Network id from Status (`1`).
    network: Option<u64>,
    /// Offers this eth version (`68`).
    eth: Option<u32>,
    /// Completed the Hello on the last probe.
    dialable: Option<bool>,
    /// Contacted the crawler.
    inbound: Option<bool>,
    /// Include (`true`) or only (`only`) gone nodes; default: not gone.
    gone: Option<String>,
    /// Rows at most (≤ [`MAX_NODES_PER_REQUEST`]).
    limit: Option<u32>,
}

impl NodeFilter {
    /// The `WHERE` clause and its parameters.
    fn to_sql(&self) -> Result<(String, Vec<Value>), ApiError> {
        let mut clauses = Vec::new();
        let mut values = Vec::new();
        match self.gone.as_deref() {
            None | Some("false") => clauses.push("gone = 0".to_string()),
            Some("true") => {}
            Some("only") => clauses.push("gone = 1".to_string()),
            Some(other) => {
                return Err(ApiError(
                    StatusCode::BAD_REQUEST,
                    format!("gone: expected true, false or only, not {other:?}"),
                ))
            }
        }
        if let Some(client) = &self.client {
            values.push(Value::Text(client.clone()));
            clauses.push(format!("client_name = ?{} COLLATE NOCASE", values.len()));
        }
        if let Some(network) = self.network {
            values.push(Value::Integer(i64::try_from(network).unwrap_or(i64::MAX)));
            clauses.push(format!("network_id = ?{}", values.len()));
        }
        if let Some(eth) = self.eth {
            values.push(Value::Text(format!("%,eth/{eth},%")));
            clauses.push(format!("(',' || capabilities || ',') LIKE ?{}", values.len()));
        }
        if let Some(dialable) = self.dialable {
            clauses.push(format!("dialable = {}", i64::from(dialable)));
        }
        if let Some(inbound) = self.inbound {
            clauses.push(format!("seen_inbound = {}", i64::from(inbound)));
        }
        let limit = self.limit.unwrap_or(DEFAULT_NODES_LIMIT).min(MAX_NODES_PER_REQUEST);
        let clause = if clauses.is_empty() { "1".to_string() } else { clauses.join(" AND ") };
        Ok((format!("{clause} ORDER BY last_seen DESC, node_id LIMIT {limit}"), values))
    }
}

/// The columns `/api/nodes` returns, in order.
const NODE_COLUMNS: &[&str] = &[
    "node_id",
    "enode",
    "enr",
    "ip",
    "tcp_port",
    "udp_port",
    "discv4",
    "discv5",
    "client_id",
    "client_name",
    "client_version",
    "capabilities",
    "eth_version",
    "snap",
    "network_id",
    "fork_id",
    "status_fork_id",
    "latest_block",
    "earliest_block",
    "dialable",
    "seen_inbound",
    "last_inbound",
    "disconnect_reason",
    "probe_error",
    "first_seen",
    "last_seen",
    "last_up",
    "gone",
    "score",
];

fn rows_as_json(
    conn: &Connection,
    condition: &str,
    values: Vec<Value>,
) -> Result<Vec<serde_json::Value>, ApiError> {
    let sql = format!("SELECT {} FROM nodes WHERE {condition}", NODE_COLUMNS.join(", "));
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(values), |row| {
        let mut object = serde_json::Map::new();
        for (i, name) in NODE_COLUMNS.iter().enumerate() {
            let value = match row.get::<_, Value>(i)? {
                Value::Null => serde_json::Value::Null,
                Value::Integer(n) => json!(n),
                Value::Real(x) => json!(x),
                Value::Text(t) => json!(t),
                Value::Blob(b) => json!(hex::encode(b)),
            };
            object.insert((*name).to_string(), value);
        }
        Ok(serde_json::Value::Object(object))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

async fn nodes(
    State(state): Shared,
    Query(filter): Query<NodeFilter>,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    let (condition, values) = filter.to_sql()?;
    Ok(Json(with_db(&state, move |store| rows_as_json(store.connection(), &condition, values)).await?))
}

async fn node(State(state): Shared, Path(id): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    let id = id.to_ascii_lowercase();
    if id.len() != 64 || hex::decode(&id).is_err() {
        return Err(ApiError(StatusCode::BAD_REQUEST, "node id: expected 64 hex digits".into()));
    }
    with_db(&state, move |store| {
        let conn = store.connection();
        let mut rows = rows_as_json(conn, "node_id = ?1", vec![Value::Text(id.clone())])?;
        let Some(mut node) = rows.pop() else {
            return Err(ApiError(StatusCode::NOT_FOUND, format!("no node {id}")));
        };
        let probe: Option<String> =
            conn.query_row("SELECT probe_json FROM nodes WHERE node_id = ?1", [&id], |r| r.get(0))?;
        node["probe"] = probe.and_then(|p| serde_json::from_str(&p).ok()).unwrap_or(serde_json::Value::Null);
        let mut stmt = conn.prepare(
            "SELECT first_up, last_up, ended, first_crawl, last_crawl, ended_crawl, up_rounds
             FROM node_sessions WHERE node_id = ?1 ORDER BY first_crawl",
        )?;
        let sessions = stmt
            .query_map([&id], |r| {
                Ok(json!({
                    "first_up": r.get::<_, i64>(0)?,
                    "last_up": r.get::<_, i64>(1)?,
                    "ended": r.get::<_, Option<i64>>(2)?,
                    "first_crawl": r.get::<_, i64>(3)?,
                    "last_crawl": r.get::<_, i64>(4)?,
                    "ended_crawl": r.get::<_, Option<i64>>(5)?,
                    "up_rounds": r.get::<_, i64>(6)?,
                }))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        node["sessions"] = json!(sessions);
        Ok(Json(node))
    })
    .await
}

async fn enodes(State(state): Shared, Query(filter): Query<NodeFilter>) -> Result<Response, ApiError> {
    let (condition, values) = filter.to_sql()?;
    let text = with_db(&state, move |store| {
        let conn = store.connection();
        let sql = format!("SELECT enode FROM nodes WHERE enode IS NOT NULL AND {condition}");
        let mut stmt = conn.prepare(&sql)?;
        let mut text = String::new();
        for enode in stmt.query_map(rusqlite::params_from_iter(values), |r| r.get::<_, String>(0))? {
            text.push_str(&enode?);
            text.push('\n');
        }
        Ok(text)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

#[derive(Debug, Deserialize)]
struct CheckRequest {
    enode: String,
}

async fn check(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    // The body is parsed here rather than by axum's `Json` so that every malformed request
    // gets the same `{"error": …}` shape with the reason.
    let request: CheckRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError(StatusCode::BAD_REQUEST, format!("expected {{\"enode\": \"enode://…\"}}: {e}"))
    })?;
    let Some(checker) = &state.checker else {
        return Err(ApiError(StatusCode::SERVICE_UNAVAILABLE, "checks are not enabled".into()));
    };
    let client: IpAddr = peer.ip();
    match checker.check(client, request.enode).await {
        Ok(report) => Ok(Json(report).into_response()),
        Err(e) => {
            let status = match &e {
                CheckError::BadRequest(_) => StatusCode::BAD_REQUEST,
                CheckError::Refused(_) => StatusCode::FORBIDDEN,
                CheckError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            let mut response = ApiError(status, e.to_string()).into_response();
            if let CheckError::RateLimited { retry_after_secs, .. } = e {
                if let Ok(value) = retry_after_secs.to_string().parse() {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
            }
            Ok(response)
        }
    }
}

async fn metrics(State(state): Shared) -> Result<Response, ApiError> {
    let text = with_db(&state, |store| {
        let conn = store.connection();
        let mut out = String::new();
        let count = |sql: &str| -> Result<i64, rusqlite::Error> { conn.query_row(sql, [], |r| r.get(0)) };
        let gauges = [
            ("known", "SELECT COUNT(*) FROM nodes WHERE gone = 0"),
            ("gone", "SELECT COUNT(*) FROM nodes WHERE gone = 1"),
            ("dialable", "SELECT COUNT(*) FROM nodes WHERE gone = 0 AND dialable = 1"),
            ("seen_inbound", "SELECT COUNT(*) FROM nodes WHERE gone = 0 AND seen_inbound = 1"),
            (
                "up_last_round",
                "SELECT COALESCE((SELECT up FROM crawls WHERE finished IS NOT NULL ORDER BY id DESC LIMIT 1), 0)",
            ),
        ];
        out.push_str("# HELP ethp2p_crawl_nodes Nodes in the crawl database, by state.\n");
        out.push_str("# TYPE ethp2p_crawl_nodes gauge\n");
        for (label, sql) in gauges {
            out.push_str(&format!("ethp2p_crawl_nodes{{state=\"{label}\"}} {}\n", count(sql)?));
        }
        out.push_str("# HELP ethp2p_crawl_rounds_total Crawl rounds recorded.\n# TYPE ethp2p_crawl_rounds_total counter\n");
        out.push_str(&format!("ethp2p_crawl_rounds_total {}\n", count("SELECT COUNT(*) FROM crawls")?));
        out.push_str(
            "# HELP ethp2p_crawl_last_round_finished_seconds When the last round ended (Unix seconds).\n\
             # TYPE ethp2p_crawl_last_round_finished_seconds gauge\n",
        );
        out.push_str(&format!(
            "ethp2p_crawl_last_round_finished_seconds {}\n",
            count("SELECT COALESCE(MAX(finished), 0) FROM crawls")?
        ));
        out.push_str("# HELP ethp2p_crawl_clients Dialable nodes not gone, by client name.\n# TYPE ethp2p_crawl_clients gauge\n");
        let mut stmt = conn.prepare(
            "SELECT client_name, COUNT(*) FROM nodes WHERE gone = 0 AND dialable = 1 AND client_name IS NOT NULL
             GROUP BY client_name ORDER BY client_name",
        )?;
        for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (name, n) = row?;
            out.push_str(&format!("ethp2p_crawl_clients{{client=\"{}\"}} {n}\n", escape_label(&name)));
        }
        Ok(out)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

/// A Prometheus label value: backslash, quote and newline escaped (client names are remote
/// input).
fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
