//! `warren run`: options → OCI spec → the runtime library, in this process.

use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::{
    LinuxCpuBuilder, LinuxMemoryBuilder, LinuxNamespace, LinuxNamespaceType, LinuxPidsBuilder,
    LinuxResourcesBuilder, Mount, MountBuilder, Spec,
};
use warren_runtime::verbs::create::CreateOpts;
use warren_runtime::verbs::run::RunOpts;

use crate::hostview;

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
    #[error("build spec: {0}")]
    Spec(String),
}

type Result<T> = std::result::Result<T, RunError>;

/// Network of the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// Own network namespace with only loopback (the default).
    #[default]
    None,
    /// Own network namespace with only loopback; published ports come later.
    Private,
    /// The host's network namespace.
    Host,
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
    warren_runtime::verbs::update::parse_bytes(s).map_err(|e| RunError::Option {
        flag,
        value: s.into(),
        msg: e.to_string(),
    })
}

/// What to run and how.
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
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub network: Network,
    pub tty: bool,
    /// State root of warren (bundles and runtime state live below it).
    pub state_root: PathBuf,
}

/// Capabilities a container gets by default (podman's set).
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
        .map_err(|e| RunError::Spec(e.to_string()))
}

/// Builds the spec for the host-view sandbox.
pub fn build_spec(o: &RunOptions, rootfs: &Path) -> Result<Spec> {
    if o.command.is_empty() {
        return Err(RunError::Option {
            flag: "COMMAND",
            value: String::new(),
            msg: "nothing to run: give a command after --".into(),
        });
    }
    let base = warren_runtime::verbs::spec::default_spec(false, 0, 0);
    let mut v = base;
    v["process"]["terminal"] = o.tty.into();
    v["process"]["args"] = serde_json::json!(o.command);
    let mut env = vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
        "HOME=/tmp".to_owned(),
        "LANG=C.UTF-8".to_owned(),
    ];
    if o.tty {
        env.push("TERM=xterm-256color".into());
    }
    for e in &o.env {
        if !e.contains('=') {
            return Err(RunError::Option {
                flag: "-e",
                value: e.clone(),
                msg: "expected KEY=value".into(),
            });
        }
        env.push(e.clone());
    }
    v["process"]["env"] = serde_json::json!(env);
    v["process"]["cwd"] = serde_json::json!(o.workspace);
    v["process"]["rlimits"] = serde_json::json!([]);
    if let Some((uid, gid)) = o.user {
        v["process"]["user"] = serde_json::json!({"uid": uid, "gid": gid});
    }
    let mut caps: Vec<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
    for c in &o.cap_add {
        let c = cap_name(c);
        if c == "CAP_ALL" {
            caps = libcontainer_all_caps();
        } else if !caps.contains(&c) {
            caps.push(c);
        }
    }
    for c in &o.cap_drop {
        let c = cap_name(c);
        if c == "CAP_ALL" {
            caps.clear();
        } else {
            caps.retain(|x| *x != c);
        }
    }
    v["process"]["capabilities"] =
        serde_json::json!({"bounding": caps, "effective": caps, "permitted": caps});
    v["root"] = serde_json::json!({"path": rootfs, "readonly": true});
    let mut spec: Spec = serde_json::from_value(v).map_err(|e| RunError::Spec(e.to_string()))?;

    let view = hostview::build(Path::new("/"));
    for (name, target) in &view.symlinks {
        let link = rootfs.join(name);
        if !link.exists() {
            std::os::unix::fs::symlink(target, &link).map_err(|source| RunError::Io {
                op: "symlink",
                path: link,
                source,
            })?;
        }
    }
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.extend(view.mounts);
    mounts.push(mount(
        &o.workspace,
        "bind",
        &o.workspace,
        &["rbind", "rw", "nosuid", "nodev", "rprivate"],
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

    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut nss: Vec<LinuxNamespace> = linux.namespaces().clone().unwrap_or_default();
    if o.network == Network::Host {
        nss.retain(|n| n.typ() != LinuxNamespaceType::Network);
    }
    linux.set_namespaces(Some(nss));
    let mut res = LinuxResourcesBuilder::default();
    if let Some(m) = o.memory {
        res = res.memory(
            LinuxMemoryBuilder::default()
                .limit(m)
                .build()
                .map_err(|e| RunError::Spec(e.to_string()))?,
        );
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
        res = res.cpu(
            LinuxCpuBuilder::default()
                .period(period)
                .quota((c * period as f64) as i64)
                .build()
                .map_err(|e| RunError::Spec(e.to_string()))?,
        );
    }
    if let Some(p) = o.pids_limit {
        res = res.pids(
            LinuxPidsBuilder::default()
                .limit(p)
                .build()
                .map_err(|e| RunError::Spec(e.to_string()))?,
        );
    }
    let mut res = res.build().map_err(|e| RunError::Spec(e.to_string()))?;
    res.set_devices(linux.resources().as_ref().and_then(|r| r.devices().clone()));
    linux.set_resources(Some(res));
    spec.set_linux(Some(linux));
    spec.set_hostname(Some(o.name.clone().unwrap_or_else(|| "warren".into())));
    Ok(spec)
}

fn libcontainer_all_caps() -> Vec<String> {
    warren_runtime::verbs::features::features(&Vec::new())["linux"]["capabilities"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn random_id() -> String {
    let mut b = [0u8; 6];
    // SAFETY: getrandom(2) fills our stack buffer of the given length.
    unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    format!(
        "w-{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

/// Runs in the foreground and returns the command's exit code.
pub fn run(o: &RunOptions) -> Result<i32> {
    let id = o.name.clone().unwrap_or_else(random_id);
    warren_runtime::id::validate(&id)?;
    let bundle = o.state_root.join("bundles").join(&id);
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(&rootfs).map_err(|source| RunError::Io {
        op: "create",
        path: rootfs.clone(),
        source,
    })?;
    let r = (|| -> Result<i32> {
        let spec = build_spec(o, &rootfs)?;
        let cfg = bundle.join("config.json");
        let data = serde_json::to_vec(&spec).map_err(|e| RunError::Spec(e.to_string()))?;
        std::fs::write(&cfg, data).map_err(|source| RunError::Io {
            op: "write",
            path: cfg.clone(),
            source,
        })?;
        let rt = warren_runtime::Runtime::new(o.state_root.join("runtime"));
        let opts = RunOpts {
            create: CreateOpts {
                id: id.clone(),
                bundle: bundle.clone(),
                no_new_keyring: false,
                ..Default::default()
            },
            detach: false,
            keep: false,
            no_subreaper: false,
        };
        Ok(warren_runtime::verbs::run::run(&rt, &opts)?)
    })();
    let _ = std::fs::remove_dir_all(&bundle);
    r
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
        ] {
            let e = Volume::parse(bad, Path::new("/")).expect_err(bad);
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn spec_has_workspace_and_limits() {
        let d = tempfile::tempdir().expect("tmp");
        let o = RunOptions {
            command: vec!["python3".into()],
            workspace: d.path().to_owned(),
            memory: Some(64 << 20),
            cpus: Some(1.5),
            ..Default::default()
        };
        let s = build_spec(&o, &d.path().join("rootfs")).expect("spec");
        let mounts = s.mounts().clone().unwrap_or_default();
        assert!(mounts.iter().any(|m| m.destination() == d.path()));
        let r = s
            .linux()
            .as_ref()
            .and_then(|l| l.resources().clone())
            .expect("resources");
        assert_eq!(r.memory().as_ref().and_then(|m| m.limit()), Some(64 << 20));
        assert_eq!(r.cpu().as_ref().and_then(|c| c.quota()), Some(150_000));
    }
}
