//! Errors of profile loading and validation. Each names the file and the line.

use std::path::PathBuf;

/// Why a profile could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file could not be read.
    #[error("read profile {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not fit the format (e.g. an unknown key).
    #[error("parse profile {file}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        file: String,
        /// 1-based line (0 when the parser gave no position).
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A value is wrong.
    #[error("validate profile {file}:{line}: {rule}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// The rule or setting, e.g. `seccomp.rule[2]` or `landlock.fs[0]`.
        rule: String,
        /// What is wrong.
        message: String,
    },
    /// `extends` names no built-in profile and no file, or the chain loops or is too long.
    #[error("resolve `extends` at {file}:{line}: {message}")]
    Extends {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// No built-in profile has this name.
    #[error("find built-in profile `{0}`: known are agent, experiment, trusted")]
    UnknownBuiltin(String),
}
