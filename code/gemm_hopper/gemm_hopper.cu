#line 1246 "chapters/08-gemm-hopper.md"
// gemm_hopper.cu: C = alpha A B + beta C in bfloat16 and float16 with Hopper's TMA,
// wgmma and warp specialization, against cuBLAS and the previous chapter's best.
#include "../harness/harness.cuh"
#include "../tensorcore/mma.cuh"
#include "../tensorcore/hopper.cuh"
#include <cublas_v2.h>
#include <cublasLt.h>
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
#line 1257 "chapters/08-gemm-hopper.md"
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
#line 1258 "chapters/08-gemm-hopper.md"
// <<the-gemm-problem>>
#line 64 "chapters/07-gemm.md"
struct Problem {
    DType dtype;          // F32: SIMT, B (k, n); F16 and BF16: tensor cores, B given as (n, k)
    char size[64];
    int m, n, k;
    float alpha, beta;
    void *a, *b, *c, *c0; // on the device, in the element type; c0: C's initial value
    float *ha, *hb, *hc0; // the same on the host, as the device sees them (rounded)
    cublasHandle_t blas;  // the peer, and the reference at large sizes
    bool b_transposed;    // B is stored (n, k)
    // the second peer, cuBLASLt, set up at its first launch
    cublasLtHandle_t lt;
    cublasLtMatmulDesc_t lt_op;
    cublasLtMatrixLayout_t lt_a, lt_b, lt_c;
    cublasLtMatmulAlgo_t lt_algo;
    void *lt_work;
    double *ref, *scale;  // each element's reference and scale, computed at the first check
};

static bool half_types(const Problem *p) { return p->dtype != F32; }
#line 1259 "chapters/08-gemm-hopper.md"
// <<the-gemm-peers>>
#line 1057 "chapters/07-gemm.md"
static double gemm_macs_of(const Problem *p) { return (double)p->m * p->n * p->k; }

static dim3 grid_of(const Problem *p, int bm, int bn)
{
    return dim3((unsigned)((p->n + bn - 1) / bn), (unsigned)((p->m + bm - 1) / bm));
}

// cuBLAS, row-major: C^T (n x m, column-major) = op(B) op(A) in cuBLAS's terms.
static void launch_cublas(Problem *p)
{
    if (p->dtype == F32) {
        CUBLAS_CHECK(cublasSgemm(p->blas, CUBLAS_OP_N, CUBLAS_OP_N, p->n, p->m, p->k, &p->alpha, (const float *)p->b,
                                 p->n, (const float *)p->a, p->k, &p->beta, (float *)p->c, p->n));
    } else {
        cudaDataType t = p->dtype == BF16 ? CUDA_R_16BF : CUDA_R_16F;
        CUBLAS_CHECK(cublasGemmEx(p->blas, CUBLAS_OP_T, CUBLAS_OP_N, p->n, p->m, p->k, &p->alpha, p->b, t, p->k,
                                  p->a, t, p->k, &p->beta, p->c, t, p->n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
}

// cuBLASLt, the same product, with the algorithm chosen at the first launch: the fastest
// of the (up to) eight its heuristic proposes.
static const size_t LT_WORKSPACE = 32u << 20;

typedef struct {
    Problem *p;
    const cublasLtMatmulAlgo_t *algo;
} LtTrial;

// C = alpha A B + beta C0 with one of cuBLASLt's candidate algorithms.
static void cublaslt_trial(void *ctx)
{
    LtTrial *t = (LtTrial *)ctx;
    Problem *p = t->p;
    CUBLAS_CHECK(cublasLtMatmul(p->lt, p->lt_op, &p->alpha, p->b, p->lt_a, p->a, p->lt_b, &p->beta, p->c0, p->lt_c, p->c,
                                p->lt_c, t->algo, p->lt_work, LT_WORKSPACE, 0));
}

static void cublaslt_setup(Problem *p)
{
    cudaDataType t = p->dtype == F32 ? CUDA_R_32F : p->dtype == BF16 ? CUDA_R_16BF : CUDA_R_16F;
    cublasOperation_t ta = half_types(p) ? CUBLAS_OP_T : CUBLAS_OP_N, tb = CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtCreate(&p->lt));
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->lt_op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->lt_op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->lt_op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    // cuBLAS's A is our B: (n, k) row-major, that is k x n column-major, in the half
    // types; (k, n) row-major, n x k, in float32. Its B is our A, k x m; its C ours, n x m.
    if (half_types(p)) CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->lt_a, t, p->k, p->n, p->k));
    else CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->lt_a, t, p->n, p->k, p->n));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->lt_b, t, p->k, p->m, p->k));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->lt_c, t, p->n, p->m, p->n));
    p->lt_work = device_alloc(LT_WORKSPACE, "cuBLASLt workspace");

    cublasLtMatmulPreference_t pref;
    size_t ws = LT_WORKSPACE;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    cublasLtMatmulHeuristicResult_t cand[8];
    int found = 0;
    CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(p->lt, p->lt_op, p->lt_a, p->lt_b, p->lt_c, p->lt_c, pref, 8, cand, &found));
    CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
    if (found < 1) {
        fprintf(stderr, "gemm: cuBLASLt proposes no algorithm for %s\n", p->size);
        exit(1);
    }
    // each candidate timed as the harness times a version (one run untimed, then three,
    // with the L2 flushed), each run computing C from C0
    const TimingPlan trial_plan = {1, 3, 3, 0.0, 1};
    double best = INFINITY;
    for (int i = 0; i < found; i++) {
        LtTrial trial = {p, &cand[i].algo};
        double us = time_launches(cublaslt_trial, &trial, trial_plan).median_us;
        if (us < best) {
            best = us;
            p->lt_algo = cand[i].algo;
        }
    }
}

static void launch_cublaslt(Problem *p)
{
    if (!p->lt) {
        cublaslt_setup(p);
        CUDA_CHECK(cudaMemcpy(p->c, p->c0, (size_t)p->m * p->n * dtype_bytes(p->dtype), cudaMemcpyDeviceToDevice));
    }
    CUBLAS_CHECK(cublasLtMatmul(p->lt, p->lt_op, &p->alpha, p->b, p->lt_a, p->a, p->lt_b, &p->beta, p->c, p->lt_c, p->c,
                                p->lt_c, &p->lt_algo, p->lt_work, LT_WORKSPACE, 0));
}
#line 1260 "chapters/08-gemm-hopper.md"
// <<tensor-core-kernels>>
#line 587 "chapters/07-gemm.md"
// Element (r, c) of a tile of ROWS x BK elements of T in shared memory, swizzled or not.
template <typename T, int BK, bool SWIZZLE> __device__ inline int tile_at(int r, int c)
{
    const int per_chunk = 16 / sizeof(T);
    int chunk = c / per_chunk;
    if (SWIZZLE) chunk = swizzle_chunk<BK * sizeof(T)>(r, chunk);
    return r * BK + chunk * per_chunk + c % per_chunk;
}

// Copies rows [row0, row0 + ROWS) x columns [kt, kt + BK) of an (rows x k) row-major
// matrix into a tile, 16 bytes per copy; what lies past its edges as zeros. ASYNC: by
// cp.async.
// ANY_K: K need not be a multiple of 8, so rows do not start on 16-byte boundaries: the
// chunks are read an element at a time, those past K as zeros (not with ASYNC).
template <typename T, int ROWS, int BK, bool SWIZZLE, bool ASYNC, bool ANY_K = false>
__device__ inline void load_tile(T *tile, const T *g, int rows, int k, int row0, int kt)
{
    static_assert(!(ASYNC && ANY_K), "cp.async copies 16-byte chunks");
    const int per_chunk = 16 / sizeof(T), chunks = BK / per_chunk;
    for (int e = threadIdx.x; e < ROWS * chunks; e += blockDim.x) {
        int r = e / chunks, c = e % chunks * per_chunk;
        bool in = row0 + r < rows && kt + c < k;  // a chunk is wholly in or out: K is a multiple of 8
        const T *src = in ? g + (size_t)(row0 + r) * k + kt + c : g;
        T *dst = tile + tile_at<T, BK, SWIZZLE>(r, c);
        if (ASYNC) {
            cp_async_16(dst, src, in ? 16 : 0);
        } else if (ANY_K) {
            int4 v;
            T *vt = reinterpret_cast<T *>(&v);
            for (int q = 0; q < per_chunk; q++) vt[q] = in && kt + c + q < k ? src[q] : from_float<T>(0.0f);
            *reinterpret_cast<int4 *>(dst) = v;
        } else {
            int4 v = in ? *reinterpret_cast<const int4 *>(src) : make_int4(0, 0, 0, 0);
            *reinterpret_cast<int4 *>(dst) = v;
        }
    }
}

// Which tile of C this block computes. Blocks start roughly in the order of their
// number; with GROUP_M > 1 they walk down GROUP_M tiles of a column of C, then the next
// column, so that the blocks resident together share rows of A and columns of B in the L2.
template <int GROUP_M> __device__ inline void block_tile(int *tm, int *tn)
{
    *tm = blockIdx.y;
    *tn = blockIdx.x;
    if (GROUP_M > 1) {
        int id = blockIdx.y * gridDim.x + blockIdx.x, per_group = GROUP_M * gridDim.x;
        int first = id / per_group * GROUP_M, rows = min((int)gridDim.y - first, GROUP_M), in = id % per_group;
        *tm = first + in % rows;
        *tn = in / rows;
    }
}

// Whether the 16-byte piece at (row, col) of C is read and written whole: inside the
// matrix, and rows of C starting on 16-byte boundaries (n a multiple of the piece).
template <typename T> __device__ inline bool whole_piece(int m, int n, int row, int col)
{
    constexpr int per = 16 / sizeof(T);
    return row < m && col + per <= n && n % per == 0;
}

// The block's tile of C, BM x BN, copied by cp.async into shared memory at cs (t6: issued
// before the main loop, so that the epilogue finds it there). Only whole pieces.
template <typename T, int BM, int BN, int THREADS>
__device__ inline void copy_c_early(T *cs, const T *C, int m, int n, int m0, int n0)
{
    constexpr int per = 16 / sizeof(T), PIECES = BM * BN / per;
#pragma unroll
    for (int q = 0; q < (PIECES + THREADS - 1) / THREADS; q++) {
        int e = threadIdx.x + q * THREADS, r = e / (BN / per), c = e % (BN / per) * per;
        if ((PIECES % THREADS == 0 || e < PIECES) && whole_piece<T>(m, n, m0 + r, n0 + c)) cp_async_16(cs + r * BN + c, C + (size_t)(m0 + r) * n + n0 + c, 16);
    }
    cp_async_commit();
}

// C = alpha acc + beta C through shared memory. Each pass stages alpha acc of
// PASS_ROWS rows of C (whole rows of warps) in float over the (now idle) ring, then
// reads and writes those rows of C in 16-byte pieces. The old values of C come from
// cs, where copy_c_early put them, or, with cs NULL, from loads issued before the
// staging, so that their latency overlaps it.
template <typename T, int BM, int BN, int WARPS_M, int WARPS_N, int PASS_ROWS, bool EARLY>
__device__ inline void store_c_staged(const float (&acc)[BM / WARPS_M / 16][BN / WARPS_N / 8][4], int m, int n,
                                      float alpha, float beta, T *C, int m0, int n0, const T *cs)
{
    constexpr int WM = BM / WARPS_M, WN = BN / WARPS_N, MT = WM / 16, NT = WN / 8;
    constexpr int LD = BN + 4;  // floats per staged row
    constexpr int per = 16 / sizeof(T), THREADS = WARPS_M * WARPS_N * 32;  // elements per 16-byte piece
    constexpr int ALL = PASS_ROWS * BN / per, PIECES = (ALL + THREADS - 1) / THREADS;  // per pass, per thread
    static_assert(PASS_ROWS % WM == 0 && BM % PASS_ROWS == 0, "passes of whole rows of warps");
    extern __shared__ __align__(128) unsigned char smem[];
    float *Cs = reinterpret_cast<float *>(smem);
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, t = lane % 4;
    const int wr = warp / WARPS_N * WM, wc = warp % WARPS_N * WN;
    cp_async_wait<0>();
    for (int p0 = 0; p0 < BM; p0 += PASS_ROWS) {
        int4 old[EARLY ? 1 : PIECES];
        if (!EARLY) {
#pragma unroll
            for (int q = 0; q < PIECES; q++) {
                int e = threadIdx.x + q * THREADS, row = m0 + p0 + e / (BN / per), col = n0 + e % (BN / per) * per;
                if ((ALL % THREADS == 0 || e < ALL) && whole_piece<T>(m, n, row, col))
                    old[q] = *reinterpret_cast<const int4 *>(C + (size_t)row * n + col);
            }
        }
        __syncthreads();  // the ring, or the last pass's rows, no longer read; the early copy of C there
        if (wr >= p0 && wr < p0 + PASS_ROWS) {
#pragma unroll
            for (int i = 0; i < MT; i++)
#pragma unroll
                for (int j = 0; j < NT; j++)
#pragma unroll
                    for (int h = 0; h < 4; h += 2) {
                        int r = wr - p0 + i * 16 + g + h / 2 * 8, c = wc + j * 8 + 2 * t;
                        *reinterpret_cast<float2 *>(&Cs[r * LD + c]) =
                            make_float2(alpha * acc[i][j][h], alpha * acc[i][j][h + 1]);
                    }
        }
        __syncthreads();
#pragma unroll
        for (int q = 0; q < PIECES; q++) {
            int e = threadIdx.x + q * THREADS, r = e / (BN / per), c = e % (BN / per) * per;
            int row = m0 + p0 + r, col = n0 + c;
            if ((ALL % THREADS != 0 && e >= ALL) || row >= m) continue;
            T *o = C + (size_t)row * n + col;
            if (whole_piece<T>(m, n, row, col)) {
                int4 v, w = EARLY ? *reinterpret_cast<const int4 *>(cs + (p0 + r) * BN + c) : old[EARLY ? 0 : q];
                const T *ot = reinterpret_cast<const T *>(&w);
                T *vt = reinterpret_cast<T *>(&v);
#pragma unroll
                for (int x = 0; x < per; x++) vt[x] = from_float<T>(Cs[r * LD + c + x] + beta * to_float(ot[x]));
                *reinterpret_cast<int4 *>(o) = v;
            } else {
                for (int x = 0; x < per && col + x < n; x++)
                    o[x] = from_float<T>(Cs[r * LD + c + x] + beta * to_float(o[x]));
            }
        }
    }
}

// t0-t5: BM x BN of C per block, WARPS_M x WARPS_N warps, K in tiles of BK. The
// epilogue staged through shared memory (t4 on), the tiles in groups of GROUP_M rows (t5).
template <typename T, int BM, int BN, int BK, int WARPS_M, int WARPS_N, int LOAD, bool SWIZZLE, int STAGES,
          bool STAGED_EPILOGUE, int GROUP_M, bool ANY_K = false>
__global__ void __launch_bounds__(WARPS_M * WARPS_N * 32) gemm_tc(int m, int n, int k, float alpha, const T *A,
                                                                  const T *B, float beta, T *C)
{
    constexpr int WM = BM / WARPS_M, WN = BN / WARPS_N, MT = WM / 16, NT = WN / 8;
    static_assert(WM % 16 == 0 && NT % 2 == 0, "whole m16 tiles; ldmatrix_x4 loads B for two n-tiles at once");
    extern __shared__ __align__(128) unsigned char smem[];
    T *As = reinterpret_cast<T *>(smem);               // STAGES tiles of BM x BK
    T *Bs = As + STAGES * BM * BK;                     // STAGES tiles of BN x BK
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, t = lane % 4;
    const int wr = warp / WARPS_N * WM, wc = warp % WARPS_N * WN;  // the warp's tile within the block's
    int tm, tn;  // which tile of C
    block_tile<GROUP_M>(&tm, &tn);
    const int m0 = tm * BM, n0 = tn * BN, ktiles = (k + BK - 1) / BK;
    float acc[MT][NT][4] = {};

    auto compute = [&](const T *as, const T *bs) {
#pragma unroll
        for (int kk = 0; kk < BK; kk += 16) {
            uint32_t a[MT][4], b[NT][2];
#pragma unroll
            for (int i = 0; i < MT; i++) {
                int r = wr + i * 16;
                if (LOAD == 0) {
                    a[i][0] = *reinterpret_cast<const uint32_t *>(as + tile_at<T, BK, SWIZZLE>(r + g, kk + 2 * t));
                    a[i][1] = *reinterpret_cast<const uint32_t *>(as + tile_at<T, BK, SWIZZLE>(r + g + 8, kk + 2 * t));
                    a[i][2] = *reinterpret_cast<const uint32_t *>(as + tile_at<T, BK, SWIZZLE>(r + g, kk + 8 + 2 * t));
                    a[i][3] = *reinterpret_cast<const uint32_t *>(as + tile_at<T, BK, SWIZZLE>(r + g + 8, kk + 8 + 2 * t));
                } else {
                    ldmatrix_x4(a[i], as + tile_at<T, BK, SWIZZLE>(r + ldsm_a_row(lane), kk + ldsm_a_col(lane)));
                }
            }
#pragma unroll
            for (int j = 0; j < NT; j += 2) {
                int c = wc + j * 8;
                if (LOAD == 0) {
#pragma unroll
                    for (int h = 0; h < 2; h++) {
                        b[j + h][0] = *reinterpret_cast<const uint32_t *>(bs + tile_at<T, BK, SWIZZLE>(c + h * 8 + g, kk + 2 * t));
                        b[j + h][1] = *reinterpret_cast<const uint32_t *>(bs + tile_at<T, BK, SWIZZLE>(c + h * 8 + g, kk + 8 + 2 * t));
                    }
                } else {
                    uint32_t r[4];  // matrices: (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15)
                    ldmatrix_x4(r, bs + tile_at<T, BK, SWIZZLE>(c + ldsm_b_row(lane), kk + ldsm_b_col(lane)));
                    b[j][0] = r[0];
                    b[j][1] = r[1];
                    b[j + 1][0] = r[2];
                    b[j + 1][1] = r[3];
                }
            }
#pragma unroll
            for (int i = 0; i < MT; i++)
#pragma unroll
                for (int j = 0; j < NT; j++) mma_16816<T>(acc[i][j], a[i], b[j]);
        }
    };

    if (STAGES == 1) {
        for (int kt = 0; kt < ktiles; kt++) {
            load_tile<T, BM, BK, SWIZZLE, false, ANY_K>(As, A, m, k, m0, kt * BK);
            load_tile<T, BN, BK, SWIZZLE, false, ANY_K>(Bs, B, n, k, n0, kt * BK);
            __syncthreads();
            compute(As, Bs);
            __syncthreads();
        }
    } else {
        // The ring: tile kt lives in stage kt % STAGES; STAGES - 1 tiles are in flight.
#pragma unroll
        for (int s = 0; s < STAGES - 1; s++) {
            if (s < ktiles) {
                load_tile<T, BM, BK, SWIZZLE, true>(As + s * BM * BK, A, m, k, m0, s * BK);
                load_tile<T, BN, BK, SWIZZLE, true>(Bs + s * BN * BK, B, n, k, n0, s * BK);
            }
            cp_async_commit();
        }
        for (int kt = 0; kt < ktiles; kt++) {
            cp_async_wait<STAGES - 2>();  // tile kt has arrived (for this thread's copies)
            __syncthreads();              // ... and everyone's; and stage (kt - 1) % STAGES is free
            int next = kt + STAGES - 1, s = next % STAGES;
            if (next < ktiles) {
                load_tile<T, BM, BK, SWIZZLE, true>(As + s * BM * BK, A, m, k, m0, next * BK);
                load_tile<T, BN, BK, SWIZZLE, true>(Bs + s * BN * BK, B, n, k, n0, next * BK);
            }
            cp_async_commit();            // an empty group past the end keeps the count
            compute(As + kt % STAGES * BM * BK, Bs + kt % STAGES * BN * BK);
        }
    }

    if constexpr (STAGED_EPILOGUE) {
        store_c_staged<T, BM, BN, WARPS_M, WARPS_N, BM / WARPS_M, false>(acc, m, n, alpha, beta, C, m0, n0, NULL);
    } else {
        // C = alpha acc + beta C, guarded at the edges, an element at a time.
#pragma unroll
        for (int i = 0; i < MT; i++)
#pragma unroll
            for (int j = 0; j < NT; j++)
#pragma unroll
                for (int h = 0; h < 4; h++) {
                    int row = m0 + wr + i * 16 + g + h / 2 * 8, col = n0 + wc + j * 8 + 2 * t + h % 2;
                    if (row < m && col < n) {
                        T *o = C + (size_t)row * n + col;
                        *o = from_float<T>(alpha * acc[i][j][h] + beta * to_float(*o));
                    }
                }
    }
}
#line 902 "chapters/07-gemm.md"
// t6: BM x BN of C per block, WARPS_M x WARPS_N warps of 64 x 64, K in tiles of 128-byte
// rows (the 8-chunk swizzle). The fragments of step kk + 16 are loaded from shared
// memory while the mma of step kk run, across the tiles' boundaries too; each thread's
// copies are found by adding to two pointers computed once.
template <typename T, int BM, int BN, int WARPS_M, int WARPS_N, int STAGES, int GROUP_M>
__global__ void __launch_bounds__(WARPS_M * WARPS_N * 32, 1) gemm_tc_pipelined(int m, int n, int k, float alpha,
                                                                               const T *A, const T *B, float beta, T *C)
{
    constexpr int BK = 128 / sizeof(T), THREADS = WARPS_M * WARPS_N * 32, WM = BM / WARPS_M, WN = BN / WARPS_N;
    constexpr int MT = WM / 16, NT = WN / 8, KSTEPS = BK / 16;
    constexpr int PER = 16 / sizeof(T), CHUNKS = BK / PER;  // elements per copy, copies per row
    constexpr int ROW_STEP = THREADS / CHUNKS;              // rows between one thread's copies
    // copies per thread, the last round partial where ROW_STEP does not divide the rows
    constexpr int A_COPIES = (BM + ROW_STEP - 1) / ROW_STEP, B_COPIES = (BN + ROW_STEP - 1) / ROW_STEP;
    static_assert(ROW_STEP % 8 == 0, "a thread's rows 8 apart: the same swizzle for all");
    static_assert(STAGES >= 3, "the stage written while tile kt is read is neither kt's nor kt + 1's");
    static_assert(NT % 2 == 0 && WM % 16 == 0, "whole m16 tiles; ldmatrix_x4 loads B for two n-tiles at once");
    // The tile of C is copied at the start, into shared memory past the ring, where that
    // does not cost a block per SM (one fits anyway, or two still do). The epilogue then
    // stages the whole tile at once where it fits in the ring, and so it does where the
    // old values of C come in registers, if they take at most 32 a thread; a row of
    // warps at a time otherwise.
    constexpr int RING = STAGES * (BM + BN) * BK * (int)sizeof(T), HALF_SM = 113 * 1024;
    constexpr bool C_EARLY = RING > HALF_SM || RING + BM * BN * (int)sizeof(T) <= HALF_SM;
    constexpr bool ONE_PASS = BM * (BN + 4) * (int)sizeof(float) <= RING && (C_EARLY || BM * BN / PER / THREADS <= 8);
    constexpr int PASS_ROWS = ONE_PASS ? BM : WM;
    extern __shared__ __align__(128) unsigned char smem[];
    T *As = reinterpret_cast<T *>(smem);  // STAGES tiles of BM x BK
    T *Bs = As + STAGES * BM * BK;        // STAGES tiles of BN x BK
    T *Ce = Bs + STAGES * BN * BK;        // the early copy of the tile of C (C_EARLY)
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int wr = warp / WARPS_N * WM, wc = warp % WARPS_N * WN;
    int tm, tn;
    block_tile<GROUP_M>(&tm, &tn);
    const int m0 = tm * BM, n0 = tn * BN, ktiles = (k + BK - 1) / BK;

    // This thread copies chunk cc of rows row, row + ROW_STEP, ... of each tile. The
    // swizzle depends on the row only through row % 8, the same for all of them.
    const int row = threadIdx.x / CHUNKS, cc = threadIdx.x % CHUNKS;
    const int dst = tile_at<T, BK, true>(row, cc * PER);
    const int rows_k = ROW_STEP * k;  // elements from one of the thread's rows to the next
    uint32_t a_addr[KSTEPS], b_addr[KSTEPS];  // the lane's ldmatrix addresses in stage 0, per step
#pragma unroll
    for (int ks = 0; ks < KSTEPS; ks++) {
        a_addr[ks] = smem_u32(As + tile_at<T, BK, true>(wr + ldsm_a_row(lane), ks * 16 + ldsm_a_col(lane)));
        b_addr[ks] = smem_u32(Bs + tile_at<T, BK, true>(wc + ldsm_b_row(lane), ks * 16 + ldsm_b_col(lane)));
    }
    float acc[MT][NT][4] = {};

    // The main loop, compiled twice: for blocks whose tiles lie wholly inside A and B
    // (EDGE false), a copy is one multiply-add for its address and the cp.async; at the
    // edges, each copy clamps its row into the matrix. Rows past M or N then hold
    // copies of the last row: they only reach rows and columns of C that are not
    // stored. Past K, the copies are zeros (src_bytes 0), which is needed: there, both
    // operands must be zero.
    auto mainloop = [&](auto edge) {
        constexpr bool EDGE = decltype(edge)::value;
        // The copies of tile kt into stage s: A's, then B's.
        auto load = [&](int s, int kt) {
            const int col = kt * BK + cc * PER, bytes = col < k ? 16 : 0;  // a chunk is wholly in or out of K
            const int c0 = bytes ? col : cc * PER;                          // an address inside the matrix
            T *as = As + s * BM * BK + dst, *bs = Bs + s * BN * BK + dst;
#pragma unroll
            for (int c = 0; c < A_COPIES + B_COPIES; c++) {
                const bool is_a = c < A_COPIES;
                const int i = is_a ? c : c - A_COPIES;
                const T *g = is_a ? A : B;
                const int r0 = (is_a ? m0 : n0) + row;
                const int rows = is_a ? BM : BN;
                if (rows % ROW_STEP != 0 && i == rows / ROW_STEP && row + i * ROW_STEP >= rows) continue;
                const T *src = EDGE ? g + (size_t)min(r0 + i * ROW_STEP, (is_a ? m : n) - 1) * k + c0
                                    : g + (size_t)r0 * k + c0 + i * rows_k;
                cp_async_16((is_a ? as : bs) + i * ROW_STEP * BK, src, bytes);
            }
        };
        // The fragments of step ks of the tile in stage s. The lane's addresses for each
        // step are computed once: the warp's m16 and n16 tiles are 16 rows apart, which
        // the swizzle (row % 8) does not see, so they are constant offsets from them.
        auto load_fragments = [&](uint32_t(&a)[MT][4], uint32_t(&b)[NT][2], int s, int ks) {
            const uint32_t sa = a_addr[ks] + s * BM * BK * (int)sizeof(T), sb = b_addr[ks] + s * BN * BK * (int)sizeof(T);
#pragma unroll
            for (int i = 0; i < MT; i++) ldmatrix_x4(a[i], sa + i * 16 * BK * (int)sizeof(T));
#pragma unroll
            for (int j = 0; j < NT; j += 2) {
                uint32_t r[4];
                ldmatrix_x4(r, sb + j * 8 * BK * (int)sizeof(T));
                b[j][0] = r[0];
                b[j][1] = r[1];
                b[j + 1][0] = r[2];
                b[j + 1][1] = r[3];
            }
        };

        // Tiles 0 .. STAGES - 2 in flight; tile kt lives in stage kt % STAGES.
#pragma unroll
        for (int s = 0; s < STAGES - 1; s++) {
            if (s < ktiles) load(s, s);
            cp_async_commit();
        }
        cp_async_wait<STAGES - 2>();
        __syncthreads();
        uint32_t a[2][MT][4], b[2][NT][2];  // the fragments of this step and the next
        load_fragments(a[0], b[0], 0, 0);
        int rs = 0, ws = STAGES - 1;  // the stage read, the stage written next
        for (int kt = 0; kt < ktiles; kt++) {
#pragma unroll
            for (int ks = 0; ks < KSTEPS; ks++) {
                const int cur = ks % 2, nxt = (ks + 1) % 2;
                if (ks < KSTEPS - 1) {
                    load_fragments(a[nxt], b[nxt], rs, ks + 1);
                } else {
                    // The next tile's first fragments: wait until it has arrived (for this
                    // thread's copies, then for everyone's); the barrier also tells that
                    // every warp is done with this tile's stage, after its last loads above.
                    cp_async_wait<STAGES - 2>();
                    __syncthreads();
                    rs = rs + 1 == STAGES ? 0 : rs + 1;
                    if (kt + 1 < ktiles) load_fragments(a[nxt], b[nxt], rs, 0);
                }
                if (ks == 0) {
                    // Tile kt + STAGES - 1 into the stage tile kt - 1 left: every warp has
                    // passed the barrier after its last loads from it.
                    if (kt + STAGES - 1 < ktiles) load(ws, kt + STAGES - 1);
                    cp_async_commit();
                    ws = ws + 1 == STAGES ? 0 : ws + 1;
                }
#pragma unroll
                for (int i = 0; i < MT; i++)
#pragma unroll
                    for (int j = 0; j < NT; j++) mma_16816<T>(acc[i][j], a[cur][i], b[cur][j]);
            }
        }
    };
    // The tile of C first: its copies are the oldest group, complete by the first wait.
    if (C_EARLY) copy_c_early<T, BM, BN, THREADS>(Ce, C, m, n, m0, n0);
    if (m0 + BM <= m && n0 + BN <= n) mainloop(std::false_type{});
    else mainloop(std::true_type{});
    store_c_staged<T, BM, BN, WARPS_M, WARPS_N, PASS_ROWS, C_EARLY>(acc, m, n, alpha, beta, C, m0, n0, Ce);
}
#line 1261 "chapters/08-gemm-hopper.md"
// <<tensor-core-launchers>>
#line 1223 "chapters/07-gemm.md"
static const char *k_not_multiple_of_8(const Problem *p)
{
    return p->k % 8 ? "K a multiple of 8 (16-byte copies along K)" : NULL;
}

template <typename T, int BN, int WARPS_M, int WARPS_N, int LOAD, bool SWIZZLE, int STAGES, bool STAGED_EPILOGUE,
          int GROUP_M, bool ANY_K = false>
static void launch_tc(Problem *p)
{
    const int BM = 128, BK = 32;
    auto kernel = gemm_tc<T, BM, BN, BK, WARPS_M, WARPS_N, LOAD, SWIZZLE, STAGES, STAGED_EPILOGUE, GROUP_M, ANY_K>;
    int smem = STAGES * (BM + BN) * BK * (int)sizeof(T), staged = BM / WARPS_M * (BN + 4) * (int)sizeof(float);
    if (STAGED_EPILOGUE && staged > smem) smem = staged;
    static bool opted = false;
    if (!opted) {
        CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
        opted = true;
    }
    kernel<<<grid_of(p, BM, BN), WARPS_M * WARPS_N * 32, smem>>>(p->m, p->n, p->k, p->alpha, (const T *)p->a, (const T *)p->b, p->beta,
                                              (T *)p->c);
    CHECK_LAUNCH();
}

template <typename T, int BM, int BN, int WARPS_M, int WARPS_N, int STAGES, int GROUP_M>
static void launch_tc_pipelined(Problem *p)
{
    const int BK = 128 / (int)sizeof(T);
    auto kernel = gemm_tc_pipelined<T, BM, BN, WARPS_M, WARPS_N, STAGES, GROUP_M>;
    // the ring (the epilogue's staging fits in it), and the early copy of C past it,
    // as the kernel decides
    const int ring = STAGES * (BM + BN) * BK * (int)sizeof(T), half_sm = 113 * 1024, c_tile = BM * BN * (int)sizeof(T);
    int smem = ring + (ring > half_sm || ring + c_tile <= half_sm ? c_tile : 0);
    if (BM / WARPS_M * (BN + 4) * (int)sizeof(float) > ring) {
        fprintf(stderr, "gemm: t6's staging does not fit in its ring\n");
        exit(1);
    }
    static bool opted = false;
    if (!opted) {
        CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
        opted = true;
    }
    kernel<<<grid_of(p, BM, BN), WARPS_M * WARPS_N * 32, smem>>>(p->m, p->n, p->k, p->alpha, (const T *)p->a,
                                                                 (const T *)p->b, p->beta, (T *)p->c);
    CHECK_LAUNCH();
}

// t7: the tile by the problem's size. The largest of 128 x 256, 128 x 128, 128 x 64 and
// 64 x 64 whose tiles give every SM (nine tenths of them, at least) a block; any K.
template <typename T> static void launch_tc_dispatch(Problem *p)
{
    static int sms = 0;
    if (!sms) {
        int dev = 0;
        CUDA_CHECK(cudaGetDevice(&dev));
        CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    }
    if (p->k % 8) {  // rows off 16-byte boundaries: t2's kernel, reading elements one at a time
        launch_tc<T, 128, 2, 2, 1, true, 1, false, 1, true>(p);
        return;
    }
    auto tiles = [&](int bm, int bn) { return (double)((p->m + bm - 1) / bm) * ((p->n + bn - 1) / bn); };
    const double enough = 0.9 * sms;
    if (tiles(128, 256) >= enough) launch_tc_pipelined<T, 128, 256, 2, 4, 3, 8>(p);
    else if (tiles(128, 128) >= enough) launch_tc_pipelined<T, 128, 128, 2, 2, 3, 8>(p);
    else if (tiles(128, 64) >= enough) launch_tc_pipelined<T, 128, 64, 2, 2, 3, 8>(p);
    else launch_tc_pipelined<T, 64, 64, 2, 2, 3, 8>(p);
}
#line 1262 "chapters/08-gemm-hopper.md"
// <<hopper-gemm-kernels>>
#line 391 "chapters/08-gemm-hopper.md"
constexpr int HBK = 64;                        // K per stage: 128-byte rows of 16-bit elements
constexpr int HBN = 256;                       // columns of C per block: one wgmma's N
constexpr int ROW_BYTES = HBK * 2;             // bytes of a row of a tile in shared memory

// C = alpha D + beta C for a warpgroup's 64 x 256 tile at (row0, col0), from the
// accumulators' pattern (see wgmma_m64n256k16); pairs of columns where they fit.
template <typename T, int N = HBN>
__device__ inline void store_wgmma_tile(const float d[N / 2], int m, int n, float alpha, float beta, T *C, int row0, int col0)
{
    const int tid = threadIdx.x % 128, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
    const bool pairs = n % 2 == 0;
#pragma unroll
    for (int j = 0; j < N / 8; j++) {
        const int col = col0 + j * 8 + 2 * t;
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int row = row0 + warp * 16 + g + h * 8;
            if (row >= m || col >= n) continue;
            T *o = C + (size_t)row * n + col;
            const float v0 = alpha * d[4 * j + 2 * h], v1 = alpha * d[4 * j + 2 * h + 1];
            if (pairs) {  // the two elements as one 4-byte access: col is even, and so is n
                uint32_t old = *reinterpret_cast<const uint32_t *>(o), v;
                const T *ot = reinterpret_cast<const T *>(&old);
                T *vt = reinterpret_cast<T *>(&v);
                vt[0] = from_float<T>(v0 + beta * to_float(ot[0]));
                vt[1] = from_float<T>(v1 + beta * to_float(ot[1]));
                *reinterpret_cast<uint32_t *>(o) = v;
            } else {
                o[0] = from_float<T>(v0 + beta * to_float(o[0]));
                if (col + 1 < n) o[1] = from_float<T>(v1 + beta * to_float(o[1]));
            }
        }
    }
}

// h7's epilogue in two halves. load_c_pairs loads the old values of a warpgroup's 64 x N
// of C into registers, two elements in each, where store_c_pairs will combine them with
// the accumulators (nothing is read where beta is 0). It is called C_STEPS steps before
// the end of the main loop, so that the loads have landed when the epilogue begins. The
// elements travel as their 16 bits, so that no register has its address taken.
constexpr int C_STEPS = 4;

// Where element (r, col) of a 64-row tile of C lies in shared memory stored as boxes of
// 64 x 64 16-bit elements, one after the other, each with the TMA's 128-byte swizzle.
__device__ inline unsigned char *in_boxes(unsigned char *boxes, int r, int col)
{
    const int byte = col % 64 * 2;
    return boxes + col / 64 * 64 * ROW_BYTES + r * ROW_BYTES + (((byte >> 4) ^ (r & 7)) << 4) + (byte & 15);
}
template <typename T> __device__ inline float float_of_bits(uint32_t b)
{
    if constexpr (std::is_same<T, __half>::value) return __half2float(__ushort_as_half((unsigned short)b));
    else return __uint_as_float(b << 16);
}
template <typename T> __device__ inline uint32_t bits_of_float(float x)
{
    if constexpr (std::is_same<T, __half>::value) return __half_as_ushort(__float2half_rn(x));
    else return __bfloat16_as_ushort(__float2bfloat16_rn(x));
}
// alpha (d0, d1) + beta (the pair in old), rounded, as a pair.
template <typename T> __device__ inline uint32_t combine_pair(float alpha, float d0, float d1, float beta, uint32_t old)
{
    return bits_of_float<T>(alpha * d0 + beta * float_of_bits<T>(old & 0xFFFF)) |
           bits_of_float<T>(alpha * d1 + beta * float_of_bits<T>(old >> 16)) << 16;
}

template <typename T, int N>
__device__ inline void load_c_pairs(uint32_t oc[N / 4], int m, int n, float beta, const T *C, int row0, int col0)
{
    const int tid = threadIdx.x % 128, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
    const bool pairs = n % 2 == 0;
    const unsigned short *C16 = reinterpret_cast<const unsigned short *>(C);
#pragma unroll
    for (int j = 0; j < N / 8; j++) {
        const int col = col0 + j * 8 + 2 * t;
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int row = row0 + warp * 16 + g + h * 8;
            uint32_t v = 0;
            if (beta != 0.0f && row < m && col < n) {
                const size_t at = (size_t)row * n + col;
                if (pairs) v = *reinterpret_cast<const uint32_t *>(C16 + at);
                else v = C16[at] | (col + 1 < n ? (uint32_t)C16[at + 1] << 16 : 0u);
            }
            oc[2 * j + h] = v;
        }
    }
}
template <typename T, int N>
__device__ inline void store_c_pairs(const float d[N / 2], const uint32_t oc[N / 4], int m, int n, float alpha, float beta,
                                     T *C, int row0, int col0)
{
    const int tid = threadIdx.x % 128, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
    const bool pairs = n % 2 == 0;
    unsigned short *C16 = reinterpret_cast<unsigned short *>(C);
#pragma unroll
    for (int j = 0; j < N / 8; j++) {
        const int col = col0 + j * 8 + 2 * t;
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int row = row0 + warp * 16 + g + h * 8;
            if (row >= m || col >= n) continue;
            const uint32_t v = combine_pair<T>(alpha, d[4 * j + 2 * h], d[4 * j + 2 * h + 1], beta, oc[2 * j + h]);
            const size_t at = (size_t)row * n + col;
            if (pairs) *reinterpret_cast<uint32_t *>(C16 + at) = v;
            else {
                C16[at] = (unsigned short)(v & 0xFFFF);
                if (col + 1 < n) C16[at + 1] = (unsigned short)(v >> 16);
            }
        }
    }
}

// One warpgroup's four wgmma of a stage: its 64 rows of A (at a) by the N rows of B.
template <typename T, int N = HBN>
__device__ inline void wgmma_stage(float d[N / 2], const unsigned char *a, const unsigned char *b, int accumulate)
{
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < HBK / 16; ks++) {
        const uint64_t da = wgmma_desc_k128(a + ks * 32), db = wgmma_desc_k128(b + ks * 32);
        if constexpr (N == 256) wgmma_m64n256k16<T>(d, da, db, accumulate || ks > 0);
        else wgmma_m64n128k16<T>(d, da, db, accumulate || ks > 0);
    }
    wgmma_commit();
}
#line 537 "chapters/08-gemm-hopper.md"
// h1: one warpgroup, a 64 x 256 tile of C, S stages filled by the TMA.
template <typename T, int S>
__global__ void __launch_bounds__(128) gemm_h1(const __grid_constant__ CUtensorMap ma, const __grid_constant__ CUtensorMap mb,
                                               int m, int n, int k, float alpha, float beta, T *C)
{
#if SM90A_CODE
    constexpr int A_BYTES = 64 * ROW_BYTES, STAGE = A_BYTES + HBN * ROW_BYTES;
    extern __shared__ unsigned char smem_raw[];
    unsigned char *smem = aligned_1024(smem_raw);
    __shared__ __align__(8) uint64_t full[S];
    const int m0 = blockIdx.y * 64, n0 = blockIdx.x * HBN, ktiles = (k + HBK - 1) / HBK;
    if (threadIdx.x == 0) {
        for (int s = 0; s < S; s++) mbar_init(&full[s], 1);
        mbar_init_fence();
    }
    __syncthreads();
    auto load = [&](int kt) {
        const int s = kt % S;
        mbar_expect_tx(&full[s], STAGE);
        tma_load_2d(smem + s * STAGE, &ma, &full[s], kt * HBK, m0);
        tma_load_2d(smem + s * STAGE + A_BYTES, &mb, &full[s], kt * HBK, n0);
    };
    if (threadIdx.x == 0)
        for (int kt = 0; kt < S - 1 && kt < ktiles; kt++) load(kt);
    float d[128];
    for (int kt = 0; kt < ktiles; kt++) {
        if (threadIdx.x == 0 && kt + S - 1 < ktiles) load(kt + S - 1);  // into the stage tile kt - 1 left
        const int s = kt % S;
        mbar_wait(&full[s], (kt / S) & 1);
        wgmma_stage<T>(d, smem + s * STAGE, smem + s * STAGE + A_BYTES, kt > 0);
        wgmma_wait<0>();
        __syncthreads();  // every warp is done with stage s before thread 0 refills it
    }
    if (ktiles == 0)
        for (int i = 0; i < 128; i++) d[i] = 0.0f;
    store_wgmma_tile<T>(d, m, n, alpha, beta, C, m0, n0);
#endif
}
#line 594 "chapters/08-gemm-hopper.md"
constexpr int HSTAGES = 4;                                         // the ring's stages
constexpr int H_A_BYTES = 128 * ROW_BYTES, H_STAGE = H_A_BYTES + HBN * ROW_BYTES;  // 16 + 32 KiB

