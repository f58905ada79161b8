code/Makefile: chapters/01-build.md
code/figures/bandwidth.gp: chapters/01-build.md
code/scripts/run.sh: chapters/01-build.md
code/scripts/summary.py: chapters/01-build.md
chapters/01-build.md:
