//! `warren cri install|status`: registers `warren-runtime` as a Kubernetes runtime handler
//! in containerd's CRI plugin (config version 2) or in CRI-O (a drop-in file), and checks a
//! node.
//!
//! containerd: the handler `warren` runs the io.containerd.runc.v2 shim with
//! `options.BinaryName = <warren-runtime>`; `pod_annotations` and `container_annotations`
//! let `warren.dev/*` and `cdi.k8s.io/*` through to the runtime (containerd drops every
//! other pod annotation), and CDI is enabled (`enable_cdi`, `cdi_spec_dirs`) for
//! containerd 1.7 and later, which resolve the CRI `CDIDevices` field themselves.
//!
//! The config is edited with `toml_edit`, so comments, order and formatting of everything
//! else survive; an edit that changes nothing writes nothing. The first install keeps the
//! original as `PATH.warren-backup`; `--uninstall` puts it back.
//!
//! ```
//! use std::path::Path;
//! use warren_cli::cri::{Handler, edit_containerd};
//! let h = Handler::new("warren", Path::new("/usr/local/bin/warren-runtime"));
//! let after = edit_containerd("version = 2\n", Path::new("config.toml"), &h).unwrap();
//! assert!(after.contains("BinaryName = \"/usr/local/bin/warren-runtime\""));
//! // idempotent
//! assert_eq!(edit_containerd(&after, Path::new("config.toml"), &h).unwrap(), after);
//! ```

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, Value};

/// containerd's CRI plugin (config version 2, containerd 1.5 to 1.7).
pub const CRI_PLUGIN: &str = "io.containerd.grpc.v1.cri";
/// The shim that drives runc-compatible runtimes.
pub const RUNC_SHIM: &str = "io.containerd.runc.v2";
/// Annotation patterns that must reach the runtime: profiles and CDI device requests.
pub const ANNOTATIONS: [&str; 2] = ["warren.dev/*", "cdi.k8s.io/*"];
/// Where CDI specs live (the runtime's own search path, in this order).
pub const CDI_SPEC_DIRS: [&str; 2] = ["/etc/cdi", "/var/run/cdi"];
/// containerd's config.
pub const CONTAINERD_CONFIG: &str = "/etc/containerd/config.toml";
/// warren's CRI-O drop-in.
pub const CRIO_DROPIN: &str = "/etc/crio/crio.conf.d/99-warren.conf";
/// Suffix of the backup kept by the first install.
pub const BACKUP_SUFFIX: &str = ".warren-backup";
/// How warren's CRI-O drop-in starts.
const CRIO_HEADER: &str = "# Written by `warren cri install --crio`";
/// First line of a backup standing for "there was no file".
const ABSENT_MARKER: &str = "# warren: no file existed here before `warren cri install`";

/// Why a `warren cri` step failed. Messages read after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum CriError {
    /// Reading a file.
    #[error("read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Writing, renaming or removing a file.
    #[error("write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The config is not valid TOML.
    #[error("parse {}: line {line}, column {column}: {message} (in `{text}`); the file is left untouched", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        /// The parser's message.
        message: String,
        /// The offending line.
        text: String,
    },
    /// Valid TOML that this command cannot edit safely.
    #[error("edit {}: {message}; the file is left untouched", path.display())]
    Unsupported { path: PathBuf, message: String },
    /// `--uninstall` without a backup.
    #[error(
        "restore {}: no backup {} (was `warren cri install` run on this file?)",
        path.display(),
        backup.display()
    )]
    NoBackup { path: PathBuf, backup: PathBuf },
    /// The runtime binary to register is not there.
    #[error("register {}: not an executable file (give --runtime PATH)", path.display())]
    Runtime { path: PathBuf },
    /// A handler name Kubernetes would refuse.
    #[error(
        "use handler name {0:?}: a RuntimeClass handler is a DNS label (lowercase letters, digits, '-', at most 63)"
    )]
    HandlerName(String),
}

type Result<T> = std::result::Result<T, CriError>;

/// Which engine's config to edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// containerd's config.toml (version 2).
    Containerd,
    /// A CRI-O drop-in (`/etc/crio/crio.conf.d/`).
    Crio,
}

impl Engine {
    /// The config file edited by default.
    pub fn default_config(self) -> &'static Path {
        Path::new(match self {
            Engine::Containerd => CONTAINERD_CONFIG,
            Engine::Crio => CRIO_DROPIN,
        })
    }
}

/// The runtime handler to register.
#[derive(Debug, Clone)]
pub struct Handler {
    /// Handler name (the RuntimeClass's `handler`).
    pub name: String,
    /// Absolute path of `warren-runtime`.
    pub runtime: PathBuf,
    /// CDI spec directories for containerd's own CDI support.
    pub cdi_spec_dirs: Vec<String>,
}

impl Handler {
    /// The handler `name` running `runtime`, with the default CDI directories.
    pub fn new(name: &str, runtime: &Path) -> Self {
        Self {
            name: name.to_owned(),
            runtime: runtime.to_owned(),
            cdi_spec_dirs: CDI_SPEC_DIRS.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn validate(&self) -> Result<()> {
        let n = &self.name;
        let ok = !n.is_empty()
            && n.len() <= 63
            && n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !n.starts_with('-')
            && !n.ends_with('-');
        if ok {
            Ok(())
        } else {
            Err(CriError::HandlerName(n.clone()))
        }
    }
}

/// What `install` should do.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    pub engine: Engine,
    /// The config file (containerd) or drop-in (CRI-O).
    pub config: PathBuf,
    pub handler: Handler,
    /// Print the diff, change nothing.
    pub dry_run: bool,
    /// Restore the backup instead.
    pub uninstall: bool,
}

/// What `install` did (or, with `dry_run`, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallReport {
    pub config: PathBuf,
    /// Unified diff of the change; empty when there is none.
    pub diff: String,
    /// The file was written (false for a dry run or when nothing changed).
    pub written: bool,
    /// Where the original is kept, when a backup exists.
    pub backup: Option<PathBuf>,
}

/// The backup path of `config`.
pub fn backup_path(config: &Path) -> PathBuf {
    let mut s = config.as_os_str().to_owned();
    s.push(BACKUP_SUFFIX);
    PathBuf::from(s)
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CriError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes `path` through a temp file and a rename, keeping the old file's mode.
fn write_atomic(path: &Path, text: &str, mode: u32) -> Result<()> {
    let werr = |source| CriError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(werr)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".warren-tmp");
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(werr)
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).map_or(0o644, |m| m.permissions().mode() & 0o7777)
}

