"""Goldens for the losses and CLIP's head (tests/test_losses.c, tests/test_clip_head.c).

Writes tests/data/losses.safetensors.  Inputs are rounded to float32 first (what the C code
sees), then everything is computed in float64 by PyTorch's own functions and stored as float32.
Scalars are stored with shape [1].  Gradients are of the loss itself (dloss = 1).

  ce_<case>_{x,y}, ce_<case>_eps{0,1}_{loss,dx}   F.cross_entropy, label_smoothing 0 and 0.1
      cases: small (5, 7), wide (70, 3: more rows than the C code's 64 chunks), extreme (±50)
  bce_<case>_{x,y,pw}, bce_<case>_{pw,nopw}_{loss,dx}   BCEWithLogitsLoss with / without pos_weight
      cases: small (4, 6; hard and soft targets), extreme (±50, ±30)
  head_*      img (3, 8), txt (5, 8) raw -> F.normalize -> exp(s)·img·txtᵀ, and the backward of
              a random upstream gradient through both: dimg, dtxt, dscale
  cl_<case>_{logits,loss,dlogits}   CLIP's loss (CE(logits, arange) + CE(logitsᵀ, arange)) / 2
      cases: small (5, 5), big (33, 33) with logits up to ±100
  clipfull_*  raw img, txt (4, 8) and logit scale through normalise, logits and the loss:
              loss and the gradients of img, txt and the scale
Run: /usr/bin/python3 tests/ref/gen_losses.py   (torch 1.13)"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from safetensors_io import save  # noqa: E402

torch.manual_seed(3)
out = {}


def f32(t):
    """Round to float32 (what the C code is given), then compute in float64."""
    return t.float().double()


def leaf(t):
    return f32(t).clone().requires_grad_(True)


def scalar(v):
    return v.detach().reshape(1)


# ---- cross-entropy ------------------------------------------------------------------------
def ce_case(name, x, y):
    out[f'ce_{name}_x'] = x
    out[f'ce_{name}_y'] = y.to(torch.int32)
    for eps in (0.0, 0.1):
        xl = leaf(x)
        loss = F.cross_entropy(xl, y, label_smoothing=eps)
        loss.backward()
        tag = f'ce_{name}_eps{int(round(eps * 10))}'
        out[tag + '_loss'] = scalar(loss)
        out[tag + '_dx'] = xl.grad


ce_case('small', f32(torch.randn(5, 7) * 3), torch.randint(0, 7, (5,)))
ce_case('wide', f32(torch.randn(70, 3) * 2), torch.randint(0, 3, (70,)))
xe = torch.tensor([[50., -50., 0., 3.], [-50., 50., 50., -50.], [-50., -50., 50., 0.]])
ce_case('extreme', xe, torch.tensor([1, 0, 1]))  # targets at -50: losses near 100 and 150

# ---- BCE with logits --------------------------------------------------------------------------
def bce_case(name, x, y, pw):
    out[f'bce_{name}_x'], out[f'bce_{name}_y'], out[f'bce_{name}_pw'] = x, y, pw
    for tag, w in (('pw', pw), ('nopw', None)):
        xl = leaf(x)
        loss = torch.nn.BCEWithLogitsLoss(pos_weight=None if w is None else f32(w))(xl, f32(y))
        loss.backward()
        out[f'bce_{name}_{tag}_loss'] = scalar(loss)
        out[f'bce_{name}_{tag}_dx'] = xl.grad


yb = (torch.rand(4, 6) > 0.5).double()
yb[3] = torch.rand(6)  # the last row: soft targets
bce_case('small', f32(torch.randn(4, 6) * 3), f32(yb), f32(torch.rand(6) * 3 + 0.2))
xb = torch.tensor([[50., -50., 30., -30.], [-50., 50., -30., 30.]])
bce_case('extreme', xb, torch.tensor([[1., 1., 0., 0.], [0., 1., 1., 0.]]),
         torch.tensor([2.0, 0.5, 1.5, 3.0]))

# ---- CLIP head: normalise, scaled cosine logits, and backward --------------------------------
LOGIT_SCALE = math.log(1 / 0.07)  # CLIP's initial value
img, txt = leaf(torch.randn(3, 8)), leaf(torch.randn(5, 8))
s = leaf(torch.tensor([LOGIT_SCALE]))
img_n, txt_n = F.normalize(img, dim=-1), F.normalize(txt, dim=-1)
logits = s.exp() * img_n @ txt_n.t()
dlogits = f32(torch.randn(3, 5))
logits.backward(dlogits)
out.update({'head_img': img, 'head_txt': txt, 'head_scale': s, 'head_img_n': img_n,
            'head_txt_n': txt_n, 'head_img_norm': img.norm(dim=-1),
            'head_txt_norm': txt.norm(dim=-1), 'head_logits': logits, 'head_dlogits': dlogits,
            'head_dimg': img.grad, 'head_dtxt': txt.grad, 'head_dscale': s.grad})


def clip_loss(lg):
    labels = torch.arange(lg.shape[0])
    return (F.cross_entropy(lg, labels) + F.cross_entropy(lg.t(), labels)) / 2


for name, N, scale in (('small', 5, 4.0), ('big', 33, 100.0)):
    lg = leaf((torch.rand(N, N) * 2 - 1) * scale)
    loss = clip_loss(lg)
    loss.backward()
    out[f'cl_{name}_logits'], out[f'cl_{name}_loss'] = lg, scalar(loss)
    out[f'cl_{name}_dlogits'] = lg.grad

img, txt = leaf(torch.randn(4, 8)), leaf(torch.randn(4, 8))
s = leaf(torch.tensor([LOGIT_SCALE]))
loss = clip_loss(s.exp() * F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).t())
loss.backward()
out.update({'clipfull_img': img, 'clipfull_txt': txt, 'clipfull_scale': s,
            'clipfull_loss': scalar(loss), 'clipfull_dimg': img.grad, 'clipfull_dtxt': txt.grad,
            'clipfull_dscale': s.grad})

path = os.path.join(os.path.dirname(__file__), '..', 'data', 'losses.safetensors')
save(path, out, {'generator': 'tests/ref/gen_losses.py', 'torch': torch.__version__})
print(f'wrote {path}: {len(out)} tensors, {os.path.getsize(path)} bytes')
