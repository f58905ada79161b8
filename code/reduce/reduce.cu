#line 19 "chapters/01-reduce.md"
// reduce.cu: float32 sum, from Harris's ladder to one launch.
#include "../harness/harness.cuh"
#include <cub/device/device_reduce.cuh>
// <<the-reduce-problem>>
#line 43 "chapters/01-reduce.md"
struct Problem {
    size_t n;
    char size[64];
    float *x;            // (n) the input, on the device
    float *out;          // (1) the sum, on the device
    float *partial[2];   // (max_partials) block sums between passes
    size_t max_partials;
    unsigned *blocks_done;  // one-pass: how many blocks have finished (zero between launches)
    double *total;       // v10, v11: the running sum of block sums (zero between launches)
    void *cub_temp;
    size_t cub_temp_bytes;
    double ref;          // the sum in double precision, on the CPU
    double abs_sum;      // sum of |x|: the scale of the rounding error
};

enum { BLOCK = 256 };  // threads per block for every version

// |got - ref| may be at most REDUCE_TOLERANCE * sum(|x|): four float epsilons of the
// scale of the sum (the chapter derives it).
static const double REDUCE_TOLERANCE = 4.0 * 0x1.0p-23;
#line 23 "chapters/01-reduce.md"
// <<reduce-kernels>>
#line 208 "chapters/01-reduce.md"
// v0: interleaved addressing; the active threads are those whose index is a multiple
// of 2*stride, so every warp stays busy with mostly idle lanes (divergence).
__global__ void reduce_v0(float *out, const float *x, size_t n)
{
    __shared__ float s[BLOCK];
    unsigned tid = threadIdx.x;
    size_t i = blockIdx.x * (size_t)BLOCK + tid;
    s[tid] = i < n ? x[i] : 0.0f;
    __syncthreads();
    for (unsigned stride = 1; stride < BLOCK; stride *= 2) {
        if (tid % (2 * stride) == 0) s[tid] += s[tid + stride];
        __syncthreads();
    }
    if (tid == 0) out[blockIdx.x] = s[0];
}
#line 245 "chapters/01-reduce.md"
// v1: the same pairs, computed by consecutive threads: no divergence until the last
// five steps, but the strided index makes the threads of a warp hit the same banks.
__global__ void reduce_v1(float *out, const float *x, size_t n)
{
    __shared__ float s[BLOCK];
    unsigned tid = threadIdx.x;
    size_t i = blockIdx.x * (size_t)BLOCK + tid;
    s[tid] = i < n ? x[i] : 0.0f;
    __syncthreads();
    for (unsigned stride = 1; stride < BLOCK; stride *= 2) {
        unsigned k = 2 * stride * tid;
        if (k < BLOCK) s[k] += s[k + stride];
        __syncthreads();
    }
    if (tid == 0) out[blockIdx.x] = s[0];
}
#line 291 "chapters/01-reduce.md"
// v2: sequential addressing: the first half adds the second half, and so on.
__global__ void reduce_v2(float *out, const float *x, size_t n)
{
    __shared__ float s[BLOCK];
    unsigned tid = threadIdx.x;
    size_t i = blockIdx.x * (size_t)BLOCK + tid;
    s[tid] = i < n ? x[i] : 0.0f;
    __syncthreads();
    for (unsigned stride = BLOCK / 2; stride > 0; stride /= 2) {
        if (tid < stride) s[tid] += s[tid + stride];
        __syncthreads();
    }
    if (tid == 0) out[blockIdx.x] = s[0];
}
#line 327 "chapters/01-reduce.md"
// v3: each thread adds two elements as it loads them: half the blocks, no idle loaders.
__global__ void reduce_v3(float *out, const float *x, size_t n)
{
    __shared__ float s[BLOCK];
    unsigned tid = threadIdx.x;
    size_t i = blockIdx.x * (size_t)(2 * BLOCK) + tid;
    float v = i < n ? x[i] : 0.0f;
    if (i + BLOCK < n) v += x[i + BLOCK];
    s[tid] = v;
    __syncthreads();
    for (unsigned stride = BLOCK / 2; stride > 0; stride /= 2) {
        if (tid < stride) s[tid] += s[tid + stride];
        __syncthreads();
    }
    if (tid == 0) out[blockIdx.x] = s[0];
}
#line 370 "chapters/01-reduce.md"
// The last 64 values, reduced by one warp without __syncthreads. Since Volta the
// lanes of a warp need not run in step, so each step reads, syncs the warp, then writes.
__device__ void warp_reduce_shared(float *s, unsigned tid)
{
    float v = s[tid] + s[tid + 32];
    for (unsigned stride = 16; stride > 0; stride /= 2) {
        __syncwarp();
        s[tid] = v;
        __syncwarp();
        v += s[tid + stride];
    }
    if (tid == 0) s[0] = v;
}

// v4: v3, with the last six steps done by one warp, without block barriers.
__global__ void reduce_v4(float *out, const float *x, size_t n)
{
    __shared__ float s[BLOCK];
    unsigned tid = threadIdx.x;
    size_t i = blockIdx.x * (size_t)(2 * BLOCK) + tid;
    float v = i < n ? x[i] : 0.0f;
    if (i + BLOCK < n) v += x[i + BLOCK];
    s[tid] = v;
    __syncthreads();
    for (unsigned stride = BLOCK / 2; stride > 32; stride /= 2) {
        if (tid < stride) s[tid] += s[tid + stride];
        __syncthreads();
    }
    if (tid < 32) warp_reduce_shared(s, tid);
    if (tid == 0) out[blockIdx.x] = s[0];
}
#line 423 "chapters/01-reduce.md"
// v5: the block-level loop unrolled completely for a block size known at compile time.
template <unsigned THREADS>
__device__ void block_reduce_shared(float *s, unsigned tid)
{
    static_assert(THREADS >= 64 && (THREADS & (THREADS - 1)) == 0,
                  "the tree needs a power-of-two block of at least two warps");
    if (THREADS >= 1024) { if (tid < 512) s[tid] += s[tid + 512]; __syncthreads(); }
    if (THREADS >= 512) { if (tid < 256) s[tid] += s[tid + 256]; __syncthreads(); }
    if (THREADS >= 256) { if (tid < 128) s[tid] += s[tid + 128]; __syncthreads(); }
    if (THREADS >= 128) { if (tid < 64) s[tid] += s[tid + 64]; __syncthreads(); }
    if (tid < 32) warp_reduce_shared(s, tid);
}

__global__ void reduce_v5(float *out, const float *x, size_t n)
{
    __shared__ float s[BLOCK];
    unsigned tid = threadIdx.x;
    size_t i = blockIdx.x * (size_t)(2 * BLOCK) + tid;
    float v = i < n ? x[i] : 0.0f;
    if (i + BLOCK < n) v += x[i + BLOCK];
    s[tid] = v;
    __syncthreads();
    block_reduce_shared<BLOCK>(s, tid);
    if (tid == 0) out[blockIdx.x] = s[0];
}
#line 471 "chapters/01-reduce.md"
// v6: a fixed grid; each thread first sums many elements in a grid-stride loop.
__global__ void reduce_v6(float *out, const float *x, size_t n)
{
    __shared__ float s[BLOCK];
    unsigned tid = threadIdx.x;
    size_t stride = (size_t)gridDim.x * 2 * BLOCK;
    float v = 0.0f;
    for (size_t i = blockIdx.x * (size_t)(2 * BLOCK) + tid; i < n; i += stride) {
        v += x[i];
        if (i + BLOCK < n) v += x[i + BLOCK];
    }
    s[tid] = v;
    __syncthreads();
    block_reduce_shared<BLOCK>(s, tid);
    if (tid == 0) out[blockIdx.x] = s[0];
}
#line 514 "chapters/01-reduce.md"
__device__ float warp_sum(float v)
{
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xFFFFFFFFu, v, offset);
    return v;
}

// The sum of v over the block, valid in thread 0: shuffles within each warp, one value
// per warp through shared memory, shuffles again in the first warp.
__device__ float block_sum(float v)
{
    static_assert(BLOCK % 32 == 0 && BLOCK / 32 <= 32, "one warp must hold all warp sums");
    __shared__ float warp_sums[BLOCK / 32];
    unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    v = warp_sum(v);
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    v = threadIdx.x < BLOCK / 32 ? warp_sums[lane] : 0.0f;
    if (warp == 0) v = warp_sum(v);
    return v;
}

// v7: v6's grid-stride loop, then shuffles instead of the shared-memory tree.
__global__ void reduce_v7(float *out, const float *x, size_t n)
{
    size_t stride = (size_t)gridDim.x * BLOCK;
    float v = 0.0f;
    for (size_t i = blockIdx.x * (size_t)BLOCK + threadIdx.x; i < n; i += stride) v += x[i];
    v = block_sum(v);
    if (threadIdx.x == 0) out[blockIdx.x] = v;
}
#line 569 "chapters/01-reduce.md"
// Each thread's share of x, read as float4: 16 bytes a load, UNROLL loads in flight.
// The n % 4 last elements are added one by one.
template <int UNROLL>
__device__ float thread_sum_f4(const float *x, size_t n)
{
    const float4 *x4 = reinterpret_cast<const float4 *>(x);
    size_t n4 = n / 4, stride = (size_t)gridDim.x * BLOCK;
    size_t i = blockIdx.x * (size_t)BLOCK + threadIdx.x;
    float acc[UNROLL] = {};
    for (; i + (UNROLL - 1) * stride < n4; i += UNROLL * stride) {
        float4 v[UNROLL];
#pragma unroll
        for (int u = 0; u < UNROLL; u++) v[u] = x4[i + u * stride];
#pragma unroll
        for (int u = 0; u < UNROLL; u++) acc[u] += (v[u].x + v[u].y) + (v[u].z + v[u].w);
    }
    for (; i < n4; i += stride) {
        float4 v = x4[i];
        acc[0] += (v.x + v.y) + (v.z + v.w);
    }
    float sum = 0.0f;
#pragma unroll
    for (int u = 0; u < UNROLL; u++) sum += acc[u];
    for (size_t k = 4 * n4 + blockIdx.x * (size_t)BLOCK + threadIdx.x; k < n; k += stride) sum += x[k];
    return sum;
}

// v8: v7 with 16-byte loads, four in flight per thread.
__global__ void reduce_v8(float *out, const float *x, size_t n)
{
    float v = block_sum(thread_sum_f4<4>(x, n));
    if (threadIdx.x == 0) out[blockIdx.x] = v;
}
#line 635 "chapters/01-reduce.md"
// v9: one launch. Each block writes its sum; the last block to finish (it learns so
// from an atomic counter) adds the block sums and resets the counter for next time.
__global__ void reduce_v9(float *out, float *block_sums, unsigned *blocks_done, const float *x,
                          size_t n)
{
    __shared__ bool last;
    float v = block_sum(thread_sum_f4<4>(x, n));
    if (threadIdx.x == 0) {
        block_sums[blockIdx.x] = v;
        __threadfence();  // the sum is visible to every block before the count says so
        last = atomicAdd(blocks_done, 1u) == gridDim.x - 1;
    }
    __syncthreads();
    if (!last) return;
    __threadfence();  // ... and the last block sees every sum after reading the count
    float s = 0.0f;
    for (unsigned b = threadIdx.x; b < gridDim.x; b += BLOCK) s += __ldcg(&block_sums[b]);
    s = block_sum(s);
    if (threadIdx.x == 0) {
        *out = s;
        *blocks_done = 0;
    }
}
#line 697 "chapters/01-reduce.md"
// v10: v9's loop; the block sums go into a running total with atomicAdd, in double.
// The last block to count itself in takes the total and leaves zero behind.
__device__ void add_to_total(float *out, double *total, unsigned *blocks_done, float block_sum)
{
    if (threadIdx.x != 0) return;
    atomicAdd(total, (double)block_sum);
    __threadfence();  // the addition is done before the count says so
    if (atomicAdd(blocks_done, 1u) == gridDim.x - 1) {
        __threadfence();
        unsigned long long bits = atomicExch(reinterpret_cast<unsigned long long *>(total), 0ull);
        *out = (float)__longlong_as_double((long long)bits);
        *blocks_done = 0;
    }
}

