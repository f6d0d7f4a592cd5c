//! Escape battery under the `agent` profile (issue 7). Every attempt an untrusted program
//! might make to leave its sandbox runs as the exact system call it names, from a static
//! helper (`tests/c/attack.c`) inside a container that `warren-runtime` creates with the
//! annotation `warren.dev/profile: agent`, and is asserted to be denied — with the exact
//! errno where the kernel's answer is deterministic.
//!
//! Scenarios, each in its own containers, run in parallel:
//! * **battery**: the attempts of [`BATTERY`] in one container (each in its own forked
//!   process) under agent, whose root is read-only; again under a profile extending agent
//!   with a writable root, so that Landlock alone is what stops writes (less the metadata
//!   changes Landlock has no rights for); the same attempts in a control container with
//!   agent's capabilities and no profile show what the profile adds (the `without
//!   profile` column, informational);
//! * **TCP allowlist**: a user profile `extends = "agent"` with the loopback network,
//!   connect+bind on 8080 and bind only on 9090 — 8080 works, connect to 9090 (listening)
//!   and bind or connect on 7070 are refused by Landlock;
//! * **scoping**: an `exec`'d process (its own Landlock domain) cannot signal the
//!   container's processes nor reach its abstract unix socket; an agent container sharing
//!   another's pid namespace cannot signal it (the same without the profile succeeds);
//! * **CVE-2019-5736** through `exec`: the workload catches the runtime entering the
//!   container and tries to open and overwrite its executable;
//! * **limits**: a fork bomb (pids 512) and a memory hog (4 GiB, OOM kill, host untouched);
//! * **host view**: the `warren` CLI's read-only host view under `--profile agent` has no
//!   host secrets and no writable host path.
//!
//! The table (`attempt / expected / observed / stopped by / without profile`) is printed and
//! written to `escape-table.md` under cargo's target tmp dir; the test fails if any attempt
//! is not denied as expected.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};
use warren_e2e::sandbox::{
    AGENT_CAPS, ATTACK_SRC, WarrenCli, add_workspace, install, join_namespace, set_caps,
    set_profile, static_helper,
};
use warren_e2e::{
    Bundle, HarnessError, Invocation, LeakCheck, Output, Result, Runtime, cgroup, ensure,
    unique_id, wait_until,
};

/// One attempt of the battery: `attack run NAME` must print `NAME STEP RESULT` with
/// `RESULT` in `expect` (the first entry is the answer on this kernel; others are
/// equally denials some kernels give).
#[derive(Debug)]
struct Attempt {
    name: &'static str,
    what: &'static str,
    step: &'static str,
    expect: &'static [&'static str],
    by: &'static str,
    /// A kernel interface the attempt targets; when the host kernel lacks it, `ENOENT` is
    /// the (only) accepted answer and the table says so.
    host_path: Option<&'static str>,
}

const fn a(
    name: &'static str,
    what: &'static str,
    step: &'static str,
    expect: &'static [&'static str],
    by: &'static str,
) -> Attempt {
    Attempt {
        name,
        what,
        step,
        expect,
        by,
        host_path: None,
    }
}

/// An attempt on a kernel interface that may be compiled out (`host_path`).
const fn k(
    name: &'static str,
    what: &'static str,
    host_path: &'static str,
    expect: &'static [&'static str],
    by: &'static str,
) -> Attempt {
    Attempt {
        name,
        what,
        step: "open-wronly",
        expect,
        by,
        host_path: Some(host_path),
    }
}

const LL: &str = "Landlock";
const SC: &str = "seccomp";
const EPERM: &[&str] = &["EPERM"];
const EACCES: &[&str] = &["EACCES"];

