//! The system tools the swarm network is built with: iproute2's `ip` and nftables' `nft`
//! (Debian packages `iproute2` and `nftables`), run with their input on stdin so that a
//! whole step is one process.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// Paths of the tools (tests may point them elsewhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    pub ip: PathBuf,
    pub nft: PathBuf,
}

impl Default for Tools {
    fn default() -> Self {
        let find = |name: &str| {
            ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
                .iter()
                .map(|d| PathBuf::from(d).join(name))
                .find(|p| p.is_file())
                .unwrap_or_else(|| PathBuf::from(name))
        };
        Self {
            ip: find("ip"),
            nft: find("nft"),
        }
    }
}

/// Runs `prog args...` with `input` on stdin; a non-zero exit becomes an error carrying
/// the tool's stderr (and `what`, the step).
pub fn run(prog: &PathBuf, args: &[&str], input: Option<&str>, what: &str) -> Result<String> {
    let label = format!(
        "{what} ({} {})",
        prog.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        args.join(" ")
    );
    let mut child = Command::new(prog)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Command {
            cmd: label.clone(),
            msg: format!("cannot run {}: {e}", prog.display()),
        })?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        // A tool that exits early closes its stdin; its status then tells what happened.
        let _ = stdin.write_all(text.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| Error::Command {
        cmd: label.clone(),
        msg: e.to_string(),
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        return Err(Error::Command {
            cmd: label,
            msg: if err.is_empty() {
                format!("exited with {}", out.status)
            } else {
                err
            },
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