__global__ void reduce_v10(float *out, double *total, unsigned *blocks_done, const float *x, size_t n)
{
    add_to_total(out, total, blocks_done, block_sum(thread_sum_f4<4>(x, n)));
}
#line 765 "chapters/01-reduce.md"
// v11's share of x per thread: UNROLL float4 loads in flight in the loop, and the
// remainder (fewer than UNROLL loads) as one more batch of guarded loads.
template <int UNROLL>
__device__ float thread_sum_f4_batched(const float *x, size_t n)
{
    const float4 *x4 = reinterpret_cast<const float4 *>(x);
    size_t n4 = n / 4, stride = (size_t)gridDim.x * BLOCK;
    size_t i = blockIdx.x * (size_t)BLOCK + threadIdx.x;
    float acc[UNROLL] = {};
    for (; i + (UNROLL - 1) * stride < n4; i += UNROLL * stride) {
        float4 v[UNROLL];
#pragma unroll
        for (int u = 0; u < UNROLL; u++) v[u] = x4[i + u * stride];
#pragma unroll
        for (int u = 0; u < UNROLL; u++) acc[u] += (v[u].x + v[u].y) + (v[u].z + v[u].w);
    }
    if (i < n4) {
        float4 v[UNROLL];
#pragma unroll
        for (int u = 0; u < UNROLL; u++)
            v[u] = i + u * stride < n4 ? x4[i + u * stride] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
        for (int u = 0; u < UNROLL; u++) acc[u] += (v[u].x + v[u].y) + (v[u].z + v[u].w);
    }
    float sum = 0.0f;
#pragma unroll
    for (int u = 0; u < UNROLL; u++) sum += acc[u];
    for (size_t k = 4 * n4 + blockIdx.x * (size_t)BLOCK + threadIdx.x; k < n; k += stride) sum += x[k];
    return sum;
}

// v11: eight loads in flight per thread, four blocks per SM, v10's finish.
__global__ void reduce_v11(float *out, double *total, unsigned *blocks_done, const float *x, size_t n)
{
    add_to_total(out, total, blocks_done, block_sum(thread_sum_f4_batched<8>(x, n)));
}
#line 24 "chapters/01-reduce.md"
// <<reduce-launchers>>
#line 164 "chapters/01-reduce.md"
typedef void (*PassKernel)(float *out, const float *x, size_t n);

// Runs a kernel that turns n values into one sum per block, again and again on the
// block sums, until one value is left in p->out. Each block covers per_block values;
// grid_cap > 0 fixes the grid (the kernel then loops over its share).
static void reduce_in_passes(Problem *p, PassKernel kernel, size_t per_block, int grid_cap)
{
    const float *in = p->x;
    size_t n = p->n;
    int which = 0;
    do {
        size_t blocks = (n + per_block - 1) / per_block;
        if (grid_cap > 0 && blocks > (size_t)grid_cap) blocks = grid_cap;
        float *dst = blocks == 1 ? p->out : p->partial[which];
        kernel<<<(unsigned)blocks, BLOCK>>>(dst, in, n);
        CHECK_LAUNCH();
        in = dst;
        n = blocks;
        which ^= 1;
    } while (n > 1);
}

