//! Running one command in a container made from layers, with `warren-runtime`: an
//! overlay of the layers plus a fresh upper directory, an OCI bundle we write, and the
//! runtime's `run` verb. After the run the upper directory is what the command changed.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;

use super::BuildError;
use crate::error::IoContext;
use crate::fsutil;
use crate::rootfs::{mount_overlay, overlay_options, unmount};

/// Capabilities for build and smoke containers: Docker's default set (what apt's
/// privilege drop to `_apt`, dpkg's chown and pip need), nothing more.
const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// One container run.
#[derive(Debug)]
pub(crate) struct Run<'a> {
    /// The `warren-runtime` binary.
    pub runtime: &'a Path,
    /// `--root` for the runtime's state.
    pub runtime_root: &'a Path,
    /// Image layers, bottom first.
    pub lowers: &'a [PathBuf],
    /// Empty directory to hold upper, work, merged and the bundle.
    pub scratch: &'a Path,
    /// The command.
    pub args: Vec<String>,
    /// Its environment.
    pub env: Vec<String>,
    /// Its working directory.
    pub cwd: String,
    /// Share the host's network namespace (package downloads); otherwise a new, empty one.
    pub host_network: bool,
    /// CA certificates for TLS inside the container (a TLS-intercepting proxy's CA): copied
    /// into the bundle and mounted read-only at [`CA_PATH`], never into the layer.
    pub ca_bundle: Option<&'a Path>,
}

/// Where a build container sees the CA bundle: inside the `/tmp` tmpfs, so its mount
/// point never touches the upper directory (the layer is the same with or without it).
pub(crate) const CA_PATH: &str = "/tmp/.warren-build-ca.crt";

/// What a run did.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub status: ExitStatus,
    /// The last lines of output.
    pub tail: String,
    /// The upper directory (the changes).
    pub upper: PathBuf,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// Unmounts `merged` when dropped, whatever happened.
struct MountGuard(PathBuf);
impl Drop for MountGuard {
    fn drop(&mut self) {
        if let Err(e) = unmount(&self.0) {
            tracing::warn!(error = %e, "could not unmount build rootfs");
        }
    }
}

/// Deletes the runtime's container record when dropped.
struct ContainerGuard<'a> {
    runtime: &'a Path,
    root: &'a Path,
    id: String,
}
impl Drop for ContainerGuard<'_> {
    fn drop(&mut self) {
        let _ = Command::new(self.runtime)
            .arg("--root")
            .arg(self.root)
            .args(["delete", "--force", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn bundle_config(
    r: &Run<'_>,
    merged: &Path,
    hostname: &str,
    ca_copy: Option<&Path>,
) -> serde_json::Value {
    let mut ns = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if !r.host_network {
        ns.push(json!({"type": "network"}));
    }
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]}),
    ];
    if r.host_network {
        // The only host file a build sees: name resolution for package downloads.
        mounts.push(json!({"destination": "/etc/resolv.conf", "type": "bind", "source": "/etc/resolv.conf", "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]}));
    }
    let mut env = r.env.clone();
    if let Some(ca) = ca_copy {
        mounts.push(json!({"destination": CA_PATH, "type": "bind", "source": ca, "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]}));
        for k in [
            "SSL_CERT_FILE",
            "PIP_CERT",
            "REQUESTS_CA_BUNDLE",
            "CURL_CA_BUNDLE",
        ] {
            env.retain(|e| !e.starts_with(&format!("{k}=")));
            env.push(format!("{k}={CA_PATH}"));
        }
    }
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": r.args,
            "env": env,
            "cwd": r.cwd,
            "capabilities": {"bounding": CAPS, "effective": CAPS, "permitted": CAPS},
            "noNewPrivileges": false
        },
        "root": {"path": merged, "readonly": false},
        "hostname": hostname,
        "mounts": mounts,
        "linux": {
            "namespaces": ns,
            "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"],
            "readonlyPaths": ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// Runs the command; `on_line` sees each output line (stdout and stderr).
pub(crate) fn run(r: &Run<'_>, on_line: &mut dyn FnMut(&str)) -> crate::Result<Outcome> {
    let upper = r.scratch.join("upper");
    let work = r.scratch.join("work");
    let merged = r.scratch.join("merged");
    let bundle = r.scratch.join("bundle");
    for d in [&upper, &work, &merged, &bundle] {
        fsutil::mkdir_p(d)?;
    }
    std::fs::set_permissions(&upper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .at("chmod", &upper)?;
    fsutil::mkdir_p(r.runtime_root)?;
    // redirect_dir and metacopy off: the upper directory must hold whole files and plain
    // whiteouts, the only forms an OCI layer can express.
    let opts = overlay_options(
        r.lowers,
        Some((&upper, &work)),
        "redirect_dir=off,metacopy=off,index=off",
    )?;
    mount_overlay(&merged, &opts)?;
    let _mount = MountGuard(merged.clone());
    let hostname = "warren-build";
    let ca_copy = match r.ca_bundle {
        Some(src) => {
            let dst = bundle.join("ca-bundle.crt");
            std::fs::copy(src, &dst).at("copy CA bundle", src)?;
            Some(dst)
        }
        None => None,
    };
    let cfg = bundle_config(r, &merged, hostname, ca_copy.as_deref());
    let cfg =
        serde_json::to_vec_pretty(&cfg).map_err(|e| crate::store::bad_json("config.json", e))?;
    fsutil::write_atomic(&bundle.join("config.json"), &cfg)?;

    let id = format!(
        "warren-build-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let mut child = Command::new(r.runtime)
        .arg("--root")
        .arg(r.runtime_root)
        .arg("run")
        .arg("--bundle")
        .arg(&bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| BuildError::Runtime {
            path: r.runtime.to_path_buf(),
            message: e.to_string(),
        })?;
    let _container = ContainerGuard {
        runtime: r.runtime,
        root: r.runtime_root,
        id: id.clone(),
    };
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let mut readers = Vec::new();
    let pipes: Vec<Box<dyn std::io::Read + Send>> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    .collect();
    for p in pipes {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            let mut br = BufReader::new(p);
            let mut buf = Vec::new();
            while br.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
                let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                buf.clear();
                if tx.send(line).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);
    let mut tail: VecDeque<String> = VecDeque::new();
    for line in rx {
        on_line(&line);
        if tail.len() == 40 {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    for t in readers {
        let _ = t.join();
    }
    let status = child.wait().map_err(|e| BuildError::Runtime {
        path: r.runtime.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(Outcome {
        status,
        tail: Vec::from(tail).join("\n"),
        upper,
    })
}
