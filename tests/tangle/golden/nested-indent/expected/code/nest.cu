#line 4 "chapters/01-nest.md"
__global__ void kernel(float *x, int n)
{
    // <<kernel-body>>
#line 14 "chapters/01-nest.md"
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
    	// <<update>>
#line 21 "chapters/01-nest.md"
    	float v = x[i];

    	x[i] = 2.0f * v;
    
#line 17 "chapters/01-nest.md"
    }
#line 7 "chapters/01-nest.md"
}
