/* The pickle machine (Python's Lib/pickletools.py documents every opcode), reduced to data.
 *
 * A pickle is a program for a stack machine: opcodes push values (ints, strings, empty
 * containers), fill containers, remember values in a "memo" and fetch them back, and - the
 * dangerous part - push globals (GLOBAL "os" "system") and call them (REDUCE).  Here a global
 * is only a name matched against a short allow-list, and "calling" one builds a value in C:
 *
 *   collections.OrderedDict()                 an empty dict
 *   torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, meta])
 *                                             a tensor view, bounds checked against the storage
 *   torch._utils._rebuild_parameter(tensor, requires_grad, hooks) (and _with_state): the tensor
 *   torch.FloatStorage, HalfStorage, ..., torch.UntypedStorage: storage types, only inside a
 *                                             persistent id ('storage', type, key, location, n)
 *   torch.float32, torch.half, ...            dtype constants
 *   __torch__.*                               TorchScript classes: NEWOBJ makes an empty
 *                                             attribute bag, BUILD gives it its state dict
 *   torch.jit._pickle.build_intlist(list), build_doublelist, build_boollist, build_tensorlist,
 *   torch.jit._pickle.restore_type_tag(value, type)  a scripted module's typed attributes
 *                                             (List[int], Dict[str, int], ...): the value itself
 *
 * Everything else stops the load with an error naming the global.  Values live in one array
 * and refer to each other by index, so a cyclic structure (a list appended to itself) is just
 * data; the walkers that read the tree detect cycles.  Bounds: the mark stack, the memo
 * (indices may not exceed the pickle's size) and the value stack are all limited, and every
 * allocation is proportional to the bytes of the pickle. */
#include "io/pickle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MARKS 1024           /* nesting of MARK ... TUPLE/LIST/DICT */
#define MAX_MEMO (1u << 24)      /* memo indices */
#define MAX_STACK (1 << 24)
#define MAX_GLOBAL_NAME 256

typedef enum pk_global {
    G_ORDERED_DICT,
    G_REBUILD_TENSOR,
    G_REBUILD_PARAMETER,
    G_REBUILD_PARAMETER_STATE,
    G_STORAGE_TYPE,
    G_TORCH_CLASS,
    G_JIT_TYPED_LIST, /* torch.jit._pickle.build_*list(list): the list */
    G_JIT_TYPE_TAG    /* torch.jit._pickle.restore_type_tag(value, type string): the value */
} pk_global;

typedef struct machine {
    mcnn_pickle *p;
    const unsigned char *d;
    size_t size, pos, op_at;
    const char *name;
    int32_t *stack;
    int nstack, capstack;
    int marks[MAX_MARKS];
    int nmarks;
    int32_t *memo;
    uint32_t capmemo, nmemo; /* nmemo: entries set, for MEMOIZE */
    int ran_out;              /* the data ended before STOP */
} machine;

static mcnn_status bad(const machine *m, const char *what)
{
    return mcnn_set_error(MCNN_ERR_FORMAT, "%s: pickle byte %zu: %s", m->name, m->op_at, what);
}

static mcnn_status truncated(machine *m)
{
    m->ran_out = 1;
    return bad(m, "the pickle ends before its STOP opcode (truncated)");
}

/* ---- values ------------------------------------------------------------------------------ */

static mcnn_status new_value(machine *m, int kind, int *out)
{
    mcnn_pickle *p = m->p;
    if (p->nv == p->capv) {
        int cap = p->capv ? p->capv * 2 : 256;
        if (p->capv > MAX_STACK) return bad(m, "too many values");
        mcnn_pk_value *v = realloc(p->v, (size_t)cap * sizeof *v);
        if (!v) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", m->name);
        p->v = v, p->capv = cap;
    }
    memset(&p->v[p->nv], 0, sizeof p->v[0]);
    p->v[p->nv].kind = (uint8_t)kind;
    *out = p->nv++;
    return MCNN_OK;
}

/* Copy n bytes into the text pool (NUL-terminated) for value v. */
static mcnn_status set_text(machine *m, int v, const void *s, size_t n)
{
    mcnn_pickle *p = m->p;
    if (n + 1 > p->captext - p->ntext) {
        size_t cap = p->captext ? p->captext : 4096;
        while (n + 1 > cap - p->ntext) cap *= 2;
        char *t = realloc(p->text, cap);
        if (!t) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", m->name);
        p->text = t, p->captext = cap;
    }
    memcpy(p->text + p->ntext, s, n);
    p->text[p->ntext + n] = 0;
    p->v[v].text = p->ntext, p->v[v].len = n;
    p->ntext += n + 1;
    return MCNN_OK;
}

static mcnn_status add_item(machine *m, int container, int32_t item)
{
    mcnn_pk_value *c = &m->p->v[container];
    if (c->n == c->cap) {
        uint32_t cap = c->cap ? c->cap * 2 : 4;
        if (c->cap >= (uint32_t)MAX_STACK) return bad(m, "a container with too many items");
        int32_t *it = realloc(c->items, cap * sizeof *it);
        if (!it) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", m->name);
        c->items = it, c->cap = cap;
    }
    c->items[c->n++] = item;
    return MCNN_OK;
}

/* ---- the stack, marks and memo ----------------------------------------------------------- */

static mcnn_status push(machine *m, int32_t v)
{
    if (m->nstack == m->capstack) {
        if (m->capstack >= MAX_STACK) return bad(m, "the stack is too deep");
        int cap = m->capstack ? m->capstack * 2 : 256;
        int32_t *s = realloc(m->stack, (size_t)cap * sizeof *s);
        if (!s) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", m->name);
        m->stack = s, m->capstack = cap;
    }
    m->stack[m->nstack++] = v;
    return MCNN_OK;
}

static mcnn_status push_new(machine *m, int kind, int *out)
{
    MCNN_TRY(new_value(m, kind, out));
    return push(m, *out);
}

/* The stack's items above the innermost mark belong to that mark: they cannot be popped. */
static int floor_of_stack(const machine *m) { return m->nmarks ? m->marks[m->nmarks - 1] : 0; }

static mcnn_status pop(machine *m, int32_t *v)
{
    if (m->nstack <= floor_of_stack(m)) return bad(m, "pop from an empty stack");
    *v = m->stack[--m->nstack];
    return MCNN_OK;
}

static mcnn_status top(machine *m, int32_t *v)
{
    if (m->nstack <= floor_of_stack(m)) return bad(m, "the stack is empty");
    *v = m->stack[m->nstack - 1];
    return MCNN_OK;
}

/* The items since the innermost mark: stack[*first .. nstack); the mark is removed. */
static mcnn_status pop_mark(machine *m, int *first)
{
    if (!m->nmarks) return bad(m, "no MARK to close");
    *first = m->marks[--m->nmarks];
    return MCNN_OK;
}

static mcnn_status memo_put(machine *m, uint64_t idx)
{
    int32_t v = 0;
    MCNN_TRY(top(m, &v));
    if (idx >= MAX_MEMO || idx > m->size)
        return bad(m, "memo index out of range (larger than the pickle could fill)");
    if (idx >= m->capmemo) {
        uint32_t cap = m->capmemo ? m->capmemo : 64;
        while (cap <= idx) cap *= 2;
        int32_t *memo = realloc(m->memo, (size_t)cap * sizeof *memo);
        if (!memo) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", m->name);
        for (uint32_t i = m->capmemo; i < cap; i++) memo[i] = -1;
        m->memo = memo, m->capmemo = cap;
    }
    if (m->memo[idx] < 0) m->nmemo++;
    m->memo[idx] = v;
    return MCNN_OK;
}

static mcnn_status memo_get(machine *m, uint64_t idx)
{
    if (idx >= m->capmemo || m->memo[idx] < 0) return bad(m, "memo lookup of an index never stored");
    return push(m, m->memo[idx]);
}

/* ---- reading the opcode stream ----------------------------------------------------------- */

static mcnn_status take(machine *m, size_t n, const unsigned char **at)
{
    if (n > m->size - m->pos) return truncated(m);
    *at = m->d + m->pos;
    m->pos += n;
    return MCNN_OK;
}

static uint64_t le(const unsigned char *b, int n)
{
    uint64_t v = 0;
    for (int i = n; i-- > 0;) v = v << 8 | b[i];
    return v;
}

static mcnn_status push_int(machine *m, int kind, int64_t i)
{
    int v = 0;
    MCNN_TRY(push_new(m, kind, &v));
    m->p->v[v].i = i;
    return MCNN_OK;
}

/* A string of n bytes (n read from lenbytes little-endian bytes). */
static mcnn_status push_string(machine *m, int lenbytes)
{
    const unsigned char *b = NULL;
    MCNN_TRY(take(m, (size_t)lenbytes, &b));
    uint64_t n = le(b, lenbytes);
    if (lenbytes == 4 && (n & 0x80000000u) && m->d[m->op_at] == 'T') return bad(m, "negative string length");
    if (n > m->size - m->pos) return truncated(m);
    int v = 0;
    MCNN_TRY(push_new(m, MCNN_PK_STR, &v));
    MCNN_TRY(take(m, (size_t)n, &b));
    return set_text(m, v, b, (size_t)n);
}

/* LONG1 / LONG4: little-endian two's complement of n bytes. */
static mcnn_status push_long(machine *m, int lenbytes)
{
    const unsigned char *b = NULL;
    MCNN_TRY(take(m, (size_t)lenbytes, &b));
    uint64_t n = le(b, lenbytes);
    if (n > 64) return bad(m, "an integer of more than 64 bytes");
    MCNN_TRY(take(m, (size_t)n, &b));
    if (n <= 8) {
        uint64_t u = le(b, (int)n);
        if (n > 0 && n < 8 && (b[n - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * n); /* sign-extend */
        return push_int(m, MCNN_PK_INT, (int64_t)u);
    }
    int v = 0;
    MCNN_TRY(push_new(m, MCNN_PK_BIGINT, &v));
    return set_text(m, v, b, (size_t)n);
}

/* ---- globals ----------------------------------------------------------------------------- */

static const struct {
    const char *name;
    mcnn_dtype dtype;
} storage_types[] = {
    {"FloatStorage", MCNN_DTYPE_F32}, {"HalfStorage", MCNN_DTYPE_F16},
    {"BFloat16Storage", MCNN_DTYPE_BF16}, {"DoubleStorage", MCNN_DTYPE_F64},
    {"LongStorage", MCNN_DTYPE_I64}, {"IntStorage", MCNN_DTYPE_I32},
    {"ShortStorage", MCNN_DTYPE_I16}, {"CharStorage", MCNN_DTYPE_I8},
    {"ByteStorage", MCNN_DTYPE_U8}, {"BoolStorage", MCNN_DTYPE_BOOL},
    {"UntypedStorage", MCNN_DTYPE_U8}, /* bytes */
}, dtypes[] = {
    {"float32", MCNN_DTYPE_F32}, {"float", MCNN_DTYPE_F32}, {"float16", MCNN_DTYPE_F16},
    {"half", MCNN_DTYPE_F16}, {"bfloat16", MCNN_DTYPE_BF16}, {"float64", MCNN_DTYPE_F64},
    {"double", MCNN_DTYPE_F64}, {"int64", MCNN_DTYPE_I64}, {"long", MCNN_DTYPE_I64},
    {"int32", MCNN_DTYPE_I32}, {"int", MCNN_DTYPE_I32}, {"int16", MCNN_DTYPE_I16},
    {"short", MCNN_DTYPE_I16}, {"int8", MCNN_DTYPE_I8}, {"uint8", MCNN_DTYPE_U8},
    {"bool", MCNN_DTYPE_BOOL},
};

/* Push the value a global names, or refuse it. */
static mcnn_status push_global(machine *m, const char *module, size_t mlen, const char *name, size_t nlen)
{
    char full[2 * MAX_GLOBAL_NAME + 2];
    if (mlen > MAX_GLOBAL_NAME || nlen > MAX_GLOBAL_NAME || memchr(module, 0, mlen) || memchr(name, 0, nlen))
        return bad(m, "a global with an over-long or malformed name");
    snprintf(full, sizeof full, "%.*s.%.*s", (int)mlen, module, (int)nlen, name);
    const char *dot = full + mlen + 1; /* the name part */
    int global = -1, dtype = -1, kind = MCNN_PK_GLOBAL;
    if (strcmp(full, "collections.OrderedDict") == 0) global = G_ORDERED_DICT;
    else if (strcmp(full, "torch._utils._rebuild_tensor_v2") == 0) global = G_REBUILD_TENSOR;
    else if (strcmp(full, "torch._utils._rebuild_parameter") == 0) global = G_REBUILD_PARAMETER;
    else if (strcmp(full, "torch._utils._rebuild_parameter_with_state") == 0)
        global = G_REBUILD_PARAMETER_STATE;
    else if (strcmp(full, "torch.jit._pickle.build_intlist") == 0 ||
             strcmp(full, "torch.jit._pickle.build_doublelist") == 0 ||
             strcmp(full, "torch.jit._pickle.build_boollist") == 0 ||
             strcmp(full, "torch.jit._pickle.build_tensorlist") == 0)
        global = G_JIT_TYPED_LIST;
    else if (strcmp(full, "torch.jit._pickle.restore_type_tag") == 0) global = G_JIT_TYPE_TAG;
    else if (strncmp(full, "__torch__.", 10) == 0 || (mlen == 9 && memcmp(module, "__torch__", 9) == 0))
        global = G_TORCH_CLASS;
    else if (strncmp(full, "torch.", 6) == 0 && (mlen == 5 || (mlen == 13 && memcmp(module, "torch.storage", 13) == 0))) {
        for (size_t i = 0; i < sizeof storage_types / sizeof storage_types[0]; i++)
            if (strcmp(dot, storage_types[i].name) == 0) global = G_STORAGE_TYPE, dtype = storage_types[i].dtype;
        for (size_t i = 0; mlen == 5 && i < sizeof dtypes / sizeof dtypes[0]; i++)
            if (strcmp(dot, dtypes[i].name) == 0) kind = MCNN_PK_DTYPE, global = 0, dtype = dtypes[i].dtype;
        if (global < 0 && nlen > 7 && strcmp(dot + nlen - 7, "Storage") == 0)
            return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: pickle byte %zu: tensors of type '%s' "
                                  "(complex or quantized) are not read", m->name, m->op_at, full);
    }
    if (global < 0)
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED,
                              "%s: pickle byte %zu: refusing the global '%s': a weights file may only "
                              "refer to tensors, storages, OrderedDict and TorchScript classes (a pickle "
                              "naming anything else could run code when Python loads it)",
                              m->name, m->op_at, full);
    int v = 0;
    MCNN_TRY(push_new(m, kind, &v));
    m->p->v[v].global = (uint8_t)global;
    m->p->v[v].dtype = (uint8_t)(dtype < 0 ? 0 : dtype);
    return set_text(m, v, full, strlen(full));
}

