code/used.c: chapters/01-unused.md
chapters/01-unused.md:
