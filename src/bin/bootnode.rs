//! The `bootnode` binary (filled in by the foundation work).
fn main() {}
