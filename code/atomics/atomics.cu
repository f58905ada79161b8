#line 28 "chapters/03-atomics.md"
// atomics.cu: what atomics cost, and how half-precision atomics are made fast.
#include "../harness/harness.cuh"
#include <cublas_v2.h>
#include <cuda_fp16.h>
// <<cublas-errors>>
#line 77 "chapters/03-atomics.md"
#define CUBLAS_CHECK(call)                                                                     \
    do {                                                                                       \
        cublasStatus_t st_ = (call);                                                           \
        if (st_ != CUBLAS_STATUS_SUCCESS) {                                                    \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call,               \
                    cublasGetStatusString(st_));                                               \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)
#line 33 "chapters/03-atomics.md"
// <<the-atomics-problem>>
#line 89 "chapters/03-atomics.md"
typedef enum { DOT, SCATTER } Job;

struct Problem {
    Job job;
    char size[64];
    size_t n;  // elements of x and y (dot), or of src (scatter)
    // the dot product: *result = the sum of x[i] * y[i], in half
    __half *x, *y, *result;
    void *base[2];      // the allocations of x and y (the arrays may start one element in)
    float *partial;     // the float accumulator of d5 and d6: zero between launches
    unsigned *done;     // blocks finished, for d5 and d6: zero between launches
    __half2 *pair;      // the (even, odd) accumulator of d2
    double ref;         // the exact dot product of the half inputs
    cublasHandle_t cublas;
    // the scatter-add: out = 0; out[index[r], :] += src[r, :] for every row r of src
    size_t rows, cols, out_rows;
    __half *src, *out;
    int *index;
    double *sum;        // (out_rows * cols) the exact result
    int *hits;          // (out_rows) how many rows of src add into each row of out
};

static const char *dot_only(const Problem *p) { return p->job == DOT ? NULL : "a dot product version"; }
static const char *scatter_only(const Problem *p) { return p->job == SCATTER ? NULL : "a scatter-add version"; }
// s3 and s4 use instructions that only Hopper (sm_90) and newer GPUs have
static const char *scatter_on_hopper(const Problem *p) { return scatter_only(p) ? scatter_only(p) : needs_sm90(); }
#line 34 "chapters/03-atomics.md"
// <<half-atomics>>
#line 287 "chapters/03-atomics.md"
// Adds v to *p with a 32-bit half2 atomic on the aligned word that holds *p, the other
// half of the word padded with zero, when the whole word lies inside [lo, hi); otherwise
// with the (compare-and-swap) 16-bit atomic.
__device__ inline void fast_atomic_add(__half *p, __half v, const __half *lo, const __half *hi)
{
    uintptr_t a = (uintptr_t)p;
    __half *word = (__half *)(a & ~(uintptr_t)3);
    if (word >= lo && word + 2 <= hi) {
        __half zero = __ushort_as_half(0);
        // little-endian: the half at the lower address is the low half of the word
        __half2 v2 = (a & 2) ? __halves2half2(zero, v) : __halves2half2(v, zero);
        atomicAdd((__half2 *)word, v2);
    } else {
        atomicAdd(p, v);
    }
}
#line 35 "chapters/03-atomics.md"
// <<dot-kernels>>
#line 215 "chapters/03-atomics.md"
__device__ inline float product(const __half *x, const __half *y, size_t i)
{
    return __half2float(x[i]) * __half2float(y[i]);
}

// d0: every element adds its product into the one result with a half atomic.
__global__ void dot_d0(__half *result, const __half *x, const __half *y, size_t n)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) atomicAdd(result, __float2half(product(x, y, i)));
}
#line 309 "chapters/03-atomics.md"
__global__ void dot_d1(__half *result, const __half *x, const __half *y, size_t n)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) fast_atomic_add(result, __float2half(product(x, y, i)), result, result + 2);
}
#line 348 "chapters/03-atomics.md"
// d2: pairs of elements, one half2 atomic each, into an (even, odd) pair of sums.
__global__ void dot_d2(__half2 *pair, const __half *x, const __half *y, size_t n)
{
    size_t i = 2 * (blockIdx.x * (size_t)blockDim.x + threadIdx.x);
    if (i >= n) return;
    float even = product(x, y, i), odd = i + 1 < n ? product(x, y, i + 1) : 0.0f;
    atomicAdd(pair, __floats2half2_rn(even, odd));
}

