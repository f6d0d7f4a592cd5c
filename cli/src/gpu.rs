//! `warren gpu ls` and `warren gpu cdi`: the host's accelerators as warren sees them, and
//! CDI specs for them (the same discovery `warren-runtime cdi generate` and `--gpus` use).
//!
//! `ls` answers "what can I pass to `--gpus` and `--device`": the NVIDIA GPUs (with MIG
//! devices) NVML reports, the RDMA, AMD and TPU devices found in sysfs, and the fully
//! qualified names in the CDI registry. Every root is a parameter; only `main.rs` decides
//! them.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use warren_gpu::nvidia::{Discovery, NvidiaRoots, discover};
use warren_runtime::verbs::cdi::{self, Generated, Kind};

/// Errors of `warren gpu`.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// Discovery or spec generation failed (the message names the device or file).
    #[error("{0}")]
    Device(String),
    /// Writing the output failed.
    #[error("write {path}: {source}")]
    Write {
        /// Where.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A bad argument.
    #[error("{flag} {value:?}: {msg}")]
    Argument {
        /// The flag.
        flag: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        msg: String,
    },
}

type Result<T> = std::result::Result<T, GpuError>;

fn dev(e: impl std::fmt::Display) -> GpuError {
    GpuError::Device(e.to_string())
}

fn stdout_err(e: std::io::Error) -> GpuError {
    GpuError::Write {
        path: "stdout".into(),
        source: e,
    }
}

/// Where `warren gpu` looks.
#[derive(Debug, Clone)]
pub struct GpuRoots {
    /// NVML library, driver root, sysfs and /dev.
    pub nvidia: NvidiaRoots,
    /// CDI spec directories, increasing priority.
    pub cdi_dirs: Vec<PathBuf>,
}

impl GpuRoots {
    /// The host's roots and the default CDI directories (`/etc/cdi`, `/var/run/cdi`).
    pub fn host() -> GpuRoots {
        GpuRoots {
            nvidia: NvidiaRoots::host(),
            cdi_dirs: warren_gpu::cdi::DEFAULT_SPEC_DIRS
                .iter()
                .map(PathBuf::from)
                .collect(),
        }
    }
}

/// The device names of one kind's generated spec, or why there is none.
fn names_of(kind: Kind, roots: &NvidiaRoots) -> Result<std::result::Result<Vec<String>, String>> {
    let mut out = Vec::new();
    for g in cdi::generate(kind, roots, true).map_err(dev)? {
        match g {
            Generated::Spec(s) => {
                out.extend(s.devices.iter().map(|d| format!("{}={}", s.kind, d.name)));
            }
            Generated::Absent(_, why) => return Ok(Err(why)),
        }
    }
    Ok(Ok(out))
}

/// Everything `ls` shows, as JSON (the `--format json` output and the table's source).
pub fn inventory(roots: &GpuRoots) -> Result<Value> {
    let nvidia = match discover(&roots.nvidia).map_err(dev)? {
        Discovery::Absent { reason } => json!({ "present": false, "reason": reason }),
        Discovery::Found(inv) => json!({
            "present": true,
            "driver_version": inv.driver_version,
            "cuda_driver_version": inv.cuda_driver_version,
            "gpus": inv.gpus.iter().map(|g| json!({
                "index": g.index,
                "name": g.name,
                "uuid": g.uuid,
                "minor": g.minor,
                "pci_bus_id": g.pci_bus_id,
                "mig_enabled": g.mig_enabled,
                "migs": g.migs.iter().map(|m| json!({
                    "name": format!("{}:{}", g.index, m.index),
                    "uuid": m.uuid,
                    "gpu_instance": m.gpu_instance,
                    "compute_instance": m.compute_instance,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }),
    };
    let mut v = json!({ "nvidia": nvidia });
    for (key, kind) in [("rdma", Kind::Rdma), ("amd", Kind::Amd), ("tpu", Kind::Tpu)] {
        v[key] = match names_of(kind, &roots.nvidia)? {
            Ok(names) => json!({ "present": true, "devices": names }),
            Err(why) => json!({ "present": false, "reason": why }),
        };
    }
    let dirs: Vec<&Path> = roots.cdi_dirs.iter().map(PathBuf::as_path).collect();
    let (names, errors) = cdi::list(&dirs);
    v["cdi"] = json!({
        "dirs": roots.cdi_dirs,
        "devices": names,
        "skipped": errors,
    });
    Ok(v)
}

/// `warren gpu ls`: a readable summary, or the inventory as JSON.
pub fn ls(roots: &GpuRoots, json_out: bool, out: &mut dyn Write) -> Result<()> {
    let v = inventory(roots)?;
    if json_out {
        let s = serde_json::to_string_pretty(&v).map_err(dev)?;
        return writeln!(out, "{s}").map_err(stdout_err);
    }
    let text = render_table(&v);
    out.write_all(text.as_bytes()).map_err(stdout_err)
}

fn s(v: &Value) -> String {
    match v {
        Value::String(x) => x.clone(),
        Value::Null => "-".into(),
        x => x.to_string(),
    }
}

/// The table form of [`inventory`].
pub fn render_table(v: &Value) -> String {
    let mut t = String::new();
    let nv = &v["nvidia"];
    if nv["present"] == true {
        let cuda = nv["cuda_driver_version"]
            .as_i64()
            .map(|c| format!(", CUDA {}.{}", c / 1000, (c % 1000) / 10))
            .unwrap_or_default();
        t.push_str(&format!(
            "NVIDIA (driver {}{cuda}):  use --gpus all|INDEX[,INDEX]|UUID\n",
            s(&nv["driver_version"])
        ));
        t.push_str(&format!(
            "  {:<5} {:<28} {:<42} {:<14} {}\n",
            "INDEX", "NAME", "UUID", "PCI", "MIG"
        ));
        for g in nv["gpus"].as_array().into_iter().flatten() {
            let migs = g["migs"].as_array().map(Vec::len).unwrap_or(0);
            let mig = if g["mig_enabled"] == true {
                format!("on, {migs} devices")
            } else {
                "off".into()
            };
            t.push_str(&format!(
                "  {:<5} {:<28} {:<42} {:<14} {}\n",
                s(&g["index"]),
                s(&g["name"]),
                s(&g["uuid"]),
                s(&g["pci_bus_id"]),
                mig
            ));
            for m in g["migs"].as_array().into_iter().flatten() {
                t.push_str(&format!(
                    "        MIG {:<22} {}\n",
                    s(&m["name"]),
                    s(&m["uuid"])
                ));
            }
        }
    } else {
        t.push_str(&format!("NVIDIA: none ({})\n", s(&nv["reason"])));
    }
    for (key, title) in [("rdma", "RDMA"), ("amd", "AMD"), ("tpu", "TPU")] {
        let x = &v[key];
        if x["present"] == true {
            let names: Vec<String> = x["devices"]
                .as_array()
                .into_iter()
                .flatten()
                .map(s)
                .collect();
            t.push_str(&format!("{title}: {}\n", names.join(" ")));
        } else {
            t.push_str(&format!("{title}: none ({})\n", s(&x["reason"])));
        }
    }
    let c = &v["cdi"];
    let dirs: Vec<String> = c["dirs"].as_array().into_iter().flatten().map(s).collect();
    let names: Vec<String> = c["devices"]
        .as_array()
        .into_iter()
        .flatten()
        .map(s)
        .collect();
    if names.is_empty() {
        t.push_str(&format!(
            "CDI ({}): no devices (write specs with `warren gpu cdi --output`)\n",
            dirs.join(", ")
        ));
    } else {
        t.push_str(&format!("CDI ({}):  use --device NAME\n", dirs.join(", ")));
        for n in names {
            t.push_str(&format!("  {n}\n"));
        }
    }
    for e in c["skipped"].as_array().into_iter().flatten() {
        t.push_str(&format!("  skipped: {}\n", s(e)));
    }
    t
}

/// Options of `warren gpu cdi`.
#[derive(Debug, Clone)]
pub struct CdiOptions {
    /// nvidia, rdma, amd, tpu or all.
    pub kind: String,
    /// JSON instead of YAML.
    pub json: bool,
    /// Write here (atomically) instead of to `out`.
    pub output: Option<PathBuf>,
    /// No hook entries: warren-runtime does the NVIDIA createContainer work itself.
    pub builtin_hooks: bool,
}

/// `warren gpu cdi`: CDI specs for this host, as `nvidia-ctk cdi generate` (plus RDMA, AMD
/// and TPU). Returns the lines for kinds found absent (for stderr) and how many specs
/// were written.
pub fn cdi_generate(
    roots: &GpuRoots,
    o: &CdiOptions,
    out: &mut dyn Write,
) -> Result<(usize, Vec<String>)> {
    let kind: Kind = o.kind.parse().map_err(|_| GpuError::Argument {
        flag: "--kind",
        value: o.kind.clone(),
        msg: "expected nvidia, rdma, amd, tpu or all".into(),
    })?;
    let (text, found, absent) = cdi::render(
        cdi::generate(kind, &roots.nvidia, o.builtin_hooks).map_err(dev)?,
        o.json,
    )
    .map_err(dev)?;
    match &o.output {
        Some(p) if found > 0 => write_file(p, &text)?,
        Some(_) => {}
        None => out.write_all(text.as_bytes()).map_err(stdout_err)?,
    }
    Ok((found, absent))
}

/// Writes through a temp file and a rename, so the CDI registry never reads half a spec.
fn write_file(p: &Path, text: &str) -> Result<()> {
    let werr = |source| GpuError::Write {
        path: p.display().to_string(),
        source,
    };
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(werr)?;
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "spec".into());
    let tmp = dir.join(format!(".{name}.warren-tmp-{}", std::process::id()));
    let r = std::fs::write(&tmp, text)
        .and_then(|()| {
            std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        })
        .and_then(|()| std::fs::rename(&tmp, p));
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        return Err(werr(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn empty_roots(t: &Path) -> GpuRoots {
        let sys = t.join("sys");
        std::fs::create_dir_all(sys.join("bus/pci/devices")).unwrap();
        std::fs::create_dir_all(sys.join("class/infiniband")).unwrap();
        std::fs::create_dir_all(sys.join("class/drm")).unwrap();
        let mut nvidia = NvidiaRoots::host();
        nvidia.sysfs_root = sys;
        nvidia.dev_root = t.to_path_buf();
        nvidia.nvml_library = Some(t.join("no-libnvidia-ml.so.1"));
        GpuRoots {
            nvidia,
            cdi_dirs: vec![t.join("cdi")],
        }
    }

    #[test]
    fn ls_on_a_host_without_devices_says_why_for_each_kind() {
        let t = tempfile::tempdir().unwrap();
        let r = empty_roots(t.path());
        let v = inventory(&r).unwrap();
        assert_eq!(v["nvidia"]["present"], false, "{v}");
        for k in ["rdma", "amd", "tpu"] {
            assert_eq!(v[k]["present"], false, "{v}");
            assert!(!s(&v[k]["reason"]).is_empty());
        }
        let text = render_table(&v);
        assert!(text.starts_with("NVIDIA: none ("), "{text}");
        assert!(
            text.contains("RDMA: none (") && text.contains("TPU: none ("),
            "{text}"
        );
        assert!(text.contains("no devices"), "{text}");
    }

    #[test]
    fn ls_lists_cdi_devices_and_reports_bad_specs() {
        let t = tempfile::tempdir().unwrap();
        let r = empty_roots(t.path());
        let d = t.path().join("cdi");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("vendor.yaml"),
            "cdiVersion: 0.6.0\nkind: vendor.com/dev\ndevices:\n- name: a\n  containerEdits:\n    env: [X=1]\n",
        )
        .unwrap();
        std::fs::write(d.join("broken.json"), "{ not json").unwrap();
        let v = inventory(&r).unwrap();
        let text = render_table(&v);
        assert!(text.contains("  vendor.com/dev=a\n"), "{text}");
        assert!(
            text.contains("skipped: ") && text.contains("broken.json"),
            "{text}"
        );
    }

    /// With the stub NVML of `gpu-passthrough`'s tests (two fake GPUs, built here with
    /// gcc), `ls` lists both GPUs with their UUIDs.
    #[test]
    fn ls_lists_the_gpus_nvml_reports() {
        let t = tempfile::tempdir().unwrap();
        let mut r = empty_roots(t.path());
        let src =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../gpu-passthrough/tests/data/nvml_stub.c");
        let lib = t.path().join("libnvidia-ml.so.1");
        let out = std::process::Command::new("gcc")
            .args([
                "-shared",
                "-fPIC",
                "-O0",
                "-Wl,-soname,libnvidia-ml.so.1",
                "-o",
            ])
            .arg(&lib)
            .arg(&src)
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!("gcc: {}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => {
                eprintln!("SKIPPED: no gcc ({e})");
                return;
            }
        }
        r.nvidia.nvml_library = Some(lib);
        let v = inventory(&r).unwrap();
        assert_eq!(v["nvidia"]["present"], true, "{v}");
        let gpus = v["nvidia"]["gpus"].as_array().unwrap();
        assert_eq!(gpus.len(), 2, "{v}");
        let text = render_table(&v);
        assert!(text.starts_with("NVIDIA (driver "), "{text}");
        for g in gpus {
            assert!(text.contains(&s(&g["uuid"])), "{text}");
        }
    }

    #[test]
    fn cdi_with_an_unknown_kind_is_a_clear_error() {
        let t = tempfile::tempdir().unwrap();
        let r = empty_roots(t.path());
        let o = CdiOptions {
            kind: "fpga".into(),
            json: false,
            output: None,
            builtin_hooks: true,
        };
        let e = cdi_generate(&r, &o, &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("--kind") && e.contains("fpga"), "{e}");
    }

    #[test]
    fn cdi_without_devices_writes_nothing_and_says_why() {
        let t = tempfile::tempdir().unwrap();
        let r = empty_roots(t.path());
        let out_file = t.path().join("out/nvidia.yaml");
        let o = CdiOptions {
            kind: "all".into(),
            json: false,
            output: Some(out_file.clone()),
            builtin_hooks: true,
        };
        let (found, absent) = cdi_generate(&r, &o, &mut Vec::new()).unwrap();
        assert_eq!(found, 0);
        assert_eq!(absent.len(), 4, "{absent:?}");
        assert!(!out_file.exists());
    }
}
