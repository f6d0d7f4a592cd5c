/*
 * Micro-benchmark loops for the sandbox benchmark (tests/src/sandbox_bench.rs), built with
 * `gcc -static -O2` and run inside containers:
 *
 *   loops getpid ITERS REPS        REPS timings of ITERS raw getpid(2) calls
 *   loops open PATH ITERS REPS     REPS timings of ITERS open(2)+close(2) of PATH
 *
 * Each repetition prints `KIND ns_per_op` with three decimals; the caller takes the median.
 * getpid goes through syscall(2), so no library cache can answer it.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "getpid") == 0) {
        long iters = atol(argv[2]), reps = atol(argv[3]);
        for (long r = 0; r < reps; r++) {
            double t0 = now_ns();
            for (long i = 0; i < iters; i++)
                syscall(SYS_getpid);
            printf("getpid %.3f\n", (now_ns() - t0) / (double)iters);
        }
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "open") == 0) {
        const char *path = argv[2];
        long iters = atol(argv[3]), reps = atol(argv[4]);
        for (long r = 0; r < reps; r++) {
            double t0 = now_ns();
            for (long i = 0; i < iters; i++) {
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0) {
                    perror(path);
                    return 1;
                }
                close(fd);
            }
            printf("open %.3f\n", (now_ns() - t0) / (double)iters);
        }
        return 0;
    }
    fprintf(stderr, "usage: loops getpid ITERS REPS | loops open PATH ITERS REPS\n");
    return 2;
}
