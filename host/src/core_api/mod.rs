//! The host side of `keel:core`, the interfaces plugins (never workloads)
//! import: who is calling ([`crate::plugins::identity`]) and messaging over
//! the in-process [`bus`] (or, later, NATS).

pub mod broker;
pub mod bus;
pub mod messaging;
