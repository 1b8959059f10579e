//! Test utilities: the `Testnet` helper, keys from fixed seeds. Enabled by the `test-utils` feature.
pub mod dns;
pub mod nat;
