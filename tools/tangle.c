/*
 * tangle.c -- extract compilable programs from the book's Markdown chapters.
 *
 * A chapter defines code in fenced blocks whose info string is a pandoc
 * attribute block (the syntax Entangled uses):
 *
 *     ```{.cuda file=code/reduce/reduce.cu}     a root: becomes that file
 *     <<reduce-kernels>>
 *     ```
 *
 *     ```{.cuda #reduce-kernels}                a named chunk
 *     __global__ void k(...) { ... }
 *     ```
 *
 * A line holding only `<<name>>` expands the named chunk, indented like the
 * reference.  Blocks sharing a name are concatenated in document order, and
 * all chapters given on the command line share one namespace.  C-family
 * outputs get `#line` directives pointing back into the Markdown, so that
 * compiler diagnostics and -lineinfo name the chapter line.
 *
 * The program works in three passes: parse every chapter, validate the
 * chunk graph, and expand every root into memory.  Files are written only
 * when all three succeeded, only under code/, only those whose content
 * changed, and all of them or none.
 *
 * Build: gcc -std=c11 -Wall -Wextra -Werror -pedantic -O2 -o tangle tangle.c
 * With -DTANGLE_NO_MAIN the file has no main() and tangle_main() is called
 * in-process instead (tests/fuzz/ does, with an in-memory chapter).
 */
#define _XOPEN_SOURCE 700 /* POSIX 2008 with realpath */

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define NONE ((size_t)-1)

/* Where diagnostics go: stderr, unless a caller of tangle_main() says. */
static FILE *messages;

/* ======================================================================
 * Memory helpers: allocation failure is fatal, so callers need no checks.
 * ====================================================================== */

static void *xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (!p) {
        fprintf(stderr, "tangle: out of memory\n");
        exit(1);
    }
    return p;
}

static char *xstrndup(const char *s, size_t n)
{
    char *p = xrealloc(NULL, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* Make room for one more element in a growable array. */
#define PUSH_SLOT(array, count, capacity)                                   \
    do {                                                                    \
        if ((count) == (capacity)) {                                        \
            (capacity) = (capacity) ? 2 * (capacity) : 16;                  \
            (array) = xrealloc((array), (capacity) * sizeof *(array));      \
        }                                                                   \
    } while (0)

/* ======================================================================
 * String buffer: the tangled text of every output is built in one.
 * ====================================================================== */

typedef struct {
    char *data;
    size_t len, cap;
} Buf;

/* Make room for n more characters and the terminating NUL. */
static void buf_reserve(Buf *b, size_t n)
{
    if (b->len + n + 1 <= b->cap)
        return;
    while (b->len + n + 1 > b->cap)
        b->cap = b->cap ? 2 * b->cap : 256;
    b->data = xrealloc(b->data, b->cap);
}

static void buf_addn(Buf *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    if (n > 0)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void buf_add(Buf *b, const char *s) { buf_addn(b, s, strlen(s)); }

static void buf_vprintf(Buf *b, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    if (n < 0) {
        fprintf(stderr, "tangle: cannot format '%s'\n", fmt);
        exit(1);
    }
    buf_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, again);
    va_end(again);
    b->len += (size_t)n;
}

static void buf_printf(Buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

static void buf_free(Buf *b) { free(b->data); }

/* ======================================================================
 * Hash table: names to indices, so that looking a chunk up costs the
 * same in a book of ten chunks or of a million
 * ====================================================================== */

typedef struct {
    const char *key; /* owned by the caller; NULL in an empty slot */
    size_t value;
} Slot;

typedef struct {
    Slot *slots;
    size_t cap; /* a power of two, or 0 */
    size_t count;
} Table;

/* FNV-1a over the first n characters of s. */
static size_t hash_name(const char *s, size_t n)
{
    unsigned long long h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

/* The value stored for the first n characters of key, or NONE. */
static size_t table_get(const Table *tb, const char *key, size_t n)
{
    if (tb->cap == 0)
        return NONE;
    size_t mask = tb->cap - 1;
    for (size_t i = hash_name(key, n) & mask;; i = (i + 1) & mask) {
        const Slot *s = &tb->slots[i];
        if (!s->key)
            return NONE;
        if (!strncmp(s->key, key, n) && s->key[n] == '\0')
            return s->value;
    }
}

static void table_insert(Slot *slots, size_t cap, Slot item)
{
    size_t i = hash_name(item.key, strlen(item.key)) & (cap - 1);
    while (slots[i].key)
        i = (i + 1) & (cap - 1);
    slots[i] = item;
}

/* Add a key that is not in the table yet; the table stays half empty. */
static void table_put(Table *tb, const char *key, size_t value)
{
    if (2 * (tb->count + 1) > tb->cap) {
        size_t cap = tb->cap ? 2 * tb->cap : 64;
        Slot *slots = xrealloc(NULL, cap * sizeof *slots);
        memset(slots, 0, cap * sizeof *slots);
        for (size_t i = 0; i < tb->cap; i++)
            if (tb->slots[i].key)
                table_insert(slots, cap, tb->slots[i]);
        free(tb->slots);
        tb->slots = slots;
        tb->cap = cap;
    }
    table_insert(tb->slots, tb->cap, (Slot){key, value});
    tb->count++;
}

static void table_free(Table *tb) { free(tb->slots); }

/* ======================================================================
 * Data model
 * ====================================================================== */

typedef struct {
    char *text; /* NUL-terminated, without the line ending */
    size_t len;
} Line;

typedef struct {
    const char *path; /* exactly as given on the command line */
    char *contents;   /* the file, its line ends replaced by NULs */
    Line *lines;
    size_t nlines;
    size_t lone_cr_line, nul_line; /* the first line with one, or 0 */
} Source;

typedef enum { BLOCK_ROOT, BLOCK_NAMED } BlockKind;

typedef struct {
    BlockKind kind;
    char *name;        /* chunk name, or normalised output path of a root */
    size_t source;     /* index into Tangle.sources */
    size_t fence_line; /* 1-based Markdown line of the opening fence */
    size_t first_line; /* index of the first code line in the source */
    size_t nlines;
    size_t first_ref, nrefs; /* its references, a range of Tangle.refs */
} Block;

typedef struct {
    char *name;
    size_t block;      /* the block containing the reference */
    size_t index;      /* line index within that block */
    size_t indent_len; /* leading whitespace of the reference line */
    size_t target;     /* the chunk referred to, or NONE */
} Ref;

typedef enum { MARK_NEW, MARK_ACTIVE, MARK_DONE } Mark;

typedef struct {
    char *name;
    size_t *blocks; /* in document order */
    size_t nblocks, cap;
    bool used;
    Mark mark; /* for cycle detection */
} Chunk;

typedef struct {
    size_t source; /* the chapter, an index into Tangle.sources */
    size_t line;
    size_t seq; /* order of discovery, to keep sorting stable */
    bool is_error;
    char *text;
} Diagnostic;

typedef struct {
    Source *sources;
    size_t nsources;
    Block *blocks;
    size_t nblocks, blocks_cap;
    Ref *refs;
    size_t nrefs, refs_cap;
    Chunk *chunks;
    size_t nchunks, chunks_cap;
    Table chunk_names; /* chunk name -> index into chunks */
    Diagnostic *diags;
    size_t ndiags, diags_cap;
    int errors;
    Buf index; /* the --index TSV, built while parsing */
} Tangle;

static size_t markdown_line(const Block *b, size_t index)
{
    return b->fence_line + 1 + index;
}

static const Line *block_line(const Tangle *t, const Block *b, size_t index)
{
    return &t->sources[b->source].lines[b->first_line + index];
}

/* ======================================================================
 * Diagnostics: collected while working, then printed sorted by place as
 * PATH:LINE: message
 * ====================================================================== */

static void add_diagnostic(Tangle *t, size_t source, size_t line,
                           bool is_error, const char *fmt, va_list ap)
{
    Buf text = {0};
    buf_vprintf(&text, fmt, ap);
    PUSH_SLOT(t->diags, t->ndiags, t->diags_cap);
    t->diags[t->ndiags] =
        (Diagnostic){source, line, t->ndiags, is_error, text.data};
    t->ndiags++;
    if (is_error)
        t->errors++;
}

static void error_at(Tangle *t, size_t source, size_t line, const char *fmt,
                     ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_diagnostic(t, source, line, true, fmt, ap);
    va_end(ap);
}

static void warning_at(Tangle *t, size_t source, size_t line,
                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_diagnostic(t, source, line, false, fmt, ap);
    va_end(ap);
}

/* Order by chapter (command-line order), line, then order of discovery. */
static int compare_diagnostics(const void *pa, const void *pb)
{
    const Diagnostic *a = pa, *b = pb;
    if (a->source != b->source)
        return a->source < b->source ? -1 : 1;
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static void print_diagnostics(Tangle *t)
{
    if (t->ndiags > 1)
        qsort(t->diags, t->ndiags, sizeof *t->diags, compare_diagnostics);
    for (size_t i = 0; i < t->ndiags; i++) {
        const Diagnostic *d = &t->diags[i];
        fprintf(messages, "%s:%zu: %s%s\n", t->sources[d->source].path, d->line,
                d->is_error ? "" : "warning: ", d->text);
    }
}

/* ======================================================================
 * Reading files
 * ====================================================================== */

/* Read a whole file; returns NULL (errno set) if it cannot be read. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    Buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_addn(&b, chunk, n);
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        buf_free(&b);
        errno = EIO;
        return NULL;
    }
    if (!b.data)
        buf_addn(&b, "", 0);
    *len = b.len;
    return b.data;
}

/* Split the contents into lines in place, dropping "\n" and "\r\n".  A
 * lone "\r" ends a line too, so that line numbers stay right, but it is
 * noted, as is a NUL byte: both are reported as errors. */
static void split_lines(Source *s, size_t len)
{
    size_t cap = 0;
    char *p = s->contents, *end = s->contents + len;
    while (p < end) {
        char *stop = p;
        while (stop < end && *stop != '\n' && *stop != '\r')
            stop++;
        char *next = stop < end ? stop + 1 : end;
        if (stop < end && *stop == '\r') {
            if (next < end && *next == '\n')
                next++;
            else if (!s->lone_cr_line)
                s->lone_cr_line = s->nlines + 1;
        }
        if (!s->nul_line && memchr(p, '\0', (size_t)(stop - p)))
            s->nul_line = s->nlines + 1;
        *stop = '\0';
        PUSH_SLOT(s->lines, s->nlines, cap);
        s->lines[s->nlines++] = (Line){p, (size_t)(stop - p)};
        p = next;
    }
}

static bool load_source(Source *s, const char *path)
{
    size_t len;
    s->path = path;
    s->contents = read_file(path, &len);
    if (!s->contents) {
        fprintf(messages, "tangle: cannot read '%s': %s\n", path,
                strerror(errno));
        return false;
    }
    split_lines(s, len);
    return true;
}

/* ======================================================================
 * Fences: ``` or ~~~ (three or more) at column 0
 * ====================================================================== */

typedef struct {
    char ch;          /* '`' or '~' */
    size_t width;     /* number of fence characters */
    const char *info; /* the info string, leading blanks skipped */
} Fence;

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

static bool open_fence(const char *line, Fence *f)
{
    if (line[0] != '`' && line[0] != '~')
        return false;
    size_t n = 0;
    while (line[n] == line[0])
        n++;
    if (n < 3)
        return false;
    /* CommonMark: a backtick fence's info string has no backticks. */
    if (line[0] == '`' && strchr(line + n, '`'))
        return false;
    f->ch = line[0];
    f->width = n;
    f->info = line + n;
    while (is_blank(*f->info))
        f->info++;
    return true;
}

static bool closes_fence(const char *line, const Fence *f)
{
    size_t n = 0;
    while (line[n] == f->ch)
        n++;
    if (n < f->width)
        return false;
    while (is_blank(line[n]))
        n++;
    return line[n] == '\0';
}

/* Inside the block that `f` opened, a line that would open a block of the
 * same kind, info string and all, is almost always the next block: the
 * one before it was left open. */
static bool reopens_fence(const char *line, const Fence *f)
{
    Fence g;
    return open_fence(line, &g) && g.ch == f->ch && g.width >= f->width &&
           *g.info != '\0';
}

/* ======================================================================
 * Attribute blocks: {.class #id key=value key="quoted value"}
 * ====================================================================== */

typedef struct {
    char *id;   /* #name, or NULL */
    char *file; /* file=PATH, or NULL */
} Attrs;

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
           c == '/';
}

static bool ends_token(char c) { return c == '\0' || c == '}' || is_blank(c); }

/* Parse a quoted or bare attribute value starting at *p. */
static char *parse_value(const char **p, const char **why)
{
    const char *s = *p;
    if (*s != '"') {
        const char *start = s;
        while (!ends_token(*s))
            s++;
        *p = s;
        return xstrndup(start, (size_t)(s - start));
    }
    Buf value = {0};
    for (s++; *s != '"'; s++) {
        if (*s == '\0') {
            *why = "unterminated quoted value";
            buf_free(&value);
            return NULL;
        }
        if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
            s++;
        buf_addn(&value, s, 1);
    }
    *p = s + 1;
    buf_addn(&value, "", 0);
    return value.data;
}

/*
 * Parse the attribute block starting at `info` (which begins with '{').
 * On failure returns false with *why describing the problem.
 */
static bool parse_attributes(const char *info, Attrs *a, const char **why)
{
    const char *p = info + 1;
    *a = (Attrs){NULL, NULL};
    for (;;) {
        while (is_blank(*p))
            p++;
        if (*p == '}')
            break;
        if (*p == '\0') {
            *why = "missing '}'";
            return false;
        }
        const char *start = p;
        if (*p == '.' || *p == '#') {
            while (!ends_token(*++p))
                ;
            size_t n = (size_t)(p - start - 1);
            if (n == 0) {
                *why = *start == '.' ? "empty class" : "empty #name";
                return false;
            }
            if (*start == '#') {
                for (const char *c = start + 1; c < p; c++)
                    if (!is_name_char(*c)) {
                        *why = "invalid character in #name";
                        return false;
                    }
                if (a->id) {
                    *why = "more than one #name";
                    return false;
                }
                a->id = xstrndup(start + 1, n);
            }
            continue;
        }
        while (!ends_token(*p) && *p != '=')
            p++;
        if (*p != '=' || p == start) {
            *why = "expected .class, #name or key=value";
            return false;
        }
        bool is_file = (size_t)(p - start) == 4 && !strncmp(start, "file", 4);
        p++;
        char *value = parse_value(&p, why);
        if (!value)
            return false;
        if (!is_file) {
            free(value);
        } else if (a->file) {
            free(value);
            *why = "more than one file=";
            return false;
        } else if (!*value) {
            free(value);
            *why = "empty file=";
            return false;
        } else {
            a->file = value;
        }
    }
    for (p++; *p; p++)
        if (!is_blank(*p)) {
            *why = "text after '}'";
            return false;
        }
    return true;
}

/* ======================================================================
 * Output paths: relative, normalised, under code/ and nowhere else
 * ====================================================================== */

/* The one folder that tangled files go to, relative to the --root. */
#define CODE_DIR "code"

/*
 * Normalise a root's file= path ("a/./b//c" -> "a/b/c", "a/../b" -> "b").
 * Returns NULL with *why set if the path is absolute, escapes, or names
 * anything but a file under code/ (never chapters/, tools/, the Makefile
 * or .git).
 */
static char *normalise_path(const char *path, const char **why)
{
    if (path[0] == '/') {
        *why = "is absolute";
        return NULL;
    }
    for (const char *c = path; *c; c++)
        if ((unsigned char)*c < ' ' || *c == '\x7f') {
            *why = "holds a control character";
            return NULL;
        }
    char *out = xrealloc(NULL, strlen(path) + 1);
    size_t len = 0, depth = 0;
    const char *p = path;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (depth == 0) {
                free(out);
                *why = "leaves the repository";
                return NULL;
            }
            depth--;
            while (len > 0 && out[len - 1] != '/')
                len--;
            if (len > 0)
                len--; /* drop the separator too */
        } else if (n > 0 && !(n == 1 && p[0] == '.')) {
            if (len > 0)
                out[len++] = '/';
            memcpy(out + len, p, n);
            len += n;
            depth++;
        }
        p += n;
        if (*p == '/')
            p++;
    }
    out[len] = '\0';
    if (len == 0) {
        free(out);
        *why = "names no file";
        return NULL;
    }
    size_t n = strlen(CODE_DIR);
    if (len <= n + 1 || strncmp(out, CODE_DIR "/", n + 1)) {
        free(out);
        *why = "is not under " CODE_DIR "/ (tangled files go there only)";
        return NULL;
    }
    return out;
}

static bool is_c_family(const char *path)
{
    static const char *const extensions[] = {".c",   ".h",   ".cu", ".cuh",
                                             ".cpp", ".hpp", ".cc"};
    const char *dot = strrchr(path, '.');
    if (!dot || strchr(dot, '/'))
        return false;
    for (size_t i = 0; i < sizeof extensions / sizeof *extensions; i++)
        if (!strcmp(dot, extensions[i]))
            return true;
    return false;
}

/* ======================================================================
 * Parsing: chapters -> blocks, chunks and references
 * ====================================================================== */

static size_t find_chunk(const Tangle *t, const char *name)
{
    return table_get(&t->chunk_names, name, strlen(name));
}

static size_t find_or_add_chunk(Tangle *t, const char *name)
{
    size_t c = find_chunk(t, name);
    if (c != NONE)
        return c;
    PUSH_SLOT(t->chunks, t->nchunks, t->chunks_cap);
    t->chunks[t->nchunks] = (Chunk){.name = xstrndup(name, strlen(name))};
    table_put(&t->chunk_names, t->chunks[t->nchunks].name, t->nchunks);
    return t->nchunks++;
}

/* If the line is a reference `<<name>>`, return the name's length and
 * set *name and *indent_len; otherwise return 0. */
static size_t match_reference(const Line *l, const char **name,
                              size_t *indent_len)
{
    const char *s = l->text, *e = l->text + l->len;
    while (s < e && is_blank(*s))
        s++;
    *indent_len = (size_t)(s - l->text);
    while (e > s && is_blank(e[-1]))
        e--;
    if (e - s < 5 || strncmp(s, "<<", 2) || strncmp(e - 2, ">>", 2))
        return 0;
    for (const char *c = s + 2; c < e - 2; c++)
        if (!is_name_char(*c))
            return 0;
    *name = s + 2;
    return (size_t)(e - s - 4);
}

/* Record the references of the block just added, for the index as well. */
static void collect_references(Tangle *t, size_t bi)
{
    Block *b = &t->blocks[bi];
    const char *path = t->sources[b->source].path;
    b->first_ref = t->nrefs;
    for (size_t i = 0; i < b->nlines; i++) {
        const char *name;
        size_t indent, n = match_reference(block_line(t, b, i), &name, &indent);
        if (n == 0)
            continue;
        PUSH_SLOT(t->refs, t->nrefs, t->refs_cap);
        t->refs[t->nrefs++] = (Ref){xstrndup(name, n), bi, i, indent, NONE};
        buf_printf(&t->index, "use\t%.*s\t%s\t%zu\t%s%s\n", (int)n, name, path,
                   markdown_line(b, i), b->kind == BLOCK_ROOT ? "file:" : "",
                   b->name);
    }
    b->nrefs = t->nrefs - b->first_ref;
}

/* Turn the fenced block between lines `open` and `close` (0-based, the
 * fences themselves) into a chunk block if its attributes ask for it. */
static void add_block(Tangle *t, size_t si, size_t open, size_t close,
                      const char *info)
{
    const char *path = t->sources[si].path;
    size_t line = open + 1;
    if (*info != '{')
        return; /* plain display code */
    Attrs a;
    const char *why;
    if (!parse_attributes(info, &a, &why)) {
        error_at(t, si, line, "malformed attribute block: %s", why);
        free(a.id);
        free(a.file);
        return;
    }
    if (a.id && a.file) {
        error_at(t, si, line, "code block has both file= and #name");
        free(a.id);
        free(a.file);
        return;
    }
    if (!a.id && !a.file)
        return; /* plain display code */

    Block b = {.source = si, .fence_line = line, .first_line = open + 1,
               .nlines = close - open - 1};
    if (a.file) {
        b.kind = BLOCK_ROOT;
        b.name = normalise_path(a.file, &why);
        if (!b.name) {
            error_at(t, si, line, "refusing file path '%s': it %s", a.file,
                     why);
            free(a.file);
            return;
        }
        free(a.file);
        buf_printf(&t->index, "file\t%s\t%s\t%zu\n", b.name, path, line);
    } else {
        b.kind = BLOCK_NAMED;
        b.name = a.id;
    }
    PUSH_SLOT(t->blocks, t->nblocks, t->blocks_cap);
    size_t bi = t->nblocks++;
    t->blocks[bi] = b;
    if (b.kind == BLOCK_NAMED) {
        size_t ci = find_or_add_chunk(t, b.name); /* may move t->chunks */
        Chunk *c = &t->chunks[ci];
        PUSH_SLOT(c->blocks, c->nblocks, c->cap);
        c->blocks[c->nblocks++] = bi;
        buf_printf(&t->index, "def\t%s\t%zu\t%s\t%zu\n", b.name, c->nblocks,
                   path, line);
    }
    collect_references(t, bi);
}

static void parse_source(Tangle *t, size_t si)
{
    const Source *s = &t->sources[si];
    if (s->lone_cr_line)
        error_at(t, si, s->lone_cr_line,
                 "carriage return without a line feed (a chapter's lines "
                 "end in LF or CRLF)");
    if (s->nul_line)
        error_at(t, si, s->nul_line, "NUL byte (a chapter is text)");
    size_t i = 0;
    while (i < s->nlines) {
        Fence f;
        if (!open_fence(s->lines[i].text, &f)) {
            i++;
            continue;
        }
        size_t close = i + 1;
        while (close < s->nlines && !closes_fence(s->lines[close].text, &f) &&
               !reopens_fence(s->lines[close].text, &f))
            close++;
        if (close == s->nlines) {
            error_at(t, si, i + 1, "unterminated code fence");
            return;
        }
        /* A block left open still defines its chunk, so that no cascade
         * of undefined chunks follows; it ends where the next begins. */
        add_block(t, si, i, close, f.info);
        if (closes_fence(s->lines[close].text, &f)) {
            i = close + 1;
        } else {
            error_at(t, si, i + 1,
                     "unterminated code fence (line %zu opens another)",
                     close + 1);
            i = close;
        }
    }
}

/* ======================================================================
 * Validation: undefined chunks, cycles, duplicate roots, unused chunks
 * ====================================================================== */

static size_t ref_source(const Tangle *t, const Ref *r)
{
    return t->blocks[r->block].source;
}

static size_t ref_line(const Tangle *t, const Ref *r)
{
    return markdown_line(&t->blocks[r->block], r->index);
}

static void resolve_references(Tangle *t)
{
    for (size_t i = 0; i < t->nrefs; i++) {
        Ref *r = &t->refs[i];
        r->target = find_chunk(t, r->name);
        if (r->target == NONE)
            error_at(t, ref_source(t, r), ref_line(t, r),
                     "undefined chunk '%s'", r->name);
        else
            t->chunks[r->target].used = true;
    }
}

/*
 * The references of a chunk (all its blocks, in order) or of a root block,
 * followed one at a time.  The cycle check and the expansion keep these
 * on explicit stacks: a chain of 100,000 nested chunks is just a deep
 * stack, not a deep recursion.
 */
typedef struct {
    size_t chunk;    /* NONE when walking a root block */
    size_t nth;      /* which of the chunk's blocks is being walked */
    size_t ref, end; /* the block's references still to follow: [ref, end) */
} Walk;

static Walk walk_block(const Tangle *t, size_t chunk, size_t nth,
                       size_t block)
{
    const Block *b = &t->blocks[block];
    return (Walk){chunk, nth, b->first_ref, b->first_ref + b->nrefs};
}

static Walk walk_chunk(const Tangle *t, size_t chunk)
{
    return walk_block(t, chunk, 0, t->chunks[chunk].blocks[0]);
}

/* The next reference of the walk (an index into t->refs), or NONE. */
static size_t walk_next(const Tangle *t, Walk *w)
{
    while (w->ref == w->end) {
        if (w->chunk == NONE || w->nth + 1 == t->chunks[w->chunk].nblocks)
            return NONE;
        *w = walk_block(t, w->chunk, w->nth + 1,
                        t->chunks[w->chunk].blocks[w->nth + 1]);
    }
    return w->ref++;
}

/*
 * A `<<name>>` inside a line, not alone on it, would be tangled as text.
 * C++ has `a << b >> c` and launches `k<<<grid, block>>>`, so only the
 * name of a chunk, or a name that no C identifier can be (it has a '-'),
 * counts.  Returns the name's length and sets *name, or returns 0.
 */
static size_t inline_reference(const Tangle *t, const Line *l,
                               const char **name)
{
    const char *s = l->text, *end = l->text + l->len;
    for (const char *p = s; end - p >= 5; p++) {
        if (p[0] != '<' || p[1] != '<' || (p > s && p[-1] == '<'))
            continue;
        const char *q = p + 2;
        while (q < end && is_name_char(*q))
            q++;
        size_t n = (size_t)(q - p - 2);
        if (n == 0 || end - q < 2 || q[0] != '>' || q[1] != '>' ||
            (end - q > 2 && q[2] == '>'))
            continue;
        if (memchr(p + 2, '-', n) ||
            table_get(&t->chunk_names, p + 2, n) != NONE) {
            *name = p + 2;
            return n;
        }
    }
    return 0;
}

/* A reference must be alone on its line: report those that are not. */
static void find_inline_references(Tangle *t)
{
    for (size_t bi = 0; bi < t->nblocks; bi++) {
        const Block *b = &t->blocks[bi];
        size_t r = b->first_ref, end = b->first_ref + b->nrefs;
        for (size_t i = 0; i < b->nlines; i++) {
            if (r < end && t->refs[r].index == i) {
                r++;
                continue;
            }
            const char *name;
            size_t n = inline_reference(t, block_line(t, b, i), &name);
            if (n > 0)
                error_at(t, b->source, markdown_line(b, i),
                         "reference '<<%.*s>>' is not alone on its line "
                         "(it would be tangled as text)",
                         (int)n, name);
        }
    }
}

typedef struct {
    Walk *items; /* room for every chunk and one root: no cycle is entered */
    size_t len;
} Stack;

/* Name the chunks of a cycle; a long one shows its ends and a count. */
static void report_cycle(Tangle *t, const Ref *r, const Stack *stack)
{
    enum { SHOWN = 6 }; /* chunks shown at each end of a long cycle */
    size_t from = stack->len;
    while (stack->items[from - 1].chunk != r->target)
        from--;
    size_t n = stack->len - (from - 1);
    Buf path = {0};
    for (size_t i = from - 1; i < stack->len; i++) {
        size_t k = i - (from - 1);
        if (n > 2 * SHOWN && k >= SHOWN && k < n - SHOWN) {
            if (k == SHOWN)
                buf_printf(&path, "... (%zu more) -> ", n - 2 * SHOWN);
            continue;
        }
        buf_printf(&path, "%s -> ", t->chunks[stack->items[i].chunk].name);
    }
    buf_add(&path, t->chunks[r->target].name);
    error_at(t, ref_source(t, r), ref_line(t, r), "reference cycle: %s",
             path.data);
    buf_free(&path);
}

/* Depth first from one walk, reporting every reference back into a chunk
 * that is still being walked. */
static void visit(Tangle *t, Walk start, Stack *stack)
{
    stack->items[stack->len++] = start;
    while (stack->len > 0) {
        Walk *w = &stack->items[stack->len - 1];
        size_t i = walk_next(t, w);
        if (i == NONE) {
            if (w->chunk != NONE)
                t->chunks[w->chunk].mark = MARK_DONE;
            stack->len--;
            continue;
        }
        const Ref *r = &t->refs[i];
        if (r->target == NONE)
            continue;
        Mark m = t->chunks[r->target].mark;
        if (m == MARK_ACTIVE) {
            report_cycle(t, r, stack);
        } else if (m == MARK_NEW) {
            t->chunks[r->target].mark = MARK_ACTIVE;
            stack->items[stack->len++] = walk_chunk(t, r->target);
        }
    }
}

/* Report every back edge of the reference graph, starting from the roots
 * so that the cycles are reported where a reader meets them first. */
static void find_cycles(Tangle *t)
{
    Stack stack = {xrealloc(NULL, (t->nchunks + 1) * sizeof(Walk)), 0};
    for (size_t i = 0; i < t->nblocks; i++)
        if (t->blocks[i].kind == BLOCK_ROOT)
            visit(t, walk_block(t, NONE, 0, i), &stack);
    for (size_t c = 0; c < t->nchunks; c++)
        if (t->chunks[c].mark == MARK_NEW) {
            t->chunks[c].mark = MARK_ACTIVE;
            visit(t, walk_chunk(t, c), &stack);
        }
    free(stack.items);
}

/* Two roots may not name one file, nor may one sit inside the other
 * ("code/a.cu" and "code/a.cu/x.cu"): one of them could not be written. */
static void find_conflicting_roots(Tangle *t)
{
    Table roots = {0}; /* output path -> its first root block */
    for (size_t i = 0; i < t->nblocks; i++) {
        const Block *b = &t->blocks[i];
        if (b->kind != BLOCK_ROOT)
            continue;
        size_t j = table_get(&roots, b->name, strlen(b->name));
        if (j == NONE) {
            table_put(&roots, b->name, i);
            continue;
        }
        const Block *first = &t->blocks[j];
        error_at(t, b->source, b->fence_line,
                 "file '%s' is produced twice (first at %s:%zu)", b->name,
                 t->sources[first->source].path, first->fence_line);
    }
    for (size_t i = 0; i < t->nblocks; i++) {
        const Block *b = &t->blocks[i];
        if (b->kind != BLOCK_ROOT)
            continue;
        for (const char *s = strchr(b->name, '/'); s; s = strchr(s + 1, '/')) {
            size_t j = table_get(&roots, b->name, (size_t)(s - b->name));
            if (j == NONE)
                continue;
            const Block *outer = &t->blocks[j];
            error_at(t, b->source, b->fence_line,
                     "file '%s' would be inside file '%s' (at %s:%zu)",
                     b->name, outer->name, t->sources[outer->source].path,
                     outer->fence_line);
            break;
        }
    }
    table_free(&roots);
}

static void warn_unused_chunks(Tangle *t)
{
    for (size_t c = 0; c < t->nchunks; c++) {
        const Chunk *ch = &t->chunks[c];
        if (ch->used)
            continue;
        const Block *b = &t->blocks[ch->blocks[0]];
        warning_at(t, b->source, b->fence_line,
                   "chunk '%s' is defined but never used", ch->name);
    }
}

/* ======================================================================
 * Expansion: each root into an in-memory file
 * ====================================================================== */

/*
 * Limits on one run, all outputs together, so that a chunk used twice at
 * each of 30 levels (2^30 copies) is an error rather than a disk filled
 * for an hour.  The book's own code is a thousand times smaller.
 */
#define MAX_OUTPUT_MIB 64
#define MAX_OUTPUT_BYTES ((size_t)MAX_OUTPUT_MIB << 20)
#define MAX_EXPANSIONS ((size_t)1 << 24) /* references expanded */

typedef struct {
    char *path; /* where it goes: the --root directory joined to the name */
    const Block *root;
    Buf text;
    bool *deps; /* per source: did it contribute text? */
} Output;

/* Where the expansion stands in one chunk (or in the root block). */
typedef struct {
    size_t chunk, nth; /* as in Walk: chunk is NONE for the root block */
    const Block *b;
    size_t line;   /* the next line of b */
    size_t ref;    /* b's next reference, an index into Tangle.refs */
    size_t indent; /* the length of the prefix outside this chunk */
} Frame;

typedef struct {
    const Tangle *t;
    Output *out;
    bool c_family; /* emit #line directives and chunk-name comments */
    Buf prefix;    /* indentation accumulated from enclosing references */
    Buf scratch;   /* a line being formatted */
    Frame *frames; /* the chunks being expanded, outermost first */
    size_t nframes, frames_cap;
    size_t bytes, expansions; /* so far, all outputs together */
    bool too_big, too_many;   /* a limit was reached: stop */
} Expander;

/* Append to the output unless that passes the limit on its size. */
static void emit(Expander *e, const char *s, size_t n)
{
    if (e->too_big || n > MAX_OUTPUT_BYTES - e->bytes) {
        e->too_big = true;
        return;
    }
    buf_addn(&e->out->text, s, n);
    e->bytes += n;
}

static void emit_line_directive(Expander *e, const Block *b, size_t index)
{
    Buf *l = &e->scratch;
    l->len = 0;
    buf_printf(l, "#line %zu \"", markdown_line(b, index));
    for (const char *p = e->t->sources[b->source].path; *p; p++) {
        if (*p == '"' || *p == '\\')
            buf_addn(l, "\\", 1);
        buf_addn(l, p, 1);
    }
    buf_add(l, "\"\n");
    emit(e, l->data, l->len);
}

/* Blank lines stay as they are: indenting them adds trailing whitespace. */
static void emit_code_line(Expander *e, const Line *l)
{
    bool blank = true;
    for (size_t i = 0; i < l->len && blank; i++)
        blank = is_blank(l->text[i]);
    if (!blank)
        emit(e, e->prefix.data, e->prefix.len);
    emit(e, l->text, l->len);
    emit(e, "\n", 1);
}

static void begin_block(Expander *e, Frame *f, const Block *b)
{
    f->b = b;
    f->line = 0;
    f->ref = b->first_ref;
    e->out->deps[b->source] = true;
    if (e->c_family && b->nlines > 0)
        emit_line_directive(e, b, 0);
}

/* Start expanding the chunk that the reference on line l names. */
static void enter_reference(Expander *e, const Ref *r, const Line *l)
{
    if (++e->expansions > MAX_EXPANSIONS) {
        e->too_many = true;
        return;
    }
    size_t outer = e->prefix.len;
    buf_addn(&e->prefix, l->text, r->indent_len);
    if (e->c_family) {
        e->scratch.len = 0;
        buf_printf(&e->scratch, "%s// <<%s>>\n", e->prefix.data, r->name);
        emit(e, e->scratch.data, e->scratch.len);
    }
    const Chunk *c = &e->t->chunks[r->target];
    PUSH_SLOT(e->frames, e->nframes, e->frames_cap);
    Frame *f = &e->frames[e->nframes++];
    *f = (Frame){.chunk = r->target, .nth = 0, .indent = outer};
    begin_block(e, f, &e->t->blocks[c->blocks[0]]);
}

/* The innermost block is done: go on to its chunk's next block, or back
 * to the reference, re-synchronising the #line after it. */
static void leave_block(Expander *e)
{
    Frame *f = &e->frames[e->nframes - 1];
    const Chunk *c = f->chunk == NONE ? NULL : &e->t->chunks[f->chunk];
    if (c && f->nth + 1 < c->nblocks) {
        f->nth++;
        begin_block(e, f, &e->t->blocks[c->blocks[f->nth]]);
        return;
    }
    e->prefix.len = f->indent;
    e->prefix.data[f->indent] = '\0';
    e->nframes--;
    if (e->nframes == 0)
        return;
    const Frame *outer = &e->frames[e->nframes - 1];
    if (e->c_family && outer->line < outer->b->nlines)
        emit_line_directive(e, outer->b, outer->line);
}

static void expand_root(Expander *e, const Block *root)
{
    e->nframes = 0;
    PUSH_SLOT(e->frames, e->nframes, e->frames_cap);
    Frame *f = &e->frames[e->nframes++];
    *f = (Frame){.chunk = NONE, .indent = 0};
    begin_block(e, f, root);
    while (e->nframes > 0 && !e->too_big && !e->too_many) {
        f = &e->frames[e->nframes - 1];
        const Block *b = f->b;
        if (f->line == b->nlines) {
            leave_block(e);
            continue;
        }
        size_t i = f->line++;
        const Line *l = block_line(e->t, b, i);
        if (f->ref < b->first_ref + b->nrefs && e->t->refs[f->ref].index == i)
            enter_reference(e, &e->t->refs[f->ref++], l);
        else
            emit_code_line(e, l);
    }
}

static char *join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n == 0 || (n == 1 && dir[0] == '.'))
        return xstrndup(name, strlen(name));
    Buf b = {0};
    buf_addn(&b, dir, n);
    if (dir[n - 1] != '/')
        buf_add(&b, "/");
    buf_add(&b, name);
    return b.data;
}

