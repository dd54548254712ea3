//! The containers of every workload, in this instance's memory, and what
//! each namespace holds against its quota (see the crate documentation).

use crate::exports::wasi::blobstore::types::{Error, ObjectId};
use keel_guest::quota::{self, Quota, Usage};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

/// A stored object.
pub struct Object {
    pub data: Rc<Vec<u8>>,
    pub created: u64,
}

/// A container's objects, by name.
pub struct ContainerData {
    pub created: u64,
    pub objects: BTreeMap<String, Object>,
}

impl ContainerData {
    /// The bytes and entries its objects count.
    fn counted(&self) -> (i64, i64) {
        let bytes = self
            .objects
            .iter()
            .map(|(name, object)| quota::len(name.len() + object.data.len()))
            .sum();
        (bytes, quota::len(self.objects.len()))
    }
}

/// Where a container lives: its owner (the workload), the namespace it
/// counts against, and its name.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Place {
    owner: String,
    namespace: String,
    pub name: String,
}

impl Place {
    /// Container `name` of the calling workload.
    pub fn of_caller(name: &str) -> Place {
        let caller = crate::keel::core::identity::caller();
        Place {
            owner: format!("{}/{}", caller.namespace, caller.name),
            namespace: caller.namespace,
            name: name.to_string(),
        }
    }

    /// Counts `bytes` and `entries` more (or fewer) against the place's
    /// namespace, within its quota.
    pub fn charge(&self, bytes: i64, entries: i64) -> Result<(), Error> {
        charge(&self.namespace, bytes, entries)
    }
}

/// Counts `bytes` and `entries` more (or fewer) against `namespace`,
/// within its quota.
pub fn charge(namespace: &str, bytes: i64, entries: i64) -> Result<(), Error> {
    let quota = QUOTA.with(|quota| *quota);
    USAGE.with(|all| {
        all.borrow_mut()
            .entry(namespace.to_string())
            .or_default()
            .apply(&quota, namespace, bytes, entries)
    })
}

/// Configuration baked in by keel (the plugin's manifest `config`).
static CONFIG: keel_guest::baked::Region<1024> = keel_guest::baked::Region::new();

thread_local! {
    static CONTAINERS: RefCell<HashMap<Place, ContainerData>> = RefCell::new(HashMap::new());
    /// What each namespace holds.
    static USAGE: RefCell<HashMap<String, Usage>> = RefCell::new(HashMap::new());
    /// Each namespace's quota, from the config.
    static QUOTA: Quota = Quota::from_config(&CONFIG.pairs(), "max_objects_per_namespace");
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    keel_guest::wasip2::clocks::wall_clock::now().seconds
}

/// Creates container `place`; an error if it exists.
pub fn create(place: &Place) -> Result<(), Error> {
    CONTAINERS.with(|all| {
        let mut all = all.borrow_mut();
        if all.contains_key(place) {
            return Err(format!("container `{}` already exists", place.name));
        }
        place.charge(quota::len(place.name.len()), 1)?;
        all.insert(
            place.clone(),
            ContainerData {
                created: now(),
                objects: BTreeMap::new(),
            },
        );
        Ok(())
    })
}

/// Deletes container `place` and its objects; an error if it is missing.
pub fn delete(place: &Place) -> Result<(), Error> {
    CONTAINERS.with(|all| match all.borrow_mut().remove(place) {
        Some(container) => {
            let (bytes, entries) = container.counted();
            place.charge(-bytes - quota::len(place.name.len()), -entries - 1)
        }
        None => Err(missing(place)),
    })
}

/// Whether container `place` exists.
pub fn exists(place: &Place) -> bool {
    CONTAINERS.with(|all| all.borrow().contains_key(place))
}

/// Runs `f` on container `place`; an error if it is missing.
pub fn with<R>(
    place: &Place,
    f: impl FnOnce(&mut ContainerData) -> Result<R, Error>,
) -> Result<R, Error> {
    CONTAINERS.with(|all| match all.borrow_mut().get_mut(place) {
        Some(container) => f(container),
        None => Err(missing(place)),
    })
}

/// Copies (or moves) object `src` to `dest`, both of the calling workload;
/// the destination container must exist.
pub fn copy(src: &ObjectId, dest: &ObjectId, remove_source: bool) -> Result<(), Error> {
    let from = Place::of_caller(&src.container);
    let to = Place::of_caller(&dest.container);
    let data = with(&from, |c| {
        c.objects
            .get(&src.object)
            .map(|o| o.data.clone())
            .ok_or_else(|| {
                format!(
                    "no object `{}` in container `{}`",
                    src.object, src.container
                )
            })
    })?;
    // A copy counts in full, though it shares the bytes: either may go
    // first.
    insert(&to, &dest.object, data)?;
    if remove_source && (from != to || src.object != dest.object) {
        remove(&from, std::slice::from_ref(&src.object))?;
    }
    Ok(())
}

/// Stores `data` as object `name` of container `place`.
pub fn put(place: &Place, name: &str, data: Vec<u8>) -> Result<(), Error> {
    insert(place, name, Rc::new(data))
}

/// Stores `data` as object `name` of container `place`, within the quota.
fn insert(place: &Place, name: &str, data: Rc<Vec<u8>>) -> Result<(), Error> {
    with(place, |c| {
        let (bytes, entries) = match c.objects.get(name) {
            Some(old) => (quota::len(data.len()) - quota::len(old.data.len()), 0),
            None => (quota::len(name.len() + data.len()), 1),
        };
        place.charge(bytes, entries)?;
        c.objects.insert(
            name.to_string(),
            Object {
                data,
                created: now(),
            },
        );
        Ok(())
    })
}

/// Removes objects `names` (those that exist) from container `place`.
pub fn remove(place: &Place, names: &[String]) -> Result<(), Error> {
    with(place, |c| {
        for name in names {
            if let Some(object) = c.objects.remove(name) {
                place.charge(-quota::len(name.len() + object.data.len()), -1)?;
            }
        }
        Ok(())
    })
}

/// Removes every object of container `place`.
pub fn clear(place: &Place) -> Result<(), Error> {
    with(place, |c| {
        let (bytes, entries) = c.counted();
        c.objects.clear();
        place.charge(-bytes, -entries)
    })
}

fn missing(place: &Place) -> Error {
    format!("no container `{}`", place.name)
}
