//! Profile loading: built-ins, errors that name file, line and rule, `extends` chains and
//! override semantics.

use std::path::Path;

use super::*;
use crate::filter::{Action, CmpOp, Width};

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const MINIMAL: &str = "[seccomp]\ndefault_action = \"allow\"\n";

#[test]
fn builtins_load_and_say_what_they_are() {
    let names: Vec<&str> = builtin_names().collect();
    assert_eq!(names, ["agent", "experiment", "trusted"]);
    let agent = load_builtin("agent").unwrap();
    assert!(agent.is_unmodified_builtin());
    assert_eq!(agent.chain, ["builtin:agent"]);
    assert!(agent.no_new_privs);
    assert_eq!(agent.network, NetworkMode::None);
    assert_eq!(agent.workspace.as_deref(), Some(Path::new("/workspace")));
    assert!(!agent.capabilities.contains("CAP_SYS_ADMIN"));
    assert!(!agent.capabilities.contains("CAP_NET_RAW"));
    assert_eq!(agent.seccomp.default_action, Action::Allow);
    assert!(agent.seccomp.deny_newer_syscalls);
    assert!(agent.landlock.enabled && agent.landlock.restrict_fs && agent.landlock.restrict_net);
    assert!(agent.landlock.net.is_empty());
    assert_eq!(
        agent.landlock.scope,
        access::SCOPE_ABSTRACT_UNIX_SOCKET | access::SCOPE_SIGNAL
    );
    assert_eq!(agent.cgroup.pids, Some(512));
    assert_eq!(agent.cgroup.memory, Some(4 << 30));
    assert_eq!(agent.cgroup.cpu_quota, Some(200_000));
    assert_eq!(agent.rlimits["RLIMIT_CORE"], Rlimit { soft: 0, hard: 0 });
    let ws = agent
        .landlock
        .fs
        .iter()
        .find(|r| r.path == Path::new("/workspace"))
        .unwrap();
    assert_eq!(ws.access & access::FS_GROUP_WRITE, access::FS_GROUP_WRITE);

    let experiment = load_builtin("experiment").unwrap();
    assert_eq!(experiment.network, NetworkMode::Loopback);
    assert!(experiment.capabilities.contains("CAP_IPC_LOCK"));
    assert_eq!(experiment.rlimits["RLIMIT_MEMLOCK"].hard, u64::MAX);
    assert!(!experiment.landlock.restrict_net);

    let trusted = load_builtin("trusted").unwrap();
    assert_eq!(trusted.network, NetworkMode::Host);
    assert!(!trusted.no_new_privs);
    assert!(!trusted.landlock.enabled);

    assert!(matches!(
        load_builtin("nope"),
        Err(ProfileError::UnknownBuiltin(_))
    ));
}

#[test]
fn every_builtin_rule_has_a_comment_saying_what_it_stops() {
    for name in builtin_names() {
        let src = builtin_source(name).unwrap();
        let lines: Vec<&str> = src.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if l.trim() == "[[seccomp.rule]]" || l.trim() == "[[landlock.fs]]" {
                let next = lines.get(i + 1).map(|s| s.trim()).unwrap_or("");
                assert!(
                    next.starts_with('#'),
                    "{name}.toml:{}: rule without a comment",
                    i + 1
                );
            }
        }
    }
}

#[test]
fn unknown_key_names_file_and_line() {
    let text =
        "description = \"x\"\n\n[seccomp]\ndefault_action = \"allow\"\ndefault_acton = \"errno\"\n";
    let err = load_str("p", "my.toml", text, None).unwrap_err();
    match &err {
        ProfileError::Parse {
            file,
            line,
            message,
            ..
        } => {
            assert_eq!(file, "my.toml");
            assert_eq!(*line, 5);
            assert!(message.contains("default_acton"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().starts_with("parse profile my.toml:5:"),
        "{err}"
    );

    // Inside an array of tables too.
    let text = "[seccomp]\ndefault_action = \"allow\"\n[[seccomp.rule]]\nsyscalls = [\"mount\"]\naction = \"errno\"\nerrrno = 1\n";
    let err = load_str("p", "r.toml", text, None).unwrap_err();
    assert!(matches!(err, ProfileError::Parse { line: 6, .. }), "{err}");
}

#[test]
fn invalid_values_name_file_line_and_rule() {
    let text = "[seccomp]\ndefault_action = \"allow\"\n\n[[seccomp.rule]]\nsyscalls = [\"mount\"]\naction = \"errno\"\n\n[[seccomp.rule]]\nsyscalls = [\"read\", \"mkdri\"]\naction = \"errno\"\n";
    let err = load_str("p", "typo.toml", text, None).unwrap_err();
    match &err {
        ProfileError::Invalid {
            file,
            line,
            rule,
            message,
        } => {
            assert_eq!(
                (file.as_str(), *line, rule.as_str()),
                ("typo.toml", 9, "seccomp.rule[1]")
            );
            assert!(message.contains("mkdri"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "validate profile typo.toml:9: seccomp.rule[1]: unknown syscall `mkdri`"
    );

    let cases: &[(&str, usize, &str, &str)] = &[
        (
            "[seccomp]\ndefault_action = \"deny\"\n",
            2,
            "seccomp.default_action",
            "unknown action",
        ),
        (
            "[seccomp]\ndefault_action = \"errno\"\ndefault_errno = \"EWHAT\"\n",
            3,
            "seccomp.default_action",
            "unknown errno",
        ),
        (
            "[seccomp]\ndefault_action = \"allow\"\ndefault_errno = 1\n",
            3,
            "seccomp.default_action",
            "does not go",
        ),
        (
            "[seccomp]\ndefault_action = \"allow\"\n[[seccomp.rule]]\nsyscalls = [\"ioctl\"]\naction = \"errno\"\nargs = [{ index = 7, op = \"eq\", value = 1 }]\n",
            6,
            "seccomp.rule[0]",
            "index 7",
        ),
        (
            "[seccomp]\ndefault_action = \"allow\"\n[[seccomp.rule]]\nsyscalls = [\"ioctl\"]\naction = \"errno\"\nargs = [{ index = 1, op = \"masked_eq\", value = 1 }]\n",
            6,
            "seccomp.rule[0]",
            "needs a mask",
        ),
        (
            "[seccomp]\ndefault_action = \"allow\"\n[[seccomp.rule]]\nsyscalls = [\"ioctl\"]\naction = \"errno\"\nargs = [{ index = 1, op = \"eq\", value = 0x100000000, width = 32 }]\n",
            6,
            "seccomp.rule[0]",
            "32-bit",
        ),
        (
            "workspace = \"rel/dir\"\n[seccomp]\ndefault_action = \"allow\"\n",
            1,
            "workspace",
            "absolute",
        ),
        (
            "[capabilities]\nadd = [\"CAP_FLY\"]\n[seccomp]\ndefault_action = \"allow\"\n",
            2,
            "capabilities.add",
            "CAP_FLY",
        ),
        (
            "[network]\nmode = \"bridge\"\n[seccomp]\ndefault_action = \"allow\"\n",
            2,
            "network.mode",
            "bridge",
        ),
        (
            "[rlimits]\nnofile = { soft = 10, hard = 5 }\n[seccomp]\ndefault_action = \"allow\"\n",
            2,
            "rlimits.nofile",
            "soft limit",
        ),
        (
            "[rlimits]\nnofiles = 5\n[seccomp]\ndefault_action = \"allow\"\n",
            2,
            "rlimits.nofiles",
            "unknown limit",
        ),
        (
            "[cgroup]\nmemory = \"4GB\"\n[seccomp]\ndefault_action = \"allow\"\n",
            2,
            "cgroup.memory",
            "4GB",
        ),
        (
            "[cgroup]\ncpuset_cpus = \"0-a\"\n[seccomp]\ndefault_action = \"allow\"\n",
            2,
            "cgroup.cpuset_cpus",
            "0-a",
        ),
        (
            "[seccomp]\ndefault_action = \"allow\"\n[landlock]\nabi = 4\n[[landlock.fs]]\npath = \"/dev\"\naccess = [\"ioctl_dev\"]\n",
            5,
            "landlock.fs",
            "needs abi >= 5",
        ),
        (
            "[seccomp]\ndefault_action = \"allow\"\n[landlock]\nabi = 3\nrestrict_net = true\n",
            5,
            "landlock.restrict_net",
            "abi >= 4",
        ),
        (
            "[seccomp]\ndefault_action = \"allow\"\n[landlock]\n[[landlock.net]]\nport = 443\naccess = [\"connect\"]\n",
            4,
            "landlock.net",
            "restrict_net",
        ),
        (
            "[seccomp]\ndefault_action = \"allow\"\n[landlock]\n[[landlock.fs]]\npath = \"/x\"\naccess = [\"fly\"]\n",
            4,
            "landlock.fs[0]",
            "unknown access",
        ),
    ];
    for (text, line, rule, needle) in cases {
        match load_str("p", "c.toml", text, None) {
            Err(ProfileError::Invalid {
                line: l,
                rule: r,
                message,
                ..
            }) => {
                assert_eq!((l, r.as_str()), (*line, *rule), "{text}: {message}");
                assert!(message.contains(needle), "{text}: {message}");
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn a_profile_without_seccomp_is_refused() {
    let err = load_str("p", "none.toml", "no_new_privs = true\n", None).unwrap_err();
    assert!(err.to_string().contains("seccomp.default_action"), "{err}");
}

#[test]
fn extends_a_builtin_and_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "agent-net.toml",
        r#"extends = "agent"
description = "agent that may fetch from one HTTPS mirror"

[network]
mode = "loopback"

[capabilities]
add = ["CAP_NET_BIND_SERVICE"]
drop = ["CAP_KILL"]

[seccomp]
[[seccomp.rule]]
# the test harness inside needs ptrace
syscalls = ["ptrace"]
action = "allow"

[landlock]
[[landlock.net]]
port = 443
access = ["connect"]

[[landlock.fs]]
path = "/data"
access = ["read"]

[rlimits]
nofile = 2048

[cgroup]
pids = 64
"#,
    );
    let prof = load_file(&p).unwrap();
    assert_eq!(prof.name, "agent-net");
    assert_eq!(
        prof.chain,
        [p.display().to_string(), "builtin:agent".to_owned()]
    );
    assert!(!prof.is_unmodified_builtin());
    assert_eq!(prof.network, NetworkMode::Loopback);
    assert!(prof.capabilities.contains("CAP_NET_BIND_SERVICE"));
    assert!(!prof.capabilities.contains("CAP_KILL"));
    assert!(prof.capabilities.contains("CAP_SETUID"));
    // Inherited scalars.
    assert!(prof.no_new_privs);
    assert_eq!(prof.seccomp.default_action, Action::Allow);
    assert_eq!(prof.cgroup.memory, Some(4 << 30));
    assert_eq!(prof.cgroup.pids, Some(64));
    assert_eq!(
        prof.rlimits["RLIMIT_NOFILE"],
        Rlimit {
            soft: 2048,
            hard: 2048
        }
    );
    assert_eq!(prof.rlimits["RLIMIT_CORE"].hard, 0);
    // The extending file's rules come first, so its allow wins over agent's ptrace deny.
    assert_eq!(prof.seccomp.rules[0].syscalls, ["ptrace"]);
    assert_eq!(prof.seccomp.rules[0].action, Action::Allow);
    assert_eq!(
        prof.seccomp.rules[0].origin.line, 12,
        "the rule's [[seccomp.rule]] header"
    );
    assert!(
        prof.seccomp
            .rules
            .iter()
            .skip(1)
            .any(|r| r.syscalls.contains(&"ptrace".to_owned()))
    );
    // Landlock grants accumulate.
    assert_eq!(prof.landlock.net.len(), 1);
    assert_eq!(prof.landlock.net[0].port, 443);
    assert!(
        prof.landlock
            .fs
            .iter()
            .any(|r| r.path == Path::new("/data"))
    );
    assert!(prof.landlock.fs.iter().any(|r| r.path == Path::new("/tmp")));
}

#[test]
fn extends_chain_of_files_and_loops() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("base")).unwrap();
    write(
        &dir.path().join("base"),
        "base.toml",
        "[seccomp]\ndefault_action = \"errno\"\ndefault_errno = \"ENOSYS\"\n[[seccomp.rule]]\nsyscalls = [\"read\", \"write\"]\naction = \"allow\"\n",
    );
    write(
        dir.path(),
        "mid.toml",
        "extends = \"base/base.toml\"\n[seccomp]\n[[seccomp.rule]]\nsyscalls = [\"write\"]\naction = \"errno\"\nerrno = 5\n",
    );
    let top = write(
        dir.path(),
        "top.toml",
        "extends = \"mid.toml\"\nno_new_privs = false\n",
    );
    let p = load_file(&top).unwrap();
    assert_eq!(p.chain.len(), 3);
    assert_eq!(p.seccomp.default_action, Action::Errno(38));
    assert!(!p.no_new_privs);
    assert_eq!(p.seccomp.rules[0].action, Action::Errno(5));
    assert_eq!(p.seccomp.rules[1].syscalls, ["read", "write"]);

    write(dir.path(), "a.toml", "extends = \"b.toml\"\n");
    let b = write(dir.path(), "b.toml", "extends = \"a.toml\"\n");
    let err = load_file(&b).unwrap_err();
    assert!(
        matches!(err, ProfileError::Extends { line: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("loop"), "{err}");

    let m = write(dir.path(), "m.toml", "\n\nextends = \"missing.toml\"\n");
    let err = load_file(&m).unwrap_err();
    assert!(
        matches!(&err, ProfileError::Extends { line: 3, file, .. } if file.ends_with("m.toml")),
        "{err}"
    );

    let u = write(dir.path(), "u.toml", "extends = \"agnet\"\n");
    assert!(load_file(&u).unwrap_err().to_string().contains("agnet"));

    // Errors inside an extended file name that file.
    write(
        dir.path(),
        "bad.toml",
        "[seccomp]\ndefault_action = \"allow\"\nbogus = 1\n",
    );
    let t = write(dir.path(), "t.toml", "extends = \"bad.toml\"\n");
    let err = load_file(&t).unwrap_err();
    assert!(
        matches!(&err, ProfileError::Parse { file, line: 3, .. } if file.ends_with("bad.toml")),
        "{err}"
    );
}

#[test]
fn capability_set_replaces_and_args_parse() {
    let text = r#"
[capabilities]
set = ["CAP_CHOWN"]
add = ["CAP_KILL"]
[seccomp]
default_action = "kill_process"
[[seccomp.rule]]
syscalls = ["socket"]
action = "trace"
errno = 7
args = [{ index = 0, op = "ge", value = 1 }, { index = 1, op = "masked_eq", mask = 15, value = 3, width = 32 }]
"#;
    let p = load_str("x", "x.toml", text, None).unwrap();
    assert_eq!(
        p.capabilities.iter().collect::<Vec<_>>(),
        ["CAP_CHOWN", "CAP_KILL"]
    );
    let r = &p.seccomp.rules[0];
    assert_eq!(r.action, Action::Trace(7));
    assert_eq!(r.args[0].op, CmpOp::Ge);
    assert_eq!(r.args[1].op, CmpOp::MaskedEq { mask: 15 });
    assert_eq!(r.args[1].width, Width::Bits32);
    assert_eq!(p.seccomp.default_action, Action::KillProcess);
    // Defaults of an otherwise empty profile.
    let p = load_str("m", "m.toml", MINIMAL, None).unwrap();
    assert!(p.no_new_privs);
    assert_eq!(p.network, NetworkMode::None);
    assert!(!p.landlock.enabled);
}
