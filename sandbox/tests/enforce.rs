//! Filters and rulesets installed for real, each in a forked child (never in the test
//! harness's process): the child tries what the rule forbids and what it allows, and
//! reports through its exit status.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::undocumented_unsafe_blocks
)]

use std::ffi::CString;
use std::net::TcpListener;
use std::path::Path;

use warren_sandbox::landlock::{self, FsGrant, LandlockRules};
use warren_sandbox::profile::{LandlockMode, access, load_builtin, load_str};
use warren_sandbox::seccomp::{self, InstallFlags};
use warren_sandbox::syscalls::Arch;

/// Runs `f` in a forked child; returns its exit code (128 + signal when killed).
/// Everything the child needs is prepared before the fork.
fn in_child(f: impl FnOnce() -> i32) -> i32 {
    // SAFETY (test): the child only makes syscalls and small allocations (glibc's malloc is
    // fork-safe), then _exits without running destructors or the harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(101);
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_encoded_bytes()).unwrap()
}

/// Exit code for "check `what` failed" so that a failure says which check.
fn check(ok: bool, what: i32) -> Result<(), i32> {
    if ok { Ok(()) } else { Err(what) }
}

fn run_checks(f: impl FnOnce() -> Result<(), i32>) -> impl FnOnce() -> i32 {
    move || match f() {
        Ok(()) => 0,
        Err(code) => code,
    }
}

fn native() -> Option<Arch> {
    let a = Arch::native();
    if a.is_none() {
        eprintln!("skipped: no syscall table for this architecture");
    }
    a
}

#[test]
fn errno_rule_fails_mkdir_and_allowed_syscalls_still_work() {
    let Some(arch) = native() else { return };
    let profile = load_str(
        "mkdir-denied",
        "mkdir-denied.toml",
        r#"
[seccomp]
default_action = "allow"
[[seccomp.rule]]
# what the test forbids
syscalls = ["mkdir", "mkdirat"]
action = "errno"
errno = "ENAMETOOLONG"
"#,
        None,
    )
    .unwrap();
    let filter = seccomp::compile_profile(&profile, arch).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = cstr(&dir.path().join("new"));
    let file = cstr(&dir.path().join("file"));
    let code = in_child(run_checks(move || {
        seccomp::set_no_new_privs().map_err(|_| 2)?;
        filter.install().map_err(|_| 3)?;
        let rc = unsafe { libc::mkdir(target.as_ptr(), 0o755) };
        check(rc == -1 && errno() == libc::ENAMETOOLONG, 10)?;
        let rc = unsafe { libc::mkdirat(libc::AT_FDCWD, target.as_ptr(), 0o755) };
        check(rc == -1 && errno() == libc::ENAMETOOLONG, 11)?;
        // Allowed: create and write a file, getpid.
        let fd = unsafe {
            libc::open(
                file.as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                0o644,
            )
        };
        check(fd >= 0, 12)?;
        check(
            unsafe { libc::write(fd, b"ok".as_ptr().cast(), 2) } == 2,
            13,
        )?;
        check(unsafe { libc::getpid() } > 0, 14)?;
        Ok(())
    }));
    assert_eq!(code, 0);
    assert!(!dir.path().join("new").exists());
    assert_eq!(std::fs::read(dir.path().join("file")).unwrap(), b"ok");
}

#[test]
fn agent_filter_stops_escapes_even_for_root() {
    let Some(_) = native() else { return };
    let filter = seccomp::builtin_filter("agent").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let src = cstr(dir.path());
    let none = CString::new("none").unwrap();
    let tmpfs = CString::new("tmpfs").unwrap();
    let code = in_child(run_checks(move || {
        seccomp::set_no_new_privs().map_err(|_| 2)?;
        filter.install().map_err(|_| 3)?;
        // mount: refused by seccomp even though the test runs as root with CAP_SYS_ADMIN.
        let rc = unsafe {
            libc::mount(
                none.as_ptr(),
                src.as_ptr(),
                tmpfs.as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        check(rc == -1 && errno() == libc::EPERM, 10)?;
        check(
            unsafe { libc::unshare(libc::CLONE_NEWUSER) } == -1 && errno() == libc::EPERM,
            11,
        )?;
        check(
            unsafe { libc::unshare(libc::CLONE_NEWNS) } == -1 && errno() == libc::EPERM,
            12,
        )?;
        let s = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        check(s == -1 && errno() == libc::EAFNOSUPPORT, 13)?;
        let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) };
        check(s == -1 && errno() == libc::EPERM, 14)?;
        let c = 0u8;
        let rc = unsafe { libc::ioctl(0, libc::TIOCSTI, &c) };
        check(rc == -1 && errno() == libc::EPERM, 15)?;
        let rc = unsafe { libc::syscall(libc::SYS_keyctl, 0, 0, 0, 0, 0) };
        check(rc == -1 && errno() == libc::EPERM, 16)?;
        let rc = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1, std::ptr::null_mut::<u8>()) };
        check(rc == -1 && errno() == libc::ENOSYS, 17)?;
        let rc = unsafe { libc::personality(0x0040000) };
        check(rc == -1 && errno() == libc::EPERM, 18)?;
        // Allowed: sockets of ordinary families, fork, threads.
        let s = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        check(s >= 0, 20)?;
        let t = std::thread::spawn(|| 7).join().map_err(|_| 21)?;
        check(t == 7, 22)?;
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe { libc::_exit(0) };
        }
        check(pid > 0, 23)?;
        let mut st = 0;
        unsafe { libc::waitpid(pid, &mut st, 0) };
        check(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0, 24)?;
        Ok(())
    }));
    assert_eq!(code, 0);
}

#[test]
fn podman_profile_installed_for_real() {
    let Some(arch) = native() else { return };
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/podman-default-seccomp.json");
    let oci: oci_spec::runtime::LinuxSeccomp =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let filter = seccomp::compile_oci(&oci, arch).unwrap();
    let code = in_child(run_checks(move || {
        seccomp::set_no_new_privs().map_err(|_| 2)?;
        filter.install().map_err(|_| 3)?;
        let rc = unsafe { libc::syscall(libc::SYS_kexec_load, 0, 0, 0, 0) };
        check(rc == -1 && errno() == libc::EPERM, 10)?;
        let rc = unsafe { libc::syscall(libc::SYS_add_key, 0, 0, 0, 0, 0) };
        check(rc == -1 && errno() == libc::ENOSYS, 11)?;
        let rc = unsafe { libc::syscall(libc::SYS_setns, -1, 0) };
        check(rc == -1 && errno() == libc::EBADF, 12)?;
        check(unsafe { libc::getppid() } > 0, 13)?;
        let fd = unsafe {
            libc::open(
                c"/proc/self/status".as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        check(fd >= 0, 14)?;
        let mut buf = [0u8; 64];
        check(
            unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } > 0,
            15,
        )?;
        Ok(())
    }));
    assert_eq!(code, 0);
}

#[test]
fn kill_process_action_kills() {
    let Some(arch) = native() else { return };
    let profile = load_str(
        "k",
        "k.toml",
        "[seccomp]\ndefault_action = \"allow\"\n[[seccomp.rule]]\n# test\nsyscalls = [\"getppid\"]\naction = \"kill_process\"\n",
        None,
    )
    .unwrap();
    let filter = seccomp::compile_profile(&profile, arch).unwrap();
    let code = in_child(move || {
        if seccomp::set_no_new_privs().is_err() || filter.install().is_err() {
            return 3;
        }
        unsafe { libc::getppid() };
        0
    });
    assert_eq!(code, 128 + libc::SIGSYS);
}

#[test]
fn tsync_puts_every_thread_under_the_filter() {
    let Some(arch) = native() else { return };
    let profile = load_str(
        "t",
        "t.toml",
        "[seccomp]\ndefault_action = \"allow\"\n[[seccomp.rule]]\n# test\nsyscalls = [\"getppid\"]\naction = \"errno\"\nerrno = 5\n",
        None,
    )
    .unwrap();
    let filter = seccomp::compile_profile(&profile, arch).unwrap();
    let code = in_child(run_checks(move || {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<i32>();
        let t = std::thread::spawn(move || {
            rx.recv().ok();
            // Through syscall(2): glibc's getppid() returns the raw value without errno.
            let rc = unsafe { libc::syscall(libc::SYS_getppid) };
            done_tx
                .send(if rc == -1 && errno() == libc::EIO {
                    0
                } else {
                    1
                })
                .ok();
        });
        seccomp::set_no_new_privs().map_err(|_| 2)?;
        seccomp::install(
            &filter.program,
            InstallFlags {
                tsync: true,
                ..InstallFlags::default()
            },
        )
        .map_err(|_| 3)?;
        tx.send(()).map_err(|_| 4)?;
        check(done_rx.recv().map_err(|_| 5)? == 0, 10)?;
        t.join().map_err(|_| 6)?;
        Ok(())
    }));
    assert_eq!(code, 0);
}

#[test]
fn install_refuses_an_empty_program() {
    assert!(seccomp::install(&[], InstallFlags::default()).is_err());
}

fn landlock_available() -> bool {
    let ok = warren_sandbox::probe::landlock_abi().is_some_and(|abi| abi >= 4);
    if !ok {
        eprintln!("skipped: needs Landlock ABI >= 4");
    }
    ok
}

#[test]
fn landlock_denies_writes_outside_allowed_paths() {
    if !landlock_available() {
        return;
    }
    let allowed = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let rules = LandlockRules {
        abi: 7,
        mode: LandlockMode::BestEffort,
        handled_fs: None,
        handled_net: 0,
        scoped: 0,
        fs: vec![
            FsGrant {
                path: "/".into(),
                access: access::FS_GROUP_READ | access::FS_EXECUTE,
            },
            FsGrant {
                path: allowed.path().to_owned(),
                access: access::FS_GROUP_READ | access::FS_GROUP_WRITE,
            },
            FsGrant {
                path: "/nonexistent/for/sure".into(),
                access: access::FS_GROUP_READ,
            },
        ],
        net: vec![],
    };
    let inside_file = cstr(&allowed.path().join("in"));
    let outside_file = cstr(&outside.path().join("out"));
    let outside_dir = cstr(&outside.path().join("d"));
    let code = in_child(run_checks(move || {
        let report = landlock::apply(&rules).map_err(|_| 2)?;
        check(report.applied_abi >= 4, 3)?;
        check(report.skipped.len() == 1, 4)?;
        let fd = unsafe {
            libc::open(
                inside_file.as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                0o644,
            )
        };
        check(fd >= 0, 10)?;
        let fd = unsafe {
            libc::open(
                outside_file.as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                0o644,
            )
        };
        check(fd == -1 && errno() == libc::EACCES, 11)?;
        let rc = unsafe { libc::mkdir(outside_dir.as_ptr(), 0o755) };
        check(rc == -1 && errno() == libc::EACCES, 12)?;
        // Reading outside still works.
        let fd = unsafe {
            libc::open(
                c"/proc/self/status".as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        check(fd >= 0, 13)?;
        Ok(())
    }));
    assert_eq!(code, 0);
    assert!(allowed.path().join("in").exists());
    assert!(!outside.path().join("out").exists());
}

#[test]
fn landlock_denies_tcp_connect_to_ports_not_allowed() {
    if !landlock_available() {
        return;
    }
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let open_port = open.local_addr().unwrap().port();
    let closed_port = closed.local_addr().unwrap().port();
    let rules = LandlockRules::from_annotation(&format!(
        r#"{{"abi": 4, "mode": "strict", "handled_fs": 0, "handled_net": 3, "net": [{{"port": {open_port}, "access": 2}}]}}"#
    ))
    .unwrap();
    let code = in_child(run_checks(move || {
        let report = landlock::apply(&rules).map_err(|_| 2)?;
        check(report.enforcement == landlock::Enforcement::Full, 3)?;
        check(
            std::net::TcpStream::connect(("127.0.0.1", open_port)).is_ok(),
            10,
        )?;
        let err = std::net::TcpStream::connect(("127.0.0.1", closed_port)).unwrap_err();
        check(err.raw_os_error() == Some(libc::EACCES), 11)?;
        // Binding is handled and not granted on any port.
        let err = TcpListener::bind("127.0.0.1:0").unwrap_err();
        check(err.raw_os_error() == Some(libc::EACCES), 12)?;
        Ok(())
    }));
    assert_eq!(code, 0);
    drop((open, closed));
}

#[test]
fn agent_profile_landlock_and_seccomp_together() {
    if !landlock_available() || native().is_none() {
        return;
    }
    // The agent's rules, pointed at a temporary workspace.
    let ws = tempfile::tempdir().unwrap();
    let mut profile = load_builtin("agent").unwrap();
    for r in &mut profile.landlock.fs {
        if r.path == Path::new("/workspace") {
            r.path = ws.path().to_owned();
        }
    }
    let rules = LandlockRules::from_profile(&profile).unwrap();
    let filter = seccomp::filter_for_profile(&profile, None).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let in_ws = cstr(&ws.path().join("result.txt"));
    let code = in_child(run_checks(move || {
        let report = landlock::apply(&rules).map_err(|_| 2)?;
        check(report.degradations().is_empty() || report.kernel_abi < 7, 3)?;
        filter.install().map_err(|_| 4)?;
        let fd = unsafe {
            libc::open(
                in_ws.as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                0o644,
            )
        };
        check(fd >= 0, 10)?;
        let fd = unsafe {
            libc::open(
                c"/etc/warren-agent-test".as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                0o644,
            )
        };
        check(fd == -1 && errno() == libc::EACCES, 11)?;
        let err = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap_err();
        check(err.raw_os_error() == Some(libc::EACCES), 12)?;
        let fd = unsafe {
            libc::open(
                c"/dev/null".as_ptr(),
                libc::O_WRONLY | libc::O_TRUNC | libc::O_CLOEXEC,
            )
        };
        check(fd >= 0, 13)?;
        Ok(())
    }));
    assert_eq!(code, 0);
    assert!(!Path::new("/etc/warren-agent-test").exists());
}
