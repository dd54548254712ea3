//! The data identity of a wasmCloud workload: what its replicas have in
//! common, so that they share keel's per-workload buckets and containers.
//!
//! wasmCloud's runtime operator starts the replicas of a
//! `WorkloadReplicaSet` as workloads named `<set>-<suffix>`, the suffix
//! random (`randHash`: an FNV-32a hash of a UUID, in decimal, each digit
//! spelt by Kubernetes' `rand.SafeEncodeString` alphabet), and annotates
//! each with `runtime.wasmcloud.dev/workload-replica-set-generation` (the
//! set's template hash). Nothing else of the set reaches the host: the
//! template's own annotations and labels are not copied to the replicas.
//! So a workload carrying that annotation, whose name ends in such a
//! suffix, keeps its data under the set's name. A workload without the
//! annotation keeps it under its own name. A `WorkloadDeployment` makes a
//! new set (`<deployment>-<suffix>`) at every rollout; the host cannot tell
//! such a set from one created by hand, so it does not guess: a workload
//! whose data must outlive rollouts names it (`data-name`, see
//! [`super::interfaces`]).

use std::collections::BTreeMap;

/// The annotation the operator puts on every replica of a set.
pub(super) const REPLICA_SET_ANNOTATION: &str =
    "runtime.wasmcloud.dev/workload-replica-set-generation";

/// The alphabet of Kubernetes' `rand.SafeEncodeString` (no vowels, no
/// look-alike digits).
const SAFE_ALPHABET: &str = "bcdfghjklmnpqrstvwxz2456789";

/// The longest suffix: a `u32` in decimal.
const MAX_SUFFIX: usize = 10;

/// The set a replica named `name`, annotated with `annotations`, belongs
/// to; `None` when it is no replica of a set (no annotation, or a name that
/// does not end in the operator's suffix).
pub(super) fn replica_set_of<'a>(
    name: &'a str,
    annotations: &BTreeMap<String, String>,
) -> Option<&'a str> {
    if !annotations.contains_key(REPLICA_SET_ANNOTATION) {
        return None;
    }
    let (set, suffix) = name.rsplit_once('-')?;
    let random = !suffix.is_empty()
        && suffix.len() <= MAX_SUFFIX
        && suffix.chars().all(|c| SAFE_ALPHABET.contains(c));
    (random && !set.is_empty()).then_some(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotated() -> BTreeMap<String, String> {
        BTreeMap::from([(REPLICA_SET_ANNOTATION.to_string(), "5f7d9c".to_string())])
    }

    #[test]
    fn a_replica_keeps_its_data_under_its_set() {
        assert_eq!(
            replica_set_of("counter-x7bq2", &annotated()),
            Some("counter")
        );
        assert_eq!(
            replica_set_of("counter-b4xk9-2hd85wz4c", &annotated()),
            Some("counter-b4xk9")
        );
    }

    #[test]
    fn anything_else_keeps_its_own_name() {
        // No annotation: a workload created by hand.
        assert_eq!(replica_set_of("counter-x7bq2", &BTreeMap::new()), None);
        // Not the operator's suffix: vowels, an upper case letter, too long.
        for name in [
            "counter-api",
            "counter-X7BQ2",
            "counter-bcdfghjklmn",
            "counter",
            "-x7bq2",
            "counter-",
        ] {
            assert_eq!(replica_set_of(name, &annotated()), None, "{name}");
        }
    }
}
