//! The command line engines parse: JSON shapes of `state`, `list`, `features`, `events`,
//! `ps` and `spec` match runc's, errors exit 1 and are logged as runc logs them, and the
//! lifecycle verbs (create/start/pause/resume/exec/update/kill --all) do what they say.
//!
//! Each behavioural check runs against runc first and then warren: a failure tagged
//! `[runc]` is a bug in the test (or the host), one tagged `[warren]` a runtime bug.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warren_e2e::{
    Bundle, HarnessError, LeakCheck, Result, Runtime, cgroup, ensure, unique_id, wait_until,
};

/// Runs `f` for runc, then for warren; fails with every runtime's error.
fn on_both(f: impl Fn(&Runtime) -> Result<()>) {
    let mut errs = Vec::new();
    let runc = Runtime::runc().expect("runc runtime");
    let warren = Runtime::warren().expect("warren runtime");
    for rt in [runc, warren] {
        if let Err(e) = f(&rt) {
            errs.push(format!("[{}] {e}", rt.name()));
        }
        if let Err(e) = LeakCheck::new().state_root(rt.root()).assert_clean() {
            errs.push(format!("[{}] {e}", rt.name()));
        }
    }
    assert!(errs.is_empty(), "{}", errs.join("\n\n"));
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `path: type` for every object-valued or top-level field, recursively: the structure
/// of a JSON document without its leaf values (runc omits zero-valued leaves).
fn structure(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Value::Object(m) = v {
        for (k, x) in m {
            let p = format!("{prefix}{k}");
            if prefix.is_empty() || x.is_object() {
                out.insert(format!("{p}: {}", type_of(x)));
            }
            structure(x, &format!("{p}."), out);
        }
    }
}

/// Same bundle, same container, under runc and warren: the two JSON documents `get`
/// returns for each.
fn both_json(args: &[&str], get: impl Fn(&Runtime, &str) -> Result<Value>) -> (Value, Value) {
    let runc = Runtime::runc().expect("runc runtime");
    let warren = Runtime::warren().expect("warren runtime");
    let edit = |b: &mut Bundle| {
        b.config["annotations"] = json!({"e2e.warren/shape": "yes"});
        Ok(())
    };
    let r = runc
        .start_container("shape", args, edit)
        .expect("runc container");
    let w = warren
        .start_container("shape", args, edit)
        .expect("warren container");
    let rv = get(&runc, &r.id).expect("runc JSON");
    let wv = get(&warren, &w.id).expect("warren JSON");
    (rv, wv)
}

#[test]
fn state_json_has_runc_keys_and_types() {
    let (r, w) = both_json(&["sleep", "30"], |rt, id| rt.state(id));
    let mut rs = BTreeSet::new();
    let mut ws = BTreeSet::new();
    structure(&r, "", &mut rs);
    structure(&w, "", &mut ws);
    assert_eq!(rs, ws, "state structure differs\nrunc:   {r}\nwarren: {w}");
    for k in [
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
        "owner",
        "annotations",
    ] {
        assert!(w.get(k).is_some(), "warren state lacks {k}: {w}");
    }
    assert_eq!(w["status"], "running", "{w}");
    assert_eq!(w["annotations"]["e2e.warren/shape"], "yes", "{w}");
    assert_eq!(r["owner"], w["owner"], "owner differs: runc {r} warren {w}");
}

#[test]
fn list_json_matches_runc_shape() {
    let (r, w) = both_json(&["sleep", "30"], |rt, _| {
        rt.cmd(["list", "--format", "json"])
            .output()?
            .check()?
            .json()
    });
    let (Some(ra), Some(wa)) = (r.as_array(), w.as_array()) else {
        panic!("list --format json is not an array: runc {r} warren {w}");
    };
    assert_eq!((ra.len(), wa.len()), (1, 1), "runc {r}\nwarren {w}");
    let mut rs = BTreeSet::new();
    let mut ws = BTreeSet::new();
    structure(&ra[0], "", &mut rs);
    structure(&wa[0], "", &mut ws);
    assert_eq!(
        rs, ws,
        "list entry structure differs\nrunc:   {r}\nwarren: {w}"
    );
    // runc's list fills `owner` with the user name (state leaves it empty).
    assert_eq!(
        ra[0]["owner"], wa[0]["owner"],
        "list owner differs\nrunc:   {r}\nwarren: {w}"
    );
}

#[test]
fn list_json_with_no_containers_prints_what_runc_prints() {
    let runc = Runtime::runc().unwrap();
    let warren = Runtime::warren().unwrap();
    let r = runc.cmd(["list", "--format", "json"]).output().unwrap();
    let w = warren.cmd(["list", "--format", "json"]).output().unwrap();
    assert!(r.success() && w.success(), "{r}\n{w}");
    assert_eq!(
        r.stdout.trim(),
        w.stdout.trim(),
        "empty `list --format json`: runc prints {:?}, warren {:?}",
        r.stdout.trim(),
        w.stdout.trim()
    );
}

#[test]
fn features_has_runc_top_level_keys() {
    let r = Runtime::runc()
        .unwrap()
        .cmd(["features"])
        .output()
        .unwrap()
        .check()
        .unwrap()
        .json()
        .unwrap();
    let w = Runtime::warren()
        .unwrap()
        .cmd(["features"])
        .output()
        .unwrap()
        .check()
        .unwrap()
        .json()
        .unwrap();
    let missing: Vec<_> = keys(&r).difference(&keys(&w)).cloned().collect();
    assert!(missing.is_empty(), "warren features lacks {missing:?}: {w}");
    let missing: Vec<_> = keys(&r["linux"])
        .difference(&keys(&w["linux"]))
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "warren features.linux lacks {missing:?}: {w}"
    );
    for k in ["ociVersionMin", "ociVersionMax"] {
        assert!(
            w[k].as_str().is_some_and(|v| v.starts_with("1.")),
            "{k}: {w}"
        );
    }
    let hooks: BTreeSet<_> = w["hooks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for h in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        assert!(hooks.contains(h), "features.hooks lacks {h}: {w}");
    }
}

#[test]
fn events_stats_matches_runc_shape() {
    let (r, w) = both_json(&["sleep", "30"], |rt, id| {
        rt.cmd(["events", "--stats", id]).output()?.check()?.json()
    });
    assert_eq!(
        keys(&w),
        ["data", "id", "type"].map(String::from).into(),
        "{w}"
    );
    assert_eq!(w["type"], "stats");
    assert_eq!(
        keys(&r["data"]),
        keys(&w["data"]),
        "data keys\nrunc {r}\nwarren {w}"
    );
    let mut rs = BTreeSet::new();
    let mut ws = BTreeSet::new();
    structure(&r["data"], "", &mut rs);
    structure(&w["data"], "", &mut ws);
    let missing: Vec<_> = rs.difference(&ws).collect();
    assert!(
        missing.is_empty(),
        "warren stats lack {missing:?}\nrunc {r}\nwarren {w}"
    );
    for k in ["cpu", "memory", "pids", "blkio", "hugetlb"] {
        assert!(w["data"][k].is_object(), "data.{k}: {w}");
    }
    assert!(
        w["data"]["pids"]["current"]
            .as_u64()
            .is_some_and(|n| n >= 1),
        "{w}"
    );
}

#[test]
fn ps_json_is_an_array_of_host_pids() {
    on_both(|rt| {
        let c = rt.start_container(
            "ps",
            &["sh", "-c", "sleep 30 & sleep 30 & wait"],
            |_| Ok(()),
        )?;
        let pid = c.pid()?;
        let mut v = Value::Null;
        let ok = wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
            v = rt
                .cmd(["ps", "--format", "json", &c.id])
                .output()
                .ok()
                .and_then(|o| o.json().ok())
                .unwrap_or(Value::Null);
            v.as_array().is_some_and(|a| a.len() == 3)
        });
        ensure!(ok, "ps --format json never listed 3 processes: {v}");
        let pids: Vec<i64> = v
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_i64)
            .collect();
        ensure!(pids.len() == 3, "not all ints: {v}");
        ensure!(pids.contains(&pid), "init {pid} not in {v}");
        for p in &pids {
            ensure!(
                Path::new(&format!("/proc/{p}")).exists(),
                "{p} is not a host pid"
            );
        }
        Ok(())
    });
}

#[test]
fn spec_writes_a_config_that_runs() {
    let runc_spec = Bundle::new().unwrap();
    on_both(|rt| {
        let dir = tempfile::tempdir().map_err(|e| HarnessError::Other(e.to_string()))?;
        rt.cmd(["spec"]).current_dir(dir.path()).output()?.check()?;
        let text = std::fs::read_to_string(dir.path().join("config.json"))
            .map_err(|e| HarnessError::Other(format!("spec wrote no config.json: {e}")))?;
        let mut cfg: Value =
            serde_json::from_str(&text).map_err(|e| HarnessError::Other(e.to_string()))?;
        ensure!(
            keys(&cfg) == keys(&runc_spec.config),
            "spec keys {:?} vs runc's {:?}",
            keys(&cfg),
            keys(&runc_spec.config)
        );
        ensure!(
            cfg["root"]["path"] == "rootfs",
            "root.path: {}",
            cfg["root"]
        );
        warren_e2e::bundle::make_rootfs(&dir.path().join("rootfs"))?;
        cfg["process"]["terminal"] = json!(false);
        cfg["process"]["args"] = json!(["sh", "-c", "echo spec-ok"]);
        std::fs::write(dir.path().join("config.json"), cfg.to_string())
            .map_err(|e| HarnessError::Other(e.to_string()))?;
        let id = unique_id("spec");
        let _g = rt.guard(&id);
        let out = rt.run(dir.path(), &id, Duration::from_secs(20))?;
        ensure!(out.stdout == "spec-ok\n" && out.success(), "{out}");
        // A second `spec` refuses to overwrite.
        let again = rt.cmd(["spec"]).current_dir(dir.path()).output()?;
        ensure!(!again.success(), "spec overwrote config.json: {again}");
        Ok(())
    });
}

#[test]
fn log_format_json_writes_error_lines() {
    on_both(|rt| {
        let dir = tempfile::tempdir().map_err(|e| HarnessError::Other(e.to_string()))?;
        let log = dir.path().join("log.json");
        let id = unique_id("nolog");
        let out = rt
            .cmd(["--log-format", "json", "--log"])
            .arg(&log)
            .args(["start", &id])
            .output()?;
        ensure!(
            out.code == Some(1),
            "exit {} (want 1): {out}",
            out.exit_code()
        );
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let errors: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["level"] == "error")
            .collect();
        ensure!(
            text.lines()
                .all(|l| serde_json::from_str::<Value>(l).is_ok()),
            "log has non-JSON lines:\n{text}"
        );
        ensure!(
            errors
                .iter()
                .any(|e| e["msg"].as_str().is_some_and(|m| !m.is_empty())),
            "no {{\"level\":\"error\",\"msg\":…}} line in the log:\n{text}"
        );
        Ok(())
    });
}

/// Exit status of each verb on a container that does not exist: 1 like runc, except
/// where runc itself uses another status (runc `exec` exits 255 on its own errors, so a
/// caller can tell them from the process's exit status).
#[test]
fn errors_exit_with_runc_status() {
    let runc = Runtime::runc().unwrap();
    let warren = Runtime::warren().unwrap();
    let id = unique_id("absent");
    let mut diffs = Vec::new();
    for args in [
        vec!["state", &id],
        vec!["start", &id],
        vec!["kill", &id, "KILL"],
        vec!["delete", &id],
        vec!["pause", &id],
        vec!["resume", &id],
        vec!["ps", &id],
        vec!["events", "--stats", &id],
        vec!["update", "--memory", "100m", &id],
        vec!["exec", &id, "true"],
    ] {
        let r = runc.cmd(&args).output().unwrap();
        let w = warren.cmd(&args).output().unwrap();
        assert!(!r.success(), "runc succeeded: {r}");
        if r.exit_code() != w.exit_code() {
            diffs.push(format!(
                "{args:?}: runc exits {}, warren {}\n{w}",
                r.exit_code(),
                w.exit_code()
            ));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

#[test]
fn create_start_state_go_created_running_stopped() {
    on_both(|rt| {
        let mut b = Bundle::new()?;
        let dir = b.path().join("e2e");
        std::fs::create_dir(&dir).map_err(|e| HarnessError::Other(e.to_string()))?;
        b.add_mount(json!({"destination": "/e2e", "type": "bind", "source": dir, "options": ["rbind", "rw"]}));
        b.set_sh("touch /e2e/started; sleep 0.5");
        b.save()?;
        let id = unique_id("life");
        let _g = rt.guard(&id);
        rt.create(b.path(), &id)?.check()?;
        let st = rt.state(&id)?;
        ensure!(st["status"] == "created", "after create: {st}");
        let pid = st["pid"].as_i64().unwrap_or(0);
        ensure!(
            pid > 0 && Path::new(&format!("/proc/{pid}")).exists(),
            "pid: {st}"
        );
        std::thread::sleep(Duration::from_millis(200));
        ensure!(
            !dir.join("started").exists(),
            "the process ran before start"
        );
        rt.start(&id)?.check()?;
        let st = rt.state(&id)?;
        ensure!(st["status"] == "running", "after start: {st}");
        ensure!(
            wait_until(Duration::from_secs(5), Duration::from_millis(10), || dir
                .join("started")
                .exists()),
            "the process did not run after start"
        );
        rt.wait_status(&id, "stopped", Duration::from_secs(10))?;
        rt.delete(&id)?.check()?;
        ensure!(rt.status(&id)?.is_none(), "state still works after delete");
        LeakCheck::new()
            .id(&id)
            .path(b.path())
            .state_root(rt.root())
            .assert_clean()
    });
}

/// Reads the tick counter a container writes every 50 ms.
fn tick(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join("tick"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn pause_freezes_and_resume_thaws() {
    on_both(|rt| {
        let c = rt.start_container(
            "pause",
            &[
                "sh",
                "-c",
                "i=0; while :; do i=$((i+1)); echo $i > /e2e/tick; sleep 0.05; done",
            ],
            |b| {
                let dir = b.path().join("e2e");
                std::fs::create_dir(&dir).map_err(|e| HarnessError::Other(e.to_string()))?;
                b.add_mount(json!({"destination": "/e2e", "type": "bind", "source": dir, "options": ["rbind", "rw"]}));
                Ok(())
            },
        )?;
        let dir = c.bundle.path().join("e2e");
        let pid = c.pid()?;
        ensure!(
            wait_until(Duration::from_secs(5), Duration::from_millis(20), || tick(
                &dir
            ) > 2),
            "the container never ticked"
        );
        rt.cmd(["pause", &c.id]).output()?.check()?;
        let st = rt.state(&c.id)?;
        ensure!(st["status"] == "paused", "after pause: {st}");
        let freezer = cgroup::read(pid, "freezer", "freezer.state");
        ensure!(
            freezer.as_deref() == Some("FROZEN"),
            "freezer.state {freezer:?}"
        );
        let t0 = tick(&dir);
        std::thread::sleep(Duration::from_millis(400));
        ensure!(tick(&dir) == t0, "ticks went on while paused");
        rt.cmd(["resume", &c.id]).output()?.check()?;
        let st = rt.state(&c.id)?;
        ensure!(st["status"] == "running", "after resume: {st}");
        let freezer = cgroup::read(pid, "freezer", "freezer.state");
        ensure!(
            freezer.as_deref() == Some("THAWED"),
            "freezer.state {freezer:?}"
        );
        ensure!(
            wait_until(Duration::from_secs(5), Duration::from_millis(20), || tick(
                &dir
            ) > t0),
            "no ticks after resume"
        );
        Ok(())
    });
}

#[test]
fn exec_output_and_exit_code() {
    on_both(|rt| {
        let c = rt.start_container("exec", &["sleep", "30"], |_| Ok(()))?;
        let out = rt
            .cmd(["exec", &c.id, "sh", "-c", "echo out; echo err >&2; exit 5"])
            .output()?;
        ensure!(out.exit_code() == 5, "exit {}: {out}", out.exit_code());
        ensure!(out.stdout == "out\n", "stdout {:?}", out.stdout);
        ensure!(out.stderr.contains("err"), "stderr {:?}", out.stderr);
        let out = rt
            .cmd(["exec", &c.id, "sh", "-c", "kill -KILL $$"])
            .output()?;
        ensure!(
            out.exit_code() == 137,
            "killed exec: exit {}: {out}",
            out.exit_code()
        );
        Ok(())
    });
}

#[test]
fn exec_cwd_env_user() {
    // The same exec under both runtimes must print the same; `id` also shows which
    // supplementary groups the runtime set for a numeric user.
    let outs: Vec<(String, String)> = [
        Runtime::runc().expect("runc runtime"),
        Runtime::warren().expect("warren runtime"),
    ]
    .iter()
    .map(|rt| {
        let c = rt
            .start_container("exec", &["sleep", "30"], |_| Ok(()))
            .expect("container");
        let out = rt
            .cmd([
                "exec",
                "--cwd",
                "/etc",
                "--env",
                "FOO=bar baz",
                "--user",
                "1000:2000",
                &c.id,
                "sh",
                "-c",
                "pwd; echo \"$FOO\"; id",
            ])
            .output()
            .expect("exec");
        assert!(out.success(), "[{}] {out}", rt.name());
        (rt.name().to_owned(), out.stdout)
    })
    .collect();
    assert!(
        outs[0]
            .1
            .starts_with("/etc\nbar baz\nuid=1000(u1000) gid=2000(g2000)"),
        "runc: {:?}",
        outs[0].1
    );
    assert_eq!(outs[0].1, outs[1].1, "runc vs warren exec output");
}

#[test]
fn exec_process_file() {
    on_both(|rt| {
        let c = rt.start_container("exec", &["sleep", "30"], |_| Ok(()))?;
        let process = json!({
            "terminal": false,
            "user": {"uid": 1000, "gid": 1000, "additionalGids": [2000]},
            "args": ["sh", "-c", "id; pwd; echo $P; cat /proc/self/oom_score_adj"],
            "env": ["P=from-file", "PATH=/bin"],
            "cwd": "/tmp",
            "noNewPrivileges": true
        });
        let f = c.bundle.path().join("process.json");
        std::fs::write(&f, process.to_string()).map_err(|e| HarnessError::Other(e.to_string()))?;
        let out = rt
            .cmd(["exec", "--process"])
            .arg(&f)
            .arg(&c.id)
            .output()?
            .check()?;
        ensure!(
            out.stdout.starts_with(
                "uid=1000(u1000) gid=1000(u1000) groups=2000(g2000)\n/tmp\nfrom-file\n"
            ),
            "stdout {:?}",
            out.stdout
        );
        Ok(())
    });
}

#[test]
fn exec_detach_writes_pid_file() {
    on_both(|rt| {
        let c = rt.start_container("exec", &["sleep", "30"], |_| Ok(()))?;
        let pf = c.bundle.path().join("exec.pid");
        let t = Instant::now();
        rt.cmd(["exec", "--detach", "--pid-file"])
            .arg(&pf)
            .args([&c.id, "sleep", "30"])
            .output()?
            .check()?;
        ensure!(
            t.elapsed() < Duration::from_secs(5),
            "exec --detach waited {:?}",
            t.elapsed()
        );
        let pid: i64 = std::fs::read_to_string(&pf)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| HarnessError::Other(format!("no pid in {}", pf.display())))?;
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        ensure!(
            cg.contains(&c.id),
            "exec'd pid {pid} not in the container's cgroup:\n{cg}"
        );
        let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        ensure!(cmd.starts_with("sleep\0"), "pid {pid} runs {cmd:?}");
        let ps = rt.cmd(["ps", "--format", "json", &c.id]).output()?.json()?;
        ensure!(
            ps.as_array().is_some_and(|a| a.contains(&json!(pid))),
            "ps does not list {pid}: {ps}"
        );
        Ok(())
    });
}

#[test]
fn update_memory_and_resources_from_stdin() {
    on_both(|rt| {
        let c = rt.start_container("update", &["sleep", "30"], |_| Ok(()))?;
        let pid = c.pid()?;
        rt.cmd(["update", "--memory", "100m", &c.id])
            .output()?
            .check()?;
        let v = cgroup::read(pid, "memory", "memory.limit_in_bytes");
        ensure!(
            v.as_deref() == Some("104857600"),
            "memory.limit_in_bytes {v:?}"
        );
        rt.cmd(["update", "--resources", "-", &c.id])
            .stdin(r#"{"pids": {"limit": 50}, "cpu": {"shares": 256}}"#)
            .output()?
            .check()?;
        let pids = cgroup::read(pid, "pids", "pids.max");
        let shares = cgroup::read(pid, "cpu", "cpu.shares");
        ensure!(pids.as_deref() == Some("50"), "pids.max {pids:?}");
        ensure!(shares.as_deref() == Some("256"), "cpu.shares {shares:?}");
        let v = cgroup::read(pid, "memory", "memory.limit_in_bytes");
        ensure!(
            v.as_deref() == Some("104857600"),
            "memory limit lost: {v:?}"
        );
        Ok(())
    });
}

#[test]
fn kill_all_signals_every_process() {
    on_both(|rt| {
        let c = rt.start_container(
            "killall",
            &["sh", "-c", "sleep 100 & sleep 100 & wait"],
            |_| Ok(()),
        )?;
        let mut pids = Vec::new();
        let ok = wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
            pids = rt
                .cmd(["ps", "--format", "json", &c.id])
                .output()
                .ok()
                .and_then(|o| o.json().ok())
                .and_then(|v| v.as_array().cloned())
                .unwrap_or_default();
            pids.len() == 3
        });
        ensure!(ok, "expected 3 processes, ps says {pids:?}");
        rt.cmd(["kill", "--all", &c.id, "KILL"]).output()?.check()?;
        rt.wait_status(&c.id, "stopped", Duration::from_secs(10))?;
        for p in &pids {
            let gone = wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
                !Path::new(&format!("/proc/{p}")).exists()
            });
            ensure!(gone, "process {p} survived kill --all");
        }
        Ok(())
    });
}
