//! How a workload's calls reach a shared plugin: host functions in the
//! workload's Store that forward each call into the plugin's Store. The
//! [`generic`] forwarder serves any interface through dynamic values; the
//! [`typed`] ones serve the interfaces keel knows with static types, which
//! is cheaper. Resources the plugin hands out live in the workload as
//! [`proxy`] resources, and `wasi:io` streams move between the two Stores
//! ([`streams`]).

pub mod generic;
pub mod proxy;
pub mod streams;
pub mod typed;
