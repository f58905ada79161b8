#line 35 "chapters/10-attention-bwd.md"
// attention_bwd.cu: the gradients dQ, dK, dV of exact attention, from Q, K, V, the output's
// gradient dO and the forward's O and LSE: b0 writes P and dS to memory; b1 is FlashAttention-2's
// backward on mma.sync, its dQ summed by atomics; b2 the same without atomics; b3 moves b1 to wgmma and the TMA.
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
#line 45 "chapters/10-attention-bwd.md"
// <<the-backward-problem>>
#line 84 "chapters/10-attention-bwd.md"
enum { DQ, DK, DV };  // the three gradients, in the order of the reference arrays

struct Problem {
    DType dtype;
    char size[64];
    int b, h, sq, sk, d;          // batch, heads, queries, keys, head dimension (64 or 128)
    bool causal;                  // query i sees key j iff j <= i + sk - sq
    float scale;                  // tau = 1 / sqrt(d), rounded to float once
    void *q, *k, *v, *o, *dout;   // device, element type: (b, h, sq, d), (b, h, sk, d) twice, (b, h, sq, d) twice
    float *lse;                   // device: (b, h, sq), the forward's log-sum-exp
    void *grad[3];                // device, element type: dQ, dK, dV, shaped as q, k, v
    // host copies as the device sees them: q, k, v, dO and O rounded, the LSE in float
    float *hq, *hk, *hv, *hdo, *ho, *hlse;
    float *ho_err, *hlse_err;     // the bounds on the given O's error (each element) and the LSE's (each row)
    float *scores;                // b0's P, then dS: (b, h, sq, sk), allocated at its first launch
    float *rowsum;                // b0's D: (b, h, sq)
    float *terms;                 // b1 to b3's D, then lse2: (b, h, sq_pad) each, sq_pad = sq rounded up to 64
    float *dq_acc;                // b1 and b3's float dQ accumulator: (b, h, sq, d)
    bool deterministic;           // set by launchers whose result cannot depend on timing: its bits are reported
    // the reference, computed at the first check: each gradient's elements, the float
    // arithmetic's bound on each (before the final rounding), and the scale its relative
    // error is reported against; the bounds count ref_factor times (2 against the GPU's
    // float32 reference)
    double *ref[3], *arith[3], *scale_of[3];
    double ref_factor;
    size_t *sample_rows;          // the rows checked against the CPU where the GPU's reference is used,
    double *sample;               // and the CPU's values there, computed at the first such check
    bool mapped;                  // b3's tensor maps of q, k, v, dO and dq_acc, made at its first launch
    CUtensorMap mq, mk, mv, mdo, mdq;
};

static size_t rows_of(const Problem *p) { return (size_t)p->b * p->h * p->sq; }
static size_t key_rows_of(const Problem *p) { return (size_t)p->b * p->h * p->sk; }
#line 46 "chapters/10-attention-bwd.md"
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
#line 47 "chapters/10-attention-bwd.md"
// <<which-queries-see-a-key>>
#line 125 "chapters/10-attention-bwd.md"
// Key j is seen by queries first_query_seeing .. sq - 1: all of them, or, causal, those
// with i >= j - sk + sq.
__host__ __device__ inline int first_query_seeing(int j, int sq, int sk, bool causal)
{
    int first = j - sk + sq;
    return causal && first > 0 ? first : 0;
}
#line 48 "chapters/10-attention-bwd.md"
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
#line 49 "chapters/10-attention-bwd.md"
// <<how-far-a-gradient-may-be-from-exact>>
#line 207 "chapters/10-attention-bwd.md"
// The errors of one pair (i, j): of the recomputed p (*p_err: its relative error Delta u
// from the score and the exponential, and the LSE's error e, which shifts the argument) and
// of dS = p (dP - D) (*ds_err), given dP, D, b = sum |dO_ic v_jc| and E^D, D's bound.
template <typename R>
__host__ __device__ inline void pair_errors(R *p_err, R *ds_err, R p, R a, R x, R lse, R e, R dp, R dsum, R b,
                                            R dsum_err, int d)
{
    const R u = (R)0x1p-24;
    *p_err = p * (score_budget(a, x, lse, d) * u + e) + (R)0x1p-126;  // and a result flushed to 0
    *ds_err = *p_err * magnitude(dp - dsum) + p * (d * u * b + dsum_err) + 2 * u * p * (magnitude(dp) + magnitude(dsum));
}

// E^D: D's error, from the given O's (sum |dO_c| E^O_c) and its d-term sum (sum |dO_c O_c|).
template <typename R> __host__ __device__ inline R rowsum_error(R weighted_o_err, R magnitudes, int d)
{
    return weighted_o_err + d * (R)0x1p-24 * magnitudes;
}

// A gradient element's bound from its sums: the terms' errors, gamma times its scale, and
// `last` (u where the result is multiplied by tau at the end, else 0) times the scale.
template <typename R> __host__ __device__ inline R gradient_bound(R err, R scale, R gamma, R last)
{
    return err + (gamma + last) * scale;
}

// gamma: n + 4 roundings of every term of a sum over n queries or keys.
__host__ __device__ inline double products_gamma(int n) { return (n + 4.0) * 0x1p-24; }

// sigma_ij: the rounding of dS to the element type, and of the p it may be formed from.
template <typename R> __host__ __device__ inline R ds_rounding(R ds, R p, R dp_minus_d, R rel, R floor)
{
    return p_rounding(magnitude(ds), rel, floor) + p_rounding(p, rel, floor) * magnitude(dp_minus_d);
}
#line 50 "chapters/10-attention-bwd.md"
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
#line 51 "chapters/10-attention-bwd.md"
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
#line 52 "chapters/10-attention-bwd.md"
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
#line 53 "chapters/10-attention-bwd.md"
// <<backward-kernels>>
#line 256 "chapters/10-attention-bwd.md"
// b0, first kernel: D_i = dO_i . O_i, a warp per query row (rows of (b h sq) flattened).
template <typename T>
__global__ void backward_rowsum(float *Dsum, const T *dO, const T *O, size_t rows, int d)
{
    const int lane = threadIdx.x % 32;
    const size_t row = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32;
    if (row >= rows) return;
    float acc = 0.0f;
    for (int c = lane; c < d; c += 32) acc += to_float(dO[row * d + c]) * to_float(O[row * d + c]);
    acc = warp_sum(acc);
    if (lane == 0) Dsum[row] = acc;
}

// b0, second and fourth kernels: 32 x 32 pairs (i, j) per block, a pair per thread, the dot
// product of row i of A with row j of B over d in steps of 32 through shared memory.
// !DS: A = Q, B = K, row_term = LSE: S = P = exp(scale q_i . k_j - LSE_i), 0 where masked.
// DS: A = dO, B = V, row_term = D: S = dS = P (dO_i . v_j - D_i), over P.
// A tile the mask hides entirely is not computed: P writes it as 0, dS leaves the 0 alone.
// Grid: (sk / 32, sq / 32, b h).
template <typename T, bool DS>
__global__ void backward_pairs(float *S, const T *A, const T *B, const float *row_term, int sq, int sk, int d,
                               float scale, bool causal)
{
    __shared__ float As[32][33], Bs[32][33];  // (queries, d), (keys, d); padded against bank conflicts
    const int tx = threadIdx.x, ty = threadIdx.y;
    const size_t bh = blockIdx.z;
    const int i = blockIdx.y * 32 + ty, j = blockIdx.x * 32 + tx, key0 = blockIdx.x * 32;
    A += bh * sq * d;         // (sq, d)
    B += bh * sk * d;         // (sk, d)
    S += bh * sq * sk;        // (sq, sk)
    row_term += bh * sq;      // (sq)
    const bool kept = key0 < keys_seen(min(blockIdx.y * 32 + 31, sq - 1), sq, sk, causal);  // for the whole block
    if (DS && !kept) return;
    float acc = 0.0f;
    for (int c0 = 0; kept && c0 < d; c0 += 32) {
        As[ty][tx] = i < sq ? to_float(A[(size_t)i * d + c0 + tx]) : 0.0f;
        Bs[ty][tx] = key0 + ty < sk ? to_float(B[(size_t)(key0 + ty) * d + c0 + tx]) : 0.0f;
        __syncthreads();
#pragma unroll
        for (int c = 0; c < 32; c++) acc += As[ty][c] * Bs[tx][c];
        __syncthreads();
    }
    if (i >= sq || j >= sk) return;
    float *s = &S[(size_t)i * sk + j];
    if (DS) *s *= acc - row_term[i];  // a masked P is 0 and stays 0
    else *s = j < keys_seen(i, sq, sk, causal) ? expf(scale * acc - row_term[i]) : 0.0f;
}

// b0, the products over the queries: dV = P^T dO (alpha 1) and dK = tau dS^T Q (alpha tau):
// out_jc = alpha sum_i S_ij X_ic, 32 x 32 outputs per block, an output per thread, the
// queries in steps of 32 through shared memory from the tile of the first query that sees
// the block's first key (S is 0 before it). Grid: (d / 32, sk / 32, b h).
template <typename T>
__global__ void backward_product_over_queries(T *out, const float *S, const T *X, int sq, int sk, int d, float alpha,
                                              bool causal)
{
    __shared__ float Ss[32][33], Xs[32][33];  // (queries, keys), (queries, d)
    const int tx = threadIdx.x, ty = threadIdx.y;
    const size_t bh = blockIdx.z;
    const int key0 = blockIdx.y * 32, j = key0 + ty, c = blockIdx.x * 32 + tx;
    S += bh * sq * sk;  // (sq, sk)
    X += bh * sq * d;   // (sq, d)
    out += bh * sk * d; // (sk, d)
    float acc = 0.0f;
    for (int i0 = first_query_seeing(key0, sq, sk, causal) / 32 * 32; i0 < sq; i0 += 32) {
        Ss[ty][tx] = i0 + ty < sq && key0 + tx < sk ? S[(size_t)(i0 + ty) * sk + key0 + tx] : 0.0f;
        Xs[ty][tx] = i0 + ty < sq ? to_float(X[(size_t)(i0 + ty) * d + c]) : 0.0f;
        __syncthreads();
#pragma unroll
        for (int i = 0; i < 32; i++) acc += Ss[i][ty] * Xs[i][tx];
        __syncthreads();
    }
    if (j < sk) out[(size_t)j * d + c] = from_float<T>(alpha * acc);
}

// b0, the product over the keys: dQ = tau dS K: out_ic = alpha sum_j S_ij X_jc, 32 x 32
// outputs per block, the keys in steps of 32 up to the last one the tile's last query sees.
// Grid: (d / 32, sq / 32, b h).
template <typename T>
__global__ void backward_product_over_keys(T *out, const float *S, const T *X, int sq, int sk, int d, float alpha,
                                           bool causal)
{
    __shared__ float Ss[32][33], Xs[32][33];  // (queries, keys), (keys, d)
    const int tx = threadIdx.x, ty = threadIdx.y;
    const size_t bh = blockIdx.z;
    const int i = blockIdx.y * 32 + ty, c = blockIdx.x * 32 + tx;
    S += bh * sq * sk;  // (sq, sk)
    X += bh * sk * d;   // (sk, d)
    out += bh * sq * d; // (sq, d)
    const int end = keys_seen(min(blockIdx.y * 32 + 31, sq - 1), sq, sk, causal);
    float acc = 0.0f;
    for (int j0 = 0; j0 < end; j0 += 32) {
        Ss[ty][tx] = i < sq && j0 + tx < sk ? S[(size_t)i * sk + j0 + tx] : 0.0f;
        Xs[ty][tx] = j0 + ty < sk ? to_float(X[(size_t)(j0 + ty) * d + c]) : 0.0f;
        __syncthreads();
#pragma unroll
        for (int j = 0; j < 32; j++) acc += Ss[ty][j] * Xs[j][tx];
        __syncthreads();
    }
    if (i < sq) out[(size_t)i * d + c] = from_float<T>(alpha * acc);
}
#line 456 "chapters/10-attention-bwd.md"
// ============================================================ b1 and b2
// The pre-pass, a warp per query row of the tiles of 64 (rows of (b h, sq_pad) flattened):
// D_i = dO_i . O_i and lse2_i = LSE_i log2 e, so that p = exp2(x tau log2 e - lse2); a row
// past sq, or one that sees no key (LSE -inf), gets lse2 = +inf, so p = 0, and D = 0.
// Where dq_acc is given, the row's d floats of the dQ accumulator are zeroed.
template <typename T, int D>
__global__ void flash_backward_prepare(float *Dsum, float *lse2, float *dq_acc, const T *dO, const T *O,
                                       const float *LSE, int sq, int sq_pad, size_t padded_rows)
{
    const int lane = threadIdx.x % 32;
    const size_t prow = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32;
    if (prow >= padded_rows) return;  // the whole warp leaves
    const size_t bh = prow / sq_pad;
    const int i = (int)(prow % sq_pad);
    float sum = 0.0f, l2 = INFINITY;
    if (i < sq) {  // the same for the whole warp
        const size_t row = bh * sq + i;
#pragma unroll
        for (int c = lane; c < D; c += 32) {
            sum += to_float(dO[row * D + c]) * to_float(O[row * D + c]);
            if (dq_acc) dq_acc[row * D + c] = 0.0f;
        }
        sum = warp_sum(sum);
        const float l = LSE[row];
        l2 = l == -INFINITY ? INFINITY : l * 1.44269504088896341f;
    }
    if (lane == 0) {
        Dsum[prow] = sum;
        lse2[prow] = l2;
    }
}

