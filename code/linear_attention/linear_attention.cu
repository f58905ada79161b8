#line 102 "chapters/11-linear-attention.md"
// linear_attention.cu: causal linear attention, o_t = tau q_t^T sum_{s<=t} gamma^(t-s) k_s v_s^T, without
// decay (gamma = 1) or with a decay per head, forward and backward: the recurrence on the SIMT units, the
// quadratic form and the chunkwise form on mma.sync, the last also on segments of the sequence in parallel,
// and the chunkwise form on wgmma and the TMA.
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
#line 113 "chapters/11-linear-attention.md"
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
#line 114 "chapters/11-linear-attention.md"
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
#line 115 "chapters/11-linear-attention.md"
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
#line 116 "chapters/11-linear-attention.md"
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
#line 117 "chapters/11-linear-attention.md"
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
#line 118 "chapters/11-linear-attention.md"
// <<what-the-wgmma-kernels-keep-between-launches>>
#line 137 "chapters/09-attention.md"
typedef struct {
    bool mapped;             // the tensor maps of q, k, v, made at the first launch; q in boxes of 64 rows
    CUtensorMap mq, mk, mv;
    int *next_item;          // device: the dynamic schedule's counter of items taken, 0 between launches
} WgmmaState;
#line 119 "chapters/11-linear-attention.md"
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
#line 120 "chapters/11-linear-attention.md"
// <<the-linear-attention-problem>>
#line 161 "chapters/11-linear-attention.md"
typedef enum { FWD, BWD, FWD_BWD } Op;  // what a version computes: O; dQ, dK, dV; all four
enum { IN_Q, IN_K, IN_V, IN_DO };       // the inputs
enum { OUT_O, OUT_DQ, OUT_DK, OUT_DV };  // the outputs, each a causal product of three inputs (PARTS)

struct Problem {
    DType dtype;
    char size[64];
    int b, h, s, d;          // batch, heads, tokens, head dimension (64 or 128)
    float scale;             // tau = 1 / sqrt(d), rounded to float once
    Op op;                   // set by each launcher
    int decayed;             // set by each launcher: 1 for the versions with a decay per head (d0 ...)
    float *gamma;            // host: the decay gamma_h of each head (decay_of_head), rounded to float once
    float *decay;            // device: the h gammas, then their h log2s, each rounded to float once
    void *in[4];             // device, element type, (b, h, s, d) each: Q, K, V, dO
    void *out[4];            // the same: O, dQ, dK, dV
    float *host[4];          // host copies of the inputs as the device sees them (rounded)
    // the reference of each output, computed at its first check, without decay and with it (slot
    // part + 4 decayed): each element, the float arithmetic's bound on its error (before the final
    // rounding), the scale its relative error is reported against; ref_factor 2 against the GPU's
    // float32 reference, 1 against the CPU's
    double *ref[8], *arith[8], *scale_of[8];
    double ref_factor;
    float *states;           // l4's and lb4's states entering each segment, allocated at the first launch
    bool mapped;             // the tensor maps of Q, K, V and dO for l5, l6 and their backward, made at
    CUtensorMap maps[4];     // their first launch
    size_t *sample_rows;     // where the GPU's reference is used: the rows also computed on the
    double *sample[8];       // CPU, and each output's values, bounds and scales there (3 x SAMPLE_ROWS x d), by slot
    // softmax-a8, the attention chapter's causal softmax forward on the same Q, K, V: its O
    // (b, h, s, d) and LSE (b, h, s) and its tensor maps, made at its first launch
    void *softmax_o;
    float *softmax_lse;
    WgmmaState softmax_wgmma;
};

static size_t elements_of(const Problem *p) { return (size_t)p->b * p->h * p->s * p->d; }

// Where the reference of output `part` of the last launch is kept: without decay, or with it.
static int slot_of(const Problem *p, int part) { return part + 4 * p->decayed; }
#line 1647 "chapters/11-linear-attention.md"
// Each output as a causal product o_t = tau sum (q_t . k_j) v_j: which inputs play q, k and v,
// and whether token t sees j <= t or, mirrored (reverse), j >= t.
static const struct {
    int q, k, v, reverse;
    const char *name;
} PARTS[4] = {{IN_Q, IN_K, IN_V, 0, "O"}, {IN_DO, IN_V, IN_K, 0, "dQ"}, {IN_V, IN_DO, IN_Q, 1, "dK"},
              {IN_K, IN_Q, IN_DO, 1, "dV"}};
#line 121 "chapters/11-linear-attention.md"
// <<the-decay-of-each-head>>
#line 1931 "chapters/11-linear-attention.md"
// The decay of each head, gamma_h in (0, 1]: S_t = gamma S_(t-1) + k_t v_t^T. On the device, per
// head, gamma and log2(gamma), each rounded to float once; head bh % heads of the flattened (b h).
// The versions without decay pass gamma = NULL.
struct Decay {
    const float *gamma, *log2_gamma;  // (h) each
    int heads;
};

// gamma_h = 1 - 2^(-5 - 7 h / (H - 1)): RetNet's 1 - 2^(-5 - h) at 8 heads, its range 2^-5 to 2^-12
// spread evenly in the exponent over any number H of heads; 31/32 for one head. Rounded to float once.
static float decay_of_head(int h, int heads)
{
    return (float)(1.0 - exp2(-5.0 - 7.0 * h / (heads > 1 ? heads - 1 : 1)));
}

// delta_t / u, the powers' share of the bound for output t (n = t + 1 tokens seen) of a head with
// |ln gamma| = log_gamma: 9 units for each power on a product's way (at most n / 64 + 2 of them),
// and 12 per unit of n |ln gamma| for the rounding of their arguments.
template <typename R> __host__ __device__ inline R decay_budget(int n, R log_gamma)
{
    return 9 * ((R)n / 64 + 2) + 12 * (R)n * log_gamma;
}

// gamma^0 .. gamma^N of a head into shared memory, pw[n] = 2^(n log2 gamma), by `threads` threads:
// read after the next barrier.
template <int N> __device__ inline void decay_powers(float *pw, float log2_gamma, int threads)
{
    for (int n = threadIdx.x; n <= N; n += threads) pw[n] = exp2f((float)n * log2_gamma);
}

// The decay matrix on a tile of scores laid out as m16n8 accumulators (as in zero_unseen_scores: N
// per thread, element i on row row0 + 8 ((i / 2) % 2) and key key0 + 8 (i / 4) + 2 t + i % 2): the
// score of key j on row i times gamma^(i - j), read from pw, and 0 where j > i.
template <int N>
__device__ inline void decay_future_scores(float *x, int key0, int row0, int t, const float *pw)
{
#pragma unroll
    for (int i = 0; i < N; i++) {
        const int lag = row0 + 8 * ((i / 2) % 2) - (key0 + 8 * (i / 4) + 2 * t + i % 2);
        x[i] = lag < 0 ? 0.0f : x[i] * pw[max(lag, 0)];
    }
}

// A register of two 16-bit elements (of an mma fragment) times a and b, in float, rounded back to T.
template <typename T> __device__ inline uint32_t scale_pair(uint32_t pair, float a, float b);
template <> __device__ inline uint32_t scale_pair<__nv_bfloat16>(uint32_t pair, float a, float b)
{
    // a bfloat16 is the top half of a float: the low element, shifted up, and the high one, masked
    return pack2<__nv_bfloat16>(__uint_as_float(pair << 16) * a, __uint_as_float(pair & 0xffff0000u) * b);
}
template <> __device__ inline uint32_t scale_pair<__half>(uint32_t pair, float a, float b)
{
    return pack2<__half>(__half2float(__ushort_as_half((unsigned short)(pair & 0xffffu))) * a,
                         __half2float(__ushort_as_half((unsigned short)(pair >> 16))) * b);
}

// The warp's tiles of the state (float accumulators) times a power of gamma.
template <int UNITS> __device__ inline void scale_state(float st[UNITS][2][4], float by)
{
#pragma unroll
    for (int u = 0; u < UNITS; u++)
#pragma unroll
        for (int e = 0; e < 4; e++) st[u][0][e] *= by, st[u][1][e] *= by;
}
#line 122 "chapters/11-linear-attention.md"
// <<how-far-a-linear-attention-output-may-be-from-exact>>
#line 266 "chapters/11-linear-attention.md"
// The bound on |computed - exact| for one output element o_tc, before its final rounding:
// m = M_tc (the sum of |q_ti k_si v_sc| over s <= t and i, each times gamma^(t-s) with a decay),
// vabs = sum_{s<=t} |v_sc|, qabs = sum_i |q_ti|, n = t + 1 tokens seen; eps = 2^-t and
// floor = 2^(emin - t) of the element type (p_rounding_of). With a decay (0 without): xabs =
// X_t = sum_{s<=t} sum_i |q_ti k_si|, and decay = delta_t / u (decay_budget). Written for
// R = double (CPU) and R = float (GPU).
template <typename R>
__host__ __device__ inline R linear_bound(R m, R vabs, R qabs, R xabs, R tau, int n, int d, R eps, R floor, R decay)
{
    const R u = (R)0x1p-24;
    const R sums = ((R)n + (R)d + 4 + decay) * u;  // (t + d + 5) u with n = t + 1, and delta_t
    return tau * ((2 * eps + sums) * m + 2 * floor * (vabs + qabs + xabs));
}
#line 123 "chapters/11-linear-attention.md"
// <<linear-attention-kernels>>
#line 334 "chapters/11-linear-attention.md"
// One causal product, o_t = tau sum (q_t . k_j) v_j over the tokens j that t sees: j <= t, or,
// mirrored in time (reverse), j >= t. The forward is one; the backward is three, with the roles
// of Q, K, V and dO exchanged. Device arrays of (b, h, s, d) elements each.
template <typename T> struct LinearPass {
    T *o;
    const T *q, *k, *v;
    int reverse;
};
template <typename T> struct LinearPasses {
    LinearPass<T> pass[3];
    int n;
};

// Pass k of a list, picked with constant indices: an index known only at run time would copy
// the kernel's parameters to a stack frame in local memory.
template <typename T>
__device__ inline LinearPass<T> pass_at(LinearPasses<T> passes, int k)
{
    return k == 0 ? passes.pass[0] : k == 1 ? passes.pass[1] : passes.pass[2];
}

// Token j of a pass's walk (0, 1, ...): the token itself, or, mirrored, s - 1 - j.
__host__ __device__ inline int walk_token(int j, int s, int reverse) { return reverse ? s - 1 - j : j; }

// A 4-byte word holding two neighbouring 16-bit elements, the first at the lower address, as
// two floats.
template <typename T> __device__ inline void unpack_pair(uint32_t w, float *first, float *second)
{
    T pair[2];
    memcpy(pair, &w, sizeof w);
    *first = to_float(pair[0]);
    *second = to_float(pair[1]);
}

// l0 and lb0, and the float32 reference: the recurrence, a block per head and pass (blockIdx.y)
// and a thread per column c of the state S (S_ic = sum k_ji v_jc over the tokens walked, D
// floats in registers); tokens staged through shared memory TT at a time, as floats. BOUND: the
// float32 reference, 2 D threads; the second D keep the state of magnitudes, sum |k_j| |v_jc|,
// and write the bound (linear_bound) and its scale tau M_tc; the output goes to Of in float.
// Otherwise the pass's o, rounded to T. DECAY: S = gamma S + k v^T, gamma the head's, magnitudes
// alike (the bound's floor X_t is added on the host). Grid: (b h, passes).
template <typename T, int D, bool BOUND, bool DECAY>
__global__ void __launch_bounds__(BOUND ? 2 * D : D)
    linear_recurrent(LinearPasses<T> passes, Decay decay, float *Of, float *arith, float *scale_out, int s, float tau,
                     float eps, float floor_)
{
    constexpr int TT = 16, THREADS = BOUND ? 2 * D : D;
    __shared__ float Qs[TT][D], Ks[TT][D], Vs[TT][D];  // (tokens, D) each
    const LinearPass<T> ps = pass_at(passes, blockIdx.y);
    const int c = threadIdx.x % D;
    const bool absolute = BOUND && threadIdx.x >= D;
    const size_t head = (size_t)blockIdx.x * s * D;  // the head's first element
    // DECAY: the head's gamma, and |ln gamma| for the bound
    const float gamma = DECAY ? decay.gamma[blockIdx.x % decay.heads] : 1.0f;
    const float log_gamma = DECAY ? -0.6931472f * decay.log2_gamma[blockIdx.x % decay.heads] : 0.0f;
    float S[D];  // column c of the state (of magnitudes, for the absolute threads)
#pragma unroll
    for (int i = 0; i < D; i++) S[i] = 0.0f;
    float vabs = 0.0f;  // sum |v_jc| over the tokens walked, for the bound
    // the thread's share of a group of TT tokens, pairs of neighbouring elements of each array
    // (pair threadIdx.x + THREADS u, one 4-byte load), loaded into registers one group ahead:
    // all 3 PER loads in flight at once
    constexpr int PER = TT * D / 2 / THREADS;
    uint32_t nq[PER], nk[PER], nv[PER];
    auto load_group = [&](int t0) {
#pragma unroll
        for (int u = 0; u < PER; u++) {
            const int e = 2 * (threadIdx.x + THREADS * u);
            if (t0 + e / D < s) {
                const size_t at = head + (size_t)walk_token(t0 + e / D, s, ps.reverse) * D + e % D;
                nq[u] = *reinterpret_cast<const uint32_t *>(ps.q + at);
                nk[u] = *reinterpret_cast<const uint32_t *>(ps.k + at);
                nv[u] = *reinterpret_cast<const uint32_t *>(ps.v + at);
            }
        }
    };
    load_group(0);
    for (int t0 = 0; t0 < s; t0 += TT) {
        const int n = min(TT, s - t0);
        __syncthreads();  // every thread is done with the previous tokens
#pragma unroll
        for (int u = 0; u < PER; u++) {
            const int e = 2 * (threadIdx.x + THREADS * u), j = e / D, i = e % D;
            if (j < n) {
                unpack_pair<T>(nq[u], &Qs[j][i], &Qs[j][i + 1]);
                unpack_pair<T>(nk[u], &Ks[j][i], &Ks[j][i + 1]);
                unpack_pair<T>(nv[u], &Vs[j][i], &Vs[j][i + 1]);
            }
        }
        __syncthreads();
        if (t0 + TT < s) load_group(t0 + TT);  // the next group's loads run beside this group's steps
        for (int j = 0; j < n; j++) {
            const float v = absolute ? fabsf(Vs[j][c]) : Vs[j][c];
            float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f}, qabs = 0.0f;
#pragma unroll
            for (int i = 0; i < D; i++) {  // S += k_t v_tc, then o = q_t . S
                float k = Ks[j][i], q = Qs[j][i];
                if (absolute) k = fabsf(k), q = fabsf(q), qabs += q;
                S[i] = DECAY ? fmaf(gamma, S[i], k * v) : fmaf(k, v, S[i]);  // k v is exact in float
                acc[i % 4] = fmaf(q, S[i], acc[i % 4]);
            }
            const float o = (acc[0] + acc[1]) + (acc[2] + acc[3]);
            const size_t at = head + (size_t)walk_token(t0 + j, s, ps.reverse) * D + c;
            if (!BOUND) {
                ps.o[at] = from_float<T>(tau * o);
            } else if (!absolute) {
                Of[at] = tau * o;
            } else {  // o is M_tc here; the bound's parts are sums of positive floats, taken 1 % larger
                vabs += v;
                const int n_seen = t0 + j + 1;
                arith[at] = 1.01f * linear_bound(o, vabs, qabs, 0.0f, tau, n_seen, D, eps, floor_,
                                                 DECAY ? decay_budget(n_seen, log_gamma) : 0.0f);
                scale_out[at] = tau * o;
            }
        }
    }
}
#line 494 "chapters/11-linear-attention.md"
// Rows row0 .. row0 + ROWS - 1 of a matrix with rows of `ld` elements (from src, already at
// the tile's first column) into a swizzled (ROWS, W) tile, by THREADS threads, one 16-byte
// chunk each per pass; rows past `rows` are zeros. Mirrored (reverse), row r of the tile is
// row rows - 1 - (row0 + r) of the matrix: the tokens in the order a backward pass walks them.
template <typename T, int W, int ROWS, int THREADS>
__device__ inline void copy_rows(T *dst, const T *src, int row0, int rows, int ld, int reverse = 0)
{
    constexpr int CH = W / 8, RSTEP = THREADS / CH;  // 16-byte chunks per row; rows per pass
    static_assert(THREADS % CH == 0 && ROWS % RSTEP == 0, "whole passes over the tile");
    const int cr = threadIdx.x / CH, cc = threadIdx.x % CH * 8;
#pragma unroll
    for (int r = cr; r < ROWS; r += RSTEP) {
        const bool in = row0 + r < rows;
        cp_async_16(dst + fa_at<W>(r, cc), src + (size_t)(in ? walk_token(row0 + r, rows, reverse) : 0) * ld + cc,
                    in ? 16 : 0);
    }
}

// X = Q K^T for one warp: its 16 rows (A fragments qa, D / 16 steps of 16) against the first
// `keys` keys (a multiple of 16) of a swizzled (NK, D) tile of keys; the other scores are 0.
template <typename T, int D, int NK>
__device__ inline void warp_scores(float x[NK / 8][4], const uint32_t qa[D / 16][4], const T *Ks, int keys)
{
    const int lane = threadIdx.x % 32;
#pragma unroll
    for (int j = 0; j < NK / 8; j++) x[j][0] = x[j][1] = x[j][2] = x[j][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)
#pragma unroll
        for (int j = 0; j < NK / 8; j += 2) {
            if (j * 8 >= keys) break;
            uint32_t b[4];
            ldmatrix_x4(b, Ks + fa_at<D>(j * 8 + ldsm_b_row(lane), kk * 16 + ldsm_b_col(lane)));
            mma_16816<T>(x[j], qa[kk], b);
            mma_16816<T>(x[j + 1], qa[kk], b + 2);
        }
}

// The causal mask inside a tile of scores laid out as m16n8 accumulators (N of them per
// thread): element i is on row row0 + 8 ((i / 2) % 2) and key key0 + 8 (i / 4) + 2 t + i % 2;
// the scores of keys after the row's own token become 0, or, for a chunk walked mirrored (a
// mirrored pass's token t sees j >= t), of keys before it.
template <int N>
__host__ __device__ inline void zero_unseen_scores(float *x, int key0, int row0, int t, bool mirrored = false)
{
#ifdef __CUDA_ARCH__  // the host's compiler (the CPU tests call it) knows no such pragma
#pragma unroll
#endif
    for (int i = 0; i < N; i++) {
        const int key = key0 + 8 * (i / 4) + 2 * t + i % 2, row = row0 + 8 * ((i / 2) % 2);
        if (mirrored ? key < row : key > row) x[i] = 0.0f;
    }
}

// O += A B for one warp: A its 16 rows as m16k16 fragments (KS steps of 16 along k, the first
// `steps` of them used), B a swizzled (16 KS, N) tile stored as rows of k, loaded transposed.
template <typename T, int KS, int N>
__device__ inline void warp_times_tile(float o[N / 8][4], const uint32_t a[KS][4], const T *Bs, int steps)
{
    const int lane = threadIdx.x % 32;
#pragma unroll
    for (int kk = 0; kk < KS; kk++) {
        if (kk >= steps) break;
#pragma unroll
        for (int j = 0; j < N / 8; j += 2) {
            uint32_t b[4];  // rows kk*16 .. +15 by columns j*8 .. +15 of B, transposed
            const int row = kk * 16 + lane % 8 + (lane / 8 % 2) * 8, col = j * 8 + lane / 16 * 8;
            ldmatrix_x4_trans(b, smem_u32(Bs + fa_at<N>(row, col)));
            mma_16816<T>(o[j], a[kk], b);
            mma_16816<T>(o[j + 1], a[kk], b + 2);
        }
    }
}

// O += X V for one warp: its scores (16 x NK accumulators), rounded to T and packed as the A
// fragments of m16n8k16, times the first `steps` 16-row steps of a swizzled (NK, N) tile.
template <typename T, int NK, int N>
__device__ inline void warp_scores_times(float o[N / 8][4], const float x[NK / 8][4], const T *Bs, int steps)
{
    uint32_t xa[NK / 16][4];
#pragma unroll
    for (int kk = 0; kk < NK / 16; kk++) {
        xa[kk][0] = pack2<T>(x[2 * kk][0], x[2 * kk][1]);
        xa[kk][1] = pack2<T>(x[2 * kk][2], x[2 * kk][3]);
        xa[kk][2] = pack2<T>(x[2 * kk + 1][0], x[2 * kk + 1][1]);
        xa[kk][3] = pack2<T>(x[2 * kk + 1][2], x[2 * kk + 1][3]);
    }
    warp_times_tile<T, NK / 16, N>(o, xa, Bs, steps);
}

// A warp's 16 x N accumulators o, times scale, rounded to T, into rows row0 (the warp's first,
// in the head) .. of a (rows, ld) matrix from its column 0: rows g and g + 8 of each tile
// (mirrored, as copy_rows reads them, where reverse).
template <typename T, int N>
__device__ inline void warp_store_rows(T *O, const float o[N / 8][4], float scale, int row0, int rows, int ld,
                                       int reverse = 0)
{
    const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int row = row0 + g + 8 * h;
        if (row >= rows) continue;
#pragma unroll
        for (int j = 0; j < N / 8; j++)
            *reinterpret_cast<uint32_t *>(O + (size_t)walk_token(row, rows, reverse) * ld + j * 8 + 2 * t) =
                pack2<T>(o[j][2 * h] * scale, o[j][2 * h + 1] * scale);
    }
}

// l1: the quadratic form, O = tau mask(Q K^T) V. A block of four warps per 64 queries of a
// head (each warp 16, with its Q fragments in registers), tiles of 64 keys and values
// double-buffered by cp.async, up to the diagonal. DECAY (d1): the mask is the decay matrix,
// gamma^(i - j) for key j <= row i. Grid: (s / 64, b h), the longest first.
template <typename T, int D, bool DECAY>
__global__ void __launch_bounds__(128)
    linear_quadratic(T *O, const T *Q, const T *K, const T *V, Decay decay, int s, float tau)
{
    constexpr int BQ = 64, BK = 64;
    static_assert(BQ == BK, "the last tile of keys a block sees is the one on its diagonal");
    extern __shared__ __align__(128) unsigned char la_smem[];
    T *Qs = reinterpret_cast<T *>(la_smem);  // (BQ, D)
    T *Ks = Qs + BQ * D;                     // 2 x (BK, D)
    T *Vs = Ks + 2 * BK * D;                 // 2 x (BK, D)
    float *pw = reinterpret_cast<float *>(Vs + 2 * BK * D);  // DECAY: gamma^0 .. gamma^BK
    const size_t bh = blockIdx.y;
    const int qt = gridDim.x - 1 - blockIdx.x, q0 = qt * BQ;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4, wq = warp * 16;
    const T *Qb = Q + bh * s * D, *Kb = K + bh * s * D, *Vb = V + bh * s * D;
    const int ktiles = qt + 1;  // keys 0 .. q0 + BQ - 1
    const float log2_gamma = DECAY ? decay.log2_gamma[bh % decay.heads] : 0.0f;
    if constexpr (DECAY) decay_powers<BK>(pw, log2_gamma, 128);
    float kf[BK / 8][2] = {};  // DECAY: gamma^(BK - 1 - j) for the thread's keys j = 8 jj + 2 t + e of a tile
    copy_rows<T, D, BQ, 128>(Qs, Qb, q0, s, D);
    copy_rows<T, D, BK, 128>(Ks, Kb, 0, s, D);
    copy_rows<T, D, BK, 128>(Vs, Vb, 0, s, D);
    cp_async_commit();
    float o[D / 8][4];
#pragma unroll
    for (int j = 0; j < D / 8; j++) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
    uint32_t qa[D / 16][4];
    for (int kt = 0; kt < ktiles; kt++) {
        const int cur = kt % 2;
        if (kt + 1 < ktiles) {  // the next tile into the other buffer, freed at the end of kt - 1
            copy_rows<T, D, BK, 128>(Ks + (1 - cur) * BK * D, Kb, (kt + 1) * BK, s, D);
            copy_rows<T, D, BK, 128>(Vs + (1 - cur) * BK * D, Vb, (kt + 1) * BK, s, D);
        }
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        if (kt == 0) {
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++)
                ldmatrix_x4(qa[kk], Qs + fa_at<D>(wq + ldsm_a_row(lane), kk * 16 + ldsm_a_col(lane)));
            if constexpr (DECAY)  // the powers are in shared memory since the barrier
#pragma unroll
                for (int jj = 0; jj < BK / 8; jj++)
                    kf[jj][0] = pw[BK - 1 - 8 * jj - 2 * t], kf[jj][1] = pw[BK - 2 - 8 * jj - 2 * t];
        }
        const T *Kt = Ks + cur * BK * D, *Vt = Vs + cur * BK * D;
        const bool diagonal = kt == ktiles - 1;
        // X = Q K^T: on the diagonal, only the keys up to the warp's last row
        float x[BK / 8][4];
        warp_scores<T, D, BK>(x, qa, Kt, diagonal ? wq + 16 : BK);
        if constexpr (DECAY) {
            if (diagonal) {
                decay_future_scores<BK / 2>(&x[0][0], kt * BK, q0 + wq + g, t, pw);
            } else {  // every key before every row: gamma^(i - j) = gamma^(i - e) gamma^(e - j), e = the last key
                float rf[2];  // rows g and g + 8: gamma^(i - e), e = kt BK + BK - 1
#pragma unroll
                for (int h = 0; h < 2; h++)
                    rf[h] = exp2f((float)(q0 + wq + g + 8 * h - kt * BK - (BK - 1)) * log2_gamma);
#pragma unroll
                for (int jj = 0; jj < BK / 8; jj++)
#pragma unroll
                    for (int e = 0; e < 4; e++) x[jj][e] *= rf[e / 2] * kf[jj][e % 2];
            }
        } else if (diagonal) {
            zero_unseen_scores<BK / 2>(&x[0][0], kt * BK, q0 + wq + g, t);
        }
        // O += X V
        warp_scores_times<T, BK, D>(o, x, Vt, diagonal ? warp + 1 : BK / 16);
        __syncthreads();  // every warp is done with this tile's buffers before they are refilled
    }
    cp_async_wait<0>();
    warp_store_rows<T, D>(O + bh * s * D, o, tau, q0 + wq, s, D);
}
#line 761 "chapters/11-linear-attention.md"
// The chunkwise kernels' shapes: a block keeps 64 columns of the state and of the output
// (rows of 128 bytes, the swizzle's), with C / 16 warps; the state's (D / 16) x 4 tiles of
// 16 x 16 are shared by the warps, tile warp + W u for the warp's u-th.
constexpr int CHUNK_BV = 64;

template <int D, int C> constexpr int chunk_smem()
{
    return (2 * 2 * C * D + 2 * C * CHUNK_BV + 2 * D * CHUNK_BV) * 2;  // Q, K; V; the state: 16-bit elements
}

// S += K^T V over the C tokens of a chunk, on the warp's UNITS tiles of the state (float
// accumulators, two m16n8 tiles each), from swizzled tiles of K (C, D) and V (C, 64). A warp's
// tiles share their 16 columns, so each fragment of V is loaded once for all of them. DECAY:
// S += K^T Gamma V, row j of V times gamma^(C - 1 - j) (pw: gamma^0 .. gamma^C), in the fragments.
template <typename T, int D, int C, int UNITS, bool DECAY>
__device__ inline void warp_add_chunk_to_state(float st[UNITS][2][4], const T *Kt, const T *Vt, const float *pw)
{
    constexpr int BV = CHUNK_BV, W = C / 16;
    static_assert(W % (BV / 16) == 0, "tile warp + W u is in the same columns for every u");
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, ni = warp % (BV / 16);
#pragma unroll
    for (int kk = 0; kk < C / 16; kk++) {
        uint32_t b[4];  // B = V: tokens 16 kk .., columns 16 ni ..: as in warp_times_tile
        ldmatrix_x4_trans(b, smem_u32(Vt + fa_at<BV>(kk * 16 + lane % 8 + (lane / 8 % 2) * 8, ni * 16 + lane / 16 * 8)));
        if constexpr (DECAY) {  // b[0], b[2] hold tokens j, j + 1 and b[1], b[3] tokens j + 8, j + 9
            const int j = kk * 16 + 2 * (lane % 4);
            b[0] = scale_pair<T>(b[0], pw[C - 1 - j], pw[C - 2 - j]);
            b[2] = scale_pair<T>(b[2], pw[C - 1 - j], pw[C - 2 - j]);
            b[1] = scale_pair<T>(b[1], pw[C - 9 - j], pw[C - 10 - j]);
            b[3] = scale_pair<T>(b[3], pw[C - 9 - j], pw[C - 10 - j]);
        }
#pragma unroll
        for (int u = 0; u < UNITS; u++) {
            const int mi = (warp + W * u) / (BV / 16);
            uint32_t a[4];
            // A = K^T: rows (of the state) 16 mi .., tokens 16 kk ..; K is stored (tokens, D), so
            // matrix j of the four is tokens 8 (j / 2) .., columns 16 mi + 8 (j % 2) .., transposed
            ldmatrix_x4_trans(a, smem_u32(Kt + fa_at<D>(kk * 16 + lane % 8 + lane / 16 * 8, mi * 16 + (lane / 8 % 2) * 8)));
            mma_16816<T>(st[u][0], a, b);
            mma_16816<T>(st[u][1], a, b + 2);
        }
    }
}

// Element e (0 .. 7) of the thread's part of state tile u: row and column in the (D, 64) slice;
// e = 4 jj + 2 h + i holds row 16 mi + g + 8 h, column 16 ni + 8 jj + 2 t + i (accumulator st[u][jj][2 h + i]).
template <int C>
__device__ inline void state_place(int u, int jj, int h, int *row, int *col)
{
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, unit = warp + (C / 16) * u;
    *row = unit / (CHUNK_BV / 16) * 16 + lane / 4 + 8 * h;
    *col = unit % (CHUNK_BV / 16) * 16 + 8 * jj + 2 * (lane % 4);
}

// The warp's tiles of the state, rounded to T, into a swizzled (D, 64) tile in shared memory.
template <typename T, int C, int UNITS>
__device__ inline void warp_store_state(T *Ss, const float st[UNITS][2][4])
{
#pragma unroll
    for (int u = 0; u < UNITS; u++)
#pragma unroll
        for (int jj = 0; jj < 2; jj++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                int row, col;
                state_place<C>(u, jj, h, &row, &col);
                *reinterpret_cast<uint32_t *>(Ss + fa_at<CHUNK_BV>(row, col)) = pack2<T>(st[u][jj][2 * h], st[u][jj][2 * h + 1]);
            }
}

// The warp's tiles of the state to a (D, 64) slice of floats in global memory (F float), or
// from one (F const float).
template <int C, int UNITS, typename F>
__device__ inline void warp_move_state(F *S, float st[UNITS][2][4])
{
#pragma unroll
    for (int u = 0; u < UNITS; u++)
#pragma unroll
        for (int jj = 0; jj < 2; jj++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                int row, col;
                state_place<C>(u, jj, h, &row, &col);
                F *at = S + row * CHUNK_BV + col;
                if constexpr (std::is_const<F>::value) st[u][jj][2 * h] = at[0], st[u][jj][2 * h + 1] = at[1];
                else at[0] = st[u][jj][2 * h], at[1] = st[u][jj][2 * h + 1];
            }
}

// l2, l3 (and l4's last pass): the chunkwise form in one kernel. A block walks the chunks of C
// tokens of one segment of `seg` tokens of one head (blockIdx.z: the segment; all of s for l2
// and l3), for 64 columns of the state and the output; C / 16 warps, each on 16 rows of the
// chunk: O_n = tau (Q_n S_(n-1) + mask(Q_n K_n^T) V_n), then S_n = S_(n-1) + K_n^T V_n. The
// state is float in the warps' accumulators, starting from zero or from S0's (l4: (b h,
// segments, D / 64) slices of (D, 64) floats), and rounded to T in shared memory for the
// products, in two copies: chunk n reads copy n % 2 and writes the other. Q, K, V tiles
// double-buffered by cp.async. A pass mirrored in time (the backward's dK and dV) reads and
// writes its tokens mirrored and is otherwise the same. DECAY (d2, d4): O_n = tau (Lambda Q_n
// S_(n-1) + (Q_n K_n^T o D) V_n), S_n = gamma^C S_(n-1) + K_n^T Gamma V_n, the powers of the
// head's gamma in shared memory. Grid: (D / 64 x passes, b h, segments).
template <typename T, int D, int C, bool DECAY>
__global__ void __launch_bounds__(2 * C)
    linear_chunk(LinearPasses<T> passes, Decay decay, const float *S0, int s, int seg, float tau)
{
    constexpr int BV = CHUNK_BV, W = C / 16, THREADS = 32 * W;
    constexpr int UNITS = (D / 16) * (BV / 16) / W;  // the 16 x 16 tiles of the state a warp keeps
    static_assert((D / 16) * (BV / 16) % W == 0, "the state's tiles shared evenly by the warps");
    extern __shared__ __align__(128) unsigned char la_smem[];
    T *Qs = reinterpret_cast<T *>(la_smem);  // 2 x (C, D)
    T *Ks = Qs + 2 * C * D;                  // 2 x (C, D)
    T *Vs = Ks + 2 * C * D;                  // 2 x (C, BV)
    T *Ss = Vs + 2 * C * BV;                 // 2 x (D, BV): the state, rounded
    float *pw = reinterpret_cast<float *>(Ss + 2 * D * BV);  // DECAY: gamma^0 .. gamma^C
    const size_t bh = blockIdx.y;
    if constexpr (DECAY) decay_powers<C>(pw, decay.log2_gamma[bh % decay.heads], THREADS);
    const LinearPass<T> ps = pass_at(passes, blockIdx.x / (D / BV));
    const int v0 = blockIdx.x % (D / BV) * BV, t0 = blockIdx.z * seg, rev = ps.reverse;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4, wq = warp * 16;
    const T *Qb = ps.q + bh * s * D, *Kb = ps.k + bh * s * D, *Vb = ps.v + bh * s * D + v0;
    T *Ob = ps.o + bh * s * D + v0;
    const int chunks = (min(s, t0 + seg) - t0 + C - 1) / C;
    float st[UNITS][2][4];  // the state entering the segment: zero, or S0's
#pragma unroll
    for (int u = 0; u < UNITS; u++)
#pragma unroll
        for (int e = 0; e < 4; e++) st[u][0][e] = st[u][1][e] = 0.0f;
    if (S0) warp_move_state<C, UNITS>(S0 + ((bh * gridDim.z + blockIdx.z) * gridDim.x + blockIdx.x) * D * BV, st);
    warp_store_state<T, C, UNITS>(Ss, st);
    copy_rows<T, D, C, THREADS>(Qs, Qb, t0, s, D, rev);
    copy_rows<T, D, C, THREADS>(Ks, Kb, t0, s, D, rev);
    copy_rows<T, BV, C, THREADS>(Vs, Vb, t0, s, D, rev);
    cp_async_commit();
    for (int n = 0; n < chunks; n++) {
        const int cur = n % 2, first = t0 + n * C;
        cp_async_wait<0>();
        __syncthreads();  // chunk n is in; every warp is done with chunk n - 1 and its copy of the state
        if (n + 1 < chunks) {
            copy_rows<T, D, C, THREADS>(Qs + (1 - cur) * C * D, Qb, first + C, s, D, rev);
            copy_rows<T, D, C, THREADS>(Ks + (1 - cur) * C * D, Kb, first + C, s, D, rev);
            copy_rows<T, BV, C, THREADS>(Vs + (1 - cur) * C * BV, Vb, first + C, s, D, rev);
        }
        cp_async_commit();
        const T *Qt = Qs + cur * C * D, *Kt = Ks + cur * C * D, *Vt = Vs + cur * C * BV;
        // the output of the warp's 16 rows: Q S_(n-1), then the chunk's own mask(Q K^T) V
        uint32_t qa[D / 16][4];
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++)
            ldmatrix_x4(qa[kk], Qt + fa_at<D>(wq + ldsm_a_row(lane), kk * 16 + ldsm_a_col(lane)));
        float o[BV / 8][4];
#pragma unroll
        for (int j = 0; j < BV / 8; j++) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
        warp_times_tile<T, D / 16, BV>(o, qa, Ss + cur * D * BV, D / 16);
        if constexpr (DECAY) {  // the state entering the chunk as row i sees it: gamma^(i + 1) S_(n-1)
            const float f0 = pw[wq + g + 1], f8 = pw[wq + g + 9];  // rows g and g + 8
#pragma unroll
            for (int j = 0; j < BV / 8; j++) o[j][0] *= f0, o[j][1] *= f0, o[j][2] *= f8, o[j][3] *= f8;
        }
        float x[C / 8][4];
        warp_scores<T, D, C>(x, qa, Kt, wq + 16);
        if constexpr (DECAY) decay_future_scores<C / 2>(&x[0][0], 0, wq + g, t, pw);
        else zero_unseen_scores<C / 2>(&x[0][0], 0, wq + g, t);
        warp_scores_times<T, C, BV>(o, x, Vt, warp + 1);
        warp_store_rows<T, BV>(Ob, o, tau, first + wq, s, D, rev);
        // the state: S += K^T V over the chunk (DECAY: S = gamma^C S + K^T Gamma V), then S_n, rounded,
        // into the copy chunk n + 1 reads
        if constexpr (DECAY) scale_state<UNITS>(st, pw[C]);
        warp_add_chunk_to_state<T, D, C, UNITS, DECAY>(st, Kt, Vt, pw);
        warp_store_state<T, C, UNITS>(Ss + (1 - cur) * D * BV, st);
    }
    cp_async_wait<0>();
}
#line 976 "chapters/11-linear-attention.md"
// l4, first pass: the sum K^T V over each segment of `seg` tokens but the last, for 64 columns,
// in float, into S: (b h, segments, D / 64 x passes) slices of (D, 64) floats. The segments are
// whole (seg a multiple of C); a mirrored pass's segments are counted from the last token.
// DECAY (d4): the sum decayed to the segment's last token, sum_j gamma^(last - j) k_j v_j^T, as
// linear_chunk decays its state. Grid: (D / 64 x passes, b h, segments - 1).
template <typename T, int D, int C, bool DECAY>
__global__ void __launch_bounds__(2 * C)
    linear_segment_states(float *S, LinearPasses<T> passes, Decay decay, int s, int seg, int segments)
{
    constexpr int BV = CHUNK_BV, W = C / 16, THREADS = 32 * W, UNITS = (D / 16) * (BV / 16) / W;
    extern __shared__ __align__(128) unsigned char la_smem[];
    T *Ks = reinterpret_cast<T *>(la_smem);  // 2 x (C, D)
    T *Vs = Ks + 2 * C * D;                  // 2 x (C, BV)
    float *pw = reinterpret_cast<float *>(Vs + 2 * C * BV);  // DECAY: gamma^0 .. gamma^C
    const size_t bh = blockIdx.y;
    if constexpr (DECAY) decay_powers<C>(pw, decay.log2_gamma[bh % decay.heads], THREADS);
    const LinearPass<T> ps = pass_at(passes, blockIdx.x / (D / BV));
    const int t0 = blockIdx.z * seg, chunks = seg / C, rev = ps.reverse;
    const T *Kb = ps.k + bh * s * D, *Vb = ps.v + bh * s * D + blockIdx.x % (D / BV) * BV;
    float st[UNITS][2][4];
#pragma unroll
    for (int u = 0; u < UNITS; u++)
#pragma unroll
        for (int e = 0; e < 4; e++) st[u][0][e] = st[u][1][e] = 0.0f;
    copy_rows<T, D, C, THREADS>(Ks, Kb, t0, s, D, rev);
    copy_rows<T, BV, C, THREADS>(Vs, Vb, t0, s, D, rev);
    cp_async_commit();
    for (int n = 0; n < chunks; n++) {
        const int cur = n % 2;
        cp_async_wait<0>();
        __syncthreads();  // chunk n is in; every warp is done with chunk n - 1
        if (n + 1 < chunks) {
            copy_rows<T, D, C, THREADS>(Ks + (1 - cur) * C * D, Kb, t0 + (n + 1) * C, s, D, rev);
            copy_rows<T, BV, C, THREADS>(Vs + (1 - cur) * C * BV, Vb, t0 + (n + 1) * C, s, D, rev);
        }
        cp_async_commit();
        if constexpr (DECAY) scale_state<UNITS>(st, pw[C]);
        warp_add_chunk_to_state<T, D, C, UNITS, DECAY>(st, Ks + cur * C * D, Vs + cur * C * BV, pw);
    }
    cp_async_wait<0>();
    warp_move_state<C, UNITS>(S + ((bh * segments + blockIdx.z) * gridDim.x + blockIdx.x) * D * BV, st);
}

// l4, second pass: each head's segment sums (per_head = D^2 floats a segment and pass) become, in place,
// the states entering the segments: the sum of the segments before. The last segment's slot
// holds no sum and is only written. A thread per element of a head's state. With a decay
// (decay.gamma not NULL, d4): R_z = gamma^seg R_(z-1) + sum_(z-1), which is the same with gamma = 1.
__global__ void linear_scan_states(float *S, Decay decay, int seg, int segments, int per_head, size_t heads)
{
    const size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (e >= heads * per_head) return;
    const float across = decay.gamma ? exp2f((float)seg * decay.log2_gamma[e / per_head % decay.heads]) : 1.0f;
    float *at = S + e / per_head * segments * per_head + e % per_head, running = 0.0f;
    for (int z = 0; z < segments; z++) {
        const float mine = z + 1 < segments ? at[(size_t)z * per_head] : 0.0f;
        at[(size_t)z * per_head] = running;
        running = fmaf(across, running, mine);
    }
}
#line 1138 "chapters/11-linear-attention.md"
// l5's tiles: panels of 64 rows of 128 bytes (64 16-bit elements) in the TMA's 128-byte swizzle.
// A stage holds Q_n and K_n (D / 64 panels each) and the block's 64 columns of V_n (one panel);
// after the STAGES stages, the state S^T, rounded (D / 64 panels), and for l9 (ROWS) one panel
// more, tau O, rounded; 1 KiB to align. Three stages at d = 64, two at d = 128: what lets two
// blocks share an SM.
constexpr int L5_C = 64, L5_PANEL = L5_C * 128;
constexpr int L5_THREADS = 160;  // a warpgroup that computes; a warp that copies
template <int D> __host__ __device__ constexpr int l5_stages() { return D == 64 ? 3 : 2; }
template <int D> __host__ __device__ constexpr int l5_stage_bytes() { return (2 * (D / 64) + 1) * L5_PANEL; }
template <int D, bool ROWS = false> __host__ __device__ constexpr int l5_smem()
{
    return l5_stages<D>() * l5_stage_bytes<D>() + (D / 64 + ROWS) * L5_PANEL + 1024;
}

// Where accumulator e of thread `thread` of the warpgroup holds element (c, i) of S^T (a 64 x D
// tile of wgmma accumulators: row c, a column of S; column i, a row of S). O and X are laid out
// the same on 64 columns.
__host__ __device__ inline void l5_state_place(int thread, int e, int *c, int *i)
{
    const int warp = thread / 32, lane = thread % 32;
    *c = 16 * warp + lane / 4 + 8 * (e / 2 % 2);
    *i = 8 * (e / 4) + 2 * (lane % 4) + e % 2;
}
// Where element (c, i) of S^T lies in its copy in shared memory, in 16-bit elements: panel
// i / 64, row c, in the swizzle of fa_at (the TMA's).
__device__ inline int l5_state_at(int c, int i) { return i / 64 * (L5_PANEL / 2) + fa_at<64>(c, i % 64); }

// The warpgroup's S^T, rounded to T, into its copy in shared memory: accumulators e and e + 1
// (e even) are neighbours in a row, one 4-byte store.
template <typename T, int D>
__device__ inline void l5_store_state(unsigned char *Ss, const float sT[D / 2])
{
    T *S = reinterpret_cast<T *>(Ss);
#pragma unroll
    for (int e = 0; e < D / 2; e += 2) {
        int c, i;
        l5_state_place(threadIdx.x % 128, e, &c, &i);
        *reinterpret_cast<uint32_t *>(S + l5_state_at(c, i)) = pack2<T>(sT[e], sT[e + 1]);
    }
}

// S^T += V_n^T K_n, issued by the warpgroup: A = V and B = K as the TMA stored them, rows of
// tokens, both MN-major (K's panels L5_PANEL apart); at d = 128 one m64n128k16 chain.
template <typename T, int D>
__device__ inline void l5_add_chunk_to_state(float sT[D / 2], const unsigned char *Kt, const unsigned char *Vt)
{
#pragma unroll
    for (int kk = 0; kk < L5_C / 16; kk++) {
        const uint64_t da = wgmma_desc_mn128(Vt + kk * 16 * 128, L5_PANEL);
        const uint64_t db = wgmma_desc_mn128(Kt + kk * 16 * 128, L5_PANEL);
        if constexpr (D == 128) wgmma_m64n128k16<T, 1, 1>(sT, da, db, 1);
        else wgmma_m64n64k16<T, 1, 1>(sT, da, db, 1);
    }
}

// The tensor maps of the arrays that play q, k and v in each of up to three passes: (b h s) x D
// matrices in boxes of 64 x 64.
struct L5Maps {
    CUtensorMap q[3], k[3], v[3];
};

// The first token of chunk n of a walk from token t0 of the walk (its segment's first): the walk's
// tokens t0 + n C .. t0 + n C + C - 1, or, mirrored, the tokens s - t0 - (n + 1) C .. s - t0 - n C - 1,
// which the chunk holds in their own order, the TMA reading rows only forward. Mirrored, the head's
// first chunk walked is whole and its last may begin before token 0.
__host__ __device__ inline int l5_chunk_first(int t0, int n, int s, int reverse)
{
    return reverse ? s - t0 - (n + 1) * L5_C : t0 + n * L5_C;
}

// <<whole-rows-of-the-output>>
#line 1524 "chapters/11-linear-attention.md"
// l9's store of the output: the warp's 16 rows of tau O (o: accumulators laid out as
// l5_state_place says), rounded, into its 16 rows of the panel Os, in the swizzle of fa_at
// (the eight rows of a store instruction hit eight different 16-byte columns of banks), then
// from the panel to the rows of tokens first + 16 warp .. first + 16 warp + 15 of Ob (a head's
// 64 columns, rows D apart), each lane 16 bytes, each quarter of the warp one whole row.
// Between one chunk's reads of the panel and the next chunk's writes lie named barriers.
template <typename T, int D>
__device__ inline void l5_store_rows(T *Ob, T *Os, const float o[32], float tau, int first, int s)
{
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
#pragma unroll
    for (int h = 0; h < 2; h++)
#pragma unroll
        for (int j = 0; j < 8; j++)
            *reinterpret_cast<uint32_t *>(Os + fa_at<64>(16 * warp + g + 8 * h, 8 * j + 2 * t)) =
                pack2<T>(tau * o[4 * j + 2 * h], tau * o[4 * j + 2 * h + 1]);
    __syncwarp();
#pragma unroll
    for (int k = 0; k < 4; k++) {
        const int row = 16 * warp + 4 * k + lane / 8, col = 8 * (lane % 8), token = first + row;
        const uint4 v = *reinterpret_cast<const uint4 *>(Os + fa_at<64>(row, col));
        if (token >= 0 && token < s) *reinterpret_cast<uint4 *>(Ob + (size_t)token * D + col) = v;
    }
}
#line 1209 "chapters/11-linear-attention.md"

// l5: the chunkwise form on wgmma. A block per slice of 64 columns of the state and the output
// of one head and pass (and segment of `seg` tokens, a multiple of L5_C, from the state S0 gives,
// as linear_chunk's); warps 0-3, a warpgroup, compute, the 64 rows of its products being the 64
// tokens of a chunk; warp 4's first thread copies Q_n, K_n and V_n's 64 columns by the TMA
// into a ring of STAGES (full: the bytes have landed; empty: each of the four warps is done).
// Per chunk n:
//   X = Q_n K_n^T                  A and B K-major
//   O = Q_n S_(n-1)                B = S^T, rounded, K-major
//   O += mask(X) V_n               A: X rounded, in registers; B: V MN-major
//   S^T += V_n^T K_n               A: V MN-major; B: K MN-major
// then tau O, rounded, to global memory and S^T, rounded, over the copy in shared memory. A pass
// mirrored in time (the backward's dK and dV) walks the chunks from the head's last token, each
// chunk's rows in their own order (l5_chunk_first), and masks the scores of the keys before each
// row instead of after; the rest is the same. maps: each pass's Q, K, V; the pass's outputs and
// direction in passes. Grid: (D / 64 x passes, b h, segments). SUMS (l7): l4's first kernel
// instead, the sum K^T V over each segment but the last, product 4 alone on K and V, its S^T
// written to S in linear_segment_states's layout; grid (D / 64 x passes, b h, segments - 1).
// ROWS (l9): tau O, rounded, through a panel of shared memory, and from there to global memory
// in whole rows, 128 bytes a row, by 16-byte stores.
template <typename T, int D, bool SUMS, bool ROWS = false>
__global__ void __launch_bounds__(L5_THREADS, 2)
    linear_chunk_wgmma(const __grid_constant__ L5Maps maps, LinearPasses<T> passes, float *S, int s, int seg,
                       float tau)
{
#if SM90A_CODE
    constexpr int C = L5_C, BV = CHUNK_BV, NP = D / 64, ND = D / 2;  // ND: accumulators of S^T a thread
    constexpr int STAGES = l5_stages<D>(), STAGE = l5_stage_bytes<D>();
    static_assert(C == 64 && BV == 64, "a chunk is a warpgroup's 64 rows; a slice, one panel of V");
    static_assert(D == 64 || D == 128, "S^T += V^T K is one m64nDk16 chain");
    extern __shared__ unsigned char smem_raw[];
    unsigned char *smem = aligned_1024(smem_raw);  // STAGES x (Q: NP panels, K: NP panels, V)
    unsigned char *Ss = smem + STAGES * STAGE;     // S^T, rounded: NP panels of 64 rows
    T *Os = reinterpret_cast<T *>(Ss + NP * L5_PANEL);  // ROWS: tau O, rounded, one panel
    __shared__ __align__(8) uint64_t full[STAGES], empty[STAGES];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const int pass = blockIdx.x / (D / BV), bh = blockIdx.y, v0 = blockIdx.x % (D / BV) * BV, t0 = blockIdx.z * seg;
    const LinearPass<T> ps = pass_at(passes, pass);
    const int rev = ps.reverse, chunks = (min(s, t0 + seg) - t0 + C - 1) / C, segments = gridDim.z + SUMS;
    // the block's (D, 64) floats of the states: the one entering the segment, or (SUMS) the segment's sum
    float *slice = S ? S + (((size_t)bh * segments + blockIdx.z) * gridDim.x + blockIdx.x) * D * BV : NULL;
    if (threadIdx.x == 0) {
        for (int st = 0; st < STAGES; st++) {
            mbar_init(&full[st], 1);
            mbar_init(&empty[st], 4);
        }
        mbar_init_fence();
    }
    // the state entering the segment, zero or the slice's: S^T's element (c, i) is the slice's (i, c)
    float sT[ND];
    if (warp < 4) {
#pragma unroll
        for (int e = 0; e < ND; e++) {
            int c, i;
            l5_state_place(threadIdx.x, e, &c, &i);
            sT[e] = slice && !SUMS ? slice[i * BV + c] : 0.0f;
        }
        l5_store_state<T, D>(Ss, sT);
        fence_proxy_async();
    }
    __syncthreads();

    if (warp == 4) {  // the copies
        if (lane == 0) {
            // the pass's maps, picked with constant indices; rows before the matrices' first (where the first
            // head's last chunk walked mirrored begins before its token 0) are the TMA's zeros, as past their last
            const CUtensorMap *mq = pass == 0 ? &maps.q[0] : pass == 1 ? &maps.q[1] : &maps.q[2];
            const CUtensorMap *mk = pass == 0 ? &maps.k[0] : pass == 1 ? &maps.k[1] : &maps.k[2];
            const CUtensorMap *mv = pass == 0 ? &maps.v[0] : pass == 1 ? &maps.v[1] : &maps.v[2];
            for (int n = 0; n < chunks; n++) {
                const int st = n % STAGES, row = bh * s + l5_chunk_first(t0, n, s, rev);  // in the (b h s) x D matrices
                if (n >= STAGES) mbar_wait(&empty[st], (n / STAGES - 1) & 1);
                unsigned char *stage = smem + st * STAGE;
                mbar_expect_tx(&full[st], SUMS ? STAGE - NP * L5_PANEL : STAGE);  // SUMS: K and V
                for (int pn = 0; pn < NP; pn++) {
                    if (!SUMS) tma_load_2d(stage + pn * L5_PANEL, mq, &full[st], 64 * pn, row);
                    tma_load_2d(stage + (NP + pn) * L5_PANEL, mk, &full[st], 64 * pn, row);
                }
                tma_load_2d(stage + 2 * NP * L5_PANEL, mv, &full[st], v0, row);
            }
        }
        return;
    }
    if constexpr (SUMS) {  // S^T += V^T K over the segment's chunks, as below, then to the slice
        for (int n = 0; n < chunks; n++) {
            const int st = n % STAGES;
            const unsigned char *Kt = smem + st * STAGE + NP * L5_PANEL, *Vt = Kt + NP * L5_PANEL;
            mbar_wait(&full[st], (n / STAGES) & 1);
            wgmma_fence();
            l5_add_chunk_to_state<T, D>(sT, Kt, Vt);
            wgmma_commit();
            wgmma_wait<0>();  // this warp is done with the stage
            if (lane == 0) mbar_arrive(&empty[st]);
        }
#pragma unroll
        for (int e = 0; e < ND; e++) {
            int c, i;
            l5_state_place(threadIdx.x, e, &c, &i);
            slice[i * BV + c] = sT[e];
        }
    } else {
        for (int n = 0; n < chunks; n++) {
            const int st = n % STAGES, first = l5_chunk_first(t0, n, s, rev);
            const unsigned char *Qt = smem + st * STAGE, *Kt = Qt + NP * L5_PANEL, *Vt = Kt + NP * L5_PANEL;
            // X and O: element e at row 16 warp + g + 8 ((e / 2) % 2), column 8 (e / 4) + 2 t + e % 2
            float x[32], o[32];
            mbar_wait(&full[st], (n / STAGES) & 1);
            wgmma_fence();
            // X = Q K^T, D / 16 steps along the head dimension
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++)
                wgmma_m64n64k16<T>(x, wgmma_desc_k128(Qt + kk / 4 * L5_PANEL + kk % 4 * 32),
                                   wgmma_desc_k128(Kt + kk / 4 * L5_PANEL + kk % 4 * 32), kk > 0);
            wgmma_commit();
            named_barrier(1, 128);  // every warp has written S_(n-1), rounded, into Ss
            wgmma_fence();
            // O = Q S_(n-1), S^T in the place of K
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++)
                wgmma_m64n64k16<T>(o, wgmma_desc_k128(Qt + kk / 4 * L5_PANEL + kk % 4 * 32),
                                   wgmma_desc_k128(Ss + kk / 4 * L5_PANEL + kk % 4 * 32), kk > 0);
            wgmma_commit();
            wgmma_wait<1>();  // X; Q S may still run
            zero_unseen_scores<32>(x, 0, 16 * warp + g, t, rev);
            uint32_t xa[16];  // X rounded: the A fragments of k-step kk in xa[4 kk .. 4 kk + 3]
#pragma unroll
            for (int e = 0; e < 16; e++) xa[e] = pack2<T>(x[2 * e], x[2 * e + 1]);
            wgmma_fence();
            // O += mask(X) V, C / 16 steps along the chunk's tokens
#pragma unroll
            for (int kk = 0; kk < C / 16; kk++)
                wgmma_pv<T, 64>(o, xa + 4 * kk, wgmma_desc_mn128(Vt + kk * 16 * 128, L5_PANEL));
            wgmma_commit();
            // S^T += V^T K
            l5_add_chunk_to_state<T, D>(sT, Kt, Vt);
            wgmma_commit();
            wgmma_wait<1>();        // O is whole, and this warp's products have read Q and Ss
            named_barrier(1, 128);  // ... every warp's: Ss may be overwritten
            if constexpr (ROWS) l5_store_rows<T, D>(ps.o + (size_t)bh * s * D + v0, Os, o, tau, first, s);
            else
#pragma unroll
                for (int h = 0; h < 2; h++) {  // tau O to the rows of tokens first + 16 warp + g + 8 h of the head
                    const int token = first + 16 * warp + g + 8 * h;
                    if (token < 0 || token >= s) continue;
                    T *orow = ps.o + ((size_t)bh * s + token) * D + v0;
#pragma unroll
                    for (int j = 0; j < 8; j++)
                        *reinterpret_cast<uint32_t *>(orow + 8 * j + 2 * t) =
                            pack2<T>(tau * o[4 * j + 2 * h], tau * o[4 * j + 2 * h + 1]);
                }
            wgmma_wait<0>();  // S^T: this warp is done with the stage
            if (lane == 0) mbar_arrive(&empty[st]);
            if (n + 1 < chunks) {  // S_n, rounded, for chunk n + 1's Q S
                l5_store_state<T, D>(Ss, sT);
                fence_proxy_async();  // the stores, before wgmma reads them
            }
        }
    }
#endif
}
#line 124 "chapters/11-linear-attention.md"
// <<linear-attention-launchers>>
#line 1657 "chapters/11-linear-attention.md"
// The device pass that computes output `part` of a problem.
template <typename T>
static LinearPass<T> pass_of(const Problem *p, int part)
{
    LinearPass<T> ps = {(T *)p->out[part], (const T *)p->in[PARTS[part].q], (const T *)p->in[PARTS[part].k],
                        (const T *)p->in[PARTS[part].v], PARTS[part].reverse};
    return ps;
}
#line 2108 "chapters/11-linear-attention.md"
// The passes of an operation on a problem: the forward's one, O; the backward's three, dQ, dK, dV.
template <typename T>
static LinearPasses<T> passes_of(const Problem *p, Op op)
{
    LinearPasses<T> ps;
    memset(&ps, 0, sizeof ps);
    const int first = op == FWD ? OUT_O : OUT_DQ;
    ps.n = op == FWD ? 1 : 3;
    for (int k = 0; k < ps.n; k++) ps.pass[k] = pass_of<T>(p, first + k);
    return ps;
}

// The decays a kernel is given: the problem's (device), or none.
static Decay decay_of(const Problem *p, bool decayed)
{
    Decay decay = {NULL, NULL, p->h};
    if (decayed) decay.gamma = p->decay, decay.log2_gamma = p->decay + p->h;
    return decay;
}

// The table of gamma^0 .. gamma^n a kernel with decay keeps in shared memory, in whole 16 bytes.
constexpr int decay_table_bytes(int n) { return ((n + 1) * 4 + 15) / 16 * 16; }

template <typename T, int D, bool DECAY>
static void launch_recurrent_d(Problem *p, Op op)
{
    const LinearPasses<T> ps = passes_of<T>(p, op);
    linear_recurrent<T, D, false, DECAY><<<dim3((unsigned)(p->b * p->h), (unsigned)ps.n), D>>>(
        ps, decay_of(p, DECAY), NULL, NULL, NULL, p->s, p->scale, 0.0f, 0.0f);
    CHECK_LAUNCH();
}

template <typename T, Op OP, bool DECAY = false>
static void launch_recurrent(Problem *p)
{
    p->op = OP, p->decayed = DECAY;
    if (p->d == 64) launch_recurrent_d<T, 64, DECAY>(p, OP);
    else launch_recurrent_d<T, 128, DECAY>(p, OP);
}

template <typename T, int D, bool DECAY>
static void launch_quadratic_d(Problem *p)
{
    // Q, two buffers of K and of V; the powers gamma^0 .. gamma^64
    constexpr int smem = 5 * 64 * D * (int)sizeof(T) + (DECAY ? decay_table_bytes(64) : 0);
    static bool opted = false;
    if (!opted) {
        CUDA_CHECK(cudaFuncSetAttribute(linear_quadratic<T, D, DECAY>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        smem));
        opted = true;
    }
    linear_quadratic<T, D, DECAY><<<dim3((unsigned)((p->s + 63) / 64), (unsigned)(p->b * p->h)), 128, smem>>>(
        (T *)p->out[OUT_O], (const T *)p->in[IN_Q], (const T *)p->in[IN_K], (const T *)p->in[IN_V],
        decay_of(p, DECAY), p->s, p->scale);
    CHECK_LAUNCH();
}

template <typename T, bool DECAY = false>
static void launch_quadratic(Problem *p)
{
    p->op = FWD, p->decayed = DECAY;
    if (p->d == 64) launch_quadratic_d<T, 64, DECAY>(p);
    else launch_quadratic_d<T, 128, DECAY>(p);
}

// The chunkwise kernel's shared memory: its tiles, and with decay the powers gamma^0 .. gamma^C.
template <int D, int C, bool DECAY> constexpr int chunk_smem_of()
{
    return chunk_smem<D, C>() + (DECAY ? decay_table_bytes(C) : 0);
}

template <typename T, int D, int C, bool DECAY>
static void launch_chunk_d(Problem *p, Op op)
{
    constexpr int smem = chunk_smem_of<D, C, DECAY>();
    static_assert(smem <= 227 * 1024, "the tiles fit in an SM's shared memory");
    static bool opted = false;
    if (!opted) {
        CUDA_CHECK(
            cudaFuncSetAttribute(linear_chunk<T, D, C, DECAY>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
        opted = true;
    }
    const LinearPasses<T> ps = passes_of<T>(p, op);
    linear_chunk<T, D, C, DECAY><<<dim3(D / CHUNK_BV * ps.n, (unsigned)(p->b * p->h), 1), 2 * C, smem>>>(
        ps, decay_of(p, DECAY), NULL, p->s, p->s, p->scale);
    CHECK_LAUNCH();
}

template <typename T, int C, Op OP, bool DECAY = false>
static void launch_chunk(Problem *p)
{
    p->op = OP, p->decayed = DECAY;
    if (p->d == 64) launch_chunk_d<T, 64, C, DECAY>(p, OP);
    else launch_chunk_d<T, 128, C, DECAY>(p, OP);
}

// l4 and lb4: the sums of the segments, their scan, and l2's kernel from the states entering
// them. The states, b h (s / SEGMENT) D^2 floats for each of up to three passes, are allocated
// at the first launch on a problem.
enum { SEGMENT = 1024, SEGMENT_CHUNK = 64 };

// The states of up to three passes, allocated at the first launch on a problem, for as many
// segments as segments of SEGMENT tokens make (l8's, fewer and longer, fit in them too).
static void alloc_states(Problem *p, int d, int segments)
{
    const int most = (p->s + SEGMENT - 1) / SEGMENT;
    if (segments > most) {  // a launcher's mistake, not the input's
        fprintf(stderr, "error: %d segments of states, at most %d\n", segments, most);
        exit(EXIT_CHECK);
    }
    if (!p->states)
        p->states = (float *)device_alloc((size_t)p->b * p->h * most * d * d * 3 * sizeof(float), "states");
}

// The second kernel: the sums of the segments into the states entering them, per_head floats a
// segment and head (l6 and l7 too).
static void launch_scan_states(Problem *p, const Decay &decay, int per_head, int seg, int segments)
{
    const size_t heads = (size_t)p->b * p->h, elements = heads * per_head;
    linear_scan_states<<<(unsigned)((elements + 255) / 256), 256>>>(p->states, decay, seg, segments, per_head,
                                                                  heads);
    CHECK_LAUNCH();
}

// The first two: each segment's sum but the last's, then the states entering the segments (l6 too).
template <typename T, int D, bool DECAY>
static void launch_segment_states(Problem *p, const LinearPasses<T> &ps, const Decay &decay, int segments)
{
    constexpr int C = SEGMENT_CHUNK;
    constexpr int sums_smem = (2 * C * D + 2 * C * CHUNK_BV) * 2 + (DECAY ? decay_table_bytes(C) : 0);
    static bool opted = false;
    if (!opted) {
        CUDA_CHECK(cudaFuncSetAttribute(linear_segment_states<T, D, C, DECAY>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, sums_smem));
        opted = true;
    }
    const unsigned heads = (unsigned)(p->b * p->h), slices = D / CHUNK_BV * ps.n;
    alloc_states(p, D, segments);
    linear_segment_states<T, D, C, DECAY><<<dim3(slices, heads, segments - 1), 2 * C, sums_smem>>>(
        p->states, ps, decay, p->s, SEGMENT, segments);
    CHECK_LAUNCH();
    launch_scan_states(p, decay, D * D * ps.n, SEGMENT, segments);
}

template <typename T, int D, bool DECAY>
static void launch_segments_d(Problem *p, Op op)
{
    constexpr int C = SEGMENT_CHUNK, smem = chunk_smem_of<D, C, DECAY>();
    static_assert(SEGMENT % C == 0, "whole chunks in a segment");
    static bool opted = false;
    if (!opted) {
        CUDA_CHECK(
            cudaFuncSetAttribute(linear_chunk<T, D, C, DECAY>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
        opted = true;
    }
    const LinearPasses<T> ps = passes_of<T>(p, op);
    const Decay decay = decay_of(p, DECAY);
    const int segments = (p->s + SEGMENT - 1) / SEGMENT;
    if (segments > 1) launch_segment_states<T, D, DECAY>(p, ps, decay, segments);
    linear_chunk<T, D, C, DECAY><<<dim3(D / CHUNK_BV * ps.n, (unsigned)(p->b * p->h), segments), 2 * C, smem>>>(
        ps, decay, segments > 1 ? p->states : NULL, p->s, SEGMENT, p->scale);
    CHECK_LAUNCH();
}

template <typename T, Op OP, bool DECAY = false>
static void launch_segments(Problem *p)
{
    p->op = OP, p->decayed = DECAY;
    if (p->d == 64) launch_segments_d<T, 64, DECAY>(p, OP);
    else launch_segments_d<T, 128, DECAY>(p, OP);
}

// lfb4: l4's forward, then lb4's backward, as a training step runs them.
template <typename T>
static void launch_forward_backward(Problem *p)
{
    launch_segments<T, FWD>(p);
    launch_segments<T, BWD>(p);
    p->op = FWD_BWD;
}

// The chunkwise kernels' tiles: 112 KB at d = 128 for l2, 192 KB for l3, more than some GPUs
// give a block (an A100 gives 163 KB, an L4 99 KB).
template <int C, bool DECAY = false>
static const char *chunk_unsupported(const Problem *p)
{
    int dev = 0, most = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&most, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    const int need = p->d == 64 ? chunk_smem_of<64, C, DECAY>() : chunk_smem_of<128, C, DECAY>();
    return need > most ? "needs more shared memory per block than this GPU has" : NULL;
}
#line 2310 "chapters/11-linear-attention.md"
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
#line 2311 "chapters/11-linear-attention.md"

static const char *chunk_wgmma_unsupported(const Problem *p)
{
    (void)p;
    return needs_sm90a_code();
}

// The tensor maps of the passes of an operation, as passes_of lists them: each pass's q, k, v.
static L5Maps maps_of(const Problem *p, Op op)
{
    L5Maps m;
    memset(&m, 0, sizeof m);
    const int first = op == FWD ? OUT_O : OUT_DQ, n = op == FWD ? 1 : 3;
    for (int k = 0; k < n; k++) {
        m.q[k] = p->maps[PARTS[first + k].q];
        m.k[k] = p->maps[PARTS[first + k].k];
        m.v[k] = p->maps[PARTS[first + k].v];
    }
    return m;
}

// l5's kernel (SUMS: l7's sums; ROWS: l9's) asks for its shared memory at its first launch, and
// the tensor maps of the problem's inputs are made at the first launch on it.
template <typename T, int D, bool SUMS, bool ROWS = false>
static void prepare_chunk_wgmma(Problem *p)
{
    constexpr int smem = l5_smem<D, ROWS>();
    static_assert(2 * (smem + 1024) <= 228 * 1024, "two blocks an SM, each with the 1 KiB the system reserves");
    static_assert(sizeof(L5Maps) + sizeof(LinearPasses<T>) + 64 <= 4096, "the kernel's parameters fit in 4 KB");
    static bool opted = false;
    if (!opted) {
        CUDA_CHECK(cudaFuncSetAttribute(linear_chunk_wgmma<T, D, SUMS, ROWS>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
        opted = true;
    }
    if (!p->mapped) {
        const bool bf16 = p->dtype == BF16;
        const int rows = p->b * p->h * p->s;
        for (int a = IN_Q; a <= IN_DO; a++) p->maps[a] = tma_map_2d(p->in[a], bf16, rows, D, L5_C);
        p->mapped = true;
    }
}

// l5's kernel (ROWS: l9's) for the passes of op, one launch, on segments of seg tokens (all of s:
// one), from the states S0 enters them with.
template <typename T, int D, bool ROWS = false>
static void launch_chunk_wgmma_d(Problem *p, Op op, float *S0, int seg)
{
    prepare_chunk_wgmma<T, D, false, ROWS>(p);
    const LinearPasses<T> ps = passes_of<T>(p, op);
    const unsigned segments = (unsigned)((p->s + seg - 1) / seg);
    linear_chunk_wgmma<T, D, false, ROWS><<<dim3(D / CHUNK_BV * ps.n, (unsigned)(p->b * p->h), segments),
                                            L5_THREADS, l5_smem<D, ROWS>()>>>(maps_of(p, op), ps, S0, p->s, seg,
                                                                              p->scale);
    CHECK_LAUNCH();
}

// l7's first two kernels: each segment of seg tokens' sum but the last's by l5's kernel, then
// their scan.
template <typename T, int D>
static void launch_segment_sums_wgmma(Problem *p, Op op, int seg, int segments)
{
    prepare_chunk_wgmma<T, D, true>(p);
    const LinearPasses<T> ps = passes_of<T>(p, op);
    alloc_states(p, D, segments);
    linear_chunk_wgmma<T, D, true><<<dim3(D / CHUNK_BV * ps.n, (unsigned)(p->b * p->h), segments - 1), L5_THREADS,
                                     l5_smem<D>()>>>(maps_of(p, op), ps, p->states, p->s, seg, p->scale);
    CHECK_LAUNCH();
    launch_scan_states(p, decay_of(p, false), D * D * ps.n, seg, segments);
}

template <typename T, Op OP>
static void launch_chunk_wgmma(Problem *p)
{
    p->op = OP, p->decayed = 0;
    if (p->d == 64) launch_chunk_wgmma_d<T, 64>(p, OP, NULL, p->s);
    else launch_chunk_wgmma_d<T, 128>(p, OP, NULL, p->s);
}

// How a launcher of l5's kernel cuts the heads into segments: SEGMENT's tokens each (l6, l7), or
// fitted_segment's length, by l8's rule or by l9's.
enum Fitting { FIXED, FIT_L8, FIT_L9 };

// l8's segment length: as many segments as one wave of l5's blocks needs (two an SM), at most
// one per SEGMENT tokens, none where the slices of the heads fill the wave; a multiple of L5_C.
// l9's: a wave of D / 64 blocks an SM, and none where the heads' blocks alone, one an SM,
// occupy two thirds of the SMs.
static int fitted_segment(const Problem *p, int D, int passes, Fitting rule)
{
    static int sms = 0;
    if (!sms) CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    const long row = (long)(D / CHUNK_BV) * passes * p->b * p->h;  // blocks of one segment
    const long per_sm = rule == FIT_L9 ? D / 64 : 2, most = (p->s + SEGMENT - 1) / SEGMENT;
    const long wave = rule == FIT_L9 && 3 * row >= 2L * sms ? 1 : per_sm * sms / row;
    const int segments = (int)(wave < 1 ? 1 : wave > most ? most : wave);
    const int tokens = (p->s + segments - 1) / segments;
    return (tokens + L5_C - 1) / L5_C * L5_C;
}

// l6 (SUMS: l7): the segments' sums by l4's kernel (by l5's), their scan, l5's kernel from the
// states. FIT (l8 and l9, with SUMS): segments of fitted_segment's length by that rule
// blocks an SM instead of SEGMENT's; ROWS (l9): the last kernel stores its output in whole rows.
template <typename T, int D, bool SUMS, Fitting FIT, bool ROWS>
static void launch_segments_wgmma_d(Problem *p, Op op)
{
    static_assert(SEGMENT % L5_C == 0, "whole chunks of l5 in a segment");
    static_assert(SUMS || FIT == FIXED, "l8 and l9 are l7's kernels");
    const int seg = FIT != FIXED ? fitted_segment(p, D, passes_of<T>(p, op).n, FIT) : SEGMENT;
    const int segments = (p->s + seg - 1) / seg;
    if (segments > 1 && SUMS) launch_segment_sums_wgmma<T, D>(p, op, seg, segments);
    else if (segments > 1) launch_segment_states<T, D, false>(p, passes_of<T>(p, op), decay_of(p, false), segments);
    launch_chunk_wgmma_d<T, D, ROWS>(p, op, segments > 1 ? p->states : NULL, seg);
}

template <typename T, Op OP, bool SUMS = false, Fitting FIT = FIXED, bool ROWS = false>
static void launch_segments_wgmma(Problem *p)
{
    p->op = OP, p->decayed = 0;
    if (p->d == 64) launch_segments_wgmma_d<T, 64, SUMS, FIT, ROWS>(p, OP);
    else launch_segments_wgmma_d<T, 128, SUMS, FIT, ROWS>(p, OP);
}

// lfb6 (SUMS: lfb7; FIT_L8: lfb8; FIT_L9 and ROWS: lfb9): l6's forward, then lb6's backward (l7's
// kernels, l8's, l9's, forward and backward).
template <typename T, bool SUMS = false, Fitting FIT = FIXED, bool ROWS = false>
static void launch_forward_backward_wgmma(Problem *p)
{
    launch_segments_wgmma<T, FWD, SUMS, FIT, ROWS>(p);
    launch_segments_wgmma<T, BWD, SUMS, FIT, ROWS>(p);
    p->op = FWD_BWD;
}

// softmax-a8: the attention chapter's a8 on Q, K, V, causal, sq = sk = s, the same scale; its
// O and LSE allocated (and poisoned) at the first launch on a problem.
static const char *softmax_a8_unsupported(const Problem *p)
{
    const char *why = needs_sm90a_code();
    return why ? why : p->d == 64 || p->d == 128 ? NULL : "needs head_dim 64 or 128";
}

template <typename T>
static void launch_softmax_a8(Problem *p)
{
    p->op = FWD, p->decayed = 0;
    if (!p->softmax_o) {
        const size_t n = elements_of(p), rows = n / p->d;
        p->softmax_o = device_alloc(n * sizeof(T), "softmax O");
        p->softmax_lse = (float *)device_alloc(rows * sizeof(float), "softmax LSE");
        poison(p->softmax_o, n * sizeof(T));
        poison(p->softmax_lse, rows * sizeof(float));
    }
    a8_forward<T>(&p->softmax_wgmma, (T *)p->softmax_o, p->softmax_lse, (const T *)p->in[IN_Q],
                  (const T *)p->in[IN_K], (const T *)p->in[IN_V], p->b * p->h, p->s, p->s, p->d, p->scale, true);
}
#line 125 "chapters/11-linear-attention.md"
// <<the-linear-attention-version-table>>
#line 2474 "chapters/11-linear-attention.md"
#define LINEAR_VERSIONS(T, DT)                                                                                     \
    {"l0-recurrent", "ours", DT, "the recurrence on the SIMT units: a block per head, a thread per column of S",   \
     launch_recurrent<T, FWD>, NULL},                                                                              \
    {"l1-quadratic", "ours", DT, "tau mask(Q K^T) V on mma.sync: flash attention's loop without the softmax",     \
     launch_quadratic<T>, NULL},                                                                                   \
    {"l2-chunk-64", "ours", DT, "chunkwise on mma.sync, one kernel walking chunks of 64, the state in registers", \
     launch_chunk<T, 64, FWD>, chunk_unsupported<64>},                                                             \
    {"l3-chunk-128", "ours", DT, "l2 with chunks of 128: half the chain, twice the quadratic part",               \
     launch_chunk<T, 128, FWD>, chunk_unsupported<128>},                                                           \
    {"l4-segments", "ours", DT, "l2 on segments of 1024 tokens in parallel: their K^T V sums, a scan, then l2",    \
     launch_segments<T, FWD>, chunk_unsupported<SEGMENT_CHUNK>},                                                   \
    {"l5-wgmma", "ours", DT, "l2 on wgmma, operands from shared memory, Q K V by the TMA, the state as S^T",      \
     launch_chunk_wgmma<T, FWD>, chunk_wgmma_unsupported},                                                         \
    {"l6-wgmma-segments", "ours", DT, "l4 with l5 in place of l2: segment sums, a scan, then l5 from the states",  \
     launch_segments_wgmma<T, FWD>, chunk_wgmma_unsupported},                                                      \
    {"l7-wgmma-sums", "ours", DT, "l6 with its segment sums on l5's kernel too: K and V by the TMA, V^T K on wgmma", \
     launch_segments_wgmma<T, FWD, true>, chunk_wgmma_unsupported},                                                \
    {"l8-wgmma-fitted", "ours", DT, "l7 with as many segments as one wave of l5's blocks needs, none where heads fill it", \
     launch_segments_wgmma<T, FWD, true, FIT_L8>, chunk_wgmma_unsupported},                                        \
    {"l9-wgmma-rows", "ours", DT, "l8 with O in whole rows through shared memory, and a wave of d / 64 blocks an SM",    \
     launch_segments_wgmma<T, FWD, true, FIT_L9, true>, chunk_wgmma_unsupported},                                  \
    {"softmax-a8", "peer", DT, "the attention chapter's causal softmax forward (a8-dispatch) on the same Q, K, V",  \
     launch_softmax_a8<T>, softmax_a8_unsupported},                                                                \
    {"lb0-recurrent", "ours", DT, "backward: l0's recurrence three times, dQ forward in time, dK and dV backward", \
     launch_recurrent<T, BWD>, NULL},                                                                              \
    {"lb2-chunk-64", "ours", DT, "backward: l2's chunkwise kernel three times, dK and dV mirrored in time",        \
     launch_chunk<T, 64, BWD>, chunk_unsupported<64>},                                                             \
    {"lb4-segments", "ours", DT, "backward: l4's segments for the three passes",                                   \
     launch_segments<T, BWD>, chunk_unsupported<SEGMENT_CHUNK>},                                                   \
    {"lfb4-segments", "ours", DT, "forward and backward: l4, then lb4",                                            \
     launch_forward_backward<T>, chunk_unsupported<SEGMENT_CHUNK>},                                                \
    {"lb5-wgmma", "ours", DT, "backward: l5's wgmma kernel, the three passes in one launch, dK and dV mirrored",   \
     launch_chunk_wgmma<T, BWD>, chunk_wgmma_unsupported},                                                         \
    {"lb6-wgmma-segments", "ours", DT, "backward: l6's segments for the three passes",                             \
     launch_segments_wgmma<T, BWD>, chunk_wgmma_unsupported},                                                      \
    {"lfb6-wgmma-segments", "ours", DT, "forward and backward: l6, then lb6",                                      \
     launch_forward_backward_wgmma<T>, chunk_wgmma_unsupported},                                                   \
    {"lfb7-wgmma-sums", "ours", DT, "forward and backward: l7, then l7's kernels given the backward's passes",      \
     launch_forward_backward_wgmma<T, true>, chunk_wgmma_unsupported},                                             \
    {"lfb8-wgmma-fitted", "ours", DT, "forward and backward: l8, then l8's segments given the backward's passes",   \
     launch_forward_backward_wgmma<T, true, FIT_L8>, chunk_wgmma_unsupported},                                     \
    {"lfb9-wgmma-rows", "ours", DT, "forward and backward: l9, then l9's segments given the backward's passes",     \
     launch_forward_backward_wgmma<T, true, FIT_L9, true>, chunk_wgmma_unsupported},                               \
    {"d0-recurrent", "ours", DT, "decay: l0 with S = gamma S + k v^T, a gamma per head",                           \
     launch_recurrent<T, FWD, true>, NULL},                                                                        \
    {"d1-quadratic", "ours", DT, "decay: l1 with the causal mask become the decay matrix gamma^(t-s)",            \
     launch_quadratic<T, true>, NULL},                                                                             \
    {"d2-chunk-64", "ours", DT, "decay: l2 with gamma^(i+1) on Q S, gamma^(t-s) inside, gamma^(C-1-j) on V",      \
     launch_chunk<T, 64, FWD, true>, chunk_unsupported<64, true>},                                                 \
    {"d4-segments", "ours", DT, "decay: l4 with d2's kernels, the scan decaying by gamma^1024 a segment",          \
     launch_segments<T, FWD, true>, chunk_unsupported<SEGMENT_CHUNK, true>},                                       \
    {"db0-recurrent", "ours", DT, "decay, backward: lb0 with d0's kernel",                                         \
     launch_recurrent<T, BWD, true>, NULL},                                                                        \
    {"db2-chunk-64", "ours", DT, "decay, backward: lb2 with d2's kernel, dK and dV decayed in their walk",         \
     launch_chunk<T, 64, BWD, true>, chunk_unsupported<64, true>}

static const Version VERSIONS[] = {
    LINEAR_VERSIONS(__nv_bfloat16, "bf16"),
    LINEAR_VERSIONS(__half, "f16"),
};
#line 126 "chapters/11-linear-attention.md"
// <<create-and-check-a-linear-attention-problem>>
#line 2547 "chapters/11-linear-attention.md"
// ============================================================ the references in double
static bool cpu_reference(const Problem *p) { return (double)elements_of(p) * p->d <= 1073741824.0; }

// X_t = sum_{j <= t} sum_i |q_ti k_ji| of one head (bh) of output `part`, into x[t] for the t-th
// token of the part's walk: the floor of the bound with decay. A running sum of |k_j|.
static void score_magnitudes(double *x, const Problem *p, int part, size_t bh)
{
    const int d = p->d;
    const float *hq = p->host[PARTS[part].q], *hk = p->host[PARTS[part].k];
    double K1[128] = {};
    for (int t = 0; t < p->s; t++) {
        const size_t row = (bh * p->s + walk_token(t, p->s, PARTS[part].reverse)) * d;
        double sum = 0.0;
        for (int i = 0; i < d; i++) {
            K1[i] += fabs((double)hk[row + i]);
            sum += fabs((double)hq[row + i]) * K1[i];
        }
        x[t] = sum;
    }
}

// One column c of one head (bh) of output `part` (PARTS), by the recurrence, in double: o_tc,
// its bound, its scale tau M_tc, for every t, into ref, arith, scale (each at the head's column
// c, rows of d). The tokens are walked in the part's order (walk_token). With decay (p->decayed)
// the states are S = gamma S + k v^T, and xabs holds the head's X_t (score_magnitudes); else NULL.
static void reference_column(double *ref, double *arith, double *scale, const Problem *p, int part, size_t bh, int c,
                             const double *xabs)
{
    const int d = p->d;
    const float *hq = p->host[PARTS[part].q], *hk = p->host[PARTS[part].k], *hv = p->host[PARTS[part].v];
    const double gamma = p->decayed ? p->gamma[bh % p->h] : 1.0, log_gamma = -log(gamma);
    double S[128] = {}, A[128] = {}, vabs = 0.0, rel, floor_;
    p_rounding_of(p->dtype, &rel, &floor_);
    for (int t = 0; t < p->s; t++) {
        const size_t row = (bh * p->s + walk_token(t, p->s, PARTS[part].reverse)) * d;
        const float *q = hq + row, *k = hk + row;
        const double v = hv[row + c];
        double o = 0.0, m = 0.0, qabs = 0.0;
        vabs += fabs(v);
        for (int i = 0; i < d; i++) {
            S[i] = gamma * S[i] + (double)k[i] * v;  // gamma = 1: exactly S[i] + k v
            A[i] = gamma * A[i] + fabs((double)k[i] * v);
            o += q[i] * S[i];
            m += fabs(q[i]) * A[i];
            qabs += fabs(q[i]);
        }
        ref[row + c] = p->scale * o;
        scale[row + c] = p->scale * m;
        arith[row + c] = linear_bound(m, vabs, qabs, xabs ? xabs[t] : 0.0, (double)p->scale, t + 1, d, rel, floor_,
                                      p->decayed ? decay_budget(t + 1, log_gamma) : 0.0);
    }
}

// Every column of one head of output `part`, as make_reference computes them (with X_t where decayed).
static void reference_head(double *ref, double *arith, double *scale, const Problem *p, int part, size_t bh)
{
    double *xabs = NULL;
    if (p->decayed) {
        xabs = (double *)host_alloc(p->s * sizeof(double), "reference");
        score_magnitudes(xabs, p, part, bh);
    }
    for (int c = 0; c < p->d; c++) reference_column(ref, arith, scale, p, part, bh, c, xabs);
    free(xabs);
}

// One row (b h and the token flattened) of output `part` directly, o_t = tau sum gamma^(t-j)
// (q_t . k_j) v_j over the tokens j that t sees (gamma = 1 without decay), in double: its d
// values, bounds and scales. O(t d): the CPU's check of sampled rows, and the recurrence's.
static void reference_row(double *ref, double *arith, double *scale, const Problem *p, int part, size_t row)
{
    const int d = p->d, token = (int)(row % p->s), rev = PARTS[part].reverse, t = walk_token(token, p->s, rev);
    const size_t first = (row - token) * d;  // the head's first element
    const float *hk = p->host[PARTS[part].k], *hv = p->host[PARTS[part].v];
    const float *q = p->host[PARTS[part].q] + row * d;
    const double gamma = p->decayed ? p->gamma[row / p->s % p->h] : 1.0, log_gamma = -log(gamma);
    double m[128] = {}, vabs[128] = {}, qabs = 0.0, xabs = 0.0, w = 1.0, rel, floor_;
    p_rounding_of(p->dtype, &rel, &floor_);
    for (int c = 0; c < d; c++) ref[c] = 0.0, qabs += fabs(q[c]);
    for (int j = t; j >= 0; j--, w *= gamma) {  // w = gamma^(t - j), from the row's own token back
        const size_t at = first + (size_t)walk_token(j, p->s, rev) * d;
        const float *k = hk + at, *v = hv + at;
        double x = 0.0, a = 0.0;
        for (int i = 0; i < d; i++) x += (double)q[i] * k[i], a += fabs((double)q[i] * k[i]);
        xabs += a;
        for (int c = 0; c < d; c++) {
            ref[c] += w * x * v[c];
            m[c] += w * a * fabs(v[c]);
            vabs[c] += fabs(v[c]);
        }
    }
    for (int c = 0; c < d; c++) {
        ref[c] *= p->scale;
        scale[c] = p->scale * m[c];
        arith[c] = linear_bound(m[c], vabs[c], qabs, p->decayed ? xabs : 0.0, (double)p->scale, t + 1, d, rel, floor_,
                                p->decayed ? decay_budget(t + 1, log_gamma) : 0.0);
    }
}
#line 2656 "chapters/11-linear-attention.md"
// The float32 reference on the GPU of output `part` into the problem's reference arrays (as doubles).
template <typename T, int D>
static void gpu_reference_kernel(float *const dev[3], const Problem *p, int part, float rel, float floor_)
{
    LinearPasses<T> ps;
    memset(&ps, 0, sizeof ps);
    ps.pass[0] = pass_of<T>(p, part), ps.n = 1;
    const dim3 grid((unsigned)(p->b * p->h)), block(2 * D);
    if (p->decayed)
        linear_recurrent<T, D, true, true><<<grid, block>>>(ps, decay_of(p, true), dev[0], dev[1], dev[2], p->s,
                                                            p->scale, rel, floor_);
    else
        linear_recurrent<T, D, true, false><<<grid, block>>>(ps, decay_of(p, false), dev[0], dev[1], dev[2], p->s,
                                                             p->scale, rel, floor_);
    CHECK_LAUNCH();
}

static void gpu_reference(Problem *p, int part)
{
    const size_t n = elements_of(p);
    const int slot = slot_of(p, part);
    float *dev[3];  // the output, its bound, its scale
    double *host[3] = {p->ref[slot], p->arith[slot], p->scale_of[slot]};
    for (int a = 0; a < 3; a++) dev[a] = (float *)device_alloc(n * sizeof(float), "reference");
    double rel, floor_;
    p_rounding_of(p->dtype, &rel, &floor_);
    if (p->dtype == BF16 && p->d == 64) gpu_reference_kernel<__nv_bfloat16, 64>(dev, p, part, (float)rel, (float)floor_);
    else if (p->dtype == BF16) gpu_reference_kernel<__nv_bfloat16, 128>(dev, p, part, (float)rel, (float)floor_);
    else if (p->d == 64) gpu_reference_kernel<__half, 64>(dev, p, part, (float)rel, (float)floor_);
    else gpu_reference_kernel<__half, 128>(dev, p, part, (float)rel, (float)floor_);
    float *h = (float *)host_alloc(n * sizeof(float), "reference");
    for (int a = 0; a < 3; a++) {
        CUDA_CHECK(cudaMemcpy(h, dev[a], n * sizeof(float), cudaMemcpyDeviceToHost));
#pragma omp parallel for schedule(static)
        for (size_t e = 0; e < n; e++) host[a][e] = h[e];
        CUDA_CHECK(cudaFree(dev[a]));
    }
    free(h);
    if (!p->decayed) return;
    // with decay, the floor tau 2 floor X_t of the bound (linear_bound), the same for a row's d elements
    const long heads = (long)p->b * p->h;
#pragma omp parallel for schedule(dynamic, 1)
    for (long bh = 0; bh < heads; bh++) {
        double *x = (double *)host_alloc(p->s * sizeof(double), "reference");
        score_magnitudes(x, p, part, (size_t)bh);
        for (int t = 0; t < p->s; t++) {
            double *at = host[1] + ((size_t)bh * p->s + walk_token(t, p->s, PARTS[part].reverse)) * p->d;
            for (int c = 0; c < p->d; c++) at[c] += (double)p->scale * 2 * floor_ * x[t];
        }
        free(x);
    }
}

static void make_reference(Problem *p, int part)
{
    const int slot = slot_of(p, part);
    if (p->ref[slot]) return;
    const size_t n = elements_of(p);
    p->ref[slot] = (double *)host_alloc(n * sizeof(double), "reference");
    p->arith[slot] = (double *)host_alloc(n * sizeof(double), "reference");
    p->scale_of[slot] = (double *)host_alloc(n * sizeof(double), "reference");
    p->ref_factor = cpu_reference(p) ? 1.0 : 2.0;
    if (!cpu_reference(p)) {
        gpu_reference(p, part);
        return;
    }
    const long heads = (long)p->b * p->h, tasks = heads * p->d;  // (head, column) pairs
    double *xabs = NULL;  // with decay, X_t of every head (score_magnitudes)
    if (p->decayed) {
        xabs = (double *)host_alloc((size_t)heads * p->s * sizeof(double), "reference");
#pragma omp parallel for schedule(dynamic, 1)
        for (long bh = 0; bh < heads; bh++) score_magnitudes(xabs + (size_t)bh * p->s, p, part, (size_t)bh);
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (long task = 0; task < tasks; task++)
        reference_column(p->ref[slot], p->arith[slot], p->scale_of[slot], p, part, (size_t)(task / p->d),
                         (int)(task % p->d), xabs ? xabs + (size_t)(task / p->d) * p->s : NULL);
    free(xabs);
}

enum { SAMPLE_ROWS = 256 };

// The rows checked against the CPU where the GPU's reference is used (picked at the first
// check, their values computed at each output's first check and kept for the other versions).
static void make_cpu_sample(Problem *p, int part)
{
    if (p->sample[slot_of(p, part)]) return;
    const size_t d = p->d, rows = elements_of(p) / d, s = p->s, n = SAMPLE_ROWS * d;
    const size_t fixed[] = {0, rows - 1, s - 1, s, 15, 16, 63, 64, 127, 128, s - 64, s - 65};
    size_t *picked = p->sample_rows;
    if (!picked) {
        picked = p->sample_rows = (size_t *)host_alloc(SAMPLE_ROWS * sizeof(size_t), "sample");
        size_t k = 0;
        for (size_t f = 0; f < sizeof fixed / sizeof fixed[0]; f++) picked[k++] = fixed[f] < rows ? fixed[f] : rows - 1;
        uint64_t state = 0x5eed ^ rows;
        while (k < SAMPLE_ROWS) picked[k++] = rng_next(&state) % rows;
    }
    // values, bounds, scales
    double *v = p->sample[slot_of(p, part)] = (double *)host_alloc(3 * n * sizeof(double), "sample");
#pragma omp parallel for schedule(dynamic, 1)
    for (int r = 0; r < SAMPLE_ROWS; r++)
        reference_row(v + r * d, v + n + r * d, v + 2 * n + r * d, p, part, picked[r]);
}
#line 2766 "chapters/11-linear-attention.md"
// ============================================================ problems and checks
// "BxHxSxD" into dims = {b, h, s, d}, each a count as the harness reads one (32768, 2^15,
// 2^12+1). NULL, or what the sizes must be.
static const char *parse_linear_size(const char *size, int dims[4])
{
    static const char *want = "BxHxSxD (2x3x65x64, 1x16x2^15x128): D 64 or 128, lengths 1 to 2^20, B x H at most "
                              "65535, each of Q, K, V, O at most 2^31 elements";
    const char *at = size;
    for (int k = 0; k < 4; k++) {
        const char *end = k < 3 ? strchr(at, 'x') : at + strlen(at);
        char field[32];
        size_t n = 0, len = end ? (size_t)(end - at) : 0;
        if (len == 0 || len >= sizeof field || !isdigit((unsigned char)*at)) return want;
        memcpy(field, at, len);
        field[len] = '\0';
        if (parse_count(field, &n) || n < 1 || n > (1u << 20)) return want;
        dims[k] = (int)n;
        at = end + 1;
    }
    const double heads = (double)dims[0] * dims[1];
    if ((dims[3] != 64 && dims[3] != 128) || heads > 65535 || heads * dims[2] * dims[3] > 2147483648.0) return want;
    return NULL;
}

static const char *linear_bad_size(const char *size)
{
    int dims[4];
    return parse_linear_size(size, dims);
}

// q and k uniform in [-1, 2) / sqrt(d), v and dO uniform in [-1, 1.5); all rounded to the
// element type.
static void fill_inputs(Problem *p, uint64_t seed)
{
    const size_t n = elements_of(p);
    const float unit = (float)(1.0 / sqrt((double)p->d));
    struct { float *x; float lo, hi; } inputs[4] = {{p->host[IN_Q], -unit, 2 * unit}, {p->host[IN_K], -unit, 2 * unit},
                                                   {p->host[IN_V], -1.0f, 1.5f}, {p->host[IN_DO], -1.0f, 1.5f}};
    for (int a = 0; a < 4; a++) {
        fill_uniform_f32(inputs[a].x, n, inputs[a].lo, inputs[a].hi, seed + a);
#pragma omp parallel for schedule(static)
        for (size_t e = 0; e < n; e++) inputs[a].x[e] = round_to(p->dtype, inputs[a].x[e]);
    }
}

// The host copies of the four inputs and the decays of the heads (decay_of_head), in one
// allocation (freed with host[IN_Q]).
static void alloc_host_inputs(Problem *p)
{
    const size_t n = elements_of(p);
    p->host[0] = (float *)host_alloc((4 * n + p->h) * sizeof(float), "inputs");
    for (int a = 1; a < 4; a++) p->host[a] = p->host[a - 1] + n;
    p->gamma = p->host[3] + n;
    for (int h = 0; h < p->h; h++) p->gamma[h] = decay_of_head(h, p->h);
}

// A host-only problem for the CPU tests (b = 1, bfloat16, no decay), its inputs drawn by fill_inputs.
static Problem host_problem(int h, int s, int d, uint64_t seed)
{
    Problem p;
    memset(&p, 0, sizeof p);
    p.dtype = BF16, p.b = 1, p.h = h, p.s = s, p.d = d;
    p.scale = (float)(1.0 / sqrt((double)d));
    alloc_host_inputs(&p);
    fill_inputs(&p, seed);
    return p;
}

static Problem *linear_create(const char *dtype, const char *size, uint64_t seed)
{
    Problem *p = (Problem *)host_alloc(sizeof(Problem), "problem");
    memset(p, 0, sizeof *p);
    int dims[4];
    const char *bad = parse_linear_size(size, dims);
    if (bad) usage_error("bad size", size, bad);
    p->b = dims[0], p->h = dims[1], p->s = dims[2], p->d = dims[3];
    p->dtype = parse_dtype(dtype);
    snprintf(p->size, sizeof p->size, "%s", size);
    p->scale = (float)(1.0 / sqrt((double)p->d));
    const size_t n = elements_of(p), e = dtype_bytes(p->dtype);
    // Q, K, V, dO, O, dQ, dK, dV; lb4's states; beyond the CPU's reach the GPU reference's three float arrays
    const size_t states = p->s > SEGMENT ? (size_t)p->b * p->h * ((p->s + SEGMENT - 1) / SEGMENT) * p->d * p->d * 3 * 4 : 0;
    check_fits(size, 8 * n * e + states + (cpu_reference(p) ? 0 : 3 * n * 4) + (64u << 20));
    alloc_host_inputs(p);
    fill_inputs(p, seed);
    static const char *const names[2][4] = {{"Q", "K", "V", "dO"}, {"O", "dQ", "dK", "dV"}};
    for (int a = 0; a < 4; a++) {
        p->in[a] = device_alloc(n * e, names[0][a]);
        p->out[a] = device_alloc(n * e, names[1][a]);
        upload(p->in[a], p->host[a], n, p->dtype);
    }
    // the decays of the heads and their log2s, rounded to float once, for the versions with decay
    float *decay = (float *)host_alloc(2 * p->h * sizeof(float), "decay");
    for (int h = 0; h < p->h; h++) decay[h] = p->gamma[h], decay[p->h + h] = (float)log2((double)p->gamma[h]);
    p->decay = (float *)device_alloc(2 * p->h * sizeof(float), "decay");
    CUDA_CHECK(cudaMemcpy(p->decay, decay, 2 * p->h * sizeof(float), cudaMemcpyHostToDevice));
    free(decay);
    return p;
}

static void linear_destroy(Problem *p)
{
    for (int a = 0; a < 4; a++) {
        CUDA_CHECK(cudaFree(p->in[a]));
        CUDA_CHECK(cudaFree(p->out[a]));
    }
    for (int slot = 0; slot < 8; slot++) {
        free(p->ref[slot]);
        free(p->arith[slot]);
        free(p->scale_of[slot]);
        free(p->sample[slot]);
    }
    CUDA_CHECK(cudaFree(p->decay));
    if (p->states) CUDA_CHECK(cudaFree(p->states));
    void *softmax[3] = {p->softmax_o, p->softmax_lse, p->softmax_wgmma.next_item};
    for (int a = 0; a < 3; a++)
        if (softmax[a]) CUDA_CHECK(cudaFree(softmax[a]));
    free(p->sample_rows);
    free(p->host[0]);  // the other inputs too
    free(p);
}

static void linear_poison(Problem *p)
{
    for (int a = 0; a < 4; a++) poison(p->out[a], elements_of(p) * dtype_bytes(p->dtype));
    if (p->softmax_o) {
        poison(p->softmax_o, elements_of(p) * dtype_bytes(p->dtype));
        poison(p->softmax_lse, elements_of(p) / p->d * sizeof(float));
    }
}

// Forward: Q, K, V read once, O written once. Backward: Q, K, V, dO read once, dQ, dK, dV
// written once. Both: the sum.
static double linear_bytes(const Problem *p)
{
    const double arrays = p->op == FWD ? 4.0 : p->op == BWD ? 7.0 : 11.0;
    return arrays * elements_of(p) * dtype_bytes(p->dtype);
}

// The recurrent form's 4 b h s d^2 forward: per token, k v^T added to the state and q^T S. The
// backward's 10 b h s d^2: per token the state S again and dQ = tau S dO; the state of q dO^T,
// and dK and dV from it, 2 d^2 each. Both: the sum.
static double linear_flops(const Problem *p)
{
    const double per = p->op == FWD ? 4.0 : p->op == BWD ? 10.0 : 14.0;
    return per * elements_of(p) * p->d;
}

typedef struct {
    const double *ref, *arith, *scale;
    double factor;
    DType dtype;
} OutputBound;

static double output_element_bound(const void *ctx, size_t i, double *scale)
{
    const OutputBound *b = (const OutputBound *)ctx;
    *scale = b->scale[i] + b->factor * b->arith[i];  // the products' magnitude, and the bound where they cancel
    return error_bound(b->dtype, b->ref[i], b->factor * b->arith[i], 0, 0.0);
}

static CheckResult check_output(const Problem *p, const char *version, const char *what, const double *got,
                                const double *ref, const double *arith, const double *scale, size_t n, double factor)
{
    OutputBound bound = {ref, arith, scale, factor, p->dtype};
    char label[96];
    snprintf(label, sizeof label, "%s (%s)", version, what);
    return check_elements(label, p->size, got, ref, n, output_element_bound, &bound, p->d);
}

// softmax-a8's O and LSE, every element against the attention chapter's float32 reference on
// the GPU, within its bound: twice the float arithmetic's, then the final rounding.
static CheckResult check_softmax_a8(const Problem *p, const char *version)
{
    const size_t rows = elements_of(p) / p->d, counts[5] = {elements_of(p), elements_of(p), elements_of(p), rows, rows};
    float *dev[5];
    double *ref[5];
    for (int a = 0; a < 5; a++) dev[a] = (float *)device_alloc(counts[a] * sizeof(float), "softmax reference");
    attention_reference_on_gpu(dev, p->in[IN_Q], p->in[IN_K], p->in[IN_V], rows, p->s, p->s, p->d, p->scale, true,
                               p->dtype);
    for (int a = 0; a < 5; a++) {
        ref[a] = download(dev[a], counts[a], F32);
        CUDA_CHECK(cudaFree(dev[a]));
    }
    double *got_o = download(p->softmax_o, counts[0], p->dtype), *got_lse = download(p->softmax_lse, rows, F32);
    CheckResult r = check_rows(p->dtype, p->size, p->d, version, "softmax, GPU float32", got_o, ref[0], ref[1],
                               ref[2], got_lse, ref[3], ref[4], rows, 2.0);
    for (int a = 0; a < 5; a++) free(ref[a]);
    free(got_o);
    free(got_lse);
    return r;
}

// Every output the version computed (O; dQ, dK, dV; or all four), each in full against its
// reference (with decay, if the version's launch had it) and, beyond the CPU's reach, on the
// sampled rows against the CPU's; softmax-a8's O and LSE against the attention chapter's.
static CheckResult linear_check(Problem *p, const char *version)
{
    if (!strcmp(version, "softmax-a8")) return check_softmax_a8(p, version);
    const size_t n = elements_of(p), d = p->d;
    const int first = p->op == BWD ? OUT_DQ : OUT_O, last = p->op == FWD ? OUT_O : OUT_DV;
    CheckResult r = {0, 0.0, 0.0};
    for (int part = first; part <= last; part++) {
        make_reference(p, part);
        const int slot = slot_of(p, part);
        char what[64];
        snprintf(what, sizeof what, "%s%s, %s", PARTS[part].name, p->decayed ? " with decay" : "",
                 cpu_reference(p) ? "CPU" : "GPU float32");
        double *got = download(p->out[part], n, p->dtype);
        add_check(&r, check_output(p, version, what, got, p->ref[slot], p->arith[slot], p->scale_of[slot], n,
                                    p->ref_factor));
        if (!cpu_reference(p)) {
            make_cpu_sample(p, part);
            const size_t m = SAMPLE_ROWS * d;
            const double *sample = p->sample[slot];
            double *picked = (double *)host_alloc(m * sizeof(double), "sample");
            for (size_t k = 0; k < SAMPLE_ROWS; k++)
                for (size_t c = 0; c < d; c++) picked[k * d + c] = got[p->sample_rows[k] * d + c];
            snprintf(what, sizeof what, "%s%s, CPU sample", PARTS[part].name, p->decayed ? " with decay" : "");
            add_check(&r, check_output(p, version, what, picked, sample, sample + m, sample + 2 * m, m, 1.0));
            free(picked);
        }
        free(got);
    }
    return r;
}
#line 3023 "chapters/11-linear-attention.md"
// The largest |recurrence - direct sum| over every element of a host problem (values, bounds
// and scales), relative to the largest scale; with decay (the problem's decays) or without.
static double recurrence_against_direct(int h, int s, int d, uint64_t seed, DType t = BF16, int decayed = 0)
{
    Problem p = host_problem(h, s, d, seed);
    p.dtype = t, p.decayed = decayed;
    fill_inputs(&p, seed);
    const size_t n = elements_of(&p);
    double *col = (double *)host_alloc(3 * n * sizeof(double), "reference"), row[3][128], worst = 0.0, largest = 0.0;
    for (int part = OUT_O; part <= OUT_DV; part++) {
        for (int bh = 0; bh < h; bh++) reference_head(col, col + n, col + 2 * n, &p, part, bh);
        for (size_t e = 0; e < n; e++) largest = fmax(largest, col[2 * n + e]);
        for (size_t r = 0; r < n / d; r++) {
            reference_row(row[0], row[1], row[2], &p, part, r);
            for (int a = 0; a < 3; a++)
                for (int c = 0; c < d; c++) worst = fmax(worst, fabs(row[a][c] - col[a * n + r * d + c]));
        }
    }
    free(col);
    free(p.host[0]);
    return worst / largest;
}

// The chunkwise form as l2 and l3 compute it, simulated on the CPU for one column c of a
// one-head problem: float sums; chunks of C tokens; the state entering a chunk and the scores
// inside it rounded to the element type; pass_state false forgets the state (a broken version).
// With decay (p->decayed) as d2 computes it: the powers 2^(n log2 gamma) in float, gamma^(i +
// lag) on q^T S_(n-1) (lag 1; 0 is the broken convention), gamma^(i - j) on the scores before
// they are rounded, S = gamma^C S + sum_j k_j (gamma^(C - 1 - j) v_j rounded).
static void chunkwise_in_float(float *o, const Problem *p, int c, int C, bool pass_state, int lag = 1)
{
    const int d = p->d;
    const float *hq = p->host[IN_Q], *hk = p->host[IN_K], *hv = p->host[IN_V];
    const float log2_gamma = p->decayed ? (float)log2((double)p->gamma[0]) : 0.0f;
    float S[128] = {}, rounded[128], pw[129];  // column c of the state, in float, as in the accumulators
    for (int e = 0; e <= C; e++) pw[e] = exp2f((float)e * log2_gamma);
    for (int n0 = 0; n0 < p->s; n0 += C) {
        const int end = n0 + C < p->s ? n0 + C : p->s;
        for (int i = 0; i < d; i++) rounded[i] = pass_state ? round_to(p->dtype, S[i]) : 0.0f;
        for (int t = n0; t < end; t++) {
            const float *q = hq + (size_t)t * d;
            float acc = 0.0f;
            for (int i = 0; i < d; i++) acc += q[i] * rounded[i];  // q^T S_(n-1)
            if (p->decayed) acc *= pw[t - n0 + lag];
            for (int j = n0; j <= t; j++) {  // + mask(q K^T) V inside the chunk
                float x = 0.0f;
                for (int i = 0; i < d; i++) x += q[i] * hk[(size_t)j * d + i];
                if (p->decayed) x *= pw[t - j];
                acc += round_to(p->dtype, x) * hv[(size_t)j * d + c];
            }
            o[t] = round_to(p->dtype, p->scale * acc);
        }
        if (p->decayed)
            for (int i = 0; i < d; i++) S[i] *= pw[C];
        for (int j = n0; j < end; j++) {
            const float v = hv[(size_t)j * d + c];
            const float vd = p->decayed ? round_to(p->dtype, v * pw[C - 1 - (j - n0)]) : v;
            for (int i = 0; i < d; i++) S[i] += hk[(size_t)j * d + i] * vd;
        }
    }
}

// The forward problem whose output is output `part` of p, as the kernels see it: the part's
// three inputs as Q, K, V, in the order its pass walks the tokens (mirror), or, for a broken
// backward, in time order whatever the part (mirror false). One head.
static Problem walked_problem(const Problem *p, int part, bool mirror)
{
    Problem w = *p;
    alloc_host_inputs(&w);
    memcpy(w.gamma, p->gamma, p->h * sizeof(float));
    const int src[3] = {PARTS[part].q, PARTS[part].k, PARTS[part].v}, d = p->d;
    for (int a = 0; a < 3; a++)
        for (int t = 0; t < p->s; t++)
            memcpy(w.host[a] + (size_t)t * d, p->host[src[a]] + (size_t)walk_token(t, p->s, mirror && PARTS[part].reverse) * d,
                   d * sizeof(float));
    return w;
}

// How many elements of output `part` computed by the simulated chunkwise form miss the bound,
// every column of a head; pass_state and mirror false make the broken versions. gamma > 0: with
// that decay (lag as in chunkwise_in_float).
static size_t chunkwise_misses(int s, int d, int C, DType t, int part, bool pass_state, bool mirror, float gamma = 0.0f,
                               int lag = 1)
{
    Problem p = host_problem(1, s, d, 9);
    p.dtype = t;
    fill_inputs(&p, 9);
    if (gamma > 0.0f) p.decayed = 1, p.gamma[0] = gamma;
    Problem w = walked_problem(&p, part, mirror);
    const size_t n = elements_of(&p);
    double *ref = (double *)host_alloc(3 * n * sizeof(double), "reference");
    float *o = (float *)host_alloc(s * sizeof(float), "output");
    size_t misses = 0;
    for (int c = 0; c < d; c++) {
        if (c == 0) reference_head(ref, ref + n, ref + 2 * n, &p, part, 0);
        chunkwise_in_float(o, &w, c, C, pass_state, lag);
        for (int k = 0; k < s; k++) {  // o[k] is the k-th token walked
            const size_t e = (size_t)walk_token(k, s, PARTS[part].reverse) * d + c;
            misses += !(fabs(o[k] - ref[e]) <= error_bound(t, ref[e], ref[n + e], 0, 0.0));
        }
    }
    free(o);
    free(ref);
    free(w.host[0]);
    free(p.host[0]);
    return misses;
}

// l5's pass for output `part` simulated on the CPU, every head of an h-head problem: the chunks of
// l5_chunk_first, each row read as the TMA reads the (h s) x d matrices (another head's tokens
// before and after a head's own, zeros outside the matrices); float sums; the state entering a
// chunk and the scores rounded to the element type; the mask of the pass's direction, applied by the
// kernel's own functions to each thread's scores in the warpgroup's layout (mirror_mask false: the
// forward's whatever the pass, a broken version); segments of seg tokens, each from the float sum
// of k v^T over the tokens walked before it. How many elements of the output miss the bound.
static size_t l5_pass_misses(int h, int s, int d, int seg, DType t, int part, bool mirror_mask)
{
    Problem p = host_problem(h, s, d, 13);
    p.dtype = t;
    fill_inputs(&p, 13);
    const size_t n = elements_of(&p), rows = n / d;
    const float *hq = p.host[PARTS[part].q], *hk = p.host[PARTS[part].k], *hv = p.host[PARTS[part].v];
    const int rev = PARTS[part].reverse, C = L5_C;
    double *ref = (double *)host_alloc(3 * n * sizeof(double), "reference");
    float *S = (float *)host_alloc((2 * d * d + C * C) * sizeof(float), "state"), *Sr = S + d * d, *x = Sr + d * d;
    bool seen[L5_C * L5_C] = {};  // seen[r C + j]: whether row r of a chunk keeps key j's score, as the kernel masks
    for (int th = 0; th < 128; th++) {  // X is laid out as S^T on 64 columns: row c, key i
        float kept[32];
        for (int e = 0; e < 32; e++) kept[e] = 1.0f;
        zero_unseen_scores<32>(kept, 0, 16 * (th / 32) + th % 32 / 4, th % 4, rev && mirror_mask);
        for (int e = 0; e < 32; e++) {
            int r, j;
            l5_state_place(th, e, &r, &j);
            seen[r * C + j] = kept[e] != 0.0f;
        }
    }
    size_t misses = 0;
    for (int bh = 0; bh < h; bh++) {
        reference_head(ref, ref + n, ref + 2 * n, &p, part, bh);
        for (int t0 = 0; t0 < s; t0 += seg) {
            memset(S, 0, d * d * sizeof(float));  // S[i d + c], entering the segment
            for (int j = 0; j < t0; j++) {
                const size_t r = ((size_t)bh * s + walk_token(j, s, rev)) * d;
                for (int i = 0; i < d; i++)
                    for (int c = 0; c < d; c++) S[i * d + c] += hk[r + i] * hv[r + c];
            }
            const int chunks = ((s < t0 + seg ? s : t0 + seg) - t0 + C - 1) / C;
            for (int ch = 0; ch < chunks; ch++) {
                const int first = l5_chunk_first(t0, ch, s, rev);
                const float *q[64], *k[64], *v[64];  // the chunk's rows, NULL outside the matrices (zeros)
                for (int r = 0; r < C; r++) {
                    const long at = (long)bh * s + first + r;
                    const bool in = at >= 0 && at < (long)rows;
                    q[r] = in ? hq + at * d : NULL, k[r] = in ? hk + at * d : NULL, v[r] = in ? hv + at * d : NULL;
                }
                for (int e = 0; e < d * d; e++) Sr[e] = round_to(t, S[e]);
                for (int r = 0; r < C; r++)
                    for (int j = 0; j < C; j++) {
                        float dot = 0.0f;
                        for (int i = 0; q[r] && k[j] && i < d; i++) dot += q[r][i] * k[j][i];
                        x[r * C + j] = seen[r * C + j] ? round_to(t, dot) : 0.0f;
                    }
                for (int r = 0; r < C; r++) {
                    const int token = first + r;
                    if (token < 0 || token >= s) continue;
                    for (int c = 0; c < d; c++) {
                        float acc = 0.0f;
                        for (int i = 0; i < d; i++) acc += q[r][i] * Sr[i * d + c];
                        for (int j = 0; j < C; j++) acc += v[j] ? x[r * C + j] * v[j][c] : 0.0f;
                        const size_t e = ((size_t)bh * s + token) * d + c;
                        misses += !(fabs(round_to(t, p.scale * acc) - ref[e]) <= error_bound(t, ref[e], ref[n + e], 0, 0.0));
                    }
                }
                for (int r = 0; r < C; r++)
                    for (int i = 0; k[r] && i < d; i++)
                        for (int c = 0; c < d; c++) S[i * d + c] += k[r][i] * v[r][c];
            }
        }
    }
    free(S);
    free(ref);
    free(p.host[0]);
    return misses;
}

// L = sum over every output element of dO * O, the loss whose gradients the backward computes,
// from the double reference (with decay where the problem has it).
static double loss_of(const Problem *p)
{
    const size_t n = elements_of(p);
    double *o = (double *)host_alloc(3 * n * sizeof(double), "reference"), L = 0.0;
    for (int c = 0; c < p->d; c++) reference_column(o, o + n, o + 2 * n, p, OUT_O, 0, c, NULL);
    for (size_t e = 0; e < n; e++) L += o[e] * p->host[IN_DO][e];
    free(o);
    return L;
}

// The largest difference, relative to the largest gradient, between the gradient reference
// (dQ, dK, dV by reference_column) and central differences of loss_of at a few elements of
// Q, K and V of a one-head problem, with its decay or without. L is linear in each input, so the
// differences are exact but for rounding.
static double gradients_against_differences(int s, int d, int decayed = 0)
{
    Problem p = host_problem(1, s, d, 11);
    p.decayed = decayed;
    const size_t n = elements_of(&p);
    double *g = (double *)host_alloc(3 * n * sizeof(double), "reference"), worst = 0.0, largest = 0.0;
    const int inputs[3] = {IN_Q, IN_K, IN_V}, parts[3] = {OUT_DQ, OUT_DK, OUT_DV};
    const double h = 0x1p-6;
    for (int a = 0; a < 3; a++) {
        for (int c = 0; c < d; c++) reference_column(g, g + n, g + 2 * n, &p, parts[a], 0, c, NULL);
        for (size_t e = 0; e < n; e++) largest = fmax(largest, fabs(g[e]));
        const size_t at[] = {0, (size_t)d + 5, n / 2 + 3, n - d, n - 1};
        for (size_t k = 0; k < sizeof at / sizeof at[0]; k++) {
            float *x = p.host[inputs[a]] + at[k];
            const float x0 = *x;
            *x = (float)(x0 + h);
            const double up = loss_of(&p);
            *x = (float)(x0 - h);
            const double down = loss_of(&p);
            *x = x0;
            worst = fmax(worst, fabs((up - down) / (2 * h) - g[at[k]]));
        }
    }
    free(g);
    free(p.host[0]);
    return worst / largest;
}

// Whether l5's accumulators of S^T (l5_state_place) hold every element of the 64 x d tile
// once, over the warpgroup's 128 threads.
static bool l5_places_each_once(int d)
{
    static unsigned char seen[64 * 128];
    memset(seen, 0, sizeof seen);
    for (int thread = 0; thread < 128; thread++)
        for (int e = 0; e < d / 2; e++) {
            int c, i;
            l5_state_place(thread, e, &c, &i);
            if (c < 0 || c >= 64 || i < 0 || i >= d || seen[c * d + i]++) return false;
        }
    return true;  // 64 d placements, none twice: all of them
}

static int linear_self_test(void)
{
    int passed = 0, failed = 0, dims[4];
    SELF_TEST(!parse_linear_size("2x3x65x64", dims) && dims[0] == 2 && dims[1] == 3 && dims[2] == 65 && dims[3] == 64);
    SELF_TEST(!parse_linear_size("1x16x32768x128", dims) && dims[2] == 32768 && dims[3] == 128);
    SELF_TEST(!parse_linear_size("1x1x1048576x64", dims) && dims[2] == 1 << 20);
    SELF_TEST(!parse_linear_size("1x16x2^12+1x128", dims) && dims[2] == 4097);
    const char *bad[] = {"1x1x1x96", "1x1x1", "1x1x1x64 ", "1x1x1x64x", "1x0x1x64", "+1x1x1x64", "1x1x1048577x64",
                         "300x300x1x64", "1x1x1x64c", "1x32x1048576x128", "",
                         "1x1x1x2^7+1", "1xx1x64", "1x1x-1x64", "1x1x 1x64"};
    bool all_refused = true;
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) all_refused = all_refused && parse_linear_size(bad[k], dims);
    SELF_TEST(all_refused);
    // the recurrence (the CPU reference) against the direct sum
    SELF_TEST(recurrence_against_direct(2, 70, 64, 3) < 1e-12);
    SELF_TEST(recurrence_against_direct(1, 33, 128, 4) < 1e-12);
    // causality: the last token's k and v reach no earlier output
    Problem p = host_problem(1, 9, 64, 7);
    double before[3][64], after[3][64];
    reference_row(before[0], before[1], before[2], &p, OUT_O, 7);
    for (int c = 0; c < 64; c++) p.host[IN_K][8 * 64 + c] = 3.0f, p.host[IN_V][8 * 64 + c] = -5.0f;
    reference_row(after[0], after[1], after[2], &p, OUT_O, 7);
    bool same = true;
    for (int a = 0; a < 3; a++)
        for (int c = 0; c < 64; c++) same = same && before[a][c] == after[a][c];
    SELF_TEST(same);
    // by hand: q_t = e_0, k_s = (s + 1) e_0, v_s = s + 1 everywhere, tau = 1/8: o_t = sum (s+1)^2 / 8
    float *hq = p.host[IN_Q], *hk = p.host[IN_K], *hv = p.host[IN_V], *hdo = p.host[IN_DO];
    for (int e = 0; e < 9 * 64; e++) hq[e] = hk[e] = 0.0f, hdo[e] = 1.0f;
    for (int t = 0; t < 9; t++) {
        hq[t * 64] = 1.0f;
        hk[t * 64] = (float)(t + 1);
        for (int c = 0; c < 64; c++) hv[t * 64 + c] = (float)(t + 1);
    }
    double col[4][3][9 * 64];
    bool exact = p.scale == 0.125f;
    for (int part = OUT_O; part <= OUT_DV; part++)
        reference_head(col[part][0], col[part][1], col[part][2], &p, part, 0);
    const double expect[3] = {0.125, 0.625, 1.75};
    for (int t = 0; t < 3; t++)
        for (int c = 0; c < 64; c++) exact = exact && col[OUT_O][0][t * 64 + c] == expect[t];
    SELF_TEST(exact);
    // and its gradients with dO = 1 everywhere, by hand: dQ_t = 8 sum_{s<=t} (s+1)^2 e_0,
    // dK_s = 8 (9 - s)(s + 1) e_0, dV_s = (9 - s)(s + 1) / 8 in every column
    bool grads = true;
    for (int t = 0; t < 9; t++) {
        double squares = 0.0;
        for (int j = 0; j <= t; j++) squares += (j + 1.0) * (j + 1.0);
        for (int c = 0; c < 64; c++) {
            grads = grads && col[OUT_DQ][0][t * 64 + c] == (c == 0 ? 8.0 * squares : 0.0);
            grads = grads && col[OUT_DK][0][t * 64 + c] == (c == 0 ? 8.0 * (9 - t) * (t + 1) : 0.0);
            grads = grads && col[OUT_DV][0][t * 64 + c] == (9.0 - t) * (t + 1) / 8.0;
        }
    }
    SELF_TEST(grads);
    // with decay gamma = 1/2, by hand: o_t = sum_{s<=t} 2^(s-t) (s+1)^2 / 8; dQ_t = 8 sum_{s<=t} 2^(s-t) (s+1)^2 e_0,
    // dK_s = 8 (s + 1) sum_{t=s..8} 2^(s-t) e_0, dV_s = (s + 1) sum_{t=s..8} 2^(s-t) / 8 in every column
    p.decayed = 1, p.gamma[0] = 0.5f;
    for (int part = OUT_O; part <= OUT_DV; part++)
        reference_head(col[part][0], col[part][1], col[part][2], &p, part, 0);
    bool decayed = true;
    for (int t = 0; t < 9; t++) {
        double squares = 0.0, after = 0.0;  // sum_{s<=t} 2^(s-t) (s+1)^2, and sum_{u=t..8} 2^(t-u)
        for (int j = 0; j <= t; j++) squares += ldexp((j + 1.0) * (j + 1.0), j - t);
        for (int u = t; u < 9; u++) after += ldexp(1.0, t - u);
        for (int c = 0; c < 64; c++) {
            decayed = decayed && col[OUT_O][0][t * 64 + c] == squares / 8.0;
            decayed = decayed && col[OUT_DQ][0][t * 64 + c] == (c == 0 ? 8.0 * squares : 0.0);
            decayed = decayed && col[OUT_DK][0][t * 64 + c] == (c == 0 ? 8.0 * (t + 1) * after : 0.0);
            decayed = decayed && col[OUT_DV][0][t * 64 + c] == (t + 1) * after / 8.0;
        }
    }
    SELF_TEST(decayed && col[OUT_O][0][64] == 0.5625 && col[OUT_O][0][128] == 1.40625);
    p.decayed = 0;
    // the bound grows with the tokens seen, and is zero where nothing can be wrong
    SELF_TEST(linear_bound(1.0, 0.0, 0.0, 0.0, 1.0, 2, 64, 0x1p-8, 0.0, 0.0) >
                  linear_bound(1.0, 0.0, 0.0, 0.0, 1.0, 1, 64, 0x1p-8, 0.0, 0.0) &&
              linear_bound(0.0, 0.0, 0.0, 0.0, 1.0, 5, 64, 0x1p-8, 0x1p-25, 0.0) == 0.0);
    free(p.host[0]);
    // the gradients of the reference against finite differences of its forward
    SELF_TEST(gradients_against_differences(20, 64) < 1e-9);
    SELF_TEST(gradients_against_differences(7, 128) < 1e-9);
    // the chunkwise algebra with l2's and l3's roundings lies within the bound; forgetting the state does not
    SELF_TEST(chunkwise_misses(300, 64, 64, BF16, OUT_O, true, true) == 0 &&
              chunkwise_misses(300, 128, 128, BF16, OUT_O, true, true) == 0 &&
              chunkwise_misses(300, 64, 64, F16, OUT_O, true, true) == 0);
    SELF_TEST(chunkwise_misses(300, 64, 64, BF16, OUT_O, false, true) > 0);
    // and so do lb2's three passes, dK and dV mirrored in time; not mirroring them, or forgetting the state, does not
    bool backward_within = true;
    for (int part = OUT_DQ; part <= OUT_DV; part++)
        backward_within = backward_within && chunkwise_misses(300, 64, 64, BF16, part, true, true) == 0 &&
                          chunkwise_misses(200, 128, 64, F16, part, true, true) == 0;
    SELF_TEST(backward_within);
    SELF_TEST(chunkwise_misses(300, 64, 64, BF16, OUT_DK, true, false) > 0 &&
              chunkwise_misses(300, 64, 64, BF16, OUT_DV, true, false) > 0);
    SELF_TEST(chunkwise_misses(300, 64, 64, BF16, OUT_DQ, false, true) > 0);
    // l5's state: each element of the slice in one accumulator of one thread
    SELF_TEST(l5_places_each_once(64) && l5_places_each_once(128));
    // l5's four passes, dK and dV on chunks in their own order mirrored, lie within the bound with the
    // neighbouring heads' rows in their chunks, on segments too; the forward's mask on a mirrored pass does not
    bool l5_within = true;
    for (int part = OUT_O; part <= OUT_DV; part++)
        l5_within = l5_within && l5_pass_misses(2, 300, 64, 128, BF16, part, true) == 0 &&
                    l5_pass_misses(3, 97, 128, 97, F16, part, true) == 0;
    SELF_TEST(l5_within);
    SELF_TEST(l5_pass_misses(2, 300, 64, 128, BF16, OUT_DK, false) > 0 &&
              l5_pass_misses(2, 300, 64, 128, BF16, OUT_DV, false) > 0);
    // with decay: RetNet's gammas at 8 heads, exactly
    bool retnet = true;
    for (int h = 0; h < 8; h++) retnet = retnet && decay_of_head(h, 8) == (float)(1.0 - ldexp(1.0, -5 - h));
    SELF_TEST(retnet && decay_of_head(0, 1) == 0.96875f && decay_of_head(15, 16) == (float)(1.0 - 0x1p-12));
    // the reference with gamma = 1 is the one without decay, values and scales exactly, and its bound is no smaller
    {
        Problem q = host_problem(2, 70, 64, 5);
        const size_t n = elements_of(&q);
        double *plain = (double *)host_alloc(6 * n * sizeof(double), "reference"), *with = plain + 3 * n;
        for (int part = OUT_O; part <= OUT_DV; part++) {
            bool same = true;
            for (int bh = 0; bh < 2; bh++) {
                q.decayed = 0;
                reference_head(plain, plain + n, plain + 2 * n, &q, part, bh);
                q.decayed = 1, q.gamma[0] = q.gamma[1] = 1.0f;
                reference_head(with, with + n, with + 2 * n, &q, part, bh);
                for (size_t e = bh * n / 2; e < (bh + 1) * n / 2; e++)
                    same = same && plain[e] == with[e] && plain[2 * n + e] == with[2 * n + e] &&
                           plain[n + e] <= with[n + e];
            }
            SELF_TEST(same);
        }
        free(plain);
        free(q.host[0]);
    }
    // the decayed recurrence against the direct sum (in float16, where the floor X_t counts), every output
    SELF_TEST(recurrence_against_direct(3, 70, 64, 3, F16, 1) < 1e-12);
    SELF_TEST(recurrence_against_direct(1, 33, 128, 4, F16, 1) < 1e-12);
    // the decayed gradients against finite differences of the decayed forward
    SELF_TEST(gradients_against_differences(20, 64, 1) < 1e-9);
    // d2's algebra, its powers and roundings, within the bound in both types and for each pass, at a fast and a
    // slow decay; with gamma = 1 the same bits as without decay; gamma^i for gamma^(i + 1) is outside it
    SELF_TEST(chunkwise_misses(300, 64, 64, BF16, OUT_O, true, true, 0.96875f) == 0 &&
              chunkwise_misses(300, 128, 64, F16, OUT_O, true, true, 0.96875f) == 0 &&
              chunkwise_misses(300, 64, 64, F16, OUT_O, true, true, 1.0f - 0x1p-10f) == 0 &&
              chunkwise_misses(300, 128, 128, BF16, OUT_O, true, true, 1.0f - 0x1p-10f) == 0);
    bool decayed_passes = true;
    for (int part = OUT_DQ; part <= OUT_DV; part++)
        decayed_passes = decayed_passes && chunkwise_misses(300, 64, 64, F16, part, true, true, 0.96875f) == 0 &&
                         chunkwise_misses(200, 128, 64, BF16, part, true, true, 1.0f - 0x1p-10f) == 0;
    SELF_TEST(decayed_passes);
    {
        Problem q = host_problem(1, 200, 64, 6);
        float plain[200], with[200];
        bool same = true;
        for (int c = 0; c < 64; c += 7) {
            q.decayed = 0;
            chunkwise_in_float(plain, &q, c, 64, true);
            q.decayed = 1, q.gamma[0] = 1.0f;
            chunkwise_in_float(with, &q, c, 64, true);
            same = same && !memcmp(plain, with, sizeof plain);
        }
        SELF_TEST(same);
        free(q.host[0]);
    }
    SELF_TEST(chunkwise_misses(300, 64, 64, F16, OUT_O, true, true, 0.96875f, 0) > 0 &&
              chunkwise_misses(300, 64, 64, F16, OUT_DK, true, true, 0.96875f, 0) > 0);
    printf("linear_attention: %d passed, %d failed\n", passed, failed);
    return failed;
}
#line 127 "chapters/11-linear-attention.md"
// <<the-linear-attention-chapter>>
#line 3443 "chapters/11-linear-attention.md"
static const char *const DTYPES[] = {"bf16", "f16"};
static const char *const BENCH_SIZES[] = {
    "32x16x1024x128", "16x16x2048x128", "8x16x4096x128", "4x16x8192x128", "2x16x16384x128", "1x16x32768x128",
    "32x32x1024x64",  "16x32x2048x64",  "8x32x4096x64",  "4x32x8192x64",  "2x32x16384x64",  "1x32x32768x64"};
static const char *const CHECK_SIZES[] = {
    "1x1x1x64",     "1x1x1x128",     "3x1x63x64",     "1x3x63x128",    "3x3x65x64",      "1x1x65x128",
    "3x1x1000x64",  "1x3x1000x128",  "1x3x4097x64",   "3x1x4097x128",  "1x1x4097x128",   "2x4x8193x128",
    "4x16x8192x128", "1x32x32768x64"};

static const Chapter LINEAR_ATTENTION = {
    "linear_attention", "causal linear attention, o_t = tau q_t^T sum_{s<=t} k_s v_s^T, forward and backward, bf16 and f16",
    VERSIONS, sizeof VERSIONS / sizeof VERSIONS[0],
    DTYPES, 2, BENCH_SIZES, sizeof BENCH_SIZES / sizeof BENCH_SIZES[0],
    CHECK_SIZES, sizeof CHECK_SIZES / sizeof CHECK_SIZES[0],
    "copy", "l0-recurrent", linear_bad_size,
    linear_create, linear_destroy, linear_poison, linear_check, linear_bytes, linear_flops,
    NULL, linear_self_test, NULL,
};

int main(int argc, char **argv) { return harness_main(&LINEAR_ATTENTION, argc, argv); }
