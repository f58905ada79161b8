#line 19 "chapters/02-elementwise.md"
// elementwise.cu: out = a * b at the speed of memory, and a template for any such op.
#include "../harness/harness.cuh"
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <thrust/execution_policy.h>
#include <thrust/functional.h>
#include <thrust/transform.h>
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
#line 27 "chapters/02-elementwise.md"
// <<the-elementwise-problem>>
#line 64 "chapters/02-elementwise.md"
typedef enum { OP_MUL, OP_SILU, OP_SWIGLU, OP_FMA } Op;

struct Problem {
    DType dtype;
    size_t n;
    size_t offset;      // elements between the allocation and the arrays: 0, or 1 to misalign
    char size[64];
    void *a, *b, *c, *out;  // (n) each, on the device, offset elements into their allocations
    void *base[4];          // the allocations of a, b, c and out
    float *host[3];         // a, b, c as the device sees them (rounded to dtype), on the host
    Op op;              // what the last launch computed: set by each launcher
    double *ref;        // (n) the reference of ref_op, computed when first needed
    Op ref_op;
};
#line 28 "chapters/02-elementwise.md"
// <<elementwise-kernels>>
#line 85 "chapters/02-elementwise.md"
template <typename T>
__global__ void mul_v0(T *out, const T *a, const T *b, size_t n)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) out[i] = from_float<T>(to_float(a[i]) * to_float(b[i]));
}
#line 124 "chapters/02-elementwise.md"
template <typename T>
__global__ void mul_v1(T *out, const T *a, const T *b, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = from_float<T>(to_float(a[i]) * to_float(b[i]));
}
#line 173 "chapters/02-elementwise.md"
// Pack<T>::N elements of T in 16 bytes: one load or store instruction per pack.
template <typename T>
struct alignas(16) Pack {
    static const int N = 16 / sizeof(T);
    T v[16 / sizeof(T)];
};

// Elements before p reaches a 16-byte boundary (0 when it is on one).
template <typename T>
__host__ __device__ inline size_t head_length(const T *p, size_t n)
{
    size_t misalign = (reinterpret_cast<uintptr_t>(p) % 16) / sizeof(T);
    size_t head = misalign ? 16 / sizeof(T) - misalign : 0;
    return head < n ? head : n;
}

template <typename T>
__global__ void mul_v2(T *out, const T *a, const T *b, size_t n)
{
    const int P = Pack<T>::N;
    size_t tid = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    size_t head = head_length(out, n);          // the launcher checked a, b share out's alignment
    size_t packs = (n - head) / P;
    if (tid < head) out[tid] = from_float<T>(to_float(a[tid]) * to_float(b[tid]));
    const Pack<T> *a4 = reinterpret_cast<const Pack<T> *>(a + head);
    const Pack<T> *b4 = reinterpret_cast<const Pack<T> *>(b + head);
    Pack<T> *o4 = reinterpret_cast<Pack<T> *>(out + head);
    for (size_t k = tid; k < packs; k += stride) {
        Pack<T> x = a4[k], y = b4[k], z;
#pragma unroll
        for (int j = 0; j < P; j++) z.v[j] = from_float<T>(to_float(x.v[j]) * to_float(y.v[j]));
        o4[k] = z;
    }
    for (size_t i = head + packs * P + tid; i < n; i += stride)
        out[i] = from_float<T>(to_float(a[i]) * to_float(b[i]));
}
#line 295 "chapters/02-elementwise.md"
// An op is a struct with ARITY (1, 2 or 3) and a device function of that many floats.
struct MulFn {
    static const int ARITY = 2;
    __device__ float operator()(const float *x) const { return x[0] * x[1]; }
};
struct SiluFn {  // unary: x * sigmoid(x)
    static const int ARITY = 1;
    __device__ float operator()(const float *x) const { return x[0] / (1.0f + __expf(-x[0])); }
};
struct SwigluFn {  // binary: silu(gate) * up, the activation of LLaMA's MLP
    static const int ARITY = 2;
    __device__ float operator()(const float *x) const { return x[0] / (1.0f + __expf(-x[0])) * x[1]; }
};
struct FmaFn {  // ternary: a * b + c
    static const int ARITY = 3;
    __device__ float operator()(const float *x) const { return fmaf(x[0], x[1], x[2]); }
};

template <typename T, int ARITY>
struct Inputs {
    const T *p[ARITY];
};

// One element at index i: load ARITY inputs, apply f, store.
template <typename T, typename F>
__device__ inline void apply_one(T *out, Inputs<T, F::ARITY> in, size_t i, F f)
{
    float x[F::ARITY];
#pragma unroll
    for (int k = 0; k < F::ARITY; k++) x[k] = to_float(in.p[k][i]);
    out[i] = from_float<T>(f(x));
}

template <typename T, typename F>
__global__ void apply_packed(T *out, Inputs<T, F::ARITY> in, size_t n, F f)
{
    const int P = Pack<T>::N;
    size_t tid = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    size_t head = head_length(out, n);
    size_t packs = (n - head) / P;
    if (tid < head) apply_one(out, in, tid, f);
    Pack<T> *o4 = reinterpret_cast<Pack<T> *>(out + head);
    for (size_t k = tid; k < packs; k += stride) {
        Pack<T> x[F::ARITY], z;
#pragma unroll
        for (int a = 0; a < F::ARITY; a++) x[a] = reinterpret_cast<const Pack<T> *>(in.p[a] + head)[k];
#pragma unroll
        for (int j = 0; j < P; j++) {
            float v[F::ARITY];
#pragma unroll
            for (int a = 0; a < F::ARITY; a++) v[a] = to_float(x[a].v[j]);
            z.v[j] = from_float<T>(f(v));
        }
        o4[k] = z;
    }
    for (size_t i = head + packs * P + tid; i < n; i += stride) apply_one(out, in, i, f);
}
#line 400 "chapters/02-elementwise.md"
// ============================================================ v5: half2 arithmetic
__device__ inline __half2 mul2(__half2 x, __half2 y) { return __hmul2(x, y); }
__device__ inline __nv_bfloat162 mul2(__nv_bfloat162 x, __nv_bfloat162 y) { return __hmul2(x, y); }

// T2 is __half2 or __nv_bfloat162: the multiply happens on pairs, in half precision.
// It rounds once, like the float path, since the product of two 8- or 11-bit
// significands is exact in float: the results are bit for bit the same.
template <typename T, typename T2>
__global__ void mul_v5(T *out, const T *a, const T *b, size_t n)
{
    const int P = Pack<T>::N;
    size_t tid = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    size_t head = head_length(out, n);
    size_t packs = (n - head) / P;
    if (tid < head) out[tid] = from_float<T>(to_float(a[tid]) * to_float(b[tid]));
    const Pack<T> *a4 = reinterpret_cast<const Pack<T> *>(a + head);
    const Pack<T> *b4 = reinterpret_cast<const Pack<T> *>(b + head);
    Pack<T> *o4 = reinterpret_cast<Pack<T> *>(out + head);
    for (size_t k = tid; k < packs; k += stride) {
        Pack<T> x = a4[k], y = b4[k], z;
#pragma unroll
        for (int j = 0; j < P; j += 2) {
            T2 r = mul2(*reinterpret_cast<const T2 *>(&x.v[j]), *reinterpret_cast<const T2 *>(&y.v[j]));
            *reinterpret_cast<T2 *>(&z.v[j]) = r;
        }
        o4[k] = z;
    }
    for (size_t i = head + packs * P + tid; i < n; i += stride)
        out[i] = from_float<T>(to_float(a[i]) * to_float(b[i]));
}
#line 457 "chapters/02-elementwise.md"
// ============================================================ v6: two packs per thread
// Each thread loads both packs of a and of b before it computes or stores anything:
// twice v2's bytes in flight per thread.
template <typename T>
__global__ void mul_v6(T *out, const T *a, const T *b, size_t n)
{
    const int P = Pack<T>::N;
    size_t tid = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    size_t head = head_length(out, n);
    size_t packs = (n - head) / P;
    if (tid < head) out[tid] = from_float<T>(to_float(a[tid]) * to_float(b[tid]));
    const Pack<T> *a4 = reinterpret_cast<const Pack<T> *>(a + head);
    const Pack<T> *b4 = reinterpret_cast<const Pack<T> *>(b + head);
    Pack<T> *o4 = reinterpret_cast<Pack<T> *>(out + head);
    for (size_t k = tid; k < packs; k += 2 * stride) {
        bool second = k + stride < packs;
        Pack<T> x0 = a4[k], y0 = b4[k], x1, y1, z;
        if (second) { x1 = a4[k + stride]; y1 = b4[k + stride]; }
#pragma unroll
        for (int j = 0; j < P; j++) z.v[j] = from_float<T>(to_float(x0.v[j]) * to_float(y0.v[j]));
        o4[k] = z;
        if (second) {
#pragma unroll
            for (int j = 0; j < P; j++) z.v[j] = from_float<T>(to_float(x1.v[j]) * to_float(y1.v[j]));
            o4[k + stride] = z;
        }
    }
    for (size_t i = head + packs * P + tid; i < n; i += stride)
        out[i] = from_float<T>(to_float(a[i]) * to_float(b[i]));
}
#line 29 "chapters/02-elementwise.md"
// <<elementwise-launchers>>
#line 94 "chapters/02-elementwise.md"
enum { THREADS = 256 };

