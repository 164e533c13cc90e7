"""Goldens for image preprocessing (tests/test_preprocess.c).  Run from the repository root:

    /usr/bin/python3 tests/ref/gen_preprocess.py

Judges: PIL 9.4 (Image.resize with every filter, crop, convert) and torchvision 0.14 (Resize,
CenterCrop, ToTensor, Normalize, the ResNet-50 / ViT-B/16 IMAGENET1K_V1 preset transforms,
RandomResizedCrop.get_params), run on small synthetic images.  Normalised tensors are
torchvision's own float32 output (the behaviour we copy, float32 roundings included), so they
are stored as computed, not recomputed in float64.

Writes tests/data/preprocess.safetensors:
  img/<name>                    U8 (H, W, C) the inputs (C = 1 for L images)
  resize/<name>/<filter>/<W>x<H> U8 PIL img.resize((W, H), filter)
  short/<name>/<filter>/<size>  U8 torchvision Resize(size, filter) (shorter side -> size)
  crop/<name>/<W>x<H>           U8 torchvision CenterCrop((H, W)) (banker's rounding, padding)
  convert/<name>/L, /RGB        U8 PIL convert
  clip/<name>/<n_px>            F32 (3, n, n) clip._transform(n_px)
  gray/<name>/<size>            F32 (1, s, s) Resize(s) CenterCrop(s) convert("L") ToTensor
                                Normalize((0.2860,), (0.3530,))
  imagenet/<name>               F32 (3, 32, 32): ResNet50_Weights.IMAGENET1K_V1.transforms()
                                output [:, 3::7, 3::7] (the full 3x224x224 would be 600 KB)
  clip224/<name>                F32 (3, 32, 32): clip._transform(224) output [:, 3::7, 3::7]
  rrc/<W>x<H>/stats             F32 (2, 6): means and standard errors over N draws of
                                RandomResizedCrop.get_params (scale (0.08, 1), ratio (3/4, 4/3))
                                of: area fraction, log(w/h), (left + w/2)/W, (top + h/2)/H,
                                w/W, h/H
  rrc/5x300/fallback            I32 (4,) get_params on a 5x300 image (always the fallback):
                                top, left, h, w
  train/thin/noflip, /flip      F32 (3, 16, 16) resized_crop(thin, fallback box, 16, BILINEAR)
                                -> [hflip] -> ToTensor -> ImageNet Normalize
The image "pattern" (320x240 RGB) is not stored: both sides compute it from
v = ((x * 3 + y * 2 + c * 70) ^ ((x * y) >> 4)) & 255."""
import math
import os
import sys

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.models import ResNet50_Weights, ViT_B_16_Weights
from torchvision.transforms import InterpolationMode as IM
from torchvision.transforms import functional as F

sys.path.insert(0, os.path.dirname(__file__))
import safetensors_io  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), '..', 'data', 'preprocess.safetensors')
rng = np.random.RandomState(2024)
out = {}

FILTERS = {'nearest': Image.NEAREST, 'box': Image.BOX, 'bilinear': Image.BILINEAR,
           'hamming': Image.HAMMING, 'bicubic': Image.BICUBIC, 'lanczos': Image.LANCZOS}
MODES = {'nearest': IM.NEAREST, 'bilinear': IM.BILINEAR, 'bicubic': IM.BICUBIC,
         'lanczos': IM.LANCZOS, 'box': IM.BOX, 'hamming': IM.HAMMING}
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


def u8(img):
    a = np.asarray(img, dtype=np.uint8)
    return a[:, :, None] if a.ndim == 2 else a


def clip_transform(n_px):
    # OpenAI clip/clip.py _transform, verbatim in behaviour (clip itself is not installed)
    return T.Compose([T.Resize(n_px, interpolation=IM.BICUBIC), T.CenterCrop(n_px),
                      lambda im: im.convert('RGB'), T.ToTensor(), T.Normalize(CLIP_MEAN, CLIP_STD)])


def pattern(w, h):
    y, x, c = np.meshgrid(np.arange(h), np.arange(w), np.arange(3), indexing='ij')
    return Image.fromarray((((x * 3 + y * 2 + c * 70) ^ ((x * y) >> 4)) & 255).astype(np.uint8), 'RGB')


# ---- inputs ---------------------------------------------------------------------------------
def gradient_noise(w, h, c, amp):
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255.0 / max(w - 1, 1)), (y * 255.0 / max(h - 1, 1)),
                     ((x + y) * 127.0 / max(w + h - 2, 1))], -1)[:, :, :c]
    a = base + rng.uniform(-amp, amp, size=base.shape)
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


images = {
    'noise37x23': Image.fromarray(rng.randint(0, 256, size=(23, 37, 3)).astype(np.uint8), 'RGB'),
    'grad64x48': Image.fromarray(gradient_noise(64, 48, 3, 20), 'RGB'),
    'thin5x300': Image.fromarray(gradient_noise(5, 300, 3, 60), 'RGB'),
    'one1x1': Image.fromarray(np.array([[[200, 17, 99]]], dtype=np.uint8), 'RGB'),
    'gray29x41': Image.fromarray(gradient_noise(29, 41, 1, 40)[:, :, 0], 'L'),
}
# extremes (0 and 255 everywhere in big patches) so the bicubic/lanczos overshoot is clipped
sat = np.zeros((20, 30, 3), np.uint8)
sat[:, 10:20] = 255
sat[5:15, :, 1] = 255 - sat[5:15, :, 1]
images['sat30x20'] = Image.fromarray(sat, 'RGB')
for name, im in images.items():
    out[f'img/{name}'] = u8(im)

# ---- PIL resize, every filter ------------------------------------------------------------------
SIZES = {
    'noise37x23': [(18, 11), (45, 30), (37, 31), (20, 23), (111, 7), (1, 1), (5, 90)],
    'grad64x48': [(32, 24), (21, 16), (50, 20), (64, 17), (7, 48)],
    'thin5x300': [(5, 40), (7, 200), (3, 7), (20, 30)],
    'one1x1': [(4, 3), (1, 5)],
    'gray29x41': [(14, 20), (44, 60), (29, 9), (40, 41)],
    'sat30x20': [(36, 25), (13, 9)],
}
n_resize = 0
for name, sizes in SIZES.items():
    for fname, flt in FILTERS.items():
        for (w, h) in sizes:
            out[f'resize/{name}/{fname}/{w}x{h}'] = u8(images[name].resize((w, h), flt))
            n_resize += 1
pat = pattern(320, 240)
for fname, flt in FILTERS.items():
    for (w, h) in [(32, 24), (160, 7), (9, 100)]:
        out[f'resize/pattern/{fname}/{w}x{h}'] = u8(pat.resize((w, h), flt))
        n_resize += 1

# ---- torchvision Resize(int), CenterCrop, convert ------------------------------------------------
for name, size, fname in [('noise37x23', 16, 'bicubic'), ('noise37x23', 30, 'bilinear'),
                          ('thin5x300', 7, 'bicubic'), ('thin5x300', 2, 'bilinear'),
                          ('one1x1', 1, 'bicubic'), ('gray29x41', 33, 'lanczos'),
                          ('grad64x48', 20, 'nearest')]:
    out[f'short/{name}/{fname}/{size}'] = u8(T.Resize(size, interpolation=MODES[fname])(images[name]))
for name, (w, h) in [('noise37x23', (20, 10)), ('noise37x23', (34, 20)), ('noise37x23', (40, 30)),
                     ('noise37x23', (10, 30)), ('noise37x23', (38, 23)), ('grad64x48', (11, 7)),
                     ('thin5x300', (5, 5)), ('thin5x300', (8, 301)), ('gray29x41', (28, 28)),
                     ('one1x1', (4, 3))]:
    out[f'crop/{name}/{w}x{h}'] = u8(T.CenterCrop((h, w))(images[name]))
for name in ['noise37x23', 'gray29x41', 'sat30x20']:
    out[f'convert/{name}/L'] = u8(images[name].convert('L'))
    out[f'convert/{name}/RGB'] = u8(images[name].convert('RGB'))

# ---- whole pipelines --------------------------------------------------------------------------
for name in ['noise37x23', 'grad64x48', 'thin5x300', 'one1x1', 'gray29x41', 'sat30x20']:
    for n_px in [24, 16] if name in ('noise37x23', 'thin5x300', 'gray29x41') else [24]:
        out[f'clip/{name}/{n_px}'] = clip_transform(n_px)(images[name])
gray = T.Compose([T.Resize(16), T.CenterCrop(16), lambda im: im.convert('L'), T.ToTensor(),
                  T.Normalize((0.2860,), (0.3530,))])
for name in ['noise37x23', 'gray29x41']:
    out[f'gray/{name}/16'] = gray(images[name])

tr_resnet = ResNet50_Weights.IMAGENET1K_V1.transforms()
tr_vit = ViT_B_16_Weights.IMAGENET1K_V1.transforms()
for attr in ['crop_size', 'resize_size', 'mean', 'std', 'interpolation']:
    assert getattr(tr_resnet, attr) == getattr(tr_vit, attr), attr  # one golden serves both
assert tr_resnet.resize_size == [256] and tr_resnet.crop_size == [224]
assert tr_resnet.interpolation == IM.BILINEAR
for name, im in [('grad64x48', images['grad64x48']), ('pattern', pat), ('thin5x300', images['thin5x300'])]:
    out[f'imagenet/{name}'] = tr_resnet(im)[:, 3::7, 3::7].contiguous()
for name, im in [('pattern', pat), ('grad64x48', images['grad64x48'])]:
    out[f'clip224/{name}'] = clip_transform(224)(im)[:, 3::7, 3::7].contiguous()

# ---- RandomResizedCrop: the distribution, from torchvision's own sampler -------------------------
torch.manual_seed(7)
N = 20000
for (W, H) in [(100, 100), (64, 48), (300, 20)]:
    dummy = Image.new('RGB', (W, H))
    s = np.zeros((N, 6))
    for k in range(N):
        i, j, h, w = T.RandomResizedCrop.get_params(dummy, [0.08, 1.0], [3.0 / 4.0, 4.0 / 3.0])
        s[k] = [w * h / (W * H), math.log(w / h), (j + w / 2) / W, (i + h / 2) / H, w / W, h / H]
    out[f'rrc/{W}x{H}/stats'] = np.stack([s.mean(0), s.std(0) / math.sqrt(N)])
thin = images['thin5x300']
box = T.RandomResizedCrop.get_params(thin, [0.08, 1.0], [3.0 / 4.0, 4.0 / 3.0])
for _ in range(20):  # the fallback is deterministic: no draw of 10 can fit a 5-wide image
    assert T.RandomResizedCrop.get_params(thin, [0.08, 1.0], [3.0 / 4.0, 4.0 / 3.0]) == box
out['rrc/5x300/fallback'] = np.array(box, dtype=np.int32)
inet = T.Compose([T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
crop = F.resized_crop(thin, *box, [16, 16], interpolation=IM.BILINEAR)
out['train/thin/noflip'] = inet(crop)
out['train/thin/flip'] = inet(F.hflip(crop))

safetensors_io.save(OUT, out, {
    'description': 'PIL 9.4 / torchvision 0.14 preprocessing goldens for tests/test_preprocess.c',
    'pil': Image.__version__ if hasattr(Image, '__version__') else 'unknown',
    'rrc_draws': N, 'resize_cases': n_resize,
    'pattern': 'v = ((x * 3 + y * 2 + c * 70) ^ ((x * y) >> 4)) & 255, 320x240 RGB'})
print(f'{OUT}: {len(out)} tensors, {os.path.getsize(OUT)} bytes, {n_resize} resize cases')
