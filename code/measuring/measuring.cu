#line 1824 "chapters/00-measuring.md"
// measuring.cu: the ceilings of this GPU, and what careless timing would have said.
#include "../harness/harness.cuh"
// <<the-measuring-problem>>
#line 1838 "chapters/00-measuring.md"
typedef enum { WROTE_COPY, WROTE_BLOCK_SUMS } Output;

struct Problem {
    size_t n;
    char size[64];
    float *src, *dst;   // (n) each, on the device
    float *block_sums;  // (grid) the read kernel's partial sums
    int grid;           // resident blocks of the grid-striding kernels
    float *host_src;    // (n) the input, kept for the checks
    double ref_sum;     // sum of the input in double precision
    double abs_sum;     // sum of |input|
    Output output;      // what the last launch wrote: set by each launcher
};
#line 1827 "chapters/00-measuring.md"
// <<copy-kernels-to-measure>>
#line 1854 "chapters/00-measuring.md"
// The first copy anyone writes: one element per thread, a grid as large as the array.
__global__ void copy_f32_kernel(float *dst, const float *src, size_t n)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) dst[i] = src[i];
}

// The copy kernel again under another name, so that its first launch in the demonstration
// below really is the first launch of that kernel in this process.
__global__ void copy_f4_first_kernel(float *dst, const float *src, size_t n)
{
    size_t n4 = n / 4, stride = (size_t)gridDim.x * blockDim.x;
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    for (size_t k = i; k < n4; k += stride)
        reinterpret_cast<float4 *>(dst)[k] = reinterpret_cast<const float4 *>(src)[k];
    for (size_t k = 4 * n4 + i; k < n; k += stride) dst[k] = src[k];
}
#line 1828 "chapters/00-measuring.md"
// <<launch-the-copies-and-the-read>>
#line 1874 "chapters/00-measuring.md"
static void launch_memcpy_version(Problem *p)
{
    p->output = WROTE_COPY;
    CUDA_CHECK(cudaMemcpyAsync(p->dst, p->src, p->n * sizeof(float), cudaMemcpyDeviceToDevice));
}

static void launch_copy_f32(Problem *p)
{
    p->output = WROTE_COPY;
    copy_f32_kernel<<<(unsigned)((p->n + 255) / 256), 256>>>(p->dst, p->src, p->n);
    CHECK_LAUNCH();
}

static void launch_copy_f4(Problem *p)
{
    p->output = WROTE_COPY;
    copy_f4_kernel<<<p->grid, 256>>>(p->dst, p->src, p->n);
    CHECK_LAUNCH();
}

static void launch_read_f4(Problem *p)
{
    p->output = WROTE_BLOCK_SUMS;
    read_f4_kernel<<<p->grid, 256>>>(p->block_sums, p->src, p->n);
    CHECK_LAUNCH();
}

static const Version VERSIONS[] = {
    {"memcpy", "peer", "f32", "cudaMemcpyAsync device to device", launch_memcpy_version, NULL},
    {"copy-f32", "ours", "f32", "copy, one float per thread", launch_copy_f32, NULL},
    {"copy-f4", "ours", "f32", "copy, float4 packs, grid-stride over resident blocks", launch_copy_f4, NULL},
    {"read-f4", "ours", "f32", "read only: float4 packs, four loads in flight, block sums", launch_read_f4, NULL},
};
#line 1829 "chapters/00-measuring.md"
// <<create-and-check-a-measuring-problem>>
#line 1914 "chapters/00-measuring.md"
static Problem *measuring_create(const char *dtype, const char *size, uint64_t seed)
{
    (void)dtype;
    size_t n = count_of(size);
    Problem *p = (Problem *)host_alloc(sizeof(Problem), "problem");
    memset(p, 0, sizeof *p);
    p->n = n;
    snprintf(p->size, sizeof p->size, "%zu", n);
    p->host_src = (float *)host_alloc(n * sizeof(float), "input");
    fill_uniform_f32(p->host_src, n, -0.5f, 1.5f, seed);
    reference_sum_f32(&p->ref_sum, &p->abs_sum, p->host_src, n);
    p->src = (float *)device_alloc(n * sizeof(float), "source");
    p->dst = (float *)device_alloc(n * sizeof(float), "destination");
    p->grid = resident_blocks((const void *)read_f4_kernel, 256);
    p->block_sums = (float *)device_alloc(p->grid * sizeof(float), "block sums");
    CUDA_CHECK(cudaMemcpy(p->src, p->host_src, n * sizeof(float), cudaMemcpyHostToDevice));
    return p;
}

static void measuring_destroy(Problem *p)
{
    CUDA_CHECK(cudaFree(p->src));
    CUDA_CHECK(cudaFree(p->dst));
    CUDA_CHECK(cudaFree(p->block_sums));
    free(p->host_src);
    free(p);
}

static void measuring_poison(Problem *p)
{
    poison(p->dst, p->n * sizeof(float));
    poison(p->block_sums, p->grid * sizeof(float));
}

// A copy must be exact. The read kernel's block sums must add up to the input's sum
// within four float epsilons of sum(|x|), the tolerance the reduce chapter derives.
static CheckResult measuring_check(Problem *p, const char *version)
{
    if (p->output == WROTE_COPY) {
        float *got = (float *)host_alloc(p->n * sizeof(float), "copy");
        double *ref = (double *)host_alloc(p->n * sizeof(double), "reference");
        CUDA_CHECK(cudaMemcpy(got, p->dst, p->n * sizeof(float), cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < p->n; i++) ref[i] = p->host_src[i];
        Tolerance exact = {F32, 0.0, 0.0};
        CheckResult r = check_close_f32(version, p->size, got, ref, p->n, exact);
        free(got);
        free(ref);
        return r;
    }
    float *sums = (float *)host_alloc(p->grid * sizeof(float), "block sums");
    CUDA_CHECK(cudaMemcpy(sums, p->block_sums, p->grid * sizeof(float), cudaMemcpyDeviceToHost));
    double total = 0.0;
    for (int b = 0; b < p->grid; b++) total += sums[b];
    free(sums);
    Tolerance tol = {F32, 4.0 * 0x1.0p-23 * p->abs_sum, 0.0};
    return check_close(version, p->size, &total, &p->ref_sum, 1, tol);
}

static double measuring_bytes(const Problem *p)
{
    return (p->output == WROTE_COPY ? 2.0 : 1.0) * p->n * sizeof(float);
}
#line 1830 "chapters/00-measuring.md"
// <<demonstrate-what-careless-timing-says>>
#line 1979 "chapters/00-measuring.md"
// Rows of kind "demo": the same float4 copy, timed in the ways this chapter warns about.
static Row demo_row(BenchRun *run, const char *name, const Problem *p, double us)
{
    Version v = {name, "demo", "f32", "", NULL, NULL};
    return row_from_time(run, &v, p->size, us, 2.0 * p->n * sizeof(float), 0.0, NAN);
}

typedef struct {
    Problem *p;
} CopyCtx;

static void launch_copy_f4_ctx(void *ctx) { launch_copy_f4(((CopyCtx *)ctx)->p); }

static void demonstrate_timing(BenchRun *run, const char *size)
{
    Problem *p = measuring_create("f32", size, seed_for(7, size));
    CopyCtx ctx = {p};
    cudaEvent_t start, stop;
    CUDA_CHECK(cudaEventCreate(&start));
    CUDA_CHECK(cudaEventCreate(&stop));
    float ms = 0.0f;

    // 1. the very first launch of a kernel: module loading is inside the events
    CUDA_CHECK(cudaEventRecord(start));
    copy_f4_first_kernel<<<p->grid, 256>>>(p->dst, p->src, p->n);
    CHECK_LAUNCH();
    CUDA_CHECK(cudaEventRecord(stop));
    CUDA_CHECK(cudaEventSynchronize(stop));
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    p->output = WROTE_COPY;
    int ok = measuring_check(p, "copy-f4-first-launch").mismatches == 0;
    Row r = demo_row(run, "copy-f4-first-launch", p, 1000.0 * ms);
    r.pass = ok;
    bench_emit(run, &r, NAN);

    // 2. a host clock around an asynchronous launch: it times the launch call only
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    launch_copy_f4(p);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CUDA_CHECK(cudaDeviceSynchronize());
    double host_us = (t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) * 1e-3;
    r = demo_row(run, "copy-f4-host-clock-no-sync", p, host_us);
    bench_emit(run, &r, NAN);

    // 3. one launch, warm but alone: no median to tame the noise
    l2_flush();
    CUDA_CHECK(cudaEventRecord(start));
    launch_copy_f4(p);
    CUDA_CHECK(cudaEventRecord(stop));
    CUDA_CHECK(cudaEventSynchronize(stop));
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    r = demo_row(run, "copy-f4-single-launch", p, 1000.0 * ms);
    bench_emit(run, &r, NAN);

    // 4. the proper median, and the fastest and slowest repetitions around it
    Timing t = time_launches(launch_copy_f4_ctx, &ctx, run->plan);
    r = demo_row(run, "copy-f4-fastest-rep", p, t.min_us);
    bench_emit(run, &r, NAN);
    r = demo_row(run, "copy-f4-median", p, t.median_us);
    bench_emit(run, &r, NAN);
    r = demo_row(run, "copy-f4-slowest-rep", p, t.max_us);
    bench_emit(run, &r, NAN);

    // 5. the same median without flushing L2 between repetitions: a small input is
    //    then read from the cache, not from memory
    TimingPlan cached = run->plan;
    cached.flush_l2 = 0;
    t = time_launches(launch_copy_f4_ctx, &ctx, cached);
    r = demo_row(run, "copy-f4-no-l2-flush", p, t.median_us);
    bench_emit(run, &r, NAN);

    CUDA_CHECK(cudaEventDestroy(start));
    CUDA_CHECK(cudaEventDestroy(stop));
    measuring_destroy(p);
}

// The launch floor: a kernel that does nothing but write one float, timed as every
// version is. No kernel, however little it reads, is faster than this.
__global__ void empty_kernel(float *out) { if (threadIdx.x == 0) *out = 1.0f; }

static void launch_empty(void *ctx)
{
    empty_kernel<<<1, 32>>>((float *)ctx);
    CHECK_LAUNCH();
}

static void measure_launch_floor(BenchRun *run)
{
    float *out = (float *)device_alloc(sizeof(float), "one float");
    poison(out, sizeof(float));
    launch_empty(out);
    float got = 0.0f;
    CUDA_CHECK(cudaMemcpy(&got, out, sizeof(float), cudaMemcpyDeviceToHost));
    double one = 1.0, wide = got;
    Tolerance exact = {F32, 0.0, 0.0};
    int ok = check_close("empty-kernel", "1", &wide, &one, 1, exact).mismatches == 0;
    Timing t = time_launches(launch_empty, out, run->plan);
    Version v = {"empty-kernel", "demo", "f32", "", NULL, NULL};
    Row r = row_from_time(run, &v, "1", t.median_us, 0.0, 0.0, NAN);
    r.pass = ok;
    bench_emit(run, &r, NAN);
    CUDA_CHECK(cudaFree(out));
}

static void measuring_demos(BenchRun *run)
{
    printf("timing demonstrations\n");
    measure_launch_floor(run);
    demonstrate_timing(run, "2^22");
    demonstrate_timing(run, "2^28");
}
#line 1831 "chapters/00-measuring.md"
// <<the-measuring-chapter>>
#line 2094 "chapters/00-measuring.md"
static const char *const DTYPES[] = {"f32"};
static const char *const BENCH_SIZES[] = {"2^20", "2^22", "2^25", "2^28"};
static const char *const CHECK_SIZES[] = {"1", "31", "1000003", "2^20", "2^22", "2^25+7"};

static const Chapter MEASURING = {
    "measuring", "the ceilings of this GPU: copy and read bandwidth",
    VERSIONS, sizeof VERSIONS / sizeof VERSIONS[0],
    DTYPES, 1, BENCH_SIZES, 4, CHECK_SIZES, 6,
    "copy", "memcpy", bad_count,
    measuring_create, measuring_destroy, measuring_poison, measuring_check, measuring_bytes, NULL,
    measuring_demos, NULL, NULL,
};

int main(int argc, char **argv) { return harness_main(&MEASURING, argc, argv); }
