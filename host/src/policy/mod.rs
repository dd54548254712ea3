//! The rules keel enforces, with no runtime behind them: plain data and
//! checks, no Wasmtime, no I/O, so every layer above can use them and the
//! manifest, the library API and the runtime all check the same rules.
//! [`names`]: which namespaces, names and host names are valid;
//! [`subject`]: what a NATS subject may look like before it reaches the
//! in-process bus or the shared NATS connection; [`inbox`]: the two kinds
//! of reply inbox; [`grants`]: which subjects
//! a plugin's grants let it use through `keel:core/nats`; [`authority`],
//! [`addresses`] and [`sockets`]: which outgoing HTTP authorities, resolved
//! addresses and socket addresses a guest may reach; [`loopback`]: the
//! ports a workload's service listens on, as its components see them.

pub mod addresses;
pub mod authority;
pub mod grants;
pub mod inbox;
pub mod loopback;
pub mod names;
pub mod sockets;
pub mod subject;
