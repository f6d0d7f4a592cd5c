//! warren's own state, beside the runtime's: which sandboxes exist, their names, how they
//! were started, how they ended, their logs and the lifecycle journal.
//!
//! ```text
//! ROOT (/run/warren; tmpfs: gone at reboot)
//!   runtime/                   warren-runtime state of every sandbox (runtime root)
//!   seccomp-cache/             compiled profile filters (warren-sandbox cache)
//!   sandboxes/ID/bundle/       config.json and the (empty) host-view rootfs
//!   sandboxes/ID/monitor.pid   the monitor of a detached sandbox (monitor.log: its errors)
//! DATA_ROOT (/var/lib/warren; shared with the image store)
//!   sandboxes/ID/sandbox.json  the record: format version, name, command, options
//!   sandboxes/ID/exit.json     written by the monitor when the init exits
//!   sandboxes/ID/ctr.log       logs of a detached sandbox (CRI format), ctr.log.1
//!   sandboxes/ID/lock          flock: rm and the monitor's cleanup never overlap
//!   names/NAME -> ID           symlinks; creating one reserves the name atomically
//!   events.jsonl               lifecycle journal (create start die oom stop rm)
//! ```
//!
//! Records carry [`FORMAT`]; a record of another format is refused rather than misread.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::timefmt;

/// Format version of every file warren's CLI writes.
pub const FORMAT: u32 = 1;

/// Errors of the CLI state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("read {path}: {msg}")]
    Corrupt { path: PathBuf, msg: String },
    #[error("no such sandbox: {0}")]
    NotFound(String),
    #[error("sandbox name {0:?} is ambiguous: it is the prefix of several ids")]
    Ambiguous(String),
    #[error("the name {0:?} is already in use")]
    NameInUse(String),
    #[error("invalid name {name:?}: {reason}")]
    BadName { name: String, reason: &'static str },
}

type Result<T> = std::result::Result<T, StateError>;

pub(crate) fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StateError {
    let path = path.to_owned();
    move |source| StateError::Io { op, path, source }
}

/// The two roots: runtime state (tmpfs) and persistent data.
#[derive(Debug, Clone)]
pub struct Roots {
    /// `--root`, default `/run/warren`.
    pub root: PathBuf,
    /// `--data-root`, default `/var/lib/warren`.
    pub data_root: PathBuf,
}

impl Roots {
    /// The default roots.
    pub fn default_roots() -> Self {
        Self {
            root: PathBuf::from("/run/warren"),
            data_root: PathBuf::from("/var/lib/warren"),
        }
    }

    /// The runtime library's settings for our sandboxes.
    pub fn runtime(&self) -> warren_runtime::Runtime {
        warren_runtime::Runtime::new(self.root.join("runtime"))
    }

    /// Per-sandbox directory under the runtime root.
    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.root.join("sandboxes").join(id)
    }

    /// Per-sandbox directory under the data root.
    pub fn data_dir(&self, id: &str) -> PathBuf {
        self.data_root.join("sandboxes").join(id)
    }

    /// Where names are reserved.
    pub fn names_dir(&self) -> PathBuf {
        self.data_root.join("names")
    }

    /// The lifecycle journal.
    pub fn events_path(&self) -> PathBuf {
        self.data_root.join("events.jsonl")
    }

    /// The record of sandbox `id`.
    pub fn record_path(&self, id: &str) -> PathBuf {
        self.data_dir(id).join("sandbox.json")
    }

    /// The log file of sandbox `id`.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.data_dir(id).join("ctr.log")
    }

    /// The exit file of sandbox `id`.
    pub fn exit_path(&self, id: &str) -> PathBuf {
        self.data_dir(id).join("exit.json")
    }

    /// Seccomp filter cache for profiles.
    pub fn seccomp_cache(&self) -> PathBuf {
        self.root.join("seccomp-cache")
    }
}

/// What `warren run` was asked for, kept for `ps`, `inspect` and `exec`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub format: u32,
    pub id: String,
    pub name: String,
    /// Unix seconds.
    pub created: u64,
    pub command: Vec<String>,
    pub image: Option<String>,
    pub profile: Option<String>,
    pub gpus: Option<String>,
    pub devices: Vec<String>,
    pub detached: bool,
    pub auto_remove: bool,
    pub tty: bool,
    pub workspace: PathBuf,
    pub network: String,
    pub memory: Option<i64>,
    pub cpus: Option<f64>,
    pub pids_limit: Option<i64>,
    /// The script `warren run FILE` ran, and what it fell back to.
    pub script: Option<String>,
    /// The user the sandbox runs as (exec uses it by default).
    pub user: Option<(u32, u32)>,
}

