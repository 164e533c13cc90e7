"""Goldens for the optimizers, gradient clipping and LR schedules (tests/test_optim.c).

Writes tests/data/optim.safetensors.  Four small parameter tensors live in one flat block of
N_FLOATS floats as libmcnn lays them out, with unused floats between them (which no optimizer
may touch): the table is stored as table_offset, table_numel, table_decay (I32).  torch.optim
sees the same tensors (float64) in two parameter groups: decay = 1 tensors with the config's
weight_decay, decay = 0 tensors with weight_decay 0.

  p0 (N_FLOATS)             initial parameters (the gaps hold 7.0)
  grads (STEPS, N_FLOATS)   the gradient given at each step (non-zero in the gaps too)
  <cfg>_params (STEPS, N)   parameters after each step, for every config in CONFIGS
  <cfg>_m, <cfg>_v (N)      optimizer state after the last step (momentum_buffer or exp_avg,
                            exp_avg_sq), zero in the gaps
  clip_g, clip_{1,100}_g, clip_{1,100}_norm   clip_grad_norm_ on three tensors (600, 300, 100)
                            with max_norm 1 (clips) and 100 (does not)
  lr_<sched> (STEPS_LR)     learning rate at steps 0 .. STEPS_LR-1 from torch.optim.lr_scheduler
The hyper-parameters are repeated in tests/test_optim.c (as doubles: F32 storage would round
them).  Run: /usr/bin/python3 tests/ref/gen_optim.py   (torch 1.13)"""
import math
import os
import sys

import torch
from torch.optim import SGD, Adam, AdamW
from torch.optim.lr_scheduler import (CosineAnnealingLR, LambdaLR, LinearLR, SequentialLR,
                                      StepLR)

sys.path.insert(0, os.path.dirname(__file__))
from safetensors_io import save  # noqa: E402

torch.manual_seed(5)
torch.set_default_dtype(torch.float64)
STEPS = 6
# (name, shape, offset, decay): a weight, its bias, another weight, a norm gain
TABLE = [('w0', (3, 4), 0, 1), ('b0', (4,), 16, 0), ('w1', (2, 3), 20, 1), ('ln', (3,), 26, 0)]
N_FLOATS = 32


def numel(shape):
    return math.prod(shape)


def f32(t):
    return t.float().double()


p0 = torch.full((N_FLOATS,), 7.0)
for _, shape, off, _ in TABLE:
    p0[off:off + numel(shape)] = f32(torch.randn(numel(shape)))
grads = f32(torch.randn(STEPS, N_FLOATS))

out = {'p0': p0, 'grads': grads,
       'table_offset': torch.tensor([t[2] for t in TABLE], dtype=torch.int32),
       'table_numel': torch.tensor([numel(t[1]) for t in TABLE], dtype=torch.int32),
       'table_decay': torch.tensor([t[3] for t in TABLE], dtype=torch.int32)}

# name -> (class, hyper-parameters; weight_decay goes to the decay group only)
CONFIGS = {
    'sgd_momentum': (SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.0)),
    'sgd_nesterov_wd': (SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    'sgd_momentum_wd': (SGD, dict(lr=0.05, momentum=0.8, weight_decay=0.05)),
    'sgd_plain_wd': (SGD, dict(lr=0.1, momentum=0.0, weight_decay=0.01)),
    'adam': (Adam, dict(lr=1e-2)),
    'adam_wd': (Adam, dict(lr=1e-2, betas=(0.85, 0.98), eps=1e-6, weight_decay=0.1)),
    'adam_big_eps': (Adam, dict(lr=1e-2, eps=1e-2, weight_decay=0.01)),  # shows where eps goes
    'adamw': (AdamW, dict(lr=1e-2, weight_decay=0.1)),
    'adamw_sched': (AdamW, dict(lr=1e-2, weight_decay=0.5)),  # lr from SCHED_FOR_ADAMW
}


def split(flat):
    return [flat[off:off + numel(shape)].clone().reshape(shape).requires_grad_(True)
            for _, shape, off, _ in TABLE]


def cosine_warmup(opt, start, warmup, total, eta_min):
    return SequentialLR(opt, [LinearLR(opt, start_factor=start, total_iters=warmup),
                              CosineAnnealingLR(opt, T_max=total - warmup, eta_min=eta_min)],
                        milestones=[warmup])


for name, (cls, hp) in CONFIGS.items():
    tensors = split(p0)
    wd = hp.pop('weight_decay', None)
    groups = [{'params': [t for t, row in zip(tensors, TABLE) if row[3] == 1]},
              {'params': [t for t, row in zip(tensors, TABLE) if row[3] == 0], 'weight_decay': 0.0}]
    if wd is not None:
        groups[0]['weight_decay'] = wd
    opt = cls(groups, **hp)
    sched = cosine_warmup(opt, 0.1, 2, STEPS, 1e-3) if name == 'adamw_sched' else None
    after = torch.empty(STEPS, N_FLOATS)
    for s in range(STEPS):
        for t, (_, shape, off, _) in zip(tensors, TABLE):
            t.grad = grads[s, off:off + numel(shape)].reshape(shape).clone()
        opt.step()
        if sched:
            sched.step()
        flat = p0.clone()
        for t, (_, shape, off, _) in zip(tensors, TABLE):
            flat[off:off + numel(shape)] = t.detach().reshape(-1)
        after[s] = flat
    out[name + '_params'] = after
    m, v = torch.zeros(N_FLOATS), torch.zeros(N_FLOATS)
    for t, (_, shape, off, _) in zip(tensors, TABLE):
        st = opt.state[t]
        if 'momentum_buffer' in st and st['momentum_buffer'] is not None:
            m[off:off + numel(shape)] = st['momentum_buffer'].reshape(-1)
        if 'exp_avg' in st:
            m[off:off + numel(shape)] = st['exp_avg'].reshape(-1)
            v[off:off + numel(shape)] = st['exp_avg_sq'].reshape(-1)
    out[name + '_m'], out[name + '_v'] = m, v

# ---- clip_grad_norm_ -------------------------------------------------------------------------
g = f32(torch.randn(1000) * 0.2)
out['clip_g'] = g
for max_norm in (1, 100):
    ts = [t.clone().requires_grad_(True) for t in (g[:600], g[600:900], g[900:])]
    for t, src in zip(ts, (g[:600], g[600:900], g[900:])):
        t.grad = src.clone()
    total = torch.nn.utils.clip_grad_norm_(ts, max_norm)
    out[f'clip_{max_norm}_norm'] = total.reshape(1)
    out[f'clip_{max_norm}_g'] = torch.cat([t.grad for t in ts])

# ---- LR schedules: lr at steps 0 .. STEPS_LR-1, read before each optimizer step --------------
STEPS_LR = 31
BASE = 0.1


def trace(make):
    opt = SGD([torch.zeros(1, requires_grad=True)], lr=BASE)
    sched = make(opt)
    lrs = []
    for _ in range(STEPS_LR):
        lrs.append(opt.param_groups[0]['lr'])
        opt.step()
        sched.step()
    return torch.tensor(lrs)


SCHEDULES = {  # must match the mcnn_lr_schedule rows in tests/test_optim.c
    'cos_warmup': lambda o: cosine_warmup(o, 0.1, 5, 30, 1e-3),        # W 5, f0 0.1, T 30
    'cos_plain': lambda o: CosineAnnealingLR(o, T_max=30, eta_min=0.0),  # W 0, T 30
    'cos_from_zero': lambda o: SequentialLR(o, [LambdaLR(o, lambda s: s / 4),  # f0 0 (LinearLR
                                                CosineAnnealingLR(o, T_max=26, eta_min=0.01)],
                                            milestones=[4]),           # refuses 0): W 4, T 30
    'step': lambda o: StepLR(o, step_size=7, gamma=0.5),
    'step_warmup': lambda o: SequentialLR(o, [LinearLR(o, start_factor=0.25, total_iters=3),
                                              StepLR(o, step_size=7, gamma=0.5)], milestones=[3]),
}
for name, make in SCHEDULES.items():
    out['lr_' + name] = trace(make)

path = os.path.join(os.path.dirname(__file__), '..', 'data', 'optim.safetensors')
save(path, out, {'generator': 'tests/ref/gen_optim.py', 'torch': torch.__version__})
print(f'wrote {path}: {len(out)} tensors, {os.path.getsize(path)} bytes')
