//! The Rust client of a pool's socket API.
//!
//! ```no_run
//! use warren_agents::pool::{Client, ExecRequest};
//! let mut c = Client::connect(&warren_agents::Roots::default(), "py")?;
//! let out = c.exec(&ExecRequest {
//!     argv: vec!["python3".into(), "-c".into(), "print(6*7)".into()],
//!     ..Default::default()
//! })?;
//! assert_eq!(out.stdout, b"42\n");
//! assert_eq!(out.result.exit_code, 0);
//! # Ok::<(), warren_agents::pool::ClientError>(())
//! ```

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use super::api::{
    self, Encoding, ErrorCode, ExecRequest, ExecResult, PoolStatus, Request, Response,
};
use crate::paths::Roots;

/// Errors of the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("pool {name} not found (no socket {}; create it with `warren pool create --name {name} ...`)", path.display())]
    NotFound { name: String, path: PathBuf },
    #[error("connect to pool socket {}: {source}", path.display())]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("pool connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("pool refused the request ({code:?}): {message}")]
    Remote { code: ErrorCode, message: String },
    #[error("pool sent an unexpected response: {0}")]
    Protocol(String),
}

type Result<T> = std::result::Result<T, ClientError>;

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// A finished exec with its output.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    pub result: ExecResult,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// A connection to one pool. Requests on one connection run one after the other; open
/// several clients to run commands in parallel.
#[derive(Debug)]
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

/// The socket of pool `name`.
pub fn socket_path(roots: &Roots, name: &str) -> PathBuf {
    roots.pool_dir(name).join("pool.sock")
}

impl Client {
    /// Connects to pool `name`.
    pub fn connect(roots: &Roots, name: &str) -> Result<Self> {
        let path = socket_path(roots, name);
        if crate::paths::validate_name("pool", name).is_err() || !path.exists() {
            return Err(ClientError::NotFound {
                name: name.to_owned(),
                path,
            });
        }
        Self::connect_socket(&path).map_err(|e| match e {
            ClientError::Connect { path, source }
                if source.kind() == std::io::ErrorKind::ConnectionRefused =>
            {
                ClientError::NotFound {
                    name: name.to_owned(),
                    path,
                }
            }
            other => other,
        })
    }

    /// Connects to a pool socket by path.
    pub fn connect_socket(path: &Path) -> Result<Self> {
        let s = UnixStream::connect(path).map_err(|source| ClientError::Connect {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
        })
    }

    fn send(&mut self, r: &Request) -> Result<()> {
        let mut line = serde_json::to_vec(r).map_err(|e| ClientError::Protocol(e.to_string()))?;
        line.push(b'\n');
        self.writer.write_all(&line)?;
        Ok(())
    }

    fn recv(&mut self) -> Result<Response> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(ClientError::Protocol(
                "the pool closed the connection".into(),
            ));
        }
        let r: Response = serde_json::from_str(&line)
            .map_err(|e| ClientError::Protocol(format!("{e}: {}", line.trim_end())))?;
        if let Response::Error { code, message } = r {
            return Err(ClientError::Remote { code, message });
        }
        Ok(r)
    }

    /// Runs a command and collects its output (exact bytes).
    pub fn exec(&mut self, req: &ExecRequest) -> Result<Output> {
        let mut out = Output::default();
        let result = self.exec_streaming(req, |s, b| match s {
            OutputStream::Stdout => out.stdout.extend_from_slice(b),
            OutputStream::Stderr => out.stderr.extend_from_slice(b),
        })?;
        out.result = result;
        Ok(out)
    }

    /// Runs a command, handing output to `on_output` as it arrives.
    pub fn exec_streaming(
        &mut self,
        req: &ExecRequest,
        mut on_output: impl FnMut(OutputStream, &[u8]),
    ) -> Result<ExecResult> {
        let mut req = req.clone();
        // Exact bytes both ways; re-encode a caller's UTF-8 stdin.
        if let Some(s) = &req.stdin
            && req.encoding == Encoding::Utf8
        {
            req.stdin = Some(crate::b64::encode(s.as_bytes()));
        }
        req.encoding = Encoding::Base64;
        req.stream = true;
        self.send(&Request::Exec(req))?;
        loop {
            match self.recv()? {
                Response::Stdout { data } => on_output(OutputStream::Stdout, &dec(&data)?),
                Response::Stderr { data } => on_output(OutputStream::Stderr, &dec(&data)?),
                Response::Exit(r) => return Ok(r),
                other => return Err(ClientError::Protocol(format!("{other:?} during exec"))),
            }
        }
    }

    /// The pool's state.
    pub fn status(&mut self) -> Result<PoolStatus> {
        self.send(&Request::Status)?;
        match self.recv()? {
            Response::Status(s) => Ok(s),
            other => Err(ClientError::Protocol(format!("{other:?} for status"))),
        }
    }

    /// Stops the pool; returns once its daemon has destroyed the sandboxes.
    pub fn shutdown(&mut self) -> Result<()> {
        self.send(&Request::Shutdown)?;
        match self.recv()? {
            Response::Ok => Ok(()),
            other => Err(ClientError::Protocol(format!("{other:?} for shutdown"))),
        }
    }
}

fn dec(s: &str) -> Result<Vec<u8>> {
    api::decode(Encoding::Base64, s).map_err(ClientError::Protocol)
}