__global__ void dot_finish_pair(__half *result, const __half2 *pair)
{
    *result = __float2half(__low2float(*pair) + __high2float(*pair));
}
#line 393 "chapters/03-atomics.md"
// Elements before x reaches a 16-byte boundary (x and y are equally aligned).
__device__ inline size_t head_of(const __half *x, size_t n)
{
    size_t misalign = ((uintptr_t)x % 16) / sizeof(__half);
    size_t head = misalign ? 8 - misalign : 0;
    return head < n ? head : n;
}

// The dot product of two packs of 8 halves, in float.
__device__ inline float dot8(int4 a, int4 b)
{
    const __half2 *ha = reinterpret_cast<const __half2 *>(&a);
    const __half2 *hb = reinterpret_cast<const __half2 *>(&b);
    float s = 0.0f;
#pragma unroll
    for (int j = 0; j < 4; j++) {
        float2 fa = __half22float2(ha[j]), fb = __half22float2(hb[j]);
        s = fmaf(fa.x, fb.x, s);
        s = fmaf(fa.y, fb.y, s);
    }
    return s;
}

// This thread's share of the dot product, in float: a grid-stride walk over 16-byte
// packs, U packs of x and U of y loaded before any is used; the last round is guarded.
template <int U>
__device__ inline float thread_dot(const __half *x, const __half *y, size_t n)
{
    size_t tid = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    size_t head = head_of(x, n), packs = (n - head) / 8;
    const int4 *x8 = reinterpret_cast<const int4 *>(x + head);
    const int4 *y8 = reinterpret_cast<const int4 *>(y + head);
    float acc = tid < head ? product(x, y, tid) : 0.0f;
    for (size_t k = tid; k < packs; k += U * stride) {
        int4 a[U], b[U];
#pragma unroll
        for (int u = 0; u < U; u++) {
            bool in = k + u * stride < packs;
            a[u] = in ? x8[k + u * stride] : make_int4(0, 0, 0, 0);
            b[u] = in ? y8[k + u * stride] : make_int4(0, 0, 0, 0);
        }
#pragma unroll
        for (int u = 0; u < U; u++) acc += dot8(a[u], b[u]);
    }
    for (size_t i = head + packs * 8 + tid; i < n; i += stride) acc += product(x, y, i);
    return acc;
}

// d3: float sums per thread, one half atomic per thread.
__global__ void dot_d3(__half *result, const __half *x, const __half *y, size_t n)
{
    atomicAdd(result, __float2half(thread_dot<2>(x, y, n)));
}
#line 453 "chapters/03-atomics.md"
// The sum of v over the block, in thread 0 (warp shuffles, then one warp of warp sums).
__device__ inline float block_sum(float v)
{
    __shared__ float warp_sums[32];
    for (int o = 16; o > 0; o /= 2) v += __shfl_down_sync(0xffffffffu, v, o);
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < (int)(blockDim.x / 32) ? warp_sums[lane] : 0.0f;
        for (int o = 16; o > 0; o /= 2) v += __shfl_down_sync(0xffffffffu, v, o);
    }
    return v;
}

// d4: float sums per block, one half atomic per block.
__global__ void dot_d4(__half *result, const __half *x, const __half *y, size_t n)
{
    float s = block_sum(thread_dot<2>(x, y, n));
    if (threadIdx.x == 0) atomicAdd(result, __float2half(s));
}
#line 547 "chapters/03-atomics.md"
// d5, d6: float sums per block, one float atomic per block; the last block to finish
// rounds the total to half once, and leaves the accumulator and the counter at zero.
template <int U>
__global__ void dot_one_pass(__half *result, float *partial, unsigned *done, const __half *x,
                             const __half *y, size_t n)
{
    float s = block_sum(thread_dot<U>(x, y, n));
    if (threadIdx.x == 0) {
        atomicAdd(partial, s);
        __threadfence();  // this block's add is visible before its count
        if (atomicAdd(done, 1u) == gridDim.x - 1) {
            *result = __float2half(atomicExch(partial, 0.0f));
            *done = 0;
        }
    }
}
#line 36 "chapters/03-atomics.md"
// <<vector-reduction-of-eight-halves>>
#line 840 "chapters/03-atomics.md"
// Hopper's vector reduction: eight halves added to 16 aligned bytes by one instruction
// (compiled for sm_90 and newer only: older GPUs skip the versions that use it).
__device__ inline void red_add_v8(__half *dst, int4 v)
{
#if HOPPER_CODE
    asm volatile("red.global.add.noftz.v4.f16x2 [%0], {%1, %2, %3, %4};"
                 :: "l"(dst), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w) : "memory");
#endif
}
#line 37 "chapters/03-atomics.md"
// <<scatter-kernels>>
#line 704 "chapters/03-atomics.md"
// s0: one thread per element of src (row i / cols, column i % cols), one half atomic.
__global__ void scatter_s0(__half *out, const __half *src, const int *index, unsigned rows, unsigned cols)
{
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows * cols) return;
    unsigned r = i / cols, c = i % cols;
    atomicAdd(out + (size_t)index[r] * cols + c, src[i]);
}
#line 752 "chapters/03-atomics.md"
// s1: s0 with the padded half2 (fast) atomic.
__global__ void scatter_s1(__half *out, const __half *src, const int *index, unsigned rows, unsigned cols,
                           unsigned out_rows)
{
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows * cols) return;
    unsigned r = i / cols, c = i % cols;
    fast_atomic_add(out + (size_t)index[r] * cols + c, src[i], out, out + (size_t)out_rows * cols);
}
#line 790 "chapters/03-atomics.md"
// s2: one thread per pair of columns; one half2 atomic when the destination is aligned.
__global__ void scatter_s2(__half *out, const __half *src, const int *index, unsigned rows, unsigned cols,
                           unsigned out_rows)
{
    unsigned pairs = (cols + 1) / 2;
    unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= rows * pairs) return;
    unsigned r = t / pairs, c = 2 * (t % pairs);
    __half *dst = out + (size_t)index[r] * cols + c;
    const __half *s = src + (size_t)r * cols + c;
    const __half *end = out + (size_t)out_rows * cols;
    if (c + 1 < cols && (uintptr_t)dst % 4 == 0) {
        atomicAdd((__half2 *)dst, __halves2half2(s[0], s[1]));
    } else {
        fast_atomic_add(dst, s[0], out, end);
        if (c + 1 < cols) fast_atomic_add(dst + 1, s[1], out, end);
    }
}
#line 852 "chapters/03-atomics.md"
// Whether columns c..c+7 of src's row r can go to `dst` by one vector reduction.
__device__ inline bool eight_aligned(const __half *dst, const __half *s, unsigned c, unsigned cols)
{
    return c + 8 <= cols && (uintptr_t)dst % 16 == 0 && (uintptr_t)s % 16 == 0;
}

// Columns c..c+7 (or up to the end of the row) one at a time, with the fast atomic.
__device__ inline void scatter_slow(__half *dst, const __half *s, unsigned c, unsigned cols, const __half *out,
                                    const __half *end)
{
    for (unsigned j = c; j < cols && j < c + 8; j++) fast_atomic_add(dst + (j - c), s[j - c], out, end);
}

// s3: one thread per 8 columns.
__global__ void scatter_s3(__half *out, const __half *src, const int *index, unsigned rows, unsigned cols,
                           unsigned out_rows)
{
    unsigned groups = (cols + 7) / 8;
    unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= rows * groups) return;
    unsigned r = t / groups, c = 8 * (t % groups);
    __half *dst = out + (size_t)index[r] * cols + c;
    const __half *s = src + (size_t)r * cols + c;
    if (eight_aligned(dst, s, c, cols)) red_add_v8(dst, *reinterpret_cast<const int4 *>(s));
    else scatter_slow(dst, s, c, cols, out, out + (size_t)out_rows * cols);
}
#line 918 "chapters/03-atomics.md"
__global__ void zero_halves(__half *out, size_t m)
{
#if HOPPER_CODE
    cudaTriggerProgrammaticLaunchCompletion();  // the scatter may be scheduled now
#endif
    size_t tid = blockIdx.x * (size_t)blockDim.x + threadIdx.x, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = tid; i < m / 8; i += stride) reinterpret_cast<int4 *>(out)[i] = make_int4(0, 0, 0, 0);
    for (size_t i = m / 8 * 8 + tid; i < m; i += stride) out[i] = __ushort_as_half(0);
}

// s4: s3 as the programmatic dependent of zero_halves: it loads its index and src, then
// waits for the zeroing before it adds.
__global__ void scatter_s4(__half *out, const __half *src, const int *index, unsigned rows, unsigned cols,
                           unsigned out_rows)
{
    unsigned groups = (cols + 7) / 8;
    unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
    bool mine = t < rows * groups, fast = false;
    unsigned r = mine ? t / groups : 0, c = mine ? 8 * (t % groups) : 0;
    __half *dst = NULL;
    const __half *s = NULL;
    int4 v = make_int4(0, 0, 0, 0);
    if (mine) {
        dst = out + (size_t)index[r] * cols + c;
        s = src + (size_t)r * cols + c;
        fast = eight_aligned(dst, s, c, cols);
        if (fast) v = *reinterpret_cast<const int4 *>(s);
    }
#if HOPPER_CODE
    cudaGridDependencySynchronize();  // zero_halves has finished, and its writes are visible
#endif
    if (!mine) return;
    if (fast) red_add_v8(dst, v);
    else scatter_slow(dst, s, c, cols, out, out + (size_t)out_rows * cols);
}
#line 38 "chapters/03-atomics.md"
// <<atomics-launchers>>
#line 229 "chapters/03-atomics.md"
enum { THREADS = 256 };

static unsigned blocks_for(size_t items) { return (unsigned)((items + THREADS - 1) / THREADS); }

static void zero_result(Problem *p) { CUDA_CHECK(cudaMemsetAsync(p->result, 0, sizeof(__half))); }

static void launch_d0(Problem *p)
{
    zero_result(p);
    dot_d0<<<blocks_for(p->n), THREADS>>>(p->result, p->x, p->y, p->n);
    CHECK_LAUNCH();
}
#line 317 "chapters/03-atomics.md"
static void launch_d1(Problem *p)
{
    zero_result(p);
    dot_d1<<<blocks_for(p->n), THREADS>>>(p->result, p->x, p->y, p->n);
    CHECK_LAUNCH();
}
#line 364 "chapters/03-atomics.md"
static void launch_d2(Problem *p)
{
    CUDA_CHECK(cudaMemsetAsync(p->pair, 0, sizeof(__half2)));
    dot_d2<<<blocks_for((p->n + 1) / 2), THREADS>>>(p->pair, p->x, p->y, p->n);
    CHECK_LAUNCH();
    dot_finish_pair<<<1, 1>>>(p->result, p->pair);
    CHECK_LAUNCH();
}
#line 481 "chapters/03-atomics.md"
// Grids of the thread-sum versions: every block resident at once, or fewer when the
// array has fewer packs than that grid has threads.
static unsigned sum_grid(size_t n, const void *kernel)
{
    size_t resident = (size_t)resident_blocks(kernel, THREADS);
    size_t need = blocks_for(n / 8 + 1);
    return (unsigned)(need < resident ? need : resident);
}

static void launch_d3(Problem *p)
{
    zero_result(p);
    dot_d3<<<sum_grid(p->n, (const void *)dot_d3), THREADS>>>(p->result, p->x, p->y, p->n);
    CHECK_LAUNCH();
}

static void launch_d4(Problem *p)
{
    zero_result(p);
    dot_d4<<<sum_grid(p->n, (const void *)dot_d4), THREADS>>>(p->result, p->x, p->y, p->n);
    CHECK_LAUNCH();
}
#line 566 "chapters/03-atomics.md"
template <int U>
static void launch_one_pass(Problem *p)
{
    unsigned grid = sum_grid(p->n, (const void *)dot_one_pass<U>);
    dot_one_pass<U><<<grid, THREADS>>>(p->result, p->partial, p->done, p->x, p->y, p->n);
    CHECK_LAUNCH();
}
#line 629 "chapters/03-atomics.md"
static void launch_cublas(Problem *p)
{
    if (!p->cublas) {  // created at the first (untimed) launch
        CUBLAS_CHECK(cublasCreate(&p->cublas));
        CUBLAS_CHECK(cublasSetPointerMode(p->cublas, CUBLAS_POINTER_MODE_DEVICE));
    }
    CUBLAS_CHECK(cublasDotEx(p->cublas, (int)p->n, p->x, CUDA_R_16F, 1, p->y, CUDA_R_16F, 1, p->result,
                             CUDA_R_16F, CUDA_R_32F));
}
#line 715 "chapters/03-atomics.md"
static void zero_out(Problem *p)
{
    CUDA_CHECK(cudaMemsetAsync(p->out, 0, p->out_rows * p->cols * sizeof(__half)));
}

static void launch_s0(Problem *p)
{
    zero_out(p);
    scatter_s0<<<blocks_for(p->n), THREADS>>>(p->out, p->src, p->index, (unsigned)p->rows, (unsigned)p->cols);
    CHECK_LAUNCH();
}
#line 764 "chapters/03-atomics.md"
static void launch_s1(Problem *p)
{
    zero_out(p);
    scatter_s1<<<blocks_for(p->n), THREADS>>>(p->out, p->src, p->index, (unsigned)p->rows, (unsigned)p->cols,
                                              (unsigned)p->out_rows);
    CHECK_LAUNCH();
}
#line 811 "chapters/03-atomics.md"
static void launch_s2(Problem *p)
{
    zero_out(p);
    size_t threads = p->rows * ((p->cols + 1) / 2);
    scatter_s2<<<blocks_for(threads), THREADS>>>(p->out, p->src, p->index, (unsigned)p->rows, (unsigned)p->cols,
                                                 (unsigned)p->out_rows);
    CHECK_LAUNCH();
}
#line 881 "chapters/03-atomics.md"
static void launch_s3(Problem *p)
{
    zero_out(p);
    size_t threads = p->rows * ((p->cols + 7) / 8);
    scatter_s3<<<blocks_for(threads), THREADS>>>(p->out, p->src, p->index, (unsigned)p->rows, (unsigned)p->cols,
                                                 (unsigned)p->out_rows);
    CHECK_LAUNCH();
}
#line 956 "chapters/03-atomics.md"
static void launch_s4(Problem *p)
{
    static int resident = 0;
    if (!resident) resident = resident_blocks((const void *)zero_halves, THREADS);
    size_t m = p->out_rows * p->cols;
    unsigned zero_grid = blocks_for(m / 8 + 1) < (unsigned)resident ? blocks_for(m / 8 + 1) : (unsigned)resident;
    zero_halves<<<zero_grid, THREADS>>>(p->out, m);
    CHECK_LAUNCH();
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = blocks_for(p->rows * ((p->cols + 7) / 8));
    cfg.blockDim = THREADS;
    cudaLaunchAttribute attr;
    attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr.val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
    CUDA_CHECK(cudaLaunchKernelEx(&cfg, scatter_s4, p->out, (const __half *)p->src, (const int *)p->index,
                                  (unsigned)p->rows, (unsigned)p->cols, (unsigned)p->out_rows));
}
#line 39 "chapters/03-atomics.md"

static const Version VERSIONS[] = {
    // <<atomics-versions>>
#line 602 "chapters/03-atomics.md"
    {"d0-half-per-element", "inexact", "f16", "one half atomicAdd per element, all into the result", launch_d0, dot_only},
    {"d1-fast-per-element", "inexact", "f16", "d0 with the padded half2 (fast) atomic", launch_d1, dot_only},
    {"d2-half2-per-pair", "inexact", "f16", "one half2 atomicAdd per pair, into (even, odd) sums", launch_d2, dot_only},
    {"d3-half-per-thread", "inexact", "f16", "float sums per thread, one half atomicAdd per thread", launch_d3, dot_only},
    {"d4-half-per-block", "inexact", "f16", "float sums per block, one half atomicAdd per block", launch_d4, dot_only},
    {"d5-float-per-block", "ours", "f16", "float sums per block, one float atomicAdd per block, one rounding", launch_one_pass<2>, dot_only},
    {"d6-four-in-flight", "ours", "f16", "d5 with four packs of x and four of y in flight", launch_one_pass<4>, dot_only},
#line 641 "chapters/03-atomics.md"
    {"cublas-dot", "peer", "f16", "cublasDotEx: f16 in and out, f32 compute", launch_cublas, dot_only},
#line 978 "chapters/03-atomics.md"
    {"s0-half", "ours", "f16", "scatter-add: one half atomicAdd per element", launch_s0, scatter_only},
    {"s1-fast-half", "ours", "f16", "scatter-add: the padded half2 (fast) atomic per element", launch_s1, scatter_only},
    {"s2-half2", "ours", "f16", "scatter-add: one half2 atomicAdd per pair of columns", launch_s2, scatter_only},
    {"s3-vector-red", "ours", "f16", "scatter-add: one 16-byte red.v4.f16x2 per 8 columns", launch_s3, scatter_on_hopper},
    {"s4-overlapped", "ours", "f16", "scatter-add: s3 as a programmatic dependent launch of the zeroing", launch_s4, scatter_on_hopper},
#line 42 "chapters/03-atomics.md"
};
// <<create-atomics-problems>>
#line 1071 "chapters/03-atomics.md"
static void upload_half(__half *device, const float *x, size_t n)
{
    __half *staging = (__half *)host_alloc(n * sizeof(__half), "staging");
    for (size_t i = 0; i < n; i++) staging[i] = __float2half(x[i]);
    CUDA_CHECK(cudaMemcpy(device, staging, n * sizeof(__half), cudaMemcpyHostToDevice));
    free(staging);
}

// n uniform values in [lo, hi], rounded to half (returned as floats, exactly).
static float *random_halves(size_t n, float lo, float hi, uint64_t seed)
{
    float *h = (float *)host_alloc(n * sizeof(float), "input");
    fill_uniform_f32(h, n, lo, hi, seed);
    for (size_t i = 0; i < n; i++) h[i] = __half2float(__float2half(h[i]));
    return h;
}

static void dot_create(Problem *p, const char *size, uint64_t seed)
{
    char count[64];
    int offset = split_offset(size, count, sizeof count);
    p->job = DOT;
    p->n = count_of(count);
    __half **arrays[2] = {&p->x, &p->y};
    for (int k = 0; k < 2; k++) {
        p->base[k] = device_alloc((p->n + 8) * sizeof(__half), "input");
        *arrays[k] = (__half *)p->base[k] + offset;
    }
    p->result = (__half *)device_alloc(2 * sizeof(__half), "result");  // a whole word: see d1
    p->partial = (float *)device_alloc(sizeof(float), "accumulator");
    p->done = (unsigned *)device_alloc(sizeof(unsigned), "counter");
    p->pair = (__half2 *)device_alloc(sizeof(__half2), "pair accumulator");
    CUDA_CHECK(cudaMemset(p->result, 0, 2 * sizeof(__half)));
    CUDA_CHECK(cudaMemset(p->partial, 0, sizeof(float)));
    CUDA_CHECK(cudaMemset(p->done, 0, sizeof(unsigned)));
    float *hx = random_halves(p->n, 0x1p-8f, 0x1p-6f, seed);
    float *hy = random_halves(p->n, 0x1p-8f, 0x1p-6f, seed + 1);
    upload_half(p->x, hx, p->n);
    upload_half(p->y, hy, p->n);
    p->ref = 0.0;  // each product of two halves is exact in double, and so is their sum here
    for (size_t i = 0; i < p->n; i++) p->ref += (double)hx[i] * hy[i];
    free(hx);
    free(hy);
}

// "COUNT:PCT" (rows of 128 columns) or "ROWSxCOLS:PCT": the shape of src, and of out with
// PCT% as many rows (at least one). Returns NULL, or what is wrong with the size.
static const char *parse_scatter_size(const char *size, size_t *rows, size_t *cols, size_t *out_rows)
{
    char spec[64];
    snprintf(spec, sizeof spec, "%s", size);
    char *colon = strchr(spec, ':');
    if (!colon) return "no colon";
    *colon = '\0';
    char *end;
    long pct = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || pct < 1 || pct > 100) return "the percentage after the colon is not 1 to 100";
    char *x = strchr(spec, 'x');
    if (x) {
        *x = '\0';
        if (parse_count(spec, rows) || parse_count(x + 1, cols)) return "ROWSxCOLS expected before the colon";
    } else {
        size_t count;
        if (parse_count(spec, &count)) return "a count expected before the colon";
        *cols = 128;
        *rows = count / 128;
        if (*rows * 128 != count) return "COUNT is not a multiple of 128 columns";
    }
    if (!*rows || !*cols) return "empty";
    if (*rows * *cols >= (1ull << 32)) return "2^32 elements or more";
    *out_rows = *rows * (size_t)pct / 100;
    if (!*out_rows) *out_rows = 1;
    return NULL;
}

static void scatter_create(Problem *p, const char *size, uint64_t seed)
{
    parse_scatter_size(size, &p->rows, &p->cols, &p->out_rows);  // atomics_bad_size accepted it
    p->job = SCATTER;
    p->n = p->rows * p->cols;
    size_t m = p->out_rows * p->cols;
    p->src = (__half *)device_alloc(p->n * sizeof(__half), "src");
    p->out = (__half *)device_alloc(m * sizeof(__half), "out");
    p->index = (int *)device_alloc(p->rows * sizeof(int), "index");
    float *hs = random_halves(p->n, 0.5f, 2.0f, seed);
    upload_half(p->src, hs, p->n);
    int *hi = (int *)host_alloc(p->rows * sizeof(int), "index");
    uint64_t state = seed ^ 0x5ca77e7ull;
    for (size_t r = 0; r < p->rows; r++) hi[r] = (int)(rng_next(&state) % p->out_rows);
    CUDA_CHECK(cudaMemcpy(p->index, hi, p->rows * sizeof(int), cudaMemcpyHostToDevice));
    p->sum = (double *)host_alloc(m * sizeof(double), "reference");
    p->hits = (int *)host_alloc(p->out_rows * sizeof(int), "reference");
    memset(p->sum, 0, m * sizeof(double));
    memset(p->hits, 0, p->out_rows * sizeof(int));
    for (size_t r = 0; r < p->rows; r++) {
        p->hits[hi[r]]++;
        for (size_t c = 0; c < p->cols; c++) p->sum[(size_t)hi[r] * p->cols + c] += hs[r * p->cols + c];
    }
    free(hs);
    free(hi);
}

// Dot product sizes are "COUNT" or "COUNT@1" (misaligned) up to cublasDotEx's int count;
// scatter-add sizes are parse_scatter_size's.
static const char *atomics_bad_size(const char *size)
{
    if (strchr(size, ':')) {
        size_t rows, cols, out_rows;
        return parse_scatter_size(size, &rows, &cols, &out_rows)
                   ? "COUNT:PCT (rows of 128) or ROWSxCOLS:PCT, e.g. 2^25:1 or 1000x37:10" : NULL;
    }
    char count[64];
    size_t n = 0;
    if (split_offset(size, count, sizeof count) < 0) return "COUNT or COUNT@1 (1000003, 2^25, 2^25+7), or COUNT:PCT";
    parse_count(count, &n);
    return n > INT_MAX ? "a dot product of at most 2^31-1 elements (cublasDotEx counts in int)" : NULL;
}

static Problem *atomics_create(const char *dtype, const char *size, uint64_t seed)
{
    const char *bad = atomics_bad_size(size);
    if (bad) usage_error("bad size", size, bad);
    if (strcmp(dtype, "f16")) usage_error("unknown dtype", dtype, "f16");
    Problem *p = (Problem *)host_alloc(sizeof(Problem), "problem");
    memset(p, 0, sizeof *p);
    snprintf(p->size, sizeof p->size, "%s", size);
    if (strchr(size, ':')) scatter_create(p, size, seed);
    else dot_create(p, size, seed);
    return p;
}

static void atomics_destroy(Problem *p)
{
    void *device[] = {p->base[0], p->base[1], p->result, p->partial, p->done, p->pair, p->src, p->out, p->index};
    for (size_t k = 0; k < sizeof device / sizeof device[0]; k++)
        if (device[k]) CUDA_CHECK(cudaFree(device[k]));
    if (p->cublas) CUBLAS_CHECK(cublasDestroy(p->cublas));
    free(p->sum);
    free(p->hits);
    free(p);
}

static void atomics_poison(Problem *p)
{
    if (p->job == DOT) poison(p->result, sizeof(__half));
    else poison(p->out, p->out_rows * p->cols * sizeof(__half));
}

// Dot: x and y read once. Scatter: src and index read once, out written once.
// The roofline's operations: a multiply-add per element of the dot product (2), an
// addition per element scattered (1).
static double atomics_flops(const Problem *p) { return (p->job == DOT ? 2.0 : 1.0) * p->n; }

static double atomics_bytes(const Problem *p)
{
    if (p->job == DOT) return 2.0 * p->n * sizeof(__half);
    return p->n * sizeof(__half) + p->rows * sizeof(int) + p->out_rows * p->cols * sizeof(__half);
}
#line 44 "chapters/03-atomics.md"
// <<check-atomics-problems>>
#line 158 "chapters/03-atomics.md"
static const double HALF_U = 0x1p-11;  // half an ulp of half, relative: 11 significant bits

static CheckResult dot_check(Problem *p, const char *version)
{
    __half h;
    CUDA_CHECK(cudaMemcpy(&h, p->result, sizeof h, cudaMemcpyDeviceToHost));
    double got = __half2float(h);
    Tolerance tol = {F16, 0.0, 0x1p-12};  // the float chain; the harness adds the rounding
    return check_close(version, p->size, &got, &p->ref, 1, tol);
}

// How far a sum of k positive halves, added in any order into a half that starts at
// zero, may be from its exact value `sum`.
static double scatter_bound(int k, double sum)
{
    return k > 1 ? 1.01 * (k - 1) * HALF_U * sum : 0.0;
}