/// Registers (or with `uninstall`, removes) the handler. The config is parsed and edited
/// in memory first: a malformed file is refused with its line and never written.
pub fn install(o: &InstallOptions) -> Result<InstallReport> {
    if o.uninstall {
        return uninstall(o);
    }
    o.handler.validate()?;
    if !o.handler.runtime.is_absolute() || !is_executable(&o.handler.runtime) {
        return Err(CriError::Runtime {
            path: o.handler.runtime.clone(),
        });
    }
    let before = read_optional(&o.config)?;
    let old = before.as_deref().unwrap_or("");
    let new = match o.engine {
        Engine::Containerd => edit_containerd(old, &o.config, &o.handler)?,
        Engine::Crio => {
            if let Some(text) = &before {
                // An existing file must at least be TOML; it is replaced whole.
                parse(text, &o.config)?;
            }
            crio_dropin(&o.handler)
        }
    };
    let name = o.config.display().to_string();
    let diff = unified_diff(
        old,
        &new,
        if before.is_some() { &name } else { "/dev/null" },
        &name,
    );
    let backup = backup_path(&o.config);
    let mut report = InstallReport {
        config: o.config.clone(),
        diff,
        written: false,
        backup: backup.exists().then(|| backup.clone()),
    };
    if o.dry_run || (new == old && before.is_some()) {
        return Ok(report);
    }
    // Keep the pre-warren original: refreshed whenever the current file does not hold our
    // handler yet (so a reset config is not later "restored" to a stale one).
    let ours = match (o.engine, &before) {
        (_, None) => false,
        (Engine::Containerd, Some(t)) => containerd_has_handler(t, &o.handler.name),
        (Engine::Crio, Some(t)) => t.starts_with(CRIO_HEADER),
    };
    if !ours || !backup.exists() {
        let saved = match &before {
            Some(t) if !ours || o.engine == Engine::Containerd => t.clone(),
            _ => format!("{ABSENT_MARKER}\n"),
        };
        write_atomic(&backup, &saved, mode_of(&o.config))?;
        report.backup = Some(backup);
    }
    write_atomic(&o.config, &new, mode_of(&o.config))?;
    report.written = true;
    Ok(report)
}

impl InstallReport {
    /// What happened, for the admin (stderr): the file, the backup, what to do next.
    pub fn summary(&self, o: &InstallOptions) -> String {
        let cfg = self.config.display();
        let restart = match o.engine {
            Engine::Containerd => "systemctl restart containerd",
            Engine::Crio => "systemctl restart crio",
        };
        match (o.uninstall, o.dry_run, self.written, self.diff.is_empty()) {
            (_, true, _, true) => format!("{cfg}: nothing to change"),
            (_, true, _, false) => format!("{cfg}: the diff above would be applied (dry run)"),
            (false, false, false, _) => {
                format!(
                    "{cfg} already registers handler {:?}: nothing to change",
                    o.handler.name
                )
            }
            (false, false, true, _) => format!(
                "registered runtime handler {:?} ({}) in {cfg}{}; apply with `{restart}`, then \
                 the RuntimeClass below",
                o.handler.name,
                o.handler.runtime.display(),
                self.backup.as_ref().map_or(String::new(), |b| format!(
                    " (original kept as {})",
                    b.display()
                )),
            ),
            (true, false, _, _) => {
                format!("restored {cfg} from the backup; apply with `{restart}`")
            }
        }
    }
}

/// The `warren-runtime` to register by default: the one installed beside `warren`
/// (`exe_dir`), else the first on `path` (`$PATH`), else `/usr/local/bin/warren-runtime`.
pub fn default_runtime(exe_dir: Option<&Path>, path: Option<&std::ffi::OsStr>) -> PathBuf {
    let beside = exe_dir.map(|d| d.join("warren-runtime"));
    let on_path = path
        .into_iter()
        .flat_map(std::env::split_paths)
        .filter(|d| d.is_absolute())
        .map(|d| d.join("warren-runtime"));
    beside
        .into_iter()
        .chain(on_path)
        .find(|p| is_executable(p))
        .unwrap_or_else(|| PathBuf::from("/usr/local/bin/warren-runtime"))
}

fn uninstall(o: &InstallOptions) -> Result<InstallReport> {
    let backup = backup_path(&o.config);
    let Some(saved) = read_optional(&backup)? else {
        return Err(CriError::NoBackup {
            path: o.config.clone(),
            backup,
        });
    };
    let current = read_optional(&o.config)?;
    let absent = saved.starts_with(ABSENT_MARKER);
    let name = o.config.display().to_string();
    let diff = unified_diff(
        current.as_deref().unwrap_or(""),
        if absent { "" } else { &saved },
        &name,
        if absent { "/dev/null" } else { &name },
    );
    let mut report = InstallReport {
        config: o.config.clone(),
        diff,
        written: false,
        backup: Some(backup.clone()),
    };
    if o.dry_run {
        return Ok(report);
    }
    let werr = |path: &Path| {
        let path = path.to_owned();
        move |source| CriError::Write { path, source }
    };
    if absent {
        match std::fs::remove_file(&o.config) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(werr(&o.config)(e));
            }
            _ => {}
        }
        std::fs::remove_file(&backup).map_err(werr(&backup))?;
    } else {
        std::fs::rename(&backup, &o.config).map_err(werr(&o.config))?;
    }
    report.written = true;
    report.backup = None;
    Ok(report)
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn parse(text: &str, path: &Path) -> Result<DocumentMut> {
    text.parse::<DocumentMut>().map_err(|e| {
        let start = e.span().map_or(0, |s| s.start).min(text.len());
        let before = text.get(..start).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        let full = text.lines().nth(line - 1).unwrap_or("").trim();
        let mut shown: String = full.chars().take(80).collect();
        if full.chars().count() > 80 {
            shown.push('…');
        }
        CriError::Parse {
            path: path.to_owned(),
            line,
            column,
            message: e
                .message()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(": "),
            text: shown,
        }
    })
}

/// A table being edited: a `[table]` (or dotted-key table) with the indentation of its
/// header (-2 for the document's root), or an inline `{ … }` one.
enum Node<'a> {
    Table(&'a mut Table, isize),
    Inline(&'a mut InlineTable),
}

/// Width of the whitespace that starts the last line of a decor prefix.
fn indent_of(d: &toml_edit::Decor) -> Option<isize> {
    let p = d.prefix()?.as_str()?;
    let last = p.rsplit('\n').next().unwrap_or("");
    last.chars()
        .all(|c| c == ' ' || c == '\t')
        .then_some(last.len() as isize)
}

/// Does the file indent nested tables (as `containerd config default` and Debian's do)?
fn indented_style(t: &Table) -> bool {
    t.iter().any(|(_, item)| match item {
        Item::Table(c) => {
            (!c.is_implicit() && !c.is_dotted() && indent_of(c.decor()).is_some_and(|i| i > 0))
                || indented_style(c)
        }
        _ => false,
    })
}

fn pad(n: isize) -> String {
    " ".repeat(n.max(0) as usize)
}

fn type_name(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
        Item::Value(v) => v.type_name(),
    }
}

/// Semantic equality of two values, ignoring formatting.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.value() == y.value(),
        (Value::Integer(x), Value::Integer(y)) => x.value() == y.value(),
        (Value::Boolean(x), Value::Boolean(y)) => x.value() == y.value(),
        (Value::Float(x), Value::Float(y)) => x.value() == y.value(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(a, b)| same(a, b))
        }
        _ => false,
    }
}

struct Editor<'p> {
    path: &'p Path,
    /// Indent new tables and keys as the file does.
    indented: bool,
}

