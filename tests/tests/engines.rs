//! Real engines drive the runtime: containerd 1.6 (io.containerd.runc.v2 shim with
//! `BinaryName`) and podman 4.3 with conmon, through the shared check scripts in
//! `/work/shared/clients/`. Each prints `ok - NAME` / `not ok - NAME` lines and
//! `N passed, M failed`, and exits 0 only when nothing failed. They need root and take
//! up to a minute each; they use their own temp dirs (podman also the runtime's default
//! `--root`, see the scripts' README), so they are safe next to other tests. When the
//! scripts are not installed, `build.rs` sets `e2e_no_engine_clients` and the tests are
//! ignored with the reason.

use std::path::Path;
use std::time::Duration;

use warren_e2e::Invocation;

const CLIENTS: &str = "/work/shared/clients";

fn engine_check(script: &str) {
    let path = Path::new(CLIENTS).join(script);
    assert!(path.is_file(), "{} is missing", path.display());
    let runtime = warren_e2e::warren_binary().expect("runtime binary");
    let out = Invocation::new(&path)
        .arg(&runtime)
        .timeout(Duration::from_secs(600))
        .output()
        .expect("run the engine check");
    println!("{}", out.stdout);
    let summary = out
        .stdout
        .lines()
        .rev()
        .find(|l| l.contains(" passed, "))
        .unwrap_or("no summary line");
    let failed: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("not ok"))
        .collect();
    assert!(
        out.success(),
        "{script} {}: {summary}\n{}\n{}",
        runtime.display(),
        failed.join("\n"),
        out.stderr
    );
}

#[test]
#[cfg_attr(
    e2e_no_engine_clients,
    ignore = "/work/shared/clients/containerd-check.sh or podman-check.sh is missing"
)]
fn containerd_check_passes() {
    engine_check("containerd-check.sh");
}

#[test]
#[cfg_attr(
    e2e_no_engine_clients,
    ignore = "/work/shared/clients/containerd-check.sh or podman-check.sh is missing"
)]
fn podman_check_passes() {
    engine_check("podman-check.sh");
}
