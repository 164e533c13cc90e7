/* `mcnn-train train`: a run set up in order -- the options and the run folder, the data (every
 * set loaded and checked before anything trains), the model, the trainer -- then its epochs
 * (epochs.c).  Each step returns 0 or the exit status of its failure, having said why. */
#define _POSIX_C_SOURCE 200809L
#include "train.h"
#include "../common/run_folder.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The options that must make sense, the run's paths, and the run folder (rank 0 alone owns it;
 * the others only read its checkpoint). */
static int job_start(train_job *j)
{
    const options *o = j->o;
    if (check_choices(o)) return EXIT_USAGE;
    if (!o->data) {
        app_error("give the training data with --data SOURCE (see --help)");
        return EXIT_USAGE;
    }
    if (o->val && o->val_split > 0) {
        app_error("--val and --val-split both give held-out data: choose one");
        return EXIT_USAGE;
    }
    const char *out = j->out = o->out ? o->out : "run";
    snprintf(j->ckpt, sizeof j->ckpt, "%s/checkpoint.safetensors", out);
    snprintf(j->model_path, sizeof j->model_path, "%s/model.safetensors", out);
    snprintf(j->log_path, sizeof j->log_path, "%s/log.csv", out);
    if (!getcwd(j->cwd, sizeof j->cwd)) {
        app_error("cannot read the current folder: %s", strerror(errno));
        return EXIT_FAILED;
    }
    const int rank = j->rank = dist_rank(), ranks = j->ranks = dist_size();
    if (o->batch % ranks) {
        if (rank == 0)
            app_error("--batch %d does not split over %d ranks: give a global batch that %d "
                      "divides (each rank trains on batch / ranks images of every batch)",
                      o->batch, ranks, ranks);
        return EXIT_USAGE;
    }
    dist_set_timeout(o->timeout);
    int ready = 1;
    if (rank == 0) {
        ready = run_folder_make(out) == 0 && (j->lock = run_folder_lock(out, "train.lock")) >= 0;
        if (ready) run_folder_clean_temps(out);
    }
    if (dist_any(!ready)) return EXIT_FAILED;
    if (o->threads) mcnn_set_threads(o->threads);
    return 0;
}

/* Every set loaded and checked; a resumed run's data must be the run's, and every rank's the
 * same. */
static int job_data(train_job *j)
{
    const options *o = j->o;
    mcnn_dataset full;
    load_source(&full, o->data, o, "--data", o->limit);
    if (o->val_split > 0) {
        CHECK(mcnn_dataset_split(&j->train, &j->val, &full, o->val_split, (uint64_t)o->seed));
        mcnn_dataset_free(&full);
    } else {
        j->train = full;
    }
    if (o->val)
        load_source(&j->val, o->val, o, "--val", o->val_limit), check_same_classes(&j->train, &j->val);
    if (o->test)
        load_source(&j->test, o->test, o, "--test", o->val_limit),
            check_same_classes(&j->train, &j->test);
    data_record(j->data, sizeof j->data,
                (const mcnn_dataset *const[3]){&j->train, &j->val, &j->test});
    if (o->resume && check_same_data(o->run_data, j->data, j->ckpt)) return EXIT_FAILED;
    if (dist_check_same("data (sizes and fingerprints)", j->data, strlen(j->data)) ||
        dist_check_same("options", j->args, strlen(j->args)))
        return EXIT_USAGE;
    return 0;
}

/* The model: the checkpoint's (--resume), fine-tuned from --init, or new; a new run's class
 * names and preprocessing (the data's, then the options'); the transform the batches use. */
static int job_model(train_job *j)
{
    const options *o = j->o;
    const int K = j->train.num_classes;
    j->cfg = train_config(o, j->train.multi_label);
    if (j->cfg.loss == MCNN_LOSS_CE && j->train.multi_label) {
        app_error("%s has samples with several labels: use --loss bce", j->train.source);
        return EXIT_USAGE;
    }
    if (o->resume) {
        mcnn_classifier_load_options lo = {0};
        CHECK(mcnn_classifier_load(&j->model, j->ckpt, &lo));
        CHECK(mcnn_train_config_load(&j->cfg, j->ckpt));
    } else if (o->init) {
        mcnn_classifier_load_options lo = {.num_classes = K, .image_size = o->image_size,
                                           .seed = (uint64_t)o->seed};
        CHECK(mcnn_classifier_load(&j->model, o->init, &lo));
    } else {
        const mcnn_dataset *t = &j->train;
        const int gray = t->pixels && t->channels == 1;
        mcnn_classifier_config mc = {.arch = o->arch, .num_classes = K,
                                     .image_size = o->image_size ? o->image_size
                                                   : t->pixels ? t->height : 0,
                                     .in_channels = o->channels ? o->channels : gray ? 1 : 3,
                                     .width = o->width, .depth = o->depth, .patch = o->patch,
                                     .heads = o->heads};
        CHECK(mcnn_classifier_create(&j->model, &mc, (uint64_t)o->seed));
    }
    if (mcnn_classifier_num_classes(j->model) != K) {
        app_error("%s: the model has %d classes, the data (%s) %d",
                  o->resume ? j->ckpt : o->init ? o->init : o->arch,
                  mcnn_classifier_num_classes(j->model), j->train.source, K);
        return EXIT_FAILED;
    }
    if (!o->resume) {
        const mcnn_dataset *t = &j->train;
        CHECK(mcnn_classifier_set_labels(j->model, (const char *const *)t->class_names, K));
        mcnn_preprocess_config pp = *mcnn_classifier_get_preprocess(j->model);
        if (!o->init && t->pixels && t->channels == 1 && pp.channels == 1)
            pp.mean[0] = MCNN_FASHION_MNIST_MEAN, pp.std[0] = MCNN_FASHION_MNIST_STD;
        if (o->mean_set) memcpy(pp.mean, o->mean, sizeof pp.mean);
        if (o->std_set) memcpy(pp.std, o->std, sizeof pp.std);
        if (o->resize) pp.resize = o->resize;
        mcnn_classifier_set_preprocess(j->model, &pp);
    }
    j->tf = make_transform(j->model, o);
    j->eval_batch = o->eval_batch ? o->eval_batch : o->batch;
    return 0;
}

