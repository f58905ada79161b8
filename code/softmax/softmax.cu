#line 28 "chapters/06-softmax.md"
// softmax.cu: softmax over the last dimension, forward and backward, by row length.
#include "../harness/harness.cuh"
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_pipeline.h>
#include <cooperative_groups.h>
#ifdef HAVE_CUDNN
#include <cudnn.h>
#endif
// <<element-types>>
#line 46 "chapters/02-elementwise.md"
// Every kernel computes in float and stores in the element type: loads convert up,
// stores round down once.
__host__ __device__ inline float to_float(float x) { return x; }
__host__ __device__ inline float to_float(__half x) { return __half2float(x); }
__host__ __device__ inline float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T> __host__ __device__ inline T from_float(float x);
template <> __host__ __device__ inline float from_float<float>(float x) { return x; }
template <> __host__ __device__ inline __half from_float<__half>(float x) { return __float2half(x); }
template <> __host__ __device__ inline __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16(x); }
#line 38 "chapters/06-softmax.md"
// <<the-softmax-problem>>
#line 58 "chapters/06-softmax.md"
typedef enum { FWD, BWD } Op;

struct Problem {
    DType dtype;
    char size[64];
    size_t rows, cols, n;
    void *x, *y, *yin, *dy, *dx;  // device: forward x -> y; backward (yin, dy) -> dx
    float *hx, *hy, *hdy;         // host copies of x, yin and dy as the device sees them
    double *ref;                  // reference of ref_op
    double *scale;                // backward: per element, |y| (|dy| + sum |dy y|) for the bound
    int ref_op;
    Op op;                        // set by each launcher
    int chain;                    // longest chain of float additions of the version: set by launchers
    int roundings;                // roundings to the element type before the last: 0 but for a library
};
#line 39 "chapters/06-softmax.md"
// <<softmax-reductions>>
#line 120 "chapters/06-softmax.md"
__device__ inline float warp_max(float v, int width = 32)
{
    for (int o = width / 2; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o, width));
    return v;
}
__device__ inline float warp_sum(float v, int width = 32)
{
    for (int o = width / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o, width);
    return v;
}
// Block-wide max / sum, returned to every thread (blockDim a multiple of 32, at most 1024).
template <bool MAX>
__device__ inline float block_all(float v)
{
    __shared__ float part[32];
    __shared__ float total;
    v = MAX ? warp_max(v) : warp_sum(v);
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) part[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < (int)(blockDim.x / 32) ? part[lane] : (MAX ? -INFINITY : 0.0f);
        v = MAX ? warp_max(v) : warp_sum(v);
        if (lane == 0) total = v;
    }
    __syncthreads();
    float r = total;
    __syncthreads();  // total may be reused by the next call
    return r;
}
__device__ inline float block_max(float v) { return block_all<true>(v); }
__device__ inline float block_sum(float v) { return block_all<false>(v); }
#line 40 "chapters/06-softmax.md"
// <<softmax-kernels>>
#line 159 "chapters/06-softmax.md"
// f0: one thread per row, three passes over the row in global memory.
template <typename T>
__global__ void softmax_f0(T *y, const T *x, size_t rows, size_t cols)
{
    size_t r = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (r >= rows) return;
    const T *xr = x + r * cols;
    T *yr = y + r * cols;
    float m = -INFINITY, s = 0.0f;
    for (size_t c = 0; c < cols; c++) m = fmaxf(m, to_float(xr[c]));
    for (size_t c = 0; c < cols; c++) s += __expf(to_float(xr[c]) - m);
    float inv = 1.0f / s;
    for (size_t c = 0; c < cols; c++) yr[c] = from_float<T>(__expf(to_float(xr[c]) - m) * inv);
}
#line 188 "chapters/06-softmax.md"
// f1: one block per row; each pass strides over the row, block reductions in shared memory.
template <typename T>
__global__ void softmax_f1(T *y, const T *x, size_t cols)
{
    const T *xr = x + blockIdx.x * cols;
    T *yr = y + blockIdx.x * cols;
    float m = -INFINITY, s = 0.0f;
    for (size_t c = threadIdx.x; c < cols; c += blockDim.x) m = fmaxf(m, to_float(xr[c]));
    m = block_max(m);
    for (size_t c = threadIdx.x; c < cols; c += blockDim.x) s += __expf(to_float(xr[c]) - m);
    float inv = 1.0f / block_sum(s);
    for (size_t c = threadIdx.x; c < cols; c += blockDim.x) yr[c] = from_float<T>(__expf(to_float(xr[c]) - m) * inv);
}
#line 218 "chapters/06-softmax.md"
// V elements of T in 16 bytes.
template <typename T> struct Vec { static const int V = 16 / sizeof(T); };

// Loads elements [c, c + V) of a row into f (16 bytes at once when `packed`; zero-padded
// and one at a time otherwise, with `pad` past the end of the row).
template <typename T>
__device__ inline void load_vec(float *f, const T *row, size_t c, size_t cols, bool packed, float pad)
{
    const int V = Vec<T>::V;
    if (packed && c + V <= cols) {
        int4 raw = *reinterpret_cast<const int4 *>(row + c);
        const T *e = reinterpret_cast<const T *>(&raw);
#pragma unroll
        for (int j = 0; j < V; j++) f[j] = to_float(e[j]);
    } else {
#pragma unroll
        for (int j = 0; j < V; j++) f[j] = c + j < cols ? to_float(row[c + j]) : pad;
    }
}

template <typename T>
__device__ inline void store_vec(T *row, const float *f, size_t c, size_t cols, bool packed)
{
    const int V = Vec<T>::V;
    if (packed && c + V <= cols) {
        int4 raw;
        T *e = reinterpret_cast<T *>(&raw);
#pragma unroll
        for (int j = 0; j < V; j++) e[j] = from_float<T>(f[j]);
        *reinterpret_cast<int4 *>(row + c) = raw;
    } else {
#pragma unroll
        for (int j = 0; j < V; j++)
            if (c + j < cols) row[c + j] = from_float<T>(f[j]);
    }
}
#line 266 "chapters/06-softmax.md"
// f2: G lanes per row (G divides 32), each lane holding P packs of the row in registers:
// rows of up to G * P * V elements. Lane l holds packs l, l + G, l + 2G, ...
template <typename T, int G, int P>
__global__ void softmax_f2(T *y, const T *x, size_t rows, size_t cols)
{
    const int V = Vec<T>::V;
    size_t r = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / G;
    int lane = threadIdx.x % G;
    bool packed = cols % V == 0;  // then every row starts on a 16-byte boundary
    bool live = r < rows;
    const T *xr = x + (live ? r : 0) * cols;
    float v[P][V];
    float m = -INFINITY;
#pragma unroll
    for (int p = 0; p < P; p++) {
        size_t c = (size_t)(p * G + lane) * V;
        load_vec(v[p], xr, c, live ? cols : 0, packed, -INFINITY);
#pragma unroll
        for (int j = 0; j < V; j++) m = fmaxf(m, v[p][j]);
    }
    m = warp_max(m, G);
    float s = 0.0f;
#pragma unroll
    for (int p = 0; p < P; p++)
#pragma unroll
        for (int j = 0; j < V; j++) {
            v[p][j] = __expf(v[p][j] - m);
            s += v[p][j];
        }
    float inv = 1.0f / warp_sum(s, G);
    if (!live) return;
    T *yr = y + r * cols;
#pragma unroll
    for (int p = 0; p < P; p++) {
#pragma unroll
        for (int j = 0; j < V; j++) v[p][j] *= inv;
        store_vec(yr, v[p], (size_t)(p * G + lane) * V, cols, packed);
    }
}
#line 350 "chapters/06-softmax.md"
// Copies a row of T into shared memory: 16-byte asynchronous copies (cp.async) when the
// row is packed, so that every load is in flight at once; element by element otherwise.
// row_to_shared_start only issues the copies, as one group (__pipeline_wait_prior waits).
template <typename T>
__device__ inline void row_to_shared_start(T *cache, const T *row, size_t cols, bool packed)
{
    const int V = Vec<T>::V;
    if (packed) {
        for (size_t c = threadIdx.x * (size_t)V; c < cols; c += blockDim.x * (size_t)V)
            __pipeline_memcpy_async(cache + c, row + c, 16);
        __pipeline_commit();
    } else {
        for (size_t c = threadIdx.x; c < cols; c += blockDim.x) cache[c] = row[c];
    }
}

template <typename T>
__device__ inline void row_to_shared(T *cache, const T *row, size_t cols, bool packed)
{
    row_to_shared_start(cache, row, cols, packed);
    __pipeline_wait_prior(0);
}

// The three passes over a row cached in shared memory: its maximum, its sum, and y.
template <typename T>
__device__ inline void softmax_cached_row(T *yr, const T *cache, size_t cols, bool packed)
{
    const int V = Vec<T>::V;
    float m = -INFINITY;
    for (size_t c = threadIdx.x * (size_t)V; c < cols; c += blockDim.x * (size_t)V) {
        float f[V];
        load_vec(f, cache, c, cols, packed, -INFINITY);
#pragma unroll
        for (int j = 0; j < V; j++) m = fmaxf(m, f[j]);
    }
    m = block_max(m);
    float s = 0.0f;
    for (size_t c = threadIdx.x * (size_t)V; c < cols; c += blockDim.x * (size_t)V) {
        float f[V];
        load_vec(f, cache, c, cols, packed, -INFINITY);
#pragma unroll
        for (int j = 0; j < V; j++) s += __expf(f[j] - m);
    }
    float inv = 1.0f / block_sum(s);
    for (size_t c = threadIdx.x * (size_t)V; c < cols; c += blockDim.x * (size_t)V) {
        float f[V];
        load_vec(f, cache, c, cols, packed, 0.0f);
#pragma unroll
        for (int j = 0; j < V; j++) f[j] = __expf(f[j] - m) * inv;
        store_vec(yr, f, c, cols, packed);
    }
}

template <typename T>
__global__ void softmax_f3(T *y, const T *x, size_t cols)
{
    extern __shared__ int4 cache_raw[];
    T *cache = reinterpret_cast<T *>(cache_raw);
    bool packed = cols % Vec<T>::V == 0;
    row_to_shared(cache, x + blockIdx.x * cols, cols, packed);
    __syncthreads();
    softmax_cached_row(y + blockIdx.x * cols, cache, cols, packed);
}
#line 448 "chapters/06-softmax.md"
// f4: one block per row, online: one pass keeps a running max and a sum rescaled to it,
// the second pass re-reads the row and writes. Two reads, one write, any length.
__device__ inline void online_add(float &m, float &s, float v)
{
    if (v > m) {
        s = s * __expf(m - v) + 1.0f;
        m = v;
    } else {
        s += __expf(v - m);
    }
}

// (m, s) of the block: every thread's pair rescaled to the block's max, then summed.
__device__ inline void block_online(float &m, float &s)
{
    float bm = block_max(m);
    s = block_sum(m == -INFINITY ? 0.0f : s * __expf(m - bm));
    m = bm;
}

template <typename T>
__global__ void softmax_f4(T *y, const T *x, size_t cols)
{
    const int V = Vec<T>::V;
    const T *xr = x + blockIdx.x * cols;
    T *yr = y + blockIdx.x * cols;
    bool packed = cols % V == 0;
    float m = -INFINITY, s = 0.0f;
    for (size_t c = threadIdx.x * (size_t)V; c < cols; c += blockDim.x * (size_t)V) {
        float f[V];
        load_vec(f, xr, c, cols, packed, -INFINITY);
#pragma unroll
        for (int j = 0; j < V; j++)
            if (c + j < cols) online_add(m, s, f[j]);
    }
    block_online(m, s);
    float inv = 1.0f / s;
    for (size_t c = threadIdx.x * (size_t)V; c < cols; c += blockDim.x * (size_t)V) {
        float f[V];
        load_vec(f, xr, c, cols, packed, 0.0f);
#pragma unroll
        for (int j = 0; j < V; j++) f[j] = __expf(f[j] - m) * inv;
        store_vec(yr, f, c, cols, packed);
    }
}
#line 513 "chapters/06-softmax.md"
// f5: one block per row, P packs per thread in registers (FasterTransformer's shape).
template <typename T, int P>
__global__ void __launch_bounds__(512) softmax_f5(T *y, const T *x, size_t cols)
{
    const int V = Vec<T>::V;
    const T *xr = x + blockIdx.x * cols;
    T *yr = y + blockIdx.x * cols;
    bool packed = cols % V == 0;
    float v[P][V];
    float m = -INFINITY;
#pragma unroll
    for (int p = 0; p < P; p++) {
        load_vec(v[p], xr, (p * (size_t)blockDim.x + threadIdx.x) * V, cols, packed, -INFINITY);
#pragma unroll
        for (int j = 0; j < V; j++) m = fmaxf(m, v[p][j]);
    }
    m = block_max(m);
    float s = 0.0f;
#pragma unroll
    for (int p = 0; p < P; p++)
#pragma unroll
        for (int j = 0; j < V; j++) {
            v[p][j] = __expf(v[p][j] - m);
            s += v[p][j];
        }
    float inv = 1.0f / block_sum(s);
#pragma unroll
    for (int p = 0; p < P; p++) {
#pragma unroll
        for (int j = 0; j < V; j++) v[p][j] *= inv;
        store_vec(yr, v[p], (p * (size_t)blockDim.x + threadIdx.x) * V, cols, packed);
    }
}
#line 585 "chapters/06-softmax.md"
// f6: a cluster of C blocks per row (Hopper): each block caches 1/C of the row in its
// shared memory; the blocks exchange their maxima and sums through distributed shared
// memory, so a long row is spread over C SMs instead of filling one. Launched in
// clusters of C blocks (launch_cluster); compiled for sm_90 and newer only.
template <typename T, int C>
__global__ void softmax_f6(T *y, const T *x, size_t cols)
{
#if HOPPER_CODE
    namespace cg = cooperative_groups;
    cg::cluster_group cluster = cg::this_cluster();
    extern __shared__ int4 cache_raw[];
    __shared__ float stat[2];
    T *cache = reinterpret_cast<T *>(cache_raw);
    const int V = Vec<T>::V;
    size_t part = cols / C, base = (blockIdx.x / C) * cols + cluster.block_rank() * part;
    row_to_shared(cache, x + base, part, true);
    __syncthreads();
    float m = -INFINITY;
    for (size_t c = threadIdx.x * (size_t)V; c < part; c += blockDim.x * (size_t)V) {
        float f[V];
        load_vec(f, cache, c, part, true, -INFINITY);
#pragma unroll
        for (int j = 0; j < V; j++) m = fmaxf(m, f[j]);
    }
    m = block_max(m);
    if (threadIdx.x == 0) stat[0] = m;
    cluster.sync();
    for (int r = 0; r < C; r++) m = fmaxf(m, *cluster.map_shared_rank(&stat[0], r));
    float s = 0.0f;
    for (size_t c = threadIdx.x * (size_t)V; c < part; c += blockDim.x * (size_t)V) {
        float f[V];
        load_vec(f, cache, c, part, true, -INFINITY);
#pragma unroll
        for (int j = 0; j < V; j++) s += __expf(f[j] - m);
    }
    s = block_sum(s);
    if (threadIdx.x == 0) stat[1] = s;
    cluster.sync();
    s = 0.0f;
    for (int r = 0; r < C; r++) s += *cluster.map_shared_rank(&stat[1], r);
    cluster.sync();  // no block leaves while another may still read its statistics
    float inv = 1.0f / s;
    for (size_t c = threadIdx.x * (size_t)V; c < part; c += blockDim.x * (size_t)V) {
        float f[V];
        load_vec(f, cache, c, part, true, 0.0f);
#pragma unroll
        for (int j = 0; j < V; j++) f[j] = __expf(f[j] - m) * inv;
        store_vec(y + base, f, c, part, true);
    }
#endif
}
#line 666 "chapters/06-softmax.md"
// f8: a persistent block per SM share, two row buffers in shared memory: the copy of the
// block's next row is in flight while the current one is computed. Each buffer holds
// `stride` elements (the row, rounded up to 16 bytes).
template <typename T>
__global__ void softmax_f8(T *y, const T *x, size_t rows, size_t cols, size_t stride)
{
    extern __shared__ int4 cache_raw[];
    T *buffer = reinterpret_cast<T *>(cache_raw);
    bool packed = cols % Vec<T>::V == 0;
    size_t r = blockIdx.x;
    if (r < rows) row_to_shared_start(buffer, x + r * cols, cols, packed);
    for (int k = 0; r < rows; r += gridDim.x, k ^= 1) {
        size_t next = r + gridDim.x;
        if (next < rows) {
            row_to_shared_start(buffer + (k ^ 1) * stride, x + next * cols, cols, packed);
            __pipeline_wait_prior(1);  // the current row has landed; the next may be in flight
        } else {
            __pipeline_wait_prior(0);
        }
        __syncthreads();
        softmax_cached_row(y + r * cols, buffer + k * stride, cols, packed);
        __syncthreads();  // nobody reads buffer k any more: the next iteration refills it
    }
}
#line 738 "chapters/06-softmax.md"
// b4: the same for the backward, y and dy in registers.
template <typename T, int P>
__global__ void __launch_bounds__(512) softmax_b4(T *dx, const T *y, const T *dy, size_t cols)
{
    const int V = Vec<T>::V;
    size_t base = blockIdx.x * cols;
    bool packed = cols % V == 0;
    float yv[P][V], gv[P][V];
    float d = 0.0f;
#pragma unroll
    for (int p = 0; p < P; p++) {
        size_t c = (p * (size_t)blockDim.x + threadIdx.x) * V;
        load_vec(yv[p], y + base, c, cols, packed, 0.0f);
        load_vec(gv[p], dy + base, c, cols, packed, 0.0f);
#pragma unroll
        for (int j = 0; j < V; j++) d += yv[p][j] * gv[p][j];
    }
    d = block_sum(d);
#pragma unroll
    for (int p = 0; p < P; p++) {
#pragma unroll
        for (int j = 0; j < V; j++) yv[p][j] *= gv[p][j] - d;
        store_vec(dx + base, yv[p], (p * (size_t)blockDim.x + threadIdx.x) * V, cols, packed);
    }
}
// b5: the backward's cluster version: each block holds 1/C of y and dy.
template <typename T, int C>
__global__ void softmax_b5(T *dx, const T *y, const T *dy, size_t cols)
{
#if HOPPER_CODE
    namespace cg = cooperative_groups;
    cg::cluster_group cluster = cg::this_cluster();
    extern __shared__ int4 cache_raw[];
    __shared__ float stat;
    const int V = Vec<T>::V;
    size_t part = cols / C, base = (blockIdx.x / C) * cols + cluster.block_rank() * part;
    T *cy = reinterpret_cast<T *>(cache_raw), *cg_ = cy + part;
    row_to_shared(cy, y + base, part, true);
    row_to_shared(cg_, dy + base, part, true);
    __syncthreads();
    float d = 0.0f;
    for (size_t c = threadIdx.x * (size_t)V; c < part; c += blockDim.x * (size_t)V) {
        float a[V], b[V];
        load_vec(a, cy, c, part, true, 0.0f);
        load_vec(b, cg_, c, part, true, 0.0f);
#pragma unroll
        for (int j = 0; j < V; j++) d += a[j] * b[j];
    }
    d = block_sum(d);
    if (threadIdx.x == 0) stat = d;
    cluster.sync();
    d = 0.0f;
    for (int r = 0; r < C; r++) d += *cluster.map_shared_rank(&stat, r);
    cluster.sync();
    for (size_t c = threadIdx.x * (size_t)V; c < part; c += blockDim.x * (size_t)V) {
        float a[V], b[V];
        load_vec(a, cy, c, part, true, 0.0f);
        load_vec(b, cg_, c, part, true, 0.0f);
#pragma unroll
        for (int j = 0; j < V; j++) a[j] *= b[j] - d;
        store_vec(dx + base, a, c, part, true);
    }
#endif
}
// Backward: dx = y * (dy - sum(dy * y)).
template <typename T>
__global__ void softmax_b0(T *dx, const T *y, const T *dy, size_t rows, size_t cols)
{
    size_t r = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (r >= rows) return;
    const T *yr = y + r * cols, *dyr = dy + r * cols;
    T *dxr = dx + r * cols;
    float d = 0.0f;
    for (size_t c = 0; c < cols; c++) d += to_float(dyr[c]) * to_float(yr[c]);
    for (size_t c = 0; c < cols; c++) dxr[c] = from_float<T>(to_float(yr[c]) * (to_float(dyr[c]) - d));
}

// b1: G lanes per row, y and dy in registers (f2's shape).
template <typename T, int G, int P>
__global__ void softmax_b1(T *dx, const T *y, const T *dy, size_t rows, size_t cols)
{
    const int V = Vec<T>::V;
    size_t r = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / G;
    int lane = threadIdx.x % G;
    bool packed = cols % V == 0;
    bool live = r < rows;
    size_t base = (live ? r : 0) * cols, len = live ? cols : 0;
    float yv[P][V], gv[P][V];
    float d = 0.0f;
#pragma unroll
    for (int p = 0; p < P; p++) {
        size_t c = (size_t)(p * G + lane) * V;
        load_vec(yv[p], y + base, c, len, packed, 0.0f);
        load_vec(gv[p], dy + base, c, len, packed, 0.0f);
#pragma unroll
        for (int j = 0; j < V; j++) d += yv[p][j] * gv[p][j];
    }
    d = warp_sum(d, G);
    if (!live) return;
#pragma unroll
    for (int p = 0; p < P; p++) {
#pragma unroll
        for (int j = 0; j < V; j++) yv[p][j] *= gv[p][j] - d;
        store_vec(dx + base, yv[p], (size_t)(p * G + lane) * V, cols, packed);
    }
}

