//! The errors of keel's library API ([`Host`](crate::Host)), typed so that
//! an embedder can tell them apart; inside the crate errors are `anyhow`.

use crate::spec::WorkloadState;
use crate::spec::{InvalidSpec, WorkloadId};
use crate::workload::{ComponentFailure, Stage};

/// Why a [`Host`](crate::Host) call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The spec can never run: the field at fault and why.
    #[error("invalid workload spec: {0}")]
    InvalidSpec(#[from] InvalidSpec),
    /// A workload with this id is starting, running or stopping.
    #[error("workload `{id}` already exists and is {state}")]
    AlreadyExists {
        /// The id asked for.
        id: WorkloadId,
        /// The state of the workload holding it.
        state: WorkloadState,
    },
    /// The workload is starting, running or stopping: it must be stopped
    /// before it is removed.
    #[error("workload `{id}` is {state}: stop it before removing it")]
    StillActive {
        /// The id asked for.
        id: WorkloadId,
        /// Its state.
        state: WorkloadState,
    },
    /// No workload has this id.
    #[error("no workload `{0}`")]
    NotFound(WorkloadId),
    /// Another active workload already serves this HTTP host.
    #[error("HTTP host `{host}` is already routed to workload `{owner}`")]
    HostTaken {
        /// The contested host name.
        host: String,
        /// The workload serving it.
        owner: WorkloadId,
    },
    /// A component or plugin named by an OCI reference could not be
    /// pulled: which reference, which registry, and why.
    #[error(transparent)]
    Pull(#[from] crate::oci::PullError),
    /// A component could not be read, checked or compiled (composed with
    /// its composed plugins, if any).
    #[error("{error:#}")]
    Compile {
        /// The component.
        component: String,
        /// What went wrong, with its causes.
        error: anyhow::Error,
    },
    /// The plugins could not serve a component: an interface is picked for
    /// a plugin that is not there or cannot serve it, a plugin cannot be
    /// used in its mode, or a shared plugin's instance could not start.
    #[error("{error:#}")]
    PluginResolution {
        /// The component.
        component: String,
        /// What went wrong, with its causes.
        error: anyhow::Error,
    },
    /// Starting failed otherwise (linking, a second HTTP component, …).
    /// The chain says which and why.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl Error {
    /// The typed error for a workload's failed start: [`Error::Compile`] or
    /// [`Error::PluginResolution`] when the failure says which step of a
    /// component's start it was, else [`Error::Failed`].
    pub(crate) fn from_start(error: anyhow::Error) -> Error {
        let failure = error
            .downcast_ref::<ComponentFailure>()
            .map(|f| (f.stage, f.component.clone()));
        match failure {
            Some((Stage::Compile, component)) => Error::Compile { component, error },
            Some((Stage::Plugins, component)) => Error::PluginResolution { component, error },
            _ => Error::Failed(error),
        }
    }
}

/// What the library API returns.
pub type Result<T, E = Error> = std::result::Result<T, E>;
