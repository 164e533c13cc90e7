"""Golden file for the safetensors reader's dtype conversions: tests/data/safetensors_dtypes.safetensors

Every tensor <name> of a non-F32 dtype comes with the float32 values numpy/torch convert it to,
stored as F32 under "expect_f32.<name>", and, where int32 reading is meaningful, the int32
values under "expect_i32.<name>".  So the C conversions are judged by numpy/torch, not by
themselves.  Run with /usr/bin/python3 (torch 1.13 is needed for bfloat16).

The file is written here with json + struct rather than tests/ref/safetensors_io.py because it
needs dtypes that helper does not write (BF16, F64, I16, I8, BOOL), and to exercise what real
files do: data offsets out of key order, a scalar, an empty tensor, metadata with escapes and
\\u surrogate pairs (json.dumps's default ensure_ascii), and trailing spaces after the JSON."""
import json
import os
import struct

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(__file__), '..', 'data', 'safetensors_dtypes.safetensors')


def half_patterns():
    """All f16 zeros and subnormals (both signs), every exponent with a spread of mantissas,
    infinities and NaNs (quiet, signalling, with payloads)."""
    bits = set(range(0, 0x400)) | set(range(0x8000, 0x8400))
    for sign in (0, 0x8000):
        for exp in range(1, 32):
            for man in (0, 1, 2, 3, 0x155, 0x200, 0x2AA, 0x3FE, 0x3FF):
                bits.add(sign | exp << 10 | man)
    return np.array(sorted(bits), dtype=np.uint16)


def bf16_patterns():
    """Every bf16 exponent (both signs) with a spread of mantissas, all subnormals of one sign."""
    bits = set(range(0, 0x80)) | {0x8001, 0x807F}
    for sign in (0, 0x8000):
        for exp in range(0, 256):
            for man in (0, 1, 0x2A, 0x40, 0x55, 0x7F):
                bits.add(sign | exp << 7 | man)
    return np.array(sorted(bits), dtype=np.uint16)


