//! Where pools and swarms keep their state, and where the helper binaries are.
//!
//! ```text
//! RUN/runtime/                     warren-runtime state (shared with the warren CLI)
//! RUN/pools/NAME/                  pool.json, pool.sock, poold.log, init, sb/SEQ/
//! RUN/swarms/NAME/                 state.json, ctl.sock, swarmd.log, hosts, agents/AGENT/
//! DATA/swarms/NAME/logs/AGENT.log  agent output (`TIME STREAM TEXT` lines)
//! DATA/swarms/NAME/workspaces/AGENT/  each agent's private workspace (kept after down)
//! ```

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The two roots of the warren CLI (`--root`, `--data-root`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// Runtime state (tmpfs), default `/run/warren`.
    pub run: PathBuf,
    /// Persistent data, default `/var/lib/warren`.
    pub data: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Self {
            run: PathBuf::from("/run/warren"),
            data: PathBuf::from("/var/lib/warren"),
        }
    }
}

impl Roots {
    pub fn new(run: impl Into<PathBuf>, data: impl Into<PathBuf>) -> Self {
        Self {
            run: run.into(),
            data: data.into(),
        }
    }

    /// The runtime (state under `RUN/runtime`, as the CLI's sandboxes).
    pub fn runtime(&self) -> warren_runtime::Runtime {
        warren_runtime::Runtime::new(self.runtime_root())
    }

    pub fn runtime_root(&self) -> PathBuf {
        self.run.join("runtime")
    }

    pub fn pools_dir(&self) -> PathBuf {
        self.run.join("pools")
    }

    pub fn pool_dir(&self, name: &str) -> PathBuf {
        self.pools_dir().join(name)
    }

    pub fn swarms_dir(&self) -> PathBuf {
        self.run.join("swarms")
    }

    pub fn swarm_dir(&self, name: &str) -> PathBuf {
        self.swarms_dir().join(name)
    }

    pub fn swarm_data(&self, name: &str) -> PathBuf {
        self.data.join("swarms").join(name)
    }
}

/// Longest pool, swarm, role or agent name: it ends up in container ids, network
/// namespace names and nftables comments.
pub const MAX_NAME: usize = 40;

/// Checks a pool, swarm or role name: lowercase letters, digits and `-`, starting with a
/// letter, at most [`MAX_NAME`] characters.
pub fn validate_name(what: &str, name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid {what} name {name:?}: use lowercase letters, digits and '-', starting with a letter, at most {MAX_NAME} characters"
        ))
    }
}

/// The helper binaries the CLI starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Helpers {
    /// `warren-poold`.
    pub poold: PathBuf,
    /// `warren-swarmd`.
    pub swarmd: PathBuf,
    /// `warren-pool-init` (static build preferred).
    pub pool_init: PathBuf,
}

/// Directories searched for helpers, given the path of the running `warren` binary: its
/// directory as invoked (`target/bin`), the directory of the real file
/// (`target/release`), the static build's directory of a cargo tree
/// (`target/x86_64-unknown-linux-gnu/release`), then `/usr/local/bin` and
/// `/usr/local/libexec/warren`.
pub fn helper_dirs(exe: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut push = |d: PathBuf| {
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    };
    if let Some(d) = exe.parent() {
        push(d.to_owned());
        if let Some(t) = d.parent() {
            push(t.join("x86_64-unknown-linux-gnu/release"));
            push(t.join("bin"));
        }
    }
    if let Ok(real) = std::fs::canonicalize(exe)
        && let Some(d) = real.parent()
    {
        push(d.to_owned());
        if let Some(t) = d.parent() {
            push(t.join("x86_64-unknown-linux-gnu/release"));
        }
    }
    push(PathBuf::from("/usr/local/bin"));
    push(PathBuf::from("/usr/local/libexec/warren"));
    dirs
}

