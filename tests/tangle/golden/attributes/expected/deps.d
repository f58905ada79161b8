code/with\ space/a/b.cu: chapters/01-attributes.md
chapters/01-attributes.md:
