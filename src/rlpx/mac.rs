//! The running keccak MAC of one direction of an RLPx connection (rlpx.md, "Framing").
//!
//! Each side keeps one MAC state per direction. It is a keccak256 sponge that absorbs every
//! frame's ciphertext and never finishes: a digest is taken from a clone of the state, so the
//! sponge keeps running. The "seed" step mixes in AES-256 (ECB, one block) keyed with the
//! mac-secret, as the spec describes.

use aes::{
    cipher::{BlockEncrypt, KeyInit},
    Aes256,
};
use alloy_primitives::{Keccak256, B256};

/// One direction's MAC state: the keccak sponge plus the AES block cipher keyed with the
/// mac-secret.
#[derive(Clone)]
pub(crate) struct Mac {
    cipher: Aes256,
    hasher: Keccak256,
    /// The 16-byte digest of the current state, if it was taken since the last update. A
    /// frame's MAC and the next header's seed are digests of the same state, so caching it
    /// saves one keccak permutation per frame (a quarter of the overhead on small frames).
    cached: Option<[u8; 16]>,
}

impl std::fmt::Debug for Mac {
    // The state is secret-derived; only say what it is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mac").finish_non_exhaustive()
    }
}

impl Mac {
    /// A MAC keyed with `secret` (the mac-secret) and an empty sponge.
    pub(crate) fn new(secret: B256) -> Self {
        Self { cipher: Aes256::new(secret.as_slice().into()), hasher: Keccak256::new(), cached: None }
    }

    /// Absorbs `data` into the sponge.
    #[inline]
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.cached = None;
        self.hasher.update(data);
    }

    /// The current keccak256 digest, without finishing the running state. alloy's
    /// `Keccak256` is `Clone` (a 200-byte state copy), so the asm keccak stays usable.
    #[inline]
    pub(crate) fn digest(&self) -> B256 {
        self.hasher.clone().finalize()
    }

    /// The first 16 bytes of [`Self::digest`]: the MAC that goes on the wire.
    #[inline]
    pub(crate) fn digest16(&mut self) -> [u8; 16] {
        if let Some(cached) = self.cached {
            return cached;
        }
        let mut out = [0u8; 16];
        out.copy_from_slice(&self.digest()[..16]);
        self.cached = Some(out);
        out
    }

    /// `aes(mac-secret, block)`.
    #[inline]
    fn encrypt_block(&self, block: [u8; 16]) -> [u8; 16] {
        let mut b = block.into();
        self.cipher.encrypt_block(&mut b);
        b.into()
    }

    /// The header step: `update(aes(mac-secret, digest[:16]) ^ header-ciphertext)`.
    #[inline]
    pub(crate) fn update_header(&mut self, header_ciphertext: &[u8; 16]) {
        let digest = self.digest16();
        let mut seed = self.encrypt_block(digest);
        for (s, c) in seed.iter_mut().zip(header_ciphertext) {
            *s ^= c;
        }
        self.update(&seed);
    }

    /// The body step, after the frame ciphertext was absorbed with [`Self::update`]:
    /// `update(aes(mac-secret, digest[:16]) ^ digest[:16])`.
    #[inline]
    pub(crate) fn update_body(&mut self) {
        let prev = self.digest16();
        let mut seed = self.encrypt_block(prev);
        for (s, p) in seed.iter_mut().zip(prev) {
            *s ^= p;
        }
        self.update(&seed);
    }
}
