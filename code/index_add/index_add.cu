#line 25 "chapters/05-index-add.md"
// index_add.cu: self.index_add_(dim, index, source, alpha) on the GPU, f32 f16 bf16,
// int32 and int64 indices: atomics, vector reductions, shared memory, and a sort.
#include "../harness/harness.cuh"
#include <cub/cub.cuh>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
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
#line 33 "chapters/05-index-add.md"
// <<half-atomics>>
#line 287 "chapters/03-atomics.md"
// Adds v to *p with a 32-bit half2 atomic on the aligned word that holds *p, the other
// half of the word padded with zero, when the whole word lies inside [lo, hi); otherwise
// with the (compare-and-swap) 16-bit atomic.
__device__ inline void fast_atomic_add(__half *p, __half v, const __half *lo, const __half *hi)
{
    uintptr_t a = (uintptr_t)p;
    __half *word = (__half *)(a & ~(uintptr_t)3);
    if (word >= lo && word + 2 <= hi) {
        __half zero = __ushort_as_half(0);
        // little-endian: the half at the lower address is the low half of the word
        __half2 v2 = (a & 2) ? __halves2half2(zero, v) : __halves2half2(v, zero);
        atomicAdd((__half2 *)word, v2);
    } else {
        atomicAdd(p, v);
    }
}
#line 34 "chapters/05-index-add.md"
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
#line 35 "chapters/05-index-add.md"
// <<the-index-add-problem>>
#line 78 "chapters/05-index-add.md"
struct Problem {
    DType dtype;
    char size[96];
    size_t outer, d, inner, l;     // self (outer, d, inner), source (outer, l, inner), index (l)
    int dim;
    bool index64;                  // the index is int64 (else int32)
    float alpha;                   // the checked run's; timed runs alternate its sign
    int launches;                  // launches since self was last reset to self0
    void *self, *self0, *source;   // self is set to self0 before each checked run
    void *index;                   // (l) int32 or int64, as index64 says
    int *bad_position;             // (1) the smallest position of an index out of range, or INT_MAX
    // the sorted path's scratch: 32-bit keys, positions, their sorted copies, CUB's space
    unsigned *keys, *keys_sorted;
    int *positions, *positions_sorted;
    float *partial;                // the float sums of the pieces of runs that cross a chunk's edge
    void *cub_space;
    size_t cub_bytes;
    float *hself0, *hsource;       // as the device sees them, on the host
    long long *hindex;             // the index, on the host
    long long expected_bad;        // the position of the bad index (":bad"), or -1
    int type_roundings;            // set by launchers: roundings in the element type per slice added
    bool deterministic;            // set by launchers whose result cannot depend on timing
};
#line 36 "chapters/05-index-add.md"
// <<index-add-kernels>>
#line 112 "chapters/05-index-add.md"
// The index at position l, checked: -1 when it is out of [0, d), and then the smallest such
// position is recorded in *bad.
template <typename Index>
__device__ inline long long checked_index(const Index *index, size_t l, size_t d, int *bad)
{
    long long k = (long long)index[l];
    if (k < 0 || k >= (long long)d) {
        atomicMin(bad, (int)(l < (size_t)INT_MAX ? l : INT_MAX));
        return -1;
    }
    return k;
}
#line 135 "chapters/05-index-add.md"
__device__ inline void atomic_add_value(float *p, float v, const float *, const float *) { atomicAdd(p, v); }
__device__ inline void atomic_add_value(__half *p, float v, const __half *lo, const __half *hi)
{
    fast_atomic_add(p, __float2half(v), lo, hi);  // the padded half2 atomic where it fits
}
__device__ inline void atomic_add_value(__nv_bfloat16 *p, float v, const __nv_bfloat16 *, const __nv_bfloat16 *)
{
    atomicAdd(p, __float2bfloat16(v));
}

// a0: one thread per element of source, one atomic per element into self.
template <typename T, typename Index>
__global__ void index_add_a0(T *self, const T *source, const Index *index, size_t d, size_t l, size_t inner,
                             size_t count, float alpha, int *bad)
{
    size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (e >= count) return;
    size_t i = e % inner, row = e / inner, pos = row % l, o = row / l;
    long long k = checked_index(index, pos, d, bad);
    if (k < 0) return;
    T *dst = self + (o * d + (size_t)k) * inner + i;
    atomic_add_value(dst, alpha * to_float(source[e]), self, self + (o + 1) * d * inner);
}
#line 218 "chapters/05-index-add.md"
// a1: g lanes per row of source (g a power of two, at most 32); they walk the row in
// 16-byte packs, each scaled by alpha in float, rounded to T and added with one vector
// reduction. Rows whose length is not whole packs go element by element.
template <typename T, typename Index>
__global__ void index_add_a1(T *self, const T *source, const Index *index, size_t d, size_t l, size_t inner,
                             size_t rows, float alpha, int *bad, int g)
{
    const int V = 16 / sizeof(T);
    size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x, row = t / g;
    int lane = (int)(t % g);
    if (row >= rows) return;
    size_t pos = row % l, o = row / l;
    long long k = checked_index(index, pos, d, bad);  // every lane of the group loads the same index
    if (k < 0) return;
    T *dst = self + (o * d + (size_t)k) * inner;
    const T *src = source + row * inner;
    if (inner % V == 0) {
        for (size_t c = (size_t)lane * V; c < inner; c += (size_t)g * V) {
            int4 in = *reinterpret_cast<const int4 *>(src + c), out;
            const T *a = reinterpret_cast<const T *>(&in);
            T *b = reinterpret_cast<T *>(&out);
#pragma unroll
            for (int j = 0; j < V; j++) b[j] = from_float<T>(alpha * to_float(a[j]));
            red_add_pack(dst + c, out);
        }
    } else {
        for (size_t c = lane; c < inner; c += g)
            atomic_add_value(dst + c, alpha * to_float(src[c]), self, self + (o + 1) * d * inner);
    }
}
#line 311 "chapters/05-index-add.md"
// a2: self (outer, d, inner) accumulated in float in shared memory by each block over its
// rows of source (grid-stride), then added into self with one atomic per element.
template <typename T, typename Index>
__global__ void index_add_a2(T *self, const T *source, const Index *index, size_t d, size_t l, size_t inner,
                             size_t outer, float alpha, int *bad)
{
    extern __shared__ float acc[];  // (outer, d, inner)
    size_t self_count = outer * d * inner, count = outer * l * inner;
    for (size_t e = threadIdx.x; e < self_count; e += blockDim.x) acc[e] = 0.0f;
    __syncthreads();
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < count; e += (size_t)gridDim.x * blockDim.x) {
        size_t i = e % inner, row = e / inner, pos = row % l, o = row / l;
        long long k = checked_index(index, pos, d, bad);
        if (k >= 0) atomicAdd(&acc[(o * d + (size_t)k) * inner + i], alpha * to_float(source[e]));
    }
    __syncthreads();
    for (size_t e = threadIdx.x; e < self_count; e += blockDim.x)
        if (acc[e] != 0.0f) atomic_add_value(self + e, acc[e], self, self + self_count);
}
#line 427 "chapters/05-index-add.md"
// Copies the index into 32-bit keys and positions, checking each; a bad one gets key d.
template <typename Index>
__global__ void index_to_keys(unsigned *keys, int *positions, const Index *index, size_t d, size_t l, int *bad)
{
    size_t pos = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (pos >= l) return;
    long long k = checked_index(index, pos, d, bad);
    keys[pos] = k < 0 ? (unsigned)d : (unsigned)k;
    positions[pos] = (int)pos;
}

enum { CHUNK = 32 };  // sorted entries per chunk

// W elements of T (one 16-byte pack, or one element) added to, or stored from, W floats.
template <typename T, int W>
__device__ inline void add_slice(float *acc, const T *from)
{
    if (W * sizeof(T) == 16) {
        int4 in = *reinterpret_cast<const int4 *>(from);
        const T *e = reinterpret_cast<const T *>(&in);
#pragma unroll
        for (int j = 0; j < W; j++) acc[j] += to_float(e[j]);
    } else {
#pragma unroll
        for (int j = 0; j < W; j++) acc[j] += to_float(from[j]);
    }
}

// self = self + alpha * sum, for W elements, each rounded once.
template <typename T, int W>
__device__ inline void add_into_self(T *out, const float *sum, float alpha)
{
    if (W * sizeof(T) == 16) {
        int4 now = *reinterpret_cast<const int4 *>(out);
        T *e = reinterpret_cast<T *>(&now);
#pragma unroll
        for (int j = 0; j < W; j++) e[j] = from_float<T>(to_float(e[j]) + alpha * sum[j]);
        *reinterpret_cast<int4 *>(out) = now;
    } else {
#pragma unroll
        for (int j = 0; j < W; j++) out[j] = from_float<T>(to_float(out[j]) + alpha * sum[j]);
    }
}

// The thread's place: (chunk, o, column) from its number, columns fastest. A row has
// inner / W columns of W elements.
struct ChunkLane {
    size_t chunk, o, c;  // c: the column's first element
};

__device__ inline ChunkLane chunk_lane(size_t inner, size_t outer, int w)
{
    size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x, per_row = inner / w, rest = t / per_row;
    ChunkLane z = {rest / outer, rest % outer, (t % per_row) * w};
    return z;
}

// Where a piece's float sums are: partial[chunk][slot][o][inner].
__device__ inline size_t piece_sums(size_t chunk, int slot, ChunkLane z, size_t inner, size_t outer)
{
    return ((chunk * 2 + slot) * outer + z.o) * inner + z.c;
}

// a3's first pass: a thread per (chunk, o, column) walks the chunk's sorted entries,
// adding their source values in float. A run of keys wholly in the chunk goes into self;
// a piece of a run that crosses an edge leaves its sums in slot 0 (it holds the chunk's
// first entry) or slot 1 (its last).
template <typename T, int W>
__global__ void index_add_chunks(T *self, const T *source, const unsigned *keys, const int *positions,
                                 float *partial, size_t d, size_t l, size_t inner, size_t outer, float alpha)
{
    ChunkLane z = chunk_lane(inner, outer, W);
    size_t begin = z.chunk * CHUNK;
    if (begin >= l || keys[begin] >= d) return;  // past the entries, or only bad keys (they sort last)
    size_t end = begin + CHUNK < l ? begin + CHUNK : l, piece = begin;
    const T *src = source + z.o * l * inner + z.c;
    unsigned key = keys[begin];
    float acc[W];
#pragma unroll
    for (int j = 0; j < W; j++) acc[j] = 0.0f;
    for (size_t e = begin;; e++) {
        unsigned next = e < end ? keys[e] : UINT_MAX;
        if (next != key) {  // the piece [piece, e) of key's run ends here
            bool starts = piece == 0 || keys[piece - 1] != key, ends = e == l || keys[e] != key;
            if (starts && ends) {
                add_into_self<T, W>(self + (z.o * d + key) * inner + z.c, acc, alpha);
            } else {
                float *to = partial + piece_sums(z.chunk, piece == begin ? 0 : 1, z, inner, outer);
#pragma unroll
                for (int j = 0; j < W; j++) to[j] = acc[j];
            }
            if (e == end || next >= d) return;  // the chunk's end, or the bad keys
            key = next;
            piece = e;
#pragma unroll
            for (int j = 0; j < W; j++) acc[j] = 0.0f;
        }
        add_slice<T, W>(acc, src + (size_t)positions[e] * inner);
    }
}

// a3's second pass: a thread per (chunk, o, column) for the chunk where a run that began
// in an earlier chunk ends. It finds the run's first entry, adds the pieces' sums from the
// first chunk to this one, and adds the total into self.
template <typename T, int W>
__global__ void index_add_combine(T *self, const unsigned *keys, const float *partial, size_t d, size_t l,
                                  size_t inner, size_t outer, float alpha)
{
    ChunkLane z = chunk_lane(inner, outer, W);
    size_t last = z.chunk * CHUNK;  // the run holds this chunk's first entry
    if (last == 0 || last >= l) return;
    unsigned key = keys[last];
    if (key >= d || keys[last - 1] != key) return;       // bad, or the run began in this chunk
    size_t end = last + CHUNK < l ? last + CHUNK : l;
    if (end < l && keys[end] == key) return;             // the run goes on: a later chunk ends it
    size_t lo = 0, hi = last;                            // the run's first entry: the first key equal
    while (lo < hi) {                                    // to key, found in [0, last)
        size_t mid = (lo + hi) / 2;
        if (keys[mid] < key) lo = mid + 1;
        else hi = mid;
    }
    size_t first = lo / CHUNK;
    float sum[W];
    const float *from = partial + piece_sums(first, lo == first * CHUNK ? 0 : 1, z, inner, outer);
#pragma unroll
    for (int j = 0; j < W; j++) sum[j] = from[j];
#pragma unroll 4
    for (size_t chunk = first + 1; chunk <= z.chunk; chunk++) {
        from = partial + piece_sums(chunk, 0, z, inner, outer);
#pragma unroll
        for (int j = 0; j < W; j++) sum[j] += from[j];
    }
    add_into_self<T, W>(self + (z.o * d + key) * inner + z.c, sum, alpha);
}
#line 37 "chapters/05-index-add.md"
// <<index-add-launchers>>
#line 161 "chapters/05-index-add.md"
enum { THREADS = 256 };

static unsigned blocks_for(size_t items) { return (unsigned)((items + THREADS - 1) / THREADS); }

// The alpha of a launch: the problem's for the first launch after self was reset (the
// checked one), then its negative, and so on: the timed runs, repeated in place, leave
// self near self0 instead of growing it until the half types' additions round away.
static float launch_alpha(Problem *p) { return p->launches++ % 2 ? -p->alpha : p->alpha; }

template <typename T>
static void launch_a0(Problem *p)
{
    p->type_roundings = 2;  // the product rounded to T, then the atomic's sum
    p->deterministic = false;
    float alpha = launch_alpha(p);
    size_t count = p->outer * p->l * p->inner;
    if (p->index64)
        index_add_a0<T, long long><<<blocks_for(count), THREADS>>>((T *)p->self, (const T *)p->source,
            (const long long *)p->index, p->d, p->l, p->inner, count, alpha, p->bad_position);
    else
        index_add_a0<T, int><<<blocks_for(count), THREADS>>>((T *)p->self, (const T *)p->source,
            (const int *)p->index, p->d, p->l, p->inner, count, alpha, p->bad_position);
    CHECK_LAUNCH();
}
#line 251 "chapters/05-index-add.md"
// The lanes that take one row: the smallest power of two that covers its packs (its
// elements, when it is not whole packs), at most a warp.
static int lanes_per_row(size_t inner, size_t v)
{
    size_t items = inner % v ? inner : inner / v;
    int g = 1;
    while (g < 32 && (size_t)g < items) g *= 2;
    return g;
}

template <typename T>
static void launch_a1(Problem *p)
{
    p->type_roundings = 2;  // the product rounded to T, then the reduction's sum
    p->deterministic = false;
    float alpha = launch_alpha(p);
    int g = lanes_per_row(p->inner, 16 / sizeof(T));
    size_t rows = p->outer * p->l, threads = rows * g;
    if (p->index64)
        index_add_a1<T, long long><<<blocks_for(threads), THREADS>>>((T *)p->self, (const T *)p->source,
            (const long long *)p->index, p->d, p->l, p->inner, rows, alpha, p->bad_position, g);
    else
        index_add_a1<T, int><<<blocks_for(threads), THREADS>>>((T *)p->self, (const T *)p->source,
            (const int *)p->index, p->d, p->l, p->inner, rows, alpha, p->bad_position, g);
    CHECK_LAUNCH();
}

static const char *no_vector_red(const Problem *p)
{
    (void)p;
    return needs_sm90();
}
#line 333 "chapters/05-index-add.md"
static size_t smem_limit(void)
{
    static int limit = 0;  // asked once: the dispatcher asks at every launch
    if (!limit) {
        int dev = 0;
        CUDA_CHECK(cudaGetDevice(&dev));
        CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    }
    return (size_t)limit;
}

static const char *self_too_large(const Problem *p)
{
    return p->outer * p->d * p->inner * sizeof(float) <= smem_limit() ? NULL : "a self larger than shared memory";
}

template <typename T, typename Index>
static void launch_a2_with(Problem *p)
{
    float alpha = launch_alpha(p);
    size_t smem = p->outer * p->d * p->inner * sizeof(float);
    static bool opted = false;
    if (!opted) {
        CUDA_CHECK(cudaFuncSetAttribute(index_add_a2<T, Index>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        (int)smem_limit()));
        opted = true;
    }
    static size_t resident_smem = 0;  // the resident blocks, found again only when the size of self changes
    static int resident = 0;
    if (resident_smem != smem) {
        int per_sm = 0, sms = 0, dev = 0;
        CUDA_CHECK(cudaGetDevice(&dev));
        CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
        CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, index_add_a2<T, Index>, 1024, smem));
        resident = (per_sm > 0 ? per_sm : 1) * sms;
        resident_smem = smem;
    }
    size_t count = p->outer * p->l * p->inner, grid = (size_t)resident;
    if (grid > (count + 1023) / 1024) grid = (count + 1023) / 1024;
    index_add_a2<T, Index><<<(unsigned)grid, 1024, smem>>>((T *)p->self, (const T *)p->source,
        (const Index *)p->index, p->d, p->l, p->inner, p->outer, alpha, p->bad_position);
    CHECK_LAUNCH();
}

template <typename T>
static void launch_a2(Problem *p)
{
    p->type_roundings = 2;  // per block (at most one per slice): its sum rounded to T, then the atomic
    p->deterministic = false;
    if (p->index64) launch_a2_with<T, long long>(p);
    else launch_a2_with<T, int>(p);
}
#line 564 "chapters/05-index-add.md"
// The bits of a key below d: radix sort passes only over those.
static int key_bits(size_t d)
{
    int bits = 1;
    while (bits < 31 && ((size_t)1 << bits) <= d) bits++;  // key d (a bad index) must fit too
    return bits;
}

static size_t chunks_of(size_t l) { return (l + CHUNK - 1) / CHUNK; }

// CUB's temporary space for the sort and the pieces' sums, allocated once per problem.
static void plan_sorted_path(Problem *p)
{
    CUDA_CHECK(cub::DeviceRadixSort::SortPairs(NULL, p->cub_bytes, p->keys, p->keys_sorted, p->positions,
                                               p->positions_sorted, (int)p->l, 0, key_bits(p->d)));
    p->cub_space = device_alloc(p->cub_bytes, "CUB's temporary space");
    p->partial = (float *)device_alloc(chunks_of(p->l) * 2 * p->outer * p->inner * sizeof(float), "pieces' sums");
}

template <typename T, int W>
static void launch_a3_passes(Problem *p, float alpha)
{
    size_t threads = chunks_of(p->l) * p->outer * (p->inner / W);
    index_add_chunks<T, W><<<blocks_for(threads), THREADS>>>((T *)p->self, (const T *)p->source, p->keys_sorted,
        p->positions_sorted, p->partial, p->d, p->l, p->inner, p->outer, alpha);
    CHECK_LAUNCH();
    index_add_combine<T, W><<<blocks_for(threads), THREADS>>>((T *)p->self, p->keys_sorted, p->partial, p->d, p->l,
                                                              p->inner, p->outer, alpha);
    CHECK_LAUNCH();
}
#line 599 "chapters/05-index-add.md"
static void sort_the_index(Problem *p)
{
    if (!p->cub_space) plan_sorted_path(p);
    if (p->index64)
        index_to_keys<long long><<<blocks_for(p->l), THREADS>>>(p->keys, p->positions, (const long long *)p->index,
                                                                 p->d, p->l, p->bad_position);
    else
        index_to_keys<int><<<blocks_for(p->l), THREADS>>>(p->keys, p->positions, (const int *)p->index, p->d, p->l,
                                                           p->bad_position);
    CHECK_LAUNCH();
    size_t bytes = p->cub_bytes;
    CUDA_CHECK(cub::DeviceRadixSort::SortPairs(p->cub_space, bytes, p->keys, p->keys_sorted, p->positions,
                                               p->positions_sorted, (int)p->l, 0, key_bits(p->d)));
}

template <typename T>
static void launch_a3(Problem *p)
{
    p->type_roundings = 0;
    p->deterministic = true;
    float alpha = launch_alpha(p);
    sort_the_index(p);
    const int V = 16 / sizeof(T);
    if (p->inner % V == 0) launch_a3_passes<T, V>(p, alpha);
    else launch_a3_passes<T, 1>(p, alpha);
}
#line 736 "chapters/05-index-add.md"
template <typename T>
static void launch_a4(Problem *p)
{
    bool f32 = sizeof(T) == 4, many = p->l >= 64 * p->d;
    if (!no_vector_red(p) && p->inner % (16 / sizeof(T)) == 0) {
        bool wide = p->inner >= 128 && p->l >= 65536;
        return f32 && (many || wide) ? launch_a3<T>(p) : launch_a1<T>(p);
    }
    if (f32 && p->inner < 32 && p->l < 8 * p->d) return launch_a0<T>(p);
    return launch_a3<T>(p);
}
#line 38 "chapters/05-index-add.md"
// <<the-index-add-version-table>>
#line 757 "chapters/05-index-add.md"
#define INDEX_ADD_VERSIONS(T, DT)                                                                               \
    {"a0-per-element", "ours", DT, "one atomic per element of source into self", launch_a0<T>, NULL},          \
    {"a1-row-red16", "ours", DT, "a group of lanes per row of source, 16-byte vector reductions (sm_90)", launch_a1<T>, no_vector_red}, \
    {"a2-shared-self", "ours", DT, "self accumulated in float in shared memory, one atomic per element per block", launch_a2<T>, self_too_large}, \
    {"a3-sorted", "ours", DT, "sort (index, position), then each row of self once: deterministic, one rounding", launch_a3<T>, NULL}, \
    {"a4-dispatch", "ours", DT, "a1, a3 or a0 by shape and duplicates", launch_a4<T>, NULL}

static const Version VERSIONS[] = {
    INDEX_ADD_VERSIONS(float, "f32"),
    INDEX_ADD_VERSIONS(__half, "f16"),
    INDEX_ADD_VERSIONS(__nv_bfloat16, "bf16"),
};
#line 39 "chapters/05-index-add.md"
// <<create-and-check-an-index-add-problem>>
#line 787 "chapters/05-index-add.md"
// ============================================================ problems and checks
typedef struct {
    size_t dims[8];
    int ndims, dim;
    size_t l;
    bool index64, same, bad;
} IndexAddSize;

// Splits s at each sep in place, keeping empty fields; returns the number of fields (at most max).
static int split_fields(char *s, char sep, char **fields, int max)
{
    int n = 0;
    for (char *t = s; n < max; n++) {
        fields[n] = t;
        char *at = strchr(t, sep);
        if (!at) return n + 1;
        *at = '\0';
        t = at + 1;
    }
    return max + 1;  // too many
}

// "SHAPE:DIM:L[:i32|:i64][:same][:bad]". Returns NULL, or what a size must look like.
static const char *parse_index_add_size(const char *size, IndexAddSize *z)
{
    static const char *form = "SHAPE:DIM:L[:i32][:same][:bad], e.g. 1048576x128:0:1048576 or 64x4096x128:1:8192:i32";
    char spec[96], *fields[6], *dims[8];
    snprintf(spec, sizeof spec, "%s", size);
    memset(z, 0, sizeof *z);
    z->index64 = true;
    int nf = split_fields(spec, ':', fields, 6);
    if (nf < 3 || nf > 6) return form;
    z->ndims = split_fields(fields[0], 'x', dims, 8);
    if (z->ndims > 8) return form;
    // every number starts with a digit: parse_count (strtoull) would also take " 2" and "+2"
    for (int k = 0; k < z->ndims; k++)
        if (!isdigit((unsigned char)dims[k][0]) || parse_count(dims[k], &z->dims[k]) || z->dims[k] == 0 ||
            z->dims[k] > (1ull << 31))
            return form;
    size_t v = 0;
    if (!isdigit((unsigned char)fields[1][0]) || parse_count(fields[1], &v) || v >= (size_t)z->ndims)
        return "DIM a dimension of SHAPE (0 for the first)";
    z->dim = (int)v;
    if (!isdigit((unsigned char)fields[2][0]) || parse_count(fields[2], &z->l) || z->l == 0 || z->l > ((size_t)1 << 30))
        return "L from 1 to 2^30 indices";
    for (int f = 3; f < nf; f++) {
        if (!strcmp(fields[f], "i32")) z->index64 = false;
        else if (!strcmp(fields[f], "i64")) z->index64 = true;
        else if (!strcmp(fields[f], "same")) z->same = true;
        else if (!strcmp(fields[f], "bad")) z->bad = true;
        else return form;
    }
    double self = 1.0, source;
    for (int k = 0; k < z->ndims; k++) self *= (double)z->dims[k];
    source = self / (double)z->dims[z->dim] * (double)z->l;
    if (self > 0x1p33 || source > 0x1p33) return "at most 2^33 elements in self and in source";
    if (z->dims[z->dim] >= (size_t)INT_MAX) return "at most 2^31-2 rows along DIM";
    return NULL;
}

static const char *index_add_bad_size(const char *size)
{
    IndexAddSize z;
    return parse_index_add_size(size, &z);
}

static Problem *index_add_create(const char *dtype, const char *size, uint64_t seed)
{
    IndexAddSize z;
    const char *bad = parse_index_add_size(size, &z);
    if (bad) usage_error("bad size", size, bad);
    Problem *p = (Problem *)host_alloc(sizeof(Problem), "problem");
    memset(p, 0, sizeof *p);
    p->dtype = parse_dtype(dtype);
    snprintf(p->size, sizeof p->size, "%s", size);
    p->outer = p->inner = 1;
    for (int k = 0; k < z.ndims; k++) {
        if (k < z.dim) p->outer *= z.dims[k];
        if (k > z.dim) p->inner *= z.dims[k];
    }
    p->d = z.dims[z.dim];
    p->dim = z.dim;
    p->l = z.l;
    p->index64 = z.index64;
    p->alpha = 0.75f;
    size_t e = dtype_bytes(p->dtype), self_count = p->outer * p->d * p->inner, source_count = p->outer * p->l * p->inner;
    // per index: itself (8 bytes at most), the 4 scratch arrays of 4 bytes, and CUB's sort
    // space (its alternate keys and positions, 8 more); the pieces' sums, two rows of
    // floats per chunk of 32 indices
    size_t sums = (p->l + 31) / 32 * 2 * p->outer * p->inner * sizeof(float);
    check_fits(size, (2 * self_count + source_count) * e + p->l * (8 + 4 * 4 + 8) + sums + (64u << 20));
    p->self = device_alloc(self_count * e, "self");
    p->self0 = device_alloc(self_count * e, "self0");
    p->source = device_alloc(source_count * e, "source");
    p->index = device_alloc(p->l * (p->index64 ? 8 : 4), "index");
    p->bad_position = (int *)device_alloc(sizeof(int), "bad position");
    unsigned **keys[2] = {&p->keys, &p->keys_sorted};
    for (int k = 0; k < 2; k++) *keys[k] = (unsigned *)device_alloc(p->l * sizeof(unsigned), "sort scratch");
    int **ints[2] = {&p->positions, &p->positions_sorted};
    for (int k = 0; k < 2; k++) *ints[k] = (int *)device_alloc(p->l * sizeof(int), "sort scratch");
    p->hself0 = (float *)host_alloc(self_count * sizeof(float), "self");
    p->hsource = (float *)host_alloc(source_count * sizeof(float), "source");
    p->hindex = (long long *)host_alloc(p->l * sizeof(long long), "index");
    fill_uniform_f32(p->hself0, self_count, -1.0f, 2.0f, seed);
    fill_uniform_f32(p->hsource, source_count, -1.0f, 2.0f, seed + 1);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < self_count; i++) p->hself0[i] = round_to(p->dtype, p->hself0[i]);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < source_count; i++) p->hsource[i] = round_to(p->dtype, p->hsource[i]);
    uint64_t state = seed ^ 0x1dea5ull;
    long long same = (long long)(rng_next(&state) % p->d);
    for (size_t pos = 0; pos < p->l; pos++) p->hindex[pos] = z.same ? same : (long long)(rng_next(&state) % p->d);
    p->expected_bad = -1;
    if (z.bad) {  // one index out of range, at a position in the middle, negative or past the end
        p->expected_bad = (long long)(p->l / 2);
        p->hindex[p->l / 2] = (p->l / 2) % 2 ? -1 : (long long)p->d + 5;
    }
    upload(p->self0, p->hself0, self_count, p->dtype);
    upload(p->source, p->hsource, source_count, p->dtype);
    if (p->index64) {
        CUDA_CHECK(cudaMemcpy(p->index, p->hindex, p->l * sizeof(long long), cudaMemcpyHostToDevice));
    } else {
        int *narrow = (int *)host_alloc(p->l * sizeof(int), "index");
        for (size_t pos = 0; pos < p->l; pos++) narrow[pos] = (int)p->hindex[pos];
        CUDA_CHECK(cudaMemcpy(p->index, narrow, p->l * sizeof(int), cudaMemcpyHostToDevice));
        free(narrow);
    }
    return p;
}

static void index_add_destroy(Problem *p)
{
    void *arrays[] = {p->self, p->self0, p->source, p->index, p->bad_position, p->keys, p->keys_sorted, p->positions,
                      p->positions_sorted, p->partial, p->cub_space};
    for (size_t k = 0; k < sizeof arrays / sizeof arrays[0]; k++)
        if (arrays[k]) CUDA_CHECK(cudaFree(arrays[k]));
    free(p->hself0);
    free(p->hsource);
    free(p->hindex);
    free(p);
}

// Instead of poison: self back to self0, no bad index seen yet (0x7F7F7F7F), and the
// next launch adds with +alpha, as the reference does.
static void index_add_poison(Problem *p)
{
    p->launches = 0;
    size_t bytes = p->outer * p->d * p->inner * dtype_bytes(p->dtype);
    CUDA_CHECK(cudaMemcpy(p->self, p->self0, bytes, cudaMemcpyDeviceToDevice));
    CUDA_CHECK(cudaMemset(p->bad_position, 0x7F, sizeof(int)));
}

// An element of self that receives k slices: k + 2 roundings of float relative to its scale,
// and type_roundings per slice in the element type (the atomic versions).
typedef struct {
    const Problem *p;
    const double *ref, *scale;
    const int *hits;  // (d) slices per row of self
} IndexAddBounds;

static double index_add_bound(const void *ctx, size_t at, double *scale)
{
    const IndexAddBounds *b = (const IndexAddBounds *)ctx;
    const Problem *p = b->p;
    int k = b->hits[(at / p->inner) % p->d];
    *scale = b->scale[at];
    return error_bound(p->dtype, b->ref[at], 1.01 * (k + 2) * 0x1p-24 * *scale, p->type_roundings * k, *scale);
}

static CheckResult index_add_check(Problem *p, const char *version)
{
    size_t self_count = p->outer * p->d * p->inner;
    CheckResult r = {0, 0.0, 0.0};
    // the index check first: exactly the planted bad position, or none
    int bad = 0;
    CUDA_CHECK(cudaMemcpy(&bad, p->bad_position, sizeof bad, cudaMemcpyDeviceToHost));
    long long reported = bad == 0x7F7F7F7F ? -1 : bad;
    if (reported != p->expected_bad) {
        fprintf(stderr, "FAIL %s size %s: the out-of-range index reported at position %lld, expected %lld\n", version,
                p->size, reported, p->expected_bad);
        r.mismatches = 1;
    } else if (reported >= 0) {
        printf("     %s %s: index[%lld] = %lld is out of range [0, %zu): reported, and nothing added for it\n",
               version, p->size, reported, p->hindex[reported], p->d);
    }
    // the reference, in double: every good slice added into its destination, grouped by
    // destination so that each can be summed on its own core
    double *ref = (double *)host_alloc(self_count * sizeof(double), "reference");
    double *scale = (double *)host_alloc(self_count * sizeof(double), "reference");
    int *hits = (int *)host_alloc(p->d * sizeof(int), "reference");
    size_t *start = (size_t *)host_alloc((p->d + 1) * sizeof(size_t), "reference");
    size_t *order = (size_t *)host_alloc(p->l * sizeof(size_t), "reference");
    memset(hits, 0, p->d * sizeof(int));
    for (size_t pos = 0; pos < p->l; pos++)
        if (p->hindex[pos] >= 0 && p->hindex[pos] < (long long)p->d) hits[p->hindex[pos]]++;
    start[0] = 0;
    for (size_t k = 0; k < p->d; k++) start[k + 1] = start[k] + hits[k];
    size_t *fill = (size_t *)host_alloc(p->d * sizeof(size_t), "reference");
    memcpy(fill, start, p->d * sizeof(size_t));
    for (size_t pos = 0; pos < p->l; pos++)
        if (p->hindex[pos] >= 0 && p->hindex[pos] < (long long)p->d) order[fill[p->hindex[pos]]++] = pos;
    free(fill);
#pragma omp parallel for schedule(dynamic, 64)
    for (size_t k = 0; k < p->d; k++)
        for (size_t o = 0; o < p->outer; o++)
            for (size_t c = 0; c < p->inner; c++) {
                size_t at = (o * p->d + k) * p->inner + c;
                double sum = 0.0, abs_sum = 0.0;
                for (size_t j = start[k]; j < start[k + 1]; j++) {
                    double v = p->hsource[(o * p->l + order[j]) * p->inner + c];
                    sum += v;
                    abs_sum += fabs(v);
                }
                ref[at] = p->hself0[at] + (double)p->alpha * sum;
                scale[at] = fabs(p->hself0[at]) + fabs((double)p->alpha) * abs_sum;
            }
    double *got = download(p->self, self_count, p->dtype);
    IndexAddBounds bounds = {p, ref, scale, hits};
    CheckResult c = check_elements(version, p->size, got, ref, self_count, index_add_bound, &bounds, 0);
    if (p->deterministic) report_bits(version, p->dtype, p->size, p->self, self_count * dtype_bytes(p->dtype));
    r.mismatches += c.mismatches;
    r.max_abs_err = c.max_abs_err;
    r.max_rel_err = c.max_rel_err;
    free(ref);
    free(scale);
    free(hits);
    free(start);
    free(order);
    free(got);
    return r;
}

// source and the index read once, self read and written once.
// The roofline's operations: per element of source, the product by alpha and the addition.
static double index_add_flops(const Problem *p) { return 2.0 * p->outer * p->l * p->inner; }

static double index_add_bytes(const Problem *p)
{
    double e = (double)dtype_bytes(p->dtype);
    return e * (p->outer * p->l * p->inner + 2.0 * p->outer * p->d * p->inner) + p->l * (p->index64 ? 8.0 : 4.0);
}

// The size parser on forms known by hand.
static int index_add_self_test(void)
{
    int passed = 0, failed = 0;
    IndexAddSize z;
    SELF_TEST(!parse_index_add_size("1048576x128:0:1048576", &z) && z.ndims == 2 && z.dim == 0 && z.l == 1048576 &&
              z.index64);
    SELF_TEST(!parse_index_add_size("64x4096x128:1:8192:i32:same", &z) && z.ndims == 3 && z.dim == 1 && !z.index64 &&
              z.same && !z.bad);
    SELF_TEST(!parse_index_add_size("5x6x7:2:20:bad", &z) && z.bad && z.dims[2] == 7);
    SELF_TEST(parse_index_add_size("5x6:2:20", &z) && parse_index_add_size("5x6:0:0", &z));
    SELF_TEST(parse_index_add_size("5x6:0", &z) && parse_index_add_size("5x6:0:20:i16", &z));
    SELF_TEST(parse_index_add_size("5x6:0:20:", &z) && parse_index_add_size("5xx6:0:20", &z));
    SELF_TEST(parse_index_add_size("65536x65536x4:0:3", &z) != NULL && parse_index_add_size("5x6::0:20", &z));
    SELF_TEST(parse_index_add_size("5x6:+1:3", &z) && parse_index_add_size("5x 6:0:3", &z) &&
              parse_index_add_size("5x6:0:+3", &z));
    SELF_TEST(key_bits(1) == 1 && key_bits(2) == 2 && key_bits(4096) == 13 && key_bits(4095) == 12);
    SELF_TEST(lanes_per_row(16, 8) == 2 && lanes_per_row(128, 4) == 32 && lanes_per_row(1024, 8) == 32);
    SELF_TEST(lanes_per_row(7, 4) == 8 && lanes_per_row(1, 8) == 1 && lanes_per_row(40, 8) == 8);
    printf("index_add: %d passed, %d failed\n", passed, failed);
    return failed;
}
#line 40 "chapters/05-index-add.md"
// <<the-cost-of-the-sort>>
#line 660 "chapters/05-index-add.md"
// The checks of a sorted index: keys in order, every position once with its own key,
// equal keys in increasing position.
static int sorted_index_ok(const Problem *p)
{
    size_t l = p->l;
    unsigned *keys = (unsigned *)host_alloc(l * sizeof(unsigned), "sorted keys");
    int *pos = (int *)host_alloc(l * sizeof(int), "sorted positions");
    char *seen = (char *)host_alloc(l, "positions seen");
    memset(seen, 0, l);
    CUDA_CHECK(cudaMemcpy(keys, p->keys_sorted, l * sizeof(unsigned), cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(pos, p->positions_sorted, l * sizeof(int), cudaMemcpyDeviceToHost));
    int ok = 1;
    for (size_t i = 0; i < l && ok; i++) {
        long long q = pos[i];
        if (q < 0 || (size_t)q >= l || seen[q]) { ok = 0; break; }
        seen[q] = 1;
        long long k = p->hindex[q];
        unsigned want = k < 0 || (size_t)k >= p->d ? (unsigned)p->d : (unsigned)k;
        if (keys[i] != want) ok = 0;
        if (i && (keys[i] < keys[i - 1] || (keys[i] == keys[i - 1] && pos[i] < pos[i - 1]))) ok = 0;
    }
    if (!ok) fprintf(stderr, "FAIL a3-sort-only %s: the sorted index is wrong\n", p->size);
    free(keys);
    free(pos);
    free(seen);
    return ok;
}

static void launch_sort_only(void *ctx) { sort_the_index((Problem *)ctx); }

// Rows of kind "part": a3's sort alone at every timing size.
static void index_add_sort_cost(BenchRun *run)
{
    const Chapter *ch = run->chapter;
    printf("a3's sort alone (the keys and the sort of the pairs)\n");
    for (int s = 0; s < ch->n_bench_sizes; s++) {
        const char *size = ch->bench_sizes[s];
        Problem *p = index_add_create("f32", size, seed_for(1, size));
        index_add_poison(p);
        sort_the_index(p);
        int ok = sorted_index_ok(p);
        Timing t = time_launches(launch_sort_only, p, run->plan);
        Version v = {"a3-sort-only", "part", "f32", "", NULL, NULL};
        Row r = row_from_time(run, &v, size, t.median_us, 0.0, 0.0, NAN);
        r.pass = ok;
        bench_emit(run, &r, NAN);
        index_add_destroy(p);
    }
}
#line 41 "chapters/05-index-add.md"
// <<the-index-add-chapter>>
#line 1054 "chapters/05-index-add.md"
static const char *const DTYPES[] = {"f32", "f16", "bf16"};
static const char *const BENCH_SIZES[] = {"1048576x128:0:1048576", "65536x1024:0:65536", "4096x1024:0:262144",
                                          "1048576x16:0:4194304", "4096x64x128:0:8192", "64x4096x128:1:8192",
                                          "512x64:0:4194304"};
static const char *const CHECK_SIZES[] = {"1x1:0:1", "7x5:0:1", "1x37:0:1000", "300x40:0:5000:same", "1000x37:0:1000003:i32",
                                          "64x100x7:1:33", "5x6x7:2:20:i32", "300x40:0:5000:bad", "300x40:0:5000:i32:bad",
                                          "4096x1024:0:262144", "512x64:0:200000:i32", "1000x24:0:997"};

static const Chapter INDEX_ADD = {
    "index_add", "self.index_add_(dim, index, source, alpha): atomics, shared memory and a sort, f32 f16 bf16",
    VERSIONS, sizeof VERSIONS / sizeof VERSIONS[0],
    DTYPES, 3, BENCH_SIZES, sizeof BENCH_SIZES / sizeof BENCH_SIZES[0],
    CHECK_SIZES, sizeof CHECK_SIZES / sizeof CHECK_SIZES[0],
    "copy", NULL, index_add_bad_size,
    index_add_create, index_add_destroy, index_add_poison, index_add_check, index_add_bytes, index_add_flops,
    index_add_sort_cost, index_add_self_test, NULL,
};

int main(int argc, char **argv) { return harness_main(&INDEX_ADD, argc, argv); }
