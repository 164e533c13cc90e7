/* Several ranks (apps/common/distributed.h): a resumed rank's augmentation stream, and what
 * the ranks agree on before rank 0 evaluates or writes. */
#define _POSIX_C_SOURCE 200809L
#include "train.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A resumed rank's augmentation stream: its own when the run had as many ranks ("train_ranks":
 * the count, then each rank's four words a line); else rank 0 keeps the checkpoint's and the
 * others start new streams derived from (seed, rank, step). */
void resume_rank_rng(mcnn_trainer *tr, const char *ckpt, uint64_t seed)
{
    const int rank = dist_rank(), ranks = dist_size();
    int recorded = 1;
    uint64_t w[4];
    mcnn_safetensors *st;
    CHECK(mcnn_safetensors_open(&st, ckpt));
    const char *rec = mcnn_safetensors_meta(st, "train_ranks");
    if (rec) recorded = atoi(rec);
    int found = 0;
    if (rec && recorded == ranks) {
        const char *line = rec;
        for (int r = 0; r <= rank && line; r++) line = strchr(line + 1, '\n');
        found = line && sscanf(line, " %16" SCNx64 " %16" SCNx64 " %16" SCNx64 " %16" SCNx64,
                               &w[0], &w[1], &w[2], &w[3]) == 4;
    }
    mcnn_safetensors_close(st);
    if (found) {
        mcnn_trainer_set_rng(tr, w);
    } else if (rank > 0) {
        mcnn_rng r;
        mcnn_rng_seed(&r, seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)rank) ^
                              (0xD1B54A32D192ED03ull * (uint64_t)(mcnn_trainer_step_count(tr) + 1)));
        mcnn_trainer_set_rng(tr, r.s);
    }
    if (rank == 0 && recorded != ranks)
        fprintf(stderr, "%s: the run was on %d rank%s, it continues on %d: the weights, optimizer "
                "and position are the checkpoint's; ranks above 0 augment from new random streams "
                "(docs/scale.md)\n", app_name, recorded, recorded > 1 ? "s" : "", ranks);
}

/* Before rank 0 evaluates or writes: average the batch-norm running statistics, record every
 * rank's augmentation stream in `record` (rank 0), and check that the weights are still the
 * same on every rank.  0, or -1 after saying why. */
int sync_ranks(mcnn_trainer *tr, mcnn_classifier *model, char *record, size_t size)
{
    const int ranks = dist_size();
    if (ranks == 1) return 0;
    mcnn_params *b = mcnn_classifier_buffers(model);
    if (b) dist_average(b->data, b->total);
    uint64_t mine[4], *all = dist_rank() == 0 ? malloc((size_t)ranks * 4 * sizeof *all) : NULL;
    if (dist_rank() == 0 && !all) {
        app_error("out of memory");
        dist_abort(EXIT_FAILED);
    }
    mcnn_trainer_get_rng(tr, mine);
    dist_gather_u64(mine, 4, all);
    if (all) {
        size_t n = (size_t)snprintf(record, size, "%d", ranks);
        for (int r = 0; r < ranks && n < size; r++)
            n += (size_t)snprintf(record + n, size - n, "\n%016" PRIx64 " %016" PRIx64 " %016"
                                  PRIx64 " %016" PRIx64, all[4 * r], all[4 * r + 1],
                                  all[4 * r + 2], all[4 * r + 3]);
        free(all);
    }
    const mcnn_params *p = mcnn_classifier_params(model);
    return dist_check_same("weights (the ranks have diverged)", p->data,
                           p->total * sizeof(float));
}