/// How a sandbox ended (written by the monitor, or by a foreground run).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExitInfo {
    pub format: u32,
    pub exit_code: i32,
    pub oom_killed: bool,
    /// Unix seconds.
    pub finished: u64,
}

/// Writes `data` to `path` atomically (temporary file and rename).
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).map_err(io("write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("rename", path))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let data = std::fs::read(path).map_err(io("read", path))?;
    serde_json::from_slice(&data).map_err(|e| StateError::Corrupt {
        path: path.to_owned(),
        msg: e.to_string(),
    })
}

fn check_format(path: &Path, format: u32) -> Result<()> {
    if format != FORMAT {
        return Err(StateError::Corrupt {
            path: path.to_owned(),
            msg: format!("format {format}, this warren reads format {FORMAT}"),
        });
    }
    Ok(())
}

impl Record {
    /// Saves the record.
    pub fn save(&self, roots: &Roots) -> Result<()> {
        let p = roots.record_path(&self.id);
        let data = serde_json::to_vec_pretty(self).map_err(|e| StateError::Corrupt {
            path: p.clone(),
            msg: e.to_string(),
        })?;
        write_atomic(&p, &data)
    }

    /// Loads the record of `id`.
    pub fn load(roots: &Roots, id: &str) -> Result<Self> {
        let p = roots.record_path(id);
        if !p.exists() {
            return Err(StateError::NotFound(id.to_owned()));
        }
        let r: Record = read_json(&p)?;
        check_format(&p, r.format)?;
        Ok(r)
    }
}

impl ExitInfo {
    /// The exit of `id`, if it has exited.
    pub fn load(roots: &Roots, id: &str) -> Option<Self> {
        let p = roots.exit_path(id);
        let e: ExitInfo = read_json(&p).ok()?;
        (e.format == FORMAT).then_some(e)
    }

    /// The JSON the monitor writes (kept here so that both sides agree).
    pub fn to_json(&self) -> String {
        format!(
            "{{\"format\":{},\"exit_code\":{},\"oom_killed\":{},\"finished\":{}}}",
            self.format, self.exit_code, self.oom_killed, self.finished
        )
    }
}

/// Checks a user-given sandbox name: it becomes a file name and the hostname.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason| StateError::BadName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() || name.len() > 63 {
        return Err(bad("it must have 1 to 63 characters"));
    }
    if !name.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(bad("it must start with a letter or a digit"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(bad("only letters, digits and _ - . are allowed"));
    }
    Ok(())
}

/// Reserves `name` for `id`; fails if another sandbox holds it.
pub fn reserve_name(roots: &Roots, name: &str, id: &str) -> Result<()> {
    validate_name(name)?;
    let dir = roots.names_dir();
    std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
    let link = dir.join(name);
    match std::os::unix::fs::symlink(id, &link) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(StateError::NameInUse(name.to_owned()))
        }
        Err(e) => Err(StateError::Io {
            op: "create",
            path: link,
            source: e,
        }),
    }
}

/// Releases `name` if it still points at `id`.
pub fn release_name(roots: &Roots, name: &str, id: &str) {
    let link = roots.names_dir().join(name);
    if std::fs::read_link(&link).is_ok_and(|t| t == Path::new(id)) {
        let _ = std::fs::remove_file(&link);
    }
}

/// Ids of every sandbox with a record, oldest first.
pub fn list_ids(roots: &Roots) -> Result<Vec<String>> {
    let dir = roots.data_root.join("sandboxes");
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("read", &dir)(e)),
    };
    let mut out: Vec<(u64, String)> = Vec::new();
    for e in rd.flatten() {
        let id = e.file_name().to_string_lossy().into_owned();
        if let Ok(r) = Record::load(roots, &id) {
            out.push((r.created, id));
        }
    }
    out.sort();
    Ok(out.into_iter().map(|(_, id)| id).collect())
}

/// Resolves a name, an id or a unique id prefix to an id.
pub fn resolve(roots: &Roots, query: &str) -> Result<String> {
    if query.is_empty() || query.contains('/') || query.starts_with('.') {
        return Err(StateError::NotFound(query.to_owned()));
    }
    if let Ok(t) = std::fs::read_link(roots.names_dir().join(query)) {
        let id = t.to_string_lossy().into_owned();
        if roots.record_path(&id).exists() {
            return Ok(id);
        }
    }
    if roots.record_path(query).exists() {
        return Ok(query.to_owned());
    }
    if query.len() >= 3 && query.bytes().all(|b| b.is_ascii_hexdigit()) {
        let hits: Vec<String> = list_ids(roots)?
            .into_iter()
            .filter(|id| id.starts_with(query))
            .collect();
        match hits.len() {
            1 => return Ok(hits.into_iter().next().unwrap_or_default()),
            0 => {}
            _ => return Err(StateError::Ambiguous(query.to_owned())),
        }
    }
    Err(StateError::NotFound(query.to_owned()))
}

