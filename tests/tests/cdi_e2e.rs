//! Device passthrough through warren-runtime, end to end: a CDI annotation on a plain
//! bundle gives the container exactly the requested device (real nodes made with mknod,
//! aliasing /dev/null and, for a device outside the default
//! allow-list, /dev/fuse), with its env, mounts and hooks; a device that was not
//! requested is refused by the devices cgroup; unknown names and broken spec files give
//! clear errors and leave nothing behind.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use warren_e2e::{Bundle, LeakCheck, Runtime, host_sh, unique_id};

const SPEC: &str = r#"cdiVersion: "0.6.0"
kind: "example.com/gpu"
devices:
  - name: "0"
    containerEdits:
      deviceNodes:
        - path: "/dev/egpu0"
          hostPath: "DIR/egpu0"
      env: ["EGPU_VISIBLE=0"]
  - name: "1"
    containerEdits:
      deviceNodes:
        - path: "/dev/egpu1"
          hostPath: "DIR/egpu1"
containerEdits:
  env: ["EGPU_DRIVER=fake"]
  mounts:
    - hostPath: "DIR/libegpu.so"
      containerPath: "/opt/egpu/lib/libegpu.so"
      options: ["ro", "bind"]
  hooks:
    - hookName: createContainer
      path: "DIR/hook.sh"
      args: ["hook.sh", "created-container"]
"#;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let r = host_sh(&format!(
            "mknod {0}/egpu0 c 1 3 && mknod {0}/egpu1 c 10 229 && echo lib > {0}/libegpu.so",
            d.display()
        ))
        .expect("mknod");
        assert!(r.success(), "mknod: {}", r.stderr);
        let hook = d.join("hook.sh");
        std::fs::write(
            &hook,
            format!(
                "#!/bin/sh\ncat > {}/hook-state.json\necho \"$1\" > {}/hook-args\n",
                d.display(),
                d.display()
            ),
        )
        .expect("hook");
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::create_dir(d.join("cdi")).expect("cdi dir");
        std::fs::write(
            d.join("cdi/egpu.yaml"),
            SPEC.replace("DIR", &d.display().to_string()),
        )
        .expect("spec");
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `warren-runtime run` with this fixture's CDI spec directory.
    fn run(&self, rt: &Runtime, b: &Bundle, id: &str) -> warren_e2e::Output {
        rt.cmd(["run", "--bundle"])
            .arg(b.path())
            .arg(id)
            .env("WARREN_CDI_SPEC_DIRS", self.path().join("cdi"))
            .timeout(Duration::from_secs(30))
            .output()
            .expect("run")
    }
}

fn bundle(request: &str, script: &str) -> Bundle {
    let mut b = Bundle::new().expect("bundle");
    b.set_sh(script);
    b.config["annotations"] = serde_json::json!({"cdi.k8s.io/e2e": request});
    for set in ["bounding", "effective", "permitted"] {
        if let Some(a) = b.config["process"]["capabilities"][set].as_array_mut() {
            a.push("CAP_MKNOD".into());
        }
    }
    b.save().expect("save");
    b
}

#[test]
fn requested_device_is_present_writable_and_alone() {
    let f = Fixture::new();
    let rt = Runtime::warren().expect("runtime");
    let b = bundle(
        "example.com/gpu=0",
        "ls -l /dev/egpu0 | awk '{print $1, $5 $6}'; echo data > /dev/egpu0 && echo wrote; \
         [ -e /dev/egpu1 ] && echo egpu1-present || echo egpu1-absent; \
         mknod /dev/notrequested c 10 229 && (exec 3<>/dev/notrequested) 2>&1; \
         echo $EGPU_VISIBLE $EGPU_DRIVER; cat /opt/egpu/lib/libegpu.so",
    );
    let id = unique_id("cdi");
    let out = f.run(&rt, &b, &id);
    assert!(out.success(), "run failed: {}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("crw-r--r-- 1,3"),
        "device node: {}",
        out.stdout
    );
    assert!(out.stdout.contains("wrote"), "{}", out.stdout);
    assert!(out.stdout.contains("egpu1-absent"), "{}", out.stdout);
    assert!(
        out.stdout.contains("Operation not permitted"),
        "a device that was not requested must be refused by the devices cgroup: {}",
        out.stdout
    );
    assert!(out.stdout.contains("0 fake"), "env: {}", out.stdout);
    assert!(out.stdout.contains("lib"), "mount: {}", out.stdout);
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(f.path().join("hook-state.json")).expect("hook ran"),
    )
    .expect("state json");
    assert_eq!(state["id"], id.as_str(), "{state}");
    assert!(state["pid"].as_i64().unwrap_or(0) > 0, "{state}");
    assert_eq!(
        std::fs::read_to_string(f.path().join("hook-args"))
            .expect("args")
            .trim(),
        "created-container"
    );
    LeakCheck::new()
        .id(&id)
        .path(b.path())
        .state_root(rt.root())
        .assert_clean()
        .expect("no leaks");
}

#[test]
fn unknown_device_fails_listing_known_ones_and_leaves_nothing() {
    let f = Fixture::new();
    let rt = Runtime::warren().expect("runtime");
    let b = bundle("example.com/gpu=7", "true");
    let id = unique_id("cdi-unknown");
    let out = f.run(&rt, &b, &id);
    assert!(!out.success());
    assert!(
        out.stderr.contains("example.com/gpu=7")
            && out.stderr.contains("example.com/gpu=0")
            && out.stderr.contains("example.com/gpu=1"),
        "{}",
        out.stderr
    );
    LeakCheck::new()
        .id(&id)
        .path(b.path())
        .state_root(rt.root())
        .assert_clean()
        .expect("no leaks");
}

#[test]
fn broken_spec_file_is_skipped_while_the_good_one_loads() {
    let f = Fixture::new();
    std::fs::write(
        f.path().join("cdi/broken.yaml"),
        "cdiVersion: \"0.6.0\"\nkind: \"bad.com/x\"\ndevices: [ { name: x, unknownKey: 1 } ]\n",
    )
    .expect("write");
    let rt = Runtime::warren().expect("runtime");
    let b = bundle(
        "example.com/gpu=1",
        "ls -l /dev/egpu1 | awk '{print $5 $6}'; (exec 3<>/dev/egpu1) && echo opened",
    );
    let id = unique_id("cdi-broken");
    let out = f.run(&rt, &b, &id);
    assert!(out.success(), "{}", out.stderr);
    // 10:229 is outside runc's default devices: it opens only thanks to the CDI allow rule.
    assert_eq!(out.stdout.trim(), "10,229\nopened");
    assert!(
        out.stderr.contains("broken.yaml"),
        "the skipped file is reported: {}",
        out.stderr
    );
    LeakCheck::new()
        .id(&id)
        .path(b.path())
        .state_root(rt.root())
        .assert_clean()
        .expect("no leaks");
}
