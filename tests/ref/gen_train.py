"""Goldens for the trainer (tests/test_train.c): the optimizer steps of lib/train/trainer.c as
PyTorch code writes them, for a tiny ViT and a tiny ResNet, and the metrics by direct formulas.

One optimizer step, as in include/mcnn/train.h:
    zero_grad(); for each of ACCUM micro-batches: (loss(model(x), y) / ACCUM).backward()
    norm = clip_grad_norm_(params, CLIP); lr = schedule(step); AdamW(two groups).step()
with the schedule written out here (linear warm-up from F0 * LR over W steps, then cosine to 0
at step T), decay only on conv/linear weights (not norms, biases, class token, positions).
Losses: F.cross_entropy(label_smoothing=0.1), and BCEWithLogitsLoss(pos_weight) with
pos_weight = negatives / positives per class of the 12 training targets (1 where a class has
no positive).  Also a frozen-backbone step (a linear probe: only the head is given to the
optimizer; the ResNet runs in eval mode).

The models are torchvision's own VisionTransformer and ResNet blocks (as in gen_vit.py and
gen_resnet.py), randomised, stored under "w.<name>" for the C test to copy into a classifier
made by mcnn_classifier_create with the same configuration.

Writes tests/data/train.safetensors:
  images (12, 1, S, S) per model ("vit.images", "resnet.images"); "labels" (12), "targets" (12, K)
  "<m>.w.<name>"                               initial weights (and ResNet running statistics)
  "<m>.<loss>.loss" (4 micro-batch losses), ".norm" (2 steps), ".lr" (2 steps),
  "<m>.<loss>.p.<name>" parameters after the two steps, "<m>.<loss>.g.<name>" the clipped
  gradients of the second step; loss in {ce, bce, probe}
  "bce.pos_weight" (K)
  metrics: "met.scores" (40, 5) with ties, "met.targets" (40, 5) 0/1, "met.labels" (40),
  "met.pred" (40), "met.ap" (5), "met.top1", "met.top3", "met.cm" (5, 5), "met.mean_class",
  "met.kappa", "met.f1_micro", "met.f1_macro" (threshold 0.5 on sigmoid(scores))
  augmentation: "aug.in" (2, 5, 6) uint8 and "aug.out.<i>" for the cases in AUG_CASES
and tests/data/train_idx/{images,labels}.idx (plain) and .idx.gz (gzip) with "idx.images",
"idx.labels" in the safetensors file as the judge.
Run: /usr/bin/python3 tests/ref/gen_train.py   (torch 1.13, torchvision 0.14)"""
import gzip
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.resnet import BasicBlock
from torchvision.models.vision_transformer import VisionTransformer

sys.path.insert(0, os.path.dirname(__file__))
from safetensors_io import save  # noqa: E402
from gen_resnet import TinyResNet, randomise as randomise_resnet  # noqa: E402

torch.set_default_dtype(torch.float64)
DATA = os.path.join(os.path.dirname(__file__), '..', 'data')

N, K, BATCH, ACCUM = 12, 3, 3, 2
LR, WD, F0, W, T = 1e-2, 0.05, 0.5, 1, 4        # warm-up 1 step from 0.5 * LR, cosine to step 4
CLIP = 0.5
SMOOTH = 0.1
AUG_CASES = [(0, 0, 0), (1, -2, 0), (-2, 3, 1), (0, 0, 1), (4, 0, 0), (-1, -1, 1)]


def lr_at(step):
    if step < W:
        return LR * (F0 + (1 - F0) * step / W)
    s = step - W
    return LR * (1 + math.cos(math.pi * s / (T - W))) / 2


def vit_model():
    m = VisionTransformer(image_size=8, patch_size=4, num_layers=1, num_heads=2, hidden_dim=8,
                          mlp_dim=16, num_classes=K)
    m.conv_proj = nn.Conv2d(1, 8, kernel_size=4, stride=4)  # one input channel
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in m.named_parameters():
            scale = 0.5 if p.dim() < 2 else (1.0 / p.shape[-1] ** 0.5 if p.dim() == 2 else 0.3)
            p.copy_(torch.randn(p.shape, generator=g) * scale)
            if name.endswith(('ln_1.weight', 'ln_2.weight', 'ln.weight')):
                p.add_(1.0)
    return m.double()


def resnet_model():
    # mcnn_classifier "resnet-small" with width 4, depth 1: 3x3 stem, basic blocks 4/8/16
    m = TinyResNet(BasicBlock, [1, 1, 1], [4, 8, 16], 4, 1, K, small_stem=True)
    randomise_resnet(m, 5)
    return m.double()


def decays(model):
    return {n: (p.dim() >= 2 and 'pos_embedding' not in n and 'class_token' not in n)
            for n, p in model.named_parameters()}


def head_names(model):
    return ['heads.head.weight', 'heads.head.bias'] if hasattr(model, 'heads') else \
        ['fc.weight', 'fc.bias']


def run(model, images, labels, targets, kind, pos_weight):
    """Two optimizer steps of ACCUM micro-batches each; returns the goldens."""
    params = dict(model.named_parameters())
    probe = kind == 'probe'
    trainable = head_names(model) if probe else list(params)
    dec = decays(model)
    groups = [{'params': [params[n] for n in trainable if dec[n]], 'weight_decay': WD},
              {'params': [params[n] for n in trainable if not dec[n]], 'weight_decay': 0.0}]
    opt = torch.optim.AdamW(groups, lr=LR, betas=(0.9, 0.999), eps=1e-8)
    model.train(not probe)          # a frozen ResNet keeps its running statistics (eval mode)
    for n, p in params.items():
        p.requires_grad_(n in trainable)
    losses, norms, lrs = [], [], []
    for step in range(2):
        opt.zero_grad()
        for a in range(ACCUM):
            i = (step * ACCUM + a) * BATCH
            x = images[i:i + BATCH]
            logits = model(x)
            if kind == 'bce':
                loss = F.binary_cross_entropy_with_logits(logits, targets[i:i + BATCH],
                                                          pos_weight=pos_weight)
            else:
                loss = F.cross_entropy(logits, labels[i:i + BATCH], label_smoothing=SMOOTH)
            (loss / ACCUM).backward()
            losses.append(loss.item())
        norms.append(torch.nn.utils.clip_grad_norm_([params[n] for n in trainable], CLIP).item())
        for g in opt.param_groups:
            g['lr'] = lr_at(step)
        lrs.append(lr_at(step))
        opt.step()
    out = {'loss': np.array(losses), 'norm': np.array(norms), 'lr': np.array(lrs)}
    for n, p in model.state_dict().items():
        if 'num_batches_tracked' in n:
            continue
        out['p.' + n] = p.detach().clone()
    for n in trainable:
        out['g.' + n] = params[n].grad.detach().clone()
    return out


def labelling():
    """The 12 training samples' labels (CE) and multi-hot targets (BCE), shared by both models."""
    g = torch.Generator().manual_seed(19)
    labels = torch.tensor([0, 1, 2, 2, 1, 0, 1, 1, 2, 0, 0, 1])
    targets = (torch.rand((N, K), generator=g) < 0.4).double()
    targets[:, 1] = torch.tensor([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0])   # a rare class
    pos = targets.sum(0)
    pos_weight = torch.where(pos > 0, (N - pos) / pos.clamp_min(1), torch.ones(K))
    return labels, targets, pos_weight


def model_goldens(prefix, make, S):
    g = torch.Generator().manual_seed(17)
    images = torch.randn((N, 1, S, S), generator=g)
    labels, targets, pos_weight = labelling()
    out = {prefix + '.images': images, 'labels': labels.int(), 'targets': targets,
           'bce.pos_weight': pos_weight}
    init = make()
    for n, p in init.state_dict().items():
        if 'num_batches_tracked' not in n:
            out[prefix + '.w.' + n] = p.detach().clone()
    for kind in ('ce', 'bce', 'probe'):
        model = make()
        model.load_state_dict(init.state_dict())
        for k, v in run(model, images, labels, targets, kind, pos_weight).items():
            out['%s.%s.%s' % (prefix, kind, k)] = v
    return out


def average_precision(score, truth):
    """sklearn's average_precision_score by its definition: one point per distinct threshold."""
    order = np.argsort(-score, kind='stable')
    s, t = score[order], truth[order]
    P = t.sum()
    ap, prev_recall, tp, fp, i = 0.0, 0.0, 0, 0, 0
    while i < len(s):
        j = i
        while j < len(s) and s[j] == s[i]:
            tp += t[j]
            fp += 1 - t[j]
            j += 1
        recall, precision = tp / P, tp / (tp + fp)
        ap += (recall - prev_recall) * precision
        prev_recall, i = recall, j
    return ap


def metric_goldens():
    rng = np.random.default_rng(5)
    n, k = 40, 5
    scores = np.round(rng.normal(size=(n, k)) * 2) / 2          # halves: many ties
    targets = (rng.random((n, k)) < 0.35).astype(np.uint8)
    labels = rng.integers(0, k, size=n)
    labels[:3] = [4, 4, 4]
    # top-k with ties broken towards the lower index: rank = #(higher) + #(equal and earlier)
    def topk(kk):
        hit = 0
        for r in range(n):
            y = labels[r]
            rank = sum(1 for c in range(k) if scores[r, c] > scores[r, y] or
                       (scores[r, c] == scores[r, y] and c < y))
            hit += rank < kk
        return hit / n
    pred = np.array([int(np.argmax(scores[r])) for r in range(n)])   # first of ties
    cm = np.zeros((k, k), dtype=np.int64)
    for t, p in zip(labels, pred):
        cm[t, p] += 1
    recalls = [cm[c, c] / cm[c].sum() for c in range(k) if cm[c].sum() > 0]
    po = np.trace(cm) / n
    pe = sum(cm[c].sum() * cm[:, c].sum() for c in range(k)) / n ** 2
    probs = 1 / (1 + np.exp(-scores))
    dec = probs > 0.5
    tp = (dec & (targets == 1)).sum(0)
    fp = (dec & (targets == 0)).sum(0)
    fn = (~dec & (targets == 1)).sum(0)
    f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
    return {'met.scores': scores, 'met.targets': targets, 'met.labels': labels.astype(np.int32),
            'met.pred': pred.astype(np.int32),
            'met.ap': np.array([average_precision(scores[:, c], targets[:, c]) for c in range(k)]),
            'met.top1': np.array([topk(1)]), 'met.top3': np.array([topk(3)]),
            'met.cm': cm.astype(np.int32), 'met.mean_class': np.array([np.mean(recalls)]),
            'met.kappa': np.array([(po - pe) / (1 - pe)]),
            'met.f1_micro': np.array([2 * tp.sum() / (2 * tp.sum() + fp.sum() + fn.sum())]),
            'met.f1_macro': np.array([f1.mean()])}


def aug_goldens():
    """torchvision's RandomCrop(padding=p) at offset (p + dy, p + dx), then an optional flip."""
    rng = np.random.default_rng(9)
    img = rng.integers(1, 256, size=(2, 5, 6)).astype(np.uint8)
    out = {'aug.in': img}
    pad = 4
    padded = np.pad(img, ((0, 0), (pad, pad), (pad, pad)))
    for i, (dy, dx, flip) in enumerate(AUG_CASES):
        crop = padded[:, pad + dy:pad + dy + 5, pad + dx:pad + dx + 6]
        out['aug.out.%d' % i] = crop[:, :, ::-1] if flip else crop
    return out


def idx_files():
    """A small IDX pair written from the specification, plain and gzipped."""
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, size=(5, 3, 4)).astype(np.uint8)
    labels = np.array([3, 0, 6, 6, 1], dtype=np.uint8)
    d = os.path.join(DATA, 'train_idx')
    os.makedirs(d, exist_ok=True)
    blobs = {'images.idx': b'\0\0\x08\x03' + struct.pack('>III', 5, 3, 4) + images.tobytes(),
             'labels.idx': b'\0\0\x08\x01' + struct.pack('>I', 5) + labels.tobytes()}
    for name, blob in blobs.items():
        with open(os.path.join(d, name), 'wb') as f:
            f.write(blob)
        with gzip.GzipFile(os.path.join(d, name + '.gz'), 'wb', mtime=0) as f:
            f.write(blob)
    return {'idx.images': images, 'idx.labels': labels.astype(np.int32)}


def main():
    out = {}
    out.update(model_goldens('vit', vit_model, 8))
    out.update(model_goldens('resnet', resnet_model, 12))
    out.update(metric_goldens())
    out.update(aug_goldens())
    out.update(idx_files())
    meta = {'lr': repr(LR), 'wd': repr(WD), 'warmup_start': repr(F0), 'clip': repr(CLIP)}
    save(os.path.join(DATA, 'train.safetensors'), out, meta)
    print('wrote', len(out), 'tensors;', 'vit ce losses', out['vit.ce.loss'],
          'resnet norms', out['resnet.ce.norm'], 'bce pos_weight', out['bce.pos_weight'])


if __name__ == '__main__':
    main()
