#line 18 "chapters/00-measuring.md"
// harness.cuh: the measuring harness every chapter program includes.
#pragma once
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
// <<exit-codes-and-error-checks>>
#line 62 "chapters/00-measuring.md"
enum {
    EXIT_PASS = 0,       // every check passed
    EXIT_CHECK = 1,      // a check failed, or a CUDA call did
    EXIT_USAGE = 2,      // bad arguments
    EXIT_NO_DEVICE = 77  // no CUDA device: CTest reports the test as skipped
};

static inline void cuda_check(cudaError_t err, const char *call, const char *file, int line)
{
    if (err == cudaSuccess) return;
    fprintf(stderr, "%s:%d: CUDA error %s: %s\n    in: %s\n", file, line,
            cudaGetErrorName(err), cudaGetErrorString(err), call);
    exit(EXIT_CHECK);
}
#define CUDA_CHECK(call) cuda_check((call), #call, __FILE__, __LINE__)
#define CHECK_LAUNCH() cuda_check(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)

static inline void usage_error(const char *what, const char *arg, const char *accepted)
{
    fprintf(stderr, "error: %s '%s'\n  accepted: %s\n  (--help lists every option)\n",
            what, arg, accepted);
    exit(EXIT_USAGE);
}
#line 31 "chapters/00-measuring.md"
// <<allocate-memory-or-say-how-much-was-missing>>
#line 95 "chapters/00-measuring.md"
static inline void *device_alloc(size_t bytes, const char *what)
{
    void *p = NULL;
    cudaError_t err = cudaMalloc(&p, bytes ? bytes : 1);
    if (err == cudaErrorMemoryAllocation) {
        size_t free_b = 0, total_b = 0;
        cudaGetLastError();  // clear the sticky-free allocation error
        cudaMemGetInfo(&free_b, &total_b);
        fprintf(stderr,
                "error: out of device memory: %s needs %.1f MiB, the GPU has %.1f MiB "
                "free of %.1f MiB\n  try a smaller size (--n)\n",
                what, bytes / 1048576.0, free_b / 1048576.0, total_b / 1048576.0);
        exit(EXIT_CHECK);
    }
    CUDA_CHECK(err);
    return p;
}

static inline void *host_alloc(size_t bytes, const char *what)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "error: out of host memory: %s needs %.1f MiB\n", what,
                bytes / 1048576.0);
        exit(EXIT_CHECK);
    }
    return p;
}

// Fails with exit 2 when the problem's arrays do not fit in the GPU's free memory.
static inline void check_fits(const char *size, size_t bytes)
{
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    if (bytes > free_b) {
        char need[96];
        snprintf(need, sizeof need, "a size whose arrays fit in the %.1f GiB free (this one needs %.1f GiB)",
                 free_b / 1073741824.0, bytes / 1073741824.0);
        usage_error("size too large for this GPU's memory", size, need);
    }
}
#line 32 "chapters/00-measuring.md"
// <<find-out-which-gpu-this-is>>
#line 162 "chapters/00-measuring.md"
typedef struct {
    int id;
    char name[256];
    char slug[256];  // name lower-cased, runs of non-alphanumerics turned into '-'
    int cc_major, cc_minor;
    int sms;
    size_t l2_bytes, mem_bytes;
    int driver_version, runtime_version;
    int code_arch;  // what this program's kernels were compiled as: 90 for sm_90 code
} Device;

// The architecture this program's kernels run as on this GPU (device_open sets it): 80
// for a build for sm_80, even on a Hopper, whose driver then compiles the sm_80 code.
static int g_code_arch = 0;

// Device code that needs Hopper's instructions is compiled only for targets that have
// them; for older targets its body is left out, and its launcher is never called there.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
#define HOPPER_CODE 0
#else
#define HOPPER_CODE 1
#endif

// NULL where the kernels run as sm_90 or newer; else the reason a Hopper version is skipped.
static inline const char *needs_sm90(void) { return g_code_arch >= 90 ? NULL : "needs sm_90"; }

static inline void make_slug(char *slug, size_t cap, const char *name)
{
    size_t k = 0;
    int dash = 0;
    for (const char *c = name; *c && k + 1 < cap; c++) {
        if (isalnum((unsigned char)*c)) {
            if (dash && k > 0) slug[k++] = '-';
            if (k + 1 < cap) slug[k++] = (char)tolower((unsigned char)*c);
            dash = 0;
        } else {
            dash = 1;
        }
    }
    slug[k] = '\0';
}

__global__ void probe_kernel(int *x) { if (x) *x = 1; }

// Opens device 0. Returns EXIT_NO_DEVICE when there is none; exits with a clear
// message when this binary holds no code the device can run. pretend_arch, when not 0,
// lowers the architecture the kernels count as (80: run as if on an sm_80 GPU).
static inline int device_open(Device *d, int pretend_arch)
{
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess || count == 0) {
        fprintf(stderr, "no CUDA device (%s): skipping\n",
                err != cudaSuccess ? cudaGetErrorString(err) : "none found");
        return EXIT_NO_DEVICE;
    }
    cudaDeviceProp prop;
    memset(d, 0, sizeof *d);
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    CUDA_CHECK(cudaSetDevice(0));
    snprintf(d->name, sizeof d->name, "%s", prop.name);
    make_slug(d->slug, sizeof d->slug, prop.name);
    d->cc_major = prop.major;
    d->cc_minor = prop.minor;
    d->sms = prop.multiProcessorCount;
    d->l2_bytes = (size_t)prop.l2CacheSize;
    d->mem_bytes = prop.totalGlobalMem;
    CUDA_CHECK(cudaDriverGetVersion(&d->driver_version));
    CUDA_CHECK(cudaRuntimeGetVersion(&d->runtime_version));
    cudaFuncAttributes attr;
    err = cudaFuncGetAttributes(&attr, probe_kernel);
    if (err != cudaSuccess) {
        fprintf(stderr,
                "error: this program holds no code for %s (compute capability %d.%d): %s\n"
                "  rebuild for it, e.g. 'make ARCH=sm_%d%d'\n",
                d->name, d->cc_major, d->cc_minor, cudaGetErrorString(err), d->cc_major,
                d->cc_minor);
        exit(EXIT_USAGE);
    }
    d->code_arch = attr.ptxVersion;  // the virtual architecture the kernels were compiled for
    if (pretend_arch && pretend_arch < d->code_arch) d->code_arch = pretend_arch;
    g_code_arch = d->code_arch;
    return EXIT_PASS;
}

static inline void device_print(const Device *d)
{
    printf("device: %s, compute capability %d.%d, %d SMs, %.0f MB L2, %.1f GiB, "
           "driver %d.%d, runtime %d.%d, kernels run as sm_%d\n",
           d->name, d->cc_major, d->cc_minor, d->sms, d->l2_bytes / 1e6,
           d->mem_bytes / 1073741824.0, d->driver_version / 1000,
           d->driver_version % 1000 / 10, d->runtime_version / 1000,
           d->runtime_version % 1000 / 10, d->code_arch);
}
#line 33 "chapters/00-measuring.md"
// <<make-random-inputs-that-can-catch-mistakes>>
#line 270 "chapters/00-measuring.md"
// splitmix64: tiny, fast, and the same sequence on every machine for a given seed.
static inline uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Uniform in [0, 1) with 53 random bits.
static inline double rng_uniform(uint64_t *state) { return (rng_next(state) >> 11) * 0x1.0p-53; }

// Fills x with uniform values in [lo, hi). Choose lo, hi so the mean is not zero:
// a zero-mean input lets a kernel that drops half its elements still look right.
static inline void fill_uniform_f32(float *x, size_t n, float lo, float hi, uint64_t seed)
{
    uint64_t state = seed;
    for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * rng_uniform(&state));
}

// A seed for one (chapter, size) pair: every size gets its own fresh inputs.
static inline uint64_t seed_for(uint64_t base, const char *size)
{
    uint64_t h = base ^ 0xCBF29CE484222325ull;
    for (const char *c = size; *c; c++) h = (h ^ (unsigned char)*c) * 0x100000001B3ull;
    return h;
}
#line 34 "chapters/00-measuring.md"
// <<poison-the-outputs>>
#line 305 "chapters/00-measuring.md"
// All-ones bytes are a NaN in every floating-point format we use (f64, f32, f16, bf16),
// so an element a kernel forgot to write can never pass the check.
static inline void poison(void *device_ptr, size_t bytes)
{
    CUDA_CHECK(cudaMemset(device_ptr, 0xFF, bytes));
}
#line 35 "chapters/00-measuring.md"
// <<element-types-and-how-finely-they-round>>
#line 334 "chapters/00-measuring.md"
typedef enum { F32, F16, BF16 } DType;

