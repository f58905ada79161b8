code/display.cu: chapters/01-display.md
chapters/01-display.md:
