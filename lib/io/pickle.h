/* A pickle reader for PyTorch checkpoints: a data reader, never an interpreter.
 *
 * It runs the pickle opcodes of protocols 2 to 5 that state dicts and TorchScript archives use,
 * building a tree of plain values.  A pickle may name Python globals; only an allow-list is
 * accepted, and none of them is ever "called": each is recognised by name and its effect
 * (an empty OrderedDict, a tensor view, a storage reference) is built here.  Anything else
 * (os.system, builtins.eval, ...) stops the load with an error naming it.  TorchScript classes
 * (`__torch__.*`) become plain attribute bags.  Internal to lib/io. */
#ifndef MCNN_IO_PICKLE_H
#define MCNN_IO_PICKLE_H

#include "internal.h"

#define MCNN_PK_MAX_DIMS 8

typedef enum mcnn_pk_kind {
    MCNN_PK_NONE,
    MCNN_PK_BOOL,    /* i */
    MCNN_PK_INT,     /* i */
    MCNN_PK_BIGINT,  /* text: little-endian two's complement bytes (the legacy magic number) */
    MCNN_PK_FLOAT,   /* f */
    MCNN_PK_STR,     /* text (unicode, bytes and Python 2 strings alike) */
    MCNN_PK_TUPLE,   /* items */
    MCNN_PK_LIST,    /* items */
    MCNN_PK_DICT,    /* items: key, value, key, value ... in insertion order */
    MCNN_PK_GLOBAL,  /* an allowed global: global, dtype; text = "module.name" */
    MCNN_PK_OBJECT,  /* an instance of a TorchScript class: text = class, items[0] = its state */
    MCNN_PK_STORAGE, /* a persistent id: text = storage key, dtype, i = elements */
    MCNN_PK_TENSOR,  /* i = index into the tensor table */
    MCNN_PK_DTYPE    /* a torch dtype constant (torch.float32 ...): dtype */
} mcnn_pk_kind;

typedef struct mcnn_pk_value {
    uint8_t kind;   /* mcnn_pk_kind */
    uint8_t global; /* for MCNN_PK_GLOBAL: which one (pickle.c's enum) */
    uint8_t dtype;  /* mcnn_dtype, for storages and dtypes */
    uint8_t walking; /* set by a walker while the value is on its path (cycle detection) */
    int64_t i;
    double f;
    size_t text, len; /* offset and length in mcnn_pickle.text (NUL-terminated there) */
    int32_t *items;
    uint32_t n, cap;
} mcnn_pk_value;

/* A tensor view: _rebuild_tensor_v2(storage, offset, size, stride, ...) with its bounds
 * checked against the storage's element count. */
typedef struct mcnn_pk_tensor {
    int storage; /* value index of the MCNN_PK_STORAGE */
    int ndim;
    int64_t offset;
    int64_t size[MCNN_PK_MAX_DIMS], stride[MCNN_PK_MAX_DIMS];
} mcnn_pk_tensor;

typedef struct mcnn_pickle {
    mcnn_pk_value *v;
    int nv, capv;
    char *text;
    size_t ntext, captext;
    mcnn_pk_tensor *tensors;
    int nt, capt;
    int root; /* value index of what STOP returned */
} mcnn_pickle;

/* Run one pickle from data[0..size), stopping at its STOP opcode; *consumed receives the bytes
 * used (a file may hold several pickles in a row).  name labels errors.  Returns
 * MCNN_ERR_FORMAT with a message naming the byte offset on anything malformed,
 * MCNN_ERR_UNSUPPORTED for a global outside the allow-list or an opcode not read.  When the
 * data ends before STOP, *consumed is set to size + 1 (the caller may retry with more). */
mcnn_status mcnn_pickle_load(mcnn_pickle *p, const unsigned char *data, size_t size,
                             size_t *consumed, const char *name);
void mcnn_pickle_free(mcnn_pickle *p);

static inline const mcnn_pk_value *mcnn_pk(const mcnn_pickle *p, int i) { return &p->v[i]; }
static inline const char *mcnn_pk_text(const mcnn_pickle *p, int i) { return p->text + p->v[i].text; }

#endif