def main():
    rng = np.random.default_rng(7)
    t = {}  # name -> (dtype string, shape, little-endian bytes)

    def add(name, dtype, arr, raw=None):
        arr = np.asarray(arr)
        t[name] = (dtype, list(arr.shape), raw if raw is not None else arr.tobytes())

    def expect_f32(name, values):
        v = np.ascontiguousarray(values, dtype=np.float32)
        add('expect_f32.' + name, 'F32', v, v.astype('<f4').tobytes())

    def expect_i32(name, values):
        v = np.ascontiguousarray(values, dtype=np.int32)
        add('expect_i32.' + name, 'I32', v, v.astype('<i4').tobytes())

    # F16: bit patterns, converted by numpy
    hb = half_patterns()
    h = hb.view(np.float16)
    add('f16_bits', 'F16', h, h.astype('<f2').tobytes())
    expect_f32('f16_bits', h.astype(np.float32))
    # F16 from random floats, shaped (3, 5, 7)
    hr = (rng.standard_normal((3, 5, 7)) * 100).astype(np.float16)
    add('f16_random', 'F16', hr, hr.astype('<f2').tobytes())
    expect_f32('f16_random', hr.astype(np.float32))
    # F16 holding whole numbers: also readable as int32
    hi = np.array([0, -1, 7, 2048, -65504, 65504], dtype=np.float16)
    add('f16_ints', 'F16', hi, hi.astype('<f2').tobytes())
    expect_f32('f16_ints', hi.astype(np.float32))
    expect_i32('f16_ints', hi.astype(np.int64))

    # BF16: bit patterns, converted by torch
    bb = torch.from_numpy(bf16_patterns().view(np.int16)).view(torch.bfloat16)
    add('bf16_bits', 'BF16', bb.view(torch.int16).numpy(), bb.view(torch.int16).numpy().astype('<i2').tobytes())
    expect_f32('bf16_bits', bb.to(torch.float32).numpy())
    # BF16 rounded by torch from float32 values, shaped (4, 6)
    br = torch.tensor(rng.standard_normal((4, 6)) * 1e3, dtype=torch.float32).to(torch.bfloat16)
    add('bf16_random', 'BF16', br.view(torch.int16).numpy(), br.view(torch.int16).numpy().astype('<i2').tobytes())
    expect_f32('bf16_random', br.to(torch.float32).numpy())

    # F64 -> F32 rounding (ties, float subnormals, overflow to inf, signed zero, nan)
    d = np.array([0.0, -0.0, 1.0 / 3.0, -2.0 / 3.0, 1e-40, -1e-45, 2.0 ** -149, 2.0 ** -150,
                  3.0 * 2.0 ** -151, 1e39, -1e39, 3.4028235677973366e38, 1 + 2.0 ** -24,
                  1 + 3 * 2.0 ** -24, np.inf, -np.inf, np.nan, np.pi, 1e300, -1e-300],
                 dtype=np.float64)
    add('f64', 'F64', d, d.astype('<f8').tobytes())
    with np.errstate(over='ignore'):
        expect_f32('f64', d.astype(np.float32))
    d2 = np.array([[1.0, -2.0], [2147483647.0, -2147483648.0]])
    add('f64_ints', 'F64', d2, d2.astype('<f8').tobytes())
    expect_f32('f64_ints', d2.astype(np.float32))
    expect_i32('f64_ints', d2.astype(np.int64))

    # I64: large values round once to float32 (2^60 + 2^36 + 1 catches double rounding)
    big = np.array([0, -1, 2 ** 53 + 1, -(2 ** 62), 2 ** 60 + 2 ** 36 + 1, 2 ** 63 - 1, -(2 ** 63),
                    16777217, 2 ** 31], dtype=np.int64)
    add('i64_big', 'I64', big, big.astype('<i8').tobytes())
    expect_f32('i64_big', torch.from_numpy(big).to(torch.float32).numpy())
    small = np.array([[-(2 ** 31), 2 ** 31 - 1, 0], [5, -5, 49406]], dtype=np.int64)
    add('i64_small', 'I64', small, small.astype('<i8').tobytes())
    expect_f32('i64_small', small.astype(np.float32))
    expect_i32('i64_small', small)

    # narrower integers and bool
    i32 = np.array([-(2 ** 31), 2 ** 31 - 1, 16777217, -3], dtype=np.int32)
    add('i32', 'I32', i32, i32.astype('<i4').tobytes())
    expect_f32('i32', i32.astype(np.float32))
    expect_i32('i32', i32)
    i16 = np.array([-32768, 32767, 0, -1, 300], dtype=np.int16)
    add('i16', 'I16', i16, i16.astype('<i2').tobytes())
    expect_f32('i16', i16.astype(np.float32))
    expect_i32('i16', i16)
    i8 = np.array([-128, 127, 0, -1], dtype=np.int8)
    add('i8', 'I8', i8)
    expect_f32('i8', i8.astype(np.float32))
    expect_i32('i8', i8)
    u8 = np.array([[0, 255], [128, 1]], dtype=np.uint8)
    add('u8', 'U8', u8)
    expect_f32('u8', u8.astype(np.float32))
    expect_i32('u8', u8)
    bo = torch.tensor([True, False, True, True])
    add('bool', 'BOOL', bo.numpy(), bo.numpy().tobytes())
    expect_f32('bool', bo.to(torch.float32).numpy())
    expect_i32('bool', bo.to(torch.int32).numpy())

    # a scalar (shape []) and an empty tensor
    s = np.array(2.5, dtype=np.float32)
    add('scalar', 'F32', s, s.astype('<f4').tobytes())
    e = np.zeros((2, 0, 3), dtype=np.float32)
    add('empty', 'F32', e, b'')

    # data laid out in reverse key order, so offsets are not monotonic in the header
    header, blobs, off = {}, [], 0
    for name in reversed(sorted(t)):
        dtype, shape, raw = t[name]
        header[name] = {'dtype': dtype, 'shape': shape, 'data_offsets': [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header = {k: header[k] for k in sorted(header)}
    header['__metadata__'] = {
        'format': 'pt',
        'note': 'quote " backslash \\ slash / newline \n tab \t e-acute \u00e9 kanji \u65e5\u672c '
                'emoji \U0001F600 end',
        'empty': '',
    }
    h = json.dumps(header).encode()  # ensure_ascii: non-ASCII as \\u escapes, emoji as a pair
    h += b' ' * (8 + (-len(h) % 8))   # trailing spaces, as real writers pad
    with open(OUT, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    print(OUT, os.path.getsize(OUT), 'bytes,', len(t), 'tensors')


if __name__ == '__main__':
    main()
