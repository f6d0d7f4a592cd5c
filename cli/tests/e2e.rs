//! End-to-end tests of the `warren` binary (as root): every command, detached sandboxes
//! that outlive the CLI, logs, exit codes, a tty, mounts, limits, bad input, and 50
//! concurrent sandboxes. Each test has its own `--root`/`--data-root`.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::time::Duration;

use common::{Env, cgroup_file, have, tmux};

#[test]
fn foreground_exit_codes_follow_the_contract() {
    need_root!();
    let e = Env::new();
    assert_eq!(e.warren(&["run", "--", "true"]).code, 0);
    assert_eq!(e.warren(&["run", "--", "sh", "-c", "exit 3"]).code, 3);
    let o = e.warren(&["run", "--", "no-such-command-xyz"]);
    assert_eq!(o.code, 127, "{o:?}");
    assert!(o.stderr.contains("not found"), "{o:?}");
    assert_eq!(e.warren(&["run", "--", "/etc/passwd"]).code, 126);
    // (The init is pid 1 of its namespace: a child's death by signal is 128+N.)
    assert_eq!(
        e.warren(&["run", "--", "sh", "-c", "sh -c 'kill -KILL $$'"])
            .code,
        137
    );
    assert_eq!(e.warren(&["--no-such-flag", "ps"]).code, 125);
    let o = e.ok(&[
        "run",
        "-e",
        "A=1",
        "--",
        "sh",
        "-c",
        "echo $A $HOME; hostname",
    ]);
    assert!(o.stdout.starts_with("1 /tmp\n"), "{o:?}");
    e.assert_empty();
}

#[test]
fn workspace_and_bind_mounts_are_ro_or_rw() {
    need_root!();
    let e = Env::new();
    let ro = e.dir.path().join("ro");
    let rw = e.dir.path().join("rw");
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::create_dir_all(&rw).unwrap();
    std::fs::write(ro.join("in.txt"), "data").unwrap();
    let vro = format!("{}:/data:ro", ro.display());
    let vrw = format!("{}:/out", rw.display());
    let o = e.warren(&[
        "run", "-v", &vro, "-v", &vrw, "--", "sh", "-c",
        "cat /data/in.txt; touch /data/x 2>/dev/null && echo ro-writable; echo hi > /out/o.txt; echo ws > ws.txt; touch /usr/x 2>/dev/null && echo usr-writable; ls /etc/shadow 2>/dev/null; true",
    ]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout, "data", "{o:?}");
    assert_eq!(std::fs::read_to_string(rw.join("o.txt")).unwrap(), "hi\n");
    assert_eq!(
        std::fs::read_to_string(e.work.join("ws.txt")).unwrap(),
        "ws\n"
    );
    // --read-only: the workspace too.
    let o = e.warren(&[
        "run",
        "--read-only",
        "--",
        "sh",
        "-c",
        "touch ws2 2>/dev/null || echo denied",
    ]);
    assert_eq!(o.stdout.trim(), "denied", "{o:?}");
    // --tmpfs and -w.
    let o = e.ok(&[
        "run",
        "--tmpfs",
        "/scratch",
        "-w",
        "..",
        "--",
        "sh",
        "-c",
        "touch /scratch/a && pwd",
    ]);
    assert_eq!(o.stdout.trim(), e.dir.path().to_string_lossy());
    e.assert_empty();
}

#[test]
fn detached_lifecycle_logs_exec_stop_rm_and_events() {
    need_root!();
    let e = Env::new();
    let o = e.ok(&[
        "run",
        "-d",
        "--name",
        "exp1",
        "--",
        "sh",
        "-c",
        "echo hello; echo oops >&2; trap 'echo bye; exit 7' TERM; while true; do sleep 0.1; done",
    ]);
    let id = o.stdout.trim().to_owned();
    assert_eq!(id.len(), 32, "{o:?}");
    e.wait_for(10, "hello in the logs", || {
        e.warren(&["logs", "exp1"]).stdout.contains("hello")
    });
    let ps = e.ps_json(false);
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0]["name"], "exp1");
    assert_eq!(ps[0]["status"], "running");
    assert_eq!(ps[0]["image"], serde_json::Value::Null);
    let table = e.ok(&["ps"]).stdout;
    assert!(table.contains("exp1") && table.contains("Up "), "{table}");
    let logs = e.warren(&["logs", "exp1"]);
    assert_eq!(logs.stdout, "hello\n");
    assert_eq!(logs.stderr, "oops\n");
    let t = e.ok(&["logs", "-t", "--tail", "2", &id[..6]]);
    assert!(
        t.stdout.ends_with("Z hello\n") && t.stderr.ends_with("Z oops\n"),
        "{t:?}"
    );
    // exec: hostname, env, user, workdir, exit code.
    let x = e.ok(&[
        "exec",
        "-e",
        "X=42",
        "-w",
        "/tmp",
        "exp1",
        "sh",
        "-c",
        "echo $(hostname) $X $(pwd)",
    ]);
    assert_eq!(x.stdout.trim(), "exp1 42 /tmp");
    assert_eq!(e.warren(&["exec", "exp1", "sh", "-c", "exit 9"]).code, 9);
    assert_eq!(
        e.warren(&["exec", "-u", "1000:1000", "exp1", "id", "-u"])
            .stdout
            .trim(),
        "1000"
    );
    assert_eq!(e.warren(&["exec", "exp1", "no-such-cmd"]).code, 127);
    // stop: SIGTERM runs the trap.
    e.ok(&["stop", "-t", "5", "exp1"]);
    let ps = e.ps_json(true);
    assert_eq!(ps[0]["status"], "exited", "{ps:?}");
    assert_eq!(ps[0]["exit_code"], 7);
    assert!(e.ps_json(false).is_empty());
    assert!(e.warren(&["logs", "exp1"]).stdout.contains("bye"));
    assert_eq!(e.warren(&["exec", "exp1", "true"]).code, 125);
    let ins = e.inspect("exp1");
    assert_eq!(ins["state"]["exit_code"], 7);
    assert_eq!(ins["config"]["hostname"], "exp1");
    // The monitor cleaned up the runtime state.
    e.wait_for(5, "runtime state removed", || {
        e.entries(&e.root.join("runtime"))
            .iter()
            .all(|x| x.starts_with('.'))
    });
    e.ok(&["rm", "exp1"]);
    let ev = e
        .ok(&["events", "--format", "json", "--filter", "exp1"])
        .stdout;
    let kinds: Vec<String> = ev
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(kinds, ["create", "start", "die", "stop", "rm"], "{ev}");
    assert!(ev.contains("\"exit_code\":7"));
    assert_eq!(e.warren(&["logs", "exp1"]).code, 125);
    e.assert_empty();
}

#[test]
fn detached_sandbox_survives_the_cli_and_logs_after_a_restart() {
    need_root!();
    let e = Env::new();
    let id = e
        .ok(&[
            "run",
            "-d",
            "--rm",
            "--",
            "sh",
            "-c",
            "for i in 1 2 3; do echo line$i; sleep 0.2; done; sleep 1; echo done",
        ])
        .stdout
        .trim()
        .to_owned();
    // The CLI has exited; the monitor runs on, not as our child, in its own session.
    let pid: i32 = std::fs::read_to_string(e.root.join("sandboxes").join(&id).join("monitor.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_ne!(
        fields[1].parse::<u32>().unwrap(),
        std::process::id(),
        "monitor is our child"
    );
    let session: i32 = fields[3].parse().unwrap();
    assert_ne!(
        session, pid,
        "the monitor must not be a session leader: {stat}"
    );
    assert_ne!(
        session,
        nix::unistd::getsid(None).unwrap().as_raw(),
        "monitor in our session: {stat}"
    );
    // A new CLI process follows the log until the sandbox exits.
    let f = e.ok(&["logs", "-f", &id]);
    assert_eq!(f.stdout, "line1\nline2\nline3\ndone\n");
    // --rm: gone once it exited.
    e.wait_for(10, "auto-removal", || e.ps_json(true).is_empty());
    e.assert_empty();
}

#[test]
fn limits_are_read_back() {
    need_root!();
    let e = Env::new();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "lim",
        "--memory",
        "64m",
        "--pids-limit",
        "32",
        "--cpus",
        "0.5",
        "--",
        "sleep",
        "60",
    ]);
    let ins = e.inspect("lim");
    let mem =
        cgroup_file(&ins, "memory.limit_in_bytes").or_else(|| cgroup_file(&ins, "memory.max"));
    assert_eq!(mem.as_deref(), Some("67108864"), "{ins}");
    assert_eq!(cgroup_file(&ins, "pids.max").as_deref(), Some("32"));
    let quota = cgroup_file(&ins, "cpu.cfs_quota_us").or_else(|| cgroup_file(&ins, "cpu.max"));
    assert!(
        quota.as_deref().is_some_and(|q| q.starts_with("50000")),
        "{quota:?}"
    );
    let s = e.ok(&["stats", "--no-stream", "--format", "json", "lim"]);
    let v: serde_json::Value = serde_json::from_str(&s.stdout).unwrap();
    let sb = &v["sandboxes"][0];
    assert_eq!(sb["memory_limit"], 67108864);
    assert_eq!(sb["pids_limit"], 32);
    assert!(sb["cpu_percent"].is_number() && sb["pids"] == 1, "{sb}");
    assert!(matches!(
        sb["psi"]["source"].as_str(),
        Some("cgroup" | "host" | "n/a")
    ));
    assert!(sb["net_rx"].is_number());
    let t = e.ok(&["stats", "--no-stream", "lim"]).stdout;
    assert!(t.contains("64.0MiB") && t.contains("lim"), "{t}");
    // sleep (pid 1, no handler) ignores SIGTERM: stop escalates to SIGKILL, 128+9.
    e.ok(&["stop", "-t", "1", "lim"]);
    assert_eq!(e.inspect("lim")["state"]["exit_code"], 137);
    e.ok(&["rm", "lim"]);
    e.assert_empty();
}

#[test]
fn oom_kill_is_recorded() {
    need_root!();
    let e = Env::new();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "oom",
        "--memory",
        "16m",
        "--",
        "sh",
        "-c",
        "tail /dev/zero",
    ]);
    e.wait_for(30, "the OOM kill", || e.status("oom") == "exited");
    let ins = e.inspect("oom");
    assert_eq!(ins["state"]["oom_killed"], true, "{ins}");
    assert_eq!(ins["state"]["exit_code"], 137);
    let ev = e.ok(&["events", "--filter", "oom"]).stdout;
    assert!(ev.contains("sandbox oom oom"), "{ev}");
    assert!(e.ok(&["ps", "-a"]).stdout.contains("OOM killed"));
    e.ok(&["rm", "oom"]);
    e.assert_empty();
}

#[test]
fn tty_through_a_pty_with_resize_ctrl_c_and_ctrl_d() {
    need_root!();
    if !have("tmux") {
        eprintln!("SKIPPED: tmux missing (apt-get install -y tmux)");
        return;
    }
    let e = Env::new();
    let session = format!("warren-tty-{}", std::process::id());
    let cmd = e.shell("run -t -- sh; echo EXITED-$?; sleep 30");
    assert_eq!(
        tmux(&[
            "new-session",
            "-d",
            "-s",
            &session,
            "-x",
            "100",
            "-y",
            "30",
            &cmd
        ])
        .code,
        0
    );
    let screen = || tmux(&["capture-pane", "-p", "-t", &session]).stdout;
    let send = |k: &[&str]| {
        let mut a = vec!["send-keys", "-t", session.as_str()];
        a.extend_from_slice(k);
        tmux(&a);
    };
    e.wait_for(10, "a prompt", || screen().contains('#'));
    send(&["tty; stty size", "Enter"]);
    e.wait_for(10, "the pty and its size", || {
        screen().contains("/dev/pts/0") && screen().contains("30 100")
    });
    tmux(&["resize-window", "-t", &session, "-x", "120", "-y", "35"]);
    std::thread::sleep(Duration::from_millis(300));
    send(&["clear; stty size", "Enter"]);
    e.wait_for(10, "the new size", || screen().contains("35 120"));
    send(&["sleep 100", "Enter"]);
    std::thread::sleep(Duration::from_millis(500));
    send(&["C-c"]);
    std::thread::sleep(Duration::from_millis(300));
    send(&["echo after-$?", "Enter"]);
    e.wait_for(10, "Ctrl-C to stop sleep", || {
        screen().contains("after-130")
    });
    send(&["C-d"]);
    e.wait_for(10, "Ctrl-D to end the shell", || {
        screen().contains("EXITED-")
    });
    tmux(&["kill-session", "-t", &session]);
    e.assert_empty();
}

#[test]
fn tty_with_script() {
    need_root!();
    if !have("script") {
        eprintln!("SKIPPED: script missing (apt-get install -y bsdutils)");
        return;
    }
    let e = Env::new();
    let o: common::Out = std::process::Command::new("script")
        .args([
            "-qec",
            &e.shell("run -t -- sh -c 'test -t 0 && tty; exit 5'"),
            "/dev/null",
        ])
        .output()
        .unwrap()
        .into();
    assert!(o.stdout.contains("/dev/pts/0"), "{o:?}");
    assert_eq!(o.code, 5, "{o:?}");
}

#[test]
fn bad_input_fails_clearly_and_leaves_nothing() {
    need_root!();
    let e = Env::new();
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", "--image", "no-such-image", "--", "true"],
            "image no-such-image not found in the store",
        ),
        (
            &["run", "-v", "/nonexistent-warren-dir:/x", "--", "true"],
            "invalid -v",
        ),
        (
            &["run", "-v", "/tmp", "--", "true"],
            "expected HOST:CONTAINER",
        ),
        (
            &["run", "-v", "/tmp:/x:rx", "--", "true"],
            "the mode must be ro or rw",
        ),
        (
            &["run", "--memory", "lots", "--", "true"],
            "invalid --memory",
        ),
        (
            &["run", "--memory", "-5m", "--", "true"],
            "invalid --memory",
        ),
        (&["run", "--cpus", "0", "--", "true"], "invalid --cpus"),
        (
            &["run", "--network", "bridge", "--", "true"],
            "expected none, private or host",
        ),
        (&["run", "--user", "bob", "--", "true"], "invalid --user"),
        (&["run", "--name", "bad/name", "--", "true"], "invalid name"),
        (
            &["run", "--cap-add", "CAP_FLY", "--", "true"],
            "not a known capability",
        ),
        (
            &["run", "--profile", "no-such-profile", "--", "true"],
            "profile",
        ),
        (
            &["run", "--gpus", "all", "--", "true"],
            "no NVIDIA GPUs found: ",
        ),
        (
            &["run", "--device", "vendor.com/x=y", "--", "true"],
            "vendor.com/x=y",
        ),
        (
            &["run", "--device", "not-a-cdi-name", "--", "true"],
            "expected a CDI name",
        ),
        (&["run"], "nothing to run"),
        (
            &["stop", "no-such-sandbox"],
            "no such sandbox: no-such-sandbox",
        ),
        (
            &["rm", "no-such-sandbox"],
            "no such sandbox: no-such-sandbox",
        ),
        (&["rm", "-f", "no-such-sandbox"], "no such sandbox"),
        (&["logs", "no-such-sandbox"], "no such sandbox"),
        (&["exec", "no-such-sandbox", "true"], "no such sandbox"),
        (&["inspect", "no-such-sandbox"], "no such sandbox"),
        (&["ps", "--format", "xml"], "invalid --format"),
        (&["--log-level", "loud", "ps"], "invalid --log-level"),
    ];
    for (args, msg) in cases {
        let o = e.warren(args);
        if args.contains(&"--gpus") && o.code == 0 {
            continue; // a machine with GPUs
        }
        assert_ne!(o.code, 0, "{args:?}: {o:?}");
        assert!(o.stderr.contains(msg), "{args:?}: want {msg:?}: {o:?}");
        e.assert_empty();
    }
    // A name conflict leaves the first sandbox alone and nothing of the second.
    e.ok(&["run", "-d", "--name", "dup", "--", "sleep", "30"]);
    let o = e.warren(&["run", "-d", "--name", "dup", "--", "sleep", "30"]);
    assert_eq!(o.code, 125, "{o:?}");
    assert!(
        o.stderr.contains("the name \"dup\" is already in use"),
        "{o:?}"
    );
    assert_eq!(e.ps_json(true).len(), 1);
    assert_eq!(e.entries(&e.data.join("sandboxes")).len(), 1);
    let o = e.warren(&["rm", "dup"]);
    assert_eq!(o.code, 125);
    assert!(o.stderr.contains("is running"), "{o:?}");
    e.ok(&["rm", "-f", "dup"]);
    e.assert_empty();
}