// acc = A B^T for a warp (m16n8 accumulators, 16 rows by NT n-tiles of 8): A the warp's 16
// rows of d elements, as A fragments in registers (a_regs[kk], A_IN_REGS) or read from rows
// a_row .. of As; B the NT * 8 rows of d elements of Bs; both in chapter 9's swizzle, read
// as chapter 9's a2 reads Q and K.
template <typename T, int D, int NT, bool A_IN_REGS>
__device__ inline void warp_rows_by_rows(float acc[NT][4], const uint32_t (*a_regs)[4], const T *As, int a_row,
                                         const T *Bs, int lane)
{
#pragma unroll
    for (int j = 0; j < NT; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
        uint32_t a[4];
        if (A_IN_REGS) {
#pragma unroll
            for (int e = 0; e < 4; e++) a[e] = a_regs[A_IN_REGS ? kk : 0][e];
        } else {
            ldmatrix_x4(a, As + fa_at<D>(a_row + ldsm_a_row(lane), kk * 16 + ldsm_a_col(lane)));
        }
#pragma unroll
        for (int j = 0; j < NT; j += 2) {
            uint32_t b[4];
            ldmatrix_x4(b, Bs + fa_at<D>(j * 8 + ldsm_b_row(lane), kk * 16 + ldsm_b_col(lane)));
            mma_16816<T>(acc[j], a, b);
            mma_16816<T>(acc[j + 1], a, b + 2);
        }
    }
}

// acc (16 rows by d, D / 8 n-tiles) += X B for a warp: X the warp's 16 x 8 NT accumulators of
// a product above, packed to T as A fragments (as chapter 9 packs P); B the 8 NT rows of d
// elements of Bs, read transposed by ldmatrix.trans, as chapter 9 reads V.
template <typename T, int D, int NT>
__device__ inline void warp_acc_by_rows(float acc[D / 8][4], const float x[NT][4], const T *Bs, int lane)
{
#pragma unroll
    for (int kk = 0; kk < NT / 2; kk++) {
        uint32_t xa[4];
        xa[0] = pack2<T>(x[2 * kk][0], x[2 * kk][1]);
        xa[1] = pack2<T>(x[2 * kk][2], x[2 * kk][3]);
        xa[2] = pack2<T>(x[2 * kk + 1][0], x[2 * kk + 1][1]);
        xa[3] = pack2<T>(x[2 * kk + 1][2], x[2 * kk + 1][3]);
#pragma unroll
        for (int j = 0; j < D / 8; j += 2) {
            uint32_t b[4];  // rows kk*16 .. +15 by columns j*8 .. +15 of B, transposed
            const int row = kk * 16 + lane % 8 + (lane / 8 % 2) * 8, col = j * 8 + lane / 16 * 8;
            ldmatrix_x4_trans(b, smem_u32(Bs + fa_at<D>(row, col)));
            mma_16816<T>(acc[j], xa, b);
            mma_16816<T>(acc[j + 1], xa, b + 2);
        }
    }
}

// 64 values of lse2 and of D from row0 of the padded arrays (always there), by cp.async:
// threads 0-15 copy lse2, 16-31 D, 16 bytes each.
__device__ inline void copy_row_terms_64(float *dst, const float *lse2, const float *Dsum, size_t row0)
{
    const int c = threadIdx.x % 16 * 4;
    if (threadIdx.x < 16) cp_async_16(dst + c, lse2 + row0 + c, 16);
    else if (threadIdx.x < 32) cp_async_16(dst + 64 + c, Dsum + row0 + c, 16);
}

// The mask of a transposed tile: N scores laid out as m16n8 accumulators with keys down
// and queries across, element i at key key_g + 8 ((i / 2) % 2) and query
// q_t + 8 (i / 4) + i % 2; those of keys past sk, and (causal) of queries that do not see
// the key, set to -inf. Per element, one comparison with a constant and a select.
template <int N> __device__ inline void mask_scores_t(float *sc, int key_g, int q_t, int sq, int sk, bool causal)
{
    int first[2];  // the first query, counted from q_t, that sees each of the thread's two keys
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int key = key_g + 8 * h;
        first[h] = key >= sk ? 1 << 30 : causal ? key - sk + sq - q_t : -(1 << 30);
    }
#pragma unroll
    for (int i = 0; i < N; i++)
        if (8 * (i / 4) + i % 2 < first[(i / 2) % 2]) sc[i] = -INFINITY;
}

// b1 and b2's main kernel: a block per tile of BK = 64 keys of one head (grid: sk / 64,
// b h), four warps, each owning 16 of the keys (kw .. kw + 15) and summing their rows of
// dK and dV. The tiles of BQ = 64 queries that see any of the block's keys come through
// shared memory, double-buffered by cp.async: Q and dO (swizzled), lse2 and D of their
// rows. Per tile, a warp's 16 keys x 64 queries, transposed (keys are the accumulators'
// rows): S^T = K_w Q^T, P^T, dV_w += P^T dO, dP^T = V_w dO^T, dS^T = P^T o (dP^T - D),
// dK_w += dS^T Q. With DQ_ATOMIC (b1), the block's dS^T goes to shared memory, and each
// warp adds 16 query rows of dS K (over the block's 64 keys) to the float accumulator
// dq_acc (b h, sq, D) by atomics. K_w and V_w are A fragments kept in registers with
// KV_IN_REGS, else loaded from shared memory for every tile.
// Fragments (m16n8k16; g = lane / 4, t = lane % 4): accumulator element e of an m16n8
// tile at row g + 8 (e / 2), column 2 t + e % 2; A registers (row g, k 2t..2t+1),
// (g + 8, 2t), (g, 2t + 8), (g + 8, 2t + 8); B registers (k 2t..2t+1, column g), (k 2t + 8, g).
template <typename T, int D, bool DQ_ATOMIC, bool KV_IN_REGS>
__global__ void __launch_bounds__(128) flash_backward_dkdv(T *dK, T *dV, float *dq_acc, const T *Q, const T *K,
                                                           const T *V, const T *dO, const float *lse2,
                                                           const float *Dsum, int sq, int sq_pad, int sk,
                                                           float scale, bool causal)
{
    constexpr int BQ = 64, BK = 64, NT = BQ / 8;  // queries per tile, keys per block, n-tiles of 8 queries
    static_assert(D % 16 == 0, "whole m16n8k16 steps");
    const float scale_log2 = scale * 1.44269504088896341f;
    extern __shared__ __align__(128) unsigned char fb_smem[];
    T *Ks = reinterpret_cast<T *>(fb_smem);                        // BK x D
    T *Vs = Ks + BK * D;                                           // BK x D
    T *Qs = Vs + BK * D;                                           // 2 x BQ x D
    T *dOs = Qs + 2 * BQ * D;                                      // 2 x BQ x D
    T *dSs = dOs + 2 * BQ * D;                                     // BK x BQ, dS^T (DQ_ATOMIC only)
    float *terms = reinterpret_cast<float *>(dSs + (DQ_ATOMIC ? BK * BQ : 0));  // 2 x (lse2 BQ, D BQ)
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const int k0 = blockIdx.x * BK, wk = warp * 16, kw = k0 + wk;  // the block's first key; the warp's
    const size_t bh = blockIdx.y;
    const T *Qb = Q + bh * sq * D, *dOb = dO + bh * sq * D;
    const size_t terms0 = bh * sq_pad;
    // the query tiles: from the one holding the first query that sees key k0 (causal), to the last
    const int qt0 = first_query_seeing(k0, sq, sk, causal) / BQ, qtiles = (sq + BQ - 1) / BQ;
    copy_tile<T, D, 64>(Ks, K + bh * sk * D, k0, sk);
    copy_tile<T, D, 64>(Vs, V + bh * sk * D, k0, sk);
    copy_tile<T, D, 64>(Qs, Qb, qt0 * BQ, sq);
    copy_tile<T, D, 64>(dOs, dOb, qt0 * BQ, sq);
    copy_row_terms_64(terms, lse2, Dsum, terms0 + qt0 * BQ);
    cp_async_commit();

    float dk[D / 8][4], dv[D / 8][4];  // the warp's 16 keys x D of dK (before tau) and dV
#pragma unroll
    for (int j = 0; j < D / 8; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) dk[j][e] = dv[j][e] = 0.0f;
    uint32_t ka[KV_IN_REGS ? D / 16 : 1][4], va[KV_IN_REGS ? D / 16 : 1][4];  // K_w, V_w: 16 keys x D, A

    for (int qt = qt0; qt < qtiles; qt++) {
        const int cur = (qt - qt0) % 2, q0 = qt * BQ;
        if (qt + 1 < qtiles) {  // the next tile into the other buffers, freed at the end of qt - 1
            copy_tile<T, D, 64>(Qs + (1 - cur) * BQ * D, Qb, q0 + BQ, sq);
            copy_tile<T, D, 64>(dOs + (1 - cur) * BQ * D, dOb, q0 + BQ, sq);
            copy_row_terms_64(terms + (1 - cur) * 2 * BQ, lse2, Dsum, terms0 + q0 + BQ);
        }
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        if (KV_IN_REGS && qt == qt0) {
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) {
                const int at = fa_at<D>(wk + ldsm_a_row(lane), kk * 16 + ldsm_a_col(lane));
                ldmatrix_x4(ka[KV_IN_REGS ? kk : 0], Ks + at);
                ldmatrix_x4(va[KV_IN_REGS ? kk : 0], Vs + at);
            }
        }
        const T *Qt = Qs + cur * BQ * D, *dOt = dOs + cur * BQ * D;
        const float *lse2t = terms + cur * 2 * BQ, *Dt = lse2t + BQ;
        // S^T = K_w Q^T: A = K_w (keys x d); B (d x queries) from Q's rows (queries x d), as
        // chapter 9 reads K for Q K^T
        float s[NT][4];
        warp_rows_by_rows<T, D, NT, KV_IN_REGS>(s, ka, Ks, wk, Qt, lane);
        // mask: only where the warp holds keys past sk, or (causal) keys the tile's first query does not see
        if (kw + 16 > sk || (causal && kw + 15 > q0 + sk - sq))
            mask_scores_t<4 * NT>(&s[0][0], kw + g, q0 + 2 * t, sq, sk, causal);
        // P^T = exp2(S^T tau log2 e - lse2 of the column's query): element e of n-tile j is query 8 j + 2 t + e % 2
#pragma unroll
        for (int j = 0; j < NT; j++) {
            const float2 l = *reinterpret_cast<const float2 *>(lse2t + j * 8 + 2 * t);
#pragma unroll
            for (int h = 0; h < 2; h++) {
                s[j][2 * h] = exp2_ftz(fmaf(s[j][2 * h], scale_log2, -l.x));
                s[j][2 * h + 1] = exp2_ftz(fmaf(s[j][2 * h + 1], scale_log2, -l.y));
            }
        }
        // dV_w += P^T dO: P^T's accumulators packed as A (keys x queries); B = dO (queries x d),
        // stored as rows of queries, by ldmatrix.trans, as chapter 9 reads V
        warp_acc_by_rows<T, D, NT>(dv, s, dOt, lane);
        // dP^T = V_w dO^T: A = V_w (keys x d); B (d x queries) from dO's rows, as Q's above
        float dp[NT][4];
        warp_rows_by_rows<T, D, NT, KV_IN_REGS>(dp, va, Vs, wk, dOt, lane);
        // dS^T = P^T o (dP^T - D of the column's query), over dP^T; a P of 0 gives 0 (D is finite)
#pragma unroll
        for (int j = 0; j < NT; j++) {
            const float2 dd = *reinterpret_cast<const float2 *>(Dt + j * 8 + 2 * t);
#pragma unroll
            for (int h = 0; h < 2; h++) {
                dp[j][2 * h] = s[j][2 * h] * (dp[j][2 * h] - dd.x);
                dp[j][2 * h + 1] = s[j][2 * h + 1] * (dp[j][2 * h + 1] - dd.y);
            }
        }
        // dK_w += dS^T Q: dS^T packed as A (keys x queries); B = Q (queries x d) by ldmatrix.trans
        warp_acc_by_rows<T, D, NT>(dk, dp, Qt, lane);
        if (DQ_ATOMIC) {
            // dS^T to shared memory, keys by queries: the thread's elements e, e + 1 of n-tile j
            // are key wk + g + 8 (e / 2), queries 8 j + 2 t and 8 j + 2 t + 1: one 4-byte store
#pragma unroll
            for (int j = 0; j < NT; j++)
#pragma unroll
                for (int h = 0; h < 2; h++)
                    *reinterpret_cast<uint32_t *>(dSs + fa_at<BQ>(wk + g + 8 * h, j * 8 + 2 * t)) =
                        pack2<T>(dp[j][2 * h], dp[j][2 * h + 1]);
            __syncthreads();
            // dQ rows q0 + wk .. + 15 += dS K over the block's keys: A = dS (queries x keys), read
            // from dS^T (keys x queries) by ldmatrix.trans: matrix lane / 8 is queries + 8 (lane / 8 % 2),
            // keys + 8 (lane / 16); B = K (keys x d) by ldmatrix.trans, as dO above
            uint32_t sa[BK / 16][4];
#pragma unroll
            for (int kk = 0; kk < BK / 16; kk++) {
                const int key = kk * 16 + lane % 8 + lane / 16 * 8, query = wk + (lane / 8 % 2) * 8;
                ldmatrix_x4_trans(sa[kk], smem_u32(dSs + fa_at<BQ>(key, query)));
            }
#pragma unroll
            for (int j = 0; j < D / 8; j += 2) {  // 16 columns of dQ at a time
                float acc[2][4] = {};
#pragma unroll
                for (int kk = 0; kk < BK / 16; kk++) {
                    uint32_t b[4];
                    const int row = kk * 16 + lane % 8 + (lane / 8 % 2) * 8, col = j * 8 + lane / 16 * 8;
                    ldmatrix_x4_trans(b, smem_u32(Ks + fa_at<D>(row, col)));
                    mma_16816<T>(acc[0], sa[kk], b);
                    mma_16816<T>(acc[1], sa[kk], b + 2);
                }
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    const int query = q0 + wk + g + 8 * h;
                    if (query >= sq) continue;
                    float *row = dq_acc + (bh * sq + query) * D + j * 8 + 2 * t;
#pragma unroll
                    for (int n = 0; n < 2; n++) {
                        atomicAdd(row + 8 * n, acc[n][2 * h]);
                        atomicAdd(row + 8 * n + 1, acc[n][2 * h + 1]);
                    }
                }
            }
        }
        __syncthreads();  // every warp is done with this tile's buffers (and dS^T) before they are refilled
    }
    cp_async_wait<0>();
    // the end: dK = tau dK_w and dV_w, rounded, four bytes at a time; rows g and g + 8 of the warp
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int key = kw + g + 8 * h;
        if (key >= sk) continue;
        T *krow = dK + (bh * sk + key) * D, *vrow = dV + (bh * sk + key) * D;
