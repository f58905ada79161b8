code/cross/main.cu: chapters/01-first.md chapters/02-second.md
code/cross/second.cuh: chapters/01-first.md chapters/02-second.md
chapters/01-first.md:
chapters/02-second.md:
