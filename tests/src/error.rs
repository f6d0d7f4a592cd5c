//! The harness's error type: every variant names the command, path or container involved,
//! so a failing test says what it was doing without a backtrace.

use std::path::PathBuf;
use std::time::Duration;

/// Errors returned by the harness (not by the runtime under test: a runtime that fails
/// is an [`crate::Output`] with a non-zero status, which tests inspect).
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// No runtime binary was found.
    #[error(
        "no warren-runtime binary (tried {tried}); build it with \
         `cargo build --release -p warren-runtime` or set WARREN_RUNTIME=/path/to/binary"
    )]
    NoRuntime { tried: String },

    /// An I/O operation on a named path failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A command could not be started or waited for.
    #[error("{op} `{cmdline}`: {source}")]
    Spawn {
        op: &'static str,
        cmdline: String,
        #[source]
        source: std::io::Error,
    },

    /// A command ran past its deadline and was killed (a hang is a failure).
    #[error(
        "`{cmdline}` hung: killed after {after:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    )]
    Timeout {
        cmdline: String,
        after: Duration,
        stdout: String,
        stderr: String,
    },

    /// A command that had to succeed failed.
    #[error("{0}")]
    Failed(Box<crate::Output>),

    /// Output that had to be JSON was not.
    #[error("parse {what} as JSON: {source}\n{text}")]
    Json {
        what: String,
        text: String,
        #[source]
        source: serde_json::Error,
    },

    /// Something the harness waited for did not happen in time.
    #[error("timed out after {after:?} waiting for {what}")]
    WaitTimeout { what: String, after: Duration },

    /// Leftovers found by a leak check.
    #[error("leaks found:\n{0}")]
    Leaks(crate::leaks::LeakReport),

    /// Anything else, with a message naming what went wrong.
    #[error("{0}")]
    Other(String),
}

impl HarnessError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Result alias for the harness.
pub type Result<T, E = HarnessError> = std::result::Result<T, E>;