// b2: one block per row, y and dy cached in shared memory in their own type.
template <typename T>
__global__ void softmax_b2(T *dx, const T *y, const T *dy, size_t cols)
{
    extern __shared__ int4 cache_raw[];
    const int V = Vec<T>::V;
    size_t base = blockIdx.x * cols, padded = (cols + V - 1) / V * V;
    T *cy = reinterpret_cast<T *>(cache_raw), *cg = cy + padded;
    bool packed = cols % V == 0;
    row_to_shared(cy, y + base, cols, packed);
    row_to_shared(cg, dy + base, cols, packed);
    __syncthreads();
    float d = 0.0f;
    for (size_t c = threadIdx.x * (size_t)V; c < cols; c += blockDim.x * (size_t)V) {
        float a[V], b[V];
        load_vec(a, cy, c, cols, packed, 0.0f);
        load_vec(b, cg, c, cols, packed, 0.0f);
#pragma unroll
        for (int j = 0; j < V; j++) d += a[j] * b[j];
    }
    d = block_sum(d);
    for (size_t c = threadIdx.x * (size_t)V; c < cols; c += blockDim.x * (size_t)V) {
        float a[V], b[V];
        load_vec(a, cy, c, cols, packed, 0.0f);
        load_vec(b, cg, c, cols, packed, 0.0f);
#pragma unroll
        for (int j = 0; j < V; j++) a[j] *= b[j] - d;
        store_vec(dx + base, a, c, cols, packed);
    }
}

// b3: one block per row, y and dy read twice from global memory.
template <typename T>
__global__ void softmax_b3(T *dx, const T *y, const T *dy, size_t cols)
{
    const int V = Vec<T>::V;
    size_t base = blockIdx.x * cols;
    bool packed = cols % V == 0;
    float d = 0.0f;
    for (size_t c = threadIdx.x * (size_t)V; c < cols; c += blockDim.x * (size_t)V) {
        float a[V], b[V];
        load_vec(a, y + base, c, cols, packed, 0.0f);
        load_vec(b, dy + base, c, cols, packed, 0.0f);
#pragma unroll
        for (int j = 0; j < V; j++) d += a[j] * b[j];
    }
    d = block_sum(d);
    for (size_t c = threadIdx.x * (size_t)V; c < cols; c += blockDim.x * (size_t)V) {
        float a[V], b[V];
        load_vec(a, y + base, c, cols, packed, 0.0f);
        load_vec(b, dy + base, c, cols, packed, 0.0f);
#pragma unroll
        for (int j = 0; j < V; j++) a[j] *= b[j] - d;
        store_vec(dx + base, a, c, cols, packed);
    }
}
#line 41 "chapters/06-softmax.md"
// <<softmax-launchers>>
#line 935 "chapters/06-softmax.md"
enum { THREADS = 256 };
static unsigned blocks_for(size_t items, unsigned threads = THREADS) { return (unsigned)((items + threads - 1) / threads); }


// f0 launches a thread per row.
template <typename T>
static void launch_f0(Problem *p)
{
    p->op = FWD;
    p->chain = (int)p->cols;
    softmax_f0<T><<<blocks_for(p->rows, 128), 128>>>((T *)p->y, (const T *)p->x, p->rows, p->cols);
    CHECK_LAUNCH();
}

// f1 launches a block of 256 per row.
template <typename T>
static void launch_f1(Problem *p)
{
    p->op = FWD;
    p->chain = (int)(p->cols / 256 + 1 + 8);
    softmax_f1<T><<<(unsigned)p->rows, 256>>>((T *)p->y, (const T *)p->x, p->cols);
    CHECK_LAUNCH();
}

// The register kernels (f2, b1): G lanes of P packs per row, the smallest that holds the
// row, in blocks of 256 threads.
template <typename T, int G, int P, bool BACK>
static void launch_regs_shape(Problem *p)
{
    size_t threads = p->rows * G;
    unsigned grid = blocks_for(threads, THREADS);
    if (BACK) softmax_b1<T, G, P><<<grid, THREADS>>>((T *)p->dx, (const T *)p->yin, (const T *)p->dy, p->rows, p->cols);
    else softmax_f2<T, G, P><<<grid, THREADS>>>((T *)p->y, (const T *)p->x, p->rows, p->cols);
    CHECK_LAUNCH();
}

template <typename T, bool BACK>
static void launch_regs(Problem *p)
{
    const size_t V = Vec<T>::V;
    size_t packs = (p->cols + V - 1) / V;
    p->op = BACK ? BWD : FWD;
    if (packs <= 1) { p->chain = (int)V; return launch_regs_shape<T, 1, 1, BACK>(p); }
    if (packs <= 2) { p->chain = (int)V + 1; return launch_regs_shape<T, 2, 1, BACK>(p); }
    if (packs <= 4) { p->chain = (int)V + 2; return launch_regs_shape<T, 4, 1, BACK>(p); }
    if (packs <= 8) { p->chain = (int)V + 3; return launch_regs_shape<T, 8, 1, BACK>(p); }
    if (packs <= 16) { p->chain = (int)V + 4; return launch_regs_shape<T, 16, 1, BACK>(p); }
    if (packs <= 32) { p->chain = (int)V + 5; return launch_regs_shape<T, 32, 1, BACK>(p); }
    if (packs <= 64) { p->chain = 2 * (int)V + 5; return launch_regs_shape<T, 32, 2, BACK>(p); }
    if (packs <= 128) { p->chain = 4 * (int)V + 5; return launch_regs_shape<T, 32, 4, BACK>(p); }
    p->chain = 8 * (int)V + 5;
    return launch_regs_shape<T, 32, 8, BACK>(p);
}

static const char *too_long_for_registers(const Problem *p)
{
    size_t limit = p->dtype == F32 ? 1024 : 2048;
    return p->cols <= limit ? NULL : "rows longer than the registers hold";
}

// The shared-memory kernels (f3, b2, f6, b5): enough threads that each caches 128 bytes
// (eight packs) of the block's part of the row, but 256 to 1024 of them.
static unsigned cache_threads(size_t bytes)
{
    size_t want = (bytes / 128 + 31) / 32 * 32;
    return (unsigned)(want < 256 ? 256 : want > 1024 ? 1024 : want);
}

// Shared memory a block may use, less what the reductions need.
static size_t smem_limit(void)
{
    static int limit = 0;
    if (!limit) CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0));
    return (size_t)limit - 1024;  // the reductions' own shared memory
}

static unsigned block_threads(size_t cols, size_t V)
{
    size_t want = (cols / V + 31) / 32 * 32;
    return (unsigned)(want < 128 ? 128 : want > 1024 ? 1024 : want);
}

// f3 launches a block per row, `threads` threads caching the row.
template <typename T>
static void launch_f3_with(Problem *p, unsigned threads)
{
    p->op = FWD;
    p->chain = (int)(p->cols / threads + 16);
    size_t smem = (p->cols * sizeof(T) + 15) / 16 * 16;
    static bool opted = false;
    if (!opted) {
        CUDA_CHECK(cudaFuncSetAttribute(softmax_f3<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem_limit()));
        opted = true;
    }
    softmax_f3<T><<<(unsigned)p->rows, threads, smem>>>((T *)p->y, (const T *)p->x, p->cols);
    CHECK_LAUNCH();
}
template <typename T> static void launch_f3(Problem *p) { launch_f3_with<T>(p, cache_threads(p->cols * sizeof(T))); }
// f3 as first written: 256 threads whatever the row length.
template <typename T> static void launch_f3_256(Problem *p) { launch_f3_with<T>(p, 256); }

