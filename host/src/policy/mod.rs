//! The rules keel enforces, with no runtime behind them: which names are
//! valid ([`names`]), which outgoing HTTP authorities ([`authority`]) and
//! resolved addresses ([`addresses`]), and which socket addresses
//! ([`sockets`]) a guest may reach. The lowest layer of the
//! crate: it uses no other module of keel and no Wasmtime, so the manifest,
//! the library API and the runtime all check the same rules.

pub mod addresses;
pub mod authority;
pub mod names;
pub mod sockets;
