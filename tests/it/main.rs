//! The one integration test binary: a module per area.

mod ejs;
mod interop_rlpx;
mod rlpx;