static unsigned blocks_for(size_t items) { return (unsigned)((items + THREADS - 1) / THREADS); }

template <typename T>
static void launch_v0(Problem *p)
{
    p->op = OP_MUL;
    mul_v0<T><<<blocks_for(p->n), THREADS>>>((T *)p->out, (const T *)p->a, (const T *)p->b, p->n);
    CHECK_LAUNCH();
}
#line 133 "chapters/02-elementwise.md"
template <typename T>
static void launch_v1(Problem *p)
{
    p->op = OP_MUL;
    unsigned grid = blocks_for(p->n) < 4096 ? blocks_for(p->n) : 4096;
    mul_v1<T><<<grid, THREADS>>>((T *)p->out, (const T *)p->a, (const T *)p->b, p->n);
    CHECK_LAUNCH();
}
#line 213 "chapters/02-elementwise.md"
// The packed kernels read a and b at out's pack boundaries: all three must be equally
// far from a 16-byte boundary.
static const char *misaligned(const Problem *p)
{
    uintptr_t o = (uintptr_t)p->out % 16;
    if ((uintptr_t)p->a % 16 != o || (uintptr_t)p->b % 16 != o)
        return "inputs and output are not equally aligned";
    return NULL;
}

template <typename T>
static void launch_v2(Problem *p)
{
    p->op = OP_MUL;
    mul_v2<T><<<blocks_for(p->n / Pack<T>::N + 1), THREADS>>>((T *)p->out, (const T *)p->a, (const T *)p->b, p->n);
    CHECK_LAUNCH();
}
#line 254 "chapters/02-elementwise.md"
// Whole waves: one work item per thread, but at most 32 waves of resident blocks
// (the rule OneFlow's elementwise template uses), so no launch ends with a sliver of a wave.
static unsigned waves_for(size_t items, const void *kernel)
{
    static int resident = 0;
    if (!resident) resident = resident_blocks(kernel, THREADS);
    size_t blocks = blocks_for(items);
    size_t cap = 32 * (size_t)resident;
    return (unsigned)(blocks < cap ? (blocks ? blocks : 1) : cap);
}

template <typename T>
static void launch_v3(Problem *p)
{
    p->op = OP_MUL;
    unsigned grid = waves_for(p->n / Pack<T>::N + 1, (const void *)mul_v2<T>);
    mul_v2<T><<<grid, THREADS>>>((T *)p->out, (const T *)p->a, (const T *)p->b, p->n);
    CHECK_LAUNCH();
}
#line 356 "chapters/02-elementwise.md"
template <typename T, typename F>
static void launch_template(Problem *p, Op op)
{
    p->op = op;
    Inputs<T, F::ARITY> in;
    const void *arrays[3] = {p->a, p->b, p->c};
    for (int k = 0; k < F::ARITY; k++) in.p[k] = (const T *)arrays[k];
    apply_packed<T, F><<<blocks_for(p->n / Pack<T>::N + 1), THREADS>>>((T *)p->out, in, p->n, F());
    CHECK_LAUNCH();
}

