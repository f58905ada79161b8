#line 39 "chapters/09-attention.md"
// attention.cu: exact attention O = softmax(Q K^T scale) V, forward, with the
// log-sum-exp of every row: the three-kernel form, and flash attention on the SIMT units
// and on the tensor cores.
#include "../harness/harness.cuh"
#include "../tensorcore/mma.cuh"
#include "../tensorcore/hopper.cuh"
#include <type_traits>
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
#line 49 "chapters/09-attention.md"
// <<what-the-wgmma-kernels-keep-between-launches>>
#line 137 "chapters/09-attention.md"
typedef struct {
    bool mapped;             // the tensor maps of q, k, v, made at the first launch; q in boxes of 64 rows
    CUtensorMap mq, mk, mv;
    int *next_item;          // device: the dynamic schedule's counter of items taken, 0 between launches
} WgmmaState;
#line 50 "chapters/09-attention.md"
// <<the-attention-problem>>
#line 108 "chapters/09-attention.md"
struct Problem {
    DType dtype;
    char size[64];
    int b, h, sq, sk, d;  // batch, heads, queries, keys, head dimension (64 or 128)
    bool causal;          // query i sees key j iff j <= i + sk - sq
    float scale;          // 1 / sqrt(d), rounded to float once
    void *q, *k, *v, *o;  // device, element type: (b, h, sq, d), (b, h, sk, d) twice, (b, h, sq, d)
    float *lse;           // device: (b, h, sq), log of each row's sum of exp(scaled scores)
    float *hq, *hk, *hv;  // host copies of q, k, v as the device sees them (rounded)
    float *scores;        // a0's S, then P: (b, h, sq, sk) floats, allocated at its first launch
    WgmmaState wgmma;     // a4 to a9's tensor maps of q, k, v and their schedule's counter
    // the reference, computed at the first check: each element of O, the float arithmetic's
    // error bound for it (before the final rounding), the scale its relative error is
    // reported against; each row's LSE and its bound; times ref_factor (2 against the
    // GPU's float32 reference, whose own error has the same bound)
    double *ref_o, *arith_o, *scale_o, *ref_lse, *arith_lse;
    double ref_factor;
};

static size_t rows_of(const Problem *p) { return (size_t)p->b * p->h * p->sq; }
#line 51 "chapters/09-attention.md"
// <<which-keys-a-query-sees>>
#line 148 "chapters/09-attention.md"
// Query i sees keys 0 .. keys_seen - 1: all sk of them, or, causal, those with
// j <= i + sk - sq (the mask aligned to the bottom right), none when that is negative.
__host__ __device__ inline int keys_seen(int i, int sq, int sk, bool causal)
{
    if (!causal) return sk;
    int end = i + sk - sq + 1;
    return end < 0 ? 0 : end;
}
#line 52 "chapters/09-attention.md"
// <<how-far-a-result-may-be-from-exact>>
#line 230 "chapters/09-attention.md"
// The parts of the error bound, in units of u = 2^-24 where they are relative, written once
// for the double reference on the CPU (R = double) and the float one on the GPU (R = float).
template <typename R> __host__ __device__ inline R magnitude(R x) { return x < 0 ? -x : x; }

// How far a kernel's running maximum may stay below its row's maximum: MAX_LAG_LOG2 in
// the base-2 domain (p up to 2^8), which is less than MAX_LAG in natural units; the bound
// takes |m| + MAX_LAG for |m|, and log l + MAX_LAG for log l.
constexpr float MAX_LAG_LOG2 = 8.0f;
constexpr double MAX_LAG = 6.0;  // > 8 ln 2

// Delta_j: the relative error of one computed p_j = exp(x_j - m), in units of u: the
// score's dot product and scaling, (d + 2) a_j; the exponential's argument, 4 (|x_j| + |m|);
// the exponential itself, 4.
template <typename R> __host__ __device__ inline R score_budget(R a, R x, R m, int d)
{
    return (d + 2) * a + 4 * (magnitude(x) + magnitude(m)) + 4;
}

// rho_j: the most that rounding p (in [0, 1]) to the element type moves it, at a gap up
// to twice the one at p: 2 max(p 2^-t, 2^(emin - t)), given rel = 2^-t and floor = 2^(emin - t).
template <typename R> __host__ __device__ inline R p_rounding(R p, R rel, R floor)
{
    R gap = p * rel;
    return 2 * (gap > floor ? gap : floor);
}

// The bound on element c of a row's output, from its sums: E_c, A_c (both already divided
// by l), the output itself, F and gamma.
template <typename R> __host__ __device__ inline R output_bound(R e, R a, R o, R f, R gamma)
{
    const R u = (R)0x1p-24;
    return e + gamma * a + magnitude(o) * (f + gamma + u);
}

// The bound on a row's log-sum-exp m + log l.
template <typename R> __host__ __device__ inline R lse_bound(R f, R gamma, R log_l, R lse, R m)
{
    const R u = (R)0x1p-24;
    return f + gamma + (6 + 6 * log_l + magnitude(lse) + magnitude(m)) * u;
}

// gamma: 2 sk + 4 roundings of every term of the sums.
__host__ __device__ inline double sums_gamma(int sk) { return (2.0 * sk + 4.0) * 0x1p-24; }

// The element type's rel = 2^-t and floor = 2^(emin - t) for p_rounding.
static inline void p_rounding_of(DType t, double *rel, double *floor)
{
    int digits = t == F16 ? 11 : 8, min_exp = t == F16 ? -14 : -126;
    *rel = ldexp(1.0, -digits);
    // and at least float's smallest normal, 2^-126: exponentials below it may be flushed to 0
    *floor = fmax(ldexp(1.0, min_exp - digits), ldexp(1.0, -126));
}
#line 53 "chapters/09-attention.md"
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
#line 54 "chapters/09-attention.md"
// <<attention-kernels>>
#line 319 "chapters/09-attention.md"
// a0, first kernel: S = Q K^T scale, 32 x 32 scores per block (a score per thread), d in
// steps of 32 through shared memory; the masked scores are -inf, and a tile that is masked
// entirely is written without being computed. Grid: (sk / 32, sq / 32, b h).
template <typename T>
__global__ void attention_scores(float *S, const T *Q, const T *K, int sq, int sk, int d, float scale, bool causal)
{
    __shared__ float Qs[32][33], Ks[32][33];  // (queries, d), (keys, d); padded against bank conflicts
    const int tx = threadIdx.x, ty = threadIdx.y;
    const size_t bh = blockIdx.z;
    const int i = blockIdx.y * 32 + ty, j = blockIdx.x * 32 + tx, key0 = blockIdx.x * 32;
    Q += bh * sq * d;  // this head's (sq, d)
    K += bh * sk * d;  // (sk, d)
    S += bh * sq * sk; // (sq, sk)
    const int last_row = min(blockIdx.y * 32 + 31, sq - 1);
    float acc = 0.0f;
    if (key0 < keys_seen(last_row, sq, sk, causal)) {  // the same for the whole block
        for (int c0 = 0; c0 < d; c0 += 32) {
            Qs[ty][tx] = i < sq ? to_float(Q[(size_t)i * d + c0 + tx]) : 0.0f;
            Ks[ty][tx] = key0 + ty < sk ? to_float(K[(size_t)(key0 + ty) * d + c0 + tx]) : 0.0f;
            __syncthreads();
#pragma unroll
            for (int c = 0; c < 32; c++) acc += Qs[ty][c] * Ks[tx][c];
            __syncthreads();
        }
    }
    if (i < sq && j < sk) S[(size_t)i * sk + j] = j < keys_seen(i, sq, sk, causal) ? acc * scale : -INFINITY;
}

// a0, second kernel: a block per row of S: its maximum, the sum l of exp(S - max), then
// P = exp(S - max) / l over S, and the row's LSE. A row that sees no key (all -inf): its
// exponentials are taken against 0, so P = 0, and LSE = -inf.
__global__ void attention_softmax_rows(float *S, float *lse, int sk)
{
    float *row = S + blockIdx.x * (size_t)sk;
    float m = -INFINITY;
    for (int j = threadIdx.x; j < sk; j += blockDim.x) m = fmaxf(m, row[j]);
    m = block_max(m);
    const float base = m == -INFINITY ? 0.0f : m;
    float l = 0.0f;
    for (int j = threadIdx.x; j < sk; j += blockDim.x) l += __expf(row[j] - base);
    l = block_sum(l);
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    for (int j = threadIdx.x; j < sk; j += blockDim.x) row[j] = __expf(row[j] - base) * inv;
    if (threadIdx.x == 0) lse[blockIdx.x] = l > 0.0f ? m + logf(l) : -INFINITY;
}

// a0, third kernel: O = P V, 32 x 32 outputs per block (an output per thread), the keys in
// steps of 32 through shared memory, up to the last key the tile's last query sees (P is 0
// past it). Grid: (d / 32, sq / 32, b h).
template <typename T>
__global__ void attention_pv(T *O, const float *P, const T *V, int sq, int sk, int d, bool causal)
{
    __shared__ float Ps[32][33], Vs[32][33];  // (queries, keys), (keys, d)
    const int tx = threadIdx.x, ty = threadIdx.y;
    const size_t bh = blockIdx.z;
    const int i = blockIdx.y * 32 + ty, c = blockIdx.x * 32 + tx;
    P += bh * sq * sk; // (sq, sk)
    V += bh * sk * d;  // (sk, d)
    O += bh * sq * d;  // (sq, d)
    const int end = keys_seen(min(blockIdx.y * 32 + 31, sq - 1), sq, sk, causal);
    float acc = 0.0f;
    for (int j0 = 0; j0 < end; j0 += 32) {
        Ps[ty][tx] = i < sq && j0 + tx < sk ? P[(size_t)i * sk + j0 + tx] : 0.0f;
        Vs[ty][tx] = j0 + ty < sk ? to_float(V[(size_t)(j0 + ty) * d + c]) : 0.0f;
        __syncthreads();
#pragma unroll
        for (int j = 0; j < 32; j++) acc += Ps[ty][j] * Vs[j][tx];
        __syncthreads();
    }
    if (i < sq) O[(size_t)i * d + c] = from_float<T>(acc);
}
#line 449 "chapters/09-attention.md"
// Rows r0 .. r0 + ROWS - 1 of a (rows, D) matrix of T into shared memory as float, rows
// `stride` floats apart; rows past the end are zeros. 16-byte loads: the rows of a head
// are D elements, a multiple of 8, from a 16-byte-aligned start.
template <typename T, int D, int ROWS>
__device__ inline void load_tile(float *dst, int stride, const T *src, int r0, int rows)
{
    for (int e = threadIdx.x; e < ROWS * D / 8; e += blockDim.x) {
        const int r = e / (D / 8), c = e % (D / 8) * 8;
        float f[8] = {};
        if (r0 + r < rows) {
            uint4 raw = *reinterpret_cast<const uint4 *>(src + (size_t)(r0 + r) * D + c);
            const T *t = reinterpret_cast<const T *>(&raw);
#pragma unroll
            for (int u = 0; u < 8; u++) f[u] = to_float(t[u]);
        }
#pragma unroll
        for (int u = 0; u < 8; u++) dst[r * stride + c + u] = f[u];
    }
}

// a1's shared memory, in floats: Q (BR, D + 1), K (BC, D + 1), V (BC, D), P (BR, BC + 4).
template <int D, int BR, int BC> constexpr int flash_simt_floats()
{
    return BR * (D + 1) + BC * (D + 1) + BC * D + BR * (BC + 4);
}

// a1: a block per (b h, tile of BR = 64 queries), 256 threads as 16 x 16. Thread (ty, tx)
// owns query rows 4 ty .. 4 ty + 3, of each the scores of keys tx + 16 c (c < BC / 16)
// and the output columns tx + 16 c (c < D / 16). Grid: (sq / BR, b h).
template <typename T, int D, int BR, int BC>
__global__ void __launch_bounds__(256) attention_flash_simt(T *O, float *lse, const T *Q, const T *K, const T *V,
                                                            int sq, int sk, float scale, bool causal)
{
    static_assert(BR == 64 && BC % 16 == 0 && D % 16 == 0, "16 x 16 threads, four query rows each");
    constexpr int RT = BR / 16, SC = BC / 16, OC = D / 16;
    constexpr int QS = D + 1, PS = BC + 4;  // row strides: 16 rows at one column in 16 banks; see the prose for P
    extern __shared__ float smem[];
    float *Qs = smem;             // (BR, D + 1)
    float *Ks = Qs + BR * QS;     // (BC, D + 1)
    float *Vs = Ks + BC * QS;     // (BC, D)
    float *Ps = Vs + BC * D;      // (BR, BC + 4)
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const size_t bh = blockIdx.y;
    const int q0 = blockIdx.x * BR;
    Q += bh * sq * D;  // this head's (sq, D)
    K += bh * sk * D;  // (sk, D)
    V += bh * sk * D;  // (sk, D)
    O += bh * sq * D;  // (sq, D)
    lse += bh * sq;    // (sq)
    load_tile<T, D, BR>(Qs, QS, Q, q0, sq);

    int seen[RT];  // keys each of the thread's rows sees; 0 for rows past sq
    float m[RT], l[RT], o[RT][OC];
#pragma unroll
    for (int r = 0; r < RT; r++) {
        int i = q0 + ty * RT + r;
        seen[r] = i < sq ? keys_seen(i, sq, sk, causal) : 0;
        m[r] = -INFINITY;
        l[r] = 0.0f;
#pragma unroll
        for (int c = 0; c < OC; c++) o[r][c] = 0.0f;
    }
    const int end = keys_seen(min(q0 + BR, sq) - 1, sq, sk, causal);  // the keys the tile's last query sees
    for (int k0 = 0; k0 < end; k0 += BC) {
        __syncthreads();  // the last tile's K, V and P have been read (and Q is in place)
        load_tile<T, D, BC>(Ks, QS, K, k0, sk);
        load_tile<T, D, BC>(Vs, D, V, k0, sk);
        __syncthreads();
        // S = Q K^T scale, the thread's RT x SC scores
        float s[RT][SC] = {};
        for (int c = 0; c < D; c++) {
            float qr[RT], kc[SC];
#pragma unroll
            for (int r = 0; r < RT; r++) qr[r] = Qs[(ty * RT + r) * QS + c];
#pragma unroll
            for (int j = 0; j < SC; j++) kc[j] = Ks[(tx + 16 * j) * QS + c];
#pragma unroll
            for (int r = 0; r < RT; r++)
#pragma unroll
                for (int j = 0; j < SC; j++) s[r][j] += qr[r] * kc[j];
        }
        // the running maximum and sum of each row, o rescaled, P = exp(S - m') into shared memory
#pragma unroll
        for (int r = 0; r < RT; r++) {
            float tile_max = -INFINITY;
#pragma unroll
            for (int j = 0; j < SC; j++) {
                s[r][j] = k0 + tx + 16 * j < seen[r] ? s[r][j] * scale : -INFINITY;
                tile_max = fmaxf(tile_max, s[r][j]);
            }
            const float m_new = fmaxf(m[r], warp_max(tile_max, 16));  // over the row's 16 lanes
            const float base = m_new == -INFINITY ? 0.0f : m_new;   // no key seen yet: p = 0, not NaN
            const float alpha = __expf(m[r] - base);
            float sum = 0.0f;
#pragma unroll
            for (int j = 0; j < SC; j++) {
                float pj = __expf(s[r][j] - base);
                Ps[(ty * RT + r) * PS + tx + 16 * j] = pj;
                sum += pj;
            }
            l[r] = l[r] * alpha + warp_sum(sum, 16);
            m[r] = m_new;
#pragma unroll
            for (int c = 0; c < OC; c++) o[r][c] *= alpha;
        }
        __syncthreads();  // P complete
        // o += P V, the thread's RT x OC outputs
        for (int j = 0; j < BC; j++) {
            float pr[RT], vc[OC];
#pragma unroll
            for (int r = 0; r < RT; r++) pr[r] = Ps[(ty * RT + r) * PS + j];
#pragma unroll
            for (int c = 0; c < OC; c++) vc[c] = Vs[j * D + tx + 16 * c];
#pragma unroll
            for (int r = 0; r < RT; r++)
#pragma unroll
                for (int c = 0; c < OC; c++) o[r][c] += pr[r] * vc[c];
        }
    }
    // O = o / l and LSE = m + log l; a row that saw no key: O = 0, LSE = -inf
#pragma unroll
    for (int r = 0; r < RT; r++) {
        const int i = q0 + ty * RT + r;
        if (i >= sq) continue;
        const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
#pragma unroll
        for (int c = 0; c < OC; c++) O[(size_t)i * D + tx + 16 * c] = from_float<T>(o[r][c] * inv);
        if (tx == 0) lse[i] = l[r] > 0.0f ? m[r] + logf(l[r]) : -INFINITY;
    }
}
#line 667 "chapters/09-attention.md"
// Four 8x8 matrices loaded transposed: lane i gives row i % 8 of matrix i / 8, as for
// ldmatrix_x4; each register then holds two elements of a column of the stored matrix.
__device__ inline void ldmatrix_x4_trans(uint32_t r[4], uint32_t smem_addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr));
}

// 2^x in one instruction, MUFU.EX2: exp2f adds a test and two multiplications to keep the
// results below 2^-126 (float's smallest normal) exact; here they are flushed to zero.
__device__ inline float exp2_ftz(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

// Keys past sk, and (causal, bottom right) past the diagonal, set to -inf in a tile of N
// scores laid out as m16n8 accumulators: element i on row row0 + 8 ((i / 2) % 2), key
// k0 + 8 (i / 4) + 2 t + i % 2. Per element, one comparison with a constant and a select.
template <int N>
__device__ inline void mask_scores(float *sc, int k0, int row0, int sq, int sk, bool causal, int t)
{
    int seen[2];  // the keys each of the thread's rows sees, counted from its first key in the tile
#pragma unroll
    for (int h = 0; h < 2; h++) seen[h] = (causal ? min(sk, row0 + 8 * h + sk - sq + 1) : sk) - k0 - 2 * t;
#pragma unroll
    for (int i = 0; i < N; i++)
        if (8 * (i / 4) + i % 2 >= seen[(i / 2) % 2]) sc[i] = -INFINITY;
}

// Two floats as one register of two 16-bit elements, the first in the low half.
template <typename T> __device__ inline uint32_t pack2(float lo, float hi);
template <> __device__ inline uint32_t pack2<__nv_bfloat16>(float lo, float hi)
{
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}
template <> __device__ inline uint32_t pack2<__half>(float lo, float hi)
{
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}

// Element (r, c) of a tile of rows of D 16-bit elements (D * 2 bytes), swizzled so that
// 8 consecutive rows read at one 16-byte chunk hit 8 different bank groups.
template <int D> __device__ inline int fa_at(int r, int c)
{
    return r * D + (((c >> 3) ^ (r & 7)) << 3) + (c & 7);
}

// Rows row0 .. row0 + ROWS - 1 of a (rows, D) matrix into a tile in the swizzle of fa_at, by
// cp.async, zeros past the end. Each of the 128 threads copies one 16-byte chunk of every
// RSTEP-th row, ROWS / RSTEP of them: a count the loop states, so that the compiler needs no
// test per copy. A whole tile, the usual case, needs no test per row either: its copies are
// one address and constant offsets from it (the swizzle repeats every 8 rows, and RSTEP is a
// multiple of 8).
template <typename T, int D, int ROWS> __device__ inline void copy_tile(T *dst, const T *src, int row0, int rows)
{
    constexpr int CH = D / 8, RSTEP = 128 / CH;  // 16-byte chunks per row; rows copied per pass
    static_assert(RSTEP % 8 == 0 && ROWS % RSTEP == 0, "whole passes, each a whole period of the swizzle");
    const int cr = threadIdx.x / CH, cc = threadIdx.x % CH * 8;
    T *to = dst + fa_at<D>(cr, cc);
    if (row0 + ROWS <= rows) {
        const T *from = src + (size_t)(row0 + cr) * D + cc;
#pragma unroll
        for (int k = 0; k < ROWS / RSTEP; k++) cp_async_16(to + k * RSTEP * D, from + k * RSTEP * D, 16);
        return;
    }
#pragma unroll
    for (int k = 0; k < ROWS / RSTEP; k++) {
        const int r = cr + k * RSTEP;
        const bool in = row0 + r < rows;
        cp_async_16(to + k * RSTEP * D, src + (size_t)(in ? row0 + r : 0) * D + cc, in ? 16 : 0);
    }
}

// One block: four warps, each on MT tiles of 16 query rows of one (batch, head), so
// BQ = 64 MT rows; tiles of BK keys and values double-buffered by cp.async. S = Q K^T
// and O += P V on mma.sync m16n8k16, each K and V fragment loaded once for the warp's MT
// row tiles; the running max and sum of each row in registers (two rows per thread and
// row tile: g and g + 8). With one row tile, the warp's Q stays in registers; with two,
// its fragments are loaded from shared memory at every tile, for want of registers.
template <typename T, int D, int MT, int BK>
__global__ void __launch_bounds__(128) attention_flash_mma(T *O, float *LSE, const T *Q, const T *K, const T *V, int sq,
                                                           int sk, float scale, bool causal)
{
    constexpr int BQ = 64 * MT, NT = BK / 8;  // rows per block, n-tiles of 8 keys per tile
    constexpr bool Q_IN_REGS = MT == 1;
    static_assert(BK % 16 == 0 && D % 16 == 0, "whole m16n8k16 steps");
    const float scale_log2 = scale * 1.44269504088896341f;  // scores in the base-2 domain: exp2 of them
    extern __shared__ __align__(128) unsigned char fa_smem[];
    T *Qs = reinterpret_cast<T *>(fa_smem);  // BQ x D
    T *Ks = Qs + BQ * D;                     // 2 x BK x D
    T *Vs = Ks + 2 * BK * D;                 // 2 x BK x D
    const int bh = blockIdx.y, q0 = blockIdx.x * BQ;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const int wq = warp * 16 * MT;  // the warp's first row in the block
    const T *Qb = Q + (size_t)bh * sq * D, *Kb = K + (size_t)bh * sk * D, *Vb = V + (size_t)bh * sk * D;
    // the keys this block sees: all, or (causal, bottom right) up to q0 + BQ - 1 + sk - sq
    int kend = sk;
    if (causal) kend = min(sk, max(0, q0 + BQ + sk - sq));
    const int ktiles = (kend + BK - 1) / BK;
    copy_tile<T, D, BQ>(Qs, Qb, q0, sq);
    if (ktiles > 0) {
        copy_tile<T, D, BK>(Ks, Kb, 0, sk);
        copy_tile<T, D, BK>(Vs, Vb, 0, sk);
    }
    cp_async_commit();

    float o[MT][D / 8][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int j = 0; j < D / 8; j++) o[mt][j][0] = o[mt][j][1] = o[mt][j][2] = o[mt][j][3] = 0.0f;
    float m[MT][2], l[MT][2];  // rows g and g + 8 of each row tile, in the log2 domain
#pragma unroll
    for (int mt = 0; mt < MT; mt++) m[mt][0] = m[mt][1] = -INFINITY, l[mt][0] = l[mt][1] = 0.0f;
    uint32_t qa[Q_IN_REGS ? D / 16 : 1][4];

    for (int kt = 0; kt < ktiles; kt++) {
        const int cur = kt % 2;
        if (kt + 1 < ktiles) {  // the next tile into the other buffer, freed at the end of kt - 1
            copy_tile<T, D, BK>(Ks + (1 - cur) * BK * D, Kb, (kt + 1) * BK, sk);
            copy_tile<T, D, BK>(Vs + (1 - cur) * BK * D, Vb, (kt + 1) * BK, sk);
        }
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        if (Q_IN_REGS && kt == 0) {
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++)
                ldmatrix_x4(qa[Q_IN_REGS ? kk : 0], Qs + fa_at<D>(wq + ldsm_a_row(lane), kk * 16 + ldsm_a_col(lane)));
        }
        const T *Kt = Ks + cur * BK * D, *Vt = Vs + cur * BK * D;
        // S = Q K^T: 16 MT x BK per warp
        float s[MT][NT][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int j = 0; j < NT; j++) s[mt][j][0] = s[mt][j][1] = s[mt][j][2] = s[mt][j][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            uint32_t a[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                if (Q_IN_REGS) {
#pragma unroll
                    for (int e = 0; e < 4; e++) a[mt][e] = qa[Q_IN_REGS ? kk : 0][e];
                } else {
                    ldmatrix_x4(a[mt], Qs + fa_at<D>(wq + mt * 16 + ldsm_a_row(lane), kk * 16 + ldsm_a_col(lane)));
                }
            }
#pragma unroll
            for (int j = 0; j < NT; j += 2) {
                uint32_t b[4];
                ldmatrix_x4(b, Kt + fa_at<D>(j * 8 + ldsm_b_row(lane), kk * 16 + ldsm_b_col(lane)));
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    mma_16816<T>(s[mt][j], a[mt], b);
                    mma_16816<T>(s[mt][j + 1], a[mt], b + 2);
                }
            }
        }
        // mask: keys past sk, and (causal) past the diagonal, only in the tiles that hold such keys
        const int k0 = kt * BK;
        if (k0 + BK > sk || (causal && k0 + BK - 1 > q0 + wq + sk - sq)) {
#pragma unroll
            for (int mt = 0; mt < MT; mt++) mask_scores<4 * NT>(&s[mt][0][0], k0, q0 + wq + mt * 16 + g, sq, sk, causal, t);
        }
#pragma unroll
        for (int mt = 0; mt < MT; mt++) {
            // the running max and sum of each of the thread's two rows, over the quad's lanes
#pragma unroll
            for (int h = 0; h < 2; h++) {
                float mx = -INFINITY;  // the tile's maximum score, scaled to base 2 after the shuffles
#pragma unroll
                for (int j = 0; j < NT; j++) mx = fmaxf(mx, fmaxf(s[mt][j][2 * h], s[mt][j][2 * h + 1]));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, 1));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, 2));
                mx = fmaxf(m[mt][h], mx * scale_log2);
                // the warp moves its rows' maxima only when one of them grew by more than
                // MAX_LAG_LOG2; otherwise the old ones stay, and neither O nor l is rescaled
                const bool rescale = __any_sync(0xffffffff, mx > m[mt][h] + MAX_LAG_LOG2);
                const float keep = rescale ? mx : m[mt][h];
                // a row that has seen only masked keys keeps max -inf: subtract 0 instead
                const float base = keep == -INFINITY ? 0.0f : keep;
                float sum = 0.0f;
#pragma unroll
                for (int j = 0; j < NT; j++) {  // exp2(x scale_log2 - base): one FFMA, one MUFU
                    s[mt][j][2 * h] = exp2_ftz(fmaf(s[mt][j][2 * h], scale_log2, -base));
                    s[mt][j][2 * h + 1] = exp2_ftz(fmaf(s[mt][j][2 * h + 1], scale_log2, -base));
                    sum += s[mt][j][2 * h] + s[mt][j][2 * h + 1];
                }
                if (rescale) {
                    const float correction = exp2_ftz(m[mt][h] - base);  // exp2(-inf) = 0 on the first tile
                    l[mt][h] *= correction;
                    m[mt][h] = keep;
#pragma unroll
                    for (int j = 0; j < D / 8; j++) {
                        o[mt][j][2 * h] *= correction;
                        o[mt][j][2 * h + 1] *= correction;
                    }
                }
                l[mt][h] += sum;  // the quad's partial sums are added at the end
            }
        }
        // O += P V: P's accumulator fragments are, packed, the A fragments of m16n8k16
#pragma unroll
        for (int kk = 0; kk < BK / 16; kk++) {
            uint32_t pa[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                pa[mt][0] = pack2<T>(s[mt][2 * kk][0], s[mt][2 * kk][1]);
                pa[mt][1] = pack2<T>(s[mt][2 * kk][2], s[mt][2 * kk][3]);
                pa[mt][2] = pack2<T>(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
                pa[mt][3] = pack2<T>(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
            }
#pragma unroll
            for (int j = 0; j < D / 8; j += 2) {
                uint32_t b[4];  // keys kk*16 .. +15 by columns j*8 .. +15 of V, transposed
                const int key = kk * 16 + lane % 8 + (lane / 8 % 2) * 8, col = j * 8 + lane / 16 * 8;
                ldmatrix_x4_trans(b, smem_u32(Vt + fa_at<D>(key, col)));
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    mma_16816<T>(o[mt][j], pa[mt], b);
                    mma_16816<T>(o[mt][j + 1], pa[mt], b + 2);
                }
            }
        }
        __syncthreads();  // every warp is done with this tile's buffers before they are refilled
    }
    cp_async_wait<0>();
    // the end: the quad's sums, the division, O and the log-sum-exp (natural log)
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            float sum = l[mt][h];
            sum += __shfl_xor_sync(0xffffffff, sum, 1);
            sum += __shfl_xor_sync(0xffffffff, sum, 2);
            const int row = q0 + wq + mt * 16 + g + h * 8;
            const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;  // a row that sees no key: O = 0
            if (row < sq) {
                T *orow = O + ((size_t)bh * sq + row) * D;
#pragma unroll
                for (int j = 0; j < D / 8; j++)
                    *reinterpret_cast<uint32_t *>(orow + j * 8 + 2 * t) =
                        pack2<T>(o[mt][j][2 * h] * inv, o[mt][j][2 * h + 1] * inv);
                if (t == 0)
                    LSE[(size_t)bh * sq + row] = sum > 0.0f ? (m[mt][h] + log2f(sum)) * 0.69314718055994531f : -INFINITY;
            }
        }
}
#line 1077 "chapters/09-attention.md"
constexpr int W_BQ = 128, W_BK = 128;  // a4: queries per block, keys per tile
constexpr int W_PANEL = 128 * 128;     // bytes of a 128-row panel of 64 columns
constexpr int W_V_SBO = 1024;          // V, MN-major: 8 keys to the next 8 (panel to panel: W_PANEL)
// shared memory for Q and the stages of K and of V, d / 64 panels each; 1 KiB to align
template <int D, int STAGES, int CONSUMERS = 2, int QBUF = 1>
__host__ __device__ constexpr int wgmma_smem() { return (D / 64) * (QBUF * 64 * CONSUMERS * 128 + 2 * STAGES * W_PANEL) + 1024; }
// buffers of Q: persistent, a second one where shared memory has room, so that the next
// item's queries load while this item's run
template <int D, int STAGES, bool PERSISTENT, int CONSUMERS>
__host__ __device__ constexpr int wgmma_qbuf() { return PERSISTENT && wgmma_smem<D, STAGES, CONSUMERS, 2>() <= 227 * 1024 ? 2 : 1; }

// O (+)= P V for one 64 x d x 16 step of a warpgroup: A (P) from registers, B (V) from
// shared memory MN-major (rows of keys), through a descriptor with the transpose flag.
template <typename T, int D> __device__ inline void wgmma_pv(float *d, const uint32_t a[4], uint64_t db);
template <>
__device__ inline void wgmma_pv<__nv_bfloat16, 128>(float *d, const uint32_t a[4], uint64_t db)
{
    asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " WGMMA_D64_NAMES
                 ", {%64, %65, %66, %67}, %68, 1, 1, 1, 1;\n"
                 : WGMMA_D64
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
}
template <>
__device__ inline void wgmma_pv<__half, 128>(float *d, const uint32_t a[4], uint64_t db)
{
    asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 " WGMMA_D64_NAMES
                 ", {%64, %65, %66, %67}, %68, 1, 1, 1, 1;\n"
                 : WGMMA_D64
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
}
template <>
__device__ inline void wgmma_pv<__nv_bfloat16, 64>(float *d, const uint32_t a[4], uint64_t db)
{
    asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " WGMMA_D32_NAMES
                 ", {%32, %33, %34, %35}, %36, 1, 1, 1, 1;\n"
                 : WGMMA_D32(0)
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
}
template <>
__device__ inline void wgmma_pv<__half, 64>(float *d, const uint32_t a[4], uint64_t db)
{
    asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 " WGMMA_D32_NAMES
                 ", {%32, %33, %34, %35}, %36, 1, 1, 1, 1;\n"
                 : WGMMA_D32(0)
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
}
// The descriptor of an MN-major tile in the 128-byte swizzle (rows of the K dimension, 64
// elements of M or N contiguous): lbo bytes from a panel of 64 columns to the next (V's
// 128-row panels by default), W_V_SBO from eight rows to the next eight.
__device__ inline uint64_t wgmma_desc_mn128(const void *smem, int lbo = W_PANEL)
{
    uint64_t a = smem_u32(smem);
    return ((a & 0x3FFFF) >> 4) | ((uint64_t)(lbo >> 4) << 16) | ((uint64_t)(W_V_SBO >> 4) << 32) | (1ull << 62);
}

// The work of a block: the queries q0 .. q0 + W_BQ - 1 of head bh, and the tiles of keys
// they see. Item w of a launch: the query tiles of a head side by side (they share its K
// and V in the L2); with `longest_first` (causal, persistent) the last query tiles of
// every head first, since they see the most keys.
struct WgmmaItem {
    int bh, q0, ktiles;
};
__device__ inline WgmmaItem wgmma_item(int w, int heads, int sq, int sk, bool causal, bool longest_first, int bq = W_BQ)
{
    const int qtiles = (sq + bq - 1) / bq;
    WgmmaItem it;
    if (longest_first) {
        it.bh = w % heads;
        it.q0 = (qtiles - 1 - w / heads) * bq;
    } else {
        it.bh = w / qtiles;
        it.q0 = (w % qtiles) * bq;
    }
    const int kend = causal ? min(sk, max(0, it.q0 + bq + sk - sq)) : sk;
    it.ktiles = (kend + W_BK - 1) / W_BK;
    return it;
}

// S = Q K^T for a warpgroup's 64 rows and a tile of 128 keys: d / 16 steps of k16, issued
// and committed, not waited for.
template <typename T, int D, int Q_PANEL = W_PANEL>
__device__ inline void wgmma_scores(float sc[64], const unsigned char *Qs, const unsigned char *Ks, int c)
{
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)
        wgmma_m64n128k16<T>(sc, wgmma_desc_k128(Qs + (kk / 4) * Q_PANEL + c * 64 * 128 + (kk % 4) * 32),
                            wgmma_desc_k128(Ks + (kk / 4) * W_PANEL + (kk % 4) * 32), kk > 0);
    wgmma_commit();
}

// The online softmax of a tile of scores held as wgmma's accumulators (a2's layout): mask,
// update the running maxima m and sums l of the thread's rows g and
// g + 8, rescale O (nd accumulators), and leave P, converted to T, in pa.
template <typename T, int ND>
__device__ inline void wgmma_softmax(float sc[64], float *o, float m[2], float l[2], uint32_t pa[32], int k0,
                                     int row0, int sq, int sk, float scale_log2, bool causal, int t)
{
    if (k0 + W_BK > sk || (causal && k0 + W_BK - 1 > row0 + sk - sq)) mask_scores<64>(sc, k0, row0, sq, sk, causal, t);
#pragma unroll
    for (int h = 0; h < 2; h++) {  // rows g and g + 8: elements with (i / 2) % 2 == h
        float mx = -INFINITY;
#pragma unroll
        for (int j = 0; j < 16; j++) mx = fmaxf(mx, fmaxf(sc[4 * j + 2 * h], sc[4 * j + 2 * h + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, 2));
        mx = fmaxf(m[h], mx * scale_log2);
        const float base = mx == -INFINITY ? 0.0f : mx;
        const float correction = exp2_ftz(m[h] - base);
        float sum = 0.0f;
#pragma unroll
        for (int j = 0; j < 16; j++) {
            sc[4 * j + 2 * h] = exp2_ftz(fmaf(sc[4 * j + 2 * h], scale_log2, -base));
            sc[4 * j + 2 * h + 1] = exp2_ftz(fmaf(sc[4 * j + 2 * h + 1], scale_log2, -base));
            sum += sc[4 * j + 2 * h] + sc[4 * j + 2 * h + 1];
        }
        l[h] = l[h] * correction + sum;
        m[h] = mx;
#pragma unroll
        for (int j = 0; j < ND / 4; j++) {
            o[4 * j + 2 * h] *= correction;
            o[4 * j + 2 * h + 1] *= correction;
        }
    }
#pragma unroll
    for (int i = 0; i < 32; i++) pa[i] = pack2<T>(sc[2 * i], sc[2 * i + 1]);
}

// O += P V for a warpgroup: eight k16 steps over the tile's 128 keys, issued and committed.
template <typename T, int D>
__device__ inline void wgmma_values(float *o, const uint32_t pa[32], const unsigned char *Vs)
{
#pragma unroll
    for (int kk = 0; kk < W_BK / 16; kk++) wgmma_pv<T, D>(o, pa + 4 * kk, wgmma_desc_mn128(Vs + kk * 16 * 128));
    wgmma_commit();
}

// a4 to a6: a producer warpgroup and two consumers of 64 query rows; tiles of 128 keys in
// a ring of two stages. mq, mk, mv: the tensor maps of Q, K, V as (b h s) x d matrices in
// boxes of 128 rows x 64 columns. OVERLAP (a5): the scores of the next tile are computed
// during the softmax of this one. PERSISTENT (a6): a block per SM takes the items one by
// one, its first by its index and the next ones from the counter next_item. PING_PONG (a9):
// the consumers take turns at issuing their scores' products, on hardware barriers 1 + c.
template <typename T, int D, int STAGES, bool OVERLAP, bool PERSISTENT, int CONSUMERS = 2, bool PING_PONG = false>
__global__ void __launch_bounds__(128 * (1 + CONSUMERS), 1)
    attention_wgmma(const __grid_constant__ CUtensorMap mq, const __grid_constant__ CUtensorMap mk,
                    const __grid_constant__ CUtensorMap mv, T *O, float *LSE, int heads, int sq, int sk, float scale,
                    bool causal, int *next_item)
{
#if SM90A_CODE
    constexpr int NP = D / 64, ND = D / 2;  // panels of 64 columns; accumulators of O a thread
    constexpr int BQ = 64 * CONSUMERS, Q_PANEL = BQ * 128;  // queries per block; bytes of a panel of Q
    constexpr int QB = wgmma_qbuf<D, STAGES, PERSISTENT, CONSUMERS>();
    // registers a consumer thread may take: what the producer's 24 leave, in steps of 8
    constexpr int REGS = (65536 / 128 - 24) / CONSUMERS / 8 * 8 > 240 ? 240 : (65536 / 128 - 24) / CONSUMERS / 8 * 8;
    extern __shared__ unsigned char smem_raw[];
    unsigned char *smem = aligned_1024(smem_raw);
    unsigned char *Qs = smem;                      // QB x NP panels
    unsigned char *Ks = Qs + QB * NP * Q_PANEL;    // STAGES x NP panels
    unsigned char *Vs = Ks + STAGES * NP * W_PANEL;  // STAGES x NP panels
    __shared__ __align__(8) uint64_t q_full[QB], q_empty[QB], k_full[STAGES], v_full[STAGES], empty[STAGES];
    __shared__ int item_of[QB];  // PERSISTENT: the item whose queries are in each buffer of Q
    const int wg = threadIdx.x / 128, tid = threadIdx.x % 128;
    const int items = (sq + BQ - 1) / BQ * heads;
    const bool longest_first = PERSISTENT && causal;
    if (threadIdx.x == 0) {
        for (int b = 0; b < QB; b++) {
            mbar_init(&q_full[b], 1);
            mbar_init(&q_empty[b], CONSUMERS);
        }
        for (int s = 0; s < STAGES; s++) {
            mbar_init(&k_full[s], 1);
            mbar_init(&v_full[s], 1);
            mbar_init(&empty[s], CONSUMERS);
        }
        mbar_init_fence();
    }
    __syncthreads();

    if (wg == 0) {  // the producer
        setmaxnreg_dec<24>();
        if (tid == 0) {
            int it = 0;  // key tiles loaded by this block
            for (int n = 0; n == 0 || PERSISTENT; n++) {  // the block's items
                int w = blockIdx.x;  // the first; the grid has at most as many blocks as items
                if (n > 0) {         // the launch takes `items` numbers in all: the last resets the counter
                    const int f = atomicAdd(next_item, 1);
                    if (f == items - 1) atomicExch(next_item, 0);
                    w = gridDim.x + f;
                }
                const int qb = n % QB;
                if (n >= QB) mbar_wait(&q_empty[qb], ((n - QB) / QB) & 1);
                if (PERSISTENT) item_of[qb] = w;  // published by the arrival on q_full
                if (w >= items) {
                    mbar_arrive(&q_full[qb]);  // the consumers' signal to stop
                    break;
                }
                const WgmmaItem item = wgmma_item(w, heads, sq, sk, causal, longest_first, BQ);
                mbar_expect_tx(&q_full[qb], NP * Q_PANEL);
                for (int pn = 0; pn < NP; pn++)  // in boxes of 64 rows, one per consumer
                    for (int cc = 0; cc < CONSUMERS; cc++)
                        tma_load_2d(Qs + (qb * NP + pn) * Q_PANEL + cc * 64 * 128, &mq, &q_full[qb], pn * 64,
                                    item.bh * sq + item.q0 + 64 * cc);
                for (int kt = 0; kt < item.ktiles; kt++, it++) {
                    const int s = it % STAGES, use = it / STAGES;
                    if (use > 0) mbar_wait(&empty[s], (use - 1) & 1);
                    mbar_expect_tx(&k_full[s], NP * W_PANEL);
                    for (int pn = 0; pn < NP; pn++)
                        tma_load_2d(Ks + (NP * s + pn) * W_PANEL, &mk, &k_full[s], pn * 64, item.bh * sk + kt * W_BK);
                    mbar_expect_tx(&v_full[s], NP * W_PANEL);
                    for (int pn = 0; pn < NP; pn++)
                        tma_load_2d(Vs + (NP * s + pn) * W_PANEL, &mv, &v_full[s], pn * 64, item.bh * sk + kt * W_BK);
                }
            }
        }
        return;
    }
    setmaxnreg_inc<REGS>();
    const int c = wg - 1, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
    const int wq = 64 * c + 16 * warp + g;  // the thread's first row in the block; the other is 8 further
    const float scale_log2 = scale * 1.44269504088896341f;
    // PING_PONG: the last consumer opens the first turn; every turn ends with an arrival for
    // the next consumer, so the first one waits once more at the end for the last arrival
    if (PING_PONG && c == CONSUMERS - 1) named_barrier_arrive(1, 128 * CONSUMERS);
    int it = 0;
    for (int n = 0; n == 0 || PERSISTENT; n++) {
        mbar_wait(&q_full[n % QB], n / QB & 1);
        const int w = PERSISTENT ? item_of[n % QB] : (int)blockIdx.x;
        if (w >= items) {
            if (PING_PONG && c == 0) named_barrier(1, 128 * CONSUMERS);
            break;
        }
        const WgmmaItem item = wgmma_item(w, heads, sq, sk, causal, longest_first, BQ);
        const int row0 = item.q0 + wq;
        float o[ND], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
#pragma unroll
        for (int i = 0; i < ND; i++) o[i] = 0.0f;
        const unsigned char *Qn = Qs + n % QB * NP * Q_PANEL;  // this item's queries
        if (!OVERLAP) {
            for (int kt = 0; kt < item.ktiles; kt++, it++) {
                const int s = it % STAGES, parity = (it / STAGES) & 1;
                float sc[64];  // S: element i at row wq + 8 ((i / 2) % 2), key 8 (i / 4) + 2 t + i % 2
                uint32_t pa[32];
                mbar_wait(&k_full[s], parity);
                if (PING_PONG) named_barrier(1 + c, 128 * CONSUMERS);  // this consumer's turn
                wgmma_fence();
                wgmma_scores<T, D, Q_PANEL>(sc, Qn, Ks + NP * s * W_PANEL, c);
                if (PING_PONG) named_barrier_arrive(1 + (c + 1) % CONSUMERS, 128 * CONSUMERS);  // the next one's
                wgmma_wait<0>();
                wgmma_softmax<T, ND>(sc, o, m, l, pa, kt * W_BK, row0, sq, sk, scale_log2, causal, t);
                mbar_wait(&v_full[s], parity);
                wgmma_fence();
                wgmma_values<T, D>(o, pa, Vs + NP * s * W_PANEL);
                wgmma_wait<0>();
                if (tid == 0) mbar_arrive(&empty[s]);
            }
        } else if (item.ktiles > 0) {
            // Every product is waited for within the iteration that issues it, so that no
            // register a product writes is carried, still in flight, round the loop.
            float sc[64], next[64];  // this tile's scores; the next tile's, in flight during its softmax
            mbar_wait(&k_full[it % STAGES], (it / STAGES) & 1);
            wgmma_fence();
            wgmma_scores<T, D, Q_PANEL>(next, Qn, Ks + NP * (it % STAGES) * W_PANEL, c);
            wgmma_wait<0>();
            for (int kt = 0; kt < item.ktiles; kt++, it++) {
                const int s = it % STAGES, parity = (it / STAGES) & 1;
                uint32_t pa[32];
#pragma unroll
                for (int i = 0; i < 64; i++) sc[i] = next[i];
                if (kt + 1 < item.ktiles) {
                    mbar_wait(&k_full[(it + 1) % STAGES], ((it + 1) / STAGES) & 1);
                    wgmma_fence();
                    wgmma_scores<T, D, Q_PANEL>(next, Qn, Ks + NP * ((it + 1) % STAGES) * W_PANEL, c);
                }
                wgmma_softmax<T, ND>(sc, o, m, l, pa, kt * W_BK, row0, sq, sk, scale_log2, causal, t);
                mbar_wait(&v_full[s], parity);
                wgmma_fence();
                wgmma_values<T, D>(o, pa, Vs + NP * s * W_PANEL);
                wgmma_wait<0>();  // the next tile's scores and this tile's P V
                if (tid == 0) mbar_arrive(&empty[s]);
            }
        }
        if (tid == 0) mbar_arrive(&q_empty[n % QB]);  // Q is no longer read: the producer may load the next
#pragma unroll
        for (int h = 0; h < 2; h++) {
            float sum = l[h];
            sum += __shfl_xor_sync(0xffffffff, sum, 1);
            sum += __shfl_xor_sync(0xffffffff, sum, 2);
            const int row = row0 + 8 * h;
            const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
            if (row < sq) {
                T *orow = O + ((size_t)item.bh * sq + row) * D;
#pragma unroll
                for (int j = 0; j < ND / 4; j++)
                    *reinterpret_cast<uint32_t *>(orow + 8 * j + 2 * t) =
                        pack2<T>(o[4 * j + 2 * h] * inv, o[4 * j + 2 * h + 1] * inv);
                if (t == 0)
                    LSE[(size_t)item.bh * sq + row] = sum > 0.0f ? (m[h] + log2f(sum)) * 0.69314718055994531f : -INFINITY;
            }
        }
    }
#endif
}
#line 55 "chapters/09-attention.md"
// <<the-fp32-reference-on-the-gpu>>
#line 1475 "chapters/09-attention.md"
// The float32 reference: a warp per query row; the maximum of the scores it sees, then
// p_j = exp(x_j - m) and the sums l, o, and the bound's parts. Writes O, each element's
// bound (before the final rounding) and scale A_c, and each row's LSE and its bound.
template <typename T, int D>
__global__ void attention_reference(float *ref_o, float *arith_o, float *scale_o, float *ref_lse, float *arith_lse,
                                    const T *Q, const T *K, const T *V, size_t rows, int sq, int sk, float scale,
                                    bool causal, float p_rel, float p_floor)
{
    constexpr int E = D / 32;  // the lane's values of a row: columns lane + 32 e
    const int lane = threadIdx.x % 32;
    const size_t row = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32;  // (b h, i) flattened
    if (row >= rows) return;  // the whole warp leaves
    const size_t bh = row / sq;
    const int i = (int)(row % sq), end = keys_seen(i, sq, sk, causal);
    K += bh * sk * D;
    V += bh * sk * D;
    float q[E];
#pragma unroll
    for (int e = 0; e < E; e++) q[e] = to_float(Q[row * D + lane + 32 * e]);
    float m = -INFINITY;
    for (int j = 0; j < end; j++) {
        float x = 0.0f;
#pragma unroll
        for (int e = 0; e < E; e++) x += q[e] * to_float(K[(size_t)j * D + lane + 32 * e]);
        m = fmaxf(m, scale * warp_sum(x));
    }
    const float u = 0x1p-24f, gamma = (float)sums_gamma(sk);
    float l = 0.0f, f = 0.0f, o[E] = {}, a[E] = {}, err[E] = {};
    for (int j = 0; j < end; j++) {
        float x = 0.0f, mag = 0.0f;
#pragma unroll
        for (int e = 0; e < E; e++) {
            float prod = q[e] * to_float(K[(size_t)j * D + lane + 32 * e]);
            x += prod;
            mag += fabsf(prod);
        }
        x = scale * warp_sum(x);
        mag = scale * warp_sum(mag);
        const float p = expf(x - m), delta = score_budget(mag, x, magnitude(m) + (float)MAX_LAG, D) * u;
        const float rho = p_rounding(p, p_rel, p_floor);
        l += p;
        f += p * delta;
#pragma unroll
        for (int e = 0; e < E; e++) {
            float v = to_float(V[(size_t)j * D + lane + 32 * e]);
            o[e] += p * v;
            a[e] += p * fabsf(v);
            err[e] += (p * delta + rho) * fabsf(v);
        }
    }
    const float inv = end ? 1.0f / l : 0.0f;
    f *= inv;
#pragma unroll
    for (int e = 0; e < E; e++) {
        const size_t at = row * D + lane + 32 * e;
        ref_o[at] = o[e] * inv;
        scale_o[at] = a[e] * inv;
        arith_o[at] = end ? 1.01f * output_bound(err[e] * inv, a[e] * inv, o[e] * inv, f, gamma) : 0.0f;
    }
    if (lane == 0) {
        const float lse = end ? m + logf(l) : -INFINITY;
        ref_lse[row] = lse;
        arith_lse[row] = end ? 1.01f * lse_bound(f, gamma, logf(l) + (float)MAX_LAG, lse, magnitude(m) + (float)MAX_LAG) : 0.0f;
    }
}
#line 1548 "chapters/09-attention.md"
// The float32 reference of rows = heads x sq query rows of d (64 or 128) into five device
// arrays: O (rows, d), each element's bound (before the final rounding) and its scale A_c,
// each row's LSE (rows) and its bound.
static inline void attention_reference_on_gpu(float *const dev[5], const void *q, const void *k, const void *v,
                                              size_t rows, int sq, int sk, int d, float scale, bool causal,
                                              DType dtype)
{
    double rel, floor_;
    p_rounding_of(dtype, &rel, &floor_);
    unsigned blocks = (unsigned)((rows + 7) / 8);  // 8 warps of 256 threads, a row each
#define REFERENCE_ARGS dev[0], dev[1], dev[2], dev[3], dev[4], (const T *)q, (const T *)k, (const T *)v, rows, sq, sk, \
    scale, causal, (float)rel, (float)floor_
    if (dtype == BF16) {
        typedef __nv_bfloat16 T;
        if (d == 64) attention_reference<T, 64><<<blocks, 256>>>(REFERENCE_ARGS);
        else attention_reference<T, 128><<<blocks, 256>>>(REFERENCE_ARGS);
    } else {
        typedef __half T;
        if (d == 64) attention_reference<T, 64><<<blocks, 256>>>(REFERENCE_ARGS);
        else attention_reference<T, 128><<<blocks, 256>>>(REFERENCE_ARGS);
    }
#undef REFERENCE_ARGS
    CHECK_LAUNCH();
}

// Element i's bound: the arithmetic's (times the reference's factor), then the final
// rounding to the output's type; exactly 0 where the row sees no key.
typedef struct {
    const double *ref, *arith, *scale;
    double factor;
    DType dtype;
} AttentionBound;

static const double NO_KEY = -1e300;  // an LSE of -inf, compared as a number

static inline double attention_bound(const void *ctx, size_t i, double *scale)
{
    const AttentionBound *b = (const AttentionBound *)ctx;
    *scale = b->scale ? b->scale[i] : fmax(1.0, fabs(b->ref[i]));
    if (b->ref[i] == NO_KEY) return 0.0;
    return error_bound(b->dtype, b->ref[i], b->factor * b->arith[i], 0, 0.0);
}

// O against its reference (rows of d), then the LSE (-inf compared as NO_KEY); the
// attention chapters' check of rows, and the linear chapter's of its softmax row.
static inline CheckResult check_rows(DType dtype, const char *size, int d, const char *version, const char *what,
                                     double *got_o, const double *ref_o, const double *arith_o,
                                     const double *scale_o, double *got_lse, double *ref_lse,
                                     const double *arith_lse, size_t rows, double factor)
{
    AttentionBound bo = {ref_o, arith_o, scale_o, factor, dtype};
    char label[96];
    snprintf(label, sizeof label, "%s (%s O)", version, what);
    CheckResult r = check_elements(label, size, got_o, ref_o, rows * d, attention_bound, &bo, d);
    for (size_t e = 0; e < rows; e++) {
        if (got_lse[e] == -INFINITY) got_lse[e] = NO_KEY;
        if (ref_lse[e] == -INFINITY) ref_lse[e] = NO_KEY;
    }
    AttentionBound bl = {ref_lse, arith_lse, NULL, factor, F32};
    snprintf(label, sizeof label, "%s (%s LSE)", version, what);
    add_check(&r, check_elements(label, size, got_lse, ref_lse, rows, attention_bound, &bl, 0));
    return r;
}
#line 56 "chapters/09-attention.md"
// <<launch-the-wgmma-kernels>>
#line 1619 "chapters/09-attention.md"
// attention_wgmma on heads x sq queries of D and heads x sk keys, row-major (heads, rows, D):
// a block per item, or, persistent, a block per SM (at most one per item).
template <typename T, int D, int STAGES, bool OVERLAP, bool PERSISTENT, int CONSUMERS = 2, bool PING_PONG = false>
static void wgmma_forward(WgmmaState *w, T *O, float *LSE, const T *Q, const T *K, const T *V, int heads, int sq,
                          int sk, float scale, bool causal)
{
    auto kernel = attention_wgmma<T, D, STAGES, OVERLAP, PERSISTENT, CONSUMERS, PING_PONG>;
    constexpr int smem = wgmma_smem<D, STAGES, CONSUMERS, wgmma_qbuf<D, STAGES, PERSISTENT, CONSUMERS>()>();
    constexpr int bq = 64 * CONSUMERS;
    static int sms = 0;
    if (!sms) {
        int dev = 0;
        CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
        CUDA_CHECK(cudaGetDevice(&dev));
        CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    }
    if (!w->mapped) {  // the tensor maps, made once per problem; Q in boxes of 64 rows
        const bool bf16 = std::is_same<T, __nv_bfloat16>::value;
        w->mq = tma_map_2d(Q, bf16, heads * sq, D, 64);
        w->mk = tma_map_2d(K, bf16, heads * sk, D, W_BK);
        w->mv = tma_map_2d(V, bf16, heads * sk, D, W_BK);
        w->mapped = true;
    }
    const int items = (sq + bq - 1) / bq * heads;
    const int blocks = PERSISTENT && items > sms ? sms : items;
    if (PERSISTENT && !w->next_item) {  // the counter starts at 0; each launch leaves it at 0
        w->next_item = (int *)device_alloc(sizeof(int), "item counter");
        CUDA_CHECK(cudaMemset(w->next_item, 0, sizeof(int)));
    }
    kernel<<<blocks, 128 * (1 + CONSUMERS), smem>>>(w->mq, w->mk, w->mv, O, LSE, heads, sq, sk, scale, causal,
                                                     w->next_item);
    CHECK_LAUNCH();
}

// a8: the fastest of a6 and a7 for the head dimension (64 or 128), the mask and the length,
// as measured on the H200: at d = 64 a7 (three consumers), or a6 with the causal mask up to
// sq = 1024; at d = 128 a6.
template <typename T>
static void a8_forward(WgmmaState *w, T *O, float *LSE, const T *Q, const T *K, const T *V, int heads, int sq,
                       int sk, int d, float scale, bool causal)
{
    if (d == 64 && !(causal && sq <= 1024))
        wgmma_forward<T, 64, 2, false, true, 3>(w, O, LSE, Q, K, V, heads, sq, sk, scale, causal);
    else if (d == 64) wgmma_forward<T, 64, 2, false, true>(w, O, LSE, Q, K, V, heads, sq, sk, scale, causal);
    else wgmma_forward<T, 128, 2, false, true>(w, O, LSE, Q, K, V, heads, sq, sk, scale, causal);
}
#line 57 "chapters/09-attention.md"
// <<attention-launchers>>
#line 1674 "chapters/09-attention.md"
static double scores_bytes(const Problem *p) { return 4.0 * p->b * p->h * p->sq * p->sk; }

// a0 needs S in the GPU's memory.
static const char *naive_unsupported(const Problem *p)
{
    static char why[128];
    size_t free_b = 0, total_b = 0;
    if (p->scores) return NULL;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    if (scores_bytes(p) + (64u << 20) <= (double)free_b) return NULL;
    snprintf(why, sizeof why, "S needs %.1f GiB, the GPU has %.1f GiB free", scores_bytes(p) / 1073741824.0,
             free_b / 1073741824.0);
    return why;
}

template <typename T>
static void launch_naive(Problem *p)
{
    if (!p->scores) p->scores = (float *)device_alloc((size_t)scores_bytes(p), "S");
    const unsigned bh = (unsigned)(p->b * p->h), qt = (unsigned)((p->sq + 31) / 32);
    attention_scores<T><<<dim3((p->sk + 31) / 32, qt, bh), dim3(32, 32)>>>(p->scores, (const T *)p->q, (const T *)p->k,
                                                                            p->sq, p->sk, p->d, p->scale, p->causal);
    CHECK_LAUNCH();
    attention_softmax_rows<<<(unsigned)rows_of(p), 256>>>(p->scores, p->lse, p->sk);
    CHECK_LAUNCH();
    attention_pv<T><<<dim3(p->d / 32, qt, bh), dim3(32, 32)>>>((T *)p->o, p->scores, (const T *)p->v, p->sq, p->sk,
                                                               p->d, p->causal);
    CHECK_LAUNCH();
}

template <typename T, int D, int BC>
static void launch_flash_simt_d(Problem *p)
{
    const int BR = 64, smem = flash_simt_floats<D, BR, BC>() * (int)sizeof(float);
    auto kernel = attention_flash_simt<T, D, BR, BC>;
    static bool opted = false;
    if (!opted) {
        CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
        opted = true;
    }
    kernel<<<dim3((p->sq + BR - 1) / BR, p->b * p->h), 256, smem>>>((T *)p->o, p->lse, (const T *)p->q, (const T *)p->k,
                                                                    (const T *)p->v, p->sq, p->sk, p->scale, p->causal);
    CHECK_LAUNCH();
}

// a2: Q, two tiles of K and two of V in shared memory; MT row tiles of 16 per warp.
template <typename T, int D, int MT, int BK>
static void launch_flash_mma_d(Problem *p)
{
    const int smem = (64 * MT + 4 * BK) * D * (int)sizeof(T);
    auto kernel = attention_flash_mma<T, D, MT, BK>;
    static bool opted = false;
    if (!opted) {
        CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
        opted = true;
    }
    kernel<<<dim3((p->sq + 64 * MT - 1) / (64 * MT), p->b * p->h), 128, smem>>>(
        (T *)p->o, p->lse, (const T *)p->q, (const T *)p->k, (const T *)p->v, p->sq, p->sk, p->scale, p->causal);
    CHECK_LAUNCH();
}

// a2: 16 rows per warp, tiles of 64 keys.
template <typename T>
static void launch_flash_mma(Problem *p)
{
    if (p->d == 64) launch_flash_mma_d<T, 64, 1, 64>(p);
    else launch_flash_mma_d<T, 128, 1, 64>(p);
}

// a3: 32 rows per warp, so that each fragment of K and V loaded from shared memory
// serves two row tiles.
template <typename T>
static void launch_flash_mma32(Problem *p)
{
    if (p->d == 64) launch_flash_mma_d<T, 64, 2, 64>(p);
    else launch_flash_mma_d<T, 128, 2, 64>(p);
}

// a4 to a8 need code for sm_90a (the Hopper GEMM chapter's probe).
// <<sm90a-probe>>
#line 955 "chapters/08-gemm-hopper.md"
// NULL where this build runs sm_90a code (wgmma, setmaxnreg) on this GPU, else why not:
// a probe kernel says which code the GPU loaded.
__global__ void sm90a_probe_kernel(int *has) { *has = SM90A_CODE; }

static const char *needs_sm90a_code(void)
{
    static int has = -1;
    if (needs_sm90()) return needs_sm90();
    if (has < 0) {
        int *d = (int *)device_alloc(sizeof(int), "probe");
        sm90a_probe_kernel<<<1, 1>>>(d);
        CHECK_LAUNCH();
        CUDA_CHECK(cudaMemcpy(&has, d, sizeof(int), cudaMemcpyDeviceToHost));
        CUDA_CHECK(cudaFree(d));
    }
    return has ? NULL : "needs sm_90a code: build with ARCH=sm_90";
}
#line 1754 "chapters/09-attention.md"
static const char *wgmma_unsupported(const Problem *p)
{
    (void)p;
    return needs_sm90a_code();
}

// The launch of attention_wgmma for one instance on a problem.
template <typename T, int D, int STAGES, bool OVERLAP, bool PERSISTENT, int CONSUMERS = 2, bool PING_PONG = false>
static void launch_wgmma_d(Problem *p)
{
    wgmma_forward<T, D, STAGES, OVERLAP, PERSISTENT, CONSUMERS, PING_PONG>(
        &p->wgmma, (T *)p->o, p->lse, (const T *)p->q, (const T *)p->k, (const T *)p->v, p->b * p->h, p->sq, p->sk,
        p->scale, p->causal);
}

template <typename T, bool OVERLAP, bool PERSISTENT>
static void launch_wgmma(Problem *p)
{
    if (p->d == 64) launch_wgmma_d<T, 64, OVERLAP ? 4 : 2, OVERLAP, PERSISTENT>(p);
    else launch_wgmma_d<T, 128, OVERLAP ? 3 : 2, OVERLAP, PERSISTENT>(p);
}

// a7: three consumers, 192 queries a block, a4's schedule in a6's persistent blocks; at
// d = 128 a consumer's share of the registers cannot hold O and the scores.
static const char *three_consumers_unsupported(const Problem *p)
{
    const char *why = needs_sm90a_code();
    return why ? why : p->d == 64 ? NULL : "needs head_dim 64";
}
template <typename T>
static void launch_three_consumers(Problem *p)
{
    launch_wgmma_d<T, 64, 2, false, true, 3>(p);
}

// a8: the fastest of a6 and a7 for the head dimension, the mask and the length, as
// measured on the H200.
template <typename T>
static void launch_dispatch(Problem *p)
{
    a8_forward<T>(&p->wgmma, (T *)p->o, p->lse, (const T *)p->q, (const T *)p->k, (const T *)p->v, p->b * p->h,
                  p->sq, p->sk, p->d, p->scale, p->causal);
}

// a9: a6 with the consumers' turns.
template <typename T>
static void launch_ping_pong(Problem *p)
{
    if (p->d == 64) launch_wgmma_d<T, 64, 2, false, true, 2, true>(p);
    else launch_wgmma_d<T, 128, 2, false, true, 2, true>(p);
}

// a1: key tiles of 64 at d = 64, of 32 at d = 128 (66 and 73 KiB of shared memory).
template <typename T>
static void launch_flash_simt(Problem *p)
{
    if (p->d == 64) launch_flash_simt_d<T, 64, 64>(p);
    else launch_flash_simt_d<T, 128, 32>(p);
}
#line 58 "chapters/09-attention.md"
// <<gemm-rate-kernels>>
#line 1338 "chapters/07-gemm.md"
// The FMA ceiling: eight independent chains of fused multiply-adds per thread.
__global__ void fma_rate_kernel(float *out, int iters)
{
    float x[8];
#pragma unroll
    for (int j = 0; j < 8; j++) x[j] = threadIdx.x * 1e-3f + j;
    for (int i = 0; i < iters; i++)
#pragma unroll
        for (int j = 0; j < 8; j++) x[j] = fmaf(x[j], 0.999f, 0.001f);
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < 8; j++) sum += x[j];
    if (sum == 12345.0f) *out = sum;  // keeps the chains alive; never true
}

