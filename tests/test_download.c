/* weights/download.sh without the network: its arguments and messages, a missing curl (an
 * empty PATH), and the checksum logic with a stand-in curl that serves known bytes: a pinned
 * checksum accepted and refused (OpenAI's, carried by its URL, for the model), torchvision's
 * hash prefix refused, a failed download.  (The full-checksum record that follows a passing
 * prefix needs the real file's bytes: no stand-in can match an 8-digit SHA-256 prefix.)  The judge for the pinned checksums is the official
 * files' copies in ../shared (the same bytes the tokenizer and label tests read). */
#define _XOPEN_SOURCE 700
#include "mcnn_test.h"
#include "test_util.h"

#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmp[256], out_path[300], err_path[300];

static const char *tpath(const char *name) { return test_path_in(tmp, name); }

/* "ENV sh weights/download.sh ARGS", outputs to files; the exit status. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int script(const char *env, const char *fmt, ...)
{
    char args[2048], cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s /bin/sh weights/download.sh %s >'%s' 2>'%s' </dev/null", env,
             args, out_path, err_path);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static char *slurp(const char *path)
{
    unsigned char *d = NULL;
    size_t n;
    if (mcnn_read_file_maybe_gzip(&d, &n, path) != MCNN_OK) return NULL;
    return (char *)d;
}

static void expect(const char *which, const char *what, int n, ...)
{
    char *t = slurp(which[0] == 'o' ? out_path : err_path);
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        const char *s = va_arg(ap, const char *);
        TEST_ASSERT(t && strstr(t, s), "%s: %s lacks '%s':\n%s", what, which, s, t ? t : "");
    }
    va_end(ap);
    free(t);
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static void test_arguments(void)
{
    int rc = script("", "--help");
    TEST_ASSERT(rc == 0, "--help: exit %d", rc);
    expect("out", "--help", 5, "clip-vit-b32", "movieclip", "resnet50", "vit-b16", "--dir");
    rc = script("", "%s", "");
    TEST_ASSERT(rc == 2, "no name: exit %d", rc);
    expect("err", "no name", 1, "usage:");
    rc = script("", "clip-vit-b32 bogus");
    TEST_ASSERT(rc == 2, "unknown name: exit %d", rc);
    expect("err", "unknown name", 2, "unknown name 'bogus'",
           "clip-vit-b32 clip-vit-b16 clip-vit-l14 clip-vit-l14-336 clip-rn50 movieclip resnet50 resnet50-v2 vit-b16 all");
    rc = script("", "--frobnicate movieclip");
    TEST_ASSERT(rc == 2, "unknown option: exit %d", rc);
    expect("err", "unknown option", 1, "unknown option '--frobnicate'");
    rc = script("", "--dir");
    TEST_ASSERT(rc == 2, "--dir without a value: exit %d", rc);
    /* --list: every file with its source; the unpinned checksums said to be so */
    rc = script("PATH=/nonexistent", "--list");
    TEST_ASSERT(rc == 0, "--list: exit %d", rc);
    expect("out", "--list", 10,
           "https://openaipublic.azureedge.net/clip/models/40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
           "sha256 40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
           "https://github.com/openai/CLIP/raw/main/clip/bpe_simple_vocab_16e6.txt.gz",
           "https://download.pytorch.org/models/resnet50-0676ba61.pth",
           "https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
           "https://download.pytorch.org/models/vit_b_16-c867db91.pth",
           "ViT-L-14-336px.pt", "MovieCLIP_taxonomy_split.txt",
           "recorded in SHA256SUMS.local on first download",
           "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a");
}

static void test_missing_curl(void)
{
    int rc = script("PATH=/nonexistent", "--dir '%s' movieclip", tmp);
    TEST_ASSERT(rc == 1, "exit %d", rc);
    expect("err", "no curl", 1, "curl is not installed");
    TEST_ASSERT(!exists(tpath("MovieCLIP_taxonomy_split.txt")), "nothing downloaded");
}

/* A curl that writes, for the vocabulary and the taxonomy, the official files from ../shared
 * (or garbage when MODE=bad), for anything else "fake weights" + $FAKE; MODE=fail fails. */
static void write_stub(void)
{
    char dir[600], vocab[1024], taxonomy[1024]; /* test_shared_path reuses one buffer */
    snprintf(vocab, sizeof vocab, "%s", test_shared_path("data/clip/bpe_simple_vocab_16e6.txt.gz"));
    snprintf(taxonomy, sizeof taxonomy, "%s", test_shared_path("data/movieclip/taxonomy-179.txt"));
    snprintf(dir, sizeof dir, "%s/bin", tmp);
    mkdir(dir, 0755);
    FILE *f = fopen(tpath("bin/curl"), "w");
    fprintf(f,
            "#!/bin/sh\n"
            "out=''; url=''\n"
            "while [ $# -gt 0 ]; do case \"$1\" in -o) out=$2; shift;; "
            "--proto|--retry|--connect-timeout) shift;; -*) ;; *) url=$1;; esac; shift; done\n"
            "[ \"${MODE:-}\" = fail ] && { echo 'curl: (22) 404' >&2; exit 22; }\n"
            "case \"$url\" in\n"
            "*bpe_simple_vocab_16e6.txt.gz) src='%s';;\n"
            "*MovieCLIP_taxonomy_split.txt) src='%s';;\n"
            "*) echo \"fake weights ${FAKE:-}\" > \"$out\"; exit 0;;\n"
            "esac\n"
            "if [ \"${MODE:-}\" = bad ]; then echo garbage > \"$out\"; else cat \"$src\" > \"$out\"; fi\n",
            vocab, taxonomy);
    fclose(f);
    chmod(tpath("bin/curl"), 0755);
}

static void test_pinned_checksums(void)
{
    if (!exists(test_shared_path("data/movieclip/taxonomy-179.txt"))) {
        TEST_SKIP("%s is absent", test_shared_path("data/movieclip/taxonomy-179.txt"));
        return;
    }
    char env[1024];
    snprintf(env, sizeof env, "PATH='%s/bin':\"$PATH\"", tmp);
    /* garbage instead of the taxonomy: refused, nothing left behind */
    char benv[1100];
    snprintf(benv, sizeof benv, "MODE=bad %s", env);
    int rc = script(benv, "--dir '%s' movieclip", tmp);
    TEST_ASSERT(rc == 1, "bad bytes: exit %d", rc);
    expect("err", "bad bytes", 2, "checksum mismatch for MovieCLIP_taxonomy_split.txt",
           "0ac3d5bcfebed9e713f9b59124ca81a995cbe801eedd8e313763d08850e70d7c");
    TEST_ASSERT(!exists(tpath("MovieCLIP_taxonomy_split.txt")) &&
                !exists(tpath("MovieCLIP_taxonomy_split.txt.part")), "no file left");
    /* the official bytes: accepted, and the place said */
    rc = script(env, "--dir '%s' movieclip", tmp);
    TEST_ASSERT(rc == 0, "exit %d", rc);
    expect("out", "good bytes", 2, "saved: ", "MovieCLIP_taxonomy_split.txt (1509 bytes");
    TEST_ASSERT(exists(tpath("MovieCLIP_taxonomy_split.txt")), "the taxonomy is there");
    rc = script(env, "--dir '%s' movieclip", tmp);
    TEST_ASSERT(rc == 0, "again: exit %d", rc);
    expect("out", "second run", 1, "already present");
    /* a failing curl */
    char fenv[1100];
    snprintf(fenv, sizeof fenv, "MODE=fail %s", env);
    rc = script(fenv, "--dir '%s' --force movieclip", tmp);
    TEST_ASSERT(rc == 1, "failed download: exit %d", rc);
    expect("err", "failed download", 1, "download failed: https://raw.githubusercontent.com/");
    TEST_ASSERT(exists(tpath("MovieCLIP_taxonomy_split.txt")), "the verified copy is kept");
}

/* The model's checksum is pinned from OpenAI's URL: other bytes are refused, nothing is kept or
 * linked.  torchvision's files: bytes whose SHA-256 does not start with the name's prefix are
 * refused, and nothing is recorded for them. */
static void test_model_checksums(void)
{
    char env[1024];
    snprintf(env, sizeof env, "FAKE=one PATH='%s/bin':\"$PATH\"", tmp);
    int rc = script(env, "--dir '%s' clip-vit-b32", tmp);
    TEST_ASSERT(rc == 1, "fake model: exit %d", rc);
    expect("err", "fake model", 2, "checksum mismatch for ViT-B-32.pt",
           "expected 40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af");
    TEST_ASSERT(!exists(tpath("ViT-B-32.pt")) && !exists(tpath("ViT-B-32.pt.part")) &&
                !exists(tpath("clip-vit-b32.safetensors")), "nothing kept, nothing linked");
    rc = script(env, "--dir '%s' resnet50", tmp);
    TEST_ASSERT(rc == 1, "fake resnet: exit %d", rc);
    expect("err", "fake resnet", 2, "checksum mismatch for resnet50-0676ba61.pth",
           "0676ba61... (the hash prefix in its published name)");
    TEST_ASSERT(!exists(tpath("resnet50-0676ba61.pth")), "nothing kept");
    char *sums = slurp(tpath("SHA256SUMS.local"));
    TEST_ASSERT(!sums || !strstr(sums, "resnet50"), "nothing recorded: %s", sums ? sums : "");
    free(sums);
}

int main(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/mcnn_test_download_%d", (int)getpid());
    mkdir(tmp, 0755);
    snprintf(out_path, sizeof out_path, "%s/out.txt", tmp);
    snprintf(err_path, sizeof err_path, "%s/err.txt", tmp);
    write_stub();
    TEST_RUN(test_arguments);
    TEST_RUN(test_missing_curl);
    TEST_RUN(test_pinned_checksums);
    TEST_RUN(test_model_checksums);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (!test_failed && system(cmd) != 0) fprintf(stderr, "  could not remove %s\n", tmp);
    return test_summary();
}
