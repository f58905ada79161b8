#line 38 "chapters/01-display.md"
// <<real>>
#line 42 "chapters/01-display.md"
int real = 1;
```
not a fence closer here (wrong character)
~~~
not a closer either (too short)
