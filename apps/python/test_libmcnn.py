"""The binding's half of tests/test_python.c: that test computes every result with the C API,
writes it under DIR, and runs
    python3 apps/python/test_libmcnn.py SECTION DIR
which computes the same through libmcnn.py and compares byte for byte.  One line per check:
"ok NAME" or "FAIL NAME: why"; the exit status is 1 when anything failed.  Sections:
  classifier  DIR/models: per model, DIR/<model>.{logits,scores,sigmoid,features,input0,labels,
              logits_int8}
              for the samples listed in DIR/samples (all float32, per sample in list order)
  clip        DIR/clip.{image_features,image_embeddings,tokens,text_features,text_embeddings,
              scores}, with DIR/clip.{model,vocab,images,texts,labels,templates}
  errors      DIR/errors: lines "kind<TAB>path<TAB>status<TAB>message" to raise exactly that
"""

import array
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import libmcnn  # noqa: E402

failures = 0


def check(name, ok, why=""):
    global failures
    if ok:
        print("ok", name)
    else:
        failures += 1
        print("FAIL %s: %s" % (name, why))


def read(path, code="f"):
    data = array.array(code)
    with open(path, "rb") as f:
        data.frombytes(f.read())
    return data


def lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n")[:-1]


def same(name, got, want):
    """got (a Floats or array) equal to want bit for bit; says where they first differ."""
    got = got.data if isinstance(got, libmcnn.Floats) else got
    if got.tobytes() == want.tobytes():
        return check(name, True)
    if len(got) != len(want):
        return check(name, False, "%d values, the C API gave %d" % (len(got), len(want)))
    i = next(i for i in range(len(got)) if got[i:i + 1].tobytes() != want[i:i + 1].tobytes())
    check(name, False, "value %d is %r, the C API gave %r" % (i, got[i], want[i]))


def section_classifier(d):
    samples = lines(os.path.join(d, "samples"))
    for model_path in lines(os.path.join(d, "models")):
        tag = os.path.join(d, os.path.basename(model_path))
        with libmcnn.Classifier(model_path) as model:
            check(model_path + " labels", model.labels == lines(tag + ".labels"),
                  "%s vs %s" % (model.labels, lines(tag + ".labels")))
            same(model_path + " preprocess", model.preprocess(samples[0]), read(tag + ".input0"))
            logits = [model.logits(s) for s in samples]
            flat = array.array("f")
            for row in logits:
                flat.extend(row.data)
            same(model_path + " logits", flat, read(tag + ".logits"))
            for activation, suffix in ((None, ".scores"), ("sigmoid", ".sigmoid")):
                flat = array.array("f")
                for row in logits:
                    flat.extend(model.scores(row, activation).data)
                same("%s scores (%s)" % (model_path, activation or "the checkpoint's"), flat,
                     read(tag + suffix))
            flat = array.array("f")
            for s in samples:
                flat.extend(model.embeddings(libmcnn.Image(s)).data)
            same(model_path + " embeddings", flat, read(tag + ".features"))
            # classify: the top scores in order, labels attached
            scores = read(tag + ".scores")[:model.num_classes]
            top = model.classify(samples[0], k=3)
            want = sorted(range(len(scores)), key=lambda k: (-scores[k], k))[:3]
            check(model_path + " classify", top == [(model.labels[k], scores[k]) for k in want],
                  repr(top))
            # preprocessed float32 input through the buffer protocol, as numpy would pass it
            x = model.preprocess(samples[0])
            same(model_path + " logits from a buffer", model.logits(x.memoryview()),
                 read(tag + ".logits")[:model.num_classes])
        # a reduced precision chosen at load: the C API's int8 inference-only logits
        with libmcnn.Classifier(model_path, precision="int8") as model:
            flat = array.array("f")
            for s in samples:
                flat.extend(model.logits(s).data)
            same(model_path + " logits at int8", flat, read(tag + ".logits_int8"))
            check(model_path + " precision", model.precision == "int8", model.precision)
        try:
            libmcnn.Classifier(model_path, precision="fp16")
            check(model_path + " precision fp16 refused", False, "no Error raised")
        except libmcnn.Error as e:
            check(model_path + " precision fp16 refused", "fp16" in str(e), str(e))


def section_clip(d):
    base = os.path.join(d, "clip.")
    model_path, vocab = lines(base + "model")[0], lines(base + "vocab")[0]
    images, texts = lines(base + "images"), lines(base + "texts")
    with libmcnn.Clip(model_path, vocab=vocab) as model:
        same("encode_image", model.encode_image(images), read(base + "image_features"))
        same("image_embeddings", model.image_embeddings(images), read(base + "image_embeddings"))
        tokens = model.tokenizer.tokenize(texts)
        same("tokenize", array.array("i", [i for row in tokens for i in row]),
             read(base + "tokens", "i"))
        same("encode_text", model.encode_text(texts), read(base + "text_features"))
        same("encode_text of token rows", model.encode_text(tokens), read(base + "text_features"))
        labels, templates = lines(base + "labels"), lines(base + "templates")
        text = model.text_embeddings(labels, templates)
        same("text_embeddings", text, read(base + "text_embeddings"))
        same("zeroshot_scores", model.zeroshot_scores(model.image_embeddings(images), text),
             read(base + "scores"))
        want = read(base + "scores")[:len(labels)]
        order = sorted(range(len(labels)), key=lambda k: (-want[k], k))
        got = model.classify(images[0], labels, templates, k=2)
        check("classify", got == [(labels[k], want[k]) for k in order[:2]], repr(got))
        ids = model.tokenizer.encode(texts[0])
        check("encode/decode", tokens[0][1:len(ids) + 1] == ids and
              model.tokenizer.decode(ids).strip() == texts[0].lower().strip(),
              "%r -> %r" % (ids, model.tokenizer.decode(ids)))
        with open(images[0], "rb") as f:
            decoded = libmcnn.Image.decode(f.read(), "bytes")
        same("Image.decode", model.preprocess(decoded), model.preprocess(images[0]).data)


def section_errors(d):
    openers = {"classifier": libmcnn.Classifier, "image": libmcnn.Image,
               "tokenizer": libmcnn.Tokenizer, "clip": libmcnn.Clip}
    for row in lines(os.path.join(d, "errors")):
        kind, path, status, message = row.split("\t")
        try:
            openers[kind](path).close()
            check("%s %s" % (kind, path), False, "no exception")
        except libmcnn.Error as e:
            check("%s %s" % (kind, os.path.basename(path)),
                  e.status == int(status) and e.message == message,
                  "raised %d %r; the C API says %s %r" % (e.status, e.message, status, message))
    model = libmcnn.Classifier(lines(os.path.join(d, "model"))[0])
    model.close()
    model.close()  # twice is harmless
    try:
        model.logits(lines(os.path.join(d, "image"))[0])
        check("a closed model refuses", False, "no exception")
    except ValueError:
        check("a closed model refuses", True)


if __name__ == "__main__":
    section, folder = sys.argv[1], sys.argv[2]
    globals()["section_" + section](folder)
    sys.exit(1 if failures else 0)