impl Editor<'_> {
    fn unsupported(&self, message: String) -> CriError {
        CriError::Unsupported {
            path: self.path.to_owned(),
            message,
        }
    }

    /// The child table `key` of `node` (`at` names it in errors), created if missing.
    fn child<'a>(&self, node: Node<'a>, key: &str, at: &str) -> Result<Node<'a>> {
        match node {
            Node::Table(t, indent) => {
                let below = if self.indented { indent + 2 } else { 0 };
                if !t.contains_key(key) {
                    let mut nt = Table::new();
                    nt.set_implicit(true);
                    // Under dotted keys, stay dotted so the new keys sit beside their
                    // siblings instead of in a new section.
                    nt.set_dotted(t.is_dotted());
                    nt.decor_mut().set_prefix(format!("\n{}", pad(below)));
                    t.insert(key, Item::Table(nt));
                }
                match t.get_mut(key) {
                    Some(Item::Table(c)) => {
                        let own = (!c.is_implicit() && !c.is_dotted())
                            .then(|| indent_of(c.decor()))
                            .flatten();
                        Ok(Node::Table(c, own.unwrap_or(below)))
                    }
                    Some(Item::Value(Value::InlineTable(c))) => Ok(Node::Inline(c)),
                    Some(other) => {
                        Err(self
                            .unsupported(format!("{at} is {}, expected a table", type_name(other))))
                    }
                    None => Err(self.unsupported(format!("{at} vanished"))),
                }
            }
            Node::Inline(t) => {
                if !t.contains_key(key) {
                    t.insert(key, Value::InlineTable(InlineTable::new()));
                }
                match t.get_mut(key) {
                    Some(Value::InlineTable(c)) => Ok(Node::Inline(c)),
                    Some(other) => Err(self
                        .unsupported(format!("{at} is {}, expected a table", other.type_name()))),
                    None => Err(self.unsupported(format!("{at} vanished"))),
                }
            }
        }
    }

    /// Inserts a new `key` into a `[table]`, indented as its siblings (or its header).
    fn insert(&self, t: &mut Table, indent: isize, key: &str, v: Value) {
        let sibling = t
            .iter()
            .filter(|(_, i)| i.is_value())
            .find_map(|(k, _)| t.key(k)?.leaf_decor().prefix()?.as_str().map(str::to_owned));
        t.insert(key, Item::Value(v));
        let prefix = match sibling {
            Some(p) => p,
            None if self.indented && !t.is_dotted() => pad(indent + 2),
            None => return,
        };
        if let Some(mut k) = t.key_mut(key) {
            k.leaf_decor_mut().set_prefix(prefix);
        }
    }

    /// Sets `key` to `v` unless it already holds that value (keeping its formatting).
    fn set(&self, node: &mut Node<'_>, key: &str, v: Value, at: &str) -> Result<()> {
        let slot: Option<&mut Value> = match node {
            Node::Table(t, indent) => match t.get_mut(key) {
                None => {
                    self.insert(t, *indent, key, v);
                    return Ok(());
                }
                Some(Item::Value(old)) => Some(old),
                Some(other) => {
                    return Err(self.unsupported(format!(
                        "{at}.{key} is {}, expected a value",
                        type_name(other)
                    )));
                }
            },
            Node::Inline(t) => match t.get_mut(key) {
                None => {
                    t.insert(key, v);
                    return Ok(());
                }
                Some(old) => Some(old),
            },
        };
        if let Some(old) = slot
            && !same(old, &v)
        {
            let decor = old.decor().clone();
            *old = v;
            *old.decor_mut() = decor;
        }
        Ok(())
    }

    /// Makes the string array `key` contain every one of `want` (existing entries stay).
    fn merge(&self, node: &mut Node<'_>, key: &str, want: &[&str], at: &str) -> Result<()> {
        let existing: Option<&mut Value> = match node {
            Node::Table(t, _) => match t.get_mut(key) {
                Some(Item::Value(v)) => Some(v),
                Some(other) => {
                    return Err(self.unsupported(format!(
                        "{at}.{key} is {}, expected an array of strings",
                        type_name(other)
                    )));
                }
                None => None,
            },
            Node::Inline(t) => t.get_mut(key),
        };
        match existing {
            Some(Value::Array(a)) => {
                for w in want {
                    if !a.iter().any(|v| v.as_str() == Some(w)) {
                        a.push(*w);
                    }
                }
                Ok(())
            }
            Some(other) => Err(self.unsupported(format!(
                "{at}.{key} is {}, expected an array of strings",
                other.type_name()
            ))),
            None => self.set(
                node,
                key,
                Value::Array(want.iter().copied().collect::<Array>()),
                at,
            ),
        }
    }
}

fn quoted(k: &str) -> String {
    if k.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        k.to_owned()
    } else {
        format!("{k:?}")
    }
}

/// Adds the handler to a containerd config (version 2) and enables CDI; returns the new
/// text. Everything else in the file is kept as it was. An empty file becomes a minimal
/// version 2 config.
pub fn edit_containerd(text: &str, path: &Path, h: &Handler) -> Result<String> {
    h.validate()?;
    let mut doc = parse(text, path)?;
    let ed = Editor {
        path,
        indented: indented_style(doc.as_table()),
    };
    match doc.get("version") {
        None if doc.as_table().is_empty() => {
            doc.insert("version", toml_edit::value(2));
        }
        None => {
            return Err(ed.unsupported(
                "no `version = 2`: containerd reads this as a version 1 config, which warren \
                 cri install does not edit (compare with `containerd config default`)"
                    .to_owned(),
            ));
        }
        Some(v) if v.as_integer() == Some(2) => {}
        Some(v) => {
            return Err(ed.unsupported(format!(
                "config version {}: warren cri install edits version 2 (containerd 1.5 to 1.7)",
                v.to_string().trim()
            )));
        }
    }
    let cri_at = format!("plugins.{}", quoted(CRI_PLUGIN));
    let plugins = ed.child(Node::Table(doc.as_table_mut(), -2), "plugins", "plugins")?;
    let mut cri = ed.child(plugins, CRI_PLUGIN, &cri_at)?;
    ed.set(&mut cri, "enable_cdi", Value::from(true), &cri_at)?;
    let dirs: Vec<&str> = h.cdi_spec_dirs.iter().map(String::as_str).collect();
    ed.merge(&mut cri, "cdi_spec_dirs", &dirs, &cri_at)?;
    let at = format!("{cri_at}.containerd");
    let ctd = ed.child(cri, "containerd", &at)?;
    let at = format!("{at}.runtimes");
    let runtimes = ed.child(ctd, "runtimes", &at)?;
    let at = format!("{at}.{}", quoted(&h.name));
    let mut rt = ed.child(runtimes, &h.name, &at)?;
    ed.set(&mut rt, "runtime_type", Value::from(RUNC_SHIM), &at)?;
    ed.merge(&mut rt, "pod_annotations", &ANNOTATIONS, &at)?;
    ed.merge(&mut rt, "container_annotations", &ANNOTATIONS, &at)?;
    let opt_at = format!("{at}.options");
    let mut opts = ed.child(rt, "options", &opt_at)?;
    let runtime = h.runtime.display().to_string();
    ed.set(&mut opts, "BinaryName", Value::from(runtime), &opt_at)?;
    let mut out = doc.to_string();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

fn containerd_has_handler(text: &str, name: &str) -> bool {
    let Ok(doc) = text.parse::<DocumentMut>() else {
        return false;
    };
    handler_table(&doc, name).is_some()
}

/// A handler's table in a parsed containerd config, if present.
fn handler_table<'a>(doc: &'a DocumentMut, name: &str) -> Option<&'a dyn toml_edit::TableLike> {
    doc.get("plugins")?
        .get(CRI_PLUGIN)?
        .get("containerd")?
        .get("runtimes")?
        .get(name)?
        .as_table_like()
}

