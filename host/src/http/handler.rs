//! One HTTP request's path through the host: route, check limits, admit,
//! instantiate a fresh guest, call its `wasi:http/incoming-handler`, and turn
//! whatever happens into a status code.

use super::body::{LimitedBody, ResponseBody, full};
use super::router::{Router, request_host};
use crate::engine::KeelEngine;
use crate::store::InvocationState;
use crate::store::in_flight::DeadlinePassed;
use crate::workload::warm::WarmInstance;
use crate::workload::{Admission, Unavailable, Workload};
use bytes::Bytes;
use http_body::Body;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use wasmtime::Store;
use wasmtime_wasi_http::Error as HttpError;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

/// How an invocation ended, once the guest is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Finished,
    Deadline,
    MemoryLimit,
    MemoryBudget,
    Trap,
}

/// Serves one request, whatever carries it: keel's ingress (a hyper
/// `Incoming` body) or an embedder's server (see
/// [`Host::handle`](crate::Host::handle)).
pub async fn handle<B>(
    router: &Router,
    engine: &Arc<KeelEngine>,
    request: http::Request<B>,
) -> http::Response<ResponseBody>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<HttpError>,
{
    // RFC 9112 §3.2: a request with several Host headers is refused, so
    // that the router and the guest cannot read different hosts from it.
    if request
        .headers()
        .get_all(http::header::HOST)
        .iter()
        .nth(1)
        .is_some()
    {
        return text(400, "more than one Host header\n");
    }
    let host = request_host(&request);
    let Some(workload) = router.route(host.as_deref()) else {
        let shown = host.as_deref().unwrap_or("(none)");
        return text(404, &format!("no workload serves host {shown}\n"));
    };
    let permit = match workload.admit().await {
        Ok(permit) => permit,
        Err(Unavailable::Busy(_)) => return retry_later(text(503, "workload is busy\n")),
        // No slot of the host's pool that the fair-share rule gives it came free.
        Err(e @ Unavailable::HostBusy(_)) => return retry_later(text(503, &format!("{e}\n"))),
        Err(e @ Unavailable::NotRunning(_)) => return text(503, &format!("{e}\n")),
    };
    if workload.http().is_none() {
        return text(404, "this workload does not serve HTTP\n");
    }
    let limit = workload.spec().limits.max_request_body.0;
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return too_large(limit);
    }
    invoke(workload, engine, permit, request, limit).await
}

async fn invoke<B>(
    workload: Arc<Workload>,
    engine: &Arc<KeelEngine>,
    permit: Admission,
    request: http::Request<B>,
    limit: u64,
) -> http::Response<ResponseBody>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<HttpError>,
{
    let Some(component) = workload.http() else {
        return text(404, "this workload does not serve HTTP\n");
    };
    let template = component.template.clone();
    let pre = component.pre.clone();
    // A warm instance when the component keeps them and one is idle; a
    // fresh Store otherwise.
    let warm = component
        .warm
        .as_ref()
        .and_then(|pool| pool.take(&template));
    let (mut store, reused, served) = match warm {
        Some(instance) => {
            let (store, proxy, served) = instance.into_parts();
            (store, Some(proxy), served)
        }
        None => match template.new_store(engine) {
            Ok(store) => (store, None, 0),
            Err(e) => {
                tracing::error!(
                    workload = template.workload(),
                    error = format!("{e:#}"),
                    "could not prepare an instance"
                );
                return text(500, "internal error\n");
            }
        },
    };
    let tripped = Arc::new(AtomicBool::new(false));
    let request = request.map(|body| LimitedBody::new(body, limit, tripped.clone()));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let resources = (|| {
        let request = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)?;
        let out = store.data_mut().http().new_response_outparam(tx)?;
        wasmtime::Result::<_>::Ok((request, out))
    })();
    let (guest_request, out) = match resources {
        Ok(pair) => pair,
        Err(e) => {
            tracing::warn!(
                workload = template.workload(),
                error = format!("{e:#}"),
                "refused a malformed request"
            );
            return text(400, "bad request\n");
        }
    };
    let deadline = tokio::time::Instant::now() + template.timeout();
    // Where the response slot sits in the Store's table: a guest that
    // returns while still holding it (kept in a global, never set) did not
    // answer this request, and its instance must not serve another, which
    // could then answer this client.
    let outparam = out.rep();
    // The task gives a warm instance back to this workload's pool.
    let owner = workload.clone();
    let guest = tokio::spawn(async move {
        let in_flight = store.data().in_flight().clone();
        // Boxed: instantiation's and the call's futures are large, and
        // inline they would make this task's future large too, copied
        // several times as it is spawned.
        let call = Box::pin(async {
            // A workload whose turns on the CPU are all taken starts its
            // new invocations only as turns come free.
            template.wait_for_turn(&mut store).await;
            let proxy = match reused {
                Some(proxy) => proxy,
                None => pre.instantiate_async(&mut store).await?,
            };
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, guest_request, out)
                .await?;
            wasmtime::Result::<_>::Ok(proxy)
        });
        // A call under way in a shared plugin at the deadline finishes
        // first: dropping it would cost the plugin its state.
        let (result, proxy): (CallResult, _) = match in_flight.until(deadline, call).await {
            Ok(Ok(proxy)) => (Ok(Ok(())), Some(proxy)),
            Ok(Err(e)) => (Ok(Err(e)), None),
            Err(passed) => (Err(passed), None),
        };
        let ending = ending(&result, &store);
        log_ending(ending, &template, &result, &store);
        // A body the guest left unfinished ends its client's response with
        // an error, and the instance, which could finish it from a later
        // request, is not reused.
        let open_bodies = store.data_mut().abort_open_bodies();
        if open_bodies > 0 && ending == Ending::Finished {
            tracing::warn!(
                workload = template.workload(),
                component = template.component(),
                "the guest returned leaving its response body unfinished"
            );
        }
        // A warm instance goes back to its pool (or is discarded) before
        // the slots that admitted it: whoever they wake may find it idle.
        // Otherwise the Store (its pooled instance, its memory, its
        // budget) goes first, so whoever they wake finds both free.
        let pool = owner.http().and_then(|c| c.warm.as_ref());
        match (pool, proxy) {
            (Some(pool), Some(proxy)) => {
                let answered = store.data_mut().table_mut().get_any_mut(outparam).is_err();
                pool.give_back(
                    WarmInstance::from_parts(store, proxy, served),
                    ending == Ending::Finished && answered && open_bodies == 0,
                    &template,
                )
            }
            _ => drop(store),
        }
        drop(permit);
        ending
    });
    match rx.await {
        Ok(Ok(response)) if !tripped.load(Ordering::Acquire) => response,
        Ok(Ok(_)) => too_large(limit),
        Ok(Err(code)) if tripped.load(Ordering::Acquire) => {
            tracing::debug!(?code, "guest gave up on an over-long body");
            too_large(limit)
        }
        Ok(Err(code)) => {
            tracing::warn!(workload = %workload.id(), ?code, "the guest answered with an error code");
            text(500, "the workload reported an error\n")
        }
        // The guest never called `response-outparam.set`: its task tells why.
        Err(_) => match guest.await {
            _ if tripped.load(Ordering::Acquire) => too_large(limit),
            Ok(Ending::Deadline) => text(504, "the workload ran past its deadline\n"),
            Ok(Ending::MemoryLimit) => text(500, "the workload ran out of memory\n"),
            Ok(Ending::MemoryBudget) => retry_later(text(
                503,
                "the workload's requests in flight hold all the memory it may use\n",
            )),
            Ok(Ending::Trap) | Err(_) => text(500, "the workload failed\n"),
            Ok(Ending::Finished) => text(500, "the workload sent no response\n"),
        },
    }
}

