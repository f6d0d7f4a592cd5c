//! The runtime's error type. Every variant reads as a lowercase fragment that completes
//! "failed to …" or states what is wrong, and names the path, field or id involved.

use std::path::PathBuf;

use crate::cgroups::CgroupError;

/// Errors returned by the runtime library.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The container id is unusable as a directory name or is otherwise malformed.
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },

    /// The bundle directory is missing or unreadable.
    #[error("bundle {path}: {source}")]
    Bundle {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// `config.json` is not valid JSON or does not match the OCI runtime spec.
    #[error("invalid {path}: field `{field}`: {msg}")]
    ConfigParse {
        path: PathBuf,
        field: String,
        msg: String,
    },

    /// `config.json` parses but asks for something invalid or unsupported.
    #[error("invalid config: {field}: {msg}")]
    ConfigInvalid { field: String, msg: String },

    /// A container with this id already exists under the state root.
    #[error("container with id {0:?} already exists")]
    Exists(String),

    /// No container with this id exists under the state root.
    #[error("container {0:?} does not exist")]
    NotFound(String),

    /// The operation is not allowed in the container's current status.
    #[error("{msg}")]
    WrongStatus { msg: String },

    /// The signal given to `kill` is not a known signal name or number.
    #[error("unknown signal {0:?}")]
    UnknownSignal(String),

    /// A command-line value (duration, size, format) is malformed.
    #[error("invalid {what} {value:?}: {msg}")]
    InvalidArgument {
        what: &'static str,
        value: String,
        msg: String,
    },

    /// An I/O operation on a named path failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A system call failed.
    #[error("{op}: {source}")]
    Sys {
        op: &'static str,
        #[source]
        source: nix::Error,
    },

    /// A cgroup operation failed.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),

    /// The container's init process reported an error before running the workload.
    #[error("container init: {0}")]
    Init(String),

    /// A hook failed.
    #[error("{kind} hook {path}: {msg}")]
    Hook {
        kind: &'static str,
        path: String,
        msg: String,
    },

    /// The state file is corrupt or from an incompatible version.
    #[error("state of container {id:?} in {path}: {msg}")]
    State {
        id: String,
        path: PathBuf,
        msg: String,
    },

    /// A device request (CDI name, NVIDIA_VISIBLE_DEVICES) cannot be satisfied.
    #[error("devices: {0}")]
    Device(String),

    /// Something the runtime does not support yet; says what instead of ignoring it.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl RuntimeError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn sys(op: &'static str, source: nix::Error) -> Self {
        Self::Sys { op, source }
    }

    pub(crate) fn status(msg: impl Into<String>) -> Self {
        Self::WrongStatus { msg: msg.into() }
    }
}

/// Result alias for the runtime library.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// Formats an error and all of its sources as `outer: inner: innermost`, skipping sources
/// whose text is already contained in the message (thiserror's `transparent` and `{0}`).
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !s.is_empty() && !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}
