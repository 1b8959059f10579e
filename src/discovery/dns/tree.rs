//! Building and signing a tree (what go-ethereum's `devp2p dns sign` does), sans-IO.
//!
//! [`sign_tree`] turns node records and links into every TXT record of a tree, with
//! branches no longer than go-ethereum's (13 children, 370 bytes), and signs the root.
//! [`SignedTree`] writes the result as a zone file or as the `name → TXT` JSON that
//! go-ethereum's `devp2p dns to-txt` emits.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
};

use super::entry::{subdomain, BranchEntry, Entry, LinkEntry, RootEntry};
use crate::{record::Enr, NodeKey};

/// go-ethereum `dnsdisc`: a branch holds at most 13 children, so that it stays under 370
/// bytes and one TXT record fits a 512-byte UDP answer with room for the name.
pub const MAX_BRANCH_CHILDREN: usize = 13;

/// A DNS character-string holds at most 255 bytes (RFC 1035 §3.3.14); longer TXT data is
/// split into several strings, which resolvers join back.
const TXT_CHUNK: usize = 255;

/// Why a tree could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The domain is not a valid DNS name.
    #[error(transparent)]
    Domain(#[from] super::EntryError),
    /// Reading the nodes file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The nodes file is not go-ethereum's nodeset JSON.
    #[error("bad nodes file: {0}")]
    Json(#[from] serde_json::Error),
    /// A record in the nodes file does not decode.
    #[error("bad record for node {id}: {reason}")]
    Record {
        /// The node id the file lists it under.
        id: String,
        /// Why.
        reason: String,
    },
}

/// A signed tree: the root and every entry below it, by name.
#[derive(Debug, Clone)]
pub struct SignedTree {
    /// The tree's URL: the key that signed it and its domain.
    pub link: LinkEntry,
    /// The signed root.
    pub root: RootEntry,
    /// Every entry below the root, by its subdomain (the hash label).
    pub entries: BTreeMap<String, Entry>,
}

/// Builds the tree of `records` and `links` for `domain` and signs its root.
///
/// Records are sorted by node id first (as go-ethereum does), so the same input always
/// gives the same tree.
///
/// ```
/// use ethp2p::{discovery::dns::sign_tree, NodeKey};
/// let key = NodeKey::generate();
/// let tree = sign_tree(&key, "nodes.example.org", 1, Vec::new(), Vec::new())?;
/// assert!(tree.root.verify(&key.public()));
/// assert!(tree.to_zone_file(300).contains("enrtree-root:v1"));
/// # Ok::<(), ethp2p::discovery::dns::SignError>(())
/// ```
pub fn sign_tree(
    key: &NodeKey,
    domain: &str,
    seq: u64,
    mut records: Vec<Enr>,
    links: Vec<LinkEntry>,
) -> Result<SignedTree, SignError> {
    let link = LinkEntry::new(key.public(), domain)?;
    records.sort_by_key(|r| r.node_id().raw());
    records.dedup_by_key(|r| r.node_id().raw());
    let mut entries = BTreeMap::new();
    let leaves = records.into_iter().map(|r| Entry::Enr(Box::new(r))).collect();
    let enr_root = build(leaves, &mut entries);
    let link_leaves = links.into_iter().map(Entry::Link).collect();
    let link_root = build(link_leaves, &mut entries);
    let root = RootEntry::sign(enr_root, link_root, seq, key);
    Ok(SignedTree { link, root, entries })
}

/// Stores the subtree over `leaves` in `entries` and returns its root hash. A single
/// entry is its own root; up to 13 hang off one branch; more are split into groups of 13
/// (a group of one stays a bare entry), each built the same way, under a branch built over
/// them. This is go-ethereum's `dnsdisc.MakeTree`, so both sign the same tree.
fn build(mut level: Vec<Entry>, entries: &mut BTreeMap<String, Entry>) -> String {
    loop {
        if level.len() == 1 {
            let entry = level.pop().expect("one entry");
            let hash = subdomain(&entry.to_string());
            entries.insert(hash.clone(), entry);
            return hash;
        }
        if level.len() <= MAX_BRANCH_CHILDREN {
            let children = level
                .into_iter()
                .map(|entry| {
                    let hash = subdomain(&entry.to_string());
                    entries.insert(hash.clone(), entry);
                    hash
                })
                .collect();
            let branch = Entry::Branch(BranchEntry { children });
            let hash = subdomain(&branch.to_string());
            entries.insert(hash.clone(), branch);
            return hash;
        }
        let mut next = Vec::with_capacity(level.len().div_ceil(MAX_BRANCH_CHILDREN));
        let mut rest = level.into_iter().peekable();
        while rest.peek().is_some() {
            let mut chunk: Vec<Entry> = rest.by_ref().take(MAX_BRANCH_CHILDREN).collect();
            // A last chunk of one entry hangs off the next level as itself, not under a
            // branch of one: go-ethereum builds it so, and the same records must give the
            // same tree (and the same root) whoever signs them.
            if chunk.len() == 1 {
                next.push(chunk.pop().expect("one entry"));
                continue;
            }
            let children = chunk
                .into_iter()
                .map(|entry| {
                    let hash = subdomain(&entry.to_string());
                    entries.insert(hash.clone(), entry);
                    hash
                })
                .collect();
            next.push(Entry::Branch(BranchEntry { children }));
        }
        level = next;
    }
}

impl SignedTree {
    /// Every TXT record as `(fully qualified name, text)`, the root first.
    pub fn records(&self) -> Vec<(String, String)> {
        let domain = &self.link.domain;
        let mut out = vec![(domain.clone(), self.root.to_string())];
        out.extend(self.entries.iter().map(|(hash, entry)| (format!("{hash}.{domain}"), entry.to_string())));
        out
    }

    /// The tree as a zone file fragment (`$ORIGIN` the domain), every record with `ttl`.
    /// go-ethereum publishes the root with a short TTL and the rest with a long one;
    /// use [`Self::to_zone_file_with`] for that.
    pub fn to_zone_file(&self, ttl: u32) -> String {
        self.to_zone_file_with(ttl, ttl)
    }

    /// The zone file with separate TTLs for the root (which changes with each update) and
    /// the hash-named entries (which never change).
    pub fn to_zone_file_with(&self, root_ttl: u32, entry_ttl: u32) -> String {
        let mut out = format!("; EIP-1459 tree {}\n$ORIGIN {}.\n", self.link, self.link.domain);
        let mut line = |name: &str, ttl: u32, text: &str| {
            let _ = writeln!(out, "{name:<27} {ttl:>6} IN TXT {}", quote_txt(text));
        };
        line("@", root_ttl, &self.root.to_string());
        for (hash, entry) in &self.entries {
            line(hash, entry_ttl, &entry.to_string());
        }
        out
    }

    /// The tree as a JSON object of fully qualified name → TXT text, the format of
    /// go-ethereum's `devp2p dns to-txt`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.records().into_iter().map(|(name, text)| (name, serde_json::Value::String(text))).collect(),
        )
    }

    /// Node records in the tree.
    pub fn nodes(&self) -> impl Iterator<Item = &Enr> {
        self.entries.values().filter_map(|e| match e {
            Entry::Enr(enr) => Some(&**enr),
            _ => None,
        })
    }
}

