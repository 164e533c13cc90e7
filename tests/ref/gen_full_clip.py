"""Full-size OpenAI CLIP archives for `make test-full` and bench/compare_clip_files.py: ViT-B/32,
ViT-L/14 and ViT-L/14@336px with OpenAI's clip/model.py architecture (the mirror in
gen_torch_files.py), OpenAI's initialisation (initialize_parameters) with the biases and layer
norms randomised too, the dtypes of OpenAI's releases (convert_weights: float16 for the conv,
linear, attention and projection weights, float32 for the norms and embeddings), written the
way OpenAI's files are: torch.jit.trace + torch.jit.save, a TorchScript archive.  The real
files cannot be downloaded here; these have their layout, names and sizes.

Also PyTorch's answer for each: encode_image of 2 images and encode_text of 2 prompts, computed
in float64 from the stored (rounded) weights, in NAME.ref.safetensors.

Writes into $MCNN_FULL_DIR (default build/full), NAME.pt for NAME in ViT-B-32 ViT-L-14
ViT-L-14-336px (about 0.35, 0.9 and 0.9 GB; a file already written is kept); nothing here is
committed.
Run: /usr/bin/python3 tests/ref/gen_full_clip.py [NAME...]
About a minute per ViT-L with OpenBLAS; with netlib's reference libblas.so.3 (what Debian's
python3-torch gets when no optimised BLAS is installed) the float64 references take tens of
minutes: install libopenblas0-pthread, or put its folder first on LD_LIBRARY_PATH."""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import gen_torch_files  # noqa: E402
from gen_torch_files import CLIP  # noqa: E402  OpenAI's clip/model.py layout
from safetensors_io import save  # noqa: E402

# clip/model.py build_model's numbers for OpenAI's released ViT models
CONFIGS = {
    'ViT-B-32': dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768,
                     vision_patch_size=32, vision_heads=12, transformer_width=512,
                     transformer_heads=8, transformer_layers=12),
    'ViT-L-14': dict(embed_dim=768, image_resolution=224, vision_layers=24, vision_width=1024,
                     vision_patch_size=14, vision_heads=16, transformer_width=768,
                     transformer_heads=12, transformer_layers=12),
    'ViT-L-14-336px': dict(embed_dim=768, image_resolution=336, vision_layers=24,
                           vision_width=1024, vision_patch_size=14, vision_heads=16,
                           transformer_width=768, transformer_heads=12, transformer_layers=12),
}
HALF = ('conv1.weight', 'in_proj_weight', 'in_proj_bias', 'out_proj.weight', 'out_proj.bias',
        'c_fc.weight', 'c_fc.bias', 'c_proj.weight', 'c_proj.bias', 'text_projection',
        'visual.proj')


def initialise(model, cfg):
    """clip/model.py initialize_parameters, then biases and norms away from 0 and 1."""
    nn = torch.nn
    width, layers = cfg['transformer_width'], cfg['transformer_layers']
    nn.init.normal_(model.token_embedding.weight, std=0.02)
    nn.init.normal_(model.positional_embedding, std=0.01)
    proj_std = width ** -0.5 * (2 * layers) ** -0.5
    for block in model.transformer.resblocks:
        nn.init.normal_(block.attn.in_proj_weight, std=width ** -0.5)
        nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
        nn.init.normal_(block.mlp.c_fc.weight, std=(2 * width) ** -0.5)
        nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
    nn.init.normal_(model.text_projection, std=width ** -0.5)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith('bias'):
                p.normal_(0, 0.02)
            elif '.ln_' in '.' + name:
                p.uniform_(0.8, 1.2)


def make(name):
    cfg = CONFIGS[name]
    path, ref = os.path.join(OUT, name + '.pt'), os.path.join(OUT, name + '.ref.safetensors')
    if os.path.exists(path) and os.path.exists(ref) and os.path.getmtime(ref) > os.path.getmtime(__file__):
        print('kept', path, '(delete it to write it again)')
        return
    model = CLIP(context_length=77, vocab_size=49408, **cfg).eval()
    initialise(model, cfg)
    with torch.no_grad():  # the stored values, so the float64 reference uses what the file holds
        for n, p in model.named_parameters():
            if n.endswith(HALF):
                p.copy_(p.half().float())
    size = cfg['image_resolution']
    images = torch.randn(2, 3, size, size)
    tokens = torch.zeros(2, 77, dtype=torch.long)
    tokens[0, :7] = torch.tensor([49406, 320, 1125, 539, 320, 1929, 49407])  # "a photo of a dog"
    tokens[1, :5] = torch.tensor([49406, 320, 2368, 5135, 49407])
    with torch.no_grad():
        traced = torch.jit.trace(model, (images[:1], tokens[:1]))
    for n, p in traced.named_parameters():
        if n.endswith(HALF):
            p.data = p.data.half()
    torch.jit.save(traced, path)
    del traced
    # OpenAI's LayerNorm computes in float32 whatever its input; the reference is float64 throughout
    gen_torch_files.LayerNorm.forward = torch.nn.LayerNorm.forward
    model.double()
    with torch.no_grad():
        image_features = model.encode_image(images.double())
        text_features = model.encode_text(tokens)
    save(ref,
         {'images': images, 'tokens': tokens.int(), 'image_features': image_features.float(),
          'text_features': text_features.float()},
         {'torch': torch.__version__, 'what': 'float64 forward of ' + name + '.pt'})
    print('wrote', path, flush=True)


OUT = os.environ.get('MCNN_FULL_DIR', 'build/full')

if __name__ == '__main__':
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    for n in sys.argv[1:] or list(CONFIGS):
        make(n)
