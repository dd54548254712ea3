//! The containers of every workload, in this instance's memory.

use crate::exports::wasi::blobstore::types::{Error, ObjectId};
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

/// Where a container lives: its owner (the workload) and its name.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Place {
    owner: String,
    pub name: String,
}

impl Place {
    /// Container `name` of the calling workload.
    pub fn of_caller(name: &str) -> Place {
        let caller = crate::keel::core::identity::caller();
        Place {
            owner: format!("{}/{}", caller.namespace, caller.name),
            name: name.to_string(),
        }
    }
}

thread_local! {
    static CONTAINERS: RefCell<HashMap<Place, ContainerData>> = RefCell::new(HashMap::new());
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
        Some(_) => Ok(()),
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
    with(&to, |c| {
        c.objects.insert(
            dest.object.clone(),
            Object {
                data,
                created: now(),
            },
        );
        Ok(())
    })?;
    if remove_source && (from != to || src.object != dest.object) {
        with(&from, |c| {
            c.objects.remove(&src.object);
            Ok(())
        })?;
    }
    Ok(())
}

/// Stores `data` as object `name` of container `place`.
pub fn put(place: &Place, name: &str, data: Vec<u8>) -> Result<(), Error> {
    with(place, |c| {
        c.objects.insert(
            name.to_string(),
            Object {
                data: Rc::new(data),
                created: now(),
            },
        );
        Ok(())
    })
}

fn missing(place: &Place) -> Error {
    format!("no container `{}`", place.name)
}
