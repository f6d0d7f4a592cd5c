//! Applying container edits to an OCI runtime spec, with the reference Go semantics, and
//! all-or-nothing: everything that can fail (validation, reading host device nodes,
//! building OCI objects) happens before the spec is touched.

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use oci_spec::runtime::{
    Hook as OciHook, Hooks, Linux, LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup,
    LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxIntelRdt, LinuxIntelRdtBuilder, LinuxNetDevice,
    LinuxResources, Mount as OciMount, Process, Spec,
};

use super::error::Error;
use super::registry::{Device, LoadedSpec};
use super::spec::{ContainerEdits, DeviceNode, Hook, HookName, IntelRdt, Mount};
use crate::error::IoError;

/// Apply the edits of `devices` to `spec`: each spec's spec-wide edits once (when its first
/// device is met), then each device's own edits, in order. On error `spec` is unchanged.
pub fn apply(spec: &mut Spec, devices: &[Device]) -> Result<(), Error> {
    let mut edits = ContainerEdits::default();
    let mut seen: Vec<&Arc<LoadedSpec>> = Vec::new();
    for dev in devices {
        if !seen.iter().any(|s| Arc::ptr_eq(s, &dev.spec)) {
            seen.push(&dev.spec);
            edits.append(&dev.spec.spec.container_edits);
        }
        edits.append(dev.edits());
    }
    apply_edits(spec, &edits)
}

/// Apply one set of edits to `spec` (Go's `ContainerEdits.Apply`):
///
/// - `env` replaces an entry with the same key, else appends;
/// - device nodes replace a `linux.devices` entry with the same path; type, major/minor and
///   file mode come from `lstat` of the host path when not given; `b`/`c` nodes also get a
///   `linux.resources.devices` allow rule (`rwm` unless `permissions` says otherwise);
///   uid/gid default to the process's when those are non-zero;
/// - mounts replace one with the same destination, then all mounts are stably sorted by
///   the depth of their destination;
/// - hooks are appended to their lifecycle list;
/// - `intelRdt` replaces the spec's; `additionalGids` are added once each (0 is ignored);
///   `netDevices` set `linux.netDevices[hostInterfaceName]`.
///
/// On error `spec` is unchanged.
pub fn apply_edits(spec: &mut Spec, edits: &ContainerEdits) -> Result<(), Error> {
    edits.validate()?;
    if edits.is_empty() {
        return Ok(());
    }
    let (uid, gid) = spec
        .process()
        .as_ref()
        .map_or((0, 0), |p| (p.user().uid(), p.user().gid()));
    let nodes = edits
        .device_nodes
        .iter()
        .map(|d| oci_device(d, uid, gid))
        .collect::<Result<Vec<_>, _>>()?;
    let mounts: Vec<OciMount> = edits.mounts.iter().map(oci_mount).collect();
    let hooks: Vec<(HookName, OciHook)> = edits
        .hooks
        .iter()
        .map(|h| (h.hook_name, oci_hook(h)))
        .collect();
    let rdt = edits.intel_rdt.as_ref().map(oci_rdt).transpose()?;
    let empty_process = empty_process()?;
    let empty_linux = empty_linux()?;

    let mut out = spec.clone();
    if !edits.env.is_empty() {
        let process = out
            .process_mut()
            .get_or_insert_with(|| empty_process.clone());
        let env = process.env_mut().get_or_insert_with(Vec::new);
        for entry in &edits.env {
            let key = env_key(entry);
            match env.iter_mut().find(|e| env_key(e) == key) {
                Some(existing) => existing.clone_from(entry),
                None => env.push(entry.clone()),
            }
        }
    }
    if !nodes.is_empty() {
        let linux = out.linux_mut().get_or_insert_with(|| empty_linux.clone());
        for (dev, rule) in nodes {
            let devs = linux.devices_mut().get_or_insert_with(Vec::new);
            if let Some(i) = devs.iter().position(|d| d.path() == dev.path()) {
                devs.remove(i);
            }
            devs.push(dev);
            if let Some(rule) = rule {
                linux
                    .resources_mut()
                    .get_or_insert_with(LinuxResources::default)
                    .devices_mut()
                    .get_or_insert_with(Vec::new)
                    .push(rule);
            }
        }
    }
    if !mounts.is_empty() {
        let all = out.mounts_mut().get_or_insert_with(Vec::new);
        for m in mounts {
            if let Some(i) = all.iter().position(|x| x.destination() == m.destination()) {
                all.remove(i);
            }
            all.push(m);
        }
        // Vec::sort_by_key is stable, like Go's sort.Stable.
        all.sort_by_key(|m| mount_depth(m.destination()));
    }
    if !hooks.is_empty() {
        let all = out.hooks_mut().get_or_insert_with(Hooks::default);
        for (name, hook) in hooks {
            let list = match name {
                HookName::Prestart =>
                {
                    #[allow(deprecated)]
                    all.prestart_mut()
                }
                HookName::CreateRuntime => all.create_runtime_mut(),
                HookName::CreateContainer => all.create_container_mut(),
                HookName::StartContainer => all.start_container_mut(),
                HookName::Poststart => all.poststart_mut(),
                HookName::Poststop => all.poststop_mut(),
            };
            list.get_or_insert_with(Vec::new).push(hook);
        }
    }
    if let Some(rdt) = rdt {
        out.linux_mut()
            .get_or_insert_with(|| empty_linux.clone())
            .set_intel_rdt(Some(rdt));
    }
    let gids: Vec<u32> = edits
        .additional_gids
        .iter()
        .copied()
        .filter(|g| *g != 0)
        .collect();
    if !gids.is_empty() {
        let process = out
            .process_mut()
            .get_or_insert_with(|| empty_process.clone());
        let extra = process
            .user_mut()
            .additional_gids_mut()
            .get_or_insert_with(Vec::new);
        for g in gids {
            if !extra.contains(&g) {
                extra.push(g);
            }
        }
    }
    if !edits.net_devices.is_empty() {
        let linux = out.linux_mut().get_or_insert_with(|| empty_linux.clone());
        let map = linux.net_devices_mut().get_or_insert_with(HashMap::new);
        for d in &edits.net_devices {
            let mut dev = LinuxNetDevice::default();
            dev.set_name(Some(d.name.clone()));
            map.insert(d.host_interface_name.clone(), dev);
        }
    }
    *spec = out;
    Ok(())
}

fn env_key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

/// Number of separators in the cleaned destination (Go: `strings.Count(filepath.Clean(d), "/")`).
pub(crate) fn mount_depth(dest: &Path) -> usize {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    let mut absolute = false;
    let mut leading_dotdots = 0usize;
    for c in dest.components() {
        match c {
            Component::RootDir => absolute = true,
            Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if parts.pop().is_none() && !absolute {
                    leading_dotdots += 1;
                }
            }
            Component::Normal(p) => parts.push(p),
        }
    }
    let n = parts.len() + leading_dotdots;
    if absolute {
        n.max(1)
    } else {
        n.saturating_sub(1)
    }
}

/// The type, major/minor and permission bits of a host device node.
struct HostNode {
    typ: &'static str,
    major: i64,
    minor: i64,
    mode: u32,
}

fn host_node(path: &Path) -> Result<HostNode, Error> {
    let meta =
        std::fs::symlink_metadata(path).map_err(|e| Error::Stat(IoError::new("stat", path, e)))?;
    let ft = meta.file_type();
    let typ = if ft.is_block_device() {
        "b"
    } else if ft.is_char_device() {
        "c"
    } else if ft.is_fifo() {
        "p"
    } else {
        return Err(Error::NotADevice {
            path: path.to_path_buf(),
        });
    };
    let rdev = meta.rdev();
    Ok(HostNode {
        typ,
        major: i64::from(libc::major(rdev)),
        minor: i64::from(libc::minor(rdev)),
        mode: meta.mode() & 0o777,
    })
}

fn device_type(t: &str) -> LinuxDeviceType {
    match t {
        "b" => LinuxDeviceType::B,
        "u" => LinuxDeviceType::U,
        "p" => LinuxDeviceType::P,
        _ => LinuxDeviceType::C,
    }
}

fn oci_err(what: &'static str) -> impl Fn(oci_spec::OciSpecError) -> Error {
    move |e| Error::Oci {
        what,
        reason: e.to_string(),
    }
}

/// Go's `DeviceNode.fillMissingInfo` + `toOCI` + the cgroup rule.
fn oci_device(
    d: &DeviceNode,
    proc_uid: u32,
    proc_gid: u32,
) -> Result<(LinuxDevice, Option<LinuxDeviceCgroup>), Error> {
    let host_path = d
        .host_path
        .as_deref()
        .filter(|p| !p.is_empty())
        .unwrap_or(&d.path);
    let mut typ = d.r#type.clone().filter(|t| !t.is_empty());
    let mut major = d.major.unwrap_or(0);
    let mut minor = d.minor.unwrap_or(0);
    let mut mode = d.file_mode;
    let complete = typ.as_deref().is_some_and(|t| major != 0 || t == "p");
    if !complete {
        let host = host_node(Path::new(host_path))?;
        match &typ {
            None => typ = Some(host.typ.to_owned()),
            Some(t) if t != host.typ => {
                return Err(Error::TypeMismatch {
                    path: d.path.clone(),
                    host_path: host_path.to_owned(),
                    declared: t.clone(),
                    actual: host.typ.to_owned(),
                });
            }
            Some(_) => {}
        }
        mode.get_or_insert(host.mode);
        if host.typ != "p" && major == 0 {
            major = host.major;
            minor = host.minor;
        }
    }
    let typ = typ.unwrap_or_else(|| "c".to_owned());
    let mut b = LinuxDeviceBuilder::default()
        .path(PathBuf::from(&d.path))
        .typ(device_type(&typ))
        .major(major)
        .minor(minor);
    if let Some(mode) = mode {
        b = b.file_mode(mode);
    }
    match d.uid {
        Some(uid) => b = b.uid(uid),
        None if proc_uid > 0 => b = b.uid(proc_uid),
        None => {}
    }
    match d.gid {
        Some(gid) => b = b.gid(gid),
        None if proc_gid > 0 => b = b.gid(proc_gid),
        None => {}
    }
    let dev = b.build().map_err(oci_err("device"))?;
    let rule = if typ == "b" || typ == "c" {
        let access = d
            .permissions
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "rwm".to_owned());
        Some(
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(device_type(&typ))
                .major(major)
                .minor(minor)
                .access(access)
                .build()
                .map_err(oci_err("device cgroup rule"))?,
        )
    } else {
        None
    };
    Ok((dev, rule))
}

fn oci_mount(m: &Mount) -> OciMount {
    let mut out = OciMount::default();
    out.set_destination(PathBuf::from(&m.container_path));
    out.set_source(Some(PathBuf::from(&m.host_path)));
    out.set_typ(m.r#type.clone().filter(|t| !t.is_empty()));
    out.set_options((!m.options.is_empty()).then(|| m.options.clone()));
    out
}

fn oci_hook(h: &Hook) -> OciHook {
    let mut out = OciHook::default();
    out.set_path(PathBuf::from(&h.path));
    out.set_args((!h.args.is_empty()).then(|| h.args.clone()));
    out.set_env((!h.env.is_empty()).then(|| h.env.clone()));
    out.set_timeout(h.timeout);
    out
}

fn oci_rdt(r: &IntelRdt) -> Result<LinuxIntelRdt, Error> {
    let mut b = LinuxIntelRdtBuilder::default();
    if let Some(v) = &r.clos_id {
        b = b.clos_id(v.clone());
    }
    if let Some(v) = &r.l3_cache_schema {
        b = b.l3_cache_schema(v.clone());
    }
    if let Some(v) = &r.mem_bw_schema {
        b = b.mem_bw_schema(v.clone());
    }
    if !r.schemata.is_empty() {
        b = b.schemata(r.schemata.clone());
    }
    if let Some(v) = r.enable_monitoring {
        b = b.enable_monitoring(v);
    }
    b.build().map_err(oci_err("intelRdt"))
}

pub(crate) fn empty_process() -> Result<Process, Error> {
    serde_json::from_str(r#"{"cwd":"/","user":{"uid":0,"gid":0}}"#).map_err(|e| Error::Oci {
        what: "process",
        reason: e.to_string(),
    })
}

pub(crate) fn empty_linux() -> Result<Linux, Error> {
    serde_json::from_str("{}").map_err(|e| Error::Oci {
        what: "linux",
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_matches_go_clean_count() {
        for (p, n) in [
            ("/", 1),
            ("/dev", 1),
            ("/dev/", 1),
            ("/dev/shm", 2),
            ("/a/./b/../c/d", 3),
            ("a", 0),
            ("a/b", 1),
            ("/..", 1),
        ] {
            assert_eq!(mount_depth(Path::new(p)), n, "{p}");
        }
    }

    #[test]
    fn env_replaces_by_key() {
        let mut spec = Spec::default();
        let edits = ContainerEdits {
            env: vec!["TERM=dumb".into(), "NEW=1".into()],
            ..ContainerEdits::default()
        };
        apply_edits(&mut spec, &edits).unwrap();
        let env = spec.process().as_ref().unwrap().env().as_ref().unwrap();
        assert_eq!(env.iter().filter(|e| e.starts_with("TERM=")).count(), 1);
        assert!(env.contains(&"TERM=dumb".to_string()));
        assert_eq!(env.last().unwrap(), "NEW=1");
    }

    #[test]
    fn missing_host_node_leaves_spec_untouched() {
        let mut spec = Spec::default();
        let before = spec.clone();
        let edits = ContainerEdits {
            env: vec!["A=1".into()],
            device_nodes: vec![DeviceNode::at("/nonexistent/warren-test-dev")],
            ..ContainerEdits::default()
        };
        let err = apply_edits(&mut spec, &edits).unwrap_err();
        assert!(matches!(err, Error::Stat(_)), "{err}");
        assert!(err.to_string().contains("/nonexistent/warren-test-dev"));
        assert_eq!(spec, before);
    }

    #[test]
    fn explicit_major_skips_stat_and_fifo_has_no_rule() {
        let mut spec = Spec::default();
        let edits = ContainerEdits {
            device_nodes: vec![
                DeviceNode {
                    r#type: Some("c".into()),
                    major: Some(231),
                    minor: Some(192),
                    permissions: Some("rw".into()),
                    ..DeviceNode::at("/dev/infiniband/uverbs0")
                },
                DeviceNode {
                    r#type: Some("p".into()),
                    ..DeviceNode::at("/dev/fifo")
                },
            ],
            ..ContainerEdits::default()
        };
        let rules_before = spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref())
            .and_then(|r| r.devices().as_ref())
            .map_or(0, Vec::len);
        apply_edits(&mut spec, &edits).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        let devs = linux.devices().as_ref().unwrap();
        assert_eq!(devs.len(), 2);
        let rules = linux
            .resources()
            .as_ref()
            .unwrap()
            .devices()
            .as_ref()
            .unwrap();
        assert_eq!(rules.len(), rules_before + 1);
        let last = rules.last().unwrap();
        assert_eq!((last.major(), last.minor()), (Some(231), Some(192)));
        assert_eq!(last.access().as_deref(), Some("rw"));
    }
}
