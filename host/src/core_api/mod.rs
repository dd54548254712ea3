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

/// The version of `keel:core` this host serves (`wit/keel-core`). A plugin
/// built against a semver-compatible version links (for `0.x`, the same
/// minor version, any patch); another is refused with the reason.
pub const KEEL_CORE_VERSION: &str = "0.1.0";

/// The interfaces of `keel:core` this host serves.
pub const KEEL_CORE_INTERFACES: &[&str] = &["identity", "messaging", "nats", "pipe"];

#[cfg(test)]
mod contract_tests {
    use super::*;

    /// The constants above say what `wit/keel-core` says.
    #[test]
    fn constants_match_the_wit() {
        let identity = include_str!("../../../wit/keel-core/identity.wit");
        assert!(identity.contains(&format!("package keel:core@{KEEL_CORE_VERSION};")));
        let all = [
            identity,
            include_str!("../../../wit/keel-core/messaging.wit"),
            include_str!("../../../wit/keel-core/nats.wit"),
            include_str!("../../../wit/keel-core/pipe.wit"),
        ]
        .concat();
        for interface in KEEL_CORE_INTERFACES {
            assert!(
                all.contains(&format!("interface {interface} {{")),
                "{interface}"
            );
        }
        assert_eq!(
            all.matches("\ninterface ").count(),
            KEEL_CORE_INTERFACES.len()
        );
    }
}
