//! Errors of `warren bench`: bad configuration (each names the flag), and failures to set up
//! or to write the report. A runtime that fails a workload is not an error: it is reported
//! as failed in the results.

use std::path::PathBuf;

/// Why a benchmark run could not be done or written.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Containers need root.
    #[error("run warren bench as root: creating containers needs it")]
    NotRoot,
    /// `--quick` and `--full` were both given.
    #[error("--quick and --full exclude each other")]
    QuickAndFull,
    /// The warren-runtime binary is unusable.
    #[error("--warren {path}: {reason}")]
    WarrenRuntime {
        /// The path as given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An entry of `--vs` is malformed.
    #[error("--vs: {0}")]
    Vs(String),
    /// An entry of `--suites` names no suite.
    #[error("--suites: unknown suite {name:?} (known: {known})")]
    UnknownSuite {
        /// The name as given.
        name: String,
        /// The suite names.
        known: String,
    },
    /// The output directory could not be created or written.
    #[error("write {path}: {source}")]
    Output {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A plot could not be drawn.
    #[error("draw {path}: {msg}")]
    Plot {
        /// The PNG file.
        path: PathBuf,
        /// What plotters said.
        msg: String,
    },
    /// A results file given to re-render could not be read or does not validate.
    #[error("read results {path}: {msg}")]
    Render {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// The results could not be serialized.
    #[error("serialize results: {0}")]
    Serialize(#[from] serde_json::Error),
    /// Setting up the benchmark environment failed (temp dirs, bundles, mount namespace).
    #[error("set up the benchmark: {0:#}")]
    Setup(anyhow::Error),
}
