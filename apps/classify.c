/* mcnn-classify: images and footage in, scene tags out.
 *
 * The default job is MovieCLIP's tagging (Bose et al., 2023): CLIP ViT-B/32 scores every frame
 * against the 179 labels of the MovieCLIP taxonomy with the prompt
 *   "a photo of a {label}, a type of background location",
 * softmax(100 · cosine) over the labels; a shot's scores are the mean over its frames; the top
 * 5 are reported.  Any classifier checkpoint made by mcnn-train (ViT or ResNet with its label
 * list) classifies the same inputs without prompts.  docs/classify.md has the details.
 *
 * The pipeline, as main() runs it:
 *   options -> model (+ labels, + text embeddings for CLIP) -> outputs
 *   -> for each input: frames -> shots -> batches: preprocess, encode, score -> shot means
 *   -> table / JSON / weak labels as shots finish; embeddings saved at the end
 *   -> failures listed, exit 1 if there were any.
 * This file is main and the run's wiring; the parts are in classify/ (classify/classify.h). */
#define _XOPEN_SOURCE 700
#include "classify/classify.h"
#include "classify/jsonl.h"
#include "common/args.h"
#include "common/escape.h"
#include "common/inputs.h"
#include "common/outfile.h"
#include "common/output.h"
#include "common/progress.h"

#include "mcnn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The JSONL header: what the scores depend on, so that --resume and merge join only lines of
 * the same run.  The model by its file name (shards on other hosts keep it elsewhere). */
static char *run_header(const options *o, const model *m)
{
    char *text = NULL, sampling[128], *q;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) app_error("out of memory"), exit(1);
    const char *base = strrchr(m->path, '/');
    fputs("{\"mcnn_classify_tags\": 1, \"model\": ", f);
    fputs((q = json_quote(base ? base + 1 : m->path)) ? q : "\"\"", f), free(q);
    fprintf(f, ", \"kind\": \"%s\", \"labels\": [", m->kind == MODEL_CLIP ? "clip" : "classifier");
    for (int l = 0; l < m->labels.n; l++) {
        fputs(l ? ", " : "", f);
        fputs((q = json_quote(m->labels.v[l])) ? q : "\"\"", f), free(q);
    }
    fprintf(f, "], \"top\": %d, \"weak_top1\": %.17g, \"weak_rest\": %.17g", o->top, o->weak_top1,
            o->weak_rest);
    /* bf16 / int8 scores differ from fp32 ones: --resume and merge must not mix them */
    mcnn_precision prec = MCNN_PRECISION_FP32;
    if (o->precision) mcnn_precision_parse(o->precision, &prec); /* checked at load */
    fprintf(f, ", \"precision\": \"%s\"", mcnn_precision_name(prec));
    if (m->kind == MODEL_CLIP) {
        fputs(", \"prompts\": [", f);
        for (int i = 0; i < o->prompts.count; i++) {
            fputs(i ? ", " : "", f);
            fputs((q = json_quote(o->prompts.items[i])) ? q : "\"\"", f), free(q);
        }
        fprintf(f, "], \"scale\": %.17g", o->scale);
    } else {
        fprintf(f, ", \"activation\": \"%s\"", mcnn_classifier_multilabel(m->cls) ? "sigmoid" : "softmax");
    }
    const mcnn_preprocess_config *p = &m->pp;
    fprintf(f, ", \"preprocess\": \"resize %d crop %d filter %d mean %.9g,%.9g,%.9g std "
            "%.9g,%.9g,%.9g\"", p->resize, p->crop, (int)p->filter, p->mean[0], p->mean[1],
            p->mean[2], p->std[0], p->std[1], p->std[2]);
    sampling_describe(o, sampling, sizeof sampling);
    fprintf(f, ", \"shot_threshold\": %.17g, \"min_shot_len\": %d, \"fps\": ", o->shot_threshold,
            o->min_shot_len);
    if (o->fps_set) fprintf(f, "%.17g", o->fps);
    else fputs("null", f);
    fprintf(f, ", \"sampling\": \"%s\"}", sampling);
    if (fclose(f) || !text) app_error("out of memory"), exit(1);
    return text;
}

/* Sharding refuses what it cannot split, and outputs every process would write at once. */
static int check_shard(const shard *sh, const options *o)
{
    if (sh->count <= 1) return 0;
    for (int i = 0; i < o->inputs.count; i++)
        if (!strcmp(o->inputs.items[i], "-")) {
            app_error("shard %d/%d: stdin ('-') cannot be split between processes", sh->index,
                      sh->count);
            return -1;
        }
    const struct { const char *name, *path; } outs[] = {
        {"--json", o->json}, {"--weak-labels", o->weak}, {"--embeddings", o->emb},
        {"--out-jsonl", o->out_jsonl}};
    for (int i = 0; sh->automatic && i < 4; i++)
        if (outs[i].path && strcmp(outs[i].path, "-") && !strstr(outs[i].path, "{shard}")) {
            app_error("%s %s: each of the %d processes would write it; put {shard} in the name "
                      "(e.g. tags-{shard}.jsonl)", outs[i].name, outs[i].path, sh->count);
            return -1;
        }
    return 0;
}

/* A whole input (not the images of a folder, shared out one by one) of another shard. */
static int other_shards(const shard *sh, const options *o, const input *in)
{
    if (in->kind == INPUT_DIR && !o->shot_per_dir) return 0;
    return !shard_takes(sh, in->name);
}