/* GLOBAL: "module\nname\n" */
static mcnn_status op_global(machine *m)
{
    const char *s = (const char *)m->d + m->pos;
    size_t avail = m->size - m->pos;
    const char *nl1 = memchr(s, '\n', avail < MAX_GLOBAL_NAME + 1 ? avail : MAX_GLOBAL_NAME + 1);
    if (!nl1) return avail <= MAX_GLOBAL_NAME ? truncated(m) : bad(m, "an over-long global name");
    size_t rest = avail - (size_t)(nl1 + 1 - s);
    const char *nl2 = memchr(nl1 + 1, '\n', rest < MAX_GLOBAL_NAME + 1 ? rest : MAX_GLOBAL_NAME + 1);
    if (!nl2) return rest <= MAX_GLOBAL_NAME ? truncated(m) : bad(m, "an over-long global name");
    m->pos += (size_t)(nl2 + 1 - s);
    return push_global(m, s, (size_t)(nl1 - s), nl1 + 1, (size_t)(nl2 - nl1 - 1));
}

static mcnn_status op_stack_global(machine *m)
{
    int32_t name = 0, module = 0;
    MCNN_TRY(pop(m, &name));
    MCNN_TRY(pop(m, &module));
    const mcnn_pk_value *n = &m->p->v[name], *mo = &m->p->v[module];
    if (n->kind != MCNN_PK_STR || mo->kind != MCNN_PK_STR) return bad(m, "STACK_GLOBAL of non-strings");
    return push_global(m, m->p->text + mo->text, mo->len, m->p->text + n->text, n->len);
}

/* ---- what the allowed globals build -------------------------------------------------------- */

static int is_int(const mcnn_pk_value *v) { return v->kind == MCNN_PK_INT || v->kind == MCNN_PK_BOOL; }

