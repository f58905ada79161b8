code/hello/hello.cu: chapters/01-hello.md
chapters/01-hello.md:
