"""libmcnn's fp32 / bf16 / int8 inference against PyTorch and ONNX Runtime, the same weights, in
one run, the sides alternating (docs/precision.md, "Against PyTorch and ONNX Runtime").

    make build/libmcnn.so
    python3 -m venv /tmp/venv-bench && /tmp/venv-bench/bin/pip install onnxruntime onnx
    /tmp/venv-bench/bin/pip install torch torchvision        # optional: the PyTorch 2.x columns
    P="env LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread /usr/bin/python3"
    $P bench/compare_lowp_baselines.py prepare               # weights, inputs, ONNX files
    flock /tmp/mcnn-cpu.lock $P bench/compare_lowp_baselines.py run \
        --only clip_image:1,clip_image:16 --rounds 2 --json /tmp/lowp-baselines/clip_image.json
    $P bench/compare_lowp_baselines.py table /tmp/lowp-baselines/*.json

Workloads (full-size architectures, random weights: speed does not depend on the values):
CLIP ViT-B/32 image tower (OpenAI's clip/model.py layout, tests/ref/gen_torch_files.py) at batch
1 and 16, its text tower on 179 MovieCLIP-shaped prompts, torchvision's ResNet-50 and ViT-B/16 at
batch 1 and 16.  `prepare` builds each model once in PyTorch (torch 1.13, Debian's), writes its
weights (torch.save's .pth, which libmcnn reads too), exports it to
ONNX (opset 14) and quantizes that with onnxruntime.quantization (the venv's python), and writes
the inputs (random normal images, token rows) as .npy, so every side reads the same.

Sides, each measurement a child process of its own (its peak RSS is its own):
  mcnn_fp32 / mcnn_fp32p / mcnn_bf16 / mcnn_int8   libmcnn through apps/python/libmcnn.py:
      default unpacked fp32, mcnn_*_set_precision(FP32 / BF16 / INT8)
  torch_fp32 / torch_bf16 / torch_int8             PyTorch 1.13 (OpenBLAS first on its path):
      eager fp32 in inference_mode; torch.autocast('cpu', torch.bfloat16);
      int8: quantize_dynamic({nn.Linear}, qint8) for the transformers, FX static
      post-training quantization (prepare_fx / convert_fx, 8 calibration images) for ResNet-50
  ort_fp32 / ort_int8 / ort_int8r / ort_int8s       ONNX Runtime, the venv's: fp32; int8 by
      quantize_dynamic with its defaults (MatMul -> MatMulInteger, Conv -> ConvInteger);
      int8r the same with per_channel=True, reduce_range=True (transformers); int8s, ResNet-50
      only, quantize_static (QDQ, per-channel weights, MinMax on the 8 calibration images)
  torch2_fp32 / torch2_bf16                        PyTorch 2.x from the venv, if it has one
Every side: 2 threads (OMP_NUM_THREADS, torch.set_num_threads, ORT intra_op_num_threads),
OMP_WAIT_POLICY=PASSIVE; one untimed warm-up, then the best of up to --iters runs (stopping
after --budget seconds; a warm-up longer than --budget is itself the measurement); rounds go
through every side in turn, the order reversed every other round, and the best per side is
kept.  A side slower than --slow-s seconds a batch is measured in one round only (it is 10-50x
off, far beyond the machine's 10-20 % noise), and one cut off by --timeout is recorded as
"below batch / timeout".  To keep each hold of the CPU lock short, split a workload's rounds
over several runs (--rounds 1, --sides in reverse order the second time): `table` keeps the
best of each side over the files it is given.  Accuracy: the cosine of each output row to
PyTorch 1.13 fp32's (the reference), the smallest over the rows, and top-1 agreement for the
classifiers."""
import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_DIR = '/tmp/lowp-baselines'
# Debian's OpenBLAS (libopenblas0-pthread), or where this machine unpacked it without installing
OPENBLAS = next((p for p in ('/usr/lib/x86_64-linux-gnu/openblas-pthread',
                             '/tmp/measure-blas/root/usr/lib/x86_64-linux-gnu/openblas-pthread')
                 if os.path.isdir(p)), '/usr/lib/x86_64-linux-gnu/openblas-pthread')
SEED = 0
MAX_BATCH = 16
PROMPTS = 179

MODELS = ('clip_image', 'clip_text', 'resnet50', 'vit_b16')
MCNN_SIDES = ('mcnn_fp32', 'mcnn_fp32p', 'mcnn_bf16', 'mcnn_int8')
TORCH_SIDES = ('torch_fp32', 'torch_bf16', 'torch_int8')
ORT_SIDES = ('ort_fp32', 'ort_int8', 'ort_int8r', 'ort_int8s')
TORCH2_SIDES = ('torch2_fp32', 'torch2_bf16')
REFERENCE = 'torch_fp32'


# ---- the models, built in whichever PyTorch runs this ----------------------------------------
def clip_b32():
    """OpenAI's CLIP ViT-B/32 (clip/model.py's layout and initialisation, float32)."""
    sys.path.insert(0, os.path.join(ROOT, 'tests', 'ref'))
    from gen_full_clip import CONFIGS, initialise
    from gen_torch_files import CLIP
    model = CLIP(context_length=77, vocab_size=49408, **CONFIGS['ViT-B-32'])
    initialise(model, CONFIGS['ViT-B-32'])
    return model.float().eval()


def torch_model(model, weights=None):
    """The architecture of `model`; with weights, the state dict `prepare` wrote."""
    import torch
    import torchvision
    torch.manual_seed(SEED)
    if model.startswith('clip'):
        m = clip_b32() if weights is None else clip_b32_empty()
    elif model == 'resnet50':
        m = torchvision.models.resnet50()
    else:
        m = torchvision.models.vit_b_16()
        if weights is None:  # torchvision zero-initialises the head: every logit would be 0
            torch.nn.init.normal_(m.heads.head.weight, std=0.02)
    if weights is not None:
        m.load_state_dict(torch.load(weights, map_location='cpu'))
    return m.eval()


def clip_b32_empty():
    sys.path.insert(0, os.path.join(ROOT, 'tests', 'ref'))
    from gen_full_clip import CONFIGS
    from gen_torch_files import CLIP
    return CLIP(context_length=77, vocab_size=49408, **CONFIGS['ViT-B-32']).float()


def tower(clip, text):
    """CLIP's encode_text (text) or encode_image as a module's forward (ONNX export, quantizing)."""
    import torch

    class Tower(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.clip = clip

        def forward(self, x):
            return self.clip.encode_text(x) if text else self.clip.encode_image(x)
    return Tower().eval()


def weights_file(d, model):
    return os.path.join(d, ('clip' if model.startswith('clip') else model) + '.pth')


# ---- prepare ----------------------------------------------------------------------------------
def prepare(args):
    import numpy as np
    import torch
    d = args.dir
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(SEED)
    np.save(os.path.join(d, 'images.npy'),
            rng.standard_normal((MAX_BATCH, 3, 224, 224)).astype(np.float32))
    np.save(os.path.join(d, 'calibration.npy'),
            rng.standard_normal((8, 3, 224, 224)).astype(np.float32))
    sys.path.insert(0, HERE)
    from compare_torch import movieclip_like_tokens  # bench_models' prompts (int64 ids)
    np.save(os.path.join(d, 'tokens.npy'), movieclip_like_tokens(PROMPTS).numpy())
    for name in ('clip', 'resnet50', 'vit_b16'):
        model = torch_model(name)
        torch.save(model.state_dict(), weights_file(d, name))
        if name == 'clip':
            export(tower(model, False), torch.zeros(1, 3, 224, 224), d, 'clip_image')
            export(tower(model, True), torch.zeros(2, 77, dtype=torch.long), d, 'clip_text')
        else:
            export(model, torch.zeros(1, 3, 224, 224), d, name)
        print('prepared', name, flush=True)
    venv_python = os.path.join(args.venv, 'bin', 'python')
    subprocess.run([venv_python, __file__, 'quantize', '--dir', d], check=True)


def export(module, example, d, name):
    import torch
    # with gradients on, as 1.13's nn.MultiheadAttention fast path (no ONNX form) needs them off
    torch.onnx.export(module, example, os.path.join(d, name + '.onnx'), opset_version=14,
                      input_names=['x'], output_names=['y'],
                      dynamic_axes={'x': {0: 'batch'}, 'y': {0: 'batch'}})


def quantize(args):
    """In the venv: ONNX Runtime's own int8 of each exported model."""
    import numpy as np
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_dynamic, quantize_static)
    d = args.dir

    def path(name):  # a file already written is kept
        p = os.path.join(d, name + '.onnx')
        return None if os.path.exists(p) else p
    for name in MODELS:
        if path(name + '_int8'):  # the defaults: one scale per weight tensor
            quantize_dynamic(os.path.join(d, name + '.onnx'), path(name + '_int8'),
                             weight_type=QuantType.QInt8)
        if name != 'resnet50' and path(name + '_int8r'):  # ORT's options for accuracy
            quantize_dynamic(os.path.join(d, name + '.onnx'), path(name + '_int8r'),
                             weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
    calibration = np.load(os.path.join(d, 'calibration.npy'))

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.rows = iter([{'x': calibration[i:i + 1]} for i in range(len(calibration))])

        def get_next(self):
            return next(self.rows, None)
    if path('resnet50_int8s'):
        quantize_static(os.path.join(d, 'resnet50.onnx'), path('resnet50_int8s'), Reader(),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    print('quantized', flush=True)


# ---- one side, in a child process ------------------------------------------------------------
def inputs(d, model, batch):
    import numpy as np
    if model == 'clip_text':
        return np.load(os.path.join(d, 'tokens.npy'))[:batch]
    return np.ascontiguousarray(np.load(os.path.join(d, 'images.npy'))[:batch])


def mcnn_runner(d, model, side):
    sys.path.insert(0, os.path.join(ROOT, 'apps', 'python'))
    import libmcnn
    lib = libmcnn.load_library()
    precision = {'mcnn_fp32p': 0, 'mcnn_bf16': 1, 'mcnn_int8': 2}.get(side)
    if model.startswith('clip'):
        m = libmcnn.Clip(weights_file(d, model))
        if precision is not None:
            libmcnn._check(lib.mcnn_clip_set_precision(m._live(), precision))
        if model == 'clip_text':
            return lambda x: m.encode_text([list(map(int, row)) for row in x])
        return m.encode_image
    m = libmcnn.Classifier(weights_file(d, model))
    if precision is not None:
        libmcnn._check(lib.mcnn_classifier_set_precision(m._live(), precision))
    return m.logits


def torch_runner(d, model, side, threads):
    import torch
    torch.set_num_threads(threads)
    m = torch_model(model, weights_file(d, model))
    if model.startswith('clip'):
        m = tower(m, model == 'clip_text')
    if side.endswith('int8'):
        m = torch_int8(m, model, d)
    bf16 = side.endswith('bf16')
    if bf16 and model == 'vit_b16' and torch.__version__.startswith('1.'):
        # 1.13's nn.MultiheadAttention fast path fails under autocast ("expected scalar type
        # BFloat16 but found Float"); training mode skips it, and torchvision's ViT-B/16 has
        # no dropout (p = 0) and no batch norm, so it computes the same function
        m.train()

    def run(x):
        with torch.inference_mode():
            if bf16:
                with torch.autocast('cpu', dtype=torch.bfloat16):
                    y = m(torch.from_numpy(x))
            else:
                y = m(torch.from_numpy(x))
        return y.float().numpy()
    return run


def torch_int8(m, model, d):
    import numpy as np
    import torch
    engines = torch.backends.quantized.supported_engines
    torch.backends.quantized.engine = next(e for e in ('fbgemm', 'x86', 'onednn', 'qnnpack')
                                           if e in engines)
    if model != 'resnet50':  # dynamic quantization covers nn.Linear only
        return torch.ao.quantization.quantize_dynamic(m, {torch.nn.Linear}, dtype=torch.qint8)
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    calibration = torch.from_numpy(np.load(os.path.join(d, 'calibration.npy')))
    prepared = prepare_fx(m, get_default_qconfig_mapping(torch.backends.quantized.engine),
                          (calibration[:1],))
    with torch.no_grad():
        for i in range(len(calibration)):
            prepared(calibration[i:i + 1])
    return convert_fx(prepared)


def ort_runner(d, model, side, threads):
    import onnxruntime as ort
    suffix = {'ort_fp32': '', 'ort_int8': '_int8', 'ort_int8r': '_int8r',
              'ort_int8s': '_int8s'}[side]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    s = ort.InferenceSession(os.path.join(d, model + suffix + '.onnx'), opts,
                             providers=['CPUExecutionProvider'])
    return lambda x: s.run(None, {'x': x})[0]


def side_main(args):
    """One side, one model, several batches: one JSON line per batch on stdout."""
    import numpy as np
    side, model, d = args.side, args.model, args.dir
    t0 = time.perf_counter()
    if side.startswith('mcnn'):
        run = mcnn_runner(d, model, side)
    elif side.startswith('ort'):
        run = ort_runner(d, model, side, args.threads)
    else:
        run = torch_runner(d, model, side, args.threads)
    load = time.perf_counter() - t0
    for batch in map(int, args.batches.split(',')):
        x = inputs(d, model, batch)
        t = time.perf_counter()
        y = np.asarray(run(x), dtype=np.float32)  # the warm-up; its output is the one compared
        t = time.perf_counter() - t
        np.save(os.path.join(d, f'out_{model}_{batch}_{side}.npy'), y)
        # a warm-up longer than the budget is the measurement (PyTorch's emulated bf16: minutes)
        best, spent, n = (t, t, 0) if t > args.budget else (1e30, 0.0, 0)
        while n < args.iters and spent < args.budget or n == 0 and best == 1e30:
            t = time.perf_counter()
            run(x)
            t = time.perf_counter() - t
            best, spent, n = min(best, t), spent + t, n + 1
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({'side': side, 'model': model, 'batch': batch, 'ips': batch / best,
                          'ms': best * 1e3, 'runs': n, 'rss_mb': rss, 'load_s': load}),
              flush=True)


# ---- the parent: rounds -------------------------------------------------------------------------
def python_of(side, args):
    if side.startswith('ort') or side.startswith('torch2'):
        return os.path.join(args.venv, 'bin', 'python')
    return '/usr/bin/python3'


def venv_has(args, module):
    python = os.path.join(args.venv, 'bin', 'python')
    return subprocess.run([python, '-c', f'import {module}'], capture_output=True).returncode == 0


def sides_for(model, args):
    sides = list(MCNN_SIDES) + list(TORCH_SIDES)
    if venv_has(args, 'onnxruntime'):
        sides += [s for s in ORT_SIDES if (s == 'ort_int8s') == (model == 'resnet50')
                  or s in ('ort_fp32', 'ort_int8')]
    if venv_has(args, 'torch') and venv_has(args, 'torchvision'):
        sides += TORCH2_SIDES
    return sides


def run_side(side, model, batches, args):
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OMP_WAIT_POLICY='PASSIVE',
               OPENBLAS_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    if side.startswith('torch_'):  # Debian's torch calls libblas.so.3: OpenBLAS, not netlib's
        env['LD_LIBRARY_PATH'] = args.openblas_dir
    else:
        env.pop('LD_LIBRARY_PATH', None)
    cmd = [python_of(side, args), __file__, 'side', '--side', side, '--model', model,
           '--batches', ','.join(map(str, batches)), '--dir', args.dir,
           '--threads', str(args.threads), '--iters', str(args.iters),
           '--budget', str(args.budget)]
    timed_out = False
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
        stdout = out.stdout
        if out.returncode != 0:
            errors = [x for x in out.stderr.splitlines() if 'Warning' not in x]
            print(f'# {side} {model} failed ({out.returncode}):\n' + '\n'.join(errors[-5:]),
                  file=sys.stderr)
    except subprocess.TimeoutExpired as e:
        print(f'# {side} {model}: timed out after {args.timeout:.0f} s', file=sys.stderr)
        stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else e.stdout or ''
        timed_out = True
    got = [json.loads(line) for line in stdout.splitlines() if line.startswith('{')]
    done = {r['batch'] for r in got}
    # a batch cut off by the timeout: its speed is below batch / timeout, recorded as such
    return got + [{'side': side, 'model': model, 'batch': b, 'ips': 0.0, 'ms': 1e30,
                   'timeout_s': args.timeout} for b in batches if timed_out and b not in done]


def run(args):
    wanted = {}
    for item in args.only.split(','):
        model, batch = item.split(':')
        wanted.setdefault(model, []).append(int(batch))
    results, slow = {}, set()
    peaks = measure_peaks(args.threads)
    for round_ in range(args.rounds):
        for model, batches in wanted.items():
            sides = sides_for(model, args)
            if args.sides:  # these, in this order
                sides = [x for x in args.sides.split(',') if x in sides]
            if round_ % 2:
                sides.reverse()
            for side in sides:
                if (side, model) in slow:
                    continue
                for r in run_side(side, model, batches, args):
                    # a side this slow is measured once: the machine's noise is 10-20 %
                    if r['ms'] > args.slow_s * 1e3:
                        slow.add((side, model))
                    key = f"{r['model']}:{r['batch']}:{side}"
                    print(f"# round {round_ + 1} {key} {r['ips']:.2f}/s ({r.get('runs', 0)} runs)",
                          file=sys.stderr, flush=True)
                    old = results.get(key)
                    if old is None or r['ips'] > old['ips']:
                        results[key] = r
    accuracy(args.dir, results)
    for r in results.values():
        r['macs'] = multiply_adds(r['model'], r['side'], args.dir)
    out = {'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), 'threads': args.threads,
           'versions': versions(args), 'peaks': peaks, 'results': results}
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(out, f, indent=1)
    print_table([out])


def accuracy(d, results):
    """Per result: the smallest row cosine to PyTorch 1.13 fp32's output, top-1 agreement."""
    import numpy as np
    for key, r in results.items():
        if 'timeout_s' in r:
            continue
        ref = os.path.join(d, f"out_{r['model']}_{r['batch']}_{REFERENCE}.npy")
        got = os.path.join(d, f"out_{r['model']}_{r['batch']}_{r['side']}.npy")
        if not (os.path.exists(ref) and os.path.exists(got)):
            continue
        a, b = np.load(ref).astype(np.float64), np.load(got).astype(np.float64)
        cos = (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))
        r['min_cos'] = float(cos.min())
        if not r['model'].startswith('clip'):
            r['top1'] = f"{int((a.argmax(1) == b.argmax(1)).sum())}/{len(a)}"


