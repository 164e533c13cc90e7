/* The true class of an image, read from where data sets put it: the file name
 * (Fashion-MNIST samples "0019-t-shirt-top.png": the part after a leading number) or the
 * folder (ImageNet style "train/dog/1.jpg").  Matched to the model's labels ignoring ASCII case
 * and ASCII punctuation, so "t-shirt-top" is "T-shirt/top"; non-ASCII characters (UTF-8 bytes)
 * are compared as they are, so "猫" is not "犬". */
#ifndef MCNN_APPS_TRUTH_H
#define MCNN_APPS_TRUTH_H

#include <stddef.h>

typedef enum truth_source { TRUTH_NONE, TRUTH_NAME, TRUTH_DIR } truth_source;

/* "name" or "dir" -> the source; TRUTH_NONE for anything else. */
truth_source truth_source_parse(const char *s);

/* The label index of path's true class, or -1 when it matches none; the class as written in
 * the path goes to name (truncated to namesize). */
int truth_label(const char *path, truth_source src, const char *const *labels, int L, char *name,
                size_t namesize);

#endif