static inline size_t dtype_bytes(DType t) { return t == F32 ? 4 : 2; }

static inline DType parse_dtype(const char *dtype)
{
    if (!strcmp(dtype, "f32")) return F32;
    if (!strcmp(dtype, "f16")) return F16;
    if (!strcmp(dtype, "bf16")) return BF16;
    usage_error("unknown dtype", dtype, "f32 f16 bf16");
    return F32;
}

// x rounded to the element type and back: the value the device will see.
static inline float round_to(DType t, float x)
{
    if (t == F16) return __half2float(__float2half(x));
    if (t == BF16) return __bfloat162float(__float2bfloat16(x));
    return x;
}

// Writes n floats into a device array of the element type.
static inline void upload(void *device, const float *x, size_t n, DType t)
{
    size_t e = dtype_bytes(t);
    unsigned char *staging = (unsigned char *)host_alloc(n * e, "staging");
    for (size_t i = 0; i < n; i++) {
        if (t == F32) ((float *)staging)[i] = x[i];
        else if (t == F16) ((__half *)staging)[i] = __float2half(x[i]);
        else ((__nv_bfloat16 *)staging)[i] = __float2bfloat16(x[i]);
    }
    CUDA_CHECK(cudaMemcpy(device, staging, n * e, cudaMemcpyHostToDevice));
    free(staging);
}

// Reads n elements of the element type from the device, widened to double (free it).
static inline double *download(const void *device, size_t n, DType t)
{
    size_t e = dtype_bytes(t);
    unsigned char *raw = (unsigned char *)host_alloc(n * e, "output");
    CUDA_CHECK(cudaMemcpy(raw, device, n * e, cudaMemcpyDeviceToHost));
    double *wide = (double *)host_alloc(n * sizeof(double), "output");
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        wide[i] = t == F32 ? ((float *)raw)[i]
                : t == F16 ? __half2float(((__half *)raw)[i])
                           : __bfloat162float(((__nv_bfloat16 *)raw)[i]);
    free(raw);
    return wide;
}

// Half the gap between the two values of type t around a number of magnitude |x|: the
// most that rounding to nearest moves it. Below the smallest normal number the values
// are evenly spaced (subnormal), so the gap stops shrinking there.
static inline double half_spacing(DType t, double x)
{
    int digits = t == F32 ? 24 : t == F16 ? 11 : 8;  // significand bits, the implicit one too
    int min_exp = t == F16 ? -14 : -126;             // the smallest normal number is 2^min_exp
    int e = 0;
    frexp(fabs(x), &e);                              // |x| = m 2^e with m in [0.5, 1)
    if (x == 0.0 || e - 1 < min_exp) e = min_exp + 1;
    return ldexp(1.0, e - digits - 1);
}
#line 36 "chapters/00-measuring.md"
// <<check-every-element-against-the-reference>>
#line 440 "chapters/00-measuring.md"
typedef struct {
    DType dtype;        // the output's element type: its final rounding is in every bound
    double atol, rtol;  // the float arithmetic's own error: atol + rtol * |ref|
} Tolerance;

// The most a result may differ from its exact value ref when it was computed in float
// with an error of at most arith and rounded to t once at the end, plus `extra` roundings
// to t on the way, of intermediate values no larger than scale.
static inline double error_bound(DType t, double ref, double arith, int extra, double scale)
{
    return arith + half_spacing(t, fabs(ref) + arith) + extra * half_spacing(t, scale);
}

typedef struct {
    size_t mismatches;
    double max_abs_err, max_rel_err;
} CheckResult;

// One check's result added to a version's total (the mismatches summed, the errors' maxima).
static inline void add_check(CheckResult *total, CheckResult part)
{
    total->mismatches += part.mismatches;
    total->max_abs_err = fmax(total->max_abs_err, part.max_abs_err);
    total->max_rel_err = fmax(total->max_rel_err, part.max_rel_err);
}

// Element i's bound on |got - ref|; *scale is what its relative error is reported against.
typedef double (*ElementBound)(const void *ctx, size_t i, double *scale);

// Compares every element with its own bound; counts on every core, then, on failure,
// names the first few (by row and column when row_len is not 0). Written so that NaN
// fails.
static inline CheckResult check_elements(const char *version, const char *size, const double *got, const double *ref,
                                         size_t n, ElementBound bound_of, const void *ctx, size_t row_len)
{
    size_t mismatches = 0;
    double max_abs = 0.0, max_rel = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : mismatches) reduction(max : max_abs, max_rel)
    for (size_t i = 0; i < n; i++) {
        double scale, bound = bound_of(ctx, i, &scale), err = fabs(got[i] - ref[i]);
        mismatches += !(err <= bound);
        if (err != err) err = INFINITY;
        max_abs = fmax(max_abs, err);
        max_rel = fmax(max_rel, err / fmax(scale, 1e-30));
    }
    for (size_t i = 0, named = 0; mismatches && named < 5 && i < n; i++) {
        double scale, bound = bound_of(ctx, i, &scale), err = fabs(got[i] - ref[i]);
        if (err <= bound) continue;
        char where[64];  // "row r col c" for a matrix, else the element's index
        if (row_len) snprintf(where, sizeof where, "row %zu col %zu", i / row_len, i % row_len);
        else snprintf(where, sizeof where, "element %zu", i);
        fprintf(stderr, "FAIL %s size %s: %s: expected %.9g, got %.9g (|error| %.3g > %.3g)\n", version, size,
                where, ref[i], got[i], err, bound);
        named++;
    }
    if (mismatches) fprintf(stderr, "FAIL %s size %s: %zu of %zu elements mismatch\n", version, size, mismatches, n);
    CheckResult r = {mismatches, max_abs, max_rel};
    return r;
}

// Prints "bits VERSION DTYPE SIZE HASH", the FNV-1a hash of an output's bytes: the same
// on every run for a deterministic version (tests/repeat_test.sh compares them).
static inline void report_bits(const char *version, DType t, const char *size, const void *device, size_t bytes)
{
    unsigned char *raw = (unsigned char *)host_alloc(bytes, "output");
    CUDA_CHECK(cudaMemcpy(raw, device, bytes, cudaMemcpyDeviceToHost));
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < bytes; i++) h = (h ^ raw[i]) * 0x100000001B3ull;
    free(raw);
    printf("bits %s %s %s %016llx\n", version, t == F32 ? "f32" : t == F16 ? "f16" : "bf16", size,
           (unsigned long long)h);
}

// Every element within the bound that a Tolerance gives it.
typedef struct {
    const double *ref;
    Tolerance tol;
} CloseBound;

static inline double close_bound(const void *ctx, size_t i, double *scale)
{
    const CloseBound *c = (const CloseBound *)ctx;
    *scale = fabs(c->ref[i]);
    return error_bound(c->tol.dtype, c->ref[i], c->tol.atol + c->tol.rtol * fabs(c->ref[i]), 0, 0.0);
}

static inline CheckResult check_close(const char *version, const char *size, const double *got,
                                      const double *ref, size_t n, Tolerance tol)
{
    CloseBound c = {ref, tol};
    return check_elements(version, size, got, ref, n, close_bound, &c, 0);
}

// The reference of every sum of floats in the book: the sum, and the sum of
// magnitudes that scales its rounding error, both accumulated in double.
static inline void reference_sum_f32(double *sum, double *abs_sum, const float *x, size_t n)
{
    *sum = 0.0;
    *abs_sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        *sum += x[i];
        *abs_sum += fabs(x[i]);
    }
}

// The same for float results: widens to double and calls check_close.
static inline CheckResult check_close_f32(const char *version, const char *size, const float *got,
                                   const double *ref, size_t n, Tolerance tol)
{
    double *wide = (double *)host_alloc(n * sizeof(double), "check buffer");
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) wide[i] = got[i];
    CheckResult r = check_close(version, size, wide, ref, n, tol);
    free(wide);
    return r;
}
#line 37 "chapters/00-measuring.md"
// <<time-launches-with-events-and-a-median>>
#line 582 "chapters/00-measuring.md"
// A launch function runs the work being timed once, asynchronously, on stream 0.
typedef void (*LaunchFn)(void *ctx);

typedef struct {
    int warmup;        // untimed launches first: module load, clocks, caches of code
    int min_reps;      // at least this many timed launches
    int max_reps;      // at most this many
    double target_ms;  // ... or as many as fit in about this much GPU time
    int flush_l2;      // evict the inputs from L2 before every timed launch
} TimingPlan;

static const TimingPlan TIMING_DEFAULT = {5, 20, 300, 200.0, 1};

typedef struct {
    double median_us, min_us, max_us;
    int reps;
} Timing;

// The L2 flush: read a buffer twice the size of L2 so whatever the last launch left
// there is evicted. Reading (not writing) leaves clean lines, so the timed kernel
// pays no write-backs of the flush's data.
__global__ void l2_flush_kernel(int *sink, const int4 *buf, size_t n)
{
    int acc = 0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        int4 v = buf[i];
        acc ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    if (acc == 0x7FFFFFFF) *sink = acc;  // never true for a zeroed buffer, but the compiler cannot know
}

typedef struct {
    int4 *buf;
    size_t n;  // int4 elements
    int *sink;
    int sms;
} L2Flusher;

static L2Flusher g_flusher;

static inline void l2_flush(void)
{
    if (!g_flusher.buf) {
        int dev = 0, l2 = 0, sms = 0;
        CUDA_CHECK(cudaGetDevice(&dev));
        CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));
        CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
        g_flusher.n = 2 * (size_t)l2 / sizeof(int4);
        g_flusher.buf = (int4 *)device_alloc(g_flusher.n * sizeof(int4), "L2 flush buffer");
        g_flusher.sink = (int *)device_alloc(sizeof(int), "L2 flush sink");
        g_flusher.sms = sms;
        CUDA_CHECK(cudaMemset(g_flusher.buf, 0, g_flusher.n * sizeof(int4)));
    }
    l2_flush_kernel<<<4 * g_flusher.sms, 512>>>(g_flusher.sink, g_flusher.buf, g_flusher.n);
    CHECK_LAUNCH();
}

static inline int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Times fn: warm-up launches, then repetitions each bracketed by its own pair of
// events (the flush sits outside the pair), and the median of their times.
static inline Timing time_launches(LaunchFn fn, void *ctx, TimingPlan plan)
{
    cudaEvent_t start, stop;
    CUDA_CHECK(cudaEventCreate(&start));
    CUDA_CHECK(cudaEventCreate(&stop));
    // warm-up, and an estimate of one launch's time to choose the repetitions
    float est_ms = 0.0f;
    for (int i = 0; i < plan.warmup; i++) {
        if (plan.flush_l2) l2_flush();
        CUDA_CHECK(cudaEventRecord(start));
        fn(ctx);
        CUDA_CHECK(cudaEventRecord(stop));
        CUDA_CHECK(cudaEventSynchronize(stop));
        CUDA_CHECK(cudaEventElapsedTime(&est_ms, start, stop));
    }
    int reps = plan.max_reps;
    if (est_ms > 0.0f && plan.target_ms / est_ms < reps) reps = (int)(plan.target_ms / est_ms);
    if (reps < plan.min_reps) reps = plan.min_reps;

    cudaEvent_t *ev = (cudaEvent_t *)host_alloc(2 * reps * sizeof(cudaEvent_t), "events");
    for (int i = 0; i < 2 * reps; i++) CUDA_CHECK(cudaEventCreate(&ev[i]));
    for (int i = 0; i < reps; i++) {
        if (plan.flush_l2) l2_flush();
        CUDA_CHECK(cudaEventRecord(ev[2 * i]));
        fn(ctx);
        CUDA_CHECK(cudaEventRecord(ev[2 * i + 1]));
    }
    CUDA_CHECK(cudaDeviceSynchronize());
    double *us = (double *)host_alloc(reps * sizeof(double), "timings");
    for (int i = 0; i < reps; i++) {
        float ms = 0.0f;
        CUDA_CHECK(cudaEventElapsedTime(&ms, ev[2 * i], ev[2 * i + 1]));
        us[i] = 1000.0 * ms;
    }
    qsort(us, reps, sizeof(double), compare_doubles);
    Timing t;
    t.reps = reps;
    t.min_us = us[0];
    t.max_us = us[reps - 1];
    t.median_us = reps % 2 ? us[reps / 2] : 0.5 * (us[reps / 2 - 1] + us[reps / 2]);
    for (int i = 0; i < 2 * reps; i++) CUDA_CHECK(cudaEventDestroy(ev[i]));
    CUDA_CHECK(cudaEventDestroy(start));
    CUDA_CHECK(cudaEventDestroy(stop));
    free(ev);
    free(us);
    return t;
}
#line 38 "chapters/00-measuring.md"
// <<measure-what-this-gpu-can-do>>
#line 752 "chapters/00-measuring.md"
// Copy: each thread moves 16-byte packs, grid-striding over the array; the last
// n % 4 elements are copied one by one.
__global__ void copy_f4_kernel(float *dst, const float *src, size_t n)
{
    size_t n4 = n / 4;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    for (size_t k = i; k < n4; k += stride)
        reinterpret_cast<float4 *>(dst)[k] = reinterpret_cast<const float4 *>(src)[k];
    for (size_t k = 4 * n4 + i; k < n; k += stride) dst[k] = src[k];
}

// Read: the same access pattern with nothing written but one partial sum per block,
// and four independent 16-byte loads in flight per thread per iteration.
__global__ void read_f4_kernel(float *block_sums, const float *src, size_t n)
{
    const float4 *src4 = reinterpret_cast<const float4 *>(src);
    size_t n4 = n / 4;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    float4 acc[4] = {};
    for (; i + 3 * stride < n4; i += 4 * stride) {
        float4 v[4];
        for (int u = 0; u < 4; u++) v[u] = src4[i + u * stride];
        for (int u = 0; u < 4; u++) {
            acc[u].x += v[u].x; acc[u].y += v[u].y; acc[u].z += v[u].z; acc[u].w += v[u].w;
        }
    }
    for (; i < n4; i += stride) {
        float4 v = src4[i];
        acc[0].x += v.x; acc[0].y += v.y; acc[0].z += v.z; acc[0].w += v.w;
    }
    float sum = 0.0f;
    for (int u = 0; u < 4; u++) sum += (acc[u].x + acc[u].y) + (acc[u].z + acc[u].w);
    for (size_t k = 4 * n4 + blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < n; k += stride)
        sum += src[k];
    // block sum: warp shuffles, then one value per warp through shared memory
    __shared__ float warp_sums[32];
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_down_sync(0xFFFFFFFFu, sum, offset);
    if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = sum;
    __syncthreads();
    if (threadIdx.x == 0) {
        float s = 0.0f;
        for (unsigned w = 0; w < blockDim.x / 32; w++) s += warp_sums[w];
        block_sums[blockIdx.x] = s;
    }
}

// Grid for the grid-striding kernels: as many blocks as fit on the GPU at once.
static inline int resident_blocks(const void *kernel, int threads)
{
    int dev = 0, sms = 0, per_sm = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, 0));
    return sms * (per_sm > 0 ? per_sm : 1);
}

typedef struct {
    float *dst, *src, *block_sums;
    size_t n;
    int grid;
} CeilingArgs;

static inline void launch_memcpy(void *ctx)
{
    CeilingArgs *a = (CeilingArgs *)ctx;
    CUDA_CHECK(cudaMemcpyAsync(a->dst, a->src, a->n * sizeof(float), cudaMemcpyDeviceToDevice));
}

static inline void launch_read_f4(void *ctx)
{
    CeilingArgs *a = (CeilingArgs *)ctx;
    read_f4_kernel<<<a->grid, 256>>>(a->block_sums, a->src, a->n);
    CHECK_LAUNCH();
}

typedef struct {
    double copy_gbps;  // cudaMemcpy device to device, bytes read + bytes written
    double read_gbps;  // read_f4_kernel, bytes read
    size_t n;          // floats moved
    double copy_us, read_us;
} Ceilings;

