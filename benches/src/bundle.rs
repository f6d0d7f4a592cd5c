//! Benchmark bundles: a busybox-static rootfs with the default config (`/bin/true`,
//! read-only root), and the same plus the seccomp profile that podman and docker apply
//! (`/usr/share/containers/seccomp.json`, converted to OCI form for this host the way
//! moby resolves it at create time).

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// The podman/docker default seccomp profile (package golang-github-containers-common).
pub const DEFAULT_PROFILE: &str = "/usr/share/containers/seccomp.json";

/// Creates `dir/rootfs` with busybox and `dir/config.json` from `runtime spec`, running
/// `args`. Returns the bundle path.
pub fn make(dir: &Path, runtime: &Path, args: &[&str]) -> Result<PathBuf> {
    let rootfs = dir.join("rootfs");
    for d in ["bin", "proc", "dev", "sys", "tmp", "etc"] {
        std::fs::create_dir_all(rootfs.join(d))
            .with_context(|| format!("create {}", rootfs.join(d).display()))?;
    }
    let busybox = Path::new("/bin/busybox");
    if !busybox.exists() {
        bail!("/bin/busybox is missing: install busybox-static");
    }
    std::fs::copy(busybox, rootfs.join("bin/busybox")).context("copy busybox")?;
    for a in ["sh", "true", "echo", "cat", "sleep", "ls", "id", "getpid"] {
        let _ = symlink("busybox", rootfs.join("bin").join(a));
    }
    let out = Command::new(runtime)
        .args(["spec", "--bundle"])
        .arg(dir)
        .output()
        .with_context(|| format!("run {} spec", runtime.display()))?;
    if !out.status.success() {
        bail!(
            "{} spec: {}",
            runtime.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    edit_config(dir, |c| {
        c["process"]["terminal"] = json!(false);
        c["process"]["args"] = json!(args);
        c["root"]["readonly"] = json!(true);
        Ok(())
    })?;
    Ok(dir.to_owned())
}

/// Reads, edits and writes back `dir/config.json`.
pub fn edit_config(dir: &Path, f: impl FnOnce(&mut Value) -> Result<()>) -> Result<()> {
    let p = dir.join("config.json");
    let mut c: Value = serde_json::from_slice(
        &std::fs::read(&p).with_context(|| format!("read {}", p.display()))?,
    )?;
    f(&mut c)?;
    std::fs::write(&p, serde_json::to_vec_pretty(&c)?)
        .with_context(|| format!("write {}", p.display()))?;
    Ok(())
}

fn kernel_version() -> (u32, u32) {
    let u = nix::sys::utsname::uname().ok();
    let rel = u
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut it = rel
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    let a = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    let b = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    (a, b)
}

fn parse_kv(v: &str) -> (u32, u32) {
    let mut it = v.split('.');
    (
        it.next().and_then(|x| x.parse().ok()).unwrap_or(0),
        it.next().and_then(|x| x.parse().ok()).unwrap_or(0),
    )
}

/// Converts a moby-format profile into the OCI `linux.seccomp` object for amd64 and the
/// given bounding capabilities (moby's `setupSeccomp`).
pub fn moby_to_oci(profile: &Value, caps: &[String]) -> Value {
    let arch = "amd64";
    let has = |list: Option<&Value>, x: &str| {
        list.and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == x))
    };
    let nonempty = |list: Option<&Value>| {
        list.and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    };
    let mut arches = vec![json!("SCMP_ARCH_X86_64")];
    for a in profile["archMap"].as_array().into_iter().flatten() {
        if a["architecture"] == "SCMP_ARCH_X86_64" {
            arches.extend(
                a["subArchitectures"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
        }
    }
    let kv = kernel_version();
    let mut syscalls = Vec::new();
    for e in profile["syscalls"].as_array().into_iter().flatten() {
        let inc = &e["includes"];
        let exc = &e["excludes"];
        if nonempty(inc.get("arches")) && !has(inc.get("arches"), arch) {
            continue;
        }
        if let Some(req) = inc["caps"].as_array()
            && !req.iter().all(|c| caps.iter().any(|k| c == k))
        {
            continue;
        }
        if let Some(mk) = inc["minKernel"].as_str()
            && kv < parse_kv(mk)
        {
            continue;
        }
        if has(exc.get("arches"), arch) {
            continue;
        }
        if exc["caps"]
            .as_array()
            .is_some_and(|l| l.iter().any(|c| caps.iter().any(|k| c == k)))
        {
            continue;
        }
        let mut s = json!({"names": e["names"], "action": e["action"]});
        if !e["errnoRet"].is_null() {
            s["errnoRet"] = e["errnoRet"].clone();
        }
        if nonempty(e.get("args")) {
            s["args"] = e["args"].clone();
        }
        syscalls.push(s);
    }
    let mut out = json!({"defaultAction": profile["defaultAction"], "architectures": arches, "syscalls": syscalls});
    if !profile["defaultErrnoRet"].is_null() {
        out["defaultErrnoRet"] = profile["defaultErrnoRet"].clone();
    }
    out
}

/// Adds the default podman/docker seccomp profile to the bundle in `dir`.
pub fn add_default_seccomp(dir: &Path) -> Result<()> {
    let text = std::fs::read(DEFAULT_PROFILE).with_context(|| {
        format!("read {DEFAULT_PROFILE} (install golang-github-containers-common)")
    })?;
    let profile: Value =
        serde_json::from_slice(&text).context("parse the default seccomp profile")?;
    edit_config(dir, |c| {
        let caps: Vec<String> = c["process"]["capabilities"]["bounding"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        c["linux"]["seccomp"] = moby_to_oci(&profile, &caps);
        Ok(())
    })
}
