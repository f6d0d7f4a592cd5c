//! The OCI spec of an agent or a pooled sandbox: the runtime's default spec, a root
//! (host view or image), the profile (applied here, enforced by the runtime's init through
//! the `warren.dev/profile` annotation), mounts, limits and namespaces.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::{
    LinuxCpuBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, Mount,
    MountBuilder, Spec,
};

use crate::error::{Error, Result};
use crate::hostview::{self, ViewMount};

/// A profile and the annotation value that names it to the runtime.
#[derive(Debug, Clone)]
pub struct LoadedProfile {
    pub profile: warren_sandbox::profile::Profile,
    /// A built-in name or an absolute file path.
    pub request: String,
}

impl LoadedProfile {
    /// `agent`, `experiment`, `trusted`, or a TOML file (a value with a `/` or ending in
    /// `.toml`; relative to the current directory).
    pub fn load(s: &str) -> Result<Self> {
        if s.contains('/') || s.ends_with(".toml") {
            let path = std::fs::canonicalize(s).map_err(|e| Error::Profile {
                name: s.to_owned(),
                msg: format!("cannot open profile file: {e}"),
            })?;
            let profile =
                warren_sandbox::profile::load_file(&path).map_err(|e| Error::Profile {
                    name: s.to_owned(),
                    msg: e.to_string(),
                })?;
            Ok(Self {
                profile,
                request: path.display().to_string(),
            })
        } else {
            let profile = warren_sandbox::profile::load_builtin(s).map_err(|e| Error::Profile {
                name: s.to_owned(),
                msg: e.to_string(),
            })?;
            Ok(Self {
                profile,
                request: s.to_owned(),
            })
        }
    }

    /// The profile's writable workspace, `/workspace` when it names none.
    pub fn workspace(&self) -> PathBuf {
        self.profile
            .workspace
            .clone()
            .unwrap_or_else(|| PathBuf::from("/workspace"))
    }
}

/// A bind mount of a host path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub src: PathBuf,
    pub dst: PathBuf,
    pub read_only: bool,
}

/// A tmpfs mount.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tmpfs {
    pub dst: PathBuf,
    /// Mount options as in config.json (`nosuid`, `size=64m`, `mode=1777`, ...).
    pub options: Vec<String>,
}

impl Tmpfs {
    /// A world-writable scratch tmpfs (`nosuid,nodev,mode=1777,size=SIZE`).
    pub fn scratch(dst: impl Into<PathBuf>, size: &str) -> Self {
        Self {
            dst: dst.into(),
            options: vec![
                "nosuid".into(),
                "nodev".into(),
                "mode=1777".into(),
                format!("size={size}"),
            ],
        }
    }
}

/// cgroup limits that override the profile's.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Resources {
    pub memory: Option<i64>,
    pub pids: Option<i64>,
    pub cpus: Option<f64>,
}

/// What an agent or pooled sandbox looks like.
#[derive(Debug, Clone, Default)]
pub struct SandboxSpec {
    pub args: Vec<String>,
    /// `KEY=value`, applied after the defaults (PATH, HOME=/tmp, LANG) and the image's.
    pub env: Vec<String>,
    pub image_env: Vec<String>,
    pub cwd: PathBuf,
    pub hostname: String,
    /// The root: an empty directory of ours for the host view, or a mounted image.
    pub rootfs: PathBuf,
    /// Build the host view in `rootfs` (no image).
    pub host_view: bool,
    pub root_readonly: bool,
    pub tmpfs: Vec<Tmpfs>,
    pub binds: Vec<Bind>,
    /// A file bind-mounted read-only at `/etc/hosts`.
    pub etc_hosts: Option<PathBuf>,
    /// Join this network namespace (a path such as `/run/netns/NAME`) instead of making
    /// one.
    pub netns: Option<PathBuf>,
    pub resources: Resources,
    /// Extra `linux.readonlyPaths`.
    pub readonly_paths: Vec<PathBuf>,
    pub annotations: BTreeMap<String, String>,
    pub user: Option<(u32, u32)>,
    /// `linux.cgroupsPath` (absolute from the hierarchy roots), so that cleanup knows
    /// where to look.
    pub cgroups_path: Option<String>,
}

fn spec_err(e: impl std::fmt::Display) -> Error {
    Error::Spec(e.to_string())
}

fn mount(dst: &Path, typ: &str, src: &Path, opts: &[String]) -> Result<Mount> {
    MountBuilder::default()
        .destination(dst.to_owned())
        .typ(typ)
        .source(src.to_owned())
        .options(opts.to_vec())
        .build()
        .map_err(spec_err)
}

fn bind_opts(ro: bool) -> Vec<String> {
    [
        "rbind",
        if ro { "ro" } else { "rw" },
        "nosuid",
        "nodev",
        "rprivate",
    ]
    .map(String::from)
    .to_vec()
}

/// Default environment of every sandbox.
pub const DEFAULT_ENV: &[&str] = &[
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/tmp",
    "LANG=C.UTF-8",
];

/// Merges `KEY=value` lists, later keys replacing earlier ones in place.
pub fn merge_env<'a>(lists: impl IntoIterator<Item = &'a [String]>) -> Vec<String> {
    let mut out: Vec<String> = DEFAULT_ENV.iter().map(|s| s.to_string()).collect();
    for list in lists {
        for e in list {
            let key = e.split('=').next().unwrap_or(e);
            match out.iter_mut().find(|x| x.split('=').next() == Some(key)) {
                Some(slot) => *slot = e.clone(),
                None => out.push(e.clone()),
            }
        }
    }
    out
}

/// Builds the spec. The profile is applied first; then the sandbox is forced into its own
/// pid, IPC, UTS and mount namespaces (agents must not see each other), the limits given
/// here override the profile's, and a given network namespace path is joined.
pub fn build(s: &SandboxSpec, p: &LoadedProfile) -> Result<Spec> {
    if s.args.is_empty() {
        return Err(Error::Invalid("nothing to run: empty command".into()));
    }
    let mut v = warren_runtime::verbs::spec::default_spec(false, 0, 0);
    v["process"]["terminal"] = false.into();
    v["process"]["args"] = serde_json::json!(s.args);
    v["process"]["env"] = serde_json::json!(merge_env([&s.image_env[..], &s.env[..]]));
    v["process"]["cwd"] = serde_json::json!(s.cwd);
    v["process"]["rlimits"] = serde_json::json!([]);
    if let Some((uid, gid)) = s.user {
        v["process"]["user"] = serde_json::json!({"uid": uid, "gid": gid});
    }
    v["root"] = serde_json::json!({"path": s.rootfs, "readonly": s.root_readonly});
    v["hostname"] = serde_json::json!(s.hostname);
    let mut spec: Spec = serde_json::from_value(v).map_err(spec_err)?;

    let mut mounts = spec.mounts().clone().unwrap_or_default();
    if s.host_view {
        let skip: &[&str] = if s.etc_hosts.is_some() {
            &["hosts"]
        } else {
            &[]
        };
        let view = hostview::build(Path::new("/"), skip);
        hostview::make_symlinks(&view, &s.rootfs)
            .map_err(|e| Error::io("make host view symlinks in", &s.rootfs, e))?;
        for m in &view.mounts {
            mounts.push(match m {
                ViewMount::Bind { src, dst } => mount(dst, "bind", src, &bind_opts(true))?,
                ViewMount::Tmpfs { dst, options } => {
                    mount(dst, "tmpfs", Path::new("tmpfs"), options)?
                }
            });
        }
    }
    if let Some(h) = &s.etc_hosts {
        mounts.push(mount(Path::new("/etc/hosts"), "bind", h, &bind_opts(true))?);
    }
    for t in &s.tmpfs {
        mounts.push(mount(&t.dst, "tmpfs", Path::new("tmpfs"), &t.options)?);
    }
    for b in &s.binds {
        mounts.push(mount(&b.dst, "bind", &b.src, &bind_opts(b.read_only))?);
    }
    spec.set_mounts(Some(mounts));

    warren_sandbox::spec::apply_profile(&p.profile, &mut spec).map_err(|e| Error::Profile {
        name: p.request.clone(),
        msg: e.to_string(),
    })?;
    // A profile may ask for more than this host allows (trusted: 1048576 open files).
    for w in warren_runtime::sandbox::clamp_rlimits(&mut spec) {
        tracing::warn!(profile = %p.request, "{w}");
    }
    let mut ann = spec.annotations().clone().unwrap_or_default();
    ann.insert(
        warren_runtime::sandbox::REQUEST_ANNOTATION.to_owned(),
        p.request.clone(),
    );
    for (k, v) in &s.annotations {
        ann.insert(k.clone(), v.clone());
    }
    spec.set_annotations(Some(ann));

    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut nss = linux.namespaces().clone().unwrap_or_default();
    for typ in [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ] {
        if !nss.iter().any(|n| n.typ() == typ) {
            nss.push(
                LinuxNamespaceBuilder::default()
                    .typ(typ)
                    .build()
                    .map_err(spec_err)?,
            );
        }
    }
    if let Some(path) = &s.netns {
        nss.retain(|n| n.typ() != LinuxNamespaceType::Network);
        nss.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Network)
                .path(path.clone())
                .build()
                .map_err(spec_err)?,
        );
    }
    linux.set_namespaces(Some(nss));
    let mut ro = linux.readonly_paths().clone().unwrap_or_default();
    for p in &s.readonly_paths {
        ro.push(p.display().to_string());
    }
    linux.set_readonly_paths(Some(ro));

    let mut res = linux.resources().clone().unwrap_or_default();
    if let Some(m) = s.resources.memory {
        let mut mem = (*res.memory()).unwrap_or_default();
        mem.set_limit(Some(m));
        mem.set_swap(Some(m));
        res.set_memory(Some(mem));
    }
    if let Some(pids) = s.resources.pids {
        res.set_pids(Some(
            LinuxPidsBuilder::default()
                .limit(pids)
                .build()
                .map_err(spec_err)?,
        ));
    }
    if let Some(c) = s.resources.cpus {
        let period = 100_000u64;
        res.set_cpu(Some(
            LinuxCpuBuilder::default()
                .period(period)
                .quota(((c * period as f64) as i64).max(1000))
                .build()
                .map_err(spec_err)?,
        ));
    }
    linux.set_resources(Some(res));
    if let Some(cg) = &s.cgroups_path {
        linux.set_cgroups_path(Some(PathBuf::from(cg)));
    }
    spec.set_linux(Some(linux));
    Ok(spec)
}