#pragma unroll
        for (int j = 0; j < D / 8; j++) {
            *reinterpret_cast<uint32_t *>(krow + j * 8 + 2 * t) = pack2<T>(scale * dk[j][2 * h], scale * dk[j][2 * h + 1]);
            *reinterpret_cast<uint32_t *>(vrow + j * 8 + 2 * t) = pack2<T>(dv[j][2 * h], dv[j][2 * h + 1]);
        }
    }
}

// b1's post-pass: dQ = tau dq_acc, rounded, two elements a thread (n even).
template <typename T>
__global__ void flash_backward_dq_round(T *dQ, const float *dq_acc, size_t n, float scale)
{
    const size_t e = 2 * (blockIdx.x * (size_t)blockDim.x + threadIdx.x);
    if (e >= n) return;
    const float2 v = *reinterpret_cast<const float2 *>(dq_acc + e);
    *reinterpret_cast<uint32_t *>(dQ + e) = pack2<T>(scale * v.x, scale * v.y);
}
#line 782 "chapters/10-attention-bwd.md"
// b2's dQ: a block per tile of BQ = 64 queries of one head (grid: sq / 64, b h); four warps of
// 16 rows (wq .. wq + 15), each with its rows of Q and dO as A fragments in registers; tiles of
// BK = 64 keys and values double-buffered by cp.async, up to the last key the block's last query
// sees. Per tile: S = Q_w K^T, P = exp2(S tau log2 e - lse2 of the row), dP = dO_w V^T,
// dS = P o (dP - D), dQ_w += dS K; dQ = tau dQ_w stored once. Accumulator element e of n-tile j:
// query wq + g + 8 (e / 2), key (or column) 8 j + 2 t + e % 2.
template <typename T, int D>
__global__ void __launch_bounds__(128) flash_backward_dq(T *dQ, const T *Q, const T *K, const T *V, const T *dO,
                                                         const float *lse2, const float *Dsum, int sq, int sq_pad,
                                                         int sk, float scale, bool causal)
{
    constexpr int BQ = 64, BK = 64, NT = BK / 8;  // queries per block, keys per tile, n-tiles of 8 keys
    static_assert(D % 16 == 0, "whole m16n8k16 steps");
    const float scale_log2 = scale * 1.44269504088896341f;
    extern __shared__ __align__(128) unsigned char fb_smem[];
    T *Qs = reinterpret_cast<T *>(fb_smem);  // BQ x D
    T *dOs = Qs + BQ * D;                     // BQ x D
    T *Ks = dOs + BQ * D;                     // 2 x BK x D
    T *Vs = Ks + 2 * BK * D;                  // 2 x BK x D
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const int q0 = blockIdx.x * BQ, wq = warp * 16;
    const size_t bh = blockIdx.y;
    const T *Kb = K + bh * sk * D, *Vb = V + bh * sk * D;
    // the keys this block sees: all, or (causal, bottom right) up to q0 + BQ - 1 + sk - sq
    int kend = sk;
    if (causal) kend = min(sk, max(0, q0 + BQ + sk - sq));
    const int ktiles = (kend + BK - 1) / BK;
    copy_tile<T, D, 64>(Qs, Q + bh * sq * D, q0, sq);
    copy_tile<T, D, 64>(dOs, dO + bh * sq * D, q0, sq);
    if (ktiles > 0) {
        copy_tile<T, D, 64>(Ks, Kb, 0, sk);
        copy_tile<T, D, 64>(Vs, Vb, 0, sk);
    }
    cp_async_commit();
    // the terms of the thread's rows g and g + 8 (the padded arrays hold every row of the tile)
    float l2[2], dd[2];
#pragma unroll
    for (int h = 0; h < 2; h++) {
        l2[h] = lse2[bh * sq_pad + q0 + wq + g + 8 * h];
        dd[h] = Dsum[bh * sq_pad + q0 + wq + g + 8 * h];
    }
    float dq[D / 8][4];
#pragma unroll
    for (int j = 0; j < D / 8; j++) dq[j][0] = dq[j][1] = dq[j][2] = dq[j][3] = 0.0f;
    uint32_t qa[D / 16][4], ga[D / 16][4];  // Q_w, dO_w: 16 rows x D, A fragments

    for (int kt = 0; kt < ktiles; kt++) {
        const int cur = kt % 2, k0 = kt * BK;
        if (kt + 1 < ktiles) {  // the next tile into the other buffer, freed at the end of kt - 1
            copy_tile<T, D, 64>(Ks + (1 - cur) * BK * D, Kb, k0 + BK, sk);
            copy_tile<T, D, 64>(Vs + (1 - cur) * BK * D, Vb, k0 + BK, sk);
        }
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        if (kt == 0) {
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) {
                const int at = fa_at<D>(wq + ldsm_a_row(lane), kk * 16 + ldsm_a_col(lane));
                ldmatrix_x4(qa[kk], Qs + at);
                ldmatrix_x4(ga[kk], dOs + at);
            }
        }
        const T *Kt = Ks + cur * BK * D, *Vt = Vs + cur * BK * D;
        // S = Q_w K^T and dP = dO_w V^T: B (d x keys) from the rows of K and of V
        float s[NT][4], dp[NT][4];
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) s[j][e] = dp[j][e] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
#pragma unroll
            for (int j = 0; j < NT; j += 2) {
                uint32_t b[4], c[4];
                const int at = fa_at<D>(j * 8 + ldsm_b_row(lane), kk * 16 + ldsm_b_col(lane));
                ldmatrix_x4(b, Kt + at);
                ldmatrix_x4(c, Vt + at);
                mma_16816<T>(s[j], qa[kk], b);
                mma_16816<T>(s[j + 1], qa[kk], b + 2);
                mma_16816<T>(dp[j], ga[kk], c);
                mma_16816<T>(dp[j + 1], ga[kk], c + 2);
            }
        }
        // mask: keys past sk, and (causal) past the diagonal, only in the tiles that hold such keys
        if (k0 + BK > sk || (causal && k0 + BK - 1 > q0 + wq + sk - sq))
            mask_scores<4 * NT>(&s[0][0], k0, q0 + wq + g, sq, sk, causal, t);
        // P = exp2(S tau log2 e - lse2), dS = P o (dP - D), over dP: row g + 8 (e / 2)
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const float p = exp2_ftz(fmaf(s[j][e], scale_log2, -l2[e / 2]));
                dp[j][e] = p * (dp[j][e] - dd[e / 2]);
            }
        // dQ_w += dS K: dS packed as A (rows x keys); B = K (keys x d) by ldmatrix.trans
        warp_acc_by_rows<T, D, NT>(dq, dp, Kt, lane);
        __syncthreads();  // every warp is done with this tile's buffers before they are refilled
    }
    cp_async_wait<0>();
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int query = q0 + wq + g + 8 * h;
        if (query >= sq) continue;
        T *row = dQ + (bh * sq + query) * D;
#pragma unroll
        for (int j = 0; j < D / 8; j++)
            *reinterpret_cast<uint32_t *>(row + j * 8 + 2 * t) = pack2<T>(scale * dq[j][2 * h], scale * dq[j][2 * h + 1]);
    }
}
#line 999 "chapters/10-attention-bwd.md"
// ============================================================ b3
constexpr int B3_BQ = 64, B3_BK = 128;  // queries per tile; keys per block, 64 per consumer
constexpr int B3_PANEL = B3_BQ * 128;    // bytes of 64 rows of 128 bytes: a panel of Q, dO, dS^T; a box of dQ
// shared memory: K and V (d / 64 panels of 128 rows), STAGES of Q and dO (d / 64 panels of
// 64 rows each), two tiles of dS^T per consumer (even and odd tiles of queries) and a tile of
// dQ's sums per consumer, 64 rows of d floats in boxes of 32 columns; 1 KiB to align
template <int D, int STAGES> __host__ __device__ constexpr int b3_smem()
{
    return (D / 64) * (2 * W_PANEL + 2 * STAGES * B3_PANEL) + 4 * B3_PANEL + 2 * (D / 32) * B3_PANEL + 1024;
}

// b3's main kernel: a block per tile of 128 keys of one head (grid: sk / 128, b h); a
// producer warpgroup and two consumers, consumer c on keys k0 + 64 c .. + 63. The
// producer's thread loads K and V once and the tiles of 64 queries of Q and dO that see
// any of the block's keys into a ring of STAGES (full: the copies; empty: both consumers).
// mq, mdo: (b h sq) x d in boxes of 64 rows; mk, mv: (b h sk) x d in boxes of 128 rows;
// mdq: dq_acc, (b h) x sq x d floats, in boxes of 64 rows of 32 floats.
// Per tile a consumer computes S^T and dP^T (K-major both), P^T, dV_c += P^T dO and
// dK_c += dS^T Q (A from registers, B MN-major), and writes dS^T to shared memory; then
// consumer n % 2 of tile n computes dS K over all the block's 128 keys (A and B MN-major),
// 64 columns at a time, into shared memory, and one of its threads adds the tile to dq_acc
// by the TMA's reduce-add, while the other consumer goes on to the next tile.
template <typename T, int D, int STAGES>
__global__ void __launch_bounds__(384, 1)
    flash_backward_wgmma(const __grid_constant__ CUtensorMap mq, const __grid_constant__ CUtensorMap mk,
                         const __grid_constant__ CUtensorMap mv, const __grid_constant__ CUtensorMap mdo,
                         const __grid_constant__ CUtensorMap mdq, T *dK, T *dV, const float *lse2, const float *Dsum,
                         int sq, int sq_pad, int sk, float scale, bool causal)
{
#if SM90A_CODE
    constexpr int NP = D / 64, ND = D / 2;  // panels of 64 columns; accumulators of dK (and of dV) a thread
    extern __shared__ unsigned char smem_raw[];
    unsigned char *smem = aligned_1024(smem_raw);
    unsigned char *Ks = smem;                           // NP panels of 128 keys
    unsigned char *Vs = Ks + NP * W_PANEL;              // NP panels of 128 keys
    unsigned char *Qs = Vs + NP * W_PANEL;              // STAGES x NP panels of 64 queries
    unsigned char *dOs = Qs + STAGES * NP * B3_PANEL;   // STAGES x NP panels of 64 queries
    unsigned char *dSs = dOs + STAGES * NP * B3_PANEL;  // 2 parities x 2 consumers x 64 keys x 64 queries
    unsigned char *dQs = dSs + 4 * B3_PANEL;            // 2 consumers x 2 NP boxes of 64 queries x 32 floats
    __shared__ __align__(8) uint64_t kv_full, full[STAGES], empty[STAGES];
    const int wg = threadIdx.x / 128, tid = threadIdx.x % 128;
    const int k0 = blockIdx.x * B3_BK, bh = blockIdx.y;
    // the query tiles: from the one holding the first query that sees key k0 (causal), to the last
    const int qt0 = first_query_seeing(k0, sq, sk, causal) / B3_BQ, qtiles = (sq + B3_BQ - 1) / B3_BQ;
    if (threadIdx.x == 0) {
        mbar_init(&kv_full, 1);
        for (int s = 0; s < STAGES; s++) {
            mbar_init(&full[s], 1);
            mbar_init(&empty[s], 2);
        }
        mbar_init_fence();
    }
    __syncthreads();

    if (wg == 0) {  // the producer
        setmaxnreg_dec<24>();
        if (tid == 0) {
            mbar_expect_tx(&kv_full, 2 * NP * W_PANEL);
            for (int pn = 0; pn < NP; pn++) {
                tma_load_2d(Ks + pn * W_PANEL, &mk, &kv_full, pn * 64, bh * sk + k0);
                tma_load_2d(Vs + pn * W_PANEL, &mv, &kv_full, pn * 64, bh * sk + k0);
            }
            for (int qt = qt0, n = 0; qt < qtiles; qt++, n++) {
                const int s = n % STAGES, use = n / STAGES;
                if (use > 0) mbar_wait(&empty[s], (use - 1) & 1);
                mbar_expect_tx(&full[s], 2 * NP * B3_PANEL);
                for (int pn = 0; pn < NP; pn++) {
                    tma_load_2d(Qs + (s * NP + pn) * B3_PANEL, &mq, &full[s], pn * 64, bh * sq + qt * B3_BQ);
                    tma_load_2d(dOs + (s * NP + pn) * B3_PANEL, &mdo, &full[s], pn * 64, bh * sq + qt * B3_BQ);
                }
            }
        }
        return;
    }
    setmaxnreg_inc<240>();
    const int c = wg - 1, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
    const int kw = k0 + 64 * c + 16 * warp;  // the warp's first key
    const float scale_log2 = scale * 1.44269504088896341f;
    const unsigned char *Kc = Ks + c * 64 * 128, *Vc = Vs + c * 64 * 128;  // the consumer's rows of each panel
    float dk[ND], dv[ND];  // element i: key kw + g + 8 ((i / 2) % 2), column 8 (i / 4) + 2 t + i % 2
#pragma unroll
    for (int i = 0; i < ND; i++) dk[i] = dv[i] = 0.0f;
    mbar_wait(&kv_full, 0);
    for (int qt = qt0, n = 0; qt < qtiles; qt++, n++) {
        const int s = n % STAGES, q0 = qt * B3_BQ;
        const unsigned char *Qt = Qs + s * NP * B3_PANEL, *dOt = dOs + s * NP * B3_PANEL;
        unsigned char *dS2 = dSs + (n % 2) * 2 * B3_PANEL;  // this tile's dS^T, keys 0..63 then 64..127
        unsigned char *dSt = dS2 + c * B3_PANEL, *dQt = dQs + c * 2 * NP * B3_PANEL;
        // lse2 and D of the thread's queries, q0 + 8 j + 2 t and the next (the padded arrays hold the whole tile)
        float2 l2[8], dd[8];
#pragma unroll
        for (int j = 0; j < 8; j++) {
            l2[j] = *reinterpret_cast<const float2 *>(lse2 + (size_t)bh * sq_pad + q0 + 8 * j + 2 * t);
            dd[j] = *reinterpret_cast<const float2 *>(Dsum + (size_t)bh * sq_pad + q0 + 8 * j + 2 * t);
        }
        // S^T = K_c Q^T and dP^T = V_c dO^T: keys x queries, both operands K-major
        float st[32], dp[32];  // element i: key kw + g + 8 ((i / 2) % 2), query q0 + 8 (i / 4) + 2 t + i % 2
        mbar_wait(&full[s], (n / STAGES) & 1);
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++)
            wgmma_m64n64k16<T>(st, wgmma_desc_k128(Kc + (kk / 4) * W_PANEL + (kk % 4) * 32),
                               wgmma_desc_k128(Qt + (kk / 4) * B3_PANEL + (kk % 4) * 32), kk > 0);
        wgmma_commit();
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++)
            wgmma_m64n64k16<T>(dp, wgmma_desc_k128(Vc + (kk / 4) * W_PANEL + (kk % 4) * 32),
                               wgmma_desc_k128(dOt + (kk / 4) * B3_PANEL + (kk % 4) * 32), kk > 0);
        wgmma_commit();
        wgmma_wait<1>();  // S^T; dP^T may still be in flight
        // mask: only where the warp holds keys past sk, or (causal) keys the tile's first query does not see
        if (kw + 16 > sk || (causal && kw + 15 > q0 + sk - sq)) mask_scores_t<32>(st, kw + g, q0 + 2 * t, sq, sk, causal);
        uint32_t pa[16];  // P^T converted: A of k-step kk in pa[4 kk .. 4 kk + 3]
