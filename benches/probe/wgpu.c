/*
 * wgpu: the workload of the GPU suite of `warren-bench`, run on the host and inside
 * warren-runtime containers that get the GPUs through NVIDIA_VISIBLE_DEVICES.
 *
 * Built at bench time with `gcc -O2 ... -ldl`, dynamically linked: libcuda.so.1 needs
 * glibc, so the probe cannot be static. It dlopen()s libcuda.so.1 (the driver, injected
 * into containers by the runtime) and uses only the CUDA driver API, looked up with
 * dlsym(): no CUDA toolkit is needed to build or run it. The kernel is PTX text that the
 * driver compiles for the GPU at hand.
 *
 * Every timed sub-command runs REPS repetitions and prints one line per repetition,
 * `sample VALUE` (the first is a warm-up that the harness drops). A failing CUDA call is
 * printed to stderr as `error: cuXxx returned N (NAME)` with exit status 1, so that the
 * harness reports the configuration as failed instead of timing it.
 *
 *   wgpu info                   `device NAME` of device 0 (checks that CUDA works)
 *   wgpu matmul N REPS          GFLOP/s of one N x N fp32 matrix product (C = A B, one
 *                               thread per element of C); C is checked against the CPU
 *   wgpu copy htod MIB REPS     GB/s (1e9 bytes/s) copying MIB MiB of pageable host
 *   wgpu copy dtoh MIB REPS     memory to the device, or back
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext;
typedef void *CUmodule;
typedef void *CUfunction;
typedef void *CUstream;
typedef unsigned long long CUdeviceptr;

/* CUjit_option values (cuda.h): the JIT's error log, for a PTX that does not compile. */
#define CU_JIT_ERROR_LOG_BUFFER 5
#define CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES 6

static struct {
    CUresult (*cuInit)(unsigned int);
    CUresult (*cuDeviceGet)(CUdevice *, int);
    CUresult (*cuDeviceGetName)(char *, int, CUdevice);
    CUresult (*cuCtxCreate_v2)(CUcontext *, unsigned int, CUdevice);
    CUresult (*cuCtxDestroy_v2)(CUcontext);
    CUresult (*cuCtxSynchronize)(void);
    CUresult (*cuMemAlloc_v2)(CUdeviceptr *, size_t);
    CUresult (*cuMemFree_v2)(CUdeviceptr);
    CUresult (*cuMemcpyHtoD_v2)(CUdeviceptr, const void *, size_t);
    CUresult (*cuMemcpyDtoH_v2)(void *, CUdeviceptr, size_t);
    CUresult (*cuModuleLoadDataEx)(CUmodule *, const void *, unsigned int, int *, void **);
    CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
    CUresult (*cuModuleUnload)(CUmodule);
    CUresult (*cuLaunchKernel)(CUfunction, unsigned int, unsigned int, unsigned int,
                               unsigned int, unsigned int, unsigned int, unsigned int,
                               CUstream, void **, void **);
    /* Optional: only for a readable error name. */
    CUresult (*cuGetErrorName)(CUresult, const char **);
} cu;

static char jit_log[8192];

__attribute__((noreturn)) static void fail(const char *what) {
    fprintf(stderr, "error: %s\n", what);
    exit(1);
}

static void check(CUresult r, const char *call) {
    if (r == 0)
        return;
    const char *name = NULL;
    if (cu.cuGetErrorName == NULL || cu.cuGetErrorName(r, &name) != 0)
        name = NULL;
    fprintf(stderr, "error: %s returned %d%s%s%s\n", call, r, name ? " (" : "",
            name ? name : "", name ? ")" : "");
    if (jit_log[0])
        fprintf(stderr, "error: JIT log: %s\n", jit_log);
    exit(1);
}

#define CU(call, ...) check(cu.call(__VA_ARGS__), #call)

static void *sym(void *lib, const char *name, int required) {
    void *p = dlsym(lib, name);
    if (p == NULL && required) {
        fprintf(stderr, "error: libcuda.so.1 has no %s\n", name);
        exit(1);
    }
    return p;
}

