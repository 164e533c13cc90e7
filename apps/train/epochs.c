/* The epochs of a run set up by run.c: the library trains an epoch (progress.c sees every step),
 * then rank 0 evaluates the held-out set and writes the checkpoint; a stop request ends the run
 * at a step with a checkpoint to resume from; after the last epoch, the model and the test set. */
#define _POSIX_C_SOURCE 200809L
#include "train.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* log.csv (rank 0): a resumed run keeps the rows up to its checkpoint and appends. */
static int open_log(train_job *j, FILE **log)
{
    const options *o = j->o;
    *log = NULL;
    if (j->rank != 0) return 0;
    if (o->resume) trim_log(j->log_path, mcnn_trainer_step_count(j->tr));
    if (!(*log = fopen(j->log_path, o->resume ? "a" : "w"))) {
        app_error("%s: cannot write: %s", j->log_path, strerror(errno));
        return EXIT_FAILED;
    }
    if (!o->resume || ftell(*log) == 0) fputs(train_csv_header, *log);
    return 0;
}

/* The library failed mid-epoch: say so, and where the last good checkpoint is. */
static int epoch_failed(const train_job *j)
{
    struct stat sb;
    app_error("%s", mcnn_last_error());
    if (stat(j->ckpt, &sb) == 0)
        app_error("the last good checkpoint is %s (resume with --resume --out %s)", j->ckpt,
                  j->out);
    return EXIT_FAILED;
}

/* A stop inside an epoch (Ctrl-C, SIGTERM, --stop-after): a checkpoint at this step. */
static int stop_with_checkpoint(train_job *j, FILE *log)
{
    if (sync_ranks(j->tr, j->model, j->rank_record, sizeof j->rank_record)) return EXIT_FAILED;
    if (j->rank > 0) return EXIT_STOPPED;
    CHECK(mcnn_trainer_save(j->tr, j->ckpt, j->meta, j->n_meta));
    fflush(log);
    fprintf(stderr, "%s: stopped at step %lld (epoch %d); checkpoint %s; continue with: "
            "mcnn-train --resume --out %s\n", app_name,
            (long long)mcnn_trainer_step_count(j->tr), mcnn_trainer_epoch(j->tr) + 1, j->ckpt,
            j->out);
    return EXIT_STOPPED;
}

/* After an epoch: rank 0 evaluates the held-out set and writes the checkpoint while the others
 * wait; 0 to go on, or the status that ends the run. */
static int end_epoch(train_job *j, const run *r)
{
    const int epoch = mcnn_trainer_epoch(j->tr);
    if (sync_ranks(j->tr, j->model, j->rank_record, sizeof j->rank_record)) return EXIT_FAILED;
    if (j->rank > 0) {
        /* rank 0 evaluates and writes meanwhile */
    } else if (j->val.count) {
        mcnn_eval_result e;
        const double t0 = mcnn_seconds();
        CHECK(mcnn_evaluate(j->model, &j->val, &j->tf, j->eval_batch, (float)j->o->threshold,
                            &e));
        char what[64];
        snprintf(what, sizeof what, "epoch %d held-out", epoch);
        print_eval(what, &e, mcnn_seconds() - t0);
        write_csv_eval(r->log, epoch, mcnn_trainer_step_count(j->tr), &e,
                       mcnn_seconds() - r->start);
        mcnn_eval_result_free(&e);
    } else {
        printf("epoch %d done (%.1f s)\n", epoch, mcnn_seconds() - r->start);
    }
    if (j->rank == 0) CHECK(mcnn_trainer_save(j->tr, j->ckpt, j->meta, j->n_meta));
    dist_wait_for_rank0();
    if (dist_any(interrupted)) {
        if (j->rank == 0)
            fprintf(stderr, "%s: stopped after epoch %d; checkpoint %s\n", app_name, epoch,
                    j->ckpt);
        return EXIT_STOPPED;
    }
    return 0;
}

/* The trained run (rank 0): the allreduce's share of the time, the model, the test set. */
static void finish(train_job *j, const run *r)
{
    if (j->ranks > 1) {
        int64_t calls;
        const double s = dist_grad_seconds(&calls);
        fprintf(stderr, "%s: gradient allreduce: %.2f ms per step (%lld steps, %.1f%% of the "
                "run)\n", app_name, calls ? 1e3 * s / (double)calls : 0.0, (long long)calls,
                100 * s / (mcnn_seconds() - r->start));
    }
    CHECK(mcnn_classifier_save(j->model, j->model_path));
    fprintf(stderr, "%s: %s written (%.1f min)\n", app_name, j->model_path,
            (mcnn_seconds() - r->start) / 60);
    if (j->test.count) {
        mcnn_eval_result e;
        const double t0 = mcnn_seconds();
        CHECK(mcnn_evaluate(j->model, &j->test, &j->tf, j->eval_batch, (float)j->o->threshold,
                            &e));
        print_eval("test", &e, mcnn_seconds() - t0);
        write_csv_eval(r->log, mcnn_trainer_epoch(j->tr), mcnn_trainer_step_count(j->tr), &e,
                       mcnn_seconds() - r->start);
        mcnn_eval_result_free(&e);
    }
}

int train_epochs(train_job *j)
{
    const options *o = j->o;
    struct stat sb;
    if (o->resume && mcnn_trainer_epoch(j->tr) >= j->cfg.epochs && stat(j->model_path, &sb) == 0) {
        if (j->rank == 0)
            fprintf(stderr, "%s: the run in %s has finished (%d of %d epochs): nothing to "
                    "resume; its model is %s\n", app_name, j->out, mcnn_trainer_epoch(j->tr),
                    j->cfg.epochs, j->model_path);
        return EXIT_DONE;
    }
    FILE *log;
    int status = open_log(j, &log);
    if (status) return status;

    run r = {.o = o, .log = log, .tty = isatty(STDERR_FILENO), .start = mcnn_seconds(),
             .start_step = mcnn_trainer_step_count(j->tr), .stop_after = o->stop_after};
    r.show = !o->quiet && (r.tty || o->progress);
    catch_stop_signals();
    while (status == EXIT_DONE && mcnn_trainer_epoch(j->tr) < j->cfg.epochs) {
        int stopped = 0;
        mcnn_status s = mcnn_trainer_run_epoch(j->tr, &j->train, &j->tf, on_step, &r, &stopped);
        if (r.show && r.tty) fprintf(stderr, "\n");
        if (s != MCNN_OK) status = epoch_failed(j);
        else if (stopped) status = stop_with_checkpoint(j, log);
        else status = end_epoch(j, &r);
    }
    if (status == EXIT_DONE && j->rank == 0) finish(j, &r);
    if (status == EXIT_DONE) dist_wait_for_rank0();
    if (log) fclose(log);
    return status;
}
