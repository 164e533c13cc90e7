/* An app's output folder (mcnn-train's --out DIR): created with its parents, locked so that a
 * second run writing into it is refused instead of interleaving its files, and cleared of the
 * temporary files a killed run left behind. */
#ifndef MCNN_APPS_RUN_FOLDER_H
#define MCNN_APPS_RUN_FOLDER_H

/* mkdir -p dir.  0, or -1 after printing why ("runs/x: cannot create: Permission denied"). */
int run_folder_make(const char *dir);

/* Take an exclusive lock on dir/lock_name (an fcntl lock on a file created for it; the kernel
 * drops it when the process ends, however it ends).  Returns the descriptor holding the lock
 * (keep it open for the run), or -1 after printing why, naming the process that holds it. */
int run_folder_lock(const char *dir, const char *lock_name);

/* Remove the "<name>.tmp.<pid>" files in dir whose pid no longer runs (a write interrupted by
 * kill -9); files of live processes are left alone.  Call it holding the lock.  Says on stderr
 * what it removed; returns how many. */
int run_folder_clean_temps(const char *dir);

#endif
