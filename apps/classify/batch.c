/* The shot queue and the batcher.  Frames join the open shot and the batch; a full batch is
 * preprocessed (frames in parallel), encoded and scored in one go, each frame's scores added to
 * its shot; a shot is written (table, JSON, weak labels, JSONL) once it is closed and all its
 * frames are scored, so shots always come out in order while frames of several shots share a
 * batch. */
#define _XOPEN_SOURCE 700
#include "classify.h"
#include "jsonl.h"

#include "../common/check.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (!d) {
        app_error("out of memory");
        exit(1);
    }
    return memcpy(d, s, n);
}

void failure(run *r, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    progress_clear(&r->prog);
    app_error("%s", msg);
    r->nfail++;
}

void shot_begin(run *r, const char *video, const char *key, const char *id,
                int64_t start_frame, double start_time)
{
    if (r->nshots == r->cap_shots) {
        r->cap_shots = r->cap_shots ? 2 * r->cap_shots : 16;
        shot_acc *s = realloc(r->shots, (size_t)r->cap_shots * sizeof *s);
        if (!s) app_error("out of memory"), exit(1);
        r->shots = s;
    }
    shot_acc *s = &r->shots[r->nshots++];
    *s = (shot_acc){.number = r->next_shot++, .video = dup_str(video), .key = dup_str(key),
                    .id = dup_str(id), .start_frame = start_frame, .end_frame = start_frame,
                    .start_time = start_time, .end_time = start_time, .emb_row = -1};
    s->sum = calloc((size_t)r->m->labels.n, sizeof(double));
    if (!s->sum) app_error("out of memory"), exit(1);
}

void shot_end(run *r, int64_t end_frame, double end_time)
{
    shot_acc *s = &r->shots[r->nshots - 1];
    s->end_frame = end_frame;
    s->end_time = end_time;
    s->closed = 1;
}

/* Write and drop the finished shots at the front of the queue (all their frames scored). */
static void emit_closed_shots(run *r)
{
    const int L = r->m->labels.n;
    float *mean = malloc((size_t)L * sizeof(float));
    if (!mean) app_error("out of memory"), exit(1);
    int done = 0;
    while (done < r->nshots && r->shots[done].closed && r->shots[done].scored == r->shots[done].frames) {
        shot_acc *s = &r->shots[done++];
        if (s->scored > 0) { /* a shot whose frames all failed has nothing to say */
            for (int l = 0; l < L; l++) mean[l] = (float)(s->sum[l] / s->scored);
            shot_out so = {s->video, s->key, s->id, s->start_frame, s->end_frame,
                           s->start_time, s->end_time, s->scored, s->still, mean,
                           s->sampled, s->nsampled, s->ordinal, s->emb_row};
            progress_clear(&r->prog);
            outputs_shot(&r->out, &so);
            if (r->jsonl && jsonl_shot(r->jsonl, &so, r->input_index)) {
                app_error("%s", jsonl_error(r->jsonl)); /* the disk is full: stop, keep the work */
                exit(1);
            }
        }
        free(s->video), free(s->key), free(s->id), free(s->sum), free(s->sampled);
    }
    if (done) { /* (r->shots is NULL before the first shot: no memmove on it) */
        memmove(r->shots, r->shots + done, (size_t)(r->nshots - done) * sizeof *r->shots);
        r->nshots -= done;
    }
    free(mean);
    progress_update(&r->prog, r->frames_done, r->out.shots);
}

static shot_acc *find_shot(run *r, int64_t number)
{
    for (int i = 0; i < r->nshots; i++)
        if (r->shots[i].number == number) return &r->shots[i];
    return NULL;
}

static int all_finite(const float *v, int n)
{
    for (int i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

/* A frame whose scores (or embedding, or logits) hold a NaN or an infinity says nothing: it is
 * left out of its shot like a frame that did not decode, and named once per input (a broken
 * checkpoint would otherwise give a line per frame); the summary counts them all. */
static void nonfinite_frame(run *r, const slot *sl, int still)
{
    if (r->nonfinite++ == 0 || r->nonfinite_in != sl->name) {
        char where[48] = "";
        if (!still) snprintf(where, sizeof where, " frame %lld:", (long long)sl->frame);
        failure(r, "%s:%s the model's scores are not finite (NaN or infinity), so the frame is "
                "left out (a damaged checkpoint?)", sl->name, where);
    }
    r->nonfinite_in = sl->name;
}

/* Preprocess the batch (in parallel), encode it, score it, add the scores to the shots. */
void flush(run *r)
{
    model *m = r->m;
    const int n = r->nb, L = m->labels.n, D = m->dim;
    const size_t per = (size_t)m->channels * m->size * m->size;
    int ok[4096];
    #pragma omp parallel for schedule(dynamic) num_threads(mcnn_get_threads())
    for (int i = 0; i < n; i++) {
        ok[i] = mcnn_preprocess(r->images + (size_t)i * per, &r->batch[i].img, &m->pp) == MCNN_OK;
        if (!ok[i]) snprintf(r->slot_err[i], sizeof r->slot_err[i], "%s", mcnn_last_error());
    }
    int good = 0; /* compact: the failed frames drop out */
    for (int i = 0; i < n; i++) {
        mcnn_image_free(&r->batch[i].img);
        shot_acc *s = find_shot(r, r->batch[i].shot_number);
        if (!ok[i]) {
            failure(r, "%s: %s", r->batch[i].name, r->slot_err[i]);
            if (s) s->frames--;
            continue;
        }
        if (good != i) {
            memmove(r->images + (size_t)good * per, r->images + (size_t)i * per, per * sizeof(float));
            r->batch[good] = r->batch[i];
        }
        good++;
    }
    if (good > 0) {
        if (m->kind == MODEL_CLIP) {
            CHECK(mcnn_clip_image_embeddings(m->clip, r->feats, r->images, good));
            mcnn_clip_zeroshot_scores(r->scores, r->feats, m->text, good, L, D, (float)r->o->scale);
        } else {
            CHECK(mcnn_classifier_forward(m->cls, r->feats, r->images, good, 0));
            CHECK(mcnn_classifier_scores(m->cls, r->feats, r->scores, good));
        }
    }
    for (int i = 0; i < good; i++) {
        shot_acc *s = find_shot(r, r->batch[i].shot_number);
        const float *sc = r->scores + (size_t)i * L;
        if (!all_finite(sc, L) || !all_finite(r->feats + (size_t)i * D, D)) {
            nonfinite_frame(r, &r->batch[i], s->still);
            s->frames--;
            continue;
        }
        for (int l = 0; l < L; l++) s->sum[l] += sc[l];
        s->scored++;
        if (r->o->emb && s->emb_row < 0) s->emb_row = r->emb.n; /* a shot's rows follow */
        if (r->o->emb && embeddings_add(&r->emb, r->feats + (size_t)i * D, sc, r->batch[i].frame,
                                        s->number, r->batch[i].name))
            app_error("out of memory"), exit(1);
    }
    r->frames_done += good;
    r->nb = 0;
    emit_closed_shots(r);
}

void shot_note_sampled(run *r, int64_t frame)
{
    shot_acc *s = &r->shots[r->nshots - 1];
    if (s->nsampled == s->cap_sampled) {
        s->cap_sampled = s->cap_sampled ? 2 * s->cap_sampled : 8;
        int64_t *v = realloc(s->sampled, (size_t)s->cap_sampled * sizeof *v);
        if (!v) app_error("out of memory"), exit(1);
        s->sampled = v;
    }
    s->sampled[s->nsampled++] = frame;
}

void add_frame(run *r, mcnn_image *img, int64_t frame, const char *name)
{
    shot_acc *s = &r->shots[r->nshots - 1];
    s->frames++;
    slot *sl = &r->batch[r->nb++];
    *sl = (slot){.img = *img, .frame = frame, .shot_number = s->number, .name = name};
    memset(img, 0, sizeof *img);
    if (r->nb == r->o->batch) flush(r);
}

void run_free(run *r)
{
    for (int i = 0; i < r->nshots; i++) {
        shot_acc *s = &r->shots[i];
        free(s->video), free(s->key), free(s->id), free(s->sum), free(s->sampled);
    }
    free(r->shots);
    r->shots = NULL;
    r->nshots = 0;
}
