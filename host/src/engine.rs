//! The Wasmtime engine every workload and plugin of a host shares: its
//! configuration, the instance pool and its admission ([`crate::pool`]),
//! and the one epoch ticker that enforces per-invocation deadlines.

use crate::pool::InstancePool;
use crate::pool::warm::WarmLedger;
use anyhow::{Context, Result};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How the engine is built. The defaults suit a server.
///
/// ```
/// use keel::EngineOptions;
/// use std::time::Duration;
/// let options = EngineOptions::default()
///     .with_pool_instances(200)
///     .with_epoch_tick(Duration::from_millis(5));
/// assert_eq!(options.warm_places(), 20);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EngineOptions {
    /// Use the pooling instance allocator (fast instantiation; reserves
    /// virtual memory up front). When the reservation fails keel falls back
    /// to on-demand allocation and says so in the log.
    pub pooling: bool,
    /// Component instances the pool holds at once (across all workloads
    /// and shared plugins). A tenth is kept for shared plugin instances;
    /// the rest bounds the invocations the host runs at once, shared
    /// fairly between workloads.
    pub pool_instances: u32,
    /// Idle warm instances (components that opt in to reuse) the host
    /// keeps between requests, across all workloads; the pool holds this
    /// many instances more. When every place is
    /// taken, an instance that could be kept is discarded instead. `None`:
    /// a tenth of `pool_instances`, rounded up.
    pub warm_instances: Option<u32>,
    /// Bytes of each pooled linear memory (and table) reset in place when
    /// an instance is freed, instead of handed back to the kernel: the next
    /// instance in that slot then touches pages that are already resident
    /// (no page faults, no zeroing by the kernel) up to this size. 0 hands
    /// everything back (Wasmtime's default). Default [`KEEP_RESIDENT`].
    pub keep_resident: usize,
    /// Turn on the component-model-async machinery (WASI P3). Off by default:
    /// measured in `make bench`, turning it on makes instantiation and every
    /// host call slower (see README, "Performance").
    pub concurrency_support: bool,
    /// How often the epoch advances: the granularity of deadlines.
    pub epoch_tick: Duration,
}

/// The default of [`EngineOptions::keep_resident`]: 64 KiB. Measured on
/// hello with fresh instances at 32 connections (README, "Fresh instances:
/// CPU per request"): with the pages an instance dirtied kept (Linux's
/// `PAGEMAP_SCAN`), no page fault per request and 44 → 25 µs of CPU; 16 and
/// 256 KiB measured the same. Without `PAGEMAP_SCAN` the lowest addresses
/// are kept instead: three of seven faults saved, about 10% of the CPU.
pub const KEEP_RESIDENT: usize = 64 << 10;

impl Default for EngineOptions {
    fn default() -> EngineOptions {
        EngineOptions {
            pooling: true,
            pool_instances: 1000,
            warm_instances: None,
            keep_resident: KEEP_RESIDENT,
            concurrency_support: false,
            epoch_tick: Duration::from_millis(10),
        }
    }
}

impl EngineOptions {
    /// Whether to use the pooling instance allocator.
    pub fn with_pooling(mut self, pooling: bool) -> EngineOptions {
        self.pooling = pooling;
        self
    }

    /// Component instances the pool holds at once.
    pub fn with_pool_instances(mut self, instances: u32) -> EngineOptions {
        self.pool_instances = instances;
        self
    }

    /// Idle warm instances kept between requests, across all workloads.
    pub fn with_warm_instances(mut self, instances: u32) -> EngineOptions {
        self.warm_instances = Some(instances);
        self
    }

    /// Bytes of each pooled linear memory and table reset in place rather
    /// than handed back to the kernel.
    pub fn with_keep_resident(mut self, bytes: usize) -> EngineOptions {
        self.keep_resident = bytes;
        self
    }

    /// Whether the component-model-async machinery (WASI P3) is on.
    pub fn with_concurrency_support(mut self, on: bool) -> EngineOptions {
        self.concurrency_support = on;
        self
    }

    /// How often the epoch advances: the granularity of deadlines.
    pub fn with_epoch_tick(mut self, tick: Duration) -> EngineOptions {
        self.epoch_tick = tick;
        self
    }

    /// Places for idle warm instances: `warm_instances`, or a tenth of
    /// `pool_instances` rounded up.
    pub fn warm_places(&self) -> u32 {
        self.warm_instances
            .unwrap_or_else(|| self.pool_instances.div_ceil(10))
    }
}

/// A configured engine plus its epoch ticker; the ticker stops when this is
/// dropped.
pub struct KeelEngine {
    engine: Engine,
    options: EngineOptions,
    pooled: bool,
    pool: Arc<InstancePool>,
    warm: Arc<WarmLedger>,
    ticker: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

impl KeelEngine {
    /// Builds the engine and starts its epoch ticker.
    pub fn new(options: EngineOptions) -> Result<KeelEngine> {
        let (engine, pooled) = if options.pooling {
            match Engine::new(&config(&options, true)) {
                Ok(engine) => (engine, true),
                Err(e) => {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "the pooling allocator could not reserve its memory; falling back to on-demand allocation"
                    );
                    (
                        Engine::new(&config(&options, false))
                            .map_err(anyhow::Error::from)
                            .context("building the Wasmtime engine")?,
                        false,
                    )
                }
            }
        } else {
            (
                Engine::new(&config(&options, false))
                    .map_err(anyhow::Error::from)
                    .context("building the Wasmtime engine")?,
                false,
            )
        };
        let ticker = spawn_ticker(engine.clone(), options.epoch_tick)?;
        let pool = InstancePool::new(options.pool_instances);
        let warm = WarmLedger::new(options.warm_places());
        Ok(KeelEngine {
            engine,
            options,
            pooled,
            pool,
            warm,
            ticker: Some(ticker),
        })
    }

    /// The Wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The options it was built with.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Whether instances come from the pool (false after a fallback).
    pub fn pooled(&self) -> bool {
        self.pooled
    }

    /// Admission to the instance pool: invocation slots and the shared
    /// plugins' reserve.
    pub fn pool(&self) -> &Arc<InstancePool> {
        &self.pool
    }

    /// Places for idle warm instances.
    pub fn warm(&self) -> &Arc<WarmLedger> {
        &self.warm
    }

    /// The number of epoch ticks that covers `timeout`, at least one.
    pub fn ticks_for(&self, timeout: Duration) -> u64 {
        let tick = self.options.epoch_tick.as_nanos().max(1);
        u64::try_from(timeout.as_nanos().div_ceil(tick))
            .unwrap_or(u64::MAX)
            .max(1)
    }
}

impl Drop for KeelEngine {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.ticker.take() {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}

fn config(options: &EngineOptions, pooling: bool) -> Config {
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .concurrency_support(options.concurrency_support)
        .wasm_component_model(true);
    if pooling {
        // Idle warm instances hold places of their own (crate::pool::warm).
        let instances = options.pool_instances.saturating_add(options.warm_places());
        let mut pool = PoolingAllocationConfig::default();
        // A plugin-composed workload holds several core instances, memories
        // and tables; size the pool for a handful of each per component.
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(8))
            .total_memories(instances.saturating_mul(2))
            .total_tables(instances.saturating_mul(4))
            .total_stacks(instances)
            .max_core_instances_per_component(64)
            .max_memories_per_component(16)
            .max_tables_per_component(32)
            .linear_memory_keep_resident(options.keep_resident)
            .table_keep_resident(options.keep_resident)
            // The kept bytes are the pages the last instance dirtied,
            // wherever they sit (found with Linux's `PAGEMAP_SCAN`, 6.7 and
            // later), not the lowest addresses: a Rust guest touches the top
            // of its stack, its data and the start of its heap around 1 MiB,
            // far above the first 64 KiB. Where the kernel lacks it, Wasmtime
            // keeps the lowest addresses as before.
            .pagemap_scan(Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// One thread per engine advances the epoch; invocations set deadlines in
/// ticks, so no per-request timer thread exists.
fn spawn_ticker(engine: Engine, tick: Duration) -> Result<(mpsc::Sender<()>, JoinHandle<()>)> {
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("keel-epoch".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                engine.increment_epoch();
            }
        })
        .context("starting the epoch ticker thread")?;
    Ok((stop, thread))
}
