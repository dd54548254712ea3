//! `acme:tally/counters` implemented natively in the host: the anchor the
//! plugin figures are measured against.

use keel_tests::guest;
use keel_tests::stock::{StockRunner, StockState};
use std::collections::HashMap;
use wasmtime::component::Resource;

mod bindings {
    wasmtime::component::bindgen!({
        path: ["../wit/keel-core", "fixtures/wit/tally-0.2.0"],
        world: "acme:tally/user",
        with: { "acme:tally/counters.counter": super::NativeCounter },
    });
}
use bindings::acme::tally::counters::{self, Snapshot, TallyError};

/// A counter handle of the native implementation.
pub struct NativeCounter {
    name: String,
}

/// The native implementation's counters.
#[derive(Default)]
pub struct Counters(HashMap<String, (i64, Vec<i64>)>);

type State = StockState<Counters>;

fn table_error(e: wasmtime::component::ResourceTableError) -> TallyError {
    TallyError::Overflow(e.to_string())
}

impl counters::Host for State {
    fn open(&mut self, name: String) -> Result<Resource<NativeCounter>, TallyError> {
        if name.is_empty() {
            return Err(TallyError::EmptyName);
        }
        self.table()
            .push(NativeCounter { name })
            .map_err(table_error)
    }

    fn merge(
        &mut self,
        target: Resource<NativeCounter>,
        source: Resource<NativeCounter>,
    ) -> Result<Snapshot, TallyError> {
        let source = self.table().delete(source).map_err(table_error)?;
        let moved = self.extra.0.remove(&source.name).map_or(0, |c| c.0);
        let name = self.table().get(&target).map_err(table_error)?.name.clone();
        let entry = self.extra.0.entry(name.clone()).or_default();
        entry.0 += moved;
        entry.1.push(moved);
        Ok(Snapshot {
            name,
            value: entry.0,
            history: entry.1.clone(),
            owner: "native".into(),
        })
    }

    fn sum_all(&mut self, values: Vec<i64>) -> i64 {
        values.iter().sum()
    }

    fn live_handles(&mut self) -> u32 {
        0
    }

    fn crash(&mut self) {}

    fn spin(&mut self) {}
}

impl counters::HostCounter for State {
    fn add(&mut self, counter: Resource<NativeCounter>, delta: i64) -> Result<i64, TallyError> {
        let name = self
            .table()
            .get(&counter)
            .map_err(table_error)?
            .name
            .clone();
        let entry = self.extra.0.entry(name).or_default();
        entry.0 += delta;
        Ok(entry.0)
    }

    fn snapshot(&mut self, counter: Resource<NativeCounter>) -> Snapshot {
        let name = self
            .table()
            .get(&counter)
            .map(|c| c.name.clone())
            .unwrap_or_default();
        let (value, history) = self.extra.0.get(&name).cloned().unwrap_or_default();
        Snapshot {
            name,
            value,
            history,
            owner: "native".into(),
        }
    }

    fn drop(&mut self, counter: Resource<NativeCounter>) -> wasmtime::Result<()> {
        self.table().delete(counter)?;
        Ok(())
    }
}

/// `tally-user` on plain Wasmtime with `acme:tally/counters` implemented by
/// native host functions.
pub fn runner() -> anyhow::Result<StockRunner<Counters>> {
    StockRunner::new(&guest("tally_user"), |linker| {
        counters::add_to_linker::<State, wasmtime::component::HasSelf<State>>(linker, |s| s)?;
        Ok(())
    })
}