static int fixed_grid(void)
{
    static int grid = 0;  // resident blocks of the grid-stride kernels
    if (!grid) grid = resident_blocks((const void *)reduce_v8, BLOCK);
    return grid;
}
#line 226 "chapters/01-reduce.md"
static void launch_v0(Problem *p) { reduce_in_passes(p, reduce_v0, BLOCK, 0); }
#line 264 "chapters/01-reduce.md"
static void launch_v1(Problem *p) { reduce_in_passes(p, reduce_v1, BLOCK, 0); }
#line 308 "chapters/01-reduce.md"
static void launch_v2(Problem *p) { reduce_in_passes(p, reduce_v2, BLOCK, 0); }
#line 346 "chapters/01-reduce.md"
static void launch_v3(Problem *p) { reduce_in_passes(p, reduce_v3, 2 * BLOCK, 0); }
#line 404 "chapters/01-reduce.md"
static void launch_v4(Problem *p) { reduce_in_passes(p, reduce_v4, 2 * BLOCK, 0); }
#line 451 "chapters/01-reduce.md"
static void launch_v5(Problem *p) { reduce_in_passes(p, reduce_v5, 2 * BLOCK, 0); }
#line 490 "chapters/01-reduce.md"
static void launch_v6(Problem *p) { reduce_in_passes(p, reduce_v6, 2 * BLOCK, fixed_grid()); }
#line 547 "chapters/01-reduce.md"
static void launch_v7(Problem *p) { reduce_in_passes(p, reduce_v7, BLOCK, fixed_grid()); }
#line 605 "chapters/01-reduce.md"
static void launch_v8(Problem *p) { reduce_in_passes(p, reduce_v8, 4 * BLOCK, fixed_grid()); }
#line 661 "chapters/01-reduce.md"
static void launch_v9(Problem *p)
{
    size_t blocks = (p->n + 4 * BLOCK - 1) / (4 * BLOCK);
    if (blocks > (size_t)fixed_grid()) blocks = fixed_grid();
    if (blocks == 0) blocks = 1;
    reduce_v9<<<(unsigned)blocks, BLOCK>>>(p->out, p->partial[0], p->blocks_done, p->x, p->n);
    CHECK_LAUNCH();
}
#line 727 "chapters/01-reduce.md"
static void launch_v10(Problem *p)
{
    size_t blocks = (p->n + 4 * BLOCK - 1) / (4 * BLOCK);
    if (blocks > (size_t)fixed_grid()) blocks = fixed_grid();
    if (blocks == 0) blocks = 1;
    reduce_v10<<<(unsigned)blocks, BLOCK>>>(p->out, p->total, p->blocks_done, p->x, p->n);
    CHECK_LAUNCH();
}
#line 810 "chapters/01-reduce.md"
static void launch_v11(Problem *p)
{
    static int grid = 0;  // four blocks per SM
    if (!grid) {
        int dev = 0, sms = 0;
        CUDA_CHECK(cudaGetDevice(&dev));
        CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
        grid = 4 * sms;
    }
    size_t blocks = (p->n + 8 * BLOCK - 1) / (8 * BLOCK);
    if (blocks > (size_t)grid) blocks = grid;
    if (blocks == 0) blocks = 1;
    reduce_v11<<<(unsigned)blocks, BLOCK>>>(p->out, p->total, p->blocks_done, p->x, p->n);
    CHECK_LAUNCH();
}
#line 855 "chapters/01-reduce.md"
static void launch_cub(Problem *p)
{
    CUDA_CHECK(cub::DeviceReduce::Sum(p->cub_temp, p->cub_temp_bytes, p->x, p->out, (int64_t)p->n));
}
#line 25 "chapters/01-reduce.md"

