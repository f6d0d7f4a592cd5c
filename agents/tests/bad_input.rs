//! Bad input gives a clear error, and leaves nothing behind.

mod common;

use std::time::Duration;

use common::{PoolGuard, helpers, root_or_skip, roots, unique};
use warren_agents::Error;
use warren_agents::cmd::Tools;
use warren_agents::pool::{Client, ExecRequest, PoolOptions, manage};

fn up_err(text: &str) -> String {
    let t = roots();
    let file = t.dir.path().join("swarm.toml");
    std::fs::write(&file, text).expect("write");
    let e = warren_agents::swarm::up(&t.roots, &helpers(), &Tools::default(), &file)
        .expect_err("invalid swarm");
    assert!(
        !t.roots.swarm_dir("swarm").exists(),
        "nothing made for an invalid swarm"
    );
    e.to_string()
}

#[test]
fn a_malformed_swarm_toml_names_the_line() {
    let e = up_err("[roles.a]\ncommand = [\"x\"\nreplicas = 2\n");
    assert!(e.contains("swarm.toml:3:"), "{e}");
    let e = up_err("[roles.a]\ncommand = [\"x\"]\nreplicaz = 2\n");
    assert!(
        e.contains("swarm.toml:3:1") && e.contains("replicaz"),
        "{e}"
    );
}

#[test]
fn an_unknown_role_in_an_edge_is_named() {
    let e = up_err(
        "[roles.coordinator]\ncommand = [\"x\"]\n\n[roles.worker]\ncommand = [\"y\"]\ntalk_to = [\"coordinater\"]\n",
    );
    assert!(e.contains("swarm.toml:6:12"), "{e}");
    assert!(
        e.contains("unknown role \"coordinater\"") && e.contains("roles: coordinator, worker"),
        "{e}"
    );
}

#[test]
fn gpus_on_a_host_without_them_fail_clearly() {
    if !std::path::Path::new("/dev/nvidiactl").exists() {
        let e = up_err("[roles.trainer]\ncommand = [\"x\"]\ngpus = 1\n");
        assert!(
            e.contains("role trainer asks for 1 whole GPU") && e.contains("no NVIDIA GPU"),
            "{e}"
        );
    }
}

#[test]
fn a_pool_of_size_0_is_refused() {
    let t = roots();
    let e = manage::create(
        &t.roots,
        &helpers(),
        &PoolOptions {
            name: "zero".into(),
            size: 0,
            ..Default::default()
        },
        Duration::from_secs(5),
    )
    .expect_err("size 0");
    assert!(e.to_string().contains("--size must be at least 1"), "{e}");
    assert!(!t.roots.pool_dir("zero").exists());
}

#[test]
fn an_exec_on_a_missing_pool_says_so() {
    let t = roots();
    let e = manage::exec(
        &t.roots,
        "nosuchpool",
        &ExecRequest {
            argv: vec!["true".into()],
            ..Default::default()
        },
        &mut std::io::sink(),
        &mut std::io::sink(),
    )
    .expect_err("missing pool");
    assert!(matches!(e, Error::PoolNotFound(_)), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("pool nosuchpool not found (create it with `warren pool create"),
        "{e}"
    );
    let e = manage::rm(&t.roots, "nosuchpool").expect_err("rm missing");
    assert!(matches!(e, Error::PoolNotFound(_)), "{e:?}");
    let e = warren_agents::swarm::down(
        &t.roots,
        &Tools::default(),
        "nosuchswarm",
        Duration::from_secs(1),
        false,
    )
    .expect_err("down missing");
    assert!(matches!(e, Error::SwarmNotFound(_)), "{e:?}");
}

#[test]
fn a_command_that_is_not_found_exits_127() {
    if !root_or_skip("a_command_that_is_not_found_exits_127") {
        return;
    }
    let t = roots();
    let name = unique("n");
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
            ..Default::default()
        },
        Duration::from_secs(60),
    )
    .expect("pool");
    let mut c = Client::connect(&t.roots, &name).expect("connect");
    let run = |c: &mut Client, argv: &[&str], cwd: Option<&str>| {
        c.exec(&ExecRequest {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            cwd: cwd.map(str::to_owned),
            ..Default::default()
        })
        .expect("exec")
        .result
    };
    let r = run(&mut c, &["nosuchcmd", "--flag"], None);
    assert_eq!(r.exit_code, 127);
    assert_eq!(r.error.as_deref(), Some("command not found: nosuchcmd"));
    let r = run(&mut c, &["/etc/passwd"], None);
    assert_eq!(r.exit_code, 126, "{r:?}");
    assert!(
        r.error
            .as_deref()
            .unwrap_or("")
            .contains("cannot execute /etc/passwd"),
        "{r:?}"
    );
    let r = run(&mut c, &["true"], Some("/nonexistent"));
    assert_eq!(r.exit_code, 126, "{r:?}");
    assert!(
        r.error
            .as_deref()
            .unwrap_or("")
            .contains("working directory /nonexistent"),
        "{r:?}"
    );
    // Requests the daemon refuses: empty argv, a limit above the pool's is lowered, a
    // limit below the minimum refused.
    let e = c.exec(&ExecRequest::default()).expect_err("empty argv");
    assert!(e.to_string().contains("argv is empty"), "{e}");
    let e = c
        .exec(&ExecRequest {
            argv: vec!["true".into()],
            memory: Some(1024),
            ..Default::default()
        })
        .expect_err("tiny memory");
    assert!(e.to_string().contains("below 16 MiB"), "{e}");
    // The connection still works, and the sandbox was never replaced.
    assert_eq!(run(&mut c, &["true"], None).exit_code, 0);
    assert_eq!(c.status().expect("status").replaced, 0);
}
