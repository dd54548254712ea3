//! `wasi:keyvalue` implemented natively in the host, over a map in the
//! Store: the anchor for the keyvalue figures.

use keel_tests::guest;
use keel_tests::stock::{StockRunner, StockState};
use std::collections::{BTreeMap, HashMap};
use wasmtime::component::Resource;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/wasi-keyvalue-0.2.0-draft",
        world: "wasi:keyvalue/imports",
        with: { "wasi:keyvalue/store.bucket": super::NativeBucket },
    });
}
use bindings::wasi::keyvalue::store::{Error, KeyResponse};
use bindings::wasi::keyvalue::{atomics, batch, store};

/// A bucket handle of the native implementation.
pub struct NativeBucket {
    name: String,
}

/// The native implementation's buckets.
#[derive(Default)]
pub struct Buckets(HashMap<String, BTreeMap<String, Vec<u8>>>);

type State = StockState<Buckets>;

/// The entries of the bucket `bucket` names.
fn entries<'a>(
    state: &'a mut State,
    bucket: &Resource<NativeBucket>,
) -> Result<&'a mut BTreeMap<String, Vec<u8>>, Error> {
    let name = state
        .table()
        .get(bucket)
        .map_err(|e| Error::Other(e.to_string()))?
        .name
        .clone();
    Ok(state.extra.0.entry(name).or_default())
}

impl store::Host for State {
    fn open(&mut self, identifier: String) -> Result<Resource<NativeBucket>, Error> {
        self.table()
            .push(NativeBucket { name: identifier })
            .map_err(|e| Error::Other(e.to_string()))
    }
}

impl store::HostBucket for State {
    fn get(
        &mut self,
        bucket: Resource<NativeBucket>,
        key: String,
    ) -> Result<Option<Vec<u8>>, Error> {
        Ok(entries(self, &bucket)?.get(&key).cloned())
    }

    fn set(
        &mut self,
        bucket: Resource<NativeBucket>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), Error> {
        entries(self, &bucket)?.insert(key, value);
        Ok(())
    }

    fn delete(&mut self, bucket: Resource<NativeBucket>, key: String) -> Result<(), Error> {
        entries(self, &bucket)?.remove(&key);
        Ok(())
    }

    fn exists(&mut self, bucket: Resource<NativeBucket>, key: String) -> Result<bool, Error> {
        Ok(entries(self, &bucket)?.contains_key(&key))
    }

    fn list_keys(
        &mut self,
        bucket: Resource<NativeBucket>,
        _cursor: Option<u64>,
    ) -> Result<KeyResponse, Error> {
        Ok(KeyResponse {
            keys: entries(self, &bucket)?.keys().cloned().collect(),
            cursor: None,
        })
    }

    fn drop(&mut self, bucket: Resource<NativeBucket>) -> wasmtime::Result<()> {
        self.table().delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for State {
    fn increment(
        &mut self,
        bucket: Resource<NativeBucket>,
        key: String,
        delta: u64,
    ) -> Result<u64, Error> {
        let entry = entries(self, &bucket)?
            .entry(key)
            .or_insert_with(|| b"0".to_vec());
        let value = String::from_utf8_lossy(entry).parse::<u64>().unwrap_or(0) + delta;
        *entry = value.to_string().into_bytes();
        Ok(value)
    }
}

impl batch::Host for State {
    fn get_many(
        &mut self,
        bucket: Resource<NativeBucket>,
        keys: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, Error> {
        let entries = entries(self, &bucket)?;
        Ok(keys
            .into_iter()
            .map(|k| entries.get(&k).cloned().map(|v| (k, v)))
            .collect())
    }

    fn set_many(
        &mut self,
        bucket: Resource<NativeBucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<(), Error> {
        entries(self, &bucket)?.extend(key_values);
        Ok(())
    }

    fn delete_many(
        &mut self,
        bucket: Resource<NativeBucket>,
        keys: Vec<String>,
    ) -> Result<(), Error> {
        let entries = entries(self, &bucket)?;
        for key in keys {
            entries.remove(&key);
        }
        Ok(())
    }
}

/// `keyvalue-user` on plain Wasmtime with `wasi:keyvalue` implemented by
/// native host functions.
pub fn runner() -> anyhow::Result<StockRunner<Buckets>> {
    StockRunner::new(&guest("keyvalue_user"), |linker| {
        type Data = wasmtime::component::HasSelf<State>;
        store::add_to_linker::<State, Data>(linker, |s| s)?;
        atomics::add_to_linker::<State, Data>(linker, |s| s)?;
        batch::add_to_linker::<State, Data>(linker, |s| s)?;
        Ok(())
    })
}