/// The attempts run in the battery container, in order (destructive ones last, for the
/// control container's sake).
#[rustfmt::skip]
const BATTERY: &[Attempt] = &[
    // -- the filesystem outside the workspace --
    a("write_new_outside", "create /etc/warren-e2e-evil", "open-creat", EACCES, LL),
    a("write_existing_outside", "open /etc/passwd for writing", "open-wronly", EACCES, LL),
    a("write_bin", "open /bin/busybox for writing", "open-wronly", EACCES, LL),
    a("mkdir_outside", "mkdir /warren-e2e-evil", "mkdir", EACCES, LL),
    a("symlink_out_write", "symlink /workspace/l -> /etc/passwd, open it for writing", "open-wronly", EACCES, LL),
    a("symlink_dir_out", "symlink /workspace/d -> /etc, create d/evil", "open-creat", EACCES, LL),
    a("hardlink_out", "link /etc/passwd into /workspace (then write it)", "link", &["EXDEV"], "Landlock (refer)"),
    a("hardlink_out_at", "linkat /etc/group into /workspace", "linkat", &["EXDEV"], "Landlock (refer)"),
    a("rename_out_of_workspace", "rename a workspace file to /etc/moved", "rename", &["EACCES", "EXDEV"], LL),
    a("mknod_block", "mknod /workspace/sda (block 8:0)", "mknod", EACCES, "Landlock (make_block)"),
    a("mknod_char", "mknod /tmp/mem (char 1:1)", "mknod", EACCES, "Landlock (make_char)"),
    a("proc_self_exe_write", "open /proc/self/exe for writing", "open-wronly", &["EACCES", "ETXTBSY"], LL),
    // -- secrets outside the allowed paths --
    a("host_secret_dotdot", "read the host secret BUNDLE/secret/shadow as /../secret/shadow", "open", &["ENOENT"], "pivot_root"),
    a("host_secret_proc_root", "read it through /proc/1/root/../..", "open", &["ENOENT"], "pivot_root"),
    a("host_secret_symlink", "read it through a workspace symlink ../../../../../secret/shadow", "open", &["ENOENT"], "pivot_root"),
    a("shocker", "name_to_handle_at + open_by_handle_at (shocker)", "name_to_handle_at", EPERM, SC),
    a("open_by_handle", "open_by_handle_at with a forged handle", "open_by_handle_at", EPERM, SC),
    // -- /proc and /sys --
    k("sysrq_trigger", "write h to /proc/sysrq-trigger", "/proc/sysrq-trigger", &["EROFS", "EACCES"], "read-only path"),
    k("proc_sys_kernel", "write /proc/sys/kernel/core_pattern", "/proc/sys/kernel/core_pattern", &["EROFS", "EACCES"], "read-only path"),
    k("proc_sys_vm", "write /proc/sys/vm/drop_caches", "/proc/sys/vm/drop_caches", &["EROFS", "EACCES"], "read-only path"),
    k("sys_uevent_helper", "write /sys/kernel/uevent_helper (host code on hotplug)", "/sys/kernel/uevent_helper", &["EROFS", "EACCES"], "read-only /sys"),
    k("sys_kernel", "write /sys/kernel/rcu_expedited", "/sys/kernel/rcu_expedited", &["EROFS", "EACCES"], "read-only /sys"),
    a("sys_cgroup", "write pids.max of its own cgroup", "open-wronly", &["EROFS", "EACCES"], "read-only cgroupfs"),
    // -- mounts and namespaces --
    a("mount_tmpfs", "mount tmpfs on /workspace", "mount", EPERM, SC),
    a("remount_root_rw", "remount / (MS_REMOUNT|MS_BIND)", "mount", EPERM, SC),
    a("umount_proc", "umount2 /proc (MNT_DETACH)", "umount2", EPERM, SC),
    a("pivot_root", "pivot_root(., .)", "pivot_root", EPERM, SC),
    a("chroot", "chroot /workspace", "chroot", EPERM, SC),
    a("fsopen", "fsopen(tmpfs) (new mount API)", "fsopen", EPERM, SC),
    a("open_tree", "open_tree(/, OPEN_TREE_CLONE)", "open_tree", EPERM, SC),
    a("move_mount", "move_mount /proc onto /workspace", "move_mount", EPERM, SC),
    a("unshare_user", "unshare(CLONE_NEWUSER)", "unshare", EPERM, SC),
    a("unshare_mount", "unshare(CLONE_NEWNS)", "unshare", EPERM, SC),
    a("clone_newuser", "clone(CLONE_NEWUSER)", "clone", EPERM, SC),
    a("clone_newnet", "clone(CLONE_NEWNET)", "clone", EPERM, SC),
    a("clone3_newuser", "clone3(CLONE_NEWUSER) (flags hidden from seccomp)", "clone3", &["ENOSYS"], SC),
    a("setns", "setns into /proc/1/ns/mnt", "setns", EPERM, SC),
    // -- other processes --
    a("ptrace_sibling", "PTRACE_ATTACH to a sibling process", "ptrace-attach", EPERM, SC),
    a("ptrace_traceme", "PTRACE_TRACEME", "ptrace-traceme", EPERM, SC),
    a("process_vm_readv", "process_vm_readv of a sibling", "process_vm_readv", EPERM, SC),
    a("pidfd_getfd", "pidfd_getfd: steal a sibling's fd", "pidfd_getfd", EPERM, SC),
    a("kcmp", "kcmp against a sibling", "kcmp", EPERM, SC),
    // -- the kernel --
    a("init_module", "init_module", "init_module", EPERM, SC),
    a("finit_module", "finit_module", "finit_module", EPERM, SC),
    a("delete_module", "delete_module(ext4)", "delete_module", EPERM, SC),
    a("kexec_load", "kexec_load", "kexec_load", EPERM, SC),
    a("kexec_file_load", "kexec_file_load", "kexec_file_load", EPERM, SC),
    a("bpf_prog_load", "bpf(BPF_PROG_LOAD) socket filter", "bpf", EPERM, SC),
    a("bpf_map_create", "bpf(BPF_MAP_CREATE)", "bpf", EPERM, SC),
    a("perf_event_open", "perf_event_open (software clock, self)", "perf_event_open", EPERM, SC),
    a("keyctl", "keyctl(GET_KEYRING_ID, session)", "keyctl", EPERM, SC),
    a("keyctl_join", "keyctl(JOIN_SESSION_KEYRING, _ses)", "keyctl", EPERM, SC),
    a("add_key", "add_key(user)", "add_key", EPERM, SC),
    a("request_key", "request_key(user)", "request_key", EPERM, SC),
    a("userfaultfd", "userfaultfd", "userfaultfd", EPERM, SC),
    a("io_uring_setup", "io_uring_setup", "io_uring_setup", &["ENOSYS"], SC),
    a("reboot", "reboot(CAD_OFF)", "reboot", EPERM, SC),
    a("swapon", "swapon", "swapon", EPERM, SC),
    a("syslog", "syslog(READ_ALL) (kernel addresses)", "syslog", EPERM, SC),
    a("iopl", "iopl(3)", "iopl", EPERM, SC),
    a("ioperm", "ioperm(0x80)", "ioperm", EPERM, SC),
    a("settimeofday", "settimeofday", "settimeofday", EPERM, SC),
    a("clock_settime", "clock_settime(REALTIME)", "clock_settime", EPERM, SC),
    a("sethostname", "sethostname", "sethostname", EPERM, SC),
    a("personality_no_aslr", "personality(ADDR_NO_RANDOMIZE)", "personality", EPERM, SC),
    a("personality_rie", "personality(READ_IMPLIES_EXEC)", "personality", EPERM, SC),
    a("fanotify_init", "fanotify_init", "fanotify_init", EPERM, SC),
    a("acct", "acct", "acct", EPERM, SC),
    // -- the network --
    a("raw_socket", "socket(AF_INET, SOCK_RAW)", "socket", EPERM, SC),
    a("raw_socket6_cloexec", "socket(AF_INET6, SOCK_RAW|SOCK_CLOEXEC)", "socket", EPERM, SC),
    a("packet_socket", "socket(AF_PACKET, SOCK_RAW)", "socket", &["EAFNOSUPPORT"], SC),
    a("packet_socket_dgram", "socket(AF_PACKET, SOCK_DGRAM)", "socket", &["EAFNOSUPPORT"], SC),
    a("packet_socket_highbits", "socket(1<<32 | AF_PACKET) (high bits)", "socket", &["EAFNOSUPPORT"], SC),
    a("vsock_socket", "socket(AF_VSOCK) (hypervisor channel)", "socket", &["EAFNOSUPPORT"], SC),
    a("alg_socket", "socket(AF_ALG)", "socket", &["EAFNOSUPPORT"], SC),
    a("tcp_connect_loopback", "TCP connect 127.0.0.1:80 (network none)", "connect", EACCES, "Landlock (net)"),
    a("tcp_connect_external", "TCP connect 1.1.1.1:443", "connect", EACCES, "Landlock (net)"),
    a("tcp6_connect", "TCP connect [::1]:80", "connect", EACCES, "Landlock (net)"),
    a("tcp_bind", "TCP bind :8080", "bind", EACCES, "Landlock (net)"),
    a("udp_send_external", "UDP sendto 1.1.1.1:53", "sendto", &["ENETUNREACH"], "network none"),
    a("udp_send_loopback", "UDP sendto 127.0.0.1:53", "sendto", &["ENETUNREACH"], "network none"),
    a("loopback_up", "bring lo up (SIOCSIFFLAGS)", "SIOCSIFFLAGS", EPERM, "capabilities"),
    // -- privileges --
    a("capset_raise", "capset adding CAP_SYS_ADMIN", "capset", EPERM, "capabilities"),
    a("ambient_raise", "raise CAP_SYS_ADMIN as ambient", "prctl-ambient", EPERM, "capabilities"),
    a("setuid_binary", "as uid 1000, exec a setuid-root copy of the helper", "exec-suid", &["euid=1000"], "no_new_privs"),
    // -- terminals --
    a("tiocsti", "TIOCSTI on a pty", "ioctl-TIOCSTI", EPERM, SC),
    a("tiocsti_highbits", "TIOCSTI with high bits set in cmd", "ioctl-TIOCSTI", EPERM, SC),
    a("tioclinux", "TIOCLINUX on a pty", "ioctl-TIOCLINUX", EPERM, SC),
    // -- signals --
    a("scope_nested_kill_parent", "a child in a nested signal-scoped domain signals its parent", "child-kill-parent", EPERM, "Landlock (scope)"),
    // -- last: these change the rootfs of the control container --
    a("chmod_outside", "chmod 04755 /bin/busybox (plant a setuid-root binary)", "chmod", &["EACCES", "EPERM", "EROFS"], LL),
    a("chown_outside", "chown 1000:1000 /etc/passwd", "chown", &["EACCES", "EPERM", "EROFS"], LL),
    a("utime_outside", "utimensat /etc/passwd", "utimensat", &["EACCES", "EPERM", "EROFS"], LL),
    a("setxattr_outside", "setxattr user.* on /etc/passwd (data outside the workspace)", "setxattr", &["EACCES", "EPERM", "EROFS"], LL),
    a("truncate_outside", "truncate /etc/passwd", "truncate", EACCES, LL),
    a("unlink_outside", "unlink /etc/group", "unlink", EACCES, LL),
    a("rename_into_workspace", "rename /etc/passwd into /workspace", "rename", &["EACCES", "EXDEV"], LL),
];

/// One line of the table.
#[derive(Debug, Clone)]
struct Row {
    attempt: String,
    what: String,
    expected: String,
    observed: String,
    by: String,
    control: String,
    denied: bool,
}

impl Row {
    fn error(scenario: &str, e: &HarnessError) -> Self {
        Self {
            attempt: format!("{scenario} (scenario)"),
            what: "the scenario could not run".into(),
            expected: "runs".into(),
            observed: format!("error: {}", one_line(&e.to_string())),
            by: "-".into(),
            control: "-".into(),
            denied: false,
        }
    }
}

fn one_line(s: &str) -> String {
    let s = s.replace(['\n', '|'], " ");
    if s.chars().count() > 300 {
        format!("{}…", s.chars().take(300).collect::<String>())
    } else {
        s
    }
}

/// `NAME STEP RESULT` lines of `attack run` → NAME → `STEP RESULT`.
fn results(out: &Output) -> BTreeMap<String, String> {
    out.stdout
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ' ');
            let (n, step, res) = (it.next()?, it.next()?, it.next()?);
            Some((n.to_owned(), format!("{step} {res}")))
        })
        .collect()
}

fn sha256(p: &Path) -> String {
    std::fs::read(p)
        .map(|b| hex::encode(Sha256::digest(b)))
        .unwrap_or_default()
}

/// A bundle for the attack helper: writable rootfs (Landlock must do the stopping), cwd
/// `/workspace`, `/attack`, a setuid-root copy `/attack-suid`, agent's capabilities (the
/// profile sets them too; the control keeps them), and a host secret in the bundle
/// directory next to the rootfs — outside the container's root.
fn attack_bundle(attack: &Path, profile: Option<&str>) -> Result<Bundle> {
    let mut b = Bundle::new()?;
    b.set_readonly_root(false);
    add_workspace(&mut b)?;
    install(&b, attack, "attack", 0o755)?;
    install(&b, attack, "attack-suid", 0o4755)?;
    b.write_file(
        "secret/shadow",
        b"root:$6$warren-e2e$host-secret-hash:19000:0:99999:7:::\n",
        0o600,
    )?;
    set_caps(&mut b, &AGENT_CAPS);
    // The profile must turn no_new_privs on by itself (and the control shows a setuid
    // binary working without it).
    b.config["process"]["noNewPrivileges"] = json!(false);
    if let Some(p) = profile {
        set_profile(&mut b, p);
    }
    Ok(b)
}

const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `args` in a fresh attack bundle (edited by `edit`) in the foreground.
fn run_attack(
    rt: &Runtime,
    attack: &Path,
    profile: Option<&str>,
    tag: &str,
    args: &[&str],
    edit: impl FnOnce(&mut Bundle) -> Result<()>,
) -> Result<Output> {
    let mut b = attack_bundle(attack, profile)?;
    b.set_args(args);
    edit(&mut b)?;
    b.save()?;
    let id = unique_id(tag);
    let _g = rt.guard(&id);
    let out = rt.run(b.path(), &id, RUN_TIMEOUT)?;
    LeakCheck::new()
        .id(&id)
        .path(b.path())
        .assert_clean()
        .map_err(|e| HarnessError::Other(format!("after {tag}: {e}")))?;
    Ok(out)
}

/// A user profile: agent with a writable root, so that Landlock alone stops the writes.
const WRITABLE_ROOT_PROFILE: &str = r#"# e2e: agent without the read-only root
extends = "agent"
description = "agent on a writable root (escape battery: Landlock alone)"
readonly_root = false
"#;

/// Metadata changes Landlock (up to ABI 7) has no rights for: only agent's read-only root
/// stops them, so the writable-root run leaves them out.
const METADATA_ATTEMPTS: &[&str] = &[
    "chmod_outside",
    "chown_outside",
    "utime_outside",
    "setxattr_outside",
];

/// The battery under agent (read-only root: the mount refuses many writes before
/// Landlock is asked, so EROFS counts as well) and under agent with a writable root
/// (Landlock alone must refuse them, with the exact errno), plus the control.
fn battery(rt: &Runtime, attack: &Path) -> Result<Vec<Row>> {
    let names: Vec<&str> = BATTERY.iter().map(|a| a.name).collect();
    let mut args = vec!["/attack", "run"];
    args.extend(&names);
    let dir =
        tempfile::tempdir().map_err(|e| HarnessError::Other(format!("create a temp dir: {e}")))?;
    let rw_profile = dir.path().join("agent-writable-root.toml");
    std::fs::write(&rw_profile, WRITABLE_ROOT_PROFILE)
        .map_err(|e| HarnessError::Other(format!("write {}: {e}", rw_profile.display())))?;
    let rw_profile = rw_profile.to_string_lossy().into_owned();
    let (agent, writable, control) = std::thread::scope(|s| {
        let c = s.spawn(|| run_attack(rt, attack, None, "esc-ctl", &args, |_| Ok(())));
        let w = s.spawn(|| run_attack(rt, attack, Some(&rw_profile), "esc-rw", &args, |_| Ok(())));
        let a = run_attack(rt, attack, Some("agent"), "esc", &args, |_| Ok(()));
        (a, w.join(), c.join())
    });
    let agent = agent?;
    ensure!(
        agent.success(),
        "the battery container failed under agent: {agent}"
    );
    let writable = match writable {
        Ok(r) => r?,
        Err(_) => return Err(HarnessError::Other("writable-root battery panicked".into())),
    };
    ensure!(
        writable.success(),
        "the battery container failed under agent with a writable root: {writable}"
    );
    let control = match control {
        Ok(Ok(o)) => results(&o),
        _ => BTreeMap::new(),
    };
    let mut rows = rows_for(&results(&agent), &control, true);
    rows.extend(rows_for(&results(&writable), &control, false));
    Ok(rows)
}

fn rows_for(
    got: &BTreeMap<String, String>,
    control: &BTreeMap<String, String>,
    readonly_root: bool,
) -> Vec<Row> {
    BATTERY
        .iter()
        .filter(|at| readonly_root || !METADATA_ATTEMPTS.contains(&at.name))
        .map(|at| {
            let observed = got
                .get(at.name)
                .cloned()
                .unwrap_or_else(|| "no result".into());
            let absent = at.host_path.is_some_and(|p| !Path::new(p).exists());
            let mut expect: Vec<&str> = if absent {
                vec!["ENOENT"]
            } else {
                at.expect.to_vec()
            };
            let landlock = at.by.starts_with("Landlock");
            if readonly_root && landlock && !expect.contains(&"EROFS") {
                expect.push("EROFS");
            }
            let denied = expect
                .iter()
                .any(|e| observed == format!("{} {e}", at.step));
            Row {
                attempt: if readonly_root {
                    at.name.into()
                } else {
                    format!("{} (writable root)", at.name)
                },
                what: at.what.into(),
                expected: if absent {
                    format!("{} ENOENT (not in this kernel)", at.step)
                } else {
                    format!("{} {}", at.step, expect.join(" or "))
                },
                observed,
                by: if readonly_root && landlock {
                    format!("read-only root, {}", at.by)
                } else {
                    at.by.into()
                },
                control: control.get(at.name).cloned().unwrap_or_else(|| "-".into()),
                denied,
            }
        })
        .collect()
}

/// A user profile extending agent with the loopback network, TCP 8080 (bind+connect) and
/// 9090 (bind only).
const PORT_PROFILE: &str = r#"# e2e: agent plus one TCP port on loopback
extends = "agent"
description = "agent with TCP 8080 on loopback (escape battery)"

[network]
mode = "loopback"   # the experiment profile's network

[[landlock.net]]
# The one service the workload may reach (and serve).
port = 8080
access = ["bind", "connect"]

[[landlock.net]]
# A port it may listen on but not connect to: a listener exists, so a refused connect is
# Landlock's doing, not an empty port.
port = 9090
access = ["bind"]
"#;

fn tcp_allowlist(rt: &Runtime, attack: &Path) -> Result<Vec<Row>> {
    let dir = tempfile::tempdir().map_err(|e| HarnessError::Other(e.to_string()))?;
    let profile = dir.path().join("agent-port.toml");
    std::fs::write(&profile, PORT_PROFILE).map_err(|e| HarnessError::Other(e.to_string()))?;
    let script = "/attack listen 8080 9090 & L=$!; \
         for i in 1 2 3 4 5 6 7 8 9 10; do [ -n \"$(netstat -ltn 2>/dev/null | grep :9090)\" ] && break; sleep 0.1; done; \
         TCP_PORT=8080 /attack run tcp_connect_port | sed s/^tcp_connect_port/p8080_connect/; \
         TCP_PORT=9090 /attack run tcp_connect_port | sed s/^tcp_connect_port/p9090_connect/; \
         TCP_PORT=7070 /attack run tcp_bind_port tcp_connect_port | sed s/^tcp_/p7070_/; \
         TCP_PORT=9091 /attack run tcp_bind_port | sed s/^tcp_bind_port/p9091_bind_port/; \
         kill $L";
    let out = run_attack(
        rt,
        attack,
        Some(&profile.display().to_string()),
        "esc-port",
        &["sh", "-c", script],
        |_| Ok(()),
    )?;
    ensure!(
        out.stdout.contains("listen 8080 ok") && out.stdout.contains("listen 9090 ok"),
        "the listeners did not start under the port profile: {out}"
    );
    let got = results(&out);
    let row = |name: &str, what: &str, step: &str, want: &str| {
        let observed = got.get(name).cloned().unwrap_or_else(|| "no result".into());
        Row {
            attempt: name.into(),
            what: what.into(),
            expected: format!("{step} {want}"),
            denied: observed == format!("{step} {want}"),
            observed,
            by: "Landlock (net)".into(),
            control: "-".into(),
        }
    };
    let control = row(
        "p8080_connect",
        "(control) connect to the allowlisted port 8080",
        "connect",
        "ok",
    );
    Ok(vec![
        Row {
            attempt: "tcp_allowlisted_port_works".into(),
            by: "(control: must succeed)".into(),
            ..control
        },
        row(
            "p9090_connect",
            "connect to 9090: a listener exists, only bind is allowlisted",
            "connect",
            "EACCES",
        ),
        row(
            "p7070_connect_port",
            "connect to 7070 (not allowlisted)",
            "connect",
            "EACCES",
        ),
        row(
            "p7070_bind_port",
            "bind 7070 (not allowlisted)",
            "bind",
            "EACCES",
        ),
        row(
            "p9091_bind_port",
            "bind 9091 (next to an allowlisted port)",
            "bind",
            "EACCES",
        ),
    ])
}

/// Creates and starts `/attack serve` (abstract socket + a `victim` child) under
/// `profile`; returns its id, guard and bundle.
fn serve<'a>(
    rt: &'a Runtime,
    attack: &Path,
    profile: Option<&str>,
    tag: &str,
) -> Result<(String, warren_e2e::ContainerGuard<'a>, Bundle)> {
    let mut b = attack_bundle(attack, profile)?;
    b.set_args(&["/attack", "serve"]);
    b.save()?;
    let id = unique_id(tag);
    let g = rt.guard(&id);
    rt.create(b.path(), &id)?.check()?;
    rt.start(&id)?.check()?;
    Ok((id, g, b))
}

fn scoping(rt: &Runtime, attack: &Path) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    // The server under agent, and one without a profile for the controls.
    let (id, _g, _b) = serve(rt, attack, Some("agent"), "esc-srv")?;
    let (cid, _cg, _cb) = serve(rt, attack, None, "esc-srvctl")?;
    let pid = rt.state(&id)?["pid"]
        .as_i64()
        .ok_or_else(|| HarnessError::Other("state has no pid".into()))?;
    // Wait for the victim to exist.
    let victim_up = wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .is_ok_and(|s| !s.trim().is_empty())
    });
    ensure!(victim_up, "the server's victim child never started");

    let names = [
        "kill_probe_outside_domain",
        "kill_outside_domain",
        "kill_init",
        "abstract_unix_connect",
    ];
    let exec = |id: &str| -> Result<BTreeMap<String, String>> {
        let mut args = vec!["exec", id, "/attack", "run"];
        args.extend(names);
        let out = rt.cmd(args).output()?;
        ensure!(out.success(), "exec into {id}: {out}");
        Ok(results(&out))
    };
    let got = exec(&id)?;
    let ctl = exec(&cid)?;
    let whats = [
        "exec'd process: kill(victim, 0)",
        "exec'd process: SIGKILL the container's `victim` process",
        "exec'd process: SIGTERM the container's init",
        "exec'd process: connect to the init's abstract unix socket",
    ];
    let steps = ["kill-0", "kill-SIGKILL", "kill-SIGTERM", "connect"];
    for ((n, what), step) in names.iter().zip(whats).zip(steps) {
        let observed = got.get(*n).cloned().unwrap_or_else(|| "no result".into());
        let want = format!("{step} EPERM");
        rows.push(Row {
            attempt: format!("exec_{n}"),
            what: what.into(),
            denied: observed == want,
            expected: want,
            observed,
            by: "Landlock (scope)".into(),
            control: ctl.get(*n).cloned().unwrap_or_else(|| "-".into()),
        });
    }

    // A second container sharing the server's pid namespace: it sees the victim but is in
    // another Landlock domain. The control (no profile) only probes with signal 0.
    let victim = first_child(pid)
        .ok_or_else(|| HarnessError::Other("the server has no victim child".into()))?;
    let ns = format!("/proc/{pid}/ns/pid");
    let join = |profile: Option<&str>, tag: &str, names: &[&str]| {
        let mut args = vec!["/attack", "run"];
        args.extend(names);
        let out = run_attack(rt, attack, profile, tag, &args, |b| {
            join_namespace(b, "pid", &ns);
            Ok(())
        })?;
        ensure!(out.success(), "the pid-namespace sibling failed: {out}");
        Ok(results(&out))
    };
    let ctl = join(None, "esc-sibctl", &["kill_probe_outside_domain"])?;
    ensure!(
        ctl.get("kill_probe_outside_domain").map(String::as_str) == Some("kill-0 ok"),
        "control: a sibling without a profile could not reach the victim, so the scoping \
         test would prove nothing: {ctl:?}"
    );
    let got = join(
        Some("agent"),
        "esc-sib",
        &["kill_probe_outside_domain", "kill_outside_domain"],
    )?;
    for (n, step, what) in [
        (
            "kill_probe_outside_domain",
            "kill-0",
            "another agent container in the same pid namespace: kill(victim, 0)",
        ),
        (
            "kill_outside_domain",
            "kill-SIGKILL",
            "another agent container in the same pid namespace: SIGKILL the victim",
        ),
    ] {
        let observed = got.get(n).cloned().unwrap_or_else(|| "no result".into());
        let want = format!("{step} EPERM");
        rows.push(Row {
            attempt: format!("sibling_{n}"),
            what: what.into(),
            denied: observed == want,
            expected: want,
            observed,
            by: "Landlock (scope)".into(),
            // The control must not kill the victim the agent sibling aims at.
            control: ctl.get(n).cloned().unwrap_or_else(|| "(not run)".into()),
        });
    }
    ensure!(
        is_running(victim),
        "the victim process {victim} was killed from another sandbox"
    );
    Ok(rows)
}

/// The first child of host pid `pid`.
fn first_child(pid: i64) -> Option<i64> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// True while `pid` exists and is not a zombie.
fn is_running(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next())
        })
        .is_some_and(|state| state != 'Z' && state != 'X')
}

fn cve_2019_5736(attack: &Path) -> Result<Vec<Row>> {
    const MARKER: &str = "warren-runtime-escape-copy";
    let dir = tempfile::tempdir().map_err(|e| HarnessError::Other(e.to_string()))?;
    let copy = dir.path().join(MARKER);
    std::fs::copy(warren_e2e::warren_binary()?, &copy)
        .map_err(|e| HarnessError::Other(format!("copy runtime: {e}")))?;
    let before = sha256(&copy);
    let rt = Runtime::new("warren-copy", &copy)?;
    let mut b = attack_bundle(attack, Some("agent"))?;
    b.set_args(&[
        "sh",
        "-c",
        &format!("/attack exe_scan {MARKER} > /workspace/result 2>&1"),
    ]);
    b.save()?;
    let result = b.rootfs().join("workspace/result");
    let id = unique_id("esc-cve");
    let g = rt.guard(&id);
    rt.create(b.path(), &id)?.check()?;
    rt.start(&id)?.check()?;
    let mut execs = 0;
    let started = Instant::now();
    let mut text = String::new();
    while execs < 300 && started.elapsed() < Duration::from_secs(50) {
        let _ = rt
            .cmd(["exec", id.as_str(), "/attack", "sleep", "0"])
            .output()?;
        execs += 1;
        text = std::fs::read_to_string(&result).unwrap_or_default();
        if text.contains("cve-2019-5736") {
            break;
        }
    }
    drop(g);
    let observed = text
        .lines()
        .find_map(|l| l.strip_prefix("cve-2019-5736 "))
        .unwrap_or("not caught")
        .to_owned();
    let unchanged = sha256(&copy) == before;
    Ok(vec![Row {
        attempt: "cve_2019_5736_exec".into(),
        what: format!(
            "catch the runtime entering via exec ({execs} execs), open /proc/PID/exe, reopen it for writing"
        ),
        expected: "open-exe EACCES or reopen-wronly EROFS; binary unchanged".into(),
        denied: unchanged
            && (observed == "open-exe EACCES"
                || observed == "open-exe EPERM"
                || observed == "reopen-wronly EROFS"),
        observed: format!(
            "{observed}; binary {}",
            if unchanged { "unchanged" } else { "MODIFIED" }
        ),
        by: "ptrace access check (no CAP_SYS_PTRACE, Landlock) + read-only exe".into(),
        control: "-".into(),
    }])
}

/// A created (not started) agent container running `sh -c SCRIPT`, with the host
/// directory of its cgroup for `ctrl` (v1 hierarchy).
struct Limited<'a> {
    id: String,
    _guard: warren_e2e::ContainerGuard<'a>,
    bundle: Bundle,
    cgroup: PathBuf,
}

fn create_limited<'a>(
    rt: &'a Runtime,
    attack: &Path,
    tag: &str,
    script: &str,
    ctrl: &str,
) -> Result<Limited<'a>> {
    let mut b = attack_bundle(attack, Some("agent"))?;
    b.set_sh(script);
    b.save()?;
    let id = unique_id(tag);
    let guard = rt.guard(&id);
    rt.create(b.path(), &id)?.check()?;
    let pid = rt.state(&id)?["pid"]
        .as_i64()
        .ok_or_else(|| HarnessError::Other("state has no pid".into()))?;
    let cgroup = cgroup::dir_of(pid, ctrl)
        .ok_or_else(|| HarnessError::Other(format!("no {ctrl} cgroup for pid {pid}")))?;
    Ok(Limited {
        id,
        _guard: guard,
        bundle: b,
        cgroup,
    })
}

fn read_trim(p: &Path) -> String {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|e| format!("({e})"))
}

fn fork_bomb(rt: &Runtime, attack: &Path) -> Result<Vec<Row>> {
    let c = create_limited(
        rt,
        attack,
        "esc-fork",
        "/attack forkbomb > /workspace/out 2>&1",
        "pids",
    )?;
    let max = read_trim(&c.cgroup.join("pids.max"));
    let row = |observed: String, denied: bool| Row {
        attempt: "fork_bomb".into(),
        what: "fork until fork fails".into(),
        expected: "pids.max 512; fork EAGAIN after < 512 forks; host forks".into(),
        observed,
        by: "cgroup pids".into(),
        control: "-".into(),
        denied,
    };
    if max != "512" {
        // Not started: without the limit the bomb would only test the host.
        return Ok(vec![row(
            format!("pids.max {max}: the profile's limit is not applied (bomb not started)"),
            false,
        )]);
    }
    rt.start(&c.id)?.check()?;
    rt.wait_status(&c.id, "stopped", Duration::from_secs(60))?;
    let out = std::fs::read_to_string(c.bundle.rootfs().join("workspace/out")).unwrap_or_default();
    let line = out
        .lines()
        .find(|l| l.starts_with("forkbomb "))
        .unwrap_or("")
        .to_owned();
    let n: u64 = line
        .rsplit("n=")
        .next()
        .and_then(|x| x.parse().ok())
        .unwrap_or(u64::MAX);
    let host_ok = Invocation::new("/bin/true")
        .timeout(Duration::from_secs(10))
        .output()
        .is_ok_and(|o| o.success());
    let errno = line.split(' ').nth(2).unwrap_or("?");
    Ok(vec![row(
        format!(
            "pids.max {max}; fork {errno} after {n} forks; host {}",
            if host_ok { "forks" } else { "CANNOT FORK" }
        ),
        errno == "EAGAIN" && n < 512 && host_ok,
    )])
}

fn vmstat_oom_kills() -> u64 {
    std::fs::read_to_string("/proc/vmstat")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn memory_hog(rt: &Runtime, attack: &Path) -> Result<Vec<Row>> {
    const LIMIT: u64 = 4 << 30;
    let c = create_limited(
        rt,
        attack,
        "esc-oom",
        "/attack memhog 4608 > /workspace/out 2>&1",
        "memory",
    )?;
    let limit = read_trim(&c.cgroup.join("memory.limit_in_bytes"));
    let row = |observed: String, denied: bool| Row {
        attempt: "memory_hog".into(),
        what: "touch 4.5 GiB under the 4 GiB limit".into(),
        expected: "memory.limit 4 GiB; OOM-killed in the container; host untouched".into(),
        observed,
        by: "cgroup memory".into(),
        control: "-".into(),
        denied,
    };
    if limit != LIMIT.to_string() {
        return Ok(vec![row(
            format!(
                "memory.limit_in_bytes {limit}: the profile's limit is not applied (hog not started)"
            ),
            false,
        )]);
    }
    let mut sentinel = Invocation::new("/bin/sleep")
        .arg("120")
        .timeout(Duration::from_secs(130))
        .spawn()?;
    let kills_before = vmstat_oom_kills();
    rt.start(&c.id)?.check()?;
    let stopped = rt.wait_status(&c.id, "stopped", Duration::from_secs(90));
    let cg_kills: u64 = std::fs::read_to_string(c.cgroup.join("memory.oom_control"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let host_kills = vmstat_oom_kills().saturating_sub(kills_before);
    let host_alive = !sentinel.has_exited();
    // SAFETY: kill(2) of our own child, not yet reaped (its pid is still ours).
    unsafe { libc::kill(sentinel.pid() as i32, libc::SIGKILL) };
    let _ = sentinel.wait();
    stopped?;
    let out = std::fs::read_to_string(c.bundle.rootfs().join("workspace/out")).unwrap_or_default();
    let touched = out
        .lines()
        .filter_map(|l| l.strip_prefix("memhog touched "))
        .next_back()
        .unwrap_or("0")
        .to_owned();
    let survived = out.contains("memhog survived");
    Ok(vec![row(
        format!(
            "memory.limit {limit}; {} after {touched} MiB; cgroup oom_kill {cg_kills}, \
             host-wide oom_kill +{host_kills}; host sentinel {}",
            if survived { "SURVIVED" } else { "killed" },
            if host_alive { "alive" } else { "KILLED" }
        ),
        !survived && cg_kills >= 1 && host_kills <= cg_kills && host_alive,
    )])
}

/// The host view of `warren run --profile agent`: the attempts as one Python script.
const HOST_VIEW_SCRIPT: &str = r#"
import errno, os, sys
def attempt(name, fn):
    try:
        fn()
        print(name, "ok")
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, e.errno))
secret = sys.argv[1]
attempt("host_etc_shadow", lambda: open("/etc/shadow").read())
attempt("host_secret_file", lambda: open(secret).read())
attempt("host_root_home", lambda: os.listdir("/root"))
attempt("host_ssh_host_key", lambda: open("/etc/ssh/ssh_host_ed25519_key").read())
attempt("host_write_usr", lambda: open("/usr/warren-e2e-evil", "w"))
attempt("host_write_etc", lambda: open("/etc/passwd", "a"))
attempt("host_docker_socket", lambda: os.stat("/run/docker.sock"))
"#;

fn host_view() -> Result<Vec<Row>> {
    let cli = WarrenCli::new()?;
    // A host secret outside anything the view mounts (the CLI's temp dir is not mounted;
    // only its work/ subdirectory is, at /workspace).
    let secret = cli.dir().join("host-secret");
    std::fs::write(&secret, "host secret\n").map_err(|e| HarnessError::Other(e.to_string()))?;
    let out = cli
        .cmd(["run", "--profile", "agent", "--", "/usr/bin/python3", "-c"])
        .arg(HOST_VIEW_SCRIPT)
        .arg(&secret)
        .output()?;
    ensure!(out.success(), "warren run --profile agent failed: {out}");
    let got: BTreeMap<&str, &str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once(' '))
        .collect();
    let rows = [
        (
            "host_etc_shadow",
            "host view: read /etc/shadow",
            &["ENOENT"][..],
            "host view /etc allow-list",
        ),
        (
            "host_secret_file",
            "host view: read a host file outside the view",
            &["ENOENT"][..],
            "host view",
        ),
        (
            "host_root_home",
            "host view: list the host's /root",
            &["ENOENT"][..],
            "host view",
        ),
        (
            "host_ssh_host_key",
            "host view: read the host's ssh host key",
            &["ENOENT"][..],
            "host view /etc allow-list",
        ),
        (
            "host_write_usr",
            "host view: create /usr/warren-e2e-evil",
            &["EROFS", "EACCES"][..],
            "read-only bind + Landlock",
        ),
        (
            "host_write_etc",
            "host view: append to /etc/passwd",
            &["EROFS", "EACCES"][..],
            "read-only + Landlock",
        ),
        (
            "host_docker_socket",
            "host view: reach /run/docker.sock",
            &["ENOENT"][..],
            "host view",
        ),
    ];
    Ok(rows
        .iter()
        .map(|(n, what, want, by)| {
            let observed = got.get(n).copied().unwrap_or("no result").to_owned();
            Row {
                attempt: (*n).into(),
                what: (*what).into(),
                expected: want.join(" or "),
                denied: want.contains(&observed.as_str()),
                observed,
                by: (*by).into(),
                control: "-".into(),
            }
        })
        .collect())
}

/// A markdown table cell: `|` escaped.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn table(rows: &[Row]) -> String {
    let mut t = String::from(
        "| # | attempt | what | expected | observed | stopped by | without profile |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for (i, r) in rows.iter().enumerate() {
        let mark = if r.denied { "" } else { " **FAIL**" };
        let _ = writeln!(
            t,
            "| {} | `{}` | {} | {} | {}{mark} | {} | {} |",
            i + 1,
            r.attempt,
            cell(&r.what),
            cell(&r.expected),
            cell(&r.observed),
            cell(&r.by),
            cell(&r.control)
        );
    }
    t
}

#[test]
fn escape_battery_under_agent() {
    let started = Instant::now();
    let attack = static_helper("attack", ATTACK_SRC).expect("build the attack helper");
    let rt = Runtime::warren().expect("warren runtime");
    type Scenario<'a> = (
        &'static str,
        Box<dyn Fn() -> Result<Vec<Row>> + Send + Sync + 'a>,
    );
    let scenarios: Vec<Scenario<'_>> = vec![
        ("battery", Box::new(|| battery(&rt, &attack))),
        ("tcp allowlist", Box::new(|| tcp_allowlist(&rt, &attack))),
        ("scoping", Box::new(|| scoping(&rt, &attack))),
        ("cve-2019-5736", Box::new(|| cve_2019_5736(&attack))),
        ("fork bomb", Box::new(|| fork_bomb(&rt, &attack))),
        ("memory hog", Box::new(|| memory_hog(&rt, &attack))),
        ("host view", Box::new(host_view)),
    ];
    let rows: Vec<Row> = std::thread::scope(|s| {
        let handles: Vec<_> = scenarios
            .iter()
            .map(|(name, f)| (name, s.spawn(f)))
            .collect();
        handles
            .into_iter()
            .flat_map(|(name, h)| match h.join() {
                Ok(Ok(rows)) => rows,
                Ok(Err(e)) => vec![Row::error(name, &e)],
                Err(_) => vec![Row::error(name, &HarnessError::Other("panicked".into()))],
            })
            .collect()
    });
    let report = table(&rows);
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("escape-table.md");
    let _ = std::fs::write(&file, &report);
    let failed: Vec<&Row> = rows.iter().filter(|r| !r.denied).collect();
    println!(
        "{report}\n{} attempts, {} not denied as expected, {:.1} s (written to {})",
        rows.len(),
        failed.len(),
        started.elapsed().as_secs_f64(),
        file.display()
    );
    let leaks = LeakCheck::new().state_root(rt.root()).scan();
    assert!(leaks.is_empty(), "leaks after the battery:\n{leaks}");
    assert!(rows.len() >= 40, "only {} attempts ran", rows.len());
    assert!(
        failed.is_empty(),
        "{} attempts were not denied as expected:\n{}",
        failed.len(),
        failed
            .iter()
            .map(|r| format!(
                "  {}: expected {}, observed {}",
                r.attempt, r.expected, r.observed
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
