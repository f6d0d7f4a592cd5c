//! The builder: determinism, failing steps, downloads, recipe errors, and (behind
//! WARREN_IMAGES_BUILD_TESTS=1) real builds of the `base` and `python` recipes.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{busybox_rootfs_tar, listing};
use warren_images::Store;
use warren_images::build::{BuildEvent, BuildOptions, build};
use warren_images::recipe::{self, Base, RecipeSet};

/// The runtime binary: `$WARREN_RUNTIME` (what CI builds), else the workspace's
/// `cargo build --release -p warren-runtime` (or debug) output.
fn runtime() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WARREN_RUNTIME") {
        return Some(PathBuf::from(p));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("target");
    ["release", "debug"]
        .iter()
        .map(|p| root.join(p).join("warren-runtime"))
        .find(|p| p.exists())
}

fn opts(t: &Path) -> Option<BuildOptions> {
    match runtime() {
        Some(r) => {
            let mut o = BuildOptions::new(r, t.join("runtime-state"));
            // Where TLS goes through an intercepting proxy, steps need the host's CAs.
            let ca = std::env::var("SSL_CERT_FILE")
                .unwrap_or_else(|_| "/etc/ssl/certs/ca-certificates.crt".into());
            o.ca_bundle = Path::new(&ca).exists().then(|| PathBuf::from(ca));
            Some(o)
        }
        None => {
            eprintln!(
                "SKIPPED: target/{{release,debug}}/warren-runtime missing; run cargo build --release -p warren-runtime"
            );
            None
        }
    }
}

fn recipes_from(t: &Path, files: &[(&str, &str)]) -> RecipeSet {
    let dir = t.join("recipes");
    std::fs::create_dir_all(&dir).unwrap();
    for (n, body) in files {
        std::fs::write(dir.join(format!("{n}.toml")), body).unwrap();
    }
    recipe::load_dir(&dir).unwrap()
}

fn store_with_busybox(t: &Path) -> Store {
    let s = Store::open(t.join("store")).unwrap();
    s.import_rootfs(&busybox_rootfs_tar(t), "test/busybox:1")
        .unwrap();
    s.unpack("test/busybox:1").unwrap();
    s
}

fn synthetic(t: &Path) -> String {
    let payload = t.join("payload.txt");
    std::fs::write(&payload, b"downloaded bytes\n").unwrap();
    let sha = warren_images::Digest::of(b"downloaded bytes\n")
        .hex()
        .to_string();
    format!(
        r#"
name = "synthetic"
description = "writes files, removes one from the base, downloads one"

[base]
image = "test/busybox:1"

[[steps]]
name = "write files"
run = """
mkdir -p /opt/app/sub
echo hello > /opt/app/hello
ln -s hello /opt/app/link
chmod 0750 /opt/app/sub
rm /etc/passwd
"""

[[steps.env]]

[[steps]]
[steps.download]
url = "file://{}"
sha256 = "{sha}"
dest = "/opt/app/payload.txt"
mode = 0o600

[config]
workdir = "/opt/app"
cmd = ["/bin/sh"]
env = {{ APP = "1" }}
labels = {{ "org.example.kind" = "test" }}

[smoke]
run = "test \"$(cat /opt/app/hello)\" = hello && test ! -e /etc/passwd && test \"$APP\" = 1"
"#,
        payload.display()
    )
    .replace("[[steps.env]]\n", "")
}

fn layer_listing(s: &Store, blob: &warren_images::Digest) -> Vec<String> {
    let f = std::fs::File::open(s.blob_path(blob)).unwrap();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    ar.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

#[test]
fn same_recipe_builds_the_same_digest_twice() {
    let t = tempfile::tempdir().unwrap();
    let Some(mut o) = opts(t.path()) else { return };
    let s = store_with_busybox(t.path());
    let set = recipes_from(t.path(), &[("synthetic", &synthetic(t.path()))]);
    o.no_cache = true;
    let mut events = Vec::new();
    let a = build(&s, &set, "synthetic", &o, &mut |e| events.push(e.clone())).unwrap();
    assert!(events.iter().any(|e| matches!(e, BuildEvent::Smoke { .. })));
    let img = s.image(&a.name).unwrap();
    assert_eq!(img.layers.len(), 3);
    let run_layer = layer_listing(&s, &img.layers[1]);
    assert!(
        run_layer.contains(&"etc/.wh.passwd".to_string()),
        "{run_layer:?}"
    );
    assert!(
        run_layer.contains(&"opt/app/hello".to_string()),
        "{run_layer:?}"
    );
    assert!(
        !run_layer.iter().any(|p| p.starts_with("etc/resolv.conf")),
        "{run_layer:?}"
    );
    let cfg = img.config.config().clone().unwrap();
    assert_eq!(cfg.working_dir().as_deref(), Some("/opt/app"));
    assert!(cfg.env().clone().unwrap().contains(&"APP=1".to_string()));

    let b = build(&s, &set, "synthetic", &o, &mut |_| {}).unwrap();
    assert_eq!(
        a.digest, b.digest,
        "two no-cache builds of the same recipe differ"
    );

    // The cache answers a third build without running anything.
    o.no_cache = false;
    let mut ran = false;
    let c = build(&s, &set, "synthetic", &o, &mut |e| {
        ran |= matches!(e, BuildEvent::Step { .. })
    })
    .unwrap();
    assert_eq!(c.digest, a.digest);
    assert!(!ran, "cached build ran a step");

    // The layer unpacks with the whiteout in overlay form and the download's mode.
    let dirs = s.unpack(&a.name).unwrap();
    let m = std::fs::metadata(dirs[2].path.join("opt/app/payload.txt")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777,
        0o600
    );
}

#[test]
fn failing_step_names_the_step_and_leaves_the_store_unchanged() {
    let t = tempfile::tempdir().unwrap();
    let Some(o) = opts(t.path()) else { return };
    let s = store_with_busybox(t.path());
    let set = recipes_from(
        t.path(),
        &[(
            "broken",
            r#"
name = "broken"
description = "second step fails"
[base]
image = "test/busybox:1"
[[steps]]
run = "echo first > /first"
[[steps]]
name = "the failing one"
run = "echo about to fail; exit 3"
"#,
        )],
    );
    let before = listing(s.root());
    let err = build(&s, &set, "broken", &o, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("step 2 (the failing one)"), "{err}");
    assert!(err.contains("about to fail"), "{err}");
    assert!(err.contains('3'), "{err}");
    assert_eq!(listing(s.root()), before, "failed build changed the store");
}

#[test]
fn failing_smoke_test_is_reported() {
    let t = tempfile::tempdir().unwrap();
    let Some(o) = opts(t.path()) else { return };
    let s = store_with_busybox(t.path());
    let set = recipes_from(
        t.path(),
        &[(
            "nosmoke",
            "name = \"nosmoke\"\ndescription = \"d\"\n[base]\nimage = \"test/busybox:1\"\n[smoke]\nrun = \"test -e /nope\"\n",
        )],
    );
    let before = listing(s.root());
    let err = build(&s, &set, "nosmoke", &o, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("smoke test `test -e /nope`"), "{err}");
    assert_eq!(listing(s.root()), before);
}

#[test]
fn julia_download_error_names_the_step_and_url() {
    // The julia recipe fetches the official tarball, which cannot be reached from the
    // test machines: point it at a closed loopback port and check the error path.
    let t = tempfile::tempdir().unwrap();
    let Some(o) = opts(t.path()) else { return };
    let s = store_with_busybox(t.path());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes");
    let mut r = recipe::load_file(&dir.join("julia.toml")).unwrap();
    r.base = Base::Image("test/busybox:1".into());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/julia.tar.gz");
    for st in &mut r.steps {
        if let recipe::StepKind::Download(d) = &mut st.kind {
            d.url = url.clone();
        }
    }
    let mut set = RecipeSet::default();
    set.insert(r);
    let before = listing(s.root());
    let err = build(&s, &set, "julia", &o, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains(&url) && err.contains("download"), "{err}");
    assert_eq!(listing(s.root()), before);

    // A wrong checksum is refused the same way.
    let bad = t.path().join("not-julia.tar.gz");
    std::fs::write(&bad, b"not julia").unwrap();
    let mut r = set.get("julia").unwrap().clone();
    for st in &mut r.steps {
        if let recipe::StepKind::Download(d) = &mut st.kind {
            d.url = format!("file://{}", bad.display());
        }
    }
    set.insert(r);
    let err = build(&s, &set, "julia", &o, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("sha256 mismatch"), "{err}");
}

#[test]
fn curated_recipes_load_and_chain() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes");
    let set = recipe::load_dir(&dir).unwrap();
    for name in [
        "base",
        "python",
        "jupyter",
        "pytorch",
        "tensorflow",
        "tensorflow-cuda",
        "jax",
        "jax-cuda",
        "cpp",
        "rust",
        "go",
        "r",
        "julia",
    ] {
        let chain = set.chain(name).unwrap();
        assert_eq!(chain[0].name, "base", "{name} does not start at base");
        assert!(
            set.get(name).unwrap().smoke.is_some(),
            "{name} has no smoke test"
        );
    }
}

#[test]
fn recipe_with_unknown_key_names_file_and_line() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("oops.toml");
    std::fs::write(&p, "name = \"oops\"\ndescription = \"d\"\nfrom = \"base\"\n\n[config]\nworkdir = \"/w\"\nentrypont = [\"x\"]\n").unwrap();
    let err = recipe::load_file(&p).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}:7:", p.display())), "{err}");
    assert!(err.contains("entrypont"), "{err}");
}

fn slow_enabled(test: &str) -> bool {
    if std::env::var("WARREN_IMAGES_BUILD_TESTS").as_deref() == Ok("1") {
        return true;
    }
    eprintln!(
        "SKIPPED {test}: set WARREN_IMAGES_BUILD_TESTS=1 to build real images (debootstrap, apt, pip; minutes)"
    );
    false
}

/// Builds a curated recipe into the store at WARREN_IMAGES_BUILD_STORE (default: a temp
/// dir), printing progress and the time and size.
fn build_curated(name: &str) {
    let keep = std::env::var("WARREN_IMAGES_BUILD_STORE").ok();
    let t = tempfile::tempdir().unwrap();
    let root = keep
        .map(PathBuf::from)
        .unwrap_or_else(|| t.path().join("store"));
    let Some(o) = opts(t.path()) else { return };
    let s = Store::open(&root).unwrap();
    let set = recipe::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes")).unwrap();
    let start = std::time::Instant::now();
    let built = build(&s, &set, name, &o, &mut |e| match e {
        BuildEvent::Output { .. } => {}
        e => eprintln!("{e:?}"),
    })
    .unwrap();
    eprintln!(
        "BUILT {} {} layers={} size={:.1} MiB in {:.0}s",
        built.name,
        built.digest,
        built.layers,
        built.size as f64 / 1048576.0,
        start.elapsed().as_secs_f64()
    );
    measure_unpack(&s, &built.name, t.path());
}