/// An exclusive lock on one sandbox (held while it is removed or cleaned up).
#[derive(Debug)]
pub struct SandboxLock(#[allow(dead_code)] nix::fcntl::Flock<File>);

/// Locks sandbox `id` (blocking).
pub fn lock(roots: &Roots, id: &str) -> Result<SandboxLock> {
    let p = roots.data_dir(id).join("lock");
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&p)
        .map_err(io("open", &p))?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map(SandboxLock)
        .map_err(|(_, e)| StateError::Io {
            op: "lock",
            path: p,
            source: e.into(),
        })
}

/// One line of the lifecycle journal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Event {
    /// RFC 3339 with nanoseconds.
    pub time: String,
    /// create, start, die, oom, stop, rm.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub exit_code: Option<i32>,
}

/// Formats an event line (also used by the monitor, which has no serde).
pub fn event_line(kind: &str, id: &str, name: &str, exit_code: Option<i32>) -> String {
    let (s, ns) = timefmt::now();
    let t = timefmt::rfc3339_nanos(s, ns);
    // ids and names are validated to [A-Za-z0-9_.-]: nothing to escape.
    match exit_code {
        Some(c) => format!(
            "{{\"time\":\"{t}\",\"type\":\"{kind}\",\"id\":\"{id}\",\"name\":\"{name}\",\"exit_code\":{c}}}\n"
        ),
        None => format!(
            "{{\"time\":\"{t}\",\"type\":\"{kind}\",\"id\":\"{id}\",\"name\":\"{name}\"}}\n"
        ),
    }
}

/// Appends a line to the journal with one `write` on an `O_APPEND` file, so lines of
/// concurrent writers never interleave. Failures are logged, not fatal.
pub fn append_event_to(path: &Path, line: &str) {
    let r = OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_CLOEXEC)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = r {
        tracing::warn!(path = %path.display(), error = %e, "event journal");
    }
}

/// Appends an event for sandbox `r`.
pub fn append_event(roots: &Roots, kind: &str, id: &str, name: &str, exit_code: Option<i32>) {
    append_event_to(&roots.events_path(), &event_line(kind, id, name, exit_code));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(d: &Path) -> Roots {
        Roots {
            root: d.join("run"),
            data_root: d.join("data"),
        }
    }

    #[test]
    fn names_are_reserved_once_and_resolve() {
        let d = tempfile::tempdir().expect("tmp");
        let r = roots(d.path());
        std::fs::create_dir_all(r.data_dir("abc123")).expect("mkdir");
        let rec = Record {
            format: FORMAT,
            id: "abc123".into(),
            name: "exp1".into(),
            created: 1,
            command: vec!["true".into()],
            image: None,
            profile: None,
            gpus: None,
            devices: vec![],
            detached: true,
            auto_remove: false,
            tty: false,
            workspace: "/".into(),
            network: "none".into(),
            memory: None,
            cpus: None,
            pids_limit: None,
            script: None,
            user: None,
        };
        rec.save(&r).expect("save");
        reserve_name(&r, "exp1", "abc123").expect("reserve");
        assert!(matches!(
            reserve_name(&r, "exp1", "other"),
            Err(StateError::NameInUse(_))
        ));
        assert_eq!(resolve(&r, "exp1").expect("name"), "abc123");
        assert_eq!(resolve(&r, "abc").expect("prefix"), "abc123");
        assert!(matches!(resolve(&r, "nope"), Err(StateError::NotFound(_))));
        assert_eq!(Record::load(&r, "abc123").expect("load"), rec);
        release_name(&r, "exp1", "abc123");
        assert!(resolve(&r, "exp1").is_err());
    }

    #[test]
    fn bad_names_are_refused() {
        for n in ["", "-x", "a/b", "a b", "..", &"x".repeat(64)] {
            assert!(validate_name(n).is_err(), "{n}");
        }
        validate_name("exp-1.b_2").expect("good");
    }

    #[test]
    fn event_lines_parse() {
        let l = event_line("die", "abc", "n", Some(3));
        let e: Event = serde_json::from_str(l.trim()).expect("json");
        assert_eq!((e.kind.as_str(), e.exit_code), ("die", Some(3)));
        let x = ExitInfo {
            format: FORMAT,
            exit_code: 137,
            oom_killed: true,
            finished: 5,
        };
        assert_eq!(
            serde_json::from_str::<ExitInfo>(&x.to_json()).expect("exit"),
            x
        );
    }
}
