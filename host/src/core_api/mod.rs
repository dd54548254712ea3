//! The host side of `keel:core`, the interfaces plugins (never workloads)
//! import, served for any Store data through [`CoreView`] ([`view`]), with
//! the bindings generated once ([`bindings`]): who is calling
//! ([`identity`]), namespaced [`messaging`] over the in-process [`bus`]
//! (whose subscriptions hold [`pending`] queues) or NATS ([`broker`]), and
//! raw [`nats`] for protocol plugins, limited by their subject grants
//! ([`crate::policy::grants`]; in JetStream API bodies too:
//! [`jetstream_grants`]) and a [`stream_cap`], and host [`pipe`]s for
//! plugins that hand out `wasi:io` streams.

pub mod bindings;
pub mod broker;
pub mod bus;
pub mod identity;
pub mod jetstream_grants;
pub mod messaging;
pub mod nats;
pub mod pending;
pub mod pipe;
pub mod stream_cap;
pub mod view;

pub use view::{CoreCtx, CoreCtxView, CoreView, add_identity_to_linker, add_to_linker};
