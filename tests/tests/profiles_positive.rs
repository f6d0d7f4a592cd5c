//! What the sandbox profiles must still allow (issue 7): under `agent`, code computes, reads
//! its inputs (mounted read-only), writes its workspace, compiles and runs C, and uses
//! threads and subprocesses; `experiment` adds loopback networking, ptrace and writable
//! home directories; `trusted` is the loosest (host network, setuid binaries, no Landlock).
//!
//! Two ways in, both through the runtime's annotation `warren.dev/profile`:
//! * the `warren` CLI's read-only host view (`warren run --profile P -- CMD`), for real
//!   programs: python3, gcc, sh (needs `cargo build --release -p warren-cli`, or
//!   `WARREN_CLI`);
//! * `warren-runtime` on a busybox bundle with the static helper `tests/c/attack.c`, for
//!   exact system calls and the cgroup limits seen from the host.
//!
//! Each profile is also checked for what it sets: no_new_privs, capabilities, rlimits and
//! the cgroup limits of its `[cgroup]` table.

use std::time::Duration;

use serde_json::json;
use warren_e2e::sandbox::{
    ATTACK_SRC, WarrenCli, add_workspace, install, set_profile, static_helper,
};
use warren_e2e::{Bundle, LeakCheck, Output, Result, Runtime, cgroup, ensure, unique_id};

// ---- the CLI's host view ------------------------------------------------------------------

/// `warren run --profile PROFILE [EXTRA…] -- ARGS…` in a fresh workspace, which `setup`
/// may fill first.
fn cli_run(profile: &str, extra: &[&str], args: &[&str], setup: impl FnOnce(&WarrenCli)) -> Output {
    let cli = WarrenCli::new().expect("warren CLI");
    setup(&cli);
    let out = cli
        .cmd(["run", "--profile", profile])
        .args(extra)
        .arg("--")
        .args(args)
        .output()
        .expect("run warren");
    assert!(
        out.success(),
        "warren run --profile {profile} {args:?}: {out}"
    );
    out
}

#[test]
fn agent_python_computes() {
    let script = "import hashlib, math, json\n\
                  s = sum(i * i for i in range(10**6))\n\
                  print(s, math.isqrt(s), hashlib.sha256(b'warren').hexdigest()[:12])\n\
                  print(json.dumps({'ok': True}))";
    let out = cli_run("agent", &[], &["python3", "-c", script], |_| {});
    assert_eq!(
        out.stdout, "333332833333500000 577349836 b4e78f1caf93\n{\"ok\": true}\n",
        "{out}"
    );
}

#[test]
fn agent_compiles_and_runs_c() {
    let src = "#include <stdio.h>\n#include <pthread.h>\n\
               static void *work(void *p) { long n = (long)p, s = 0; for (long i = 0; i < 1000000; i++) s += i % (n + 2); return (void *)s; }\n\
               int main(void) { pthread_t t[4]; long total = 0; void *r;\n\
               for (long i = 0; i < 4; i++) pthread_create(&t[i], 0, work, (void *)i);\n\
               for (int i = 0; i < 4; i++) { pthread_join(t[i], &r); total += (long)r; }\n\
               printf(\"compiled and ran: %ld\\n\", total); return 0; }\n";
    let out = cli_run(
        "agent",
        &[],
        &["sh", "-c", "gcc -O2 -pthread -o hello hello.c && ./hello"],
        |cli| std::fs::write(cli.work().join("hello.c"), src).expect("write hello.c"),
    );
    assert_eq!(out.stdout, "compiled and ran: 4999999\n", "{out}");
}

#[test]
fn agent_reads_read_only_inputs_and_writes_the_workspace() {
    let cli = WarrenCli::new().expect("warren CLI");
    let inputs = cli.dir().join("inputs");
    std::fs::create_dir(&inputs).expect("mkdir inputs");
    std::fs::write(inputs.join("data.csv"), "a,b\n1,2\n3,4\n").expect("write input");
    let volume = format!("{}:/data:ro", inputs.display());
    let script = "import os, errno\n\
                  rows = open('/data/data.csv').read().splitlines()[1:]\n\
                  total = sum(int(x) for r in rows for x in r.split(','))\n\
                  open('result.txt', 'w').write(f'{total}\\n')\n\
                  os.makedirs('sub/dir', exist_ok=True); open('sub/dir/f', 'w').write('x')\n\
                  os.rename('sub/dir/f', 'sub/g'); os.remove('sub/g')\n\
                  open('/tmp/scratch', 'w').write('t')\n\
                  try:\n    open('/data/new', 'w')\nexcept OSError as e:\n    print('input write:', errno.errorcode[e.errno])\n\
                  print('cwd', os.getcwd(), 'total', total)";
    let out = cli
        .cmd([
            "run",
            "--profile",
            "agent",
            "-v",
            &volume,
            "--",
            "python3",
            "-c",
            script,
        ])
        .output()
        .expect("run warren");
    assert!(out.success(), "{out}");
    assert_eq!(
        out.stdout, "input write: EROFS\ncwd /workspace total 10\n",
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(cli.work().join("result.txt"))
            .ok()
            .as_deref(),
        Some("10\n"),
        "the workspace write did not reach the host"
    );
    assert!(cli.work().join("sub/dir").is_dir());
    assert!(
        !inputs.join("new").exists(),
        "the read-only input was written"
    );
}

#[test]
fn agent_threads_and_subprocesses() {
    let script = "import threading, subprocess, multiprocessing, os\n\
                  res = []\n\
                  def work(n):\n    res.append(sum(range(n)))\n\
                  ts = [threading.Thread(target=work, args=(10**5 + i,)) for i in range(8)]\n\
                  [t.start() for t in ts]; [t.join() for t in ts]\n\
                  print('threads', len(res))\n\
                  p = subprocess.run(['sh', '-c', 'seq 1 1000 | sort -rn | head -1'], capture_output=True, text=True, check=True)\n\
                  print('pipeline', p.stdout.strip())\n\
                  def sq(x):\n    return x * x\n\
                  if __name__ == '__main__':\n    with multiprocessing.Pool(2) as pool:\n        print('pool', sum(pool.map(sq, range(100))))\n\
                  pid = os.fork()\n\
                  if pid == 0:\n    os._exit(7)\n\
                  print('fork exit', os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))";
    let out = cli_run("agent", &[], &["python3", "-c", script], |_| {});
    assert_eq!(
        out.stdout, "threads 8\npipeline 1000\npool 328350\nfork exit 7\n",
        "{out}"
    );
}

#[test]
fn agent_process_has_the_profile_s_settings() {
    // Read from inside: no_new_privs, seccomp mode, capabilities, rlimits; and the network
    // has no interface up.
    let script = "import resource\n\
                  st = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)\n\
                  print('nnp', st['NoNewPrivs'].strip(), 'seccomp', st['Seccomp'].strip())\n\
                  print('capeff', st['CapEff'].strip())\n\
                  print('nofile', *resource.getrlimit(resource.RLIMIT_NOFILE))\n\
                  print('core', *resource.getrlimit(resource.RLIMIT_CORE))\n\
                  up = [l.split(':')[0].strip() for l in open('/proc/net/dev').read().splitlines()[2:]]\n\
                  import fcntl, socket, struct\n\
                  s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                  flags = struct.unpack('16sH', fcntl.ioctl(s, 0x8913, struct.pack('16sH', b'lo', 0)))[1]\n\
                  print('interfaces', ','.join(up), 'lo-up', bool(flags & 1))";
    let out = cli_run("agent", &[], &["python3", "-c", script], |_| {});
    // CHOWN DAC_OVERRIDE FOWNER KILL SETGID SETUID = bits 0 1 3 5 6 7.
    assert_eq!(
        out.stdout,
        "nnp 1 seccomp 2\ncapeff 00000000000000eb\nnofile 1024 4096\ncore 0 0\ninterfaces lo lo-up False\n",
        "{out}"
    );
}

#[test]
fn experiment_python_serves_on_loopback() {
    let script = "import socket, threading\n\
                  srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1)\n\
                  port = srv.getsockname()[1]\n\
                  def serve():\n    c, _ = srv.accept(); c.sendall(c.recv(16).upper()); c.close()\n\
                  t = threading.Thread(target=serve); t.start()\n\
                  cl = socket.create_connection(('127.0.0.1', port)); cl.sendall(b'ping')\n\
                  print(cl.recv(16).decode()); t.join()\n\
                  st = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)\n\
                  print('nnp', st['NoNewPrivs'].strip(), 'seccomp', st['Seccomp'].strip())";
    let out = cli_run("experiment", &[], &["python3", "-c", script], |_| {});
    assert_eq!(out.stdout, "PING\nnnp 1 seccomp 2\n", "{out}");
}

#[test]
fn trusted_python_runs_without_no_new_privs() {
    let script = "st = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)\n\
                  print('nnp', st['NoNewPrivs'].strip(), 'seccomp', st['Seccomp'].strip())";
    let out = cli_run("trusted", &[], &["python3", "-c", script], |_| {});
    assert_eq!(out.stdout, "nnp 0 seccomp 2\n", "{out}");
}

// ---- warren-runtime on a busybox bundle ----------------------------------------------------

/// A busybox bundle with `/attack`, `/attack-suid` (setuid root), a writable rootfs, cwd
/// `/workspace`, a read-only input mount at `/data`, and `profile`.
fn bundle(profile: &str, script: &str) -> Result<Bundle> {
    let attack = static_helper("attack", ATTACK_SRC)?;
    let mut b = Bundle::new()?;
    b.set_readonly_root(false);
    add_workspace(&mut b)?;
    install(&b, &attack, "attack", 0o755)?;
    install(&b, &attack, "attack-suid", 0o4755)?;
    b.write_file("inputs/in.txt", b"input data\n", 0o644)?;
    let inputs = b.path().join("inputs");
    b.add_mount(
        json!({"destination": "/data", "type": "bind", "source": inputs,
                       "options": ["rbind", "ro"]}),
    );
    for d in ["root", "home/u1000"] {
        std::fs::create_dir_all(b.rootfs().join(d))
            .map_err(|e| warren_e2e::HarnessError::Other(format!("mkdir {d}: {e}")))?;
    }
    b.config["process"]["noNewPrivileges"] = json!(false);
    set_profile(&mut b, profile);
    b.set_sh(script);
    b.save()?;
    Ok(b)
}

fn run_bundle(profile: &str, script: &str) -> Output {
    let rt = Runtime::warren().expect("warren runtime");
    let b = bundle(profile, script).expect("bundle");
    let id = unique_id(&format!("pos-{profile}"));
    let _g = rt.guard(&id);
    let out = rt
        .run(b.path(), &id, Duration::from_secs(60))
        .expect("run the container");
    assert!(out.success(), "{profile}: {out}");
    LeakCheck::new()
        .id(&id)
        .path(b.path())
        .state_root(rt.root())
        .assert_clean()
        .expect("no leaks");
    out
}

#[test]
fn agent_busybox_workload_works() {
    let out = run_bundle(
        "agent",
        "echo ws > /workspace/a && cat /workspace/a; \
         echo tmp > /tmp/t && cat /tmp/t; \
         mkdir -p /workspace/d/e && mv /workspace/a /workspace/d/e/b && rm -r /workspace/d && echo moved; \
         ln -s a /workspace/l && mkfifo /workspace/fifo && echo links; \
         cat /data/in.txt; \
         (sleep 0.1; echo child) & wait; \
         seq 1 100 | sort -rn | head -1; \
         echo quiet > /dev/null && echo devnull; \
         grep -c root /etc/passwd; \
         ulimit -n",
    );
    assert_eq!(
        out.stdout, "ws\ntmp\nmoved\nlinks\ninput data\nchild\n100\ndevnull\n1\n1024\n",
        "{out}"
    );
}

#[test]
fn experiment_allows_loopback_ptrace_and_home() {
    let out = run_bundle(
        "experiment",
        "/attack listen 8080 & L=$!; sleep 0.2; \
         TCP_PORT=8080 /attack run tcp_connect_port; kill $L; \
         /attack run ptrace_sibling; \
         echo r > /root/f && echo h > /home/u1000/f && cat /root/f /home/u1000/f; \
         /attack run write_new_outside unshare_user",
    );
    assert_eq!(
        out.stdout,
        "listen 8080 ok\n\
         tcp_connect_port connect ok\n\
         ptrace_sibling ptrace-attach ok\n\
         r\nh\n\
         write_new_outside open-creat EACCES\n\
         unshare_user unshare EPERM\n",
        "{out}"
    );
}

#[test]
fn trusted_allows_setuid_host_network_and_writes_anywhere() {
    let host_net = std::fs::read_link("/proc/self/ns/net").expect("read the host's netns");
    let out = run_bundle(
        "trusted",
        "/attack run setuid_binary write_new_outside kexec_load; \
         grep NoNewPrivs /proc/self/status | tr -d ' \\t'; \
         readlink /proc/self/ns/net",
    );
    let got: Vec<&str> = out.stdout.lines().collect();
    let want = [
        "setuid_binary exec-suid euid=0",
        "write_new_outside open-creat ok",
        "kexec_load kexec_load EPERM",
        "NoNewPrivs:0",
        &host_net.display().to_string(),
    ];
    let wrong: Vec<String> = want
        .iter()
        .enumerate()
        .filter(|(i, w)| got.get(*i) != Some(*w))
        .map(|(i, w)| format!("want {w:?}, got {:?}", got.get(i)))
        .collect();
    assert!(
        wrong.is_empty(),
        "trusted:\n  {}\n{out}",
        wrong.join("\n  ")
    );
}

// ---- the cgroup limits of each profile, seen from the host ----------------------------------

/// Creates a container under `profile` and reads its cgroup files from the host.
fn limits_of(profile: &str) -> Result<Vec<(String, String)>> {
    let rt = Runtime::warren()?;
    let b = bundle(profile, "sleep 30")?;
    let id = unique_id(&format!("lim-{profile}"));
    let _g = rt.guard(&id);
    rt.create(b.path(), &id)?.check()?;
    let pid = rt.state(&id)?["pid"].as_i64().unwrap_or(0);
    ensure!(pid > 0, "no pid for {id}");
    let read = |ctrl: &str, file: &str| {
        (
            format!("{ctrl}/{file}"),
            cgroup::read(pid, ctrl, file).unwrap_or_else(|| "(unreadable)".into()),
        )
    };
    Ok(vec![
        read("pids", "pids.max"),
        read("memory", "memory.limit_in_bytes"),
        read("memory", "memory.memsw.limit_in_bytes"),
        read("cpu", "cpu.cfs_quota_us"),
        read("cpu", "cpu.cfs_period_us"),
    ])
}

fn assert_limits(profile: &str, want: &[(&str, &str)]) {
    let got = limits_of(profile).expect("read limits");
    let mut wrong = Vec::new();
    for (file, value) in want {
        let seen = got
            .iter()
            .find(|(f, _)| f == file)
            .map_or("(not read)", |(_, v)| v.as_str());
        // memsw is absent on kernels without swap accounting.
        if seen != *value && !(file.contains("memsw") && seen == "(unreadable)") {
            wrong.push(format!("{file}: {seen}, want {value}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{profile}'s [cgroup] limits did not reach the container's cgroup:\n  {}",
        wrong.join("\n  ")
    );
}

/// Regression: the profile's `[cgroup]` table must reach the cgroup, not only the saved
/// spec (the runtime once built the cgroups from the spec as it was before the profile).
#[test]
fn agent_cgroup_limits_reach_the_cgroup() {
    assert_limits(
        "agent",
        &[
            ("pids/pids.max", "512"),
            ("memory/memory.limit_in_bytes", "4294967296"),
            ("memory/memory.memsw.limit_in_bytes", "4294967296"),
            ("cpu/cpu.cfs_quota_us", "200000"),
            ("cpu/cpu.cfs_period_us", "100000"),
        ],
    );
}

#[test]
fn experiment_cgroup_limits_reach_the_cgroup() {
    assert_limits("experiment", &[("pids/pids.max", "8192")]);
}

#[test]
fn agent_replaces_the_bundle_s_capabilities() {
    // The bundle asks for runc's default set (AUDIT_WRITE KILL NET_BIND_SERVICE); agent's
    // six replace it: CHOWN DAC_OVERRIDE FOWNER KILL SETGID SETUID = bits 0 1 3 5 6 7.
    let out = run_bundle(
        "agent",
        "grep -E 'Cap(Eff|Bnd|Amb)|NoNewPrivs|Seccomp:' /proc/self/status | tr -d ' \\t'",
    );
    assert_eq!(
        out.stdout,
        "CapEff:00000000000000eb\nCapBnd:00000000000000eb\nCapAmb:0000000000000000\nNoNewPrivs:1\nSeccomp:2\n",
        "{out}"
    );
}

/// Regression: a built-in profile whose rlimits exceed the runtime's own hard limit
/// (experiment: nofile 65536, memlock unlimited; trusted: nofile 1048576) must still start
/// where the runtime lacks CAP_SYS_RESOURCE (docker's default capability set, this VM):
/// clamped, with a warning, rather than failing every create with `setrlimit RlimitNofile
/// …: Operation not permitted`.
#[test]
fn experiment_and_trusted_start_when_their_nofile_exceeds_the_hard_limit() {
    let rt = Runtime::warren().expect("warren runtime");
    let mut failures = Vec::new();
    for profile in ["experiment", "trusted"] {
        let b = bundle(profile, "ulimit -n").expect("bundle");
        let id = unique_id(&format!("nofile-{profile}"));
        let _g = rt.guard(&id);
        let out = rt
            .run(b.path(), &id, Duration::from_secs(60))
            .expect("run the container");
        if !out.success() {
            failures.push(format!("{profile}: {}", out.stderr.trim()));
        }
    }
    assert!(
        failures.is_empty(),
        "built-in profiles fail to start:\n  {}",
        failures.join("\n  ")
    );
}
