/*
 * tangle_fuzz.c -- the tangler (tools/tangle.c) under a fuzzer.
 *
 * An input is one to four chapters, separated by the byte 0x1C (ASCII's
 * "file separator").  Each input is written to chapters/ in a scratch
 * folder and tangled there, in-process, with --root out --depfile and
 * --index under out/.  Besides "no crash, no leak, no undefined
 * behaviour" (the sanitizers' part), three promises are checked:
 *   - a run that fails leaves nothing behind: out/ stays empty;
 *   - a second run succeeds too (it finds every file unchanged);
 *   - then --check finds every output in sync.
 *
 * tests/fuzz/run.sh builds it with clang -fsanitize=fuzzer (libFuzzer's
 * main), and with -DREPLAY_MAIN with any C compiler: then main() replays
 * the files and folders of inputs named on its command line.
 */
#define TANGLE_NO_MAIN
#include "../../tools/tangle.c"

#include <dirent.h>
#include <stdint.h>
#include <ftw.h>

#define MAX_CHAPTERS 4
#define SEPARATOR '\x1c'

static char scratch[4096]; /* the scratch folder, made once */
static FILE *silence;      /* the tangler's diagnostics go nowhere */

static void fail(const char *promise)
{
    fprintf(stderr, "tangle_fuzz: broken promise: %s\n", promise);
    abort();
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tree(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void remove_scratch(void) { remove_tree(scratch); }

static void set_up(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(scratch, sizeof scratch, "%s/tangle-fuzz-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(scratch))
        fail("a scratch folder can be made");
    atexit(remove_scratch);
    silence = fopen("/dev/null", "w");
    if (!silence)
        fail("/dev/null can be opened");
}

static bool is_empty_folder(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return false;
    size_t entries = 0;
    for (struct dirent *e; (e = readdir(d));)
        entries += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return entries == 0;
}

static char *scratch_path(const char *name)
{
    return join_path(scratch, name);
}

static void write_chapter(const char *path, const uint8_t *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0)
        fail("a chapter can be written to the scratch folder");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!silence)
        set_up();
    char *chapters = scratch_path("chapters");
    char *out = scratch_path("out");
    char *depfile = scratch_path("out/deps.d");
    char *index = scratch_path("out/index.tsv");
    remove_tree(chapters);
    remove_tree(out);
    mkdir(chapters, 0777);
    mkdir(out, 0777);

    char *argv[8 + MAX_CHAPTERS] = {"tangle", "--root", out, "--depfile",
                                    depfile, "--index", index};
    int argc = 7;
    char *paths[MAX_CHAPTERS];
    size_t npaths = 0, start = 0;
    for (size_t i = 0; i <= size; i++) {
        bool last = npaths + 1 == MAX_CHAPTERS;
        if (i < size && (data[i] != SEPARATOR || last))
            continue;
        char name[32];
        snprintf(name, sizeof name, "chapters/%02zu.md", npaths + 1);
        paths[npaths] = scratch_path(name);
        write_chapter(paths[npaths], data + start, i - start);
        argv[argc++] = paths[npaths++];
        start = i + 1;
    }

    int status = tangle_main(argc, argv, silence);
    if (status == 1 && !is_empty_folder(out))
        fail("a run that fails leaves nothing behind");
    if (status == 0 && tangle_main(argc, argv, silence) != 0)
        fail("a second run succeeds too");
    if (status == 0) {
        char *check[9 + MAX_CHAPTERS] = {"tangle", "--check", "--root", out};
        for (int i = 3; i < argc; i++)
            check[i + 1] = argv[i];
        if (tangle_main(argc + 1, check, silence) != 0)
            fail("--check finds a run's outputs in sync");
    }
    if (status != 0 && status != 1)
        fail("tangle exits 0 or 1");

    remove_tree(out);
    for (size_t i = 0; i < npaths; i++)
        free(paths[i]);
    free(chapters);
    free(out);
    free(depfile);
    free(index);
    return 0;
}

#ifdef REPLAY_MAIN
/* ----------------------------------------------------------------------
 * Replay without libFuzzer: every file named, and every file in every
 * folder named, in name order.
 * ---------------------------------------------------------------------- */

static size_t replayed;

static void replay_file(const char *path)
{
    size_t len;
    char *data = read_file(path, &len);
    if (!data) {
        fprintf(stderr, "tangle_fuzz: cannot read '%s'\n", path);
        exit(2);
    }
    LLVMFuzzerTestOneInput((const uint8_t *)data, len);
    free(data);
    replayed++;
}

static void replay(const char *path)
{
    struct dirent **names;
    int n = scandir(path, &names, NULL, alphasort);
    if (n < 0) {
        replay_file(path);
        return;
    }
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.') {
            char *file = join_path(path, names[i]->d_name);
            replay_file(file);
            free(file);
        }
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        replay(argv[i]);
    printf("tangle_fuzz: replayed %zu inputs\n", replayed);
    return 0;
}
#endif