// f8: f3's threads, two row buffers, and as many blocks as are resident at once.
static const char *fwd_two_rows_unsupported(const Problem *p)
{
    size_t stride_bytes = (p->cols * dtype_bytes(p->dtype) + 15) / 16 * 16;
    return 2 * stride_bytes <= smem_limit() ? NULL : "two rows longer than shared memory holds";
}

template <typename T>
static void launch_f8(Problem *p)
{
    p->op = FWD;
    size_t stride = (p->cols * sizeof(T) + 15) / 16 * 16 / sizeof(T), smem = 2 * stride * sizeof(T);
    unsigned threads = cache_threads(p->cols * sizeof(T));
    p->chain = (int)(p->cols / threads + 16);
    static int per_sm = 0;
    static size_t per_sm_smem = 0;
    if (per_sm_smem != smem) {  // resident blocks for this row length
        CUDA_CHECK(cudaFuncSetAttribute(softmax_f8<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem_limit()));
        CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, softmax_f8<T>, (int)threads, smem));
        per_sm_smem = smem;
    }
    static int sms = 0;
    if (!sms) CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    size_t grid = (size_t)per_sm * sms < p->rows ? (size_t)per_sm * sms : p->rows;
    softmax_f8<T><<<(unsigned)grid, threads, smem>>>((T *)p->y, (const T *)p->x, p->rows, p->cols, stride);
    CHECK_LAUNCH();
}

// f4 and b3: a block of threads with one pack each, 128 to 1024 threads.
template <typename T>
static void launch_f4(Problem *p)
{
    p->op = FWD;
    unsigned threads = block_threads(p->cols, Vec<T>::V);
    p->chain = (int)(p->cols / threads + 16);
    softmax_f4<T><<<(unsigned)p->rows, threads>>>((T *)p->y, (const T *)p->x, p->cols);
    CHECK_LAUNCH();
}

// b0 launches a thread per row.
template <typename T>
static void launch_b0(Problem *p)
{
    p->op = BWD;
    p->chain = (int)p->cols;
    softmax_b0<T><<<blocks_for(p->rows, 128), 128>>>((T *)p->dx, (const T *)p->yin, (const T *)p->dy, p->rows, p->cols);
    CHECK_LAUNCH();
}

// b2 launches a block with y and dy in shared memory.
template <typename T>
static void launch_b2(Problem *p)
{
    p->op = BWD;
    unsigned threads = cache_threads(2 * p->cols * sizeof(T));
    p->chain = (int)(p->cols / threads + 16);
    size_t smem = 2 * (p->cols + 8) * sizeof(T);
    static bool opted = false;
    if (!opted) {
        CUDA_CHECK(cudaFuncSetAttribute(softmax_b2<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem_limit()));
        opted = true;
    }
    softmax_b2<T><<<(unsigned)p->rows, threads, smem>>>((T *)p->dx, (const T *)p->yin, (const T *)p->dy, p->cols);
    CHECK_LAUNCH();
}

// b3 launches one block of packs per row.
template <typename T>
static void launch_b3(Problem *p)
{
    p->op = BWD;
    unsigned threads = block_threads(p->cols, Vec<T>::V);
    p->chain = (int)(p->cols / threads + 16);
    softmax_b3<T><<<(unsigned)p->rows, threads>>>((T *)p->dx, (const T *)p->yin, (const T *)p->dy, p->cols);
    CHECK_LAUNCH();
}

// Which versions cannot run which problems.
static const char *fwd_smem_unsupported(const Problem *p)
{
    return p->cols * dtype_bytes(p->dtype) <= smem_limit() ? NULL : "rows longer than shared memory holds";
}
static const char *bwd_smem_unsupported(const Problem *p)
{
    return 2 * (p->cols + 8) * dtype_bytes(p->dtype) <= smem_limit() ? NULL : "rows longer than shared memory holds";
}
static const char *short_rows(const Problem *p)
{
    return p->cols >= 128 ? NULL : "one block per row of fewer than 128 columns: see f2 and b1";
}
static const char *fwd_smem_unsupported_or_short(const Problem *p)
{
    return short_rows(p) ? short_rows(p) : fwd_smem_unsupported(p);
}
static const char *bwd_smem_unsupported_or_short(const Problem *p)
{
    return short_rows(p) ? short_rows(p) : bwd_smem_unsupported(p);
}
static const char *long_rows_slow(const Problem *p)
{
    return p->cols <= 1024 ? NULL : "one thread per row: too slow beyond 1024 columns";
}

// Block-register shapes: BLOCK threads (128 to 512) of P packs each, with at most
// MAX_VALUES floats per thread in registers; the smallest block that holds the row.
static int block_regs_shape(size_t cols, size_t V, int max_values, unsigned *block)
{
    size_t packs = (cols + V - 1) / V;
    int max_p = max_values / (int)V;
    for (int p = 1; p <= max_p; p *= 2)
        if (packs <= 128 * (size_t)p) { *block = 128; return p; }
    size_t b = (packs + max_p - 1) / max_p;
    *block = (unsigned)((b + 31) / 32 * 32);
    return *block <= 512 ? max_p : 0;
}

// f5's shape: at most 16 values per thread for rows under 16 KB, while a block of 512
// holds the row; 32 otherwise (fewer threads per row, more rows per SM).
static int fwd_block_regs_shape(size_t cols, size_t V, unsigned *block)
{
    int P = cols * (16 / V) < 16384 ? block_regs_shape(cols, V, 16, block) : 0;
    return P ? P : block_regs_shape(cols, V, 32, block);
}

static const char *too_long_for_block_regs(const Problem *p)
{
    if (short_rows(p)) return short_rows(p);
    unsigned block;
    size_t V = 16 / dtype_bytes(p->dtype);
    return fwd_block_regs_shape(p->cols, V, &block) ? NULL : "rows longer than a block's registers hold";
}
static const char *too_long_for_block_regs_bwd(const Problem *p)
{
    if (short_rows(p)) return short_rows(p);
    unsigned block;
    size_t V = 16 / dtype_bytes(p->dtype);
    return block_regs_shape(p->cols, V, 16, &block) ? NULL : "rows longer than a block's registers hold";
}

// f5 launches its block shape with P as a template argument.
template <typename T>
static void launch_f5(Problem *p)
{
    p->op = FWD;
    unsigned block;
    int P = fwd_block_regs_shape(p->cols, Vec<T>::V, &block);
    p->chain = P * (int)Vec<T>::V + 16;
    unsigned grid = (unsigned)p->rows;
    T *y = (T *)p->y;
    const T *x = (const T *)p->x;
    if (P == 1) softmax_f5<T, 1><<<grid, block>>>(y, x, p->cols);
    else if (P == 2) softmax_f5<T, 2><<<grid, block>>>(y, x, p->cols);
    else if (P == 4) softmax_f5<T, 4><<<grid, block>>>(y, x, p->cols);
    else softmax_f5<T, 8><<<grid, block>>>(y, x, p->cols);
    CHECK_LAUNCH();
}