// The mma.sync ceiling: every warp multiplies register tiles into eight independent
// accumulator tiles; the operands alternate +1 and -1, so the sums stay small.
template <typename T>
__global__ void mma_rate_kernel(float *out, int iters)
{
    uint32_t one = std::is_same<T, __half>::value ? 0x3C00BC00u : 0x3F80BF80u;  // {+1, -1} in either type
    uint32_t a[4] = {one, one, one, one}, b[2] = {one, one};
    a[0] ^= threadIdx.x & 1;  // not a constant the compiler could fold
    float d[8][4] = {};
    for (int i = 0; i < iters; i++)
#pragma unroll
        for (int j = 0; j < 8; j++) mma_16816<T>(d[j], a, b);
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < 8; j++) sum += d[j][0] + d[j][1] + d[j][2] + d[j][3];
    if (sum == 12345.0f) *out = sum;
}

// The rate a 64 x 64 warp tile can have: its four A fragments and eight B fragments, all
// different registers, into its 32 accumulator tiles, in t6's order (A outer). The
// register file now feeds six different operands to every eight mma.
template <typename T>
__global__ void mma_tile_rate_kernel(float *out, int iters)
{
    uint32_t one = std::is_same<T, __half>::value ? 0x3C00BC00u : 0x3F80BF80u;
    uint32_t a[4][4], b[8][2];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int q = 0; q < 4; q++) a[i][q] = one ^ ((threadIdx.x + i + q) & 1);
