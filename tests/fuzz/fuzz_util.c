/* The helpers of fuzz.h. */
#define _GNU_SOURCE /* memfd_create */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int fuzz_split(const uint8_t *data, size_t size, const uint8_t **a, size_t *a_size,
               const uint8_t **b, size_t *b_size)
{
    const size_t n = sizeof FUZZ_SEPARATOR - 1;
    for (size_t i = 0; i + n <= size; i++)
        if (memcmp(data + i, FUZZ_SEPARATOR, n) == 0) {
            *a = data, *a_size = i;
            *b = data + i + n, *b_size = size - i - n;
            return 1;
        }
    return 0;
}

enum { SLOTS = 4 };

static int slot_fd[SLOTS] = {-1, -1, -1, -1};
static char slot_path[SLOTS][64];

/* Open the slot's file once per process; later calls rewrite it in place. */
static int slot_open(int slot)
{
    if (slot_fd[slot] >= 0) return slot_fd[slot];
    int fd = -1;
#ifdef MFD_CLOEXEC
    fd = memfd_create("mcnn-fuzz", MFD_CLOEXEC);
    if (fd >= 0) snprintf(slot_path[slot], sizeof slot_path[slot], "/proc/self/fd/%d", fd);
#endif
    if (fd < 0) {
        snprintf(slot_path[slot], sizeof slot_path[slot], "/tmp/mcnn-fuzz-%ld-%d", (long)getpid(),
                 slot);
        FILE *f = fopen(slot_path[slot], "w+b");
        if (!f) return -1;
        fd = dup(fileno(f));
        fclose(f);
        unlink(slot_path[slot]); /* the descriptor keeps the file alive; nothing is left behind */
        if (fd >= 0) snprintf(slot_path[slot], sizeof slot_path[slot], "/proc/self/fd/%d", fd);
    }
    return slot_fd[slot] = fd;
}

const char *fuzz_file(int slot, const uint8_t *data, size_t size)
{
    if (slot < 0 || slot >= SLOTS) return NULL;
    int fd = slot_open(slot);
    if (fd < 0 || ftruncate(fd, 0) != 0) return NULL;
    for (size_t done = 0; done < size;) {
        ssize_t w = pwrite(fd, data + done, size - done, (off_t)done);
        if (w <= 0) return NULL;
        done += (size_t)w;
    }
    return slot_path[slot];
}

volatile unsigned fuzz_checksum; /* where fuzz_touch's reads go, so they are not optimised out */

void fuzz_touch(const void *p, size_t n)
{
    const unsigned char *b = p;
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) sum += b[i];
    fuzz_checksum += sum;
}

char *fuzz_strdup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) return NULL;
    if (size) memcpy(s, data, size);
    s[size] = 0;
    return s;
}
