"""Goldens for the ViT model: torchvision's own VisionTransformer in a tiny configuration with
every parameter randomised (norm gains and biases, class token and positional embedding too).

Writes tests/data/vit_tiny.safetensors:
  weights under their torchvision names ("w.<name>"), images, targets,
  logits, intermediates (tokens after the patch embedding, after block 0, the final class
  feature), cross-entropy loss and "grad.<name>" for every parameter, "adamw.<name>" after one
  AdamW step (decay only on >= 2-D weights, as libmcnn's trainer groups them), the same for
  BCE-with-logits with pos_weight ("bce.*"), and logits at a second image size with the
  positional embedding interpolated as torchvision's interpolate_embeddings does.
Run: /usr/bin/python3 tests/ref/gen_vit.py   (torch 1.13, torchvision 0.14)"""
import os
import sys
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torchvision.models.vision_transformer import VisionTransformer, interpolate_embeddings

sys.path.insert(0, os.path.dirname(__file__))
from safetensors_io import save  # noqa: E402

torch.manual_seed(7)
torch.set_default_dtype(torch.float64)
CFG = dict(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64,
           num_classes=5)
B = 3


def make_model(image_size=CFG['image_size']):
    cfg = dict(CFG, image_size=image_size)
    return VisionTransformer(**cfg).double().eval()


def randomise(model):
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for name, p in model.named_parameters():
            scale = 0.5 if p.dim() < 2 else (1.0 / p.shape[-1] ** 0.5 if p.dim() == 2 else 0.1)
            p.copy_(torch.randn(p.shape, generator=g) * scale)
            if name.endswith('ln_1.weight') or name.endswith('ln_2.weight') or name.endswith('ln.weight'):
                p.add_(1.0)


def decays(model):
    return {n: (p.dim() >= 2 and 'pos_embedding' not in n and 'class_token' not in n)
            for n, p in model.named_parameters()}


def train_step(model, images, loss_fn):
    model.zero_grad()
    logits = model(images)
    loss = loss_fn(logits)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    dec = decays(model)
    groups = [{'params': [p for n, p in model.named_parameters() if dec[n]], 'weight_decay': 0.05},
              {'params': [p for n, p in model.named_parameters() if not dec[n]], 'weight_decay': 0.0}]
    opt = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    opt.step()
    after = {n: p.detach().clone() for n, p in model.named_parameters()}
    return logits.detach(), loss.detach(), grads, after


def main():
    model = make_model()
    randomise(model)
    state = OrderedDict((k, v.clone()) for k, v in model.state_dict().items())
    images = torch.randn(B, 3, CFG['image_size'], CFG['image_size'])
    targets = torch.tensor([1, 4, 0])
    multi = torch.tensor([[1, 0, 0, 1, 0], [0, 0, 1, 0, 0], [1, 1, 0, 0, 1]], dtype=torch.float64)
    pos_weight = torch.tensor([2.0, 0.5, 1.0, 3.0, 1.5])

    out = {('w.' + k): v for k, v in state.items()}
    out['images'] = images
    out['targets'] = targets.to(torch.int32)
    out['multi_targets'] = multi
    out['pos_weight'] = pos_weight

    inter = {}
    model.encoder.layers[0].register_forward_hook(lambda m, i, o: inter.__setitem__('block0', o))
    model.encoder.ln.register_forward_hook(lambda m, i, o: inter.__setitem__('ln', o[:, 0]))
    with torch.no_grad():
        out['logits'] = model(images)
        out['inter.tokens'] = model._process_input(images)
    out['inter.block0'] = inter['block0']
    out['inter.class_feature'] = inter['ln']

    logits, loss, grads, after = train_step(model, images, lambda z: F.cross_entropy(z, targets))
    out['loss'] = loss
    out.update({'grad.' + k: v for k, v in grads.items()})
    out.update({'adamw.' + k: v for k, v in after.items()})

    model.load_state_dict(state)
    bce = lambda z: F.binary_cross_entropy_with_logits(z, multi, pos_weight=pos_weight)
    logits, loss, grads, after = train_step(model, images, bce)
    out['bce.loss'] = loss
    out.update({'bce.grad.' + k: v for k, v in grads.items()})
    out.update({'bce.adamw.' + k: v for k, v in after.items()})

    # A second image size: the positional embedding's grid resampled (bicubic, align_corners).
    big = make_model(48)
    big.load_state_dict(interpolate_embeddings(48, CFG['patch_size'], state))
    images48 = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        out['images48'] = images48
        out['logits48'] = big(images48)
        out['pos_embedding48'] = big.encoder.pos_embedding

    meta = {'config': str(CFG), 'batch': B, 'heads': CFG['num_heads'],
            'adamw': 'lr=1e-3 betas=(0.9,0.999) eps=1e-8 wd=0.05 on >=2-D weights except '
                     'pos_embedding/class_token, 0 elsewhere; one step',
            'torch': torch.__version__}
    path = os.path.join(os.path.dirname(__file__), '..', 'data', 'vit_tiny.safetensors')
    save(path, out, meta)
    print('wrote', path)


if __name__ == '__main__':
    main()