/* A tuple of ints into out[] (at most MCNN_PK_MAX_DIMS, each >= 0). */
static mcnn_status int_tuple(machine *m, int v, int64_t *out, int *n, const char *what)
{
    const mcnn_pk_value *t = &m->p->v[v];
    if (t->kind != MCNN_PK_TUPLE && t->kind != MCNN_PK_LIST)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: pickle byte %zu: a tensor's %s is not a tuple",
                              m->name, m->op_at, what);
    if (t->n > MCNN_PK_MAX_DIMS)
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: pickle byte %zu: a tensor with %u dimensions "
                              "(at most %d)", m->name, m->op_at, t->n, MCNN_PK_MAX_DIMS);
    for (uint32_t k = 0; k < t->n; k++) {
        const mcnn_pk_value *x = &m->p->v[t->items[k]];
        if (!is_int(x) || x->i < 0 || x->i > ((int64_t)1 << 48))
            return mcnn_set_error(MCNN_ERR_FORMAT, "%s: pickle byte %zu: a tensor's %s[%u] is not a "
                                  "non-negative integer below 2^48", m->name, m->op_at, what, k);
        out[k] = x->i;
    }
    *n = (int)t->n;
    return MCNN_OK;
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) */
static mcnn_status rebuild_tensor(machine *m, const mcnn_pk_value *args, int *out)
{
    if (args->n != 6 && args->n != 7) return bad(m, "_rebuild_tensor_v2 with other than 6 or 7 arguments");
    const mcnn_pk_value *st = &m->p->v[args->items[0]], *off = &m->p->v[args->items[1]];
    if (st->kind != MCNN_PK_STORAGE) return bad(m, "_rebuild_tensor_v2 of something that is not a storage");
    if (!is_int(off) || off->i < 0 || off->i > ((int64_t)1 << 48)) return bad(m, "a tensor's storage offset is not a non-negative integer");
    mcnn_pk_tensor t = {.storage = args->items[0], .offset = off->i};
    int nstride;
    MCNN_TRY(int_tuple(m, args->items[2], t.size, &t.ndim, "size"));
    MCNN_TRY(int_tuple(m, args->items[3], t.stride, &nstride, "stride"));
    if (nstride != t.ndim) return bad(m, "a tensor's size and stride differ in length");
    /* the last element it reaches must lie inside the storage: all values < 2^48 and at most
     * 8 dimensions, so the sum cannot overflow 64 bits except through size*stride - checked */
    uint64_t last = (uint64_t)t.offset, numel = 1;
    int overflow = 0;
    for (int d = 0; d < t.ndim; d++) {
        numel = mcnn_mul_size(numel, (size_t)t.size[d], &overflow);
        if (t.size[d] > 0) last += mcnn_mul_size((size_t)(t.size[d] - 1), (size_t)t.stride[d], &overflow);
    }
    if (overflow || last < (uint64_t)t.offset) return bad(m, "a tensor's size overflows");
    if (numel > 0 && last >= (uint64_t)st->i)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: pickle byte %zu: a tensor view reaches element %llu "
                              "of a storage of %lld elements", m->name, m->op_at,
                              (unsigned long long)last, (long long)st->i);
    mcnn_pickle *p = m->p;
    if (p->nt == p->capt) {
        int cap = p->capt ? p->capt * 2 : 64;
        mcnn_pk_tensor *tt = realloc(p->tensors, (size_t)cap * sizeof *tt);
        if (!tt) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", m->name);
        p->tensors = tt, p->capt = cap;
    }
    p->tensors[p->nt] = t;
    MCNN_TRY(new_value(m, MCNN_PK_TENSOR, out));
    p->v[*out].i = p->nt++;
    return MCNN_OK;
}

static mcnn_status op_reduce(machine *m)
{
    int32_t fn = 0, args = 0, out = -1;
    MCNN_TRY(pop(m, &args));
    MCNN_TRY(pop(m, &fn));
    const mcnn_pk_value *f = &m->p->v[fn], *a = &m->p->v[args];
    if (a->kind != MCNN_PK_TUPLE) return bad(m, "REDUCE with arguments that are not a tuple");
    if (f->kind != MCNN_PK_GLOBAL) return bad(m, "REDUCE of something that is not a global");
    switch (f->global) {
    case G_ORDERED_DICT:
        if (a->n != 0) return bad(m, "OrderedDict built from arguments");
        MCNN_TRY(new_value(m, MCNN_PK_DICT, &out));
        break;
    case G_REBUILD_TENSOR: MCNN_TRY(rebuild_tensor(m, a, &out)); break;
    case G_REBUILD_PARAMETER:
    case G_REBUILD_PARAMETER_STATE:
        if (a->n != (f->global == G_REBUILD_PARAMETER ? 3u : 4u) || m->p->v[a->items[0]].kind != MCNN_PK_TENSOR)
            return bad(m, "_rebuild_parameter of something that is not a tensor");
        out = a->items[0];
        break;
    case G_JIT_TYPED_LIST:
        if (a->n != 1 || m->p->v[a->items[0]].kind != MCNN_PK_LIST)
            return bad(m, "a TorchScript typed list built from something that is not a list");
        out = a->items[0];
        break;
    case G_JIT_TYPE_TAG:
        if (a->n != 2 || m->p->v[a->items[1]].kind != MCNN_PK_STR)
            return bad(m, "restore_type_tag without a type string");
        out = a->items[0];
        break;
    default:
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: pickle byte %zu: '%s' cannot be called here",
                              m->name, m->op_at, m->p->text + f->text);
    }
    return push(m, out);
}

