"""Minimal safetensors writer/reader for the golden generators (no dependency beyond numpy).

save(path, tensors, metadata): tensors is a dict name -> numpy array or torch tensor.  float64
and float32 values are stored as F32 (compute goldens in float64, store float32); integer
arrays as I32 unless they are int64 (I64).  Keys are written in sorted order."""
import json
import struct

import numpy as np

_DTYPES = {np.dtype('float32'): 'F32', np.dtype('int32'): 'I32', np.dtype('int64'): 'I64',
           np.dtype('uint8'): 'U8', np.dtype('float16'): 'F16'}


def _as_numpy(t):
    if hasattr(t, 'detach'):
        t = t.detach().cpu().numpy()
    a = np.asarray(t)
    if a.dtype == np.float64:
        a = a.astype(np.float32)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8)
    return np.ascontiguousarray(a)


def save(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        a = _as_numpy(tensors[name])
        raw = a.astype(a.dtype.newbyteorder('<')).tobytes()
        header[name] = {'dtype': _DTYPES[a.dtype], 'shape': list(a.shape),
                        'data_offsets': [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header['__metadata__'] = {k: str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)  # the format pads the header to 8 bytes
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load(path):
    inv = {v: k for k, v in _DTYPES.items()}
    inv['BF16'] = None
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop('__metadata__', {})
    out = {}
    for name, d in header.items():
        b, e = d['data_offsets']
        out[name] = np.frombuffer(data[b:e], dtype=inv[d['dtype']]).reshape(d['shape'])
    return out, meta
