//! NVIDIA discovery and spec generation against a stub `libnvidia-ml.so.1` (C, built here
#![allow(clippy::unwrap_used)]
//! with gcc) inside a fake driver root whose ld.so.cache is made by the real `ldconfig`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use oci_spec::runtime::{LinuxDeviceType, Spec};
use warren_gpu::cdi::{CdiSpec, QualifiedName, Registry, SpecFormat};
use warren_gpu::nvidia::{
    self, Discovery, Error, GenerateOptions, HookStyle, LDCONFIG_FILE, NvidiaRoots, RootfsSetup,
    Symlink,
};
use warren_gpu::requests::{NvidiaRequest, requests_from_spec};

use common::{char_dev, symlink, write};

const LIBDIR: &str = "usr/lib/x86_64-linux-gnu";
const VERSION: &str = "550.54.14";

struct Host {
    _tmp: tempfile::TempDir,
    roots: NvidiaRoots,
    base: PathBuf,
}

fn gcc(args: &[&str], source: Option<&Path>) {
    let mut cmd = Command::new("gcc");
    cmd.args(["-shared", "-fPIC", "-O0"]).args(args);
    match source {
        Some(src) => {
            cmd.arg(src);
        }
        None => {
            cmd.args(["-x", "c", "/dev/null"]);
        }
    }
    let out = cmd.output().expect("run gcc");
    assert!(
        out.status.success(),
        "gcc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fake host: driver root with real ELF libraries and ld.so.cache, /dev with mknod'ed
/// nodes, sysfs with the GPU's DRM nodes, procfs with nvidia-caps.
fn fake_host() -> Host {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let driver = base.join("driver");
    let lib = driver.join(LIBDIR);
    std::fs::create_dir_all(&lib).unwrap();
    let stub = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/nvml_stub.c");
    for (name, soname) in [
        ("libcuda", "libcuda.so.1"),
        ("libnvidia-ptxjitcompiler", "libnvidia-ptxjitcompiler.so.1"),
        ("libnvcuvid", "libnvcuvid.so.1"),
        ("libGLX_nvidia", "libGLX_nvidia.so.0"),
        ("libnvidia-ml", "libnvidia-ml.so.1"),
    ] {
        let out = lib.join(format!("{name}.so.{VERSION}"));
        let src = (name == "libnvidia-ml").then_some(stub.as_path());
        gcc(
            &[
                &format!("-Wl,-soname,{soname}"),
                "-o",
                out.to_str().unwrap(),
            ],
            src,
        );
    }
    // Not a driver library: must not be mounted.
    gcc(
        &[
            "-Wl,-soname,libfoo.so.1",
            "-o",
            lib.join("libfoo.so.1.0").to_str().unwrap(),
        ],
        None,
    );
    write(&driver.join("etc/ld.so.conf"), &format!("/{LIBDIR}\n"));
    std::fs::create_dir_all(driver.join("var/cache/ldconfig")).unwrap();
    let out = Command::new("ldconfig")
        .arg("-r")
        .arg(&driver)
        .output()
        .expect("run ldconfig");
    assert!(
        out.status.success(),
        "ldconfig: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        lib.join("libcuda.so.1").exists(),
        "ldconfig made no soname links"
    );

    write(&driver.join("usr/bin/nvidia-smi"), "#!/bin/sh\n");
    write(
        &driver.join("usr/bin/nvidia-cuda-mps-control"),
        "#!/bin/sh\n",
    );
    write(
        &driver.join(format!("lib/firmware/nvidia/{VERSION}/gsp_tu10x.bin")),
        "fw",
    );
    write(
        &driver.join(format!("lib/firmware/nvidia/{VERSION}/gsp_ga10x.bin")),
        "fw",
    );
    write(
        &driver.join(format!("lib/firmware/nvidia/{VERSION}/README")),
        "not firmware",
    );
    write(&driver.join("run/nvidia-persistenced/socket"), "");
    write(&driver.join("usr/share/vulkan/icd.d/nvidia_icd.json"), "{}");

    let dev = base.join("devroot/dev");
    char_dev(&dev.join("nvidiactl"), 195, 255, 0o666);
    char_dev(&dev.join("nvidia-modeset"), 195, 254, 0o666);
    char_dev(&dev.join("nvidia-uvm"), 510, 0, 0o666);
    char_dev(&dev.join("nvidia-uvm-tools"), 510, 1, 0o666);
    char_dev(&dev.join("nvidia0"), 195, 0, 0o666);
    char_dev(&dev.join("nvidia1"), 195, 1, 0o666);
    char_dev(&dev.join("dri/card1"), 226, 1, 0o660);
    char_dev(&dev.join("dri/renderD128"), 226, 128, 0o666);

    let sys = base.join("sys");
    std::fs::create_dir_all(sys.join("bus/pci/devices/0000:3b:00.0/drm/card1")).unwrap();
    std::fs::create_dir_all(sys.join("bus/pci/devices/0000:3b:00.0/drm/renderD128")).unwrap();
    std::fs::create_dir_all(sys.join("bus/pci/devices/0000:86:00.0")).unwrap();

    let proc = base.join("proc");
    write(
        &proc.join("devices"),
        "Character devices:\n  1 mem\n195 nvidia\n237 nvidia-caps\n510 nvidia-uvm\n\nBlock devices:\n  8 sd\n",
    );
    write(
        &proc.join("driver/nvidia-caps/mig-minors"),
        "config 1\nmonitor 2\ngpu1/gi1/access 21\ngpu1/gi1/ci0/access 22\ngpu1/gi2/access 30\n",
    );

    let roots = NvidiaRoots {
        driver_root: driver,
        dev_root: base.join("devroot"),
        sysfs_root: sys,
        proc_root: proc,
        ld_cache: None,
        nvml_library: None,
    };
    Host {
        _tmp: tmp,
        roots,
        base,
    }
}

fn inventory(host: &Host) -> nvidia::Inventory {
    match nvidia::discover(&host.roots).unwrap() {
        Discovery::Found(inv) => inv,
        Discovery::Absent { reason } => panic!("stub NVML not found: {reason}"),
    }
}

fn expected_spec(host: &Host) -> CdiSpec {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/nvidia-expected.yaml"),
    )
    .unwrap()
    .replace(
        "{driver_root}",
        &host.roots.driver_root.display().to_string(),
    )
    .replace("{dev_root}", &host.roots.dev_root.display().to_string());
    CdiSpec::parse(text.as_bytes(), SpecFormat::Yaml).unwrap()
}

#[test]
fn discovers_stub_gpus_through_the_driver_roots_ld_cache() {
    let host = fake_host();
    let inv = inventory(&host);
    assert_eq!(inv.driver_version, VERSION);
    assert_eq!(inv.cuda_driver_version, Some(12040));
    assert_eq!(inv.gpus.len(), 2);
    let g0 = &inv.gpus[0];
    assert_eq!(g0.uuid, "GPU-11111111-2222-3333-4444-555555555555");
    assert_eq!((g0.index, g0.minor), (0, 0));
    assert_eq!(g0.pci_bus_id, "0000:3b:00.0");
    assert_eq!(g0.name, "NVIDIA H200");
    assert!(!g0.mig_enabled && g0.migs.is_empty());
    let g1 = &inv.gpus[1];
    assert!(g1.mig_enabled);
    assert_eq!(g1.pci_bus_id, "0000:86:00.0");
    assert_eq!(
        g1.migs,
        vec![nvidia::MigDevice {
            index: 0,
            uuid: "MIG-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".into(),
            gpu_instance: 1,
            compute_instance: 0,
        }]
    );
}

#[test]
fn generated_spec_matches_the_documented_toolkit_output() {
    let host = fake_host();
    let inv = inventory(&host);
    let generated = nvidia::generate(&inv, &host.roots, &GenerateOptions::default()).unwrap();
    let got = &generated.spec;
    let want = expected_spec(&host);

    assert_eq!(got.cdi_version, want.cdi_version);
    assert_eq!(got.kind, want.kind);
    assert_eq!(got.annotations, want.annotations);
    let (g, w) = (&got.container_edits, &want.container_edits);
    assert_eq!(g.env, w.env, "containerEdits.env");
    assert_eq!(g.device_nodes, w.device_nodes, "containerEdits.deviceNodes");
    assert_eq!(g.hooks, w.hooks, "containerEdits.hooks");
    for (i, (gm, wm)) in g.mounts.iter().zip(&w.mounts).enumerate() {
        assert_eq!(gm, wm, "containerEdits.mounts[{i}]");
    }
    assert_eq!(g.mounts.len(), w.mounts.len(), "containerEdits.mounts");
    let names = |s: &CdiSpec| s.devices.iter().map(|d| d.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(got), names(&want));
    for (gd, wd) in got.devices.iter().zip(&want.devices) {
        assert_eq!(gd.container_edits, wd.container_edits, "device {}", gd.name);
    }
    assert_eq!(got, &want);

    // What we write loads back as a valid spec, identical.
    let yaml = got.to_yaml().unwrap();
    assert_eq!(
        &CdiSpec::parse(yaml.as_bytes(), SpecFormat::Yaml).unwrap(),
        got
    );
    let json = got.to_json().unwrap();
    assert_eq!(
        &CdiSpec::parse(json.as_bytes(), SpecFormat::Json).unwrap(),
        got
    );

    // The in-process equivalent of the hooks.
    let lib = Path::new("/").join(LIBDIR);
    assert_eq!(generated.setup.ld_folders, vec![lib.clone()]);
    assert!(generated.setup.symlinks.contains(&Symlink {
        target: PathBuf::from(format!("libcuda.so.{VERSION}")),
        link: lib.join("libcuda.so.1"),
    }));
    assert_eq!(
        generated.setup.symlinks.last(),
        Some(&Symlink {
            target: PathBuf::from("libcuda.so.1"),
            link: lib.join("libcuda.so"),
        })
    );
}

fn spec_with_env(env: &[&str]) -> Spec {
    let mut spec = Spec::default();
    let mut all: Vec<String> = vec!["PATH=/usr/bin".into()];
    all.extend(env.iter().map(|s| (*s).to_owned()));
    spec.process_mut().as_mut().unwrap().set_env(Some(all));
    spec
}

fn request(spec: &Spec) -> NvidiaRequest {
    requests_from_spec(spec)
        .unwrap()
        .nvidia
        .expect("an NVIDIA request")
}

fn device_paths(spec: &Spec) -> Vec<String> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.devices().as_ref())
        .map(|d| d.iter().map(|d| d.path().display().to_string()).collect())
        .unwrap_or_default()
}

