//! Rules that hold whatever runs: plain data and checks, no Wasmtime, no
//! I/O, so every layer above can use them. [`subject`]: what a NATS subject
//! may look like before it reaches the in-process bus or the shared NATS
//! connection.

pub mod subject;
