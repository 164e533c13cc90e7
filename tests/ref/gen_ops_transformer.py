"""Goldens for the transformer ops: layernorm, the three GELUs, softmax / log-softmax,
scaled-dot-product attention, multi-head self-attention, embeddings and patchify.

Run with Debian's python3 (torch 1.13):  /usr/bin/python3 tests/ref/gen_ops_transformer.py
Writes tests/data/ops_transformer.safetensors.  Every input is drawn, rounded to float32 (what
the file stores and the C test reads), then computed on in float64, so the stored outputs are
the exact answer for the stored inputs up to one float32 rounding.  Gradients come from autograd
with a random upstream gradient dy, i.e. they are d(sum(y * dy))/d(input).

Names are "<case>.<tensor>"; each case has "<case>.dims" (int32) giving its sizes."""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import save  # noqa: E402

torch.manual_seed(1234)
OUT = {}


def f32(t):
    """Round to float32 (what the file holds), then compute in float64."""
    return t.float().double()


def randn(*shape, scale=1.0):
    return f32(torch.randn(*shape, dtype=torch.float64) * scale)


def leaf(t):
    return t.clone().requires_grad_(True)


def put(case, **tensors):
    for k, v in tensors.items():
        if isinstance(v, torch.Tensor):
            v = v.detach()
        OUT[f"{case}.{k}"] = v


def dims(*d):
    return torch.tensor(d, dtype=torch.int32)


# ---- layer norm: odd widths, both eps values, one row set with |mean| >> std ----------------
LN_CASES = [(3, 1, 1e-5, 0.0), (5, 7, 1e-5, 0.0), (4, 33, 1e-6, 0.0), (6, 64, 1e-6, 0.0),
            (4, 64, 1e-5, 30.0)]
for i, (N, C, eps, offset) in enumerate(LN_CASES):
    x = leaf(f32(randn(N, C) + offset))
    g = leaf(f32(randn(C, scale=0.5) + 1.0))
    b = leaf(randn(C, scale=0.5))
    y = F.layer_norm(x, (C,), g, b, eps)
    dy = randn(N, C)
    y.backward(dy)
    mean = x.detach().mean(-1)
    rstd = 1.0 / torch.sqrt(x.detach().var(-1, unbiased=False) + eps)
    put(f"ln{i}", dims=dims(N, C), eps=torch.tensor([eps], dtype=torch.float32), x=x, gamma=g,
        beta=b, dy=dy, y=y, mean=mean, rstd=rstd, dx=x.grad, dgamma=g.grad, dbeta=b.grad)

# ---- GELU x3: a sweep over [-10, 10] (the extremes included) plus random values ------------
x0 = f32(torch.cat([torch.linspace(-10, 10, 161, dtype=torch.float64), torch.randn(96) * 3]))
dy0 = randn(x0.numel())
for name, fn in [("gelu", lambda t: F.gelu(t)),
                 ("gelu_tanh", lambda t: F.gelu(t, approximate="tanh")),
                 ("quick_gelu", lambda t: t * torch.sigmoid(1.702 * t))]:
    x = leaf(x0)
    y = fn(x)
    y.backward(dy0)
    put(name, dims=dims(x0.numel()), x=x, dy=dy0, y=y, dx=x.grad)

# ---- softmax / log-softmax: odd widths and large magnitudes (exp would overflow unshifted) --
SM_CASES = [(3, 1, 1.0, 0.0), (4, 7, 1.0, 0.0), (5, 33, 3.0, 0.0), (2, 77, 1.0, 0.0),
            (4, 33, 30.0, 1000.0), (3, 7, 200.0, -500.0)]
for i, (N, C, scale, offset) in enumerate(SM_CASES):
    for name, fn in [("softmax", F.softmax), ("log_softmax", F.log_softmax)]:
        x = leaf(f32(randn(N, C, scale=scale) + offset))
        y = fn(x, dim=-1)
        dy = randn(N, C)
        y.backward(dy)
        put(f"{name}{i}", dims=dims(N, C), x=x, dy=dy, y=y, dx=x.grad)


# ---- attention on packed qkv, judged by torch.nn.MultiheadAttention itself ------------------
def causal_mask(T):
    return torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)  # True = not allowed


def identity_mha(C, NH):
    """An nn.MultiheadAttention whose projections are identities: then mha(q, k, v) is exactly
    the attention of the packed [q | k | v], computed by PyTorch's own code."""
    m = torch.nn.MultiheadAttention(C, NH, batch_first=True).double()
    with torch.no_grad():
        m.in_proj_weight.copy_(torch.cat([torch.eye(C, dtype=torch.float64)] * 3))
        m.in_proj_bias.zero_()
        m.out_proj.weight.copy_(torch.eye(C, dtype=torch.float64))
        m.out_proj.bias.zero_()
    return m


ATT_CASES = [(1, 1, 7, 1, 0), (2, 5, 7, 1, 1), (2, 17, 33, 3, 0), (2, 17, 32, 8, 1),
             (1, 77, 24, 2, 1), (3, 5, 4, 4, 0), (1, 1, 8, 2, 1), (1, 5, 64, 4, 0)]
for i, (B, T, C, NH, causal) in enumerate(ATT_CASES):
    m = identity_mha(C, NH)
    qkv = randn(B, T, 3 * C)
    q, k, v = (leaf(t) for t in qkv.split(C, dim=-1))
    out, probs = m(q, k, v, need_weights=True, average_attn_weights=False,
                   attn_mask=causal_mask(T) if causal else None)
    dout = randn(B, T, C)
    out.backward(dout)
    dqkv = torch.cat([q.grad, k.grad, v.grad], dim=-1)
    put(f"att{i}", dims=dims(B, T, C, NH, causal), qkv=qkv, dout=dout, out=out, probs=probs,
        dqkv=dqkv)

# ---- multi-head self-attention block vs torch.nn.MultiheadAttention, all parameters random --
i = 0
for NH in (1, 2, 4):
    for T in (1, 5, 17):
        for causal in (0, 1):
            B, C = 2, 12
            m = torch.nn.MultiheadAttention(C, NH, batch_first=True).double()
            with torch.no_grad():
                for p in m.parameters():
                    p.copy_(randn(*p.shape, scale=0.4))
            x = leaf(randn(B, T, C))
            out, _ = m(x, x, x, need_weights=False,
                       attn_mask=causal_mask(T) if causal else None)
            dout = randn(B, T, C)
            out.backward(dout)
            put(f"mhsa{i}", dims=dims(B, T, C, NH, causal), x=x,
                in_proj_w=m.in_proj_weight, in_proj_b=m.in_proj_bias,
                out_proj_w=m.out_proj.weight, out_proj_b=m.out_proj.bias, dout=dout, out=out,
                dx=x.grad, d_in_proj_w=m.in_proj_weight.grad, d_in_proj_b=m.in_proj_bias.grad,
                d_out_proj_w=m.out_proj.weight.grad, d_out_proj_b=m.out_proj.bias.grad)
            i += 1

# ---- token embedding with repeated ids (the backward must sum them) ------------------------
V, C, N = 11, 7, 13
ids = torch.tensor([3, 0, 10, 3, 3, 7, 0, 1, 10, 3, 5, 2, 7], dtype=torch.int64)
table = leaf(randn(V, C))
y = F.embedding(ids, table)
dy = randn(N, C)
y.backward(dy)
put("emb", dims=dims(V, C, N), ids=ids.to(torch.int32), table=table, dy=dy, y=y,
    dtable=table.grad)

# ---- positional add, broadcast over the batch --------------------------------------------
B, T, C = 3, 5, 7
x, pos = leaf(randn(B, T, C)), leaf(randn(T, C))
y = x + pos
dy = randn(B, T, C)
y.backward(dy)
put("pos", dims=dims(B, T, C), x=x, pos=pos, dy=dy, y=y, dx=x.grad, dpos=pos.grad)

# ---- class token, prepended as in ViT (torch.cat of an expanded parameter) -----------------
B, P, C = 3, 5, 7
x, cls = leaf(randn(B, P, C)), leaf(randn(C))
y = torch.cat([cls.view(1, 1, C).expand(B, 1, C), x], dim=1)
dy = randn(B, 1 + P, C)
y.backward(dy)
put("cls", dims=dims(B, P, C), x=x, cls=cls, dy=dy, y=y, dx=x.grad, dcls=cls.grad)

# ---- patchify: judged by a conv with kernel = stride = PS, as ViT's patch embedding --------
# H, W not multiples of PS in the first case: the conv drops the leftovers, and so must we.
PATCH_CASES = [(2, 3, 10, 9, 3, 5), (1, 2, 8, 8, 4, 7), (2, 1, 5, 5, 1, 3)]
for i, (B, IC, H, W, PS, OC) in enumerate(PATCH_CASES):
    img = leaf(randn(B, IC, H, W))
    w = leaf(randn(OC, IC, PS, PS, scale=0.5))
    b = leaf(randn(OC))
    tokens = F.conv2d(img, w, b, stride=PS).flatten(2).transpose(1, 2)  # (B, GH*GW, OC)
    dy = randn(*tokens.shape)
    tokens.backward(dy)
    put(f"patch{i}", dims=dims(B, IC, H, W, PS, OC), img=img, w=w, b=b, dy=dy, tokens=tokens,
        dimg=img.grad, dw=w.grad, db=b.grad)

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                    "ops_transformer.safetensors")
save(path, OUT, {"generator": "tests/ref/gen_ops_transformer.py",
                 "torch": torch.__version__})
print(f"{path}: {len(OUT)} tensors, {os.path.getsize(path)} bytes")
