/* make install / uninstall, and README's example built against the installed copy.
 *  - DESTDIR install into build/.../test_install/destdir: every file in its place, the versioned
 *    shared library with its SONAME and links, libmcnn.pc's version and flags; uninstall then
 *    leaves no file behind.
 *  - PREFIX install into build/.../test_install/prefix: README's `cc ... pkg-config ...` lines,
 *    read from README.md and run unchanged (but for the file names), shared and static, and
 *    each program run with no LD_LIBRARY_PATH must name the class of a demo sample.
 * The install is of the build variant under test (MCNN_BUILD: build, build/noomp, ...). */
#define _POSIX_C_SOURCE 200809L
#include "mcnn_test.h"
#include "readme_example.h"

#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[1024];     /* absolute: <build>/test_install                     */
static char vars[128];      /* the make switches that select the build under test */
static int openmp = 1, sanitize = 0;
static char out[1024];      /* first output line of the last command               */

/* Run a printf-formatted shell command from the repository's top folder; its exit status. */
static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return readme_run(cmd, out, sizeof out);
}

/* make TARGET VARIABLES for the build under test, outside the make running the tests; its
 * exit status, and the end of its output in out when it fails */
static int make(const char *target, const char *destdir, const char *prefix)
{
    return sh("env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make -s --no-print-directory %s %s "
              "DESTDIR=%s PREFIX=%s >%s/make.log 2>&1 || { tail -n 3 %s/make.log; exit 1; }",
              target, vars, destdir, prefix, root, root);
}

static int is_file(const char *dir, const char *name)
{
    char path[2048];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* the target of the symbolic link dir/name, or "" */
static const char *link_target(const char *dir, const char *name)
{
    static char target[256];
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ssize_t n = readlink(path, target, sizeof target - 1);
    target[n > 0 ? n : 0] = '\0';
    return target;
}

static int have(const char *tool)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
    return system(cmd) == 0;
}

