code/concat.c: chapters/01-concat.md
chapters/01-concat.md:
