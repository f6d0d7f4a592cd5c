//! runc is the oracle: every variant below is run by runc and by warren-runtime, and what
//! a user can observe — the output of a probe script run inside the container (busybox
//! sh), the exit status, host-side effects, hook records — must be the same once container
//! ids, bundle paths and state roots are normalised.
//!
//! The test prints a table `variant | runc | warren | match` at the end (and writes it to
//! `differential-table.md` under cargo's target tmp dir) and fails if any variant differs.
//! A variant runc itself cannot run on this host is still compared: warren must fail the
//! same way. `E2E_VARIANT=substring` runs only the matching variants.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use warren_e2e::{Bundle, HarnessError, LeakCheck, Output, Result, Runtime, host_sh, unique_id};

const RUN_TIMEOUT: Duration = Duration::from_secs(20);

/// What one runtime did with one variant.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Obs {
    exit: i32,
    out: String,
}

/// A finished variant run: the observation, diagnostics for a mismatch, and the bundle
/// (kept until the leak check has looked for its path).
struct Done {
    obs: Obs,
    diag: String,
    bundle: Bundle,
}

type VariantFn = fn(&Runtime, &str) -> Result<Done>;

struct Variant {
    name: &'static str,
    run: VariantFn,
    oracle: Oracle,
}

/// What warren's observation is compared with.
enum Oracle {
    /// runc's observation of the same variant.
    Runc,
    /// The OCI runtime spec, where runc 1.1.5 is known not to follow it (`why`): `check`
    /// lists what is wrong with warren's observation.
    Spec {
        why: &'static str,
        check: fn(&Obs) -> Vec<String>,
    },
}

const fn v(name: &'static str, run: VariantFn) -> Variant {
    Variant {
        name,
        run,
        oracle: Oracle::Runc,
    }
}

const fn spec(
    name: &'static str,
    run: VariantFn,
    why: &'static str,
    check: fn(&Obs) -> Vec<String>,
) -> Variant {
    Variant {
        name,
        run,
        oracle: Oracle::Spec { why, check },
    }
}

/// Problems with `o` against an expected exit status and lines that must appear.
fn expect_lines(o: &Obs, exit: i32, lines: &[&str]) -> Vec<String> {
    let mut bad = Vec::new();
    if o.exit != exit {
        bad.push(format!("exit {} (expected {exit})", o.exit));
    }
    for l in lines {
        if !o
            .out
            .lines()
            .any(|x| x == *l || (l.ends_with('*') && x.starts_with(&l[..l.len() - 1])))
        {
            bad.push(format!("missing line {l:?}"));
        }
    }
    bad
}

fn done(out: &Output, bundle: Bundle) -> Done {
    Done {
        obs: Obs {
            exit: out.exit_code(),
            out: out.stdout.clone(),
        },
        diag: out.stderr.clone(),
        bundle,
    }
}

/// Runs `script` with `sh -c` in a fresh bundle edited by `edit`, in the foreground.
fn probe(
    rt: &Runtime,
    id: &str,
    script: &str,
    edit: impl FnOnce(&mut Bundle) -> Result<()>,
) -> Result<Done> {
    let mut b = Bundle::new()?;
    b.set_sh(script);
    edit(&mut b)?;
    b.save()?;
    let out = rt.run(b.path(), id, RUN_TIMEOUT)?;
    Ok(done(&out, b))
}

fn host_dir(b: &Bundle, name: &str) -> Result<PathBuf> {
    let p = b.path().join(name);
    std::fs::create_dir_all(&p).map_err(|e| HarnessError::Other(format!("mkdir {p:?}: {e}")))?;
    Ok(p)
}

fn bind(dest: &str, src: &Path, opts: &[&str]) -> Value {
    json!({"destination": dest, "type": "bind", "source": src, "options": opts})
}

fn set_caps(b: &mut Bundle, caps: &[&str]) {
    for set in ["bounding", "effective", "permitted", "ambient"] {
        b.config["process"]["capabilities"][set] = json!(caps);
    }
}

fn read_or(p: &Path, missing: &str) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|_| missing.to_owned())
}

// ---------------------------------------------------------------------------------------
// Process: env, cwd, user, rlimits, oom score, umask, argv, exit codes.

fn env(rt: &Runtime, id: &str) -> Result<Done> {
    probe(rt, id, "env | sort", |b| {
        b.config["process"]["env"] = json!([
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            "FOO=bar",
            "SPACES=a b  c",
            "EMPTY=",
            "EQUALS=x=y=z",
            "DUP=first",
            "DUP=second"
        ]);
        Ok(())
    })
}

fn env_home_from_passwd(rt: &Runtime, id: &str) -> Result<Done> {
    probe(rt, id, "echo HOME=$HOME; id -u", |b| {
        b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        Ok(())
    })
}

fn cwd_existing(rt: &Runtime, id: &str) -> Result<Done> {
    probe(rt, id, "pwd; ls", |b| {
        b.config["process"]["cwd"] = json!("/etc");
        Ok(())
    })
}

fn cwd_missing(rt: &Runtime, id: &str) -> Result<Done> {
    probe(
        rt,
        id,
        "pwd; stat -c '%n %a %u:%g' /work/deep /work/deep/dir",
        |b| {
            b.config["process"]["cwd"] = json!("/work/deep/dir");
            b.set_readonly_root(false);
            Ok(())
        },
    )
}

fn cwd_missing_readonly_root(rt: &Runtime, id: &str) -> Result<Done> {
    probe(rt, id, "pwd", |b| {
        b.config["process"]["cwd"] = json!("/newdir");
        b.set_readonly_root(true);
        Ok(())
    })
}

fn cwd_missing_as_user(rt: &Runtime, id: &str) -> Result<Done> {
    probe(rt, id, "pwd; stat -c '%n %a %u:%g' /u/dir", |b| {
        b.config["process"]["cwd"] = json!("/u/dir");
        b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        b.set_readonly_root(false);
        Ok(())
    })
}

fn user_uid_gid(rt: &Runtime, id: &str) -> Result<Done> {
    probe(rt, id, "id", |b| {
        b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        Ok(())
    })
}

fn user_additional_gids(rt: &Runtime, id: &str) -> Result<Done> {
    probe(rt, id, "id", |b| {
        b.config["process"]["user"] =
            json!({"uid": 1000, "gid": 1000, "additionalGids": [2000, 3000]});
        Ok(())
    })
}

fn user_without_passwd_entry(rt: &Runtime, id: &str) -> Result<Done> {
    probe(rt, id, "id; echo HOME=$HOME", |b| {
        b.config["process"]["user"] = json!({"uid": 4242, "gid": 4343});
        Ok(())
    })
}

fn user_root_groups(rt: &Runtime, id: &str) -> Result<Done> {
    probe(rt, id, "id; grep Groups /proc/self/status", |b| {
        b.config["process"]["user"] = json!({"uid": 0, "gid": 0});
        Ok(())
    })
}

fn user_umask(rt: &Runtime, id: &str) -> Result<Done> {
    probe(rt, id, "umask; touch /tmp/f; stat -c %a /tmp/f", |b| {
        b.config["process"]["user"] = json!({"uid": 0, "gid": 0, "umask": 63});
        b.set_readonly_root(false);
        Ok(())
    })
}

fn rlimit_lowered(rt: &Runtime, id: &str) -> Result<Done> {
    probe(
        rt,
        id,
        "ulimit -n; ulimit -Hn; ulimit -c; ulimit -Hc",
        |b| {
            b.config["process"]["rlimits"] = json!([
                {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
                {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}
            ]);
            Ok(())
        },
    )
}

fn rlimit_raise_hard_fails(rt: &Runtime, id: &str) -> Result<Done> {
    // The host's bounding set lacks CAP_SYS_RESOURCE: no runtime can raise a hard limit.
    probe(rt, id, "echo should-not-run; ulimit -Hn", |b| {
        b.config["process"]["rlimits"] =
            json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4_000_000}]);
        Ok(())
    })
}

fn oom_score_adj(rt: &Runtime, id: &str) -> Result<Done> {
    probe(rt, id, "cat /proc/self/oom_score_adj", |b| {
        b.config["process"]["oomScoreAdj"] = json!(500);
        Ok(())
    })
}

fn args_verbatim(rt: &Runtime, id: &str) -> Result<Done> {
    let mut b = Bundle::new()?;
    b.set_args(&[
        "sh",
        "-c",
        "for a in \"$@\"; do echo \"[$a]\"; done",
        "argv0",
        "a b",
        "",
        "$HOME",
        "*",
    ]);
    b.save()?;
    let out = rt.run(b.path(), id, RUN_TIMEOUT)?;
    Ok(done(&out, b))
}

fn path_lookup(rt: &Runtime, id: &str) -> Result<Done> {
    let mut b = Bundle::new()?;
    b.set_args(&["echo", "found", "via", "PATH"]);
    b.save()?;
    let out = rt.run(b.path(), id, RUN_TIMEOUT)?;
    Ok(done(&out, b))
}

fn missing_executable(rt: &Runtime, id: &str) -> Result<Done> {
    let mut b = Bundle::new()?;
    b.set_args(&["/no/such/binary"]);
    b.save()?;
    let out = rt.run(b.path(), id, RUN_TIMEOUT)?;
    Ok(done(&out, b))
}

fn exit_code_3(rt: &Runtime, id: &str) -> Result<Done> {
    probe(rt, id, "echo before; exit 3", |_| Ok(()))
}

fn exit_by_signal(rt: &Runtime, id: &str) -> Result<Done> {
    // Without a pid namespace sh is not an init, so it can kill itself.
    probe(rt, id, "kill -KILL $$; echo survived", |b| {
        drop_namespace(b, "pid");
        Ok(())
    })
}

fn pid1_ignores_own_sigkill(rt: &Runtime, id: &str) -> Result<Done> {
    probe(rt, id, "echo pid=$$; kill -KILL $$; echo survived", |_| {
        Ok(())
    })
}

fn drop_namespace(b: &mut Bundle, typ: &str) {
    if let Some(a) = b.config["linux"]["namespaces"].as_array_mut() {
        a.retain(|n| n["type"] != typ);
    }
}

// ---------------------------------------------------------------------------------------
// Namespaces, sysctl, hostname, file system.

fn sysctl(rt: &Runtime, id: &str) -> Result<Done> {
    probe(
        rt,
        id,
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced",
        |b| {
            b.config["linux"]["sysctl"] =
                json!({"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1"});
            Ok(())
        },
    )
}

fn hostname(rt: &Runtime, id: &str) -> Result<Done> {
    probe(rt, id, "hostname; cat /proc/sys/kernel/hostname", |b| {
        b.config["hostname"] = json!("e2e-host");
        Ok(())
    })
}

fn domainname(rt: &Runtime, id: &str) -> Result<Done> {
    probe(rt, id, "cat /proc/sys/kernel/domainname", |b| {
        b.config["domainname"] = json!("e2e.example");
        Ok(())
    })
}

fn loopback_up(rt: &Runtime, id: &str) -> Result<Done> {
    probe(rt, id, "ip -o link | awk '{print $2, $3}'", |_| Ok(()))
}

