//! The host side of `keel:core`, the interfaces plugins (never workloads)
//! import: who is calling ([`crate::plugins::identity`]), namespaced
//! [`messaging`] over the in-process [`bus`] (whose subscriptions hold
//! [`pending`] queues) or NATS ([`broker`]), and raw
//! [`nats`] for protocol plugins, limited by their subject grants
//! ([`crate::policy::grants`]; in JetStream API bodies too:
//! [`jetstream_grants`]) and a [`stream_cap`], and host [`pipe`]s for
//! plugins that hand out `wasi:io` streams.

pub mod broker;
pub mod bus;
pub mod jetstream_grants;
pub mod messaging;
pub mod nats;
pub mod pending;
pub mod pipe;
pub mod stream_cap;