// Measures both ceilings on 1 GiB (less where the GPU has less free memory).
static inline Ceilings measure_ceilings(void)
{
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    size_t bytes = (size_t)1 << 30;
    while (bytes > ((size_t)1 << 24) && 2 * bytes > free_b / 2) bytes /= 2;
    CeilingArgs a;
    a.n = bytes / sizeof(float);
    a.src = (float *)device_alloc(bytes, "ceiling source");
    a.dst = (float *)device_alloc(bytes, "ceiling destination");
    a.grid = resident_blocks((const void *)read_f4_kernel, 256);
    a.block_sums = (float *)device_alloc(a.grid * sizeof(float), "ceiling block sums");
    CUDA_CHECK(cudaMemset(a.src, 0x3F, bytes));  // 0x3F3F3F3F = 0.747 as a float
    Ceilings c;
    c.n = a.n;
    c.copy_us = time_launches(launch_memcpy, &a, TIMING_DEFAULT).median_us;
    c.read_us = time_launches(launch_read_f4, &a, TIMING_DEFAULT).median_us;
    c.copy_gbps = 2.0 * bytes / (c.copy_us * 1e3);
    c.read_gbps = 1.0 * bytes / (c.read_us * 1e3);
    CUDA_CHECK(cudaFree(a.src));
    CUDA_CHECK(cudaFree(a.dst));
    CUDA_CHECK(cudaFree(a.block_sums));
    return c;
}
#line 39 "chapters/00-measuring.md"
// <<the-version-table-and-the-chapter>>
#line 887 "chapters/00-measuring.md"
typedef struct Problem Problem;  // each chapter defines its own: inputs, outputs, reference

typedef struct {
    const char *name;         // "v3-add-on-load": what --version, the CSV and the book use
    // "ours"; "peer" for a library; "inexact" for a lesson whose results are expected to
    // miss the tolerance (checked and reported, timed anyway, never counted as failures)
    const char *kind;
    const char *dtype;        // "f32", "f16", "bf16"
    const char *description;  // one line for --list
    void (*launch)(Problem *p);
    // NULL, or a function returning why this version cannot run p (NULL when it can)
    const char *(*unsupported)(const Problem *p);
} Version;

typedef struct BenchRun BenchRun;

typedef struct {
    const char *name;     // the program's and the CSV's name: "reduce"
    const char *summary;  // one line for --help
    const Version *versions;
    int n_versions;
    const char *const *dtypes;
    int n_dtypes;
    const char *const *bench_sizes;  // timed by --bench
    int n_bench_sizes;
    const char *const *check_sizes;  // checked by --check: the bench sizes and awkward ones
    int n_check_sizes;
    const char *ceiling;  // "read" or "copy": what pct_sol compares with
    const char *peer;     // the version every other is compared with, or NULL
    // NULL for a size the chapter accepts, else what it accepts: asked of every size on
    // the command line before the GPU is looked for, so that a typo exits with 2 anywhere
    const char *(*bad_size)(const char *size);
    // Allocates and fills a problem of one size with fresh random inputs and its CPU
    // reference; calls usage_error for a size it cannot parse.
    Problem *(*create)(const char *dtype, const char *size, uint64_t seed);
    void (*destroy)(Problem *p);
    void (*poison_outputs)(Problem *p);
    CheckResult (*check)(Problem *p, const char *version);
    double (*bytes)(const Problem *p);  // fewest bytes the work must move
    double (*flops)(const Problem *p);  // NULL for chapters about bytes
    void (*extra_bench)(BenchRun *run); // NULL, or a chapter's own additional rows
    int (*self_test)(void);             // NULL, or CPU tests of the chapter's reference
    // Compute-bound chapters: the TFLOP/s ceiling that applies to version v, which the
    // rows' pct_sol compare with; called with v NULL first, to measure the ceilings and
    // emit their rows. NULL: pct_sol compares bandwidth with the copy or read ceiling.
    double (*compute_ceiling)(BenchRun *run, const Version *v);
} Chapter;

// Parses "1000003", "2^25" or "2^25+7" into a count; returns 0 on success.
static inline int parse_count(const char *s, size_t *out)
{
    char *end = NULL;
    unsigned long long base = strtoull(s, &end, 10);
    if (end == s || *s == '-') return 1;
    if (*end == '^') {
        const char *e = end + 1;
        unsigned long long p = strtoull(e, &end, 10);
        if (end == e || p > 40) return 1;
        unsigned long long v = 1;
        for (unsigned long long k = 0; k < p; k++) v *= base;
        base = v;
    }
    if (*end == '+' || *end == '-') {
        char sign = *end;
        const char *e = end + 1;
        unsigned long long d = strtoull(e, &end, 10);
        if (end == e) return 1;
        if (sign == '-' && d > base) return 1;
        base = sign == '+' ? base + d : base - d;
    }
    if (*end != '\0') return 1;
    *out = (size_t)base;
    return 0;
}

// NULL when size is a positive count, else what a count may be.
static inline const char *bad_count(const char *size)
{
    size_t n = 0;
    return parse_count(size, &n) || n == 0 ? "a positive count: 1000003, 2^25, 2^25+7" : NULL;
}

// "COUNT" or "COUNT@1", the second for arrays that start one element past a 16-byte
// boundary. Returns the offset (0 or 1) and leaves COUNT in count; -1 for another form.
static inline int split_offset(const char *size, char *count, size_t cap)
{
    snprintf(count, cap, "%s", size);
    char *at = strchr(count, '@');
    if (!at) return bad_count(count) ? -1 : 0;
    *at = '\0';
    return strcmp(at + 1, "1") || bad_count(count) ? -1 : 1;
}

// The element count a size names; a size that is not a positive count is a usage error.
static inline size_t count_of(const char *size)
{
    size_t n = 0;
    const char *bad = bad_count(size);
    if (bad) usage_error("bad size", size, bad);
    parse_count(size, &n);
    return n;
}
#line 40 "chapters/00-measuring.md"
// <<what-a-versions-kernels-need>>
#line 1019 "chapters/00-measuring.md"
// ---- what a version's kernels need
typedef struct {
    int kernels;       // distinct kernels one run launched; 0: not known
    int regs;          // the heaviest one's registers per thread,
    int smem;          // its shared memory per block (static and dynamic), bytes,
    int local;         // its local memory per thread (spills and stack), bytes,
    int threads;       // its threads per block,
    double occupancy;  // and its resident warps over the SM's most, percent
} Resources;

// A driver entry point, through the runtime (no link to the driver library); NULL where
// the driver lacks it. The resource columns below use it, and the Hopper chapters' tensor maps.
static inline void *driver_entry(const char *name)
{
    void *fn = NULL;
    cudaDriverEntryPointQueryResult found;
    if (cudaGetDriverEntryPointByVersion(name, &fn, 12000, cudaEnableDefault, &found) != cudaSuccess ||
        found != cudaDriverEntryPointSuccess)
        return NULL;
    return fn;
}

#if defined(__has_include)
#if __has_include(<cupti_callbacks.h>) && __has_include(<cupti_driver_cbid.h>) && __has_include(<generated_cuda_runtime_api_meta.h>) && __has_include(<dlfcn.h>)
#include <cupti_callbacks.h>
#include <cupti_driver_cbid.h>
#include <cupti_runtime_cbid.h>
#include <generated_cuda_runtime_api_meta.h>
#include <dlfcn.h>
#define HARNESS_CUPTI 1
#endif
#endif
#ifndef HARNESS_CUPTI
#define HARNESS_CUPTI 0
#endif

#if HARNESS_CUPTI
// The arguments of the driver's two launches as a callback sees them (the layout of
// CUPTI's generated_cuda_meta.h, whose other declarations need the driver's internal
// types).
typedef struct {
    CUfunction f;
    unsigned gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes;
    CUstream hStream;
    void **kernelParams, **extra;
} LaunchArgs;
typedef struct {
    const CUlaunchConfig *config;
    CUfunction f;
    void **kernelParams, **extra;
} LaunchExArgs;

// The kernels noted while the listener is on: a driver function, or the host stub a
// runtime launch names, with its block size and dynamic shared memory.
typedef struct {
    CUfunction f;
    const void *stub;
    int threads, dyn_smem;
} NotedLaunch;
enum { MAX_NOTED = 64 };
static struct {
    int on, n;
    NotedLaunch l[MAX_NOTED];
} g_noted;

static void note_launch(CUfunction f, const void *stub, unsigned bx, unsigned by, unsigned bz, size_t dyn)
{
    if (g_noted.n == MAX_NOTED) return;
    NotedLaunch x = {f, stub, (int)(bx * by * bz), (int)dyn};
    g_noted.l[g_noted.n++] = x;
}

// The launch that CUDA 13's <<<>>> compiles to (absent from older CUPTIs).
static int is_triple_chevron(CUpti_CallbackId cbid)
{
#if CUDART_VERSION >= 13000
    return cbid == CUPTI_RUNTIME_TRACE_CBID___cudaLaunchKernel_v13000 ||
           cbid == CUPTI_RUNTIME_TRACE_CBID___cudaLaunchKernel_ptsz_v13000;
#else
    (void)cbid;
    return 0;
#endif
}

