#line 6 "chapters/01-first.md"
// <<headers>>
#line 12 "chapters/01-first.md"
#include <cstdio>
#line 7 "chapters/01-first.md"

// <<kernels>>
#line 16 "chapters/01-first.md"
__global__ void first() {}
#line 6 "chapters/02-second.md"
__global__ void second()
{
    // <<second-body>>
#line 13 "chapters/02-second.md"
    int x = 0;
    (void)x;
#line 9 "chapters/02-second.md"
}
