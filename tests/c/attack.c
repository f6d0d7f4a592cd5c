/*
 * Escape attempts for tests/tests/escape.rs, built with `gcc -static` and run inside a
 * container under the `agent` profile. One multi-call binary, so that every attempt is
 * the exact system call it names (no shell tool that may fail for its own reasons).
 *
 *   attack run NAME...        each attempt in its own forked child; prints one line each:
 *                                 NAME STEP RESULT
 *                             STEP names the operation that gave RESULT (setup steps that
 *                             fail report their own STEP, so a denial at the wrong step
 *                             is visible); RESULT is `ok`, an errno name (EPERM, EACCES,
 *                             ...), a value (`euid=1000`) or `killed=SIGNAL`.
 *   attack list               the names of all attempts
 *   attack serve              container init for the scoping tests: binds the abstract
 *                             unix socket @warren-e2e-scope, forks a `victim` child, sleeps
 *   attack victim             sleeps (the target of kill attempts)
 *   attack forkbomb           forks until fork fails (at most 2048 times); prints
 *                             `forkbomb fork ERRNO n=N` (ERRNO `none` at the cap)
 *   attack memhog MIB         allocates and touches MIB MiB in 64 MiB steps, printing
 *                             `memhog touched MIB` after each step
 *   attack listen PORT...     listens on TCP PORTs (bind errors are printed), then sleeps
 *   attack exe_scan MARKER    polls /proc for a process whose argv[0] contains MARKER
 *                             (a runtime process entering the container) and tries to
 *                             open its exe (CVE-2019-5736); prints `cve-2019-5736 ...`
 *   attack euid               prints `euid=N` (run as a setuid-root copy)
 *   attack sleep SECONDS      sleeps
 *
 * Attempts that need an argument read it from the environment: KILL_TARGET (a pid, or
 * `victim` to find the `attack victim` process), TCP_PORT.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/reboot.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif

/* clone3's argument (<linux/sched.h> clashes with glibc's <sched.h>). */
struct clone_args_v0 {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

#define SCOPE_SOCKET "warren-e2e-scope"

/* Landlock, spelled out: the build host's headers predate network rules and scoping. */
struct ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define LL_SCOPE_SIGNAL (1ULL << 1)

static const char *name_now;

static const char *errname(int e) {
    switch (e) {
#define E(x) case x: return #x;
        E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(ENOEXEC) E(EBADF)
        E(ECHILD) E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(EXDEV)
        E(ENODEV) E(ENOTDIR) E(EISDIR) E(EINVAL) E(ENFILE) E(EMFILE) E(ENOTTY) E(ETXTBSY)
        E(EFBIG) E(ENOSPC) E(ESPIPE) E(EROFS) E(EMLINK) E(EPIPE) E(ERANGE) E(ENOSYS)
        E(ENOTSOCK) E(EPROTONOSUPPORT) E(ESOCKTNOSUPPORT) E(EOPNOTSUPP) E(EAFNOSUPPORT)
        E(EADDRINUSE) E(EADDRNOTAVAIL) E(ENETDOWN) E(ENETUNREACH) E(ECONNREFUSED)
        E(EHOSTUNREACH) E(ETIMEDOUT) E(ENOKEY) E(EKEYREJECTED) E(ENODATA) E(ELOOP)
#undef E
    default: return NULL;
    }
}

/* Prints `NAME STEP RESULT` in one write (lines of sequential children never interleave). */
static void report(const char *step, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(const char *step, const char *fmt, ...) {
    char res[256], line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res, sizeof res, fmt, ap);
    va_end(ap);
    int n = snprintf(line, sizeof line, "%s %s %s\n", name_now, step, res);
    if (n > (int)sizeof line - 1)
        n = sizeof line - 1;
    (void)!write(1, line, n);
}

/* Reports a syscall's outcome: `ok` for ret >= 0, else the errno's name. */
static void outcome(const char *step, long ret, int err) {
    if (ret >= 0) {
        report(step, "ok");
        return;
    }
    const char *n = errname(err);
    if (n)
        report(step, "%s", n);
    else
        report(step, "errno%d", err);
}

#define TRY(step, expr)                                                                    \
    do {                                                                                   \
        errno = 0;                                                                         \
        long r_ = (long)(expr);                                                            \
        outcome(step, r_, errno);                                                          \
    } while (0)

/* Runs a setup step: on failure reports it and returns from the attempt. */
#define SETUP(step, expr)                                                                  \
    ({                                                                                     \
        errno = 0;                                                                         \
        long r_ = (long)(expr);                                                            \
        if (r_ < 0) {                                                                      \
            outcome("setup-" step, r_, errno);                                             \
            return;                                                                        \
        }                                                                                  \
        r_;                                                                                \
    })

static pid_t spawn_sleeper(void) {
    pid_t c = fork();
    if (c == 0) {
        for (;;)
            pause();
    }
    return c;
}

static void reap(pid_t c) {
    if (c > 0) {
        kill(c, SIGKILL);
        waitpid(c, NULL, 0);
    }
}

/* ---- filesystem (Landlock) ---------------------------------------------------------- */

static void a_write_new_outside(void) {
    TRY("open-creat", open("/etc/warren-e2e-evil", O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
}
static void a_write_existing_outside(void) {
    TRY("open-wronly", open("/etc/passwd", O_WRONLY | O_APPEND | O_CLOEXEC));
}
static void a_write_bin(void) {
    TRY("open-wronly", open("/bin/busybox", O_WRONLY | O_CLOEXEC));
}
static void a_truncate_outside(void) { TRY("truncate", truncate("/etc/passwd", 0)); }
static void a_unlink_outside(void) { TRY("unlink", unlink("/etc/group")); }
static void a_mkdir_outside(void) { TRY("mkdir", mkdir("/warren-e2e-evil", 0755)); }
static void a_chmod_outside(void) {
    /* Metadata outside the workspace: chmod, chown, utimes and xattrs are not Landlock
     * rights, so only a read-only root (or seccomp) can refuse them. The worst case:
     * planting a setuid-root binary in the image. */
    TRY("chmod", chmod("/bin/busybox", 04755));
}
static void a_chown_outside(void) { TRY("chown", chown("/etc/passwd", 1000, 1000)); }
static void a_utime_outside(void) { TRY("utimensat", utimensat(AT_FDCWD, "/etc/passwd", NULL, 0)); }
static void a_setxattr_outside(void) {
    /* user.* extended attributes hold data: a write outside the workspace. */
    TRY("setxattr", setxattr("/etc/passwd", "user.warren-e2e", "payload", 7, 0));
}
static void a_rename_out_of_workspace(void) {
    int fd = SETUP("create", open("/workspace/moved", O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    close(fd);
    TRY("rename", rename("/workspace/moved", "/etc/moved"));
}
static void a_rename_into_workspace(void) {
    TRY("rename", rename("/etc/passwd", "/workspace/passwd"));
}
static void a_host_secret_dotdot(void) {
    /* The host secret lives in the bundle directory, next to rootfs/. */
    TRY("open", open("/../secret/shadow", O_RDONLY | O_CLOEXEC));
}
static void a_host_secret_proc_root(void) {
    TRY("open", open("/proc/1/root/../../secret/shadow", O_RDONLY | O_CLOEXEC));
}
static void a_host_secret_symlink(void) {
    unlink("/workspace/ln-secret");
    SETUP("symlink", symlink("../../../../../secret/shadow", "/workspace/ln-secret"));
    TRY("open", open("/workspace/ln-secret", O_RDONLY | O_CLOEXEC));
}
static void a_shocker(void) {
    /* CVE "shocker": open a host file by handle, bypassing path checks. */
    struct {
        struct file_handle h;
        unsigned char bytes[128];
    } fh;
    fh.h.handle_bytes = sizeof fh.bytes;
    int mount_id;
    long r = syscall(SYS_name_to_handle_at, AT_FDCWD, "/etc/passwd", &fh.h, &mount_id, 0);
    if (r < 0) {
        outcome("name_to_handle_at", r, errno);
        return;
    }
    TRY("open_by_handle_at", syscall(SYS_open_by_handle_at, AT_FDCWD, &fh.h, O_RDONLY));
}
static void a_open_by_handle(void) {
    /* A forged handle (inode 2 = the root of an ext4 file system), as shocker brute-forces. */
    struct {
        struct file_handle h;
        unsigned char bytes[8];
    } fh = {.h = {.handle_bytes = 8, .handle_type = 1}};
    uint32_t ino = 2, gen = 0;
    memcpy(fh.bytes, &ino, 4);
    memcpy(fh.bytes + 4, &gen, 4);
    TRY("open_by_handle_at", syscall(SYS_open_by_handle_at, AT_FDCWD, &fh.h, O_RDONLY));
}
static void a_symlink_out_write(void) {
    unlink("/workspace/ln-passwd");
    SETUP("symlink", symlink("/etc/passwd", "/workspace/ln-passwd"));
    TRY("open-wronly", open("/workspace/ln-passwd", O_WRONLY | O_CLOEXEC));
}
static void a_symlink_dir_out(void) {
    unlink("/workspace/ln-etc");
    SETUP("symlink", symlink("/etc", "/workspace/ln-etc"));
    TRY("open-creat", open("/workspace/ln-etc/evil", O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
}
static void a_hardlink_out(void) {
    unlink("/workspace/hl-passwd");
    TRY("link", link("/etc/passwd", "/workspace/hl-passwd"));
}
static void a_hardlink_out_at(void) {
    unlink("/workspace/hl-group");
    TRY("linkat", linkat(AT_FDCWD, "/etc/group", AT_FDCWD, "/workspace/hl-group", 0));
}
static void a_mknod_block(void) {
    TRY("mknod", mknod("/workspace/sda", S_IFBLK | 0600, makedev(8, 0)));
}
static void a_mknod_char(void) {
    TRY("mknod", mknod("/tmp/mem", S_IFCHR | 0600, makedev(1, 1)));
}
static void a_proc_self_exe_write(void) {
    TRY("open-wronly", open("/proc/self/exe", O_WRONLY | O_CLOEXEC));
}

/* ---- /proc and /sys ------------------------------------------------------------------ */

static void write_file(const char *path, const char *data) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        outcome("open-wronly", -1, errno);
        return;
    }
    errno = 0;
    long r = write(fd, data, strlen(data));
    outcome("write", r, errno);
    close(fd);
}
static void a_sysrq_trigger(void) { write_file("/proc/sysrq-trigger", "h"); }
static void a_proc_sys_kernel(void) { write_file("/proc/sys/kernel/core_pattern", "|/workspace/x"); }
static void a_proc_sys_vm(void) { write_file("/proc/sys/vm/drop_caches", "3"); }
static void a_sys_uevent_helper(void) { write_file("/sys/kernel/uevent_helper", "/workspace/x"); }
static void a_sys_kernel(void) { write_file("/sys/kernel/rcu_expedited", "0"); }
static void a_sys_cgroup(void) { write_file("/sys/fs/cgroup/pids/pids.max", "max"); }

/* ---- mounts and namespaces (seccomp) -------------------------------------------------- */

static void a_mount_tmpfs(void) { TRY("mount", mount("none", "/workspace", "tmpfs", 0, NULL)); }
static void a_remount_root_rw(void) {
    TRY("mount", mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND, NULL));
}
static void a_umount_proc(void) { TRY("umount2", umount2("/proc", MNT_DETACH)); }
static void a_pivot_root(void) { TRY("pivot_root", syscall(SYS_pivot_root, ".", ".")); }
static void a_chroot(void) { TRY("chroot", chroot("/workspace")); }
static void a_fsopen(void) { TRY("fsopen", syscall(SYS_fsopen, "tmpfs", 0)); }
static void a_open_tree(void) {
    TRY("open_tree", syscall(SYS_open_tree, AT_FDCWD, "/", OPEN_TREE_CLONE));
}
static void a_move_mount(void) {
    TRY("move_mount", syscall(SYS_move_mount, AT_FDCWD, "/proc", AT_FDCWD, "/workspace", 0));
}
static void a_unshare_user(void) { TRY("unshare", unshare(CLONE_NEWUSER)); }
static void a_unshare_mount(void) { TRY("unshare", unshare(CLONE_NEWNS)); }
static void a_clone_newuser(void) {
    long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
    if (r == 0)
        _exit(0);
    if (r > 0)
        waitpid(r, NULL, 0);
    outcome("clone", r, errno);
}
static void a_clone_newnet(void) {
    long r = syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0);
    if (r == 0)
        _exit(0);
    if (r > 0)
        waitpid(r, NULL, 0);
    outcome("clone", r, errno);
}
static void a_clone3_newuser(void) {
    struct clone_args_v0 ca;
    memset(&ca, 0, sizeof ca);
    ca.flags = CLONE_NEWUSER;
    ca.exit_signal = SIGCHLD;
    long r = syscall(SYS_clone3, &ca, sizeof ca);
    if (r == 0)
        _exit(0);
    if (r > 0)
        waitpid(r, NULL, 0);
    outcome("clone3", r, errno);
}
static void a_setns(void) {
    int fd = SETUP("open-ns", open("/proc/1/ns/mnt", O_RDONLY | O_CLOEXEC));
    TRY("setns", setns(fd, 0));
}

/* ---- other processes ------------------------------------------------------------------ */

static void a_ptrace_sibling(void) {
    pid_t c = SETUP("fork", spawn_sleeper());
    TRY("ptrace-attach", syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, c, 0, 0));
    reap(c);
}
static void a_ptrace_traceme(void) { TRY("ptrace-traceme", syscall(SYS_ptrace, 0, 0, 0, 0)); }
static void a_process_vm_readv(void) {
    pid_t c = SETUP("fork", spawn_sleeper());
    char buf[16];
    static char src[16];
    struct iovec l = {buf, sizeof buf}, r = {src, sizeof src};
    TRY("process_vm_readv", process_vm_readv(c, &l, 1, &r, 1, 0));
    reap(c);
}
static void a_pidfd_getfd(void) {
    pid_t c = SETUP("fork", spawn_sleeper());
    int pfd = SETUP("pidfd_open", syscall(SYS_pidfd_open, c, 0));
    TRY("pidfd_getfd", syscall(SYS_pidfd_getfd, pfd, 0, 0));
    reap(c);
}
static void a_kcmp(void) {
    pid_t c = SETUP("fork", spawn_sleeper());
    TRY("kcmp", syscall(SYS_kcmp, getpid(), c, 0 /* KCMP_FILE */, 0, 0));
    reap(c);
}

/* ---- the kernel -------------------------------------------------------------------------- */

static void a_init_module(void) {
    static char image[64] = "\177ELF-not-a-module";
    TRY("init_module", syscall(SYS_init_module, image, sizeof image, ""));
}
static void a_finit_module(void) {
    int fd = SETUP("open", open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
    TRY("finit_module", syscall(SYS_finit_module, fd, "", 0));
}
static void a_delete_module(void) {
    TRY("delete_module", syscall(SYS_delete_module, "ext4", O_NONBLOCK));
}
static void a_kexec_load(void) { TRY("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0)); }
static void a_kexec_file_load(void) {
    int fd = SETUP("open", open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
    TRY("kexec_file_load", syscall(SYS_kexec_file_load, fd, -1, 1, "", 2 /* KEXEC_FILE_NO_INITRAMFS */));
}
static void a_bpf_prog_load(void) {
    struct bpf_insn insns[2] = {
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0},
        {.code = BPF_JMP | BPF_EXIT},
    };
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    attr.insns = (uint64_t)(uintptr_t)insns;
    attr.insn_cnt = 2;
    attr.license = (uint64_t)(uintptr_t) "GPL";
    TRY("bpf", syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr));
}
static void a_bpf_map_create(void) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    TRY("bpf", syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr));
}
static void a_perf_event_open(void) {
    struct perf_event_attr pe;
    memset(&pe, 0, sizeof pe);
    pe.type = PERF_TYPE_SOFTWARE;
    pe.size = sizeof pe;
    pe.config = PERF_COUNT_SW_CPU_CLOCK;
    pe.disabled = 1;
    pe.exclude_kernel = 1;
    TRY("perf_event_open", syscall(SYS_perf_event_open, &pe, 0, -1, -1, 0));
}
static void a_keyctl(void) {
    TRY("keyctl", syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
}
static void a_keyctl_join(void) {
    /* Joining a named keyring: how a container reaches another one's (or the host's) keys. */
    TRY("keyctl", syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, "_ses"));
}
static void a_add_key(void) {
    TRY("add_key", syscall(SYS_add_key, "user", "warren-e2e", "secret", 6, KEY_SPEC_PROCESS_KEYRING));
}
static void a_request_key(void) {
    TRY("request_key", syscall(SYS_request_key, "user", "warren-e2e", NULL, 0));
}
static void a_userfaultfd(void) { TRY("userfaultfd", syscall(SYS_userfaultfd, O_CLOEXEC)); }
static void a_io_uring_setup(void) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    TRY("io_uring_setup", syscall(SYS_io_uring_setup, 8, &p));
}
static void a_reboot(void) {
    /* CAD_OFF changes nothing that matters even if it were let through. */
    TRY("reboot", syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
                          LINUX_REBOOT_CMD_CAD_OFF, NULL));
}
static void a_swapon(void) { TRY("swapon", syscall(SYS_swapon, "/workspace/swap", 0)); }
static void a_syslog(void) {
    char buf[64];
    TRY("syslog", syscall(SYS_syslog, 3 /* SYSLOG_ACTION_READ_ALL */, buf, sizeof buf));
}
static void a_iopl(void) { TRY("iopl", syscall(SYS_iopl, 3)); }
static void a_ioperm(void) { TRY("ioperm", syscall(SYS_ioperm, 0x80, 1, 1)); }
static void a_settimeofday(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    TRY("settimeofday", settimeofday(&tv, NULL));
}
static void a_clock_settime(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    TRY("clock_settime", clock_settime(CLOCK_REALTIME, &ts));
}
static void a_sethostname(void) { TRY("sethostname", sethostname("evil", 4)); }
static void a_personality(void) {
    TRY("personality", syscall(SYS_personality, ADDR_NO_RANDOMIZE));
}
static void a_personality_rie(void) {
    TRY("personality", syscall(SYS_personality, READ_IMPLIES_EXEC));
}
static void a_fanotify_init(void) { TRY("fanotify_init", syscall(SYS_fanotify_init, 0, O_RDONLY)); }
static void a_acct(void) { TRY("acct", syscall(SYS_acct, "/workspace/acct")); }

