//! `spec`: write a default `config.json`, the same starting point `runc spec` gives.

use std::path::Path;

use serde_json::{Value, json};

use crate::error::{Result, RuntimeError};

/// The default spec: an interactive `sh` as root with a read-only rootfs, the standard
/// pseudo-filesystems, masked and read-only kernel paths, and every device denied.
/// `rootless` maps the calling user to root in a user namespace and drops the network
/// namespace and cgroup device rules, which an unprivileged user cannot have.
pub fn default_spec(rootless: bool, uid: u32, gid: u32) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut devpts = json!([
        "nosuid",
        "noexec",
        "newinstance",
        "ptmxmode=0666",
        "mode=0620",
        "gid=5"
    ]);
    let sys = if rootless {
        if let Some(a) = devpts.as_array_mut() {
            a.retain(|v| v != "gid=5");
        }
        json!({"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
    } else {
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]})
    };
    let mut linux = json!({
        "resources": {"devices": [{"allow": false, "access": "rwm"}]},
        "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
        "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
    });
    if rootless && let Some(l) = linux.as_object_mut() {
        l.remove("resources");
        l.insert(
            "uidMappings".into(),
            json!([{"containerID": 0, "hostID": uid, "size": 1}]),
        );
        l.insert(
            "gidMappings".into(),
            json!([{"containerID": 0, "hostID": gid, "size": 1}]),
        );
        l.insert(
            "namespaces".into(),
            json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}]),
        );
    }
    json!({
        "ociVersion": crate::state::OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "warren",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": devpts},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            sys,
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": linux
    })
}

/// Writes the default spec to `BUNDLE/config.json`, refusing to overwrite one.
pub fn write_spec(bundle: &Path, rootless: bool, uid: u32, gid: u32) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(RuntimeError::InvalidArgument {
            what: "bundle",
            value: bundle.display().to_string(),
            msg: "config.json exists; remove it first".into(),
        });
    }
    let text = serde_json::to_string_pretty(&default_spec(rootless, uid, gid)).unwrap_or_default();
    std::fs::write(&path, text + "\n").map_err(|e| RuntimeError::io("write", &path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_parses_as_oci() {
        for rootless in [false, true] {
            let v = default_spec(rootless, 1000, 1000);
            let bytes = serde_json::to_vec(&v).unwrap_or_default();
            let spec =
                crate::spec::parse_spec(Path::new("config.json"), &bytes).expect("valid spec");
            assert!(crate::spec::validate(&spec).is_ok());
        }
    }
}