#pragma unroll
    for (int j = 0; j < 8; j++) b[j][0] = b[j][1] = one ^ ((threadIdx.x + j) & 1);
    float d[4][8][4] = {};
    for (int it = 0; it < iters; it++)
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int j = 0; j < 8; j++) mma_16816<T>(d[i][j], a[i], b[j]);
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 8; j++) sum += d[i][j][0] + d[i][j][1] + d[i][j][2] + d[i][j][3];
    if (sum == 12345.0f) *out = sum;
}

typedef struct {
    float *out;
    int blocks, iters;
    int kind;  // 0 FMA, 1 mma.sync, 2 mma.sync with a warp tile's operands
} RateArgs;

static void launch_rate(void *ctx)
{
    RateArgs *r = (RateArgs *)ctx;
    if (r->kind == 2) mma_tile_rate_kernel<__nv_bfloat16><<<r->blocks, 256>>>(r->out, r->iters / 4);
    else if (r->kind == 1) mma_rate_kernel<__nv_bfloat16><<<r->blocks, 256>>>(r->out, r->iters);
    else fma_rate_kernel<<<r->blocks, 256>>>(r->out, r->iters);
    CHECK_LAUNCH();
}
#line 59 "chapters/09-attention.md"
// <<the-attention-ceilings>>
#line 1826 "chapters/09-attention.md"
// Measures the FMA and mma.sync ceilings once (v NULL) and emits their rows; every
// version's pct_sol is against mma.sync.
static double attention_compute_ceiling(BenchRun *run, const Version *v)
{
    static double mma_tflops = 0.0;
    if (v) return mma_tflops;
    int dev = 0, sms = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    static const struct { int kind; const char *name, *dtype; double flops_per_chain; } CEILINGS[] = {
        {1, "mma-sync-ceiling", "bf16", 16 * 8 * 16 * 2},   // one m16n8k16 (first: the others' percentages are of it)
        {0, "fma-ceiling", "f32", 32 * 2},                  // a warp's FMA: 32 lanes, 2 operations each
    };
    RateArgs r = {(float *)device_alloc(sizeof(float), "sink"), 8 * sms, 4096, 0};
    for (const auto &c : CEILINGS) {
        r.kind = c.kind;
        Timing t = time_launches(launch_rate, &r, run->plan);
        double tflops = r.blocks * 8.0 * r.iters * 8 * c.flops_per_chain / (t.median_us * 1e6);  // 8 warps, 8 chains
        if (c.kind == 1) mma_tflops = tflops;
        Version cv = {c.name, "ceiling", c.dtype, "", NULL, NULL};
        Row row = row_from_time(run, &cv, "registers", t.median_us, 0.0, 0.0, NAN);
        row.tflops = tflops;
        row.pct_sol = 100.0 * tflops / mma_tflops;
        bench_emit(run, &row, NAN);
    }
    CUDA_CHECK(cudaFree(r.out));
    return 0.0;
}
#line 60 "chapters/09-attention.md"
// <<the-attention-version-table>>
#line 1862 "chapters/09-attention.md"
#define ATTENTION_VERSIONS(T, DT)                                                                               \
    {"a0-naive", "ours", DT, "S = Q K^T to global memory in float, a softmax kernel, then P V: three kernels",  \
     launch_naive<T>, naive_unsupported},                                                                     \
    {"a1-flash-simt", "ours", DT, "FlashAttention-1's online softmax over K and V tiles in shared memory, float " \
     "math on the SIMT units", launch_flash_simt<T>, NULL},                                                     \
    {"a2-flash-mma", "ours", DT, "FlashAttention-2 on mma.sync: Q in registers, K and V by cp.async, P as A "       \
     "fragments", launch_flash_mma<T>, NULL},                                                                  \
    {"a3-two-row-tiles", "ours", DT, "a2 with 32 rows per warp: each K and V fragment serves two row tiles",      \
     launch_flash_mma32<T>, NULL},                                                                             \
    {"a4-wgmma", "ours", DT, "both products on wgmma, K and V by the TMA, a producer and two consumer warpgroups", \
     launch_wgmma<T, false, false>, wgmma_unsupported},                                                              \
    {"a5-overlap", "ours", DT, "a4 with the scores of the next tile computed during the softmax of this one",   \
     launch_wgmma<T, true, false>, wgmma_unsupported},                                                               \
    {"a6-persistent", "ours", DT, "a4 with a block per SM taking query tiles from a counter, causal ones "       \
     "longest first", launch_wgmma<T, false, true>, wgmma_unsupported},                                              \
    {"a7-three-consumers", "ours", DT, "d = 64: three consumers of 64 queries in a6's persistent blocks",        \
     launch_three_consumers<T>, three_consumers_unsupported},                                                      \
    {"a8-dispatch", "ours", DT, "d = 64: a7, or a6 with the causal mask up to s = 1024; d = 128: a6",            \
     launch_dispatch<T>, wgmma_unsupported},                                                                    \
    {"a9-ping-pong", "ours", DT, "a6 with the consumers taking turns at their scores' products",                \
     launch_ping_pong<T>, wgmma_unsupported}

