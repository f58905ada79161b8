code/Makefile: chapters/01-build.md
figures/bandwidth.gp: chapters/01-build.md
scripts/run.sh: chapters/01-build.md
scripts/summary.py: chapters/01-build.md
chapters/01-build.md:
