"""libmcnn from Python: ctypes over libmcnn.so, the standard library only.

    import libmcnn
    with libmcnn.Classifier("weights/demo-fashion-resnet.safetensors") as model:
        for label, score in model.classify("weights/samples/0002-trouser.png", k=3):
            print(label, score)

What it wraps (docs/python.md has the whole API):
  Image       mcnn_image_load / mcnn_image_decode: a decoded 8-bit image
  Classifier  a checkpoint from mcnn-train, or any torchvision/timm ResNet or ViT checkpoint
              mcnn_classifier_load accepts: preprocess, logits, scores, classify, embeddings
  Tokenizer   CLIP's BPE (bpe_simple_vocab_16e6.txt.gz): encode, tokenize, decode
  Clip        an OpenAI / OpenCLIP / Hugging Face CLIP: preprocess, encode_image, encode_text,
              image_embeddings, text_embeddings, classify (zero-shot)
  Error       every failing call raises it, with the status and mcnn_last_error()'s message

Numbers come back as Floats: a flat array.array('f') with a shape, whose values are the
library's float32s bit for bit.  numpy is optional: numpy.asarray(floats) works when it is
installed, and every function taking float input accepts any C-contiguous float32 buffer
(array.array('f'), numpy.float32 arrays, memoryviews of format 'f').

Which libmcnn.so is loaded, first found wins:
  1. the path given to libmcnn.load_library(path) before anything else is called;
  2. the environment variable MCNN_LIB (a path to libmcnn.so);
  3. the installed library: ctypes.util.find_library("mcnn"), then the SONAME libmcnn.so.0
     through the loader's search path (LD_LIBRARY_PATH, ldconfig's cache, /usr/lib...);
  4. the repository's own build: build/libmcnn.so two folders above this file.
Objects own C handles: close() frees them, as do `with` blocks and, as a last resort, garbage
collection.  A handle is not for two threads at once (a model keeps its activations).
"""

import array
import ctypes
import ctypes.util
import os

__all__ = ["Error", "Floats", "Image", "Classifier", "Tokenizer", "Clip", "load_library",
           "version"]

_STATUS_NAMES = ["MCNN_OK", "MCNN_ERR_NOMEM", "MCNN_ERR_IO", "MCNN_ERR_FORMAT", "MCNN_ERR_SHAPE",
                 "MCNN_ERR_ARG", "MCNN_ERR_NOT_FOUND", "MCNN_ERR_UNSUPPORTED"]


class Error(Exception):
    """A libmcnn call failed: status (an int, mcnn_status), status_name ("MCNN_ERR_IO") and
    message (mcnn_last_error(): which file, which tensor, what is wrong)."""

    def __init__(self, status, message):
        self.status = status
        self.status_name = (_STATUS_NAMES[status] if 0 <= status < len(_STATUS_NAMES)
                            else "status %d" % status)
        self.message = message
        super().__init__("%s (%s)" % (message, self.status_name))


# ---- the C types --------------------------------------------------------------------------
_int, _float, _p = ctypes.c_int, ctypes.c_float, ctypes.c_void_p
_fptr = ctypes.POINTER(ctypes.c_float)
_iptr = ctypes.POINTER(ctypes.c_int32)


class _Image(ctypes.Structure):
    _fields_ = [("width", _int), ("height", _int), ("channels", _int),
                ("pixels", ctypes.POINTER(ctypes.c_ubyte))]


# The load options mirror the C structs field for field: the library reads every field.
class _ClassifierLoadOptions(ctypes.Structure):
    _fields_ = [("num_classes", _int), ("image_size", _int), ("seed", ctypes.c_uint64),
                ("precision", _int), ("inference_only", _int)]


class _ClipConfig(ctypes.Structure):
    _fields_ = [(name, _int) for name in (
        "embed_dim", "image_size", "patch_size", "vision_width", "vision_layers", "vision_heads",
        "context_length", "vocab_size", "text_width", "text_layers", "text_heads")] + [
        ("ln_eps", ctypes.c_float)]


class _ClipLoadOptions(ctypes.Structure):
    _fields_ = [("vision_heads", _int), ("text_heads", _int), ("precision", _int),
                ("inference_only", _int)]


class _VitConfig(ctypes.Structure):
    _fields_ = [(name, _int) for name in ("image_size", "patch_size", "in_channels", "width",
                                          "layers", "heads", "mlp_dim", "num_classes")] + \
               [("ln_eps", _float)]


_ARCH_RESNET, _ARCH_VIT = 0, 1
_S = _int  # mcnn_status

# name: (restype, argtypes); every function the binding calls, checked when the library loads.
_PROTOTYPES = {
    "mcnn_version": (ctypes.c_char_p, []),
    "mcnn_last_error": (ctypes.c_char_p, []),
    "mcnn_clear_error": (None, []),
    "mcnn_set_threads": (None, [_int]),
    "mcnn_get_threads": (_int, []),
    "mcnn_image_load": (_S, [ctypes.POINTER(_Image), ctypes.c_char_p]),
    "mcnn_image_decode": (_S, [ctypes.POINTER(_Image), ctypes.c_char_p, ctypes.c_size_t,
                               ctypes.c_char_p]),
    "mcnn_image_free": (None, [ctypes.POINTER(_Image)]),
    "mcnn_precision_parse": (_S, [ctypes.c_char_p, ctypes.POINTER(_int)]),
    "mcnn_classifier_load": (_S, [ctypes.POINTER(_p), ctypes.c_char_p,
                                  ctypes.POINTER(_ClassifierLoadOptions)]),
    "mcnn_classifier_free": (None, [_p]),
    "mcnn_classifier_arch": (_int, [_p]),
    "mcnn_classifier_arch_name": (ctypes.c_char_p, [_p]),
    "mcnn_classifier_num_classes": (_int, [_p]),
    "mcnn_classifier_image_size": (_int, [_p]),
    "mcnn_classifier_in_channels": (_int, [_p]),
    "mcnn_classifier_label": (ctypes.c_char_p, [_p, _int]),
    "mcnn_classifier_multilabel": (_int, [_p]),
    "mcnn_classifier_set_multilabel": (None, [_p, _int]),
    "mcnn_classifier_input_shape": (None, [_p] + [ctypes.POINTER(_int)] * 3),
    "mcnn_classifier_preprocess_image": (_S, [_p, ctypes.POINTER(_Image), _fptr]),
    "mcnn_classifier_scores": (_S, [_p, _fptr, _fptr, _int]),
    "mcnn_topk": (None, [ctypes.POINTER(_int), _fptr, _int, _int]),
    "mcnn_classifier_model": (_p, [_p]),
    "mcnn_classifier_forward": (_S, [_p, _fptr, _fptr, _int, _int]),
    "mcnn_resnet_feature_dim": (_int, [_p]),
    "mcnn_resnet_features": (_fptr, [_p]),
    "mcnn_vit_get_config": (ctypes.POINTER(_VitConfig), [_p]),
    "mcnn_vit_features": (_fptr, [_p]),
    "mcnn_tokenizer_load": (_S, [ctypes.POINTER(_p), ctypes.c_char_p]),
    "mcnn_tokenizer_free": (None, [_p]),
    "mcnn_free": (None, [_p]),
    "mcnn_tokenizer_vocab_size": (_int, [_p]),
    "mcnn_tokenizer_encode": (_S, [_p, ctypes.c_char_p, _iptr, _int, ctypes.POINTER(_int)]),
    "mcnn_tokenizer_tokenize": (_S, [_p, ctypes.c_char_p, _iptr, _int, _int,
                                     ctypes.POINTER(_int)]),
    "mcnn_tokenizer_decode": (_S, [_p, _iptr, _int, ctypes.POINTER(_p)]),
    "mcnn_clip_load": (_S, [ctypes.POINTER(_p), ctypes.c_char_p,
                            ctypes.POINTER(_ClipLoadOptions)]),
    "mcnn_clip_free": (None, [_p]),
    "mcnn_clip_get_config": (ctypes.POINTER(_ClipConfig), [_p]),
    "mcnn_clip_logit_scale": (_float, [_p]),
    "mcnn_clip_input_shape": (None, [_p] + [ctypes.POINTER(_int)] * 3),
    "mcnn_clip_preprocess_image": (_S, [_p, ctypes.POINTER(_Image), _fptr]),
    "mcnn_clip_encode_image": (_S, [_p, _fptr, _fptr, _int]),
    "mcnn_clip_encode_text": (_S, [_p, _fptr, _iptr, _int]),
    "mcnn_clip_image_embeddings": (_S, [_p, _fptr, _fptr, _int]),
    "mcnn_clip_text_embeddings": (_S, [_p, _p, _fptr, ctypes.POINTER(ctypes.c_char_p), _int,
                                       ctypes.POINTER(ctypes.c_char_p), _int]),
    "mcnn_clip_zeroshot_scores": (None, [_fptr, _fptr, _fptr, _int, _int, _int, _float]),
}

_lib = None


def _candidates(path):
    if path:
        yield path
    if os.environ.get("MCNN_LIB"):
        yield os.environ["MCNN_LIB"]
    found = ctypes.util.find_library("mcnn")
    if found:
        yield found
    yield "libmcnn.so.0"
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.join(here, os.pardir, os.pardir, "build", "libmcnn.so")


def load_library(path=None):
    """Load libmcnn.so (the search order is in the module's docstring) and return the ctypes
    handle; later calls return the same one.  OSError when none loads."""
    global _lib
    if _lib is not None:
        return _lib
    tried = []
    for candidate in _candidates(path):
        try:
            lib = ctypes.CDLL(candidate)
        except OSError as e:
            tried.append("%s: %s" % (candidate, e))
            if candidate == path:  # an explicit path that does not load is an error, not a miss
                break
            continue
        for name, (restype, argtypes) in _PROTOTYPES.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, argtypes
        _lib = lib
        return lib
    raise OSError("libmcnn.so not found; tried:\n  " + "\n  ".join(tried))


def _c():
    return _lib if _lib is not None else load_library()


def _check(status):
    if status != 0:
        raise Error(status, _c().mcnn_last_error().decode("utf-8", "replace"))


def _path(p):
    return os.fsencode(p)


def version():
    """The library's "MAJOR.MINOR.PATCH"."""
    return _c().mcnn_version().decode()


def set_threads(n):
    """OpenMP threads for the library's loops (n <= 0: OpenMP's default)."""
    _c().mcnn_set_threads(n)


# ---- float arrays in and out ----------------------------------------------------------------
def _precision(name):
    """The mcnn_precision of "fp32", "bf16" or "int8" (mcnn_precision_parse: Error otherwise)."""
    value = _int()
    _check(_c().mcnn_precision_parse(str(name).encode(), ctypes.byref(value)))
    return value.value


def _prod(shape):
    n = 1
    for d in shape:
        n *= d
    return n


class Floats:
    """float32 values with a shape (outermost first): data is a flat array.array('f').
    Indexing the first axis gives a row (a Floats, or a float for one axis); tolist() nests
    lists; numpy.asarray(floats) gives an array of the shape without copying."""

    def __init__(self, shape, data=None):
        self.shape = tuple(shape)
        self.data = data if data is not None else array.array("f", bytes(4 * _prod(shape)))
        if len(self.data) != _prod(self.shape):
            raise ValueError("%d values do not make shape %s" % (len(self.data), self.shape))

    def _pointer(self):
        return (ctypes.c_float * len(self.data)).from_buffer(self.data)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, i):
        if len(self.shape) == 1:
            return self.data[i]
        if i < 0:
            i += self.shape[0]
        if not 0 <= i < self.shape[0]:
            raise IndexError(i)
        row = _prod(self.shape[1:])
        return Floats(self.shape[1:], self.data[i * row:(i + 1) * row])

    def tolist(self):
        if len(self.shape) == 1:
            return self.data.tolist()
        return [self[i].tolist() for i in range(self.shape[0])]

    def tobytes(self):
        return self.data.tobytes()

    def memoryview(self):
        return memoryview(self.data).cast("B").cast("f", self.shape)

    def __array__(self, dtype=None, copy=None):
        import numpy  # only when the caller already uses numpy
        a = numpy.frombuffer(self.data, dtype=numpy.float32).reshape(self.shape)
        return a if dtype is None else a.astype(dtype)

    def __repr__(self):
        return "Floats(shape=%s)" % (self.shape,)


def _float_input(x, count):
    """A ctypes float array over x (a Floats or any C-contiguous float32 buffer) of count values;
    read-only buffers are copied."""
    if isinstance(x, Floats):
        x = x.data
    view = memoryview(x)
    if view.format not in ("f", "<f", "=f") or view.itemsize != 4:
        raise TypeError("float32 input expected, got format %r" % view.format)
    if not view.c_contiguous:
        raise TypeError("the input must be C-contiguous")
    if view.nbytes != 4 * count:
        raise ValueError("%d floats expected, got %d" % (count, view.nbytes // 4))
    raw = view.cast("B")
    kind = ctypes.c_float * count
    return kind.from_buffer_copy(raw) if view.readonly else kind.from_buffer(raw)


# ---- images -----------------------------------------------------------------------------
class _Handle:
    """A C handle freed exactly once: by close(), at the end of a with block or when collected."""
    _free = None

    def close(self):
        handle, self._handle = getattr(self, "_handle", None), None
        if handle and _lib is not None:
            getattr(_lib, self._free)(handle)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    def _live(self):
        if not self._handle:
            raise ValueError("%s is closed" % type(self).__name__)
        return self._handle


class Image(_Handle):
    """A decoded image (PNG, JPEG, PPM/PGM; by content): width, height, channels (1 or 3) and
    pixels (bytes, row-major HWC).  Image(path) or Image.decode(data, name)."""

    def __init__(self, path=None):
        self._img = _Image()
        self._handle = None
        if path is not None:
            _check(_c().mcnn_image_load(ctypes.byref(self._img), _path(path)))
            self._handle = ctypes.pointer(self._img)

    @classmethod
    def decode(cls, data, name="<bytes>"):
        img = cls()
        data = bytes(data)
        _check(_c().mcnn_image_decode(ctypes.byref(img._img), data, len(data), name.encode()))
        img._handle = ctypes.pointer(img._img)
        return img

    def close(self):
        handle, self._handle = getattr(self, "_handle", None), None
        if handle and _lib is not None:
            _lib.mcnn_image_free(handle)

    width = property(lambda self: self._img.width)
    height = property(lambda self: self._img.height)
    channels = property(lambda self: self._img.channels)

    @property
    def pixels(self):
        self._live()
        return ctypes.string_at(self._img.pixels, self.width * self.height * self.channels)


def _preprocess(model, image, input_shape, preprocess_image):
    """A model's own preprocessing (mcnn_*_input_shape, mcnn_*_preprocess_image) of an Image or
    a path: Floats (C, H, W)."""
    if not isinstance(image, Image):
        with Image(image) as img:
            return _preprocess(model, img, input_shape, preprocess_image)
    c, h, w = _int(), _int(), _int()
    input_shape(model, ctypes.byref(c), ctypes.byref(h), ctypes.byref(w))
    out = Floats((c.value, h.value, w.value))
    _check(preprocess_image(model, image._live(), out._pointer()))
    return out


def _batch(model, images, shape):
    """images: one image (path or Image), a list of them, or already preprocessed float32 of
    shape (B,) + shape; gives (B, a ctypes float array)."""
    if isinstance(images, (str, bytes, os.PathLike, Image)):
        images = [images]
    if isinstance(images, (list, tuple)) and all(
            isinstance(i, (str, bytes, os.PathLike, Image)) for i in images):
        data = array.array("f")
        for image in images:
            data.extend(model.preprocess(image).data)
        images = data
    n = memoryview(images.data if isinstance(images, Floats) else images).nbytes // 4
    per = _prod(shape)
    if n == 0 or n % per:
        raise ValueError("images of shape %s expected, got %d floats" % (shape, n))
    return n // per, _float_input(images, n)


# ---- classifiers -----------------------------------------------------------------------------
class Classifier(_Handle):
    """A ResNet or ViT classifier (mcnn_classifier_load): a checkpoint from mcnn-train, or
    torchvision's / timm's weights.  labels, arch, num_classes, image_size, in_channels,
    multilabel; preprocess, logits, scores, classify, embeddings.  precision "fp32", "bf16"
    or "int8" loads the model for inference only in that precision (docs/precision.md: its
    fp32 copies of the packed weights never kept); None, the default: fp32 as trained."""
    _free = "mcnn_classifier_free"

    def __init__(self, path, precision=None):
        handle = _p()
        # no options unless asked for: the library's defaults need no struct mirrored here
        options = (ctypes.byref(_ClassifierLoadOptions(0, 0, 0, _precision(precision), 1))
                   if precision is not None else None)
        self.precision = "fp32" if precision is None else str(precision)
        _check(_c().mcnn_classifier_load(ctypes.byref(handle), _path(path), options))
        self._handle = handle.value
        lib = _c()
        self.arch = lib.mcnn_classifier_arch_name(self._handle).decode()
        self.num_classes = lib.mcnn_classifier_num_classes(self._handle)
        self.image_size = lib.mcnn_classifier_image_size(self._handle)
        self.in_channels = lib.mcnn_classifier_in_channels(self._handle)
        self.multilabel = bool(lib.mcnn_classifier_multilabel(self._handle))
        self.labels = [lib.mcnn_classifier_label(self._handle, k).decode("utf-8")
                       for k in range(self.num_classes)]

    def preprocess(self, image):
        """An Image or a path to the normalised input (in_channels, S, S) the model eats: the
        checkpoint's own resize, crop and normalisation (mcnn_classifier_preprocess_image)."""
        lib = _c()
        return _preprocess(self._live(), image, lib.mcnn_classifier_input_shape,
                           lib.mcnn_classifier_preprocess_image)

    def _forward(self, images):
        shape = (self.in_channels, self.image_size, self.image_size)
        n, x = _batch(self, images, shape)
        logits = Floats((n, self.num_classes))
        _check(_c().mcnn_classifier_forward(self._live(), logits._pointer(), x, n, 0))
        return logits

    def logits(self, images):
        """Logits (B, num_classes) of images: a path, an Image, a list of them, or preprocessed
        float32 (B, in_channels, S, S)."""
        return self._forward(images)

    def scores(self, logits, activation=None):
        """Scores from logits (B, K) by mcnn_classifier_scores: the checkpoint's (a sigmoid per
        class when it is multi-label, else the softmax), or activation "softmax" / "sigmoid"
        for this call (as mcnn-classify's --activation: the model's multi-label flag, set for
        the call and put back)."""
        if activation not in (None, "softmax", "sigmoid"):
            raise ValueError("activation: %r is neither softmax nor sigmoid" % (activation,))
        if len(logits.shape) != 2 or logits.shape[1] != self.num_classes:
            raise ValueError("logits of shape (B, %d) expected, got %s"
                             % (self.num_classes, logits.shape))
        out = Floats(logits.shape)
        lib, handle = _c(), self._live()
        multilabel = self.multilabel if activation is None else activation == "sigmoid"
        lib.mcnn_classifier_set_multilabel(handle, int(multilabel))
        try:
            _check(lib.mcnn_classifier_scores(handle, _float_input(logits, len(logits.data)),
                                              out._pointer(), logits.shape[0]))
        finally:
            lib.mcnn_classifier_set_multilabel(handle, int(self.multilabel))
        return out

    def classify(self, image, k=5):
        """The top k (label, score) of one image, best first (ties: the earlier class)."""
        scores = self.scores(self._forward([image]))[0].data
        return _top(scores, self.labels, k)

    def embeddings(self, images):
        """The features the head reads (B, D): ResNet's pooled features, ViT's class token."""
        logits = self._forward(images)
        model = _c().mcnn_classifier_model(self._live())
        if _c().mcnn_classifier_arch(self._handle) == _ARCH_RESNET:
            dim, feats = (_c().mcnn_resnet_feature_dim(model), _c().mcnn_resnet_features(model))
        else:
            dim, feats = (_c().mcnn_vit_get_config(model).contents.width,
                          _c().mcnn_vit_features(model))
        n = logits.shape[0]
        out = Floats((n, dim))
        ctypes.memmove(out._pointer(), feats, 4 * n * dim)
        return out


def _top(scores, labels, k):
    """The k best (label, score) of one row of scores (mcnn_topk: ties to the earlier class)."""
    k = max(0, min(k, len(scores)))
    index = (_int * max(k, 1))()
    _c().mcnn_topk(index, _float_input(scores, len(scores)), len(scores), k)
    return [(labels[i], scores[i]) for i in index[:k]]


# ---- CLIP --------------------------------------------------------------------------------------
class Tokenizer(_Handle):
    """CLIP's byte-level BPE (mcnn_tokenizer_load): OpenAI's bpe_simple_vocab_16e6.txt.gz, its
    merges.txt, or Hugging Face's vocab.json (merges.txt beside it)."""
    _free = "mcnn_tokenizer_free"

    def __init__(self, path):
        handle = _p()
        _check(_c().mcnn_tokenizer_load(ctypes.byref(handle), _path(path)))
        self._handle = handle.value

    def encode(self, text):
        """SimpleTokenizer.encode: the BPE ids of text, without start/end tokens."""
        n = _int()
        raw = text.encode("utf-8")
        status = _c().mcnn_tokenizer_encode(self._live(), raw, None, 0, ctypes.byref(n))
        if status != 0 and n.value == 0:
            _check(status)
        ids = (ctypes.c_int32 * max(n.value, 1))()
        _check(_c().mcnn_tokenizer_encode(self._handle, raw, ids, n.value, ctypes.byref(n)))
        return list(ids[:n.value])

    def tokenize(self, texts, context_length=77, truncate=False):
        """clip.tokenize: one row of context_length ids per text (start, ids, end, zeros), as
        lists; a text too long raises Error unless truncate."""
        if isinstance(texts, str):
            texts = [texts]
        return [list(self._tokenize_one(t, context_length, truncate)) for t in texts]

    def _tokenize_one(self, text, context_length, truncate):
        row = (ctypes.c_int32 * context_length)()
        _check(_c().mcnn_tokenizer_tokenize(self._live(), text.encode("utf-8"), row,
                                            context_length, int(truncate), None))
        return row

    def decode(self, ids):
        """SimpleTokenizer.decode: text, every "</w>" a space."""
        ids = (ctypes.c_int32 * max(len(ids), 1))(*ids)
        text = _p()
        _check(_c().mcnn_tokenizer_decode(self._live(), ids, len(ids), ctypes.byref(text)))
        try:
            return ctypes.string_at(text.value).decode("utf-8")
        finally:
            _c().mcnn_free(text)  # the library's free: the same allocator as its malloc


class Clip(_Handle):
    """A CLIP model (mcnn_clip_load): OpenAI's key names or Hugging Face's.  vocab: the BPE
    vocabulary file (or a Tokenizer, which stays the caller's to close), needed for text.  heads: see mcnn_clip_load_options
    (0: from the checkpoint, else width / 64).  precision: as Classifier's (both towers)."""
    _free = "mcnn_clip_free"

    def __init__(self, path, vocab=None, vision_heads=0, text_heads=0, precision=None):
        handle = _p()
        # no options unless asked for: the library's defaults need no struct mirrored here
        options = (ctypes.byref(_ClipLoadOptions(vision_heads, text_heads,
                                                 _precision(precision or "fp32"),
                                                 int(precision is not None)))
                   if vision_heads or text_heads or precision is not None else None)
        self.precision = "fp32" if precision is None else str(precision)
        _check(_c().mcnn_clip_load(ctypes.byref(handle), _path(path), options))
        self._handle = handle.value
        cfg = _c().mcnn_clip_get_config(self._handle).contents
        self.config = {name: getattr(cfg, name) for name, _ in _ClipConfig._fields_}
        self.embed_dim, self.image_size = cfg.embed_dim, cfg.image_size
        self.context_length = cfg.context_length
        self.logit_scale = _c().mcnn_clip_logit_scale(self._handle)  # exp(logit_scale)
        # a Tokenizer given is the caller's to close; one made from a path is this model's
        self.tokenizer = vocab if vocab is None or isinstance(vocab, Tokenizer) else Tokenizer(vocab)
        self._owns_tokenizer = vocab is not None and not isinstance(vocab, Tokenizer)

    def close(self):
        super().close()
        if getattr(self, "_owns_tokenizer", False):
            self.tokenizer.close()

    def preprocess(self, image):
        """clip._transform(image_size): bicubic resize, center crop, CLIP's mean and std
        (mcnn_clip_preprocess_image)."""
        lib = _c()
        return _preprocess(self._live(), image, lib.mcnn_clip_input_shape,
                           lib.mcnn_clip_preprocess_image)

    def _images(self, fn, images):
        n, x = _batch(self, images, (3, self.image_size, self.image_size))
        out = Floats((n, self.embed_dim))
        _check(fn(self._live(), out._pointer(), x, n))
        return out

    def encode_image(self, images):
        """encode_image (B, embed_dim), not normalised, of images: a path, an Image, a list of
        them, or preprocessed float32 (B, 3, R, R)."""
        return self._images(_c().mcnn_clip_encode_image, images)

    def image_embeddings(self, images):
        """encode_image with each row L2-normalised."""
        return self._images(_c().mcnn_clip_image_embeddings, images)

    def _tokenizer(self):
        if self.tokenizer is None:
            raise ValueError("text needs a tokenizer: Clip(path, vocab=...)")
        return self.tokenizer

    def encode_text(self, texts):
        """encode_text (N, embed_dim), not normalised, of strings (tokenized with clip.tokenize's
        rules) or rows of context_length token ids."""
        if isinstance(texts, str):
            texts = [texts]
        rows = [self._tokenizer().tokenize(t, self.context_length)[0] if isinstance(t, str)
                else list(t) for t in texts]
        for row in rows:
            if len(row) != self.context_length:
                raise ValueError("a token row must hold %d ids, not %d"
                                 % (self.context_length, len(row)))
        tokens = (ctypes.c_int32 * (len(rows) * self.context_length))(*[i for r in rows for i in r])
        out = Floats((len(rows), self.embed_dim))
        _check(_c().mcnn_clip_encode_text(self._live(), out._pointer(), tokens, len(rows)))
        return out

    def text_embeddings(self, labels, templates=("{}",)):
        """(L, embed_dim): each label put into every template ("{}" or "{label}"), encoded,
        normalised and averaged over the templates, as OpenAI's zero-shot notebook does."""
        encode = [s.encode("utf-8") for s in labels], [s.encode("utf-8") for s in templates]
        lab = (ctypes.c_char_p * len(labels))(*encode[0])
        tmp = (ctypes.c_char_p * len(templates))(*encode[1])
        out = Floats((len(labels), self.embed_dim))
        _check(_c().mcnn_clip_text_embeddings(self._live(), self._tokenizer()._live(),
                                              out._pointer(), lab, len(labels), tmp,
                                              len(templates)))
        return out

    def zeroshot_scores(self, image_embeddings, text_embeddings, scale=100.0):
        """softmax(scale * cos) (B, L) of normalised embeddings (mcnn_clip_zeroshot_scores)."""
        b, e = image_embeddings.shape
        n = text_embeddings.shape[0]
        out = Floats((b, n))
        _c().mcnn_clip_zeroshot_scores(out._pointer(), _float_input(image_embeddings, b * e),
                                       _float_input(text_embeddings, n * e), b, n, e, scale)
        return out

    def classify(self, image, labels, templates=("{}",), k=5, scale=100.0):
        """Zero-shot: the top k (label, score) of one image among labels."""
        scores = self.zeroshot_scores(self.image_embeddings([image]),
                                      self.text_embeddings(labels, templates), scale)
        return _top(scores[0].data, list(labels), k)