/// Whether an ELF file is statically linked (has no `PT_INTERP` program header).
pub fn is_static_elf(path: &Path) -> bool {
    let Ok(data) = std::fs::read(path) else {
        return false;
    };
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&data[o..o + 8]);
        u64::from_le_bytes(b) as usize
    };
    let (phoff, phentsize, phnum) = (u64_at(32), u16_at(54), u16_at(56));
    for i in 0..phnum {
        let Some(o) = i
            .checked_mul(phentsize)
            .and_then(|x| x.checked_add(phoff))
            .filter(|o| o.checked_add(4).is_some_and(|end| end <= data.len()))
        else {
            return false;
        };
        if u32::from_le_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]]) == 3 {
            return false; // PT_INTERP
        }
    }
    true
}

impl Helpers {
    /// Finds the helpers in [`helper_dirs`]; for the pool init a static build wins over
    /// a dynamic one found earlier.
    pub fn locate(exe: &Path) -> Result<Self> {
        let dirs = helper_dirs(exe);
        let find = |name: &str| -> Result<PathBuf> {
            dirs.iter()
                .map(|d| d.join(name))
                .find(|p| p.is_file())
                .ok_or_else(|| Error::Helper {
                    what: name.to_owned(),
                    msg: format!(
                        "not found beside {} nor in /usr/local/bin (build it with ./scripts/build.sh)",
                        exe.display()
                    ),
                })
        };
        let inits: Vec<PathBuf> = dirs
            .iter()
            .map(|d| d.join("warren-pool-init"))
            .filter(|p| p.is_file())
            .collect();
        let pool_init = inits
            .iter()
            .find(|p| is_static_elf(p))
            .or(inits.first())
            .cloned()
            .ok_or_else(|| Error::Helper {
                what: "warren-pool-init".into(),
                msg: format!(
                    "not found beside {} nor in /usr/local/bin (build it with ./scripts/build.sh)",
                    exe.display()
                ),
            })?;
        Ok(Self {
            poold: find("warren-poold")?,
            swarmd: find("warren-swarmd")?,
            pool_init,
        })
    }
}

/// Starts a daemon of ours (`warren-poold`, `warren-swarmd`) with `--dir DIR --root RUN
/// --data-root DATA`, stdout and stderr appended to a fresh `log`, in a session of its
/// own so that it outlives the terminal and the CLI. `what` names it in the error.
pub fn spawn_daemon(
    bin: &Path,
    dir: &Path,
    roots: &Roots,
    log: &Path,
    what: &str,
) -> crate::error::Result<std::process::Child> {
    use crate::error::Error;
    use std::os::unix::process::CommandExt;
    let out = std::fs::File::create(log).map_err(|e| Error::io("create", log, e))?;
    let err = out.try_clone().map_err(|e| Error::io("open", log, e))?;
    let mut c = std::process::Command::new(bin);
    c.arg("--dir")
        .arg(dir)
        .arg("--root")
        .arg(&roots.run)
        .arg("--data-root")
        .arg(&roots.data)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err);
    // SAFETY: setsid(2) is async-signal-safe: the daemon leaves our session and outlives
    // the terminal and this process.
    unsafe {
        c.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    c.spawn().map_err(|e| Error::Helper {
        what: bin.display().to_string(),
        msg: format!("cannot start the {what}: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["py", "team-1", "a"] {
            assert!(validate_name("pool", ok).is_ok(), "{ok}");
        }
        for bad in ["", "Py", "1a", "a_b", "a-", &"x".repeat(41), "a/b", "a.b"] {
            let e = validate_name("pool", bad).expect_err(bad);
            assert!(e.contains("pool name"), "{e}");
        }
    }

    #[test]
    fn helper_dirs_cover_a_cargo_tree() {
        let d = helper_dirs(Path::new("/src/target/bin/warren"));
        assert!(d.contains(&PathBuf::from("/src/target/bin")));
        assert!(d.contains(&PathBuf::from(
            "/src/target/x86_64-unknown-linux-gnu/release"
        )));
    }

    #[test]
    fn static_elf_detection() {
        // The test binary itself is dynamically linked (cargo's default).
        let me = std::env::current_exe().expect("exe");
        assert!(!is_static_elf(&me));
        assert!(!is_static_elf(Path::new("/nonexistent")));
    }
}
