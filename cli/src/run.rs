//! `warren run`: options → a validated plan → an OCI spec → the runtime library, in this
//! process (foreground) or in a detached monitor ([`crate::detach`]).

use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::{
    LinuxCpuBuilder, LinuxMemoryBuilder, LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxPidsBuilder, Mount, MountBuilder, Spec,
};
use warren_runtime::verbs::create::CreateOpts;
use warren_runtime::verbs::run::RunOpts;

use crate::hostview;
use crate::state::{self, FORMAT, Record, Roots, StateError};

/// Errors of `warren run`, each naming the offending option.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("invalid {flag} {value:?}: {msg}")]
    Option {
        flag: &'static str,
        value: String,
        msg: String,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Runtime(#[from] warren_runtime::RuntimeError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("build spec: {0}")]
    Spec(String),
    #[error("profile: {0}")]
    Profile(String),
    #[error("no NVIDIA GPUs found: {0}")]
    NoGpu(String),
    #[error("devices: {0}")]
    Device(String),
    #[error("image {0} not found in the store")]
    ImageNotFound(String),
    #[error("image {name}: {msg}")]
    Image { name: String, msg: String },
    #[error("start detached sandbox: {0}")]
    Detach(String),
}

type Result<T> = std::result::Result<T, RunError>;

fn spec_err(e: impl std::fmt::Display) -> RunError {
    RunError::Spec(e.to_string())
}

/// Network of the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// Own network namespace, no connectivity (the default).
    #[default]
    None,
    /// Own network namespace with loopback only; published ports come later.
    Private,
    /// The host's network namespace.
    Host,
}

impl Network {
    /// The flag value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Private => "private",
            Self::Host => "host",
        }
    }
}

impl std::str::FromStr for Network {
    type Err = RunError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Self::None),
            "private" => Ok(Self::Private),
            "host" => Ok(Self::Host),
            _ => Err(RunError::Option {
                flag: "--network",
                value: s.into(),
                msg: "expected none, private or host".into(),
            }),
        }
    }
}

/// A `-v HOST:CONTAINER[:ro|rw]` volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub host: PathBuf,
    pub container: PathBuf,
    pub read_only: bool,
}

impl Volume {
    /// Parses `HOST:CONTAINER[:ro|rw]`; HOST may be relative to `cwd`.
    pub fn parse(s: &str, cwd: &Path) -> Result<Self> {
        let bad = |msg: &str| RunError::Option {
            flag: "-v",
            value: s.into(),
            msg: msg.into(),
        };
        let parts: Vec<&str> = s.split(':').collect();
        let (h, c, mode) = match parts.as_slice() {
            [h, c] => (*h, *c, "rw"),
            [h, c, m] => (*h, *c, *m),
            _ => return Err(bad("expected HOST:CONTAINER[:ro|rw]")),
        };
        let read_only = match mode {
            "ro" => true,
            "rw" => false,
            _ => return Err(bad("the mode must be ro or rw")),
        };
        if h.is_empty() || c.is_empty() {
            return Err(bad("both paths are required"));
        }
        let container = PathBuf::from(c);
        if !container.is_absolute() {
            return Err(bad("the container path must be absolute"));
        }
        if container
            .components()
            .any(|c| c == std::path::Component::ParentDir)
        {
            return Err(bad("the container path must not contain .."));
        }
        let host = cwd.join(h);
        let host = std::fs::canonicalize(&host)
            .map_err(|e| bad(&format!("host path {}: {e}", host.display())))?;
        Ok(Self {
            host,
            container,
            read_only,
        })
    }
}

/// Parses a size like `512m`, `2g`.
pub fn parse_size(flag: &'static str, s: &str) -> Result<i64> {
    let v = warren_runtime::verbs::update::parse_bytes(s).map_err(|e| RunError::Option {
        flag,
        value: s.into(),
        msg: e.to_string(),
    })?;
    if v <= 0 {
        return Err(RunError::Option {
            flag,
            value: s.into(),
            msg: "must be a positive size such as 512m or 2g".into(),
        });
    }
    Ok(v)
}

/// Parses `UID[:GID]` (numeric).
pub fn parse_user(s: &str) -> Result<(u32, u32)> {
    let (u, g) = s.split_once(':').unwrap_or((s, s));
    let bad = || RunError::Option {
        flag: "--user",
        value: s.into(),
        msg: "expected UID[:GID] as numbers".into(),
    };
    Ok((u.parse().map_err(|_| bad())?, g.parse().map_err(|_| bad())?))
}

/// Parses an env file: `KEY=value` lines; `#` comments and blank lines are skipped; a
/// bare `KEY` takes its value from `lookup` (the caller's environment) or is dropped.
pub fn parse_env_file(path: &Path, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|source| RunError::Io {
        op: "read env file",
        path: path.to_owned(),
        source,
    })?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let l = line.trim_start();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        match l.split_once('=') {
            Some((k, _)) if k.is_empty() || k.contains(char::is_whitespace) => {
                return Err(RunError::Option {
                    flag: "--env-file",
                    value: format!("{}:{}", path.display(), n + 1),
                    msg: format!("bad variable name in {line:?}"),
                });
            }
            Some(_) => out.push(l.to_owned()),
            None => {
                if let Some(v) = lookup(l.trim()) {
                    out.push(format!("{}={v}", l.trim()));
                }
            }
        }
    }
    Ok(out)
}

/// A profile by built-in name or file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileRef {
    Builtin(String),
    File(PathBuf),
}

impl ProfileRef {
    /// `agent` is a built-in; anything with a `/` or ending in `.toml` is a file.
    pub fn parse(s: &str) -> Self {
        if s.contains('/') || s.ends_with(".toml") {
            Self::File(PathBuf::from(s))
        } else {
            Self::Builtin(s.to_owned())
        }
    }

    /// Loads the profile.
    pub fn load(&self) -> Result<warren_sandbox::profile::Profile> {
        match self {
            Self::Builtin(n) => warren_sandbox::profile::load_builtin(n),
            Self::File(p) => warren_sandbox::profile::load_file(p),
        }
        .map_err(|e| RunError::Profile(e.to_string()))
    }

    /// How the record stores it.
    pub fn to_record(&self) -> String {
        match self {
            Self::Builtin(n) => n.clone(),
            Self::File(p) => p.display().to_string(),
        }
    }
}

/// What to run and how (validated values; `main.rs` builds it from the flags).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub name: Option<String>,
    pub command: Vec<String>,
    pub env: Vec<String>,
    /// Host directory mounted read-write as the workspace (and the working directory).
    pub workspace: PathBuf,
    pub volumes: Vec<Volume>,
    pub tmpfs: Vec<PathBuf>,
    pub user: Option<(u32, u32)>,
    pub memory: Option<i64>,
    pub cpus: Option<f64>,
    pub pids_limit: Option<i64>,
    pub read_only: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// None: the profile's network, or `none`.
    pub network: Option<Network>,
    pub tty: bool,
    pub interactive: bool,
    pub detach: bool,
    /// Remove the sandbox when it exits (a foreground run always is).
    pub auto_remove: bool,
    pub profile: Option<ProfileRef>,
    /// `--gpus`: `all`, a count, or `device=0,1` / a list of indices or UUIDs.
    pub gpus: Option<String>,
    /// `--device vendor/class=name` (CDI).
    pub devices: Vec<String>,
    pub image: Option<String>,
    /// Log size cap of a detached sandbox.
    pub log_max: u64,
    /// Set by script mode: what the script was mapped to (for `ps`/`inspect`).
    pub script: Option<String>,
}

/// Capabilities a sandbox gets by default (podman's set).
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

fn cap_name(c: &str) -> String {
    let up = c.to_ascii_uppercase();
    if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

fn mount(dst: &Path, typ: &str, src: &Path, opts: &[&str]) -> Result<Mount> {
    MountBuilder::default()
        .destination(dst.to_owned())
        .typ(typ)
        .source(src.to_owned())
        .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(spec_err)
}

fn all_caps() -> Vec<String> {
    warren_runtime::verbs::features::features(&Vec::new())["linux"]["capabilities"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn known_cap(c: &str) -> bool {
    serde_json::from_value::<libcontainer::oci_spec::runtime::Capability>(
        serde_json::Value::String(c.to_owned()),
    )
    .is_ok()
}

/// Image settings that shape the spec.
#[derive(Debug, Clone, Default)]
pub struct ImageSettings {
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub user: Option<(u32, u32)>,
}

/// Builds the spec. `rootfs` is the root (the host view's empty directory, or an image's
/// mounted overlay when `image` is given); the profile is applied before the flags, so
/// flags win.
pub fn build_spec(
    o: &RunOptions,
    rootfs: &Path,
    image: Option<&ImageSettings>,
    profile: Option<&warren_sandbox::profile::Profile>,
) -> Result<Spec> {
    let mut args: Vec<String> = image.map(|i| i.entrypoint.clone()).unwrap_or_default();
    if o.command.is_empty() {
        args.extend(image.map(|i| i.cmd.clone()).unwrap_or_default());
    } else {
        args.extend(o.command.iter().cloned());
    }
    if args.is_empty() {
        return Err(RunError::Option {
            flag: "COMMAND",
            value: String::new(),
            msg: "nothing to run: give a command after --".into(),
        });
    }
    let workspace_in = profile
        .and_then(|p| p.workspace.clone())
        .unwrap_or_else(|| o.workspace.clone());
    let mut v = warren_runtime::verbs::spec::default_spec(false, 0, 0);
    v["process"]["terminal"] = o.tty.into();
    v["process"]["args"] = serde_json::json!(args);
    let mut env: Vec<String> = Vec::new();
    let mut set_env = |e: &str| {
        let key = e.split('=').next().unwrap_or(e);
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.to_owned());
    };
    set_env("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    set_env("HOME=/tmp");
    set_env("LANG=C.UTF-8");
    if let Some(i) = image {
        for e in &i.env {
            set_env(e);
        }
    }
    if o.tty {
        set_env("TERM=xterm-256color");
    }
    for e in &o.env {
        if !e.contains('=') || e.starts_with('=') {
            return Err(RunError::Option {
                flag: "-e",
                value: e.clone(),
                msg: "expected KEY=value".into(),
            });
        }
        set_env(e);
    }
    v["process"]["env"] = serde_json::json!(env);
    v["process"]["cwd"] = serde_json::json!(workspace_in);
    v["process"]["rlimits"] = serde_json::json!([]);
    if let Some((uid, gid)) = o.user.or(image.and_then(|i| i.user)) {
        v["process"]["user"] = serde_json::json!({"uid": uid, "gid": gid});
    }
    let caps: Vec<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
    v["process"]["capabilities"] =
        serde_json::json!({"bounding": caps, "effective": caps, "permitted": caps});
    v["root"] = serde_json::json!({"path": rootfs, "readonly": image.is_none() || o.read_only});
    let mut spec: Spec = serde_json::from_value(v).map_err(spec_err)?;

    let mut mounts = spec.mounts().clone().unwrap_or_default();
    if image.is_none() {
        let view = hostview::build(Path::new("/"));
        for (name, target) in &view.symlinks {
            let link = rootfs.join(name);
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(target, &link).map_err(|source| RunError::Io {
                    op: "symlink",
                    path: link,
                    source,
                })?;
            }
        }
        mounts.extend(view.mounts);
    } else {
        mounts.push(mount(
            Path::new("/tmp"),
            "tmpfs",
            Path::new("tmpfs"),
            &["nosuid", "nodev", "mode=1777"],
        )?);
    }
    let ws_mode = if o.read_only { "ro" } else { "rw" };
    mounts.push(mount(
        &workspace_in,
        "bind",
        &o.workspace,
        &["rbind", ws_mode, "nosuid", "nodev", "rprivate"],
    )?);
    for vol in &o.volumes {
        let mode = if vol.read_only { "ro" } else { "rw" };
        mounts.push(mount(
            &vol.container,
            "bind",
            &vol.host,
            &["rbind", mode, "nosuid", "nodev", "rprivate"],
        )?);
    }
    for t in &o.tmpfs {
        if !t.is_absolute() {
            return Err(RunError::Option {
                flag: "--tmpfs",
                value: t.display().to_string(),
                msg: "must be an absolute path".into(),
            });
        }
        mounts.push(mount(
            t,
            "tmpfs",
            Path::new("tmpfs"),
            &["nosuid", "nodev", "mode=1777"],
        )?);
    }
    spec.set_mounts(Some(mounts));

    if let Some(p) = profile {
        warren_sandbox::spec::apply_profile(p, &mut spec)
            .map_err(|e| RunError::Profile(e.to_string()))?;
        for w in warren_runtime::sandbox::clamp_rlimits(&mut spec) {
            tracing::warn!(profile = %p.name, "{w}");
        }
        // The runtime installs the profile's seccomp filter and Landlock rules in the
        // init; it finds the profile through this annotation.
        if let Some(r) = &o.profile {
            let name = match r {
                ProfileRef::Builtin(n) => n.clone(),
                ProfileRef::File(f) => std::fs::canonicalize(f)
                    .unwrap_or_else(|_| f.clone())
                    .display()
                    .to_string(),
            };
            spec.annotations_mut()
                .get_or_insert_with(Default::default)
                .insert(warren_runtime::sandbox::REQUEST_ANNOTATION.to_owned(), name);
        }
    }
    apply_caps(&mut spec, o)?;
    apply_network(&mut spec, o, profile)?;
    apply_resources(&mut spec, o)?;
    spec.set_hostname(Some(o.name.clone().unwrap_or_else(|| "warren".into())));
    Ok(spec)
}

fn apply_caps(spec: &mut Spec, o: &RunOptions) -> Result<()> {
    if o.cap_add.is_empty() && o.cap_drop.is_empty() {
        return Ok(());
    }
    let mut v = serde_json::to_value(&*spec).map_err(spec_err)?;
    let mut caps: Vec<String> = v["process"]["capabilities"]["bounding"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    for (flag, list) in [("--cap-add", &o.cap_add), ("--cap-drop", &o.cap_drop)] {
        for c in list.iter() {
            let c = cap_name(c);
            if c != "CAP_ALL" && !known_cap(&c) {
                return Err(RunError::Option {
                    flag,
                    value: c,
                    msg: "not a known capability".into(),
                });
            }
            match (flag, c.as_str()) {
                ("--cap-add", "CAP_ALL") => caps = all_caps(),
                ("--cap-add", _) if !caps.contains(&c) => caps.push(c),
                ("--cap-drop", "CAP_ALL") => caps.clear(),
                ("--cap-drop", _) => caps.retain(|x| *x != c),
                _ => {}
            }
        }
    }
    v["process"]["capabilities"] =
        serde_json::json!({"bounding": caps, "effective": caps, "permitted": caps});
    *spec = serde_json::from_value(v).map_err(spec_err)?;
    Ok(())
}

fn apply_network(
    spec: &mut Spec,
    o: &RunOptions,
    profile: Option<&warren_sandbox::profile::Profile>,
) -> Result<()> {
    let Some(net) = o.network.or(if profile.is_some() {
        None
    } else {
        Some(Network::None)
    }) else {
        return Ok(());
    };
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut nss: Vec<LinuxNamespace> = linux.namespaces().clone().unwrap_or_default();
    nss.retain(|n| n.typ() != LinuxNamespaceType::Network);
    if net != Network::Host {
        nss.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Network)
                .build()
                .map_err(spec_err)?,
        );
    }
    linux.set_namespaces(Some(nss));
    spec.set_linux(Some(linux));
    let mut ann = spec.annotations().clone().unwrap_or_default();
    let mode = match net {
        Network::None => "none",
        Network::Private => "loopback",
        Network::Host => "host",
    };
    ann.insert(warren_sandbox::spec::NETWORK_ANNOTATION.into(), mode.into());
    spec.set_annotations(Some(ann));
    Ok(())
}

fn apply_resources(spec: &mut Spec, o: &RunOptions) -> Result<()> {
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut res = linux.resources().clone().unwrap_or_default();
    if let Some(m) = o.memory {
        let mut mem = (*res.memory()).unwrap_or_default();
        mem.set_limit(Some(m));
        res.set_memory(Some(mem));
    } else if res.memory().is_none() {
        res.set_memory(Some(
            LinuxMemoryBuilder::default().build().map_err(spec_err)?,
        ));
    }
    if let Some(c) = o.cpus {
        if c <= 0.0 || !c.is_finite() {
            return Err(RunError::Option {
                flag: "--cpus",
                value: c.to_string(),
                msg: "must be a positive number".into(),
            });
        }
        let period = 100_000u64;
        res.set_cpu(Some(
            LinuxCpuBuilder::default()
                .period(period)
                .quota(((c * period as f64) as i64).max(1000))
                .build()
                .map_err(spec_err)?,
        ));
    }
    if let Some(p) = o.pids_limit {
        if p <= 0 {
            return Err(RunError::Option {
                flag: "--pids-limit",
                value: p.to_string(),
                msg: "must be positive".into(),
            });
        }
        res.set_pids(Some(
            LinuxPidsBuilder::default()
                .limit(p)
                .build()
                .map_err(spec_err)?,
        ));
    }
    linux.set_resources(Some(res));
    spec.set_linux(Some(linux));
    Ok(())
}

/// Turns `--gpus` into an `NVIDIA_VISIBLE_DEVICES` value.
pub fn gpus_to_visible(g: &str) -> Result<String> {
    let g = g.trim();
    let bad = |msg: &str| RunError::Option {
        flag: "--gpus",
        value: g.into(),
        msg: msg.into(),
    };
    if g.is_empty() {
        return Err(bad("expected all, a count, or device=LIST"));
    }
    if g == "all" || g == "none" {
        return Ok(g.into());
    }
    if let Ok(n) = g.parse::<u32>() {
        if n == 0 {
            return Err(bad("a count must be at least 1"));
        }
        return Ok((0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(","));
    }
    let list = g.strip_prefix("device=").unwrap_or(g).trim_matches('"');
    if list.is_empty() {
        return Err(bad("empty device list"));
    }
    Ok(list.to_owned())
}

/// Adds the GPUs and CDI devices asked for; returns the rootfs work the NVIDIA setup
/// needs (symlinks, ld.so.conf entry), which the caller applies to an image rootfs.
pub fn inject_devices(spec: &mut Spec, o: &RunOptions) -> Result<warren_gpu::nvidia::RootfsSetup> {
    let mut setup = warren_gpu::nvidia::RootfsSetup::default();
    let mut names: Vec<warren_gpu::cdi::QualifiedName> = Vec::new();
    for d in &o.devices {
        let q = d
            .parse::<warren_gpu::cdi::QualifiedName>()
            .map_err(|e| RunError::Option {
                flag: "--device",
                value: d.clone(),
                msg: format!("expected a CDI name vendor/class=name: {e}"),
            })?;
        names.push(q);
    }
    if let Some(g) = &o.gpus {
        let visible = gpus_to_visible(g)?;
        let env = vec![
            format!("NVIDIA_VISIBLE_DEVICES={visible}"),
            "NVIDIA_DRIVER_CAPABILITIES=compute,utility".to_owned(),
        ];
        let (req, cdi) =
            warren_gpu::requests::nvidia_request_from_env(&env).map_err(|e| RunError::Option {
                flag: "--gpus",
                value: g.clone(),
                msg: e.to_string(),
            })?;
        names.extend(cdi);
        if let Some(req) = req {
            match warren_gpu::nvidia::inject_request(
                spec,
                &req,
                &warren_gpu::nvidia::NvidiaRoots::host(),
                warren_gpu::nvidia::HookStyle::Builtin,
            ) {
                Ok(s) => setup.merge(s),
                Err(warren_gpu::nvidia::Error::NotPresent(reason)) => {
                    return Err(RunError::NoGpu(reason));
                }
                Err(e) => return Err(RunError::Device(e.to_string())),
            }
        }
    }
    if !names.is_empty() {
        let registry = warren_gpu::cdi::Registry::load(&warren_gpu::cdi::DEFAULT_SPEC_DIRS);
        for e in registry.errors() {
            tracing::warn!(error = %e, "CDI spec skipped");
        }
        registry
            .inject(spec, &names)
            .map_err(|e| RunError::Device(e.to_string()))?;
    }
    Ok(setup)
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    // SAFETY: getrandom(2) fills our buffer of the given length.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n < 0 || n as usize != b.len() {
        // Fall back to time and pid: ids need to be unique, not secret.
        let (s, ns) = crate::timefmt::now();
        let x = (u128::from(s) << 64) ^ (u128::from(ns) << 32) ^ u128::from(std::process::id());
        return format!("{x:032x}")[..bytes * 2].to_owned();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A sandbox ready to be created: its record is saved and its name reserved; dropping
/// it without [`Prepared::keep`] removes everything it made.
#[derive(Debug)]
pub struct Prepared {
    pub roots: Roots,
    pub record: Record,
    pub bundle: PathBuf,
    /// Log size cap for the monitor.
    pub log_max: u64,
    kept: bool,
}

impl Prepared {
    /// Keeps the state (the sandbox now exists).
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if !self.kept {
            crate::remove::remove_state(&self.roots, &self.record);
        }
    }
}

/// Validates the options and writes the sandbox's record, name and bundle.
pub fn prepare(roots: &Roots, o: &RunOptions) -> Result<Prepared> {
    let id = random_hex(16);
    let name = o.name.clone().unwrap_or_else(|| format!("w-{}", &id[..8]));
    state::validate_name(&name)?;
    // Everything cheap to check comes before anything touches the disk.
    let profile = o.profile.as_ref().map(ProfileRef::load).transpose()?;
    if let Some(g) = &o.gpus {
        gpus_to_visible(g)?;
    }
    if let Some(img) = &o.image {
        warren_images::normalize_name(img).map_err(|e| RunError::Image {
            name: img.clone(),
            msg: e.to_string(),
        })?;
    }
    for d in [roots.data_dir(&id), roots.run_dir(&id)] {
        std::fs::create_dir_all(&d).map_err(|source| RunError::Io {
            op: "create",
            path: d.clone(),
            source,
        })?;
    }
    let record = Record {
        format: FORMAT,
        id: id.clone(),
        name: name.clone(),
        created: crate::timefmt::now().0,
        command: o.command.clone(),
        image: o.image.clone(),
        profile: o.profile.as_ref().map(ProfileRef::to_record),
        gpus: o.gpus.clone(),
        devices: o.devices.clone(),
        detached: o.detach,
        auto_remove: o.auto_remove || !o.detach,
        tty: o.tty,
        workspace: o.workspace.clone(),
        network: o
            .network
            .map(|n| n.as_str().to_owned())
            .unwrap_or_else(|| match &profile {
                Some(p) => format!("{:?}", p.network).to_lowercase(),
                None => "none".into(),
            }),
        memory: o.memory,
        cpus: o.cpus,
        pids_limit: o.pids_limit,
        script: o.script.clone(),
        user: o.user,
    };
    let bundle = roots.run_dir(&id).join("bundle");
    std::fs::create_dir_all(&bundle).map_err(|source| RunError::Io {
        op: "create",
        path: bundle.clone(),
        source,
    })?;
    let p = Prepared {
        roots: roots.clone(),
        record,
        bundle: bundle.clone(),
        log_max: if o.log_max == 0 {
            crate::monitor::DEFAULT_LOG_MAX
        } else {
            o.log_max
        },
        kept: false,
    };
    // The record first (so that a failure below is cleaned up by name and id), then the
    // name: a conflict leaves nothing behind.
    p.record.save(roots)?;
    state::reserve_name(roots, &name, &id)?;

    let (rootfs, image) = match &o.image {
        Some(img) => {
            let (rootfs, settings) = image_rootfs(roots, img, &id, o.read_only, o.auto_remove)?;
            (rootfs, Some(settings))
        }
        None => {
            let r = bundle.join("rootfs");
            std::fs::create_dir_all(&r).map_err(|source| RunError::Io {
                op: "create",
                path: r.clone(),
                source,
            })?;
            (r, None)
        }
    };
    let mut spec = build_spec(o, &rootfs, image.as_ref(), profile.as_ref())?;
    let setup = inject_devices(&mut spec, o)?;
    if image.is_some() && !setup.is_empty() {
        setup
            .apply(&rootfs)
            .map_err(|e| RunError::Device(e.to_string()))?;
    }
    let cfg = bundle.join("config.json");
    let data = serde_json::to_vec_pretty(&spec).map_err(spec_err)?;
    std::fs::write(&cfg, data).map_err(|source| RunError::Io {
        op: "write",
        path: cfg.clone(),
        source,
    })?;
    Ok(p)
}

fn image_rootfs(
    roots: &Roots,
    img: &str,
    id: &str,
    read_only: bool,
    auto_remove: bool,
) -> Result<(PathBuf, ImageSettings)> {
    let store = warren_images::Store::open(&roots.data_root).map_err(|e| RunError::Image {
        name: img.into(),
        msg: e.to_string(),
    })?;
    // A curated image is also found by its recipe name (`python` → `warren/python`).
    let candidates = [img.to_owned(), format!("warren/{img}")];
    let Some((name, image)) = candidates
        .iter()
        .find_map(|n| store.image(n).ok().map(|i| (n.clone(), i)))
    else {
        return Err(RunError::ImageNotFound(img.into()));
    };
    let cfg = image.config.config().clone().unwrap_or_default();
    let user = cfg.user().as_deref().and_then(|u| parse_user(u).ok());
    let settings = ImageSettings {
        env: cfg.env().clone().unwrap_or_default(),
        entrypoint: cfg.entrypoint().clone().unwrap_or_default(),
        cmd: cfg.cmd().clone().unwrap_or_default(),
        user,
    };
    let r = store
        .create_rootfs(
            &name,
            id,
            warren_images::RootfsOptions {
                readonly: read_only,
                // `--rm`: the writable layer dies with the container, so skip its syncs.
                volatile: auto_remove,
            },
        )
        .map_err(|e| RunError::Image {
            name: name.clone(),
            msg: e.to_string(),
        })?;
    Ok((r.merged, settings))
}

/// Whether an image is in the store under `name` or `warren/name`.
pub fn image_exists(data_root: &Path, name: &str) -> bool {
    let Ok(store) = warren_images::Store::open(data_root) else {
        return false;
    };
    store.image(name).is_ok() || store.image(&format!("warren/{name}")).is_ok()
}

/// Exit code of a failed start: 127 when the command does not exist, 126 when it cannot
/// be executed, else 125 (warren's own error).
pub fn start_error_code(e: &RunError) -> i32 {
    let msg = e.to_string();
    if msg.contains("executable file not found") || msg.contains("no such file or directory") {
        127
    } else if msg.contains("permission denied") || msg.contains("exec format error") {
        126
    } else {
        crate::exit::WARREN_ERROR
    }
}

fn create_opts(p: &Prepared) -> CreateOpts {
    CreateOpts {
        id: p.record.id.clone(),
        bundle: p.bundle.clone(),
        ..Default::default()
    }
}

/// Runs in the foreground and returns the command's exit code.
pub fn run_foreground(p: Prepared) -> Result<i32> {
    let rt = p.roots.runtime();
    let (id, name) = (p.record.id.clone(), p.record.name.clone());
    state::append_event(&p.roots, "create", &id, &name, None);
    let opts = RunOpts {
        create: create_opts(&p),
        detach: false,
        keep: false,
        no_subreaper: false,
    };
    state::append_event(&p.roots, "start", &id, &name, None);
    let r = warren_runtime::verbs::run::run(&rt, &opts);
    if let Ok(code) = &r {
        state::append_event(&p.roots, "die", &id, &name, Some(*code));
    }
    state::append_event(&p.roots, "rm", &id, &name, None);
    // Dropping `p` removes the record, the name and the bundle.
    drop(p);
    Ok(r?)
}

/// Starts a detached sandbox under its own monitor; returns its id once it runs.
pub fn run_detached(p: Prepared, exe: &Path) -> Result<String> {
    let id = p.record.id.clone();
    crate::detach::spawn(&p, &create_opts(&p), exe).map_err(RunError::Detach)?;
    p.keep();
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_parse_and_name_errors() {
        let d = tempfile::tempdir().expect("tmp");
        let v = Volume::parse(&format!("{}:/data:ro", d.path().display()), Path::new("/"))
            .expect("parse");
        assert!(v.read_only);
        assert_eq!(v.container, PathBuf::from("/data"));
        for bad in [
            "x",
            "a:b:c:d",
            "/nonexistent-warren:/d",
            "/tmp:rel",
            "/tmp:/d:rx",
            "/tmp:/a/../b",
        ] {
            let e = Volume::parse(bad, Path::new("/")).expect_err(bad);
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn sizes_users_and_gpus() {
        assert_eq!(parse_size("--memory", "512m").expect("m"), 512 << 20);
        for bad in ["", "abc", "12q", "-5m", "0"] {
            assert!(parse_size("--memory", bad).is_err(), "{bad}");
        }
        assert_eq!(parse_user("1000").expect("u"), (1000, 1000));
        assert_eq!(parse_user("1:2").expect("u"), (1, 2));
        assert!(parse_user("bob").is_err());
        assert_eq!(gpus_to_visible("all").expect("all"), "all");
        assert_eq!(gpus_to_visible("2").expect("2"), "0,1");
        assert_eq!(gpus_to_visible("device=1,3").expect("dev"), "1,3");
        assert!(gpus_to_visible("0").is_err());
    }

    #[test]
    fn env_files() {
        let d = tempfile::tempdir().expect("tmp");
        let f = d.path().join("env");
        std::fs::write(&f, "# c\nA=1\n\nB=x=y\nHOSTVAR\nMISSING\n").expect("write");
        let lookup = |k: &str| (k == "HOSTVAR").then(|| "h".to_owned());
        assert_eq!(
            parse_env_file(&f, &lookup).expect("env"),
            ["A=1", "B=x=y", "HOSTVAR=h"]
        );
        std::fs::write(&f, "BAD KEY=1\n").expect("write");
        assert!(parse_env_file(&f, &lookup).is_err());
    }

    #[test]
    fn spec_has_workspace_limits_and_network() {
        let d = tempfile::tempdir().expect("tmp");
        let o = RunOptions {
            command: vec!["python3".into()],
            workspace: d.path().to_owned(),
            memory: Some(64 << 20),
            cpus: Some(1.5),
            pids_limit: Some(64),
            network: Some(Network::Host),
            cap_add: vec!["sys_ptrace".into()],
            cap_drop: vec!["CAP_CHOWN".into()],
            ..Default::default()
        };
        std::fs::create_dir(d.path().join("rootfs")).expect("mkdir");
        let s = build_spec(&o, &d.path().join("rootfs"), None, None).expect("spec");
        let mounts = s.mounts().clone().unwrap_or_default();
        assert!(mounts.iter().any(|m| m.destination() == d.path()));
        let r = s
            .linux()
            .as_ref()
            .and_then(|l| l.resources().clone())
            .expect("resources");
        assert_eq!(r.memory().as_ref().and_then(|m| m.limit()), Some(64 << 20));
        assert_eq!(r.cpu().as_ref().and_then(|c| c.quota()), Some(150_000));
        assert_eq!(r.pids().as_ref().map(|p| p.limit()), Some(64));
        let nss = s
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default();
        assert!(!nss.iter().any(|n| n.typ() == LinuxNamespaceType::Network));
        let v = serde_json::to_value(&s).expect("json");
        let caps = v["process"]["capabilities"]["bounding"].to_string();
        assert!(
            caps.contains("CAP_SYS_PTRACE") && !caps.contains("CAP_CHOWN"),
            "{caps}"
        );
        let bad = RunOptions {
            cap_add: vec!["CAP_NOPE".into()],
            ..o.clone()
        };
        assert!(build_spec(&bad, &d.path().join("rootfs"), None, None).is_err());
    }

    #[test]
    fn profile_is_applied_and_flags_win() {
        let d = tempfile::tempdir().expect("tmp");
        std::fs::create_dir(d.path().join("rootfs")).expect("mkdir");
        let p = ProfileRef::parse("agent").load().expect("agent");
        let o = RunOptions {
            command: vec!["sh".into()],
            workspace: d.path().to_owned(),
            memory: Some(1 << 30),
            ..Default::default()
        };
        let s = build_spec(&o, &d.path().join("rootfs"), None, Some(&p)).expect("spec");
        let ann = s.annotations().clone().unwrap_or_default();
        assert_eq!(
            ann.get("run.warren.profile").map(String::as_str),
            Some("agent")
        );
        let r = s
            .linux()
            .as_ref()
            .and_then(|l| l.resources().clone())
            .expect("resources");
        assert_eq!(r.memory().as_ref().and_then(|m| m.limit()), Some(1 << 30));
        assert!(ProfileRef::parse("no-such-profile").load().is_err());
    }
}
