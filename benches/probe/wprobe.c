/*
 * wprobe: the workload that `warren-bench` runs on the host and inside containers.
 *
 * Built at bench time with `gcc -O2 -static` (so it runs in a busybox rootfs), copied into
 * each bundle as /bin/wprobe. Every sub-command runs REPS timed repetitions and prints one
 * line per repetition, `sample VALUE`, in the unit the sub-command names; anything that
 * goes wrong is printed to stderr as `wprobe: ...` with exit status 1, so that the harness
 * reports the runtime as failed instead of timing it.
 *
 *   wprobe getpid ITERS REPS        ns per getpid(2) (raw syscall, no libc cache)
 *   wprobe rw ITERS REPS            ns per write(2)+read(2) of 1 byte through a pipe
 *   wprobe open DIR NFILES REPS     ns per open(2)+close(2) of DIR/f<i>
 *   wprobe stat DIR NFILES REPS     ns per stat(2) of DIR/f<i>
 *   wprobe seqread FILE REPS        MiB/s reading FILE sequentially, 1 MiB reads
 *   wprobe tcprtt ITERS REPS        us per 1-byte TCP round trip over 127.0.0.1, both
 *                                   ends pinned to the CPU it starts on
 *   wprobe tcpbw MIB REPS           MiB/s streamed over one 127.0.0.1 TCP connection
 *   wprobe cpu ITERS REPS           ms per ITERS 64x64 double matrix products
 *   wprobe rusage PROG ARGS...      runs PROG (a path) and prints `maxrss_kib N`, its
 *                                   ru_maxrss from wait4(2); exits with its status
 *
 * `rusage` forks from this small static process rather than from the harness, because a
 * child's ru_maxrss includes the resident set it had before exec (a fork of its parent).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
    fprintf(stderr, "wprobe: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static long num(const char *s, const char *what) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v <= 0) {
        fprintf(stderr, "wprobe: bad %s: %s\n", what, s);
        exit(2);
    }
    return v;
}

static void sample(double v) {
    printf("sample %.4f\n", v);
}

static void bench_getpid(long iters, long reps) {
    for (long r = 0; r < reps; r++) {
        double t = now_ns();
        for (long i = 0; i < iters; i++)
            syscall(SYS_getpid);
        sample((now_ns() - t) / (double)iters);
    }
}

static void bench_rw(long iters, long reps) {
    int p[2];
    char c = 'x';
    if (pipe(p))
        die("pipe");
    for (long r = 0; r < reps; r++) {
        double t = now_ns();
        for (long i = 0; i < iters; i++) {
            if (write(p[1], &c, 1) != 1)
                die("write");
            if (read(p[0], &c, 1) != 1)
                die("read");
        }
        sample((now_ns() - t) / (double)iters);
    }
}

static void bench_open_stat(const char *dir, long nfiles, long reps, int do_stat) {
    char path[4096];
    struct stat st;
    for (long r = 0; r < reps; r++) {
        double t = now_ns();
        for (long i = 0; i < nfiles; i++) {
            snprintf(path, sizeof path, "%s/f%ld", dir, i);
            if (do_stat) {
                if (stat(path, &st))
                    die(path);
            } else {
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                    die(path);
                close(fd);
            }
        }
        sample((now_ns() - t) / (double)nfiles);
    }
}

static void bench_seqread(const char *file, long reps) {
    size_t bufsz = 1 << 20;
    char *buf = malloc(bufsz);
    if (!buf)
        die("malloc");
    for (long r = 0; r < reps; r++) {
        int fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            die(file);
        double total = 0, t = now_ns();
        for (;;) {
            ssize_t n = read(fd, buf, bufsz);
            if (n < 0)
                die("read");
            if (n == 0)
                break;
            total += (double)n;
        }
        double secs = (now_ns() - t) / 1e9;
        close(fd);
        sample(total / (1024.0 * 1024.0) / secs);
    }
    free(buf);
}

/* A listening socket on 127.0.0.1 (an ephemeral port) and a forked peer that runs
 * `serve` on the accepted connection. Returns the connected client socket. */
static int tcp_pair(void (*serve)(int), pid_t *child) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int one = 1;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l < 0)
        die("socket");
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(l, (struct sockaddr *)&a, sizeof a))
        die("bind 127.0.0.1 (is loopback up?)");
    if (listen(l, 1) || getsockname(l, (struct sockaddr *)&a, &len))
        die("listen");
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        int s = accept(l, NULL, NULL);
        if (s < 0)
            die("accept");
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        serve(s);
        _exit(0);
    }
    close(l);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0)
        die("socket");
    if (connect(c, (struct sockaddr *)&a, sizeof a))
        die("connect 127.0.0.1");
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *child = pid;
    return c;
}

static void serve_echo(int s) {
    char c;
    while (read(s, &c, 1) == 1)
        if (write(s, &c, 1) != 1)
            break;
}

static void serve_sink(int s) {
    static char buf[1 << 16];
    long long left;
    /* Each transfer starts with its length (8 bytes) and ends with a 1-byte ack. */
    while (read(s, &left, sizeof left) == (ssize_t)sizeof left) {
        while (left > 0) {
            ssize_t n = read(s, buf, sizeof buf);
            if (n <= 0)
                _exit(1);
            left -= n;
        }
        if (write(s, "k", 1) != 1)
            break;
    }
}

static void finish(int c, pid_t pid) {
    int status;
    close(c);
    if (waitpid(pid, &status, 0) < 0)
        die("waitpid");
}

static void bench_tcprtt(long iters, long reps) {
    pid_t pid;
    /* Both ends on one CPU: a wakeup across CPUs costs an IPI, which on a VM whose other
     * vCPU idles is a VM exit (tens of us) and swamps what is being measured. */
    int cpu = sched_getcpu();
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        sched_setaffinity(0, sizeof set, &set);
    }
    int c = tcp_pair(serve_echo, &pid);
    char x = 'x';
    for (long r = 0; r < reps; r++) {
        double t = now_ns();
        for (long i = 0; i < iters; i++) {
            if (write(c, &x, 1) != 1 || read(c, &x, 1) != 1)
                die("round trip");
        }
        sample((now_ns() - t) / (double)iters / 1e3);
    }
    finish(c, pid);
}

static void bench_tcpbw(long mib, long reps) {
    pid_t pid;
    int c = tcp_pair(serve_sink, &pid);
    static char buf[1 << 16];
    memset(buf, 'x', sizeof buf);
    for (long r = 0; r < reps; r++) {
        long long left = (long long)mib << 20;
        char ack;
        double t = now_ns();
        if (write(c, &left, sizeof left) != (ssize_t)sizeof left)
            die("write");
        while (left > 0) {
            ssize_t n = write(c, buf, left < (long long)sizeof buf ? (size_t)left : sizeof buf);
            if (n <= 0)
                die("write");
            left -= n;
        }
        if (read(c, &ack, 1) != 1)
            die("read ack");
        sample((double)mib / ((now_ns() - t) / 1e9));
    }
    finish(c, pid);
}

#define N 64
static double ma[N][N], mb[N][N], mc[N][N];

static void bench_cpu(long iters, long reps) {
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            ma[i][j] = (double)((i * 7 + j * 3) % 17) / 17.0;
            mb[i][j] = (double)((i * 5 + j * 11) % 13) / 13.0;
        }
    volatile double sink = 0;
    for (long r = 0; r < reps; r++) {
        double t = now_ns();
        for (long it = 0; it < iters; it++) {
            for (int i = 0; i < N; i++)
                for (int j = 0; j < N; j++) {
                    double s = 0;
                    for (int k = 0; k < N; k++)
                        s += ma[i][k] * mb[k][j];
                    mc[i][j] = s;
                }
            ma[it % N][it % N] += mc[(it + 1) % N][it % N] * 1e-9;
        }
        sink += mc[1][2];
        sample((now_ns() - t) / 1e6);
    }
    (void)sink;
}

static int run_rusage(char **argv) {
    struct rusage ru;
    int status;
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        execv(argv[0], argv);
        fprintf(stderr, "wprobe: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (wait4(pid, &status, 0, &ru) < 0)
        die("wait4");
    printf("maxrss_kib %ld\n", ru.ru_maxrss);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "getpid") && argc == 4)
        bench_getpid(num(argv[2], "ITERS"), num(argv[3], "REPS"));
    else if (!strcmp(cmd, "rw") && argc == 4)
        bench_rw(num(argv[2], "ITERS"), num(argv[3], "REPS"));
    else if ((!strcmp(cmd, "open") || !strcmp(cmd, "stat")) && argc == 5)
        bench_open_stat(argv[2], num(argv[3], "NFILES"), num(argv[4], "REPS"), cmd[0] == 's');
    else if (!strcmp(cmd, "seqread") && argc == 4)
        bench_seqread(argv[2], num(argv[3], "REPS"));
    else if (!strcmp(cmd, "tcprtt") && argc == 4)
        bench_tcprtt(num(argv[2], "ITERS"), num(argv[3], "REPS"));
    else if (!strcmp(cmd, "tcpbw") && argc == 4)
        bench_tcpbw(num(argv[2], "MIB"), num(argv[3], "REPS"));
    else if (!strcmp(cmd, "rusage") && argc >= 3)
        return run_rusage(argv + 2);
    else if (!strcmp(cmd, "cpu") && argc == 4)
        bench_cpu(num(argv[2], "ITERS"), num(argv[3], "REPS"));
    else {
        fprintf(stderr, "usage: wprobe getpid|rw|open|stat|seqread|tcprtt|tcpbw|cpu|rusage ARGS... "
                        "(see the source)\n");
        return 2;
    }
    return 0;
}
