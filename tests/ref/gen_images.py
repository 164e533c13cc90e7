"""Golden files for the deflate/gzip, PNG and PPM/PGM decoders (tests/test_inflate.c,
tests/test_png.c, tests/test_ppm.c).  Run with /usr/bin/python3 from the repository root:

    /usr/bin/python3 tests/ref/gen_images.py

Judges: Python's zlib/gzip modules produce every compressed stream and confirm that every
corrupt stream is rejected; PIL decodes every image and its convert('L') / convert('RGB')
output is the expected pixels.  PNGs that PIL cannot write (2/4-bit gray, Adam7, 16-bit
colour, every filter type, IDAT split in many chunks) are written here with zlib + struct,
and their expected pixels are ALSO computed independently with numpy from the samples
written; the script asserts that PIL agrees with that before storing PIL's answer.

Writes tests/data/images/* (small files) and tests/data/images/golden.safetensors
(U8 tensors named after the image files, shape (H, W, C), C = 1 for gray, 3 for RGB)."""
import gzip
import io
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
import safetensors_io  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), '..', 'data', 'images')
rng = np.random.RandomState(1951)
golden = {}


def write(name, data):
    with open(os.path.join(OUT, name), 'wb') as f:
        f.write(data)


# ---- deflate, zlib, gzip -----------------------------------------------------------------

def sample_text(n):
    """Mixed content: English-like words (long matches), digits, and random bytes (literals)."""
    words = [b'the', b'quick', b'brown', b'fox', b'jumps', b'over', b'lazy', b'dog', b'deflate',
             b'huffman', b'canonical', b'distance', b'length', b'literal', b'\n']
    out = bytearray()
    while len(out) < n:
        r = rng.randint(10)
        if r < 7:
            out += words[rng.randint(len(words))] + b' '
        elif r < 9:
            out += str(rng.randint(100000)).encode()
        else:
            out += bytes(rng.randint(0, 256, size=rng.randint(1, 40)).astype(np.uint8))
    return bytes(out[:n])


def gen_deflate():
    plain = sample_text(12000)
    plain = plain[:3000] + b'abc' * 300 + b'\0' * 700 + plain[4600:]   # runs: length-258 matches
    write('sample.bin', plain)
    for level in (1, 6, 9):
        write(f'sample_l{level}.gz', gzip.compress(plain, compresslevel=level, mtime=0))
    write('sample_l0.gz', gzip.compress(plain, compresslevel=0, mtime=0))     # stored blocks
    # zlib with a sync flush in the middle (an empty stored block)
    co = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS)
    write('sample.zlib', co.compress(plain[:5000]) + co.flush(zlib.Z_SYNC_FLUSH) + co.compress(plain[5000:]) + co.flush())
    co = zlib.compressobj(0, zlib.DEFLATED, zlib.MAX_WBITS, 1)                # zlib, stored, small blocks
    write('sample_stored.zlib', co.compress(plain) + co.flush())
    co = zlib.compressobj(9, zlib.DEFLATED, -15, 1)    # raw deflate; memLevel 1: many small blocks
    write('sample.deflate', co.compress(plain) + co.flush())
    co = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_FIXED)             # fixed Huffman only
    write('sample_fixed.deflate', co.compress(plain) + co.flush())
    write('empty.gz', gzip.compress(b'', mtime=0))

    # Skewed bytes (P(k) ~ 2^-k/2): the literal code gets lengths up to 15, past the decoder's
    # fast table, so the slow canonical path is exercised.
    skew = np.minimum(rng.geometric(0.35, size=12000) - 1, 255).astype(np.uint8)
    skew[::97] = rng.randint(0, 256, size=skew[::97].shape)  # every byte value appears somewhere
    skew = skew.tobytes()
    write('skewed.bin', skew)
    co = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_HUFFMAN_ONLY)
    write('skewed.deflate', co.compress(skew) + co.flush())

    # Two members: the output is their concatenation; then a member with every header flag.
    a, b = plain[:7000], plain[7000:10000]
    write('multi.gz', gzip.compress(a, 6, mtime=0) + gzip.compress(b, 9, mtime=0))
    write('multi.bin', a + b)
    co = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = co.compress(plain) + co.flush()
    hdr = b'\x1f\x8b\x08' + bytes([2 | 4 | 8 | 16]) + struct.pack('<I', 1234567) + b'\x02\x03'
    hdr += struct.pack('<H', 9) + b'AB\x05\x00xyzab'               # FEXTRA: a 5-byte subfield
    hdr += b'sample.bin\x00' + b'a comment \xe9\x00'               # FNAME, FCOMMENT
    hdr += struct.pack('<H', zlib.crc32(hdr) & 0xffff)             # FHCRC
    flags = hdr + body + struct.pack('<II', zlib.crc32(plain), len(plain))
    assert gzip.decompress(flags) == plain
    write('flags.gz', flags)


class BitWriter:
    """Deflate bit order: fields least-significant bit first; Huffman codes most-significant
    bit first."""

    def __init__(self):
        self.bits = []

    def field(self, value, n):
        self.bits += [(value >> i) & 1 for i in range(n)]

    def code(self, code, n):
        self.bits += [(code >> (n - 1 - i)) & 1 for i in range(n)]

    def bytes(self):
        b = self.bits + [0] * (-len(self.bits) % 8)
        return bytes(sum(b[i + j] << j for j in range(8)) for i in range(0, len(b), 8))


def fixed_lit(w, sym):
    if sym < 144:
        w.code(0x30 + sym, 8)
    elif sym < 256:
        w.code(0x190 + sym - 144, 9)
    elif sym < 280:
        w.code(sym - 256, 7)
    else:
        w.code(0xc0 + sym - 280, 8)


def dynamic_header(w, hlit, hdist, clen_lengths, final=1):
    """Block header with the code-length code given as 19 lengths in symbol order."""
    order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
    w.field(final, 1)
    w.field(2, 2)
    w.field(hlit - 257, 5)
    w.field(hdist - 1, 5)
    w.field(19 - 4, 4)
    for s in order:
        w.field(clen_lengths[s], 3)


def gen_bad_deflate():
    """Corrupt raw deflate streams, each rejected by zlib (the message it gives is noted)."""
    bad = {}
    w = BitWriter()                      # "invalid block type"
    w.field(1, 1)
    w.field(3, 2)
    bad['bad_blocktype'] = w.bytes()
    bad['bad_stored_len'] = bytes([1, 5, 0, 5, 0]) + b'hello'        # "invalid stored block lengths"
    w = BitWriter()                      # fixed block starting with a match: "invalid distance too far back"
    w.field(1, 1)
    w.field(1, 2)
    fixed_lit(w, ord('a'))
    fixed_lit(w, 258)                    # length 4
    w.code(1, 5)                         # distance code 1: distance 2 > 1 byte written
    fixed_lit(w, 256)
    bad['bad_distance'] = w.bytes()
    w = BitWriter()                      # fixed block using length symbol 286: "invalid literal/length code"
    w.field(1, 1)
    w.field(1, 2)
    fixed_lit(w, 286)
    bad['bad_litlen_286'] = w.bytes()
    w = BitWriter()                      # fixed block using distance symbol 30: "invalid distance code"
    w.field(1, 1)
    w.field(1, 2)
    fixed_lit(w, ord('a'))
    fixed_lit(w, 257)
    w.code(30, 5)
    bad['bad_distance_30'] = w.bytes()
    w = BitWriter()                      # code-length code with 19 codes of length 1: over-subscribed
    dynamic_header(w, 257, 1, [1] * 19)  # "invalid code lengths set"
    bad['bad_clen_oversubscribed'] = w.bytes() + b'\0' * 8
    w = BitWriter()                      # code-length code of two 2-bit codes: incomplete
    dynamic_header(w, 257, 1, [2 if s in (0, 1) else 0 for s in range(19)])
    bad['bad_clen_incomplete'] = w.bytes() + b'\0' * 8

    def with_lengths(lit_lengths, dist_lengths, clen=None):
        """A dynamic header sending the given code lengths with a complete code-length code
        of 5-bit codes for symbols 0..15 (+16 more codes of length 5 for symbols 16..18 and
        padding: 16 + 3 = 19 symbols; use lengths 4 for 0..15 and 0 otherwise -> complete)."""
        clen = [4] * 16 + [0, 0, 0]
        w = BitWriter()
        dynamic_header(w, len(lit_lengths), len(dist_lengths), clen)
        for L in list(lit_lengths) + list(dist_lengths):
            w.code(L, 4)                 # code for symbol L is L itself (canonical, all 4 bits)
        return w

    lit = [0] * 257                      # literal/length code with three 1-bit codes: over-subscribed
    lit[0] = lit[1] = lit[256] = 1
    bad['bad_lit_oversubscribed'] = with_lengths(lit, [1]).bytes() + b'\0' * 8
    lit = [0] * 257                      # no code for end-of-block: "invalid code -- missing end-of-block"
    lit[0] = lit[1] = 1
    bad['bad_no_eob'] = with_lengths(lit, [1]).bytes() + b'\0' * 8
    lit = [0] * 257                      # incomplete literal/length code: 3 codes of length 2
    lit[0] = lit[1] = lit[256] = 2
    bad['bad_lit_incomplete'] = with_lengths(lit, [1]).bytes() + b'\0' * 8
    w = BitWriter()                      # too many length codes: HLIT = 287 ("too many length or distance symbols")
    dynamic_header(w, 287, 1, [4] * 16 + [0, 0, 0])
    bad['bad_hlit'] = w.bytes() + b'\0' * 64
    w = BitWriter()                      # repeat (16) as the first code length: "invalid bit length repeat"
    dynamic_header(w, 257, 1, [2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2])
    w.code(2, 2)                         # symbol 16 (codes: 0->00, 1->01, 16->10, 18->11)
    w.field(0, 2)
    bad['bad_repeat_first'] = w.bytes() + b'\0' * 8
    for name, data in bad.items():
        try:
            zlib.decompress(data, -15)
            raise AssertionError(f'zlib accepted {name}')
        except zlib.error:
            pass
    # one file: [u32 count] then per stream [u8 name length, name, u32 size, bytes]
    blob = struct.pack('<I', len(bad))
    for name, data in sorted(bad.items()):
        blob += bytes([len(name)]) + name.encode() + struct.pack('<I', len(data)) + data
    write('bad_deflate.bin', blob)


# ---- PNG -----------------------------------------------------------------------------------

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))


def pack_row(samples, depth):
    if depth == 16:
        return b''.join(struct.pack('>H', int(v)) for v in samples)
    if depth == 8:
        return bytes(int(v) for v in samples)
    out, acc, nbits = bytearray(), 0, 0
    for v in samples:
        acc = (acc << depth) | int(v)
        nbits += depth
        if nbits == 8:
            out.append(acc)
            acc, nbits = 0, 0
    if nbits:
        out.append(acc << (8 - nbits))
    return bytes(out)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_row(ftype, row, prev, bpp):
    out = bytearray(len(row))
    for i in range(len(row)):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        pred = [0, a, b, (a + b) // 2, paeth(a, b, c)][ftype]
        out[i] = (row[i] - pred) & 0xff
    return bytes([ftype]) + bytes(out)


def encode_png(samples, depth, ctype, interlace=0, palette=None, trns=None, idat_size=1 << 20,
               filters=None):
    """samples: (H, W, channels) integers.  filters: per-row filter types (cycled); default
    cycles through all five."""
    H, W, C = samples.shape
    assert C == CHANNELS[ctype]
    bpp = max(1, C * depth // 8)
    filters = filters or [0, 1, 2, 3, 4]
    raw, k = bytearray(), 0
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for x0, y0, dx, dy in passes:
        sub = samples[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue                     # empty passes have no bytes at all
        prev = bytes(len(pack_row(sub[0].reshape(-1), depth)))
        for r in range(sub.shape[0]):
            row = pack_row(sub[r].reshape(-1), depth)
            raw += filter_row(filters[k % len(filters)], row, prev, bpp)
            prev, k = row, k + 1
    z = zlib.compress(bytes(raw), 9)
    out = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', W, H, depth, ctype, 0, 0, interlace))
    out += chunk(b'tEXt', b'Comment\x00written by gen_images.py')
    if palette is not None:
        out += chunk(b'PLTE', bytes(np.asarray(palette, np.uint8).reshape(-1)))
    if trns is not None:
        out += chunk(b'tRNS', trns)
    for i in range(0, len(z), idat_size):
        out += chunk(b'IDAT', z[i:i + idat_size])
    return out + chunk(b'IEND', b'')


def expected_png(samples, depth, ctype, palette=None):
    """What PIL's convert('L') (gray types) or convert('RGB') gives, computed from the samples:
    low depths scaled by 255 / (2^depth - 1); 16-bit colour and gray+alpha keep the high byte;
    16-bit gray opens as mode I and convert('L') CLIPS it to 0..255; alpha is dropped."""
    s = samples.astype(np.int64)
    if ctype == 3:
        return np.asarray(palette, np.uint8)[s[..., 0]]
    if ctype in (0, 4):
        g = s[..., :1]
        if depth < 8:
            return (g * 255 // (2 ** depth - 1)).astype(np.uint8)
        if depth == 16:
            return (np.minimum(g, 255) if ctype == 0 else g >> 8).astype(np.uint8)
        return g.astype(np.uint8)
    rgb = s[..., :3]
    return (rgb >> 8 if depth == 16 else rgb).astype(np.uint8)


def pil_pixels(data, gray):
    im = Image.open(io.BytesIO(data))
    a = np.asarray(im.convert('L' if gray else 'RGB'))
    return a.reshape(a.shape[0], a.shape[1], -1)


def add_png(name, data, gray, independent=None):
    got = pil_pixels(data, gray)
    if independent is not None:
        assert independent.shape == got.shape and (independent == got).all(), name
    write(name, data)
    golden[name] = got


def random_samples(H, W, C, depth, ctype, npal=None):
    if ctype == 3:
        return rng.randint(0, npal, size=(H, W, 1))
    hi = 2 ** depth
    s = rng.randint(0, hi, size=(H, W, C))
    if depth == 16 and ctype == 0:
        # half the samples below 256, so both sides of PIL's clip are exercised
        small = rng.randint(0, 2, size=(H, W, C)).astype(bool)
        s[small] = rng.randint(0, 256, size=int(small.sum()))
    return s


def gen_png():
    # Written by hand: every colour type and legal depth, plain and Adam7, all filters,
    # IDAT split into 7-byte chunks for some.
    cases = []
    for ctype, depths in ((0, (1, 2, 4, 8, 16)), (2, (8, 16)), (3, (1, 2, 4, 8)), (4, (8, 16)), (6, (8, 16))):
        for depth in depths:
            for interlace in (0, 1):
                cases.append((ctype, depth, interlace, 17, 13))
    cases += [(2, 8, 0, 1, 1), (2, 8, 1, 1, 1), (0, 1, 1, 3, 5), (3, 2, 1, 5, 3), (6, 16, 1, 9, 1),
              (0, 4, 1, 1, 9), (2, 16, 0, 3, 5), (0, 2, 0, 7, 2)]
    for ctype, depth, interlace, W, H in cases:
        C = CHANNELS[ctype]
        palette = trns = None
        npal = None
        if ctype == 3:
            npal = min(2 ** depth, 200) - (1 if depth > 1 else 0)   # not always a full palette
            palette = rng.randint(0, 256, size=(npal, 3))
            if depth == 4:
                trns = bytes(rng.randint(0, 256, size=npal // 2).astype(np.uint8))
        s = random_samples(H, W, C, depth, ctype, npal)
        name = f'c{ctype}_d{depth}{"_i" if interlace else ""}_{W}x{H}.png'
        data = encode_png(s, depth, ctype, interlace, palette, trns,
                          idat_size=7 if (depth + W) % 3 == 0 else 1 << 20)
        add_png(name, data, ctype in (0, 4), expected_png(s, depth, ctype, palette))

    # Written by PIL itself
    def pil_png(name, im, gray, **kw):
        b = io.BytesIO()
        im.save(b, 'PNG', **kw)
        add_png(name, b.getvalue(), gray)

    a = rng.randint(0, 256, size=(13, 17, 4)).astype(np.uint8)
    pil_png('pil_rgb.png', Image.fromarray(a[..., :3], 'RGB'), False)
    pil_png('pil_rgb_opt.png', Image.fromarray((a[..., :3] // 16 * 16).astype(np.uint8), 'RGB'), False, optimize=True)
    pil_png('pil_rgba.png', Image.fromarray(a[:5, :3], 'RGBA'), False)
    pil_png('pil_l.png', Image.fromarray(a[..., 0], 'L'), True)
    pil_png('pil_la.png', Image.fromarray(a[:5, :3, :2], 'LA'), True)
    pil_png('pil_1.png', Image.fromarray(a[..., 0] > 127).convert('1'), True)
    pil_png('pil_1x1.png', Image.fromarray(a[:1, :1, :3], 'RGB'), False)
    p = Image.fromarray(a[..., 0] % 16, 'L').convert('P')
    p.putpalette(list(rng.randint(0, 256, size=48)))
    pil_png('pil_p4.png', p, False, bits=4)
    pil_png('pil_p_trns.png', p, False, transparency=3)
    i16 = a[..., 0].astype(np.uint16) * a[..., 1].astype(np.uint16) // 64
    pil_png('pil_i16.png', Image.fromarray(i16), True)

    # A big-ish plain image compressed at level 1 (several deflate blocks)
    big = (np.indices((48, 64)).sum(0) % 256).astype(np.uint8)
    big = np.stack([big, big[::-1], rng.randint(0, 256, size=big.shape).astype(np.uint8)], -1)
    pil_png('pil_rgb_48x64.png', Image.fromarray(big, 'RGB'), False, compress_level=1)

    gen_bad_png()


def png_from_chunks(chunks):
    return b'\x89PNG\r\n\x1a\n' + b''.join(chunk(k, d) for k, d in chunks)


def gen_bad_png():
    """Structurally invalid PNGs with valid chunk CRCs (the C test makes truncations and bad
    CRCs itself).  Stored in one file like bad_deflate.bin."""
    ihdr = lambda w, h, d=8, c=2, i=0, cm=0, fm=0: (b'IHDR', struct.pack('>IIBBBBB', w, h, d, c, cm, fm, i))
    good_raw = b''.join(b'\x00' + bytes(range(9)) for _ in range(2))        # 3x2 RGB, filter 0
    idat = (b'IDAT', zlib.compress(good_raw))
    iend = (b'IEND', b'')
    assert pil_pixels(png_from_chunks([ihdr(3, 2), idat, iend]), False).shape == (2, 3, 3)
    bad = {
        'zero_width': [ihdr(0, 2), idat, iend],
        'zero_height': [ihdr(3, 0), idat, iend],
        'huge': [ihdr(100000, 100000), idat, iend],
        'huge_w': [ihdr(2 ** 31 - 1, 1), idat, iend],
        'width_2_31': [ihdr(2 ** 31, 1), idat, iend],
        'bad_depth': [ihdr(3, 2, d=3), idat, iend],
        'bad_combo': [ihdr(3, 2, d=4, c=2), idat, iend],
        'bad_ctype': [ihdr(3, 2, c=5), idat, iend],
        'bad_compression': [ihdr(3, 2, cm=1), idat, iend],
        'bad_filter_method': [ihdr(3, 2, fm=1), idat, iend],
        'bad_interlace': [ihdr(3, 2, i=2), idat, iend],
        'bad_filter_type': [ihdr(3, 2), (b'IDAT', zlib.compress(b'\x05' + good_raw[1:])), iend],
        'short_data': [ihdr(3, 2), (b'IDAT', zlib.compress(good_raw[:-1])), iend],
        'long_data': [ihdr(3, 2), (b'IDAT', zlib.compress(good_raw + b'\0')), iend],
        'bad_zlib': [ihdr(3, 2), (b'IDAT', b'\x78\x9c\xff\xff\xff\xff' + b'\0' * 8), iend],
        'bad_adler': [ihdr(3, 2), (b'IDAT', zlib.compress(good_raw)[:-1] + bytes([zlib.compress(good_raw)[-1] ^ 1])), iend],
        'no_idat': [ihdr(3, 2), iend],
        'no_iend': [ihdr(3, 2), idat],
        'no_ihdr': [idat, iend],
        'ihdr_short': [(b'IHDR', b'\0\0\0\3\0\0\0\2\x08\x02\0\0'), idat, iend],
        'two_ihdr': [ihdr(3, 2), ihdr(3, 2), idat, iend],
        'no_plte': [ihdr(3, 2, c=3), (b'IDAT', zlib.compress(b'\0\0\0\0' * 2)), iend],
        'plte_bad_len': [ihdr(3, 2, c=3), (b'PLTE', b'\0' * 7), (b'IDAT', zlib.compress(b'\0\0\0\0' * 2)), iend],
        'plte_too_long': [ihdr(3, 2, c=3), (b'PLTE', b'\0' * 777), (b'IDAT', zlib.compress(b'\0\0\0\0' * 2)), iend],
        'palette_index': [ihdr(3, 2, c=3), (b'PLTE', b'\1\2\3\4\5\6'), (b'IDAT', zlib.compress(b'\0\0\1\2' * 2)), iend],
        'unknown_critical': [ihdr(3, 2), (b'ABCD', b'x'), idat, iend],
        'bad_chunk_type': [ihdr(3, 2), (b'AB\x00D', b'x'), idat, iend],
        'plte_after_idat': [ihdr(3, 2, c=3), (b'IDAT', zlib.compress(b'\0\0\0\0' * 2)), (b'PLTE', b'\0' * 3), iend],
    }
    blob = struct.pack('<I', len(bad))
    for name, chunks in sorted(bad.items()):
        data = png_from_chunks(chunks)
        blob += bytes([len(name)]) + name.encode() + struct.pack('<I', len(data)) + data
    write('bad_png.bin', blob)


# ---- PPM / PGM -----------------------------------------------------------------------------

def gen_ppm():
    def add(name, data, gray, independent=None):
        got = pil_pixels(data, gray)
        if independent is not None:
            assert (independent == got).all(), name
        write(name, data)
        golden[name] = got

    def scaled(v, maxval, gray):
        """PIL's rule, from PpmImagePlugin.py: round(v / maxval * out_max) with Python's
        round-half-to-even; gray with maxval > 255 becomes mode I (out_max 65535), which
        convert('L') clips to 255."""
        out_max = 65535 if gray and maxval > 255 else 255
        r = np.vectorize(lambda x: min(out_max, round(x / maxval * out_max)))(v)
        return np.minimum(r, 255).astype(np.uint8)

    for magic, C, maxval, W, H in (('P6', 3, 255, 17, 13), ('P5', 1, 255, 17, 13), ('P6', 3, 1023, 5, 3),
                                   ('P5', 1, 1023, 5, 3), ('P6', 3, 65535, 3, 5), ('P5', 1, 65535, 3, 5),
                                   ('P5', 1, 1, 4, 4), ('P5', 1, 15, 4, 4), ('P6', 3, 2, 3, 3),
                                   ('P3', 3, 255, 4, 3), ('P2', 1, 255, 4, 3), ('P3', 3, 1023, 3, 2),
                                   ('P2', 1, 1023, 3, 2), ('P2', 1, 65535, 3, 2), ('P2', 1, 300, 3, 2),
                                   ('P2', 1, 2, 3, 1), ('P6', 3, 255, 1, 1)):
        v = rng.randint(0, maxval + 1, size=(H, W, C))
        if maxval > 255 and C == 1:
            v[0, 0, 0] = rng.randint(0, 256)          # some gray values below the clip
        if maxval == 2:
            v.flat[:3] = [0, 1, 2]
        if magic in ('P5', 'P6'):
            head = f'{magic}\n{W} {H}\n{maxval}\n'.encode()
            body = v.astype('>u2' if maxval > 255 else np.uint8).tobytes()
        else:
            head = f'{magic}\n# a comment\n{W} {H}\n{maxval}\n'.encode()
            rows = [' '.join(str(x) for x in v[r].reshape(-1)) for r in range(H)]
            body = ('\n'.join(rows) + '\n').encode()
        name = f'{magic.lower()}_{maxval}_{W}x{H}.{"pgm" if C == 1 else "ppm"}'
        add(name, head + body, C == 1, scaled(v, maxval, C == 1))
    # exact halves: round-half-to-even differs from round-half-up (1/6*255 = 42.5 -> 42)
    for magic, C, maxval in (('P5', 1, 6), ('P6', 3, 10), ('P2', 1, 510), ('P3', 3, 6)):
        v = (np.arange(3 * 4 * C) % (min(maxval, 11) + 1)).reshape(3, 4, C)
        if magic in ('P5', 'P6'):
            data = f'{magic}\n4 3\n{maxval}\n'.encode() + v.astype('>u2' if maxval > 255 else np.uint8).tobytes()
        else:
            data = f'{magic}\n4 3\n{maxval}\n'.encode() + ' '.join(str(x) for x in v.reshape(-1)).encode() + b'\n'
        add(f'half_{magic.lower()}_{maxval}.{"pgm" if C == 1 else "ppm"}', data, C == 1, scaled(v, maxval, C == 1))
    # comments and odd whitespace in the header
    v = rng.randint(0, 256, size=(2, 3, 3)).astype(np.uint8)
    add('comments.ppm', b'P6 #magic\n#full line\n3\t#w\r\n 2 # h\n255\n' + v.tobytes(), False, v)
    add('comments_ascii.pgm', b'P2\n#c\n2 2\n255\n1 2 # inside the data\n3\n\n4\n', True,
        np.array([[[1], [2]], [[3], [4]]], np.uint8))

    bad = {
        'truncated_raster': b'P6\n3 2\n255\n' + b'\0' * 17,
        'truncated_header': b'P6\n3 2\n',
        'maxval_0': b'P5\n1 1\n0\n\0',
        'maxval_65536': b'P5\n1 1\n65536\n\0\0',
        'zero_width': b'P5\n0 1\n255\n',
        'huge': b'P5\n100000 100000\n255\n\0',
        'huge_digits': b'P5\n99999999999999999999 1\n255\n\0',
        'negative': b'P5\n-1 1\n255\n\0',
        'ascii_too_big': b'P2\n2 1\n255\n1 256\n',
        'ascii_junk': b'P2\n2 1\n255\n1 x\n',
        'ascii_short': b'P3\n2 1\n255\n1 2 3 4 5\n',
        'no_space_after_maxval': b'P5\n1 1\n255',
        'bad_magic': b'P7\n1 1\n255\n\0',
        'junk_width': b'P5\nx 1\n255\n\0',
    }
    blob = struct.pack('<I', len(bad))
    for name, data in sorted(bad.items()):
        blob += bytes([len(name)]) + name.encode() + struct.pack('<I', len(data)) + data
    write('bad_ppm.bin', blob)


if __name__ == '__main__':
    os.makedirs(OUT, exist_ok=True)
    gen_deflate()
    gen_bad_deflate()
    gen_png()
    gen_ppm()
    safetensors_io.save(os.path.join(OUT, 'golden.safetensors'), golden,
                        {'description': 'expected pixels: PIL ' + Image.__version__ +
                         " Image.open(f).convert('L' or 'RGB'), keyed by file name; (H, W, C) U8"})
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f'{len(os.listdir(OUT))} files, {total} bytes in {OUT}')
