#line 4 "chapters/01-concat.md"
#include <stdio.h>

int main(void)
{
    // <<steps>>
#line 16 "chapters/01-concat.md"
    puts("one");
#line 22 "chapters/01-concat.md"
    puts("two");
#line 28 "chapters/01-concat.md"
    puts("three");
#line 9 "chapters/01-concat.md"
    return 0;
}