fn mount_dests(spec: &Spec) -> Vec<String> {
    spec.mounts()
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.destination().display().to_string())
        .collect()
}

#[test]
fn legacy_mig_request_is_injected_with_builtin_setup() {
    let host = fake_host();
    let mut spec = spec_with_env(&[
        "NVIDIA_VISIBLE_DEVICES=GPU-66666666-7777-8888-9999-000000000000/1/0",
        "NVIDIA_DRIVER_CAPABILITIES=compute,utility",
    ]);
    let req = request(&spec);
    let setup = nvidia::inject_request(&mut spec, &req, &host.roots, HookStyle::Builtin).unwrap();

    let linux = spec.linux().as_ref().unwrap();
    let devs = linux.devices().as_ref().unwrap();
    let find = |p: &str| devs.iter().find(|d| d.path() == Path::new(p)).unwrap();
    let gpu = find("/dev/nvidia1");
    assert_eq!(
        (gpu.typ(), gpu.major(), gpu.minor()),
        (LinuxDeviceType::C, 195, 1)
    );
    let uvm = find("/dev/nvidia-uvm");
    assert_eq!((uvm.major(), uvm.minor()), (510, 0));
    let cap = find("/dev/nvidia-caps/nvidia-cap22");
    assert_eq!((cap.major(), cap.minor()), (237, 22));
    // compute,utility: no modeset node, no GPU 0, no DRM nodes.
    let paths = device_paths(&spec);
    for absent in ["/dev/nvidia0", "/dev/nvidia-modeset", "/dev/dri/card1"] {
        assert!(
            !paths.contains(&absent.to_string()),
            "{absent} in {paths:?}"
        );
    }
    let rules: Vec<String> = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    for rule in [
        "c 195:1 rwm",
        "c 237:21 rwm",
        "c 237:22 rwm",
        "c 195:255 rwm",
    ] {
        assert!(rules.contains(&rule.to_string()), "{rule} not in {rules:?}");
    }

    let mounts = mount_dests(&spec);
    let lib = format!("/{LIBDIR}");
    assert!(mounts.contains(&format!("{lib}/libcuda.so.{VERSION}")));
    assert!(mounts.contains(&format!("{lib}/libnvidia-ml.so.{VERSION}")));
    assert!(mounts.contains(&"/usr/bin/nvidia-smi".to_string()));
    for absent in ["libnvcuvid", "libGLX_nvidia", "libfoo"] {
        assert!(
            !mounts.iter().any(|m| m.contains(absent)),
            "{absent} mounted"
        );
    }
    assert!(!mounts.contains(&"/usr/share/vulkan/icd.d/nvidia_icd.json".to_string()));
    // Builtin style: no hook binary in the spec.
    assert!(
        spec.hooks()
            .as_ref()
            .is_none_or(|h| h.create_container().is_none())
    );
    let env = spec.process().as_ref().unwrap().env().clone().unwrap();
    assert!(env.contains(&"NVIDIA_VISIBLE_DEVICES=void".to_string()));

    // Do the hooks' work on a rootfs ourselves.
    let rootfs = host.base.join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    setup.apply(&rootfs).unwrap();
    let libdir = rootfs.join(LIBDIR);
    assert_eq!(
        std::fs::read_link(libdir.join("libcuda.so")).unwrap(),
        PathBuf::from("libcuda.so.1")
    );
    assert_eq!(
        std::fs::read_link(libdir.join("libcuda.so.1")).unwrap(),
        PathBuf::from(format!("libcuda.so.{VERSION}"))
    );
    let conf = std::fs::read_to_string(rootfs.join(LDCONFIG_FILE.trim_start_matches('/'))).unwrap();
    assert!(conf.lines().any(|l| l == lib), "{conf}");
    // Idempotent.
    setup.apply(&rootfs).unwrap();
}