static void CUPTIAPI on_api(void *userdata, CUpti_CallbackDomain domain, CUpti_CallbackId cbid, const void *data)
{
    (void)userdata;
    const CUpti_CallbackData *cb = (const CUpti_CallbackData *)data;
    if (!g_noted.on || cb->callbackSite != CUPTI_API_ENTER) return;
    if (domain == CUPTI_CB_DOMAIN_DRIVER_API) {
        if (cbid == CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel || cbid == CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel_ptsz) {
            const LaunchArgs *p = (const LaunchArgs *)cb->functionParams;
            note_launch(p->f, NULL, p->blockDimX, p->blockDimY, p->blockDimZ, p->sharedMemBytes);
        } else if (cbid == CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx || cbid == CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx_ptsz) {
            const LaunchExArgs *p = (const LaunchExArgs *)cb->functionParams;
            note_launch(p->f, NULL, p->config->blockDimX, p->config->blockDimY, p->config->blockDimZ,
                        p->config->sharedMemBytes);
        }
    } else if (cbid == CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000 ||
               cbid == CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_ptsz_v7000 || is_triple_chevron(cbid)) {
        // cudaLaunchKernel's arguments; CUDA 13's <<<>>> calls __cudaLaunchKernel, whose
        // arguments are the same but for a kernel handle in place of the host stub
        const cudaLaunchKernel_v7000_params *p = (const cudaLaunchKernel_v7000_params *)cb->functionParams;
        note_launch(NULL, p->func, p->blockDim.x, p->blockDim.y, p->blockDim.z, p->sharedMem);
    } else if (cbid == CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_v11060 ||
               cbid == CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_ptsz_v11060) {
        const cudaLaunchKernelExC_v11060_params *p = (const cudaLaunchKernelExC_v11060_params *)cb->functionParams;
        note_launch(NULL, p->func, p->config->blockDim.x, p->config->blockDim.y, p->config->blockDim.z,
                    p->config->dynamicSmemBytes);
    }
}

// The listener, attached once: CUPTI's subscribe and enable, found in libcupti at run time.
// Returns 0 (and says why, once) where it cannot be had.
typedef CUptiResult (*SubscribeFn)(CUpti_SubscriberHandle *, CUpti_CallbackFunc, void *);
typedef CUptiResult (*EnableCallbackFn)(uint32_t, CUpti_SubscriberHandle, CUpti_CallbackDomain, CUpti_CallbackId);
static int listener_ready(void)
{
    static int state = -1;  // -1 not tried, 0 unavailable, 1 ready
    if (state >= 0) return state;
    state = 0;
    const char *names[] = {"libcupti.so", "libcupti.so.13", "libcupti.so.12",
                           "/usr/local/cuda/extras/CUPTI/lib64/libcupti.so", "/usr/local/cuda/lib64/libcupti.so"};
    void *lib = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !lib; i++) lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    SubscribeFn subscribe = lib ? (SubscribeFn)dlsym(lib, "cuptiSubscribe") : NULL;
    EnableCallbackFn enable = lib ? (EnableCallbackFn)dlsym(lib, "cuptiEnableCallback") : NULL;
    CUpti_SubscriberHandle handle;
    if (!subscribe || !enable || subscribe(&handle, on_api, NULL) != CUPTI_SUCCESS) {
        fprintf(stderr, "note: no CUPTI listener (%s): the resource columns stay empty\n",
                lib ? "cuptiSubscribe failed" : "libcupti not found");
        return state;
    }
    const CUpti_CallbackId driver[] = {CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel_ptsz,
                                       CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx,
                                       CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx_ptsz};
    const CUpti_CallbackId runtime[] = {CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000,
                                        CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_ptsz_v7000,
                                        CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_v11060,
                                        CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_ptsz_v11060};
    for (int i = 0; i < 4; i++) {
        enable(1, handle, CUPTI_CB_DOMAIN_DRIVER_API, driver[i]);
        enable(1, handle, CUPTI_CB_DOMAIN_RUNTIME_API, runtime[i]);
    }
#if CUDART_VERSION >= 13000
    enable(1, handle, CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID___cudaLaunchKernel_v13000);
    enable(1, handle, CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID___cudaLaunchKernel_ptsz_v13000);
#endif
    state = 1;
    return state;
}

// One noted kernel's needs: its attributes and the occupancy calculator, the driver's for
// a driver launch, the runtime's for a runtime one (they take a host stub or a kernel
// handle alike). A failed query clears the runtime's error, which a later launch's check
// would otherwise report as its own.
static int kernel_needs(const NotedLaunch *x, Resources *r)
{
    typedef CUresult (*AttrFn)(int *, CUfunction_attribute, CUfunction);
    typedef CUresult (*OccFn)(int *, CUfunction, int, size_t);
    static AttrFn attr = NULL;
    static OccFn occ = NULL;
    if (!attr) attr = (AttrFn)driver_entry("cuFuncGetAttribute");
    if (!occ) occ = (OccFn)driver_entry("cuOccupancyMaxActiveBlocksPerMultiprocessor");
    int regs = 0, shared = 0, local = 0, blocks = 0, dev = 0, warps_max = 0;
    if (x->f) {
        if (!attr || !occ || attr(&regs, CU_FUNC_ATTRIBUTE_NUM_REGS, x->f) != CUDA_SUCCESS ||
            attr(&shared, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, x->f) != CUDA_SUCCESS ||
            attr(&local, CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES, x->f) != CUDA_SUCCESS ||
            occ(&blocks, x->f, x->threads, (size_t)x->dyn_smem) != CUDA_SUCCESS)
            return 0;
    } else {
        struct cudaFuncAttributes a;
        if (cudaFuncGetAttributes(&a, x->stub) != cudaSuccess ||
            cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, x->stub, x->threads, (size_t)x->dyn_smem) !=
                cudaSuccess) {
            (void)cudaGetLastError();
            return 0;
        }
        regs = a.numRegs;
        shared = (int)a.sharedSizeBytes;
        local = (int)a.localSizeBytes;
    }
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&warps_max, cudaDevAttrMaxThreadsPerMultiProcessor, dev));
    warps_max /= 32;
    r->regs = regs;
    r->smem = shared + x->dyn_smem;
    r->local = local;
    r->threads = x->threads;
    r->occupancy = warps_max ? 100.0 * blocks * ((x->threads + 31) / 32) / warps_max : NAN;
    return 1;
}
#endif

// Runs fn(ctx) once with the listener on and reports what its kernels need; all zeros
// where there is no listener or nothing was noted.
static inline Resources kernels_needs(void (*fn)(void *), void *ctx)
{
    Resources best;
    memset(&best, 0, sizeof best);
    best.occupancy = NAN;
#if HARNESS_CUPTI
    if (!listener_ready()) return best;
    CUDA_CHECK(cudaDeviceSynchronize());
    g_noted.n = 0;
    g_noted.on = 1;
    fn(ctx);
    g_noted.on = 0;
    CUDA_CHECK(cudaDeviceSynchronize());
    for (int i = 0; i < g_noted.n; i++) {
        int seen = 0;  // a kernel launched again (a driver and a runtime note of one launch, or a loop) counts once
        for (int j = 0; j < i && !seen; j++)
            seen = (g_noted.l[i].f && g_noted.l[i].f == g_noted.l[j].f) ||
                   (g_noted.l[i].stub && g_noted.l[i].stub == g_noted.l[j].stub);
        Resources r;
        if (seen || !kernel_needs(&g_noted.l[i], &r)) continue;
        best.kernels++;
        if (best.kernels == 1 || r.regs > best.regs || (r.regs == best.regs && r.smem > best.smem)) {
            const int k = best.kernels;
            best = r;
            best.kernels = k;
        }
    }
#else
    (void)fn;
    (void)ctx;
#endif
    return best;
}
#line 41 "chapters/00-measuring.md"
// <<rows-the-csv-and-its-provenance>>
#line 1278 "chapters/00-measuring.md"
typedef struct {
    const char *version, *kind, *dtype;
    char size[64];
    double time_us, gbps, tflops, pct_sol, max_rel_err;  // NAN where not applicable
    int pass;
    Resources res;  // what the version's kernels need (res.kernels 0: not known)
} Row;

struct BenchRun {
    const Chapter *chapter;
    Device device;
    Ceilings ceilings;
    double sol_gbps;  // the chapter's ceiling, measured in this run
    FILE *csv;        // NULL when no --csv was given
    TimingPlan plan;
};

#define CSV_HEADER "version,kind,dtype,size,time_us,gbps,tflops,pct_sol,max_rel_err,status,kernels,regs,smem,local,occupancy"

static inline void csv_number(FILE *f, const char *fmt, double v)
{
    if (!isnan(v)) fprintf(f, fmt, v);
    fputc(',', f);
}

static inline void row_print(const Row *r, double peer_us)
{
    printf("  %-28s %-4s %12s", r->version, r->dtype, r->size);
    if (!r->pass && isnan(r->time_us)) { printf("   FAIL\n"); fflush(stdout); return; }
    if (!isnan(r->time_us)) printf(" %10.2f us", r->time_us);
    if (!isnan(r->gbps)) printf(" %8.1f GB/s", r->gbps);
    if (!isnan(r->tflops)) printf(" %8.2f TFLOP/s", r->tflops);
    if (!isnan(r->pct_sol)) printf(" %6.1f%% of ceiling", r->pct_sol);
    if (!isnan(peer_us) && !isnan(r->time_us)) printf(" %6.2fx peer", peer_us / r->time_us);
    if (r->res.kernels)
        printf("  [%d regs, %.1f KiB, %.0f%% occupancy%s]", r->res.regs, r->res.smem / 1024.0, r->res.occupancy,
               r->res.local ? ", spills" : "");
    if (!r->pass) printf("  (misses its tolerance)");
    printf("\n");
    fflush(stdout);
}

// Records one result: prints it, and appends it to the CSV when there is one.
static inline void bench_emit(BenchRun *run, const Row *r, double peer_us)
{
    row_print(r, peer_us);
    if (!run->csv) return;
    fprintf(run->csv, "%s,%s,%s,%s,", r->version, r->kind, r->dtype, r->size);
    csv_number(run->csv, "%.3f", r->time_us);
    csv_number(run->csv, "%.1f", r->gbps);
    csv_number(run->csv, "%.2f", r->tflops);
    csv_number(run->csv, "%.1f", r->pct_sol);
    csv_number(run->csv, "%.2e", r->max_rel_err);
    fprintf(run->csv, "%s", r->pass ? "pass" : "fail");
    const Resources *k = &r->res;
    if (k->kernels) fprintf(run->csv, ",%d,%d,%d,%d,%.1f\n", k->kernels, k->regs, k->smem, k->local, k->occupancy);
    else fprintf(run->csv, ",,,,,\n");
}

// Fills a row's rates from its time and the problem's bytes and flops.
static inline Row row_from_time(BenchRun *run, const Version *v, const char *size, double us,
                         double bytes, double flops, double max_rel_err)
{
    Row r;
    r.version = v->name;
    r.kind = v->kind;
    r.dtype = v->dtype;
    size_t count;  // "2^20" is written as 1048576, so every size has one spelling
    if (parse_count(size, &count) == 0) snprintf(r.size, sizeof r.size, "%zu", count);
    else snprintf(r.size, sizeof r.size, "%s", size);
    r.time_us = us;
    r.gbps = bytes > 0 ? bytes / (us * 1e3) : NAN;
    r.tflops = flops > 0 ? flops / (us * 1e6) : NAN;
    double tflops_sol = flops > 0 && run->chapter->compute_ceiling ? run->chapter->compute_ceiling(run, v) : 0.0;
    r.pct_sol = tflops_sol > 0 ? 100.0 * r.tflops / tflops_sol : bytes > 0 ? 100.0 * r.gbps / run->sol_gbps : NAN;
    r.max_rel_err = max_rel_err;
    r.pass = 1;
    memset(&r.res, 0, sizeof r.res);
    r.res.occupancy = NAN;
    return r;
}

// Set by the Makefile: which tangled files this program was built from and their hash.
#ifndef BOOK_SOURCES
#define BOOK_SOURCES "unknown"
#endif
#ifndef BOOK_SOURCES_SHA1
#define BOOK_SOURCES_SHA1 "unknown"
#endif
#ifndef BOOK_NVCC_FLAGS
#define BOOK_NVCC_FLAGS "unknown"
#endif

// Beside reduce.csv, reduce.provenance: what was measured, where, when, from what.
static inline void provenance_write(const char *csv_path, const Device *d, int argc, char **argv)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", csv_path);
    char *dot = strrchr(path, '.');
    if (dot && strcmp(dot, ".csv") == 0) *dot = '\0';
    strncat(path, ".provenance", sizeof path - strlen(path) - 1);
    FILE *f = fopen(path, "w");
    if (!f) { fprintf(stderr, "error: cannot write %s\n", path); exit(EXIT_CHECK); }
    char date[64];
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    fprintf(f, "gpu: %s\nslug: %s\ncompute_capability: %d.%d\nsms: %d\nl2_bytes: %zu\n",
            d->name, d->slug, d->cc_major, d->cc_minor, d->sms, d->l2_bytes);
    fprintf(f, "memory_bytes: %zu\ndriver: %d.%d\ncuda_runtime: %d.%d\n", d->mem_bytes,
            d->driver_version / 1000, d->driver_version % 1000 / 10,
            d->runtime_version / 1000, d->runtime_version % 1000 / 10);
    fprintf(f, "nvcc: %d.%d\nnvcc_flags: %s\ndate: %s\n", __CUDACC_VER_MAJOR__,
            __CUDACC_VER_MINOR__, BOOK_NVCC_FLAGS, date);
    fprintf(f, "sources: %s\nsources_sha1: %s\ncommand:", BOOK_SOURCES, BOOK_SOURCES_SHA1);
    for (int i = 0; i < argc; i++) fprintf(f, " %s", argv[i]);
    fprintf(f, "\n");
    fclose(f);
}
#line 42 "chapters/00-measuring.md"
// <<the-command-line>>
#line 1415 "chapters/00-measuring.md"
typedef struct {
    int list, check, bench, slug, help, self_test;
    const char *csv;
    const char *versions[64];
    int n_versions;
    const char *sizes[64];
    int n_sizes;
    const char *dtype;
    uint64_t seed;
    int reps;
    int pretend_arch;  // 0, or the architecture the GPU counts as (80 for --pretend-arch sm_80)
} Options;

static inline void print_help(const Chapter *ch)
{
    printf("%s: %s\n\n", ch->name, ch->summary);
    printf("usage: %s [--list] [--check [SIZE...]] [--bench [--csv FILE]] [options]\n\n"
           "  --list              the versions, one line each\n"
           "  --check [SIZE...]   check every version against the CPU reference\n"
           "                      (default sizes:", ch->name);
    for (int i = 0; i < ch->n_check_sizes; i++) printf(" %s", ch->check_sizes[i]);
    printf(")\n  --bench             check, then time every version (sizes:");
    for (int i = 0; i < ch->n_bench_sizes; i++) printf(" %s", ch->bench_sizes[i]);
    printf(")\n"
           "  --csv FILE          with --bench: write the rows to FILE and its provenance\n"
           "                      beside it\n"
           "  --version NAME      only this version (repeatable; 'v3' matches 'v3-...')\n"
           "  --n SIZE            only this size (repeatable; 1000003, 2^25, 2^25+7)\n"
           "  --dtype TYPE        only this element type\n"
           "  --seed N            the random inputs' seed (default 1)\n"
           "  --reps N            timed repetitions (default: enough for ~200 ms, 20..300)\n"
           "  --pretend-arch sm_80  count the GPU as this older architecture: versions that\n"
           "                      need a newer one are skipped\n"
           "  --slug              print the GPU's name as a folder name, then exit\n"
           "  --self-test         test the harness and the CPU reference (no GPU needed)\n"
           "exit status: 0 all passed, 1 a check failed, 2 bad arguments, 77 no GPU\n");
}

static inline const char *next_arg(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) usage_error("missing value after", argv[*i], "see --help");
    return argv[++*i];
}

// A whole non-negative decimal number no larger than max; anything else is a usage error.
static inline unsigned long long parse_number(const char *option, const char *v, unsigned long long max)
{
    char *end = NULL;
    unsigned long long x = strtoull(v, &end, 10);
    if (end == v || *end != '\0' || !isdigit((unsigned char)v[0]) || x > max) {
        char accepted[64];
        snprintf(accepted, sizeof accepted, "a whole number from 0 to %llu", max);
        usage_error(option, v, accepted);
    }
    return x;
}

