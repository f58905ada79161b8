#line 20 "chapters/02-second.md"
#pragma once
// <<headers>>
#line 12 "chapters/01-first.md"
#include <cstdio>
