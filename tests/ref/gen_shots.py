"""Goldens for shot detection (tests/test_shots.c) from OpenCV and PySceneDetect's rule.

- hsv: cv2.cvtColor(COLOR_RGB2HSV) on 8-bit colours (random ones, every gray, the primaries and
  secondaries, colours one step from a hue sector boundary).  OpenCV is Debian's python3-opencv.
- a 70-frame synthetic sequence with cuts, flashes and a too-short shot; per frame the
  ContentDetector components (mean |delta| of H, S, V as PySceneDetect's _mean_pixel_distance),
  the score (their mean, weights 1,1,1,0) and the cuts PySceneDetect 0.6 reports
  (ContentDetector(threshold=27, min_scene_len=15); FlashFilter SUPPRESS in later versions):
  a cut at frame f when score >= threshold and f - last_cut >= min_scene_len, last_cut starting
  at the first frame.  PySceneDetect itself is not packaged by Debian, so its rule is written
  out here from its source (scenedetect/detectors/content_detector.py, detector.py).

Run with /usr/bin/python3 (needs numpy and cv2); writes tests/data/shots.safetensors."""
import os

import cv2
import numpy as np

from safetensors_io import save

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20240611)

# ---- colours -------------------------------------------------------------------------------
cols = [rng.integers(0, 256, size=(3000, 3))]
cols.append(np.repeat(np.arange(256)[:, None], 3, 1))                       # grays
cols.append(np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255],
                      [255, 0, 255], [1, 0, 0], [0, 1, 0], [0, 0, 1], [255, 254, 0],
                      [254, 255, 0], [0, 255, 254], [0, 254, 255], [255, 0, 1], [1, 0, 255]]))
v = rng.integers(1, 256, size=(500, 1))
d = rng.integers(0, 4, size=(500, 1))
edge = np.concatenate([v, np.clip(v - d, 0, 255), np.clip(v - 2 * d, 0, 255)], 1)
cols.append(np.stack([rng.permutation(e) for e in edge]))                   # near ties
rgb = np.concatenate(cols).astype(np.uint8)
hsv = cv2.cvtColor(rgb[None], cv2.COLOR_RGB2HSV)[0]

# ---- a sequence with known structure -------------------------------------------------------
H, W, F = 24, 32, 70
yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)


def clip8(a):
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def scene_gradient(t):  # a slow pan over a gradient: small differences
    r = 40 + 150 * (xx + t) / (W + 20)
    return clip8(np.stack([r, 80 + 60 * yy / H, 200 - r / 2], -1))


def scene_noise(t):  # a green textured scene with a little per-frame noise
    base = np.stack([30 + 0 * xx, 140 + 40 * np.sin(xx / 3), 60 + 20 * np.cos(yy / 4)], -1)
    return clip8(base + rng.normal(0, 3, size=base.shape))


def flat(c):
    return np.broadcast_to(np.array(c, np.uint8), (H, W, 3)).copy()


frames = []
for f in range(F):
    if f < 20:
        img = scene_gradient(f)                 # shot 0: frames 0-19
    elif f < 40:
        img = scene_noise(f)                    # shot 1: frames 20-39 ...
        if f == 30:
            img = flat([250, 250, 250])         # ... with a one-frame flash: suppressed
    elif f < 45:
        img = flat([200, 30, 30])               # shot 2 starts at 40, red ...
    elif f < 60:
        img = flat([30, 30, 200])               # ... blue at 45: only 5 frames after 40
    else:
        img = scene_gradient(100 - f)[::-1]     # shot 3: frames 60-69
    frames.append(img)
frames = np.stack(frames)

THRESHOLD, MIN_LEN = 27.0, 15


def mean_pixel_distance(a, b):  # PySceneDetect's _mean_pixel_distance
    return np.sum(np.abs(a.astype(np.int32) - b.astype(np.int32))) / float(a.shape[0] * a.shape[1])


comps = np.zeros((F, 3))
scores = np.zeros(F)
cuts = []
last_cut = 0
prev = None
for f in range(F):
    # PySceneDetect reads BGR frames and calls COLOR_BGR2HSV: the same as RGB2HSV on RGB.
    bgr = frames[f][:, :, ::-1].copy()
    h, s, v = cv2.split(cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV))
    if prev is not None:
        comps[f] = [mean_pixel_distance(h, prev[0]), mean_pixel_distance(s, prev[1]),
                    mean_pixel_distance(v, prev[2])]
        scores[f] = comps[f].sum() / 3.0
        if scores[f] >= THRESHOLD and f - last_cut >= MIN_LEN:
            cuts.append(f)
            last_cut = f
    prev = (h, s, v)

assert cuts == [20, 40, 60], cuts  # the design: the flash at 30 and the change at 45 are dropped
save(os.path.join(HERE, '..', 'data', 'shots.safetensors'),
     {'rgb': rgb, 'hsv': hsv, 'frames': frames, 'components': comps, 'scores': scores,
      'cuts': np.array(cuts, np.int32)},
     {'generator': 'tests/ref/gen_shots.py', 'opencv': cv2.__version__,
      'threshold': THRESHOLD, 'min_len': MIN_LEN,
      'keys': 'rgb/hsv U8 [N,3]: cv2.cvtColor(COLOR_RGB2HSV); frames U8 [F,H,W,3] RGB; '
              'components F32 [F,3] mean |dH|,|dS|,|dV| vs the previous frame; scores F32 [F]; '
              'cuts I32: frames that start a shot (PySceneDetect 0.6 rule)'})
print('cuts', cuts, 'max score', scores.max())