static inline Options parse_options(int argc, char **argv)
{
    Options o;
    memset(&o, 0, sizeof o);
    o.seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--list")) o.list = 1;
        else if (!strcmp(a, "--check")) {
            o.check = 1;
            while (i + 1 < argc && argv[i + 1][0] != '-' && o.n_sizes < 64) o.sizes[o.n_sizes++] = argv[++i];
        }
        else if (!strcmp(a, "--bench")) o.bench = 1;
        else if (!strcmp(a, "--csv")) o.csv = next_arg(argc, argv, &i);
        else if (!strcmp(a, "--version")) {
            if (o.n_versions == 64) usage_error("too many", a, "at most 64 --version");
            o.versions[o.n_versions++] = next_arg(argc, argv, &i);
        }
        else if (!strcmp(a, "--n") || !strcmp(a, "--size")) {
            if (o.n_sizes == 64) usage_error("too many", a, "at most 64 sizes");
            o.sizes[o.n_sizes++] = next_arg(argc, argv, &i);
        }
        else if (!strcmp(a, "--dtype")) o.dtype = next_arg(argc, argv, &i);
        else if (!strcmp(a, "--seed")) o.seed = parse_number("bad --seed", next_arg(argc, argv, &i), UINT64_MAX);
        else if (!strcmp(a, "--reps")) {
            const char *v = next_arg(argc, argv, &i);
            o.reps = (int)parse_number("bad --reps", v, 100000);
            if (o.reps < 1) usage_error("bad --reps", v, "1 to 100000");
        }
        else if (!strcmp(a, "--pretend-arch")) {
            const char *v = next_arg(argc, argv, &i);
            if (strncmp(v, "sm_", 3)) usage_error("bad --pretend-arch", v, "sm_80, sm_86, sm_89...");
            o.pretend_arch = (int)parse_number("bad --pretend-arch", v + 3, 1000);
            if (o.pretend_arch < 50) usage_error("bad --pretend-arch", v, "sm_80, sm_86, sm_89...");
        }
        else if (!strcmp(a, "--slug")) o.slug = 1;
        else if (!strcmp(a, "--self-test")) o.self_test = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) o.help = 1;
        else usage_error("unknown argument", a,
                         "--list --check --bench --csv --version --n --dtype --seed --reps --pretend-arch --slug --self-test --help");
    }
    if (o.csv && !o.bench) usage_error("--csv needs --bench; got", o.csv, "--bench --csv FILE");
    return o;
}

// "v3" selects "v3-add-on-load"; a full name selects itself.
static inline int name_matches(const char *name, const char *pattern)
{
    size_t k = strlen(pattern);
    return strcmp(name, pattern) == 0 || (strncmp(name, pattern, k) == 0 && name[k] == '-');
}

static inline int version_selected(const Options *o, const Version *v)
{
    if (o->dtype && strcmp(o->dtype, v->dtype) != 0) return 0;
    if (o->n_versions == 0) return 1;
    for (int i = 0; i < o->n_versions; i++)
        if (name_matches(v->name, o->versions[i])) return 1;
    return 0;
}

static inline void validate_selection(const Chapter *ch, const Options *o)
{
    for (int i = 0; i < o->n_sizes; i++) {
        const char *why = ch->bad_size(o->sizes[i]);
        if (why) usage_error("bad size", o->sizes[i], why);
    }
    for (int i = 0; i < o->n_versions; i++) {
        int found = 0;
        for (int k = 0; k < ch->n_versions; k++) found |= name_matches(ch->versions[k].name, o->versions[i]);
        if (!found) {
            char names[4096] = "";
            for (int k = 0; k < ch->n_versions; k++) {
                strncat(names, ch->versions[k].name, sizeof names - strlen(names) - 2);
                strncat(names, " ", sizeof names - strlen(names) - 1);
            }
            usage_error("unknown version", o->versions[i], names);
        }
    }
    if (o->dtype) {
        int found = 0;
        for (int k = 0; k < ch->n_dtypes; k++) found |= !strcmp(ch->dtypes[k], o->dtype);
        if (!found) usage_error("unknown dtype", o->dtype, "see --list");
    }
}

static inline void list_versions(const Chapter *ch)
{
    for (int i = 0; i < ch->n_versions; i++) {
        const Version *v = &ch->versions[i];
        printf("%-28s %-5s %-4s %s\n", v->name, v->kind, v->dtype, v->description);
    }
}

// Runs one version once on p and checks every element of its output.
static inline CheckResult run_and_check(const Chapter *ch, const Version *v, Problem *p)
{
    ch->poison_outputs(p);
    v->launch(p);
    CUDA_CHECK(cudaDeviceSynchronize());
    return ch->check(p, v->name);
}

// --check: every selected version, every size; returns the number of failures.
static inline int run_checks(const Chapter *ch, const Options *o, int *passed)
{
    int failed = 0;
    const char *const *sizes = o->n_sizes ? o->sizes : ch->check_sizes;
    int n_sizes = o->n_sizes ? o->n_sizes : ch->n_check_sizes;
    for (int d = 0; d < ch->n_dtypes; d++) {
        const char *dtype = ch->dtypes[d];
        if (o->dtype && strcmp(o->dtype, dtype)) continue;
        for (int s = 0; s < n_sizes; s++) {
            Problem *p = ch->create(dtype, sizes[s], seed_for(o->seed, sizes[s]));
            for (int k = 0; k < ch->n_versions; k++) {
                const Version *v = &ch->versions[k];
                if (strcmp(v->dtype, dtype) || !version_selected(o, v)) continue;
                const char *why = v->unsupported ? v->unsupported(p) : NULL;
                if (why) {
                    printf("skip %-28s %-4s %12s  (%s)\n", v->name, dtype, sizes[s], why);
                    continue;
                }
                CheckResult r = run_and_check(ch, v, p);
                int inexact = !strcmp(v->kind, "inexact");
                printf("%s %-28s %-4s %12s  max rel error %.2e\n",
                       !r.mismatches ? "pass" : inexact ? "miss" : "FAIL", v->name, dtype, sizes[s],
                       r.max_rel_err);
                fflush(stdout);
                if (!r.mismatches) (*passed)++;
                else if (!inexact) failed++;
            }
            ch->destroy(p);
        }
    }
    return failed;
}

typedef struct {
    const Version *v;
    Problem *p;
} VersionLaunch;

static inline void launch_version(void *ctx)
{
    VersionLaunch *vl = (VersionLaunch *)ctx;
    vl->v->launch(vl->p);
}

// Checks, then times one version on p. A version that fails is not timed, unless it is
// an "inexact" lesson: its row then has a time and the status "fail".
static inline Row bench_version(BenchRun *run, const Version *v, Problem *p, const char *size)
{
    const Chapter *ch = run->chapter;
    CheckResult c = run_and_check(ch, v, p);
    if (c.mismatches && strcmp(v->kind, "inexact")) {
        Row r = row_from_time(run, v, size, NAN, 0, 0, c.max_rel_err);
        r.pass = 0;
        return r;
    }
    VersionLaunch vl = {v, p};
    const Resources res = kernels_needs(launch_version, &vl);  // one run more, with the listener on
    Timing t = time_launches(launch_version, &vl, run->plan);
    Row r = row_from_time(run, v, size, t.median_us, ch->bytes(p),
                          ch->flops ? ch->flops(p) : 0.0, c.max_rel_err);
    r.pass = c.mismatches == 0;
    r.res = res;
    return r;
}

static inline void emit_ceiling_rows(BenchRun *run)
{
    Row r;
    memset(&r, 0, sizeof r);
    r.kind = "ceiling";
    r.dtype = "f32";
    r.tflops = NAN;
    r.max_rel_err = NAN;
    r.pass = 1;
    snprintf(r.size, sizeof r.size, "%zu", run->ceilings.n);
    r.version = "copy-ceiling";
    r.time_us = run->ceilings.copy_us;
    r.gbps = run->ceilings.copy_gbps;
    r.pct_sol = 100.0 * r.gbps / run->sol_gbps;
    bench_emit(run, &r, NAN);
    r.version = "read-ceiling";
    r.time_us = run->ceilings.read_us;
    r.gbps = run->ceilings.read_gbps;
    r.pct_sol = 100.0 * r.gbps / run->sol_gbps;
    bench_emit(run, &r, NAN);
}

