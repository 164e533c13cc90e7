/* mcnn-convert: any weights file libmcnn reads -> safetensors, or a listing of its tensors.
 *
 *   mcnn-convert [--force] IN OUT.safetensors    PyTorch .pt/.pth/.bin, TorchScript, safetensors
 *   mcnn-convert --list IN                       name, dtype and shape of every tensor
 *
 * Tensors keep their names, dtypes and values bit for bit (strided PyTorch views are written
 * contiguous).  The output is written atomically (a temporary file renamed over OUT), and an
 * existing OUT is only replaced with --force.  All tensors are held in memory while writing. */
#define _POSIX_C_SOURCE 200809L
#include "common/args.h"
#include "mcnn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: mcnn-convert [--force] IN OUT.safetensors\n"
    "       mcnn-convert --list IN\n"
    "Write the tensors of a PyTorch checkpoint (torch.save .pt/.pth/.bin, zip or legacy), a\n"
    "TorchScript archive (OpenAI's CLIP .pt) or a safetensors file to a safetensors file,\n"
    "with the same names, dtypes and values.";

static const char epilog[] =
    "The input's format is recognised by its first bytes, not its name.  PyTorch pickles are\n"
    "read as data, never run: a file naming anything but tensors, storages, OrderedDict and\n"
    "TorchScript classes is refused (docs/weights.md).  Exit status: 0 done, 1 error, 2 usage.";

static void shape_text(char *buf, size_t cap, const mcnn_st_tensor *t)
{
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < t->ndim && k < cap; d++)
        k += (size_t)snprintf(buf + k, cap - k, d ? ",%lld" : "%lld", (long long)t->shape[d]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

static int list(mcnn_safetensors *st)
{
    int n = mcnn_safetensors_count(st);
    size_t bytes = 0;
    printf("%s: %s, %d tensors\n", mcnn_safetensors_path(st),
           mcnn_weights_format_name(mcnn_safetensors_format(st)), n);
    for (int i = 0; i < n; i++) {
        const mcnn_st_tensor *t = mcnn_safetensors_at(st, i);
        char shape[200];
        shape_text(shape, sizeof shape, t);
        printf("%-5s %-20s %s\n", mcnn_dtype_name(t->dtype), shape, t->name);
        bytes += t->nbytes;
    }
    printf("%zu bytes of tensor data\n", bytes);
    return 0;
}

static int convert(mcnn_safetensors *st, const char *out)
{
    int n = mcnn_safetensors_count(st);
    mcnn_st_entry *e = calloc((size_t)n + 1, sizeof *e);
    void **data = calloc((size_t)n + 1, sizeof *data);
    int rc = e && data ? 0 : 1;
    if (rc) app_error("out of memory");
    for (int i = 0; i < n && !rc; i++) {
        const mcnn_st_tensor *t = mcnn_safetensors_at(st, i);
        data[i] = malloc(t->nbytes ? t->nbytes : 1);
        if (!data[i]) {
            app_error("out of memory for tensor '%s' (%zu bytes)", t->name, t->nbytes);
            rc = 1;
        } else if (mcnn_safetensors_read_raw(st, t, data[i]) != MCNN_OK) {
            app_error("%s", mcnn_last_error());
            rc = 1;
        }
        e[i].name = t->name, e[i].dtype = t->dtype, e[i].ndim = t->ndim, e[i].data = data[i];
        memcpy(e[i].shape, t->shape, sizeof e[i].shape);
    }
    const char *meta[] = {"format", "pt", "converted_from",
                          mcnn_weights_format_name(mcnn_safetensors_format(st))};
    if (!rc && mcnn_safetensors_write(out, e, n, meta, 2) != MCNN_OK) {
        app_error("%s", mcnn_last_error());
        rc = 1;
    }
    if (!rc) printf("wrote %s: %d tensors from %s (%s)\n", out, n, mcnn_safetensors_path(st),
                    mcnn_weights_format_name(mcnn_safetensors_format(st)));
    for (int i = 0; data && i < n; i++) free(data[i]);
    free(data);
    free(e);
    return rc;
}

int main(int argc, char **argv)
{
    app_name = "mcnn-convert";
    int force = 0, do_list = 0;
    const arg_spec specs[] = {
        {ARG_FLAG, "--list", 'l', &do_list, NULL, .help = "print the tensors of IN and stop"},
        {ARG_FLAG, "--force", 'f', &force, NULL, .help = "replace OUT if it exists"},
        {0}};
    arg_strings pos = {0};
    switch (args_parse(specs, argc, argv, &pos)) {
    case ARGS_HELP: args_help(stdout, usage, specs, epilog); return 0;
    case ARGS_ERROR: return 2;
    default: break;
    }
    int want = do_list ? 1 : 2, rc;
    if (pos.count != want) {
        app_error(do_list ? "--list takes one file (see --help)" : "give IN and OUT (see --help)");
        args_strings_free(&pos);
        return 2;
    }
    const char *in = pos.items[0], *out = do_list ? NULL : pos.items[1];
    struct stat sb;
    if (out && !force && stat(out, &sb) == 0) {
        app_error("%s exists; pass --force to replace it", out);
        args_strings_free(&pos);
        return 1;
    }
    mcnn_safetensors *st;
    if (mcnn_safetensors_open(&st, in) != MCNN_OK) {
        app_error("%s", mcnn_last_error());
        args_strings_free(&pos);
        return 1;
    }
    rc = do_list ? list(st) : convert(st, out);
    mcnn_safetensors_close(st);
    args_strings_free(&pos);
    return rc;
}
