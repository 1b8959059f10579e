//! The crawler's HTTP API over a real loopback socket: a crawl of a loopback network is served
//! from its SQLite file; every endpoint, garbage, a refused address and the rate limit.

use std::{collections::HashSet, str::FromStr, time::Duration};

use ethp2p::{
    crawl::{ApiConfig, ApiServer, CheckConfig, Checker, CrawlConfig, ProbeConfig, SqliteStore},
    test_utils::{crawl::CrawlNet, key_from_seed},
    Enode, NetRestrict,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::crawl::crawler_for;

/// One HTTP/1.1 request over a fresh connection; returns the status and the body.
pub(crate) async fn http(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect to the API");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8(response).expect("utf-8 response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a complete response");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
    // Bodies of known length only (no chunked encoding) are what the API sends for
    // JSON and text; decode a chunked one anyway.
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if size == 0 {
                break;
            }
            out.push_str(&tail[..size]);
            rest = &tail[size + 2..];
        }
        out
    } else {
        body.to_string()
    };
    (status, body)
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_serves_the_crawl_checks_nodes_and_refuses_bad_requests() {
    const NODES: usize = 12;
    let net =
        CrawlNet::builder(NODES).first_seed(50_000).closed_every(4).start().await.expect("network starts");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("api.db");
    let config = CrawlConfig::builder()
        .workers(64)
        .idle(Duration::from_secs(1))
        .duration(Duration::from_secs(120))
        .probe(Some(ProbeConfig::with_timeout(Duration::from_secs(3))))
        .build()
        .unwrap();
    let key = key_from_seed(59_999);
    let (crawler, discv5, discv4) = crawler_for(&net, key.clone(), config).await;
    let mut crawler = crawler.sink(SqliteStore::open(&db).unwrap());
    crawler.round(std::future::pending()).await.expect("a round");

    let mut check = CheckConfig::new(NetRestrict::loopback());
    check.per_ip_interval = Duration::from_secs(3600);
    let checker = Checker::spawn(check, key, Some(discv4.clone()), Some(discv5.clone()));
    let api = ApiConfig::new("127.0.0.1:0".parse().unwrap(), &db, Some(checker)).expected_fork(net.fork_id());
    let server = ApiServer::start(api).await.expect("API starts");
    let addr = server.local_addr();

    // Summary: every node, clients counted from their Hellos.
    let (status, body) = http(addr, "GET", "/api/summary", "").await;
    assert_eq!(status, 200, "{body}");
    let summary = json(&body);
    assert_eq!(summary["summary"]["nodes"], NODES, "{body}");
    let open = net.nodes().iter().filter(|n| n.tcp_open()).count();
    assert_eq!(summary["summary"]["dialable"], open, "{body}");
    assert_eq!(summary["rounds"], 1);
    assert_eq!(summary["last_round"]["up"], NODES);
    let geth = net.nodes().iter().filter(|n| n.client_id.is_some_and(|c| c.starts_with("Geth/"))).count();
    assert_eq!(summary["summary"]["by_client"]["Geth"], geth, "{body}");
    // The census: every open node offers eth/68 and eth/69 (the test network's Hello), serves
    // history from genesis, and every node announces the expected fork id.
    assert_eq!(summary["summary"]["by_eth_offered"]["eth/68"], open, "{body}");
    assert_eq!(summary["summary"]["by_eth_offered"]["eth/69"], open, "{body}");
    assert_eq!(summary["summary"]["by_history"]["full"], open, "{body}");
    assert_eq!(summary["summary"]["by_fork_readiness"]["ready"], NODES, "{body}");
    assert_eq!(summary["summary"]["expected_fork"], net.fork_id().to_string().as_str(), "{body}");

    // Nodes with filters.
    let (status, body) = http(addr, "GET", "/api/nodes?client=geth&limit=1000", "").await;
    assert_eq!(status, 200, "{body}");
    let rows = json(&body);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), geth);
    assert!(rows.iter().all(|r| r["client_name"] == "Geth"));
    let (_, body) = http(addr, "GET", "/api/nodes?client=geth&limit=1", "").await;
    assert_eq!(json(&body).as_array().unwrap().len(), 1.min(geth));
    let (_, body) = http(addr, "GET", "/api/nodes?dialable=false&limit=1000", "").await;
    assert_eq!(json(&body).as_array().unwrap().len(), NODES - open);
    let (_, body) = http(addr, "GET", "/api/nodes?eth=69&network=1&limit=1000", "").await;
    assert_eq!(json(&body).as_array().unwrap().len(), open, "every open node offers eth/69");
    let (_, body) = http(addr, "GET", "/api/nodes?eth=71&limit=1000", "").await;
    assert_eq!(json(&body).as_array().unwrap().len(), 0, "none offers eth/71");
    let (status, body) = http(addr, "GET", "/api/nodes?dialable=maybe", "").await;
    assert_eq!(status, 400, "{body}");

    // One node, with its sessions; unknown and malformed ids.
    let target = &net.nodes()[1];
    let id = hex::encode(target.node_id());
    let (status, body) = http(addr, "GET", &format!("/api/nodes/{id}"), "").await;
    assert_eq!(status, 200, "{body}");
    let node = json(&body);
    assert_eq!(node["node_id"], id.as_str());
    assert_eq!(node["sessions"].as_array().unwrap().len(), 1, "{body}");
    let (status, _) = http(addr, "GET", &format!("/api/nodes/{}", "ab".repeat(32)), "").await;
    assert_eq!(status, 404);
    let (status, body) = http(addr, "GET", "/api/nodes/not-an-id", "").await;
    assert_eq!(status, 400);
    assert!(body.contains("64 hex"), "{body}");

    // Enodes: plain lines, each a dialable URL of one of ours.
    let (status, body) = http(addr, "GET", "/api/enodes?dialable=true&limit=1000", "").await;
    assert_eq!(status, 200, "{body}");
    let listed: HashSet<String> = body.lines().map(str::to_string).collect();
    assert_eq!(listed.len(), open);
    for line in &listed {
        let enode = Enode::from_str(line).expect("a valid enode:// line");
        assert!(net.nodes().iter().any(|n| n.key.peer_id() == enode.peer_id));
    }

    // The page: one self-contained file (no CDN: the only URL in it is the SVG namespace).
    let (status, page) = http(addr, "GET", "/", "").await;
    assert_eq!(status, 200);
    assert!(page.starts_with("<!doctype html>") && page.contains("/api/summary"), "{page}");
    let urls = page.matches("http://").count() + page.matches("https://").count();
    assert_eq!(urls, page.matches("http://www.w3.org/2000/svg").count(), "no external resources");

    // Metrics.
    let (status, body) = http(addr, "GET", "/metrics", "").await;
    assert_eq!(status, 200);
    assert!(body.contains(&format!("ethp2p_crawl_nodes{{state=\"known\"}} {NODES}")), "{body}");
    assert!(body.contains(&format!("ethp2p_crawl_clients{{client=\"Geth\"}} {geth}")), "{body}");

    // Garbage, then an address outside --netrestrict: refused with the reason, and neither
    // uses up this client's check.
    for garbage in
        ["", "{", "{\"enode\": 5}", "{\"enode\": \"hello\"}", "{\"enode\": \"enode://zz@1.2.3.4:1\"}"]
    {
        let (status, body) = http(addr, "POST", "/api/check", garbage).await;
        assert_eq!(status, 400, "{garbage:?}: {body}");
        assert!(!json(&body)["error"].as_str().unwrap().is_empty());
    }
    let outside = format!("enode://{}@10.1.2.3:30303", hex::encode(target.key.peer_id()));
    let (status, body) = http(addr, "POST", "/api/check", &format!("{{\"enode\": \"{outside}\"}}")).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("netrestrict") && body.contains("10.1.2.3"), "{body}");

    // A real check of a node speaking both protocols, with its TCP port open: it answered
    // discv4, discv5 (its record fetched over discv4) and RLPx.
    let both = net
        .nodes()
        .iter()
        .find(|n| n.protocols == ethp2p::test_utils::crawl::NodeProtocols::Both && n.tcp_open())
        .expect("a node with both protocols and an open port");
    let request = format!("{{\"enode\": \"{}\"}}", both.enode());
    let (status, body) = http(addr, "POST", "/api/check", &request).await;
    assert_eq!(status, 200, "{body}");
    let report = json(&body);
    assert_eq!(report["node_id"], hex::encode(both.node_id()).as_str());
    assert_eq!(report["discv4"]["answered"], true, "{body}");
    assert_eq!(report["discv5"]["answered"], true, "{body}");
    assert_eq!(report["rlpx"]["hello"]["client_id"], both.client_id.unwrap(), "{body}");

    // The same client again at once: rate-limited.
    let (status, body) = http(addr, "POST", "/api/check", &request).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("rate limited"), "{body}");

    server.shutdown().await;
    discv5.shutdown().await;
    discv4.shutdown().await;
    net.shutdown().await;
}