static const Version VERSIONS[] = {
    ATTENTION_VERSIONS(__nv_bfloat16, "bf16"),
    ATTENTION_VERSIONS(__half, "f16"),
};
#line 61 "chapters/09-attention.md"
// <<create-and-check-an-attention-problem>>
#line 1904 "chapters/09-attention.md"
// ============================================================ problems and checks
// "BxHxSQxSKxD" with an optional trailing "c" (causal). Returns NULL, or what is wrong.
static const char *parse_attention_size(const char *size, int *b, int *h, int *sq, int *sk, int *d, bool *causal)
{
    const char *want = "BxHxSQxSKxD, a trailing c for causal (2x3x65x65x64c): D 64 or 128, each length 1 to 2^20, "
                       "B x H at most 65535, each of Q, K, V at most 2^31 elements";
    int *dims[5] = {b, h, sq, sk, d};
    const char *s = size;
    char *end = NULL;
    for (int k = 0; k < 5; k++) {
        if (!isdigit((unsigned char)*s)) return want;
        unsigned long long v = strtoull(s, &end, 10);
        if (v == 0 || v > (1u << 20)) return want;
        *dims[k] = (int)v;
        if (k < 4 && *end != 'x') return want;
        s = end + 1;
    }
    *causal = *end == 'c';
    if (*end != '\0' && strcmp(end, "c") != 0) return want;
    if (*d != 64 && *d != 128) return want;
    if ((double)*b * *h > 65535 || (double)*b * *h * (*sq > *sk ? *sq : *sk) * *d > 2147483648.0) return want;
    return NULL;
}

static const char *attention_bad_size(const char *size)
{
    int b, h, sq, sk, d;
    bool causal;
    return parse_attention_size(size, &b, &h, &sq, &sk, &d, &causal);
}

static bool cpu_reference(const Problem *p) { return (double)p->b * p->h * p->sq * p->sk * p->d <= 2147483648.0; }

// Row `row` (b h and i flattened) of the reference, in double: O's d values, the bound on
// each before the final rounding and its scale A_c, the LSE and its bound.
static void reference_row(const Problem *p, size_t row, double *o, double *arith, double *scale, double *lse,
                          double *lse_arith)
{
    const int d = p->d, i = (int)(row % p->sq), end = keys_seen(i, p->sq, p->sk, p->causal);
    const size_t bh = row / p->sq;
    const float *q = p->hq + row * d, *k = p->hk + bh * p->sk * d, *v = p->hv + bh * p->sk * d;
    for (int c = 0; c < d; c++) o[c] = arith[c] = scale[c] = 0.0;
    *lse = -INFINITY;
    *lse_arith = 0.0;
    if (end == 0) return;  // no key: O = 0, LSE = -inf, exactly
    double *x = (double *)host_alloc(2 * end * sizeof(double), "scores"), *a = x + end, m = -INFINITY;
    for (int j = 0; j < end; j++) {
        double dot = 0.0, mag = 0.0;
        for (int c = 0; c < d; c++) {
            double prod = (double)q[c] * k[(size_t)j * d + c];
            dot += prod;
            mag += fabs(prod);
        }
        x[j] = p->scale * dot;
        a[j] = p->scale * mag;
        m = fmax(m, x[j]);
    }
    double rel, floor_, l = 0.0, f = 0.0, u = 0x1p-24, *err = (double *)host_alloc(d * sizeof(double), "bound");
    p_rounding_of(p->dtype, &rel, &floor_);
    for (int c = 0; c < d; c++) err[c] = 0.0;
    for (int j = 0; j < end; j++) {
        double pj = exp(x[j] - m), delta = score_budget(a[j], x[j], fabs(m) + MAX_LAG, d) * u, rho = p_rounding(pj, rel, floor_);
        l += pj;
        f += pj * delta;
        for (int c = 0; c < d; c++) {
            double vc = v[(size_t)j * d + c];
            o[c] += pj * vc;
            scale[c] += pj * fabs(vc);
            err[c] += (pj * delta + rho) * fabs(vc);
        }
    }
    f /= l;
    double gamma = sums_gamma(p->sk);
    for (int c = 0; c < d; c++) {
        o[c] /= l;
        scale[c] /= l;
        arith[c] = output_bound(err[c] / l, scale[c], o[c], f, gamma);
    }
    *lse = m + log(l);
    *lse_arith = lse_bound(f, gamma, log(l) + MAX_LAG, *lse, fabs(m) + MAX_LAG);
    free(x);
    free(err);
}

// The float32 reference on the GPU, into the problem's reference arrays (as doubles).
static void gpu_reference(Problem *p)
{
    size_t rows = rows_of(p), n = rows * p->d;
    float *dev[5];
    size_t counts[5] = {n, n, n, rows, rows};
    double *host[5] = {p->ref_o, p->arith_o, p->scale_o, p->ref_lse, p->arith_lse};
    for (int a = 0; a < 5; a++) dev[a] = (float *)device_alloc(counts[a] * sizeof(float), "reference");
    attention_reference_on_gpu(dev, p->q, p->k, p->v, rows, p->sq, p->sk, p->d, p->scale, p->causal, p->dtype);
    float *h = (float *)host_alloc(n * sizeof(float), "reference");
    for (int a = 0; a < 5; a++) {
        CUDA_CHECK(cudaMemcpy(h, dev[a], counts[a] * sizeof(float), cudaMemcpyDeviceToHost));
#pragma omp parallel for schedule(static)
        for (size_t e = 0; e < counts[a]; e++) host[a][e] = h[e];
        CUDA_CHECK(cudaFree(dev[a]));
    }
    free(h);
}

static void make_reference(Problem *p)
{
    if (p->ref_o) return;
    size_t rows = rows_of(p), n = rows * p->d;
    double **arrays[5] = {&p->ref_o, &p->arith_o, &p->scale_o, &p->ref_lse, &p->arith_lse};
    for (int a = 0; a < 5; a++) *arrays[a] = (double *)host_alloc((a < 3 ? n : rows) * sizeof(double), "reference");
    if (cpu_reference(p)) {
        p->ref_factor = 1.0;
#pragma omp parallel for schedule(dynamic, 4)
        for (size_t r = 0; r < rows; r++)
            reference_row(p, r, p->ref_o + r * p->d, p->arith_o + r * p->d, p->scale_o + r * p->d, &p->ref_lse[r],
                          &p->arith_lse[r]);
    } else {
        p->ref_factor = 2.0;
        gpu_reference(p);
    }
}


// The rows checked against the CPU where the GPU's reference is used: the first and the
// last, the first that sees a key (causal) and its neighbours, a tile edge, then seeded.
enum { SAMPLE_ROWS = 256 };

static void sample_rows(const Problem *p, size_t *rows)
{
    size_t all = rows_of(p), n = 0, first_seen = p->sq > p->sk ? (size_t)(p->sq - p->sk) : 0;
    size_t fixed[] = {0, all - 1, first_seen, first_seen + 1, all - p->sq + first_seen, 63, 64, 127, 128};
    for (size_t f = 0; f < sizeof fixed / sizeof fixed[0]; f++) rows[n++] = fixed[f] < all ? fixed[f] : all - 1;
    uint64_t state = 0x5eed ^ (uint64_t)all;
    while (n < SAMPLE_ROWS) rows[n++] = rng_next(&state) % all;
}

static CheckResult attention_check(Problem *p, const char *version)
{
    make_reference(p);
    size_t rows = rows_of(p), d = p->d;
    double *got_o = download(p->o, rows * d, p->dtype), *got_lse = download(p->lse, rows, F32);
    const char *what = cpu_reference(p) ? "CPU" : "GPU float32";
    CheckResult r = check_rows(p->dtype, p->size, p->d, version, what, got_o, p->ref_o, p->arith_o, p->scale_o,
                               got_lse, p->ref_lse, p->arith_lse, rows, p->ref_factor);
    if (!cpu_reference(p)) {  // and a sample of rows against the CPU in double
        size_t picked[SAMPLE_ROWS];
        sample_rows(p, picked);
        double *buf = (double *)host_alloc(SAMPLE_ROWS * (4 * d + 3) * sizeof(double), "sample");
        double *so = buf, *sr = so + SAMPLE_ROWS * d, *sa = sr + SAMPLE_ROWS * d, *ss = sa + SAMPLE_ROWS * d;
        double *sl = ss + SAMPLE_ROWS * d, *srl = sl + SAMPLE_ROWS, *sal = srl + SAMPLE_ROWS;
#pragma omp parallel for schedule(dynamic, 1)
        for (int s = 0; s < SAMPLE_ROWS; s++) {
            size_t row = picked[s];
            for (size_t c = 0; c < d; c++) so[s * d + c] = got_o[row * d + c];
            sl[s] = got_lse[row] == NO_KEY ? -INFINITY : got_lse[row];
            reference_row(p, row, sr + s * d, sa + s * d, ss + s * d, &srl[s], &sal[s]);
        }
        add_check(&r, check_rows(p->dtype, p->size, p->d, version, "CPU sample", so, sr, sa, ss, sl, srl, sal,
                                 SAMPLE_ROWS, 1.0));
        free(buf);
    }
    free(got_o);
    free(got_lse);
    return r;
}
#line 2075 "chapters/09-attention.md"
// q, k, v uniform in [-1, 2), rounded to the element type; one row of q in eight times 24
// and one in eight times -24: scores of +-100 and more.
static void fill_inputs(Problem *p, uint64_t seed)
{
    size_t nq = rows_of(p) * p->d, nk = (size_t)p->b * p->h * p->sk * p->d;
    fill_uniform_f32(p->hq, nq, -1.0f, 2.0f, seed);
    fill_uniform_f32(p->hk, nk, -1.0f, 2.0f, seed + 1);
    fill_uniform_f32(p->hv, nk, -1.0f, 2.0f, seed + 2);
    uint64_t state = seed + 3;
    for (size_t r = 0; r < rows_of(p); r++) {
        double u = rng_uniform(&state);
        float gain = u < 0.125 ? 24.0f : u < 0.25 ? -24.0f : 1.0f;
        for (int c = 0; c < p->d; c++) p->hq[r * p->d + c] *= gain;
    }
    float *arrays[3] = {p->hq, p->hk, p->hv};
    size_t counts[3] = {nq, nk, nk};
    for (int a = 0; a < 3; a++) {
#pragma omp parallel for schedule(static)
        for (size_t e = 0; e < counts[a]; e++) arrays[a][e] = round_to(p->dtype, arrays[a][e]);
    }
}

static Problem *attention_create(const char *dtype, const char *size, uint64_t seed)
{
    Problem *p = (Problem *)host_alloc(sizeof(Problem), "problem");
    memset(p, 0, sizeof *p);
    const char *bad = parse_attention_size(size, &p->b, &p->h, &p->sq, &p->sk, &p->d, &p->causal);
    if (bad) usage_error("bad size", size, bad);
    p->dtype = parse_dtype(dtype);
    snprintf(p->size, sizeof p->size, "%s", size);
    p->scale = (float)(1.0 / sqrt((double)p->d));
    size_t nq = rows_of(p) * p->d, nk = (size_t)p->b * p->h * p->sk * p->d, e = dtype_bytes(p->dtype);
    // Q, K, V, O, the LSE, and beyond the CPU's reach the GPU reference's five arrays
    check_fits(size, (2 * nq + 2 * nk) * e + rows_of(p) * 4 + (cpu_reference(p) ? 0 : (3 * nq + 2 * rows_of(p)) * 4) +
                         (64u << 20));
    p->hq = (float *)host_alloc(nq * sizeof(float), "Q");
    p->hk = (float *)host_alloc(nk * sizeof(float), "K");
    p->hv = (float *)host_alloc(nk * sizeof(float), "V");
    fill_inputs(p, seed);
    p->q = device_alloc(nq * e, "Q");
    p->k = device_alloc(nk * e, "K");
    p->v = device_alloc(nk * e, "V");
    p->o = device_alloc(nq * e, "O");
    p->lse = (float *)device_alloc(rows_of(p) * sizeof(float), "LSE");
    upload(p->q, p->hq, nq, p->dtype);
    upload(p->k, p->hk, nk, p->dtype);
    upload(p->v, p->hv, nk, p->dtype);
    return p;
}