/* Expand every root; returns the array of outputs, in document order.
 * Reports an error and stops at the root where a limit is reached. */
static Output *expand_all(Tangle *t, const char *root_dir, size_t *noutputs)
{
    Output *outputs = NULL;
    size_t n = 0, cap = 0;
    Expander e = {.t = t};
    buf_addn(&e.prefix, "", 0);
    for (size_t i = 0; i < t->nblocks; i++) {
        const Block *b = &t->blocks[i];
        if (b->kind != BLOCK_ROOT)
            continue;
        PUSH_SLOT(outputs, n, cap);
        Output *o = &outputs[n++];
        *o = (Output){.path = join_path(root_dir, b->name), .root = b};
        o->deps = xrealloc(NULL, t->nsources * sizeof(bool));
        memset(o->deps, 0, t->nsources * sizeof(bool));
        buf_addn(&o->text, "", 0);
        e.out = o;
        e.c_family = is_c_family(b->name);
        expand_root(&e, b);
        if (e.too_big)
            error_at(t, b->source, b->fence_line,
                     "file '%s' makes the tangled output larger than %d MiB, "
                     "the limit (is a chunk used more often than meant?)",
                     b->name, MAX_OUTPUT_MIB);
        if (e.too_many)
            error_at(t, b->source, b->fence_line,
                     "file '%s' expands more than %zu chunk references, the "
                     "limit (is a chunk used more often than meant?)",
                     b->name, MAX_EXPANSIONS);
        if (e.too_big || e.too_many)
            break;
    }
    buf_free(&e.prefix);
    buf_free(&e.scratch);
    free(e.frames);
    *noutputs = n;
    return outputs;
}

/* ======================================================================
 * Writing: all files or none, and only those whose content changed.
 * Every changed file is first staged in a temporary file created beside
 * it; once all are staged they are renamed into place.  A failure
 * removes what was staged and names the chapter line of the file=.
 * ====================================================================== */

/* One file to write: a tangled output, the depfile or the index. */
typedef struct {
    const char *path;
    const Buf *text;
    const Block *root; /* its file= block; NULL for --depfile and --index */
    char *staged;      /* the temporary file holding text, or NULL */
} Write;

/* The folders this run created, to remove again if it fails. */
typedef struct {
    char **items;
    size_t len, cap;
} Folders;

/* Does the file at `path` hold exactly `text`? */
static bool file_has_content(const char *path, const Buf *text)
{
    size_t len;
    char *old = read_file(path, &len);
    bool same = old && len == text->len && !memcmp(old, text->data, len);
    free(old);
    return same;
}

static void write_failed(Tangle *t, const Write *w, int err)
{
    if (w->root)
        error_at(t, w->root->source, w->root->fence_line,
                 "cannot write '%s': %s", w->path, strerror(err));
    else
        fprintf(messages, "tangle: cannot write '%s': %s\n", w->path,
                strerror(err));
}

/* Is the absolute path `path` the folder `dir` or inside it? */
static bool is_inside(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return !strncmp(path, dir, n) && (path[n] == '\0' || path[n] == '/');
}