fn readonly_root(rt: &Runtime, id: &str) -> Result<Done> {
    probe(
        rt,
        id,
        "touch /x 2>&1; echo rc=$?; awk '$2 == \"/\" {split($4, o, \",\"); print o[1]}' /proc/mounts",
        |b| {
            b.set_readonly_root(true);
            Ok(())
        },
    )
}

fn masked_paths(rt: &Runtime, id: &str) -> Result<Done> {
    // /proc/keys and /proc/timer_list are in runc's default maskedPaths (this kernel has
    // no /proc/kcore); /etc/secret and /secretdir are ours.
    let script = "wc -c < /proc/keys; wc -c < /proc/timer_list; cat /etc/secret | wc -c; \
                  ls -A /secretdir | wc -l; ls -A /sys/firmware | wc -l; \
                  echo overwritten > /etc/secret 2>&1; echo rc=$?";
    let mut b = Bundle::new()?;
    let secret = b.write_rootfs_file("etc/secret", b"s3cret\n", 0o644)?;
    b.write_rootfs_file("secretdir/file", b"hidden\n", 0o644)?;
    if let Some(a) = b.config["linux"]["maskedPaths"].as_array_mut() {
        a.push(json!("/etc/secret"));
        a.push(json!("/secretdir"));
    }
    b.set_sh(script);
    b.save()?;
    let out = rt.run(b.path(), id, RUN_TIMEOUT)?;
    let mut d = done(&out, b);
    let _ = write!(
        d.obs.out,
        "host: etc/secret={}",
        read_or(&secret, "absent").trim()
    );
    Ok(d)
}

fn readonly_paths(rt: &Runtime, id: &str) -> Result<Done> {
    let script = "echo 1 > /proc/sys/kernel/domainname 2>&1; echo rc=$?; \
                  touch /data/x 2>&1; echo rc=$?; cat /data/keep; \
                  touch /etc/ok && echo wrote-etc";
    probe(rt, id, script, |b| {
        b.set_readonly_root(false);
        b.write_rootfs_file("data/keep", b"kept\n", 0o644)?;
        if let Some(a) = b.config["linux"]["readonlyPaths"].as_array_mut() {
            a.push(json!("/data"));
        }
        Ok(())
    })
}

fn bind_mounts(rt: &Runtime, id: &str) -> Result<Done> {
    let script = "cat /mnt/rw/hostfile; echo from-ctr > /mnt/rw/new && echo wrote-rw; \
                  echo x > /mnt/ro/new 2>&1; echo rc=$?; cat /mnt/ro/hostfile; \
                  awk '$2 ~ /^\\/mnt\\/r[ow]$/ {print $2, $4}' /proc/mounts";
    let mut b = Bundle::new()?;
    let rw = host_dir(&b, "host-rw")?;
    let ro = host_dir(&b, "host-ro")?;
    std::fs::write(rw.join("hostfile"), "rw-host\n")
        .map_err(|e| HarnessError::Other(e.to_string()))?;
    std::fs::write(ro.join("hostfile"), "ro-host\n")
        .map_err(|e| HarnessError::Other(e.to_string()))?;
    b.set_sh(script);
    b.add_mount(bind("/mnt/rw", &rw, &["rbind", "rw"]));
    b.add_mount(bind("/mnt/ro", &ro, &["rbind", "ro"]));
    b.save()?;
    let out = rt.run(b.path(), id, RUN_TIMEOUT)?;
    let mut d = done(&out, b);
    let _ = write!(
        d.obs.out,
        "host: rw/new={} ro/new={}",
        read_or(&rw.join("new"), "absent").trim(),
        read_or(&ro.join("new"), "absent").trim()
    );
    Ok(d)
}

fn bind_mount_file(rt: &Runtime, id: &str) -> Result<Done> {
    let mut b = Bundle::new()?;
    let dir = host_dir(&b, "host-file")?;
    let f = dir.join("conf");
    std::fs::write(&f, "host-conf\n").map_err(|e| HarnessError::Other(e.to_string()))?;
    b.set_sh("cat /etc/e2e.conf; echo changed > /etc/e2e.conf && echo wrote");
    b.add_mount(bind("/etc/e2e.conf", &f, &["bind", "rw"]));
    b.save()?;
    let out = rt.run(b.path(), id, RUN_TIMEOUT)?;
    let mut d = done(&out, b);
    let _ = write!(d.obs.out, "host: {}", read_or(&f, "absent").trim());
    Ok(d)
}

fn tmpfs_options(rt: &Runtime, id: &str) -> Result<Done> {
    probe(
        rt,
        id,
        "awk '$2 == \"/mnt/t\"' /proc/mounts; stat -c '%a %u %g' /mnt/t; \
         echo x > /mnt/t/f 2>&1 || echo write-denied",
        |b| {
            b.add_mount(json!({
                "destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=0710", "uid=1000", "gid=2000"]
            }));
            Ok(())
        },
    )
}

fn default_mounts(rt: &Runtime, id: &str) -> Result<Done> {
    // Mount points and options of the default spec's mounts, and the devices in /dev.
    probe(
        rt,
        id,
        "awk '{print $2, $3, $4}' /proc/mounts | grep -v '^/sys/fs/cgroup/'; ls -A /dev",
        |_| Ok(()),
    )
}

/// A network namespace pinned at /run/netns/NAME with a dummy interface, deleted on drop.
struct NetNs(String);

impl NetNs {
    fn new() -> Result<Self> {
        // This kernel has no dummy driver; a veth pair kept inside the namespace does.
        let name = format!("e2e-{}", unique_id("ns"));
        let ns = NetNs(name.clone());
        host_sh(&format!(
            "ip netns add {name} && \
             ip -n {name} link add e2eveth0 type veth peer name e2eveth1 && \
             ip -n {name} addr add 10.123.0.1/24 dev e2eveth0 && \
             ip -n {name} link set e2eveth0 up"
        ))?
        .check()?;
        Ok(ns)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = host_sh(&format!("ip netns del {}", self.0));
    }
}

fn netns_join_by_path(rt: &Runtime, id: &str) -> Result<Done> {
    let ns = NetNs::new()?;
    probe(
        rt,
        id,
        "ip -o link | awk '{print $2}'; ip -o -4 addr | awk '{print $2, $4}'",
        |b| {
            if let Some(a) = b.config["linux"]["namespaces"].as_array_mut() {
                for n in a.iter_mut() {
                    if n["type"] == "network" {
                        n["path"] = json!(format!("/run/netns/{}", ns.0));
                    }
                }
            }
            Ok(())
        },
    )
}

// ---------------------------------------------------------------------------------------
// Devices, cgroups, seccomp, capabilities.

fn devices(rt: &Runtime, id: &str) -> Result<Done> {
    let script = "stat -c '%n %F %t:%T %a %u:%g' /dev/fuse /dev/e2emem; \
                  (exec 3<>/dev/fuse) 2>&1 && echo fuse-opened; \
                  cat /dev/e2emem 2>&1 | head -1; echo x > /dev/null && echo null-ok";
    probe(rt, id, script, |b| {
        b.config["linux"]["devices"] = json!([
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0},
            {"path": "/dev/e2emem", "type": "c", "major": 1, "minor": 1, "fileMode": 384, "uid": 0, "gid": 0}
        ]);
        if let Some(a) = b.config["linux"]["resources"]["devices"].as_array_mut() {
            a.push(json!({"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"}));
        }
        Ok(())
    })
}

fn limits(b: &mut Bundle) {
    let r = &mut b.config["linux"]["resources"];
    r["memory"] = json!({"limit": 67_108_864, "reservation": 33_554_432});
    r["pids"] = json!({"limit": 77});
    r["cpu"] = json!({"shares": 512, "quota": 50_000, "period": 100_000});
}

const LIMIT_FILES: [(&str, &str); 6] = [
    ("memory", "memory.limit_in_bytes"),
    ("memory", "memory.soft_limit_in_bytes"),
    ("pids", "pids.max"),
    ("cpu", "cpu.shares"),
    ("cpu", "cpu.cfs_quota_us"),
    ("cpu", "cpu.cfs_period_us"),
];

fn cgroup_limits_inside(rt: &Runtime, id: &str) -> Result<Done> {
    let script: String = LIMIT_FILES
        .iter()
        .map(|(c, f)| format!("echo {f}=$(cat /sys/fs/cgroup/{c}/{f} 2>&1); "))
        .collect();
    probe(rt, id, &script, |b| {
        limits(b);
        Ok(())
    })
}

/// Host path of `pid`'s cgroup in the v1 hierarchy of `ctrl`.
fn host_cgroup(pid: i64, ctrl: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines().find_map(|l| {
        let mut it = l.splitn(3, ':');
        let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
        ctrls.split(',').any(|c| c == ctrl).then(|| path.to_owned())
    })
}

fn cgroup_limits_host(rt: &Runtime, id: &str) -> Result<Done> {
    let mut b = Bundle::new()?;
    b.set_args(&["sleep", "30"]);
    limits(&mut b);
    b.save()?;
    let c = rt.create(b.path(), id)?;
    if !c.success() {
        return Ok(done(&c, b));
    }
    rt.start(id)?.check()?;
    let pid = rt.state(id)?["pid"].as_i64().unwrap_or(0);
    let mut out = String::new();
    for (ctrl, file) in LIMIT_FILES {
        let v = host_cgroup(pid, ctrl)
            .map(|p| {
                let path = format!("/sys/fs/cgroup/{ctrl}{p}/{file}");
                format!("{p} {}", read_or(Path::new(&path), "unreadable").trim())
            })
            .unwrap_or_else(|| "no cgroup".into());
        let _ = writeln!(out, "{file}: {v}");
    }
    rt.delete_force(id)?.check()?;
    Ok(Done {
        obs: Obs { exit: 0, out },
        diag: String::new(),
        bundle: b,
    })
}

fn seccomp_errno(rt: &Runtime, id: &str) -> Result<Done> {
    probe(
        rt,
        id,
        "mkdir /tmp/x 2>&1; echo rc=$?; ls -d /tmp/x 2>&1; touch /tmp/y && echo touch-ok",
        |b| {
            b.set_readonly_root(false);
            b.config["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 36}]
            });
            Ok(())
        },
    )
}

const CAP_PROBE: &str = "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status; \
                         grep NoNewPrivs /proc/self/status; \
                         touch /tmp/f; chown 1000 /tmp/f 2>&1; echo rc=$?";

fn caps_default_spec(rt: &Runtime, id: &str) -> Result<Done> {
    probe(rt, id, CAP_PROBE, |b| {
        b.set_readonly_root(false);
        Ok(())
    })
}

fn caps_chown_kept(rt: &Runtime, id: &str) -> Result<Done> {
    probe(rt, id, CAP_PROBE, |b| {
        b.set_readonly_root(false);
        set_caps(b, &["CAP_CHOWN", "CAP_KILL"]);
        b.config["process"]["noNewPrivileges"] = json!(false);
        Ok(())
    })
}

fn caps_all_dropped(rt: &Runtime, id: &str) -> Result<Done> {
    probe(rt, id, CAP_PROBE, |b| {
        b.set_readonly_root(false);
        set_caps(b, &[]);
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------
// Hooks.

/// Appends `KIND args=… env=… state=<stdin>` to the log named by its first argument.
const HOOK_REC: &str = "#!/bin/sh\nlog=$1; kind=$2; shift 2\nstate=$(cat)\n\
                        echo \"$kind args=$* env=${HOOKVAR:-unset} state=$state\" >> \"$log\"\n";

const HOOK_KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Hook records go to BUNDLE/hooklog/log, bind-mounted at /hooklog for the hooks that
/// run inside the container. `startContainer` resolves its path in the container, the
/// others on the host (OCI runtime spec, "Lifecycle").
fn hook_bundle(fail: Option<&str>) -> Result<(Bundle, PathBuf)> {
    let mut b = Bundle::new()?;
    let logdir = host_dir(&b, "hooklog")?;
    let host_rec = b.write_file("hooks/rec.sh", HOOK_REC.as_bytes(), 0o755)?;
    b.write_rootfs_file("hooks/rec.sh", HOOK_REC.as_bytes(), 0o755)?;
    let host_log = logdir.join("log");
    b.add_mount(bind("/hooklog", &logdir, &["rbind", "rw"]));
    b.config["annotations"] = json!({"e2e.warren/key": "value", "e2e.warren/other": "2"});
    let mut hooks = serde_json::Map::new();
    for kind in HOOK_KINDS {
        let (path, log) = if kind == "startContainer" {
            ("/hooks/rec.sh".to_owned(), "/hooklog/log".to_owned())
        } else {
            (
                host_rec.display().to_string(),
                host_log.display().to_string(),
            )
        };
        let mut list = Vec::new();
        if fail == Some(kind) {
            list.push(
                json!({"path": "/bin/sh", "args": ["sh", "-c", "echo hook failing >&2; exit 7"]}),
            );
        }
        list.push(json!({
            "path": path,
            "args": ["rec.sh", log, kind, "two words"],
            "env": [format!("HOOKVAR={kind}-env")],
        }));
        hooks.insert(kind.to_owned(), Value::Array(list));
    }
    b.config["hooks"] = Value::Object(hooks);
    Ok((b, host_log))
}

/// Hook records with each state JSON reduced to the fields the spec defines, in the
/// canonical order of the kinds, followed by a check of the order they actually ran in.
///
/// Two normalisations, both for differences that are not warren's to fix: `ociVersion` is
/// the spec version each runtime implements (runc 1.1.5: `1.0.2-dev`), shown as `1.x`; and
/// runc 1.1 runs poststart hooks during `create` (fixed in runc 1.2), so the status a
/// poststart hook sees is `created` there and `running` in a runtime that runs them at
/// `start`: shown as `created|running`. For the same reason the relative order of
/// startContainer and poststart is not checked.
fn hook_records(log: &Path) -> String {
    let text = read_or(log, "");
    let mut recs: Vec<(usize, String)> = Vec::new();
    let mut ran: Vec<&str> = Vec::new();
    for line in text.lines() {
        let (head, state) = line.split_once(" state=").unwrap_or((line, ""));
        let kind = head.split(' ').next().unwrap_or("");
        let rank = HOOK_KINDS.iter().position(|k| *k == kind).unwrap_or(99);
        if let Some(k) = HOOK_KINDS.get(rank) {
            ran.push(k);
        }
        let st = match serde_json::from_str::<Value>(state) {
            Ok(Value::Object(m)) => {
                let mut keys: Vec<_> = m.keys().cloned().collect();
                keys.sort();
                let field = |k: &str| m.get(k).map(Value::to_string).unwrap_or("-".into());
                let pid = match m.get("pid").and_then(Value::as_i64) {
                    Some(p) if p > 0 => "positive".to_owned(),
                    Some(p) => p.to_string(),
                    None => "absent".into(),
                };
                let version = match m.get("ociVersion").and_then(Value::as_str) {
                    Some(v) if v.starts_with("1.") => "1.x".to_owned(),
                    _ => field("ociVersion"),
                };
                let mut status = field("status");
                if kind == "poststart" && (status == "\"created\"" || status == "\"running\"") {
                    status = "created|running".into();
                }
                format!(
                    "keys={} ociVersion={version} id={} status={status} bundle={} pid={pid} annotations={}",
                    keys.join(","),
                    field("id"),
                    field("bundle"),
                    field("annotations"),
                )
            }
            _ => format!("unparsed state {state:?}"),
        };
        recs.push((rank, format!("{head} {st}")));
    }
    recs.sort_by_key(|(rank, _)| *rank);
    let mut out: String = recs.into_iter().map(|(_, r)| r + "\n").collect();
    // OCI runtime spec, "Lifecycle": the order hooks must run in.
    let before = [
        ("prestart", "createRuntime"),
        ("createRuntime", "createContainer"),
        ("createContainer", "startContainer"),
        ("createContainer", "poststart"),
        ("startContainer", "poststop"),
        ("poststart", "poststop"),
    ];
    let pos = |k: &str| ran.iter().position(|r| *r == k);
    let wrong: Vec<String> = before
        .iter()
        .filter_map(|(a, b)| match (pos(a), pos(b)) {
            (Some(x), Some(y)) if x > y => Some(format!("{b} ran before {a}")),
            _ => None,
        })
        .collect();
    if wrong.is_empty() {
        out.push_str("hook order: as the spec says\n");
    } else {
        let _ = writeln!(out, "hook order WRONG: {}", wrong.join(", "));
    }
    out
}

fn hooks_all_kinds(rt: &Runtime, id: &str) -> Result<Done> {
    let (mut b, log) = hook_bundle(None)?;
    b.set_sh("echo workload; sleep 0.5");
    b.save()?;
    let out = rt.run(b.path(), id, RUN_TIMEOUT)?;
    let mut d = done(&out, b);
    d.obs.out.push_str(&hook_records(&log));
    Ok(d)
}

/// create → start → wait → delete with one failing hook of `kind` (before the recorder of
/// that kind): exit codes, status after each step, whether the workload ran, which hooks
/// ran and what is left.
fn hook_fails(rt: &Runtime, id: &str, kind: &str) -> Result<Done> {
    let (mut b, log) = hook_bundle(Some(kind))?;
    b.set_sh("touch /hooklog/workload-ran; sleep 0.3");
    b.save()?;
    let mut out = String::new();
    let mut diag = String::new();
    let status =
        |rt: &Runtime| -> Result<String> { Ok(rt.status(id)?.unwrap_or_else(|| "absent".into())) };
    let c = rt.create(b.path(), id)?;
    diag.push_str(&c.stderr);
    let _ = writeln!(out, "create exit={} then {}", c.exit_code(), status(rt)?);
    if rt.status(id)?.is_some() {
        let s = rt.start(id)?;
        diag.push_str(&s.stderr);
        let _ = writeln!(out, "start exit={}", s.exit_code());
        let _ = rt.wait_status(id, "stopped", Duration::from_secs(5));
        let _ = writeln!(out, "after start: {}", status(rt)?);
        let d = rt.delete(id)?;
        diag.push_str(&d.stderr);
        let _ = writeln!(out, "delete exit={} then {}", d.exit_code(), status(rt)?);
    }
    let _ = writeln!(
        out,
        "workload ran: {}; state dirs left: {}",
        b.path().join("hooklog/workload-ran").exists(),
        rt.state_entries().len()
    );
    out.push_str(&hook_records(&log));
    Ok(Done {
        obs: Obs { exit: 0, out },
        diag,
        bundle: b,
    })
}

fn hook_fail_prestart(rt: &Runtime, id: &str) -> Result<Done> {
    hook_fails(rt, id, "prestart")
}
fn hook_fail_create_runtime(rt: &Runtime, id: &str) -> Result<Done> {
    hook_fails(rt, id, "createRuntime")
}
fn hook_fail_create_container(rt: &Runtime, id: &str) -> Result<Done> {
    hook_fails(rt, id, "createContainer")
}
fn hook_fail_start_container(rt: &Runtime, id: &str) -> Result<Done> {
    hook_fails(rt, id, "startContainer")
}
fn hook_fail_poststart(rt: &Runtime, id: &str) -> Result<Done> {
    hook_fails(rt, id, "poststart")
}
fn hook_fail_poststop(rt: &Runtime, id: &str) -> Result<Done> {
    hook_fails(rt, id, "poststop")
}

fn hook_fail_prestart_run(rt: &Runtime, id: &str) -> Result<Done> {
    let (mut b, log) = hook_bundle(Some("prestart"))?;
    b.set_sh("touch /hooklog/workload-ran");
    b.save()?;
    let out = rt.run(b.path(), id, RUN_TIMEOUT)?;
    let mut d = done(&out, b);
    let _ = writeln!(
        d.obs.out,
        "workload ran: {}; state dirs left: {}",
        d.bundle.path().join("hooklog/workload-ran").exists(),
        rt.state_entries().len()
    );
    d.obs.out.push_str(&hook_records(&log));
    Ok(d)
}

// ---------------------------------------------------------------------------------------
// Signals delivered by `kill`.

const TRAP: &str = "trap 'echo got; exit 42' TERM; touch /e2e/ready; while :; do sleep 0.1; done";

fn signal_bundle() -> Result<(Bundle, PathBuf)> {
    let mut b = Bundle::new()?;
    let dir = host_dir(&b, "e2e")?;
    b.add_mount(bind("/e2e", &dir, &["rbind", "rw"]));
    b.set_sh(TRAP);
    b.save()?;
    Ok((b, dir.join("ready")))
}

fn wait_file(p: &Path) -> Result<()> {
    if warren_e2e::wait_until(Duration::from_secs(10), Duration::from_millis(10), || {
        p.exists()
    }) {
        Ok(())
    } else {
        Err(HarnessError::WaitTimeout {
            what: format!("{}", p.display()),
            after: Duration::from_secs(10),
        })
    }
}

/// Foreground `run`, then `kill ID SIG` from outside: the exit status `run` reports.
fn signal_run(rt: &Runtime, id: &str, sig: &str) -> Result<Done> {
    let (b, ready) = signal_bundle()?;
    let running = rt
        .cmd(["run", "--bundle"])
        .arg(b.path())
        .arg(id)
        .timeout(RUN_TIMEOUT)
        .spawn()?;
    wait_file(&ready)?;
    let k = rt.kill(id, sig)?;
    let out = running.wait()?;
    let mut d = done(&out, b);
    let _ = writeln!(d.obs.out, "kill exit={}", k.exit_code());
    Ok(d)
}

fn signal_term_run(rt: &Runtime, id: &str) -> Result<Done> {
    signal_run(rt, id, "TERM")
}

fn signal_kill_run(rt: &Runtime, id: &str) -> Result<Done> {
    signal_run(rt, id, "KILL")
}

/// create + start, `kill ID SIG`, then what `state` says and what the process printed.
fn signal_detached(rt: &Runtime, id: &str, sig: &str) -> Result<Done> {
    let (b, ready) = signal_bundle()?;
    let outfile = b.path().join("stdout");
    let f = std::fs::File::create(&outfile).map_err(|e| HarnessError::Other(e.to_string()))?;
    rt.cmd(["create", "--bundle"])
        .arg(b.path())
        .arg(id)
        .stdout_to(f)
        .output()?
        .check()?;
    rt.start(id)?.check()?;
    wait_file(&ready)?;
    let before = rt.status(id)?;
    let k = rt.kill(id, sig)?;
    let stopped = rt
        .wait_status(id, "stopped", Duration::from_secs(10))
        .is_ok();
    let after = rt.status(id)?;
    let del = rt.delete(id)?;
    let out = format!(
        "before={before:?} kill exit={} stopped={stopped} after={after:?} delete exit={}\nstdout: {}",
        k.exit_code(),
        del.exit_code(),
        read_or(&outfile, "")
    );
    Ok(Done {
        obs: Obs { exit: 0, out },
        diag: format!("{}{}", k.stderr, del.stderr),
        bundle: b,
    })
}

fn signal_term_detached(rt: &Runtime, id: &str) -> Result<Done> {
    signal_detached(rt, id, "TERM")
}

fn signal_kill_detached(rt: &Runtime, id: &str) -> Result<Done> {
    signal_detached(rt, id, "SIGKILL")
}

// ---------------------------------------------------------------------------------------
// The driver.

const VARIANTS: &[Variant] = &[
    v("env", env),
    v("env_home_from_passwd", env_home_from_passwd),
    v("cwd_existing", cwd_existing),
    v("cwd_missing", cwd_missing),
    v("cwd_missing_readonly_root", cwd_missing_readonly_root),
    v("cwd_missing_as_user", cwd_missing_as_user),
    v("user_uid_gid_passwd_groups", user_uid_gid),
    v("user_additional_gids", user_additional_gids),
    v("user_without_passwd_entry", user_without_passwd_entry),
    v("user_root_groups", user_root_groups),
    v("user_umask", user_umask),
    v("rlimit_lowered", rlimit_lowered),
    v("rlimit_raise_hard_fails", rlimit_raise_hard_fails),
    v("oom_score_adj", oom_score_adj),
    v("args_verbatim", args_verbatim),
    v("path_lookup", path_lookup),
    v("missing_executable", missing_executable),
    v("exit_code_3", exit_code_3),
    v("exit_by_signal", exit_by_signal),
    v("pid1_ignores_own_sigkill", pid1_ignores_own_sigkill),
    v("sysctl", sysctl),
    v("hostname", hostname),
    spec(
        "domainname",
        domainname,
        "runc 1.1.5 ignores `domainname` (added in runc 1.2)",
        |o| expect_lines(o, 0, &["e2e.example"]),
    ),
    v("loopback_up", loopback_up),
    v("readonly_root", readonly_root),
    v("masked_paths", masked_paths),
    v("readonly_paths", readonly_paths),
    v("bind_mounts_ro_rw", bind_mounts),
    v("bind_mount_file", bind_mount_file),
    v("tmpfs_options", tmpfs_options),
    v("default_mounts_and_devices", default_mounts),
    v("netns_join_by_path", netns_join_by_path),
    v("devices", devices),
    v("cgroup_limits_inside", cgroup_limits_inside),
    v("cgroup_limits_host", cgroup_limits_host),
    v("seccomp_errno", seccomp_errno),
    v("caps_default_spec", caps_default_spec),
    v("caps_chown_kept", caps_chown_kept),
    v("caps_all_dropped", caps_all_dropped),
    v("hooks_all_kinds", hooks_all_kinds),
    v("hook_fail_prestart", hook_fail_prestart),
    v("hook_fail_createRuntime", hook_fail_create_runtime),
    v("hook_fail_createContainer", hook_fail_create_container),
    v("hook_fail_startContainer", hook_fail_start_container),
    spec(
        "hook_fail_poststart",
        hook_fail_poststart,
        "runc 1.1.5 runs poststart hooks during `create` and fails `create` (runc 1.2 runs \
         them at `start`); accepted: the spec's behaviour (a warning, the lifecycle goes \
         on) or runc 1.2's (`start` fails, the container is stopped and deletable)",
        |o| {
            let common = [
                "create exit=0 then created",
                "delete exit=0 then absent",
                "poststop args=*",
                "hook order: as the spec says",
            ];
            let spec_way = [
                &common[..],
                &[
                    "start exit=0",
                    "workload ran: true; state dirs left: 0",
                    "poststart args=*",
                ],
            ]
            .concat();
            let runc12_way = [
                &common[..],
                &["start exit=1", "after start: stopped", "workload ran: *"],
            ]
            .concat();
            let a = expect_lines(o, 0, &spec_way);
            let b = expect_lines(o, 0, &runc12_way);
            if a.is_empty() || b.is_empty() {
                Vec::new()
            } else {
                vec![format!(
                    "neither the spec's way ({}) nor runc 1.2's ({})",
                    a.join(", "),
                    b.join(", ")
                )]
            }
        },
    ),
    v("hook_fail_poststop", hook_fail_poststop),
    v("hook_fail_prestart_run", hook_fail_prestart_run),
    v("signal_term_run", signal_term_run),
    v("signal_kill_run", signal_kill_run),
    v("signal_term_detached", signal_term_detached),
    v("signal_kill_detached", signal_kill_detached),
];

/// Replaces what legitimately differs between two runs: the id, the bundle path, the
/// state root.
fn normalise(s: &str, id: &str, bundle: &Path, root: &Path) -> String {
    let mut s = s.to_owned();
    for p in [bundle.to_owned(), bundle.canonicalize().unwrap_or_default()] {
        let p = p.display().to_string();
        if !p.is_empty() {
            s = s.replace(&p, "<BUNDLE>");
        }
    }
    s.replace(&root.display().to_string(), "<ROOT>")
        .replace(id, "<ID>")
}

/// Runs one variant under one runtime; harness errors and leaks are part of the result.
fn observe(v: &Variant, rt: &Runtime) -> (std::result::Result<Obs, String>, String) {
    let tag = v.name.to_ascii_lowercase().replace('_', "-");
    let id = unique_id(&tag);
    let guard = rt.guard(&id);
    let res = (v.run)(rt, &id);
    drop(guard);
    match res {
        Ok(d) => {
            let mut obs = d.obs;
            obs.out = normalise(&obs.out, &id, d.bundle.path(), rt.root());
            let leaks = LeakCheck::new()
                .id(&id)
                .path(d.bundle.path())
                .state_root(rt.root())
                .assert_clean();
            if let Err(e) = leaks {
                let _ = write!(
                    obs.out,
                    "\nLEFT BEHIND: {}",
                    normalise(&e.to_string(), &id, d.bundle.path(), rt.root())
                );
            }
            (Ok(obs), d.diag)
        }
        Err(e) => (Err(format!("harness error: {e}")), String::new()),
    }
}

/// A table cell: the exit status and the start of the output, or, when the two runtimes'
/// outputs differ, the first line where they do.
fn cell(r: &std::result::Result<Obs, String>, other: &std::result::Result<Obs, String>) -> String {
    let short = |s: &str, n: usize| -> String {
        s.trim()
            .replace('\n', " ⏎ ")
            .chars()
            .take(n)
            .collect::<String>()
            .replace('|', "\\|")
    };
    match (r, other) {
        (Ok(o), Ok(x)) if o.out != x.out => {
            let mine: Vec<&str> = o.out.lines().collect();
            let theirs: Vec<&str> = x.out.lines().collect();
            let i = (0..mine.len().max(theirs.len()))
                .find(|&i| mine.get(i) != theirs.get(i))
                .unwrap_or(0);
            let line = mine.get(i).copied().unwrap_or("(no such line)");
            let their = theirs.get(i).copied().unwrap_or("");
            // Start a little before the first differing character.
            let at = line
                .chars()
                .zip(their.chars())
                .take_while(|(a, b)| a == b)
                .count();
            let from = at.saturating_sub(25);
            let cut: String = line.chars().skip(from).collect();
            let dots = if from > 0 { "…" } else { "" };
            format!(
                "exit {}: line {}: `{dots}{}`",
                o.exit,
                i + 1,
                short(&cut, 70)
            )
        }
        (Ok(o), _) => format!("exit {}: `{}`", o.exit, short(&o.out, 60)),
        (Err(e), _) => short(e, 60),
    }
}

#[test]
fn runc_and_warren_agree_on_every_variant() {
    let runc = Runtime::runc().unwrap();
    let warren = Runtime::warren().unwrap();
    let filter = std::env::var("E2E_VARIANT").unwrap_or_default();
    let show_all = std::env::var_os("E2E_SHOW_ALL").is_some();
    let mut table = String::from("| variant | runc | warren | match |\n|---|---|---|---|\n");
    let mut details = String::new();
    let mut notes = String::new();
    let mut mismatches = Vec::new();
    for v in VARIANTS.iter().filter(|v| v.name.contains(filter.as_str())) {
        let (r, r_diag) = observe(v, &runc);
        let (w, w_diag) = observe(v, &warren);
        let problems: Vec<String> = match (&v.oracle, &r, &w) {
            (Oracle::Runc, Ok(a), Ok(b)) if a == b => Vec::new(),
            (Oracle::Runc, _, _) => vec!["differs from runc".into()],
            (Oracle::Spec { check, .. }, _, Ok(b)) => check(b),
            (Oracle::Spec { .. }, _, Err(e)) => vec![e.clone()],
        };
        let verdict = match (&v.oracle, problems.is_empty()) {
            (Oracle::Runc, true) => "yes",
            (Oracle::Runc, false) => "**NO**",
            (Oracle::Spec { .. }, true) => "yes (spec)",
            (Oracle::Spec { .. }, false) => "**NO** (spec)",
        };
        if let Oracle::Spec { why, .. } = &v.oracle {
            let _ = writeln!(notes, "- {}: compared with the OCI spec: {why}", v.name);
        }
        let _ = writeln!(
            table,
            "| {} | {} | {} | {verdict} |",
            v.name,
            cell(&r, &w),
            cell(&w, &r),
        );
        if !problems.is_empty() {
            mismatches.push(v.name);
        }
        if !problems.is_empty() || show_all {
            let show = |r: &std::result::Result<Obs, String>| match r {
                Ok(o) => format!("exit {}\n{}", o.exit, o.out),
                Err(e) => e.clone(),
            };
            let _ = write!(
                details,
                "\n=== {} ({}) ===\n--- runc ---\n{}\n--- runc stderr ---\n{}\n--- warren ---\n{}\n--- warren stderr ---\n{}\n",
                v.name,
                problems.join("; "),
                show(&r),
                r_diag.trim(),
                show(&w),
                w_diag.trim()
            );
        }
    }
    let report = format!("{details}\n{table}\n{notes}");
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("differential-table.md");
    let _ = std::fs::write(&file, &report);
    println!("{report}\n(written to {})", file.display());
    assert!(
        mismatches.is_empty(),
        "warren differs from its oracle in {} variant(s): {mismatches:?}",
        mismatches.len()
    );
}