#pragma unroll
        for (int j = 0; j < 8; j++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                st[4 * j + 2 * h] = exp2_ftz(fmaf(st[4 * j + 2 * h], scale_log2, -l2[j].x));
                st[4 * j + 2 * h + 1] = exp2_ftz(fmaf(st[4 * j + 2 * h + 1], scale_log2, -l2[j].y));
            }
#pragma unroll
        for (int i = 0; i < 16; i++) pa[i] = pack2<T>(st[2 * i], st[2 * i + 1]);
        wgmma_wait<0>();  // dP^T
        // dV_c += P^T dO: dO (queries x d) MN-major, its panels B3_PANEL apart
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < B3_BQ / 16; kk++)
            wgmma_pv<T, D>(dv, pa + 4 * kk, wgmma_desc_mn128(dOt + kk * 16 * 128, B3_PANEL));
        wgmma_commit();
        // dS^T = P^T o (dP^T - D of the column's query); a P of 0 gives 0 (D is finite)
        uint32_t da[16];
#pragma unroll
        for (int j = 0; j < 8; j++)
#pragma unroll
            for (int h = 0; h < 2; h++)
                da[2 * j + h] = pack2<T>(st[4 * j + 2 * h] * (dp[4 * j + 2 * h] - dd[j].x),
                                         st[4 * j + 2 * h + 1] * (dp[4 * j + 2 * h + 1] - dd[j].y));
        // dK_c += dS^T Q: Q (queries x d) MN-major
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < B3_BQ / 16; kk++)
            wgmma_pv<T, D>(dk, da + 4 * kk, wgmma_desc_mn128(Qt + kk * 16 * 128, B3_PANEL));
        wgmma_commit();
        // dS^T to shared memory, keys by queries in the 128-byte swizzle (chapter 9's fa_at on
        // 64 columns), while the products run: da[2 j + h] is key row 16 warp + g + 8 h, queries 8 j + 2 t, + 1
        T *dSe = reinterpret_cast<T *>(dSt);
#pragma unroll
        for (int j = 0; j < 8; j++)
#pragma unroll
            for (int h = 0; h < 2; h++)
                *reinterpret_cast<uint32_t *>(dSe + fa_at<64>(16 * warp + g + 8 * h, 8 * j + 2 * t)) = da[2 * j + h];
        fence_proxy_async();  // the stores, before wgmma reads them
        wgmma_wait<0>();      // dV and dK have read the stage
        if (tid == 0) mbar_arrive(&empty[s]);
        // The tile's dQ is consumer n % 2's: the other arrives on the tile's barrier (1 for
        // even tiles, 2 for odd) once its dS^T is written, and goes on to the next tile.
        if (n % 2 != c) {
            named_barrier_arrive(1 + n % 2, 256);
            continue;
        }
        if (tid == 0) bulk_wait_read();         // its last tile's sums of dQ have left dQt
        named_barrier(1 + n % 2, 256);          // both tiles of dS^T are whole, and dQt free
        // dQ rows q0 .. q0 + 63 += dS K, 64 columns at a time: A = dS (queries x the block's 128
        // keys) read from the two tiles of dS^T, MN-major; B = K (keys x d), MN-major, as the
        // forward reads V. The empty asm makes the addresses new values here, so that the
        // compiler builds the descriptors when they are used instead of keeping all of them
        // in registers for the whole loop (which spills at d = 128).
        const unsigned char *Kq = Ks, *dSq = dS2;
        asm volatile("" : "+l"(Kq), "+l"(dSq));
#pragma unroll
        for (int pn = 0; pn < NP; pn++) {
            float dq[32];  // element i: query q0 + 16 warp + g + 8 ((i / 2) % 2), column 64 pn + 8 (i / 4) + 2 t + i % 2
            wgmma_fence();
#pragma unroll
            for (int kk = 0; kk < B3_BK / 16; kk++)
                wgmma_m64n64k16<T, 1, 1>(dq, wgmma_desc_mn128(dSq + (kk / 4) * B3_PANEL + (kk % 4) * 16 * 128, B3_PANEL),
                                         wgmma_desc_mn128(Kq + pn * W_PANEL + kk * 16 * 128, W_PANEL), kk > 0);
            wgmma_commit();
            wgmma_wait<0>();
            // into box 2 pn + j / 4 of dQt, in the 128-byte swizzle: row r, floats 8 (j % 4) + 2 t and
            // the next, in 16-byte chunk (2 (j % 4) + t / 2) xor (r % 8)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const int r = 16 * warp + g + 8 * h;
#pragma unroll
                for (int j = 0; j < 8; j++) {
                    float *box = reinterpret_cast<float *>(dQt + (2 * pn + j / 4) * B3_PANEL);
                    *reinterpret_cast<float2 *>(box + 32 * r + 4 * ((2 * (j % 4) + t / 2) ^ (r % 8)) + 2 * (t % 2)) =
                        make_float2(dq[4 * j + 2 * h], dq[4 * j + 2 * h + 1]);
                }
            }
        }
        fence_proxy_async();        // the stores, before the TMA reads them
        named_barrier(3 + c, 128);  // the tile of dQ's sums is whole
        if (tid == 0) {             // rows past sq are outside the map's head and left alone
            for (int b = 0; b < 2 * NP; b++) tma_reduce_add_3d(&mdq, dQt + b * B3_PANEL, 32 * b, q0, bh);
            bulk_commit();
        }
    }
    if (tid == 0) bulk_wait();  // the last reduce-adds are done
    // the end: dK = tau dK_c and dV_c, rounded, four bytes at a time; keys kw + g and kw + g + 8
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int key = kw + g + 8 * h;
        if (key >= sk) continue;
        T *krow = dK + ((size_t)bh * sk + key) * D, *vrow = dV + ((size_t)bh * sk + key) * D;
#pragma unroll
        for (int j = 0; j < ND / 4; j++) {
            const int e = 4 * j + 2 * h;
            *reinterpret_cast<uint32_t *>(krow + 8 * j + 2 * t) = pack2<T>(scale * dk[e], scale * dk[e + 1]);
            *reinterpret_cast<uint32_t *>(vrow + 8 * j + 2 * t) = pack2<T>(dv[e], dv[e + 1]);
        }
    }
#endif
}
#line 54 "chapters/10-attention-bwd.md"
// <<the-backward-reference-on-the-gpu>>
#line 1384 "chapters/10-attention-bwd.md"
// The float32 reference, first kernel: a warp per query row: D_i = dO_i . O_i with O as
// given, and E^D_i with the given O's error.
template <typename T, int D>
__global__ void backward_reference_rowsum(float *Dsum, float *Dsum_err, const T *dO, const T *O, const float *O_err,
                                          size_t rows)
{
    constexpr int E = D / 32;  // the lane's values of a row: columns lane + 32 e
    const int lane = threadIdx.x % 32;
    const size_t row = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32;
    if (row >= rows) return;
    float sum = 0.0f, weighted = 0.0f, magnitudes = 0.0f;
#pragma unroll
    for (int e = 0; e < E; e++) {
        const size_t at = row * D + lane + 32 * e;
        const float g = to_float(dO[at]), o = to_float(O[at]);
        sum += g * o;
        weighted += fabsf(g) * O_err[at];
        magnitudes += fabsf(g * o);
    }
    sum = warp_sum(sum);
    weighted = warp_sum(weighted);
    magnitudes = warp_sum(magnitudes);
    if (lane == 0) {
        Dsum[row] = sum;
        Dsum_err[row] = 1.01f * rowsum_error(weighted, magnitudes, D);
    }
}

// The float32 reference, a warp per query row: each key it sees, its p (from the given
// LSE), dP and dS, and the sums of dQ and of its bound's parts.
template <typename T, int D>
__global__ void backward_reference_dq(float *dq, float *arith, float *scale_out, const T *Q, const T *K, const T *V,
                                      const T *dO, const float *lse, const float *lse_err, const float *Dsum,
                                      const float *Dsum_err, size_t rows, int sq, int sk, float tau, bool causal,
                                      float p_rel, float p_floor)
{
    constexpr int E = D / 32;
    const int lane = threadIdx.x % 32;
    const size_t row = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32;  // (b h, i) flattened
    if (row >= rows) return;  // the whole warp leaves
    const size_t bh = row / sq;
    const int end = keys_seen((int)(row % sq), sq, sk, causal);
    K += bh * sk * D;
    V += bh * sk * D;
    float q[E], g[E], acc[E] = {}, mag[E] = {}, err[E] = {};
#pragma unroll
    for (int e = 0; e < E; e++) {
        q[e] = to_float(Q[row * D + lane + 32 * e]);
        g[e] = to_float(dO[row * D + lane + 32 * e]);
    }
    const float L = lse[row], e_l = lse_err[row], Di = Dsum[row], Di_err = Dsum_err[row];
    for (int j = 0; j < end; j++) {
        float k[E], x = 0.0f, a = 0.0f, dp = 0.0f, b = 0.0f;
#pragma unroll
        for (int e = 0; e < E; e++) {
            k[e] = to_float(K[(size_t)j * D + lane + 32 * e]);
            const float v = to_float(V[(size_t)j * D + lane + 32 * e]);
            x += q[e] * k[e];
            a += fabsf(q[e] * k[e]);
            dp += g[e] * v;
            b += fabsf(g[e] * v);
        }
        x = tau * warp_sum(x);
        a = tau * warp_sum(a);
        dp = warp_sum(dp);
        b = warp_sum(b);
        const float p = expf(x - L), ds = p * (dp - Di);
        float p_err, ds_err;
        pair_errors(&p_err, &ds_err, p, a, x, L, e_l, dp, Di, b, Di_err, D);
        const float sigma = ds_rounding(ds, p, dp - Di, p_rel, p_floor);
#pragma unroll
        for (int e = 0; e < E; e++) {
            acc[e] += ds * k[e];
            mag[e] += fabsf(ds * k[e]);
            err[e] += (ds_err + sigma) * fabsf(k[e]);
        }
    }
    const float gamma = (float)products_gamma(sk);
#pragma unroll
    for (int e = 0; e < E; e++) {
        const size_t at = row * D + lane + 32 * e;
        dq[at] = tau * acc[e];
        scale_out[at] = tau * mag[e];
        arith[at] = 1.01f * gradient_bound(tau * err[e], tau * mag[e], gamma, 0x1p-24f);
    }
}

