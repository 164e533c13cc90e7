/* The walkthroughs (docs/walkthrough-*.md) name real code: every function they name must be in
 * the file they name.  For each section (a ## heading to the next), the files named in backticks
 * there (heading included) and in the page's opening paragraphs (`lib/nn/transformer_block.c`, or a bare
 * `vit_run.c` found under lib/) must exist, and every function named in backticks, as a call
 * (`mcnn_layernorm_forward(ln1, ...)`, `bias_residual(...)`, `BN_FORWARD(...)`: a name with an
 * underscore followed by '(') or bare (`mcnn_vit_b16_config`), must
 *   - appear as name( in one of those files (defined or called there: what the text walks), and
 *   - be defined somewhere in those folders (a line starting with its declaration, or a
 *     #define), so a renamed or deleted function is caught even when a file still calls it.
 * Fenced code blocks are skipped (they are sketches and maths).  The rule is generic: renaming
 * code means fixing the pages, which this test then lists, section by section. */
#define _POSIX_C_SOURCE 200809L
#include "mcnn_test.h"

#include <ctype.h>
#include <glob.h>

#define MAX_FILES 64

typedef struct source {
    char path[256];
    char *text;
} source;

static source sources[512]; /* every .c / .h of lib/, include/, apps/, docs/examples/, tests/ */
static int nsources;

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (s) s[n] = '\0';
    fclose(f);
    return s;
}

static void load_sources(void)
{
    const char *patterns[] = {"lib/*.h", "lib/*/*.c", "lib/*/*.h", "include/*.h",
                              "include/*/*.h", "apps/*.c", "apps/*/*.c", "apps/*/*.h",
                              "docs/examples/*.c", "tests/*.c", "tests/*.h"};
    for (size_t p = 0; p < sizeof patterns / sizeof *patterns; p++) {
        glob_t g;
        if (glob(patterns[p], 0, NULL, &g) != 0) continue;
        for (size_t i = 0; i < g.gl_pathc && nsources < 512; i++) {
            snprintf(sources[nsources].path, sizeof sources[nsources].path, "%s", g.gl_pathv[i]);
            sources[nsources].text = read_text(g.gl_pathv[i]);
            if (sources[nsources].text) nsources++;
        }
        globfree(&g);
    }
}

static int ident_char(int c)
{
    return isalnum(c) || c == '_';
}

/* Does text contain name as a whole word, followed by '(' when call is set? */
static int has_word(const char *text, const char *name, int call)
{
    const size_t n = strlen(name);
    for (const char *s = strstr(text, name); s; s = strstr(s + 1, name)) {
        if (s > text && ident_char((unsigned char)s[-1])) continue;
        if (ident_char((unsigned char)s[n])) continue;
        if (!call || s[n] == '(') return 1;
    }
    return 0;
}

/* Defined: on a line that starts at column 0 (a definition or declaration; calls are
 * indented), or as a macro, or as a typedef'd name. */
static int defined_somewhere(const char *name)
{
    const size_t n = strlen(name);
    for (int i = 0; i < nsources; i++)
        for (const char *s = strstr(sources[i].text, name); s; s = strstr(s + 1, name)) {
            const char *t = sources[i].text;
            if ((s > t && ident_char((unsigned char)s[-1])) || ident_char((unsigned char)s[n]))
                continue;
            const char *line = s;
            while (line > t && line[-1] != '\n') line--;
            if (line[0] == ' ' || line[0] == '\t' || line[0] == '*' || line[0] == '/') continue;
            if (s[n] == '(' || s[n] == ';' || strncmp(line, "#define", 7) == 0) return 1;
            if (strncmp(line, "typedef", 7) == 0 || strncmp(line, "}", 1) == 0) return 1;
        }
    return 0;
}

/* A backticked path (with a folder, or a bare file name found under lib/ or include/; a glob
 * such as lib/models/clip_*.c names every match).  Adds what it resolves to; 0: not a source
 * file name at all, -1: a source file that does not exist. */
static int add_files(const char *span, const source **files, int *nfiles)
{
    const size_t n = strlen(span);
    if (n < 3 || (strcmp(span + n - 2, ".c") != 0 && strcmp(span + n - 2, ".h") != 0)) return 0;
    for (size_t i = 0; i < n; i++)
        if (!(ident_char((unsigned char)span[i]) || strchr("/.*-", span[i]))) return 0;
    int found = 0;
    for (int i = 0; i < nsources; i++) {
        const char *p = sources[i].path, *base = strrchr(p, '/') ? strrchr(p, '/') + 1 : p;
        glob_t g; /* match the pattern against this one path */
        int match = strchr(span, '/') ? 0 : strcmp(base, span) == 0;
        if (strchr(span, '/') && strchr(span, '*')) {
            if (glob(span, 0, NULL, &g) == 0) {
                for (size_t k = 0; k < g.gl_pathc; k++) match |= strcmp(g.gl_pathv[k], p) == 0;
                globfree(&g);
            }
        } else if (strchr(span, '/')) {
            match = strcmp(p, span) == 0;
        }
        if (match && *nfiles < MAX_FILES) files[(*nfiles)++] = &sources[i], found = 1;
    }
    return found ? 1 : -1;
}

/* The function a span names, if any: "name(" at the span's start with an underscore in name, or
 * the whole span one mcnn_ identifier. */
static int span_function(const char *span, char *name, size_t size)
{
    size_t n = 0;
    while (ident_char((unsigned char)span[n])) n++;
    if (n == 0 || n >= size) return 0;
    memcpy(name, span, n);
    name[n] = '\0';
    if (span[n] == '(' && strchr(name, '_')) return 1;
    return span[n] == '\0' && strncmp(name, "mcnn_", 5) == 0;
}

