//! Warm pools end to end (as root): a pool of 4 serving 1000 execs from 8 callers, a
//! single sandbox reset between execs, runaway commands contained and reported.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{PoolGuard, helpers, root_or_skip, roots, unique};
use warren_agents::pool::manage;
use warren_agents::pool::{Client, ExecRequest, PoolOptions};

fn req(argv: &[&str]) -> ExecRequest {
    ExecRequest {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn sh(script: &str) -> ExecRequest {
    req(&["sh", "-c", script])
}

fn wait_full(roots: &warren_agents::Roots, name: &str, size: usize) {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let s = Client::connect(roots, name)
            .and_then(|mut c| c.status())
            .expect("status");
        if s.ready == size && s.busy == 0 && s.starting == 0 {
            return;
        }
        assert!(Instant::now() < end, "pool not back to full size: {s:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every exec checks that nothing of an earlier one is left (a sleeping background
/// process, marker files in /tmp and the workspace), leaves the same behind itself, and
/// exits with a code and output that depend on its number.
const ISOLATION_SCRIPT: &str = r#"
for c in /proc/[0-9]*/comm; do
  read -r n < "$c" 2>/dev/null || continue
  if [ "$n" = sleep ]; then echo "LEFTOVER PROCESS"; exit 99; fi
done
[ -e /tmp/marker ] && { echo "LEFTOVER /tmp/marker $(cat /tmp/marker)"; exit 98; }
[ -e /workspace/marker ] && { echo "LEFTOVER /workspace/marker"; exit 97; }
echo "$K" > /tmp/marker
echo "$K" > /workspace/marker
(sleep 1000 >/dev/null 2>&1 &)
echo "out-$K"
echo "err-$K" >&2
exit $((K % 5))
"#;

#[test]
fn pool_of_4_serves_1000_execs_from_8_callers() {
    if !root_or_skip("pool_of_4_serves_1000_execs_from_8_callers") {
        return;
    }
    let t = roots();
    let name = unique("p");
    let _g = PoolGuard {
        roots: t.roots.clone(),
        name: name.clone(),
    };
    let st = manage::create(
        &t.roots,
        &helpers(),
        &PoolOptions {
            name: name.clone(),
            size: 4,
            ..Default::default()
        },
        Duration::from_secs(60),
    )
    .expect("create pool");
    assert_eq!((st.size, st.ready), (4, 4));

    let start = Instant::now();
    let callers: Vec<_> = (0..8)
        .map(|c| {
            let roots = t.roots.clone();
            let name = name.clone();
            std::thread::spawn(move || {
                let mut client = Client::connect(&roots, &name).expect("connect");
                for i in 0..125 {
                    let k = c * 1000 + i;
                    let mut r = sh(ISOLATION_SCRIPT);
                    r.env = BTreeMap::from([("K".to_string(), k.to_string())]);
                    let out = client.exec(&r).expect("exec");
                    assert_eq!(
                        String::from_utf8_lossy(&out.stdout),
                        format!("out-{k}\n"),
                        "exec {k}: {:?} stderr {:?}",
                        out.result,
                        String::from_utf8_lossy(&out.stderr)
                    );
                    assert_eq!(out.stderr, format!("err-{k}\n").into_bytes(), "exec {k}");
                    assert_eq!(out.result.exit_code, k % 5, "exec {k}");
                    assert!(!out.result.timed_out && !out.result.oom_killed);
                }
            })
        })
        .collect();
    for c in callers {
        c.join().expect("caller");
    }
    let took = start.elapsed();
    eprintln!(
        "1000 execs from 8 callers on 4 sandboxes: {:.2} s ({:.0}/s)",
        took.as_secs_f64(),
        1000.0 / took.as_secs_f64()
    );
    wait_full(&t.roots, &name, 4);
    let s = Client::connect(&t.roots, &name)
        .and_then(|mut c| c.status())
        .expect("status");
    assert_eq!(s.execs, 1000);
    assert_eq!(s.replaced, 0, "no sandbox had to be replaced: {s:?}");

    // A fork bomb: contained by the pids limit, stopped by the time limit, reported.
    let mut c = Client::connect(&t.roots, &name).expect("connect");
    let mut bomb = sh("b() { b | b & }; b; sleep 60");
    bomb.timeout_ms = Some(2000);
    bomb.pids = Some(64);
    let out = c.exec(&bomb).expect("fork bomb");
    assert!(out.result.pids_limit_hit, "{:?}", out.result);
    assert!(
        out.result.timed_out || out.result.exit_code != 0,
        "{:?}",
        out.result
    );
    // A memory hog: the OOM killer of the sandbox's cgroup, reported.
    let mut hog = req(&["python3", "-c", "b = b'x' * (1 << 31); print(len(b))"]);
    hog.memory = Some(128 << 20);
    let out = c.exec(&hog).expect("memory hog");
    assert!(out.result.oom_killed, "{:?}", out.result);
    assert_eq!(out.result.exit_code, 137, "{:?}", out.result);
    // Runaway output: cut at the limit, the command killed.
    let mut yes = req(&["yes"]);
    yes.output_limit = Some(10_000);
    let out = c.exec(&yes).expect("yes");
    assert!(out.result.output_truncated, "{:?}", out.result);
    assert_eq!(out.stdout.len(), 10_000);
    // A command that never ends.
    let mut sleeper = req(&["sleep", "100"]);
    sleeper.timeout_ms = Some(300);
    let t0 = Instant::now();
    let out = c.exec(&sleeper).expect("sleep");
    assert!(
        out.result.timed_out && out.result.exit_code == 137,
        "{:?}",
        out.result
    );
    assert!(t0.elapsed() < Duration::from_secs(5));

    // Back to full size, and the sandboxes still work.
    wait_full(&t.roots, &name, 4);
    for _ in 0..8 {
        let out = c.exec(&sh(ISOLATION_SCRIPT)).expect("exec after");
        assert_eq!(
            out.result.exit_code,
            0,
            "{:?} {:?}",
            out.result,
            String::from_utf8_lossy(&out.stdout)
        );
    }
    drop(c);
    manage::rm(&t.roots, &name).expect("rm");
    assert_eq!(manage::leftovers(&t.roots, &name), Vec::<String>::new());
}

#[test]
fn one_sandbox_is_as_new_after_every_exec() {
    if root_or_skip("one_sandbox_is_as_new_after_every_exec") {
        as_new_after_every_exec("agent", "q");
    }
}

/// Without Landlock (the trusted profile) more is writable: /var/tmp, POSIX message
/// queues. The reset must clear those too.
#[test]
fn one_trusted_sandbox_is_as_new_after_every_exec() {
    if root_or_skip("one_trusted_sandbox_is_as_new_after_every_exec") {
        as_new_after_every_exec("trusted", "r");
    }
}

fn as_new_after_every_exec(profile: &str, prefix: &str) {
    let t = roots();
    let name = unique(prefix);
    let _g = PoolGuard {
        roots: t.roots.clone(),
        name: name.clone(),
    };
    manage::create(
        &t.roots,
        &helpers(),
        &PoolOptions {
            name: name.clone(),
            size: 1,
            profile: Some(profile.into()),
            ..Default::default()
        },
        Duration::from_secs(60),
    )
    .expect("create pool");
    let mut c = Client::connect(&t.roots, &name).expect("connect");
    // Leave everything we can think of: files everywhere writable, odd permissions and
    // an xattr on /tmp, SysV shared memory and a message queue, a POSIX message queue,
    // a process in its own session, a secret in the environment.
    let dirty = r#"
set -e
for d in /tmp /workspace /dev/shm; do mkdir -p $d/a/b; echo x > $d/a/b/f; ln -s /etc/passwd $d/link; done
# /var/tmp and message queues: only where the profile allows them (not under Landlock).
mkdir /var/tmp/a 2>/dev/null || true
chmod 700 /tmp
python3 -c 'import os; os.setxattr("/tmp", "user.left", b"1")'
ipcmk -M 4096 >/dev/null
ipcmk -Q >/dev/null
python3 -c 'import ctypes; rt = ctypes.CDLL("librt.so.1"); rt.mq_open(b"/left", 0o102, 0o600, None)'
setsid sleep 1000 >/dev/null 2>&1 < /dev/null &
echo done
"#;
    let mut r = sh(dirty);
    r.env = BTreeMap::from([("SECRET".into(), "s3cret".into())]);
    let out = c.exec(&r).expect("dirty");
    assert_eq!(
        out.result.exit_code,
        0,
        "{:?} {}",
        out.result,
        String::from_utf8_lossy(&out.stderr)
    );
    let check = r#"
ls -A /tmp /var/tmp /workspace /dev/shm /dev/mqueue
stat -c '%a %u' /tmp
python3 -c 'import os; print(os.listxattr("/tmp"))'
ipcs -m | grep -c 0x || true
ipcs -q | grep -c 0x || true
ps -e -o comm= | grep -c sleep || true
echo "secret=${SECRET:-}"
"#;
    let out = c.exec(&sh(check)).expect("check");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        text,
        "/dev/mqueue:\n\n/dev/shm:\n\n/tmp:\n\n/var/tmp:\n\n/workspace:\n1777 0\n[]\n0\n0\n0\nsecret=\n",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Writing still works after the reset (the Landlock grants on the tmpfs survive).
    let out = c
        .exec(&sh("echo ok > /tmp/x && cat /tmp/x"))
        .expect("write");
    assert_eq!(out.stdout, b"ok\n", "{:?}", out.result);
    if profile != "agent" {
        let st = c.status().expect("status");
        assert_eq!(st.replaced, 0, "{st:?}");
        return;
    }
    // The profile is in force in every exec: seccomp, Landlock, no network.
    let out = c
        .exec(&sh(
            "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; touch /usr/x 2>&1 || true; unshare -n true 2>&1 || true",
        ))
        .expect("profile");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("Seccomp:\t2") && text.contains("NoNewPrivs:\t1"),
        "{text}"
    );
    assert!(
        text.contains("Read-only file system") || text.contains("Permission denied"),
        "{text}"
    );
    assert!(text.contains("Operation not permitted"), "{text}");
    let st = c.status().expect("status");
    assert_eq!(st.replaced, 0, "{st:?}");
}

/// A static pool init (`./scripts/build.sh` puts one in target/bin); the debug build
/// cargo makes for the tests is dynamic, which only works on the host view.
fn static_init() -> Option<std::path::PathBuf> {
    let exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_warren-pool-init"));
    warren_agents::paths::helper_dirs(&exe)
        .into_iter()
        .map(|d| d.join("warren-pool-init"))
        .find(|p| warren_agents::paths::is_static_elf(p))
}

#[test]
fn an_image_pool_runs_in_its_image() {
    if !root_or_skip("an_image_pool_runs_in_its_image") {
        return;
    }
    let Some(init) = static_init() else {
        eprintln!(
            "skipping an_image_pool_runs_in_its_image: no static warren-pool-init (run ./scripts/build.sh)"
        );
        return;
    };
    let t = roots();
    // A tiny image: dash, ls and cat with their libraries, and a file to recognise it by.
    let fs = t.dir.path().join("mini");
    std::fs::create_dir_all(fs.join("bin")).expect("mkdir");
    for (src, dst) in [
        ("/usr/bin/dash", "bin/sh"),
        ("/usr/bin/ls", "bin/ls"),
        ("/usr/bin/cat", "bin/cat"),
    ] {
        std::fs::copy(src, fs.join(dst)).expect("copy binary");
    }
    let ldd = std::process::Command::new("ldd")
        .args(["/usr/bin/dash", "/usr/bin/ls", "/usr/bin/cat"])
        .output()
        .expect("ldd");
    for lib in String::from_utf8_lossy(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/') && !w.ends_with(':'))
    {
        let dst = fs.join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(dst.parent().expect("parent")).expect("mkdir");
        std::fs::copy(lib, &dst).expect("copy library");
    }
    std::fs::write(fs.join("IMAGE"), "mini\n").expect("marker");
    let tar = t.dir.path().join("mini.tar");
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(&fs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .expect("tar");
    assert!(st.success());
    warren_images::Store::open(&t.roots.data)
        .expect("store")
        .import_rootfs(&tar, "mini:latest")
        .expect("import");
    let name = unique("i");
    let _g = PoolGuard {
        roots: t.roots.clone(),
        name: name.clone(),
    };
    let mut h = helpers();
    h.pool_init = init;
    manage::create(
        &t.roots,
        &h,
        &PoolOptions {
            name: name.clone(),
            image: Some("mini".into()),
            size: 2,
            ..Default::default()
        },
        Duration::from_secs(60),
    )
    .expect("image pool");
    let mut c = Client::connect(&t.roots, &name).expect("connect");
    for _ in 0..4 {
        let out = c
            .exec(&sh(
                "cat /IMAGE; ls -A /tmp; echo x > /tmp/f; echo y > /f 2>/dev/null || echo ro",
            ))
            .expect("exec");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "mini\nro\n",
            "{:?}",
            out.result
        );
    }
    drop(c);
    manage::rm(&t.roots, &name).expect("rm");
    assert_eq!(manage::leftovers(&t.roots, &name), Vec::<String>::new());
    let containers = t.roots.data.join("containers");
    let left: Vec<_> = std::fs::read_dir(&containers)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "image roots left: {left:?}");
}

#[test]
fn a_sandbox_never_serves_two_callers_at_once() {
    if !root_or_skip("a_sandbox_never_serves_two_callers_at_once") {
        return;
    }
    let t = roots();
    let name = unique("o");
    let _g = PoolGuard {
        roots: t.roots.clone(),
        name: name.clone(),
    };
    manage::create(
        &t.roots,
        &helpers(),
        &PoolOptions {
            name: name.clone(),
            size: 1,
            user: Some((1000, 1000)),
            ..Default::default()
        },
        Duration::from_secs(60),
    )
    .expect("pool");
    let start = Instant::now();
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let (roots, name) = (t.roots.clone(), name.clone());
            std::thread::spawn(move || {
                let mut c = Client::connect(&roots, &name).expect("connect");
                c.exec(&sh(
                    "[ -e /tmp/busy ] && echo OVERLAP; touch /tmp/busy; sleep 0.2; rm /tmp/busy; id -u",
                ))
                .expect("exec")
            })
        })
        .collect();
    for c in callers {
        let out = c.join().expect("caller");
        assert_eq!(out.stdout, b"1000\n", "{:?}", out.result);
    }
    assert!(
        start.elapsed() >= Duration::from_millis(800),
        "{:?}",
        start.elapsed()
    );
}