/// The directories of cgroup `inner` (absolute) in every hierarchy of this host.
pub fn cgroup_dirs(inner: &str) -> Vec<PathBuf> {
    warren_runtime::cgroups::Layout::detect(Path::new("/proc"))
        .map(|l| {
            l.hierarchies
                .iter()
                .filter_map(|h| h.dir_for(inner).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Kills whatever is still in cgroup directory `dir` (a container whose create never
/// finished has no runtime state to delete it by) and removes the directory; false when
/// it is still there.
pub fn kill_and_remove_cgroup_dir(dir: &Path) -> bool {
    for attempt in 0..50 {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // SAFETY: kill(2) of a process listed in the cgroup we are removing.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        match std::fs::remove_dir(dir) {
            Ok(()) => return true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return true,
            Err(_) if attempt < 49 => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(_) => {}
        }
    }
    false
}

/// Removes the cgroup `inner` in every hierarchy, killing what is left in it; returns
/// the directories that are still there.
pub fn remove_cgroup(inner: &str) -> Vec<PathBuf> {
    cgroup_dirs(inner)
        .into_iter()
        .filter(|d| d.exists() && !kill_and_remove_cgroup_dir(d))
        .collect()
}

/// Writes `BUNDLE/config.json`.
pub fn write_bundle(bundle: &Path, spec: &Spec) -> Result<()> {
    std::fs::create_dir_all(bundle).map_err(|e| Error::io("create", bundle, e))?;
    let path = bundle.join("config.json");
    let data = serde_json::to_vec_pretty(spec).map_err(spec_err)?;
    std::fs::write(&path, data).map_err(|e| Error::io("write", &path, e))
}

/// An image's settings that shape the spec.
#[derive(Debug, Clone, Default)]
pub struct ImageSettings {
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
}

/// Mounts `image` (or `warren/IMAGE`) as the root of container `id`.
pub fn image_rootfs(
    data_root: &Path,
    image: &str,
    id: &str,
    readonly: bool,
    volatile: bool,
) -> Result<(PathBuf, ImageSettings)> {
    let ierr = |msg: String| Error::Image {
        name: image.to_owned(),
        msg,
    };
    let store = warren_images::Store::open(data_root).map_err(|e| ierr(e.to_string()))?;
    let candidates = [image.to_owned(), format!("warren/{image}")];
    let Some((name, img)) = candidates
        .iter()
        .find_map(|n| store.image(n).ok().map(|i| (n.clone(), i)))
    else {
        return Err(ierr(format!(
            "not found in the store {} (build or import it first)",
            data_root.display()
        )));
    };
    let cfg = img.config.config().clone().unwrap_or_default();
    let settings = ImageSettings {
        env: cfg.env().clone().unwrap_or_default(),
        entrypoint: cfg.entrypoint().clone().unwrap_or_default(),
        cmd: cfg.cmd().clone().unwrap_or_default(),
    };
    let r = store
        .create_rootfs(
            &name,
            id,
            warren_images::RootfsOptions { readonly, volatile },
        )
        .map_err(|e| ierr(e.to_string()))?;
    Ok((r.merged, settings))
}

/// Whether the store has `image` (or `warren/IMAGE`).
pub fn image_exists(data_root: &Path, image: &str) -> bool {
    warren_images::Store::open(data_root)
        .map(|s| s.image(image).is_ok() || s.image(&format!("warren/{image}")).is_ok())
        .unwrap_or(false)
}

/// Unmounts and removes the rootfs of container `id` made by [`image_rootfs`].
pub fn remove_image_rootfs(data_root: &Path, id: &str) -> Result<()> {
    let store = warren_images::Store::open(data_root).map_err(|e| Error::Image {
        name: id.to_owned(),
        msg: e.to_string(),
    })?;
    store.remove_rootfs(id).map_err(|e| Error::Image {
        name: id.to_owned(),
        msg: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(spec: &Spec) -> Vec<(LinuxNamespaceType, Option<PathBuf>)> {
        spec.linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default()
            .iter()
            .map(|n| (n.typ(), n.path().clone()))
            .collect()
    }

    #[test]
    fn agent_spec_joins_the_netns_and_keeps_the_profile() {
        let d = tempfile::tempdir().expect("tmp");
        let p = LoadedProfile::load("agent").expect("agent");
        let s = SandboxSpec {
            args: vec!["python3".into()],
            env: vec!["A=1".into(), "HOME=/workspace".into()],
            cwd: "/workspace".into(),
            hostname: "worker-0".into(),
            rootfs: d.path().to_owned(),
            host_view: true,
            root_readonly: true,
            etc_hosts: Some(d.path().join("hosts")),
            netns: Some("/run/netns/warren-t-worker-0".into()),
            binds: vec![Bind {
                src: d.path().to_owned(),
                dst: "/workspace".into(),
                read_only: false,
            }],
            resources: Resources {
                memory: Some(256 << 20),
                pids: Some(64),
                cpus: Some(0.5),
            },
            ..Default::default()
        };
        let spec = build(&s, &p).expect("spec");
        let nss = ns(&spec);
        assert!(nss.contains(&(
            LinuxNamespaceType::Network,
            Some("/run/netns/warren-t-worker-0".into())
        )));
        assert_eq!(
            nss.iter()
                .filter(|(t, _)| *t == LinuxNamespaceType::Network)
                .count(),
            1
        );
        for t in [LinuxNamespaceType::Pid, LinuxNamespaceType::Mount] {
            assert!(nss.iter().any(|(x, p)| *x == t && p.is_none()));
        }
        let ann = spec.annotations().clone().unwrap_or_default();
        assert_eq!(
            ann.get("warren.dev/profile").map(String::as_str),
            Some("agent")
        );
        let mounts = spec.mounts().clone().unwrap_or_default();
        let hosts: Vec<_> = mounts
            .iter()
            .filter(|m| m.destination() == Path::new("/etc/hosts"))
            .collect();
        assert_eq!(hosts.len(), 1, "only our /etc/hosts");
        let env = spec
            .process()
            .as_ref()
            .and_then(|p| p.env().clone())
            .unwrap_or_default();
        assert!(env.contains(&"HOME=/workspace".to_string()));
        assert!(env.iter().any(|e| e.starts_with("PATH=")));
        let r = spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().clone())
            .expect("resources");
        assert_eq!(r.memory().as_ref().and_then(|m| m.limit()), Some(256 << 20));
        assert_eq!(r.pids().as_ref().map(|p| p.limit()), Some(64));
        assert!(build(&SandboxSpec::default(), &p).is_err());
    }

    #[test]
    fn env_merge_replaces_in_place() {
        let e = merge_env([&["A=1".to_string(), "PATH=/x".to_string()][..]]);
        assert_eq!(e[0], "PATH=/x");
        assert!(e.contains(&"A=1".to_string()));
    }

    #[test]
    fn profiles_by_name_and_file() {
        assert!(LoadedProfile::load("agent").is_ok());
        let e = LoadedProfile::load("nope").expect_err("unknown");
        assert!(e.to_string().contains("nope"), "{e}");
        let e = LoadedProfile::load("/nonexistent/p.toml").expect_err("missing");
        assert!(e.to_string().contains("p.toml"), "{e}");
    }
}