/// The page in headless Chromium (Debian's `chromium`, installed by `scripts/install-peers.sh
/// chromium` when missing; the test fails with the reason if it cannot): loaded against a
/// loopback crawl, the numbers it renders equal `/api/summary`'s. With
/// `ETHP2P_SCREENSHOT=path` it also saves a screenshot there (how `docs/observatory.png` was
/// made).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_renders_the_summary_in_headless_chromium() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install-peers.sh");
    let install =
        std::process::Command::new("bash").args([script, "chromium"]).output().expect("run install-peers.sh");
    assert!(
        install.status.success(),
        "cannot install chromium for the page test: {}",
        String::from_utf8_lossy(&install.stderr)
    );

    const NODES: usize = 9;
    let net =
        CrawlNet::builder(NODES).first_seed(70_000).closed_every(3).start().await.expect("network starts");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("page.db");
    let config = CrawlConfig::builder()
        .workers(32)
        .idle(Duration::from_secs(1))
        .duration(Duration::from_secs(120))
        .probe(Some(ProbeConfig::with_timeout(Duration::from_secs(3))))
        .build()
        .unwrap();
    let (crawler, discv5, discv4) = crawler_for(&net, key_from_seed(79_999), config).await;
    let mut crawler = crawler.sink(SqliteStore::open(&db).unwrap());
    crawler.round(std::future::pending()).await.expect("a round");
    discv5.shutdown().await;
    discv4.shutdown().await;
    let api = ApiConfig::new("127.0.0.1:0".parse().unwrap(), &db, None).expected_fork(net.fork_id());
    let server = ApiServer::start(api).await.expect("API starts");
    let url = format!("http://{}/", server.local_addr());
    let (_, body) = http(server.local_addr(), "GET", "/api/summary", "").await;
    let summary = json(&body);

    let chromium = |args: Vec<String>| {
        let url = url.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                std::process::Command::new("chromium")
                    .args(["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000"])
                    .args(args)
                    .arg(url)
                    .output()
                    .expect("chromium runs")
            })
            .await
            .unwrap()
        }
    };
    let out = chromium(vec!["--dump-dom".into()]).await;
    let dom = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && dom.contains("stat-nodes"),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text_of = |id: &str| -> String {
        let start = dom.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in {dom}"));
        let rest = &dom[start..];
        let open = rest.find('>').unwrap() + 1;
        rest[open..open + rest[open..].find('<').unwrap()].to_string()
    };
    assert_eq!(text_of("stat-nodes"), summary["summary"]["nodes"].to_string());
    assert_eq!(text_of("stat-dialable"), summary["summary"]["dialable"].to_string());
    assert_eq!(text_of("stat-up"), summary["last_round"]["up"].to_string());
    assert!(text_of("freshness").starts_with("round 1 of 1 finished"), "{}", text_of("freshness"));
    // Each client's bar shows its count and its share from the API, of the nodes with a
    // known client (the dialable ones here), which the heading names.
    let clients = summary["summary"]["by_client"].as_object().unwrap();
    let known = summary["summary"]["known_client"].as_u64().unwrap();
    assert!(!clients.is_empty());
    assert_eq!(known, summary["summary"]["dialable"].as_u64().unwrap());
    assert!(dom.contains(&format!("(% of {known} nodes with a known client)")), "denominator shown");
    for (client, count) in clients {
        let share = summary["summary"]["client_share"][client].as_f64().unwrap();
        let want = 100.0 * count.as_f64().unwrap() / known as f64;
        assert!((share - want).abs() <= 0.05, "{client}: {share}% of {known}");
        let bar = format!("data-key=\"{client}\" class=\"count\">{count} ({share:.1}%)<");
        assert!(dom.contains(&bar), "{bar} not in the page");
    }
    // The fork readiness chart: every node ready.
    assert!(dom.contains(&format!("data-key=\"ready\" class=\"count\">{NODES}<")), "readiness chart");
    // The node table lists them all.
    assert_eq!(dom.matches("<tr><td>").count(), NODES, "table rows");

    if let Ok(path) = std::env::var("ETHP2P_SCREENSHOT") {
        let out = chromium(vec![format!("--screenshot={path}"), "--window-size=1280,1500".into()]).await;
        assert!(out.status.success(), "screenshot: {}", String::from_utf8_lossy(&out.stderr));
    }
    server.shutdown().await;
    net.shutdown().await;
}
