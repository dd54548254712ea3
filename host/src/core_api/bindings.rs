//! The host bindings of the `keel:core` plugin world, generated once here
//! for every interface of [`crate::core_api`].

wasmtime::component::bindgen!({
    path: "../wit/keel-core",
    world: "keel:core/plugin",
    imports: {
        "keel:core/messaging.publish": async,
        "keel:core/messaging.request": async,
        "keel:core/nats.publish": async,
        "keel:core/nats.request": async,
        "keel:core/nats.subscribe": async,
        "keel:core/nats.[method]subscription.next": async,
        "keel:core/pipe.new-pipe": trappable,
    },
    with: {
        "keel:core/nats.subscription": crate::core_api::nats::NatsSubscription,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
    },
});
