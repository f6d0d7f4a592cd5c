//! Bad input: each mistake gets a non-zero exit and an error that names the problem (the
//! field, the line, the path, the id, the signal), and afterwards nothing is left — no
//! state directory, cgroup, mount or process — while containers that were fine before
//! stay fine.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use warren_e2e::{Bundle, LeakCheck, Output, Runtime, unique_id};

fn warren() -> Runtime {
    Runtime::warren().expect("warren runtime")
}

fn clean(rt: &Runtime, id: &str, bundle: &Path) {
    LeakCheck::new()
        .id(id)
        .path(bundle)
        .state_root(rt.root())
        .assert_clean()
        .unwrap_or_else(|e| panic!("after {id}: {e}"));
}

/// Asserts a failure whose stderr mentions every one of `words`.
fn fails_naming(out: &Output, words: &[&str]) {
    assert!(!out.success(), "expected a failure: {out}");
    assert_eq!(out.code, Some(1), "runtime errors exit 1: {out}");
    for w in words {
        assert!(
            out.stderr.contains(w),
            "error does not mention {w:?}: {out}"
        );
    }
}

#[test]
fn wrong_field_type_names_the_field_path() {
    let rt = warren();
    let mut b = Bundle::new().unwrap();
    b.config["process"]["user"]["uid"] = json!("root");
    b.save().unwrap();
    let id = unique_id("badtype");
    let _g = rt.guard(&id);
    let out = rt.create(b.path(), &id).unwrap();
    fails_naming(&out, &["process.user.uid", "config.json"]);
    clean(&rt, &id, b.path());
}

#[test]
fn wrong_nested_type_names_the_field_path() {
    let rt = warren();
    let mut b = Bundle::new().unwrap();
    b.config["linux"]["resources"]["memory"] = json!({"limit": "lots"});
    b.save().unwrap();
    let id = unique_id("badtype");
    let _g = rt.guard(&id);
    let out = rt.create(b.path(), &id).unwrap();
    fails_naming(&out, &["linux.resources.memory.limit"]);
    clean(&rt, &id, b.path());
}

#[test]
fn json_syntax_error_gives_the_line() {
    let rt = warren();
    let b = Bundle::new().unwrap();
    // A stray token at the start of line 4 of an otherwise valid config.
    let pretty = serde_json::to_string_pretty(&b.config).unwrap();
    let mut lines: Vec<String> = pretty.lines().map(str::to_owned).collect();
    lines[3].insert_str(0, "@@ ");
    std::fs::write(b.config_path(), lines.join("\n")).unwrap();
    let id = unique_id("syntax");
    let _g = rt.guard(&id);
    let out = rt.create(b.path(), &id).unwrap();
    fails_naming(&out, &["line 4"]);
    clean(&rt, &id, b.path());
}

#[test]
fn missing_bundle_is_named() {
    let rt = warren();
    let gone = std::env::temp_dir().join(format!("warren-e2e-no-bundle-{}", unique_id("nb")));
    let id = unique_id("nobundle");
    let _g = rt.guard(&id);
    let out = rt.create(&gone, &id).unwrap();
    fails_naming(&out, &[&gone.display().to_string()]);
    clean(&rt, &id, &gone);
}

#[test]
fn missing_rootfs_is_named() {
    let rt = warren();
    let b = Bundle::new().unwrap();
    std::fs::remove_dir_all(b.rootfs()).unwrap();
    let id = unique_id("norootfs");
    let _g = rt.guard(&id);
    let out = rt.create(b.path(), &id).unwrap();
    fails_naming(&out, &["rootfs"]);
    clean(&rt, &id, b.path());
}

#[test]
fn duplicate_id_is_refused_and_the_first_container_survives() {
    let rt = warren();
    let mut b = Bundle::new().unwrap();
    b.set_args(&["sleep", "30"]);
    b.save().unwrap();
    let id = unique_id("dup");
    let g = rt.guard(&id);
    rt.create(b.path(), &id).unwrap().check().unwrap();
    let pid = rt.state(&id).unwrap()["pid"].as_i64().unwrap();
    let out = rt.create(b.path(), &id).unwrap();
    fails_naming(&out, &[&id, "already exists"]);
    let st = rt.state(&id).unwrap();
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["pid"].as_i64(), Some(pid), "{st}");
    rt.start(&id).unwrap().check().unwrap();
    assert_eq!(rt.status(&id).unwrap().as_deref(), Some("running"));
    rt.delete_force(&id).unwrap().check().unwrap();
    drop(g);
    clean(&rt, &id, b.path());
}