/* ---- sockets ------------------------------------------------------------------------------ */

static void a_raw_socket(void) { TRY("socket", socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)); }
static void a_raw_socket6_cloexec(void) {
    TRY("socket", socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6));
}
static void a_packet_socket(void) { TRY("socket", socket(AF_PACKET, SOCK_RAW, htons(0x0003))); }
static void a_packet_socket_dgram(void) {
    TRY("socket", socket(AF_PACKET, SOCK_DGRAM, htons(0x0003)));
}
static void a_packet_socket_highbits(void) {
    /* The kernel reads `int domain`: 0x1_0000_0011 is AF_PACKET to it. */
    TRY("socket", syscall(SYS_socket, 0x100000000L | AF_PACKET, SOCK_DGRAM, htons(0x0003)));
}
static void a_vsock_socket(void) { TRY("socket", socket(AF_VSOCK, SOCK_STREAM, 0)); }
static void a_alg_socket(void) { TRY("socket", socket(AF_ALG, SOCK_SEQPACKET, 0)); }

static int tcp_connect(const char *ip, int port) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        outcome("socket", -1, errno);
        return -1;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    errno = 0;
    int r = connect(s, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    close(s);
    errno = e;
    return r;
}
static void a_tcp_connect_loopback(void) {
    int r = tcp_connect("127.0.0.1", 80);
    outcome("connect", r, errno);
}
static void a_tcp_connect_external(void) {
    int r = tcp_connect("1.1.1.1", 443);
    outcome("connect", r, errno);
}
static void a_tcp6_connect(void) {
    int s = SETUP("socket", socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(80)};
    a.sin6_addr = in6addr_loopback;
    TRY("connect", connect(s, (struct sockaddr *)&a, sizeof a));
}
static void a_tcp_bind(void) {
    int s = SETUP("socket", socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(8080)};
    TRY("bind", bind(s, (struct sockaddr *)&a, sizeof a));
}
static void a_udp_send_external(void) {
    int s = SETUP("socket", socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(53)};
    inet_pton(AF_INET, "1.1.1.1", &a.sin_addr);
    TRY("sendto", sendto(s, "x", 1, 0, (struct sockaddr *)&a, sizeof a));
}
static void a_udp_send_loopback(void) {
    int s = SETUP("socket", socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(53)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    TRY("sendto", sendto(s, "x", 1, 0, (struct sockaddr *)&a, sizeof a));
}
static void a_loopback_up(void) {
    /* Bringing lo up needs CAP_NET_ADMIN, which agent does not grant. */
    int s = SETUP("socket", socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    SETUP("SIOCGIFFLAGS", ioctl(s, SIOCGIFFLAGS, &ifr));
    if (ifr.ifr_flags & IFF_UP) {
        report("SIOCGIFFLAGS", "lo-is-up");
        return;
    }
    ifr.ifr_flags |= IFF_UP;
    TRY("SIOCSIFFLAGS", ioctl(s, SIOCSIFFLAGS, &ifr));
}
static int port_env(void) {
    const char *p = getenv("TCP_PORT");
    return p ? atoi(p) : 0;
}
static void a_tcp_connect_port(void) {
    int r = tcp_connect("127.0.0.1", port_env());
    outcome("connect", r, errno);
}
static void a_tcp_bind_port(void) {
    int s = SETUP("socket", socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port_env())};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    TRY("bind", bind(s, (struct sockaddr *)&a, sizeof a));
}

/* ---- privileges ---------------------------------------------------------------------- */

static void a_capset_raise(void) {
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[2];
    SETUP("capget", syscall(SYS_capget, &h, d));
    d[CAP_SYS_ADMIN / 32].effective |= 1u << (CAP_SYS_ADMIN % 32);
    d[CAP_SYS_ADMIN / 32].permitted |= 1u << (CAP_SYS_ADMIN % 32);
    TRY("capset", syscall(SYS_capset, &h, d));
}
static void a_ambient_raise(void) {
    TRY("prctl-ambient", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SYS_ADMIN, 0, 0));
}
static void a_setuid_binary(void) {
    /* As uid 1000, run a setuid-root copy of this binary: under no_new_privs the exec
     * keeps euid 1000. */
    int p[2];
    SETUP("pipe", pipe(p));
    pid_t c = SETUP("fork", fork());
    if (c == 0) {
        dup2(p[1], 1);
        if (setgroups(0, NULL) || setgid(1000) || setuid(1000)) {
            printf("setuid-failed=%d\n", errno);
            _exit(1);
        }
        execl("/attack-suid", "attack-suid", "euid", (char *)NULL);
        printf("exec-failed=%s\n", errname(errno) ? errname(errno) : "?");
        _exit(1);
    }
    close(p[1]);
    char buf[64] = {0};
    ssize_t n = read(p[0], buf, sizeof buf - 1);
    waitpid(c, NULL, 0);
    if (n > 0 && buf[n - 1] == '\n')
        buf[n - 1] = 0;
    report("exec-suid", "%s", n > 0 ? buf : "no-output");
}

/* ---- terminals ------------------------------------------------------------------------ */

static int open_pty_slave(void) {
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0) {
        outcome("setup-posix_openpt", -1, errno);
        return -1;
    }
    if (grantpt(m) || unlockpt(m)) {
        outcome("setup-unlockpt", -1, errno);
        return -1;
    }
    int s = open(ptsname(m), O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s < 0)
        outcome("setup-open-slave", -1, errno);
    return s;
}
static void a_tiocsti(void) {
    int s = open_pty_slave();
    if (s < 0)
        return;
    char c = 'x';
    TRY("ioctl-TIOCSTI", ioctl(s, TIOCSTI, &c));
}
static void a_tiocsti_highbits(void) {
    /* The kernel reads `unsigned int cmd`: high bits must not slip past the filter. */
    int s = open_pty_slave();
    if (s < 0)
        return;
    char c = 'x';
    TRY("ioctl-TIOCSTI", syscall(SYS_ioctl, s, 0x100000000UL | TIOCSTI, &c));
}
static void a_tioclinux(void) {
    int s = open_pty_slave();
    if (s < 0)
        return;
    char sub = 2; /* TIOCL_SETSEL */
    TRY("ioctl-TIOCLINUX", ioctl(s, TIOCLINUX, &sub));
}

/* ---- signals and scoping ---------------------------------------------------------------- */

static pid_t find_cmd(const char *arg1) {
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t found = -1;
    while (d && (e = readdir(d))) {
        pid_t p = atoi(e->d_name);
        if (p <= 0 || p == getpid())
            continue;
        char path[64], buf[256];
        snprintf(path, sizeof path, "/proc/%d/cmdline", (int)p);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = 0;
        size_t l0 = strlen(buf);
        if ((ssize_t)l0 + 1 < n && strcmp(buf + l0 + 1, arg1) == 0) {
            found = p;
            break;
        }
    }
    if (d)
        closedir(d);
    return found;
}
static pid_t kill_target(void) {
    const char *t = getenv("KILL_TARGET");
    if (!t || strcmp(t, "victim") == 0)
        return find_cmd("victim");
    return atoi(t);
}
static void a_kill_outside_domain(void) {
    pid_t t = kill_target();
    if (t <= 0) {
        report("setup-find-victim", "not-found");
        return;
    }
    TRY("kill-SIGKILL", kill(t, SIGKILL));
}
static void a_kill_probe_outside_domain(void) {
    /* Signal 0: a pure permission check, harmless to the target (the controls use it). */
    pid_t t = kill_target();
    if (t <= 0) {
        report("setup-find-victim", "not-found");
        return;
    }
    TRY("kill-0", kill(t, 0));
}
static void a_kill_init(void) { TRY("kill-SIGTERM", kill(1, SIGTERM)); }
static void a_abstract_unix_connect(void) {
    int s = SETUP("socket", socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path + 1, SCOPE_SOCKET, strlen(SCOPE_SOCKET));
    TRY("connect", connect(s, (struct sockaddr *)&a,
                           offsetof(struct sockaddr_un, sun_path) + 1 + strlen(SCOPE_SOCKET)));
}
static void a_scope_nested_kill_parent(void) {
    /* A child enters its own, nested Landlock domain scoped for signals; it cannot signal
     * its parent (outside that domain), while the parent can still signal it. */
    int p[2];
    SETUP("pipe", pipe(p));
    pid_t c = SETUP("fork", fork());
    if (c == 0) {
        struct ll_ruleset_attr attr = {.scoped = LL_SCOPE_SIGNAL};
        int rs = syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
        char r = 'S';
        if (rs < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
            syscall(SYS_landlock_restrict_self, rs, 0)) {
            r = 'E';
        } else if (kill(getppid(), 0) == 0) {
            r = 'K';
        } else {
            r = errno == EPERM ? 'P' : 'O';
        }
        (void)!write(p[1], &r, 1);
        pause();
        _exit(0);
    }
    close(p[1]);
    char r = 0;
    (void)!read(p[0], &r, 1);
    int back = kill(c, 0);
    reap(c);
    if (r == 'E')
        report("setup-landlock", "failed");
    else if (back != 0)
        report("parent-kill-child", "denied");
    else
        report("child-kill-parent", "%s", r == 'P' ? "EPERM" : r == 'K' ? "ok" : "other");
}

/* ---- the attempt table ---------------------------------------------------------------------- */

struct attempt {
    const char *name;
    void (*fn)(void);
};

static const struct attempt ATTEMPTS[] = {
    {"write_new_outside", a_write_new_outside},
    {"write_existing_outside", a_write_existing_outside},
    {"write_bin", a_write_bin},
    {"truncate_outside", a_truncate_outside},
    {"unlink_outside", a_unlink_outside},
    {"mkdir_outside", a_mkdir_outside},
    {"chmod_outside", a_chmod_outside},
    {"chown_outside", a_chown_outside},
    {"utime_outside", a_utime_outside},
    {"setxattr_outside", a_setxattr_outside},
    {"rename_out_of_workspace", a_rename_out_of_workspace},
    {"rename_into_workspace", a_rename_into_workspace},
    {"host_secret_dotdot", a_host_secret_dotdot},
    {"host_secret_proc_root", a_host_secret_proc_root},
    {"host_secret_symlink", a_host_secret_symlink},
    {"shocker", a_shocker},
    {"open_by_handle", a_open_by_handle},
    {"symlink_out_write", a_symlink_out_write},
    {"symlink_dir_out", a_symlink_dir_out},
    {"hardlink_out", a_hardlink_out},
    {"hardlink_out_at", a_hardlink_out_at},
    {"mknod_block", a_mknod_block},
    {"mknod_char", a_mknod_char},
    {"proc_self_exe_write", a_proc_self_exe_write},
    {"sysrq_trigger", a_sysrq_trigger},
    {"proc_sys_kernel", a_proc_sys_kernel},
    {"proc_sys_vm", a_proc_sys_vm},
    {"sys_uevent_helper", a_sys_uevent_helper},
    {"sys_kernel", a_sys_kernel},
    {"sys_cgroup", a_sys_cgroup},
    {"mount_tmpfs", a_mount_tmpfs},
    {"remount_root_rw", a_remount_root_rw},
    {"umount_proc", a_umount_proc},
    {"pivot_root", a_pivot_root},
    {"chroot", a_chroot},
    {"fsopen", a_fsopen},
    {"open_tree", a_open_tree},
    {"move_mount", a_move_mount},
    {"unshare_user", a_unshare_user},
    {"unshare_mount", a_unshare_mount},
    {"clone_newuser", a_clone_newuser},
    {"clone_newnet", a_clone_newnet},
    {"clone3_newuser", a_clone3_newuser},
    {"setns", a_setns},
    {"ptrace_sibling", a_ptrace_sibling},
    {"ptrace_traceme", a_ptrace_traceme},
    {"process_vm_readv", a_process_vm_readv},
    {"pidfd_getfd", a_pidfd_getfd},
    {"kcmp", a_kcmp},
    {"init_module", a_init_module},
    {"finit_module", a_finit_module},
    {"delete_module", a_delete_module},
    {"kexec_load", a_kexec_load},
    {"kexec_file_load", a_kexec_file_load},
    {"bpf_prog_load", a_bpf_prog_load},
    {"bpf_map_create", a_bpf_map_create},
    {"perf_event_open", a_perf_event_open},
    {"keyctl", a_keyctl},
    {"keyctl_join", a_keyctl_join},
    {"add_key", a_add_key},
    {"request_key", a_request_key},
    {"userfaultfd", a_userfaultfd},
    {"io_uring_setup", a_io_uring_setup},
    {"reboot", a_reboot},
    {"swapon", a_swapon},
    {"syslog", a_syslog},
    {"iopl", a_iopl},
    {"ioperm", a_ioperm},
    {"settimeofday", a_settimeofday},
    {"clock_settime", a_clock_settime},
    {"sethostname", a_sethostname},
    {"personality_no_aslr", a_personality},
    {"personality_rie", a_personality_rie},
    {"fanotify_init", a_fanotify_init},
    {"acct", a_acct},
    {"raw_socket", a_raw_socket},
    {"raw_socket6_cloexec", a_raw_socket6_cloexec},
    {"packet_socket", a_packet_socket},
    {"packet_socket_dgram", a_packet_socket_dgram},
    {"packet_socket_highbits", a_packet_socket_highbits},
    {"vsock_socket", a_vsock_socket},
    {"alg_socket", a_alg_socket},
    {"tcp_connect_loopback", a_tcp_connect_loopback},
    {"tcp_connect_external", a_tcp_connect_external},
    {"tcp6_connect", a_tcp6_connect},
    {"tcp_bind", a_tcp_bind},
    {"udp_send_external", a_udp_send_external},
    {"udp_send_loopback", a_udp_send_loopback},
    {"loopback_up", a_loopback_up},
    {"tcp_connect_port", a_tcp_connect_port},
    {"tcp_bind_port", a_tcp_bind_port},
    {"capset_raise", a_capset_raise},
    {"ambient_raise", a_ambient_raise},
    {"setuid_binary", a_setuid_binary},
    {"tiocsti", a_tiocsti},
    {"tiocsti_highbits", a_tiocsti_highbits},
    {"tioclinux", a_tioclinux},
    {"kill_outside_domain", a_kill_outside_domain},
    {"kill_probe_outside_domain", a_kill_probe_outside_domain},
    {"kill_init", a_kill_init},
    {"abstract_unix_connect", a_abstract_unix_connect},
    {"scope_nested_kill_parent", a_scope_nested_kill_parent},
};

static const struct attempt *find(const char *name) {
    for (size_t i = 0; i < sizeof ATTEMPTS / sizeof ATTEMPTS[0]; i++)
        if (strcmp(ATTEMPTS[i].name, name) == 0)
            return &ATTEMPTS[i];
    return NULL;
}

/* Runs one attempt in a child; reports a child killed by a signal. */
static void run_one(const char *name) {
    const struct attempt *a = find(name);
    name_now = name;
    if (!a) {
        report("lookup", "unknown-attempt");
        return;
    }
    fflush(stdout);
    pid_t c = fork();
    if (c < 0) {
        outcome("fork", -1, errno);
        return;
    }
    if (c == 0) {
        a->fn();
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    if (WIFSIGNALED(st))
        report("-", "killed=%s", strsignal(WTERMSIG(st)));
}

/* ---- long-running modes ------------------------------------------------------------------- */

static void serve(void) {
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path + 1, SCOPE_SOCKET, strlen(SCOPE_SOCKET));
    if (s < 0 ||
        bind(s, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + 1 + strlen(SCOPE_SOCKET)) ||
        listen(s, 16)) {
        printf("serve: abstract socket: %s\n", strerror(errno));
        fflush(stdout);
    }
    pid_t v = fork();
    if (v == 0) {
        execl("/attack", "attack", "victim", (char *)NULL);
        _exit(127);
    }
    printf("serving victim=%d\n", (int)v);
    fflush(stdout);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c >= 0)
            close(c);
        else
            pause();
    }
}