static void test_destdir_install_and_uninstall(void)
{
    char dest[1200], usr[1300], lib[1400], so[64], so_major[64];
    snprintf(dest, sizeof dest, "%s/destdir", root);
    snprintf(usr, sizeof usr, "%s/usr/local", dest);
    snprintf(lib, sizeof lib, "%s/lib", usr);
    snprintf(so, sizeof so, "libmcnn.so.%s", MCNN_VERSION_STRING);
    snprintf(so_major, sizeof so_major, "libmcnn.so.%d", MCNN_VERSION_MAJOR);
    TEST_ASSERT(make("install", dest, "/usr/local") == 0, "make install failed: %s", out);

    const char *files[] = {"include/mcnn.h", "include/mcnn/core.h", "include/mcnn/ops.h",
                           "include/mcnn/gradcheck.h", "lib/libmcnn.a",
                           "lib/pkgconfig/libmcnn.pc", "bin/mcnn-classify", "bin/mcnn-train"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        TEST_ASSERT(is_file(usr, files[i]), "%s is not installed", files[i]);
    TEST_ASSERT(is_file(lib, so), "lib/%s is not installed", so);
    TEST_ASSERT(strcmp(link_target(lib, so_major), so) == 0, "%s -> '%s', not %s", so_major,
                link_target(lib, so_major), so);
    TEST_ASSERT(strcmp(link_target(lib, "libmcnn.so"), so_major) == 0, "libmcnn.so -> '%s'",
                link_target(lib, "libmcnn.so"));
    TEST_ASSERT(strcmp(mcnn_version(), MCNN_VERSION_STRING) == 0, "mcnn_version() is %s",
                mcnn_version());
    if (have("readelf")) {
        sh("readelf -d %s/%s | grep SONAME", lib, so);
        TEST_ASSERT(strstr(out, so_major) != NULL, "SONAME: %s", out);
    }

    /* the .pc file: the version, -lm and the OpenMP flag for static links, rpath */
    sh("grep '^Version:' %s/pkgconfig/libmcnn.pc", lib);
    TEST_ASSERT(strcmp(out, "Version: " MCNN_VERSION_STRING) == 0, "libmcnn.pc: %s", out);
    sh("grep '^Libs.private:' %s/pkgconfig/libmcnn.pc", lib);
    TEST_ASSERT(strstr(out, "-lm") != NULL, "libmcnn.pc: %s", out);
    TEST_ASSERT((strstr(out, "-fopenmp") != NULL) == openmp, "an %s build's %s",
                openmp ? "OpenMP" : "OPENMP=0", out);
    sh("grep '^Libs:' %s/pkgconfig/libmcnn.pc", lib);
    TEST_ASSERT(strstr(out, "-Wl,-rpath,${libdir}") && strstr(out, "-lmcnn"), "libmcnn.pc: %s",
                out);

    TEST_ASSERT(make("uninstall", dest, "/usr/local") == 0, "make uninstall failed: %s", out);
    sh("find %s ! -type d | head -n 1", dest);
    TEST_ASSERT(out[0] == '\0', "make uninstall left %s", out);
}

/* The class the README example prints for a demo sample, with a program built by cmd. */
static void build_and_run(const char *cmd_line, const char *src, const char *prefix)
{
    char cmd[2048], exe[1200] = "";
    /* README's names -> this test's: the source and the program go to the staging folder */
    const char *o = strstr(cmd_line, "-o classify");
    const char *c = strstr(cmd_line, " classify.c ");
    TEST_ASSERT(o && c, "README's line names no classify.c and -o classify: %s", cmd_line);
    if (!o || !c) return;
    size_t name_len = strcspn(o + 3, " \n");
    snprintf(exe, sizeof exe, "%s/%.*s", root, (int)name_len, o + 3);
    /* README says cc; the compiler that built the library is used (another one's sanitizer
     * runtime would not link) */
    const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
    snprintf(cmd, sizeof cmd, "%s%s %.*s %s %.*s-o %s%s", cc,
             sanitize ? " -fsanitize=address,undefined" : "",
             (int)(c - cmd_line - 2), cmd_line + 2, src, (int)(o - c - 12), c + 12, exe,
             o + 3 + name_len);
    int status = sh("env PKG_CONFIG_PATH=%s/lib/pkgconfig sh -c '%s' 2>&1 | grep -v "
                    "-e 'requires at runtime the shared' -e 'gomp_target_init' ; test -x %s",
                    prefix, cmd, exe);
    TEST_ASSERT(status == 0, "README's line does not build against the installed copy:\n  %s\n  %s",
                cmd, out);
    if (status != 0) return;
    const int is_static = strstr(cmd_line, "-static") != NULL;
    if (have("readelf")) { /* static: no libmcnn.so needed; shared: found through the rpath */
        sh("readelf -d %s | grep -e 'libmcnn' -e 'RUNPATH' -e 'RPATH' | tr '\\n' ' '", exe);
        if (is_static)
            TEST_ASSERT(strstr(out, "libmcnn") == NULL, "%s needs %s", exe, out);
        else
            TEST_ASSERT(strstr(out, "[libmcnn.so.0]") && strstr(out, prefix),
                        "%s: %s", exe, out);
    }
    status = sh("env -u LD_LIBRARY_PATH %s weights/demo-fashion-resnet.safetensors "
                "weights/samples/0002-trouser.png 2>&1", exe);
    readme_top_label(out);
    TEST_ASSERT(status == 0 && (strcmp(out, "Trouser") == 0 || strcmp(out, "trouser") == 0),
                "%s says '%s' of a trouser (exit %d)", exe, out, status);
}

static void test_readme_against_the_installed_copy(void)
{
    if (access("weights/demo-fashion-resnet.safetensors", R_OK) != 0) {
        TEST_SKIP("weights/demo-fashion-resnet.safetensors is absent");
        return;
    }
    char prefix[1200], src[1200];
    snprintf(prefix, sizeof prefix, "%s/prefix", root);
    snprintf(src, sizeof src, "%s/classify.c", root);
    TEST_ASSERT(make("install", "", prefix) == 0, "make install PREFIX=%s failed: %s", prefix,
                out);
    TEST_ASSERT(readme_example(src) > 10, "README.md has no ```c example");

    /* every `cc ... pkg-config ...` line of README.md */
    FILE *f = fopen("README.md", "r");
    char line[1024];
    int lines = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "cc ", 3) != 0 || !strstr(line, "pkg-config")) continue;
        line[strcspn(line, "#\n")] = '\0'; /* the comment after the command */
        lines++;
        if (sanitize && strstr(line, "-static")) {
            fprintf(stderr, "  (sanitizers cannot link -static: %s not run)\n", line);
            continue;
        }
        build_and_run(line, src, prefix);
    }
    if (f) fclose(f);
    TEST_ASSERT(lines == 2, "README.md has %d pkg-config lines, not 2 (shared, static)", lines);
    TEST_ASSERT(make("uninstall", "", prefix) == 0, "make uninstall failed: %s", out);
}

int main(void)
{
    const char *build = getenv("MCNN_BUILD") ? getenv("MCNN_BUILD") : "build";
    /* the make switches that give this build folder (see the Makefile's top) */
    openmp = strstr(build, "noomp") == NULL;
    sanitize = strstr(build, "sanitize") != NULL;
    snprintf(vars, sizeof vars, "%s%s%s%s%s", strstr(build, "clang") ? "CC=clang " : "",
             openmp ? "" : "OPENMP=0 ",
             sanitize ? "SANITIZE=1 " : "", strstr(build, "native") ? "NATIVE=1 " : "",
             strstr(build, "debug") ? "DEBUG=1" : "");
    char cwd[512];
    if (!getcwd(cwd, sizeof cwd)) return 1;
    snprintf(root, sizeof root, "%s/%s/test_install", cwd, build);
    sh("rm -rf %s && mkdir -p %s", root, root);
    TEST_RUN(test_destdir_install_and_uninstall);
    TEST_RUN(test_readme_against_the_installed_copy);
    if (!test_failed) sh("rm -rf %s", root);
    return test_summary();
}