int main(int argc, char **argv)
{
    app_name = "mcnn-classify";
    if (argc > 1 && !strcmp(argv[1], "merge")) return merge_main(argc - 1, argv + 1);
    options o;
    shard sh;
    if (parse_options(&o, argc, argv) || shard_choose(&sh, o.shard) || check_shard(&sh, &o)) {
        options_free(&o);
        return 2;
    }
    if (o.threads) mcnn_set_threads(o.threads);
    /* '{shard}' in an output's name: this shard's number */
    char *json = shard_path(o.json, &sh), *weak = shard_path(o.weak, &sh);
    char *emb = shard_path(o.emb, &sh), *out_jsonl = shard_path(o.out_jsonl, &sh);

    model m;
    run r = {.o = &o, .m = &m, .shard = &sh};
    input *ins = NULL;
    int *input_index = NULL;    /* each input's place in the unsharded list */
    char *emb_path = NULL;      /* --embeddings, links followed */
    char *header = NULL;
    int nin = 0, rc = 1, outputs_opened = 0;
    char err[1024];
    if (load_model(&m, &o)) goto done;

    const int L = m.labels.n;
    const int table = !o.no_table && !(json && !strcmp(json, "-")) &&
                      !(weak && !strcmp(weak, "-"));
    if (outputs_open(&r.out, m.labels.v, L, o.top, table, json, weak, o.weak_top1,
                     o.weak_rest, err, sizeof err)) {
        app_error("%s", err);
        goto done;
    }
    outputs_opened = 1;
    /* bf16 / int8 scores are not fp32's: the JSON says so in every shot (fp32 keeps MovieCLIP's
     * bytes) */
    mcnn_precision prec = MCNN_PRECISION_FP32;
    if (o.precision && mcnn_precision_parse(o.precision, &prec) == MCNN_OK &&
        prec != MCNN_PRECISION_FP32)
        r.out.precision = mcnn_precision_name(prec);
    if (emb && !(emb_path = outfile_final_path(emb, err, sizeof err))) {
        app_error("--embeddings %s", err); /* written at the end: fail now, not then */
        goto done;
    }
    header = out_jsonl ? run_header(&o, &m) : NULL;
    if (out_jsonl && jsonl_open(&r.jsonl, out_jsonl, header, m.labels.v, L, o.top, o.resume, err,
                                sizeof err)) {
        app_error("%s", err);
        goto done;
    }
    if (o.truth) r.out.truth = truth_source_parse(o.truth);
    if (emb) embeddings_init(&r.emb, m.dim, L);
    r.batch = calloc((size_t)o.batch, sizeof *r.batch);
    r.slot_err = calloc((size_t)o.batch, sizeof *r.slot_err);
    r.images = malloc((size_t)o.batch * m.channels * m.size * m.size * sizeof(float));
    r.feats = malloc((size_t)o.batch * m.dim * sizeof(float));
    r.scores = malloc((size_t)o.batch * L * sizeof(float));
    const int all = o.inputs.count + o.videos.count + o.nlisted;
    ins = calloc((size_t)all, sizeof *ins);
    input_index = calloc((size_t)all, sizeof *input_index);
    if (!r.batch || !r.slot_err || !r.images || !r.feats || !r.scores || !ins || !input_index) {
        app_error("out of memory");
        goto done;
    }

    /* inputs: the positional ones in order, then the videos, then the listed ones; this
     * shard's, not yet done */
    int64_t total_images = 0;
    for (int i = 0; i < all; i++) {
        const int video = i >= o.inputs.count, listed = i >= o.inputs.count + o.videos.count;
        const char *arg = listed  ? o.listed[i - o.inputs.count - o.videos.count]
                          : video ? o.videos.items[i - o.inputs.count]
                                  : o.inputs.items[i];
        if (input_expand(&ins[nin], arg, video, err, sizeof err)) {
            if (shard_takes(&sh, arg)) failure(&r, "%s", err); /* one shard says it */
            input_free(&ins[nin]);
            continue;
        }
        if (other_shards(&sh, &o, &ins[nin]) ||
            (r.jsonl && jsonl_input_done(r.jsonl, ins[nin].name))) {
            input_free(&ins[nin]);
            continue;
        }
        total_images += ins[nin].nfiles;
        input_index[nin++] = i;
    }
    table_layout(&r.out, &o, ins, nin);
    progress_init(&r.prog, !o.quiet && (o.progress || progress_stderr_is_tty()), total_images);

    for (int i = 0; i < nin; i++) {
        const int fails = r.nfail;
        const int64_t shots = r.out.shots;
        r.input_index = input_index[i];
        run_input(&r, &ins[i]);
        if (r.jsonl && jsonl_input_end(r.jsonl, ins[i].name, input_index[i], r.out.shots - shots,
                                       r.nfail - fails)) {
            app_error("%s", jsonl_error(r.jsonl));
            goto done;
        }
    }
    progress_done(&r.prog, r.frames_done, r.out.shots);

    rc = 0;
    outputs_opened = 0;
    const int64_t shots = r.out.shots;
    if (outputs_close(&r.out, 1, err, sizeof err)) {
        app_error("%s", err);
        rc = 1;
    }
    if (r.jsonl && jsonl_close(r.jsonl, err, sizeof err)) {
        app_error("%s", err);
        rc = 1;
    }
    r.jsonl = NULL;
    if (emb && embeddings_save(&r.emb, emb_path, m.kind == MODEL_CLIP ? "embeddings" : "logits",
                               m.kind == MODEL_CLIP ? "clip-image-embeddings (L2-normalised)"
                                                    : "classifier-logits",
                               m.path, m.labels.v, err, sizeof err)) {
        app_error("%s", err);
        rc = 1;
    }
    if (r.nfail) { /* each was named when it happened */
        char frames[96] = "";
        if (r.nonfinite)
            snprintf(frames, sizeof frames, "; %lld frame%s left out for non-finite scores",
                     (long long)r.nonfinite, r.nonfinite > 1 ? "s" : "");
        app_error("%d input%s failed (named above)%s; %lld shot%s classified", r.nfail,
                  r.nfail > 1 ? "s" : "", frames, (long long)shots,
                  shots == 1 ? "" : "s");
        rc = 1;
    }

done:
    if (outputs_opened) outputs_close(&r.out, 0, err, sizeof err);
    jsonl_close(r.jsonl, NULL, 0); /* what was written stays: --resume continues it */
    if (app_close_stdout()) rc = 1;
    for (int i = 0; i < nin; i++) input_free(&ins[i]);
    free(ins), free(input_index), free(emb_path), free(header);
    free(json), free(weak), free(emb), free(out_jsonl);
    free(r.batch), free(r.slot_err), free(r.images), free(r.feats), free(r.scores);
    run_free(&r);
    if (emb) embeddings_free(&r.emb);
    model_free(&m);
    options_free(&o);
    return rc;
}
