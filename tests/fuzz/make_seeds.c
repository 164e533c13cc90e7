/* The seeds make_seeds.sh cannot copy: tiny models written by the library itself (a ViT, a
 * ResNet, two classifiers and a CLIP, each a few KB, so the fuzzer mutates them quickly), and
 * raw deflate and zlib streams cut out of the committed PNG and gzip files.
 *   make_seeds OUT        writes OUT/<driver>/gen-*  */
#include "mcnn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *out_dir;
static int failures;

static void check(mcnn_status s, const char *what)
{
    if (s != MCNN_OK) {
        fprintf(stderr, "make_seeds: %s: %s\n", what, mcnn_last_error());
        failures++;
    }
}

static void seed_path(char *path, size_t size, const char *driver, const char *name)
{
    snprintf(path, size, "%s/%s/gen-%s", out_dir, driver, name);
}

static void write_bytes(const char *driver, const char *name, const unsigned char *data, size_t n)
{
    char path[1024];
    seed_path(path, sizeof path, driver, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "make_seeds: cannot write %s\n", path);
        failures++;
    }
}

/* ---- tiny models ------------------------------------------------------------------------ */

static void tiny_vit(void)
{
    mcnn_vit_config c = {.image_size = 8, .patch_size = 4, .in_channels = 3, .width = 8,
                         .layers = 2, .heads = 2, .mlp_dim = 16, .num_classes = 3,
                         .ln_eps = 1e-6f};
    mcnn_vit *m;
    char path[1024];
    seed_path(path, sizeof path, "vit", "vit.safetensors");
    check(mcnn_vit_create(&m, &c, 1), "ViT");
    if (m) check(mcnn_vit_save(m, path), path), mcnn_vit_free(m);
}

static void tiny_resnet(void)
{
    mcnn_resnet_config c = {.block = MCNN_RESNET_BASIC, .stem = MCNN_RESNET_STEM_SMALL,
                            .in_channels = 1, .stem_width = 4, .stages = 2, .blocks = {1, 1},
                            .widths = {4, 8}, .num_classes = 3, .bn_eps = 1e-5f,
                            .bn_momentum = 0.1f};
    mcnn_resnet *m;
    char path[1024];
    seed_path(path, sizeof path, "resnet", "resnet.safetensors");
    check(mcnn_resnet_create(&m, &c, 1), "ResNet");
    if (m) check(mcnn_resnet_save(m, path), path), mcnn_resnet_free(m);
    c.block = MCNN_RESNET_BOTTLENECK, c.stem = MCNN_RESNET_STEM_IMAGENET, c.in_channels = 3;
    seed_path(path, sizeof path, "resnet", "resnet-bottleneck.safetensors");
    check(mcnn_resnet_create(&m, &c, 2), "ResNet (bottleneck)");
    if (m) check(mcnn_resnet_save(m, path), path), mcnn_resnet_free(m);
}

static void tiny_classifier(const char *arch, int channels)
{
    mcnn_classifier_config c = {.arch = arch, .num_classes = 3, .image_size = 8,
                                .in_channels = channels, .width = 8, .depth = 1, .patch = 4,
                                .heads = 2};
    mcnn_classifier *m;
    char name[64], path[1024];
    snprintf(name, sizeof name, "%s.safetensors", arch);
    seed_path(path, sizeof path, "classifier", name);
    check(mcnn_classifier_create(&m, &c, 1), arch);
    if (!m) return;
    const char *labels[3] = {"cat", "dog", "ship"};
    check(mcnn_classifier_set_labels(m, labels, 3), "labels");
    check(mcnn_classifier_save(m, path), path);
    mcnn_classifier_free(m);
}

static void tiny_clip(void)
{
    mcnn_clip_config c = {.embed_dim = 8, .image_size = 8, .patch_size = 4, .vision_width = 8,
                          .vision_layers = 1, .vision_heads = 2, .context_length = 8,
                          .vocab_size = 16, .text_width = 8, .text_layers = 1, .text_heads = 2};
    mcnn_clip *m;
    char path[1024];
    seed_path(path, sizeof path, "clip", "clip.safetensors");
    check(mcnn_clip_create(&m, &c, 1), "CLIP");
    if (m) check(mcnn_clip_save(m, path), path), mcnn_clip_free(m);
}

/* ---- deflate and zlib streams ------------------------------------------------------------ */

static unsigned char *read_file(const char *path, size_t *n)
{
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *buf = malloc(1 << 20);
    *n = buf ? fread(buf, 1, 1 << 20, f) : 0;
    fclose(f);
    return buf;
}

static unsigned be32(const unsigned char *p)
{
    return (unsigned)p[0] << 24 | (unsigned)p[1] << 16 | (unsigned)p[2] << 8 | p[3];
}

/* A PNG's IDAT chunks joined are one zlib stream; without its 2-byte header and 4-byte
 * Adler-32 trailer, a raw deflate stream. */
static void streams_from_png(const char *path, const char *name)
{
    size_t n = 0, len = 0;
    unsigned char *png = read_file(path, &n), *z = malloc(n ? n : 1);
    if (!png || !z || n < 8) {
        fprintf(stderr, "make_seeds: cannot read %s\n", path);
        failures++;
    } else {
        for (size_t p = 8; p + 12 <= n;) {
            size_t clen = be32(png + p);
            if (clen > n - p - 12) break;
            if (memcmp(png + p + 4, "IDAT", 4) == 0) memcpy(z + len, png + p + 8, clen), len += clen;
            p += 12 + clen;
        }
        char seed[128];
        snprintf(seed, sizeof seed, "%s.zlib", name);
        write_bytes("inflate", seed, z, len);
        if (len > 6) {
            snprintf(seed, sizeof seed, "%s.deflate", name);
            write_bytes("inflate", seed, z + 2, len - 6);
        }
    }
    free(png);
    free(z);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds OUT_DIR (with OUT_DIR/<driver>/ folders made)\n");
        return 2;
    }
    out_dir = argv[1];
    tiny_vit();
    tiny_resnet();
    tiny_classifier("resnet-small", 1);
    tiny_classifier("vit-small", 3);
    tiny_clip();
    streams_from_png("tests/data/images/c2_d8_17x13.png", "rgb");
    streams_from_png("tests/data/images/c0_d16_i_17x13.png", "gray16-interlaced");
    streams_from_png("weights/samples/0001-pullover.png", "pullover");
    return failures ? 1 : 0;
}