/* NEWOBJ(cls, args): only TorchScript classes, which become empty attribute bags. */
static mcnn_status op_newobj(machine *m, int with_kwargs)
{
    int32_t cls = 0, args = 0, kwargs = 0, v = 0;
    if (with_kwargs) MCNN_TRY(pop(m, &kwargs));
    MCNN_TRY(pop(m, &args));
    MCNN_TRY(pop(m, &cls));
    const mcnn_pk_value *c = &m->p->v[cls];
    if (c->kind != MCNN_PK_GLOBAL || c->global != G_TORCH_CLASS)
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: pickle byte %zu: NEWOBJ of '%s', which is not a "
                              "TorchScript class", m->name, m->op_at,
                              c->kind == MCNN_PK_GLOBAL ? m->p->text + c->text : "a non-global");
    MCNN_TRY(push_new(m, MCNN_PK_OBJECT, &v));
    return set_text(m, v, m->p->text + m->p->v[cls].text, m->p->v[cls].len);
}

/* BUILD(obj, state): a TorchScript object keeps its state; an OrderedDict's attributes (the
 * state dict's _metadata) and a parameter's state are dropped. */
static mcnn_status op_build(machine *m)
{
    int32_t state = 0, obj = 0;
    MCNN_TRY(pop(m, &state));
    MCNN_TRY(top(m, &obj));
    mcnn_pk_value *o = &m->p->v[obj];
    if (o->kind == MCNN_PK_OBJECT) {
        o->n = 0;
        return add_item(m, obj, state);
    }
    if (o->kind == MCNN_PK_DICT || o->kind == MCNN_PK_TENSOR) return MCNN_OK;
    return bad(m, "BUILD on a value that is not an object");
}

/* BINPERSID: ('storage', storage type, key, location, element count[, view metadata]) */
static mcnn_status op_persid(machine *m)
{
    int32_t pid = 0, v = 0;
    MCNN_TRY(pop(m, &pid));
    const mcnn_pk_value *t = &m->p->v[pid];
    if (t->kind != MCNN_PK_TUPLE || (t->n != 5 && t->n != 6))
        return bad(m, "a persistent id that is not a 5- or 6-tuple");
    const mcnn_pk_value *tag = &m->p->v[t->items[0]], *type = &m->p->v[t->items[1]],
                        *key = &m->p->v[t->items[2]], *loc = &m->p->v[t->items[3]],
                        *count = &m->p->v[t->items[4]];
    if (tag->kind != MCNN_PK_STR || strcmp(m->p->text + tag->text, "storage") != 0)
        return bad(m, "a persistent id other than 'storage'");
    if (type->kind != MCNN_PK_GLOBAL || type->global != G_STORAGE_TYPE)
        return bad(m, "a storage whose type is not a torch storage type");
    if (key->kind != MCNN_PK_STR || key->len == 0 || key->len > 64 || strlen(m->p->text + key->text) != key->len)
        return bad(m, "a storage key that is not a short string");
    if (loc->kind != MCNN_PK_STR) return bad(m, "a storage location that is not a string");
    if (!is_int(count) || count->i < 0 || count->i > ((int64_t)1 << 48))
        return bad(m, "a storage size that is not a non-negative integer");
    if (t->n == 6 && m->p->v[t->items[5]].kind != MCNN_PK_NONE)
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: pickle byte %zu: storage views (files written "
                              "by PyTorch before 0.4) are not read", m->name, m->op_at);
    int64_t n = count->i;
    uint8_t dtype = type->dtype;
    size_t ktext = key->text, klen = key->len;
    MCNN_TRY(push_new(m, MCNN_PK_STORAGE, &v));
    m->p->v[v].i = n;
    m->p->v[v].dtype = dtype;
    m->p->v[v].text = ktext, m->p->v[v].len = klen; /* shares the key's text */
    return MCNN_OK;
}

/* ---- containers -------------------------------------------------------------------------- */

/* TUPLE, LIST, DICT: a new container of the items since the mark. */
static mcnn_status op_collect(machine *m, int kind)
{
    int first = 0, v = 0;
    MCNN_TRY(pop_mark(m, &first));
    if (kind == MCNN_PK_DICT && (m->nstack - first) % 2) return bad(m, "DICT with an odd number of items");
    MCNN_TRY(new_value(m, kind, &v));
    for (int k = first; k < m->nstack; k++) MCNN_TRY(add_item(m, v, m->stack[k]));
    m->nstack = first;
    return push(m, v);
}

static mcnn_status op_tuple_n(machine *m, int n)
{
    int v = 0;
    if (m->nstack - floor_of_stack(m) < n) return bad(m, "TUPLE of more items than the stack holds");
    MCNN_TRY(new_value(m, MCNN_PK_TUPLE, &v));
    for (int k = m->nstack - n; k < m->nstack; k++) MCNN_TRY(add_item(m, v, m->stack[k]));
    m->nstack -= n;
    return push(m, v);
}

/* APPENDS / SETITEMS: the items since the mark go into the container below it. */
static mcnn_status op_extend(machine *m, int kind)
{
    int first = 0;
    MCNN_TRY(pop_mark(m, &first));
    if (first <= floor_of_stack(m)) return bad(m, "APPENDS/SETITEMS with nothing to add to");
    int target = m->stack[first - 1];
    if (m->p->v[target].kind != kind)
        return bad(m, kind == MCNN_PK_LIST ? "APPENDS to something not a list" : "SETITEMS on something not a dict");
    if (kind == MCNN_PK_DICT && (m->nstack - first) % 2) return bad(m, "SETITEMS with an odd number of items");
    for (int k = first; k < m->nstack; k++) MCNN_TRY(add_item(m, target, m->stack[k]));
    m->nstack = first;
    return MCNN_OK;
}

/* APPEND / SETITEM: n items (1 or 2) off the stack into the container below them. */
static mcnn_status op_add(machine *m, int kind, int n)
{
    if (m->nstack - floor_of_stack(m) < n + 1) return bad(m, "APPEND/SETITEM on a short stack");
    int target = m->stack[m->nstack - n - 1];
    if (m->p->v[target].kind != kind)
        return bad(m, kind == MCNN_PK_LIST ? "APPEND to something not a list" : "SETITEM on something not a dict");
    for (int k = m->nstack - n; k < m->nstack; k++) MCNN_TRY(add_item(m, target, m->stack[k]));
    m->nstack -= n;
    return MCNN_OK;
}

/* ---- the loop ---------------------------------------------------------------------------- */

static const char *opcode_name(int op)
{
    switch (op) {
    case 'I': return "INT (protocol 0)";
    case 'L': return "LONG (protocol 0)";
    case 'F': return "FLOAT (protocol 0)";
    case 'S': return "STRING (protocol 0)";
    case 'V': return "UNICODE (protocol 0)";
    case 'P': return "PERSID (protocol 0)";
    case 'g': return "GET (protocol 0)";
    case 'p': return "PUT (protocol 0)";
    case 'i': return "INST";
    case 'o': return "OBJ";
    case 0x82: case 0x83: case 0x84: return "EXT";
    case 0x8f: case 0x90: case 0x91: return "a set";
    case 0x97: case 0x98: return "an out-of-band buffer";
    default: return NULL;
    }
}

static mcnn_status step(machine *m, int *stop)
{
    const unsigned char *b = NULL;
    m->op_at = m->pos;
    MCNN_TRY(take(m, 1, &b));
    int op = b[0], v = 0;
    switch (op) {
    case 0x80: /* PROTO */
        MCNN_TRY(take(m, 1, &b));
        if (b[0] < 2 || b[0] > 5) {
            char msg[64];
            snprintf(msg, sizeof msg, "pickle protocol %d (2 to 5 are read)", b[0]);
            return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: pickle byte %zu: %s", m->name, m->op_at, msg);
        }
        return MCNN_OK;
    case 0x95: return take(m, 8, &b); /* FRAME: a size hint */
    case '.': *stop = 1; return MCNN_OK;
    case '(':
        if (m->nmarks == MAX_MARKS) return bad(m, "MARKs nested too deeply");
        m->marks[m->nmarks++] = m->nstack;
        return MCNN_OK;
    case '0': /* POP: the top item, or an empty mark */
        if (m->nstack > floor_of_stack(m)) m->nstack--;
        else if (m->nmarks) m->nmarks--;
        else return bad(m, "POP from an empty stack");
        return MCNN_OK;
    case '1': { int first = 0; MCNN_TRY(pop_mark(m, &first)); m->nstack = first; return MCNN_OK; }
    case '2': { int32_t t = 0; MCNN_TRY(top(m, &t)); return push(m, t); }
    case 'N': return push_new(m, MCNN_PK_NONE, &v);
    case 0x88: return push_int(m, MCNN_PK_BOOL, 1);
    case 0x89: return push_int(m, MCNN_PK_BOOL, 0);
    case 'J': MCNN_TRY(take(m, 4, &b)); return push_int(m, MCNN_PK_INT, (int32_t)(uint32_t)le(b, 4));
    case 'K': MCNN_TRY(take(m, 1, &b)); return push_int(m, MCNN_PK_INT, b[0]);
    case 'M': MCNN_TRY(take(m, 2, &b)); return push_int(m, MCNN_PK_INT, (int64_t)le(b, 2));
    case 0x8a: return push_long(m, 1);
    case 0x8b: return push_long(m, 4);
    case 'G': { /* BINFLOAT: big-endian double */
        MCNN_TRY(take(m, 8, &b));
        uint64_t u = 0;
        for (int k = 0; k < 8; k++) u = u << 8 | b[k];
        MCNN_TRY(push_new(m, MCNN_PK_FLOAT, &v));
        memcpy(&m->p->v[v].f, &u, 8);
        return MCNN_OK;
    }
    case 'X': case 'B': case 'T': return push_string(m, 4); /* BINUNICODE, BINBYTES, BINSTRING */
    case 0x8c: case 'C': case 'U': return push_string(m, 1);
    case 0x8d: case 0x8e: case 0x96: return push_string(m, 8);
    case ']': return push_new(m, MCNN_PK_LIST, &v);
    case ')': return push_new(m, MCNN_PK_TUPLE, &v);
    case '}': return push_new(m, MCNN_PK_DICT, &v);
    case 'l': return op_collect(m, MCNN_PK_LIST);
    case 't': return op_collect(m, MCNN_PK_TUPLE);
    case 'd': return op_collect(m, MCNN_PK_DICT);
    case 0x85: case 0x86: case 0x87: return op_tuple_n(m, op - 0x84);
    case 'a': return op_add(m, MCNN_PK_LIST, 1);
    case 's': return op_add(m, MCNN_PK_DICT, 2);
    case 'e': return op_extend(m, MCNN_PK_LIST);
    case 'u': return op_extend(m, MCNN_PK_DICT);
    case 'h': MCNN_TRY(take(m, 1, &b)); return memo_get(m, b[0]);
    case 'j': MCNN_TRY(take(m, 4, &b)); return memo_get(m, le(b, 4));
    case 'q': MCNN_TRY(take(m, 1, &b)); return memo_put(m, b[0]);
    case 'r': MCNN_TRY(take(m, 4, &b)); return memo_put(m, le(b, 4));
    case 0x94: return memo_put(m, m->nmemo);
    case 'c': return op_global(m);
    case 0x93: return op_stack_global(m);
    case 'R': return op_reduce(m);
    case 0x81: return op_newobj(m, 0);
    case 0x92: return op_newobj(m, 1);
    case 'b': return op_build(m);
    case 'Q': return op_persid(m);
    default: {
        const char *what = opcode_name(op);
        if (what)
            return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: pickle byte %zu: opcode %s is not read",
                                  m->name, m->op_at, what);
        char msg[48];
        snprintf(msg, sizeof msg, "unknown opcode 0x%02x", op);
        return bad(m, msg);
    }
    }
}

mcnn_status mcnn_pickle_load(mcnn_pickle *p, const unsigned char *data, size_t size, size_t *consumed,
                             const char *name)
{
    memset(p, 0, sizeof *p);
    p->root = -1;
    machine m = {.p = p, .d = data, .size = size, .name = name};
    mcnn_status s = MCNN_OK;
    int stop = 0;
    while (s == MCNN_OK && !stop) s = step(&m, &stop);
    *consumed = m.pos;
    if (s == MCNN_OK) {
        if (m.nstack != 1 || m.nmarks) s = bad(&m, "STOP leaves other than one value on the stack");
        else p->root = m.stack[0];
    } else if (m.ran_out) {
        *consumed = size + 1; /* may have run out of data: the caller can retry with more */
    }
    free(m.stack);
    free(m.memo);
    if (s != MCNN_OK) mcnn_pickle_free(p);
    return s;
}

void mcnn_pickle_free(mcnn_pickle *p)
{
    for (int i = 0; i < p->nv; i++) free(p->v[i].items);
    free(p->v);
    free(p->text);
    free(p->tensors);
    memset(p, 0, sizeof *p);
    p->root = -1;
}