#[test]
fn path_like_and_empty_ids_are_refused() {
    let rt = warren();
    let mut b = Bundle::new().unwrap();
    b.set_args(&["true"]);
    b.save().unwrap();
    let parent = rt.root().parent().unwrap().to_owned();
    let escape = format!("e2e-escape-{}", warren_e2e::ids::salt());
    for id in [
        "a/b".to_owned(),
        format!("../{escape}"),
        "..".to_owned(),
        ".".to_owned(),
        String::new(),
        "sp ace".to_owned(),
    ] {
        let out = rt.create(b.path(), &id).unwrap();
        assert!(!out.success(), "id {id:?} was accepted: {out}");
        assert!(
            out.stderr.contains("id"),
            "error for id {id:?} does not say what is wrong: {out}"
        );
        assert!(!parent.join(&escape).exists(), "created outside --root");
        assert!(rt.state_entries().is_empty(), "{:?}", rt.state_entries());
    }
    for verb in ["state", "start", "delete", "kill"] {
        let out = rt.cmd([verb, "../x"]).output().unwrap();
        assert!(!out.success(), "{verb} ../x: {out}");
    }
}

#[test]
fn deleting_a_running_container_needs_force() {
    let rt = warren();
    let c = rt
        .start_container("delrun", &["sleep", "30"], |_| Ok(()))
        .unwrap();
    let pid = c.pid().unwrap();
    let out = rt.delete(&c.id).unwrap();
    fails_naming(&out, &[&c.id, "running"]);
    assert_eq!(rt.status(&c.id).unwrap().as_deref(), Some("running"));
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "init was killed"
    );
    rt.delete_force(&c.id).unwrap().check().unwrap();
    assert_eq!(rt.status(&c.id).unwrap(), None);
    let id = c.id.clone();
    let bundle = c.bundle.path().to_owned();
    drop(c);
    clean(&rt, &id, &bundle);
}

#[test]
fn unknown_signal_is_refused_and_the_container_is_unaffected() {
    let rt = warren();
    let c = rt
        .start_container("badsig", &["sleep", "30"], |_| Ok(()))
        .unwrap();
    for sig in ["FOO", "SIGFOO", "0", "65", "SIGRTMAX+1"] {
        let out = rt.kill(&c.id, sig).unwrap();
        fails_naming(&out, &[sig]);
        assert!(out.stderr.contains("signal"), "{out}");
    }
    assert_eq!(rt.status(&c.id).unwrap().as_deref(), Some("running"));
}

#[test]
fn starting_twice_is_refused() {
    let rt = warren();
    let c = rt
        .start_container("start2", &["sleep", "30"], |_| Ok(()))
        .unwrap();
    let out = rt.start(&c.id).unwrap();
    fails_naming(&out, &["running"]);
    assert_eq!(rt.status(&c.id).unwrap().as_deref(), Some("running"));
}

#[test]
fn exec_into_a_stopped_container_is_refused() {
    let rt = warren();
    let c = rt
        .start_container("execstop", &["true"], |_| Ok(()))
        .unwrap();
    rt.wait_status(&c.id, "stopped", Duration::from_secs(10))
        .unwrap();
    let out = rt.cmd(["exec", &c.id, "echo", "hi"]).output().unwrap();
    assert!(!out.success(), "{out}");
    assert!(!out.stdout.contains("hi"), "the process ran: {out}");
    assert!(
        out.stderr.contains("not running") || out.stderr.contains("stopped"),
        "error does not say the container is stopped: {out}"
    );
    let out = rt.start(&c.id).unwrap();
    fails_naming(&out, &["stopped"]);
    let id = c.id.clone();
    let bundle = c.bundle.path().to_owned();
    rt.delete(&id).unwrap().check().unwrap();
    drop(c);
    clean(&rt, &id, &bundle);
}

#[test]
fn missing_executable_fails_create_and_leaves_nothing() {
    let rt = warren();
    let mut b = Bundle::new().unwrap();
    b.set_args(&["/no/such/binary", "arg"]);
    b.save().unwrap();
    let id = unique_id("noexe");
    let _g = rt.guard(&id);
    let out = rt.create(b.path(), &id).unwrap();
    fails_naming(&out, &["/no/such/binary"]);
    assert_eq!(rt.status(&id).unwrap(), None);
    clean(&rt, &id, b.path());
}

#[test]
fn relative_cwd_is_refused() {
    let rt = warren();
    let mut b = Bundle::new().unwrap();
    b.config["process"]["cwd"] = json!("relative/dir");
    b.save().unwrap();
    let id = unique_id("relcwd");
    let _g = rt.guard(&id);
    let out = rt.create(b.path(), &id).unwrap();
    fails_naming(&out, &["process.cwd", "relative/dir"]);
    clean(&rt, &id, b.path());
}