static const Version VERSIONS[] = {
    // <<reduce-versions>>
#line 230 "chapters/01-reduce.md"
    {"v0-interleaved-divergent", "ours", "f32", "interleaved addressing, divergent branch (Harris 1)", launch_v0, NULL},
#line 268 "chapters/01-reduce.md"
    {"v1-interleaved-strided", "ours", "f32", "interleaved addressing, strided index: bank conflicts (Harris 2)", launch_v1, NULL},
#line 312 "chapters/01-reduce.md"
    {"v2-sequential", "ours", "f32", "sequential addressing, no conflicts (Harris 3)", launch_v2, NULL},
#line 350 "chapters/01-reduce.md"
    {"v3-add-on-load", "ours", "f32", "first add during the load, half the blocks (Harris 4)", launch_v3, NULL},
#line 408 "chapters/01-reduce.md"
    {"v4-unroll-last-warp", "ours", "f32", "the last warp without block barriers (Harris 5)", launch_v4, NULL},
#line 455 "chapters/01-reduce.md"
    {"v5-complete-unroll", "ours", "f32", "the tree unrolled for a compile-time block (Harris 6)", launch_v5, NULL},
#line 494 "chapters/01-reduce.md"
    {"v6-many-per-thread", "ours", "f32", "fixed grid, many elements per thread (Harris 7)", launch_v6, NULL},
#line 551 "chapters/01-reduce.md"
    {"v7-warp-shuffle", "ours", "f32", "warp shuffles instead of the shared-memory tree", launch_v7, NULL},
#line 609 "chapters/01-reduce.md"
    {"v8-vector-float4", "ours", "f32", "16-byte loads, four in flight per thread", launch_v8, NULL},
#line 672 "chapters/01-reduce.md"
    {"v9-one-pass", "ours", "f32", "one launch: the last block adds the block sums", launch_v9, NULL},
#line 738 "chapters/01-reduce.md"
    {"v10-atomic-total", "ours", "f32", "v9 with the block sums added by double atomics", launch_v10, NULL},
#line 828 "chapters/01-reduce.md"
    {"v11-eight-in-flight", "ours", "f32", "8 loads in flight, batched tail, 4 blocks per SM, v10's finish", launch_v11, NULL},
#line 862 "chapters/01-reduce.md"
    {"cub", "peer", "f32", "cub::DeviceReduce::Sum", launch_cub, NULL},
#line 28 "chapters/01-reduce.md"
};
// <<create-and-check-a-reduce-problem>>
#line 71 "chapters/01-reduce.md"
static Problem *reduce_create(const char *dtype, const char *size, uint64_t seed)
{
    (void)dtype;
    size_t n = count_of(size);
    Problem *p = (Problem *)host_alloc(sizeof(Problem), "problem");
    memset(p, 0, sizeof *p);
    p->n = n;
    snprintf(p->size, sizeof p->size, "%zu", n);
    float *h = (float *)host_alloc(n * sizeof(float), "input");
    fill_uniform_f32(h, n, -0.5f, 1.5f, seed);
    reference_sum_f32(&p->ref, &p->abs_sum, h, n);
    p->x = (float *)device_alloc(n * sizeof(float), "input");
    CUDA_CHECK(cudaMemcpy(p->x, h, n * sizeof(float), cudaMemcpyHostToDevice));
    free(h);
    p->out = (float *)device_alloc(sizeof(float), "sum");
    p->max_partials = (n + BLOCK - 1) / BLOCK;
    if (p->max_partials < (size_t)fixed_grid()) p->max_partials = fixed_grid();
    for (int k = 0; k < 2; k++) p->partial[k] = (float *)device_alloc(p->max_partials * sizeof(float), "block sums");
    p->blocks_done = (unsigned *)device_alloc(sizeof(unsigned), "block counter");
    CUDA_CHECK(cudaMemset(p->blocks_done, 0, sizeof(unsigned)));
    p->total = (double *)device_alloc(sizeof(double), "running total");
    CUDA_CHECK(cudaMemset(p->total, 0, sizeof(double)));
    CUDA_CHECK(cub::DeviceReduce::Sum(NULL, p->cub_temp_bytes, p->x, p->out, (int64_t)n));
    p->cub_temp = device_alloc(p->cub_temp_bytes, "CUB temporary storage");
    return p;
}

static void reduce_destroy(Problem *p)
{
    CUDA_CHECK(cudaFree(p->x));
    CUDA_CHECK(cudaFree(p->out));
    for (int k = 0; k < 2; k++) CUDA_CHECK(cudaFree(p->partial[k]));
    CUDA_CHECK(cudaFree(p->blocks_done));
    CUDA_CHECK(cudaFree(p->total));
    CUDA_CHECK(cudaFree(p->cub_temp));
    free(p);
}

static void reduce_poison(Problem *p)
{
    poison(p->out, sizeof(float));
    for (int k = 0; k < 2; k++) poison(p->partial[k], p->max_partials * sizeof(float));
}

// Float summation's rounding error grows with the sum of |x|, not with |sum|: the
// tolerance is a small multiple of float's epsilon times that scale (see the chapter).
static CheckResult reduce_check(Problem *p, const char *version)
{
    float got;
    CUDA_CHECK(cudaMemcpy(&got, p->out, sizeof(float), cudaMemcpyDeviceToHost));
    Tolerance tol = {F32, REDUCE_TOLERANCE * p->abs_sum, 0.0};
    return check_close_f32(version, p->size, &got, &p->ref, 1, tol);
}

static double reduce_bytes(const Problem *p) { return (double)p->n * sizeof(float); }
// The additions, one per element (n - 1 exactly), for the roofline.
static double reduce_flops(const Problem *p) { return (double)p->n; }

// --self-test: the reference and the tolerance on sums known by hand.
static int reduce_self_test(void)
{
    int passed = 0, failed = 0;
    float ramp[100];
    for (int i = 0; i < 100; i++) ramp[i] = (float)(i + 1);
    double sum, abs_sum;
    reference_sum_f32(&sum, &abs_sum, ramp, 100);
    SELF_TEST(sum == 5050.0 && abs_sum == 5050.0);
    // 1e8 + 1 is not a float, but it is a double: the reference keeps the 1
    float cancel[5] = {0.5f, -0.25f, 1e8f, 1.0f, -1e8f};
    reference_sum_f32(&sum, &abs_sum, cancel, 5);
    SELF_TEST(sum == 1.25 && abs_sum == 200000001.75);
    // the tolerance catches one lost element of average size at n = 1000003
    size_t n = 1000003;
    float *x = (float *)host_alloc(n * sizeof(float), "input");
    fill_uniform_f32(x, n, -0.5f, 1.5f, seed_for(1, "1000003"));
    reference_sum_f32(&sum, &abs_sum, x, n);
    free(x);
    double tol = REDUCE_TOLERANCE * abs_sum;
    SELF_TEST(tol > 0.1 && tol < 0.5);
    printf("reduce: %d passed, %d failed\n", passed, failed);
    return failed;
}
#line 30 "chapters/01-reduce.md"
// <<measure-the-sequential-float-loop>>
#line 958 "chapters/01-reduce.md"
// Not a GPU version: the error of the plain sequential float loop on the CPU, for the
// chapter's discussion of accumulation error. It reuses the inputs of each bench size.
static void reduce_cpu_float_error(BenchRun *run)
{
    for (int s = 0; s < run->chapter->n_bench_sizes; s++) {
        const char *size = run->chapter->bench_sizes[s];
        size_t n = count_of(size);
        float *h = (float *)host_alloc(n * sizeof(float), "input");
        fill_uniform_f32(h, n, -0.5f, 1.5f, seed_for(1, size));
        float acc = 0.0f;
        double ref = 0.0;
        for (size_t i = 0; i < n; i++) {
            acc += h[i];
            ref += h[i];
        }
        free(h);
        Row r;
        memset(&r, 0, sizeof r);
        r.version = "cpu-float-sequential";
        r.kind = "cpu";
        r.dtype = "f32";
        snprintf(r.size, sizeof r.size, "%zu", n);
        r.time_us = r.gbps = r.tflops = r.pct_sol = NAN;
        r.max_rel_err = fabs(acc - ref) / fabs(ref);
        r.pass = 1;
        bench_emit(run, &r, NAN);
    }
}
#line 31 "chapters/01-reduce.md"
// <<the-reduce-chapter>>
#line 1007 "chapters/01-reduce.md"
static const char *const DTYPES[] = {"f32"};
static const char *const BENCH_SIZES[] = {"2^20", "2^22", "2^25", "2^28"};
static const char *const CHECK_SIZES[] = {"1", "31", "1000003", "2^20", "2^22", "2^25", "2^25+7", "2^28"};

static const Chapter REDUCE = {
    "reduce", "float32 sum of n elements",
    VERSIONS, sizeof VERSIONS / sizeof VERSIONS[0],
    DTYPES, 1, BENCH_SIZES, 4, CHECK_SIZES, 8,
    "read", "cub", bad_count,
    reduce_create, reduce_destroy, reduce_poison, reduce_check, reduce_bytes, reduce_flops,
    reduce_cpu_float_error, reduce_self_test, NULL,
};

int main(int argc, char **argv) { return harness_main(&REDUCE, argc, argv); }