/// TXT text in zone file syntax: quoted character-strings of at most 255 bytes.
fn quote_txt(text: &str) -> String {
    // Entries are base32/base64/ASCII punctuation: no quotes or backslashes to escape,
    // and every chunk boundary falls on a character boundary.
    text.as_bytes()
        .chunks(TXT_CHUNK)
        .map(|chunk| format!("\"{}\"", String::from_utf8_lossy(chunk)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What [`sign_nodes_file`] wrote.
#[derive(Debug, Clone)]
pub struct SignOutput {
    /// The signed tree.
    pub tree: SignedTree,
    /// The zone file (`<domain>.zone`).
    pub zone_file: PathBuf,
    /// The `name → TXT` JSON (`<domain>.json`).
    pub json_file: PathBuf,
}

/// The whole `bootnode dns sign` flow: reads go-ethereum's nodeset JSON at `nodes`, signs
/// a tree of those records (and `links`) for `domain` with `key` at sequence number `seq`,
/// and writes `<domain>.zone` and `<domain>.json` into `out_dir`.
///
/// The root gets a 60 s TTL and the hash-named entries a day: entries never change (their
/// names are their hashes), the root changes with every update.
pub fn sign_nodes_file(
    nodes: &Path,
    key: &NodeKey,
    domain: &str,
    seq: u64,
    links: Vec<LinkEntry>,
    out_dir: &Path,
) -> Result<SignOutput, SignError> {
    let records = read_nodes_json(nodes)?;
    let tree = sign_tree(key, domain, seq, records, links)?;
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| SignError::Io { path, source }
    };
    std::fs::create_dir_all(out_dir).map_err(io(out_dir))?;
    let zone_file = out_dir.join(format!("{}.zone", tree.link.domain));
    std::fs::write(&zone_file, tree.to_zone_file_with(ROOT_TTL, ENTRY_TTL)).map_err(io(&zone_file))?;
    let json_file = out_dir.join(format!("{}.json", tree.link.domain));
    let json = serde_json::to_string_pretty(&tree.to_json())? + "\n";
    std::fs::write(&json_file, json).map_err(io(&json_file))?;
    Ok(SignOutput { tree, zone_file, json_file })
}

/// TTL of the root record in written zone files (EIP-1459's example uses 60 s).
pub const ROOT_TTL: u32 = 60;
/// TTL of the hash-named entries in written zone files (EIP-1459's example: 86900 s).
pub const ENTRY_TTL: u32 = 86_900;

/// One node in go-ethereum's nodeset JSON (`devp2p discv4 crawl` output).
#[derive(serde::Deserialize)]
struct NodeJson {
    record: String,
}

/// Reads go-ethereum's nodeset JSON, `{"<node id>": {"seq": …, "record": "enr:…", …}}`,
/// as written by `devp2p discv4 crawl` and by the crawler example. Other fields are
/// ignored; every record must decode and verify.
pub fn read_nodes_json(path: &Path) -> Result<Vec<Enr>, SignError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| SignError::Io { path: path.to_owned(), source })?;
    parse_nodes_json(&text)
}

