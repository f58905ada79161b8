#line 6 "chapters/01-hello.md"
#include <cstdio>

// <<hello-kernel>>
#line 16 "chapters/01-hello.md"
__global__ void hello() { printf("hello\n"); }
#line 9 "chapters/01-hello.md"

int main() { return 0; }