#[test]
fn scripts_run_by_extension_with_a_fallback_to_the_host_view() {
    need_root!();
    let e = Env::new();
    std::fs::write(e.work.join("hello.sh"), "echo sh-says $1\n").unwrap();
    let o = e.ok(&["run", "hello.sh", "hi"]);
    assert_eq!(o.stdout, "sh-says hi\n");
    assert!(o.stderr.contains("is not built; running"), "{o:?}");
    if have("python3") {
        std::fs::write(
            e.work.join("x.py"),
            "import sys; print('py', sys.argv[1:])\n",
        )
        .unwrap();
        assert_eq!(e.ok(&["run", "x.py", "a"]).stdout, "py ['a']\n");
    }
    if have("gcc") {
        std::fs::write(
            e.work.join("m.cc"),
            "#include <cstdio>\nint main(int c, char**v){std::printf(\"cc %d\\n\", c);}\n",
        )
        .unwrap();
        if have("g++") {
            assert_eq!(e.ok(&["run", "m.cc", "x", "y"]).stdout, "cc 3\n");
        }
    }
    if !have("julia") {
        std::fs::write(e.work.join("j.jl"), "println(1)\n").unwrap();
        let o = e.warren(&["run", "j.jl"]);
        assert_eq!(o.code, 127, "{o:?}");
        assert!(
            o.stderr
                .contains("warren/julia is not built and the host has no julia"),
            "{o:?}"
        );
    }
    e.assert_empty();
}

#[test]
fn agent_profile_confines_the_sandbox() {
    need_root!();
    let e = Env::new();
    let o = e.warren(&[
        "run", "--profile", "agent", "--", "sh", "-c",
        "pwd; echo ok > w.txt && cat w.txt; unshare -U true 2>/dev/null && echo unshared; touch /etc/x 2>/dev/null && echo etc; true",
    ]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout, "/workspace\nok\n", "{o:?}");
    assert!(e.work.join("w.txt").exists());
    e.ok(&[
        "run",
        "-d",
        "--name",
        "ag",
        "--profile",
        "agent",
        "--",
        "sleep",
        "30",
    ]);
    assert_eq!(e.ps_json(false)[0]["profile"], "agent");
    let ins = e.inspect("ag");
    assert_eq!(ins["profile"]["name"], "agent", "{ins}");
    assert_eq!(ins["config"]["annotations"]["run.warren.profile"], "agent");
    // exec is confined too.
    let x = e.warren(&[
        "exec",
        "ag",
        "sh",
        "-c",
        "unshare -U true 2>/dev/null && echo unshared; echo done",
    ]);
    assert_eq!(x.stdout, "done\n", "{x:?}");
    e.ok(&["rm", "-f", "ag"]);
    e.assert_empty();
}

#[test]
fn fifty_concurrent_detached_sandboxes() {
    need_root!();
    let e = Env::new();
    let handles: Vec<_> = (0..50)
        .map(|i| {
            let mut c = e.cmd(&[
                "run",
                "-d",
                "--name",
                &format!("c{i}"),
                "--",
                "sleep",
                "120",
            ]);
            std::thread::spawn(move || common::Out::from(c.output().unwrap()))
        })
        .collect();
    let outs: Vec<common::Out> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for o in &outs {
        assert_eq!(o.code, 0, "{o:?}");
    }
    let ps = e.ps_json(false);
    assert_eq!(ps.len(), 50);
    assert!(ps.iter().all(|s| s["status"] == "running"));
    let mut names: Vec<String> = ps
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 50);
    let cgroups: Vec<String> = (0..50)
        .flat_map(|i| {
            e.inspect(&format!("c{i}"))["state"]["runtime"]["cgroups"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let monitors: Vec<i32> = e
        .entries(&e.root.join("sandboxes"))
        .iter()
        .map(|id| {
            std::fs::read_to_string(e.root.join("sandboxes").join(id).join("monitor.pid"))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(monitors.len(), 50);
    let ids: Vec<String> = e
        .ok(&["ps", "-q"])
        .stdout
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let mut args = vec!["rm", "-f"];
    args.extend(ids.iter().map(String::as_str));
    e.ok(&args);
    assert!(e.ps_json(true).is_empty());
    e.assert_empty();
    for c in &cgroups {
        assert!(!std::path::Path::new(c).exists(), "cgroup left: {c}");
    }
    // Monitors exit once their sandbox is gone.
    e.wait_for(15, "monitors to exit", || {
        monitors
            .iter()
            .all(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
    });
}

#[test]
fn top_dashboard_in_tmux() {
    need_root!();
    if !have("tmux") {
        eprintln!("SKIPPED: tmux missing (apt-get install -y tmux)");
        return;
    }
    let e = Env::new();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "exp-busy",
        "--",
        "sh",
        "-c",
        "echo from-busy; while :; do :; done",
    ]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "alpha",
        "--memory",
        "256m",
        "--",
        "sh",
        "-c",
        "echo from-alpha; sleep 600",
    ]);
    let session = format!("warren-top-{}", std::process::id());
    let cmd = e.shell("top --interval 300");
    assert_eq!(
        tmux(&[
            "new-session",
            "-d",
            "-s",
            &session,
            "-x",
            "160",
            "-y",
            "40",
            &cmd
        ])
        .code,
        0
    );
    let screen = || tmux(&["capture-pane", "-p", "-t", &session]).stdout;
    let send = |k: &str| {
        tmux(&["send-keys", "-t", &session, k]);
        std::thread::sleep(Duration::from_millis(400));
    };
    e.wait_for(10, "both rows", || {
        let s = screen();
        s.contains("exp-busy") && s.contains("alpha") && s.contains("Up ")
    });
    e.wait_for(10, "a CPU reading", || screen().contains('%'));
    let s = screen();
    assert!(
        s.contains("warren top") && s.contains("CPU HISTORY") && s.contains("MEM HISTORY"),
        "{s}"
    );
    assert!(s.contains("GPU: n/a") || s.contains("GPU: NVML"), "{s}");
    assert!(s.contains("256.0MiB"), "{s}");
    // Sort by name: alpha first.
    send("n");
    let s = screen();
    let (a, b) = (s.find("alpha").unwrap(), s.find("exp-busy").unwrap());
    assert!(a < b, "{s}");
    // Keep the screen for the report.
    if let Ok(mut f) = std::fs::File::create(std::env::temp_dir().join("warren-top-screen.txt")) {
        let _ = f.write_all(s.as_bytes());
    }
    // Filter.
    send("/");
    for k in ["e", "x", "p"] {
        send(k);
    }
    send("Enter");
    let s = screen();
    assert!(s.contains("filter: exp") && s.contains("exp-busy"), "{s}");
    assert!(!s.lines().any(|l| l.contains("alpha ")), "{s}");
    // Logs of the selected (only) row.
    send("l");
    e.wait_for(5, "the log view", || screen().contains("from-busy"));
    send("Escape");
    e.wait_for(5, "the table again", || screen().contains("CPU HISTORY"));
    // Stop it.
    send("s");
    e.wait_for(20, "the stop", || e.status("exp-busy") == "exited");
    send("q");
    e.wait_for(5, "top to quit", || {
        tmux(&["has-session", "-t", &session]).code != 0
    });
    e.ok(&["rm", "-f", "alpha", "exp-busy"]);
    e.assert_empty();
}

/// A one-layer busybox image in the store of `e` (as `podman import` makes).
fn import_busybox(e: &Env, name: &str) -> bool {
    if !std::path::Path::new("/usr/bin/busybox").exists() {
        eprintln!("SKIPPED: busybox missing (apt-get install -y busybox-static)");
        return false;
    }
    let rootfs = e.dir.path().join("bb-rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/usr/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for l in ["sh", "echo", "cat", "touch", "id", "sleep"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(l)).unwrap();
    }
    for d in ["etc", "tmp", "proc", "sys", "dev"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    let tar = e.dir.path().join("bb.tar");
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let store = warren_images::Store::open(&e.data).unwrap();
    store.import_rootfs(&tar, name).unwrap();
    true
}

#[test]
fn image_rootfs_is_an_overlay_removed_with_the_sandbox() {
    need_root!();
    let e = Env::new();
    if !import_busybox(&e, "bb:latest") {
        return;
    }
    let o = e.ok(&[
        "run",
        "--image",
        "bb",
        "--",
        "sh",
        "-c",
        "echo in-image > /etc/x && cat /etc/x; ls /usr 2>&1; true",
    ]);
    // The image's root, writable, without the host's /usr.
    assert!(
        o.stdout.starts_with("in-image\n") && o.stdout.contains("No such file"),
        "{o:?}"
    );
    // --read-only: the image root cannot be written.
    let o = e.warren(&[
        "run",
        "--image",
        "bb",
        "--read-only",
        "--",
        "sh",
        "-c",
        "touch /etc/y || echo ro",
    ]);
    assert!(o.stdout.contains("ro"), "{o:?}");
    e.ok(&[
        "run", "-d", "--name", "img", "--image", "bb", "--", "sleep", "30",
    ]);
    let ps = e.ps_json(false);
    assert_eq!(ps[0]["image"], "bb");
    assert!(e.ok(&["ps"]).stdout.contains(" bb "));
    e.ok(&["rm", "-f", "img"]);
    let left = e.entries(&e.data.join("containers"));
    assert!(left.is_empty(), "image rootfs left: {left:?}");
    e.assert_empty();
}
