#line 7 "chapters/01-attributes.md"
// <<chunk-with.dots/and_slashes>>
#line 11 "chapters/01-attributes.md"
int ok;