/* The trainer at the checkpoint's position (--resume) or new, with BCE's pos_weight; the
 * checkpoint's metadata; every rank starting from the same weights and position. */
static int job_trainer(train_job *j)
{
    const options *o = j->o;
    const int K = j->train.num_classes;
    j->cfg.rank = j->rank, j->cfg.ranks = j->ranks;
    j->cfg.grad_hook = j->ranks > 1 ? dist_grad_hook : NULL;
    CHECK(mcnn_trainer_create(&j->tr, j->model, &j->cfg, j->train.count));
    if (o->resume) {
        CHECK(mcnn_trainer_resume(j->tr, j->ckpt));
        resume_rank_rng(j->tr, j->ckpt, j->cfg.seed);
    } else if (j->cfg.loss == MCNN_LOSS_BCE && strcmp(o->pos_weight, "none") != 0) {
        float *pw = malloc((size_t)K * sizeof(float));
        if (!pw) {
            app_error("out of memory");
            return EXIT_FAILED;
        }
        if (strcmp(o->pos_weight, "auto") == 0) mcnn_dataset_pos_weight(&j->train, pw);
        else CHECK(mcnn_read_pos_weight(pw, K, o->pos_weight));
        CHECK(mcnn_trainer_set_pos_weight(j->tr, pw));
        free(pw);
    }
    const char *meta[] = {"train_args", j->args, "train_cwd", j->cwd, "train_data", j->data,
                          "train_ranks", j->rank_record};
    memcpy(j->meta, meta, sizeof meta);
    j->n_meta = j->ranks > 1 ? 4 : 3;

    const mcnn_params *params = mcnn_classifier_params(j->model);
    const int64_t position = mcnn_trainer_step_count(j->tr);
    if (dist_check_same("starting weights (--init file or checkpoint)", params->data,
                        params->total * sizeof(float)) ||
        dist_check_same("checkpoint position", &position, sizeof position))
        return EXIT_USAGE;
    return 0;
}

/* One line on what is trained, on how much, and how (rank 0). */
static void job_summary(const train_job *j)
{
    if (j->rank != 0) return;
    const mcnn_params *params = mcnn_classifier_params(j->model);
    size_t nparams = 0;
    for (int i = 0; i < params->count; i++) nparams += params->table[i].numel;
    const mcnn_preprocess_config *pp = mcnn_classifier_get_preprocess(j->model);
    fprintf(stderr, "%s: %s, %.2f M parameters, %d classes, %d x %d x %d input; %d "
            "training images%s%s; %lld steps of %d x %d per epoch; %d threads\n", app_name,
            mcnn_classifier_arch_name(j->model), nparams / 1e6, j->train.num_classes,
            pp->channels, pp->crop, pp->crop, j->train.count, j->val.count ? ", held-out " : "",
            j->val.count ? j->val.source : "", (long long)mcnn_trainer_steps_per_epoch(j->tr),
            j->cfg.batch, j->cfg.accum, mcnn_get_threads());
    if (j->ranks > 1)
        fprintf(stderr, "%s: %d ranks (%s), %d images of each batch per rank\n", app_name,
                j->ranks, dist_library(), j->cfg.batch / j->ranks);
}

int cmd_train(options *o, const char *args)
{
    train_job *j = calloc(1, sizeof *j);
    if (!j) {
        app_error("out of memory");
        return EXIT_FAILED;
    }
    j->o = o, j->args = args, j->lock = -1;
    int status = job_start(j);
    if (!status) status = job_data(j);
    if (!status) status = job_model(j);
    if (!status) status = job_trainer(j);
    if (!status) {
        job_summary(j);
        status = train_epochs(j);
    }
    mcnn_trainer_free(j->tr);
    mcnn_classifier_free(j->model);
    mcnn_dataset_free(&j->train);
    mcnn_dataset_free(&j->val);
    mcnn_dataset_free(&j->test);
    if (j->lock >= 0) close(j->lock);
    free(j);
    return status;
}