// h2: two warpgroups, a 128 x 256 tile, HSTAGES stages with full and empty barriers.
template <typename T>
__global__ void __launch_bounds__(256) gemm_h2(const __grid_constant__ CUtensorMap ma, const __grid_constant__ CUtensorMap mb,
                                               int m, int n, int k, float alpha, float beta, T *C)
{
#if SM90A_CODE
    extern __shared__ unsigned char smem_raw[];
    unsigned char *smem = aligned_1024(smem_raw);
    __shared__ __align__(8) uint64_t full[HSTAGES], empty[HSTAGES];
    const int wg = threadIdx.x / 128, tid = threadIdx.x % 128;
    const int m0 = blockIdx.y * 128, n0 = blockIdx.x * HBN, ktiles = (k + HBK - 1) / HBK;
    if (threadIdx.x == 0) {
        for (int s = 0; s < HSTAGES; s++) {
            mbar_init(&full[s], 1);
            mbar_init(&empty[s], 2);  // one arrival per warpgroup
        }
        mbar_init_fence();
    }
    __syncthreads();
    auto load = [&](int kt) {
        const int s = kt % HSTAGES, use = kt / HSTAGES;
        if (use > 0) mbar_wait(&empty[s], (use - 1) & 1);  // both warpgroups are done with its last tile
        mbar_expect_tx(&full[s], H_STAGE);
        tma_load_2d(smem + s * H_STAGE, &ma, &full[s], kt * HBK, m0);
        tma_load_2d(smem + s * H_STAGE + H_A_BYTES, &mb, &full[s], kt * HBK, n0);
    };
    if (threadIdx.x == 0)
        for (int kt = 0; kt < HSTAGES - 1 && kt < ktiles; kt++) load(kt);
    float d[128];
    int prev = -1;
    for (int kt = 0; kt < ktiles; kt++) {
        const int s = kt % HSTAGES;
        mbar_wait(&full[s], (kt / HSTAGES) & 1);
        wgmma_stage<T>(d, smem + s * H_STAGE + wg * 64 * ROW_BYTES, smem + s * H_STAGE + H_A_BYTES, kt > 0);
        wgmma_wait<1>();  // the group of tile kt - 1 is done: its stage is free
        if (prev >= 0 && tid == 0) mbar_arrive(&empty[prev]);
        prev = s;
        if (threadIdx.x == 0 && kt + HSTAGES - 1 < ktiles) load(kt + HSTAGES - 1);
    }
    wgmma_wait<0>();
    if (ktiles == 0)
        for (int i = 0; i < 128; i++) d[i] = 0.0f;
    store_wgmma_tile<T>(d, m, n, alpha, beta, C, m0 + wg * 64, n0);
#endif
}
#line 689 "chapters/08-gemm-hopper.md"
constexpr int GROUP_TILES = 8;  // tiles of C walked down a column before the next

// Tile `id` of a tiles_m x tiles_n grid, GROUP_TILES rows at a time, column by column.
__device__ inline void grouped_tile(int id, int tiles_m, int tiles_n, int *tm, int *tn)
{
    const int per_group = GROUP_TILES * tiles_n, first = id / per_group * GROUP_TILES;
    const int rows = min(tiles_m - first, GROUP_TILES), in = id % per_group;
    *tm = first + in % rows;
    *tn = in / rows;
}

// h3 to h7: BM = 64 CONSUMERS rows by BN columns of C per block; a producer warpgroup and
// CONSUMERS consumer warpgroups of 64 rows. CLUSTER blocks on vertically neighbouring
// tiles of C ("pairs", one tile high when CLUSTER is 1) share the tiles of B. The
// epilogue: EPI_DIRECT (h3 to h5) reads and writes C from the fragments; EPI_TMA (h6)
// takes C through shared memory, loaded by the producer during the tile's main loop and
// stored by TMA (mc: C's tensor map, in boxes of 64 x 64), at the price of a stage;
// EPI_REGS (h7) loads the old C into registers during the last steps of the main loop;
// EPI_REGS_TMA stores the new C from there by TMA, through a buffer of two boxes per
// consumer, half a tile at a time.
enum { EPI_DIRECT = 0, EPI_TMA = 1, EPI_REGS = 2, EPI_REGS_TMA = 3 };
template <int BN, int CONSUMERS, int EPI> struct WsShape {
    static constexpr int BM = 64 * CONSUMERS, A_BYTES = BM * ROW_BYTES, STAGE = A_BYTES + BN * ROW_BYTES;
    static constexpr int C_BYTES = EPI == EPI_TMA ? BM * BN * 2    // the buffer of C: CONSUMERS x BN / 64 boxes,
                                   : EPI == EPI_REGS_TMA ? BM * 128 * 2  // or CONSUMERS x 2 boxes
                                                         : 0;
    static constexpr int MAX_SMEM = 227 * 1024 - 1024;        // what a block may ask for, less the alignment
    static constexpr int FIT = (MAX_SMEM - C_BYTES) / STAGE, STAGES = FIT > 6 ? 6 : FIT;
    static constexpr int SMEM = STAGES * STAGE + C_BYTES + 1024;
};

template <typename T, int BN, int CONSUMERS, int CLUSTER, int EPI>
__global__ void __launch_bounds__(128 * (1 + CONSUMERS), 1)
    gemm_ws(const __grid_constant__ CUtensorMap ma, const __grid_constant__ CUtensorMap mb,
            const __grid_constant__ CUtensorMap mc, int m, int n, int k, float alpha, float beta, T *C)
{
#if SM90A_CODE
    using W = WsShape<BN, CONSUMERS, EPI>;
    constexpr bool TMA_C = EPI == EPI_TMA;
    constexpr int BM = W::BM, STAGES = W::STAGES, BOXES = BN / 64;
    static_assert(STAGES >= 2 && STAGES <= 6, "a ring of 2 to 6 stages");
    extern __shared__ unsigned char smem_raw[];
    unsigned char *smem = aligned_1024(smem_raw);
    unsigned char *cbuf = smem + STAGES * W::STAGE;
    __shared__ __align__(8) uint64_t full[6], empty[6], c_full, c_empty;
    const int wg = threadIdx.x / 128, tid = threadIdx.x % 128;
    const uint32_t rank = CLUSTER > 1 ? cluster_rank() : 0;
    const int tiles_m = (m + BM - 1) / BM, tiles_n = (n + BN - 1) / BN;
    const int pairs_m = (tiles_m + CLUSTER - 1) / CLUSTER, pairs = pairs_m * tiles_n;
    const int first = blockIdx.x / CLUSTER, step = gridDim.x / CLUSTER, ktiles = (k + HBK - 1) / HBK;
    if (threadIdx.x == 0) {
        for (int s = 0; s < STAGES; s++) {
            mbar_init(&full[s], 1);
            mbar_init(&empty[s], CONSUMERS * CLUSTER);  // each consumer warpgroup of each block
        }
        mbar_init(&c_full, 1);
        mbar_init(&c_empty, CONSUMERS);
        mbar_init_fence();
    }
    if (CLUSTER > 1) cluster_sync();
    else __syncthreads();

    if (wg == 0) {  // the producer
        if (CONSUMERS == 2) setmaxnreg_dec<40>();
        if (tid == 0) {
            int it = 0, u = 0;  // the stages' uses, and the tiles, continue from tile to tile
            for (int pair = first; pair < pairs; pair += step, u++) {
                int pm, tn;
                grouped_tile(pair, pairs_m, tiles_n, &pm, &tn);
                const int tm = pm * CLUSTER + rank;
                for (int kt = 0; kt < ktiles; kt++, it++) {
                    const int s = it % STAGES, use = it / STAGES;
                    if (use > 0) mbar_wait(&empty[s], (use - 1) & 1);
                    unsigned char *stage = smem + s * W::STAGE;
                    mbar_expect_tx(&full[s], W::STAGE);
                    tma_load_2d(stage, &ma, &full[s], kt * HBK, tm * BM);
                    if (CLUSTER == 1) {
                        tma_load_2d(stage + W::A_BYTES, &mb, &full[s], kt * HBK, tn * BN);
                    } else {  // this block's share of B's rows, into every block of the cluster
                        constexpr int PART = BN / CLUSTER;
                        tma_load_2d_multicast(stage + W::A_BYTES + rank * PART * ROW_BYTES, &mb, &full[s], kt * HBK,
                                              tn * BN + rank * PART, (uint16_t)((1u << CLUSTER) - 1));
                    }
                    if (TMA_C && kt == ktiles / 2) {  // the old C, once the last tile's stores have read the buffer
                        if (u > 0) mbar_wait(&c_empty, (u - 1) & 1);
                        mbar_expect_tx(&c_full, W::C_BYTES);
                        for (int w = 0; w < CONSUMERS; w++)
                            for (int j = 0; j < BOXES; j++)
                                tma_load_2d(cbuf + (w * BOXES + j) * 64 * ROW_BYTES, &mc, &c_full, tn * BN + j * 64,
                                            tm * BM + w * 64);
                    }
                }
            }
        }
    } else {  // the consumers
        if (CONSUMERS == 2) setmaxnreg_inc<232>();
        const int c = wg - 1;
        auto release = [&](int s) {
            if (tid != 0) return;
            if (CLUSTER == 1) mbar_arrive(&empty[s]);
            else
                for (int q = 0; q < CLUSTER; q++) mbar_arrive_cluster(&empty[s], q);
        };
        float d[BN / 2];
        constexpr bool REGS = EPI == EPI_REGS || EPI == EPI_REGS_TMA;
        uint32_t oc[REGS ? BN / 4 : 1];  // h7: the old C, two elements a register
        int it = 0, u = 0;
        for (int pair = first; pair < pairs; pair += step, u++) {
            int pm, tn;
            grouped_tile(pair, pairs_m, tiles_n, &pm, &tn);
            const int tm = pm * CLUSTER + rank;
            int prev = -1;
            auto step = [&](int kt) {
                const int s = it % STAGES;
                mbar_wait(&full[s], (it / STAGES) & 1);
                wgmma_stage<T, BN>(d, smem + s * W::STAGE + c * 64 * ROW_BYTES, smem + s * W::STAGE + W::A_BYTES, kt > 0);
                wgmma_wait<1>();  // the group of the previous stage is done: release it
                if (prev >= 0) release(prev);
                prev = s;
                it++;
            };
            // h7 loads the old C C_STEPS steps before the end; the others run all steps at once
            const int early = !REGS ? ktiles : ktiles > C_STEPS ? ktiles - C_STEPS : 0;
            int kt = 0;
            for (; kt < early; kt++) step(kt);
            if (REGS) load_c_pairs<T, BN>(oc, m, n, beta, C, tm * BM + c * 64, tn * BN);
            for (; kt < ktiles; kt++) step(kt);
            wgmma_wait<0>();
            if (prev >= 0) release(prev);
            if (EPI == EPI_DIRECT) {
                store_wgmma_tile<T, BN>(d, m, n, alpha, beta, C, tm * BM + c * 64, tn * BN);
                continue;
            }
            if (EPI == EPI_REGS) {
                store_c_pairs<T, BN>(d, oc, m, n, alpha, beta, C, tm * BM + c * 64, tn * BN);
                continue;
            }
            if (EPI == EPI_REGS_TMA) {  // two boxes of 64 x 64 at a time, through the buffer
                unsigned char *mine = cbuf + c * 2 * 64 * ROW_BYTES;
                const int warp = tid / 32, g = tid % 32 / 4, t = tid % 4;
#pragma unroll
                for (int half = 0; half < BOXES / 2; half++) {
                    if (tid == 0) bulk_wait_read();  // the last stores from the buffer have read it
                    named_barrier(1 + c, 128);
#pragma unroll
                    for (int j = half * 16; j < half * 16 + 16; j++) {
#pragma unroll
                        for (int h = 0; h < 2; h++) {
                            const int r = warp * 16 + g + h * 8, col = j * 8 + 2 * t - half * 128;
                            *reinterpret_cast<uint32_t *>(in_boxes(mine, r, col)) =
                                combine_pair<T>(alpha, d[4 * j + 2 * h], d[4 * j + 2 * h + 1], beta, oc[2 * j + h]);
                        }
                    }
                    fence_proxy_async();
                    named_barrier(1 + c, 128);
                    if (tid == 0) {
                        for (int b = 0; b < 2; b++)
                            tma_store_2d(&mc, mine + b * 64 * ROW_BYTES, tn * BN + (2 * half + b) * 64, tm * BM + c * 64);
                        bulk_commit();
                    }
                }
                continue;
            }
            // C = alpha D + beta C in the buffer (the boxes' 128-byte swizzle), then stored
            // by TMA, which writes only what lies inside C
            mbar_wait(&c_full, u & 1);
            unsigned char *mine = cbuf + c * BOXES * 64 * ROW_BYTES;
            const int warp = tid / 32, g = tid % 32 / 4, t = tid % 4;
#pragma unroll
            for (int j = 0; j < BN / 8; j++) {
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    const int r = warp * 16 + g + h * 8, col = j * 8 + 2 * t;
                    T *e = reinterpret_cast<T *>(in_boxes(mine, r, col));
                    e[0] = from_float<T>(alpha * d[4 * j + 2 * h] + beta * to_float(e[0]));
                    e[1] = from_float<T>(alpha * d[4 * j + 2 * h + 1] + beta * to_float(e[1]));
                }
            }
            fence_proxy_async();
            named_barrier(1 + c, 128);
            if (tid == 0) {
                for (int j = 0; j < BOXES; j++)
                    tma_store_2d(&mc, mine + j * 64 * ROW_BYTES, tn * BN + j * 64, tm * BM + c * 64);
                bulk_commit();
                bulk_wait_read();  // the buffer may be refilled
                mbar_arrive(&c_empty);
            }
        }
        if ((TMA_C || EPI == EPI_REGS_TMA) && tid == 0) bulk_wait();  // the last stores have landed
    }
    if (CLUSTER > 1) cluster_sync();  // no block leaves while another may write into it
