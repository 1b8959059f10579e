//! EIP-1459 tree entries: the four kinds of TXT record and their text form.
//!
//! Pure functions over strings. Hashes stay in their base32 text form (as they appear in
//! DNS names); [`subdomain`] computes the name an entry lives at, and [`hash_matches`]
//! checks a served record against the name it was fetched from.

use std::{fmt, str::FromStr};

use alloy_primitives::keccak256;
use data_encoding::{BASE32_NOPAD, BASE64URL_NOPAD};
use secp256k1::{
    ecdsa::{RecoverableSignature, RecoveryId, Signature},
    Message, PublicKey, SECP256K1,
};

use super::EntryError;
use crate::{record::Enr, NodeKey};

/// EIP-1459: the prefix of the root entry.
pub const ROOT_PREFIX: &str = "enrtree-root:v1";
/// EIP-1459: the prefix of a branch entry.
pub const BRANCH_PREFIX: &str = "enrtree-branch:";
/// EIP-1459: the prefix of a link entry (and of a tree URL).
pub const LINK_PREFIX: &str = "enrtree://";
/// EIP-778: the prefix of a record in text form.
pub const ENR_PREFIX: &str = "enr:";

/// The longest entry we parse. A leaf is at most `enr:` + base64 of a 300-byte record
/// (EIP-778) = 404 bytes, a link at most 10 + 53 + 1 + 253; go-ethereum builds branches of
/// at most 370 bytes. 2048 leaves room for other builders' wider branches while bounding
/// the work a hostile server can cause with one record.
pub const MAX_ENTRY_LEN: usize = 2048;

/// go-ethereum `dnsdisc`: a hash shorter than this (decoded) is refused; longer than 32
/// bytes cannot be a keccak256 prefix.
const MIN_HASH_LEN: usize = 12;
/// EIP-1459: "the base32 encoding of the abbreviated keccak256 hash of its text content"
/// — go-ethereum and every published tree abbreviate to 16 bytes (26 base32 characters).
const HASH_ABBREV_LEN: usize = 16;
/// A recoverable secp256k1 signature: `r || s || v`.
const SIGNATURE_LEN: usize = 65;

/// One TXT record of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Entry {
    /// The signed root, at the tree's domain itself.
    Root(RootEntry),
    /// An inner node listing child hashes.
    Branch(BranchEntry),
    /// A pointer to another tree.
    Link(LinkEntry),
    /// A leaf: a node record.
    Enr(Box<Enr>),
}

impl Entry {
    /// The entry type as a word, for errors and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Root(_) => "root",
            Self::Branch(_) => "branch",
            Self::Link(_) => "link",
            Self::Enr(_) => "enr",
        }
    }
}

impl FromStr for Entry {
    type Err = EntryError;

    fn from_str(text: &str) -> Result<Self, EntryError> {
        if text.len() > MAX_ENTRY_LEN {
            return Err(EntryError::TooLong(text.len()));
        }
        if text.starts_with(ROOT_PREFIX) {
            text.parse().map(Self::Root)
        } else if text.starts_with(BRANCH_PREFIX) {
            text.parse().map(Self::Branch)
        } else if text.starts_with(LINK_PREFIX) {
            text.parse().map(Self::Link)
        } else if let Some(rest) = text.strip_prefix(ENR_PREFIX) {
            parse_enr(rest).map(|enr| Self::Enr(Box::new(enr)))
        } else {
            Err(EntryError::UnknownType)
        }
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Root(e) => e.fmt(f),
            Self::Branch(e) => e.fmt(f),
            Self::Link(e) => e.fmt(f),
            Self::Enr(e) => f.write_str(&e.to_base64()),
        }
    }
}

fn parse_enr(base64: &str) -> Result<Enr, EntryError> {
    // The enr crate checks the signature and the 300-byte limit while decoding; we decode
    // the base64 ourselves so that a record with a prefix other than `enr:` is refused.
    let bytes =
        BASE64URL_NOPAD.decode(base64.as_bytes()).map_err(|e| EntryError::InvalidEnr(e.to_string()))?;
    let mut rest = bytes.as_slice();
    let enr: Enr =
        alloy_rlp::Decodable::decode(&mut rest).map_err(|e| EntryError::InvalidEnr(e.to_string()))?;
    if !rest.is_empty() {
        return Err(EntryError::InvalidEnr("trailing bytes after the record".into()));
    }
    Ok(enr)
}

