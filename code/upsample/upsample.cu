#line 22 "chapters/04-upsample.md"
// upsample.cu: nearest-neighbour upsampling of NCHW and NHWC images, forward and
// backward, f32 f16 bf16.
#include "../harness/harness.cuh"
#include <cuda_bf16.h>
#include <cuda_fp16.h>
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
#line 28 "chapters/04-upsample.md"
// <<sixteen-byte-vector-reductions>>
#line 637 "chapters/04-upsample.md"
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
#line 638 "chapters/04-upsample.md"

// 16 bytes of T added to 16 aligned bytes of global memory by one vector reduction:
// four floats, or four pairs of halves or of bfloat16 values (sm_90 and newer only).
__device__ inline void red_add_pack(float *dst, int4 v)
{
#if HOPPER_CODE
    asm volatile("red.global.add.v4.f32 [%0], {%1, %2, %3, %4};"
                 :: "l"(dst), "f"(__int_as_float(v.x)), "f"(__int_as_float(v.y)), "f"(__int_as_float(v.z)),
                    "f"(__int_as_float(v.w)) : "memory");
#endif
}
__device__ inline void red_add_pack(__half *dst, int4 v) { red_add_v8(dst, v); }
__device__ inline void red_add_pack(__nv_bfloat16 *dst, int4 v)
{
#if HOPPER_CODE
    asm volatile("red.global.add.noftz.v4.bf16x2 [%0], {%1, %2, %3, %4};"
                 :: "l"(dst), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w) : "memory");
#endif
}
#line 29 "chapters/04-upsample.md"
// <<the-upsample-problem>>
#line 56 "chapters/04-upsample.md"
typedef enum { FWD, BWD } Pass;
typedef enum { NCHW, NHWC } Layout;

struct Problem {
    DType dtype;
    char size[64];
    int n, c, h, w;            // the input's shape
    int oh, ow;                // the output's height and width
    int s;                     // the scale when oh = s h and ow = s w for one whole s, else 0
    size_t in_count, out_count;
    void *x, *y;               // forward, NCHW: x (n, c, h, w) -> y (n, c, oh, ow)
    void *x_nhwc, *y_nhwc;     // the same, channels last: (n, h, w, c) -> (n, oh, ow, c)
    void *dy, *dx;             // backward, NCHW: dy (n, c, oh, ow) -> dx (n, c, h, w)
    float *hx, *hdy;           // x and dy as the device sees them, on the host (NCHW)
    double *ref;               // the reference of ref_pass, NCHW
    double *abs_sum;           // backward: the sum of |dy| over the outputs of each input
    int *hits;                 // backward: how many outputs copied each input element
    int ref_pass;              // the pass ref holds, -1 before the first check
    Pass pass;                 // set by each launcher: what it computed
    Layout layout;             // set by each launcher: where it wrote
    bool adds_in_type;         // set by launchers that add in the element type (atomics)
    bool deterministic;        // set by launchers whose result cannot depend on timing
};
#line 30 "chapters/04-upsample.md"
// <<the-nearest-rule>>
#line 94 "chapters/04-upsample.md"
// The input row (or column) that output row dst copies: PyTorch's rule for
// mode='nearest', floor(dst * in / out) with the ratio and the product in float,
// clamped to the last row.
__host__ __device__ inline int nearest_source(int dst, int in, int out)
{
    float ratio = (float)in / (float)out;
    int src = (int)floorf((float)dst * ratio);
    return src < in - 1 ? src : in - 1;
}

// The input element that output element i (NCHW, counted over every plane) copies.
__host__ __device__ inline size_t source_element(size_t i, int h, int w, int oh, int ow)
{
    int ox = (int)(i % ow);
    size_t rest = i / ow;
    int oy = (int)(rest % oh);
    size_t plane = rest / oh;  // image * channels + channel
    return (plane * h + nearest_source(oy, h, oh)) * w + nearest_source(ox, w, ow);
}

// The output rows [*first, *last) that copy input row src (an empty range when none
// does). nearest_source never decreases with dst, so they are consecutive.
__host__ __device__ inline void nearest_targets(int src, int in, int out, int *first, int *last)
{
    int lo = (int)(((long long)src * out + in - 1) / in);  // ceil(src * out / in): exact
    while (lo > 0 && nearest_source(lo - 1, in, out) >= src) lo--;
    while (lo < out && nearest_source(lo, in, out) < src) lo++;
    int hi = lo;
    while (hi < out && nearest_source(hi, in, out) == src) hi++;
    *first = lo;
    *last = hi;
}
#line 31 "chapters/04-upsample.md"
// <<upsample-kernels>>
#line 134 "chapters/04-upsample.md"
// f0: one thread per output element, any output size.
template <typename T>
__global__ void upsample_f0(T *y, const T *x, int h, int w, int oh, int ow, size_t out_count)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= out_count) return;
    y[i] = x[source_element(i, h, w, oh, ow)];
}
#line 186 "chapters/04-upsample.md"
// f1: one thread per input element, writing its s x s block of the output.
template <typename T>
__global__ void upsample_f1(T *y, const T *x, int h, int w, int s, size_t in_count)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= in_count) return;
    int ix = (int)(i % w);
    size_t row = i / w;  // plane * h + iy
    T v = x[i];
    size_t ow = (size_t)w * s;
    T *block = y + row * s * ow + (size_t)ix * s;  // output row (plane * h + iy) * s = plane * oh + s iy
    for (int r = 0; r < s; r++)
        for (int k = 0; k < s; k++) block[r * ow + k] = v;
}
#line 263 "chapters/04-upsample.md"
// Element k of a 16-byte pack of T, chosen with comparisons and shifts rather than an
// index into memory, so that a run-time k keeps the pack in registers.
template <typename T>
__device__ inline T pack_element(int4 pack, int k)
{
    int byte = k * (int)sizeof(T);
    unsigned word = byte < 8 ? (byte < 4 ? pack.x : pack.y) : (byte < 12 ? pack.z : pack.w);
    word >>= 8 * (byte & 3);
    T t;
    memcpy(&t, &word, sizeof(T));  // the low bytes of word (little-endian)
    return t;
}

// f2 (S = 0: the scale s at run time), f3 and f4 (S = 2): a thread per 16-byte pack of an
// output row, stored in the s output rows that copy one input row. x: pack columns of the
// output row (row_packs of them); y: input rows (plane * h + iy), with the grid's height
// as the stride. Rows are whole packs.
template <typename T, int S>
__global__ void upsample_packed(T *y, const T *x, int w, int s_run, int row_packs, size_t rows)
{
    const int V = 16 / sizeof(T);
    const int s = S ? S : s_run;
    int q = blockIdx.x * blockDim.x + threadIdx.x;
    if (q >= row_packs) return;
    const size_t stride = (size_t)gridDim.y * blockDim.y;
    const int x0 = q * V;  // the pack's first output column
    const size_t ow = (size_t)w * s;
    // The input elements x0 / s .. (x0 + V - 1) / s: from the pack at `base`, and from the
    // next one when they run into it.
    const int first = x0 / s, base = first & ~(V - 1);
    const bool two = (x0 + V - 1) / s >= base + V;
    for (size_t row = blockIdx.y * (size_t)blockDim.y + threadIdx.y; row < rows; row += stride) {
        const T *in = x + row * w;
        int4 pack;
        T *e = reinterpret_cast<T *>(&pack);
        if (S == 2) {
            // V / 2 inputs, each twice: one 8-byte load, the picks fixed when compiling.
            uint2 half = *reinterpret_cast<const uint2 *>(in + x0 / 2);
            const T *h = reinterpret_cast<const T *>(&half);
#pragma unroll
            for (int j = 0; j < V; j++) e[j] = h[j / 2];
        } else {
            int4 a = *reinterpret_cast<const int4 *>(in + base);
            int4 b = two ? *reinterpret_cast<const int4 *>(in + base + V) : a;
            int k = first - base, r = x0 - first * s;  // element k of a:b, copy r of its s
#pragma unroll
            for (int j = 0; j < V; j++) {
                e[j] = k < V ? pack_element<T>(a, k) : pack_element<T>(b, k - V);
                if (++r == s) {
                    r = 0;
                    k++;
                }
            }
        }
        int4 *out = reinterpret_cast<int4 *>(y + row * s * ow + x0);  // output row s * (plane * h + iy)
        for (int r = 0; r < s; r++) out[r * ow / V] = pack;
    }
}
#line 458 "chapters/04-upsample.md"
// f5: channels last, a thread per 16-byte pack of an output row: the pack of its source
// pixel, loaded once per input row and stored in the output rows that copy that row.
// x: the packs of an output row (ow pixels of c channels); y: input rows (image * h + iy),
// with the grid's height as the stride.
template <typename T>
__global__ void upsample_nhwc(T *y, const T *x, int h, int w, int c, int oh, int ow, size_t rows)
{
    int per_pixel = c / (16 / (int)sizeof(T));  // packs per pixel
    int k = blockIdx.x * blockDim.x + threadIdx.x, row_packs = ow * per_pixel;
    if (k >= row_packs) return;
    int ox = k / per_pixel, q = k - ox * per_pixel;
    size_t in_col = (size_t)nearest_source(ox, w, ow) * per_pixel + q;
    const int4 *in = reinterpret_cast<const int4 *>(x);
    int4 *out = reinterpret_cast<int4 *>(y);
    for (size_t row = blockIdx.y; row < rows; row += gridDim.y) {
        size_t image = row / h;
        int iy = (int)(row - image * h), first, last;
        nearest_targets(iy, h, oh, &first, &last);
        if (first == last) continue;  // an output smaller than the input skips this row
        int4 pack = in[row * w * per_pixel + in_col];
        for (int oy = first; oy < last; oy++) out[(image * oh + oy) * row_packs + k] = pack;
    }
}
#line 527 "chapters/04-upsample.md"
// b0: a thread per element of dy, one atomicAdd in the element type into its source.
template <typename T>
__global__ void upsample_b0(T *dx, const T *dy, int h, int w, int oh, int ow, size_t out_count)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= out_count) return;
    atomicAdd(dx + source_element(i, h, w, oh, ow), dy[i]);
}
#line 569 "chapters/04-upsample.md"
// Adds two adjacent values into dx[0] and dx[1] (dx 4-byte aligned in the half types).
__device__ inline void atomic_add_pair(float *dx, float a, float b)
{
    atomicAdd(dx, a);
    atomicAdd(dx + 1, b);
}
__device__ inline void atomic_add_pair(__half *dx, float a, float b)
{
    atomicAdd(reinterpret_cast<__half2 *>(dx), __floats2half2_rn(a, b));
}
__device__ inline void atomic_add_pair(__nv_bfloat16 *dx, float a, float b)
{
    atomicAdd(reinterpret_cast<__nv_bfloat162 *>(dx), __floats2bfloat162_rn(a, b));
}

// b1, scale 2: a thread per 4 elements of a dy row, summed in pairs in float and added
// into 2 elements of dx with one paired atomic. W is even.
template <typename T>
__global__ void upsample_b1(T *dx, const T *dy, int w, size_t quads)
{
    size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (k >= quads) return;
    size_t i = 4 * k;           // the first of the 4 elements of dy
    int ox = (int)(i % (2 * (size_t)w));
    size_t orow = i / (2 * (size_t)w);  // plane * oh + oy
    const T *d = dy + i;
    float a = to_float(d[0]) + to_float(d[1]), b = to_float(d[2]) + to_float(d[3]);
    atomic_add_pair(dx + (orow / 2) * w + ox / 2, a, b);  // dx row orow / 2 = plane * h + oy / 2
}
#line 660 "chapters/04-upsample.md"
// b2, scale 2: a thread per 2 packs of a dy row: their pairs summed in float, rounded
// to T and added into one pack of dx with a 16-byte vector reduction. W is whole packs.
template <typename T>
__global__ void upsample_b2(T *dx, const T *dy, int w, size_t dx_packs_per_row, size_t items)
{
    const int V = 16 / sizeof(T);
    size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (k >= items) return;
    size_t q = k % dx_packs_per_row, orow = k / dx_packs_per_row;  // orow = plane * oh + oy
    const int4 *d = reinterpret_cast<const int4 *>(dy + orow * 2 * (size_t)w) + 2 * q;
    int4 a = d[0], b = d[1];
    const T *ea = reinterpret_cast<const T *>(&a), *eb = reinterpret_cast<const T *>(&b);
    int4 sum;
    T *es = reinterpret_cast<T *>(&sum);
#pragma unroll
    for (int j = 0; j < V / 2; j++) {
        es[j] = from_float<T>(to_float(ea[2 * j]) + to_float(ea[2 * j + 1]));
        es[V / 2 + j] = from_float<T>(to_float(eb[2 * j]) + to_float(eb[2 * j + 1]));
    }
    red_add_pack(dx + (orow / 2) * w + q * V, sum);
}
#line 720 "chapters/04-upsample.md"
// b3: a thread per element of dx, summing the dy of its outputs in float; any size.
template <typename T>
__global__ void upsample_b3(T *dx, const T *dy, int h, int w, int oh, int ow, size_t in_count)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= in_count) return;
    int ix = (int)(i % w);
    size_t rest = i / w;
    int iy = (int)(rest % h);
    size_t plane = rest / h;
    int y0, y1, x0, x1;
    nearest_targets(iy, h, oh, &y0, &y1);
    nearest_targets(ix, w, ow, &x0, &x1);
    const T *d = dy + plane * oh * (size_t)ow;
    float sum = 0.0f;
    for (int oy = y0; oy < y1; oy++)
        for (int ox = x0; ox < x1; ox++) sum += to_float(d[(size_t)oy * ow + ox]);
    dx[i] = from_float<T>(sum);
}
#line 772 "chapters/04-upsample.md"
// b4, scale 2: a thread per 16-byte pack of dx: 2 packs from each of its 2 dy rows,
// each 2 x 2 block summed in float, one pack stored. W is whole packs.
template <typename T>
__global__ void upsample_b4(T *dx, const T *dy, int w, size_t dx_packs)
{
    const int V = 16 / sizeof(T);
    size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (k >= dx_packs) return;
    size_t i = k * V;  // the pack's first element of dx
    int ix = (int)(i % w);
    size_t row = i / w;  // plane * h + iy: its dy rows are 2 row and 2 row + 1
    const T *d0 = dy + 2 * row * (2 * (size_t)w) + 2 * (size_t)ix, *d1 = d0 + 2 * (size_t)w;
    int4 r0[2] = {reinterpret_cast<const int4 *>(d0)[0], reinterpret_cast<const int4 *>(d0)[1]};
    int4 r1[2] = {reinterpret_cast<const int4 *>(d1)[0], reinterpret_cast<const int4 *>(d1)[1]};
    const T *a = reinterpret_cast<const T *>(r0), *b = reinterpret_cast<const T *>(r1);
    int4 out;
    T *e = reinterpret_cast<T *>(&out);
#pragma unroll
    for (int j = 0; j < V; j++)
        e[j] = from_float<T>((to_float(a[2 * j]) + to_float(a[2 * j + 1])) + (to_float(b[2 * j]) + to_float(b[2 * j + 1])));
    reinterpret_cast<int4 *>(dx)[k] = out;
}
#line 32 "chapters/04-upsample.md"
// <<upsample-launchers>>
#line 145 "chapters/04-upsample.md"
enum { THREADS = 256 };