#endif
}
#line 1263 "chapters/08-gemm-hopper.md"
// <<hopper-gemm-launchers>>
#line 975 "chapters/08-gemm-hopper.md"
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
#line 976 "chapters/08-gemm-hopper.md"

static const char *needs_sm90a(const Problem *p)
{
    const char *why = needs_sm90a_code();
    return why ? why : k_not_multiple_of_8(p);
}

// The tensor maps of a problem's A (boxes of a_rows rows) and B (b_rows), made once.
typedef struct {
    const void *a, *b;
    int m, n, k, a_rows, b_rows;
    CUtensorMap ma, mb;
} MapPair;

static const MapPair *maps_of(const Problem *p, int a_rows, int b_rows)
{
    static MapPair cache[8];
    static int used = 0;
    for (int i = 0; i < used; i++) {
        const MapPair *c = &cache[i];
        if (c->a == p->a && c->b == p->b && c->m == p->m && c->n == p->n && c->k == p->k && c->a_rows == a_rows &&
            c->b_rows == b_rows)
            return c;
    }
    MapPair *c = &cache[used < 8 ? used++ : (used = 1, 0)];
    bool bf16 = p->dtype == BF16;
    *c = (MapPair){p->a, p->b, p->m, p->n, p->k, a_rows, b_rows, tma_map_2d(p->a, bf16, p->m, p->k, a_rows),
                   tma_map_2d(p->b, bf16, p->n, p->k, b_rows)};
    return c;
}

template <typename K> static void allow_smem(K kernel, int bytes)
{
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
}

template <typename T> static void launch_h1(Problem *p)
{
    const int smem = 2 * (64 + HBN) * ROW_BYTES + 1024;
    static bool opted = false;
    if (!opted) allow_smem(gemm_h1<T, 2>, smem), opted = true;
    const MapPair *mp = maps_of(p, 64, HBN);
    dim3 grid((unsigned)((p->n + HBN - 1) / HBN), (unsigned)((p->m + 63) / 64));
    gemm_h1<T, 2><<<grid, 128, smem>>>(mp->ma, mp->mb, p->m, p->n, p->k, p->alpha, p->beta, (T *)p->c);
    CHECK_LAUNCH();
}

template <typename T> static void launch_h2(Problem *p)
{
    const int smem = HSTAGES * H_STAGE + 1024;
    static bool opted = false;
    if (!opted) allow_smem(gemm_h2<T>, smem), opted = true;
    const MapPair *mp = maps_of(p, 128, HBN);
    gemm_h2<T><<<grid_of(p, 128, HBN), 256, smem>>>(mp->ma, mp->mb, p->m, p->n, p->k, p->alpha, p->beta, (T *)p->c);
    CHECK_LAUNCH();
}

// C's tensor map (boxes of 64 x 64), made once per problem.
static const CUtensorMap *c_map_of(const Problem *p)
{
    static const void *c = NULL;
    static int m = 0, n = 0;
    static DType dtype = F32;
    static CUtensorMap map;
    if (c != p->c || m != p->m || n != p->n || dtype != p->dtype) {
        map = tma_map_2d(p->c, p->dtype == BF16, p->m, p->n, 64);
        c = p->c, m = p->m, n = p->n, dtype = p->dtype;
    }
    return &map;
}

// h6 stores C by TMA: its rows must start on 16-byte boundaries too.
static const char *needs_sm90a_n8(const Problem *p)
{
    const char *why = needs_sm90a(p);
    return why ? why : p->n % 8 ? "N a multiple of 8 (C stored by TMA)" : NULL;
}

// h3 (PERSISTENT false) to h6: the warp-specialized kernel, in clusters of CLUSTER.
template <typename T, int BN, int CONSUMERS, int CLUSTER, bool PERSISTENT, int EPI> static void launch_ws(Problem *p)
{
    using W = WsShape<BN, CONSUMERS, EPI>;
    auto kernel = gemm_ws<T, BN, CONSUMERS, CLUSTER, EPI>;
    static int at_once = 0;  // clusters that fit on the GPU together
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = CLUSTER;
    attr[0].val.clusterDim.y = 1;
    attr[0].val.clusterDim.z = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.blockDim = dim3(128 * (1 + CONSUMERS));
    cfg.dynamicSmemBytes = W::SMEM;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    if (!at_once) {
        allow_smem(kernel, W::SMEM);
        int dev = 0, sms = 0;
        CUDA_CHECK(cudaGetDevice(&dev));
        CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
        cfg.gridDim = dim3(sms / CLUSTER * CLUSTER);
        CUDA_CHECK(cudaOccupancyMaxActiveClusters(&at_once, kernel, &cfg));
        if (at_once < 1) {
            fprintf(stderr, "gemm_hopper: no cluster of %d blocks fits on this GPU\n", CLUSTER);
            exit(1);
        }
    }
    const MapPair *mp = maps_of(p, W::BM, BN / CLUSTER);
    const int tiles_m = (p->m + W::BM - 1) / W::BM, tiles_n = (p->n + BN - 1) / BN;
    const int pairs = (tiles_m + CLUSTER - 1) / CLUSTER * tiles_n;
    cfg.gridDim = dim3((unsigned)((PERSISTENT && pairs > at_once ? at_once : pairs) * CLUSTER));
    const CUtensorMap *mc = EPI == EPI_TMA || EPI == EPI_REGS_TMA ? c_map_of(p) : &mp->ma;  // unused without a TMA store
    CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, mp->ma, mp->mb, *mc, p->m, p->n, p->k, p->alpha, p->beta, (T *)p->c));
    CHECK_LAUNCH();
}

// h8: the tile by the problem's size, as t7 chose it in the previous chapter: the largest
// of 128 x 256, 128 x 128 and 64 x 128 whose tiles give nine tenths of the SMs a block;
// C through the TMA where N allows it. With at least two tiles of 128 x 256 per SM, h7's
// epilogue in clusters of two.
template <typename T> static void launch_hopper_dispatch(Problem *p)
{
    static int sms = 0;
    if (!sms) {
        int dev = 0;
        CUDA_CHECK(cudaGetDevice(&dev));
        CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    }
    auto tiles = [&](int bm, int bn) { return (double)((p->m + bm - 1) / bm) * ((p->n + bn - 1) / bn); };
    const double enough = 0.9 * sms;
    const bool tma_c = p->n % 8 == 0;
    if (tiles(128, 256) >= 2 * sms) {
        if (tma_c) launch_ws<T, 256, 2, 2, true, EPI_REGS_TMA>(p);
        else launch_ws<T, 256, 2, 2, true, EPI_REGS>(p);
    } else if (tiles(128, 256) >= enough) {
        if (tma_c) launch_ws<T, 256, 2, 1, true, EPI_TMA>(p);
        else launch_ws<T, 256, 2, 1, true, EPI_DIRECT>(p);
    } else if (tiles(128, 128) >= enough) {
        if (tma_c) launch_ws<T, 128, 2, 1, true, EPI_TMA>(p);
        else launch_ws<T, 128, 2, 1, true, EPI_DIRECT>(p);
    } else {
        if (tma_c) launch_ws<T, 128, 1, 1, true, EPI_TMA>(p);
        else launch_ws<T, 128, 1, 1, true, EPI_DIRECT>(p);
    }
}
#line 1264 "chapters/08-gemm-hopper.md"
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
#line 1265 "chapters/08-gemm-hopper.md"
// <<hopper-gemm-ceilings>>
#line 1129 "chapters/08-gemm-hopper.md"
template <typename T>
__global__ void __launch_bounds__(256, 1) wgmma_rate_kernel(float *out, int iters)
{
#if SM90A_CODE
    extern __shared__ unsigned char smem_raw[];
    unsigned char *smem = aligned_1024(smem_raw);
    for (int i = threadIdx.x; i < (64 + HBN) * ROW_BYTES / 16; i += blockDim.x)
        reinterpret_cast<int4 *>(smem)[i] = make_int4(0, 0, 0, 0);
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");  // ordinary stores, read by wgmma
    __syncthreads();
    float d[128];
    for (int it = 0; it < iters; it++) {
        wgmma_stage<T>(d, smem, smem + 64 * ROW_BYTES, it > 0);
        wgmma_wait<1>();
    }
    wgmma_wait<0>();
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < 128; i++) sum += d[i];
    if (sum == 12345.0f) *out = sum;  // keeps the products alive; never true
#endif
}

typedef struct {
    float *out;
    int blocks, iters;
    bool wgmma;
} HopperRateArgs;

static void launch_hopper_rate(void *ctx)
{
    HopperRateArgs *r = (HopperRateArgs *)ctx;
    if (r->wgmma) {
        wgmma_rate_kernel<__nv_bfloat16><<<r->blocks, 256, (64 + HBN) * ROW_BYTES + 1024>>>(r->out, r->iters);
    } else {
        mma_rate_kernel<__nv_bfloat16><<<r->blocks, 256>>>(r->out, r->iters);
    }
    CHECK_LAUNCH();
}

// Measures both ceilings once (v NULL) and emits their rows; every version of this
// chapter is set against the wgmma one (the mma.sync one where this build has no sm_90a
// code, on other GPUs).
static double hopper_compute_ceiling(BenchRun *run, const Version *v)
{
    static double mma_tflops = 0.0, wgmma_tflops = 0.0;
    if (!v) {
        int dev = 0, sms = 0;
        CUDA_CHECK(cudaGetDevice(&dev));
        CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
        Problem probe = {};
        probe.k = 64;
        bool has_wgmma = needs_sm90a(&probe) == NULL;
        HopperRateArgs r = {(float *)device_alloc(sizeof(float), "sink"), 0, 0, false};
        for (int pass = 0; pass < 2; pass++) {
            r.wgmma = pass == 1;
            if (r.wgmma && !has_wgmma) break;
            if (r.wgmma) {
                CUDA_CHECK(cudaFuncSetAttribute(wgmma_rate_kernel<__nv_bfloat16>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                (64 + HBN) * ROW_BYTES + 1024));
            }
            r.blocks = r.wgmma ? sms : 8 * sms;
            r.iters = r.wgmma ? 2048 : 4096;
            Timing t = time_launches(launch_hopper_rate, &r, run->plan);
            // wgmma: 2 warpgroups x iters x 4 steps of 64 x 256 x 16; mma.sync as in part 1
            double per = r.wgmma ? 2.0 * r.iters * 4 * (64.0 * 256 * 16 * 2) : 8.0 * r.iters * 8 * (16 * 8 * 16 * 2);
            double tflops = r.blocks * per / (t.median_us * 1e6);
            (r.wgmma ? wgmma_tflops : mma_tflops) = tflops;
            Version cv = {r.wgmma ? "wgmma-ceiling" : "mma-sync-ceiling", "ceiling", "bf16", "", NULL, NULL};
            Row row = row_from_time(run, &cv, "registers", t.median_us, 0.0, 0.0, NAN);
            row.tflops = tflops;
            row.pct_sol = 100.0;
            bench_emit(run, &row, NAN);
        }
        CUDA_CHECK(cudaFree(r.out));
        return 0.0;
    }
    return wgmma_tflops > 0.0 ? wgmma_tflops : mma_tflops;
}
#line 1266 "chapters/08-gemm-hopper.md"
// <<the-hopper-gemm-version-table>>
#line 1216 "chapters/08-gemm-hopper.md"
#define HOPPER_GEMM_VERSIONS(T, DT)                                                                             \
    {"cublas", "peer", DT, "cublasGemmEx, float32 accumulation", launch_cublas, NULL},                        \
    {"cublaslt", "peer", DT, "cuBLASLt, the fastest of its heuristic's algorithms", launch_cublaslt, NULL},    \
    {"t7-dispatch", "ours", DT, "the previous chapter's best: mma.sync, tile by size", launch_tc_dispatch<T>, NULL}, \
    {"h1-tma-wgmma", "ours", DT, "TMA and wgmma, one warpgroup, 64 x 256, 2 stages", launch_h1<T>, needs_sm90a}, \
    {"h2-two-warpgroups", "ours", DT, "two warpgroups, 128 x 256, 4 stages, full and empty barriers", launch_h2<T>, needs_sm90a}, \
    {"h3-warp-specialized", "ours", DT, "a producer warpgroup, two consumers, setmaxnreg", launch_ws<T, 256, 2, 1, false, EPI_DIRECT>, needs_sm90a}, \
    {"h4-persistent", "ours", DT, "h3 with one block per SM walking the tiles", launch_ws<T, 256, 2, 1, true, EPI_DIRECT>, needs_sm90a}, \
    {"h5-cluster-multicast", "ours", DT, "h4 in clusters of two sharing B by TMA multicast", launch_ws<T, 256, 2, 2, true, EPI_DIRECT>, needs_sm90a}, \
    {"h6-tma-epilogue", "ours", DT, "h4 with 3 stages, C loaded and stored by TMA through shared memory", launch_ws<T, 256, 2, 1, true, EPI_TMA>, needs_sm90a_n8}, \
    {"h6-cluster", "ours", DT, "h6 in clusters of two sharing B by TMA multicast", launch_ws<T, 256, 2, 2, true, EPI_TMA>, needs_sm90a_n8}, \
    {"h7-c-in-registers", "ours", DT, "h4 with 4 stages, the old C loaded into registers during the main loop", launch_ws<T, 256, 2, 1, true, EPI_REGS>, needs_sm90a}, \
    {"h7-cluster", "ours", DT, "h7 in clusters of two sharing B by TMA multicast", launch_ws<T, 256, 2, 2, true, EPI_REGS>, needs_sm90a}, \
    {"h7-tma-store", "ours", DT, "h7 storing C by TMA through two boxes per warpgroup", launch_ws<T, 256, 2, 1, true, EPI_REGS_TMA>, needs_sm90a_n8}, \
    {"h7-tma-store-cluster", "ours", DT, "h7-tma-store in clusters of two", launch_ws<T, 256, 2, 2, true, EPI_REGS_TMA>, needs_sm90a_n8}, \
    {"h8-dispatch", "ours", DT, "h4, h6 or h7 with the tile chosen by the problem's size", launch_hopper_dispatch<T>, needs_sm90a}

static const Version VERSIONS[] = {
    HOPPER_GEMM_VERSIONS(__nv_bfloat16, "bf16"),
    HOPPER_GEMM_VERSIONS(__half, "f16"),
};
#line 1267 "chapters/08-gemm-hopper.md"
// <<create-and-check-a-gemm-problem>>
#line 1462 "chapters/07-gemm.md"
// ============================================================ problems and checks
// "MxNxK". Returns NULL, or what is wrong with the size.
static const char *parse_gemm_size(const char *size, int *m, int *n, int *k)
{
    const char *want = "MxNxK, three sizes from 1 to 2^20, e.g. 4096x4096x4096";
    int *dims[3] = {m, n, k};
    const char *s = size;
    for (int d = 0; d < 3; d++) {
        if (!isdigit((unsigned char)*s)) return want;
        char *end;
        unsigned long long v = strtoull(s, &end, 10);
        if (v == 0 || v > (1u << 20)) return want;
        *dims[d] = (int)v;
        if (d < 2 && *end != 'x') return want;
        if (d == 2 && *end != '\0') return want;
        s = end + 1;
    }
    return NULL;
}

static const char *gemm_bad_size(const char *size)
{
    int m, n, k;
    return parse_gemm_size(size, &m, &n, &k);
}

static bool cpu_reference(const Problem *p) { return gemm_macs_of(p) <= 1.5e9; }

static Problem *gemm_create(const char *dtype, const char *size, uint64_t seed)
{
    Problem *p = (Problem *)host_alloc(sizeof(Problem), "problem");
    memset(p, 0, sizeof *p);
    const char *bad = parse_gemm_size(size, &p->m, &p->n, &p->k);
    if (bad) usage_error("bad size", size, bad);
    p->dtype = parse_dtype(dtype);
    snprintf(p->size, sizeof p->size, "%s", size);
    p->alpha = 0.75f;
    p->beta = -0.5f;
    p->b_transposed = half_types(p);
    size_t mk = (size_t)p->m * p->k, kn = (size_t)p->k * p->n, mn = (size_t)p->m * p->n, e = dtype_bytes(p->dtype);
    // A, B, C and C0; beyond the CPU's reach, float copies of A, B, C0, their magnitudes,
    // and cuBLAS's result and scale
    check_fits(size, (mk + kn + 2 * mn) * e + (cpu_reference(p) ? 0 : (2 * mk + 2 * kn + 4 * mn) * 4) + (64u << 20));
    float **host[3] = {&p->ha, &p->hb, &p->hc0};
    size_t counts[3] = {mk, kn, mn};
    void **dev[3] = {&p->a, &p->b, &p->c0};
    for (int i = 0; i < 3; i++) {
        *host[i] = (float *)host_alloc(counts[i] * sizeof(float), "input");
        fill_uniform_f32(*host[i], counts[i], -1.0f, 1.0f, seed + i);
#pragma omp parallel for schedule(static)
        for (size_t j = 0; j < counts[i]; j++) (*host[i])[j] = round_to(p->dtype, (*host[i])[j]);
        *dev[i] = device_alloc(counts[i] * e, "input");
        upload(*dev[i], *host[i], counts[i], p->dtype);
    }
    p->c = device_alloc(mn * e, "C");
    CUBLAS_CHECK(cublasCreate(&p->blas));
    CUBLAS_CHECK(cublasSetMathMode(p->blas, CUBLAS_DEFAULT_MATH));
    return p;
}

static void gemm_destroy(Problem *p)
{
    void *arrays[] = {p->a, p->b, p->c, p->c0};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) CUDA_CHECK(cudaFree(arrays[i]));
    CUBLAS_CHECK(cublasDestroy(p->blas));
    if (p->lt) {
        CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(p->lt_a));
        CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(p->lt_b));
        CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(p->lt_c));
        CUBLAS_CHECK(cublasLtMatmulDescDestroy(p->lt_op));
        CUBLAS_CHECK(cublasLtDestroy(p->lt));
        CUDA_CHECK(cudaFree(p->lt_work));
    }
    free(p->ha);
    free(p->hb);
    free(p->hc0);
    free(p->ref);
    free(p->scale);
    free(p);
}

// Instead of poison: C is also an input (beta is not 0), so it goes back to C0.
static void gemm_poison(Problem *p)
{
    CUDA_CHECK(cudaMemcpy(p->c, p->c0, (size_t)p->m * p->n * dtype_bytes(p->dtype), cudaMemcpyDeviceToDevice));
}

// Element (i, j) of B, whichever way it is stored.
static inline float b_at(const Problem *p, size_t kk, size_t j)
{
    return p->b_transposed ? p->hb[j * p->k + kk] : p->hb[kk * p->n + j];
}

// The exact result of element (i, j) and its scale |alpha| sum |a b| + |beta c0|, in double.
static void cpu_element(const Problem *p, size_t i, size_t j, double *ref, double *scale)
{
    double sum = 0.0, abs_sum = 0.0;
    for (size_t kk = 0; kk < (size_t)p->k; kk++) {
        double prod = (double)p->ha[i * p->k + kk] * b_at(p, kk, j);
        sum += prod;
        abs_sum += fabs(prod);
    }
    double c0 = p->hc0[i * p->n + j];
    *ref = p->alpha * sum + p->beta * c0;
    *scale = fabs(p->alpha) * abs_sum + fabs(p->beta * c0);
}

// Element i's bound: `factor` times (K + 3) 2^-24 of its scale, then the final rounding.
typedef struct {
    const double *ref, *scale;
    double arith;  // (K + 3) 2^-24, times 2 against cuBLAS's own float32 result
    DType dtype;
} GemmBound;

static double gemm_bound(const void *ctx, size_t i, double *scale)
{
    const GemmBound *b = (const GemmBound *)ctx;
    *scale = b->scale[i];
    return error_bound(b->dtype, b->ref[i], b->arith * b->scale[i], 0, 0.0);
}

