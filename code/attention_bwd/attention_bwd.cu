#line 33 "chapters/10-attention-bwd.md"
// attention_bwd.cu: the gradients dQ, dK, dV of exact attention, from Q, K, V, the output's
// gradient dO and the forward's O and LSE: the form that writes P and dS to memory.
#include "../harness/harness.cuh"
#include "../tensorcore/mma.cuh"
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
#line 41 "chapters/10-attention-bwd.md"
// <<the-backward-problem>>
#line 79 "chapters/10-attention-bwd.md"
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
    // the reference, computed at the first check: each gradient's elements, the float
    // arithmetic's bound on each (before the final rounding), and the scale its relative
    // error is reported against; the bounds count ref_factor times (2 against the GPU's
    // float32 reference)
    double *ref[3], *arith[3], *scale_of[3];
    double ref_factor;
};

static size_t rows_of(const Problem *p) { return (size_t)p->b * p->h * p->sq; }
static size_t key_rows_of(const Problem *p) { return (size_t)p->b * p->h * p->sk; }
#line 42 "chapters/10-attention-bwd.md"
// <<which-keys-a-query-sees>>
#line 131 "chapters/09-attention.md"
// Query i sees keys 0 .. keys_seen - 1: all sk of them, or, causal, those with
// j <= i + sk - sq (the mask aligned to the bottom right), none when that is negative.
__host__ __device__ inline int keys_seen(int i, int sq, int sk, bool causal)
{
    if (!causal) return sk;
    int end = i + sk - sq + 1;
    return end < 0 ? 0 : end;
}
#line 43 "chapters/10-attention-bwd.md"
// <<which-queries-see-a-key>>
#line 113 "chapters/10-attention-bwd.md"
// Key j is seen by queries first_query_seeing .. sq - 1: all of them, or, causal, those
// with i >= j - sk + sq.
__host__ __device__ inline int first_query_seeing(int j, int sq, int sk, bool causal)
{
    int first = j - sk + sq;
    return causal && first > 0 ? first : 0;
}
#line 44 "chapters/10-attention-bwd.md"
// <<how-far-a-result-may-be-from-exact>>
#line 208 "chapters/09-attention.md"
// The parts of the error bound, in units of u = 2^-24 where they are relative, written once
// for the double reference on the CPU (R = double) and the float one on the GPU (R = float).
template <typename R> __host__ __device__ inline R magnitude(R x) { return x < 0 ? -x : x; }

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
#line 45 "chapters/10-attention-bwd.md"
// <<how-far-a-gradient-may-be-from-exact>>
#line 191 "chapters/10-attention-bwd.md"
// The errors of one pair (i, j): of the recomputed p (*p_err: its relative error Delta u
// from the score and the exponential, and the LSE's error e, which shifts the argument) and
// of dS = p (dP - D) (*ds_err), given dP, D, b = sum |dO_ic v_jc| and E^D, D's bound.
template <typename R>
__host__ __device__ inline void pair_errors(R *p_err, R *ds_err, R p, R a, R x, R lse, R e, R dp, R dsum, R b,
                                            R dsum_err, int d)
{
    const R u = (R)0x1p-24;
    *p_err = p * (score_budget(a, x, lse, d) * u + e);
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
#line 46 "chapters/10-attention-bwd.md"
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
#line 47 "chapters/10-attention-bwd.md"
// <<the-fp32-reference-on-the-gpu>>
#line 1340 "chapters/09-attention.md"
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
        const float p = expf(x - m), delta = score_budget(mag, x, m, D) * u;
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
        arith_lse[row] = end ? 1.01f * lse_bound(f, gamma, logf(l), lse, m) : 0.0f;
    }
}
#line 48 "chapters/10-attention-bwd.md"
// <<backward-kernels>>
#line 234 "chapters/10-attention-bwd.md"
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
#line 49 "chapters/10-attention-bwd.md"
// <<the-backward-reference-on-the-gpu>>
#line 505 "chapters/10-attention-bwd.md"
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
        const float sigma = p_rounding(fabsf(ds), p_rel, p_floor);
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
        const float rho = p_rounding(p, p_rel, p_floor), sigma = p_rounding(fabsf(ds), p_rel, p_floor);
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
#line 50 "chapters/10-attention-bwd.md"
// <<backward-launchers>>
#line 663 "chapters/10-attention-bwd.md"
static double scores_bytes(const Problem *p) { return 4.0 * p->b * p->h * p->sq * p->sk; }

// b0 needs P (then dS) in the GPU's memory.
static const char *naive_unsupported(const Problem *p)
{
    static char why[128];
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
#line 51 "chapters/10-attention-bwd.md"
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
#line 52 "chapters/10-attention-bwd.md"
// <<the-attention-ceilings>>
#line 1578 "chapters/09-attention.md"
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
#line 53 "chapters/10-attention-bwd.md"
// <<the-backward-version-table>>
#line 720 "chapters/10-attention-bwd.md"
#define BACKWARD_VERSIONS(T, DT)                                                                               \
    {"b0-naive", "ours", DT, "P, then dS, to global memory in float; D, dV, dS, dQ, dK as tiled SIMT kernels",   \
     launch_naive<T>, naive_unsupported}

static const Version VERSIONS[] = {
    BACKWARD_VERSIONS(__nv_bfloat16, "bf16"),
    BACKWARD_VERSIONS(__half, "f16"),
};
#line 54 "chapters/10-attention-bwd.md"
// <<create-and-check-a-backward-problem>>
#line 362 "chapters/10-attention-bwd.md"
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
    double p, ds, p_err, ds_err;
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
    r.ds = r.p * (dp - t.dsum);
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
        double sigma = p_rounding(fabs(r.ds), rel, floor_);
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
        double rho = p_rounding(r.p, rel, floor_), sigma = p_rounding(fabs(r.ds), rel, floor_);
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
#line 738 "chapters/10-attention-bwd.md"
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
#line 822 "chapters/10-attention-bwd.md"
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
    p->grad[DQ] = device_alloc(nq * e, "dQ");
    p->grad[DK] = device_alloc(nk * e, "dK");
    p->grad[DV] = device_alloc(nk * e, "dV");
    upload(p->q, p->hq, nq, p->dtype);
    upload(p->k, p->hk, nk, p->dtype);
    upload(p->v, p->hv, nk, p->dtype);
    upload(p->dout, p->hdo, nq, p->dtype);
    forward_on_gpu(p);
    return p;
}

static void backward_destroy(Problem *p)
{
    void *arrays[] = {p->q, p->k, p->v, p->o, p->dout, p->lse, p->grad[DQ], p->grad[DK], p->grad[DV], p->scores,
                      p->rowsum};
    for (size_t a = 0; a < sizeof arrays / sizeof arrays[0]; a++)
        if (arrays[a]) CUDA_CHECK(cudaFree(arrays[a]));
    for (int g = 0; g < 3; g++) {
        free(p->ref[g]);
        free(p->arith[g]);
        free(p->scale_of[g]);
    }
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
#line 921 "chapters/10-attention-bwd.md"
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
#line 1011 "chapters/10-attention-bwd.md"
typedef struct {
    const double *ref, *arith, *scale;
    double factor;
    DType dtype;
} GradientBound;

static double gradient_element_bound(const void *ctx, size_t i, double *scale)
{
    const GradientBound *b = (const GradientBound *)ctx;
    *scale = b->scale[i];
    return error_bound(b->dtype, b->ref[i], b->factor * b->arith[i], 0, 0.0);
}

// Adds one comparison's outcome to the total of a check.
static void add_to(CheckResult *total, CheckResult part)
{
    total->mismatches += part.mismatches;
    if (part.max_abs_err > total->max_abs_err) total->max_abs_err = part.max_abs_err;
    if (part.max_rel_err > total->max_rel_err) total->max_rel_err = part.max_rel_err;
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

static CheckResult sample_against_cpu(const Problem *p, const char *version, double *const got[3])
{
    const size_t d = p->d, heads = (size_t)p->b * p->h;
    size_t picked[SAMPLE_ROWS];
    double *buf = (double *)host_alloc(4 * SAMPLE_ROWS * d * 2 * sizeof(double), "sample");
    // dQ: query rows anywhere (the first that sees a key, where the mask is causal)
    double *so = buf, *sr = so + SAMPLE_ROWS * d, *sa = sr + SAMPLE_ROWS * d, *ss = sa + SAMPLE_ROWS * d;
    sample_rows(picked, 0, rows_of(p), p->causal && p->sq > p->sk ? (size_t)(p->sq - p->sk) : 0, 0x5eed);
#pragma omp parallel for schedule(dynamic, 1)
    for (int s = 0; s < SAMPLE_ROWS; s++) {
        for (size_t c = 0; c < d; c++) so[s * d + c] = got[DQ][picked[s] * d + c];
        reference_dq_row(sr + s * d, sa + s * d, ss + s * d, p, picked[s], query_terms(p, picked[s]));
    }
    CheckResult r = check_gradient(p, version, "CPU sample", DQ, so, sr, sa, ss, SAMPLE_ROWS, 1.0);
    // dK and dV: key rows of one head, with the terms of all its queries
    uint64_t state = 0xbac4 ^ heads;
    const size_t head = rng_next(&state) % heads;
    QueryTerms *terms = (QueryTerms *)host_alloc(p->sq * sizeof(QueryTerms), "terms");
#pragma omp parallel for schedule(dynamic, 4)
    for (int i = 0; i < p->sq; i++) terms[i] = query_terms(p, head * p->sq + i);
    sample_rows(picked, head * p->sk, p->sk, 0, 0x5eed + 1);
    double *ko = buf, *kr = ko + SAMPLE_ROWS * d, *ka = kr + SAMPLE_ROWS * d, *ks = ka + SAMPLE_ROWS * d;
    double *vo = ks + SAMPLE_ROWS * d, *vr = vo + SAMPLE_ROWS * d, *va = vr + SAMPLE_ROWS * d, *vs = va + SAMPLE_ROWS * d;
#pragma omp parallel for schedule(dynamic, 1)
    for (int s = 0; s < SAMPLE_ROWS; s++) {
        for (size_t c = 0; c < d; c++) {
            ko[s * d + c] = got[DK][picked[s] * d + c];
            vo[s * d + c] = got[DV][picked[s] * d + c];
        }
        reference_dkdv_row(kr + s * d, ka + s * d, ks + s * d, vr + s * d, va + s * d, vs + s * d, p, picked[s], terms);
    }
    add_to(&r, check_gradient(p, version, "CPU sample", DK, ko, kr, ka, ks, SAMPLE_ROWS, 1.0));
    add_to(&r, check_gradient(p, version, "CPU sample", DV, vo, vr, va, vs, SAMPLE_ROWS, 1.0));
    free(terms);
    free(buf);
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
        add_to(&r, check_gradient(p, version, what, g, got[g], p->ref[g], p->arith[g], p->scale_of[g], n_rows,
                                 p->ref_factor));
    }
    if (!cpu_reference(p)) add_to(&r, sample_against_cpu(p, version, got));
    for (int g = 0; g < 3; g++) free(got[g]);
    return r;
}
#line 1126 "chapters/10-attention-bwd.md"
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
#line 55 "chapters/10-attention-bwd.md"
// <<the-backward-chapter>>
#line 1267 "chapters/10-attention-bwd.md"
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
