//! The pool's public API: JSON lines over the unix socket `RUN/pools/NAME/pool.sock`.
//!
//! A client sends one request per line and reads response lines until the one that ends
//! the request (`exit`, `status`, `ok` or `error`); a connection may carry any number of
//! requests, one after the other. See README.md ("The pool socket API").
//!
//! ```text
//! → {"op":"exec","argv":["python3","-c","print(6*7)"],"timeout_ms":5000}
//! ← {"type":"exit","exit_code":0,"stdout":"42\n","stderr":"",...}
//! → {"op":"exec","argv":["sh","-c","echo a; echo b >&2"],"stream":true}
//! ← {"type":"stdout","data":"a\n"}
//! ← {"type":"stderr","data":"b\n"}
//! ← {"type":"exit","exit_code":0,...}
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// API version, reported by `status`.
pub const API_VERSION: u32 = 1;

/// Longest request line accepted.
pub const MAX_REQUEST: usize = 16 << 20;

/// How byte strings (stdin, stdout, stderr) travel in JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// UTF-8 text; invalid bytes in output become U+FFFD.
    #[default]
    Utf8,
    /// Standard base64: exact bytes.
    Base64,
}

/// A request line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Run a command in a free sandbox.
    Exec(ExecRequest),
    /// The pool's size, free and busy sandboxes, counters.
    Status,
    /// Stop the pool: its daemon destroys every sandbox and exits.
    Shutdown,
}

/// What to run. Only `argv` is required.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    pub argv: Vec<String>,
    /// Added to (and overriding) the pool's environment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Working directory (default: the pool's workdir).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Written to the command's stdin (in `encoding`); without it stdin is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    /// Time limit; at most the pool's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Memory limit in bytes; at most the pool's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    /// Process limit; at most the pool's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<i64>,
    /// stdout+stderr limit in bytes; at most the pool's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_limit: Option<u64>,
    /// Send `stdout`/`stderr` lines as output arrives (default: all of it in `exit`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    #[serde(default, skip_serializing_if = "is_utf8")]
    pub encoding: Encoding,
    /// How long to wait for a free sandbox (default 60 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquire_timeout_ms: Option<u64>,
}

fn is_utf8(e: &Encoding) -> bool {
    *e == Encoding::Utf8
}

/// How an exec ended (the `exit` line).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecResult {
    /// The exit status; 128+N when signal N ended it; 127 when the command was not found,
    /// 126 when it could not be executed.
    pub exit_code: i32,
    /// The signal that ended it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// The time limit killed it.
    #[serde(default)]
    pub timed_out: bool,
    /// The memory limit's OOM killer fired during the exec.
    #[serde(default)]
    pub oom_killed: bool,
    /// A fork failed at the process limit during the exec.
    #[serde(default)]
    pub pids_limit_hit: bool,
    /// Output past the limit was dropped and the command killed.
    #[serde(default)]
    pub output_truncated: bool,
    /// Set when the command could not be started (with exit_code 126 or 127).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// All of stdout (when not streaming), in the request's encoding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// From the spawn to the exit, inside the sandbox.
    #[serde(default)]
    pub duration_ms: f64,
    /// Peak resident memory of the command, KiB.
    #[serde(default)]
    pub max_rss_kb: u64,
    /// The sandbox that ran it.
    #[serde(default)]
    pub sandbox: String,
}

/// The pool's state (the `status` line).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolStatus {
    pub api_version: u32,
    pub name: String,
    pub profile: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    pub size: usize,
    /// Free sandboxes.
    pub ready: usize,
    /// Running a command or being reset.
    pub busy: usize,
    /// Being created.
    pub starting: usize,
    pub execs: u64,
    /// Resets done, and their mean time (µs).
    #[serde(default)]
    pub resets: u64,
    #[serde(default)]
    pub reset_avg_us: u64,
    /// Sandboxes destroyed and replaced (a failed reset, a dead init, a watchdog kill).
    pub replaced: u64,
    pub daemon_pid: u32,
    pub created: u64,
    /// The last error creating a sandbox, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub limits: super::config::ExecLimits,
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed or asks for something invalid.
    BadRequest,
    /// No sandbox became free within the acquire timeout.
    Busy,
    /// The pool is shutting down.
    ShuttingDown,
    /// The daemon failed.
    Internal,
}

/// A response line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    Stdout { data: String },
    Stderr { data: String },
    Exit(ExecResult),
    Status(PoolStatus),
    Ok,
    Error { code: ErrorCode, message: String },
}

/// Encodes bytes for a response.
pub fn encode(enc: Encoding, b: &[u8]) -> String {
    match enc {
        Encoding::Utf8 => String::from_utf8_lossy(b).into_owned(),
        Encoding::Base64 => crate::b64::encode(b),
    }
}

/// Decodes a request's or response's byte string.
pub fn decode(enc: Encoding, s: &str) -> Result<Vec<u8>, String> {
    match enc {
        Encoding::Utf8 => Ok(s.as_bytes().to_vec()),
        Encoding::Base64 => crate::b64::decode(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_strictly() {
        let r: Request =
            serde_json::from_str(r#"{"op":"exec","argv":["true"],"timeout_ms":5}"#).expect("exec");
        match r {
            Request::Exec(e) => {
                assert_eq!(e.argv, ["true"]);
                assert_eq!(e.timeout_ms, Some(5));
            }
            other => panic!("{other:?}"),
        }
        let r: Request = serde_json::from_str(r#"{"op":"status"}"#).expect("status");
        assert_eq!(r, Request::Status);
        let e = serde_json::from_str::<Request>(r#"{"op":"exec","argv":["x"],"bogus":1}"#)
            .expect_err("unknown field");
        assert!(e.to_string().contains("bogus"), "{e}");
        assert!(serde_json::from_str::<Request>(r#"{"op":"launch"}"#).is_err());
        let line = serde_json::to_string(&Response::Exit(ExecResult {
            exit_code: 3,
            ..Default::default()
        }))
        .expect("json");
        assert!(
            line.starts_with(r#"{"type":"exit","exit_code":3"#),
            "{line}"
        );
    }
}