static CheckResult scatter_check(Problem *p, const char *version)
{
    size_t m = p->out_rows * p->cols;
    __half *raw = (__half *)host_alloc(m * sizeof(__half), "output");
    CUDA_CHECK(cudaMemcpy(raw, p->out, m * sizeof(__half), cudaMemcpyDeviceToHost));
    CheckResult r = {0, 0.0, 0.0};
    for (size_t e = 0; e < m; e++) {
        double got = __half2float(raw[e]), ref = p->sum[e];
        int k = p->hits[e / p->cols];
        double err = fabs(got - ref);
        if (!(err <= scatter_bound(k, ref))) {  // written so that NaN fails
            if (r.mismatches < 5)
                fprintf(stderr, "FAIL %s size %s: out[%zu][%zu] (%d rows add into it): "
                        "expected %.9g, got %.9g\n", version, p->size, e / p->cols, e % p->cols, k, ref, got);
            r.mismatches++;
        }
        if (err > r.max_abs_err || err != err) r.max_abs_err = err;
        double rel = err / fmax(ref, 1e-30);
        if (rel > r.max_rel_err || rel != rel) r.max_rel_err = rel;
    }
    if (r.mismatches)
        fprintf(stderr, "FAIL %s size %s: %zu of %zu elements mismatch\n", version, p->size, r.mismatches, m);
    free(raw);
    return r;
}

static CheckResult atomics_check(Problem *p, const char *version)
{
    return p->job == DOT ? dot_check(p, version) : scatter_check(p, version);
}
#line 45 "chapters/03-atomics.md"
// <<the-atomics-chapter>>
#line 1236 "chapters/03-atomics.md"
static int atomics_self_test(void)
{
    int passed = 0, failed = 0;
    size_t rows, cols, out_rows;
    SELF_TEST(!parse_scatter_size("2^25:1", &rows, &cols, &out_rows) && rows == 262144 && cols == 128 &&
              out_rows == 2621);
    SELF_TEST(!parse_scatter_size("1000x37:10", &rows, &cols, &out_rows) && rows == 1000 && cols == 37 &&
              out_rows == 100);
    SELF_TEST(!parse_scatter_size("7x3:1", &rows, &cols, &out_rows) && out_rows == 1);
    SELF_TEST(parse_scatter_size("1000:1", &rows, &cols, &out_rows) != NULL);     // not a multiple of 128
    SELF_TEST(parse_scatter_size("2^20:0", &rows, &cols, &out_rows) != NULL);
    SELF_TEST(parse_scatter_size("2^20:101", &rows, &cols, &out_rows) != NULL);
    SELF_TEST(parse_scatter_size("2^20:1x", &rows, &cols, &out_rows) != NULL);
    SELF_TEST(parse_scatter_size("2^16x2^16:1", &rows, &cols, &out_rows) != NULL);  // 2^32 elements
    SELF_TEST(scatter_bound(1, 3.0) == 0.0 && scatter_bound(0, 0.0) == 0.0);
    SELF_TEST(fabs(scatter_bound(3, 1.0) - 2.02 * 0x1p-11) < 1e-15);
    // one half accumulator, 2^20 terms of 2^-13.3: the exact sum is about 104
    __half acc = __float2half(0.0f);
    double exact = 0.0;
    for (int i = 0; i < (1 << 20); i++) {
        float term = __half2float(__float2half(1.0e-4f));
        acc = __float2half(__half2float(acc) + term);
        exact += term;
    }
    SELF_TEST(exact > 100.0 && __half2float(acc) < 1.0f);  // the sum stalls below 1
    printf("atomics: %d passed, %d failed\n", passed, failed);
    return failed;
}

static const char *const DTYPES[] = {"f16"};
static const char *const BENCH_SIZES[] = {"2^20", "2^25", "2^28", "2^20:1", "2^20:10", "2^20:100",
                                          "2^25:1", "2^25:10", "2^25:100", "2^28:1", "2^28:10", "2^28:100"};
static const char *const CHECK_SIZES[] = {"1", "7", "1000", "1000003@1", "2^20", "2^25+7",
                                          "1x1:100", "7x3:100", "1000x37:10", "3001x129:1", "999x8:50",
                                          "2^20:1", "2^20:100", "2^25:10"};

static const Chapter ATOMICS = {
    "atomics", "a half dot product and a half scatter-add: what atomics cost",
    VERSIONS, sizeof VERSIONS / sizeof VERSIONS[0],
    DTYPES, 1, BENCH_SIZES, sizeof BENCH_SIZES / sizeof BENCH_SIZES[0],
    CHECK_SIZES, sizeof CHECK_SIZES / sizeof CHECK_SIZES[0],
    "read", "cublas-dot", atomics_bad_size,
    atomics_create, atomics_destroy, atomics_poison, atomics_check, atomics_bytes, atomics_flops,
    NULL, atomics_self_test, NULL,
};

int main(int argc, char **argv) { return harness_main(&ATOMICS, argc, argv); }