static void forkbomb(void) {
    long n = 0;
    int err = 0;
    for (;;) {
        pid_t c = fork();
        if (c == 0) {
            for (;;)
                pause();
        }
        if (c < 0) {
            err = errno;
            break;
        }
        /* Far above the 512 of the pids limit: a missing limit shows, the host is spared. */
        if (++n >= 2048)
            break;
    }
    printf("forkbomb fork %s n=%ld\n", errname(err) ? errname(err) : "none", n);
    fflush(stdout);
    /* Everything in the pid namespace but us (we are its init). */
    kill(-1, SIGKILL);
    while (wait(NULL) > 0)
        ;
}

static void memhog(long mib) {
    const long step = 64;
    for (long done = 0; done < mib; done += step) {
        char *p = mmap(NULL, step << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            printf("memhog mmap %s\n", errname(errno) ? errname(errno) : "?");
            return;
        }
        for (long i = 0; i < (step << 20); i += 4096)
            p[i] = 1;
        printf("memhog touched %ld\n", done + step);
        fflush(stdout);
    }
    printf("memhog survived %ld\n", mib);
}

static void listen_ports(int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[i]))};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 16))
            printf("listen %s %s\n", argv[i], errname(errno) ? errname(errno) : "?");
        else
            printf("listen %s ok\n", argv[i]);
    }
    fflush(stdout);
    for (;;)
        pause();
}

