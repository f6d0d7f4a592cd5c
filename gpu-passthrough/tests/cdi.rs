//! CDI registry and apply against real device nodes (mknod aliases of 1:3 and 1:5).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceType, Spec};
use warren_gpu::cdi::{Error, QualifiedName, Registry, SpecError};
use warren_gpu::requests::requests_from_spec;

use common::{char_dev, write};

fn q(s: &str) -> QualifiedName {
    s.parse().unwrap()
}

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        char_dev(&root.join("dev/fake-null"), 1, 3, 0o666);
        char_dev(&root.join("dev/fake-zero"), 1, 5, 0o640);
        Self { _tmp: tmp, root }
    }

    fn dir(&self, name: &str) -> PathBuf {
        let d = self.root.join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn dev(&self, name: &str) -> String {
        self.root.join("dev").join(name).display().to_string()
    }
}

fn vendor_spec(f: &Fixture) -> String {
    format!(
        r#"cdiVersion: 0.7.0
kind: example.com/dev
containerEdits:
  env: [SPEC=1, TERM=cdi]
  mounts:
  - {{hostPath: /host/deep, containerPath: /opt/lib/deep/path, options: [ro, bind]}}
  - {{hostPath: /host/shm, containerPath: /dev/shm, type: tmpfs}}
  hooks:
  - {{hookName: createContainer, path: /bin/spec-hook, args: [spec-hook, a]}}
devices:
- name: "null"
  containerEdits:
    deviceNodes:
    - {{path: /dev/warren-null, hostPath: "{null}"}}
    mounts:
    - {{hostPath: /host/a, containerPath: /a}}
    hooks:
    - {{hookName: createContainer, path: /bin/dev-hook}}
    - {{hookName: poststop, path: /bin/cleanup, timeout: 5}}
- name: zero
  annotations: {{example.com/info: zero}}
  containerEdits:
    env: [DEV=zero]
    deviceNodes:
    - {{path: /dev/warren-zero, hostPath: "{zero}", permissions: rw, gid: 44}}
    additionalGids: [0, 44, 44]
"#,
        null = f.dev("fake-null"),
        zero = f.dev("fake-zero"),
    )
}

fn base_spec() -> Spec {
    let mut spec = Spec::default();
    let process = spec.process_mut().as_mut().unwrap();
    process.set_env(Some(vec!["PATH=/bin".into(), "TERM=xterm".into()]));
    process.user_mut().set_uid(1000);
    spec
}

#[test]
fn applies_devices_env_mounts_and_hooks_like_go() {
    let f = Fixture::new();
    let etc = f.dir("etc-cdi");
    write(&etc.join("vendor.yaml"), &vendor_spec(&f));
    let registry = Registry::load(&[&etc, &f.root.join("missing-dir")]);
    assert!(registry.errors().is_empty(), "{:?}", registry.errors());
    assert_eq!(
        registry.device_names(),
        ["example.com/dev=null", "example.com/dev=zero"]
    );

    let mut spec = base_spec();
    let rules_before = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.devices().as_ref())
        .map_or(0, Vec::len);
    registry
        .inject(
            &mut spec,
            &[q("example.com/dev=null"), q("example.com/dev=zero")],
        )
        .unwrap();

    // Device nodes: type and numbers from the host node, uid from the process.
    let linux = spec.linux().as_ref().unwrap();
    let devs = linux.devices().as_ref().unwrap();
    let null = devs
        .iter()
        .find(|d| d.path() == Path::new("/dev/warren-null"))
        .unwrap();
    assert_eq!(null.typ(), LinuxDeviceType::C);
    assert_eq!((null.major(), null.minor()), (1, 3));
    assert_eq!(null.file_mode(), Some(0o666));
    assert_eq!(null.uid(), Some(1000));
    assert_eq!(null.gid(), None);
    let zero = devs
        .iter()
        .find(|d| d.path() == Path::new("/dev/warren-zero"))
        .unwrap();
    assert_eq!(
        (zero.typ(), zero.major(), zero.minor()),
        (LinuxDeviceType::C, 1, 5)
    );
    assert_eq!(zero.file_mode(), Some(0o640));
    assert_eq!(zero.gid(), Some(44));

    // One allow rule per node, appended after the existing ones.
    let rules = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap();
    assert_eq!(rules.len(), rules_before + 2);
    let new: Vec<String> = rules[rules_before..]
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(new, ["c 1:3 rwm", "c 1:5 rw"]);
    assert!(rules[rules_before..].iter().all(|r| r.allow()));

    // Env: same key replaced in place, new keys appended in order.
    let env = spec.process().as_ref().unwrap().env().as_ref().unwrap();
    assert_eq!(env, &["PATH=/bin", "TERM=cdi", "SPEC=1", "DEV=zero"]);

    // Mounts: /dev/shm replaced by destination, then all stably sorted by depth.
    let mounts: Vec<String> = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.destination().display().to_string())
        .collect();
    assert_eq!(
        mounts,
        [
            "/proc",
            "/dev",
            "/sys",
            "/a",
            "/dev/pts",
            "/dev/mqueue",
            "/dev/shm",
            "/sys/fs/cgroup",
            "/opt/lib/deep/path"
        ]
    );
    let shm = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination() == Path::new("/dev/shm"))
        .unwrap();
    assert_eq!(shm.source().as_deref(), Some(Path::new("/host/shm")));
    assert_eq!(shm.typ().as_deref(), Some("tmpfs"));

    // Hooks: spec-wide edits first, then the device's, appended per kind.
    let hooks = spec.hooks().as_ref().unwrap();
    let cc: Vec<String> = hooks
        .create_container()
        .as_ref()
        .unwrap()
        .iter()
        .map(|h| h.path().display().to_string())
        .collect();
    assert_eq!(cc, ["/bin/spec-hook", "/bin/dev-hook"]);
    let ps = hooks.poststop().as_ref().unwrap();
    assert_eq!(ps[0].timeout(), Some(5));

    // additionalGids: 0 ignored, duplicates dropped.
    let gids = spec
        .process()
        .as_ref()
        .unwrap()
        .user()
        .additional_gids()
        .clone();
    assert_eq!(gids, Some(vec![44]));
}

#[test]
fn bad_files_are_reported_and_skipped_while_others_load() {
    let f = Fixture::new();
    let etc = f.dir("etc-cdi");
    write(&etc.join("vendor.yaml"), &vendor_spec(&f));
    write(
        &etc.join("broken.yaml"),
        "cdiVersion: 0.6.0\nkind: [unclosed\n",
    );
    write(
        &etc.join("unknown-key.json"),
        r#"{"cdiVersion":"0.6.0","kind":"other.com/x","devices":[],"bogusKey":1}"#,
    );
    write(
        &etc.join("old-version.yaml"),
        "cdiVersion: 0.6.0\nkind: other.com/net\ndevices:\n- name: eth\n  containerEdits:\n    netDevices: [{hostInterfaceName: eth1, name: eth0}]\n",
    );
    // Not read: wrong extension, and no recursion into subdirectories.
    write(&etc.join("notes.txt"), "garbage");
    write(&etc.join("sub/nested.yaml"), "garbage: [");

    let registry = Registry::load(&[&etc]);
    assert_eq!(
        registry.device_names(),
        ["example.com/dev=null", "example.com/dev=zero"]
    );
    let mut bad: Vec<(String, String)> = registry
        .errors()
        .iter()
        .map(|e| {
            (
                e.path.file_name().unwrap().to_string_lossy().into_owned(),
                e.to_string(),
            )
        })
        .collect();
    bad.sort();
    assert_eq!(bad.len(), 3, "{bad:?}");
    assert_eq!(bad[0].0, "broken.yaml");
    assert!(
        bad[0].1.contains("broken.yaml") && bad[0].1.contains("parse YAML"),
        "{}",
        bad[0].1
    );
    assert_eq!(bad[1].0, "old-version.yaml");
    assert!(
        bad[1].1.ends_with(
            "field `devices[0].containerEdits.netDevices` requires cdiVersion 1.1.0 or later, but the file declares 0.6.0"
        ),
        "{}",
        bad[1].1
    );
    assert_eq!(bad[2].0, "unknown-key.json");
    assert!(bad[2].1.contains("bogusKey"), "{}", bad[2].1);
}

#[test]
fn same_priority_conflict_names_both_files_and_higher_priority_wins() {
    let f = Fixture::new();
    let etc = f.dir("etc-cdi");
    let run = f.dir("run-cdi");
    let dev = |name: &str, path: &str| {
        format!(
            "cdiVersion: 0.5.0\nkind: example.com/dev\ndevices:\n- name: {name}\n  containerEdits:\n    deviceNodes: [{{path: {path}, hostPath: \"{}\"}}]\n",
            f.dev("fake-null")
        )
    };
    write(
        &etc.join("a.yaml"),
        &(dev("gpu", "/dev/a") + "- name: only-a\n  containerEdits: {env: [A=1]}\n"),
    );
    write(&etc.join("b.yaml"), &dev("gpu", "/dev/b"));
    write(&etc.join("c.yaml"), &dev("nic", "/dev/c-etc"));
    write(&run.join("c.yaml"), &dev("nic", "/dev/c-run"));

    let registry = Registry::load(&[&etc, &run]);
    let mut spec = base_spec();
    let before = spec.clone();
    let err = registry
        .inject(&mut spec, &[q("example.com/dev=gpu")])
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Conflict { .. }), "{msg}");
    assert!(
        msg.contains(&etc.join("a.yaml").display().to_string()),
        "{msg}"
    );
    assert!(
        msg.contains(&etc.join("b.yaml").display().to_string()),
        "{msg}"
    );
    assert_eq!(spec, before);
    // The conflict is also reported against both files at load time.
    let conflicted: Vec<_> = registry
        .errors()
        .iter()
        .filter(|e| matches!(e.error, SpecError::Conflict { .. }))
        .map(|e| e.path.clone())
        .collect();
    assert_eq!(conflicted, [etc.join("a.yaml"), etc.join("b.yaml")]);

    // Other devices of the conflicting files still resolve; /var/run/cdi beats /etc/cdi.
    registry
        .inject(
            &mut spec,
            &[q("example.com/dev=only-a"), q("example.com/dev=nic")],
        )
        .unwrap();
    let paths: Vec<_> = spec
        .linux()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap()
        .iter()
        .map(|d| d.path().display().to_string())
        .collect();
    assert!(paths.contains(&"/dev/c-run".to_string()), "{paths:?}");
    assert!(!paths.contains(&"/dev/c-etc".to_string()));
}

#[test]
fn unknown_device_lists_known_names_and_leaves_spec_untouched() {
    let f = Fixture::new();
    let etc = f.dir("etc-cdi");
    write(&etc.join("vendor.yaml"), &vendor_spec(&f));
    let registry = Registry::load(&[&etc]);
    let mut spec = base_spec();
    let before = spec.clone();
    let err = registry
        .inject(
            &mut spec,
            &[q("example.com/dev=null"), q("example.com/dev=missing")],
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unresolvable CDI devices example.com/dev=missing; known devices: example.com/dev=null, example.com/dev=zero"
    );
    assert_eq!(spec, before);
}

#[test]
fn a_failing_device_node_applies_nothing() {
    let f = Fixture::new();
    let etc = f.dir("etc-cdi");
    write(&etc.join("vendor.yaml"), &vendor_spec(&f));
    write(
        &etc.join("gone.yaml"),
        "cdiVersion: 0.5.0\nkind: example.com/gone\ndevices:\n- name: x\n  containerEdits:\n    env: [GONE=1]\n    deviceNodes: [{path: /dev/gone, hostPath: /nonexistent/warren/gone}]\n",
    );
    write(
        &etc.join("mismatch.yaml"),
        &format!(
            "cdiVersion: 0.5.0\nkind: example.com/mismatch\ndevices:\n- name: x\n  containerEdits:\n    deviceNodes: [{{path: /dev/m, hostPath: \"{}\", type: b}}]\n",
            f.dev("fake-null")
        ),
    );
    let registry = Registry::load(&[&etc]);
    let mut spec = base_spec();
    let before = spec.clone();
    let err = registry
        .inject(
            &mut spec,
            &[q("example.com/dev=null"), q("example.com/gone=x")],
        )
        .unwrap_err();
    assert!(matches!(err, Error::Stat(_)), "{err}");
    assert!(
        err.to_string().contains("/nonexistent/warren/gone"),
        "{err}"
    );
    assert_eq!(spec, before);

    let err = registry
        .inject(&mut spec, &[q("example.com/mismatch=x")])
        .unwrap_err();
    assert!(matches!(err, Error::TypeMismatch { .. }), "{err}");
    assert_eq!(spec, before);
}

#[test]
fn annotation_requests_inject_through_the_registry() {
    let f = Fixture::new();
    let etc = f.dir("etc-cdi");
    write(&etc.join("vendor.yaml"), &vendor_spec(&f));
    let registry = Registry::load(&[&etc]);
    let mut spec = base_spec();
    let mut annotations = HashMap::new();
    annotations.insert(
        "cdi.k8s.io/devplugin_abc".to_string(),
        "example.com/dev=zero".to_string(),
    );
    spec.set_annotations(Some(annotations));
    let requests = requests_from_spec(&spec).unwrap();
    assert_eq!(requests.nvidia, None);
    registry.inject(&mut spec, &requests.cdi).unwrap();
    let devs = spec.linux().as_ref().unwrap().devices().as_ref().unwrap();
    assert!(
        devs.iter()
            .any(|d| d.path() == Path::new("/dev/warren-zero"))
    );
}

#[test]
fn in_memory_specs_are_validated() {
    let mut registry = Registry::new();
    let spec = warren_gpu::cdi::CdiSpec {
        cdi_version: "0.3.0".into(),
        kind: "example.com/dev".into(),
        devices: vec![warren_gpu::cdi::CdiDevice {
            name: "0".into(),
            annotations: Default::default(),
            container_edits: warren_gpu::cdi::ContainerEdits {
                env: vec!["A=1".into()],
                ..Default::default()
            },
        }],
        ..Default::default()
    };
    let err = registry.add_spec(spec, "<test>").unwrap_err();
    assert!(
        err.to_string().contains("requires cdiVersion 0.5.0"),
        "{err}"
    );
}