/// The signed root: hashes of the ENR subtree and the link subtree, a sequence number, and
/// a signature by the tree's key.
///
/// ```text
/// enrtree-root:v1 e=<enr-root> l=<link-root> seq=<sequence-number> sig=<signature>
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootEntry {
    /// Hash of the root of the ENR subtree.
    pub enr_root: String,
    /// Hash of the root of the link subtree.
    pub link_root: String,
    /// The tree's sequence number; a client ignores a root with a lower one.
    pub seq: u64,
    /// 65-byte recoverable signature over keccak256 of [`Self::signed_text`].
    pub signature: [u8; SIGNATURE_LEN],
}

impl RootEntry {
    /// Signs a root with the tree's key.
    pub fn sign(enr_root: String, link_root: String, seq: u64, key: &NodeKey) -> Self {
        let mut root = Self { enr_root, link_root, seq, signature: [0; SIGNATURE_LEN] };
        let digest = Message::from_digest(keccak256(root.signed_text()).0);
        let (id, sig) = SECP256K1.sign_ecdsa_recoverable(&digest, key.secret()).serialize_compact();
        root.signature[..64].copy_from_slice(&sig);
        root.signature[64] = i32::from(id) as u8;
        root
    }

    /// The text the signature covers: the entry without ` sig=…`.
    pub fn signed_text(&self) -> String {
        format!("{ROOT_PREFIX} e={} l={} seq={}", self.enr_root, self.link_root, self.seq)
    }

    /// Whether the signature was made by `key`.
    ///
    /// Like go-ethereum, only `r || s` is checked against the key (the recovery id is not
    /// trusted), and a high-S signature does not verify.
    pub fn verify(&self, key: &PublicKey) -> bool {
        let digest = Message::from_digest(keccak256(self.signed_text()).0);
        Signature::from_compact(&self.signature[..64])
            .is_ok_and(|sig| SECP256K1.verify_ecdsa(&digest, &sig, key).is_ok())
    }

    /// The key that made the signature, if the recovery id is valid.
    pub fn recover(&self) -> Option<PublicKey> {
        let digest = Message::from_digest(keccak256(self.signed_text()).0);
        let id = RecoveryId::try_from(i32::from(self.signature[64])).ok()?;
        let sig = RecoverableSignature::from_compact(&self.signature[..64], id).ok()?;
        SECP256K1.recover_ecdsa(&digest, &sig).ok()
    }
}

impl FromStr for RootEntry {
    type Err = EntryError;

    fn from_str(text: &str) -> Result<Self, EntryError> {
        // go-ethereum parses with Sscanf("enrtree-root:v1 e=%s l=%s seq=%d sig=%s"): fields in
        // this order, separated by single spaces. We are exactly as strict.
        let rest = text.strip_prefix(ROOT_PREFIX).ok_or(EntryError::UnknownType)?;
        let rest = rest.strip_prefix(' ').ok_or(EntryError::MalformedRoot("expected ' e='"))?;
        let mut fields = rest.split(' ');
        let mut field = |name: &'static str, what: &'static str| {
            fields.next().and_then(|f| f.strip_prefix(name)).ok_or(EntryError::MalformedRoot(what))
        };
        let enr_root = field("e=", "missing e=")?;
        let link_root = field("l=", "missing l=")?;
        let seq = field("seq=", "missing seq=")?;
        let sig = field("sig=", "missing sig=")?;
        if fields.next().is_some() {
            return Err(EntryError::MalformedRoot("trailing fields"));
        }
        check_hash(enr_root)?;
        check_hash(link_root)?;
        if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return Err(EntryError::InvalidSeq);
        }
        let seq = seq.parse().map_err(|_| EntryError::InvalidSeq)?;
        let sig = BASE64URL_NOPAD.decode(sig.as_bytes()).map_err(|_| EntryError::InvalidSignature)?;
        let signature = sig.try_into().map_err(|_| EntryError::InvalidSignature)?;
        Ok(Self { enr_root: enr_root.to_owned(), link_root: link_root.to_owned(), seq, signature })
    }
}