/*
 * Every symbolic link on the way from the --root to an output must lead
 * into code/ (given as `code`, an absolute physical path): tangled files
 * go there and nowhere else.  Returns the first link that does not (the
 * caller frees it), or NULL.  Folders not made yet cannot be links.
 */
static char *link_out_of_code(const char *root_dir, const char *name,
                              const char *code)
{
    for (const char *end = strchr(name, '/');; end = strchr(end + 1, '/')) {
        size_t n = end ? (size_t)(end - name) : strlen(name);
        char *prefix = xstrndup(name, n);
        char *path = join_path(root_dir, prefix);
        free(prefix);
        struct stat st;
        if (lstat(path, &st) != 0) {
            free(path);
            return NULL;
        }
        if (S_ISLNK(st.st_mode)) {
            char *real = realpath(path, NULL);
            bool inside = real && is_inside(real, code);
            free(real);
            if (!inside)
                return path;
        }
        free(path);
        if (!end)
            return NULL;
    }
}

/* Create the parent folders of `path` (like mkdir -p), remembering those
 * made.  Returns false with errno set on failure. */
static bool make_parent_dirs(const char *path, Folders *made)
{
    char *dir = xstrndup(path, strlen(path));
    bool ok = true;
    for (char *p = dir + 1; *p && ok; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0777) == 0) {
            PUSH_SLOT(made->items, made->len, made->cap);
            made->items[made->len++] = xstrndup(dir, strlen(dir));
        } else if (errno != EEXIST) {
            ok = false;
        }
        *p = '/';
    }
    free(dir);
    return ok;
}

