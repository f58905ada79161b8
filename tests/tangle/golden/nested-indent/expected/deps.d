code/nest.cu: chapters/01-nest.md
chapters/01-nest.md:
