"""Goldens for `mcnn-shots eval` (tests/test_movieclip.c): a fixed set of shot scores, weak
labels and human-verified labels, and every number the evaluation reports, computed here from
the definitions with numpy (float64), independently of the C code:

  AP per label as sklearn.metrics.average_precision_score: sum over the distinct score
    thresholds, highest first, of (R_n - R_{n-1}) P_n (tied scores are one threshold); mAP the
    mean over the labels with a positive;
  F1 at threshold 0.5 (decision: score > 0.5): micro pools TP/FP/FN; macro is the mean over all
    labels, a label with nothing true and nothing predicted counting 0 (sklearn's
    zero_division=0);
  top-k (k = 1, 3): a shot is a hit when one of its k highest scores (ties: lower index first)
    is a true label;
  Cohen's kappa (p_o - p_e) / (1 - p_e) of the pooled decisions against the truth (2 x 2), and
    of the top-1 label against the human label (the model's top-1 when the rater accepted it,
    else the rater's first label), and the same for the weak labels' top-1.

Also the kappa of the published example (Wikipedia, "Cohen's kappa": 20 yes/yes, 5 yes/no,
10 no/yes, 15 no/no -> 0.4) as a check of this script's kappa.

Writes tests/data/movieclip_eval.safetensors: "scores" (N, L) F32, metadata "keys" (JSON
array), "data" (the split file's text), "human" (the human file's text), "labels" (the label
list's text), and goldens "ap" (L; NaN for a label without positives), "map", "f1_micro",
"f1_macro", "top1", "top3", "kappa_pooled", "kappa_human", "agree_human", "kappa_weak".
Run: /usr/bin/python3 tests/ref/gen_movieclip_eval.py"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from safetensors_io import save  # noqa: E402

rng = np.random.default_rng(12)
N, L = 14, 6
labels = ["street", "kitchen", "beach", "office", "forest", "bar"]
keys = ["movie a.mp4/%d" % i for i in range(5)] + ["b.mkv/%d" % i for i in range(5)] + \
       ["c/%d" % i for i in range(4)]
# weak labels: 1-3 labels a shot, top-1 first; label 5 never true (no AP)
truth = np.zeros((N, L), dtype=np.uint8)
lines, first = [], []
for i in range(N):
    n = 1 + rng.integers(0, 3)
    labs = list(rng.choice(5, size=n, replace=False))
    for k in labs:
        truth[i, k] = 1
    first.append(labs[0])
    lines.append("%s %s" % (keys[i].replace(" ", "%20"), " ".join(str(k) for k in labs)))
scores = rng.random((N, L)).astype(np.float32)
scores[truth == 1] += 0.35 * rng.random(int(truth.sum())).astype(np.float32)
scores = np.clip(scores, 0, 1).astype(np.float32)
scores[3, 1] = scores[4, 1] = scores[7, 1]  # ties in one label's ranking
scores = scores.astype(np.float64)
enc = [k.replace(" ", "%20") for k in keys]

def ap(s, t):
    if t.sum() == 0:
        return float("nan")
    order = np.argsort(-s, kind="stable")
    s, t = s[order], t[order]
    thresholds = np.unique(s)[::-1]
    total, prev_r = 0.0, 0.0
    for th in thresholds:
        pred = s >= th
        tp = (t[pred] == 1).sum()
        p, r = tp / pred.sum(), tp / t.sum()
        total += (r - prev_r) * p
        prev_r = r
    return total

aps = np.array([ap(scores[:, k], truth[:, k]) for k in range(L)])
mAP = np.nanmean(aps)
dec = scores > 0.5
tp, fp, fn = (dec & (truth == 1)).sum(), (dec & (truth == 0)).sum(), (~dec & (truth == 1)).sum()
f1_micro = 2 * tp / (2 * tp + fp + fn)
f1s = []
for k in range(L):
    a, b, c = (dec[:, k] & (truth[:, k] == 1)).sum(), (dec[:, k] & (truth[:, k] == 0)).sum(), \
              (~dec[:, k] & (truth[:, k] == 1)).sum()
    f1s.append(0.0 if 2 * a + b + c == 0 else 2 * a / (2 * a + b + c))
f1_macro = float(np.mean(f1s))

def topk(k):
    hits = 0
    for i in range(N):
        order = sorted(range(L), key=lambda j: (-scores[i, j], j))[:k]
        hits += any(truth[i, j] for j in order)
    return hits / N

def kappa(a, b, K):
    cm = np.zeros((K, K))
    for x, y in zip(a, b):
        cm[x, y] += 1
    n = cm.sum()
    po = np.trace(cm) / n
    pe = (cm.sum(1) * cm.sum(0)).sum() / n ** 2
    return (po - pe) / (1 - pe), po

wiki = [1] * 20 + [1] * 5 + [0] * 10 + [0] * 15, [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
assert abs(kappa(*wiki, 2)[0] - 0.4) < 1e-12

kappa_pooled = kappa(truth.reshape(-1), dec.reshape(-1).astype(int), 2)[0]
# human labels for 10 of the 14 shots (the rest unverified): 1-2 labels each
human_lines, hum = [], {}
for i in rng.permutation(N)[:10]:
    n = 1 + rng.integers(0, 2)
    labs = list(rng.choice(5, size=n, replace=False))
    hum[i] = labs
    human_lines.append("%s %s" % (enc[i], " ".join(str(k) for k in labs)))
top1 = [int(sorted(range(L), key=lambda j: (-scores[i, j], j))[0]) for i in range(N)]
hs, ps, hw, ws = [], [], [], []
for i in sorted(hum):
    hs.append(top1[i] if top1[i] in hum[i] else hum[i][0]), ps.append(top1[i])
    hw.append(first[i] if first[i] in hum[i] else hum[i][0]), ws.append(first[i])
kappa_human, agree_human = kappa(hs, ps, L)
kappa_weak = kappa(hw, ws, L)[0]

out = os.path.join(os.path.dirname(__file__), "..", "data", "movieclip_eval.safetensors")
g = lambda v: np.array([v], dtype=np.float64)
save(out, {"scores": scores.astype(np.float32), "ap": aps, "map": g(mAP), "f1_micro": g(f1_micro),
           "f1_macro": g(f1_macro), "top1": g(topk(1)), "top3": g(topk(3)),
           "kappa_pooled": g(kappa_pooled), "kappa_human": g(kappa_human),
           "agree_human": g(agree_human), "kappa_weak": g(kappa_weak)},
     {"keys": json.dumps(enc), "data": "\n".join(lines) + "\n",
      "human": "\n".join(human_lines) + "\n", "labels": "\n".join(labels) + "\n"})
print("mAP %.4f  F1 %.4f / %.4f  top1 %.3f  kappa pooled %.4f human %.4f weak %.4f" %
      (mAP, f1_micro, f1_macro, topk(1), kappa_pooled, kappa_human, kappa_weak))
