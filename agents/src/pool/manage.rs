//! `warren pool create|exec|ls|rm`: start a pool's daemon and wait for its sandboxes,
//! run one command, list pools, stop one (or clean up after a daemon that died).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::api::{ExecRequest, ExecResult, PoolStatus};
use super::client::{Client, ClientError, OutputStream, socket_path};
use super::config::{PoolConfig, PoolOptions};
use crate::error::{Error, Result};
use crate::paths::{Helpers, Roots, is_static_elf};

fn pool_err(name: &str, msg: impl Into<String>) -> Error {
    Error::Pool {
        name: name.to_owned(),
        msg: msg.into(),
    }
}

/// Creates pool `o.name` and waits (up to `wait`) until all its sandboxes are ready.
pub fn create(
    roots: &Roots,
    helpers: &Helpers,
    o: &PoolOptions,
    wait: Duration,
) -> Result<PoolStatus> {
    let cfg = o.validate()?;
    let name = cfg.name.clone();
    if let Some(img) = &cfg.image {
        if !crate::spec::image_exists(&roots.data, img) {
            return Err(Error::Image {
                name: img.clone(),
                msg: format!("not in the image store {}", roots.data.display()),
            });
        }
        if !is_static_elf(&helpers.pool_init) {
            return Err(pool_err(
                &name,
                format!(
                    "{} is dynamically linked and would need the image's C library; build the static init with ./scripts/build.sh",
                    helpers.pool_init.display()
                ),
            ));
        }
    }
    let dir = roots.pool_dir(&name);
    if dir.exists() {
        if Client::connect(roots, &name).is_ok() {
            return Err(pool_err(
                &name,
                "exists already (`warren pool rm` it first)",
            ));
        }
        cleanup_dead(roots, &name);
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711));
    cfg.save(&dir.join("pool.json"))?;
    let init = dir.join("init");
    std::fs::copy(&helpers.pool_init, &init)
        .map_err(|e| Error::io("copy", &helpers.pool_init, e))?;
    std::fs::set_permissions(&init, std::fs::Permissions::from_mode(0o555))
        .map_err(|e| Error::io("chmod", &init, e))?;
    let log_path = dir.join("poold.log");
    let mut child =
        crate::paths::spawn_daemon(&helpers.poold, &dir, roots, &log_path, "pool daemon")?;
    let started = Instant::now();
    let end = started + wait;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            let tail = std::fs::read_to_string(&log_path).unwrap_or_default();
            let last: Vec<&str> = tail.lines().rev().take(3).collect();
            let _ = std::fs::remove_dir_all(&dir);
            return Err(pool_err(
                &name,
                format!(
                    "the pool daemon exited ({st}): {}",
                    last.into_iter().rev().collect::<Vec<_>>().join(" | ")
                ),
            ));
        }
        if let Ok(mut c) = Client::connect(roots, &name)
            && let Ok(s) = c.status()
        {
            if s.ready >= s.size {
                return Ok(s);
            }
            // A sandbox that fails to start keeps failing: say why instead of waiting.
            let failing = s.ready == 0
                && s.last_error.is_some()
                && started.elapsed() > Duration::from_secs(5);
            if Instant::now() > end || failing {
                return Err(pool_err(
                    &name,
                    format!(
                        "only {} of {} sandboxes ready after {} s{}",
                        s.ready,
                        s.size,
                        started.elapsed().as_secs(),
                        s.last_error.map(|e| format!(": {e}")).unwrap_or_default()
                    ),
                ));
            }
        } else if Instant::now() > end {
            return Err(pool_err(&name, "the daemon does not answer"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs one command, writing its output as it comes; returns how it ended.
pub fn exec(
    roots: &Roots,
    name: &str,
    req: &ExecRequest,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<ExecResult> {
    let mut c = Client::connect(roots, name).map_err(|e| match e {
        ClientError::NotFound { name, .. } => Error::PoolNotFound(name),
        other => other.into(),
    })?;
    Ok(c.exec_streaming(req, |s, b| {
        let _ = match s {
            OutputStream::Stdout => stdout.write_all(b).and_then(|_| stdout.flush()),
            OutputStream::Stderr => stderr.write_all(b).and_then(|_| stderr.flush()),
        };
    })?)
}

/// A pool as `ls` shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum Listed {
    Up(PoolStatus),
    /// The directory exists but the daemon does not answer.
    Dead {
        name: String,
        error: String,
    },
}

/// Every pool.
pub fn ls(roots: &Roots) -> Vec<Listed> {
    let mut names: Vec<String> = std::fs::read_dir(roots.pools_dir())
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
        .into_iter()
        .map(
            |n| match Client::connect(roots, &n).and_then(|mut c| c.status()) {
                Ok(s) => Listed::Up(s),
                Err(e) => Listed::Dead {
                    name: n,
                    error: e.to_string(),
                },
            },
        )
        .collect()
}

/// Writes `ls` as a table.
pub fn print_ls(pools: &[Listed], out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<16} {:>5} {:>6} {:>5} {:>9} {:<12} {:<14} {:>9}",
        "POOL", "SIZE", "READY", "BUSY", "EXECS", "PROFILE", "IMAGE", "REPLACED"
    )?;
    for p in pools {
        match p {
            Listed::Up(s) => writeln!(
                out,
                "{:<16} {:>5} {:>6} {:>5} {:>9} {:<12} {:<14} {:>9}",
                s.name,
                s.size,
                s.ready,
                s.busy,
                s.execs,
                short(&s.profile),
                s.image.as_deref().unwrap_or("(host view)"),
                s.replaced
            )?,
            Listed::Dead { name, .. } => writeln!(
                out,
                "{name:<16} daemon not running (`warren pool rm {name}` cleans up)"
            )?,
        }
    }
    Ok(())
}

fn short(profile: &str) -> String {
    Path::new(profile)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| profile.to_owned())
}

