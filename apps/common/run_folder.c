/* The output folder of a run; see run_folder.h. */
#define _POSIX_C_SOURCE 200809L
#include "run_folder.h"
#include "args.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int run_folder_make(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        app_error("%s: path too long", dir);
        return -1;
    }
    /* each prefix ending before a '/', then the whole path */
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p) continue;
        const char keep = *p;
        *p = 0;
        struct stat sb;
        if (mkdir(path, 0777) != 0 && errno != EEXIST) {
            app_error("%s: cannot create %s: %s", dir, path, strerror(errno));
            return -1;
        }
        if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            app_error("%s: %s is not a folder", dir, path);
            return -1;
        }
        *p = keep;
        if (!keep) break;
    }
    return 0;
}

int run_folder_lock(const char *dir, const char *lock_name)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, lock_name);
    const int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        app_error("%s: cannot create the lock file: %s", path, strerror(errno));
        return -1;
    }
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    if (fcntl(fd, F_SETLK, &fl) == 0) return fd;
    const int err = errno;
    struct flock who = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    if ((err == EACCES || err == EAGAIN) && fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK)
        app_error("%s is in use by another run (process %ld holds %s): wait for it to end, or "
                  "choose another --out", dir, (long)who.l_pid, path);
    else if (err == EACCES || err == EAGAIN)
        app_error("%s is in use by another run (%s is locked): wait for it to end, or choose "
                  "another --out", dir, path);
    else
        app_error("%s: cannot lock: %s", path, strerror(err));
    close(fd);
    return -1;
}

/* The pid of "<name>.tmp.<digits>", or 0. */
static long temp_pid(const char *name)
{
    const char *t = strstr(name, ".tmp.");
    if (!t) return 0;
    for (const char *next; (next = strstr(t + 1, ".tmp.")); t = next) {}
    char *end;
    const char *digits = t + 5;
    if (*digits < '1' || *digits > '9') return 0;
    errno = 0;
    const long pid = strtol(digits, &end, 10);
    return *end || errno || pid <= 0 ? 0 : pid;
}

int run_folder_clean_temps(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    for (struct dirent *e; (e = readdir(d));) {
        const long pid = temp_pid(e->d_name);
        if (!pid || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) == 0) {
            fprintf(stderr, "%s: removed %s, left by an interrupted write (process %ld)\n",
                    app_name, path, pid);
            removed++;
        }
    }
    closedir(d);
    return removed;
}
