"""CLIP models from their weights files, libmcnn against PyTorch, in one run, the sides alternating.

    make bench && /usr/bin/python3 tests/ref/gen_full_clip.py ViT-L-14 ViT-L-14-336px
    /usr/bin/python3 bench/compare_clip_files.py [--dir build/full] [--models ViT-L-14,...]
        [--batches 1,8] [--rounds 2] [--threads 2]

For each archive (OpenAI's TorchScript layout, as tests/ref/gen_full_clip.py writes it; a real
ViT-L-14.pt from weights/download.sh works the same) and batch: images/s and prompts/s of
build/bench/bench_clip_file against PyTorch running OpenAI's clip/model.py architecture built
from the same archive as clip.load(jit=False) does on a CPU (float32, eager), one process per
measurement, rounds alternating, the best of each side kept.  Then loading: libmcnn from the .pt
and from the same weights converted by mcnn-convert to .safetensors, PyTorch's torch.jit.load +
build, each with its peak RSS, page cache warm (one untimed load first).

PyTorch gets a real BLAS: Debian's python3-torch calls libblas.so.3, which is the reference
(netlib) BLAS unless OpenBLAS is installed (1.9 against 96 GFLOP/s on a 1024^3 product here).
Give --openblas-dir the folder of OpenBLAS's libblas.so.3 (default: Debian's
/usr/lib/x86_64-linux-gnu/openblas-pthread); it is put first on PyTorch's LD_LIBRARY_PATH.
Both sides run with OMP_WAIT_POLICY=PASSIVE and --threads threads."""
import argparse
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BENCH = os.path.join(ROOT, 'build', 'bench', 'bench_clip_file')
CONVERT = os.path.join(ROOT, 'build', 'mcnn-convert')


def build_clip(path):
    """clip.load(path, device='cpu', jit=False): the state dict of the archive into model.py's
    architecture (tests/ref/gen_torch_files.py mirrors it), as float32."""
    import torch
    sys.path.insert(0, os.path.join(ROOT, 'tests', 'ref'))
    from gen_torch_files import CLIP
    sd = torch.jit.load(path, map_location='cpu').state_dict()
    width = sd['visual.conv1.weight'].shape[0]
    patch = sd['visual.conv1.weight'].shape[-1]
    grid = round((sd['visual.positional_embedding'].shape[0] - 1) ** 0.5)
    tw = sd['ln_final.weight'].shape[0]
    model = CLIP(embed_dim=sd['text_projection'].shape[1], image_resolution=patch * grid,
                 vision_layers=len({k.split('.')[3] for k in sd if k.startswith('visual.transformer.resblocks')}),
                 vision_width=width, vision_patch_size=patch,
                 context_length=sd['positional_embedding'].shape[0], vocab_size=sd['token_embedding.weight'].shape[0],
                 transformer_width=tw, transformer_heads=tw // 64,
                 transformer_layers=len({k.split('.')[2] for k in sd if k.startswith('transformer.resblocks')}),
                 vision_heads=width // 64)
    model.load_state_dict(sd)
    return model.float().eval(), patch * grid


def prompts(n):
    import torch
    t = torch.zeros(n, 77, dtype=torch.long)
    for i in range(n):
        t[i, 0] = 49406
        for j in range(1, 14):
            t[i, j] = 320 + (i * 53 + j * 101) % 40000
        t[i, 14] = 49407
    return t


def torch_side(path, what, batch, iters, threads):
    """Runs in a subprocess: prints the same line as bench_clip_file."""
    import resource

    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(2)
    t0 = time.perf_counter()
    model, size = build_clip(path)
    load_ms = (time.perf_counter() - t0) * 1e3
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if what == 'load':
        print(f'load 1 {threads} {load_ms:.2f} {load_ms:.2f} {1e3 / load_ms:.2f} {rss:.0f} {load_ms:.2f}')
        return
    images, tokens = torch.randn(batch, 3, size, size), prompts(batch)
    best = 1e30
    with torch.inference_mode():
        for i in range(iters + 1):
            s = time.perf_counter()
            model.encode_image(images) if what == 'image' else model.encode_text(tokens)
            t = time.perf_counter() - s
            if i > 0:
                best = min(best, t)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f'{what} {batch} {threads} {best * 1e3:.2f} {best * 1e3 / batch:.2f} {batch / best:.2f} '
          f'{rss:.0f} {load_ms:.2f}')


def run(cmd, env):
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        print(f'# failed: {" ".join(cmd)}: {out.stderr.strip()[-300:]}', file=sys.stderr)
        return None
    f = out.stdout.strip().split('\n')[-1].split()
    return {'ms': float(f[3]), 'per_s': float(f[5]), 'rss': float(f[6]), 'load_ms': float(f[7])}


def best(a, b):
    if a is None or b is None:
        return a or b
    return {'ms': min(a['ms'], b['ms']), 'per_s': max(a['per_s'], b['per_s']),
            'rss': max(a['rss'], b['rss']), 'load_ms': min(a['load_ms'], b['load_ms'])}


