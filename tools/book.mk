# tools/book.mk -- rules that weave the book (HTML site and PDF).
#
# Included by the top-level Makefile, which defines
#   BUILD         build directory (build)
#   CHAPTERS      chapters/*.md in book order
#   REF_GPU       reference GPU slug (nvidia-h100-80gb-hbm3)
#   TANGLE_INDEX  the tangler's chunk index ($(BUILD)/chunks.tsv) and its rule
#   BIN, NVCC     where the chapter programs are built ($(BUILD)/bin, by rules of its own)
#                 and the compiler, beside which cuobjdump may be found
#
# Targets
#   book          book-html and book-pdf
#   book-html     book/html/index.html, gpus.html, one page per chapter, style.css, figures
#   book-pdf      book/book.pdf (all chapters, one pandoc run, pdflatex)
#   book-figures  $(BUILD)/figures/*.svg and *.pdf
#   book-test     build the book, then run tests/book_test.sh
#   book-deps     install pandoc/gnuplot/LaTeX from Debian if one is missing, and
#                 cuobjdump from PyPI (below); an order-only prerequisite of every rule
#                 that runs one of them, so it runs first (also under make -j)
#   book-test-deps  for `make test` only: Chromium and pdftotext, where they can be
#                 installed (the tests that need them skip otherwise)
#   book-clean    remove what these rules built
#
# Figures.  FIGURES lists figure stems; by default every `![...](STEM.svg)`
# in the chapters.  Each stem may be declared further (all optional):
#   FIG_<stem>_CSV      chapter CSV basename (default: the stem without its
#                       last -part: reduce-bandwidth -> reduce)
#   FIG_<stem>_METRIC   CSV column on the y axis (default gbps)
#   FIG_<stem>_DTYPE    only this dtype (default: dtype of the first row)
#   FIG_<stem>_PEER     peer versions to draw (default: every kind=peer row)
#   FIG_<stem>_CEILING  ceiling versions (default: every kind=ceiling row)
#   FIG_<stem>_TITLE    plot title (default none; no single quotes)
#   FIG_<stem>_VERSIONS "ours" versions to draw (default: every kind=ours row)
#   FIG_<stem>_X        size (default) or cols: x is the COLS of ROWSxCOLS sizes;
#                       or shape (the default where SHAPES is given): sizes are
#                       categories, drawn side by side in the order of SHAPES
#   FIG_<stem>_TOTAL    with cols: only the shapes of this many elements
#   FIG_<stem>_SHAPES   with shape: the sizes drawn, in order (default: every size of
#                       the CSV that is not a plain count, in CSV order)
#   FIG_<stem>_LABELS   with shape: their tick labels, separated by | (\n: a new line;
#                       default: the size, x written as ×, broken at its first colon)
#   FIG_<stem>_SCRIPT   a gnuplot script of its own instead of bandwidth.gp, given csv
#                       (the reference GPU's), out and term; a diagram has
#                       FIG_<stem>_CSV := - (no data, no GPU in its caption)
#   FIG_<stem>_XLABEL   the x axis label (default: elements, columns (...), shape;
#                       no single quotes, and _ ^ { } are gnuplot's enhanced text)
#   FIG_<stem>_CROSS    with shape: two versions A B; the shape from which A is faster
#                       than B at every shape to its right is marked (the crossover)
#   FIG_<stem>_FLOOR    with shape and METRIC time_us: a version whose pct_sol is of the
#                       memory floor; a black bar over each shape marks the floor's time
# A variable but _CSV not given for the stem is taken from FIG_<csv>_<VAR>, where <csv>
# is the figure's CSV basename: what every figure of one chapter shares is said once.
# e.g.
#   FIGURES += reduce-bandwidth
#   FIG_reduce-bandwidth_CSV := reduce
#   FIG_reduce-bandwidth_PEER := cub
#   FIG_upsample_SHAPES := 16x64x256x256:2 1x3x224x224:2 8x512x64x64:2
#   FIG_upsample_LABELS := 16×64×256×256\n×2|1×3×224×224\n×2|8×512×64×64\n×2
#   FIG_upsample-fwd-f32_CSV := upsample
# The figure's CSV is passed to the weaver too, so captions name the GPUs.
#
# SASS excerpts and resources.  A chapter's ```{.sass program=NAME ...}``` blocks show
# instructions of $(BIN)/NAME, printed by cuobjdump, its ```{.resources program=NAME ...}```
# blocks and [res:NAME/...]{.r} keys the kernels' registers and memory (cuobjdump
# -res-usage): its pages and the PDF are rebuilt when a program they show is.  CUOBJDUMP is the one on PATH, else the one beside nvcc, else the one
# that book-deps installs from PyPI into $(BUILD)/tools/cuda (with the nvdisasm it runs).

BOOK_DIR      ?= book
BOOK_HTML     ?= $(BOOK_DIR)/html
BOOK_PDF      ?= $(BOOK_DIR)/book.pdf
BOOK_FIGS     ?= $(BUILD)/figures
DATA_DIR      ?= figures/data
PANDOC        ?= pandoc
GNUPLOT       ?= gnuplot
BOOK_HIGHLIGHT ?= pygments
# 1: unresolved result keys only warn and show a marker (drafts without data;
#    tests/book_test.sh still fails on the markers).  Default: they are errors.
BOOK_ALLOW_MISSING ?= 0

# The weaver reads this copy of the chunk index: line numbers are replaced
# by block ordinals within each chapter, and it is rewritten only when it
# changes, so editing prose in one chapter does not rebuild every page.
BOOK_INDEX    := $(BUILD)/weave-index.tsv

# ---------------------------------------------------------------- inputs

BOOK_GPUS     := $(patsubst $(DATA_DIR)/%/,%,$(wildcard $(DATA_DIR)/*/))
BOOK_DATA     := $(wildcard $(DATA_DIR)/*/*.csv $(DATA_DIR)/*/*.provenance)
# sources named by provenance files: pages re-check staleness when they change
BOOK_SOURCES  := $(wildcard $(sort $(shell sed -n 's/^sources:[[:space:]]*//p' \
                   $(wildcard $(DATA_DIR)/*/*.provenance) /dev/null)))
# REF_GPU, the GPUs with data and their CSVs as a file, rewritten only when they change:
# pages and figures are rebuilt when another GPU comes first (make REF_GPU=nvidia-h200,
# or a new Makefile line) or a GPU's data or one of its CSVs is removed (a new CSV is a
# prerequisite anyway)
BOOK_GPU_STAMP := $(BUILD)/book-gpus
BOOK_GPU_LINE := $(REF_GPU): $(BOOK_GPUS): $(patsubst $(DATA_DIR)/%.csv,%,$(filter %.csv,$(BOOK_DATA)))
$(shell mkdir -p $(BUILD) && echo '$(BOOK_GPU_LINE)' | cmp -s - $(BOOK_GPU_STAMP) || \
  echo '$(BOOK_GPU_LINE)' > $(BOOK_GPU_STAMP))
BOOK_WEAVE    := tools/weave.lua $(BOOK_DIR)/cuda.xml $(BOOK_DIR)/metadata.yaml $(BOOK_GPU_STAMP)

FIGURES ?= $(shell grep -ho '\]([A-Za-z0-9_.-]*\.svg)' $(CHAPTERS) /dev/null \
             | sed 's/^](//; s/\.svg)$$//' | sort -u)

book_fig_csv = $(or $(FIG_$(1)_CSV),$(if $(findstring -,$(1)),$(shell echo '$(1)' | sed 's/-[^-]*$$//'),$(1)))
# the CSVs a figure draws: the reference GPU's first (where it has one), then the others
book_fig_csvs = $(wildcard $(DATA_DIR)/$(REF_GPU)/$(call book_fig_csv,$(1)).csv) \
  $(sort $(filter-out $(DATA_DIR)/$(REF_GPU)/%,$(wildcard $(DATA_DIR)/*/$(call book_fig_csv,$(1)).csv)))

BOOK_PAGES    := $(patsubst chapters/%.md,$(BOOK_HTML)/%.html,$(CHAPTERS))
BOOK_SVGS     := $(patsubst %,$(BOOK_FIGS)/%.svg,$(FIGURES))
BOOK_PDFFIGS  := $(patsubst %,$(BOOK_FIGS)/%.pdf,$(FIGURES))
BOOK_HTMLFIGS := $(patsubst %,$(BOOK_HTML)/figures/%.svg,$(FIGURES))

# the version line of the title page: the commit built and its date (and whether files
# git tracks were changed since), or outside a git checkout today's date
ifndef BOOK_VERSION
book_comma   := ,
BOOK_VERSION := $(or $(shell git log -1 --format='%cs, commit %h' 2>/dev/null),$(shell date +%F))$(if \
  $(shell git status --porcelain --untracked-files=no 2>/dev/null | head -1),$(book_comma) with local changes)
endif

# ---------------------------------------------------------------- SASS excerpts

BOOK_CUDA_TOOLS := $(BUILD)/tools/cuda
ifndef CUOBJDUMP
CUOBJDUMP := $(or $(shell command -v cuobjdump 2>/dev/null),$(wildcard $(dir $(shell command -v \
  $(NVCC) 2>/dev/null))cuobjdump),$(BOOK_CUDA_TOOLS)/bin/cuobjdump)
endif
# the PyPI packages of the nvcc's major version (13 where nvcc does not say)
BOOK_CUDA_MAJOR := $(or $(shell $(NVCC) --version 2>/dev/null | sed -n 's/.*release \([0-9]*\)\..*/\1/p'),13)
BOOK_CUOBJDUMP_PIP := $(foreach p,nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm,\
  '$(p)>=$(BOOK_CUDA_MAJOR),<$(shell expr $(BOOK_CUDA_MAJOR) + 1)')

# the programs whose SASS or resources the chapters $(1) show (.sass and .resources
# blocks, [res:PROGRAM/...]{.r} keys)
book_sass_bins = $(addprefix $(BIN)/,$(sort $(shell grep -ho '{\.\(sass\|resources\)[^}]*}' $(1) /dev/null \
  | sed -n 's/.*[[:space:]]program=\([A-Za-z0-9_]*\).*/\1/p') \
  $(shell grep -ho '\[res:[A-Za-z0-9_]*/' $(1) /dev/null | sed 's/^\[res://; s/\/$$//')))

# metadata common to HTML and PDF runs
BOOK_META = -M chunk-index=$(BOOK_INDEX) -M data-dir=$(DATA_DIR) -M ref-gpu=$(REF_GPU) \
  -M bin-dir=$(BIN) -M cuobjdump=$(CUOBJDUMP) \
  -M 'book-version=$(BOOK_VERSION)' \
  -M 'chapters=$(CHAPTERS)' -M 'gpus=$(BOOK_GPUS)' \
  -M 'figures=$(foreach f,$(FIGURES),$(f):$(call book_fig_csv,$(f)))' \
  $(if $(filter 1 yes true,$(BOOK_ALLOW_MISSING)),-M allow-missing-data=true)

BOOK_PANDOC = $(PANDOC) --metadata-file=$(BOOK_DIR)/metadata.yaml \
  --lua-filter=tools/weave.lua --syntax-definition=$(BOOK_DIR)/cuda.xml \
  --highlight-style=$(BOOK_HIGHLIGHT) $(BOOK_META)

BOOK_HTML_FLAGS = -s -t html5 --template=$(BOOK_DIR)/template.html --mathml \
  --section-divs -M figure-dir=figures

.PHONY: book book-html book-pdf book-figures book-test book-deps book-test-deps book-clean

book: book-html book-pdf

book-html: $(BOOK_HTML)/index.html $(BOOK_HTML)/gpus.html $(BOOK_PAGES) $(BOOK_HTML)/style.css $(BOOK_HTMLFIGS)

book-pdf: $(BOOK_PDF)

book-figures: $(BOOK_SVGS) $(BOOK_PDFFIGS)

book-test: book
	tests/book_test.sh .

# ---------------------------------------------------------------- index copy

$(BOOK_INDEX): $(TANGLE_INDEX)
	@mkdir -p $(@D)
	@awk 'BEGIN { FS = OFS = "\t" } \
	  $$1 == "file" { n[$$3]++; $$4 = n[$$3] } \
	  $$1 == "def"  { n[$$4]++; $$5 = n[$$4] } \
	  $$1 == "use"  { $$4 = n[$$3] + 0 } { print }' $< > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

# ---------------------------------------------------------------- HTML

$(BOOK_HTML) $(BOOK_HTML)/figures $(BOOK_FIGS):
	mkdir -p $@

# (under .SECONDEXPANSION, which the Makefile turns on: the programs a chapter excerpts)
$(BOOK_HTML)/%.html: chapters/%.md $(BOOK_INDEX) $(BOOK_WEAVE) $(BOOK_DIR)/template.html \
                     $(BOOK_DATA) $(BOOK_SOURCES) $$(call book_sass_bins,chapters/$$*.md) \
                     | $(BOOK_HTML) book-deps
	$(BOOK_PANDOC) $(BOOK_HTML_FLAGS) --toc --toc-depth=2 -M chapter=$< $< -o $@

# contents page: generated by the weaver from the chapters (index-page=true)
$(BOOK_HTML)/index.html: $(CHAPTERS) $(BOOK_WEAVE) $(BOOK_DIR)/template.html \
                         $(BOOK_DATA) $(BOOK_SOURCES) | $(BOOK_HTML) book-deps
	$(BOOK_PANDOC) $(BOOK_HTML_FLAGS) -M index-page=true -f markdown /dev/null -o $@

# the GPUs page: every chapter on every GPU, and the claims that fail on one (gpus-page=true)
$(BOOK_HTML)/gpus.html: $(CHAPTERS) $(BOOK_WEAVE) $(BOOK_DIR)/template.html \
                        $(BOOK_DATA) $(BOOK_SOURCES) | $(BOOK_HTML) book-deps
	$(BOOK_PANDOC) $(BOOK_HTML_FLAGS) -M gpus-page=true -f markdown /dev/null -o $@

$(BOOK_HTML)/style.css: $(BOOK_DIR)/style.css | $(BOOK_HTML)
	cp $< $@

$(BOOK_HTML)/figures/%.svg: $(BOOK_FIGS)/%.svg | $(BOOK_HTML)/figures
	cp $< $@

# ---------------------------------------------------------------- figures

# $(call book_fig_var,STEM,VAR): FIG_<stem>_VAR, else FIG_<csv>_VAR
book_fig_var = $(or $(FIG_$(1)_$(2)),$(FIG_$(call book_fig_csv,$(1))_$(2)))

# $(call book_gnuplot,STEM,OUTPUT,TERM)
book_gnuplot = $(GNUPLOT) -e "csv='$(firstword $(call book_fig_csvs,$(1)))'; \
  other='$(wordlist 2,99,$(call book_fig_csvs,$(1)))'; out='$(2).tmp'; term='$(3)'; \
  metric='$(or $(call book_fig_var,$(1),METRIC),gbps)'; dtype='$(call book_fig_var,$(1),DTYPE)'; \
  peer='$(call book_fig_var,$(1),PEER)'; ceiling='$(call book_fig_var,$(1),CEILING)'; \
  title='$(call book_fig_var,$(1),TITLE)'; only='$(call book_fig_var,$(1),VERSIONS)'; \
  x='$(or $(call book_fig_var,$(1),X),$(if $(call book_fig_var,$(1),SHAPES),shape,size))'; \
  total='$(or $(call book_fig_var,$(1),TOTAL),0)'; shapes='$(call book_fig_var,$(1),SHAPES)'; \
  labels='$(call book_fig_var,$(1),LABELS)'; xlabel='$(call book_fig_var,$(1),XLABEL)'; \
  cross='$(call book_fig_var,$(1),CROSS)'; floor='$(call book_fig_var,$(1),FLOOR)'" \
  figures/bandwidth.gp && mv $(2).tmp $(2)

# A figure depends on its data, the script, and the Makefile that declares its FIG_ variables.
define book_figure_rules
$(BOOK_FIGS)/$(1).svg: $(wildcard $(DATA_DIR)/*/$(call book_fig_csv,$(1)).csv \
    $(DATA_DIR)/*/$(call book_fig_csv,$(1)).provenance) figures/bandwidth.gp Makefile \
    $(BOOK_GPU_STAMP) | $(BOOK_FIGS) book-deps
	$$(call book_gnuplot,$(1),$$@,svg)
$(BOOK_FIGS)/$(1).pdf: $(wildcard $(DATA_DIR)/*/$(call book_fig_csv,$(1)).csv \
    $(DATA_DIR)/*/$(call book_fig_csv,$(1)).provenance) figures/bandwidth.gp Makefile \
    $(BOOK_GPU_STAMP) | $(BOOK_FIGS) book-deps
	$$(call book_gnuplot,$(1),$$@,pdf)
endef
# A figure with a script of its own (FIG_<stem>_SCRIPT) is given out, term and the
# reference GPU's CSV (none for a diagram, whose FIG_<stem>_CSV is -). A diagram's SVG
# is marked as one, for tests/book_test.sh: it has no data to check.
book_script_csv = $(if $(filter -,$(FIG_$(1)_CSV)),,$(firstword $(call book_fig_csvs,$(1))))
# ... and the other GPUs' CSVs (other), and FIG_<stem>_ROOFS, the sibling CSV whose compute
# ceilings a roofline draws where the chapter measures none (roofs_from)
book_script_other = $(if $(filter -,$(FIG_$(1)_CSV)),,$(wordlist 2,99,$(call book_fig_csvs,$(1))))
book_script_vars = csv='$(call book_script_csv,$(1))'; other='$(call book_script_other,$(1))'; \
  roofs_from='$(FIG_$(1)_ROOFS)'
book_script_deps = $(FIG_$(1)_SCRIPT) $(call book_script_csv,$(1)) $(call book_script_other,$(1)) \
  $(if $(FIG_$(1)_ROOFS),$(wildcard $(DATA_DIR)/*/$(FIG_$(1)_ROOFS).csv)) Makefile
define book_script_rules
$(BOOK_FIGS)/$(1).svg: $(call book_script_deps,$(1)) | $(BOOK_FIGS) book-deps
	$(GNUPLOT) -e "$(call book_script_vars,$(1)); out='$$@.tmp'; term='svg'" $(FIG_$(1)_SCRIPT) \
	  $(if $(filter -,$(FIG_$(1)_CSV)),&& echo '<!-- diagram -->' >> $$@.tmp) && mv $$@.tmp $$@
$(BOOK_FIGS)/$(1).pdf: $(call book_script_deps,$(1)) | $(BOOK_FIGS) book-deps
	$(GNUPLOT) -e "$(call book_script_vars,$(1)); out='$$@.tmp'; term='pdf'" $(FIG_$(1)_SCRIPT) && mv $$@.tmp $$@
endef
$(foreach f,$(FIGURES),$(eval $(call $(if $(FIG_$(f)_SCRIPT),book_script_rules,book_figure_rules),$(f))))

# ---------------------------------------------------------------- PDF

$(BOOK_PDF): $(CHAPTERS) $(BOOK_INDEX) $(BOOK_WEAVE) $(BOOK_DIR)/preamble.tex \
             $(BOOK_DATA) $(BOOK_SOURCES) $(BOOK_PDFFIGS) $(call book_sass_bins,$(CHAPTERS)) | book-deps
	@mkdir -p $(@D)
	$(BOOK_PANDOC) -M figure-dir=$(BOOK_FIGS) --pdf-engine=pdflatex \
	  -H $(BOOK_DIR)/preamble.tex --top-level-division=chapter --toc \
	  --number-sections $(CHAPTERS) -o $@

# ---------------------------------------------------------------- tools

# $(call book_apt,TOOLS,PACKAGES,OPTIONAL): when one of TOOLS is missing (a:b: either will
# do), install PACKAGES from Debian as root or with passwordless sudo, else print the
# command to run; then fail, or (OPTIONAL=1) carry on without them.
book_apt = missing=; for t in $(1); do found=; for a in $$(echo $$t | tr ':' ' '); do \
    command -v $$a >/dev/null 2>&1 && found=1; done; [ -n "$$found" ] || missing="$$missing $$t"; done; \
  [ -z "$$missing" ] && exit 0; \
  echo "$@: missing:$$missing"; \
  cmd="apt-get install -y --no-install-recommends $(2)"; \
  if [ "$$(id -u)" = 0 ]; then sudo=; \
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=sudo; \
  else echo "$@: run as root:"; echo "  $$cmd"; exit $(if $(3),0,1); fi; \
  echo "$$sudo $$cmd"; \
  $$sudo $$cmd || { $$sudo apt-get update && $$sudo $$cmd; } $(if $(3),|| echo "$@: not installed")

BOOK_APT_PACKAGES := pandoc gnuplot-nox texlive-latex-base texlive-latex-recommended \
  texlive-fonts-recommended texlive-latex-extra lmodern

book-deps: $(filter $(BOOK_CUDA_TOOLS)/%,$(CUOBJDUMP))
	@$(call book_apt,$(PANDOC) $(GNUPLOT) pdflatex,$(BOOK_APT_PACKAGES))

# cuobjdump and nvdisasm from PyPI (about 6 MB), where neither PATH nor nvcc's folder
# has cuobjdump: pip installs them into a folder of the build, as any user
$(BOOK_CUDA_TOOLS)/bin/cuobjdump:
	@echo "$@: no cuobjdump on PATH or beside $(NVCC): installing it from PyPI"
	@rm -rf $(BOOK_CUDA_TOOLS) && mkdir -p $(@D)
	@echo "python3 -m pip install --target $(BOOK_CUDA_TOOLS)/pip $(BOOK_CUOBJDUMP_PIP)"
	@PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-deps \
	  --target $(BOOK_CUDA_TOOLS)/pip $(BOOK_CUOBJDUMP_PIP) || { echo "$@: cuobjdump could not be installed: install python3-pip"; \
	  echo "  and run make again, or the CUDA toolkit's cuobjdump (cuda-cuobjdump-$(BOOK_CUDA_MAJOR)-<minor>"; \
	  echo "  from NVIDIA's repository), or name one: make CUOBJDUMP=PATH"; exit 1; }
	@tool=$$(ls $(BOOK_CUDA_TOOLS)/pip/nvidia/*/bin/cuobjdump 2>/dev/null | head -1); \
	[ -n "$$tool" ] || { echo "$@: the wheel holds no cuobjdump"; exit 1; }; \
	ln -sf "../$${tool#$(BOOK_CUDA_TOOLS)/}" $@.tmp && $@.tmp --version >/dev/null && mv $@.tmp $@ && echo "$@: installed"

# Only for `make test`: Chromium measures the HTML pages (tests/book_fit_test.sh, skipped
# without it) and pdftotext reads the PDF (tests/book_test.sh).  About 120 MB to fetch.
BOOK_TEST_APT_PACKAGES := chromium poppler-utils

test: book-test-deps
book-test-deps: | book-deps
	@$(call book_apt,chromium:chromium-browser:google-chrome:google-chrome-stable pdftotext,$(BOOK_TEST_APT_PACKAGES),1)

book-clean:
	rm -rf $(BOOK_HTML) $(BOOK_PDF) $(BOOK_FIGS) $(BOOK_INDEX)