static void exe_scan(const char *marker) {
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            pid_t p = atoi(e->d_name);
            if (p <= 0 || p == getpid())
                continue;
            char path[64], buf[4096];
            snprintf(path, sizeof path, "/proc/%d/cmdline", (int)p);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                continue;
            ssize_t n = read(fd, buf, sizeof buf - 1);
            close(fd);
            if (n <= 0)
                continue;
            buf[n] = 0;
            if (!strstr(buf, marker))
                continue;
            snprintf(path, sizeof path, "/proc/%d/exe", (int)p);
            int x = open(path, O_PATH | O_CLOEXEC);
            if (x < 0) {
                /* The process may have exec'd the command already: only a denial counts. */
                int err = errno;
                if (err == ENOENT || err == ESRCH)
                    continue;
                printf("cve-2019-5736 open-exe %s\n", errname(err) ? errname(err) : "?");
                fflush(stdout);
                return;
            }
            snprintf(path, sizeof path, "/proc/self/fd/%d", x);
            for (int i = 0; i < 600; i++) {
                int w = open(path, O_WRONLY | O_CLOEXEC);
                if (w >= 0) {
                    (void)!write(w, "#!/bin/sh\n", 10);
                    printf("cve-2019-5736 reopen-wronly ok\n");
                    fflush(stdout);
                    return;
                }
                if (errno != ETXTBSY) {
                    printf("cve-2019-5736 reopen-wronly %s\n", errname(errno) ? errname(errno) : "?");
                    fflush(stdout);
                    return;
                }
                usleep(50000);
            }
            printf("cve-2019-5736 reopen-wronly ETXTBSY\n");
            fflush(stdout);
            return;
        }
        if (d)
            closedir(d);
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 60) {
            printf("cve-2019-5736 scan not-caught\n");
            fflush(stdout);
            return;
        }
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 2 && strcmp(argv[1], "run") == 0) {
        for (int i = 2; i < argc; i++)
            run_one(argv[i]);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "list") == 0) {
        for (size_t i = 0; i < sizeof ATTEMPTS / sizeof ATTEMPTS[0]; i++)
            printf("%s\n", ATTEMPTS[i].name);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "serve") == 0)
        serve();
    if (argc == 2 && strcmp(argv[1], "victim") == 0)
        for (;;)
            pause();
    if (argc == 2 && strcmp(argv[1], "forkbomb") == 0) {
        forkbomb();
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "memhog") == 0) {
        memhog(atol(argv[2]));
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "listen") == 0)
        listen_ports(argc - 2, argv + 2);
    if (argc == 3 && strcmp(argv[1], "exe_scan") == 0) {
        exe_scan(argv[2]);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "euid") == 0) {
        printf("euid=%d\n", (int)geteuid());
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "sleep") == 0) {
        sleep(atoi(argv[2]));
        return 0;
    }
    fprintf(stderr, "usage: attack run NAME... | list | serve | victim | forkbomb | memhog MIB | "
                    "listen PORT... | exe_scan MARKER | euid | sleep SECONDS\n");
    return 2;
}
