"""PyTorch's own files for tests/test_torch_format.c, written by Debian's torch (1.13):

  good files, each with NAME.golden.safetensors holding what torch.load gives (bit for bit,
  in the file's own dtypes; bfloat16 as its raw bits under the BF16 dtype):
    state_dict.pt     torch.save(state_dict), the default zip format
    legacy.pt         the same with _use_new_zipfile_serialization=False
    protocol4.pt, legacy_protocol4.pt   the same two with pickle_protocol=4
    dtypes.pt         float16, bfloat16, float64, int64, int32, int16, int8, uint8, bool
    views.pt          non-contiguous views (transpose, strided slice, expand) and shared storages
    checkpoint.pth    {"epoch", "state_dict": OrderedDict, "optimizer", ...}: unwrapped
    model_key.pth     {"model": {...}, "args": [...]}
    deflated.pt       state_dict.pt re-zipped with deflate (PyTorch reads that too)
    zip64.pt          state_dict.pt rewritten with zip64 extra fields and end records
    scripted.pt       torch.jit.script + torch.jit.save of a module with typed attributes
                      (List[int], List[float], List[bool], Dict[str, int], List[Tensor]: the
                      torch.jit._pickle globals); its golden adds the listed tensor, 'extra.0'
    clip_ts.pt        torch.jit.trace + torch.jit.save of a tiny CLIP with OpenAI's model.py
                      layout and fp16 weights (like OpenAI's ViT-B-32.pt); its golden also
                      holds an image, tokens and the float32 model's encode_image/encode_text
    resnet_tv.pth     a micro torchvision ResNet (torchvision's BasicBlock, narrow stages)
    vit_tv.pth        a micro torchvision VisionTransformer
  (the last two goldens hold an input and PyTorch's logits)

  hostile files, NAME.pt, each to be refused without running anything: see EVIL below.

Run: /usr/bin/python3 tests/ref/gen_torch_files.py  (writes tests/data/torch/)"""
import collections
import io
import json
import os
import struct
import typing
import zipfile
import zlib

import torch
import torch.nn as nn
import torchvision

OUT = os.path.join(os.path.dirname(__file__), '..', 'data', 'torch')
torch.manual_seed(14)

ST_DTYPES = {torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16', torch.float64: 'F64',
             torch.int64: 'I64', torch.int32: 'I32', torch.int16: 'I16', torch.int8: 'I8',
             torch.uint8: 'U8', torch.bool: 'BOOL'}


def raw_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def save_golden(path, tensors):
    """safetensors with each tensor's own dtype (the committed helper knows no bfloat16)."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        b = raw_bytes(t)
        header[name] = {'dtype': ST_DTYPES[t.dtype], 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))


def out(name):
    return os.path.join(OUT, name)


def good(name, obj, golden, **kw):
    torch.save(obj, out(name), **kw)
    back = torch.load(out(name))  # what PyTorch itself loads is the judge
    save_golden(out(name + '.golden.safetensors'), flatten(back, golden))


def flatten(obj, keys):
    """The tensors of a loaded state dict under the names the C reader must give them."""
    got = {}
    for k in keys:
        got[k] = obj[k]
    return got


def small_state_dict():
    conv = nn.Conv2d(3, 4, 3)
    bn = nn.BatchNorm2d(4)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.num_batches_tracked += 7
    fc = nn.Linear(4, 5)
    sd = collections.OrderedDict()
    for prefix, m in (('conv1', conv), ('bn1', bn), ('fc', fc)):
        for k, v in m.state_dict().items():
            sd[prefix + '.' + k] = v
    return sd


def gen_good():
    sd = small_state_dict()
    good('state_dict.pt', sd, list(sd))
    good('legacy.pt', sd, list(sd), _use_new_zipfile_serialization=False)
    # pickle protocol 4 (FRAME, MEMOIZE, STACK_GLOBAL, SHORT_BINUNICODE), both formats
    good('protocol4.pt', sd, list(sd), pickle_protocol=4)
    good('legacy_protocol4.pt', sd, list(sd), pickle_protocol=4, _use_new_zipfile_serialization=False)
    good('checkpoint.pth', {'epoch': 3, 'state_dict': sd, 'lr': 0.1, 'name': 'run',
                            'optimizer': {'state': {0: {'step': 2, 'exp_avg': torch.ones(3)}},
                                          'param_groups': [{'lr': 0.1, 'params': [0]}]}}, [])
    save_golden(out('checkpoint.pth.golden.safetensors'), sd)
    torch.save({'model': {'head': {'weight': sd['fc.weight']}}, 'args': [1, 'x', None]}, out('model_key.pth'))
    save_golden(out('model_key.pth.golden.safetensors'), {'head.weight': sd['fc.weight']})

    x = torch.randn(6, 5)
    dt = {'f16': x.half(), 'bf16': x.bfloat16(), 'f64': x.double(), 'i64': torch.tensor([-2 ** 40, 3, 2 ** 40]),
          'i32': torch.tensor([-5, 7], dtype=torch.int32), 'i16': torch.tensor([-300, 2], dtype=torch.int16),
          'i8': torch.tensor([-128, 127], dtype=torch.int8), 'u8': torch.tensor([0, 255], dtype=torch.uint8),
          'bool': torch.tensor([True, False, True]), 'scalar': torch.tensor(2.5)}
    dt['f16'][0, 0] = float('inf')
    dt['f16'][0, 1] = 6e-8  # a half subnormal
    good('dtypes.pt', dt, list(dt))

    base = torch.arange(60, dtype=torch.float32).reshape(6, 10) / 7
    views = {'base': base, 'transposed': base.t(), 'strided': base[1:5, 2::3], 'row': base[4],
             'expanded': torch.randn(3, 1).expand(3, 4), 'tied': base, 'offset': base.view(-1)[13:29].view(4, 4),
             'col': base[:, 7:8]}
    good('views.pt', views, list(views))

    # the same archive, every entry deflated
    buf = io.BytesIO()
    with zipfile.ZipFile(out('state_dict.pt')) as zin, zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
    open(out('deflated.pt'), 'wb').write(buf.getvalue())
    save_golden(out('deflated.pt.golden.safetensors'), sd)

    # the same archive with zip64 records throughout; torch.load (miniz) must agree
    with zipfile.ZipFile(out('state_dict.pt')) as zin:
        z64 = zip_bytes([(i.filename, zin.read(i.filename), False) for i in zin.infolist()], zip64=True)
    open(out('zip64.pt'), 'wb').write(z64)
    back = torch.load(out('zip64.pt'))
    assert all(torch.equal(back[k], sd[k]) for k in sd) and len(back) == len(sd)
    save_golden(out('zip64.pt.golden.safetensors'), sd)


# ---- a tiny CLIP with OpenAI's clip/model.py layout (ViT image tower) -------------------------

class LayerNorm(nn.LayerNorm):
    def forward(self, x):
        return super().forward(x.float()).type(x.dtype)


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d_model, n_head, attn_mask=None):
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, n_head)
        self.ln_1 = LayerNorm(d_model)
        self.mlp = nn.Sequential(collections.OrderedDict([
            ('c_fc', nn.Linear(d_model, d_model * 4)), ('gelu', QuickGELU()), ('c_proj', nn.Linear(d_model * 4, d_model))]))
        self.ln_2 = LayerNorm(d_model)
        self.attn_mask = attn_mask

    def attention(self, x):
        mask = self.attn_mask.to(dtype=x.dtype, device=x.device) if self.attn_mask is not None else None
        return self.attn(x, x, x, need_weights=False, attn_mask=mask)[0]

    def forward(self, x):
        x = x + self.attention(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads, attn_mask=None):
        super().__init__()
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads, attn_mask) for _ in range(layers)])

    def forward(self, x):
        return self.resblocks(x)


class VisionTransformer(nn.Module):
    def __init__(self, input_resolution, patch_size, width, layers, heads, output_dim):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, patch_size, patch_size, bias=False)
        scale = width ** -0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((input_resolution // patch_size) ** 2 + 1, width))
        self.ln_pre = LayerNorm(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def forward(self, x):
        x = self.conv1(x)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = self.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x).permute(1, 0, 2)
        x = self.transformer(x).permute(1, 0, 2)
        return self.ln_post(x[:, 0, :]) @ self.proj


class CLIP(nn.Module):
    def __init__(self, embed_dim, image_resolution, vision_layers, vision_width, vision_patch_size,
                 context_length, vocab_size, transformer_width, transformer_heads, transformer_layers, vision_heads):
        super().__init__()
        self.visual = VisionTransformer(image_resolution, vision_patch_size, vision_width, vision_layers,
                                        vision_heads, embed_dim)
        self.transformer = Transformer(transformer_width, transformer_layers, transformer_heads,
                                       self.build_attention_mask(context_length))
        self.token_embedding = nn.Embedding(vocab_size, transformer_width)
        self.positional_embedding = nn.Parameter(0.01 * torch.randn(context_length, transformer_width))
        self.ln_final = LayerNorm(transformer_width)
        self.text_projection = nn.Parameter(transformer_width ** -0.5 * torch.randn(transformer_width, embed_dim))
        self.logit_scale = nn.Parameter(torch.ones([]) * 2.6592)
        # OpenAI's archives carry these three as tensors (clip.py deletes them from the state dict)
        self.register_buffer('input_resolution', torch.tensor(image_resolution))
        self.register_buffer('context_length', torch.tensor(context_length))
        self.register_buffer('vocab_size', torch.tensor(vocab_size))

    @staticmethod
    def build_attention_mask(context_length):
        mask = torch.empty(context_length, context_length)
        mask.fill_(float('-inf'))
        return mask.triu_(1)

    def encode_image(self, image):
        return self.visual(image)

    def encode_text(self, text):
        x = self.token_embedding(text) + self.positional_embedding
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection

    def forward(self, image, text):
        return self.encode_image(image), self.encode_text(text)


def gen_clip():
    model = CLIP(embed_dim=8, image_resolution=16, vision_layers=1, vision_width=16, vision_patch_size=8,
                 context_length=6, vocab_size=20, transformer_width=16, transformer_heads=2,
                 transformer_layers=1, vision_heads=2).eval()
    for p in model.parameters():  # like OpenAI's releases, fp16 weights; the float model uses the rounded values
        p.data = p.data.half().float()
    image = torch.randn(2, 3, 16, 16)
    text = torch.tensor([[19, 3, 5, 18, 0, 0], [19, 7, 18, 0, 0, 0]])
    with torch.no_grad():
        feats = model(image, text)
        traced = torch.jit.trace(model, (image, text))
    traced.half()
    torch.jit.save(traced, out('clip_ts.pt'))
    back = torch.jit.load(out('clip_ts.pt'))
    g = dict(back.state_dict())
    g['image'], g['tokens'] = image, text.int()
    g['image_features'], g['text_features'] = feats
    save_golden(out('clip_ts.pt.golden.safetensors'), g)


def gen_torchvision():
    from torchvision.models.resnet import BasicBlock, ResNet
    net = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=5)
    widths, inplanes = [2, 4, 8, 16], 2
    net.conv1 = nn.Conv2d(3, 2, 7, 2, 3, bias=False)
    net.bn1 = nn.BatchNorm2d(2)
    for s, w in enumerate(widths):
        stride = 1 if s == 0 else 2
        ds = None if s == 0 else nn.Sequential(nn.Conv2d(inplanes, w, 1, stride, bias=False), nn.BatchNorm2d(w))
        setattr(net, 'layer%d' % (s + 1), nn.Sequential(BasicBlock(inplanes, w, stride, ds)))
        inplanes = w
    net.fc = nn.Linear(16, 5)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    net.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        logits = net(x)
    torch.save(net.state_dict(), out('resnet_tv.pth'))
    save_golden(out('resnet_tv.pth.golden.safetensors'), {'input': x, 'logits': logits})

    vit = torchvision.models.VisionTransformer(image_size=16, patch_size=8, num_layers=1, num_heads=2,
                                               hidden_dim=8, mlp_dim=16, num_classes=3).eval()
    with torch.no_grad():
        for p in vit.parameters():
            p.normal_(0, 0.5)
        x = torch.randn(2, 3, 16, 16)
        logits = vit(x)
    torch.save(vit.state_dict(), out('vit_tv.pth'), _use_new_zipfile_serialization=False)
    save_golden(out('vit_tv.pth.golden.safetensors'), {'input': x, 'logits': logits})


class Scripted(nn.Module):
    """Attributes that torch.jit.script pickles through torch.jit._pickle's typed builders."""
    def __init__(self):
        super().__init__()
        self.ln = nn.LayerNorm(4)  # normalized_shape: List[int]
        self.fc = nn.Linear(4, 3)
        self.scales: typing.List[float] = [0.5, 2.0]
        self.flags: typing.List[bool] = [True, False]
        self.table: typing.Dict[str, int] = {'a': 1}
        self.extra: typing.List[torch.Tensor] = [torch.randn(2)]
        self.register_buffer('mask', torch.randn(3, 3).triu(1))

    def forward(self, x):
        return self.fc(self.ln(x)) + self.extra[0].sum() * self.scales[0]


def gen_scripted():
    torch.manual_seed(15)
    torch.jit.save(torch.jit.script(Scripted()), out('scripted.pt'))
    back = torch.jit.load(out('scripted.pt'))
    g = dict(back.state_dict())
    g['extra.0'] = back.extra[0]
    save_golden(out('scripted.pt.golden.safetensors'), g)


# ---- hostile files ------------------------------------------------------------------------------

PWNED = '/tmp/mcnn_torch_pwned'  # the payloads would create this file if anything ran them


def zip_bytes(entries, patch=None, zip64=False):
    """A zip archive written here, byte by byte, so that it can lie.  entries: (name, data,
    deflate?) ; patch(name, fields) may change the fields written for an entry: csize, usize,
    offset (local header offset in the directory), crc.  zip64: every size and offset in zip64
    extra fields and the zip64 end records, as archives over 4 GB have them."""
    body, central = b'', b''
    big = 0xFFFFFFFF
    for name, data, deflate in entries:
        nb = name.encode()
        comp = zlib.compressobj(9, zlib.DEFLATED, -15)
        stored = comp.compress(data) + comp.flush() if deflate else data
        f = {'crc': zlib.crc32(data), 'csize': len(stored), 'usize': len(data), 'offset': len(body),
             'method': 8 if deflate else 0}
        if patch:
            patch(name, f)
        if zip64:
            lx = struct.pack('<HHQQ', 1, 16, f['usize'], f['csize'])
            cx = struct.pack('<HHQQQ', 1, 24, f['usize'], f['csize'], f['offset'])
            sizes = (big, big, big)
        else:
            lx = cx = b''
            sizes = (f['csize'], f['usize'], f['offset'])
        body += struct.pack('<IHHHHHIIIHH', 0x04034b50, 45 if zip64 else 20, 0, f['method'], 0, 0, f['crc'],
                            sizes[0], sizes[1], len(nb), len(lx)) + nb + lx + stored
        central += struct.pack('<IHHHHHHIIIHHHHHII', 0x02014b50, 45, 45, 0, f['method'], 0, 0, f['crc'], sizes[0],
                               sizes[1], len(nb), len(cx), 0, 0, 0, 0, sizes[2]) + nb + cx
    if not zip64:
        return body + central + struct.pack('<IHHHHIIH', 0x06054b50, 0, 0, len(entries), len(entries),
                                            len(central), len(body), 0)
    n = len(entries)
    end64 = struct.pack('<IQHHIIQQQQ', 0x06064b50, 44, 45, 45, 0, 0, n, n, len(central), len(body))
    locator = struct.pack('<IIQI', 0x07064b50, 0, len(body) + len(central), 1)
    end = struct.pack('<IHHHHIIH', 0x06054b50, 0, 0, 0xFFFF, 0xFFFF, big, big, 0)
    return body + central + end64 + locator + end


def torch_zip(pickle_bytes, storages=(), **kw):
    return zip_bytes([('archive/data.pkl', pickle_bytes, False)] +
                     [('archive/data/%d' % i, s, False) for i, s in enumerate(storages)], **kw)


def pk_str(s):
    b = s.encode()
    return b'X' + struct.pack('<I', len(b)) + b


def pk_tensor(key, storage_type, numel, offset, size, stride):
    """_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()) in protocol 2."""
    ints = lambda xs: b'(' + b''.join(b'J' + struct.pack('<i', x) for x in xs) + b't'
    return (b'ctorch._utils\n_rebuild_tensor_v2\n(' + b'(' + pk_str('storage') + b'ctorch\n' +
            storage_type.encode() + b'\n' + pk_str(key) + pk_str('cpu') + b'J' + struct.pack('<i', numel) + b'tQ' +
            b'J' + struct.pack('<i', offset) + ints(size) + ints(stride) +
            b'\x89ccollections\nOrderedDict\n)RtR')


def one_tensor_dict(tensor_pickle):
    return b'\x80\x02}(' + pk_str('w') + tensor_pickle + b'u.'


def legacy_bytes(main_pickle):
    magic = b'\x80\x02\x8a\x0a' + (0x1950a86a20f9469cfc6c).to_bytes(10, 'little') + b'.'
    return magic + b'\x80\x02M\xe9\x03.' + b'\x80\x02}.' + main_pickle + b'\x80\x02](X\x01\x00\x00\x000e.'


def gen_evil():
    shell = pk_str('touch ' + PWNED)
    evil = {}
    # the classic: GLOBAL os system + REDUCE
    evil['os_system'] = torch_zip(b'\x80\x02cos\nsystem\n' + shell + b'\x85R.')
    evil['posix_system'] = torch_zip(b'\x80\x02cposix\nsystem\n' + shell + b'\x85R.')
    # protocol 4: STACK_GLOBAL builtins.eval
    evil['builtins_eval'] = torch_zip(b'\x80\x04\x8c\x08builtins\x8c\x04eval\x93' +
                                      pk_str("__import__('os').system('touch %s')" % PWNED) + b'\x85R.')
    # hidden in a state dict next to a real tensor, and in the legacy format
    t = pk_tensor('0', 'FloatStorage', 2, 0, [2], [1])
    evil['nested_global'] = torch_zip(b'\x80\x02}(' + pk_str('w') + t + pk_str('x') +
                                      b'csubprocess\ncheck_call\n(' + shell + b'tRu.', [b'\0' * 8])
    evil['legacy_os_system'] = legacy_bytes(b'\x80\x02cos\nsystem\n' + shell + b'\x85R.')
    # a TorchScript class may not be called, nor a storage type
    evil['torch_class_reduce'] = torch_zip(b'\x80\x02c__torch__\nM\n)R.')
    evil['newobj_other'] = torch_zip(b'\x80\x02ccollections\nOrderedDict\n)\x81.')
    # memo abuse
    evil['memo_huge'] = torch_zip(b'\x80\x02}r\xf0\xff\xff\x0f.')
    evil['memo_unset'] = torch_zip(b'\x80\x02h\x05.')
    # nesting: 2000 MARKs; lists nested 1000 deep; a dict containing itself; sharing that
    # doubles 40 times (2^40 paths to one tensor)
    evil['deep_marks'] = torch_zip(b'\x80\x02' + b'(' * 2000 + b'.')
    evil['deep_lists'] = torch_zip(b'\x80\x02}(' + pk_str('a') + b']' * 1000 + b'a' * 999 + b'u.')
    evil['cyclic'] = torch_zip(b'\x80\x02}q\x00(' + pk_str('self') + b'h\x00u.')
    laughs = b'\x80\x02}(' + pk_str('a') + b']q\x00' + t + b'a0'
    for i in range(40):  # memo[0] = [memo[0], memo[0]]
        laughs += b']h\x00ah\x00aq\x000'
    evil['shared_blowup'] = torch_zip(laughs + b'h\x00u.', [b'\0' * 8])
    # truncated: the archive cut in half; the pickle without its STOP; the legacy stream cut
    good_zip = open(out('state_dict.pt'), 'rb').read()
    evil['truncated_zip'] = good_zip[:len(good_zip) // 2]
    evil['truncated_pickle'] = torch_zip(one_tensor_dict(t)[:-3], [b'\0' * 8])
    legacy = open(out('legacy.pt'), 'rb').read()
    evil['truncated_legacy'] = legacy[:len(legacy) - 20]
    # zip bombs: an entry that inflates past its declared size; one that claims more than
    # deflate can give
    zeros = b'\0' * (8 << 20)

    def lie_usize(name, f):
        if name == 'archive/data.pkl':
            f['usize'] = 1000

    evil['bomb_past_size'] = zip_bytes([('archive/data.pkl', zeros, True)], lie_usize)

    def claim_huge(name, f):
        if name == 'archive/data/0':
            f['usize'] = 0xFFFFFFF0

    bomb = zip_bytes([('archive/data.pkl', one_tensor_dict(t), False), ('archive/data/0', b'\0' * 64, True)],
                     claim_huge)
    evil['bomb_ratio'] = bomb
    # overlapping entries: data/1's local header lives inside data/0's bytes
    inner_name = b'archive/data/1'
    inner = struct.pack('<IHHHHHIIIHH', 0x04034b50, 20, 0, 0, 0, 0, zlib.crc32(b'\0' * 8), 8, 8, len(inner_name), 0) \
        + inner_name + b'\0' * 8
    pk = one_tensor_dict(t)
    entries = [('archive/data.pkl', pk, False), ('archive/data/0', inner + b'\0' * 8, False), ('archive/data/1', b'\0' * 8, False)]
    first_data = 30 + len('archive/data.pkl') + len(pk) + 30 + len('archive/data/0')

    def overlap(name, f):
        if name == 'archive/data/1':
            f['offset'] = first_data

    evil['overlap'] = zip_bytes(entries, overlap)
    # wrong sizes: a storage smaller than the pickle says; a view past its storage; a stored
    # entry with two sizes; a directory pointing outside the file; a corrupt tensor (bad CRC)
    evil['storage_short'] = torch_zip(one_tensor_dict(pk_tensor('0', 'FloatStorage', 100, 0, [100], [1])), [b'\0' * 24])
    evil['view_past_storage'] = torch_zip(one_tensor_dict(pk_tensor('0', 'FloatStorage', 6, 2, [3, 2], [2, 1])), [b'\0' * 24])

    def two_sizes(name, f):
        if name == 'archive/data/0':
            f['usize'] += 4

    evil['two_sizes'] = torch_zip(one_tensor_dict(t), [b'\0' * 8], patch=two_sizes)
    z = bytearray(torch_zip(one_tensor_dict(t), [b'\0' * 8]))
    struct.pack_into('<I', z, len(z) - 6, len(z) * 2)  # the directory's offset
    evil['directory_outside'] = bytes(z)
    z = bytearray(torch_zip(one_tensor_dict(t), [b'\1' * 8]))
    z[z.index(b'archive/data/0') + len('archive/data/0')] ^= 0xFF  # the first data byte of the storage
    evil['bad_crc'] = bytes(z)
    evil['missing_storage'] = torch_zip(one_tensor_dict(t))
    evil['no_data_pkl'] = zip_bytes([('archive/other.pkl', b'\x80\x02N.', False)])
    evil['protocol0'] = torch_zip(b'(dp0\nS\'a\'\np1\nI1\ns.')
    evil['complex'] = torch_zip(one_tensor_dict(pk_tensor('0', 'ComplexFloatStorage', 1, 0, [1], [1])), [b'\0' * 8])
    for name, data in evil.items():
        open(out('evil_%s.pt' % name), 'wb').write(data)
    return evil


if __name__ == '__main__':
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    gen_good()
    gen_clip()
    gen_torchvision()
    gen_evil()
    gen_scripted()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print('wrote %d files, %d bytes, in %s' % (len(os.listdir(OUT)), total, OUT))
