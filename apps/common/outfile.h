/* Output files that are never left half written.
 *
 * A regular file (or a path that does not exist yet) is written to "<path>.tmp.<pid>" next to
 * it, then flushed to the disk (fflush + fsync) and renamed over <path> by outfile_commit:
 * rename() is atomic within a file system, so a reader, a crash or a second run writing the same
 * path sees the old file or the complete new one, never a mix.  A symbolic link is followed (the
 * file it names is replaced, the link stays).  Anything else ("-" for stdout, /dev/stdout, a
 * pipe, a device) is written in place.  A temporary file still open when the program exits or is
 * stopped by SIGINT, SIGTERM, SIGHUP or SIGPIPE is removed.
 *
 * Every failure names the path and the reason (strerror), e.g.
 * "tags.json: cannot write: No space left on device". */
#ifndef MCNN_APPS_OUTFILE_H
#define MCNN_APPS_OUTFILE_H

#include <stddef.h>
#include <stdio.h>

typedef struct outfile {
    FILE *f;
    char *path;      /* as given, for messages                                    */
    char *target;    /* the file that rename replaces (NULL: written in place)   */
    char *tmp;       /* the temporary file while open (NULL: written in place)   */
    int error;       /* the first errno of a failed write, 0 while all is well   */
} outfile;

/* Open path ("-": stdout).  Returns 0, or -1 with a message. */
int outfile_open(outfile *o, const char *path, char *err, size_t errsize);
/* After a batch of writes: remember the first write error (ferror) with its errno.  Returns 0
 * while every write has succeeded. */
int outfile_check(outfile *o);
/* Flush, sync, close and rename into place.  On any error the temporary file is removed (the
 * previous file, if any, stays as it was) and -1 returned with a message.  Stdout is flushed,
 * not closed (see app_close_stdout). */
int outfile_commit(outfile *o, char *err, size_t errsize);
/* Close and remove the temporary file, keeping any previous file (after a failed run). */
void outfile_discard(outfile *o);

/* For a file written at the end of a run by another atomic writer (mcnn_safetensors_write):
 * the regular file to write (path, or the file a link names), malloc'ed, once a temporary file
 * could be created beside it, so that a bad path fails before the work, not after it.  NULL
 * with a message for a folder that does not exist, a device, a pipe. */
char *outfile_final_path(const char *path, char *err, size_t errsize);

/* Flush and close stdout at the end of main: a full disk or a closed pipe is reported
 * ("<app>: stdout: write error: No space left on device").  Returns 0, or -1. */
int app_close_stdout(void);

#endif