def gflop(path, what, batch):
    """Multiply-adds x 2 of one encode from the archive's name (OpenAI's ViT configurations)."""
    m = re.search(r'ViT-([BL])-(\d+)(?:-(\d+)px)?', os.path.basename(path))
    if not m:
        return None
    big = m.group(1) == 'L'
    if what == 'image':
        size, patch = int(m.group(3) or 224), int(m.group(2))
        W, L = (1024, 24) if big else (768, 12)
        T = (size // patch) ** 2 + 1
        per = (T - 1) * W * 3 * patch * patch + L * (12 * T * W * W + 2 * T * T * W)
    else:
        W, L, T = (768 if big else 512), 12, 15  # libmcnn stops at the longest prompt's end
        per = L * (12 * T * W * W + 2 * T * T * W)
    return 2 * per * batch / 1e9


def main():
    if len(sys.argv) > 1 and sys.argv[1] == '--torch-side':
        torch_side(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument('--dir', default=os.path.join(ROOT, 'build', 'full'))
    ap.add_argument('--models', default='ViT-L-14,ViT-L-14-336px')
    ap.add_argument('--batches', default='1,8')
    ap.add_argument('--rounds', type=int, default=2)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--openblas-dir', default='/usr/lib/x86_64-linux-gnu/openblas-pthread')
    args = ap.parse_args()
    if not os.path.exists(BENCH):
        sys.exit('build the benchmarks first: make bench')
    if not os.path.exists(os.path.join(args.openblas_dir, 'libblas.so.3')):
        print(f'# no OpenBLAS in {args.openblas_dir}: PyTorch runs on whatever libblas.so.3 is',
              file=sys.stderr)
    base = {k: v for k, v in os.environ.items() if not k.startswith(('OMP_', 'OPENBLAS_'))}
    ours_env = dict(base, OMP_NUM_THREADS=str(args.threads), OMP_WAIT_POLICY='PASSIVE')
    lib = args.openblas_dir + (':' + base['LD_LIBRARY_PATH'] if base.get('LD_LIBRARY_PATH') else '')
    torch_env = dict(ours_env, OPENBLAS_NUM_THREADS=str(args.threads), LD_LIBRARY_PATH=lib)
    print(f'threads {args.threads}, best of {args.rounds} alternating rounds')
    print('| model | encoder | batch | libmcnn ms/iter | PyTorch ms/iter | ratio (ours/PyTorch) '
          '| libmcnn per s | PyTorch per s | libmcnn GFLOP/s | libmcnn peak MB | PyTorch peak MB |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    loads = []
    for name in args.models.split(','):
        pt = os.path.join(args.dir, name + '.pt')
        st = os.path.join(args.dir, name + '.safetensors')
        if not os.path.exists(st):
            subprocess.run([CONVERT, pt, st], check=True, stdout=subprocess.DEVNULL)
        for what in ('image', 'text'):
            for batch in [int(b) for b in args.batches.split(',')]:
                iters = 1 if what == 'image' and batch > 1 else 3
                ours = theirs = None
                for _ in range(args.rounds):
                    ours = best(ours, run([BENCH, pt, what, str(batch), str(iters)], ours_env))
                    theirs = best(theirs, run([sys.executable, __file__, '--torch-side', pt, what,
                                               str(batch), str(iters), str(args.threads)], torch_env))
                g = gflop(pt, what, batch)
                cells = [f"{ours['ms']:.1f}" if ours else '-', f"{theirs['ms']:.1f}" if theirs else '-',
                         f"{ours['ms'] / theirs['ms']:.2f}" if ours and theirs else '-',
                         f"{ours['per_s']:.2f}" if ours else '-', f"{theirs['per_s']:.2f}" if theirs else '-',
                         f"{g / ours['ms'] * 1e3:.0f}" if ours and g else '-',
                         f"{ours['rss']:.0f}" if ours else '-', f"{theirs['rss']:.0f}" if theirs else '-']
                print(f'| {name} | {what} | {batch} | ' + ' | '.join(cells) + ' |', flush=True)
        got = {}
        for rnd in range(args.rounds + 1):  # the first round warms the page cache and is dropped
            for side, cmd, env in (('ours .pt', [BENCH, pt, 'load'], ours_env),
                                   ('ours .safetensors', [BENCH, st, 'load'], ours_env),
                                   ('PyTorch .pt', [sys.executable, __file__, '--torch-side', pt, 'load', '1',
                                                    '1', str(args.threads)], torch_env)):
                r = run(cmd, env)
                if rnd > 0:
                    got[side] = best(got.get(side), r)
        loads.append((name, os.path.getsize(pt), os.path.getsize(st), got))
    print('\n| model | file MB (.pt / .safetensors) | libmcnn load .pt ms | libmcnn load .safetensors ms '
          '| PyTorch jit.load + build ms | libmcnn peak MB .pt | libmcnn peak MB .safetensors | PyTorch peak MB |')
    print('|---|---|---|---|---|---|---|---|')
    for name, pts, sts, got in loads:
        def cell(side, key):
            r = got.get(side)
            return f'{r[key]:.0f}' if r else '-'
        print(f'| {name} | {pts / 1e6:.0f} / {sts / 1e6:.0f} | {cell("ours .pt", "ms")} '
              f'| {cell("ours .safetensors", "ms")} | {cell("PyTorch .pt", "ms")} | {cell("ours .pt", "rss")} '
              f'| {cell("ours .safetensors", "rss")} | {cell("PyTorch .pt", "rss")} |')


if __name__ == '__main__':
    main()
