# The one entry point. `make` builds the book from the committed measurements (no GPU
# needed); `make test` runs every test; `make bench` measures on this machine's GPU.
# `make help` lists the targets.

BUILD        := build
CHAPTERS     := $(sort $(wildcard chapters/*.md))
REF_GPU      := nvidia-h200
PROGRAMS     := measuring reduce elementwise atomics upsample index_add softmax gemm gemm_hopper attention attention_bwd \
                linear_attention
# libraries a program links besides the CUDA runtime
LIBS_atomics := -lcublas
LIBS_gemm    := -lcublas -lcublasLt
HARNESS      := code/harness/harness.cuh
# tangled headers a program includes besides the harness: they are in its hash and
# rebuild it when they change
HEADERS_gemm := code/tensorcore/mma.cuh
LIBS_gemm_hopper := -lcublas -lcublasLt
HEADERS_gemm_hopper := code/tensorcore/mma.cuh code/tensorcore/hopper.cuh
# the attention chapter measures its ceilings with the GEMM chapter's mma.sync kernel
HEADERS_attention := code/tensorcore/mma.cuh code/tensorcore/hopper.cuh
# the backward reuses the forward's ceilings, and so the same kernel
HEADERS_attention_bwd := code/tensorcore/mma.cuh code/tensorcore/hopper.cuh
# linear attention takes the attention chapter's mma.sync pieces, which come with its Hopper kernels
HEADERS_linear_attention := code/tensorcore/mma.cuh code/tensorcore/hopper.cuh
# wgmma and setmaxnreg exist only in the sm_90a target: the Hopper GEMM is built for it
# where the others are built for sm_90 (elsewhere its Hopper versions are skipped)
comma := ,
ARCH_FLAGS_gemm_hopper = $(if $(filter sm_90,$(ARCH)),-gencode=arch=compute_90a$(comma)code=sm_90a)
ARCH_FLAGS_attention = $(ARCH_FLAGS_gemm_hopper)
ARCH_FLAGS_attention_bwd = $(ARCH_FLAGS_gemm_hopper)
ARCH_FLAGS_linear_attention = $(ARCH_FLAGS_gemm_hopper)

# cuDNN, the softmax chapter's optional peer: used where cudnn.h is found, in CUDNN_HOME,
# in the CUDA toolkit, or in the nvidia-cudnn Python wheel that PyTorch installs.
ifndef CUDNN_HOME
CUDA_HOME    ?= $(patsubst %/bin/,%,$(dir $(shell command -v $(or $(NVCC),nvcc))))
CUDNN_HOME   := $(firstword $(foreach d,$(CUDA_HOME) $(shell python3 -c 'import nvidia.cudnn as m; print(m.__path__[0])' 2>/dev/null),$(if $(wildcard $(d)/include/cudnn.h),$(d))))
endif
CUDNN_LIB    := $(if $(CUDNN_HOME),$(firstword $(wildcard $(CUDNN_HOME)/lib/libcudnn.so.[0-9]* $(CUDNN_HOME)/lib64/libcudnn.so.[0-9]*)))
ifneq ($(CUDNN_LIB),)
LIBS_softmax += -DHAVE_CUDNN -I$(CUDNN_HOME)/include -Xlinker $(CUDNN_LIB) -Xlinker -rpath=$(dir $(CUDNN_LIB))
endif

CC           ?= cc
NVCC         ?= nvcc
# The programs are built for this machine's GPU where nvidia-smi finds one (sm_90 on a
# Hopper, sm_80 on an A100, sm_89 on an L4), else for sm_90, the reference GPU's.
# ARCH=native asks nvcc instead. Versions that need Hopper are skipped below sm_90.
ifndef ARCH
ARCH := $(or $(shell nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null \
          | grep -Em1 '^ *[0-9]+\.[0-9]+ *$$' | tr -d ' .' | sed 's/^/sm_/'),sm_90)
endif
# OpenMP: the harness checks large outputs on every CPU core
NVCC_FLAGS   ?= -arch=$(ARCH) -O3 -lineinfo -std=c++17 -Werror all-warnings -Xcompiler -Wall,-Wextra,-fopenmp
LDLIBS       ?= -lgomp
JOBS         ?= 2

TANGLE       := $(BUILD)/tools/tangle
TANGLE_INDEX := $(BUILD)/chunks.tsv
BIN          ?= $(BUILD)/bin

.DEFAULT_GOAL := all
.PHONY: all help tangle programs bench test test-gpu check-gpu clean FORCE $(PROGRAMS)

all: book

help:
	@echo "make              build the book (book/html/index.html, book/book.pdf) from the committed data"
	@echo "make test         tangler, sync, compile, CPU, GPU (skipped without one) and book tests"
	@echo "make test-gpu     only the GPU checks and compute-sanitizer runs"
	@echo "make bench        check and time every chapter on this GPU into figures/data/<gpu>/"
	@echo "make reduce       build, check and time one chapter (any of: $(PROGRAMS))"
	@echo "make tangle       write code/ from chapters/"
	@echo "make programs     build every chapter program into $(BIN)/"
	@echo "variables: ARCH=$(ARCH) (sm_80, sm_90, native...), NVCC=nvcc, CUDNN_HOME=<folder with include/cudnn.h>"
	@echo "cuDNN for the softmax peer: $(or $(CUDNN_LIB),not found)"

# ------------------------------------------------------------------ tangling
$(TANGLE): tools/tangle.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -O2 -Wall -Wextra -Werror -pedantic -o $@ $<

# One run writes every file in code/ whose content changed, the chunk index and the
# dependency file; files whose content did not change keep their time stamps, so only
# what really changed is recompiled.
$(BUILD)/tangle.stamp: $(CHAPTERS) $(TANGLE)
	$(TANGLE) --depfile $(BUILD)/tangle.d --index $(TANGLE_INDEX) $(CHAPTERS)
	@touch $@

$(TANGLE_INDEX): $(BUILD)/tangle.stamp ;
code/%: $(BUILD)/tangle.stamp ;

tangle: $(BUILD)/tangle.stamp

# ------------------------------------------------------------------ programs
# Each program records which tangled files it was built from and their SHA-1, so the
# results it writes can be traced to (and checked against) the sources. The #line
# directives are left out of the hash: editing prose moves them, not the code.
# The programs also depend on the flags they were built with, kept in $(BIN)/.nvcc-flags
# and rewritten only when they change: `make ARCH=sm_80` rebuilds them, and so does the
# next plain `make` after it.
$(BIN)/.nvcc-flags: FORCE
	@mkdir -p $(@D)
	@echo '$(NVCC) $(NVCC_FLAGS) $(LDLIBS)' > $@.tmp; if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi

# a program's flags: NVCC_FLAGS, with -arch replaced by its own target where it has one
flags_of = $(if $(ARCH_FLAGS_$(1)),$(subst -arch=$(ARCH),$(ARCH_FLAGS_$(1)),$(NVCC_FLAGS)),$(NVCC_FLAGS))

.SECONDEXPANSION:
$(BIN)/%: $(HARNESS) $$(HEADERS_$$*) code/$$*/$$*.cu $(BIN)/.nvcc-flags
	@mkdir -p $(@D)
	@src="$(strip $(HARNESS) $(HEADERS_$*) code/$*/$*.cu)"; sha=$$(cat $$src | grep -v '^[[:space:]]*#line ' | sha1sum | cut -c1-40); \
	echo "$(NVCC) $(call flags_of,$*) -o $@ code/$*/$*.cu $(LIBS_$*) $(LDLIBS)"; \
	$(NVCC) $(call flags_of,$*) -DBOOK_SOURCES="\"$$src\"" -DBOOK_SOURCES_SHA1="\"$$sha\"" \
	  -DBOOK_NVCC_FLAGS='"$(call flags_of,$*)"' -o $@ code/$*/$*.cu $(LIBS_$*) $(LDLIBS)

programs: $(addprefix $(BIN)/,$(PROGRAMS))

# ------------------------------------------------------------------ measuring
# bench: every chapter, writing figures/data/<gpu-slug>/<chapter>.csv (+ provenance),
# then the optional PyTorch peers where PyTorch is installed.
bench: programs
	tools/bench.sh $(PROGRAMS)

# a chapter whose reference data is measured with options passes them to its program's --bench:
# linear attention times bfloat16 alone (float16 runs the same kernels; the tests check it)
export BENCH_FLAGS_linear_attention := --dtype bf16

# make reduce (or any chapter): build it, check it, time it into figures/data/<gpu-slug>/
$(PROGRAMS): %: $(BIN)/%
	tools/bench.sh $@

# ------------------------------------------------------------------ tests
# CTest runs everything; GPU tests skip (exit 77) where there is no GPU.
$(BUILD)/ctest/CTestTestfile.cmake: tests/CMakeLists.txt
	cmake -S tests -B $(BUILD)/ctest -DROOT=$(CURDIR) >/dev/null

test: book-deps $(TANGLE) $(BUILD)/ctest/CTestTestfile.cmake
	cd $(BUILD)/ctest && ctest --output-on-failure -j $(JOBS)

test-gpu check-gpu: $(TANGLE) $(BUILD)/ctest/CTestTestfile.cmake
	cd $(BUILD)/ctest && ctest --output-on-failure -L gpu

clean: book-clean
	rm -rf $(BUILD)

# figures with one element type each (the others are declared by their file name alone)
FIG_elementwise-f32_CSV := elementwise
FIG_elementwise-f32_DTYPE := f32
FIG_elementwise-f16_CSV := elementwise
FIG_elementwise-f16_DTYPE := f16
FIG_atomics-dot_DTYPE := f16
FIG_softmax-fwd-f16_CSV := softmax
FIG_softmax-fwd-f16_DTYPE := f16
FIG_softmax-fwd-f16_METRIC := pct_sol
FIG_softmax-fwd-f16_X := cols
FIG_softmax-fwd-f16_TOTAL := 33554432
FIG_softmax-fwd-f16_VERSIONS := f1-block-per-row f2-registers f3-shared f4-online f5-block-registers f6-cluster f8-pipelined f7-dispatch
FIG_softmax-fwd-f16_PEER := torch.softmax cudnn
FIG_softmax-fwd-f16_CEILING := copy-ceiling
FIG_softmax-bwd-f32_CSV := softmax
FIG_softmax-bwd-f32_DTYPE := f32
FIG_softmax-bwd-f32_METRIC := pct_sol
FIG_softmax-bwd-f32_X := cols
FIG_softmax-bwd-f32_TOTAL := 33554432
FIG_softmax-bwd-f32_VERSIONS := b1-registers b2-shared b3-reread b4-block-registers b5-cluster b6-dispatch
FIG_softmax-bwd-f32_PEER := torch.softmax-bwd cudnn-bwd
FIG_softmax-bwd-f32_CEILING := copy-ceiling
# sizes that are shapes: a group of bars per shape, in the order of SHAPES; a variable
# named after the CSV (FIG_upsample_METRIC) holds for every figure drawn from it
FIG_upsample_SHAPES := 16x64x256x256:2 1x3x224x224:2 8x512x64x64:2
FIG_upsample_LABELS := 16×64×256×256|1×3×224×224|8×512×64×64
FIG_upsample_XLABEL := input N×C×H×W, scale 2
FIG_upsample_METRIC := pct_sol
FIG_upsample_CEILING := copy-ceiling
FIG_upsample-fwd-f32_CSV := upsample
FIG_upsample-fwd-f32_DTYPE := f32
FIG_upsample-fwd-f32_VERSIONS := f0-per-output f1-per-input f2-packed f3-scale-2 f4-waves f5-nhwc
FIG_upsample-fwd-f32_PEER := torch.interpolate torch.interpolate-nhwc
FIG_upsample-fwd-f16_CSV := upsample
FIG_upsample-fwd-f16_DTYPE := f16
FIG_upsample-fwd-f16_VERSIONS := $(FIG_upsample-fwd-f32_VERSIONS)
FIG_upsample-fwd-f16_PEER := $(FIG_upsample-fwd-f32_PEER)
FIG_upsample-bwd-f32_CSV := upsample
FIG_upsample-bwd-f32_DTYPE := f32
FIG_upsample-bwd-f32_VERSIONS := b0-scatter b1-scatter-pairs b2-scatter-red16 b3-gather b4-gather-packed
FIG_upsample-bwd-f32_PEER := torch.interpolate-bwd
FIG_upsample-bwd-f16_CSV := upsample
FIG_upsample-bwd-f16_DTYPE := f16
FIG_upsample-bwd-f16_VERSIONS := $(FIG_upsample-bwd-f32_VERSIONS)
FIG_upsample-bwd-f16_PEER := $(FIG_upsample-bwd-f32_PEER)
FIG_index_add_SHAPES := 1048576x128:0:1048576 65536x1024:0:65536 4096x1024:0:262144 1048576x16:0:4194304 \
  4096x64x128:0:8192 64x4096x128:1:8192 512x64:0:4194304
FIG_index_add_LABELS := 1M×128\nL = 1M|64K×1024\nL = 64K|4K×1024\nL = 256K|1M×16\nL = 4M|4K×64×128\nL = 8K| \
  64×4K×128\ndim 1, L = 8K|512×64\nL = 4M
FIG_index_add_XLABEL := shape of self; L indices, along dimension 0 (dim 1 where shown)
FIG_index_add_VERSIONS := a0-per-element a1-row-red16 a2-shared-self a3-sorted a4-dispatch
FIG_index_add_PEER := torch.index_add_ torch.index_add_-deterministic
FIG_index_add_CEILING := copy-ceiling
FIG_index-add-f32_CSV := index_add
FIG_index-add-f32_DTYPE := f32
FIG_index-add-f16_CSV := index_add
FIG_index-add-f16_DTYPE := f16

FIG_gemm-tiles_CSV := -
FIG_gemm-tiles_SCRIPT := figures/gemm-tiles.gp
FIG_swizzle_CSV := -
FIG_swizzle_SCRIPT := figures/swizzle.gp
FIG_gemm-roofline_CSV := gemm
FIG_gemm-roofline_SCRIPT := figures/roofline.gp
FIG_gemm_SHAPES := 1024x1024x1024 2048x2048x2048 4096x4096x4096 8192x8192x8192 4096x11008x4096 4096x4096x11008 \
  4096x14336x4096
FIG_gemm_LABELS := 1024³|2048³|4096³|8192³|4096×11008\n×4096|4096×4096\n×11008|4096×14336\n×4096
FIG_gemm_XLABEL := M×N×K
FIG_gemm_METRIC := tflops
FIG_gemm_PEER := cublas torch.addmm_
FIG_gemm-f32_CSV := gemm
FIG_gemm-f32_DTYPE := f32
FIG_gemm-f32_CEILING := fma-ceiling
FIG_gemm-bf16_CSV := gemm
FIG_gemm-bf16_DTYPE := bf16
FIG_gemm-bf16_CEILING := mma-sync-ceiling
FIG_hopper-pipeline_CSV := -
FIG_hopper-pipeline_SCRIPT := figures/hopper-pipeline.gp
FIG_gemm_hopper_SHAPES := $(FIG_gemm_SHAPES)
FIG_gemm_hopper_LABELS := $(FIG_gemm_LABELS)
FIG_gemm_hopper_XLABEL := M×N×K
FIG_gemm_hopper_METRIC := tflops
FIG_gemm_hopper_PEER := cublas cublaslt torch.addmm_
FIG_gemm_hopper-bf16_CSV := gemm_hopper
FIG_gemm_hopper-bf16_DTYPE := bf16
FIG_attention-roofline_CSV := attention
FIG_attention-roofline_SCRIPT := figures/roofline.gp
FIG_gemm_hopper-roofline_CSV := gemm_hopper
FIG_gemm_hopper-roofline_SCRIPT := figures/roofline.gp
FIG_attention-traffic_CSV := -
FIG_attention-traffic_SCRIPT := figures/attention-traffic.gp
FIG_attention-pipeline_CSV := -
FIG_attention-pipeline_SCRIPT := figures/attention-pipeline.gp
FIG_reduce-roofline_CSV := reduce
FIG_reduce-roofline_SCRIPT := figures/roofline.gp
FIG_reduce-roofline_ROOFS := attention
FIG_elementwise-roofline_CSV := elementwise
FIG_elementwise-roofline_SCRIPT := figures/roofline.gp
FIG_elementwise-roofline_ROOFS := attention
FIG_atomics-roofline_CSV := atomics
FIG_atomics-roofline_SCRIPT := figures/roofline.gp
FIG_atomics-roofline_ROOFS := attention
FIG_index_add-roofline_CSV := index_add
FIG_index_add-roofline_SCRIPT := figures/roofline.gp
FIG_index_add-roofline_ROOFS := attention
FIG_softmax-roofline_CSV := softmax
FIG_softmax-roofline_SCRIPT := figures/roofline.gp
FIG_softmax-roofline_ROOFS := attention
FIG_attention_METRIC := tflops
FIG_attention_PEER := torch.sdpa-flash torch.sdpa-cudnn
FIG_attention_CEILING := fma-ceiling mma-sync-ceiling
FIG_attention_LABELS := 512|1K|2K|4K|8K|16K
FIG_attention_XLABEL := sequence length s (b s = 16K tokens, 16 heads of 128)
FIG_attention-d128_CSV := attention
FIG_attention-d128_DTYPE := bf16
FIG_attention-d128_SHAPES := 32x16x512x512x128 16x16x1024x1024x128 8x16x2048x2048x128 4x16x4096x4096x128 \
  2x16x8192x8192x128 1x16x16384x16384x128
FIG_attention-d128-causal_CSV := attention
FIG_attention-d128-causal_DTYPE := bf16
FIG_attention-d128-causal_SHAPES := $(addsuffix c,$(FIG_attention-d128_SHAPES))
FIG_attention-d64_CSV := attention
FIG_attention-d64_DTYPE := bf16
FIG_attention-d64_SHAPES := 32x32x512x512x64 16x32x1024x1024x64 8x32x2048x2048x64 4x32x4096x4096x64 \
  2x32x8192x8192x64 1x32x16384x16384x64
FIG_attention-d64_XLABEL := sequence length s (b s = 16K tokens, 32 heads of 64)
FIG_attention-d64-causal_CSV := attention
FIG_attention-d64-causal_DTYPE := bf16
FIG_attention-d64-causal_SHAPES := $(addsuffix c,$(FIG_attention-d64_SHAPES))
FIG_attention-d64-causal_XLABEL := $(FIG_attention-d64_XLABEL)
FIG_attention_bwd-roofline_CSV := attention_bwd
FIG_attention_bwd-roofline_SCRIPT := figures/roofline.gp
FIG_attention_bwd_METRIC := tflops
FIG_attention_bwd_PEER := torch.sdpa-flash-bwd torch.sdpa-cudnn-bwd
FIG_attention_bwd_CEILING := fma-ceiling mma-sync-ceiling
FIG_attention_bwd_LABELS := $(FIG_attention_LABELS)
FIG_attention_bwd-d128_CSV := attention_bwd
FIG_attention_bwd-d128_DTYPE := bf16
FIG_attention_bwd-d128_SHAPES := $(FIG_attention-d128_SHAPES)
FIG_attention_bwd-d128_XLABEL := $(FIG_attention_XLABEL)
FIG_attention_bwd-d128-causal_CSV := attention_bwd
FIG_attention_bwd-d128-causal_DTYPE := bf16
FIG_attention_bwd-d128-causal_SHAPES := $(FIG_attention-d128-causal_SHAPES)
FIG_attention_bwd-d128-causal_XLABEL := $(FIG_attention_XLABEL)
FIG_attention_bwd-d64_CSV := attention_bwd
FIG_attention_bwd-d64_DTYPE := bf16
FIG_attention_bwd-d64_SHAPES := $(FIG_attention-d64_SHAPES)
FIG_attention_bwd-d64_XLABEL := $(FIG_attention-d64_XLABEL)
FIG_attention_bwd-d64-causal_CSV := attention_bwd
FIG_attention_bwd-d64-causal_DTYPE := bf16
FIG_attention_bwd-d64-causal_SHAPES := $(FIG_attention-d64-causal_SHAPES)
FIG_attention_bwd-d64-causal_XLABEL := $(FIG_attention-d64_XLABEL)
FIG_linear_attention_METRIC := time_us
FIG_linear_attention_PEER := torch.fla-chunk torch.fla-fused-chunk torch.fla-fused-recurrent torch.sdpa-cudnn
FIG_linear_attention_LABELS := 1K|2K|4K|8K|16K|32K
FIG_linear_attention-d128_CSV := linear_attention
FIG_linear_attention-d128_DTYPE := bf16
FIG_linear_attention-d128_SHAPES := 32x16x1024x128 16x16x2048x128 8x16x4096x128 4x16x8192x128 2x16x16384x128 \
  1x16x32768x128
FIG_linear_attention-d128_XLABEL := sequence length s (b s = 32K tokens, 16 heads of 128)
FIG_linear_attention-d128_CROSS := l9-wgmma-rows softmax-a8
FIG_linear_attention-d128_FLOOR := l5-wgmma
FIG_linear_attention-d64_CSV := linear_attention
FIG_linear_attention-d64_DTYPE := bf16
FIG_linear_attention-d64_SHAPES := 32x32x1024x64 16x32x2048x64 8x32x4096x64 4x32x8192x64 2x32x16384x64 \
  1x32x32768x64
FIG_linear_attention-d64_XLABEL := sequence length s (b s = 32K tokens, 32 heads of 64)
FIG_linear_attention-d64_CROSS := l9-wgmma-rows softmax-a8
FIG_linear_attention-d64_FLOOR := l5-wgmma
FIG_linear_attention_VERSIONS := l0-recurrent l1-quadratic l2-chunk-64 l4-segments l5-wgmma l8-wgmma-fitted l9-wgmma-rows \
  softmax-a8
FIG_linear_attention-train-d128_CSV := linear_attention
FIG_linear_attention-train-d128_DTYPE := bf16
FIG_linear_attention-train-d128_SHAPES := $(FIG_linear_attention-d128_SHAPES)
FIG_linear_attention-train-d128_XLABEL := $(FIG_linear_attention-d128_XLABEL)
FIG_linear_attention-train-d128_VERSIONS := lfb4-segments lfb6-wgmma-segments lfb8-wgmma-fitted lfb9-wgmma-rows
FIG_linear_attention-train-d128_PEER := torch.fla-chunk-fwd-bwd torch.fla-fused-chunk-fwd-bwd \
  torch.fla-fused-recurrent-fwd-bwd

include tools/book.mk
-include $(BUILD)/tangle.d
