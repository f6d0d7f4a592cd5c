//! Helpers for the sandbox-profile tests (`escape.rs`, `profiles_positive.rs`,
//! `seccomp_vs_crun.rs`) and the sandbox benchmark: the static C helpers of `tests/c/`
//! built once with `gcc -static`, profile annotations and capabilities on bundles, podman's
//! default seccomp profile, and runtimes run in a private cgroup view (crun 1.8 refuses a
//! hybrid host whose cgroup2 hierarchy has controllers).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::bundle::Bundle;
use crate::command::{Invocation, Output};
use crate::error::{HarnessError, Result};
use crate::runtime::{Runtime, workspace_root};

/// `tests/c/attack.c`: the escape attempts.
pub const ATTACK_SRC: &str = include_str!("../c/attack.c");
/// `tests/c/probe.c`: the seccomp probe of the crun differential.
pub const PROBE_SRC: &str = include_str!("../c/probe.c");
/// `tests/c/loops.c`: the benchmark loops.
pub const LOOPS_SRC: &str = include_str!("../c/loops.c");

/// The annotation that asks warren-runtime for a profile.
pub const PROFILE_ANNOTATION: &str = "warren.dev/profile";

/// The `agent` profile's capabilities (`sandbox/profiles/agent.toml`), for controls that
/// run the same bundle without the profile.
pub const AGENT_CAPS: [&str; 6] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
];

/// Podman's default seccomp profile (moby format).
pub const PODMAN_PROFILE: &str = "/usr/share/containers/seccomp.json";

/// The shared converter from moby format to OCI `linux.seccomp`:
/// `$WARREN_SHARED/bench/convert_seccomp.py`, else `/work/shared/bench/convert_seccomp.py`.
pub fn convert_script() -> PathBuf {
    std::env::var_os("WARREN_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared"))
        .join("bench/convert_seccomp.py")
}

/// crun: `$E2E_CRUN`, else `/usr/bin/crun`.
pub fn crun_binary() -> PathBuf {
    std::env::var_os("E2E_CRUN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/crun"))
}

/// Builds `src` with `gcc -static -O2` once; returns the binary, cached under
/// `target/tmp/warren-e2e-c/NAME-HASH` by the source's SHA-256 (an atomic rename makes
/// concurrent builders safe).
pub fn static_helper(name: &str, src: &str) -> Result<PathBuf> {
    let hash = hex::encode(Sha256::digest(src.as_bytes()));
    let dir = workspace_root().join("target/tmp/warren-e2e-c");
    let bin = dir.join(format!("{name}-{}", &hash[..16]));
    if bin.is_file() {
        return Ok(bin);
    }
    std::fs::create_dir_all(&dir).map_err(|e| HarnessError::io("mkdir", &dir, e))?;
    let tag = format!("{}-{}", std::process::id(), crate::ids::salt());
    let c = dir.join(format!("{name}-{tag}.c"));
    let tmp = dir.join(format!("{name}-{tag}.tmp"));
    std::fs::write(&c, src).map_err(|e| HarnessError::io("write", &c, e))?;
    let out = Invocation::new("gcc")
        .args(["-static", "-O2", "-Wall", "-o"])
        .arg(&tmp)
        .arg(&c)
        .timeout(Duration::from_secs(180))
        .output();
    let _ = std::fs::remove_file(&c);
    let out = out?;
    if !out.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(HarnessError::Other(format!(
            "gcc -static {name} (needs gcc and the static glibc, libc6-dev): {out}"
        )));
    }
    std::fs::rename(&tmp, &bin).map_err(|e| HarnessError::io("rename to", &bin, e))?;
    Ok(bin)
}

/// Copies a host file into the bundle's rootfs at `rel` with `mode` (root-owned, as the
/// test runs as root).
pub fn install(b: &Bundle, host: &Path, rel: &str, mode: u32) -> Result<PathBuf> {
    let dst = b.rootfs().join(rel.trim_start_matches('/'));
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent).map_err(|e| HarnessError::io("mkdir", parent, e))?;
    }
    std::fs::copy(host, &dst).map_err(|e| HarnessError::io("copy to", &dst, e))?;
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(mode))
        .map_err(|e| HarnessError::io("chmod", &dst, e))?;
    Ok(dst)
}

/// Sets an annotation.
pub fn annotate(b: &mut Bundle, key: &str, value: &str) {
    if !b.config["annotations"].is_object() {
        b.config["annotations"] = json!({});
    }
    b.config["annotations"][key] = json!(value);
}

/// Asks warren-runtime for `profile` (`agent`, `experiment`, `trusted` or an absolute path
/// to a TOML file).
pub fn set_profile(b: &mut Bundle, profile: &str) {
    annotate(b, PROFILE_ANNOTATION, profile);
}

/// Sets bounding = effective = permitted = `caps` (inheritable and ambient empty).
pub fn set_caps(b: &mut Bundle, caps: &[&str]) {
    b.config["process"]["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps,
    });
}

/// The workload runs in `/workspace` (created in the rootfs), as under the profiles.
pub fn add_workspace(b: &mut Bundle) -> Result<PathBuf> {
    let ws = b.rootfs().join("workspace");
    std::fs::create_dir_all(&ws).map_err(|e| HarnessError::io("mkdir", &ws, e))?;
    b.config["process"]["cwd"] = json!("/workspace");
    Ok(ws)
}