static unsigned blocks_for(size_t items) { return (unsigned)((items + THREADS - 1) / THREADS); }

// f0, f5, b0 and b3 take every size.
static const char *any_size(const Problem *p)
{
    (void)p;
    return NULL;
}

template <typename T>
static void launch_f0(Problem *p)
{
    p->pass = FWD;
    p->layout = NCHW;
    upsample_f0<T><<<blocks_for(p->out_count), THREADS>>>((T *)p->y, (const T *)p->x, p->h, p->w, p->oh, p->ow,
                                                          p->out_count);
    CHECK_LAUNCH();
}
#line 203 "chapters/04-upsample.md"
static const char *no_whole_scale(const Problem *p)
{
    return p->s ? NULL : "an output size that is not a whole multiple of the input";
}

template <typename T>
static void launch_f1(Problem *p)
{
    p->pass = FWD;
    p->layout = NCHW;
    upsample_f1<T><<<blocks_for(p->in_count), THREADS>>>((T *)p->y, (const T *)p->x, p->h, p->w, p->s,
                                                         p->in_count);
    CHECK_LAUNCH();
}
#line 324 "chapters/04-upsample.md"
// The packed kernels need rows of whole 16-byte packs (the arrays start on 256 bytes).
static const char *no_packed_rows(const Problem *p)
{
    if (!p->s) return no_whole_scale(p);
    return p->w % (int)(16 / dtype_bytes(p->dtype)) ? "rows that are not whole 16-byte packs" : NULL;
}

// The packed kernels' launch: blocks of THREADS, as wide as the packs of an output row
// (a power of two, at most THREADS) and as tall as that leaves, so that short rows still
// fill whole warps; a block's row for every input row, or with `waves` only as many
// blocks as the GPU holds at once.
template <typename T, int S>
static void launch_packed(Problem *p, bool waves)
{
    p->pass = FWD;
    p->layout = NCHW;
    int row_packs = (int)((size_t)p->ow / (16 / sizeof(T)));
    size_t rows = (size_t)p->n * p->c * p->h;
    unsigned wide = 1;
    while (wide < THREADS && wide < (unsigned)row_packs) wide *= 2;
    dim3 block(wide, THREADS / wide);
    unsigned across = (unsigned)((row_packs + wide - 1) / wide);
    size_t tall = (rows + block.y - 1) / block.y;
    if (waves) {
        static int resident = 0;
        if (!resident) resident = resident_blocks((const void *)upsample_packed<T, S>, THREADS);
        size_t fit = resident / across;
        tall = fit < 1 ? 1 : fit < tall ? fit : tall;
    }
    if (tall > 65535) tall = 65535;
    upsample_packed<T, S><<<dim3(across, (unsigned)tall), block>>>((T *)p->y, (const T *)p->x, p->w, p->s,
                                                                   row_packs, rows);
    CHECK_LAUNCH();
}

template <typename T>
static void launch_f2(Problem *p)
{
    launch_packed<T, 0>(p, false);
}
#line 390 "chapters/04-upsample.md"
static const char *not_scale_2(const Problem *p)
{
    if (no_packed_rows(p)) return no_packed_rows(p);
    return p->s == 2 ? NULL : "a scale other than 2";
}

template <typename T>
static void launch_f3(Problem *p)
{
    launch_packed<T, 2>(p, false);
}
#line 425 "chapters/04-upsample.md"
template <typename T>
static void launch_f4(Problem *p)
{
    launch_packed<T, 2>(p, true);
}
#line 484 "chapters/04-upsample.md"
static const char *no_packed_pixels(const Problem *p)
{
    int v = (int)(16 / dtype_bytes(p->dtype));
    if (p->c % v) return "channels that are not whole 16-byte packs";
    return (size_t)(p->c / v) * p->ow > INT_MAX ? "an output row of more than 2^31 packs" : NULL;
}

template <typename T>
static void launch_f5(Problem *p)
{
    p->pass = FWD;
    p->layout = NHWC;
    int row_packs = p->ow * (p->c / (int)(16 / sizeof(T)));
    size_t rows = (size_t)p->n * p->h;  // input rows
    dim3 grid((row_packs + THREADS - 1) / THREADS, (unsigned)(rows < 65535 ? rows : 65535));
    upsample_nhwc<T><<<grid, THREADS>>>((T *)p->y_nhwc, (const T *)p->x_nhwc, p->h, p->w, p->c, p->oh, p->ow, rows);
    CHECK_LAUNCH();
}
#line 538 "chapters/04-upsample.md"
template <typename T>
static void launch_b0(Problem *p)
{
    p->pass = BWD;
    p->layout = NCHW;
    p->adds_in_type = true;
    p->deterministic = false;
    CUDA_CHECK(cudaMemsetAsync(p->dx, 0, p->in_count * sizeof(T)));
    upsample_b0<T><<<blocks_for(p->out_count), THREADS>>>((T *)p->dx, (const T *)p->dy, p->h, p->w, p->oh, p->ow,
                                                          p->out_count);
    CHECK_LAUNCH();
}
#line 601 "chapters/04-upsample.md"
static const char *not_scale_2_pairs(const Problem *p)
{
    if (p->s != 2) return "a scale other than 2";
    return p->w % 2 ? "an odd width" : NULL;
}

template <typename T>
static void launch_b1(Problem *p)
{
    p->pass = BWD;
    p->layout = NCHW;
    p->adds_in_type = true;
    p->deterministic = false;
    CUDA_CHECK(cudaMemsetAsync(p->dx, 0, p->in_count * sizeof(T)));
    size_t quads = p->out_count / 4;
    upsample_b1<T><<<blocks_for(quads), THREADS>>>((T *)p->dx, (const T *)p->dy, p->w, quads);
    CHECK_LAUNCH();
}
#line 684 "chapters/04-upsample.md"
static const char *no_red_scale_2(const Problem *p)
{
    if (needs_sm90()) return needs_sm90();
    return not_scale_2(p);
}

template <typename T>
static void launch_b2(Problem *p)
{
    p->pass = BWD;
    p->layout = NCHW;
    p->adds_in_type = true;
    p->deterministic = false;
    CUDA_CHECK(cudaMemsetAsync(p->dx, 0, p->in_count * sizeof(T)));
    size_t per_row = p->w / (16 / sizeof(T)), items = (size_t)p->n * p->c * p->oh * per_row;
    upsample_b2<T><<<blocks_for(items), THREADS>>>((T *)p->dx, (const T *)p->dy, p->w, per_row, items);
    CHECK_LAUNCH();
}
#line 742 "chapters/04-upsample.md"
template <typename T>
static void launch_b3(Problem *p)
{
    p->pass = BWD;
    p->layout = NCHW;
    p->adds_in_type = false;
    p->deterministic = true;
    upsample_b3<T><<<blocks_for(p->in_count), THREADS>>>((T *)p->dx, (const T *)p->dy, p->h, p->w, p->oh, p->ow,
                                                         p->in_count);
    CHECK_LAUNCH();
}
#line 797 "chapters/04-upsample.md"
template <typename T>
static void launch_b4(Problem *p)
{
    p->pass = BWD;
    p->layout = NCHW;
    p->adds_in_type = false;
    p->deterministic = true;
    size_t packs = p->in_count / (16 / sizeof(T));
    upsample_b4<T><<<blocks_for(packs), THREADS>>>((T *)p->dx, (const T *)p->dy, p->w, packs);
    CHECK_LAUNCH();
}
#line 33 "chapters/04-upsample.md"
// <<the-upsample-version-table>>
#line 843 "chapters/04-upsample.md"
#define UPSAMPLE_VERSIONS(T, DT)                                                                                   \
    {"f0-per-output", "ours", DT, "forward: one thread per output element, any size", launch_f0<T>, any_size},     \
    {"f1-per-input", "ours", DT, "forward: one thread per input element, its s x s block", launch_f1<T>, no_whole_scale}, \
    {"f2-packed", "ours", DT, "forward: a 16-byte output pack per thread built in registers, stored in s rows", launch_f2<T>, no_packed_rows}, \
    {"f3-scale-2", "ours", DT, "forward: f2 compiled for scale 2", launch_f3<T>, not_scale_2},                    \
    {"f4-waves", "ours", DT, "forward: f3 on whole waves of resident blocks", launch_f4<T>, not_scale_2},         \
    {"f5-nhwc", "ours", DT, "forward, channels last: a 16-byte pack of a pixel per thread, any size", launch_f5<T>, no_packed_pixels}, \
    {"b0-scatter", "ours", DT, "backward: one atomicAdd in the element type per dy element", launch_b0<T>, any_size}, \
    {"b1-scatter-pairs", "ours", DT, "backward, scale 2: pairs summed, one half2/bfloat162 atomic (two float) per 4 dy", launch_b1<T>, not_scale_2_pairs}, \
    {"b2-scatter-red16", "ours", DT, "backward, scale 2: pairs summed, one 16-byte vector red per 2 dy packs", launch_b2<T>, no_red_scale_2}, \
    {"b3-gather", "ours", DT, "backward: one thread per dx element sums its outputs in float, any size", launch_b3<T>, any_size}, \
    {"b4-gather-packed", "ours", DT, "backward, scale 2: one dx pack per thread from 4 dy packs", launch_b4<T>, not_scale_2}

static const Version VERSIONS[] = {
    UPSAMPLE_VERSIONS(float, "f32"),
    UPSAMPLE_VERSIONS(__half, "f16"),
    UPSAMPLE_VERSIONS(__nv_bfloat16, "bf16"),
};
#line 34 "chapters/04-upsample.md"
// <<create-and-check-an-upsample-problem>>
#line 883 "chapters/04-upsample.md"
// ============================================================ problems and checks

// "NxCxHxW:S" or "NxCxHxW:OHxOW". Returns NULL, or what is wrong with the size.
static const char *parse_upsample_size(const char *size, int dims[6], int *scale)
{
    char spec[96];
    snprintf(spec, sizeof spec, "%s", size);
    char *colon = strchr(spec, ':');
    if (!colon) return "NxCxHxW:S (a whole scale) or NxCxHxW:OHxOW, e.g. 16x64x256x256:2";
    *colon = '\0';
    const char *parts[6];
    int count = 0;
    for (char *t = spec; count < 6; count++) {
        parts[count] = t;
        char *x = strchr(t, 'x');
        if (!x) { count++; break; }
        *x = '\0';
        t = x + 1;
    }
    if (count != 4) return "four dimensions NxCxHxW before the colon";
    char *after = colon + 1, *x = strchr(after, 'x');
    if (x) *x = '\0';
    parts[4] = after;
    parts[5] = x ? x + 1 : NULL;
    for (int k = 0; k < 6; k++) {
        if (!parts[k]) continue;
        size_t v = 0;
        // a digit first: parse_count (strtoull) would also take " 2" and "+2"
        if (!isdigit((unsigned char)parts[k][0]) || parse_count(parts[k], &v) || v == 0 || v > (1u << 24))
            return k < 4 ? "dimensions from 1 to 2^24" : x ? "an output size from 1 to 2^24" : "a whole scale from 1 to 16";
        dims[k] = (int)v;
    }
    *scale = 0;
    if (!x) {
        if (dims[4] > 16) return "a whole scale from 1 to 16";
        *scale = dims[4];
        dims[5] = dims[3] * dims[4];
        dims[4] = dims[2] * dims[4];
    } else if (dims[4] % dims[2] == 0 && dims[5] % dims[3] == 0 && dims[4] / dims[2] == dims[5] / dims[3]) {
        *scale = dims[4] / dims[2];
    }
    double in = (double)dims[0] * dims[1] * dims[2] * dims[3], out = (double)dims[0] * dims[1] * dims[4] * dims[5];
    if (in > 0x1p34 || out > 0x1p34) return "at most 2^34 elements in the input and in the output";
    return NULL;
}

static const char *upsample_bad_size(const char *size)
{
    int dims[6], scale;
    return parse_upsample_size(size, dims, &scale);
}

static Problem *upsample_create(const char *dtype, const char *size, uint64_t seed)
{
    int dims[6], scale;
    const char *bad = parse_upsample_size(size, dims, &scale);
    if (bad) usage_error("bad size", size, bad);
    Problem *p = (Problem *)host_alloc(sizeof(Problem), "problem");
    memset(p, 0, sizeof *p);
    p->dtype = parse_dtype(dtype);
    snprintf(p->size, sizeof p->size, "%s", size);
    p->n = dims[0], p->c = dims[1], p->h = dims[2], p->w = dims[3], p->oh = dims[4], p->ow = dims[5];
    p->s = scale;
    p->in_count = (size_t)p->n * p->c * p->h * p->w;
    p->out_count = (size_t)p->n * p->c * p->oh * p->ow;
    p->ref_pass = -1;
    size_t e = dtype_bytes(p->dtype);
    check_fits(size, 3 * (p->in_count + p->out_count) * e + (64u << 20));
    void **in_arrays[3] = {&p->x, &p->x_nhwc, &p->dx}, **out_arrays[3] = {&p->y, &p->y_nhwc, &p->dy};
    for (int k = 0; k < 3; k++) {
        *in_arrays[k] = device_alloc(p->in_count * e, "input-sized array");
        *out_arrays[k] = device_alloc(p->out_count * e, "output-sized array");
    }
    p->hx = (float *)host_alloc(p->in_count * sizeof(float), "input");
    p->hdy = (float *)host_alloc(p->out_count * sizeof(float), "gradient");
    fill_uniform_f32(p->hx, p->in_count, -1.0f, 3.0f, seed);
    fill_uniform_f32(p->hdy, p->out_count, -1.0f, 2.0f, seed + 1);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < p->in_count; i++) p->hx[i] = round_to(p->dtype, p->hx[i]);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < p->out_count; i++) p->hdy[i] = round_to(p->dtype, p->hdy[i]);
    upload(p->x, p->hx, p->in_count, p->dtype);
    upload(p->dy, p->hdy, p->out_count, p->dtype);
    // the channels-last copy of x: element (image, iy, ix, ch) of x_nhwc is x[image][ch][iy][ix]
    float *t = (float *)host_alloc(p->in_count * sizeof(float), "channels-last input");
    size_t hw = (size_t)p->h * p->w;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < p->in_count; i++) {
        size_t ch = i % p->c, pixel = i / p->c, image = pixel / hw;
        t[i] = p->hx[(image * p->c + ch) * hw + pixel % hw];
    }
    upload(p->x_nhwc, t, p->in_count, p->dtype);
    free(t);
    return p;
}

static void upsample_destroy(Problem *p)
{
    void *arrays[6] = {p->x, p->y, p->x_nhwc, p->y_nhwc, p->dy, p->dx};
    for (int k = 0; k < 6; k++) CUDA_CHECK(cudaFree(arrays[k]));
    free(p->hx);
    free(p->hdy);
    free(p->ref);
    free(p->abs_sum);
    free(p->hits);
    free(p);
}

static void upsample_poison(Problem *p)
{
    size_t e = dtype_bytes(p->dtype);
    poison(p->y, p->out_count * e);
    poison(p->y_nhwc, p->out_count * e);
    poison(p->dx, p->in_count * e);
}

// The forward reference is x at each output's source; the backward's is the scatter of
// dy by the same rule (the definition, not nearest_targets), in double, with the sum of
// |dy| and the number of outputs for each input element. One plane per thread.
static void make_reference(Problem *p)
{
    if (p->ref_pass == (int)p->pass) return;
    free(p->ref);
    size_t count = p->pass == FWD ? p->out_count : p->in_count;
    p->ref = (double *)host_alloc(count * sizeof(double), "reference");
    size_t planes = (size_t)p->n * p->c, in_plane = (size_t)p->h * p->w, out_plane = (size_t)p->oh * p->ow;
    if (p->pass == FWD) {
#pragma omp parallel for schedule(static)
        for (size_t pl = 0; pl < planes; pl++)
            for (int oy = 0; oy < p->oh; oy++) {
                const float *src = p->hx + pl * in_plane + (size_t)nearest_source(oy, p->h, p->oh) * p->w;
                double *dst = p->ref + pl * out_plane + (size_t)oy * p->ow;
                for (int ox = 0; ox < p->ow; ox++) dst[ox] = src[nearest_source(ox, p->w, p->ow)];
            }
    } else {
        if (!p->abs_sum) p->abs_sum = (double *)host_alloc(p->in_count * sizeof(double), "reference");
        if (!p->hits) p->hits = (int *)host_alloc(p->in_count * sizeof(int), "reference");
        memset(p->ref, 0, p->in_count * sizeof(double));
        memset(p->abs_sum, 0, p->in_count * sizeof(double));
        memset(p->hits, 0, p->in_count * sizeof(int));
#pragma omp parallel for schedule(static)
        for (size_t pl = 0; pl < planes; pl++)
            for (int oy = 0; oy < p->oh; oy++) {
                size_t row = pl * in_plane + (size_t)nearest_source(oy, p->h, p->oh) * p->w;
                const float *g = p->hdy + pl * out_plane + (size_t)oy * p->ow;
                for (int ox = 0; ox < p->ow; ox++) {
                    size_t i = row + nearest_source(ox, p->w, p->ow);
                    p->ref[i] += g[ox];
                    p->abs_sum[i] += fabs(g[ox]);
                    p->hits[i]++;
                }
            }
    }
    p->ref_pass = p->pass;
}

// The forward is a copy: no arithmetic, and the one rounding allows nothing but equality.
static double copy_bound(const void *ctx, size_t i, double *scale)
{
    const Problem *p = (const Problem *)ctx;
    *scale = fabs(p->ref[i]);
    return error_bound(p->dtype, p->ref[i], 0.0, 0, 0.0);
}

// The backward: a sum of k gradients in float, or k additions in the element type.
static double sum_bound(const void *ctx, size_t i, double *scale)
{
    const Problem *p = (const Problem *)ctx;
    int k = p->hits[i];
    *scale = p->abs_sum[i];
    double arith = 1.01 * (k > 1 ? k - 1 : 0) * 0x1p-24 * *scale;
    return error_bound(p->dtype, p->ref[i], arith, p->adds_in_type ? k : 0, *scale);
}

static CheckResult upsample_check(Problem *p, const char *version)
{
    make_reference(p);
    bool fwd = p->pass == FWD;
    size_t count = fwd ? p->out_count : p->in_count;
    double *got = download(fwd ? (p->layout == NHWC ? p->y_nhwc : p->y) : p->dx, count, p->dtype);
    if (fwd && p->layout == NHWC) {  // back to NCHW order, to compare with ref
        double *nchw = (double *)host_alloc(count * sizeof(double), "output");
        size_t hw = (size_t)p->oh * p->ow;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < count; i++) {
            size_t ch = i % p->c, pixel = i / p->c, image = pixel / hw;
            nchw[(image * p->c + ch) * hw + pixel % hw] = got[i];
        }
        free(got);
        got = nchw;
    }
    CheckResult r = check_elements(version, p->size, got, p->ref, count, fwd ? copy_bound : sum_bound, p, 0);
    free(got);
    if (!fwd && p->deterministic) report_bits(version, p->dtype, p->size, p->dx, count * dtype_bytes(p->dtype));
    return r;
}

// Forward: x read once, y written once. Backward: dy read once, dx written once.
static double upsample_bytes(const Problem *p)
{
    return (double)(p->in_count + p->out_count) * dtype_bytes(p->dtype);
}

// nearest_targets against a brute-force search, and the size parser.
static int upsample_self_test(void)
{
    int passed = 0, failed = 0;
    int bad_pairs = 0;
    for (int in = 1; in <= 40; in++)
        for (int out = 1; out <= 100; out += (out < 20 ? 1 : 7))
            for (int src = 0; src < in; src++) {
                int first, last, bf = out, bl = out;
                nearest_targets(src, in, out, &first, &last);
                for (int o = 0; o < out; o++)
                    if (nearest_source(o, in, out) == src) { if (bf == out) bf = o; bl = o + 1; }
                if (bf == out) bf = bl = first;  // no output copies src: any empty range
                bad_pairs += first != bf || last != bl;
            }
    SELF_TEST(bad_pairs == 0);
    int f, l;
    nearest_targets(255, 256, 512, &f, &l);
    SELF_TEST(f == 510 && l == 512);
    SELF_TEST(nearest_source(39, 17, 40) == 16 && nearest_source(0, 17, 40) == 0);
    int dims[6], scale;
    SELF_TEST(!parse_upsample_size("16x64x256x256:2", dims, &scale) && scale == 2 && dims[4] == 512 && dims[5] == 512);
    SELF_TEST(!parse_upsample_size("2x3x17x13:40x31", dims, &scale) && scale == 0 && dims[4] == 40 && dims[5] == 31);
    SELF_TEST(!parse_upsample_size("1x2x3x4:6x8", dims, &scale) && scale == 2);
    SELF_TEST(parse_upsample_size("2x3x5x7:0", dims, &scale) && parse_upsample_size("2x3x5x7:-2", dims, &scale));
    SELF_TEST(parse_upsample_size("2x3x5x7:2.5", dims, &scale) && parse_upsample_size("2x3x5:2", dims, &scale));
    SELF_TEST(parse_upsample_size("2x3x5x7", dims, &scale) && parse_upsample_size("2x3x5x7x1:2", dims, &scale));
    SELF_TEST(parse_upsample_size("65536x65536x65536x2:2", dims, &scale) != NULL);
    SELF_TEST(parse_upsample_size("1x1x1x1:+2", dims, &scale) && parse_upsample_size("1x 1x1x1:2", dims, &scale));
    printf("upsample: %d passed, %d failed\n", passed, failed);
    return failed;
}
#line 35 "chapters/04-upsample.md"
// <<the-upsample-chapter>>
#line 1121 "chapters/04-upsample.md"
static const char *const DTYPES[] = {"f32", "f16", "bf16"};
static const char *const BENCH_SIZES[] = {"16x64x256x256:2", "1x3x224x224:2", "8x512x64x64:2"};
static const char *const CHECK_SIZES[] = {"1x1x1x1:2", "1x1x1x1:3", "2x3x5x7:2", "2x3x5x7:3", "2x3x17x13:40x31",
                                          "3x5x9x11:2", "2x16x8x24:2", "1x16x8x24:3", "2x16x9x8:19x16",
                                          "1x8x7x9:3x4", "1x3x224x224:2", "2x64x32x32:2"};

static const Chapter UPSAMPLE = {
    "upsample", "nearest-neighbour upsampling, forward and backward, NCHW and NHWC, f32 f16 bf16",
    VERSIONS, sizeof VERSIONS / sizeof VERSIONS[0],
    DTYPES, 3, BENCH_SIZES, sizeof BENCH_SIZES / sizeof BENCH_SIZES[0],
    CHECK_SIZES, sizeof CHECK_SIZES / sizeof CHECK_SIZES[0],
    "copy", NULL, upsample_bad_size,
    upsample_create, upsample_destroy, upsample_poison, upsample_check, upsample_bytes, NULL,
    NULL, upsample_self_test, NULL,
};

int main(int argc, char **argv) { return harness_main(&UPSAMPLE, argc, argv); }
