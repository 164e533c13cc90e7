/* Reading mcnn-classify's --out-jsonl files (the format is in ../classify/jsonl.h): its own
 * --resume and `merge`, and mcnn-shots, which takes them as tags. */
#ifndef MCNN_APPS_COMMON_TAG_FILE_H
#define MCNN_APPS_COMMON_TAG_FILE_H

#include <stddef.h>
#include <stdint.h>

typedef struct tag_record {
    char *video, *key, *id;     /* key, id: NULL on an end line                          */
    int input;
    int64_t n;
    int done;                   /* an end line: shots, failed                            */
    int64_t shots, failed;
    int64_t start_frame, end_frame;
    double start_time, end_time;
    int frames;
    int64_t *sampled;           /* NULL: not sampled                                     */
    int nsampled;
    int ntop;
    int *label;                 /* (ntop) indices into the header's labels               */
    float *score;               /* (ntop)                                                */
    char *line;                 /* the line as written (without its newline)            */
} tag_record;

typedef struct tag_file {
    char *path;
    char *header;               /* line 1, as written                                    */
    char **labels;              /* the header's labels                                   */
    int L, top;
    double weak_top1, weak_rest;
    char precision[8];          /* the header's "precision" ("fp32" when it has none)      */
    tag_record *rec;            /* the complete lines after the header, in file order     */
    int64_t nrec;
    int truncated;              /* a last line without its newline was dropped           */
} tag_file;

/* Read a whole file.  Returns 0, or -1 with a message naming the file and the line ("tags.jsonl
 * line 12: ...") for anything but a cut-off last line. */
int tag_file_read(tag_file *f, const char *path, char *err, size_t errsize);
void tag_file_free(tag_file *f);
/* 0 when two headers describe the same run; else -1 with the first field that differs. */
int tag_headers_match(const char *a, const char *b, char *what, size_t whatsize);

/* The labels a record keeps: K, or 5 for MovieCLIP's weak labels when K is smaller. */
int jsonl_labels_kept(int top, int L);

#endif
