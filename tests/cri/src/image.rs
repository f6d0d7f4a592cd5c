//! Local images, no registry: a busybox image and a pause image built with umoci from
//! busybox-static (and a tiny static pause program built with gcc), imported into the
//! `k8s.io` namespace with `ctr images import`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::bins::{Binaries, run_ok};
use crate::error::{Error, Result, io};

/// The busybox image's reference.
pub const BUSYBOX: &str = "localhost/warren-cri/busybox:latest";
/// The pause image's reference (the CRI plugin's `sandbox_image`).
pub const PAUSE: &str = "localhost/warren-cri/pause:latest";

/// A pause that exits on SIGINT/SIGTERM and reaps children, as Kubernetes' own.
const PAUSE_C: &str = r#"
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>
static void quit(int s) { (void)s; _exit(0); }
static void reap(int s) { (void)s; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
    struct sigaction q = { .sa_handler = quit }, r = { .sa_handler = reap, .sa_flags = SA_NOCLDSTOP };
    sigaction(SIGINT, &q, 0); sigaction(SIGTERM, &q, 0); sigaction(SIGCHLD, &r, 0);
    for (;;) pause();
}
"#;

const T: Duration = Duration::from_secs(120);

fn mkdirs(root: &Path, dirs: &[&str]) -> Result<()> {
    for d in dirs {
        let p = root.join(d);
        std::fs::create_dir_all(&p).map_err(io("create", &p))?;
    }
    Ok(())
}

fn write(p: &Path, s: &str) -> Result<()> {
    std::fs::write(p, s).map_err(io("write", p))
}

/// Builds `rootfs` into an OCI archive `out` with umoci; `config` are `umoci config` flags.
fn pack(b: &Binaries, work: &Path, rootfs: &Path, config: &[&str], out: &Path) -> Result<()> {
    let layout = work.join("oci");
    let umoci = |args: &[&str]| {
        let mut c = Command::new(&b.umoci);
        c.current_dir(work).args(args);
        run_ok(&mut c, T)
    };
    umoci(&["init", "--layout", "oci"])?;
    umoci(&["new", "--image", "oci:latest"])?;
    let rf = rootfs.to_string_lossy();
    umoci(&["insert", "--image", "oci:latest", &rf, "/"])?;
    let mut args = vec!["config", "--image", "oci:latest"];
    args.extend_from_slice(config);
    umoci(&args)?;
    umoci(&["gc", "--layout", "oci"])?;
    let mut tar = Command::new("tar");
    tar.arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(out)
        .args(["oci-layout", "index.json", "blobs"]);
    run_ok(&mut tar, T)?;
    Ok(())
}

fn busybox_rootfs(b: &Binaries, rf: &Path) -> Result<()> {
    mkdirs(
        rf,
        &[
            "bin", "etc", "proc", "sys", "dev", "root", "tmp", "mnt", "var/tmp",
        ],
    )?;
    let bb = rf.join("bin/busybox");
    std::fs::copy(&b.busybox, &bb).map_err(io("copy busybox to", &bb))?;
    let out = run_ok(Command::new(&bb).arg("--list"), T)?;
    for applet in out
        .stdout
        .lines()
        .filter(|a| *a != "busybox" && !a.is_empty())
    {
        let l = rf.join("bin").join(applet);
        std::os::unix::fs::symlink("busybox", &l).map_err(io("symlink", &l))?;
    }
    write(
        &rf.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    write(&rf.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    Ok(())
}

/// Builds both images under `work` and imports them through containerd at `address`.
pub fn build_and_import(b: &Binaries, work: &Path, address: &Path) -> Result<()> {
    // busybox
    let bw = work.join("busybox");
    let rf = bw.join("rootfs");
    mkdirs(&bw, &["rootfs"])?;
    busybox_rootfs(b, &rf)?;
    let bb_tar = work.join("busybox.tar");
    pack(
        b,
        &bw,
        &rf,
        &[
            "--config.cmd",
            "/bin/sh",
            "--config.env",
            "PATH=/bin:/usr/bin",
            "--config.workingdir",
            "/root",
        ],
        &bb_tar,
    )?;

    // pause: a static C program, else busybox sleep
    let pw = work.join("pause");
    let prf = pw.join("rootfs");
    mkdirs(&pw, &["rootfs"])?;
    let built = match &b.gcc {
        Some(gcc) => {
            let src = pw.join("pause.c");
            write(&src, PAUSE_C)?;
            let mut c = Command::new(gcc);
            c.args(["-static", "-Os", "-o"])
                .arg(prf.join("pause"))
                .arg(&src);
            run_ok(&mut c, T).is_ok()
        }
        None => false,
    };
    let entry: Vec<&str> = if built {
        vec!["--config.entrypoint", "/pause"]
    } else {
        mkdirs(&prf, &["bin"])?;
        let bb = prf.join("bin/busybox");
        std::fs::copy(&b.busybox, &bb).map_err(io("copy busybox to", &bb))?;
        vec![
            "--config.entrypoint",
            "/bin/busybox",
            "--config.cmd",
            "sleep",
            "--config.cmd",
            "2147483647",
        ]
    };
    let pause_tar = work.join("pause.tar");
    pack(b, &pw, &prf, &entry, &pause_tar)?;

    for (tar, name) in [(&bb_tar, BUSYBOX), (&pause_tar, PAUSE)] {
        let base = name.rsplit_once(':').map_or(name, |(b, _)| b);
        let mut c = Command::new(&b.ctr);
        c.arg("--address")
            .arg(address)
            .args([
                "--namespace",
                "k8s.io",
                "images",
                "import",
                "--base-name",
                base,
            ])
            .arg(tar);
        run_ok(&mut c, T)?;
    }
    let mut c = Command::new(&b.ctr);
    c.arg("--address")
        .arg(address)
        .args(["--namespace", "k8s.io", "images", "ls", "-q"]);
    let listed = run_ok(&mut c, T)?.stdout;
    for name in [BUSYBOX, PAUSE] {
        if !listed.lines().any(|l| l == name) {
            return Err(Error::Other(format!(
                "image {name} not listed after import: {listed}"
            )));
        }
    }
    Ok(())
}
