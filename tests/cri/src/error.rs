//! The harness's errors.

use std::path::PathBuf;

/// What went wrong in the harness or in a CRI call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory operation.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A command we ran failed.
    #[error("run {cmd}: {msg}")]
    Command { cmd: String, msg: String },
    /// A CRI call returned an error status.
    #[error("CRI {call}: {status}")]
    Rpc {
        call: &'static str,
        status: Box<tonic::Status>,
    },
    /// Anything else (setup, timeouts, unexpected answers).
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// The gRPC message of a failed CRI call (what kubelet would show in an event).
    pub fn rpc_message(&self) -> Option<&str> {
        match self {
            Error::Rpc { status, .. } => Some(status.message()),
            _ => None,
        }
    }
}

/// The harness's result.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { op, path, source }
}
