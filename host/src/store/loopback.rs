//! A workload's loopback in its linker: `wasi:sockets/tcp`'s bind and
//! connect as `wasmtime-wasi` implements them, with the addresses turned
//! as the workload's [`Loopback`] says (see [`crate::policy::loopback`]
//! for why). Everything else about sockets, the grant checks included,
//! stays `wasmtime-wasi`'s.

use super::InvocationState;
use crate::policy::loopback::Loopback;
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::sync::Arc;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::SocketResult;
use wasmtime_wasi::p2::bindings::sockets::network::{
    ErrorCode, Host as _, IpSocketAddress, Network,
};
use wasmtime_wasi::p2::bindings::sockets::tcp::{HostTcpSocket, TcpSocket};
use wasmtime_wasi::sockets::{WasiSocketsCtxView, WasiSocketsView as _};

/// The `wasi:sockets/tcp` instance `wasmtime-wasi` links; guests importing
/// an older 0.2 version are served by it too.
const TCP: &str = "wasi:sockets/tcp@0.2.12";

/// The parameters of `start-bind` and `start-connect`.
type AddressCall = (Resource<TcpSocket>, Resource<Network>, IpSocketAddress);

/// Replaces `start-connect` in `linker` (which already holds WASI) with one
/// reaching the service's ports through `ports`; for the service's own
/// linker (`service`), `start-bind` too, binding a free port for each
/// loopback port asked for and recording it.
pub fn link_loopback(
    linker: &mut Linker<InvocationState>,
    ports: Arc<Loopback>,
    service: bool,
) -> Result<()> {
    linker.allow_shadowing(true);
    let result = shadow(linker, ports, service);
    linker.allow_shadowing(false);
    result.with_context(|| format!("linking the workload's loopback into {TCP}"))
}

fn shadow(linker: &mut Linker<InvocationState>, ports: Arc<Loopback>, service: bool) -> Result<()> {
    let mut tcp = linker.instance(TCP)?;
    if service {
        let ports = ports.clone();
        tcp.func_wrap_async(
            "[method]tcp-socket.start-bind",
            move |mut store, (this, network, asked): AddressCall| {
                let ports = ports.clone();
                Box::new(async move {
                    let asked: SocketAddr = asked.into();
                    let target = Loopback::bind_address(&asked);
                    let socket = Resource::<TcpSocket>::new_borrow(this.rep());
                    let mut view = store.data_mut().sockets();
                    let bound = HostTcpSocket::start_bind(
                        &mut view,
                        this,
                        network,
                        target.unwrap_or(asked).into(),
                    )
                    .await;
                    if bound.is_ok()
                        && target.is_some()
                        && let Ok(got) = HostTcpSocket::local_address(&mut view, socket)
                    {
                        let got: SocketAddr = got.into();
                        tracing::debug!(%asked, %got, "service bound a loopback port");
                        ports.record(asked, got);
                    }
                    Ok((guest_result(&mut view, bound)?,))
                })
            },
        )?;
    }
    tcp.func_wrap(
        "[method]tcp-socket.start-connect",
        move |mut store, (this, network, remote): AddressCall| {
            let to = ports.connect_address(remote.into());
            let mut view = store.data_mut().sockets();
            let connected = HostTcpSocket::start_connect(&mut view, this, network, to.into());
            Ok((guest_result(&mut view, connected)?,))
        },
    )?;
    Ok(())
}

/// A socket call's result as the guest sees it: its error code, or a trap
/// for what is no error code.
fn guest_result(
    view: &mut WasiSocketsCtxView<'_>,
    result: SocketResult<()>,
) -> wasmtime::Result<Result<(), ErrorCode>> {
    match result {
        Ok(()) => Ok(Ok(())),
        Err(e) => Ok(Err(view.convert_error_code(e)?)),
    }
}
