//! Data parallelism: one replica of the policy per device, each rolling out and
//! learning from its share of a step, with the gradients summed over the devices by
//! burn-collective (burn's all-reduce) before every optimizer step, so that every
//! replica takes the same step and stays identical to the others.
//!
//! One device is the same code path with nothing to reduce.

pub mod device_list;
pub mod peer_sync;

pub use device_list::DeviceList;
pub use peer_sync::{PeerGroup, PeerSync};