// cuBLAS's float32 result and scale of the whole problem, on the host.
static void cublas_reference(const Problem *p, double *ref, double *scale)
{
    size_t mk = (size_t)p->m * p->k, kn = (size_t)p->k * p->n, mn = (size_t)p->m * p->n;
    float *fa = (float *)device_alloc(mk * 4, "A in float"), *fb = (float *)device_alloc(kn * 4, "B in float");
    float *fc = (float *)device_alloc(mn * 4, "C in float"), *fs = (float *)device_alloc(mn * 4, "scale");
    float *h = (float *)host_alloc((mk > kn ? (mk > mn ? mk : mn) : (kn > mn ? kn : mn)) * 4, "staging");
    cublasOperation_t op_b = p->b_transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
    int ld_b = p->b_transposed ? p->k : p->n;
    for (int pass = 0; pass < 2; pass++) {  // 0: alpha A B + beta C0; 1: |alpha| |A| |B| + |beta| |C0|
        const float *src[3] = {p->ha, p->hb, p->hc0};
        float *dst[3] = {fa, fb, pass ? fs : fc};
        size_t counts[3] = {mk, kn, mn};
        for (int a = 0; a < 3; a++) {
#pragma omp parallel for schedule(static)
            for (size_t i = 0; i < counts[a]; i++) h[i] = pass ? fabsf(src[a][i]) : src[a][i];
            CUDA_CHECK(cudaMemcpy(dst[a], h, counts[a] * 4, cudaMemcpyHostToDevice));
        }
        float al = pass ? fabsf(p->alpha) : p->alpha, be = pass ? fabsf(p->beta) : p->beta;
        CUBLAS_CHECK(cublasSgemm(p->blas, op_b, CUBLAS_OP_N, p->n, p->m, p->k, &al, fb, ld_b, fa, p->k, &be,
                                 dst[2], p->n));
        CUDA_CHECK(cudaMemcpy(h, dst[2], mn * 4, cudaMemcpyDeviceToHost));
        double *out = pass ? scale : ref;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < mn; i++) out[i] = pass ? 1.01 * h[i] : h[i];  // the scale's own error: generous
    }
    free(h);
    CUDA_CHECK(cudaFree(fa));
    CUDA_CHECK(cudaFree(fb));
    CUDA_CHECK(cudaFree(fc));
    CUDA_CHECK(cudaFree(fs));
}

static CheckResult gemm_check(Problem *p, const char *version)
{
    size_t mn = (size_t)p->m * p->n;
    double *got = download(p->c, mn, p->dtype);
    if (!p->ref) {  // once per problem: the CPU's, or cuBLAS's float32 result
        p->ref = (double *)host_alloc(mn * sizeof(double), "reference");
        p->scale = (double *)host_alloc(mn * sizeof(double), "scale");
        if (cpu_reference(p)) {
#pragma omp parallel for schedule(dynamic, 1)
            for (size_t i = 0; i < (size_t)p->m; i++)
                for (size_t j = 0; j < (size_t)p->n; j++) cpu_element(p, i, j, &p->ref[i * p->n + j], &p->scale[i * p->n + j]);
        } else {
            cublas_reference(p, p->ref, p->scale);
        }
    }
    double *ref = p->ref, *scale = p->scale, arith = (p->k + 3.0) * 0x1p-24;
    CheckResult r;
    if (cpu_reference(p)) {
        GemmBound b = {ref, scale, arith, p->dtype};
        r = check_elements(version, p->size, got, ref, mn, gemm_bound, &b, p->n);
    } else {
        GemmBound b = {ref, scale, 2 * arith, p->dtype};
        r = check_elements(version, p->size, got, ref, mn, gemm_bound, &b, p->n);
        enum { SAMPLE = 1024 };  // and a sample against the CPU in double: the corners, then seeded
        double sg[SAMPLE], sr[SAMPLE], ss[SAMPLE];
        uint64_t state = 0x5eed ^ (uint64_t)mn;
        for (int s = 0; s < SAMPLE; s++) {
            size_t i = s < 4 ? (s & 1 ? p->m - 1 : 0) : rng_next(&state) % p->m;
            size_t j = s < 4 ? (s & 2 ? p->n - 1 : 0) : rng_next(&state) % p->n;
            sg[s] = got[i * p->n + j];
            cpu_element(p, i, j, &sr[s], &ss[s]);
        }
        GemmBound bs = {sr, ss, arith, p->dtype};
        CheckResult rs = check_elements(version, p->size, sg, sr, SAMPLE, gemm_bound, &bs, 0);
        r.mismatches += rs.mismatches;
        r.max_abs_err = fmax(r.max_abs_err, rs.max_abs_err);
        r.max_rel_err = fmax(r.max_rel_err, rs.max_rel_err);
    }
    free(got);
    return r;
}

// A, B, and C read and written once.
static double gemm_bytes(const Problem *p)
{
    return ((double)p->m * p->k + (double)p->k * p->n + 2.0 * p->m * p->n) * dtype_bytes(p->dtype);
}

static double gemm_flops(const Problem *p) { return 2.0 * gemm_macs_of(p); }
#line 1674 "chapters/07-gemm.md"
// Whether swizzle_chunk<ROW_BYTES> permutes each row's chunks, and puts the same chunk of
// 8 consecutive rows (from a multiple of 8) in 8 different 16-byte bank groups.
template <int ROW_BYTES> static bool swizzle_ok(void)
{
    const int chunks = ROW_BYTES / 16;
    for (int r = 0; r < 64; r++) {
        int seen = 0;
        for (int c = 0; c < chunks; c++) {
            int s = swizzle_chunk<ROW_BYTES>(r, c);
            if (s < 0 || s >= chunks || seen >> s & 1) return false;
            seen |= 1 << s;
        }
    }
    for (int r0 = 0; r0 < 64; r0 += 8)
        for (int c = 0; c < chunks; c++) {
            int groups = 0;  // a 128-byte line holds 8 groups of 16 bytes
            for (int r = r0; r < r0 + 8; r++) groups |= 1 << ((r * ROW_BYTES / 16 + swizzle_chunk<ROW_BYTES>(r, c)) % 8);
            if (groups != 0xFF) return false;
        }
    return true;
}

// ldmatrix_x4 emulated on the host, over a 16 x 16 tile of (row, column) pairs: the
// element that register reg of lane gets, low half (hi 0) or high (hi 1), when each lane
// gives row row_of(lane) at column col_of(lane).
static void emulated_ldsm(int lane, int reg, int hi, int (*row_of)(int), int (*col_of)(int), int *r, int *c)
{
    int giver = 8 * reg + lane / 4;  // matrix reg's row lane / 4 comes from this lane
    *r = row_of(giver);
    *c = col_of(giver) + 2 * (lane % 4) + hi;
}

// Whether the ldsm_* helpers give mma_16816's fragments (the PTX manual's layouts for
// m16n8k16): A register q holds row g + 8 (q % 2), columns 2t + 8 (q / 2) and the next;
// B register q of n-tile j holds n-row 8 j + g, k-columns 2t + 8 (q % 2) and the next.
static bool ldsm_layouts_ok(void)
{
    for (int lane = 0; lane < 32; lane++) {
        int g = lane / 4, t = lane % 4, r, c;
        for (int q = 0; q < 4; q++)
            for (int hi = 0; hi < 2; hi++) {
                emulated_ldsm(lane, q, hi, ldsm_a_row, ldsm_a_col, &r, &c);
                if (r != g + 8 * (q % 2) || c != 2 * t + 8 * (q / 2) + hi) return false;
                emulated_ldsm(lane, q, hi, ldsm_b_row, ldsm_b_col, &r, &c);  // q / 2: the n-tile, q % 2: its register
                if (r != 8 * (q / 2) + g || c != 2 * t + 8 * (q % 2) + hi) return false;
            }
    }
    return true;
}

static int gemm_self_test(void)
{
    int passed = 0, failed = 0, m, n, k;
    SELF_TEST(!parse_gemm_size("4096x11008x4096", &m, &n, &k) && m == 4096 && n == 11008 && k == 4096);
    SELF_TEST(parse_gemm_size("4096x4096", &m, &n, &k) && parse_gemm_size("0x1x1", &m, &n, &k));
    SELF_TEST(parse_gemm_size("1x1x1x", &m, &n, &k) && parse_gemm_size("1x1x2097152", &m, &n, &k));
    SELF_TEST(parse_gemm_size(" 1x1x1", &m, &n, &k) && parse_gemm_size("1x-1x1", &m, &n, &k));
    // [1 2; 3 4] [5 6; 7 8] = [19 22; 43 50]; alpha 0.75, beta -0.5 on C0 = 1
    float a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8}, bt[4] = {5, 7, 6, 8}, c0[4] = {1, 1, 1, 1};
    Problem p;
    memset(&p, 0, sizeof p);
    p.m = p.n = p.k = 2;
    p.alpha = 0.75f;
    p.beta = -0.5f;
    p.ha = a;
    p.hb = b;
    p.hc0 = c0;
    double ref, scale;
    cpu_element(&p, 1, 0, &ref, &scale);
    SELF_TEST(ref == 0.75 * 43 - 0.5 && scale == 0.75 * 43 + 0.5);
    p.hb = bt;
    p.b_transposed = true;
    cpu_element(&p, 0, 1, &ref, &scale);
    SELF_TEST(ref == 0.75 * 22 - 0.5);
    SELF_TEST(swizzle_ok<64>() && swizzle_ok<128>());
    SELF_TEST(ldsm_layouts_ok());
    printf("gemm: %d passed, %d failed\n", passed, failed);
    return failed;
}
#line 1268 "chapters/08-gemm-hopper.md"
// <<the-hopper-gemm-chapter>>
#line 1272 "chapters/08-gemm-hopper.md"
static const char *const DTYPES[] = {"bf16", "f16"};
// <<gemm-sizes>>
#line 1756 "chapters/07-gemm.md"
static const char *const BENCH_SIZES[] = {"1024x1024x1024", "2048x2048x2048", "4096x4096x4096", "8192x8192x8192",
                                          "4096x11008x4096", "4096x4096x11008", "4096x14336x4096"};
static const char *const CHECK_SIZES[] = {"16x8x16", "2x3x5", "31x47x73", "127x129x31", "1023x1025x1021", "128x128x8",
                                          "256x384x64", "129x257x40", "1024x1024x1024"};
#line 1274 "chapters/08-gemm-hopper.md"
static const char *const HOPPER_CHECK_SIZES[] = {"16x8x16", "128x128x8", "256x384x64", "129x257x40", "31x47x73",
                                                 "1000x1000x1000", "1023x1025x1024", "333x4097x200", "1024x1024x1024"};

static const Chapter GEMM_HOPPER = {
    "gemm_hopper", "C = alpha A B + beta C in bfloat16 and float16 with TMA, wgmma and warp specialization",
    VERSIONS, sizeof VERSIONS / sizeof VERSIONS[0],
    DTYPES, 2, BENCH_SIZES, sizeof BENCH_SIZES / sizeof BENCH_SIZES[0],
    HOPPER_CHECK_SIZES, sizeof HOPPER_CHECK_SIZES / sizeof HOPPER_CHECK_SIZES[0],
    "copy", "cublas", gemm_bad_size,
    gemm_create, gemm_destroy, gemm_poison, gemm_check, gemm_bytes, gemm_flops,
    NULL, gemm_self_test, hopper_compute_ceiling,
};

int main(int argc, char **argv) { return harness_main(&GEMM_HOPPER, argc, argv); }