fn parse_nodes_json(text: &str) -> Result<Vec<Enr>, SignError> {
    let nodes: BTreeMap<String, NodeJson> = serde_json::from_str(text)?;
    nodes
        .into_iter()
        .map(|(id, node)| {
            node.record.parse::<Enr>().map_err(|reason| SignError::Record { id: id.clone(), reason })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::discovery::dns::entry::hash_matches;

    fn record(seed: u8) -> Enr {
        let key = NodeKey::from_bytes(&[seed; 32]).unwrap();
        Enr::builder()
            .ip4(Ipv4Addr::new(127, 0, 0, seed))
            .tcp4(30303)
            .udp4(30303)
            .build(&key.to_combined_key())
            .unwrap()
    }

    fn key() -> NodeKey {
        NodeKey::from_bytes(&[0xaa; 32]).unwrap()
    }

    #[test]
    fn entries_are_consistent() {
        let records: Vec<Enr> = (1..=100).map(record).collect();
        let tree = sign_tree(&key(), "nodes.example.org", 3, records.clone(), Vec::new()).unwrap();
        assert!(tree.root.verify(&key().public()));
        assert_eq!(tree.nodes().count(), 100);
        for (hash, entry) in &tree.entries {
            let text = entry.to_string();
            assert!(hash_matches(hash, &text));
            assert!(text.len() <= 404, "{} bytes", text.len());
            if let Entry::Branch(b) = entry {
                assert!(b.children.len() <= MAX_BRANCH_CHILDREN);
                assert!(text.len() <= 370);
                for child in &b.children {
                    assert!(tree.entries.contains_key(child));
                }
            }
        }
        // 100 leaves: 8 branches of ≤13, one branch over them, one empty link branch.
        assert_eq!(tree.entries.len(), 100 + 8 + 1 + 1);
        // Same input, any order: same tree.
        let mut reversed = records;
        reversed.reverse();
        let again = sign_tree(&key(), "nodes.example.org", 3, reversed, Vec::new()).unwrap();
        assert_eq!(again.root.enr_root, tree.root.enr_root);
    }

    /// 27 records: two branches of 13 and one record left over, which go-ethereum hangs
    /// under the top branch as itself (tests/it/interop_geth.rs compares whole trees).
    #[test]
    fn a_lone_last_record_is_not_wrapped_in_a_branch() {
        let records: Vec<Enr> = (1..=27).map(record).collect();
        let tree = sign_tree(&key(), "n", 1, records, Vec::new()).unwrap();
        let Entry::Branch(top) = &tree.entries[&tree.root.enr_root] else { panic!("a branch on top") };
        let kinds: Vec<bool> =
            top.children.iter().map(|c| matches!(tree.entries[c], Entry::Enr(_))).collect();
        assert_eq!(kinds, [false, false, true], "two branches, then the 27th record itself");
        assert_eq!(tree.entries.len(), 27 + 3 + 1);
    }

    #[test]
    fn single_record_is_its_own_root() {
        let tree = sign_tree(&key(), "n", 1, vec![record(1)], Vec::new()).unwrap();
        assert!(matches!(tree.entries[&tree.root.enr_root], Entry::Enr(_)));
    }

    #[test]
    fn zone_file_and_json() {
        let link: LinkEntry =
            "enrtree://AKPYQIUQIL7PSIACI32J7FGZW56E5FKHEFCCOFHILBIMW3M6LWXS2@morenodes.example.org"
                .parse()
                .unwrap();
        let tree = sign_tree(&key(), "nodes.example.org", 1, vec![record(1), record(2)], vec![link]).unwrap();
        let zone = tree.to_zone_file_with(60, 86900);
        assert!(zone.contains("$ORIGIN nodes.example.org.\n"));
        assert!(zone.lines().any(|l| l.starts_with("@ ") && l.contains("60 IN TXT \"enrtree-root:v1 e=")));
        assert_eq!(zone.lines().filter(|l| l.contains(" IN TXT ")).count(), 1 + tree.entries.len());
        // Leaves are longer than 255 bytes only if large; ours are split if so.
        for line in zone.lines().filter(|l| l.contains("\"enr:")) {
            let text = line.split_once("TXT ").unwrap().1;
            assert!(text.split("\" \"").all(|chunk| chunk.trim_matches('"').len() <= 255));
        }
        let json = tree.to_json();
        let root = json["nodes.example.org"].as_str().unwrap();
        assert_eq!(root.parse::<RootEntry>().unwrap(), tree.root);
        assert_eq!(json.as_object().unwrap().len(), 1 + tree.entries.len());
    }

    #[test]
    fn nodes_json() {
        let r1 = record(1);
        let text = format!(
            r#"{{"{}": {{"seq": 1, "record": "{}", "score": 10, "firstResponse": "2020-01-01T00:00:00Z"}}}}"#,
            hex::encode(r1.node_id().raw()),
            r1.to_base64()
        );
        let nodes = parse_nodes_json(&text).unwrap();
        assert_eq!(nodes, vec![r1]);
        assert!(matches!(
            parse_nodes_json(r#"{"x": {"record": "enr:AAAA"}}"#),
            Err(SignError::Record { .. })
        ));
        assert!(matches!(parse_nodes_json("[]"), Err(SignError::Json(_))));
    }

    #[test]
    fn sign_nodes_file_writes_zone_and_json() {
        let dir = tempfile::tempdir().unwrap();
        let nodes = dir.path().join("nodes.json");
        let body: Vec<String> = (1..=20)
            .map(|i| {
                let r = record(i);
                format!(
                    r#""{}": {{"seq": 1, "record": "{}"}}"#,
                    hex::encode(r.node_id().raw()),
                    r.to_base64()
                )
            })
            .collect();
        std::fs::write(&nodes, format!("{{{}}}", body.join(","))).unwrap();
        let out =
            sign_nodes_file(&nodes, &key(), "Nodes.Example.org", 5, Vec::new(), &dir.path().join("out"))
                .unwrap();
        assert_eq!(out.tree.nodes().count(), 20);
        let zone = std::fs::read_to_string(&out.zone_file).unwrap();
        assert!(out.zone_file.ends_with("nodes.example.org.zone"));
        assert!(zone.contains(" 60 IN TXT \"enrtree-root:v1 ") && zone.contains(" 86900 IN TXT \"enr:"));
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out.json_file).unwrap()).unwrap();
        assert_eq!(json, out.tree.to_json());
        let missing = sign_nodes_file(&dir.path().join("nope.json"), &key(), "n", 1, Vec::new(), dir.path());
        assert!(matches!(missing, Err(SignError::Io { .. })));
    }
}
