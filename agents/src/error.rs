//! The crate's error, rolled up from the modules' own.

use std::path::PathBuf;

/// Errors of warren-agents. Messages read after "failed to …" and name their path, file
/// line, pool or swarm.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// swarm.toml (or a pool option) is invalid.
    #[error(transparent)]
    Config(#[from] crate::swarm::config::ConfigError),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Runtime(#[from] warren_runtime::RuntimeError),
    #[error("profile {name}: {msg}")]
    Profile { name: String, msg: String },
    #[error("image {name}: {msg}")]
    Image { name: String, msg: String },
    #[error("build spec: {0}")]
    Spec(String),
    /// A command we run (`ip`, `nft`) failed.
    #[error("{cmd}: {msg}")]
    Command { cmd: String, msg: String },
    #[error("namespace {what}: {source}")]
    Namespace {
        what: String,
        #[source]
        source: nix::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("GPUs: {0}")]
    Gpu(String),
    #[error("pool {name}: {msg}")]
    Pool { name: String, msg: String },
    #[error("pool {0} not found (create it with `warren pool create --name {0} ...`)")]
    PoolNotFound(String),
    #[error("swarm {name}: {msg}")]
    Swarm { name: String, msg: String },
    #[error("swarm {0} not found (no swarm of that name is up)")]
    SwarmNotFound(String),
    #[error(transparent)]
    Client(#[from] crate::pool::client::ClientError),
    #[error("{what}: {msg}")]
    Helper { what: String, msg: String },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
