"""JPEG goldens: small JPEG files and the pixels PIL decodes from them.

Run with /usr/bin/python3 (Debian's python3-pil, which decodes with the system libjpeg-turbo)
from the repository root.  Some variants PIL cannot write (restart markers, 4:4:0 and odd
sampling, Adobe RGB, 16-bit quantisation tables, sequential multi-scan, arithmetic coding) are
made with libjpeg-turbo's command-line tools (apt-get install libjpeg-turbo-progs).

Writes tests/data/jpeg/<name>.jpg and tests/data/jpeg_golden.safetensors, which holds for every
decodable file a U8 tensor <name> of shape (H, W) or (H, W, 3): PIL's Image.open(path) pixels
(libjpeg defaults: islow IDCT, fancy upsampling).  Files the decoder must refuse (arithmetic
coding, CMYK) are written too, without a golden.
"""
import io
import os
import subprocess
import sys

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, os.path.dirname(__file__))
from safetensors_io import save  # noqa: E402

OUT = 'tests/data/jpeg'
GOLDEN = 'tests/data/jpeg_golden.safetensors'


def source(w, h, seed):
    """A deterministic test picture: smooth colour gradients, a sinusoid, sharp edges and
    noise, so that every coefficient band and the chroma planes carry signal."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * x / max(w - 1, 1)
    g = 255 * y / max(h - 1, 1)
    b = 128 + 100 * np.sin(x * 0.7 + y * 0.3)
    img = np.stack([r, g, b], -1)
    img[(x // 5 + y // 4) % 3 == 0] = [250, 30, 20]          # sharp red checks
    img[(x - w / 2) ** 2 + (y - h / 2) ** 2 < (min(w, h) / 4) ** 2] = [20, 40, 230]
    img += rng.normal(0, 12, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), 'RGB')


def pil_save(name, im, **kw):
    path = f'{OUT}/{name}.jpg'
    im.save(path, 'JPEG', **kw)
    return path


def cjpeg(name, im, *args, tool_input=None):
    """Encode with libjpeg-turbo's cjpeg from a PPM/PGM of im."""
    path = f'{OUT}/{name}.jpg'
    buf = io.BytesIO()
    im.save(buf, 'PPM')
    subprocess.run(['cjpeg', *args, '-outfile', path], input=buf.getvalue(), check=True)
    return path


def jpegtran(name, src, *args):
    path = f'{OUT}/{name}.jpg'
    subprocess.run(['jpegtran', *args, '-outfile', path, src], check=True)
    return path


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    files = []  # (name, path) of files with a golden

    def add(path):
        files.append((os.path.basename(path)[:-4], path))

    big = source(33, 31, 1)
    # PIL: quality, subsampling (0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0), sizes that are not whole MCUs.
    for q in (50, 90, 100):
        for sub, tag in ((0, '444'), (1, '422'), (2, '420')):
            add(pil_save(f'rgb_{tag}_q{q}_33x31', big, quality=q, subsampling=sub))
    for w, h in ((1, 1), (2, 2), (3, 3), (4, 3), (5, 4), (7, 5), (17, 13), (1, 17), (17, 1)):
        im = source(w, h, w * 100 + h)
        add(pil_save(f'rgb_420_q90_{w}x{h}', im, quality=90, subsampling=2))
        add(pil_save(f'rgb_422_q90_{w}x{h}', im, quality=90, subsampling=1))
    add(pil_save('rgb_444_q90_7x5', source(7, 5, 75), quality=90, subsampling=0))
    add(pil_save('rgb_420_q75_64x48', source(64, 48, 2), quality=75, subsampling=2))
    add(pil_save('rgb_420_opt_q90_64x48', source(64, 48, 3), quality=90, subsampling=2,
                 optimize=True))
    add(pil_save('rgb_420_q85_128x96', source(128, 96, 4), quality=85, subsampling=2))
    # Progressive (PIL uses libjpeg's default script: spectral selection + successive approx.)
    add(pil_save('rgb_420_prog_q90_33x31', big, quality=90, subsampling=2, progressive=True))
    add(pil_save('rgb_444_prog_q50_17x13', source(17, 13, 5), quality=50, subsampling=0,
                 progressive=True))
    add(pil_save('rgb_422_prog_opt_q90_64x48', source(64, 48, 6), quality=90, subsampling=1,
                 progressive=True, optimize=True))
    add(pil_save('rgb_420_prog_q90_1x1', source(1, 1, 7), quality=90, progressive=True))
    # Grayscale
    add(pil_save('gray_q90_17x13', source(17, 13, 8).convert('L'), quality=90))
    add(pil_save('gray_q50_1x1', source(1, 1, 9).convert('L'), quality=50))
    add(pil_save('gray_prog_q90_33x31', big.convert('L'), quality=90, progressive=True))

    # libjpeg-turbo tools: restart markers (every MCU row, every MCU), baseline and progressive.
    add(cjpeg('rgb_420_rst1row_33x31', big, '-quality', '90', '-restart', '1'))
    add(cjpeg('rgb_420_rst1mcu_33x31', big, '-quality', '90', '-restart', '1B'))
    add(cjpeg('rgb_444_rst2mcu_17x13', source(17, 13, 10), '-quality', '90', '-sample', '1x1',
              '-restart', '2B'))
    add(cjpeg('rgb_420_prog_rst1mcu_33x31', big, '-quality', '90', '-progressive', '-restart', '1B'))
    add(cjpeg('gray_prog_rst3mcu_33x31', big, '-quality', '90', '-grayscale', '-progressive',
              '-restart', '3B'))
    base = cjpeg('tmp_base', source(40, 24, 11), '-quality', '80')
    add(jpegtran('rgb_420_jpegtran_prog_rst1_40x24', base, '-progressive', '-restart', '1'))
    os.remove(base)
    # Sampling factors PIL cannot write: 4:4:0, 4:1:1, 3x1 (box upsampling), and a mixed one
    # where Cb is 1x2 under a 2x2 luma (upsampled 2x1).
    add(cjpeg('rgb_440_33x31', big, '-quality', '90', '-sample', '1x2'))
    add(cjpeg('rgb_411_33x31', big, '-quality', '90', '-sample', '4x1'))
    add(cjpeg('rgb_31_17x13', source(17, 13, 12), '-quality', '90', '-sample', '3x1'))
    add(cjpeg('rgb_mixed_33x31', big, '-quality', '90', '-sample', '2x2,1x2,1x1'))
    add(cjpeg('rgb_440_prog_17x13', source(17, 13, 13), '-quality', '90', '-sample', '1x2',
              '-progressive'))
    # Adobe APP14 transform 0: the components are R, G, B, not YCbCr.
    add(cjpeg('rgb_adobe_rgb_17x13', source(17, 13, 14), '-quality', '90', '-rgb'))
    # Quality 5 without -baseline: quantisation values above 255, written as 16-bit tables.
    add(cjpeg('rgb_420_q5_16bitdqt_33x31', big, '-quality', '5'))
    # Sequential, not interleaved: one scan per component.
    script = f'{OUT}/tmp_scans.txt'
    with open(script, 'w') as f:
        f.write('0;\n1;\n2;\n')
    add(cjpeg('rgb_420_3scans_33x31', big, '-quality', '90', '-scans', script))
    # Progressive with a custom script: spectral bands and two refinement levels.
    with open(script, 'w') as f:
        f.write('0,1,2: 0-0, 0, 2;\n0: 1-9, 0, 1;\n2: 1-63, 0, 0;\n1: 1-63, 0, 0;\n'
                '0: 10-63, 0, 1;\n0,1,2: 0-0, 2, 1;\n0,1,2: 0-0, 1, 0;\n0: 1-63, 1, 0;\n')
    add(cjpeg('rgb_420_prog_script_33x31', big, '-quality', '95', '-scans', script,
              '-restart', '2B'))
    os.remove(script)

    # EXIF orientation 6 (rotate 90): PIL's Image.open ignores it; so must we.
    exif = Image.Exif()
    exif[0x0112] = 6
    path = pil_save('rgb_exif_orient6_17x13', source(17, 13, 15), quality=90, exif=exif.tobytes())
    with Image.open(path) as im:
        assert im.getexif().get(0x0112) == 6 and ImageOps.exif_transpose(im).size == (13, 17)
    add(path)

    # Refused: arithmetic coding, CMYK.
    cjpeg('reject_arithmetic', source(17, 13, 16), '-arithmetic')
    pil_save('reject_cmyk', source(17, 13, 17).convert('CMYK'), quality=90)

    tensors = {}
    for name, path in files:
        with Image.open(path) as im:
            im.load()
            assert im.mode in ('L', 'RGB'), (name, im.mode)
            tensors[name] = np.asarray(im, dtype=np.uint8)
    save(GOLDEN, tensors, {'source': 'PIL ' + Image.__version__ + ' Image.open, libjpeg-turbo'})
    total = sum(os.path.getsize(f'{OUT}/{f}') for f in os.listdir(OUT)) + os.path.getsize(GOLDEN)
    print(f'{len(files)} goldens, {len(os.listdir(OUT))} files, {total} bytes in all')


if __name__ == '__main__':
    main()