// --bench: ceilings first, then for each size the peer, then every version in table order.
static inline int run_bench(const Chapter *ch, const Options *o, const Device *dev, int argc, char **argv)
{
    BenchRun run;
    memset(&run, 0, sizeof run);
    run.chapter = ch;
    run.device = *dev;
    run.plan = TIMING_DEFAULT;
    if (o->reps) run.plan.min_reps = run.plan.max_reps = o->reps;
    char tmp_path[4096] = "";
    if (o->csv) {
        snprintf(tmp_path, sizeof tmp_path, "%s.tmp", o->csv);
        run.csv = fopen(tmp_path, "w");
        if (!run.csv) usage_error("cannot write the CSV file", o->csv, "a writable path");
        fprintf(run.csv, CSV_HEADER "\n");
    }
    printf("measuring the ceilings (1 GiB copy and read)...\n");
    run.ceilings = measure_ceilings();
    run.sol_gbps = strcmp(ch->ceiling, "copy") == 0 ? run.ceilings.copy_gbps : run.ceilings.read_gbps;
    emit_ceiling_rows(&run);
    if (ch->compute_ceiling) ch->compute_ceiling(&run, NULL);

    int failed = 0;
    const char *const *sizes = o->n_sizes ? o->sizes : ch->bench_sizes;
    int n_sizes = o->n_sizes ? o->n_sizes : ch->n_bench_sizes;
    for (int d = 0; d < ch->n_dtypes; d++) {
        const char *dtype = ch->dtypes[d];
        if (o->dtype && strcmp(o->dtype, dtype)) continue;
        for (int s = 0; s < n_sizes; s++) {
            printf("%s %s size %s\n", ch->name, dtype, sizes[s]);
            Problem *p = ch->create(dtype, sizes[s], seed_for(o->seed, sizes[s]));
            const Version *peer = NULL;  // timed first, so every row can say "x peer"
            Row peer_row;
            for (int k = 0; k < ch->n_versions; k++) {
                const Version *v = &ch->versions[k];
                if (ch->peer && !strcmp(v->name, ch->peer) && !strcmp(v->dtype, dtype) &&
                    !(v->unsupported && v->unsupported(p)))
                    peer = v;
            }
            if (peer) peer_row = bench_version(&run, peer, p, sizes[s]);
            double peer_us = peer ? peer_row.time_us : NAN;
            for (int k = 0; k < ch->n_versions; k++) {
                const Version *v = &ch->versions[k];
                if (strcmp(v->dtype, dtype) || !version_selected(o, v)) continue;
                const char *why = v->unsupported ? v->unsupported(p) : NULL;
                if (why) {
                    printf("skip %-28s %-4s %12s  (%s)\n", v->name, dtype, sizes[s], why);
                    continue;
                }
                Row r = v == peer ? peer_row : bench_version(&run, v, p, sizes[s]);
                failed += !r.pass && strcmp(v->kind, "inexact");
                bench_emit(&run, &r, peer_us);
            }
            ch->destroy(p);
        }
    }
    if (ch->extra_bench) ch->extra_bench(&run);
    if (run.csv) {
        fclose(run.csv);
        if (rename(tmp_path, o->csv) != 0) usage_error("cannot write the CSV file", o->csv, "a writable path");
        provenance_write(o->csv, dev, argc, argv);
        printf("wrote %s\n", o->csv);
    }
    return failed;
}

// --self-test: the harness's own functions on cases whose answers are known by hand.
#define SELF_TEST(cond) self_test_report((cond), #cond, __FILE__, __LINE__, &passed, &failed)

static inline void self_test_report(int ok, const char *what, const char *file, int line,
                                    int *passed, int *failed)
{
    printf("%s %s:%d: %s\n", ok ? "ok  " : "FAIL", file, line, what);
    if (ok) (*passed)++; else (*failed)++;
}

static inline int harness_self_test(void)
{
    int passed = 0, failed = 0;
    char slug[256];
    make_slug(slug, sizeof slug, "NVIDIA H100 80GB HBM3");
    SELF_TEST(strcmp(slug, "nvidia-h100-80gb-hbm3") == 0);
    make_slug(slug, sizeof slug, "  Tesla (V100)-SXM2 ");
    SELF_TEST(strcmp(slug, "tesla-v100-sxm2") == 0);
    size_t n = 0;
    SELF_TEST(parse_count("1000003", &n) == 0 && n == 1000003);
    SELF_TEST(parse_count("2^25", &n) == 0 && n == 33554432);
    SELF_TEST(parse_count("2^25+7", &n) == 0 && n == 33554439);
    SELF_TEST(parse_count("2^20-1", &n) == 0 && n == 1048575);
    SELF_TEST(parse_count("12x", &n) != 0 && parse_count("", &n) != 0 && parse_count("-3", &n) != 0);
    SELF_TEST(bad_count("0") != NULL && bad_count("abc") != NULL && bad_count("2^20") == NULL);
    // half the gap between neighbours: 2^-p of a power of two, fixed among the subnormals
    SELF_TEST(half_spacing(F32, 1.0) == 0x1p-24 && half_spacing(F16, 1.0) == 0x1p-11);
    SELF_TEST(half_spacing(BF16, 1.5) == 0x1p-8 && half_spacing(F16, -1000.0) == 0x1p-2);
    SELF_TEST(half_spacing(F16, 0x1p-14) == 0x1p-25 && half_spacing(F16, 5.88e-8) == 0x1p-25);
    SELF_TEST(half_spacing(F16, 0.0) == 0x1p-25 && half_spacing(F32, 1e-40) == 0x1p-150);
    // a half result of 5.88e-8 rounds to 0 or to 2^-24: either is 2^-25 away at most
    SELF_TEST(error_bound(F16, 5.88e-8, 0.0, 0, 0.0) == 0x1p-25);
    SELF_TEST(error_bound(F16, 1.0, 0x1p-12, 1, 4.0) == 0x1p-12 + 0x1p-11 + 0x1p-9);
    double ref[3] = {1.0, -2.0, 1000.0}, got[3] = {1.0, -2.0, 1000.0};
    Tolerance tol = {F32, 1e-6, 1e-3};
    SELF_TEST(check_close("self-test", "3", got, ref, 3, tol).mismatches == 0);
    got[2] = 1000.9;  // within 1e-6 + 1e-3 * 1000
    SELF_TEST(check_close("self-test", "3", got, ref, 3, tol).mismatches == 0);
    printf("(two FAIL lines from check_close are expected next: the test feeds it bad values)\n");
    got[2] = 1001.1;  // outside
    SELF_TEST(check_close("self-test", "3", got, ref, 3, tol).mismatches == 1);
    got[2] = NAN;     // NaN never passes
    SELF_TEST(check_close("self-test", "3", got, ref, 3, tol).mismatches == 1);
    uint64_t a = seed_for(1, "1000003"), b = seed_for(1, "2^20");
    SELF_TEST(a != b && seed_for(1, "2^20") == b);
    uint64_t state = 42;
    double lo = 1.0, hi = 0.0;
    for (int i = 0; i < 100000; i++) {
        double u = rng_uniform(&state);
        lo = fmin(lo, u);
        hi = fmax(hi, u);
    }
    SELF_TEST(lo >= 0.0 && lo < 1e-3 && hi < 1.0 && hi > 0.999);
    printf("harness: %d passed, %d failed\n", passed, failed);
    return failed;
}

// The main function of every chapter program.
static inline int harness_main(const Chapter *ch, int argc, char **argv)
{
    Options o = parse_options(argc, argv);
    if (o.help) { print_help(ch); return EXIT_PASS; }
    validate_selection(ch, &o);
    if (o.list) { list_versions(ch); return EXIT_PASS; }
    if (o.self_test) {
        int failed = harness_self_test() + (ch->self_test ? ch->self_test() : 0);
        return failed ? EXIT_CHECK : EXIT_PASS;
    }
    if (!o.check && !o.bench && !o.slug) {
        printf("(no mode given: running --check; --help lists the options)\n");
        o.check = 1;
    }
    Device dev;
    int status = device_open(&dev, o.pretend_arch);
    if (status != EXIT_PASS) return status;
    if (o.slug) { printf("%s\n", dev.slug); return EXIT_PASS; }
    device_print(&dev);
    int failed = 0, passed = 0;
    if (o.check) {
        failed += run_checks(ch, &o, &passed);
        printf("%d passed, %d failed\n", passed, failed);
    }
    if (o.bench) failed += run_bench(ch, &o, &dev, argc, argv);
    return failed ? EXIT_CHECK : EXIT_PASS;
}
