#line 480 "chapters/07-gemm.md"
// mma.cuh: the book's tensor-core toolkit for sm_80 and newer (written in the GEMM
// chapter): shared-memory addresses, cp.async, ldmatrix, mma.sync m16n8k16, swizzles.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
// <<tensor-core-toolkit>>
#line 490 "chapters/07-gemm.md"
// The 32-bit shared-memory address that PTX's shared-memory instructions take.
__device__ inline uint32_t smem_u32(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

// 16 bytes from global to shared memory, asynchronously (cached in L2 only). With
// src_bytes 0 nothing is read and the 16 bytes are zeros: the rows past a matrix's edge.
__device__ inline void cp_async_16(void *smem, const void *gmem, int src_bytes)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(smem)), "l"(gmem),
                 "r"(src_bytes));
}
// Closes the group of copies issued since the last commit.
__device__ inline void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// Waits until at most N committed groups are still in flight.
template <int N> __device__ inline void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// Four 8x8 matrices of 16-bit elements from shared memory, into the fragment pattern:
// lane i gives the address of row i % 8 of matrix i / 8 (16 bytes, 16-byte aligned).
__device__ inline void ldmatrix_x4(uint32_t r[4], uint32_t smem_addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr));
}
__device__ inline void ldmatrix_x4(uint32_t r[4], const void *smem) { ldmatrix_x4(r, smem_u32(smem)); }

// Which row of a tile, and which column (its first element), each lane gives ldmatrix_x4
// so that the four registers come out as mma_16816's fragments:
// - A, a 16 x 16 tile stored row-major (M by K): rows 0-15 at column 0, then at column 8;
// - B, two 8-column n-tiles stored as rows of K (N by K, "col"): for each n-tile, its
//   8 rows at column 0, then at column 8; registers 0-1 are the first n-tile's, 2-3 the
//   second's.
__host__ __device__ inline int ldsm_a_row(int lane) { return lane % 16; }
__host__ __device__ inline int ldsm_a_col(int lane) { return lane / 16 * 8; }
__host__ __device__ inline int ldsm_b_row(int lane) { return lane % 8 + lane / 16 * 8; }
__host__ __device__ inline int ldsm_b_col(int lane) { return lane / 8 % 2 * 8; }

// D = A B + D for one m16n8k16 tile: A four registers, B two, D four floats.
template <typename T> __device__ inline void mma_16816(float d[4], const uint32_t a[4], const uint32_t b[2]);
template <> __device__ inline void mma_16816<__nv_bfloat16>(float d[4], const uint32_t a[4], const uint32_t b[2])
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
template <> __device__ inline void mma_16816<__half>(float d[4], const uint32_t a[4], const uint32_t b[2])
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// Where chunk c (16 bytes) of row r of a tile is stored, for rows of ROW_BYTES (64 or
// 128): any 8 consecutive rows read at one chunk land in 8 different 16-byte bank groups.
template <int ROW_BYTES> __host__ __device__ inline int swizzle_chunk(int r, int c)
{
    static_assert(ROW_BYTES == 64 || ROW_BYTES == 128, "rows of 64 or 128 bytes");
    return ROW_BYTES == 128 ? c ^ (r & 7) : c ^ ((r >> 1) & 3);
}
