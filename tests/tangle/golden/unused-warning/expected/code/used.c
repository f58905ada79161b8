#line 4 "chapters/01-unused.md"
// <<used>>
#line 8 "chapters/01-unused.md"
int used;
