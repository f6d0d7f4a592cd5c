//! Shared by the end-to-end tests: roots in a temp dir, the helper binaries cargo built,
//! guards that take pools and swarms down even when a test fails.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use warren_agents::{Helpers, Roots};

/// The tests create namespaces, cgroups and containers: root only.
pub fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping {test}: needs root");
        return false;
    }
    true
}

pub fn helpers() -> Helpers {
    Helpers {
        poold: PathBuf::from(env!("CARGO_BIN_EXE_warren-poold")),
        swarmd: PathBuf::from(env!("CARGO_BIN_EXE_warren-swarmd")),
        pool_init: PathBuf::from(env!("CARGO_BIN_EXE_warren-pool-init")),
    }
}

/// Roots in a fresh temp dir (removed on drop).
pub struct TestRoots {
    pub dir: tempfile::TempDir,
    pub roots: Roots,
}

pub fn roots() -> TestRoots {
    let dir = tempfile::Builder::new()
        .prefix("warren-agents-test")
        .tempdir()
        .expect("tempdir");
    let roots = Roots::new(dir.path().join("run"), dir.path().join("data"));
    TestRoots { dir, roots }
}

/// A name unique to this test process.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", std::process::id())
}

/// Removes pool `name` on drop, whatever happened.
pub struct PoolGuard {
    pub roots: Roots,
    pub name: String,
}

impl Drop for PoolGuard {
    fn drop(&mut self) {
        if warren_agents::pool::manage::rm(&self.roots, &self.name).is_err() {
            warren_agents::pool::manage::cleanup_dead(&self.roots, &self.name);
        }
    }
}

/// Takes swarm `name` down on drop, whatever happened.
pub struct SwarmGuard {
    pub roots: Roots,
    pub name: String,
}

impl Drop for SwarmGuard {
    fn drop(&mut self) {
        let tools = warren_agents::cmd::Tools::default();
        if self.roots.swarm_dir(&self.name).exists() {
            let _ = warren_agents::swarm::down(
                &self.roots,
                &tools,
                &self.name,
                Duration::from_secs(2),
                false,
            );
        }
    }
}