impl fmt::Display for RootEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} sig={}", self.signed_text(), BASE64URL_NOPAD.encode(&self.signature))
    }
}

/// An inner node: the hashes of its children. `enrtree-branch:<h₁>,<h₂>,…`
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BranchEntry {
    /// Child hashes, each the first label of a child's DNS name.
    pub children: Vec<String>,
}

impl FromStr for BranchEntry {
    type Err = EntryError;

    fn from_str(text: &str) -> Result<Self, EntryError> {
        let rest = text.strip_prefix(BRANCH_PREFIX).ok_or(EntryError::UnknownType)?;
        // An empty branch is a tree with no nodes, which go-ethereum also accepts.
        if rest.is_empty() {
            return Ok(Self::default());
        }
        let children = rest
            .split(',')
            .map(|hash| check_hash(hash).map(|()| hash.to_owned()))
            .collect::<Result<_, _>>()?;
        Ok(Self { children })
    }
}

impl fmt::Display for BranchEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{BRANCH_PREFIX}{}", self.children.join(","))
    }
}

/// A link to a tree: `enrtree://<base32 compressed public key>@<domain>`. Also the URL
/// form users configure a tree by.
///
/// ```
/// use ethp2p::discovery::dns::LinkEntry;
/// let link: LinkEntry =
///     "enrtree://AKPYQIUQIL7PSIACI32J7FGZW56E5FKHEFCCOFHILBIMW3M6LWXS2@nodes.example.org".parse()?;
/// assert_eq!(link.domain, "nodes.example.org");
/// # Ok::<(), ethp2p::discovery::dns::EntryError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LinkEntry {
    /// The key that signs the linked tree's root.
    pub public_key: PublicKey,
    /// The linked tree's domain, lowercase, without a trailing dot.
    pub domain: String,
}

impl LinkEntry {
    /// A link to the tree at `domain` signed by `key`.
    pub fn new(public_key: PublicKey, domain: &str) -> Result<Self, EntryError> {
        Ok(Self { public_key, domain: check_domain(domain)? })
    }
}

impl FromStr for LinkEntry {
    type Err = EntryError;

    fn from_str(text: &str) -> Result<Self, EntryError> {
        let rest = text.strip_prefix(LINK_PREFIX).ok_or(EntryError::UnknownType)?;
        let (key, domain) = rest.split_once('@').ok_or(EntryError::MissingPublicKey)?;
        let key = BASE32_NOPAD.decode(key.as_bytes()).map_err(|_| EntryError::InvalidPublicKey)?;
        // EIP-1459: the key is in compressed form (33 bytes).
        if key.len() != 33 {
            return Err(EntryError::InvalidPublicKey);
        }
        let public_key = PublicKey::from_slice(&key).map_err(|_| EntryError::InvalidPublicKey)?;
        Self::new(public_key, domain)
    }
}

impl fmt::Display for LinkEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{LINK_PREFIX}{}@{}", BASE32_NOPAD.encode(&self.public_key.serialize()), self.domain)
    }
}

/// The name an entry lives at, relative to the tree's domain: base32 of the first 16
/// bytes of keccak256 of its text.
pub fn subdomain(text: &str) -> String {
    BASE32_NOPAD.encode(&keccak256(text.as_bytes())[..HASH_ABBREV_LEN])
}

/// Whether `text` is the entry named `hash`: the decoded label must be a prefix of
/// keccak256 of the text (go-ethereum accepts any prefix of 12 to 32 bytes).
pub fn hash_matches(hash: &str, text: &str) -> bool {
    match BASE32_NOPAD.decode(hash.as_bytes()) {
        Ok(prefix) if (MIN_HASH_LEN..=32).contains(&prefix.len()) => {
            keccak256(text.as_bytes()).starts_with(&prefix)
        }
        _ => false,
    }
}

fn check_hash(hash: &str) -> Result<(), EntryError> {
    // Decoding also rejects lowercase, padding and characters outside A-Z2-7, so a valid
    // hash is always a valid DNS label.
    match BASE32_NOPAD.decode(hash.as_bytes()) {
        Ok(bytes) if (MIN_HASH_LEN..=32).contains(&bytes.len()) => Ok(()),
        _ => Err(EntryError::InvalidHash(truncate(hash))),
    }
}

/// RFC 1035: a name of at most 253 characters in dot-separated labels of 1..=63 letters,
/// digits, hyphens (and underscores, which DNS allows and some zones use).
fn check_domain(domain: &str) -> Result<String, EntryError> {
    let bare = domain.strip_suffix('.').unwrap_or(domain);
    let valid_label = |label: &str| {
        (1..=63).contains(&label.len())
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if bare.is_empty() || bare.len() > 253 || !bare.split('.').all(valid_label) {
        return Err(EntryError::InvalidDomain(truncate(domain)));
    }
    Ok(bare.to_ascii_lowercase())
}

/// Errors quote remote input; keep what they quote short.
fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &str =
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/vectors/dnsdisc-eip-1459.json"));

    fn vectors() -> serde_json::Value {
        serde_json::from_str(VECTORS).unwrap()
    }

    fn example_key() -> PublicKey {
        let hex = vectors()["url_example"]["public_key_uncompressed"].as_str().unwrap().to_owned();
        PublicKey::from_slice(&hex::decode(hex.trim_start_matches("0x")).unwrap()).unwrap()
    }

    /// EIP-1459 "DNS Record Structure": every record of the example zone parses, prints
    /// back to the same text, and (below the root) lives at the name its hash gives.
    #[test]
    fn eip1459_zone_example() {
        let v = vectors();
        let records = v["zone_example"]["records"].as_array().unwrap();
        assert_eq!(records.len(), 6);
        let mut kinds = Vec::new();
        for record in records {
            let name = record["name"].as_str().unwrap();
            let content = record["content"].as_str().unwrap();
            let entry: Entry = content.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(entry.to_string(), content);
            kinds.push(entry.kind());
            if name != "@" {
                assert_eq!(subdomain(content), name);
                assert!(hash_matches(name, content));
                assert!(!hash_matches(name, &format!("{content} ")));
            }
        }
        assert_eq!(kinds, ["root", "link", "branch", "enr", "enr", "enr"]);
    }

    /// EIP-1459 "DNS Record Structure": the example root is signed by the example key.
    /// The URL example's key (AM5FCQ…) does not verify it — the inconsistency recorded in
    /// the vector file; go-ethereum's tests use AKPYQ…, the compressed example key.
    #[test]
    fn eip1459_root_signature() {
        let v = vectors();
        let root: RootEntry = v["zone_example"]["records"][0]["content"].as_str().unwrap().parse().unwrap();
        assert_eq!(root.seq, 1);
        assert_eq!(root.enr_root, "JWXYDBPXYWG6FX3GMDIBFA6CJ4");
        assert_eq!(root.link_root, "C7HRFPF3BLGF3YR4DY5KX3SMBE");
        let key = example_key();
        assert!(root.verify(&key));
        assert_eq!(root.recover(), Some(key));

        let consistent: LinkEntry =
            "enrtree://AKPYQIUQIL7PSIACI32J7FGZW56E5FKHEFCCOFHILBIMW3M6LWXS2@nodes.example.org"
                .parse()
                .unwrap();
        assert_eq!(consistent.public_key, key);
        let as_printed: LinkEntry = v["url_example"]["url"].as_str().unwrap().parse().unwrap();
        assert_eq!(as_printed.domain, v["url_example"]["domain"].as_str().unwrap());
        assert_ne!(as_printed.public_key, key);
        assert!(!root.verify(&as_printed.public_key));

        let mut other_seq = root.clone();
        other_seq.seq = 2;
        assert!(!other_seq.verify(&key));
    }

    #[test]
    fn sign_and_verify_roundtrip() {
        let key =
            NodeKey::from_hex("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291").unwrap();
        let root = RootEntry::sign(subdomain("a"), subdomain("b"), 7, &key);
        let parsed: RootEntry = root.to_string().parse().unwrap();
        assert_eq!(parsed, root);
        assert!(parsed.verify(&key.public()));
        assert!(!parsed.verify(&NodeKey::generate().public()));
        assert_eq!(parsed.recover(), Some(key.public()));
    }

    #[test]
    fn link_roundtrip_and_case() {
        let text = "enrtree://AKPYQIUQIL7PSIACI32J7FGZW56E5FKHEFCCOFHILBIMW3M6LWXS2@Nodes.Example.org.";
        let link: LinkEntry = text.parse().unwrap();
        assert_eq!(link.domain, "nodes.example.org");
        assert_eq!(
            link.to_string(),
            "enrtree://AKPYQIUQIL7PSIACI32J7FGZW56E5FKHEFCCOFHILBIMW3M6LWXS2@nodes.example.org"
        );
    }

    #[test]
    fn malformed_roots() {
        let good = "enrtree-root:v1 e=JWXYDBPXYWG6FX3GMDIBFA6CJ4 l=C7HRFPF3BLGF3YR4DY5KX3SMBE seq=1 sig=o908WmNp7LibOfPsr4btQwatZJ5URBr2ZAuxvK4UWHlsB9sUOTJQaGAlLPVAhM__XJesCHxLISo94z5Z2a463gA";
        assert!(good.parse::<RootEntry>().is_ok());
        let cases: &[(&str, EntryError)] = &[
            ("enrtree-root:v1", EntryError::MalformedRoot("expected ' e='")),
            ("enrtree-root:v1 e=JWXYDBPXYWG6FX3GMDIBFA6CJ4", EntryError::MalformedRoot("missing l=")),
            (
                "enrtree-root:v1 l=C7HRFPF3BLGF3YR4DY5KX3SMBE e=JWXYDBPXYWG6FX3GMDIBFA6CJ4 seq=1 sig=AA",
                EntryError::MalformedRoot("missing e="),
            ),
            (
                "enrtree-root:v1 e=JWXYDBPXYWG6FX3GMDIBFA6CJ4 l=C7HRFPF3BLGF3YR4DY5KX3SMBE seq=-1 sig=AA",
                EntryError::InvalidSeq,
            ),
            (
                "enrtree-root:v1 e=JWXYDBPXYWG6FX3GMDIBFA6CJ4 l=C7HRFPF3BLGF3YR4DY5KX3SMBE seq=99999999999999999999 sig=AA",
                EntryError::InvalidSeq,
            ),
            (
                "enrtree-root:v1 e=JWXYDBPXYWG6FX3GMDIBFA6CJ4 l=C7HRFPF3BLGF3YR4DY5KX3SMBE seq=1 sig=AAAA",
                EntryError::InvalidSignature,
            ),
            (
                "enrtree-root:v1 e=jwxydbpxywg6fx3gmdibfa6cj4 l=C7HRFPF3BLGF3YR4DY5KX3SMBE seq=1 sig=AA",
                EntryError::InvalidHash("jwxydbpxywg6fx3gmdibfa6cj4".into()),
            ),
            (
                "enrtree-root:v1 e=JWXYDBPX l=C7HRFPF3BLGF3YR4DY5KX3SMBE seq=1 sig=AA",
                EntryError::InvalidHash("JWXYDBPX".into()),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<RootEntry>().as_ref(), Err(want), "{text}");
        }
        assert_eq!(
            format!("{good} x=1").parse::<RootEntry>(),
            Err(EntryError::MalformedRoot("trailing fields"))
        );
        assert_eq!(
            good.replace(' ', "  ").parse::<RootEntry>(),
            Err(EntryError::MalformedRoot("missing e="))
        );
    }

    #[test]
    fn malformed_branches_links_leaves() {
        assert_eq!("enrtree-branch:".parse::<BranchEntry>(), Ok(BranchEntry::default()));
        assert!(matches!("enrtree-branch:AAAA".parse::<Entry>(), Err(EntryError::InvalidHash(_))));
        assert!(matches!(
            "enrtree-branch:2XS2367YHAXJFGLZHVAWLQD4ZY,".parse::<Entry>(),
            Err(EntryError::InvalidHash(_))
        ));
        assert!(matches!(
            "enrtree-branch:2XS2367YHAXJFGLZHVAWLQD4ZY,2XS2367YHAXJFGLZHVAWLQD4Z!".parse::<Entry>(),
            Err(EntryError::InvalidHash(_))
        ));
        assert_eq!("enrtree://nodes.example.org".parse::<Entry>(), Err(EntryError::MissingPublicKey));
        assert_eq!("enrtree://AAAA@nodes.example.org".parse::<Entry>(), Err(EntryError::InvalidPublicKey));
        // 33 bytes that are not a compressed point (bad prefix byte).
        let not_a_point = BASE32_NOPAD.encode(&[0x05; 33]);
        assert_eq!(format!("enrtree://{not_a_point}@n").parse::<Entry>(), Err(EntryError::InvalidPublicKey));
        let key = "AKPYQIUQIL7PSIACI32J7FGZW56E5FKHEFCCOFHILBIMW3M6LWXS2";
        for domain in ["", ".", "a..b", "a b", "x/y"] {
            assert!(
                matches!(
                    format!("enrtree://{key}@{domain}").parse::<Entry>(),
                    Err(EntryError::InvalidDomain(_))
                ),
                "{domain:?}"
            );
        }
        assert!(matches!("enr:".parse::<Entry>(), Err(EntryError::InvalidEnr(_))));
        assert!(matches!("enr:!!!".parse::<Entry>(), Err(EntryError::InvalidEnr(_))));
        // A record whose signature was altered (one character of the example leaf).
        let leaf = "enr:-HW4QOFzoVLaFJnNhbgMoDXPnOvcdVuj7pDpqRvh6BRDO68aVi5ZcjB3vzQRZH2IcLBGHzo8uUN3snqmgTiE56CH3AMBgmlkgnY0iXNlY3AyNTZrMaECC2_24YYkYHEgdzxlSNKQEnHhuNAbNlMlWJxrJxbAFvA";
        assert!(leaf.parse::<Entry>().is_ok());
        let tampered = leaf.replacen("OFzo", "OFzp", 1);
        assert!(matches!(tampered.parse::<Entry>(), Err(EntryError::InvalidEnr(_))));
        assert_eq!("enrtree-foo:".parse::<Entry>(), Err(EntryError::UnknownType));
        assert_eq!("".parse::<Entry>(), Err(EntryError::UnknownType));
        let long = format!("enrtree-branch:{}", "A".repeat(MAX_ENTRY_LEN));
        assert_eq!(long.parse::<Entry>(), Err(EntryError::TooLong(long.len())));
    }

    #[test]
    fn hash_matching() {
        let text = "enrtree-branch:";
        let full = BASE32_NOPAD.encode(keccak256(text).as_slice());
        assert!(hash_matches(&full, text));
        assert!(hash_matches(&subdomain(text), text));
        // 12 bytes is the shortest accepted prefix, 11 is too short.
        assert!(hash_matches(&BASE32_NOPAD.encode(&keccak256(text)[..12]), text));
        assert!(!hash_matches(&BASE32_NOPAD.encode(&keccak256(text)[..11]), text));
        assert!(!hash_matches("not base32", text));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,300}") {
            let _ = s.parse::<Entry>();
        }

        #[test]
        fn parse_prefixed_never_panics(
            prefix in proptest::sample::select(vec![ROOT_PREFIX, BRANCH_PREFIX, LINK_PREFIX, ENR_PREFIX]),
            s in "[ -~]{0,200}",
        ) {
            let _ = format!("{prefix}{s}").parse::<Entry>();
        }

        #[test]
        fn branch_roundtrip(children in proptest::collection::vec(proptest::array::uniform16(0u8..), 0..13)) {
            let branch = BranchEntry { children: children.iter().map(|c| BASE32_NOPAD.encode(c)).collect() };
            proptest::prop_assert_eq!(branch.to_string().parse::<BranchEntry>(), Ok(branch));
        }
    }
}