/* Opens the driver and sets up a context on device 0. */
static CUcontext open_cuda(void) {
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        const char *e = dlerror();
        fprintf(stderr, "error: cannot open libcuda.so.1 (the NVIDIA driver): %s\n",
                e ? e : "unknown dlopen error");
        exit(1);
    }
#define SYM(name) *(void **)(&cu.name) = sym(lib, #name, 1)
    SYM(cuInit);
    SYM(cuDeviceGet);
    SYM(cuDeviceGetName);
    SYM(cuCtxCreate_v2);
    SYM(cuCtxDestroy_v2);
    SYM(cuCtxSynchronize);
    SYM(cuMemAlloc_v2);
    SYM(cuMemFree_v2);
    SYM(cuMemcpyHtoD_v2);
    SYM(cuMemcpyDtoH_v2);
    SYM(cuModuleLoadDataEx);
    SYM(cuModuleGetFunction);
    SYM(cuModuleUnload);
    SYM(cuLaunchKernel);
#undef SYM
    *(void **)(&cu.cuGetErrorName) = sym(lib, "cuGetErrorName", 0);
    CU(cuInit, 0);
    CUdevice dev;
    CU(cuDeviceGet, &dev, 0);
    CUcontext ctx;
    CU(cuCtxCreate_v2, &ctx, 0, dev);
    return ctx;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long num(const char *s, const char *what, long max) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v <= 0 || v > max) {
        fprintf(stderr, "error: bad %s: %s (1 to %ld)\n", what, s, max);
        exit(2);
    }
    return v;
}

static void sample(double v) {
    printf("sample %.4f\n", v);
    fflush(stdout);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (p == NULL)
        fail("out of host memory");
    return p;
}

/*
 * C = A B for row-major n x n fp32 matrices, one thread per element of C:
 *
 *   col = ctaid.x * ntid.x + tid.x;  row = ctaid.y * ntid.y + tid.y;
 *   if (col >= n || row >= n) return;
 *   a = &A[row * n]; b = &B[col]; acc = 0;
 *   for (k = 0; k < n; k++) { acc = fma(*a, *b, acc); a += 1; b += n; }
 *   C[row * n + col] = acc;
 *
 * The loop is a do-while: n >= 1 here (the host refuses n = 0, and the bounds check
 * leaves when n = 0 anyway). Indices are 32-bit (the host caps n so that n * n fits),
 * widened to byte offsets with mul.wide.u32. PTX ISA 6.0 for sm_52 is the oldest that
 * any current driver accepts and compiles for every newer GPU.
 */
static const char PTX[] =
    ".version 6.0\n"
    ".target sm_52\n"
    ".address_size 64\n"
    "\n"
    ".visible .entry sgemm(\n"
    "    .param .u64 sgemm_a,\n"
    "    .param .u64 sgemm_b,\n"
    "    .param .u64 sgemm_c,\n"
    "    .param .u32 sgemm_n\n"
    ")\n"
    "{\n"
    "    .reg .pred %p<4>;\n"
    "    .reg .b32 %r<16>;\n"
    "    .reg .f32 %f<4>;\n"
    "    .reg .b64 %rd<16>;\n"
    "\n"
    "    ld.param.u64 %rd1, [sgemm_a];\n"
    "    ld.param.u64 %rd2, [sgemm_b];\n"
    "    ld.param.u64 %rd3, [sgemm_c];\n"
    "    ld.param.u32 %r1, [sgemm_n];\n"
    "    cvta.to.global.u64 %rd4, %rd1;\n"
    "    cvta.to.global.u64 %rd5, %rd2;\n"
    "    cvta.to.global.u64 %rd6, %rd3;\n"
    "\n"
    "    mov.u32 %r2, %ctaid.x;\n"
    "    mov.u32 %r3, %ntid.x;\n"
    "    mov.u32 %r4, %tid.x;\n"
    "    mad.lo.u32 %r5, %r2, %r3, %r4;\n" /* col */
    "    mov.u32 %r6, %ctaid.y;\n"
    "    mov.u32 %r7, %ntid.y;\n"
    "    mov.u32 %r8, %tid.y;\n"
    "    mad.lo.u32 %r9, %r6, %r7, %r8;\n" /* row */
    "    setp.ge.u32 %p1, %r5, %r1;\n"
    "    setp.ge.u32 %p2, %r9, %r1;\n"
    "    or.pred %p3, %p1, %p2;\n"
    "    @%p3 bra DONE;\n"
    "\n"
    "    mul.lo.u32 %r10, %r9, %r1;\n" /* row * n */
    "    mul.wide.u32 %rd7, %r10, 4;\n"
    "    add.s64 %rd8, %rd4, %rd7;\n" /* a = &A[row * n] */
    "    mul.wide.u32 %rd9, %r5, 4;\n"
    "    add.s64 %rd10, %rd5, %rd9;\n" /* b = &B[col] */
    "    mul.wide.u32 %rd11, %r1, 4;\n" /* row stride of B, bytes */
    "    mov.f32 %f1, 0f00000000;\n"
    "    mov.u32 %r11, 0;\n" /* k */
    "LOOP:\n"
    "    ld.global.f32 %f2, [%rd8];\n"
    "    ld.global.f32 %f3, [%rd10];\n"
    "    fma.rn.f32 %f1, %f2, %f3, %f1;\n"
    "    add.s64 %rd8, %rd8, 4;\n"
    "    add.s64 %rd10, %rd10, %rd11;\n"
    "    add.u32 %r11, %r11, 1;\n"
    "    setp.lt.u32 %p1, %r11, %r1;\n"
    "    @%p1 bra LOOP;\n"
    "\n"
    "    add.u32 %r12, %r10, %r5;\n" /* row * n + col */
    "    mul.wide.u32 %rd12, %r12, 4;\n"
    "    add.s64 %rd13, %rd6, %rd12;\n"
    "    st.global.f32 [%rd13], %f1;\n"
    "DONE:\n"
    "    ret;\n"
    "}\n";

/*
 * Inputs are small multiples of 1/4, so every product is a multiple of 1/16 and every
 * partial sum of up to 16384 of them stays below 2^24 / 16: exactly representable in
 * fp32. The GPU's result must then equal the CPU's exactly, whatever the order or FMA.
 */
static float in_a(size_t i) { return (float)((long)(i * 7 % 13) - 6) * 0.25f; }
static float in_b(size_t i) { return (float)((long)(i * 5 % 11) - 5) * 0.25f; }

static void bench_matmul(long n, long reps) {
    CUcontext ctx = open_cuda();
    size_t elems = (size_t)n * (size_t)n, bytes = elems * sizeof(float);
    float *a = xmalloc(bytes), *b = xmalloc(bytes), *c = xmalloc(bytes);
    for (size_t i = 0; i < elems; i++) {
        a[i] = in_a(i);
        b[i] = in_b(i);
    }
    /* NaN everywhere: an element the kernel does not write fails the check. */
    memset(c, 0xff, bytes);
    CUdeviceptr da, db, dc;
    CU(cuMemAlloc_v2, &da, bytes);
    CU(cuMemAlloc_v2, &db, bytes);
    CU(cuMemAlloc_v2, &dc, bytes);
    CU(cuMemcpyHtoD_v2, da, a, bytes);
    CU(cuMemcpyHtoD_v2, db, b, bytes);
    CU(cuMemcpyHtoD_v2, dc, c, bytes);

    int opts[2] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void *vals[2] = {jit_log, (void *)(uintptr_t)sizeof(jit_log)};
    CUmodule mod;
    CU(cuModuleLoadDataEx, &mod, PTX, 2, opts, vals);
    jit_log[0] = 0;
    CUfunction fn;
    CU(cuModuleGetFunction, &fn, mod, "sgemm");

    unsigned int un = (unsigned int)n, block = 16, grid = (un + block - 1) / block;
    void *params[] = {&da, &db, &dc, &un};
    double flop = 2.0 * (double)n * (double)n * (double)n;
    for (long r = 0; r < reps; r++) {
        double t = now_s();
        CU(cuLaunchKernel, fn, grid, grid, 1, block, block, 1, 0, NULL, params, NULL);
        check(cu.cuCtxSynchronize(), "cuCtxSynchronize");
        sample(flop / (now_s() - t) / 1e9);
    }

    CU(cuMemcpyDtoH_v2, c, dc, bytes);
    long picks[][2] = {{0, 0},         {n - 1, n - 1}, {0, n - 1},     {n - 1, 0},
                       {n / 2, n / 3}, {n / 3, n / 2}, {1, n / 2 + 1}, {n / 2 + 1, 1}};
    for (size_t p = 0; p < sizeof(picks) / sizeof(picks[0]); p++) {
        size_t i = (size_t)picks[p][0], j = (size_t)picks[p][1], nn = (size_t)n;
        double want = 0;
        for (size_t k = 0; k < nn; k++)
            want += (double)in_a(i * nn + k) * (double)in_b(k * nn + j);
        float got = c[i * nn + j];
        if (!(fabs((double)got - want) <= 1e-3)) {
            fprintf(stderr, "error: wrong matmul result: C[%zu][%zu] = %g, expected %g\n", i,
                    j, (double)got, want);
            exit(1);
        }
    }

    CU(cuModuleUnload, mod);
    CU(cuMemFree_v2, da);
    CU(cuMemFree_v2, db);
    CU(cuMemFree_v2, dc);
    CU(cuCtxDestroy_v2, ctx);
    free(a);
    free(b);
    free(c);
}

static void bench_copy(int to_device, long mib, long reps) {
    CUcontext ctx = open_cuda();
    size_t bytes = (size_t)mib << 20;
    unsigned char *host = xmalloc(bytes), *back = xmalloc(bytes);
    for (size_t i = 0; i < bytes; i++)
        host[i] = (unsigned char)(i * 131 + 7);
    memset(back, 0, bytes);
    CUdeviceptr dev;
    CU(cuMemAlloc_v2, &dev, bytes);
    /* A round trip first: the copies must move the bytes, not just take time. */
    CU(cuMemcpyHtoD_v2, dev, host, bytes);
    CU(cuMemcpyDtoH_v2, back, dev, bytes);
    if (memcmp(host, back, bytes) != 0)
        fail("host->device->host round trip changed the data");
    for (long r = 0; r < reps; r++) {
        double t = now_s();
        if (to_device)
            CU(cuMemcpyHtoD_v2, dev, host, bytes);
        else
            CU(cuMemcpyDtoH_v2, back, dev, bytes);
        check(cu.cuCtxSynchronize(), "cuCtxSynchronize");
        sample((double)bytes / (now_s() - t) / 1e9);
    }
    CU(cuMemFree_v2, dev);
    CU(cuCtxDestroy_v2, ctx);
    free(host);
    free(back);
}

static void info(void) {
    CUcontext ctx = open_cuda();
    CUdevice dev;
    CU(cuDeviceGet, &dev, 0);
    char name[256] = {0};
    CU(cuDeviceGetName, name, (int)sizeof(name) - 1, dev);
    printf("device %s\n", name);
    CU(cuCtxDestroy_v2, ctx);
}

__attribute__((noreturn)) static void usage(void) {
    fprintf(stderr, "usage: wgpu info | matmul N REPS | copy htod|dtoh MIB REPS\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "info") == 0) {
        info();
    } else if (argc == 4 && strcmp(argv[1], "matmul") == 0) {
        bench_matmul(num(argv[2], "N", 16384), num(argv[3], "REPS", 100000));
    } else if (argc == 5 && strcmp(argv[1], "copy") == 0) {
        int to_device;
        if (strcmp(argv[2], "htod") == 0)
            to_device = 1;
        else if (strcmp(argv[2], "dtoh") == 0)
            to_device = 0;
        else
            usage();
        bench_copy(to_device, num(argv[3], "MIB", 65536), num(argv[4], "REPS", 100000));
    } else {
        usage();
    }
    return 0;
}
