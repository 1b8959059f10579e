//! The one integration test binary: a module per area.

mod dns;
mod ejs;
mod interop_rlpx;
mod nat;
mod rlpx;
