/* The PPM frame-stream reader: frames written here byte by byte come back unchanged, each frame
 * decodes as the same bytes do through the file decoder (itself checked against PIL in
 * test_ppm), a clean end is told apart from a truncated frame, and bad headers are refused
 * naming the stream and the frame.  The frames are built in the test, so the judge is the
 * bytes themselves; ffmpeg's own image2pipe output is exercised by test_classify. */
#define _POSIX_C_SOURCE 200809L
#include "mcnn_test.h"

/* A FILE* over bytes: tmpfile() keeps the test free of fmemopen's portability questions. */
static FILE *stream_of(const void *data, size_t n)
{
    FILE *f = tmpfile();
    if (!f) return NULL;
    if (n) fwrite(data, 1, n, f);
    rewind(f);
    return f;
}

typedef struct buf {
    unsigned char d[1 << 16];
    size_t n;
} buf;

static void put(buf *b, const void *p, size_t n)
{
    memcpy(b->d + b->n, p, n);
    b->n += n;
}

static void put_str(buf *b, const char *s) { put(b, s, strlen(s)); }

/* Frame k: w x h RGB with a pattern that depends on k. */
static void put_frame(buf *b, int k, int w, int h, const char *header)
{
    char hdr[128];
    if (header) snprintf(hdr, sizeof hdr, "%s", header);
    else snprintf(hdr, sizeof hdr, "P6\n%d %d\n255\n", w, h);
    put_str(b, hdr);
    for (int i = 0; i < w * h * 3; i++) b->d[b->n++] = (unsigned char)(i * 7 + k * 31);
}

static void test_frames_round_trip(void)
{
    static buf b;
    b.n = 0;
    put_frame(&b, 0, 5, 3, NULL);
    put_frame(&b, 1, 5, 3, "P6 5 3 255 ");                    /* one line, spaces          */
    put_frame(&b, 2, 5, 3, "P6\n# made by a test\n5 3\n# c\n255\n"); /* comments           */
    put_frame(&b, 3, 4, 2, NULL);                             /* another size              */
    put_str(&b, "\n\n");                                      /* trailing whitespace: ok   */
    FILE *f = stream_of(b.d, b.n);
    mcnn_ppm_stream s;
    mcnn_ppm_stream_init(&s, f, "test stream");
    mcnn_image img;
    int got, k = 0;
    for (;;) {
        TEST_OK(mcnn_ppm_stream_next(&s, &img, &got));
        if (!got) break;
        const int w = k == 3 ? 4 : 5, h = k == 3 ? 2 : 3;
        TEST_ASSERT(img.width == w && img.height == h && img.channels == 3, "frame %d: %dx%dx%d",
                    k, img.width, img.height, img.channels);
        int bad = 0;
        for (int i = 0; i < w * h * 3 && img.pixels; i++)
            bad += img.pixels[i] != (unsigned char)(i * 7 + k * 31);
        TEST_ASSERT(bad == 0, "frame %d: %d bytes differ", k, bad);
        mcnn_image_free(&img);
        k++;
    }
    TEST_ASSERT(k == 4 && s.frames == 4, "%d frames read, counter %lld", k, (long long)s.frames);
    TEST_OK(mcnn_ppm_stream_next(&s, &img, &got)); /* the end stays the end */
    TEST_ASSERT(!got, "no frame after the end");
    fclose(f);
}

/* P5 and 16-bit frames: each frame must equal what the file decoder makes of the same bytes. */
static void test_frames_decode_as_files(void)
{
    static buf b;
    b.n = 0;
    size_t start[3];
    start[0] = b.n;
    put_str(&b, "P5\n3 2\n255\n");
    put(&b, "\x00\x10\x20\x80\xf0\xff", 6);
    start[1] = b.n;
    put_str(&b, "P6\n2 1\n65535\n");
    put(&b, "\x12\x34\xff\xff\x00\x80\x80\x00\x00\x01\xab\xcd", 12);
    start[2] = b.n;
    put_str(&b, "P6\n1 1\n100\n");
    put(&b, "\x00\x32\x64", 3);
    const size_t end[3] = {start[1], start[2], b.n};
    FILE *f = stream_of(b.d, b.n);
    mcnn_ppm_stream s;
    mcnn_ppm_stream_init(&s, f, "mixed");
    for (int k = 0; k < 3; k++) {
        mcnn_image img, want;
        int got;
        TEST_OK(mcnn_ppm_stream_next(&s, &img, &got));
        TEST_OK(mcnn_ppm_decode(&want, b.d + start[k], end[k] - start[k], "file"));
        TEST_ASSERT(got && img.width == want.width && img.height == want.height &&
                    img.channels == want.channels &&
                    !memcmp(img.pixels, want.pixels,
                            (size_t)want.width * want.height * want.channels),
                    "frame %d differs from the file decoder's result", k);
        mcnn_image_free(&img);
        mcnn_image_free(&want);
    }
    fclose(f);
}

static void test_empty_stream_is_clean(void)
{
    FILE *f = stream_of("", 0);
    mcnn_ppm_stream s;
    mcnn_ppm_stream_init(&s, f, "empty");
    mcnn_image img;
    int got = 7;
    TEST_OK(mcnn_ppm_stream_next(&s, &img, &got));
    TEST_ASSERT(got == 0 && img.pixels == NULL, "an empty stream has no frame");
    fclose(f);
    f = stream_of(" \n\t", 3);
    mcnn_ppm_stream_init(&s, f, "blank");
    TEST_OK(mcnn_ppm_stream_next(&s, &img, &got));
    TEST_ASSERT(got == 0, "whitespace only is a clean end");
    fclose(f);
}

/* Cut a two-frame stream at every byte: the frames before the cut come out, the cut one is an
 * error naming the stream and frame, never a crash or a short frame. */
static void test_truncations(void)
{
    static buf b;
    b.n = 0;
    put_frame(&b, 0, 3, 2, NULL);
    const size_t first = b.n;
    put_frame(&b, 1, 3, 2, "P6\n# x\n3 2\n255\n");
    for (size_t cut = 1; cut < b.n; cut++) {
        FILE *f = stream_of(b.d, cut);
        mcnn_ppm_stream s;
        mcnn_ppm_stream_init(&s, f, "stdin");
        mcnn_image img;
        int got, frames = 0;
        mcnn_status st;
        while ((st = mcnn_ppm_stream_next(&s, &img, &got)) == MCNN_OK && got) {
            frames++;
            mcnn_image_free(&img);
        }
        if (cut == first) {
            TEST_ASSERT(st == MCNN_OK && frames == 1, "cut at a frame boundary is a clean end");
        } else {
            TEST_ASSERT(st == MCNN_ERR_FORMAT && frames == (cut > first),
                        "cut at %zu: status %d after %d frames", cut, st, frames);
            char want[64];
            snprintf(want, sizeof want, "stdin: frame %d", cut > first ? 1 : 0);
            TEST_ASSERT(strstr(mcnn_last_error(), want) && strstr(mcnn_last_error(), "truncated"),
                        "cut at %zu: message '%s'", cut, mcnn_last_error());
            TEST_ASSERT(img.pixels == NULL, "no image on error");
        }
        fclose(f);
    }
}

static void test_bad_headers(void)
{
    const struct { const char *bytes; mcnn_status want; const char *msg; } cases[] = {
        {"XX\n1 1\n255\nabc", MCNN_ERR_FORMAT, "bad magic"},
        {"P3\n1 1\n255\n1 2 3\n", MCNN_ERR_UNSUPPORTED, "P3"},
        {"P6\n0 5\n255\n", MCNN_ERR_FORMAT, "absurd size"},
        {"P6\n100000 100000\n255\n", MCNN_ERR_FORMAT, "absurd size"},
        {"P6\n1 1\n0\n", MCNN_ERR_FORMAT, "maxval"},
        {"P6\n1 1\n70000\n", MCNN_ERR_FORMAT, "maxval"},
        {"P6\n1x 1\n255\n", MCNN_ERR_FORMAT, "not a number"},
        {"P6\n99999999999 1\n255\n", MCNN_ERR_FORMAT, "out of range"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        FILE *f = stream_of(cases[k].bytes, strlen(cases[k].bytes));
        mcnn_ppm_stream s;
        mcnn_ppm_stream_init(&s, f, "pipe");
        mcnn_image img;
        int got;
        mcnn_status st = mcnn_ppm_stream_next(&s, &img, &got);
        TEST_ASSERT(st == cases[k].want && !got, "case %zu: status %d", k, st);
        TEST_ASSERT(strstr(mcnn_last_error(), "pipe: frame 0") &&
                    strstr(mcnn_last_error(), cases[k].msg),
                    "case %zu: message '%s' lacks '%s'", k, mcnn_last_error(), cases[k].msg);
        fclose(f);
    }
    /* a header of endless comments is refused, not buffered */
    static buf b;
    b.n = 0;
    put_str(&b, "P6\n");
    for (int i = 0; i < 600; i++) put_str(&b, "# comment\n");
    put_str(&b, "1 1\n255\nabc");
    FILE *f = stream_of(b.d, b.n);
    mcnn_ppm_stream s;
    mcnn_ppm_stream_init(&s, f, "pipe");
    mcnn_image img;
    int got;
    TEST_ASSERT(mcnn_ppm_stream_next(&s, &img, &got) == MCNN_ERR_FORMAT &&
                strstr(mcnn_last_error(), "header longer"), "long header: '%s'", mcnn_last_error());
    fclose(f);
}

int main(void)
{
    TEST_RUN(test_frames_round_trip);
    TEST_RUN(test_frames_decode_as_files);
    TEST_RUN(test_empty_stream_is_clean);
    TEST_RUN(test_truncations);
    TEST_RUN(test_bad_headers);
    return test_summary();
}
