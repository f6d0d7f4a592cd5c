//! Pulls from a loopback `docker-registry` (Debian's package of distribution), with an
//! image pushed by skopeo; anonymous and basic auth.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{busybox_rootfs_tar, listing, run, skip_without};
use warren_images::Store;
use warren_images::pull::{Auth, PullOptions};

struct Registry {
    child: Child,
    addr: String,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_registry(dir: &Path, htpasswd: Option<&str>) -> Registry {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut cfg = format!(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
        dir.join("data").display()
    );
    if let Some(h) = htpasswd {
        let p = dir.join("htpasswd");
        std::fs::write(&p, format!("{h}\n")).unwrap();
        cfg.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: warren-test\n    path: {}\n",
            p.display()
        ));
    }
    let cfg_path = dir.join("config.yml");
    std::fs::write(&cfg_path, cfg).unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&cfg_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let reg = Registry { child, addr };
    let start = Instant::now();
    while TcpStream::connect(&reg.addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "registry did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    reg
}

fn push(src: &Store, name: &str, dest: &str, creds: Option<&str>) {
    let mut c = Command::new("skopeo");
    c.args(["copy", "--dest-tls-verify=false"]);
    if let Some(cr) = creds {
        c.arg("--dest-creds").arg(cr);
    }
    c.arg(format!("oci:{}:{name}", src.layout_dir().display()))
        .arg(format!("docker://{dest}"));
    run(&mut c);
}

#[test]
fn pull_anonymous_from_loopback_registry() {
    if skip_without("docker-registry", "pull_anonymous_from_loopback_registry")
        || skip_without("skopeo", "pull_anonymous_from_loopback_registry")
    {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let reg = start_registry(t.path(), None);
    let src = Store::open(t.path().join("src")).unwrap();
    src.import_rootfs(&busybox_rootfs_tar(t.path()), "bb:1")
        .unwrap();
    let want = src.image("bb:1").unwrap();
    let reference = format!("{}/warren/bb:1", reg.addr);
    push(&src, "bb:1", &reference, None);

    let s = Store::open(t.path().join("dst")).unwrap();
    let opts = PullOptions {
        insecure_http: true,
        ..Default::default()
    };
    let info = s.pull(&reference, &opts).unwrap();
    assert_eq!(info.name, reference);
    let img = s.image(&reference).unwrap();
    assert_eq!(img.diff_ids, want.diff_ids);
    assert!(
        s.unpack(&reference).unwrap()[0]
            .path
            .join("bin/busybox")
            .exists()
    );

    // A missing tag fails with the reference named and leaves the store as it was.
    let before = listing(s.root());
    let missing = format!("{}/warren/bb:nope", reg.addr);
    let err = s.pull(&missing, &opts).unwrap_err().to_string();
    assert!(err.contains(&missing), "{err}");
    assert_eq!(listing(s.root()), before);

    // Pulling by digest, under a local name.
    let by_digest = format!("{}/warren/bb@{}", reg.addr, img.digest);
    let info = s
        .pull(
            &by_digest,
            &PullOptions {
                name: Some("local/bb:pinned".into()),
                ..opts
            },
        )
        .unwrap();
    assert_eq!(info.digest, img.digest);
}

#[test]
fn pull_with_basic_auth() {
    if skip_without("docker-registry", "pull_with_basic_auth")
        || skip_without("skopeo", "pull_with_basic_auth")
    {
        return;
    }
    let hash = Command::new("python3")
        .args([
            "-W",
            "ignore",
            "-c",
            "import crypt; print(crypt.crypt('s3cret', crypt.mksalt(crypt.METHOD_BLOWFISH)))",
        ])
        .output()
        .unwrap();
    let hash = String::from_utf8(hash.stdout).unwrap();
    if !hash.starts_with("$2") {
        eprintln!("SKIPPED pull_with_basic_auth: no bcrypt in python3's crypt module");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let reg = start_registry(t.path(), Some(&format!("tester:{}", hash.trim())));
    let src = Store::open(t.path().join("src")).unwrap();
    src.import_rootfs(&busybox_rootfs_tar(t.path()), "bb:1")
        .unwrap();
    let reference = format!("{}/private/bb:1", reg.addr);
    push(&src, "bb:1", &reference, Some("tester:s3cret"));

    let s = Store::open(t.path().join("dst")).unwrap();
    let anon = PullOptions {
        insecure_http: true,
        ..Default::default()
    };
    let err = s.pull(&reference, &anon).unwrap_err().to_string();
    assert!(err.contains(&reference), "{err}");
    let auth = PullOptions {
        insecure_http: true,
        auth: Auth::Basic {
            username: "tester".into(),
            password: "s3cret".into(),
        },
        ..Default::default()
    };
    s.pull(&reference, &auth).unwrap();
    assert_eq!(
        s.image(&reference).unwrap().diff_ids,
        src.image("bb:1").unwrap().diff_ids
    );
}

#[test]
fn pull_multi_platform_index_picks_linux_amd64() {
    if skip_without(
        "docker-registry",
        "pull_multi_platform_index_picks_linux_amd64",
    ) || skip_without("skopeo", "pull_multi_platform_index_picks_linux_amd64")
    {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let reg = start_registry(t.path(), None);
    let (dir, src) = common::multi_platform_layout(t.path());
    let reference = format!("{}/warren/multi:1", reg.addr);
    run(Command::new("skopeo")
        .args(["copy", "--all", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:multi:1", dir.display()))
        .arg(format!("docker://{reference}")));
    let s = Store::open(t.path().join("dst")).unwrap();
    s.pull(
        &reference,
        &PullOptions {
            insecure_http: true,
            ..Default::default()
        },
    )
    .unwrap();
    // skopeo compresses the plain layers on push, so compare content (diff ids).
    assert_eq!(
        s.image(&reference).unwrap().diff_ids,
        src.image("host").unwrap().diff_ids
    );
    assert_ne!(
        s.image(&reference).unwrap().diff_ids,
        src.image("other").unwrap().diff_ids
    );
}
