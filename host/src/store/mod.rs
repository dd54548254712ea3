//! A guest's Store: its data ([`InvocationState`]: WASI, HTTP, the resource
//! table, the `keel:core` state, limits and deadline), the one builder that
//! makes it ([`GuestStore`]) for workloads and shared plugins alike, the
//! linker every guest Store gets ([`core_linker`]), the memory limiter
//! ([`limits`]), a workload's loopback in its linker ([`loopback`]),
//! guest output ([`stdio`]), and how a deadline meets a call
//! under way elsewhere ([`in_flight`], [`Caller`]).

pub mod builder;
pub mod caller;
pub mod cpu;
pub mod in_flight;
pub mod limits;
pub mod loopback;
pub mod state;
pub mod stdio;

pub use builder::{GuestStore, core_linker};
pub use caller::Caller;
pub use state::InvocationState;
