#line 76 "chapters/08-gemm-hopper.md"
// hopper.cuh: the tensor-core toolkit's Hopper part (written in the Hopper GEMM chapter):
// transaction barriers, the TMA and its tensor maps, clusters, wgmma, setmaxnreg.
#pragma once
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <type_traits>
#include "mma.cuh"
// <<hopper-toolkit>>
#line 96 "chapters/08-gemm-hopper.md"
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define SM90A_CODE 1
#else
#define SM90A_CODE 0
#endif

// Dynamic shared memory is aligned to 16 bytes only; the 128-byte swizzle of the TMA and
// wgmma needs 1024: kernels round the start up (and ask for 1 KiB more).
__device__ inline unsigned char *aligned_1024(unsigned char *p)
{
    return p + ((1024 - (smem_u32(p) & 1023)) & 1023);
}

// ---- transaction barriers (mbarrier) ----

// A phase completes when `count` threads have arrived and the bytes announced have landed.
__device__ inline void mbar_init(uint64_t *bar, int count)
{
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(count));
}
// Makes the initialisation visible to the copy engine and to the cluster's other blocks.
__device__ inline void mbar_init_fence() { asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory"); }
// One arrival, announcing `bytes` that the copy engine will deliver in this phase.
__device__ inline void mbar_expect_tx(uint64_t *bar, uint32_t bytes)
{
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(bytes) : "memory");
}
__device__ inline void mbar_arrive(uint64_t *bar)
{
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_u32(bar)) : "memory");
}
// One arrival on the barrier at bar's offset in block `rank` of the cluster, with the
// default semantics (release at the block's scope): what it orders are this thread's
// reads of a stage, which its wgmma_wait has already seen complete. A release at the
// cluster's scope would make the thread wait for more, and its warpgroup with it.
__device__ inline void mbar_arrive_cluster(uint64_t *bar, uint32_t rank)
{
    asm volatile("{\n.reg .b32 ra;\nmapa.shared::cluster.u32 ra, %0, %1;\n"
                 "mbarrier.arrive.shared::cluster.b64 _, [ra];\n}\n" ::"r"(smem_u32(bar)),
                 "r"(rank)
                 : "memory");
}
// Waits until the phase of this parity has completed.
__device__ inline void mbar_wait(uint64_t *bar, int parity)
{
    uint32_t done;
    do {
        asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
                     : "=r"(done)
                     : "r"(smem_u32(bar)), "r"(parity)
                     : "memory");
    } while (!done);
}

// ---- the TMA ----

// A box of a 2-D tensor into shared memory; the barrier receives its bytes. c0 is the
// coordinate along the contiguous dimension (elements), c1 along the other (rows).
__device__ inline void tma_load_2d(void *dst, const CUtensorMap *map, uint64_t *bar, int c0, int c1)
{
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4}], [%2];\n" ::"r"(
                     smem_u32(dst)),
                 "l"((uint64_t)map), "r"(smem_u32(bar)), "r"(c0), "r"(c1)
                 : "memory");
}
// The same box written at dst's offset in every block of the cluster in `mask`, whose
// barriers at bar's offset each receive the bytes.
__device__ inline void tma_load_2d_multicast(void *dst, const CUtensorMap *map, uint64_t *bar, int c0, int c1,
                                             uint16_t mask)
{
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster"
                 " [%0], [%1, {%3, %4}], [%2], %5;\n" ::"r"(smem_u32(dst)),
                 "l"((uint64_t)map), "r"(smem_u32(bar)), "r"(c0), "r"(c1), "h"(mask)
                 : "memory");
}

// The tensor map of a rows x cols matrix of 16-bit elements, row-major, read in boxes of
// box_rows x 64 elements (128-byte rows) with the 128-byte swizzle; zeros past its
// edges. cols must be a multiple of 8 (rows start on 16-byte boundaries). The encoder
// is the driver's, found by the harness's driver_entry.
static inline PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder(void)
{
    static PFN_cuTensorMapEncodeTiled_v12000 encode = NULL;
    if (!encode) {
        encode = (PFN_cuTensorMapEncodeTiled_v12000)driver_entry("cuTensorMapEncodeTiled");
        if (!encode) {
            fprintf(stderr, "error: the driver has no cuTensorMapEncodeTiled\n");
            exit(1);
        }
    }
    return encode;
}
static inline CUtensorMap tma_map_2d(const void *base, bool bf16, int rows, int cols, int box_rows)
{
    PFN_cuTensorMapEncodeTiled_v12000 encode = tensor_map_encoder();
    CUtensorMap map;
    cuuint64_t dims[2] = {(cuuint64_t)cols, (cuuint64_t)rows}, strides[1] = {(cuuint64_t)cols * 2};
    cuuint32_t box[2] = {64, (cuuint32_t)box_rows}, steps[2] = {1, 1};
    CUresult r = encode(&map, bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2,
                        (void *)base, dims, strides, box, steps, CU_TENSOR_MAP_INTERLEAVE_NONE,
                        CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS) {
        fprintf(stderr, "error: cuTensorMapEncodeTiled failed (%d) for %d x %d\n", (int)r, rows, cols);
        exit(1);
    }
    return map;
}

// The tensor map of `blocks` float32 matrices of rows x cols, one after another, in boxes of
// box_rows x 32 floats (128-byte rows) with the 128-byte swizzle, a box within one matrix:
// rows past a matrix's end are neither read nor written. For the reduce-add below.
static inline CUtensorMap tma_map_f32_blocks(float *base, int blocks, int rows, int cols, int box_rows)
{
    CUtensorMap map;
    cuuint64_t dims[3] = {(cuuint64_t)cols, (cuuint64_t)rows, (cuuint64_t)blocks};
    cuuint64_t strides[2] = {(cuuint64_t)cols * 4, (cuuint64_t)rows * cols * 4};
    cuuint32_t box[3] = {32, (cuuint32_t)box_rows, 1}, steps[3] = {1, 1, 1};
    CUresult r = tensor_map_encoder()(&map, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 3, base, dims, strides, box, steps,
                                      CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                      CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS) {
        fprintf(stderr, "error: cuTensorMapEncodeTiled failed (%d) for %d x %d x %d floats\n", (int)r, blocks, rows, cols);
        exit(1);
    }
    return map;
}

// The box of a 2-D tensor at (c0, c1) written from shared memory (one bulk group per
// commit); wait_read returns once the copies have read their shared memory.
__device__ inline void tma_store_2d(const CUtensorMap *map, const void *src, int c0, int c1)
{
    asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [%0, {%2, %3}], [%1];\n" ::"l"((uint64_t)map),
                 "r"(smem_u32(src)), "r"(c0), "r"(c1)
                 : "memory");
}
// A box of shared memory added to the 3-D tensor of `map` at (c0, c1, c2), element by
// element, in the L2: the TMA's reduce-add (one bulk group per commit, as a store).
__device__ inline void tma_reduce_add_3d(const CUtensorMap *map, const void *src, int c0, int c1, int c2)
{
    asm volatile("cp.reduce.async.bulk.tensor.3d.global.shared::cta.add.tile.bulk_group [%0, {%2, %3, %4}], [%1];\n" ::"l"(
                     (uint64_t)map),
                 "r"(smem_u32(src)), "r"(c0), "r"(c1), "r"(c2)
                 : "memory");
}
__device__ inline void bulk_commit() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }
__device__ inline void bulk_wait_read() { asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory"); }
__device__ inline void bulk_wait() { asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory"); }
// Orders this thread's ordinary stores to shared memory before the copy engine's reads.
__device__ inline void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
// A barrier of `threads` threads (a multiple of 32) on hardware barrier `id` (1 to 15).
__device__ inline void named_barrier(int id, int threads)
{
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
// Arrives at hardware barrier `id` of `threads` threads without waiting for it.
__device__ inline void named_barrier_arrive(int id, int threads)
{
    asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// ---- clusters ----
__device__ inline uint32_t cluster_rank()
{
    uint32_t r;
    asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
    return r;
}
// Every thread of every block of the cluster arrives, then waits for all.
__device__ inline void cluster_sync()
{
    asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
}

// ---- wgmma ----

// The descriptor of a K-major tile of 128-byte rows stored with the 128-byte swizzle,
// starting on a 1024-byte boundary: address / 16 in bits 0-13, a leading-byte offset of 1
// (unused with this swizzle) in bits 16-29, the stride between groups of eight rows
// (1024 bytes) / 16 in bits 32-45, and the swizzle mode (1) in bits 62-63. A k16 step
// further along K starts 32 bytes further.
__device__ inline uint64_t wgmma_desc_k128(const void *smem)
{
    uint64_t a = smem_u32(smem);
    return ((a & 0x3FFFF) >> 4) | (1ull << 16) | (64ull << 32) | (1ull << 62);
}
__device__ inline void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ inline void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> __device__ inline void wgmma_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory"); }
template <int R> __device__ inline void setmaxnreg_inc() { asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(R)); }
template <int R> __device__ inline void setmaxnreg_dec() { asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(R)); }

// The 128 accumulators of wgmma m64n256k16 (a 64 x 256 tile of floats over the 128
// threads of a warpgroup) as asm operands, and their names in the instruction.
#define WGMMA_D8(i) "+f"(d[i]), "+f"(d[(i) + 1]), "+f"(d[(i) + 2]), "+f"(d[(i) + 3]), "+f"(d[(i) + 4]), "+f"(d[(i) + 5]), "+f"(d[(i) + 6]), "+f"(d[(i) + 7])
#define WGMMA_D32(i) WGMMA_D8(i), WGMMA_D8((i) + 8), WGMMA_D8((i) + 16), WGMMA_D8((i) + 24)
#define WGMMA_D128 WGMMA_D32(0), WGMMA_D32(32), WGMMA_D32(64), WGMMA_D32(96)
#define WGMMA_D128_NAMES "{" \
    "%0, %1, %2, %3, %4, %5, %6, %7, " \
    "%8, %9, %10, %11, %12, %13, %14, %15, " \
    "%16, %17, %18, %19, %20, %21, %22, %23, " \
    "%24, %25, %26, %27, %28, %29, %30, %31, " \
    "%32, %33, %34, %35, %36, %37, %38, %39, " \
    "%40, %41, %42, %43, %44, %45, %46, %47, " \
    "%48, %49, %50, %51, %52, %53, %54, %55, " \
    "%56, %57, %58, %59, %60, %61, %62, %63, " \
    "%64, %65, %66, %67, %68, %69, %70, %71, " \
    "%72, %73, %74, %75, %76, %77, %78, %79, " \
    "%80, %81, %82, %83, %84, %85, %86, %87, " \
    "%88, %89, %90, %91, %92, %93, %94, %95, " \
    "%96, %97, %98, %99, %100, %101, %102, %103, " \
    "%104, %105, %106, %107, %108, %109, %110, %111, " \
    "%112, %113, %114, %115, %116, %117, %118, %119, " \
    "%120, %121, %122, %123, %124, %125, %126, %127}"

// D (+)= A B for one 64 x 256 x 16 step of a warpgroup, A and B K-major in shared memory
// (descriptors da, db); with accumulate 0, D = A B. Asynchronous: see wgmma_commit and
// wgmma_wait. Accumulator i of a thread: row 16 (warp % 4) + lane / 4 + 8 ((i / 2) % 2),
// column 8 (i / 4) + 2 (lane % 4) + i % 2 of the 64 x 256 tile.
template <typename T> __device__ inline void wgmma_m64n256k16(float d[128], uint64_t da, uint64_t db, int accumulate);
template <>
__device__ inline void wgmma_m64n256k16<__nv_bfloat16>(float d[128], uint64_t da, uint64_t db, int accumulate)
{
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 " WGMMA_D128_NAMES ", %128, %129, p, 1, 1, 0, 0;\n}\n"
                 : WGMMA_D128
                 : "l"(da), "l"(db), "r"(accumulate));
}
template <>
__device__ inline void wgmma_m64n256k16<__half>(float d[128], uint64_t da, uint64_t db, int accumulate)
{
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 " WGMMA_D128_NAMES ", %128, %129, p, 1, 1, 0, 0;\n}\n"
                 : WGMMA_D128
                 : "l"(da), "l"(db), "r"(accumulate));
}

// The same for a 64 x 128 tile: 64 accumulators a thread.
#define WGMMA_D64 WGMMA_D32(0), WGMMA_D32(32)
#define WGMMA_D64_NAMES "{" \
    "%0, %1, %2, %3, %4, %5, %6, %7, " \
    "%8, %9, %10, %11, %12, %13, %14, %15, " \
    "%16, %17, %18, %19, %20, %21, %22, %23, " \
    "%24, %25, %26, %27, %28, %29, %30, %31, " \
    "%32, %33, %34, %35, %36, %37, %38, %39, " \
    "%40, %41, %42, %43, %44, %45, %46, %47, " \
    "%48, %49, %50, %51, %52, %53, %54, %55, " \
    "%56, %57, %58, %59, %60, %61, %62, %63}"
// TA, TB: A or B MN-major (1), read through a descriptor of rows along K with M or N
// contiguous (the instruction's transpose flags, for 16-bit types), or K-major (0).
template <typename T, int TA = 0, int TB = 0>
__device__ inline void wgmma_m64n128k16(float d[64], uint64_t da, uint64_t db, int accumulate)
{
    if constexpr (std::is_same<T, __nv_bfloat16>::value)
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " WGMMA_D64_NAMES ", %64, %65, p, 1, 1, %67, %68;\n}\n"
                     : WGMMA_D64
                     : "l"(da), "l"(db), "r"(accumulate), "n"(TA), "n"(TB));
    else
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 " WGMMA_D64_NAMES ", %64, %65, p, 1, 1, %67, %68;\n}\n"
                     : WGMMA_D64
                     : "l"(da), "l"(db), "r"(accumulate), "n"(TA), "n"(TB));
}

// And for a 64 x 64 tile: 32 accumulators a thread.
#define WGMMA_D32_NAMES "{" \
    "%0, %1, %2, %3, %4, %5, %6, %7, " \
    "%8, %9, %10, %11, %12, %13, %14, %15, " \
    "%16, %17, %18, %19, %20, %21, %22, %23, " \
    "%24, %25, %26, %27, %28, %29, %30, %31}"
template <typename T, int TA = 0, int TB = 0>
__device__ inline void wgmma_m64n64k16(float d[32], uint64_t da, uint64_t db, int accumulate)
{
    if constexpr (std::is_same<T, __nv_bfloat16>::value)
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " WGMMA_D32_NAMES ", %32, %33, p, 1, 1, %35, %36;\n}\n"
                     : WGMMA_D32(0)
                     : "l"(da), "l"(db), "r"(accumulate), "n"(TA), "n"(TB));
    else
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 " WGMMA_D32_NAMES ", %32, %33, p, 1, 1, %35, %36;\n}\n"
                     : WGMMA_D32(0)
                     : "l"(da), "l"(db), "r"(accumulate), "n"(TA), "n"(TB));
}
