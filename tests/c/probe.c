/*
 * Seccomp probe for tests/tests/seccomp_vs_crun.rs, built with `gcc -static`: attempts a
 * list of system calls with harmless arguments (bad fds, null pointers, paths that do not
 * exist, flags that only affect a throw-away child) and prints one line per call:
 *
 *     NAME RESULT        RESULT: ok | an errno name | errnoN | killed=SIGNAL
 *
 * Every call runs in its own forked child, so a call that kills (SIGSYS) or changes the
 * process (a new namespace) affects nothing else. The same bundle run by two runtimes
 * with the same seccomp profile must print the same lines.
 *
 *   probe          every call
 *   probe NAME...  only these
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

struct call {
    const char *name;
    long nr;        /* -1: a special function */
    long a[6];
    long (*special)(void);
};

#define NOPATH ((long)"/nonexistent/warren-e2e")
#define EMPTY ((long)"")

static long sp_int80_getpid(void) {
    /* i386 getpid (20) through the 32-bit entry point. */
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
    return ret < 0 && ret > -4096 ? (errno = -ret, -1) : ret;
}
static long sp_x32_getpid(void) {
    /* x32 getpid: the x86_64 number with __X32_SYSCALL_BIT. */
    return syscall(0x40000000L | SYS_getpid);
}
static long sp_clone_newuser(void) {
    long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
    if (r == 0)
        _exit(0);
    if (r > 0)
        waitpid(r, NULL, 0);
    return r;
}
static long sp_clone_plain(void) {
    long r = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (r == 0)
        _exit(0);
    if (r > 0)
        waitpid(r, NULL, 0);
    return r;
}
static long sp_fork(void) {
    long r = syscall(SYS_fork);
    if (r == 0)
        _exit(0);
    if (r > 0)
        waitpid(r, NULL, 0);
    return r;
}

static const struct call CALLS[] = {
    {"read", SYS_read, {-1, 0, 0}},
    {"write", SYS_write, {-1, 0, 0}},
    {"getpid", SYS_getpid, {0}},
    {"openat", SYS_openat, {AT_FDCWD, NOPATH, O_RDONLY}},
    {"mount", SYS_mount, {(long)"none", (long)"/tmp", (long)"tmpfs", 0, 0}},
    {"umount2", SYS_umount2, {NOPATH, 0}},
    {"pivot_root", SYS_pivot_root, {NOPATH, NOPATH}},
    {"chroot", SYS_chroot, {NOPATH}},
    {"unshare_user", SYS_unshare, {CLONE_NEWUSER}},
    {"unshare_mnt", SYS_unshare, {CLONE_NEWNS}},
    {"setns", SYS_setns, {-1, 0}},
    {"clone_plain", -1, {0}, sp_clone_plain},
    {"clone_newuser", -1, {0}, sp_clone_newuser},
    {"clone3_einval", SYS_clone3, {0, 0}},
    {"fork", -1, {0}, sp_fork},
    {"ptrace_peek", SYS_ptrace, {2 /* PTRACE_PEEKDATA */, 999999, 0, 0}},
    {"process_vm_readv", SYS_process_vm_readv, {999999, 0, 0, 0, 0, 0}},
    {"pidfd_open", SYS_pidfd_open, {999999, 0}},
    {"pidfd_getfd", SYS_pidfd_getfd, {-1, 0, 0}},
    {"kcmp", SYS_kcmp, {1, 1, 0, 0, 0}},
    {"init_module", SYS_init_module, {0, 0, EMPTY}},
    {"finit_module", SYS_finit_module, {-1, EMPTY, 0}},
    {"delete_module", SYS_delete_module, {(long)"warren_e2e_none", 0}},
    {"kexec_load", SYS_kexec_load, {0, 0, 0, 0}},
    {"kexec_file_load", SYS_kexec_file_load, {-1, -1, 0, 0, 0}},
    {"bpf", SYS_bpf, {0 /* BPF_MAP_CREATE */, 0, 0}},
    {"perf_event_open", SYS_perf_event_open, {0, 0, -1, -1, 0}},
    {"keyctl_bad_op", SYS_keyctl, {-1, 0, 0, 0, 0}},
    {"add_key", SYS_add_key, {0, 0, 0, 0, 0}},
    {"request_key", SYS_request_key, {0, 0, 0, 0}},
    {"userfaultfd", SYS_userfaultfd, {O_CLOEXEC}},
    {"io_uring_setup", SYS_io_uring_setup, {0, 0}},
    {"io_uring_enter", SYS_io_uring_enter, {-1, 0, 0, 0, 0, 0}},
    {"io_uring_register", SYS_io_uring_register, {-1, 0, 0, 0}},
    {"reboot_bad_magic", SYS_reboot, {0, 0, 0, 0}},
    {"swapon", SYS_swapon, {0, 0}},
    {"swapoff", SYS_swapoff, {0}},
    {"syslog_size", SYS_syslog, {10 /* SIZE_BUFFER */, 0, 0}},
    {"iopl", SYS_iopl, {0}},
    {"ioperm", SYS_ioperm, {0, 0, 0}},
    {"settimeofday", SYS_settimeofday, {0, 0}},
    {"clock_settime", SYS_clock_settime, {0, 0}},
    {"clock_adjtime", SYS_clock_adjtime, {0, 0}},
    {"adjtimex", SYS_adjtimex, {0}},
    {"sethostname", SYS_sethostname, {0, 0}},
    {"setdomainname", SYS_setdomainname, {0, 0}},
    {"personality_query", SYS_personality, {0xffffffffL}},
    {"personality_linux", SYS_personality, {0}},
    {"personality_no_aslr", SYS_personality, {0x0040000}},
    {"socket_packet", SYS_socket, {AF_PACKET, SOCK_RAW, 0}},
    {"socket_raw", SYS_socket, {AF_INET, SOCK_RAW, 1}},
    {"socket_tcp", SYS_socket, {AF_INET, SOCK_STREAM, 0}},
    {"socket_unix", SYS_socket, {AF_UNIX, SOCK_STREAM, 0}},
    {"socket_vsock", SYS_socket, {40, SOCK_STREAM, 0}},
    {"socket_alg", SYS_socket, {38, SOCK_SEQPACKET, 0}},
    {"ioctl_tiocsti", SYS_ioctl, {-1, 0x5412, 0}},
    {"mknodat", SYS_mknodat, {AT_FDCWD, NOPATH, 0, 0}},
    {"open_by_handle_at", SYS_open_by_handle_at, {-1, 0, 0}},
    {"name_to_handle_at", SYS_name_to_handle_at, {AT_FDCWD, NOPATH, 0, 0, 0}},
    {"fanotify_init", SYS_fanotify_init, {0, 0}},
    {"inotify_init1", SYS_inotify_init1, {0}},
    {"acct", SYS_acct, {0}},
    {"quotactl", SYS_quotactl, {0, 0, 0, 0}},
    {"lookup_dcookie", SYS_lookup_dcookie, {0, 0, 0}},
    {"nfsservctl", 180, {0}},
    {"uselib", SYS_uselib, {0}},
    {"ustat", SYS_ustat, {0, 0}},
    {"sysfs", SYS_sysfs, {1, 0}},
    {"_sysctl", 156, {0}},
    {"create_module", 174, {0}},
    {"get_kernel_syms", 177, {0}},
    {"query_module", 178, {0}},
    {"vhangup", SYS_vhangup, {0}},
    {"process_madvise", SYS_process_madvise, {-1, 0, 0, 0, 0}},
    {"migrate_pages", SYS_migrate_pages, {0, 0, 0, 0}},
    {"move_pages", SYS_move_pages, {0, 0, 0, 0, 0, 0}},
    {"fsopen", SYS_fsopen, {0, 0}},
    {"fsmount", SYS_fsmount, {-1, 0, 0}},
    {"open_tree", SYS_open_tree, {AT_FDCWD, NOPATH, 0}},
    {"move_mount", SYS_move_mount, {-1, EMPTY, -1, EMPTY, 0}},
    {"mount_setattr", SYS_mount_setattr, {-1, EMPTY, 0, 0, 0}},
    {"memfd_secret", SYS_memfd_secret, {0}},
    {"memfd_create", SYS_memfd_create, {(long)"probe", 0}},
    {"landlock_create_ruleset", SYS_landlock_create_ruleset, {0, 0, 1 /* VERSION */}},
    {"seccomp_bad", SYS_seccomp, {-1, 0, 0}},
    {"get_mempolicy", SYS_get_mempolicy, {0, 0, 0, 0, 0}},
    {"set_mempolicy", SYS_set_mempolicy, {0, 0, 0}},
    {"mbind", SYS_mbind, {0, 0, 0, 0, 0, 0}},
    {"modify_ldt_read", SYS_modify_ldt, {0, 0, 0}},
    {"capset_null", SYS_capset, {0, 0}},
    {"setuid_same", SYS_setuid, {0}},
    {"chown_missing", SYS_chown, {NOPATH, 0, 0}},
    {"unknown_500", 500, {0}},
    {"i386_getpid", -1, {0}, sp_int80_getpid},
    {"x32_getpid", -1, {0}, sp_x32_getpid},
};

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

static void probe(const struct call *c) {
    int p[2];
    if (pipe(p)) {
        printf("%s pipe-failed\n", c->name);
        return;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        errno = 0;
        long r = c->nr < 0 ? c->special()
                           : syscall(c->nr, c->a[0], c->a[1], c->a[2], c->a[3], c->a[4], c->a[5]);
        int e[2] = {r < 0 ? -1 : 0, errno};
        (void)!write(p[1], e, sizeof e);
        _exit(0);
    }
    close(p[1]);
    int e[2] = {0, 0};
    ssize_t n = read(p[0], e, sizeof e);
    close(p[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    if (WIFSIGNALED(st)) {
        printf("%s killed=%s\n", c->name, sigabbrev_np(WTERMSIG(st)));
    } else if (n != (ssize_t)sizeof e) {
        printf("%s no-result\n", c->name);
    } else if (e[0] == 0) {
        printf("%s ok\n", c->name);
    } else if (errname(e[1])) {
        printf("%s %s\n", c->name, errname(e[1]));
    } else {
        printf("%s errno%d\n", c->name, e[1]);
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    size_t n = sizeof CALLS / sizeof CALLS[0];
    for (size_t i = 0; i < n; i++) {
        int want = argc < 2;
        for (int j = 1; j < argc; j++)
            if (strcmp(argv[j], CALLS[i].name) == 0)
                want = 1;
        if (want)
            probe(&CALLS[i]);
    }
    return 0;
}