/// warren's CRI-O drop-in: the whole file, owned by warren.
pub fn crio_dropin(h: &Handler) -> String {
    let s = |v: &str| Value::from(v).to_string();
    let allowed = ANNOTATIONS
        .iter()
        .map(|a| format!("  {},\n", s(a)))
        .collect::<String>();
    format!(
        "{CRIO_HEADER}; `warren cri install --crio --uninstall` undoes it.\n\
         # The CRI-O runtime handler {name:?} (RuntimeClass handler: {name}) runs \
         warren-runtime, a runc-compatible\n\
         # OCI runtime; CRI-O passes pod annotations (warren.dev/profile, cdi.k8s.io/*) to it in \
         the OCI spec.\n\
         [crio.runtime.runtimes.{key}]\n\
         runtime_path = {path}\n\
         runtime_type = \"oci\"\n\
         runtime_root = \"/run/warren-runtime\"\n\
         allowed_annotations = [\n{allowed}]\n",
        name = h.name,
        key = quoted(&h.name),
        path = s(&h.runtime.display().to_string()),
    )
}

/// The RuntimeClass that sends pods to `handler`.
pub fn runtime_class(handler: &str) -> String {
    format!(
        "apiVersion: node.k8s.io/v1\n\
         kind: RuntimeClass\n\
         metadata:\n  name: {handler}\n\
         handler: {handler}\n"
    )
}

/// A unified diff (3 lines of context) of `a` → `b`; empty when they are equal.
pub fn unified_diff(a: &str, b: &str, a_name: &str, b_name: &str) -> String {
    if a == b {
        return String::new();
    }
    let x: Vec<&str> = a.lines().collect();
    let y: Vec<&str> = b.lines().collect();
    // Longest common subsequence table (configs are small).
    let (n, m) = (x.len(), y.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if x[i] == y[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    // Edit script: (tag, line index in a, line index in b).
    let mut ops: Vec<(char, usize, usize)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && x[i] == y[j] {
            ops.push((' ', i, j));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', i, j));
            i += 1;
        } else {
            ops.push(('+', i, j));
            j += 1;
        }
    }
    let mut out = format!("--- {a_name}\n+++ {b_name}\n");
    const CONTEXT: usize = 3;
    let mut k = 0;
    while k < ops.len() {
        if ops[k].0 == ' ' {
            k += 1;
            continue;
        }
        // A hunk: from CONTEXT lines before this change to CONTEXT after the last change
        // that is closer than 2*CONTEXT to the previous one.
        let start = k.saturating_sub(CONTEXT);
        let mut end = k;
        let mut last_change = k;
        while end < ops.len() {
            if ops[end].0 != ' ' {
                last_change = end;
            } else if end - last_change > 2 * CONTEXT {
                break;
            }
            end += 1;
        }
        let end = (last_change + CONTEXT + 1).min(ops.len());
        let hunk = &ops[start..end];
        let a_len = hunk.iter().filter(|o| o.0 != '+').count();
        let b_len = hunk.iter().filter(|o| o.0 != '-').count();
        let a_start = hunk[0].1 + usize::from(a_len > 0);
        let b_start = hunk[0].2 + usize::from(b_len > 0);
        // As GNU diff: a length of 1 is left out.
        let range = |start: usize, len: usize| {
            if len == 1 {
                start.to_string()
            } else {
                format!("{start},{len}")
            }
        };
        let _ = writeln!(
            out,
            "@@ -{} +{} @@",
            range(a_start, a_len),
            range(b_start, b_len)
        );
        for &(tag, i, j) in hunk {
            let line = if tag == '+' { y[j] } else { x[i] };
            let _ = writeln!(out, "{tag}{line}");
        }
        k = end;
    }
    out
}

// ------------------------------------------------------------------------------ status

/// How a status check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    /// Works, with a caveat.
    Warn,
    Fail,
}

/// One line of `warren cri status`.
#[derive(Debug, Clone)]
pub struct Check {
    pub level: Level,
    pub what: String,
    pub detail: String,
}

/// The node's state as `warren cri status` sees it.
#[derive(Debug, Clone, Default)]
pub struct StatusReport {
    pub checks: Vec<Check>,
}

impl StatusReport {
    fn push(&mut self, level: Level, what: &str, detail: impl Into<String>) {
        self.checks.push(Check {
            level,
            what: what.to_owned(),
            detail: detail.into(),
        });
    }

    /// No check failed.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.level != Level::Fail)
    }

    /// One line a check: `ok   what: detail`.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for c in &self.checks {
            let tag = match c.level {
                Level::Ok => "ok  ",
                Level::Warn => "warn",
                Level::Fail => "FAIL",
            };
            let _ = writeln!(s, "{tag} {}: {}", c.what, c.detail);
        }
        s
    }
}

/// What `status` looks at.
#[derive(Debug, Clone)]
pub struct StatusOptions {
    pub engine: Engine,
    pub config: PathBuf,
    pub handler: String,
    /// The engine's binary (`containerd` or `crio`), run with `--version`.
    pub engine_binary: PathBuf,
}

/// First line of `bin --version`, or why there is none.
fn version_of(bin: &Path) -> std::result::Result<String, String> {
    let out = Command::new(bin)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {} --version: {e}", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next().unwrap_or("").trim().to_owned();
    if !out.status.success() || line.is_empty() {
        return Err(format!(
            "{} --version: {} {}",
            bin.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(line)
}

/// `(major, minor)` of the first `N.N` in a version line.
pub fn parse_version(line: &str) -> Option<(u32, u32)> {
    line.split_whitespace().find_map(|w| {
        let w = w.trim_start_matches('v');
        let mut it = w.split(['.', '~', '-', '+']);
        let major = it.next()?.parse().ok()?;
        let minor = it.next()?.parse().ok()?;
        Some((major, minor))
    })
}

fn str_array(t: &dyn toml_edit::TableLike, key: &str) -> Vec<String> {
    t.get(key)
        .and_then(Item::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Does a containerd annotation pattern list let `key` through? (containerd matches with
/// Go's `filepath.Match`; `*` never crosses `/`.)
fn passes(patterns: &[String], key: &str) -> bool {
    patterns.iter().any(|p| glob(p, key))
}

fn glob(p: &str, s: &str) -> bool {
    match p.split_once('*') {
        None => p == s,
        Some((head, tail)) => {
            let Some(rest) = s.strip_prefix(head) else {
                return false;
            };
            // `*` matches any run of characters other than `/`.
            for (i, c) in rest
                .char_indices()
                .map(|(i, c)| (i, Some(c)))
                .chain(std::iter::once((rest.len(), None)))
            {
                if glob(tail, &rest[i..]) {
                    return true;
                }
                if c == Some('/') {
                    break;
                }
            }
            false
        }
    }
}

/// Checks the node: the engine's version, the handler in its config, annotations, CDI and
/// the runtime's version.
pub fn status(o: &StatusOptions) -> StatusReport {
    let mut r = StatusReport::default();
    let engine_name = match o.engine {
        Engine::Containerd => "containerd",
        Engine::Crio => "CRI-O",
    };
    let engine_version = match version_of(&o.engine_binary) {
        Ok(v) => {
            r.push(Level::Ok, engine_name, &v);
            parse_version(&v)
        }
        Err(e) => {
            r.push(Level::Fail, engine_name, e);
            None
        }
    };
    let text = match std::fs::read_to_string(&o.config) {
        Ok(t) => t,
        Err(e) => {
            r.push(
                Level::Fail,
                "config",
                format!(
                    "{}: {e} (run `warren cri install{}`)",
                    o.config.display(),
                    if o.engine == Engine::Crio {
                        " --crio"
                    } else {
                        ""
                    }
                ),
            );
            return r;
        }
    };
    let doc = match parse(&text, &o.config) {
        Ok(d) => d,
        Err(e) => {
            r.push(Level::Fail, "config", e.to_string());
            return r;
        }
    };
    let runtime = match o.engine {
        Engine::Containerd => containerd_status(&mut r, &doc, o, engine_version),
        Engine::Crio => crio_status(&mut r, &doc, o),
    };
    if let Some(rt) = runtime {
        match version_of(&rt) {
            Ok(v) => r.push(
                Level::Ok,
                "warren-runtime",
                format!("{} ({v})", rt.display()),
            ),
            Err(e) => r.push(Level::Fail, "warren-runtime", e),
        }
    }
    r
}

fn containerd_status(
    r: &mut StatusReport,
    doc: &DocumentMut,
    o: &StatusOptions,
    version: Option<(u32, u32)>,
) -> Option<PathBuf> {
    let cfg = o.config.display();
    match doc.get("version").and_then(Item::as_integer) {
        Some(2) => r.push(Level::Ok, "config", format!("{cfg}: version 2")),
        v => {
            r.push(
                Level::Fail,
                "config",
                format!(
                    "{cfg}: version {}, warren cri install writes version 2",
                    v.unwrap_or(1)
                ),
            );
            return None;
        }
    }
    let Some(h) = handler_table(doc, &o.handler) else {
        r.push(
            Level::Fail,
            "handler",
            format!(
                "no runtime handler {:?} in {cfg} (run `warren cri install`)",
                o.handler
            ),
        );
        return None;
    };
    let rtype = h
        .get("runtime_type")
        .and_then(Item::as_str)
        .unwrap_or("(unset)");
    let binary = h
        .get("options")
        .and_then(|t| t.get("BinaryName"))
        .and_then(Item::as_str)
        .map(PathBuf::from);
    match (&binary, rtype == RUNC_SHIM) {
        (Some(b), true) => r.push(
            Level::Ok,
            "handler",
            format!("{}: {RUNC_SHIM}, BinaryName {}", o.handler, b.display()),
        ),
        _ => r.push(
            Level::Fail,
            "handler",
            format!(
                "{}: runtime_type {rtype}, BinaryName {} (want {RUNC_SHIM} and the warren-runtime path)",
                o.handler,
                binary
                    .as_ref()
                    .map_or("(unset)".to_owned(), |b| b.display().to_string())
            ),
        ),
    }
    let pod = str_array(h, "pod_annotations");
    let ctr = str_array(h, "container_annotations");
    let missing: Vec<&str> = ["warren.dev/profile", "cdi.k8s.io/gpu"]
        .into_iter()
        .filter(|k| !passes(&pod, k))
        .collect();
    if missing.is_empty() {
        r.push(
            Level::Ok,
            "annotations",
            format!("pod [{}], container [{}]", pod.join(", "), ctr.join(", ")),
        );
    } else {
        r.push(
            Level::Fail,
            "annotations",
            format!(
                "pod_annotations [{}] drop {}: profiles and CDI requests would not reach the runtime",
                pod.join(", "),
                missing.join(", ")
            ),
        );
    }
    let cri = doc
        .get("plugins")
        .and_then(|p| p.get(CRI_PLUGIN))
        .and_then(Item::as_table_like);
    let enabled = cri
        .and_then(|c| c.get("enable_cdi"))
        .and_then(Item::as_bool)
        .unwrap_or(false);
    let dirs = cri
        .map(|c| str_array(c, "cdi_spec_dirs"))
        .unwrap_or_default();
    let native = version.is_some_and(|v| v >= (1, 7));
    match (enabled, native) {
        (true, true) => r.push(
            Level::Ok,
            "CDI",
            format!("enable_cdi = true, cdi_spec_dirs [{}]", dirs.join(", ")),
        ),
        (true, false) => r.push(
            Level::Warn,
            "CDI",
            "enable_cdi = true, but containerd before 1.7 has no CDI support of its own: \
             warren-runtime resolves cdi.k8s.io/* annotations itself (from /etc/cdi, /var/run/cdi)",
        ),
        (false, _) => r.push(
            Level::Fail,
            "CDI",
            "enable_cdi is not true (run `warren cri install`)",
        ),
    }
    binary
}

fn crio_status(r: &mut StatusReport, doc: &DocumentMut, o: &StatusOptions) -> Option<PathBuf> {
    let h = doc
        .get("crio")
        .and_then(|c| c.get("runtime"))
        .and_then(|c| c.get("runtimes"))
        .and_then(|c| c.get(&o.handler))
        .and_then(Item::as_table_like);
    let Some(h) = h else {
        r.push(
            Level::Fail,
            "handler",
            format!(
                "no [crio.runtime.runtimes.{}] in {} (run `warren cri install --crio`)",
                o.handler,
                o.config.display()
            ),
        );
        return None;
    };
    let path = h
        .get("runtime_path")
        .and_then(Item::as_str)
        .map(PathBuf::from);
    let rtype = h
        .get("runtime_type")
        .and_then(Item::as_str)
        .unwrap_or("oci");
    match &path {
        Some(p) if rtype == "oci" => r.push(
            Level::Ok,
            "handler",
            format!(
                "{}: runtime_type oci, runtime_path {}",
                o.handler,
                p.display()
            ),
        ),
        _ => r.push(
            Level::Fail,
            "handler",
            format!(
                "{}: runtime_type {rtype}, runtime_path {} (want oci and the warren-runtime path)",
                o.handler,
                path.as_ref()
                    .map_or("(unset)".to_owned(), |p| p.display().to_string())
            ),
        ),
    }
    r.push(
        Level::Ok,
        "CDI",
        "CRI-O (1.23 and later) resolves CDI devices itself; warren-runtime also resolves \
         cdi.k8s.io/* annotations",
    );
    path
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn h() -> Handler {
        Handler::new("warren", Path::new("/opt/warren/bin/warren-runtime"))
    }

    /// Parses `text` and returns the handler table as plain TOML values.
    fn plain(text: &str) -> toml::Table {
        text.parse::<toml::Table>().unwrap()
    }

    fn handler_of(t: &toml::Table, name: &str) -> toml::Table {
        t["plugins"][CRI_PLUGIN]["containerd"]["runtimes"][name]
            .as_table()
            .unwrap()
            .clone()
    }

    fn strs(v: &toml::Value) -> Vec<&str> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect()
    }

    const DEBIAN: &str = r#"version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"
"#;

    #[test]
    fn adds_handler_cdi_and_annotations_to_debian_default() {
        let out = edit_containerd(DEBIAN, Path::new("c.toml"), &h()).unwrap();
        // Everything that was there is still there, byte for byte.
        for line in DEBIAN.lines() {
            assert!(out.contains(line), "lost {line:?} in\n{out}");
        }
        let t = plain(&out);
        let w = handler_of(&t, "warren");
        assert_eq!(w["runtime_type"].as_str(), Some(RUNC_SHIM));
        assert_eq!(
            w["options"]["BinaryName"].as_str(),
            Some("/opt/warren/bin/warren-runtime")
        );
        assert_eq!(strs(&w["pod_annotations"]), ANNOTATIONS);
        assert_eq!(strs(&w["container_annotations"]), ANNOTATIONS);
        let cri = &t["plugins"][CRI_PLUGIN];
        assert_eq!(cri["enable_cdi"].as_bool(), Some(true));
        assert_eq!(strs(&cri["cdi_spec_dirs"]), CDI_SPEC_DIRS);
        assert_eq!(cri["cni"]["bin_dir"].as_str(), Some("/usr/lib/cni"));
    }

    #[test]
    fn new_tables_and_keys_follow_the_files_indentation() {
        let out = edit_containerd(DEBIAN, Path::new("c.toml"), &h()).unwrap();
        let want = r#"version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    enable_cdi = true
    cdi_spec_dirs = ["/etc/cdi", "/var/run/cdi"]
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "/etc/cni/net.d"

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.warren]
          runtime_type = "io.containerd.runc.v2"
          pod_annotations = ["warren.dev/*", "cdi.k8s.io/*"]
          container_annotations = ["warren.dev/*", "cdi.k8s.io/*"]

          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.warren.options]
            BinaryName = "/opt/warren/bin/warren-runtime"
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"
"#;
        assert_eq!(out, want);
        // a flat file stays flat
        let flat = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\nsandbox_image = \"p\"\n";
        let out = edit_containerd(flat, Path::new("c.toml"), &h()).unwrap();
        assert!(out.contains("\nenable_cdi = true\n"), "{out}");
        assert!(
            out.contains(
                "\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.warren]\nruntime_type"
            ),
            "{out}"
        );
    }

    #[test]
    fn second_edit_changes_nothing() {
        let once = edit_containerd(DEBIAN, Path::new("c.toml"), &h()).unwrap();
        let twice = edit_containerd(&once, Path::new("c.toml"), &h()).unwrap();
        assert_eq!(once, twice);
        assert_eq!(unified_diff(&once, &twice, "a", "b"), "");
    }

    #[test]
    fn keeps_comments_other_runtimes_and_user_annotations() {
        let src = r#"# site config: do not remove this comment
version = 2
root = "/var/lib/containerd"   # trailing comment

[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = true

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.warren]
  runtime_type = "io.containerd.runc.v2"
  pod_annotations = ["example.com/*"]
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.warren.options]
    BinaryName = "/old/warren-runtime"
    SystemdCgroup = true
"#;
        let out = edit_containerd(src, Path::new("c.toml"), &h()).unwrap();
        assert!(out.starts_with("# site config: do not remove this comment\n"));
        assert!(out.contains("root = \"/var/lib/containerd\"   # trailing comment"));
        let t = plain(&out);
        let runc = handler_of(&t, "runc");
        assert_eq!(runc["options"]["SystemdCgroup"].as_bool(), Some(true));
        let w = handler_of(&t, "warren");
        assert_eq!(
            strs(&w["pod_annotations"]),
            ["example.com/*", "warren.dev/*", "cdi.k8s.io/*"]
        );
        assert_eq!(
            w["options"]["BinaryName"].as_str(),
            Some("/opt/warren/bin/warren-runtime")
        );
        // options of ours that the admin set stay (systemd cgroups)
        assert_eq!(w["options"]["SystemdCgroup"].as_bool(), Some(true));
        assert_eq!(
            t["plugins"][CRI_PLUGIN]["containerd"]["default_runtime_name"].as_str(),
            Some("runc")
        );
    }

    #[test]
    fn inline_and_dotted_tables() {
        let inline = r#"version = 2
[plugins."io.containerd.grpc.v1.cri".containerd]
runtimes = { runc = { runtime_type = "io.containerd.runc.v2" } }
"#;
        let out = edit_containerd(inline, Path::new("c.toml"), &h()).unwrap();
        let t = plain(&out);
        assert_eq!(
            handler_of(&t, "warren")["options"]["BinaryName"].as_str(),
            Some("/opt/warren/bin/warren-runtime")
        );
        assert_eq!(
            handler_of(&t, "runc")["runtime_type"].as_str(),
            Some(RUNC_SHIM)
        );
        assert_eq!(
            out,
            edit_containerd(&out, Path::new("c.toml"), &h()).unwrap()
        );

        let dotted = r#"version = 2
[plugins."io.containerd.grpc.v1.cri"]
sandbox_image = "registry.k8s.io/pause:3.6"
containerd.runtimes.runc.runtime_type = "io.containerd.runc.v2"
"#;
        let out = edit_containerd(dotted, Path::new("c.toml"), &h()).unwrap();
        let t = plain(&out);
        assert_eq!(
            handler_of(&t, "warren")["runtime_type"].as_str(),
            Some(RUNC_SHIM)
        );
        assert_eq!(
            t["plugins"][CRI_PLUGIN]["sandbox_image"].as_str(),
            Some("registry.k8s.io/pause:3.6")
        );
        assert_eq!(
            out,
            edit_containerd(&out, Path::new("c.toml"), &h()).unwrap()
        );
    }

    #[test]
    fn empty_or_comment_only_file_becomes_version_2() {
        for src in ["", "# nothing yet\n"] {
            let out = edit_containerd(src, Path::new("c.toml"), &h()).unwrap();
            let t = plain(&out);
            assert_eq!(t["version"].as_integer(), Some(2));
            assert_eq!(
                handler_of(&t, "warren")["runtime_type"].as_str(),
                Some(RUNC_SHIM)
            );
        }
    }

    #[test]
    fn malformed_config_names_the_line() {
        let src = "version = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\"\nfoo = 1\n";
        let e = edit_containerd(src, Path::new("/etc/containerd/config.toml"), &h()).unwrap_err();
        let CriError::Parse { line, ref text, .. } = e else {
            panic!("{e:?}");
        };
        assert_eq!(line, 3);
        assert_eq!(text, "[plugins.\"io.containerd.grpc.v1.cri\"");
        let msg = e.to_string();
        assert!(
            msg.starts_with("parse /etc/containerd/config.toml: line 3, column "),
            "{msg}"
        );
        assert!(msg.contains("left untouched"), "{msg}");
    }

    #[test]
    fn refuses_version_1_and_3_and_wrong_types() {
        let e = edit_containerd(
            "[plugins.cri]\nsandbox_image = \"x\"\n",
            Path::new("c"),
            &h(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("version 1"), "{e}");
        let e = edit_containerd("version = 3\n", Path::new("c"), &h()).unwrap_err();
        assert!(e.to_string().contains("config version 3"), "{e}");
        let e = edit_containerd(
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\ncontainerd = 5\n",
            Path::new("c"),
            &h(),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("plugins.\"io.containerd.grpc.v1.cri\".containerd is integer"),
            "{e}"
        );
        let e = edit_containerd(
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\ncdi_spec_dirs = \"/etc/cdi\"\n",
            Path::new("c"),
            &h(),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("expected an array of strings"),
            "{e}"
        );
    }

    #[test]
    fn handler_names_are_dns_labels() {
        let mut bad = h();
        bad.name = "Warren.x".into();
        assert!(matches!(
            edit_containerd("", Path::new("c"), &bad),
            Err(CriError::HandlerName(_))
        ));
        let mut other = h();
        other.name = "warren-gpu".into();
        let out = edit_containerd("", Path::new("c"), &other).unwrap();
        assert!(out.contains("runtimes.warren-gpu]"), "{out}");
    }

    #[test]
    fn diff_is_unified() {
        // expected outputs are GNU diff -u's
        let a = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\n";
        let b = "a\nb\nc\nD\ne\nf\ng\nh\ni\nj\nk\nl\nm\n";
        let d = unified_diff(a, b, "x", "y");
        assert_eq!(
            d,
            "--- x\n+++ y\n@@ -1,7 +1,7 @@\n a\n b\n c\n-d\n+D\n e\n f\n g\n@@ -10,3 +10,4 @@\n j\n k\n l\n+m\n"
        );
        assert_eq!(
            unified_diff("", "x\n", "/dev/null", "f"),
            "--- /dev/null\n+++ f\n@@ -0,0 +1 @@\n+x\n"
        );
        // six unchanged lines between two changes: one hunk
        let b2 = "a\nb\nc\nD\ne\nf\ng\nh\ni\nj\nK\nl\n";
        assert_eq!(unified_diff(a, b2, "x", "y").matches("@@ -").count(), 1);
    }

    /// Does `diff` add (`+`) or remove (`-`) a line starting, after indentation, with `text`?
    fn diff_has(diff: &str, tag: char, text: &str) -> bool {
        diff.lines()
            .filter_map(|l| l.strip_prefix(tag))
            .any(|l| l.trim_start().starts_with(text))
    }

    fn fake_runtime(dir: &Path) -> PathBuf {
        let p = dir.join("warren-runtime");
        std::fs::write(&p, "#!/bin/sh\necho 'warren-runtime version 0.1.0'\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn opts(dir: &Path, engine: Engine, file: &str) -> InstallOptions {
        InstallOptions {
            engine,
            config: dir.join(file),
            handler: Handler::new("warren", &fake_runtime(dir)),
            dry_run: false,
            uninstall: false,
        }
    }

    #[test]
    fn install_backup_idempotence_and_uninstall() {
        let d = tempfile::tempdir().unwrap();
        let mut o = opts(d.path(), Engine::Containerd, "config.toml");
        std::fs::write(&o.config, DEBIAN).unwrap();
        std::fs::set_permissions(&o.config, std::fs::Permissions::from_mode(0o600)).unwrap();

        o.dry_run = true;
        let r = install(&o).unwrap();
        assert!(!r.written);
        assert!(diff_has(&r.diff, '+', "BinaryName = "), "{}", r.diff);
        assert!(diff_has(&r.diff, '+', "enable_cdi = true"), "{}", r.diff);
        assert_eq!(std::fs::read_to_string(&o.config).unwrap(), DEBIAN);
        assert!(!backup_path(&o.config).exists());

        o.dry_run = false;
        let r = install(&o).unwrap();
        assert!(r.written);
        assert_eq!(r.backup.as_deref(), Some(backup_path(&o.config).as_path()));
        assert_eq!(
            std::fs::read_to_string(backup_path(&o.config)).unwrap(),
            DEBIAN
        );
        let installed = std::fs::read_to_string(&o.config).unwrap();
        let mode = std::fs::metadata(&o.config).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        // again: nothing to do, the backup still holds the original
        let r = install(&o).unwrap();
        assert!(!r.written && r.diff.is_empty());
        assert_eq!(std::fs::read_to_string(&o.config).unwrap(), installed);
        assert_eq!(
            std::fs::read_to_string(backup_path(&o.config)).unwrap(),
            DEBIAN
        );

        o.uninstall = true;
        o.dry_run = true;
        let r = install(&o).unwrap();
        assert!(diff_has(&r.diff, '-', "BinaryName = "), "{}", r.diff);
        assert_eq!(std::fs::read_to_string(&o.config).unwrap(), installed);
        o.dry_run = false;
        install(&o).unwrap();
        assert_eq!(std::fs::read_to_string(&o.config).unwrap(), DEBIAN);
        assert!(!backup_path(&o.config).exists());
        let e = install(&o).unwrap_err();
        assert!(matches!(e, CriError::NoBackup { .. }), "{e}");
    }

    #[test]
    fn install_on_a_missing_file_and_uninstall_removes_it() {
        let d = tempfile::tempdir().unwrap();
        let mut o = opts(d.path(), Engine::Containerd, "etc/containerd/config.toml");
        let r = install(&o).unwrap();
        assert!(r.written);
        assert!(r.diff.starts_with("--- /dev/null\n"), "{}", r.diff);
        assert!(o.config.exists());
        o.uninstall = true;
        install(&o).unwrap();
        assert!(!o.config.exists());
        assert!(!backup_path(&o.config).exists());
    }

    #[test]
    fn malformed_file_is_left_untouched() {
        let d = tempfile::tempdir().unwrap();
        let o = opts(d.path(), Engine::Containerd, "config.toml");
        let bad = "version = 2\n[plugins\nx = 1\n";
        std::fs::write(&o.config, bad).unwrap();
        let e = install(&o).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        assert_eq!(std::fs::read_to_string(&o.config).unwrap(), bad);
        assert!(!backup_path(&o.config).exists());
        let leftovers: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("config"))
            .collect();
        assert_eq!(leftovers, ["config.toml"]);
    }

    #[test]
    fn install_refuses_a_missing_runtime() {
        let d = tempfile::tempdir().unwrap();
        let mut o = opts(d.path(), Engine::Containerd, "config.toml");
        o.handler.runtime = d.path().join("nope");
        assert!(matches!(install(&o), Err(CriError::Runtime { .. })));
        o.handler.runtime = PathBuf::from("warren-runtime");
        assert!(matches!(install(&o), Err(CriError::Runtime { .. })));
        assert!(!o.config.exists());
    }

    #[test]
    fn crio_dropin_install_and_uninstall() {
        let d = tempfile::tempdir().unwrap();
        let mut o = opts(d.path(), Engine::Crio, "crio.conf.d/99-warren.conf");
        let r = install(&o).unwrap();
        assert!(r.written);
        let text = std::fs::read_to_string(&o.config).unwrap();
        let t = plain(&text);
        let w = t["crio"]["runtime"]["runtimes"]["warren"]
            .as_table()
            .unwrap();
        assert_eq!(
            w["runtime_path"].as_str(),
            Some(o.handler.runtime.to_str().unwrap())
        );
        assert_eq!(w["runtime_type"].as_str(), Some("oci"));
        assert_eq!(w["runtime_root"].as_str(), Some("/run/warren-runtime"));
        assert_eq!(strs(&w["allowed_annotations"]), ANNOTATIONS);
        // idempotent
        let r = install(&o).unwrap();
        assert!(!r.written && r.diff.is_empty());
        // a path change shows as a one-line diff
        o.handler.runtime = fake_runtime(&d.path().join("crio.conf.d"));
        o.dry_run = true;
        let r = install(&o).unwrap();
        assert_eq!(
            r.diff
                .lines()
                .filter(|l| l.starts_with("+runtime_path"))
                .count(),
            1
        );
        o.dry_run = false;
        o.uninstall = true;
        install(&o).unwrap();
        assert!(!o.config.exists());
    }

    #[test]
    fn crio_replaces_an_existing_dropin_and_restores_it() {
        let d = tempfile::tempdir().unwrap();
        let mut o = opts(d.path(), Engine::Crio, "99-warren.conf");
        let old = "[crio.runtime]\nlog_level = \"info\"\n";
        std::fs::write(&o.config, old).unwrap();
        install(&o).unwrap();
        assert_eq!(
            std::fs::read_to_string(backup_path(&o.config)).unwrap(),
            old
        );
        o.uninstall = true;
        install(&o).unwrap();
        assert_eq!(std::fs::read_to_string(&o.config).unwrap(), old);
        std::fs::write(&o.config, "[crio\n").unwrap();
        o.uninstall = false;
        let e = install(&o).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
    }

    #[test]
    fn default_runtime_beside_warren_then_path() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let path = std::env::join_paths([&a, &b]).unwrap();
        let fallback = PathBuf::from("/usr/local/bin/warren-runtime");
        assert_eq!(default_runtime(Some(&a), Some(&path)), fallback);
        let in_b = fake_runtime(&b);
        assert_eq!(default_runtime(Some(d.path()), Some(&path)), in_b);
        let beside = fake_runtime(d.path());
        assert_eq!(default_runtime(Some(d.path()), Some(&path)), beside);
        assert_eq!(default_runtime(None, None), fallback);
    }

    #[test]
    fn runtime_class_manifest() {
        assert_eq!(
            runtime_class("warren"),
            "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata:\n  name: warren\nhandler: warren\n"
        );
    }

    #[test]
    fn annotation_patterns_match_like_containerd() {
        let p = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(passes(&p(&["warren.dev/*"]), "warren.dev/profile"));
        assert!(!passes(&p(&["warren.dev/*"]), "warren.dev/a/b"));
        assert!(passes(&p(&["*"]), "cdi"));
        assert!(!passes(&p(&["*"]), "cdi.k8s.io/gpu"));
        assert!(passes(&p(&["cdi.k8s.io/*"]), "cdi.k8s.io/gpu"));
        assert!(!passes(&p(&["example.com/*"]), "warren.dev/profile"));
    }

    #[test]
    fn versions() {
        assert_eq!(
            parse_version("containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1"),
            Some((1, 6))
        );
        assert_eq!(
            parse_version("containerd containerd.io v1.7.13 7c3aca7"),
            Some((1, 7))
        );
        assert_eq!(parse_version("crio version 1.29.1"), Some((1, 29)));
        assert_eq!(parse_version("nothing"), None);
    }

    fn fake_engine(dir: &Path, line: &str) -> PathBuf {
        let p = dir.join("engine");
        std::fs::write(&p, format!("#!/bin/sh\necho '{line}'\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn status_of_an_installed_node() {
        let d = tempfile::tempdir().unwrap();
        let o = opts(d.path(), Engine::Containerd, "config.toml");
        std::fs::write(&o.config, DEBIAN).unwrap();
        let mut s = StatusOptions {
            engine: Engine::Containerd,
            config: o.config.clone(),
            handler: "warren".into(),
            engine_binary: fake_engine(
                d.path(),
                "containerd github.com/containerd/containerd 1.6.20~ds1 x",
            ),
        };
        let before = status(&s);
        assert!(!before.ok());
        assert!(before.render().contains("FAIL handler: no runtime handler"));
        install(&o).unwrap();
        let r = status(&s);
        assert!(r.ok(), "{}", r.render());
        let text = r.render();
        assert!(
            text.contains(
                "ok   containerd: containerd github.com/containerd/containerd 1.6.20~ds1"
            )
        );
        assert!(
            text.contains("warn CDI: enable_cdi = true, but containerd before 1.7"),
            "{text}"
        );
        assert!(text.contains("ok   warren-runtime: "), "{text}");
        assert!(text.contains("warren-runtime version 0.1.0"), "{text}");
        s.engine_binary = fake_engine(d.path(), "containerd containerd.io v1.7.13 x");
        assert!(
            status(&s)
                .render()
                .contains("ok   CDI: enable_cdi = true, cdi_spec_dirs [/etc/cdi, /var/run/cdi]")
        );
        s.engine_binary = d.path().join("no-containerd");
        assert!(!status(&s).ok());
    }

    #[test]
    fn status_flags_filtered_annotations() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("c.toml");
        let rt = fake_runtime(d.path());
        std::fs::write(
            &cfg,
            format!(
                "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\nenable_cdi = true\n\
                 [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.warren]\n\
                 runtime_type = \"io.containerd.runc.v2\"\n\
                 [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.warren.options]\n\
                 BinaryName = \"{}\"\n",
                rt.display()
            ),
        )
        .unwrap();
        let s = StatusOptions {
            engine: Engine::Containerd,
            config: cfg,
            handler: "warren".into(),
            engine_binary: fake_engine(d.path(), "containerd x 1.7.0 y"),
        };
        let r = status(&s);
        assert!(!r.ok());
        assert!(
            r.render()
                .contains("drop warren.dev/profile, cdi.k8s.io/gpu"),
            "{}",
            r.render()
        );
    }

    #[test]
    fn crio_status() {
        let d = tempfile::tempdir().unwrap();
        let o = opts(d.path(), Engine::Crio, "99-warren.conf");
        install(&o).unwrap();
        let s = StatusOptions {
            engine: Engine::Crio,
            config: o.config.clone(),
            handler: "warren".into(),
            engine_binary: fake_engine(d.path(), "crio version 1.29.1"),
        };
        let r = status(&s);
        assert!(r.ok(), "{}", r.render());
        assert!(
            r.render()
                .contains("ok   handler: warren: runtime_type oci")
        );
    }
}