#[test]
fn none_injects_the_driver_only_and_unknown_devices_list_known_names() {
    let host = fake_host();
    let mut spec = spec_with_env(&["NVIDIA_VISIBLE_DEVICES=none"]);
    let req = request(&spec);
    nvidia::inject_request(&mut spec, &req, &host.roots, HookStyle::Builtin).unwrap();
    let paths = device_paths(&spec);
    assert!(paths.contains(&"/dev/nvidiactl".to_string()));
    assert!(
        !paths
            .iter()
            .any(|p| p.starts_with("/dev/nvidia0") || p.starts_with("/dev/nvidia1"))
    );
    assert!(
        mount_dests(&spec)
            .iter()
            .any(|m| m.ends_with(&format!("libcuda.so.{VERSION}")))
    );

    let mut spec = spec_with_env(&["NVIDIA_VISIBLE_DEVICES=0,7"]);
    let before = spec.clone();
    let req = request(&spec);
    let err = nvidia::inject_request(&mut spec, &req, &host.roots, HookStyle::Builtin).unwrap_err();
    assert!(matches!(err, Error::UnknownDevice { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("unknown NVIDIA device \"7\"; known devices: 0, GPU-1111"),
        "{msg}"
    );
    assert!(msg.contains("1:0") && msg.contains("all"), "{msg}");
    assert_eq!(spec, before);

    // Index, UUID and MIG forms resolve to the same devices as their CDI names.
    let inv = inventory(&host);
    let generated = nvidia::generate(&inv, &host.roots, &GenerateOptions::default()).unwrap();
    let spec = spec_with_env(&[
        "NVIDIA_VISIBLE_DEVICES=GPU-11111111-2222-3333-4444-555555555555,1:0,MIG-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee,nvidia.com/gpu=1",
    ]);
    let names = nvidia::select_devices(&generated, &request(&spec)).unwrap();
    assert_eq!(
        names,
        [
            "GPU-11111111-2222-3333-4444-555555555555",
            "1:0",
            "MIG-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
            "1"
        ]
    );
}

#[test]
fn a_spec_from_disk_runs_without_the_hook_binary() {
    let host = fake_host();
    let inv = inventory(&host);
    let generated = nvidia::generate(&inv, &host.roots, &GenerateOptions::default()).unwrap();
    let dir = host.base.join("cdi");
    write(&dir.join("nvidia.yaml"), &generated.spec.to_yaml().unwrap());
    let registry = Registry::load(&[&dir]);
    assert!(registry.errors().is_empty(), "{:?}", registry.errors());
    let mut spec = Spec::default();
    let name: QualifiedName = "nvidia.com/gpu=all".parse().unwrap();
    registry.inject(&mut spec, &[name]).unwrap();
    let hooks = spec
        .hooks()
        .as_ref()
        .unwrap()
        .create_container()
        .clone()
        .unwrap();
    assert_eq!(hooks.len(), 2);
    assert_eq!(hooks[0].args().as_ref().unwrap()[1], "create-symlinks");
    assert_eq!(hooks[1].args().as_ref().unwrap()[1], "update-ldcache");

    let setup = RootfsSetup::take_from_spec(&mut spec);
    assert!(spec.hooks().as_ref().unwrap().create_container().is_none());
    let lib = Path::new("/").join(LIBDIR);
    assert_eq!(setup.ld_folders, vec![lib.clone()]);
    assert_eq!(
        setup.symlinks,
        vec![Symlink {
            target: "libcuda.so.1".into(),
            link: lib.join("libcuda.so"),
        }]
    );
    let paths = device_paths(&spec);
    for p in [
        "/dev/nvidia0",
        "/dev/nvidia1",
        "/dev/dri/renderD128",
        "/dev/nvidia-caps/nvidia-cap21",
    ] {
        assert!(paths.contains(&p.to_string()), "{p} not in {paths:?}");
    }
}

#[test]
fn symlinks_in_the_image_cannot_redirect_setup_to_the_host() {
    let host = fake_host();
    let outside = host.base.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let rootfs = host.base.join("evil-rootfs");
    // /usr in the image is an absolute symlink to a host directory, and /etc is a
    // relative one climbing out of the rootfs.
    symlink(outside.to_str().unwrap(), &rootfs.join("usr"));
    symlink("../../../../../../../../outside", &rootfs.join("etc"));
    let setup = RootfsSetup {
        symlinks: vec![Symlink {
            target: "libcuda.so.1".into(),
            link: Path::new("/").join(LIBDIR).join("libcuda.so"),
        }],
        ld_folders: vec![Path::new("/").join(LIBDIR)],
    };
    setup.apply(&rootfs).unwrap();
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "wrote outside the rootfs"
    );
    // Both landed inside the rootfs, where the symlinks resolve when rooted there.
    let inside_usr = rootfs.join(outside.strip_prefix("/").unwrap());
    assert!(std::fs::symlink_metadata(inside_usr.join("lib/x86_64-linux-gnu/libcuda.so")).is_ok());
    assert!(
        rootfs
            .join("outside/ld.so.conf.d/00-warren-nvidia.conf")
            .exists()
    );
}

#[test]
fn no_nvml_means_no_gpus_not_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let roots = NvidiaRoots {
        driver_root: tmp.path().to_path_buf(),
        dev_root: tmp.path().to_path_buf(),
        sysfs_root: tmp.path().join("sys"),
        proc_root: tmp.path().join("proc"),
        ld_cache: None,
        nvml_library: None,
    };
    match nvidia::discover(&roots).unwrap() {
        Discovery::Absent { reason } => assert!(reason.contains("libnvidia-ml.so.1"), "{reason}"),
        Discovery::Found(inv) => panic!("{inv:?}"),
    }
    let mut spec = spec_with_env(&["NVIDIA_VISIBLE_DEVICES=all"]);
    let before = spec.clone();
    let req = request(&spec);
    let err = nvidia::inject_request(&mut spec, &req, &roots, HookStyle::Builtin).unwrap_err();
    assert!(matches!(err, Error::NotPresent(_)), "{err}");
    assert_eq!(spec, before);
}
