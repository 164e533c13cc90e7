/* IDX files (LeCun's MNIST format, also Fashion-MNIST's):
 *   bytes 0-1: 0, byte 2: the element type (0x08 = unsigned byte), byte 3: the number of dims,
 *   then each dim as a big-endian uint32, then the elements, row-major.
 * Images are (N, H, W) bytes, labels (N) bytes; either file may be gzipped (detected by the
 * gzip magic, not the name). */
#include "internal.h"
#include "mcnn/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct idx_file {
    unsigned char *bytes; /* the whole (gunzipped) file */
    size_t size;
    int ndim;
    uint32_t dims[3];
    const unsigned char *data;
} idx_file;

static mcnn_status idx_read(idx_file *f, const char *path, int want_ndim)
{
    memset(f, 0, sizeof *f);
    MCNN_TRY(mcnn_read_file_maybe_gzip(&f->bytes, &f->size, path));
    const unsigned char *b = f->bytes;
    mcnn_status s = MCNN_OK;
    if (f->size < 4 || b[0] || b[1])
        s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: not an IDX file (bad magic)", path);
    else if (b[2] != 0x08)
        s = mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: IDX element type 0x%02x (only unsigned "
                           "bytes, 0x08, are supported)", path, b[2]);
    else if (b[3] != want_ndim)
        s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: IDX file has %d dimensions, expected %d", path,
                           b[3], want_ndim);
    else if (f->size < 4 + 4 * (size_t)want_ndim)
        s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: IDX header is truncated", path);
    if (s != MCNN_OK) {
        free(f->bytes);
        return s;
    }
    f->ndim = want_ndim;
    size_t numel = 1;
    int overflow = 0;
    for (int d = 0; d < want_ndim; d++) {
        const unsigned char *p = b + 4 + 4 * d;
        f->dims[d] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        numel = mcnn_mul_size(numel, f->dims[d], &overflow);
    }
    f->data = b + 4 + 4 * want_ndim;
    size_t have = f->size - 4 - 4 * (size_t)want_ndim;
    if (overflow || numel != have) {
        free(f->bytes);
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: IDX header promises %s bytes of data, the "
                              "file holds %zu", path,
                              overflow ? "too many" : "a different number of", have);
    }
    return MCNN_OK;
}

mcnn_status mcnn_dataset_load_idx(mcnn_dataset *ds, const char *images_path,
                                  const char *labels_path)
{
    memset(ds, 0, sizeof *ds);
    idx_file im, lb;
    MCNN_TRY(idx_read(&im, images_path, 3));
    mcnn_status s = idx_read(&lb, labels_path, 1);
    if (s != MCNN_OK) {
        free(im.bytes);
        return s;
    }
    const uint32_t N = im.dims[0], H = im.dims[1], W = im.dims[2];
    if (lb.dims[0] != N)
        s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: %u labels for the %u images of %s", labels_path,
                           lb.dims[0], N, images_path);
    else if (N == 0 || N > INT32_MAX || H == 0 || W == 0 || H > 65535 || W > 65535)
        s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: %u images of %u x %u: nothing to train on",
                           images_path, N, H, W);
    int K = 0;
    if (s == MCNN_OK) {
        for (uint32_t i = 0; i < N; i++) K = lb.data[i] + 1 > K ? lb.data[i] + 1 : K;
        ds->count = (int)N;
        ds->channels = 1, ds->height = (int)H, ds->width = (int)W;
        ds->num_classes = K;
        ds->pixels = malloc((size_t)N * H * W);
        ds->labels = malloc((size_t)N * sizeof(int32_t));
        ds->class_names = calloc((size_t)K, sizeof(char *));
        if (!ds->pixels || !ds->labels || !ds->class_names)
            s = mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", images_path);
    }
    if (s == MCNN_OK) {
        memcpy(ds->pixels, im.data, (size_t)N * H * W);
        for (uint32_t i = 0; i < N; i++) ds->labels[i] = lb.data[i];
        for (int k = 0; k < K && s == MCNN_OK; k++) {
            char name[16];
            snprintf(name, sizeof name, "%d", k);
            if (!(ds->class_names[k] = malloc(strlen(name) + 1)))
                s = mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", images_path);
            else
                strcpy(ds->class_names[k], name);
        }
        snprintf(ds->source, sizeof ds->source, "%s", images_path);
    }
    free(im.bytes);
    free(lb.bytes);
    if (s != MCNN_OK) mcnn_dataset_free(ds);
    return s;
}

/* name or name.gz inside dir, whichever exists (the plain file first). */
static void find_variant(char *out, size_t size, const char *dir, const char *name)
{
    struct stat sb;
    snprintf(out, size, "%s/%s", dir, name);
    if (stat(out, &sb) == 0) return;
    snprintf(out, size, "%s/%s.gz", dir, name);
    if (stat(out, &sb) == 0) return;
    snprintf(out, size, "%s/%s", dir, name); /* the error will name the plain file */
}

mcnn_status mcnn_dataset_load_fashion_mnist(mcnn_dataset *ds, const char *dir, int train)
{
    static const char *const names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
    char images[1024], labels[1024];
    const char *split = train ? "train" : "t10k";
    char name[64];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", split);
    find_variant(images, sizeof images, dir, name);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", split);
    find_variant(labels, sizeof labels, dir, name);
    MCNN_TRY(mcnn_dataset_load_idx(ds, images, labels));
    if (ds->num_classes > 10) {
        mcnn_dataset_free(ds);
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: labels up to %d; Fashion-MNIST has 10 classes",
                              labels, ds->num_classes - 1);
    }
    if (ds->num_classes < 10) { /* a subset that lacks the last classes still has ten */
        char **more = realloc(ds->class_names, 10 * sizeof(char *));
        if (!more) {
            mcnn_dataset_free(ds);
            return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", images);
        }
        ds->class_names = more;
        for (int k = ds->num_classes; k < 10; k++) ds->class_names[k] = NULL;
        for (int k = ds->num_classes; k < 10; k++) {
            if (!(ds->class_names[k] = malloc(1))) {
                ds->num_classes = k;
                mcnn_dataset_free(ds);
                return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", images);
            }
            ds->class_names[k][0] = 0;
        }
        ds->num_classes = 10;
    }
    mcnn_status s = mcnn_dataset_set_class_names(ds, names, 10);
    if (s != MCNN_OK) mcnn_dataset_free(ds);
    return s;
}