typedef struct section {
    char title[128];
    char spans[256][160];
    int nspans;
} section;

/* Check one section's functions against its files plus the page's opening files. */
static int check_section(const char *page, const section *s, const source **page_files,
                         int npage)
{
    const source *files[MAX_FILES];
    int nfiles = 0, names = 0;
    for (int i = 0; i < npage; i++) files[nfiles++] = page_files[i];
    for (int i = 0; i < s->nspans; i++)
        TEST_ASSERT(add_files(s->spans[i], files, &nfiles) >= 0, "%s, '%s': no file `%s`", page,
                    s->title, s->spans[i]);
    for (int i = 0; i < s->nspans; i++) {
        char name[128];
        if (!span_function(s->spans[i], name, sizeof name)) continue;
        names++;
        int here = 0;
        for (int f = 0; f < nfiles && !here; f++) here = has_word(files[f]->text, name, 1);
        if (!here && strncmp(name, "mcnn_", 5) == 0 && !strchr(s->spans[i], '('))
            for (int f = 0; f < nfiles && !here; f++) here = has_word(files[f]->text, name, 0);
        char list[1024] = "";
        for (int f = 0; f < nfiles; f++)
            snprintf(list + strlen(list), sizeof list - strlen(list), " %s", files[f]->path);
        TEST_ASSERT(here, "%s, '%s': `%s` is not in the files it names:%s", page, s->title,
                    name, nfiles ? list : " (none)");
        TEST_ASSERT(defined_somewhere(name), "%s, '%s': `%s` is defined nowhere", page, s->title, name);
    }
    return names;
}

/* Split a page into sections, collecting each one's backticked spans outside code blocks. */
static void check_page(const char *page)
{
    FILE *f = fopen(page, "r");
    TEST_ASSERT(f != NULL, "cannot read %s", page);
    if (!f) return;
    static section sec;
    memset(&sec, 0, sizeof sec);
    snprintf(sec.title, sizeof sec.title, "(opening)");
    const source *page_files[MAX_FILES];
    int npage = 0, in_code = 0, opening = 1, names = 0;
    char line[4096];
    for (;;) {
        const int more = fgets(line, sizeof line, f) != NULL;
        if (!more || (!in_code && strncmp(line, "##", 2) == 0)) { /* a section ends */
            if (opening) /* the page's opening names the files every section may use */
                for (int i = 0; i < sec.nspans; i++)
                    add_files(sec.spans[i], page_files, &npage);
            names += check_section(page, &sec, page_files, opening ? 0 : npage);
            if (!more) break;
            opening = 0;
            memset(&sec, 0, sizeof sec);
            snprintf(sec.title, sizeof sec.title, "%.*s", (int)strcspn(line, "\n"), line);
        }
        else if (strncmp(line, "```", 3) == 0) {
            in_code = !in_code;
            continue;
        }
        if (in_code) continue;
        for (char *a = strchr(line, '`'); a; a = strchr(a + 1, '`')) {
            char *b = strchr(a + 1, '`');
            if (!b) break;
            if (sec.nspans < 256)
                snprintf(sec.spans[sec.nspans++], sizeof sec.spans[0], "%.*s", (int)(b - a - 1),
                         a + 1);
            a = b;
        }
    }
    fclose(f);
    TEST_ASSERT(names >= 5, "%s names only %d functions: is the parser still right?", page, names);
}

static void test_walkthroughs_name_real_code(void)
{
    glob_t g;
    TEST_ASSERT(glob("docs/walkthrough-*.md", 0, NULL, &g) == 0 && g.gl_pathc >= 3,
                "docs/walkthrough-*.md: fewer than three pages");
    for (size_t i = 0; i < g.gl_pathc; i++) check_page(g.gl_pathv[i]);
    globfree(&g);
}

/* The checker itself must fail on a made-up name and a made-up file. */
static void test_the_check_can_fail(void)
{
    const source *files[MAX_FILES];
    int n = 0;
    TEST_ASSERT(add_files("lib/nn/transformer_block.c", files, &n) == 1, "a real file");
    TEST_ASSERT(add_files("lib/nn/no_such_block.c", files, &n) == -1, "a made-up file");
    TEST_ASSERT(add_files("vit_run.c", files, &n) == 1, "a bare file name under lib/");
    TEST_ASSERT(n == 2 && has_word(files[0]->text, "mcnn_layernorm_forward", 1),
                "transformer_block.c calls mcnn_layernorm_forward");
    TEST_ASSERT(!has_word(files[0]->text, "mcnn_layernorm_fwd", 1), "a made-up name");
    TEST_ASSERT(!has_word(files[0]->text, "layernorm_forward", 1), "a word's tail is no word");
    TEST_ASSERT(defined_somewhere("mcnn_block_backward"), "a real function");
    TEST_ASSERT(!defined_somewhere("mcnn_block_backwards"), "a made-up function");
    char name[64];
    TEST_ASSERT(span_function("bias_residual(h, x)", name, sizeof name) &&
                    strcmp(name, "bias_residual") == 0, "a call span");
    TEST_ASSERT(!span_function("softmax(q kᵀ)", name, sizeof name), "maths is no function");
}

int main(void)
{
    load_sources();
    TEST_RUN(test_the_check_can_fail);
    TEST_RUN(test_walkthroughs_name_real_code);
    return test_summary();
}