/* The mode of a new file: what fopen would have given it. */
static mode_t new_file_mode(void)
{
    mode_t mask = umask(0);
    umask(mask);
    return 0666 & ~mask;
}

static bool write_fully(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        data += n;
        len -= (size_t)n;
    }
    return true;
}

/*
 * Write w->text to a new temporary file beside w->path.  mkstemp creates
 * it exclusively (O_CREAT | O_EXCL), so a link planted at a predictable
 * name is never followed.  Returns false with errno set on failure.
 */
static bool stage(Write *w)
{
    struct stat st;
    if (lstat(w->path, &st) == 0 && S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        return false;
    }
    /* keep the mode of the file replaced, e.g. an executable bit */
    mode_t mode = stat(w->path, &st) == 0 ? st.st_mode & 07777
                                          : new_file_mode();
    Buf tmp = {0};
    buf_printf(&tmp, "%s.tangle-XXXXXX", w->path);
    int fd = mkstemp(tmp.data);
    if (fd < 0) {
        buf_free(&tmp);
        return false;
    }
    w->staged = tmp.data;
    bool ok = write_fully(fd, w->text->data, w->text->len) &&
              fchmod(fd, mode) == 0;
    int err = errno;
    if (close(fd) != 0 && ok) {
        ok = false;
        err = errno;
    }
    errno = err;
    return ok;
}

/* Stage every changed file; true when all are staged. */
static bool stage_all(Tangle *t, const char *root_dir, Write *writes,
                      size_t n, Folders *made)
{
    char *root_real = realpath(root_dir, NULL);
    char *code = root_real ? join_path(root_real, CODE_DIR) : NULL;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        Write *w = &writes[i];
        if (file_has_content(w->path, w->text))
            continue;
        char *link = code && w->root
                         ? link_out_of_code(root_dir, w->root->name, code)
                         : NULL;
        if (link) {
            error_at(t, w->root->source, w->root->fence_line,
                     "refusing to write '%s': the symbolic link '%s' leads "
                     "out of " CODE_DIR "/",
                     w->path, link);
            free(link);
            ok = false;
        } else if (!make_parent_dirs(w->path, made) || !stage(w)) {
            write_failed(t, w, errno);
            ok = false;
        }
    }
    free(root_real);
    free(code);
    return ok;
}

/* Stage every changed file, then rename them all into place; on failure
 * remove the staged files and the folders made for them. */
static bool write_all_or_nothing(Tangle *t, const char *root_dir,
                                 Write *writes, size_t n)
{
    Folders made = {0};
    bool ok = stage_all(t, root_dir, writes, n, &made);
    for (size_t i = 0; i < n && ok; i++) {
        Write *w = &writes[i];
        if (!w->staged)
            continue;
        if (rename(w->staged, w->path) != 0) {
            write_failed(t, w, errno);
            ok = false;
            break;
        }
        free(w->staged);
        w->staged = NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (writes[i].staged)
            remove(writes[i].staged);
        free(writes[i].staged);
    }
    for (size_t i = made.len; i-- > 0;) {
        if (!ok)
            rmdir(made.items[i]); /* fails, as it should, if not empty */
        free(made.items[i]);
    }
    free(made.items);
    return ok;
}

/* Make escapes spaces with a backslash and '$' by doubling it. */
static void add_make_word(Buf *b, const char *word)
{
    for (const char *p = word; *p; p++) {
        if (*p == ' ' || *p == '#')
            buf_add(b, "\\");
        else if (*p == '$')
            buf_add(b, "$");
        buf_addn(b, p, 1);
    }
}

static void build_depfile(const Tangle *t, const Output *outputs, size_t n,
                          Buf *dep)
{
    buf_addn(dep, "", 0);
    for (size_t i = 0; i < n; i++) {
        add_make_word(dep, outputs[i].path);
        buf_add(dep, ":");
        for (size_t s = 0; s < t->nsources; s++)
            if (outputs[i].deps[s]) {
                buf_add(dep, " ");
                add_make_word(dep, t->sources[s].path);
            }
        buf_add(dep, "\n");
    }
    for (size_t s = 0; s < t->nsources; s++) {
        add_make_word(dep, t->sources[s].path);
        buf_add(dep, ":\n");
    }
}

/* ======================================================================
 * Command line
 * ====================================================================== */

typedef struct {
    const char *root_dir;
    const char *depfile;
    const char *index;
    bool check;
    bool list;
    char **inputs;
    size_t ninputs;
} Options;

static void usage(FILE *to)
{
    fprintf(to,
            "usage: tangle [--root DIR] [--depfile FILE] [--index FILE] "
            "[--check] [--list] chapter.md...\n"
            "  --root DIR      write outputs relative to DIR (default .)\n"
            "  --depfile FILE  write Make dependencies of the outputs\n"
            "  --index FILE    write the chunk index (TSV) for the weaver\n"
            "  --check         write nothing; report outputs out of date\n"
            "  --list          write nothing; print the output paths\n");
}

/* Match `--name VALUE` or `--name=VALUE`; advances *i past the value. */
static bool option_value(int argc, char **argv, int *i, const char *name,
                         const char **value)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n))
        return false;
    if (argv[*i][n] == '=') {
        *value = argv[*i] + n + 1;
        return true;
    }
    if (argv[*i][n] != '\0' || *i + 1 >= argc)
        return false;
    *value = argv[++*i];
    return true;
}

/* Returns false on a usage error. */
static bool parse_options(int argc, char **argv, Options *o)
{
    *o = (Options){.root_dir = "."};
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        if (a[0] != '-' || !a[1])
            break;
        if (!strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--check")) {
            o->check = true;
        } else if (!strcmp(a, "--list")) {
            o->list = true;
        } else if (!option_value(argc, argv, &i, "--root", &o->root_dir) &&
                   !option_value(argc, argv, &i, "--depfile", &o->depfile) &&
                   !option_value(argc, argv, &i, "--index", &o->index)) {
            fprintf(messages, "tangle: bad argument '%s'\n", a);
            return false;
        }
    }
    o->inputs = argv + i;
    o->ninputs = (size_t)(argc - i);
    return o->ninputs > 0 && *o->root_dir;
}

/* --check: compare every output with the disk; true when all are current. */
static bool check_outputs(const Output *outputs, size_t n)
{
    bool current = true;
    for (size_t i = 0; i < n; i++)
        if (!file_has_content(outputs[i].path, &outputs[i].text)) {
            printf("%s: out of date\n", outputs[i].path);
            current = false;
        }
    return current;
}

static bool write_outputs(Tangle *t, const Options *o, const Output *outputs,
                          size_t n)
{
    Write *writes = xrealloc(NULL, (n + 2) * sizeof *writes);
    size_t nw = 0;
    for (size_t i = 0; i < n; i++)
        writes[nw++] = (Write){outputs[i].path, &outputs[i].text,
                               outputs[i].root, NULL};
    Buf dep = {0};
    if (o->depfile) {
        build_depfile(t, outputs, n, &dep);
        writes[nw++] = (Write){o->depfile, &dep, NULL, NULL};
    }
    if (o->index)
        writes[nw++] = (Write){o->index, &t->index, NULL, NULL};
    bool ok = write_all_or_nothing(t, o->root_dir, writes, nw);
    buf_free(&dep);
    free(writes);
    return ok;
}

static void free_tangle(Tangle *t)
{
    for (size_t i = 0; i < t->nsources; i++) {
        free(t->sources[i].contents);
        free(t->sources[i].lines);
    }
    for (size_t i = 0; i < t->nblocks; i++)
        free(t->blocks[i].name);
    for (size_t i = 0; i < t->nrefs; i++)
        free(t->refs[i].name);
    for (size_t i = 0; i < t->nchunks; i++) {
        free(t->chunks[i].name);
        free(t->chunks[i].blocks);
    }
    free(t->sources);
    free(t->blocks);
    free(t->refs);
    free(t->chunks);
    table_free(&t->chunk_names);
    for (size_t i = 0; i < t->ndiags; i++)
        free(t->diags[i].text);
    free(t->diags);
    buf_free(&t->index);
}

static void free_outputs(Output *outputs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(outputs[i].path);
        buf_free(&outputs[i].text);
        free(outputs[i].deps);
    }
    free(outputs);
}

/* The whole program: returns 0 on success, 1 on errors, 2 on bad usage;
 * diagnostics go to `diagnostics`. */
int tangle_main(int argc, char **argv, FILE *diagnostics)
{
    messages = diagnostics;
    Options opt;
    if (!parse_options(argc, argv, &opt)) {
        usage(messages);
        return 2;
    }

    Tangle t = {0};
    buf_addn(&t.index, "", 0);
    t.sources = xrealloc(NULL, opt.ninputs * sizeof(Source));
    for (size_t i = 0; i < opt.ninputs; i++) {
        t.sources[t.nsources] = (Source){0};
        if (load_source(&t.sources[t.nsources], opt.inputs[i]))
            t.nsources++;
        else
            t.errors++;
    }
    for (size_t i = 0; i < t.nsources; i++)
        parse_source(&t, i);
    resolve_references(&t);
    find_inline_references(&t);
    find_cycles(&t);
    find_conflicting_roots(&t);
    warn_unused_chunks(&t);

    size_t n = 0;
    Output *outputs = t.errors ? NULL : expand_all(&t, opt.root_dir, &n);
    bool ok = t.errors == 0;
    if (ok && opt.list)
        for (size_t i = 0; i < n; i++)
            printf("%s\n", outputs[i].path);
    if (ok && opt.check)
        ok = check_outputs(outputs, n);
    else if (ok && !opt.list)
        ok = write_outputs(&t, &opt, outputs, n);
    print_diagnostics(&t);

    free_outputs(outputs, n);
    free_tangle(&t);
    return ok ? 0 : 1;
}

#ifndef TANGLE_NO_MAIN
int main(int argc, char **argv) { return tangle_main(argc, argv, stderr); }
#endif