// The float32 reference, a warp per key row: each query that sees it, its p, dP and dS, and
// the sums of dK and dV and of their bounds' parts.
template <typename T, int D>
__global__ void backward_reference_dkdv(float *dk, float *arith_k, float *scale_k, float *dv, float *arith_v,
                                        float *scale_v, const T *Q, const T *K, const T *V, const T *dO,
                                        const float *lse, const float *lse_err, const float *Dsum,
                                        const float *Dsum_err, size_t key_rows, int sq, int sk, float tau, bool causal,
                                        float p_rel, float p_floor)
{
    constexpr int E = D / 32;
    const int lane = threadIdx.x % 32;
    const size_t key = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32;  // (b h, j) flattened
    if (key >= key_rows) return;
    const size_t bh = key / sk, first_row = bh * sq;
    const int j = (int)(key % sk);
    float k[E], v[E], ak[E] = {}, mk[E] = {}, ek[E] = {}, av[E] = {}, mv[E] = {}, ev[E] = {};
#pragma unroll
    for (int e = 0; e < E; e++) {
        k[e] = to_float(K[key * D + lane + 32 * e]);
        v[e] = to_float(V[key * D + lane + 32 * e]);
    }
    for (int i = first_query_seeing(j, sq, sk, causal); i < sq; i++) {
        const size_t row = first_row + i;
        float q[E], g[E], x = 0.0f, a = 0.0f, dp = 0.0f, b = 0.0f;
#pragma unroll
        for (int e = 0; e < E; e++) {
            q[e] = to_float(Q[row * D + lane + 32 * e]);
            g[e] = to_float(dO[row * D + lane + 32 * e]);
            x += q[e] * k[e];
            a += fabsf(q[e] * k[e]);
            dp += g[e] * v[e];
            b += fabsf(g[e] * v[e]);
        }
        x = tau * warp_sum(x);
        a = tau * warp_sum(a);
        dp = warp_sum(dp);
        b = warp_sum(b);
        const float L = lse[row], Di = Dsum[row], p = expf(x - L), ds = p * (dp - Di);
        float p_err, ds_err;
        pair_errors(&p_err, &ds_err, p, a, x, L, lse_err[row], dp, Di, b, Dsum_err[row], D);
        const float rho = p_rounding(p, p_rel, p_floor), sigma = ds_rounding(ds, p, dp - Di, p_rel, p_floor);
#pragma unroll
        for (int e = 0; e < E; e++) {
            av[e] += p * g[e];
            mv[e] += p * fabsf(g[e]);
            ev[e] += (p_err + rho) * fabsf(g[e]);
            ak[e] += ds * q[e];
            mk[e] += fabsf(ds * q[e]);
            ek[e] += (ds_err + sigma) * fabsf(q[e]);
        }
    }
    const float gamma = (float)products_gamma(sq);
#pragma unroll
    for (int e = 0; e < E; e++) {
        const size_t at = key * D + lane + 32 * e;
        dv[at] = av[e];
        scale_v[at] = mv[e];
        arith_v[at] = 1.01f * gradient_bound(ev[e], mv[e], gamma, 0.0f);
        dk[at] = tau * ak[e];
        scale_k[at] = tau * mk[e];
        arith_k[at] = 1.01f * gradient_bound(tau * ek[e], tau * mk[e], gamma, 0x1p-24f);
    }
}
#line 55 "chapters/10-attention-bwd.md"
// <<backward-launchers>>
#line 1545 "chapters/10-attention-bwd.md"
static double scores_bytes(const Problem *p) { return 4.0 * p->b * p->h * p->sq * p->sk; }

// b0 needs P (then dS) in the GPU's memory.
static const char *naive_unsupported(const Problem *p)
{
    static char why[128];
    if ((double)p->sq * p->sk > 2048.0 * 2048.0) return "run up to s_q s_k = 2048^2 (a tenth of a second a run beyond)";
    const double need = scores_bytes(p) + 4.0 * rows_of(p) + (64u << 20);  // P, D, and room to spare
    size_t free_b = 0, total_b = 0;
    if (p->scores) return NULL;  // allocated at an earlier launch
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    if (need > (double)free_b) {
        snprintf(why, sizeof why, "P and D need %.1f GiB, %.1f GiB are free", need / 1073741824.0,
                 free_b / 1073741824.0);
        return why;
    }
    return NULL;
}

template <typename T>
static void launch_naive(Problem *p)
{
    p->deterministic = false;
    if (!p->scores) {
        p->scores = (float *)device_alloc((size_t)scores_bytes(p), "P");
        p->rowsum = (float *)device_alloc(rows_of(p) * sizeof(float), "D");
    }
    const unsigned bh = (unsigned)(p->b * p->h), qt = (unsigned)((p->sq + 31) / 32), kt = (unsigned)((p->sk + 31) / 32);
    const dim3 tile(32, 32), pairs(kt, qt, bh), over_queries(p->d / 32, kt, bh), over_keys(p->d / 32, qt, bh);
    const T *q = (const T *)p->q, *k = (const T *)p->k, *v = (const T *)p->v, *dout = (const T *)p->dout;
    backward_rowsum<T><<<(unsigned)((rows_of(p) + 7) / 8), 256>>>(p->rowsum, dout, (const T *)p->o, rows_of(p), p->d);
    CHECK_LAUNCH();
    // P = exp(tau Q K^T - LSE)
    backward_pairs<T, false><<<pairs, tile>>>(p->scores, q, k, p->lse, p->sq, p->sk, p->d, p->scale, p->causal);
    CHECK_LAUNCH();
    // dV = P^T dO
    backward_product_over_queries<T><<<over_queries, tile>>>((T *)p->grad[DV], p->scores, dout, p->sq, p->sk, p->d,
                                                             1.0f, p->causal);
    CHECK_LAUNCH();
    // dS = P (dO V^T - D), over P
    backward_pairs<T, true><<<pairs, tile>>>(p->scores, dout, v, p->rowsum, p->sq, p->sk, p->d, 1.0f, p->causal);
    CHECK_LAUNCH();
    // dQ = tau dS K, dK = tau dS^T Q
    backward_product_over_keys<T><<<over_keys, tile>>>((T *)p->grad[DQ], p->scores, k, p->sq, p->sk, p->d, p->scale,
                                                       p->causal);
    CHECK_LAUNCH();
    backward_product_over_queries<T><<<over_queries, tile>>>((T *)p->grad[DK], p->scores, q, p->sq, p->sk, p->d,
                                                             p->scale, p->causal);
    CHECK_LAUNCH();
}
#line 1603 "chapters/10-attention-bwd.md"
static int padded_queries(const Problem *p) { return (p->sq + 63) / 64 * 64; }

// b1 needs its dQ accumulator in the GPU's memory.
static const char *flash_atomic_unsupported(const Problem *p)
{
    static char why[128];
    const double need = 4.0 * rows_of(p) * p->d + 8.0 * p->b * p->h * padded_queries(p) + (64u << 20);
    size_t free_b = 0, total_b = 0;
    if (p->dq_acc) return NULL;  // allocated at an earlier launch
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    if (need > (double)free_b) {
        snprintf(why, sizeof why, "the dQ accumulator needs %.1f GiB, %.1f GiB are free", need / 1073741824.0,
                 free_b / 1073741824.0);
        return why;
    }
    return NULL;
}

// b1 (atomic) and b2: the pre-pass; the main kernel, a block per tile of 64 keys; then
// b1's rounding of the accumulator, or b2's dQ kernel, a block per tile of 64 queries.
template <typename T, int D>
static void launch_flash_backward_d(Problem *p, bool atomic)
{
    const int sq_pad = padded_queries(p);
    const size_t heads = (size_t)p->b * p->h, padded = heads * sq_pad;
    if (!p->terms) p->terms = (float *)device_alloc(2 * padded * sizeof(float), "D and lse2");
    if (atomic && !p->dq_acc) p->dq_acc = (float *)device_alloc(rows_of(p) * D * sizeof(float), "dQ accumulator");
    float *dsum = p->terms, *lse2 = p->terms + padded;
    const T *q = (const T *)p->q, *k = (const T *)p->k, *v = (const T *)p->v, *dout = (const T *)p->dout;
    flash_backward_prepare<T, D><<<(unsigned)((padded + 3) / 4), 128>>>(dsum, lse2, atomic ? p->dq_acc : NULL, dout,
                                                                      (const T *)p->o, p->lse, p->sq, sq_pad, padded);
    CHECK_LAUNCH();
    // the main kernel: K, V, two buffers of Q and of dO, b1's dS^T, two buffers of lse2 and D
    const int smem = (6 * 64 * D + (atomic ? 64 * 64 : 0)) * (int)sizeof(T) + 4 * 64 * (int)sizeof(float);
    auto kernel = atomic ? flash_backward_dkdv<T, D, true, D == 64> : flash_backward_dkdv<T, D, false, D == 64>;
    static bool opted[2] = {false, false};
    if (!opted[atomic]) {
        CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
        opted[atomic] = true;
    }
    kernel<<<dim3((unsigned)((p->sk + 63) / 64), (unsigned)heads), 128, smem>>>(
        (T *)p->grad[DK], (T *)p->grad[DV], p->dq_acc, q, k, v, dout, lse2, dsum, p->sq, sq_pad, p->sk, p->scale,
        p->causal);
    CHECK_LAUNCH();
    if (atomic) {
        const size_t n = rows_of(p) * D;
        flash_backward_dq_round<T><<<(unsigned)((n / 2 + 255) / 256), 256>>>((T *)p->grad[DQ], p->dq_acc, n, p->scale);
        CHECK_LAUNCH();
        return;
    }
    const int dq_smem = 6 * 64 * D * (int)sizeof(T);  // Q, dO, two buffers of K and of V
    static bool dq_opted = false;
    if (!dq_opted) {
        CUDA_CHECK(cudaFuncSetAttribute(flash_backward_dq<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, dq_smem));
        dq_opted = true;
    }
    flash_backward_dq<T, D><<<dim3((unsigned)(sq_pad / 64), (unsigned)heads), 128, dq_smem>>>(
        (T *)p->grad[DQ], q, k, v, dout, lse2, dsum, p->sq, sq_pad, p->sk, p->scale, p->causal);
    CHECK_LAUNCH();
}

template <typename T>
static void launch_flash_atomic(Problem *p)
{
    p->deterministic = false;
    if (p->d == 64) launch_flash_backward_d<T, 64>(p, true);
    else launch_flash_backward_d<T, 128>(p, true);
}

template <typename T>
static void launch_flash_deterministic(Problem *p)
{
    p->deterministic = true;
    if (p->d == 64) launch_flash_backward_d<T, 64>(p, false);
    else launch_flash_backward_d<T, 128>(p, false);
}
#line 1686 "chapters/10-attention-bwd.md"
// b3 needs sm_90a code (the Hopper GEMM chapter's probe) and b1's dQ accumulator.
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
#line 1688 "chapters/10-attention-bwd.md"
static const char *flash_wgmma_unsupported(const Problem *p)
{
    const char *why = needs_sm90a_code();
    return why ? why : flash_atomic_unsupported(p);
}

// b3: b1's pre-pass, the main kernel on wgmma (a block per 128 keys), b1's rounding of dQ.
template <typename T, int D, int STAGES>
static void launch_flash_wgmma_d(Problem *p)
{
    const int sq_pad = padded_queries(p);
    const size_t heads = (size_t)p->b * p->h, padded = heads * sq_pad;
    if (!p->terms) p->terms = (float *)device_alloc(2 * padded * sizeof(float), "D and lse2");
    if (!p->dq_acc) p->dq_acc = (float *)device_alloc(rows_of(p) * D * sizeof(float), "dQ accumulator");
    float *dsum = p->terms, *lse2 = p->terms + padded;
    flash_backward_prepare<T, D><<<(unsigned)((padded + 3) / 4), 128>>>(dsum, lse2, p->dq_acc, (const T *)p->dout,
                                                                      (const T *)p->o, p->lse, p->sq, sq_pad, padded);
    CHECK_LAUNCH();
    auto kernel = flash_backward_wgmma<T, D, STAGES>;
    constexpr int smem = b3_smem<D, STAGES>();
    static bool opted = false;
    if (!opted) {
        CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
        opted = true;
    }
    if (!p->mapped) {
        const bool bf16 = p->dtype == BF16;
        const int qrows = (int)rows_of(p), krows = (int)key_rows_of(p);
        p->mq = tma_map_2d(p->q, bf16, qrows, D, B3_BQ);
        p->mdo = tma_map_2d(p->dout, bf16, qrows, D, B3_BQ);
        p->mk = tma_map_2d(p->k, bf16, krows, D, B3_BK);
        p->mv = tma_map_2d(p->v, bf16, krows, D, B3_BK);
        p->mdq = tma_map_f32_blocks(p->dq_acc, (int)heads, p->sq, D, B3_BQ);  // rows past sq, in no head, left alone
        p->mapped = true;
    }
    kernel<<<dim3((unsigned)((p->sk + B3_BK - 1) / B3_BK), (unsigned)heads), 384, smem>>>(
        p->mq, p->mk, p->mv, p->mdo, p->mdq, (T *)p->grad[DK], (T *)p->grad[DV], lse2, dsum, p->sq, sq_pad, p->sk,
        p->scale, p->causal);
    CHECK_LAUNCH();
    const size_t n = rows_of(p) * D;
    flash_backward_dq_round<T><<<(unsigned)((n / 2 + 255) / 256), 256>>>((T *)p->grad[DQ], p->dq_acc, n, p->scale);
    CHECK_LAUNCH();
}

template <typename T>
static void launch_flash_wgmma(Problem *p)
{
    p->deterministic = false;
    if (p->d == 64) launch_flash_wgmma_d<T, 64, 2>(p);
    else launch_flash_wgmma_d<T, 128, 2>(p);
}
#line 56 "chapters/10-attention-bwd.md"
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
#line 57 "chapters/10-attention-bwd.md"
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
#line 58 "chapters/10-attention-bwd.md"
// <<the-backward-version-table>>
#line 1748 "chapters/10-attention-bwd.md"
#define BACKWARD_VERSIONS(T, DT)                                                                               \
    {"b0-naive", "ours", DT, "P, then dS, to global memory in float; D, dV, dS, dQ, dK as tiled SIMT kernels",   \
     launch_naive<T>, naive_unsupported},                                                                     \
    {"b1-flash-mma", "ours", DT, "FlashAttention-2's backward on mma.sync: a block per 64 keys, dQ by float atomics", \
     launch_flash_atomic<T>, flash_atomic_unsupported},                                                        \
    {"b2-deterministic", "ours", DT, "b1 without atomics: dQ from a kernel per 64 queries, recomputing S and dP",  \
     launch_flash_deterministic<T>, NULL},                                                                     \
    {"b3-wgmma", "ours", DT, "b1 on Hopper: wgmma and the TMA, a producer and two consumers of 64 keys, dQ by atomics", \
     launch_flash_wgmma<T>, flash_wgmma_unsupported}

static const Version VERSIONS[] = {
    BACKWARD_VERSIONS(__nv_bfloat16, "bf16"),
    BACKWARD_VERSIONS(__half, "f16"),
};
#line 59 "chapters/10-attention-bwd.md"
// <<create-and-check-a-backward-problem>>
#line 1240 "chapters/10-attention-bwd.md"
// ============================================================ the reference in double
// What every pair of a query row needs: its exact LSE, D = dO . O with O exact, E^D
// (with the given O's error) and e, the given LSE's error.
typedef struct {
    double lse, dsum, dsum_err, lse_err;
} QueryTerms;

static QueryTerms query_terms(const Problem *p, size_t row)
{
    const int d = p->d, end = keys_seen((int)(row % p->sq), p->sq, p->sk, p->causal);
    const size_t bh = row / p->sq;
    const float *q = p->hq + row * d, *k = p->hk + bh * p->sk * d, *v = p->hv + bh * p->sk * d;
    const float *g = p->hdo + row * d, *o_err = p->ho_err + row * d;
    QueryTerms t = {-INFINITY, 0.0, 0.0, p->hlse_err[row]};
    if (end == 0) return t;  // no key: no pair, D = 0
    double m = -INFINITY, l = 0.0, o[128] = {};
    for (int pass = 0; pass < 2; pass++) {  // the maximum, then the sums relative to it
        for (int j = 0; j < end; j++) {
            double x = 0.0;
            for (int c = 0; c < d; c++) x += (double)q[c] * k[(size_t)j * d + c];
            x *= p->scale;
            if (pass == 0) { m = fmax(m, x); continue; }
            double w = exp(x - m);
            l += w;
            for (int c = 0; c < d; c++) o[c] += w * v[(size_t)j * d + c];
        }
    }
    t.lse = m + log(l);
    double weighted = 0.0, magnitudes = 0.0;
    for (int c = 0; c < d; c++) {
        double oc = o[c] / l;
        t.dsum += g[c] * oc;
        weighted += fabs(g[c]) * o_err[c];
        magnitudes += fabs(g[c] * oc);
    }
    t.dsum_err = rowsum_error(weighted, magnitudes, d);
    return t;
}

// One pair (i, j), from row i of q and dO and row j of k and v: p, dS and their errors.
typedef struct {
    double p, ds, p_err, ds_err, dp_minus_d;
} PairTerms;

static PairTerms pair_terms(const Problem *p, const float *q, const float *g, const float *k, const float *v,
                            QueryTerms t)
{
    double x = 0.0, a = 0.0, dp = 0.0, b = 0.0;
    for (int c = 0; c < p->d; c++) {
        double qk = (double)q[c] * k[c], gv = (double)g[c] * v[c];
        x += qk;
        a += fabs(qk);
        dp += gv;
        b += fabs(gv);
    }
    x *= p->scale;
    a *= p->scale;
    PairTerms r;
    r.p = exp(x - t.lse);
    r.dp_minus_d = dp - t.dsum;
    r.ds = r.p * r.dp_minus_d;
    pair_errors(&r.p_err, &r.ds_err, r.p, a, x, t.lse, t.lse_err, dp, t.dsum, b, t.dsum_err, p->d);
    return r;
}

// Query row `row` (b h and i flattened): dQ's d values, the bound on each before the final
// rounding, and its scale A^Q.
static void reference_dq_row(double *dq, double *arith, double *scale, const Problem *p, size_t row, QueryTerms t)
{
    const int d = p->d, end = keys_seen((int)(row % p->sq), p->sq, p->sk, p->causal);
    const size_t bh = row / p->sq;
    const float *k = p->hk + bh * p->sk * d, *v = p->hv + bh * p->sk * d;
    double rel, floor_, tau = p->scale;
    p_rounding_of(p->dtype, &rel, &floor_);
    for (int c = 0; c < d; c++) dq[c] = arith[c] = scale[c] = 0.0;
    for (int j = 0; j < end; j++) {
        const float *kj = k + (size_t)j * d;
        PairTerms r = pair_terms(p, p->hq + row * d, p->hdo + row * d, kj, v + (size_t)j * d, t);
        double sigma = ds_rounding(r.ds, r.p, r.dp_minus_d, rel, floor_);
        for (int c = 0; c < d; c++) {
            dq[c] += r.ds * kj[c];
            scale[c] += fabs(r.ds * kj[c]);
            arith[c] += (r.ds_err + sigma) * fabs(kj[c]);
        }
    }
    for (int c = 0; c < d; c++) {
        dq[c] *= tau;
        scale[c] *= tau;
        arith[c] = gradient_bound(tau * arith[c], scale[c], products_gamma(p->sk), 0x1p-24);
    }
}

// Key row `key` (b h and j flattened): dK and dV, their bounds and scales, from the terms
// of its head's queries (terms[i] for query i of that head).
static void reference_dkdv_row(double *dk, double *arith_k, double *scale_k, double *dv, double *arith_v,
                               double *scale_v, const Problem *p, size_t key, const QueryTerms *terms)
{
    const int d = p->d, j = (int)(key % p->sk);
    const size_t bh = key / p->sk;
    const float *kj = p->hk + key * d, *vj = p->hv + key * d;
    double rel, floor_, tau = p->scale;
    p_rounding_of(p->dtype, &rel, &floor_);
    for (int c = 0; c < d; c++) dk[c] = arith_k[c] = scale_k[c] = dv[c] = arith_v[c] = scale_v[c] = 0.0;
    for (int i = first_query_seeing(j, p->sq, p->sk, p->causal); i < p->sq; i++) {
        const float *qi = p->hq + (bh * p->sq + i) * d, *gi = p->hdo + (bh * p->sq + i) * d;
        PairTerms r = pair_terms(p, qi, gi, kj, vj, terms[i]);
        double rho = p_rounding(r.p, rel, floor_), sigma = ds_rounding(r.ds, r.p, r.dp_minus_d, rel, floor_);
        for (int c = 0; c < d; c++) {
            dv[c] += r.p * gi[c];
            scale_v[c] += r.p * fabs(gi[c]);
            arith_v[c] += (r.p_err + rho) * fabs(gi[c]);
            dk[c] += r.ds * qi[c];
            scale_k[c] += fabs(r.ds * qi[c]);
            arith_k[c] += (r.ds_err + sigma) * fabs(qi[c]);
        }
    }
    const double gamma = products_gamma(p->sq);
    for (int c = 0; c < d; c++) {
        arith_v[c] = gradient_bound(arith_v[c], scale_v[c], gamma, 0.0);
        dk[c] *= tau;
        scale_k[c] *= tau;
        arith_k[c] = gradient_bound(tau * arith_k[c], scale_k[c], gamma, 0x1p-24);
    }
}

static bool cpu_reference(const Problem *p) { return (double)p->b * p->h * p->sq * p->sk * p->d <= 2147483648.0; }
#line 1772 "chapters/10-attention-bwd.md"
// ============================================================ problems and checks
// Reads a length, 1 to 2^20 in decimal digits, at *s; moves *s past it.
static bool read_length(const char **s, int *out)
{
    const char *at = *s;
    long value = 0;
    while (isdigit((unsigned char)*at) && value <= (1 << 20)) value = 10 * value + (*at++ - '0');
    if (at == *s || isdigit((unsigned char)*at) || value < 1 || value > (1 << 20)) return false;
    *out = (int)value;
    *s = at;
    return true;
}

// "BxHxSQxSKxD", a trailing "c" for causal, into dims = {b, h, sq, sk, d}. NULL, or what
// the sizes must be.
static const char *parse_backward_size(const char *size, int dims[5], bool *causal)
{
    static const char *want = "BxHxSQxSKxD, a trailing c for causal (1x2x31x65x128c): D 64 or 128, lengths 1 to "
                              "2^20, B x H at most 65535, each of Q, K, V at most 2^31 elements";
    const char *s = size;
    for (int k = 0; k < 5; k++) {
        if (!read_length(&s, &dims[k])) return want;
        if (k < 4 && *s++ != 'x') return want;
    }
    *causal = *s == 'c';
    if (strcmp(s, *causal ? "c" : "") != 0) return want;
    const double heads = (double)dims[0] * dims[1], longest = dims[2] > dims[3] ? dims[2] : dims[3];
    if ((dims[4] != 64 && dims[4] != 128) || heads > 65535 || heads * longest * dims[4] > 2147483648.0) return want;
    return NULL;
}

static const char *backward_bad_size(const char *size)
{
    int dims[5];
    bool causal;
    return parse_backward_size(size, dims, &causal);
}

// The forward chapter's float32 reference for this problem's element type and head dimension,
// into out: O, its bound, its scale, the LSE, its bound.
template <typename T, int D>
static void forward_reference(float *const out[5], const Problem *p, float rel, float floor_)
{
    const size_t rows = rows_of(p);
    attention_reference<T, D><<<(unsigned)((rows + 7) / 8), 256>>>(out[0], out[1], out[2], out[3], out[4],
                                                                  (const T *)p->q, (const T *)p->k, (const T *)p->v,
                                                                  rows, p->sq, p->sk, p->scale, p->causal, rel, floor_);
}

// The forward on the GPU, once: O and the LSE by the forward chapter's float32 reference,
// with the bounds on their errors; O rounded to the element type (its bound grows by the
// rounding), the LSE kept in float.
static void forward_on_gpu(Problem *p)
{
    const size_t rows = rows_of(p), n = rows * p->d;
    float *dev[5];  // O, its bound, its scale (unused), the LSE, its bound
    const size_t counts[5] = {n, n, n, rows, rows};
    for (int a = 0; a < 5; a++) dev[a] = (float *)device_alloc(counts[a] * sizeof(float), "forward");
    double rel, floor_;
    p_rounding_of(p->dtype, &rel, &floor_);
    if (p->dtype == BF16 && p->d == 64) forward_reference<__nv_bfloat16, 64>(dev, p, (float)rel, (float)floor_);
    else if (p->dtype == BF16) forward_reference<__nv_bfloat16, 128>(dev, p, (float)rel, (float)floor_);
    else if (p->d == 64) forward_reference<__half, 64>(dev, p, (float)rel, (float)floor_);
    else forward_reference<__half, 128>(dev, p, (float)rel, (float)floor_);
    CHECK_LAUNCH();
    float *hosts[5] = {p->ho, p->ho_err, NULL, p->hlse, p->hlse_err};
    for (int a = 0; a < 5; a++) {
        if (hosts[a]) CUDA_CHECK(cudaMemcpy(hosts[a], dev[a], counts[a] * sizeof(float), cudaMemcpyDeviceToHost));
    }
#pragma omp parallel for schedule(static)
    for (size_t e = 0; e < n; e++) {
        const float rounded = round_to(p->dtype, p->ho[e]);
        p->ho_err[e] += fabsf(rounded - p->ho[e]);
        p->ho[e] = rounded;
    }
    upload(p->o, p->ho, n, p->dtype);
    CUDA_CHECK(cudaMemcpy(p->lse, dev[3], rows * sizeof(float), cudaMemcpyDeviceToDevice));
    for (int a = 0; a < 5; a++) CUDA_CHECK(cudaFree(dev[a]));
}
#line 1856 "chapters/10-attention-bwd.md"
// q, k, v uniform in [-1, 2), one row of q in eight times 24 and one in eight times -24;
// dO uniform in [-1, 1); all rounded to the element type.
static void fill_inputs(Problem *p, uint64_t seed)
{
    const size_t nq = rows_of(p) * p->d, nk = key_rows_of(p) * p->d;
    struct { float *x; size_t n; float lo, hi; } inputs[4] = {
        {p->hq, nq, -1.0f, 2.0f}, {p->hk, nk, -1.0f, 2.0f}, {p->hv, nk, -1.0f, 2.0f}, {p->hdo, nq, -1.0f, 1.0f}};
    for (int a = 0; a < 4; a++) fill_uniform_f32(inputs[a].x, inputs[a].n, inputs[a].lo, inputs[a].hi, seed + a);
    uint64_t state = seed + 4;
    for (size_t row = 0; row < rows_of(p); row++) {
        const double draw = rng_uniform(&state);
        if (draw >= 0.25) continue;
        for (int c = 0; c < p->d; c++) p->hq[row * p->d + c] *= draw < 0.125 ? 24.0f : -24.0f;
    }
    for (int a = 0; a < 4; a++) {
#pragma omp parallel for schedule(static)
        for (size_t e = 0; e < inputs[a].n; e++) inputs[a].x[e] = round_to(p->dtype, inputs[a].x[e]);
    }
}

static Problem *backward_create(const char *dtype, const char *size, uint64_t seed)
{
    Problem *p = (Problem *)host_alloc(sizeof(Problem), "problem");
    memset(p, 0, sizeof *p);
    int dims[5];
    const char *bad = parse_backward_size(size, dims, &p->causal);
    if (bad) usage_error("bad size", size, bad);
    p->b = dims[0], p->h = dims[1], p->sq = dims[2], p->sk = dims[3], p->d = dims[4];
    p->dtype = parse_dtype(dtype);
    snprintf(p->size, sizeof p->size, "%s", size);
    p->scale = (float)(1.0 / sqrt((double)p->d));
    const size_t rows = rows_of(p), nq = rows * p->d, nk = key_rows_of(p) * p->d, e = dtype_bytes(p->dtype);
    // Q, O, dO, dQ and K, V, dK, dV, the LSE; the forward's five arrays; beyond the CPU's
    // reach the reference's eleven (D, its bound, O's bound, and dQ, dK, dV, each with bound and scale)
    check_fits(size, (4 * nq + 4 * nk) * e + rows * 4 + (3 * nq + 2 * rows) * 4 +
                         (cpu_reference(p) ? 0 : (4 * nq + 6 * nk + 3 * rows) * 4) + (64u << 20));
    float **hosts[8] = {&p->hq, &p->hk, &p->hv, &p->hdo, &p->ho, &p->ho_err, &p->hlse, &p->hlse_err};
    const size_t counts[8] = {nq, nk, nk, nq, nq, nq, rows, rows};
    for (int a = 0; a < 8; a++) *hosts[a] = (float *)host_alloc(counts[a] * sizeof(float), "inputs");
    fill_inputs(p, seed);
    p->q = device_alloc(nq * e, "Q");
    p->k = device_alloc(nk * e, "K");
    p->v = device_alloc(nk * e, "V");
    p->o = device_alloc(nq * e, "O");
    p->dout = device_alloc(nq * e, "dO");
    p->lse = (float *)device_alloc(rows * sizeof(float), "LSE");
    // the three gradients in one allocation, so that one hash covers them
    p->grad[DQ] = device_alloc((nq + 2 * nk) * e, "dQ, dK, dV");
    p->grad[DK] = (char *)p->grad[DQ] + nq * e;
    p->grad[DV] = (char *)p->grad[DK] + nk * e;
    upload(p->q, p->hq, nq, p->dtype);
    upload(p->k, p->hk, nk, p->dtype);
    upload(p->v, p->hv, nk, p->dtype);
    upload(p->dout, p->hdo, nq, p->dtype);
    forward_on_gpu(p);
    return p;
}

static void backward_destroy(Problem *p)
{
    void *arrays[] = {p->q, p->k, p->v, p->o, p->dout, p->lse, p->grad[DQ], p->scores, p->rowsum, p->terms,
                      p->dq_acc};  // grad[DQ] holds dK and dV too
    for (size_t a = 0; a < sizeof arrays / sizeof arrays[0]; a++)
        if (arrays[a]) CUDA_CHECK(cudaFree(arrays[a]));
    for (int g = 0; g < 3; g++) {
        free(p->ref[g]);
        free(p->arith[g]);
        free(p->scale_of[g]);
    }
    free(p->sample_rows);
    free(p->sample);
    float *hosts[] = {p->hq, p->hk, p->hv, p->hdo, p->ho, p->ho_err, p->hlse, p->hlse_err};
    for (size_t a = 0; a < sizeof hosts / sizeof hosts[0]; a++) free(hosts[a]);
    free(p);
}

static void backward_poison(Problem *p)
{
    const size_t e = dtype_bytes(p->dtype);
    poison(p->grad[DQ], rows_of(p) * p->d * e);
    poison(p->grad[DK], key_rows_of(p) * p->d * e);
    poison(p->grad[DV], key_rows_of(p) * p->d * e);
}

// Q, K, V, O, dO read once, the LSE read, dQ, dK, dV written once.
static double backward_bytes(const Problem *p)
{
    return (4.0 * rows_of(p) + 4.0 * key_rows_of(p)) * p->d * dtype_bytes(p->dtype) + 4.0 * rows_of(p);
}

// 10 b h sq sk d (five products), halved when causal (FlashAttention's convention).
static double backward_flops(const Problem *p)
{
    return 10.0 * p->b * p->h * p->sq * p->sk * p->d / (p->causal ? 2.0 : 1.0);
}
#line 1958 "chapters/10-attention-bwd.md"
static void cpu_reference_all(Problem *p)
{
    const size_t rows = rows_of(p), keys = key_rows_of(p), d = p->d;
    QueryTerms *terms = (QueryTerms *)host_alloc(rows * sizeof(QueryTerms), "terms");
#pragma omp parallel for schedule(dynamic, 4)
    for (size_t r = 0; r < rows; r++) terms[r] = query_terms(p, r);
#pragma omp parallel for schedule(dynamic, 4)
    for (size_t r = 0; r < rows; r++)
        reference_dq_row(p->ref[DQ] + r * d, p->arith[DQ] + r * d, p->scale_of[DQ] + r * d, p, r, terms[r]);
#pragma omp parallel for schedule(dynamic, 4)
    for (size_t key = 0; key < keys; key++)
        reference_dkdv_row(p->ref[DK] + key * d, p->arith[DK] + key * d, p->scale_of[DK] + key * d,
                           p->ref[DV] + key * d, p->arith[DV] + key * d, p->scale_of[DV] + key * d, p, key,
                           terms + key / p->sk * p->sq);
    free(terms);
}

template <typename T, int D>
static void gpu_reference_kernels(float *const dev[9], const float *o_err, float *dsum, float *dsum_err,
                                  const float *lse_err, const Problem *p, float rel, float floor_)
{
    const size_t rows = rows_of(p), keys = key_rows_of(p);
    const T *q = (const T *)p->q, *k = (const T *)p->k, *v = (const T *)p->v, *g = (const T *)p->dout;
    backward_reference_rowsum<T, D><<<(unsigned)((rows + 7) / 8), 256>>>(dsum, dsum_err, g, (const T *)p->o, o_err, rows);
    CHECK_LAUNCH();
    backward_reference_dq<T, D><<<(unsigned)((rows + 7) / 8), 256>>>(dev[0], dev[1], dev[2], q, k, v, g, p->lse,
                                                                      lse_err, dsum, dsum_err, rows, p->sq, p->sk,
                                                                      p->scale, p->causal, rel, floor_);
    CHECK_LAUNCH();
    backward_reference_dkdv<T, D><<<(unsigned)((keys + 7) / 8), 256>>>(dev[3], dev[4], dev[5], dev[6], dev[7], dev[8],
                                                                        q, k, v, g, p->lse, lse_err, dsum, dsum_err,
                                                                        keys, p->sq, p->sk, p->scale, p->causal, rel,
                                                                        floor_);
    CHECK_LAUNCH();
}

// The float32 reference on the GPU, into the problem's reference arrays (as doubles).
static void gpu_reference(Problem *p)
{
    const size_t rows = rows_of(p), nq = rows * p->d, nk = key_rows_of(p) * p->d;
    float *dev[9];  // dQ, its bound, its scale; dK, ...; dV, ...
    double *host[9] = {p->ref[DQ], p->arith[DQ], p->scale_of[DQ], p->ref[DK], p->arith[DK], p->scale_of[DK],
                       p->ref[DV], p->arith[DV], p->scale_of[DV]};
    for (int a = 0; a < 9; a++) dev[a] = (float *)device_alloc((a < 3 ? nq : nk) * sizeof(float), "reference");
    float *o_err = (float *)device_alloc(nq * sizeof(float), "O's bound");
    float *rowwise = (float *)device_alloc(3 * rows * sizeof(float), "D");  // D, its bound, the LSE's bound
    CUDA_CHECK(cudaMemcpy(o_err, p->ho_err, nq * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(rowwise + 2 * rows, p->hlse_err, rows * sizeof(float), cudaMemcpyHostToDevice));
    double rel, floor_;
    p_rounding_of(p->dtype, &rel, &floor_);
    float *dsum = rowwise, *dsum_err = rowwise + rows, *lse_err = rowwise + 2 * rows;
    if (p->dtype == BF16 && p->d == 64)
        gpu_reference_kernels<__nv_bfloat16, 64>(dev, o_err, dsum, dsum_err, lse_err, p, (float)rel, (float)floor_);
    else if (p->dtype == BF16)
        gpu_reference_kernels<__nv_bfloat16, 128>(dev, o_err, dsum, dsum_err, lse_err, p, (float)rel, (float)floor_);
    else if (p->d == 64)
        gpu_reference_kernels<__half, 64>(dev, o_err, dsum, dsum_err, lse_err, p, (float)rel, (float)floor_);
    else gpu_reference_kernels<__half, 128>(dev, o_err, dsum, dsum_err, lse_err, p, (float)rel, (float)floor_);
    float *h = (float *)host_alloc((nq > nk ? nq : nk) * sizeof(float), "reference");
    for (int a = 0; a < 9; a++) {
        const size_t n = a < 3 ? nq : nk;
        CUDA_CHECK(cudaMemcpy(h, dev[a], n * sizeof(float), cudaMemcpyDeviceToHost));
#pragma omp parallel for schedule(static)
        for (size_t e = 0; e < n; e++) host[a][e] = h[e];
        CUDA_CHECK(cudaFree(dev[a]));
    }
    CUDA_CHECK(cudaFree(o_err));
    CUDA_CHECK(cudaFree(rowwise));
    free(h);
}

static void make_reference(Problem *p)
{
    if (p->ref[DQ]) return;
    for (int g = 0; g < 3; g++) {
        const size_t n = (g == DQ ? rows_of(p) : key_rows_of(p)) * p->d;
        p->ref[g] = (double *)host_alloc(n * sizeof(double), "reference");
        p->arith[g] = (double *)host_alloc(n * sizeof(double), "reference");
        p->scale_of[g] = (double *)host_alloc(n * sizeof(double), "reference");
    }
    p->ref_factor = cpu_reference(p) ? 1.0 : 2.0;
    if (cpu_reference(p)) cpu_reference_all(p);
    else gpu_reference(p);
}
#line 2048 "chapters/10-attention-bwd.md"
typedef struct {
    const double *ref, *arith, *scale;
    double factor;
    DType dtype;
} GradientBound;

static double gradient_element_bound(const void *ctx, size_t i, double *scale)
{
    const GradientBound *b = (const GradientBound *)ctx;
    *scale = b->scale[i] + b->factor * b->arith[i];  // the terms' magnitude, and the inputs' errors where they cancel
    return error_bound(b->dtype, b->ref[i], b->factor * b->arith[i], 0, 0.0);
}

static const char *const GRADIENT_NAMES[3] = {"dQ", "dK", "dV"};

// n rows of d of one gradient against its reference.
static CheckResult check_gradient(const Problem *p, const char *version, const char *what, int grad, const double *got,
                                  const double *ref, const double *arith, const double *scale, size_t n_rows,
                                  double factor)
{
    GradientBound bound = {ref, arith, scale, factor, p->dtype};
    char label[96];
    snprintf(label, sizeof label, "%s (%s %s)", version, what, GRADIENT_NAMES[grad]);
    return check_elements(label, p->size, got, ref, n_rows * p->d, gradient_element_bound, &bound, p->d);
}

// The rows checked against the CPU where the GPU's reference is used, of `all` rows of
// one kind (queries, or the keys of one head from `first`): the first and last, `extra`
// (the first query that sees a key, or nothing), tile edges, then seeded.
enum { SAMPLE_ROWS = 256 };

static void sample_rows(size_t *rows, size_t first, size_t all, size_t extra, uint64_t seed)
{
    const size_t fixed[] = {0, all - 1, extra, extra + 1, 31, 32, 63, 64, 127, 128};
    size_t n = 0;
    for (size_t f = 0; f < sizeof fixed / sizeof fixed[0]; f++) rows[n++] = first + (fixed[f] < all ? fixed[f] : all - 1);
    uint64_t state = seed ^ (uint64_t)all;
    while (n < SAMPLE_ROWS) rows[n++] = first + rng_next(&state) % all;
}

// The CPU's values at the sampled rows (dQ's rows; dK's and dV's of one head), computed at
// the first check against the GPU's reference and kept for the other versions.
static void make_cpu_sample(Problem *p)
{
    if (p->sample) return;
    const size_t d = p->d, heads = (size_t)p->b * p->h, n = SAMPLE_ROWS * d;
    size_t *qrows = p->sample_rows = (size_t *)host_alloc(2 * SAMPLE_ROWS * sizeof(size_t), "sample"),
           *krows = qrows + SAMPLE_ROWS;
    double *v = p->sample = (double *)host_alloc(9 * n * sizeof(double), "sample");  // dQ's value, bound, scale; dK's; dV's
    // dQ: query rows anywhere (the first that sees a key, where the mask is causal)
    sample_rows(qrows, 0, rows_of(p), p->causal && p->sq > p->sk ? (size_t)(p->sq - p->sk) : 0, 0x5eed);
#pragma omp parallel for schedule(dynamic, 1)
    for (int s = 0; s < SAMPLE_ROWS; s++)
        reference_dq_row(v + s * d, v + n + s * d, v + 2 * n + s * d, p, qrows[s], query_terms(p, qrows[s]));
    // dK and dV: key rows of one head, with the terms of all its queries
    uint64_t state = 0xbac4 ^ heads;
    const size_t head = rng_next(&state) % heads;
    QueryTerms *terms = (QueryTerms *)host_alloc(p->sq * sizeof(QueryTerms), "terms");
#pragma omp parallel for schedule(dynamic, 4)
    for (int i = 0; i < p->sq; i++) terms[i] = query_terms(p, head * p->sq + i);
    sample_rows(krows, head * p->sk, p->sk, 0, 0x5eed + 1);
#pragma omp parallel for schedule(dynamic, 1)
    for (int s = 0; s < SAMPLE_ROWS; s++)
        reference_dkdv_row(v + 3 * n + s * d, v + 4 * n + s * d, v + 5 * n + s * d, v + 6 * n + s * d,
                           v + 7 * n + s * d, v + 8 * n + s * d, p, krows[s], terms);
    free(terms);
}

static CheckResult sample_against_cpu(Problem *p, const char *version, double *const got[3])
{
    make_cpu_sample(p);
    const size_t d = p->d, n = SAMPLE_ROWS * d;
    double *picked = (double *)host_alloc(n * sizeof(double), "sample");
    CheckResult r = {0, 0.0, 0.0};
    for (int g = 0; g < 3; g++) {
        const size_t *rows = p->sample_rows + (g == DQ ? 0 : SAMPLE_ROWS);
        for (size_t s = 0; s < SAMPLE_ROWS; s++)
            for (size_t c = 0; c < d; c++) picked[s * d + c] = got[g][rows[s] * d + c];
        const double *ref = p->sample + 3 * g * n;
        add_check(&r, check_gradient(p, version, "CPU sample", g, picked, ref, ref + n, ref + 2 * n, SAMPLE_ROWS, 1.0));
    }
    free(picked);
    return r;
}

static CheckResult backward_check(Problem *p, const char *version)
{
    make_reference(p);
    double *got[3];
    CheckResult r = {0, 0.0, 0.0};
    const char *what = cpu_reference(p) ? "CPU" : "GPU float32";
    for (int g = 0; g < 3; g++) {
        const size_t n_rows = g == DQ ? rows_of(p) : key_rows_of(p);
        got[g] = download(p->grad[g], n_rows * p->d, p->dtype);
        add_check(&r, check_gradient(p, version, what, g, got[g], p->ref[g], p->arith[g], p->scale_of[g], n_rows,
                                 p->ref_factor));
    }
    if (!cpu_reference(p)) add_check(&r, sample_against_cpu(p, version, got));
    for (int g = 0; g < 3; g++) free(got[g]);
    if (p->deterministic)  // dQ, dK and dV, one allocation
        report_bits(version, p->dtype, p->size, p->grad[DQ], (rows_of(p) + 2 * key_rows_of(p)) * p->d * dtype_bytes(p->dtype));
    return r;
}
#line 2164 "chapters/10-attention-bwd.md"
// A host-only problem for the CPU tests: sq queries, sk keys of d columns, with the given
// O and LSE exact (no error); its arrays drawn by fill_inputs (free with free_host_problem).
static Problem host_problem(int sq, int sk, int d, bool causal, uint64_t seed)
{
    Problem p;
    memset(&p, 0, sizeof p);
    p.dtype = BF16, p.b = 1, p.h = 1, p.sq = sq, p.sk = sk, p.d = d, p.causal = causal;
    p.scale = (float)(1.0 / sqrt((double)d));
    const size_t nq = (size_t)sq * d, nk = (size_t)sk * d;
    p.hq = (float *)host_alloc((3 * nq + 2 * nk + sq) * sizeof(float), "inputs");
    p.hk = p.hq + nq;
    p.hv = p.hk + nk;
    p.hdo = p.hv + nk;
    p.ho_err = p.hdo + nq;
    p.hlse_err = p.ho_err + nq;
    for (size_t e = 0; e < nq; e++) p.ho_err[e] = 0.0f;
    for (int i = 0; i < sq; i++) p.hlse_err[i] = 0.0f;
    fill_inputs(&p, seed);
    return p;
}

// F = sum_ic dO_ic O_ic of one head, in double, O = softmax(tau Q K^T) V exactly.
static double objective(const double *q, const double *k, const double *v, const float *g, int sq, int sk, int d,
                        double tau, bool causal)
{
    double f = 0.0;
    for (int i = 0; i < sq; i++) {
        const int end = keys_seen(i, sq, sk, causal);
        double m = -INFINITY, l = 0.0, x[8];  // sk <= 8 here
        for (int j = 0; j < end; j++) {
            x[j] = 0.0;
            for (int c = 0; c < d; c++) x[j] += q[i * d + c] * k[j * d + c];
            x[j] *= tau;
            m = fmax(m, x[j]);
        }
        for (int j = 0; j < end; j++) l += exp(x[j] - m);
        for (int j = 0; j < end; j++)
            for (int c = 0; c < d; c++) f += g[i * d + c] * exp(x[j] - m) / l * v[j * d + c];
    }
    return f;
}

// The largest |central difference - reference| over every element of q, k and v, relative
// to the largest element of that gradient.
static double finite_difference_error(bool causal)
{
    const int sq = 3, sk = 5, d = 64;
    Problem p = host_problem(sq, sk, d, causal, 11);
    const size_t n[3] = {(size_t)sq * d, (size_t)sk * d, (size_t)sk * d};
    double *x = (double *)host_alloc((n[0] + 2 * n[1]) * sizeof(double), "inputs");
    double *xs[3] = {x, x + n[0], x + n[0] + n[1]};
    const float *given[3] = {p.hq, p.hk, p.hv};
    for (int a = 0; a < 3; a++)
        for (size_t e = 0; e < n[a]; e++) xs[a][e] = given[a][e];
    double grad[3][5 * 64], arith[5 * 64], scale[5 * 64], extra[2][5 * 64], worst = 0.0;
    QueryTerms terms[3];
    for (int i = 0; i < sq; i++) terms[i] = query_terms(&p, i);
    for (int i = 0; i < sq; i++) reference_dq_row(grad[DQ] + i * d, arith, scale, &p, i, terms[i]);
    for (int j = 0; j < sk; j++)
        reference_dkdv_row(grad[DK] + j * d, arith, scale, grad[DV] + j * d, extra[0], extra[1], &p, j, terms);
    for (int a = 0; a < 3; a++) {
        double largest = 0.0, err = 0.0;
        for (size_t e = 0; e < n[a]; e++) largest = fmax(largest, fabs(grad[a][e]));
        for (size_t e = 0; e < n[a]; e++) {
            const double h = 1e-4, keep = xs[a][e];
            xs[a][e] = keep + h;
            const double up = objective(xs[0], xs[1], xs[2], p.hdo, sq, sk, d, p.scale, causal);
            xs[a][e] = keep - h;
            const double down = objective(xs[0], xs[1], xs[2], p.hdo, sq, sk, d, p.scale, causal);
            xs[a][e] = keep;
            err = fmax(err, fabs((up - down) / (2 * h) - grad[a][e]));
        }
        worst = fmax(worst, err / largest);
    }
    free(x);
    free(p.hq);
    return worst;
}

static int backward_self_test(void)
{
    int passed = 0, failed = 0, dims[5];
    bool causal;
    SELF_TEST(!parse_backward_size("1x2x31x65x128c", dims, &causal) && dims[0] == 1 && dims[1] == 2 && dims[2] == 31 &&
              dims[3] == 65 && dims[4] == 128 && causal);
    SELF_TEST(!parse_backward_size("1x32x16384x16384x64", dims, &causal) && dims[2] == 16384 && !causal);
    SELF_TEST(!parse_backward_size("1x1x1048576x1x64", dims, &causal) && dims[2] == 1 << 20);
    const char *bad[] = {"1x1x1x1x96", "1x1x1x1", "1x1x1x1x64c ", "1x1x1x1x64x", "1x1x0x1x64", "+1x1x1x1x64",
                         "1x1x1048577x1x64", "300x300x1x1x64", "1x1x1x1x0064c0", "1x1x1x1x64cc"};
    bool all_refused = true;
    for (size_t s = 0; s < sizeof bad / sizeof bad[0]; s++) all_refused = all_refused && parse_backward_size(bad[s], dims, &causal);
    SELF_TEST(all_refused);
    // the mask from both ends: key j is seen by query i exactly when i >= first_query_seeing(j)
    bool agree = true;
    for (int sq = 1; sq < 6; sq++)
        for (int sk = 1; sk < 6; sk++)
            for (int c = 0; c < 2; c++)
                for (int i = 0; i < sq; i++)
                    for (int j = 0; j < sk; j++)
                        agree = agree && (j < keys_seen(i, sq, sk, c)) == (i >= first_query_seeing(j, sq, sk, c));
    SELF_TEST(agree && first_query_seeing(4, 2, 5, true) == 1 && first_query_seeing(0, 3, 2, true) == 1);
    // one query, one key: p = 1, dS = 0: dQ = dK = 0 and dV = dO, exactly
    double dq[64], dk[64], dv[64], arith[64], scale[64], arith_v[64], scale_v[64];
    Problem one = host_problem(1, 1, 64, true, 5);
    QueryTerms t = query_terms(&one, 0);
    reference_dq_row(dq, arith, scale, &one, 0, t);
    reference_dkdv_row(dk, arith, scale, dv, arith_v, scale_v, &one, 0, &t);
    bool exact = true;
    for (int c = 0; c < 64; c++) exact = exact && dq[c] == 0.0 && dk[c] == 0.0 && dv[c] == one.hdo[c];
    SELF_TEST(exact);
    free(one.hq);
    // 3 queries, 2 keys, causal: query 0 sees no key; its dQ row is 0, and its dO reaches neither dK nor dV
    Problem empty = host_problem(3, 2, 64, true, 6);
    QueryTerms terms[3];
    for (int i = 0; i < 3; i++) terms[i] = query_terms(&empty, i);
    reference_dq_row(dq, arith, scale, &empty, 0, terms[0]);
    bool zero = terms[0].lse == -INFINITY && terms[0].dsum == 0.0;
    for (int c = 0; c < 64; c++) zero = zero && dq[c] == 0.0 && arith[c] == 0.0;
    double dk_before[64], dv_before[64];
    reference_dkdv_row(dk_before, arith, scale, dv_before, arith_v, scale_v, &empty, 1, terms);
    for (int c = 0; c < 64; c++) empty.hdo[c] = 100.0f;  // row 0 of dO
    terms[0] = query_terms(&empty, 0);
    reference_dkdv_row(dk, arith, scale, dv, arith_v, scale_v, &empty, 1, terms);
    for (int c = 0; c < 64; c++) zero = zero && dk[c] == dk_before[c] && dv[c] == dv_before[c];
    SELF_TEST(zero);
    free(empty.hq);
    // the reference is the derivative: central differences agree with it
    SELF_TEST(finite_difference_error(false) < 1e-6);
    SELF_TEST(finite_difference_error(true) < 1e-6);
    printf("attention_bwd: %d passed, %d failed\n", passed, failed);
    return failed;
}
#line 60 "chapters/10-attention-bwd.md"
// <<the-backward-chapter>>
#line 2305 "chapters/10-attention-bwd.md"
static const char *const DTYPES[] = {"bf16", "f16"};
static const char *const BENCH_SIZES[] = {
    "32x16x512x512x128",   "16x16x1024x1024x128",  "8x16x2048x2048x128",  "4x16x4096x4096x128",
    "2x16x8192x8192x128",  "1x16x16384x16384x128", "32x16x512x512x128c",  "16x16x1024x1024x128c",
    "8x16x2048x2048x128c", "4x16x4096x4096x128c",  "2x16x8192x8192x128c", "1x16x16384x16384x128c",
    "32x32x512x512x64",    "16x32x1024x1024x64",   "8x32x2048x2048x64",   "4x32x4096x4096x64",
    "2x32x8192x8192x64",   "1x32x16384x16384x64",  "32x32x512x512x64c",   "16x32x1024x1024x64c",
    "8x32x2048x2048x64c",  "4x32x4096x4096x64c",   "2x32x8192x8192x64c",  "1x32x16384x16384x64c"};
static const char *const CHECK_SIZES[] = {
    "1x1x1x1x64",         "1x1x1x1x128c",     "1x3x31x31x64c",     "3x1x31x31x128",   "2x3x65x65x64",
    "1x1x65x65x128c",     "3x3x65x31x64c",    "1x3x31x65x128c",    "1x1x2049x1x64c",  "1x2x1x2049x128c",
    "3x1x1000x1500x64c",  "1x1x1023x1023x128c", "1x3x1023x1023x64", "1x1x2049x2049x64c", "1x1x2049x2049x128",
    "2x8x4096x4096x64c",  "1x4x4097x3000x128", "8x16x2048x2048x128"};

static const Chapter ATTENTION_BWD = {
    "attention_bwd", "exact attention backward, dQ, dK, dV from Q, K, V, dO and the forward's O and LSE, bf16 and f16",
    VERSIONS, sizeof VERSIONS / sizeof VERSIONS[0],
    DTYPES, 2, BENCH_SIZES, sizeof BENCH_SIZES / sizeof BENCH_SIZES[0],
    CHECK_SIZES, sizeof CHECK_SIZES / sizeof CHECK_SIZES[0],
    "copy", "b0-naive", backward_bad_size,
    backward_create, backward_destroy, backward_poison, backward_check, backward_bytes, backward_flops,
    NULL, backward_self_test, attention_compute_ceiling,
};

int main(int argc, char **argv) { return harness_main(&ATTENTION_BWD, argc, argv); }