/// Unpacks every layer of `name` into a scratch dir with warren's unpacker and with GNU
/// tar, and prints both rates (an A/B ratio, not an assertion).
fn measure_unpack(s: &Store, name: &str, scratch: &Path) {
    use warren_images::layer::{Compression, UnpackMode, unpack};
    let img = s.image(name).unwrap();
    let (mut ours, mut theirs, mut bytes, mut entries) = (0.0, 0.0, 0u64, 0u64);
    for (i, l) in img.layers.iter().enumerate() {
        let dir = scratch.join(format!("unpack-{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let f = std::io::BufReader::new(std::fs::File::open(s.blob_path(l)).unwrap());
        let t0 = std::time::Instant::now();
        let (_, dec) = Compression::auto_decoder(f).unwrap();
        let st = unpack(dec, &dir, UnpackMode::Overlay).unwrap();
        ours += t0.elapsed().as_secs_f64();
        bytes += st.bytes;
        entries += st.entries;
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        let t0 = std::time::Instant::now();
        common::run(
            std::process::Command::new("tar")
                .arg("-C")
                .arg(&dir)
                .arg("-xzf")
                .arg(s.blob_path(l)),
        );
        theirs += t0.elapsed().as_secs_f64();
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let mib = bytes as f64 / 1048576.0;
    eprintln!(
        "UNPACK {name}: {entries} entries, {mib:.0} MiB: warren {ours:.1}s ({:.0} MiB/s), GNU tar {theirs:.1}s ({:.0} MiB/s), ratio {:.2}",
        mib / ours,
        mib / theirs,
        ours / theirs
    );
}

#[test]
fn slow_build_base() {
    if slow_enabled("slow_build_base") {
        build_curated("base");
    }
}

/// Builds the recipes named in WARREN_IMAGES_BUILD_RECIPES (comma-separated), e.g.
/// `cpp,go,rust,r`, into the same store.
#[test]
fn slow_build_listed() {
    let Ok(list) = std::env::var("WARREN_IMAGES_BUILD_RECIPES") else {
        eprintln!(
            "SKIPPED slow_build_listed: set WARREN_IMAGES_BUILD_RECIPES=cpp,go,… (and WARREN_IMAGES_BUILD_TESTS=1)"
        );
        return;
    };
    if slow_enabled("slow_build_listed") {
        for name in list.split(',').filter(|n| !n.is_empty()) {
            build_curated(name);
        }
    }
}

#[test]
fn slow_build_python() {
    if slow_enabled("slow_build_python") {
        build_curated("python");
    }
}

/// Lists (path, size, sha256) of a layer blob's entries.
fn entry_digests(
    s: &Store,
    blob: &warren_images::Digest,
) -> std::collections::BTreeMap<String, String> {
    use std::io::Read;
    let f = std::fs::File::open(s.blob_path(blob)).unwrap();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let mut out = std::collections::BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().display().to_string();
        let h = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        let meta = format!(
            "{:?} {:o} {} {}",
            h.entry_type(),
            h.mode().unwrap(),
            h.mtime().unwrap(),
            warren_images::Digest::of(&data)
        );
        out.insert(p, meta);
    }
    out
}

/// An apt step built twice from the real base: reports which files differ (apt and dpkg
/// write some state that is not reproducible) and asserts the digests match.
#[test]
fn slow_apt_step_determinism() {
    if !slow_enabled("slow_apt_step_determinism") {
        return;
    }
    let keep = std::env::var("WARREN_IMAGES_BUILD_STORE").ok();
    let t = tempfile::tempdir().unwrap();
    let root = keep
        .map(PathBuf::from)
        .unwrap_or_else(|| t.path().join("store"));
    let Some(mut o) = opts(t.path()) else { return };
    let s = Store::open(&root).unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes");
    let mut set = recipe::load_dir(&dir).unwrap();
    set.insert(recipe::parse_str("name = \"apt-twice\"\ndescription = \"d\"\nfrom = \"base\"\n[[steps]]\napt = [\"python3\"]\n", Path::new("apt-twice.toml")).unwrap());
    build(&s, &set, "base", &o, &mut |_| {}).unwrap();
    o.no_cache = false;
    o.skip_smoke = true;
    let mut o2 = o.clone();
    o2.no_cache = true;
    let a = build(&s, &set, "apt-twice", &o2, &mut |_| {}).unwrap();
    let la = s.image(&a.name).unwrap().layers[1].clone();
    let b = build(&s, &set, "apt-twice", &o2, &mut |_| {}).unwrap();
    let lb = s.image(&b.name).unwrap().layers[1].clone();
    if la != lb {
        let (ea, eb) = (entry_digests(&s, &la), entry_digests(&s, &lb));
        for (k, v) in &ea {
            if eb.get(k) != Some(v) {
                eprintln!("DIFF {k}: {v} vs {:?}", eb.get(k));
            }
        }
        for k in eb.keys().filter(|k| !ea.contains_key(*k)) {
            eprintln!("ONLY IN SECOND {k}");
        }
    }
    assert_eq!(la, lb, "apt layer differs between two builds");
}