/// Replaces the pid namespace entry with one joining `path` (e.g. `/proc/PID/ns/pid`).
pub fn join_namespace(b: &mut Bundle, typ: &str, path: &str) {
    let mut ns: Vec<Value> = b.config["linux"]["namespaces"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ns.retain(|n| n["type"] != typ);
    ns.push(json!({"type": typ, "path": path}));
    b.config["linux"]["namespaces"] = json!(ns);
}

/// Adds podman's default seccomp profile, converted for the bundle's capabilities on amd64
/// by the shared script (as podman does at create time). Saves the bundle.
pub fn add_podman_seccomp(b: &mut Bundle) -> Result<()> {
    b.save()?;
    let cfg = b.config_path();
    let script = convert_script();
    Invocation::new("/usr/bin/python3")
        .arg(&script)
        .arg(PODMAN_PROFILE)
        .arg(&cfg)
        .arg(&cfg)
        .timeout(Duration::from_secs(30))
        .output()?
        .check()?;
    let text = std::fs::read_to_string(&cfg).map_err(|e| HarnessError::io("read", &cfg, e))?;
    b.config = serde_json::from_str(&text).map_err(|source| HarnessError::Json {
        what: cfg.display().to_string(),
        text,
        source,
    })?;
    if !b.config["linux"]["seccomp"]["syscalls"].is_array() {
        return Err(HarnessError::Other(format!(
            "{} wrote no linux.seccomp into {}",
            script.display(),
            cfg.display()
        )));
    }
    Ok(())
}

/// A runtime whose every command runs in a private mount namespace where
/// `/sys/fs/cgroup/unified/cgroup.controllers` reads empty (what
/// `benches/src/lifecycle.rs` does for crun 1.8 on this hybrid host). The wrapper script
/// and its empty file live in a temp dir removed on drop, after the runtime.
#[derive(Debug)]
pub struct PrivateCgroupView {
    /// The runtime, driven through the wrapper (fields drop in order: this first).
    pub rt: Runtime,
    _dir: TempDir,
}

impl PrivateCgroupView {
    /// Wraps `bin` (named `name` in messages).
    pub fn new(name: &str, bin: &Path) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("warren-e2e-view-{name}-"))
            .tempdir()
            .map_err(|e| HarnessError::io("create temp dir in", std::env::temp_dir(), e))?;
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "").map_err(|e| HarnessError::io("write", &empty, e))?;
        let script = format!(
            "#!/bin/sh\n\
             # {name} in a private mount namespace with an empty cgroup2 controller list.\n\
             exec unshare -m --propagation private /bin/sh -c '\n\
             c=/sys/fs/cgroup/unified/cgroup.controllers\n\
             if [ -n \"$(cat \"$c\" 2>/dev/null)\" ]; then mount --bind \"$0\" \"$c\" || exit 125; fi\n\
             exec \"$@\"' '{}' '{}' \"$@\"\n",
            empty.display(),
            bin.display()
        );
        let wrapper = dir.path().join(name);
        std::fs::write(&wrapper, script).map_err(|e| HarnessError::io("write", &wrapper, e))?;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| HarnessError::io("chmod", &wrapper, e))?;
        Ok(Self {
            rt: Runtime::new(name, &wrapper)?,
            _dir: dir,
        })
    }
}

/// The `warren` CLI: `$WARREN_CLI`, else `target/bin/warren` (what `scripts/build.sh`
/// makes and `scripts/install.sh` installs), else `target/release/warren`.
pub fn warren_cli_binary() -> Result<PathBuf> {
    let p = std::env::var_os("WARREN_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let built = workspace_root().join("target/bin/warren");
            if built.is_file() {
                built
            } else {
                workspace_root().join("target/release/warren")
            }
        });
    if p.is_file() {
        Ok(p)
    } else {
        Err(HarnessError::Other(format!(
            "no warren CLI at {}: build it with `cargo build --release -p warren-cli` or set \
             WARREN_CLI=/path/to/warren",
            p.display()
        )))
    }
}

/// The `warren` CLI with private `--root` and `--data-root` and a workspace directory, all
/// in a temp dir removed on drop.
#[derive(Debug)]
pub struct WarrenCli {
    bin: PathBuf,
    dir: TempDir,
}

impl WarrenCli {
    /// Finds the binary ([`warren_cli_binary`]) and makes the temp dir.
    pub fn new() -> Result<Self> {
        let bin = warren_cli_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("warren-e2e-cli-")
            .tempdir()
            .map_err(|e| HarnessError::io("create temp dir in", std::env::temp_dir(), e))?;
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).map_err(|e| HarnessError::io("mkdir", &work, e))?;
        Ok(Self { bin, dir })
    }

    /// The workspace: the current directory of every `warren run`.
    pub fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// A directory beside the workspace (for inputs mounted with `-v`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `warren --root R --data-root D ARGS…` in the workspace.
    pub fn cmd<I, S>(&self, args: I) -> Invocation
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Invocation::new(&self.bin)
            .arg("--root")
            .arg(self.dir.path().join("run"))
            .arg("--data-root")
            .arg(self.dir.path().join("data"))
            .args(args)
            .current_dir(self.work())
            .timeout(Duration::from_secs(120))
    }
}

/// Lines `KEY REST…` of `out`'s stdout whose first word is one of `keys`, as
/// `(key, rest)` in order.
pub fn keyed_lines<'a>(out: &'a Output, keys: &[&str]) -> Vec<(&'a str, &'a str)> {
    out.stdout
        .lines()
        .filter_map(|l| {
            let (k, rest) = l.split_once(' ')?;
            keys.contains(&k).then_some((k, rest.trim()))
        })
        .collect()
}

/// Median of `v` (sorted in place); `NaN` when empty.
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }
}
