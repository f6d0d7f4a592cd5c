//! Compiler verdicts with no container: built-in profiles and podman's default profile
//! compiled to BPF and run through the interpreter on (arch, syscall, args) tuples; OCI
//! conversion semantics; the cache against poisoning.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use oci_spec::runtime::LinuxSeccomp;

use super::*;
use crate::profile::load_builtin;
use crate::syscalls::{AUDIT_ARCH_I386, X32_SYSCALL_BIT};

const EPERM: Action = Action::Errno(1);
const ENOSYS: Action = Action::Errno(38);
const EAFNOSUPPORT: Action = Action::Errno(97);

const CLONE_NEWNS: u64 = 0x0002_0000;
const CLONE_NEWCGROUP: u64 = 0x0200_0000;
const CLONE_NEWUTS: u64 = 0x0400_0000;
const CLONE_NEWIPC: u64 = 0x0800_0000;
const CLONE_NEWUSER: u64 = 0x1000_0000;
const CLONE_NEWPID: u64 = 0x2000_0000;
const CLONE_NEWNET: u64 = 0x4000_0000;
const SIGCHLD: u64 = 17;
/// What glibc's pthread_create passes to clone.
const PTHREAD_FLAGS: u64 = 0x003d_0f00;

fn nr(arch: Arch, name: &str) -> u32 {
    arch.syscall_nr(name)
        .unwrap_or_else(|| panic!("{name} on {arch}"))
}

fn verdict(f: &CompiledFilter, name: &str, args: &[u64]) -> Action {
    let mut a = [0u64; 6];
    a[..args.len()].copy_from_slice(args);
    let data = eval::SeccompData::new(f.arch, nr(f.arch, name), a);
    eval::verdict(&f.program, &data).unwrap().unwrap()
}

fn raw_verdict(f: &CompiledFilter, audit: u32, n: u32) -> Action {
    let data = eval::SeccompData {
        nr: n,
        arch: audit,
        instruction_pointer: 0,
        args: [0; 6],
    };
    eval::verdict(&f.program, &data).unwrap().unwrap()
}

fn podman() -> LinuxSeccomp {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/podman-default-seccomp.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn oci(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).unwrap()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn agent_denies_what_it_says_and_allows_the_rest() {
    let agent = load_builtin("agent").unwrap();
    let f = compile_profile(&agent, Arch::X86_64).unwrap();
    assert!(f.warnings.is_empty(), "{:?}", f.warnings);
    for ok in [
        "read",
        "write",
        "openat",
        "close",
        "mmap",
        "execve",
        "mkdir",
        "mkdirat",
        "futex",
        "getpid",
        "seccomp",
        "landlock_create_ruleset",
        "wait4",
    ] {
        assert_eq!(verdict(&f, ok, &[]), Action::Allow, "{ok}");
    }
    for denied in [
        "mount",
        "umount2",
        "pivot_root",
        "chroot",
        "unshare",
        "setns",
        "ptrace",
        "process_vm_readv",
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "bpf",
        "perf_event_open",
        "keyctl",
        "add_key",
        "request_key",
        "userfaultfd",
        "open_by_handle_at",
        "reboot",
        "swapon",
        "swapoff",
        "acct",
        "quotactl",
        "fsopen",
        "move_mount",
        "open_tree",
        "syslog",
        "iopl",
        "modify_ldt",
        "clock_settime",
    ] {
        assert_eq!(verdict(&f, denied, &[]), EPERM, "{denied}");
    }
    for enosys in [
        "clone3",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
    ] {
        assert_eq!(verdict(&f, enosys, &[]), ENOSYS, "{enosys}");
    }
    // clone: plain fork and threads work, every namespace flag is refused.
    assert_eq!(verdict(&f, "clone", &[SIGCHLD]), Action::Allow);
    assert_eq!(verdict(&f, "clone", &[PTHREAD_FLAGS]), Action::Allow);
    for flag in [
        CLONE_NEWNS,
        CLONE_NEWCGROUP,
        CLONE_NEWUTS,
        CLONE_NEWIPC,
        CLONE_NEWUSER,
        CLONE_NEWPID,
        CLONE_NEWNET,
    ] {
        assert_eq!(
            verdict(&f, "clone", &[flag | SIGCHLD]),
            EPERM,
            "clone {flag:#x}"
        );
    }
    // socket: ordinary families work; packet, raw, vsock and AF_ALG do not, high bits or not.
    assert_eq!(verdict(&f, "socket", &[2, 1, 0]), Action::Allow);
    assert_eq!(verdict(&f, "socket", &[1, 1 | 0o2000000, 0]), Action::Allow);
    assert_eq!(verdict(&f, "socket", &[17, 3, 0x300]), EAFNOSUPPORT);
    assert_eq!(verdict(&f, "socket", &[17 | (1 << 32), 3, 0]), EAFNOSUPPORT);
    assert_eq!(verdict(&f, "socket", &[2, 3, 1]), EPERM);
    assert_eq!(
        verdict(&f, "socket", &[10, 3 | 0o2000000 | 0o4000, 58]),
        EPERM
    );
    assert_eq!(verdict(&f, "socket", &[40, 1, 0]), EAFNOSUPPORT);
    assert_eq!(verdict(&f, "socket", &[38, 5, 0]), EAFNOSUPPORT);
    // ioctl: TIOCSTI and TIOCLINUX refused, even with high bits set; TCGETS works.
    assert_eq!(verdict(&f, "ioctl", &[0, 0x5412]), EPERM);
    assert_eq!(verdict(&f, "ioctl", &[0, 0xdead_0000_0000_5412]), EPERM);
    assert_eq!(verdict(&f, "ioctl", &[0, 0x541c]), EPERM);
    assert_eq!(verdict(&f, "ioctl", &[0, 0x5401]), Action::Allow);
    // personality: the usual values work, turning ASLR off does not.
    for p in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
        assert_eq!(
            verdict(&f, "personality", &[p]),
            Action::Allow,
            "personality {p:#x}"
        );
    }
    assert_eq!(verdict(&f, "personality", &[0x0040000]), EPERM);
    assert_eq!(verdict(&f, "personality", &[0x0400000]), EPERM);
    // Newer syscalls than the table: ENOSYS; foreign ABIs: killed.
    assert_eq!(
        raw_verdict(&f, Arch::X86_64.audit_arch(), 469),
        Action::Allow
    );
    assert_eq!(raw_verdict(&f, Arch::X86_64.audit_arch(), 470), ENOSYS);
    assert_eq!(raw_verdict(&f, AUDIT_ARCH_I386, 21), Action::KillProcess);
    assert_eq!(
        raw_verdict(&f, Arch::X86_64.audit_arch(), X32_SYSCALL_BIT | 165),
        Action::KillProcess
    );
}

#[test]
fn agent_compiles_for_aarch64_too() {
    let agent = load_builtin("agent").unwrap();
    let f = compile_profile(&agent, Arch::Aarch64).unwrap();
    assert!(
        f.warnings
            .iter()
            .any(|w| w.contains("`iopl` does not exist on aarch64")),
        "{:?}",
        f.warnings
    );
    assert_eq!(verdict(&f, "mount", &[]), EPERM);
    assert_eq!(verdict(&f, "mkdirat", &[]), Action::Allow);
    assert_eq!(verdict(&f, "clone", &[CLONE_NEWUSER]), EPERM);
    assert_eq!(
        raw_verdict(&f, crate::syscalls::AUDIT_ARCH_ARM, 21),
        Action::KillProcess
    );
}

#[test]
fn experiment_and_trusted_verdicts() {
    let e = compile_profile(&load_builtin("experiment").unwrap(), Arch::X86_64).unwrap();
    for ok in ["ptrace", "perf_event_open", "process_vm_readv", "mbind"] {
        assert_eq!(verdict(&e, ok, &[]), Action::Allow, "{ok}");
    }
    for denied in [
        "mount",
        "kexec_load",
        "init_module",
        "bpf",
        "keyctl",
        "unshare",
        "open_by_handle_at",
    ] {
        assert_eq!(verdict(&e, denied, &[]), EPERM, "{denied}");
    }
    assert_eq!(verdict(&e, "clone", &[CLONE_NEWUSER | SIGCHLD]), EPERM);
    assert_eq!(
        verdict(&e, "clone", &[CLONE_NEWNS | SIGCHLD]),
        Action::Allow
    );
    assert_eq!(verdict(&e, "personality", &[0x0040000]), EPERM);
    assert_eq!(verdict(&e, "personality", &[0x8]), Action::Allow);

    let t = compile_profile(&load_builtin("trusted").unwrap(), Arch::X86_64).unwrap();
    assert_eq!(verdict(&t, "kexec_load", &[]), EPERM);
    assert_eq!(verdict(&t, "reboot", &[]), EPERM);
    assert_eq!(verdict(&t, "mount", &[]), Action::Allow);
    assert_eq!(verdict(&t, "ptrace", &[]), Action::Allow);
}

#[test]
fn embedded_programs_are_what_the_library_compiles() {
    let Some(arch) = Arch::native() else { return };
    for name in crate::profile::builtin_names() {
        let p = load_builtin(name).unwrap();
        let embedded = builtin_filter(name).unwrap();
        assert_eq!(embedded.source, FilterSource::Builtin);
        assert_eq!(
            embedded.program,
            compile_profile(&p, arch).unwrap().program,
            "{name} is stale"
        );
        let via = filter_for_profile(&p, None).unwrap();
        assert_eq!(via.source, FilterSource::Builtin);
    }
    assert!(builtin_filter("nope").is_none());
}

#[test]
fn podman_default_profile_matches_libseccomp_runtimes() {
    let f = compile_oci(&podman(), Arch::X86_64).unwrap();
    // libseccomp emits ~1125 instructions for this profile; the interval tree far fewer.
    assert!(f.program.len() < 200, "{} instructions", f.program.len());
    for ok in [
        "read",
        "write",
        "openat",
        "close",
        "mmap",
        "execve",
        "clone",
        "clone3",
        "mkdir",
        "futex",
        "socket",
        "getpid",
        "mount",
        "unshare",
        "ptrace",
        "arch_prctl",
        "modify_ldt",
    ] {
        assert_eq!(verdict(&f, ok, &[]), Action::Allow, "{ok}");
    }
    // Plain fork as runc would see it: the clone rule is unconditional in this profile.
    assert_eq!(verdict(&f, "clone", &[SIGCHLD]), Action::Allow);
    // setns is both in the allow list and in the EPERM rule for containers without
    // CAP_SYS_ADMIN; the first rule wins. Measured under crun and runc with this very
    // profile: setns(-1, 0) fails with EBADF (allowed), not EPERM.
    assert_eq!(verdict(&f, "setns", &[]), Action::Allow);
    // Explicit EPERM rules (caps the default container lacks).
    for eperm in [
        "kexec_load",
        "kexec_file_load",
        "userfaultfd",
        "bpf",
        "perf_event_open",
        "chroot",
        "init_module",
        "finit_module",
        "delete_module",
        "acct",
        "open_by_handle_at",
        "kcmp",
        "iopl",
        "ioperm",
        "settimeofday",
        "clock_settime",
        "vhangup",
        "swapon",
        "vmsplice",
        "move_pages",
    ] {
        assert_eq!(verdict(&f, eperm, &[]), EPERM, "{eperm}");
    }
    // Not listed: the default, ENOSYS.
    for unlisted in ["add_key", "io_uring_setup"] {
        assert_eq!(verdict(&f, unlisted, &[]), ENOSYS, "{unlisted}");
    }
    for p in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
        assert_eq!(verdict(&f, "personality", &[p]), Action::Allow);
    }
    assert_eq!(verdict(&f, "personality", &[0x0040000]), ENOSYS);
    // i386 and x32 are listed but not compiled: killed, and said so.
    assert_eq!(raw_verdict(&f, AUDIT_ARCH_I386, 21), Action::KillProcess);
    assert_eq!(
        raw_verdict(&f, Arch::X86_64.audit_arch(), X32_SYSCALL_BIT),
        Action::KillProcess
    );
    assert!(
        f.warnings.iter().any(|w| w.contains("SCMP_ARCH_X86:")),
        "{:?}",
        f.warnings
    );
    assert!(
        f.warnings.iter().any(|w| w.contains("SCMP_ARCH_X32")),
        "{:?}",
        f.warnings
    );
    // 32-bit-only names are skipped, as libseccomp skips what it cannot resolve.
    assert!(
        f.warnings.iter().any(|w| w.contains("`_llseek`")),
        "{:?}",
        f.warnings
    );
    // aarch64 too.
    let a = compile_oci(&podman(), Arch::Aarch64).unwrap();
    assert_eq!(verdict(&a, "openat", &[]), Action::Allow);
    assert_eq!(verdict(&a, "kexec_load", &[]), EPERM);
}

#[test]
fn oci_actions_errno_and_defaults() {
    let f = compile_oci(
        &oci(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"syscalls":[
            {"names":["mkdir"],"action":"SCMP_ACT_ERRNO"},
            {"names":["rmdir"],"action":"SCMP_ACT_ERRNO","errnoRet":36},
            {"names":["getpid"],"action":"SCMP_ACT_ALLOW"},
            {"names":["kill"],"action":"SCMP_ACT_KILL"},
            {"names":["tkill"],"action":"SCMP_ACT_KILL_THREAD"},
            {"names":["tgkill"],"action":"SCMP_ACT_KILL_PROCESS"},
            {"names":["uname"],"action":"SCMP_ACT_TRAP"},
            {"names":["sync"],"action":"SCMP_ACT_TRACE"},
            {"names":["syncfs"],"action":"SCMP_ACT_TRACE","errnoRet":9},
            {"names":["getppid"],"action":"SCMP_ACT_LOG"}]}"#,
        ),
        Arch::X86_64,
    )
    .unwrap();
    assert_eq!(verdict(&f, "mkdir", &[]), EPERM);
    assert_eq!(verdict(&f, "rmdir", &[]), Action::Errno(36));
    assert_eq!(verdict(&f, "getpid", &[]), Action::Allow);
    assert_eq!(verdict(&f, "kill", &[]), Action::KillThread);
    assert_eq!(verdict(&f, "tkill", &[]), Action::KillThread);
    assert_eq!(verdict(&f, "tgkill", &[]), Action::KillProcess);
    assert_eq!(verdict(&f, "uname", &[]), Action::Trap);
    assert_eq!(verdict(&f, "sync", &[]), Action::Trace(1));
    assert_eq!(verdict(&f, "syncfs", &[]), Action::Trace(9));
    assert_eq!(verdict(&f, "getppid", &[]), Action::Log);
    assert_eq!(verdict(&f, "read", &[]), ENOSYS);
    assert_eq!(f.flags, InstallFlags::default());
}

#[test]
fn oci_operators_and_argument_combination() {
    let f = compile_oci(
        &oci(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":5,"op":"SCMP_CMP_EQ"},{"index":2,"value":100,"op":"SCMP_CMP_GT"}]},
            {"names":["write"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":0,"value":2,"op":"SCMP_CMP_EQ"}]},
            {"names":["lseek"],"action":"SCMP_ACT_ERRNO","args":[{"index":1,"value":4294967296,"op":"SCMP_CMP_LT"}]},
            {"names":["pread64"],"action":"SCMP_ACT_ERRNO","args":[{"index":3,"value":10,"op":"SCMP_CMP_LE"}]},
            {"names":["pwrite64"],"action":"SCMP_ACT_ERRNO","args":[{"index":3,"value":10,"op":"SCMP_CMP_GE"}]},
            {"names":["dup"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":3,"op":"SCMP_CMP_NE"}]},
            {"names":["clone"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#),
        Arch::X86_64,
    )
    .unwrap();
    // AND within a rule.
    assert_eq!(verdict(&f, "read", &[5, 0, 101]), EPERM);
    assert_eq!(verdict(&f, "read", &[5, 0, 100]), Action::Allow);
    assert_eq!(verdict(&f, "read", &[4, 0, 101]), Action::Allow);
    // Same index twice: OR (runc's behaviour), not an impossible AND.
    assert_eq!(verdict(&f, "write", &[1]), EPERM);
    assert_eq!(verdict(&f, "write", &[2]), EPERM);
    assert_eq!(verdict(&f, "write", &[3]), Action::Allow);
    // 64-bit comparisons.
    assert_eq!(verdict(&f, "lseek", &[0, 0xffff_ffff]), EPERM);
    assert_eq!(verdict(&f, "lseek", &[0, 0x1_0000_0000]), Action::Allow);
    assert_eq!(verdict(&f, "pread64", &[0, 0, 0, 10]), EPERM);
    assert_eq!(verdict(&f, "pread64", &[0, 0, 0, 11]), Action::Allow);
    assert_eq!(verdict(&f, "pwrite64", &[0, 0, 0, 10]), EPERM);
    assert_eq!(verdict(&f, "pwrite64", &[0, 0, 0, 9]), Action::Allow);
    assert_eq!(verdict(&f, "dup", &[3]), Action::Allow);
    assert_eq!(verdict(&f, "dup", &[3 | (1 << 32)]), EPERM);
    // MASKED_EQ: value is the mask, valueTwo the datum (docker's clone rule, inverted).
    assert_eq!(verdict(&f, "clone", &[SIGCHLD]), EPERM);
    assert_eq!(
        verdict(&f, "clone", &[CLONE_NEWUSER | SIGCHLD]),
        Action::Allow
    );
}

#[test]
fn oci_conditional_rules_come_before_unconditional_ones() {
    let f = compile_oci(
        &oci(r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["personality"],"action":"SCMP_ACT_ERRNO","errnoRet":22},
            {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"}]},
            {"names":["personality"],"action":"SCMP_ACT_KILL"},
            {"names":["getpid"],"action":"SCMP_ACT_ALLOW"}]}"#),
        Arch::X86_64,
    )
    .unwrap();
    assert_eq!(verdict(&f, "personality", &[0]), Action::Allow);
    assert_eq!(verdict(&f, "personality", &[8]), Action::Errno(22));
    assert!(
        f.warnings.iter().any(|w| w.contains("already has action")),
        "{:?}",
        f.warnings
    );
}

#[test]
fn oci_unsupported_features_ask_for_the_libseccomp_path() {
    let unsupported = [
        r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        r#"{"defaultAction":"SCMP_ACT_NOTIFY","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ALLOW"}]}"#,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerMetadata":"x","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],"syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#,
    ];
    for json in unsupported {
        let err = compile_oci(&oci(json), Arch::X86_64).unwrap_err();
        assert!(
            matches!(err, SeccompError::Unsupported { .. }),
            "{json}: {err}"
        );
        assert!(err.to_string().contains("libseccomp"), "{err}");
    }
    let f = compile_oci(
        &oci(r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW"],"syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#),
        Arch::X86_64,
    )
    .unwrap();
    assert_eq!(
        f.flags,
        InstallFlags {
            tsync: true,
            log: true,
            spec_allow: true
        }
    );
}

#[test]
fn empty_or_invalid_oci_filters_are_errors_never_no_filter() {
    let errors = [
        r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[]}"#,
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["not_a_syscall"],"action":"SCMP_ACT_ALLOW"}]}"#,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ALLOW"}]}"#,
    ];
    for json in errors {
        let err = compile_oci(&oci(json), Arch::X86_64).unwrap_err();
        assert!(
            matches!(err, SeccompError::Compile(CompileError::Empty)),
            "{json}: {err}"
        );
    }
    let invalid = [
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","errnoRet":5000}]}"#,
    ];
    for json in invalid {
        assert!(
            matches!(
                compile_oci(&oci(json), Arch::X86_64),
                Err(SeccompError::InvalidOci(_))
            ),
            "{json}"
        );
    }
    let mut f = compile_oci(&podman(), Arch::X86_64).unwrap();
    f.program.clear();
    assert!(matches!(
        f.install(),
        Err(SeccompError::Compile(CompileError::Empty))
    ));
}

// ---- the cache -----------------------------------------------------------------------

fn entry(cache: &FilterCache, s: &LinuxSeccomp) -> std::path::PathBuf {
    cache.entry_path(&CacheKey::for_oci(s, Arch::X86_64).unwrap())
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), None).unwrap();
}

#[test]
fn cache_round_trip() {
    if !is_root() {
        eprintln!("skipped: the cache only trusts root-owned files");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = FilterCache::open(&dir.path().join("seccomp")).unwrap();
    let s = podman();
    let first = cache.get_or_compile_oci(&s, Arch::X86_64).unwrap();
    assert_eq!(first.source, FilterSource::Compiled);
    let path = entry(&cache, &s);
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o644));
    assert_eq!(
        std::fs::metadata(cache.path()).unwrap().mode() & 0o777,
        0o700
    );
    let second = cache.get_or_compile_oci(&s, Arch::X86_64).unwrap();
    assert_eq!(second.source, FilterSource::Cache);
    assert_eq!(second.program, first.program);
    assert_eq!(second.warnings, first.warnings);
    // No stray temporary files.
    let names: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    // Another architecture or another input is another key.
    assert_ne!(
        CacheKey::for_oci(&s, Arch::Aarch64).unwrap(),
        CacheKey::for_oci(&s, Arch::X86_64).unwrap()
    );
    // Profiles are cached too.
    let mut agent = load_builtin("agent").unwrap();
    agent.chain.push("user.toml".to_owned());
    let p1 = cache.get_or_compile_profile(&agent, Arch::X86_64).unwrap();
    let p2 = cache.get_or_compile_profile(&agent, Arch::X86_64).unwrap();
    assert_eq!(
        (p1.source, p2.source),
        (FilterSource::Compiled, FilterSource::Cache)
    );
    assert_eq!(p1.program, p2.program);
    if Arch::native() == Some(Arch::X86_64) {
        assert_eq!(
            filter_for_profile(&agent, Some(&cache)).unwrap().source,
            FilterSource::Cache
        );
    }
}

#[test]
fn cache_directory_must_be_root_owned_and_private() {
    if !is_root() {
        eprintln!("skipped: needs root to create files owned by others");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("c");
    std::fs::create_dir(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = FilterCache::open(&d).unwrap_err();
    assert!(matches!(err, CacheError::Insecure { .. }), "{err}");
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o775)).unwrap();
    assert!(matches!(
        FilterCache::open(&d),
        Err(CacheError::Insecure { .. })
    ));
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    chown(&d, 1000);
    let err = FilterCache::open(&d).unwrap_err();
    assert!(err.to_string().contains("uid 1000"), "{err}");
    chown(&d, 0);
    assert!(FilterCache::open(&d).is_ok());
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&d, &link).unwrap();
    assert!(matches!(
        FilterCache::open(&link),
        Err(CacheError::Insecure { .. })
    ));
}

#[test]
fn cache_poisoning_attempts_are_refused() {
    if !is_root() {
        eprintln!("skipped: needs root to create files owned by others");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = FilterCache::open(&dir.path().join("c")).unwrap();
    let s = podman();
    let good = cache.get_or_compile_oci(&s, Arch::X86_64).unwrap();
    let key = CacheKey::for_oci(&s, Arch::X86_64).unwrap();
    let path = entry(&cache, &s);
    let pristine = std::fs::read(&path).unwrap();
    let restore = || {
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, &pristine).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(cache.lookup(&key, Arch::X86_64).unwrap().is_some());
    };
    let refused = |needle: &str| {
        let err = cache.lookup(&key, Arch::X86_64).unwrap_err();
        assert!(matches!(err, CacheError::Poisoned { .. }), "{err}");
        assert!(err.to_string().contains(needle), "{err}");
        // The caller still gets the right program, compiled afresh, and the entry is replaced.
        let f = cache.get_or_compile_oci(&s, Arch::X86_64).unwrap();
        assert_eq!(f.source, FilterSource::Compiled);
        assert_eq!(f.program, good.program);
        assert!(
            f.warnings
                .iter()
                .any(|w| w.contains("refused and replaced")),
            "{:?}",
            f.warnings
        );
        assert_eq!(
            cache.lookup(&key, Arch::X86_64).unwrap().unwrap().program,
            good.program
        );
    };

    // Owned by someone else.
    chown(&path, 1000);
    refused("uid 1000");
    // Writable by others.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    refused("writable");
    // One flipped bit near the end (program or warnings).
    let mut bad = pristine.clone();
    let last = bad.len() - 1;
    bad[last - 200] ^= 0x01;
    std::fs::write(&path, &bad).unwrap();
    refused("SHA-256");
    // Install flags changed.
    restore();
    let mut bad = pristine.clone();
    bad[44] |= 0x01;
    std::fs::write(&path, &bad).unwrap();
    refused("SHA-256");
    // Truncated.
    std::fs::write(&path, &pristine[..60]).unwrap();
    refused("shorter");
    // Garbage.
    std::fs::write(&path, vec![0u8; 200]).unwrap();
    refused("magic");
    // A valid entry of another input put under this key.
    let other = oci(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#,
    );
    cache.get_or_compile_oci(&other, Arch::X86_64).unwrap();
    std::fs::copy(entry(&cache, &other), &path).unwrap();
    refused("another key");
    // A symlink to an entry.
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(entry(&cache, &other), &path).unwrap();
    refused("symlink");
    // A directory in its place.
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    let err = cache.lookup(&key, Arch::X86_64).unwrap_err();
    assert!(matches!(err, CacheError::Poisoned { .. }), "{err}");
}