// b4 likewise, with at most 16 values of each array per thread.
template <typename T>
static void launch_b4(Problem *p)
{
    p->op = BWD;
    unsigned block;
    int P = block_regs_shape(p->cols, Vec<T>::V, 16, &block);
    p->chain = P * (int)Vec<T>::V + 16;
    unsigned grid = (unsigned)p->rows;
    T *dx = (T *)p->dx;
    const T *y = (const T *)p->yin, *dy = (const T *)p->dy;
    if (P == 1) softmax_b4<T, 1><<<grid, block>>>(dx, y, dy, p->cols);
    else if (P == 2) softmax_b4<T, 2><<<grid, block>>>(dx, y, dy, p->cols);
    else softmax_b4<T, 4><<<grid, block>>>(dx, y, dy, p->cols);
    CHECK_LAUNCH();
}

// The dispatchers: registers while the row fits, then shared memory, then re-reading.
// f6 and b5: a cluster of C blocks per row, C the power of two (2 to 8)
// that leaves each block at most 64 KB of the row; the row must split into whole packs.
static int cluster_size(size_t row_bytes)
{
    int c = 2;
    while (c < 8 && row_bytes > (size_t)c * 65536) c *= 2;
    return c;
}
static const char *no_cluster_split(const Problem *p, size_t row_bytes)
{
    if (needs_sm90()) return needs_sm90();  // clusters are Hopper's
    size_t V = 16 / dtype_bytes(p->dtype);
    if (p->cols < 2048 || p->cols % (cluster_size(row_bytes) * V)) return "rows that do not split into whole packs";
    if (row_bytes > 8 * smem_limit()) return "rows longer than eight blocks' shared memory";
    return NULL;
}
static const char *no_cluster_fwd(const Problem *p) { return no_cluster_split(p, p->cols * dtype_bytes(p->dtype)); }
static const char *no_cluster_bwd(const Problem *p) { return no_cluster_split(p, 2 * p->cols * dtype_bytes(p->dtype)); }

// A launch in clusters of c blocks along x: the cluster's shape is an attribute of the
// launch rather than of the kernel, so that the kernel compiles for GPUs without clusters.
static void launch_cluster(cudaLaunchConfig_t *cfg, cudaLaunchAttribute *attr, unsigned blocks, unsigned threads,
                           size_t smem, int c)
{
    *cfg = cudaLaunchConfig_t{};
    cfg->gridDim = dim3(blocks);
    cfg->blockDim = dim3(threads);
    cfg->dynamicSmemBytes = smem;
    attr->id = cudaLaunchAttributeClusterDimension;
    attr->val.clusterDim.x = (unsigned)c;
    attr->val.clusterDim.y = 1;
    attr->val.clusterDim.z = 1;
    cfg->attrs = attr;
    cfg->numAttrs = 1;
}

template <typename T, int C>
static void launch_f6c(Problem *p)
{
    p->op = FWD;
    size_t smem = p->cols / C * sizeof(T);
    unsigned threads = cache_threads(smem);
    p->chain = (int)(p->cols / C / threads + 16 + C);
    static bool opted = false;
    if (!opted) {
        CUDA_CHECK(cudaFuncSetAttribute(softmax_f6<T, C>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem_limit()));
        opted = true;
    }
    cudaLaunchConfig_t cfg;
    cudaLaunchAttribute attr;
    launch_cluster(&cfg, &attr, (unsigned)(p->rows * C), threads, smem, C);
    CUDA_CHECK(cudaLaunchKernelEx(&cfg, softmax_f6<T, C>, (T *)p->y, (const T *)p->x, p->cols));
}

template <typename T, int C>
static void launch_b5c(Problem *p)
{
    p->op = BWD;
    size_t smem = 2 * p->cols / C * sizeof(T);
    unsigned threads = cache_threads(smem);
    p->chain = (int)(p->cols / C / threads + 16 + C);
    static bool opted = false;
    if (!opted) {
        CUDA_CHECK(cudaFuncSetAttribute(softmax_b5<T, C>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem_limit()));
        opted = true;
    }
    cudaLaunchConfig_t cfg;
    cudaLaunchAttribute attr;
    launch_cluster(&cfg, &attr, (unsigned)(p->rows * C), threads, smem, C);
    CUDA_CHECK(cudaLaunchKernelEx(&cfg, softmax_b5<T, C>, (T *)p->dx, (const T *)p->yin, (const T *)p->dy, p->cols));
}

template <typename T>
static void launch_f6(Problem *p)
{
    int c = cluster_size(p->cols * sizeof(T));
    if (c == 2) launch_f6c<T, 2>(p);
    else if (c == 4) launch_f6c<T, 4>(p);
    else launch_f6c<T, 8>(p);
}

template <typename T>
static void launch_b5(Problem *p)
{
    int c = cluster_size(2 * p->cols * sizeof(T));
    if (c == 2) launch_b5c<T, 2>(p);
    else if (c == 4) launch_b5c<T, 4>(p);
    else launch_b5c<T, 8>(p);
}

// The dispatchers, by row length (the thresholds are the chapter's measurements).
template <typename T>
static void launch_fwd(Problem *p)
{
    size_t row_bytes = p->cols * sizeof(T);
    if (p->cols <= 512 || (p->dtype == F32 && p->cols <= 1024)) return launch_regs<T, false>(p);
    if (row_bytes <= 8192 || (p->dtype == F32 && row_bytes <= 16384)) return launch_f5<T>(p);
    if (row_bytes <= 65536 && !fwd_smem_unsupported(p)) return launch_f3<T>(p);
    if (!no_cluster_fwd(p)) return launch_f6<T>(p);
    if (!fwd_smem_unsupported(p)) return launch_f3<T>(p);
    return launch_f4<T>(p);
}

template <typename T>
static void launch_bwd(Problem *p)
{
    size_t rows_bytes = 2 * p->cols * sizeof(T);  // y and dy
    bool f32 = sizeof(T) == 4;
    if (p->cols <= (f32 ? 256u : 512u)) return launch_regs<T, true>(p);
    if (p->cols <= 1024) return launch_b4<T>(p);
    if (f32 ? rows_bytes <= 65536 : rows_bytes < 16384) return launch_b3<T>(p);
    if (!bwd_smem_unsupported(p)) return launch_b2<T>(p);
    if (!no_cluster_bwd(p)) return launch_b5<T>(p);
    return launch_b3<T>(p);
}

// f2 and b1 as versions of their own.
template <typename T> static void launch_f2(Problem *p) { launch_regs<T, false>(p); }
template <typename T> static void launch_b1(Problem *p) { launch_regs<T, true>(p); }
#line 42 "chapters/06-softmax.md"
// <<the-cudnn-peer>>
#line 1348 "chapters/06-softmax.md"
#ifdef HAVE_CUDNN
#define CUDNN_CHECK(call)                                                                           \
    do {                                                                                            \
        cudnnStatus_t s_ = (call);                                                                  \
        if (s_ != CUDNN_STATUS_SUCCESS) {                                                           \
            fprintf(stderr, "%s:%d: cuDNN error: %s\n", __FILE__, __LINE__, cudnnGetErrorString(s_)); \
            exit(EXIT_CHECK);                                                                       \
        }                                                                                           \
    } while (0)

// One handle, and one descriptor reshaped for each problem (host work only).
static cudnnHandle_t cudnn_handle(void)
{
    static cudnnHandle_t h = NULL;
    if (!h) CUDNN_CHECK(cudnnCreate(&h));
    return h;
}

static cudnnTensorDescriptor_t cudnn_rows(DType t, size_t rows, size_t cols)
{
    static cudnnTensorDescriptor_t d = NULL;
    if (!d) CUDNN_CHECK(cudnnCreateTensorDescriptor(&d));
    cudnnDataType_t ct = t == F32 ? CUDNN_DATA_FLOAT : t == F16 ? CUDNN_DATA_HALF : CUDNN_DATA_BFLOAT16;
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, ct, (int)rows, (int)cols, 1, 1));
    return d;
}

// y = softmax(x) over rows of cols, in cuDNN's accurate mode; returns cuDNN's status.
static cudnnStatus_t cudnn_forward(DType t, size_t rows, size_t cols, const void *x, void *y)
{
    const float one = 1.0f, zero = 0.0f;  // scaling factors are float for every type but double
    cudnnTensorDescriptor_t d = cudnn_rows(t, rows, cols);
    return cudnnSoftmaxForward(cudnn_handle(), CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_INSTANCE, &one, d, x,
                               &zero, d, y);
}

static void launch_cudnn_fwd(Problem *p)
{
    p->op = FWD;
    p->chain = (int)p->cols;
    p->roundings = 3;
    CUDNN_CHECK(cudnn_forward(p->dtype, p->rows, p->cols, p->x, p->y));
}

static void launch_cudnn_bwd(Problem *p)
{
    p->op = BWD;
    p->chain = (int)p->cols;
    p->roundings = 3;
    const float one = 1.0f, zero = 0.0f;
    cudnnTensorDescriptor_t d = cudnn_rows(p->dtype, p->rows, p->cols);
    CUDNN_CHECK(cudnnSoftmaxBackward(cudnn_handle(), CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_INSTANCE, &one, d,
                                     p->yin, d, p->dy, &zero, d, p->dx));
}

// Whether this cuDNN runs the element type: one forward call on a row of 8, once per type.
static const char *cudnn_unsupported(const Problem *p)
{
    static const char *verdict[3];
    static bool asked[3];
    static void *scratch = NULL;
    if (p->rows > INT_MAX || p->cols > INT_MAX) return "cuDNN's dimensions are int";
    if (!asked[p->dtype]) {
        asked[p->dtype] = true;
        if (!scratch) scratch = device_alloc(2 * 8 * sizeof(float), "cuDNN probe");
        CUDA_CHECK(cudaMemset(scratch, 0, 2 * 8 * sizeof(float)));
        cudnnStatus_t s = cudnn_forward(p->dtype, 1, 8, scratch, (float *)scratch + 8);
        verdict[p->dtype] = s == CUDNN_STATUS_SUCCESS ? NULL : cudnnGetErrorString(s);
        CUDA_CHECK(cudaDeviceSynchronize());
    }
    return verdict[p->dtype];
}
#else
static const char *cudnn_unsupported(const Problem *p)
{
    (void)p;
    return "built without cuDNN (the Makefile found no cudnn.h)";
}
// Never reached: the harness asks cudnn_unsupported first.
static void launch_cudnn_fwd(Problem *p)
{
    (void)p;
    fprintf(stderr, "error: the cuDNN peer called in a build without cuDNN\n");
    exit(EXIT_CHECK);
}
static void launch_cudnn_bwd(Problem *p) { launch_cudnn_fwd(p); }
#endif
#line 43 "chapters/06-softmax.md"
// <<the-softmax-version-table>>
#line 1438 "chapters/06-softmax.md"
#define SOFTMAX_VERSIONS(T, DT)                                                                                   \
    {"f0-thread-per-row", "ours", DT, "forward: one thread per row, three passes", launch_f0<T>, long_rows_slow},  \
    {"f1-block-per-row", "ours", DT, "forward: one block per row, three passes over global", launch_f1<T>, short_rows},  \
    {"f2-registers", "ours", DT, "forward: a warp (or part) per row, the row in registers", launch_f2<T>, too_long_for_registers}, \
    {"f3-shared", "ours", DT, "forward: one block per row, the row cached in shared memory", launch_f3<T>, fwd_smem_unsupported_or_short}, \
    {"f3-256-threads", "ours", DT, "forward: f3 with 256 threads whatever the row length", launch_f3_256<T>, fwd_smem_unsupported_or_short}, \
    {"f4-online", "ours", DT, "forward: one block per row, online max and sum, two reads", launch_f4<T>, short_rows},    \
    {"f5-block-registers", "ours", DT, "forward: one block per row, the row in registers", launch_f5<T>, too_long_for_block_regs}, \
    {"f6-cluster", "ours", DT, "forward: a cluster of 2 to 8 blocks per row, statistics in distributed shared memory", launch_f6<T>, no_cluster_fwd}, \
    {"f8-pipelined", "ours", DT, "forward: persistent blocks, the next row copied while this one is computed", launch_f8<T>, fwd_two_rows_unsupported}, \
    {"f7-dispatch", "ours", DT, "forward: f2, f5, f3, f6 or f4 by row length", launch_fwd<T>, NULL},                 \
    {"b0-thread-per-row", "ours", DT, "backward: one thread per row", launch_b0<T>, long_rows_slow},             \
    {"b1-registers", "ours", DT, "backward: a warp (or part) per row, in registers", launch_b1<T>, too_long_for_registers}, \
    {"b2-shared", "ours", DT, "backward: one block per row, y and dy in shared memory", launch_b2<T>, bwd_smem_unsupported_or_short}, \
    {"b3-reread", "ours", DT, "backward: one block per row, two reads of y and dy", launch_b3<T>, short_rows},        \
    {"b4-block-registers", "ours", DT, "backward: one block per row, in registers", launch_b4<T>, too_long_for_block_regs_bwd}, \
    {"b5-cluster", "ours", DT, "backward: a cluster of 2 to 8 blocks per row", launch_b5<T>, no_cluster_bwd}, \
    {"b6-dispatch", "ours", DT, "backward: b1, b4, b3, b2 or b5 by row length and type", launch_bwd<T>, NULL}

#define CUDNN_PEERS(DT)                                                                                 \
    {"cudnn", "peer", DT, "forward: cudnnSoftmaxForward, ACCURATE, per row", launch_cudnn_fwd, cudnn_unsupported}, \
    {"cudnn-bwd", "peer", DT, "backward: cudnnSoftmaxBackward, ACCURATE, per row", launch_cudnn_bwd, cudnn_unsupported}

static const Version VERSIONS[] = {
    SOFTMAX_VERSIONS(float, "f32"),
    CUDNN_PEERS("f32"),
    SOFTMAX_VERSIONS(__half, "f16"),
    CUDNN_PEERS("f16"),
    SOFTMAX_VERSIONS(__nv_bfloat16, "bf16"),
    CUDNN_PEERS("bf16"),
};
#line 44 "chapters/06-softmax.md"
// <<create-and-check-a-softmax-problem>>
#line 1630 "chapters/06-softmax.md"
// Sizes: "ROWSxCOLS", e.g. 1048576x32 or 1x50000. Returns 0 for a size of that form.
static int parse_rows_cols(const char *size, size_t *rows, size_t *cols)
{
    char spec[64];
    snprintf(spec, sizeof spec, "%s", size);
    char *x = strchr(spec, 'x');
    if (!x) return 1;
    *x = '\0';
    return parse_count(spec, rows) || parse_count(x + 1, cols) || !*rows || !*cols;
}

static const char *softmax_bad_size(const char *size)
{
    size_t rows, cols;
    return parse_rows_cols(size, &rows, &cols) ? "ROWSxCOLS, e.g. 1048576x32" : NULL;
}