static void attention_destroy(Problem *p)
{
    void *arrays[] = {p->q, p->k, p->v, p->o, p->lse, p->scores, p->wgmma.next_item};
    for (size_t a = 0; a < sizeof arrays / sizeof arrays[0]; a++)
        if (arrays[a]) CUDA_CHECK(cudaFree(arrays[a]));
    double *refs[] = {p->ref_o, p->arith_o, p->scale_o, p->ref_lse, p->arith_lse};
    for (size_t a = 0; a < sizeof refs / sizeof refs[0]; a++) free(refs[a]);
    free(p->hq);
    free(p->hk);
    free(p->hv);
    free(p);
}

static void attention_poison(Problem *p)
{
    poison(p->o, rows_of(p) * p->d * dtype_bytes(p->dtype));
    poison(p->lse, rows_of(p) * sizeof(float));
}

// Q, K, V read once; O and the LSE written once.
static double attention_bytes(const Problem *p)
{
    return (2.0 * rows_of(p) * p->d + 2.0 * p->b * p->h * p->sk * p->d) * dtype_bytes(p->dtype) + 4.0 * rows_of(p);
}

// 4 b h sq sk d, halved when causal (FlashAttention's convention).
static double attention_flops(const Problem *p)
{
    return 4.0 * p->b * p->h * p->sq * p->sk * p->d / (p->causal ? 2.0 : 1.0);
}
#line 2163 "chapters/09-attention.md"
// A host-only problem for the CPU tests: d columns, q (sq rows) and k, v (sk rows) given.
static Problem host_problem(int sq, int sk, int d, bool causal, float scale, float *q, float *k, float *v)
{
    Problem p;
    memset(&p, 0, sizeof p);
    p.dtype = BF16;
    p.b = p.h = 1;
    p.sq = sq;
    p.sk = sk;
    p.d = d;
    p.causal = causal;
    p.scale = scale;
    p.hq = q;
    p.hk = k;
    p.hv = v;
    return p;
}

static bool close_to(double got, double want) { return fabs(got - want) <= 1e-6 * fmax(1.0, fabs(want)); }

static int attention_self_test(void)
{
    int passed = 0, failed = 0, b, h, sq, sk, d;
    bool causal;
    SELF_TEST(!parse_attention_size("2x3x65x65x64c", &b, &h, &sq, &sk, &d, &causal) && b == 2 && h == 3 &&
              sq == 65 && sk == 65 && d == 64 && causal);
    SELF_TEST(!parse_attention_size("1x16x16384x16384x128", &b, &h, &sq, &sk, &d, &causal) && sq == 16384 && !causal);
    SELF_TEST(parse_attention_size("2x3x65x65x32", &b, &h, &sq, &sk, &d, &causal) != NULL);  // d is 64 or 128
    SELF_TEST(parse_attention_size("2x3x65x65", &b, &h, &sq, &sk, &d, &causal) != NULL);
    SELF_TEST(parse_attention_size("2x3x65x65x64cc", &b, &h, &sq, &sk, &d, &causal) != NULL);
    SELF_TEST(parse_attention_size("2x3x65x65x64x", &b, &h, &sq, &sk, &d, &causal) != NULL);
    SELF_TEST(parse_attention_size("0x3x65x65x64", &b, &h, &sq, &sk, &d, &causal) != NULL);
    SELF_TEST(parse_attention_size(" 1x1x1x1x64", &b, &h, &sq, &sk, &d, &causal) != NULL);
    SELF_TEST(parse_attention_size("256x256x1x1x64", &b, &h, &sq, &sk, &d, &causal) != NULL);  // b h > 65535
    // causal, aligned to the bottom right: the last query sees every key
    SELF_TEST(keys_seen(0, 3, 3, true) == 1 && keys_seen(2, 3, 3, true) == 3 && keys_seen(0, 3, 3, false) == 3);
    SELF_TEST(keys_seen(0, 3, 2, true) == 0 && keys_seen(1, 3, 2, true) == 1 && keys_seen(2, 3, 2, true) == 2);
    SELF_TEST(keys_seen(0, 2, 5, true) == 4 && keys_seen(1, 2, 5, true) == 5);
    // By hand, d = 2, scale 1: q0 = (ln 3, 0) scores 0 and ln 3 against k0 = (0, 1), k1 = (1, 0):
    // weights 1/4 and 3/4, O = (4, -8) / 4 + 3 (8, 4) / 4 = (7, 1), LSE = ln 4. q1 = (0, 2): scores
    // 2 and 0, O = (e^2 v0 + v1) / (e^2 + 1), LSE = ln(e^2 + 1).
    float q[4] = {(float)log(3.0), 0, 0, 2}, k[4] = {0, 1, 1, 0}, v[4] = {4, -8, 8, 4};
    double o[2], arith[2], scale[2], lse, lse_arith, e2 = exp(2.0);
    Problem p = host_problem(2, 2, 2, false, 1.0f, q, k, v);
    reference_row(&p, 0, o, arith, scale, &lse, &lse_arith);
    SELF_TEST(close_to(o[0], 7.0) && close_to(o[1], 1.0) && close_to(lse, log(4.0)) &&
              close_to(scale[1], 0.25 * 8 + 0.75 * 4));
    reference_row(&p, 1, o, arith, scale, &lse, &lse_arith);
    SELF_TEST(close_to(o[0], (4 * e2 + 8) / (e2 + 1)) && close_to(o[1], (-8 * e2 + 4) / (e2 + 1)) &&
              close_to(lse, log(e2 + 1)));
    // bfloat16: the rounding of P dominates O's bound, 2 2^-8 of A_c; the LSE's is a few u
    SELF_TEST(arith[0] > 0x1p-7 * scale[0] && arith[0] < 1.001 * 0x1p-7 * scale[0] && lse_arith > 0 && lse_arith < 1e-5);
    p.causal = true;  // row 0 sees key 0 alone: O = v0, LSE = its score, 0
    reference_row(&p, 0, o, arith, scale, &lse, &lse_arith);
    SELF_TEST(o[0] == 4.0 && o[1] == -8.0 && lse == 0.0);
    // sq = 3 > sk = 2, causal: query 0 sees no key, O = 0 and LSE = -inf exactly
    float q3[6] = {1, 2, 3, 4, 5, 6};
    p = host_problem(3, 2, 2, true, 1.0f, q3, k, v);
    reference_row(&p, 0, o, arith, scale, &lse, &lse_arith);
    SELF_TEST(o[0] == 0.0 && o[1] == 0.0 && lse == -INFINITY && arith[0] == 0.0 && lse_arith == 0.0);
    reference_row(&p, 1, o, arith, scale, &lse, &lse_arith);
    SELF_TEST(o[0] == 4.0 && o[1] == -8.0 && lse == 4.0);  // key 0 alone, score (3, 4) . (0, 1) = 4
    // softmax rows sum to 1: with V all ones every output is 1, large scores included
    Problem r;
    memset(&r, 0, sizeof r);
    r.dtype = F16;
    r.b = 1;
    r.h = 2;
    r.sq = r.sk = 40;
    r.d = 64;
    r.causal = true;
    r.scale = 0.125f;
    size_t n = (size_t)r.b * r.h * r.sq * r.d;
    r.hq = (float *)host_alloc(3 * n * sizeof(float), "inputs");
    r.hk = r.hq + n;
    r.hv = r.hk + n;
    fill_inputs(&r, 7);
    double largest = 0.0, worst = 0.0;
    for (size_t e = 0; e < n; e++) r.hv[e] = 1.0f;
    for (size_t e = 0; e < n; e++) largest = fmax(largest, fabs(r.hq[e]));
    double oo[64], aa[64], ss[64];
    for (size_t row = 0; row < rows_of(&r); row++) {
        reference_row(&r, row, oo, aa, ss, &lse, &lse_arith);
        for (int c = 0; c < r.d; c++) worst = fmax(worst, fabs(oo[c] - 1.0));
    }
    SELF_TEST(largest >= 24.0 && worst < 1e-12);
    free(r.hq);
    // the rounding term: at least twice the harness's half gap, at most four times
    DType types[2] = {BF16, F16};
    double ps[4] = {1.0, 0.3, 1e-3, 1e-6};  // 1e-6: a float16 subnormal
    bool ok = true;
    for (int t = 0; t < 2; t++) {
        double rel, floor_;
        p_rounding_of(types[t], &rel, &floor_);
        for (int s = 0; s < 4; s++) {
            double rho = p_rounding(ps[s], rel, floor_), hs = half_spacing(types[t], ps[s]);
            ok = ok && rho >= 2 * hs && rho <= 4 * hs;
        }
    }
    SELF_TEST(ok);
    printf("attention: %d passed, %d failed\n", passed, failed);
    return failed;
}
#line 62 "chapters/09-attention.md"
// <<the-attention-chapter>>
#line 2275 "chapters/09-attention.md"
static const char *const DTYPES[] = {"bf16", "f16"};
static const char *const BENCH_SIZES[] = {
    "32x16x512x512x128",  "16x16x1024x1024x128",  "8x16x2048x2048x128",  "4x16x4096x4096x128",
    "2x16x8192x8192x128", "1x16x16384x16384x128", "32x16x512x512x128c",  "16x16x1024x1024x128c",
    "8x16x2048x2048x128c", "4x16x4096x4096x128c", "2x16x8192x8192x128c", "1x16x16384x16384x128c",
    "32x32x512x512x64",   "16x32x1024x1024x64",   "8x32x2048x2048x64",   "4x32x4096x4096x64",
    "2x32x8192x8192x64",  "1x32x16384x16384x64",  "32x32x512x512x64c",   "16x32x1024x1024x64c",
    "8x32x2048x2048x64c", "4x32x4096x4096x64c",   "2x32x8192x8192x64c",  "1x32x16384x16384x64c"};
static const char *const CHECK_SIZES[] = {
    "1x1x1x1x64",        "1x1x1x1x128c",     "1x3x31x31x64c",     "3x1x31x31x128",      "2x3x65x65x64",
    "1x1x65x65x128c",    "3x3x65x31x64c",    "1x3x31x65x128c",    "1x1x2049x1x64c",     "1x2x1x2049x128c",
    "3x1x1000x1500x64",  "1x1x1023x1023x128c", "1x3x1023x1023x64", "1x1x2049x2049x64c", "1x1x2049x2049x128",
    "2x8x4096x4096x64c", "1x4x4097x3000x128", "8x16x2048x2048x128"};

static const Chapter ATTENTION = {
    "attention", "exact attention forward, O = softmax(Q K^T scale) V and the LSE, bf16 and f16",
    VERSIONS, sizeof VERSIONS / sizeof VERSIONS[0],
    DTYPES, 2, BENCH_SIZES, sizeof BENCH_SIZES / sizeof BENCH_SIZES[0],
    CHECK_SIZES, sizeof CHECK_SIZES / sizeof CHECK_SIZES[0],
    "copy", "a0-naive", attention_bad_size,
    attention_create, attention_destroy, attention_poison, attention_check, attention_bytes, attention_flops,
    NULL, attention_self_test, attention_compute_ceiling,
};

int main(int argc, char **argv) { return harness_main(&ATTENTION, argc, argv); }