template <typename T> static void launch_v4(Problem *p) { launch_template<T, MulFn>(p, OP_MUL); }
template <typename T> static void launch_silu(Problem *p) { launch_template<T, SiluFn>(p, OP_SILU); }
template <typename T> static void launch_swiglu(Problem *p) { launch_template<T, SwigluFn>(p, OP_SWIGLU); }
template <typename T> static void launch_fma(Problem *p) { launch_template<T, FmaFn>(p, OP_FMA); }
#line 434 "chapters/02-elementwise.md"
template <typename T, typename T2>
static void launch_v5(Problem *p)
{
    p->op = OP_MUL;
    unsigned grid = waves_for(p->n / Pack<T>::N + 1, (const void *)mul_v5<T, T2>);
    mul_v5<T, T2><<<grid, THREADS>>>((T *)p->out, (const T *)p->a, (const T *)p->b, p->n);
    CHECK_LAUNCH();
}
#line 491 "chapters/02-elementwise.md"
template <typename T>
static void launch_v6(Problem *p)
{
    p->op = OP_MUL;
    mul_v6<T><<<blocks_for(p->n / Pack<T>::N / 2 + 1), THREADS>>>((T *)p->out, (const T *)p->a, (const T *)p->b, p->n);
    CHECK_LAUNCH();
}
#line 512 "chapters/02-elementwise.md"
template <typename T>
static void launch_thrust(Problem *p)
{
    p->op = OP_MUL;
    thrust::transform(thrust::device, (const T *)p->a, (const T *)p->a + p->n, (const T *)p->b,
                      (T *)p->out, thrust::multiplies<T>());
    CHECK_LAUNCH();
}
#line 30 "chapters/02-elementwise.md"
// <<the-elementwise-version-table>>
#line 528 "chapters/02-elementwise.md"
#define MUL_VERSIONS(T, DT)                                                                              \
    {"v0-one-per-thread", "ours", DT, "one element per thread", launch_v0<T>, NULL},                    \
    {"v1-grid-stride", "ours", DT, "grid-stride loop, at most 4096 blocks", launch_v1<T>, NULL},        \
    {"v2-packs", "ours", DT, "16-byte packs, scalar head and tail", launch_v2<T>, misaligned},          \
    {"v3-waves", "ours", DT, "v2 on a grid of whole waves (at most 32)", launch_v3<T>, misaligned},     \
    {"v4-template", "ours", DT, "the generic packed template (v2's grid) with a multiply functor", launch_v4<T>, misaligned}, \
    {"v6-two-packs", "ours", DT, "v2 with two packs per thread, loads first", launch_v6<T>, misaligned}, \
    {"thrust", "peer", DT, "thrust::transform with thrust::multiplies", launch_thrust<T>, NULL}

#define TEMPLATE_OPS(T, DT)                                                                              \
    {"silu-template", "ours", DT, "unary: x * sigmoid(x), with the template", launch_silu<T>, misaligned}, \
    {"swiglu-template", "ours", DT, "binary: silu(a) * b, with the template", launch_swiglu<T>, misaligned}, \
    {"fma-template", "ours", DT, "ternary: a * b + c, with the template", launch_fma<T>, misaligned}

static const Version VERSIONS[] = {
    MUL_VERSIONS(float, "f32"),
    TEMPLATE_OPS(float, "f32"),
    MUL_VERSIONS(__half, "f16"),
    {"v5-half2", "ours", "f16", "v3 with __hmul2 on half2 pairs", launch_v5<__half, __half2>, misaligned},
    TEMPLATE_OPS(__half, "f16"),
    MUL_VERSIONS(__nv_bfloat16, "bf16"),
    {"v5-half2", "ours", "bf16", "v3 with __hmul2 on bfloat162 pairs", launch_v5<__nv_bfloat16, __nv_bfloat162>, misaligned},
    TEMPLATE_OPS(__nv_bfloat16, "bf16"),
};
#line 31 "chapters/02-elementwise.md"
// <<create-and-check-an-elementwise-problem>>
#line 576 "chapters/02-elementwise.md"
// ============================================================ problems and checks

static const char *elementwise_bad_size(const char *size)
{
    char count[64];
    return split_offset(size, count, sizeof count) < 0 ? "COUNT or COUNT@1, COUNT as 1000003, 2^25, 2^25+7" : NULL;
}

static Problem *elementwise_create(const char *dtype, const char *size, uint64_t seed)
{
    char count[64];
    int offset = split_offset(size, count, sizeof count);
    if (offset < 0) usage_error("bad size", size, elementwise_bad_size(size));
    Problem *p = (Problem *)host_alloc(sizeof(Problem), "problem");
    memset(p, 0, sizeof *p);
    p->dtype = parse_dtype(dtype);
    p->n = count_of(count);
    p->offset = (size_t)offset;
    snprintf(p->size, sizeof p->size, "%s", size);
    size_t e = dtype_bytes(p->dtype);
    void **arrays[4] = {&p->a, &p->b, &p->c, &p->out};
    for (int k = 0; k < 4; k++) {
        p->base[k] = device_alloc((p->n + 16) * e, "array");
        *arrays[k] = (unsigned char *)p->base[k] + offset * e;
    }
    // a is the gate of silu and swiglu: both signs; b and c positive; none zero-mean
    const float lo[3] = {-1.0f, 0.5f, 0.5f}, hi[3] = {3.0f, 2.0f, 2.0f};
    for (int k = 0; k < 3; k++) {
        p->host[k] = (float *)host_alloc(p->n * sizeof(float), "input");
        fill_uniform_f32(p->host[k], p->n, lo[k], hi[k], seed + k);
        for (size_t i = 0; i < p->n; i++) p->host[k][i] = round_to(p->dtype, p->host[k][i]);
        upload(*arrays[k], p->host[k], p->n, p->dtype);
    }
    return p;
}

static void elementwise_destroy(Problem *p)
{
    for (int k = 0; k < 4; k++) CUDA_CHECK(cudaFree(p->base[k]));
    for (int k = 0; k < 3; k++) free(p->host[k]);
    free(p->ref);
    free(p);
}

static void elementwise_poison(Problem *p) { poison(p->out, p->n * dtype_bytes(p->dtype)); }

static int op_arity(Op op) { return op == OP_SILU ? 1 : op == OP_FMA ? 3 : 2; }

static double reference(Op op, double a, double b, double c)
{
    switch (op) {
    case OP_MUL: return a * b;
    case OP_SILU: return a / (1.0 + exp(-a));
    case OP_SWIGLU: return a / (1.0 + exp(-a)) * b;
    default: return a * b + c;
    }
}

// The float arithmetic's error before the one rounding to the element type, which the
// harness adds: none for the multiply, the sum's rounding for the multiply-add, eight
// float ulps for silu's fast exponential and what follows it (see the chapter).
static Tolerance tolerance(DType t, Op op)
{
    double rtol = op == OP_MUL ? 0.0 : op == OP_FMA ? 0x1p-24 : 0x1p-20;
    Tolerance tol = {t, 0.0, rtol};
    return tol;
}

static CheckResult elementwise_check(Problem *p, const char *version)
{
    size_t n = p->n;
    double *got = download(p->out, n, p->dtype);
    if (!p->ref || p->ref_op != p->op) {  // versions of one op share their reference
        if (!p->ref) p->ref = (double *)host_alloc(n * sizeof(double), "reference");
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) p->ref[i] = reference(p->op, p->host[0][i], p->host[1][i], p->host[2][i]);
        p->ref_op = p->op;
    }
    CheckResult r = check_close(version, p->size, got, p->ref, n, tolerance(p->dtype, p->op));
    free(got);
    return r;
}

// Each input read once, the output written once.
static double elementwise_bytes(const Problem *p)
{
    return (op_arity(p->op) + 1.0) * p->n * dtype_bytes(p->dtype);
}

// The operations per element, for the roofline, an exponential or a division counting one:
// a b, 1; a b + c, 2; SiLU a / (1 + e^-a), 4 (the negation folded into the exponential's
// argument); SwiGLU SiLU(a) b, 5.
static double elementwise_flops(const Problem *p)
{
    const double per = p->op == OP_MUL ? 1 : p->op == OP_FMA ? 2 : p->op == OP_SILU ? 4 : 5;
    return per * p->n;
}
#line 32 "chapters/02-elementwise.md"
// <<the-elementwise-chapter>>
#line 676 "chapters/02-elementwise.md"
static const char *const DTYPES[] = {"f32", "f16", "bf16"};
static const char *const BENCH_SIZES[] = {"2^20", "2^24", "2^25", "2^28"};
static const char *const CHECK_SIZES[] = {"1", "7", "1000003", "1000003@1", "7@1", "2^20", "2^24+3@1", "2^25"};

static const Chapter ELEMENTWISE = {
    "elementwise", "out = a * b and other elementwise ops, f32 f16 bf16",
    VERSIONS, sizeof VERSIONS / sizeof VERSIONS[0],
    DTYPES, 3, BENCH_SIZES, 4, CHECK_SIZES, 8,
    "copy", "thrust", elementwise_bad_size,
    elementwise_create, elementwise_destroy, elementwise_poison, elementwise_check, elementwise_bytes, elementwise_flops,
    NULL, NULL, NULL,
};

int main(int argc, char **argv) { return harness_main(&ELEMENTWISE, argc, argv); }