static Problem *softmax_create(const char *dtype, const char *size, uint64_t seed)
{
    size_t rows = 0, cols = 0;
    if (parse_rows_cols(size, &rows, &cols)) usage_error("bad size", size, softmax_bad_size(size));
    Problem *p = (Problem *)host_alloc(sizeof(Problem), "problem");
    memset(p, 0, sizeof *p);
    p->dtype = parse_dtype(dtype);
    snprintf(p->size, sizeof p->size, "%s", size);
    p->rows = rows;
    p->cols = cols;
    p->n = rows * cols;
    size_t bytes = p->n * dtype_bytes(p->dtype);
    void **arrays[5] = {&p->x, &p->y, &p->yin, &p->dy, &p->dx};
    for (int k = 0; k < 5; k++) *arrays[k] = device_alloc(bytes, "array");
    p->hx = (float *)host_alloc(p->n * sizeof(float), "input");
    p->hdy = (float *)host_alloc(p->n * sizeof(float), "input");
    p->hy = (float *)host_alloc(p->n * sizeof(float), "input");
    fill_uniform_f32(p->hx, p->n, -2.0f, 6.0f, seed);
    fill_uniform_f32(p->hdy, p->n, -1.0f, 2.0f, seed + 1);
    for (size_t i = 0; i < p->n; i++) {
        p->hx[i] = round_to(p->dtype, p->hx[i]);
        p->hdy[i] = round_to(p->dtype, p->hdy[i]);
    }
    // the backward's y: the exact softmax of x, rounded to the element type
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; r++) {
        const float *xr = p->hx + r * cols;
        double m = -INFINITY, s = 0.0;
        for (size_t c = 0; c < cols; c++) m = fmax(m, xr[c]);
        for (size_t c = 0; c < cols; c++) s += exp(xr[c] - m);
        for (size_t c = 0; c < cols; c++) p->hy[r * cols + c] = round_to(p->dtype, (float)(exp(xr[c] - m) / s));
    }
    upload(p->x, p->hx, p->n, p->dtype);
    upload(p->yin, p->hy, p->n, p->dtype);
    upload(p->dy, p->hdy, p->n, p->dtype);
    p->ref_op = -1;
    return p;
}

static void softmax_destroy(Problem *p)
{
    void *arrays[5] = {p->x, p->y, p->yin, p->dy, p->dx};
    for (int k = 0; k < 5; k++) CUDA_CHECK(cudaFree(arrays[k]));
    free(p->hx);
    free(p->hy);
    free(p->hdy);
    free(p->ref);
    free(p->scale);
    free(p);
}

static void softmax_poison(Problem *p)
{
    p->roundings = 0;  // our arithmetic, unless a library's launcher says otherwise
    poison(p->y, p->n * dtype_bytes(p->dtype));
    poison(p->dx, p->n * dtype_bytes(p->dtype));
}

static void make_reference(Problem *p)
{
    if (p->ref_op == (int)p->op) return;
    if (!p->ref) p->ref = (double *)host_alloc(p->n * sizeof(double), "reference");
    if (!p->scale) p->scale = (double *)host_alloc(p->n * sizeof(double), "reference");
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < p->rows; r++) {
        size_t b = r * p->cols;
        if (p->op == FWD) {
            double m = -INFINITY, s = 0.0;
            for (size_t c = 0; c < p->cols; c++) m = fmax(m, p->hx[b + c]);
            for (size_t c = 0; c < p->cols; c++) s += exp(p->hx[b + c] - m);
            for (size_t c = 0; c < p->cols; c++) {
                p->ref[b + c] = exp(p->hx[b + c] - m) / s;
                p->scale[b + c] = p->ref[b + c];
            }
        } else {
            double d = 0.0, da = 0.0;
            for (size_t c = 0; c < p->cols; c++) {
                d += (double)p->hdy[b + c] * p->hy[b + c];
                da += fabs((double)p->hdy[b + c] * p->hy[b + c]);
            }
            for (size_t c = 0; c < p->cols; c++) {
                double y = p->hy[b + c], g = p->hdy[b + c];
                p->ref[b + c] = y * (g - d);
                p->scale[b + c] = fabs(y) * (fabs(g) + da);
            }
        }
    }
    p->ref_op = p->op;
}

// Element i may be off by the float arithmetic, a chain of `chain` additions and the fast
// exponential relative to scale[i] (the value itself forward; |y| (|dy| + sum |dy y|)
// backward), then by the harness's rounding terms (error_bound).
// Element i's bound: the float arithmetic's error, scaled by the element's own scale, and
// the roundings of the version (p->roundings, at values up to that scale).
typedef struct {
    const Problem *p;
    double arith;
} SoftmaxBound;

static double softmax_bound(const void *ctx, size_t i, double *scale)
{
    const SoftmaxBound *b = (const SoftmaxBound *)ctx;
    const Problem *p = b->p;
    *scale = p->scale[i];
    return error_bound(p->dtype, p->ref[i], 1.01 * b->arith * p->scale[i], p->roundings, p->scale[i]);
}

static CheckResult softmax_check(Problem *p, const char *version)
{
    make_reference(p);
    double *got = download(p->op == FWD ? p->y : p->dx, p->n, p->dtype);
    // x - max is at most 8 here: __expf's error is a few float ulps at that range
    SoftmaxBound b = {p, (p->chain + 2.0) * 0x1p-24 + 8 * 0x1p-24};
    CheckResult r = check_elements(version, p->size, got, p->ref, p->n, softmax_bound, &b, p->cols);
    free(got);
    return r;
}

// Forward: x read, y written. Backward: y and dy read, dx written.
// The roofline's operations per element: forward, the comparison for the maximum, the
// subtraction, the exponential, the addition to the sum and the product by its inverse
// (5); backward, y dy, its addition to the row's sum, dy minus the sum, and the product by
// y (4).
static double softmax_flops(const Problem *p) { return (p->op == FWD ? 5.0 : 4.0) * p->n; }

static double softmax_bytes(const Problem *p)
{
    return (p->op == FWD ? 2.0 : 3.0) * p->n * dtype_bytes(p->dtype);
}
#line 45 "chapters/06-softmax.md"
// <<the-softmax-chapter>>
#line 1780 "chapters/06-softmax.md"
static const char *const DTYPES[] = {"f32", "f16", "bf16"};
static const char *const BENCH_SIZES[] = {"1048576x32", "262144x128", "65536x512", "32768x1024", "16384x2048",
                                          "8192x4096", "4096x8192", "2048x16384", "1024x32768",
                                          "32768x16", "65536x32", "131072x64", "1048576x512"};
static const char *const CHECK_SIZES[] = {"1000x1", "1000x7", "100x1000", "77x3001", "3x50000", "1x4096",
                                          "1x1000", "4097x32", "1000x2048", "10x32768", "65536x32", "64x16384"};

static const Chapter SOFTMAX = {
    "softmax", "softmax over the last dimension, forward and backward, f32 f16 bf16",
    VERSIONS, sizeof VERSIONS / sizeof VERSIONS[0],
    DTYPES, 3, BENCH_SIZES, sizeof BENCH_SIZES / sizeof BENCH_SIZES[0],
    CHECK_SIZES, sizeof CHECK_SIZES / sizeof CHECK_SIZES[0],
    "copy", NULL, softmax_bad_size,
    softmax_create, softmax_destroy, softmax_poison, softmax_check, softmax_bytes, softmax_flops,
    NULL, NULL, NULL,
};
int main(int argc, char **argv) { return harness_main(&SOFTMAX, argc, argv); }
