"""Training throughput (shots/s) of the LSTM and transformer shot models, libmcnn against the
same models in PyTorch, side by side in one run, alternating (C, torch, C, torch, ...), so both
see the same machine load.  Run the whole of it under the CPU lock:
    make build/bench/bench_shot_models
    flock /tmp/mcnn-cpu.lock /usr/bin/python3 bench/compare_shot_models.py [rounds]
Sizes as MovieCLIP's: D 768, K 20, 150 labels, batch 32, lengths 8-20; LSTM 2 layers hidden 512,
transformer width 256, 2 blocks, 4 heads.  A step: forward, BCE, backward, AdamW."""
import math
import os
import platform
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'tests', 'ref'))
B, K, D, NC, STEPS = 32, 20, 768, 150, 20
torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '2')))


def shot_models():
    # the golden generator's modules, at float32 and these sizes
    import importlib.util
    spec = importlib.util.spec_from_file_location('g', os.path.join(os.path.dirname(__file__), '..',
                                                  'tests', 'ref', 'gen_shot_models.py'))
    src = open(spec.origin).read().split('def randomize')[0]
    ns = {'__file__': spec.origin}
    exec(src.replace('B, K, D, NC = 4, 6, 5, 3', f'B, K, D, NC = {B}, {K}, {D}, {NC}')
             .replace('torch.set_default_dtype(torch.float64)', ''), ns)
    return {'lstm': ns['Lstm'](512, 2), 'transformer': ns['Transformer'](256, 2, 4)}


def torch_rate(model):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(B, K, D, generator=g)
    y = (torch.rand(B, NC, generator=g) < 0.05).float()
    lengths = torch.randint(8, 21, (B,), generator=g)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-3)

    def step():
        opt.zero_grad()
        F.binary_cross_entropy_with_logits(model(x, lengths), y).backward()
        opt.step()
    step()
    t0 = time.perf_counter()
    for _ in range(STEPS):
        step()
    return STEPS * B / (time.perf_counter() - t0)


def c_rate(kind):
    exe = os.path.join(os.environ.get('MCNN_BUILD', 'build'), 'bench', 'bench_shot_models')
    out = subprocess.run([exe, kind, str(STEPS)], check=True, capture_output=True, text=True).stdout
    return float(out.split()[1])


def cpu_name():
    for line in open('/proc/cpuinfo'):
        if line.startswith('model name'):
            return line.split(':', 1)[1].strip()
    return platform.processor()


rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
models = shot_models()
print(f'CPU: {cpu_name()}, {os.cpu_count()} cores; torch {torch.__version__}, '
      f'{torch.get_num_threads()} threads; {rounds} rounds of {STEPS} steps, batch {B}')
for kind in ('lstm', 'transformer'):
    c, t = [], []
    for _ in range(rounds):
        c.append(c_rate(kind))
        t.append(torch_rate(models[kind]))
    print(f'{kind:12s} libmcnn {max(c):8.1f} shots/s   torch {max(t):8.1f} shots/s   '
          f'ratio {max(c) / max(t):.2f}   (best of {rounds}; all: {[round(v) for v in c]} vs '
          f'{[round(v) for v in t]})')
