//! discv4: our own implementation of the Node Discovery Protocol v4 (discv4.md) with EIP-8
//! forward compatibility and EIP-868 ENR requests.
//!
//! Layout:
//! - [`proto`]: the packet codec, pure functions from messages to signed datagrams and back.
//! - [`table`]: the Kademlia routing table with replacement lists and subnet limits.

pub mod proto;
pub mod table;

mod error;

pub use error::{Discv4Error, PacketError};
