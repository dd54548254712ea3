//! Synchronous plugin Stores: a shared plugin that can never wait runs in a
//! Store called with `call`, not `call_async`.
//!
//! A call into an async Store runs on a fiber of its own and goes through
//! the future machinery; a plugin that computes (an in-memory key-value
//! store, config, logging) waits for nothing, so its calls can run straight
//! on the caller's stack instead, about a quarter cheaper (see README,
//! Performance). A plugin qualifies when:
//!
//! - everything it imports links against [`linker`]: the synchronous parts
//!   of WASI (clocks, random, environment, stdio) and `keel:core/identity`,
//!   with `wasi:io` from [`super::nonblocking_io`]; nothing that reaches the
//!   network, files, HTTP or NATS;
//! - it imports no clock subscription, so it never sleeps;
//! - no function it exports passes a `wasi:io` stream or pollable, so the
//!   only streams in its Store are its own stdio, which never make it wait.
//!
//! Every other plugin keeps an async Store. A synchronous call still ends by
//! its caller's deadline: the epoch callback traps the plugin then (see
//! [`super::SharedPlugin`]), where an async one would be abandoned.
//!
//! A synchronous plugin's Wasm runs on its caller's stack, usually a
//! workload's fiber. Wasmtime's defaults leave room for both: a fiber stack
//! of 2 MiB, and at most 512 KiB of Wasm stack for each Store entered.

use super::nonblocking_io;
use crate::store::InvocationState;
use anyhow::{Context, Result, anyhow};
use wasmtime::component::types::{ComponentItem, Type};
use wasmtime::component::{Component, InstancePre, Linker, ResourceType};
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable};
use wasmtime_wasi::random::{WasiRandom, WasiRandomView};

/// Runs `future` to its end at once. The steps a call shares with async
/// Stores (starting the plugin, dropping handles) are written as futures,
/// and for a synchronous Store they end in one poll, which lets a caller
/// that cannot wait (a synchronous host function) take them. An error, and
/// whatever the future held dropped, if it would have waited: an async
/// Store's would.
pub(crate) fn now<F: Future>(future: F) -> Result<F::Output> {
    futures::FutureExt::now_or_never(future)
        .ok_or_else(|| anyhow!("the plugin would have to wait, and its caller cannot"))
}

/// The linker of synchronous plugin Stores.
pub fn linker(engine: &wasmtime::Engine) -> Result<Linker<InvocationState>> {
    let mut linker = Linker::new(engine);
    link_wasi(&mut linker)
        .map_err(anyhow::Error::from)
        .context("linking synchronous WASI")?;
    crate::core_api::add_identity_to_linker(&mut linker)?;
    Ok(linker)
}

/// The synchronous parts of WASI, with keel's non-blocking `wasi:io`.
fn link_wasi(l: &mut Linker<InvocationState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::p2::bindings::{cli, clocks, random};
    type S = InvocationState;
    clocks::wall_clock::add_to_linker::<S, WasiClocks>(l, S::clocks)?;
    clocks::monotonic_clock::add_to_linker::<S, WasiClocks>(l, S::clocks)?;
    random::random::add_to_linker::<S, WasiRandom>(l, <S as WasiRandomView>::random)?;
    random::insecure::add_to_linker::<S, WasiRandom>(l, <S as WasiRandomView>::random)?;
    random::insecure_seed::add_to_linker::<S, WasiRandom>(l, <S as WasiRandomView>::random)?;
    cli::exit::add_to_linker::<S, WasiCli>(l, S::cli)?;
    cli::environment::add_to_linker::<S, WasiCli>(l, S::cli)?;
    cli::stdin::add_to_linker::<S, WasiCli>(l, S::cli)?;
    cli::stdout::add_to_linker::<S, WasiCli>(l, S::cli)?;
    cli::stderr::add_to_linker::<S, WasiCli>(l, S::cli)?;
    cli::terminal_input::add_to_linker::<S, WasiCli>(l, S::cli)?;
    cli::terminal_output::add_to_linker::<S, WasiCli>(l, S::cli)?;
    cli::terminal_stdin::add_to_linker::<S, WasiCli>(l, S::cli)?;
    cli::terminal_stdout::add_to_linker::<S, WasiCli>(l, S::cli)?;
    cli::terminal_stderr::add_to_linker::<S, WasiCli>(l, S::cli)?;
    nonblocking_io::add_to_linker(l)
}

/// `component` prepared for a synchronous Store, if it qualifies (see the
/// module documentation).
pub fn prepare(
    linker: &Linker<InvocationState>,
    component: &Component,
) -> Option<InstancePre<InvocationState>> {
    let engine = component.engine();
    if subscribes_to_clock(engine, component) {
        return None;
    }
    let pre = linker.instantiate_pre(component).ok()?;
    let io = [
        ResourceType::host::<DynInputStream>(),
        ResourceType::host::<DynOutputStream>(),
        ResourceType::host::<DynPollable>(),
    ];
    let ty = linker.substituted_component_type(component).ok()?;
    let passes_io = ty.exports(engine).any(|(_, item)| match item.ty {
        ComponentItem::ComponentFunc(func) => func_mentions(&func, &io),
        ComponentItem::ComponentInstance(instance) => {
            instance.exports(engine).any(|(_, item)| match item.ty {
                ComponentItem::ComponentFunc(func) => func_mentions(&func, &io),
                _ => false,
            })
        }
        _ => false,
    });
    (!passes_io).then_some(pre)
}

/// Whether `component` imports a monotonic-clock subscription (a way to
/// sleep).
fn subscribes_to_clock(engine: &wasmtime::Engine, component: &Component) -> bool {
    component
        .component_type()
        .imports(engine)
        .any(|(name, item)| match item.ty {
            ComponentItem::ComponentInstance(instance)
                if name.starts_with("wasi:clocks/monotonic-clock@") =>
            {
                instance
                    .exports(engine)
                    .any(|(member, _)| member.starts_with("subscribe-"))
            }
            _ => false,
        })
}

/// Whether a parameter or result of `func` holds a resource of `types`.
fn func_mentions(func: &wasmtime::component::types::ComponentFunc, types: &[ResourceType]) -> bool {
    func.params().any(|(_, ty)| mentions(&ty, types))
        || func.results().any(|ty| mentions(&ty, types))
}

/// Whether `ty` holds a resource of `types`.
fn mentions(ty: &Type, types: &[ResourceType]) -> bool {
    match ty {
        Type::Own(resource) | Type::Borrow(resource) => types.contains(resource),
        Type::List(list) => mentions(&list.ty(), types),
        Type::Option(option) => mentions(&option.ty(), types),
        Type::Record(record) => record.fields().any(|field| mentions(&field.ty, types)),
        Type::Tuple(tuple) => tuple.types().any(|ty| mentions(&ty, types)),
        Type::Variant(variant) => variant
            .cases()
            .any(|case| case.ty.is_some_and(|ty| mentions(&ty, types))),
        Type::Result(result) => {
            result.ok().is_some_and(|ty| mentions(&ty, types))
                || result.err().is_some_and(|ty| mentions(&ty, types))
        }
        _ => false,
    }
}