type CallResult = Result<wasmtime::Result<()>, DeadlinePassed>;

fn ending(result: &CallResult, store: &Store<InvocationState>) -> Ending {
    match result {
        Ok(Ok(())) => Ending::Finished,
        Err(_elapsed) => Ending::Deadline,
        Ok(Err(_)) if store.data().deadline_hit() => Ending::Deadline,
        Ok(Err(_)) if store.data().memory_limit_hit() => Ending::MemoryLimit,
        Ok(Err(_)) if store.data().memory_budget_hit() => Ending::MemoryBudget,
        Ok(Err(_)) => Ending::Trap,
    }
}

fn log_ending(
    ending: Ending,
    template: &crate::workload::InvocationTemplate,
    result: &CallResult,
    store: &Store<InvocationState>,
) {
    let workload = template.workload();
    let component = template.component();
    // A composed plugin the failure came from, named in the record.
    let plugin = match result {
        Ok(Err(e)) => crate::trap::plugin_of(e),
        _ => None,
    };
    let error = match result {
        Ok(Err(e)) => {
            tracing::debug!(
                workload,
                component,
                error = format!("{e:?}"),
                "the whole error"
            );
            crate::trap::summary(e)
        }
        _ => String::new(),
    };
    match ending {
        Ending::Finished => {}
        Ending::Deadline => tracing::warn!(
            workload,
            component,
            timeout_ms = template.timeout().as_millis() as u64,
            "invocation cut at its deadline"
        ),
        Ending::MemoryLimit => tracing::warn!(
            workload,
            component,
            plugin,
            memory_used = store.data().memory_used(),
            error,
            "guest stopped at its memory limit"
        ),
        Ending::MemoryBudget => tracing::warn!(
            workload,
            component,
            memory_used = store.data().memory_used(),
            "guest stopped: the memory budget of the workload (or the host) is spent by invocations in flight"
        ),
        Ending::Trap => match &plugin {
            Some(name) => tracing::warn!(
                workload,
                component,
                plugin = name.as_str(),
                error,
                "guest trapped in composed plugin `{name}`"
            ),
            None => tracing::warn!(workload, component, error, "guest trapped"),
        },
    }
}

/// `response` with `Retry-After: 1`: the condition passes as requests end.
fn retry_later(mut response: http::Response<ResponseBody>) -> http::Response<ResponseBody> {
    response.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("1"),
    );
    response
}

fn too_large(limit: u64) -> http::Response<ResponseBody> {
    text(
        413,
        &format!("request body is larger than this workload's limit of {limit} bytes\n"),
    )
}

/// A plain-text response from the host itself.
pub fn text(status: u16, body: &str) -> http::Response<ResponseBody> {
    let mut response = http::Response::new(full(body.to_string()));
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
