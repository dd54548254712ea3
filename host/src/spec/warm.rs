//! Warm instances: whether a component's instances serve more than one
//! request, in the meaning wasmCloud gives `poolSize`, `maxInvocations`
//! and `maxConcurrency`.

/// How a component's instances are reused. Off by default ([`WarmSpec::default`],
/// `pool_size` 0): every invocation gets a fresh instance. Turned on, an
/// instance serves request after request and **keeps its guest state
/// between them** (globals, its heap, resources it holds), so a component
/// opts in only when that is what it wants.
///
/// ```
/// use keel::spec::WarmSpec;
/// let warm = WarmSpec::default().with_pool_size(4).with_max_invocations(1000);
/// assert!(warm.enabled());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WarmSpec {
    /// Instances kept idle between requests; 0 turns reuse off.
    pub pool_size: u32,
    /// Invocations one instance serves before it is discarded; `None`: no
    /// bound (until a failure, the workload's stop, or it is not needed).
    pub max_invocations: Option<u32>,
    /// Calls at a time into one instance. keel runs one call at a time in
    /// an instance (its Store is entered by one call at once), so only 1 is
    /// accepted.
    pub max_concurrency: u32,
}

impl Default for WarmSpec {
    fn default() -> WarmSpec {
        WarmSpec {
            pool_size: 0,
            max_invocations: None,
            max_concurrency: 1,
        }
    }
}

impl WarmSpec {
    /// Instances kept idle between requests; 0 turns reuse off.
    pub fn with_pool_size(mut self, pool_size: u32) -> WarmSpec {
        self.pool_size = pool_size;
        self
    }

    /// Invocations one instance serves before it is discarded.
    pub fn with_max_invocations(mut self, max: u32) -> WarmSpec {
        self.max_invocations = Some(max);
        self
    }

    /// Calls at a time into one instance (only 1 is accepted).
    pub fn with_max_concurrency(mut self, max: u32) -> WarmSpec {
        self.max_concurrency = max;
        self
    }

    /// Whether instances are reused at all.
    pub fn enabled(&self) -> bool {
        self.pool_size > 0
    }

    /// Refuses settings keel cannot honour: `max_invocations` 0 (no
    /// invocation at all), `max_concurrency` other than 1, or a pool larger
    /// than the instances the workload may run at once (`max_instances`).
    pub fn check(&self, max_instances: u32) -> Result<(), (&'static str, String)> {
        if self.max_invocations == Some(0) {
            return Err((
                "max_invocations",
                "`max_invocations` must be at least 1".into(),
            ));
        }
        if self.max_concurrency != 1 {
            return Err((
                "max_concurrency",
                format!(
                    "`max_concurrency` is {}, but keel enters an instance with one call at a \
                     time: only 1 is supported (raise `pool_size` and `limits.max_instances` \
                     for more calls at once)",
                    self.max_concurrency
                ),
            ));
        }
        if self.pool_size > max_instances {
            return Err((
                "pool_size",
                format!(
                    "`pool_size` ({}) is more than the workload's `max_instances` ({max_instances}): \
                     instances beyond it could never be in use",
                    self.pool_size
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_checked() {
        assert!(!WarmSpec::default().enabled());
        assert!(WarmSpec::default().check(1).is_ok());
        let on = WarmSpec {
            pool_size: 2,
            ..WarmSpec::default()
        };
        assert!(on.enabled());
        assert!(on.check(2).is_ok());
        assert_eq!(on.check(1).unwrap_err().0, "pool_size");
        let zero = WarmSpec {
            max_invocations: Some(0),
            ..on
        };
        assert_eq!(zero.check(2).unwrap_err().0, "max_invocations");
        let concurrent = WarmSpec {
            max_concurrency: 4,
            ..on
        };
        assert_eq!(concurrent.check(2).unwrap_err().0, "max_concurrency");
    }
}
