//! OCI bundles in temp dirs: a busybox-static rootfs and the `config.json` that
//! `runc spec` writes, edited as JSON per test.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::command::Invocation;
use crate::error::{HarnessError, Result};
use crate::runtime::runc_binary;

/// The static busybox copied into every rootfs.
pub const BUSYBOX: &str = "/bin/busybox";

/// `/etc/passwd` of every rootfs: root, nobody and u1000.
pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
u1000:x:1000:1000:u1000:/home/u1000:/bin/sh\n";

/// `/etc/group` of every rootfs: u1000 is also a member of g2000.
pub const GROUP: &str = "root:x:0:\nnobody:x:65534:\nu1000:x:1000:\ng2000:x:2000:u1000\n";

fn applets() -> Result<&'static [String]> {
    static LIST: OnceLock<std::result::Result<Vec<String>, String>> = OnceLock::new();
    LIST.get_or_init(|| {
        let out = Invocation::new(BUSYBOX)
            .arg("--list")
            .timeout(Duration::from_secs(10))
            .output()
            .map_err(|e| e.to_string())?;
        if !out.success() {
            return Err(out.to_string());
        }
        Ok(out
            .stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && *l != "busybox" && !l.contains('/'))
            .map(str::to_owned)
            .collect())
    })
    .as_deref()
    .map_err(|e| HarnessError::Other(format!("list busybox applets: {e}")))
}

fn write(path: &Path, contents: &[u8]) -> Result<()> {
    std::fs::write(path, contents).map_err(|e| HarnessError::io("write", path, e))
}

fn mkdir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| HarnessError::io("mkdir", path, e))
}

/// Makes a minimal rootfs at `rootfs`: busybox and its applets in /bin, /etc/passwd,
/// /etc/group and the usual empty mount points.
pub fn make_rootfs(rootfs: &Path) -> Result<()> {
    for d in [
        "bin",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "root",
        "home/u1000",
        "mnt",
        "run",
    ] {
        mkdir(&rootfs.join(d))?;
    }
    let bb = rootfs.join("bin/busybox");
    std::fs::copy(BUSYBOX, &bb).map_err(|e| HarnessError::io("copy busybox to", &bb, e))?;
    for a in applets()? {
        let link = rootfs.join("bin").join(a);
        std::os::unix::fs::symlink("busybox", &link)
            .map_err(|e| HarnessError::io("symlink", &link, e))?;
    }
    write(&rootfs.join("etc/passwd"), PASSWD.as_bytes())?;
    write(&rootfs.join("etc/group"), GROUP.as_bytes())?;
    let tmp = rootfs.join("tmp");
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777))
        .map_err(|e| HarnessError::io("chmod", &tmp, e))?;
    Ok(())
}

/// A bundle directory (removed on drop) with `rootfs/` and a `config.json` kept in memory
/// until [`Bundle::save`].
#[derive(Debug)]
pub struct Bundle {
    dir: TempDir,
    /// The spec, as JSON; edit it and call [`Bundle::save`].
    pub config: Value,
}

impl Bundle {
    /// A fresh bundle: busybox rootfs, `runc spec` output with `process.terminal=false`,
    /// saved.
    pub fn new() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("warren-e2e-bundle-")
            .tempdir()
            .map_err(|e| HarnessError::io("create bundle in", std::env::temp_dir(), e))?;
        make_rootfs(&dir.path().join("rootfs"))?;
        Invocation::new(runc_binary())
            .arg("spec")
            .current_dir(dir.path())
            .timeout(Duration::from_secs(10))
            .output()?
            .check()?;
        let path = dir.path().join("config.json");
        let text =
            std::fs::read_to_string(&path).map_err(|e| HarnessError::io("read", &path, e))?;
        let config: Value = serde_json::from_str(&text).map_err(|source| HarnessError::Json {
            what: path.display().to_string(),
            text,
            source,
        })?;
        let mut b = Self { dir, config };
        b.config["process"]["terminal"] = json!(false);
        b.save()?;
        Ok(b)
    }

    /// The bundle directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `BUNDLE/rootfs`.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// `BUNDLE/config.json`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.json")
    }

    /// Sets `process.args`.
    pub fn set_args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = json!(args);
        self
    }

    /// Sets `process.args` to `sh -c script`.
    pub fn set_sh(&mut self, script: &str) -> &mut Self {
        self.set_args(&["sh", "-c", script])
    }

    /// Sets `root.readonly`.
    pub fn set_readonly_root(&mut self, ro: bool) -> &mut Self {
        self.config["root"]["readonly"] = json!(ro);
        self
    }

    /// Appends an entry to `mounts`.
    pub fn add_mount(&mut self, m: Value) -> &mut Self {
        if let Some(a) = self.config["mounts"].as_array_mut() {
            a.push(m);
        } else {
            self.config["mounts"] = json!([m]);
        }
        self
    }

    /// Writes `config` to `config.json`.
    pub fn save(&self) -> Result<()> {
        let path = self.config_path();
        let text = serde_json::to_string_pretty(&self.config)
            .map_err(|e| HarnessError::Other(format!("serialize {}: {e}", path.display())))?;
        write(&path, text.as_bytes())
    }

    /// Writes a file into the rootfs (parents created) with `mode`; returns its host path.
    pub fn write_rootfs_file(&self, rel: &str, contents: &[u8], mode: u32) -> Result<PathBuf> {
        self.write_file(
            &format!("rootfs/{}", rel.trim_start_matches('/')),
            contents,
            mode,
        )
    }

    /// Writes a file under the bundle directory (parents created) with `mode`.
    pub fn write_file(&self, rel: &str, contents: &[u8], mode: u32) -> Result<PathBuf> {
        let p = self.dir.path().join(rel.trim_start_matches('/'));
        if let Some(parent) = p.parent() {
            mkdir(parent)?;
        }
        write(&p, contents)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
            .map_err(|e| HarnessError::io("chmod", &p, e))?;
        Ok(p)
    }
}
