//! `warren cri install` as an admin runs it (the binary, no containerd needed): a malformed
//! config is refused with its line and left untouched; `--dry-run` prints a diff and
//! writes nothing; `--uninstall` restores the original; the CRI-O drop-in.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use warren_cri_tests::bins::{Output, ours, run};

fn warren() -> PathBuf {
    ours("WARREN_CLI", "warren").unwrap()
}

fn cri(args: &[&str]) -> Output {
    let mut c = Command::new(warren());
    c.arg("cri").args(args);
    run(&mut c, Duration::from_secs(30)).unwrap()
}

/// Files in `dir`.
fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

const RUNTIME: &str = "/bin/sh"; // any executable: install does not run it

#[test]
fn malformed_config_is_refused_naming_the_line_and_left_untouched() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("config.toml");
    let bad =
        "version = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\"\n  sandbox_image = \"pause\"\n";
    std::fs::write(&cfg, bad).unwrap();
    let c = cfg.to_str().unwrap();
    for extra in [&[][..], &["--dry-run"][..]] {
        let mut args = vec!["install", "--config", c, "--runtime", RUNTIME];
        args.extend_from_slice(extra);
        let o = cri(&args);
        assert_ne!(o.status, 0, "{o:?}");
        assert!(
            o.stderr.contains(&format!("parse {c}: line 3, column")),
            "{}",
            o.stderr
        );
        assert!(
            o.stderr.contains("[plugins.\"io.containerd.grpc.v1.cri\""),
            "the offending line is not shown: {}",
            o.stderr
        );
        assert!(o.stderr.contains("left untouched"), "{}", o.stderr);
        assert!(
            o.stdout.is_empty(),
            "no RuntimeClass for a failed install: {}",
            o.stdout
        );
        assert_eq!(std::fs::read_to_string(&cfg).unwrap(), bad);
        assert_eq!(files(d.path()), ["config.toml"]);
    }
}

#[test]
fn dry_run_install_again_and_uninstall() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("config.toml");
    let orig = "# node config\nversion = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\".cni]\n  bin_dir = \"/usr/lib/cni\"\n";
    std::fs::write(&cfg, orig).unwrap();
    let c = cfg.to_str().unwrap();

    let o = cri(&["install", "--config", c, "--runtime", RUNTIME, "--dry-run"]);
    assert_eq!(o.status, 0, "{o:?}");
    assert!(
        o.stdout.starts_with(&format!("--- {c}\n+++ {c}\n@@ ")),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("BinaryName = \"/bin/sh\""),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("+enable_cdi = true"), "{}", o.stdout);
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), orig);
    assert_eq!(files(d.path()), ["config.toml"]);

    let o = cri(&["install", "--config", c, "--runtime", RUNTIME]);
    assert_eq!(o.status, 0, "{o:?}");
    assert!(o.stdout.contains("kind: RuntimeClass\n"), "{}", o.stdout);
    assert!(o.stdout.contains("handler: warren\n"), "{}", o.stdout);
    assert!(o.stderr.contains("restart containerd"), "{}", o.stderr);
    let installed = std::fs::read_to_string(&cfg).unwrap();
    assert!(installed.starts_with("# node config\n"));
    assert_eq!(
        files(d.path()),
        ["config.toml", "config.toml.warren-backup"]
    );

    let o = cri(&["install", "--config", c, "--runtime", RUNTIME]);
    assert_eq!(o.status, 0, "{o:?}");
    assert!(o.stderr.contains("nothing to change"), "{}", o.stderr);
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), installed);

    let o = cri(&["install", "--config", c, "--uninstall"]);
    assert_eq!(o.status, 0, "{o:?}");
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), orig);
    assert_eq!(files(d.path()), ["config.toml"]);
    let o = cri(&["install", "--config", c, "--uninstall"]);
    assert_ne!(o.status, 0);
    assert!(o.stderr.contains("no backup"), "{}", o.stderr);
}

#[test]
fn crio_dropin_and_status() {
    let d = tempfile::tempdir().unwrap();
    let dropin = d.path().join("crio.conf.d/99-warren.conf");
    let p = dropin.to_str().unwrap();
    let rt = d.path().join("warren-runtime");
    std::fs::write(&rt, "#!/bin/sh\necho 'warren-runtime version 0.1.0'\n").unwrap();
    std::fs::set_permissions(
        &rt,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755),
    )
    .unwrap();
    let o = cri(&[
        "install",
        "--crio",
        "--config",
        p,
        "--runtime",
        rt.to_str().unwrap(),
    ]);
    assert_eq!(o.status, 0, "{o:?}");
    let text = std::fs::read_to_string(&dropin).unwrap();
    assert!(text.contains("[crio.runtime.runtimes.warren]\n"), "{text}");
    assert!(text.contains("runtime_type = \"oci\"\n"), "{text}");
    let crio = d.path().join("crio");
    std::fs::write(&crio, "#!/bin/sh\necho 'crio version 1.29.1'\n").unwrap();
    std::fs::set_permissions(
        &crio,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755),
    )
    .unwrap();
    let o = cri(&[
        "status",
        "--crio",
        "--config",
        p,
        "--engine-binary",
        crio.to_str().unwrap(),
    ]);
    assert_eq!(o.status, 0, "{o:?}");
    assert!(o.stdout.contains("ok   warren-runtime: "), "{}", o.stdout);
    let o = cri(&["install", "--crio", "--config", p, "--uninstall"]);
    assert_eq!(o.status, 0, "{o:?}");
    assert!(!dropin.exists());
}