def versions(args):
    got = {}
    probes = {'torch 1.13': ('/usr/bin/python3', 'import torch; print(torch.__version__)'),
              'onnxruntime': (os.path.join(args.venv, 'bin', 'python'),
                              'import onnxruntime; print(onnxruntime.__version__)'),
              'torch 2.x': (os.path.join(args.venv, 'bin', 'python'),
                            'import torch; print(torch.__version__)')}
    for name, (python, code) in probes.items():
        out = subprocess.run([python, '-c', code], capture_output=True, text=True)
        got[name] = out.stdout.strip() if out.returncode == 0 else 'not available'
    return got


# ---- the work: multiply-adds of one item, counted from the architectures --------------------------
def transformer_macs(tokens, width, layers, mlp):
    """Per layer: the four width x width projections and the two MLP matrices for every token,
    then attention's two activation products (Q Kᵀ and the weighted sum of V), tokens² x width
    each, counted whole (a causal mask zeroes half of the scores, but they are computed)."""
    return layers * (tokens * (4 * width * width + 2 * width * mlp) + 2 * tokens * tokens * width)


def resnet50_macs(size=224):
    """torchvision's ResNet-50 (v1.5: the stride on the 3x3 conv): stem, 16 bottlenecks, fc."""
    h = size // 2
    macs = h * h * 64 * 3 * 7 * 7  # the stem
    h //= 2                         # max pool
    channels = 64
    for blocks, width, stride in ((3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2)):
        for b in range(blocks):
            s = stride if b == 0 else 1
            out = h // s
            macs += h * h * channels * width           # 1x1 reduce
            macs += out * out * width * width * 9      # 3x3, strided in the first block
            macs += out * out * width * 4 * width      # 1x1 expand
            if b == 0:
                macs += out * out * channels * 4 * width  # the downsampling shortcut
            channels, h = 4 * width, out
    return macs + channels * 1000


def text_positions(tokens, side):
    """How many positions a side runs the text tower on: PyTorch and ONNX Runtime all 77;
    libmcnn up to the batch's longest prompt (its end token, the largest id, ends a prompt)."""
    return int(tokens.argmax(1).max()) + 1 if side.startswith('mcnn') else tokens.shape[1]


def multiply_adds(model, side, d):
    """Multiply-adds of one item (image or prompt) of this side's forward."""
    if model == 'vit_b16':  # 196 patches + the class token; patch embedding; head
        return transformer_macs(197, 768, 12, 3072) + 196 * 768 * 768 + 768 * 1000
    if model == 'clip_image':  # 49 patches of 32 x 32 + the class token; the projection
        return transformer_macs(50, 768, 12, 3072) + 49 * 768 * 3 * 32 * 32 + 768 * 512
    if model == 'clip_text':  # the projection of the end token's feature
        import numpy as np
        tokens = np.load(os.path.join(d, 'tokens.npy'))
        return transformer_macs(text_positions(tokens, side), 512, 12, 2048) + 512 * 512
    return resnet50_macs()


def peak_of(side, peaks):
    """The dot-product peak a side's GEMMs are judged against: int8 sides the best int8
    instruction here (AVX512_VNNI's vpdpbusd, else AVX2's vpmaddubsw, which ONNX Runtime's and
    libmcnn's AVX2 kernels use), bf16 sides vdpbf16ps where the CPU has AVX512_BF16 (else the
    fp32 FMA's: bf16 then has no instruction of its own), the rest the fp32 FMA's."""
    kind = 'int8' if 'int8' in side else 'bf16' if 'bf16' in side else 'fp32'
    return peaks.get(kind, peaks.get('fp32'))


def measure_peaks(threads):
    """bench_gemm_lowp's instruction peaks on `threads` threads, in the same run as the sides:
    {'fp32': GFLOP/s, 'int8': GOP/s, 'bf16': GFLOP/s (only with AVX512_BF16)}."""
    exe = os.path.join(ROOT, 'build', 'bench', 'bench_gemm_lowp')
    if not os.path.exists(exe):
        return {}
    out = subprocess.run([exe, '-p'], capture_output=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        m = re.match(r'peak (\d+) threads?:', line)
        if not m or int(m.group(1)) != threads:
            continue
        for name, pattern in (('fp32', r'fp32 FMA(?: zmm)? ([\d.]+)'),
                              ('maddubsw', r'vpmaddubsw[^,]*? ([\d.]+) GOP/s'),
                              ('vnni', r'vpdpbusd[^,]*? ([\d.]+) GOP/s'),
                              ('bf16', r'vdpbf16ps[^,]*? ([\d.]+) GFLOP/s')):
            v = re.search(pattern, line)
            if v:
                found[name] = max(found.get(name, 0.0), float(v.group(1)))
    peaks = {k: found[k] for k in ('fp32', 'bf16') if k in found}
    if 'vnni' in found or 'maddubsw' in found:
        peaks['int8'] = found.get('vnni', found.get('maddubsw'))
    return peaks


# ---- the table ----------------------------------------------------------------------------------
COLUMNS = [('mcnn_fp32', 'libmcnn fp32'), ('mcnn_fp32p', 'libmcnn fp32 packed'),
           ('mcnn_bf16', 'libmcnn bf16'), ('mcnn_int8', 'libmcnn int8'),
           ('torch_fp32', 'PyTorch 1.13 fp32'), ('torch_bf16', 'PyTorch 1.13 bf16 autocast'),
           ('torch_int8', 'PyTorch 1.13 int8'), ('ort_fp32', 'ORT fp32'),
           ('ort_int8', 'ORT int8 dynamic'), ('ort_int8r', 'ORT int8 dynamic per-channel'),
           ('ort_int8s', 'ORT int8 static'),
           ('torch2_fp32', 'PyTorch 2.x fp32'), ('torch2_bf16', 'PyTorch 2.x bf16 autocast')]
LABELS = {'clip_image': 'CLIP ViT-B/32 image', 'clip_text': 'CLIP ViT-B/32 text (prompts)',
          'resnet50': 'ResNet-50', 'vit_b16': 'ViT-B/16'}


def print_table(runs):
    """Two markdown tables: speed (items/s, ratio to libmcnn fp32), then accuracy (the smallest
    row cosine to PyTorch 1.13 fp32; top-1 agreement for the classifiers)."""
    results = {}  # the best of each side over the runs given
    for run_ in runs:
        for key, r in run_['results'].items():
            if key not in results or r['ips'] > results[key]['ips']:
                results[key] = r
    rows = sorted({(r['model'], r['batch']) for r in results.values()},
                  key=lambda mb: (MODELS.index(mb[0]), mb[1]))
    present = [(s, label) for s, label in COLUMNS
               if any(f'{m}:{b}:{s}' in results for m, b in rows)]
    header = ('| workload | batch | ' + ' | '.join(label for _, label in present) + ' |\n'
              + '|---|---|' + '---|' * len(present))

    def cell_speed(r, base, batch):
        if 'timeout_s' in r:
            return f"< {batch / r['timeout_s']:.2f} (over {r['timeout_s']:.0f} s)"
        return f"{r['ips']:.2f} ({r['ips'] / base['ips']:.2f}x)" if base else f"{r['ips']:.2f}"

    def cell_accuracy(r, side):
        if side == REFERENCE:
            return 'reference'
        if 'min_cos' not in r:
            return '-'
        return f"{r['min_cos']:.6f}" + (f", {r['top1']}" if 'top1' in r else '')

    peaks = next((run_['peaks'] for run_ in runs if run_.get('peaks')), {})

    def cell_rate(r, side):  # GFLOP/s (GOP/s for int8): 2 per multiply-add; % of the peak
        if 'timeout_s' in r or 'macs' not in r:
            return '-'
        g = 2 * r['macs'] * r['ips'] * 1e-9
        peak = peak_of(side, peaks)
        return f'{g:.0f} ({100 * g / peak:.0f} %)' if peak else f'{g:.0f}'

    tables = (('images/s (prompts/s for text); ratio to libmcnn fp32', cell_speed),
              ('smallest cosine to PyTorch 1.13 fp32 over the outputs; top-1 agreement',
               cell_accuracy),
              ('GFLOP/s (GOP/s for int8 sides), 2 per multiply-add of the work each side does; '
               'in brackets % of the dot-product peak (bench/compare_lowp_baselines.py peak_of)'
               f' measured in the run: {peaks}', cell_rate))
    for title, cell in tables:
        print(f'\n{title}\n\n{header}')
        for model, batch in rows:
            base = results.get(f'{model}:{batch}:mcnn_fp32')
            cells = []
            for side, _ in present:
                r = results.get(f'{model}:{batch}:{side}')
                cells.append('-' if r is None else cell_speed(r, base, batch)
                             if cell is cell_speed else cell(r, side))
            print(f'| {LABELS[model]} | {batch} | ' + ' | '.join(cells) + ' |')
    for run_ in runs:
        print(f"\n{run_['date']}, {run_['threads']} threads; {run_['versions']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('command', choices=['prepare', 'quantize', 'run', 'side', 'table'])
    ap.add_argument('files', nargs='*', help='table: the --json files of runs')
    ap.add_argument('--dir', default=DEFAULT_DIR, help='weights, inputs, ONNX files, outputs')
    ap.add_argument('--venv', default='/tmp/venv-bench',
                    help='the virtualenv with onnxruntime, onnx (and torch 2.x, torchvision)')
    ap.add_argument('--openblas-dir', default=OPENBLAS,
                    help="folder of OpenBLAS's libblas.so.3, first on PyTorch 1.13's path")
    ap.add_argument('--only', default='clip_image:1,clip_image:16,clip_text:179,resnet50:1,'
                    'resnet50:16,vit_b16:1,vit_b16:16', help='MODEL:BATCH,...')
    ap.add_argument('--sides', default='', help='only these sides, in this order (run)')
    ap.add_argument('--rounds', type=int, default=2)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--iters', type=int, default=4, help='timed runs per measurement, at most')
    ap.add_argument('--budget', type=float, default=3.0,
                    help='stop timing a measurement after this many seconds (after one run)')
    ap.add_argument('--slow-s', type=float, default=20,
                    help='a side taking longer than this per batch is not measured again')
    ap.add_argument('--timeout', type=float, default=600, help='seconds per child process')
    ap.add_argument('--json', default='', help='run: also write the results here')
    ap.add_argument('--side', default='')
    ap.add_argument('--model', default='')
    ap.add_argument('--batches', default='')
    args = ap.parse_args()
    if args.command == 'prepare':
        prepare(args)
    elif args.command == 'quantize':
        quantize(args)
    elif args.command == 'side':
        side_main(args)
    elif args.command == 'run':
        run(args)
    else:
        print_table([json.load(open(f)) for f in args.files])


if __name__ == '__main__':
    main()
