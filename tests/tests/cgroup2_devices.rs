//! Device rules on a pure cgroup v2 host, where they are enforced by an eBPF program
//! rather than `devices.allow`. This host is hybrid, so each runtime runs in a private
//! mount namespace whose `/sys/fs/cgroup` is the cgroup2 hierarchy alone — exactly what
//! the runtimes see on a unified host. warren-runtime and runc run the same bundles there
//! and must give the same answers: device nodes made inside the container with
//! CAP_MKNOD open only when the spec's rules or runc's default devices allow them.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use serde_json::json;
use warren_e2e::{Bundle, LeakCheck, Runtime, unique_id, warren_binary};

/// `bin` wrapped to run with only the cgroup2 hierarchy mounted at `/sys/fs/cgroup`.
struct PureV2 {
    rt: Runtime,
    _dir: tempfile::TempDir,
}

impl PureV2 {
    fn new(name: &str, bin: &Path) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("warren-e2e-purev2-{name}-"))
            .tempdir()
            .expect("tempdir");
        let script = format!(
            "#!/bin/sh\n\
             exec unshare -m --propagation private /bin/sh -c '\n\
             umount -R -l /sys/fs/cgroup 2>/dev/null\n\
             mount -t cgroup2 none /sys/fs/cgroup || exit 125\n\
             exec \"$@\"' sh '{}' \"$@\"\n",
            bin.display()
        );
        let wrapper = dir.path().join(name);
        std::fs::write(&wrapper, script).expect("write wrapper");
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Self {
            rt: Runtime::new(name, &wrapper).expect("runtime"),
            _dir: dir,
        }
    }
}

/// Makes nodes for a disk (b 8:0), /dev/zero's numbers (c 1:5, a default device),
/// loop-control's (c 10:237) and fuse's (c 10:229), and says for each whether opening it is
/// refused with EPERM.
const PROBE: &str = "mknod /tmp/disk b 8 0; mknod /tmp/zero c 1 5; mknod /tmp/loopctl c 10 237; \
    mknod /tmp/fuse c 10 229; \
    for d in disk zero loopctl fuse; do \
      if (exec 3</tmp/$d) 2>/tmp/err; then echo $d=open; \
      elif grep -q 'not permitted' /tmp/err; then echo $d=EPERM; \
      else echo $d=other:$(cat /tmp/err | tr ' ' _); fi; \
    done; head -c 1 /dev/null && echo null=ok";

fn bundle(extra_rules: &[serde_json::Value]) -> Bundle {
    let mut b = Bundle::new().expect("bundle");
    b.set_sh(PROBE).set_readonly_root(false);
    for set in ["bounding", "effective", "permitted"] {
        if let Some(a) = b.config["process"]["capabilities"][set].as_array_mut() {
            a.push("CAP_MKNOD".into());
        }
    }
    // runc spec's own list ("deny all"), then the variant's rules.
    let mut rules = vec![json!({"allow": false, "access": "rwm"})];
    rules.extend(extra_rules.iter().cloned());
    b.config["linux"]["resources"]["devices"] = json!(rules);
    b.save().expect("save");
    b
}

fn run(rt: &Runtime, b: &Bundle, prefix: &str) -> String {
    let id = unique_id(prefix);
    let out = rt.run(b.path(), &id, Duration::from_secs(30)).expect("run");
    assert!(
        out.success(),
        "{} in the pure cgroup2 view: {}",
        rt.name(),
        out.stderr
    );
    LeakCheck::new()
        .id(&id)
        .path(b.path())
        .state_root(rt.root())
        .assert_clean()
        .expect("no leaks");
    out.stdout
}

#[test]
fn device_rules_are_enforced_like_runc_on_pure_cgroup2() {
    let warren = PureV2::new("warren-runtime", &warren_binary().expect("warren-runtime"));
    let runc = PureV2::new("runc", &warren_e2e::runc_binary());
    let variants: [(&str, Vec<serde_json::Value>); 4] = [
        ("defaults", vec![]),
        (
            "allow-loopctl-read",
            vec![json!({"allow": true, "type": "c", "major": 10, "minor": 237, "access": "r"})],
        ),
        (
            "allow-all-deny-disk",
            vec![
                json!({"allow": true, "access": "rwm"}),
                json!({"allow": false, "type": "b", "major": 8, "access": "rw"}),
            ],
        ),
        (
            "deny-default-zero",
            vec![json!({"allow": false, "type": "c", "major": 1, "minor": 5, "access": "r"})],
        ),
    ];
    let mut table = String::from("| variant | warren-runtime | runc |\n|---|---|---|\n");
    for (name, rules) in &variants {
        let b = bundle(rules);
        let w = run(&warren.rt, &b, "v2dev-w");
        let r = run(&runc.rt, &b, "v2dev-r");
        table.push_str(&format!(
            "| {name} | {} | {} |\n",
            w.split_whitespace().collect::<Vec<_>>().join(" "),
            r.split_whitespace().collect::<Vec<_>>().join(" ")
        ));
        assert_eq!(w, r, "{name}: warren-runtime and runc disagree");
        assert!(w.contains("null=ok"), "{name}: {w}");
        if *name == "allow-loopctl-read" {
            assert!(w.contains("loopctl=open"), "an allowed device opens: {w}");
        }
        if *name == "allow-all-deny-disk" {
            assert!(w.contains("disk=EPERM") && w.contains("fuse=open"), "{w}");
        }
        if *name == "defaults" {
            assert!(
                w.contains("disk=EPERM"),
                "the disk is refused by default: {w}"
            );
            assert!(w.contains("loopctl=EPERM"), "{w}");
            assert!(!w.contains("zero=EPERM"), "a default device opens: {w}");
        }
    }
    eprintln!("{table}");
}
