"""Goldens for the CNN ops: linear, conv2d, batch norm, relu, max/avg/global-average pooling.

Every case stores its inputs, a random upstream gradient dy, PyTorch's forward output and
PyTorch's gradients wrt every input and parameter (autograd of y with grad_outputs = dy),
all computed in float64 from float32-representable inputs, stored as float32.
The configuration of each case is an I32 tensor "<case>.cfg", so the C test reads its shapes
from here and cannot drift from the generator:
  linear:  [N, IN, OUT, has_bias]
  conv:    [N, IC, H, W, OC, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups, has_bias]
  bn:      [N, C, HW]   and "<case>.hyper" F32 [momentum, eps]
  pool:    [N, C, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w]
  gap:     [N, C, HW]
  relu:    [n]
Writes tests/data/ops_cnn.safetensors (about 240 kB).
Run: /usr/bin/python3 tests/ref/gen_ops_cnn.py   (torch 1.13)"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from safetensors_io import save  # noqa: E402

torch.manual_seed(1234)
OUT = {}


def rnd(*shape, scale=1.0, shift=0.0):
    """float32-representable float64 values, so C (reading float32) sees the same inputs."""
    return (torch.randn(*shape) * scale + shift).float().double()


def leaf(t):
    return t.clone().requires_grad_(True)


def grads(y, dy, inputs):
    return torch.autograd.grad(y, inputs, grad_outputs=dy)


def i32(v):
    return np.array(v, dtype=np.int32)


# ---- linear ------------------------------------------------------------------------------
def linear_case(name, N, IN, OUT_, bias):
    x, w = leaf(rnd(N, IN)), leaf(rnd(OUT_, IN, scale=IN ** -0.5))
    b = leaf(rnd(OUT_)) if bias else None
    y = F.linear(x, w, b)
    dy = rnd(*y.shape)
    ins = [x, w] + ([b] if bias else [])
    g = grads(y, dy, ins)
    OUT.update({f'{name}.cfg': i32([N, IN, OUT_, int(bias)]), f'{name}.x': x, f'{name}.w': w,
                f'{name}.dy': dy, f'{name}.y': y, f'{name}.dx': g[0], f'{name}.dw': g[1]})
    if bias:
        OUT.update({f'{name}.b': b, f'{name}.db': g[2]})


linear_case('linear_bias', 5, 7, 3, True)
linear_case('linear_nobias', 4, 9, 6, False)
linear_case('linear_odd', 1, 33, 13, True)


# ---- conv2d ------------------------------------------------------------------------------
def conv_case(name, N, IC, H, W, OC, KH, KW, stride=(1, 1), pad=(0, 0), dil=(1, 1), groups=1,
              bias=True):
    x = leaf(rnd(N, IC, H, W))
    w = leaf(rnd(OC, IC // groups, KH, KW, scale=(IC // groups * KH * KW) ** -0.5))
    b = leaf(rnd(OC)) if bias else None
    y = F.conv2d(x, w, b, stride=stride, padding=pad, dilation=dil, groups=groups)
    dy = rnd(*y.shape)
    ins = [x, w] + ([b] if bias else [])
    g = grads(y, dy, ins)
    OUT.update({f'{name}.cfg': i32([N, IC, H, W, OC, KH, KW, stride[0], stride[1], pad[0], pad[1],
                                    dil[0], dil[1], groups, int(bias)]),
                f'{name}.x': x, f'{name}.w': w, f'{name}.dy': dy, f'{name}.y': y,
                f'{name}.dx': g[0], f'{name}.dw': g[1]})
    if bias:
        OUT.update({f'{name}.b': b, f'{name}.db': g[2]})


conv_case('conv_1x1', 2, 5, 6, 7, 7, 1, 1)                                   # skips im2col
conv_case('conv_1x1_s2', 2, 3, 7, 6, 5, 1, 1, stride=(2, 2), bias=False)     # ResNet downsample
conv_case('conv_1x1_g2', 2, 4, 5, 3, 6, 1, 1, groups=2)                       # skips im2col, groups
conv_case('conv_1x1_s2x1', 1, 3, 5, 4, 2, 1, 1, stride=(2, 1), bias=False)   # 1×1 that needs im2col
conv_case('conv_3x3_p1', 2, 3, 8, 7, 5, 3, 3, pad=(1, 1))
conv_case('conv_3x3_s2', 2, 5, 9, 8, 7, 3, 3, stride=(2, 2), pad=(1, 1), bias=False)
conv_case('conv_7x7_s2_p3', 2, 3, 15, 13, 5, 7, 7, stride=(2, 2), pad=(3, 3), bias=False)
conv_case('conv_dil2', 1, 3, 9, 10, 5, 3, 3, pad=(2, 2), dil=(2, 2))
conv_case('conv_groups2', 2, 6, 7, 7, 4, 3, 3, pad=(1, 1), groups=2)
conv_case('conv_depthwise', 2, 5, 6, 8, 5, 3, 3, pad=(1, 1), groups=5)
conv_case('conv_depthwise_x2', 1, 3, 5, 6, 6, 3, 3, stride=(2, 2), pad=(1, 1), groups=3,
          bias=False)                                                          # channel multiplier 2
# maps of 256+ outputs go one image per GEMM; the small ones above are batched side by side
conv_case('conv_3x3_big', 2, 3, 17, 16, 5, 3, 3, pad=(1, 1))
conv_case('conv_1x1_big', 3, 5, 16, 17, 4, 1, 1, bias=False)                  # skips im2col
conv_case('conv_asym', 1, 4, 5, 9, 3, 3, 2, stride=(2, 1), pad=(1, 0), dil=(1, 2), bias=False)


# ---- batch norm --------------------------------------------------------------------------
def bn_case(name, N, C, H, W, shift=0.0, scale=1.0, momentum=0.1, eps=1e-5):
    x = leaf(rnd(N, C, H, W, scale=scale, shift=shift))
    gamma, beta = leaf(rnd(C, scale=0.5, shift=1.0)), leaf(rnd(C, scale=0.5))
    rm0, rv0 = rnd(C, scale=0.3), rnd(C, scale=0.2, shift=1.0).abs()
    rm, rv = rm0.clone(), rv0.clone()
    y = F.batch_norm(x, rm, rv, gamma, beta, training=True, momentum=momentum, eps=eps)
    dy = rnd(*y.shape)
    g = grads(y, dy, [x, gamma, beta])
    OUT.update({f'{name}.cfg': i32([N, C, H * W]), f'{name}.hyper': np.array([momentum, eps]),
                f'{name}.x': x, f'{name}.gamma': gamma, f'{name}.beta': beta,
                f'{name}.running_mean_in': rm0, f'{name}.running_var_in': rv0,
                f'{name}.dy': dy, f'{name}.y': y, f'{name}.dx': g[0], f'{name}.dgamma': g[1],
                f'{name}.dbeta': g[2], f'{name}.running_mean': rm, f'{name}.running_var': rv})
    # eval mode on the same inputs, with the (input) running statistics as constants
    ye = F.batch_norm(x, rm0, rv0, gamma, beta, training=False, eps=eps)
    ge = grads(ye, dy, [x, gamma, beta])
    OUT.update({f'{name}.eval_y': ye, f'{name}.eval_dx': ge[0], f'{name}.eval_dgamma': ge[1],
                f'{name}.eval_dbeta': ge[2]})


bn_case('bn', 3, 5, 4, 3)
# a large mean next to a small spread: float sums or a float-rounded mean would lose digits
bn_case('bn_shift', 4, 3, 5, 5, shift=500.0, scale=0.1, momentum=0.3, eps=1e-3)
bn_case('bn_shift_far', 2, 2, 6, 7, shift=3000.0, scale=0.05, momentum=0.3, eps=1e-4)


# ---- pooling -----------------------------------------------------------------------------
def pool_case(name, kind, x, K, stride, pad):
    N, C, H, W = x.shape
    x = leaf(x)
    if kind == 'max':
        y, idx = F.max_pool2d(x, K, stride, pad, return_indices=True)
        OUT[f'{name}.idx'] = idx.numpy().astype(np.int32)
    else:
        y = F.avg_pool2d(x, K, stride, pad, count_include_pad=True)
    dy = rnd(*y.shape)
    (dx,) = grads(y, dy, [x])
    OUT.update({f'{name}.cfg': i32([N, C, H, W, K[0], K[1], stride[0], stride[1], pad[0], pad[1]]),
                f'{name}.x': x, f'{name}.dy': dy, f'{name}.y': y, f'{name}.dx': dx})


pool_case('maxpool_3x3_s2_p1', 'max', rnd(2, 3, 9, 8), (3, 3), (2, 2), (1, 1))
pool_case('maxpool_2x2_s2', 'max', rnd(1, 2, 7, 6), (2, 2), (2, 2), (0, 0))
# small integers: many ties inside each window (PyTorch keeps the first max), overlapping windows
pool_case('maxpool_ties', 'max', torch.randint(0, 3, (2, 2, 6, 7)).double(), (3, 3), (1, 1), (1, 1))
pool_case('maxpool_rect', 'max', rnd(1, 3, 8, 11), (2, 3), (2, 2), (1, 1))
pool_case('avgpool_3x3_s2_p1', 'avg', rnd(2, 3, 7, 9), (3, 3), (2, 2), (1, 1))
pool_case('avgpool_2x2_s2', 'avg', rnd(1, 2, 5, 6), (2, 2), (2, 2), (0, 0))


def gap_case(name, N, C, H, W):
    x = leaf(rnd(N, C, H, W))
    y = F.adaptive_avg_pool2d(x, 1).flatten(1)
    dy = rnd(*y.shape)
    (dx,) = grads(y, dy, [x])
    OUT.update({f'{name}.cfg': i32([N, C, H * W]), f'{name}.x': x, f'{name}.dy': dy,
                f'{name}.y': y, f'{name}.dx': dx})


gap_case('gap', 3, 4, 5, 3)


# ---- relu --------------------------------------------------------------------------------
x = rnd(2, 3, 4, 5)
x.view(-1)[::17] = 0.0  # exact zeros: the gradient there is 0
x = leaf(x)
y = F.relu(x)
dy = rnd(*y.shape)
(dx,) = grads(y, dy, [x])
OUT.update({'relu.cfg': i32([x.numel()]), 'relu.x': x, 'relu.dy': dy, 'relu.y': y, 'relu.dx': dx})

path = os.path.join(os.path.dirname(__file__), '..', 'data', 'ops_cnn.safetensors')
save(path, OUT, {'generator': 'tests/ref/gen_ops_cnn.py', 'torch': torch.__version__})
print(f'wrote {path}: {len(OUT)} tensors, {os.path.getsize(path)} bytes')