/// Stops pool `name`: its daemon destroys every sandbox; a dead daemon's leftovers are
/// removed here.
pub fn rm(roots: &Roots, name: &str) -> Result<()> {
    let dir = roots.pool_dir(name);
    if crate::paths::validate_name("pool", name).is_err() || !dir.exists() {
        return Err(Error::PoolNotFound(name.to_owned()));
    }
    match Client::connect(roots, name).and_then(|mut c| c.shutdown()) {
        Ok(()) => {}
        Err(e) => {
            tracing::warn!(pool = %name, error = %e, "the daemon does not answer; cleaning up");
            cleanup_dead(roots, name);
        }
    }
    let end = Instant::now() + Duration::from_secs(20);
    while dir.exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    if dir.exists() {
        return Err(pool_err(name, format!("{} is still there", dir.display())));
    }
    Ok(())
}

/// The runtime ids of pool `name`'s sandboxes (`pool-NAME-SEQ`).
pub fn sandbox_ids(roots: &Roots, name: &str) -> Vec<String> {
    let prefix = format!("pool-{name}-");
    warren_runtime::state::list_ids(&roots.runtime_root())
        .unwrap_or_default()
        .into_iter()
        .filter(|id| {
            id.strip_prefix(&prefix)
                .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect()
}

/// The cgroup of sandbox `seq` of pool `name` (absolute, directly below each
/// hierarchy's root).
pub fn sandbox_cgroup(name: &str, seq: u64) -> String {
    format!("/warren-pool.{name}.{seq}")
}

/// Cgroup directories of pool `name`'s sandboxes that exist, in every hierarchy.
pub fn sandbox_cgroups(name: &str) -> Vec<std::path::PathBuf> {
    let prefix = format!("warren-pool.{name}.");
    let mut v = Vec::new();
    for root in crate::spec::cgroup_dirs("/") {
        if let Ok(rd) = std::fs::read_dir(&root) {
            for e in rd.filter_map(|e| e.ok()) {
                let n = e.file_name();
                let n = n.to_string_lossy();
                if n.strip_prefix(&prefix)
                    .is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                {
                    v.push(e.path());
                }
            }
        }
    }
    v
}

/// Removes what a pool whose daemon died left: the daemon (if it hangs), its sandboxes,
/// their image mounts and cgroups, the pool directory.
pub fn cleanup_dead(roots: &Roots, name: &str) {
    let dir = roots.pool_dir(name);
    if let Ok(pid) = std::fs::read_to_string(dir.join("poold.pid"))
        && let Ok(pid) = pid.trim().parse::<i32>()
        && pid > 1
        && std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.contains("warren-poold"))
    {
        // SAFETY: kill(2) of the pool's own daemon, checked by its command line.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        std::thread::sleep(Duration::from_millis(50));
    }
    let rt = roots.runtime();
    let image = PoolConfig::load(&dir.join("pool.json"))
        .map(|c| c.image.is_some())
        .unwrap_or(false);
    for id in sandbox_ids(roots, name) {
        if let Err(e) = warren_runtime::verbs::delete::delete(&rt, &id, true) {
            tracing::warn!(%id, error = %e, "delete pooled sandbox");
        }
        if image {
            let _ = crate::spec::remove_image_rootfs(&roots.data, &id);
        }
    }
    for d in sandbox_cgroups(name) {
        crate::spec::kill_and_remove_cgroup_dir(&d);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// What of pool `name` still exists (tests and `rm`).
pub fn leftovers(roots: &Roots, name: &str) -> Vec<String> {
    let mut v: Vec<String> = sandbox_ids(roots, name)
        .into_iter()
        .map(|id| format!("container {id}"))
        .collect();
    for d in sandbox_cgroups(name) {
        v.push(format!("cgroup {}", d.display()));
    }
    if roots.pool_dir(name).exists() {
        v.push(format!("directory {}", roots.pool_dir(name).display()));
    }
    if socket_path(roots, name).exists() {
        v.push("socket".into());
    }
    v
}
