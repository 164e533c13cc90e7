"""Goldens for the ResNet model: torchvision's own Bottleneck and BasicBlock classes, assembled by
torchvision's own ResNet._make_layer, in tiny widths, with every parameter and buffer randomised.

torchvision's ResNet class fixes its widths at 64..512 and its stages at four, so TinyResNet
below is ResNet with those as arguments; everything it holds is built by torchvision code and its
state_dict keys are torchvision's (conv1, bn1, layerS.N.{conv1,bn1,...,downsample.0/1}, fc).

Writes tests/data/resnet_tiny.safetensors (bottleneck blocks [2,1,2,1], widths 2/4/8/16, so
outputs 8/16/32/64, ImageNet stem 7x7/2 + maxpool, 3 input channels, 5 classes):
  "w.<key>"              the state_dict (running statistics and num_batches_tracked too)
  images (3,3,48,48), targets, multi_targets, pos_weight; images2 (2,3,32,40)
  logits_eval, logits2_eval, inter.features_eval   eval mode (running statistics)
  logits_train, inter.stem, inter.layerS, inter.features    train mode (batch statistics)
  loss, "grad.<name>", "run.<bn>.running_mean/var" (after the train forward),
  "adamw.<name>" after one AdamW step (decay 0.05 on conv and fc weights, 0 on BN and biases)
  bce.loss, "bce.grad.<name>"    BCE with logits and pos_weight, train mode
  frozen.loss, "frozen.grad.<name>"   cross-entropy with the model in eval mode (frozen BN)
and tests/data/resnet_tiny_basic.safetensors (BasicBlock [2,1,1], widths 4/8/16, small-image
stem 3x3/1 without maxpool, 1 input channel, 28x28, batch 2, 7 classes): the same keys without
the second size, AdamW, BCE and frozen variants.

To keep a random ResNet checkable in float32 the last BN gain of every residual branch is scaled
by 0.2 (a random deep net in training mode is chaotic), and the training batch is 48x48, not
32x32: at 32x32 the last stage is 1x1, its batch norm normalises 3 values per channel, and the
gradients then move by 1e-4 (relative) when the weights move by one float32 rounding (6e-8) --
no float32 code can match a float64 golden there.  At 48x48 (2x2, 12 values) that
amplification is 3e-6.  The script prints how far the same computation in float32 torch is from
float64: the floor for the C tests' tolerance.
Run: /usr/bin/python3 tests/ref/gen_resnet.py   (torch 1.13, torchvision 0.14)"""
import os
import sys
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.resnet import ResNet, Bottleneck, BasicBlock

sys.path.insert(0, os.path.dirname(__file__))
from safetensors_io import save  # noqa: E402

torch.set_default_dtype(torch.float64)
DATA = os.path.join(os.path.dirname(__file__), '..', 'data')


class TinyResNet(nn.Module):
    """torchvision's ResNet with widths, stage count, stem and input channels as arguments."""

    def __init__(self, block, layers, widths, stem_width, in_channels, num_classes, small_stem):
        super().__init__()
        # the attributes ResNet._make_layer reads
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = stem_width, 1, 1, 64
        k, s, p = (3, 1, 1) if small_stem else (7, 2, 3)
        self.conv1 = nn.Conv2d(in_channels, stem_width, kernel_size=k, stride=s, padding=p,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity() if small_stem else nn.MaxPool2d(kernel_size=3, stride=2,
                                                                      padding=1)
        self.nstages = len(layers)
        for i, (n, w) in enumerate(zip(layers, widths)):
            setattr(self, 'layer%d' % (i + 1),
                    ResNet._make_layer(self, block, w, n, stride=1 if i == 0 else 2))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[-1] * block.expansion, num_classes)

    def forward(self, x):  # ResNet._forward_impl for any number of stages
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.nstages):
            x = getattr(self, 'layer%d' % (i + 1))(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def randomise(model, seed):
    g = torch.Generator().manual_seed(seed)
    rnd = lambda shape: torch.randn(shape, generator=g)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(rnd(m.weight.shape) * (2.0 / fan_in) ** 0.5)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1.0 + 0.25 * rnd(m.weight.shape))
                m.bias.copy_(0.2 * rnd(m.bias.shape))
                m.running_mean.copy_(0.2 * rnd(m.running_mean.shape))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
                m.num_batches_tracked.fill_(5)
            elif isinstance(m, nn.Linear):
                m.weight.copy_(rnd(m.weight.shape) / m.weight.shape[1] ** 0.5)
                m.bias.copy_(0.1 * rnd(m.bias.shape))
        for m in model.modules():  # the last BN of every residual branch, as zero_init_residual
            if isinstance(m, Bottleneck):
                m.bn3.weight.mul_(0.2)
            elif isinstance(m, BasicBlock):
                m.bn2.weight.mul_(0.2)


def decays(model):
    """libmcnn's table: weight decay on conv and fc weights, none on BN gains and biases."""
    return {n: p.dim() >= 2 for n, p in model.named_parameters()}


def hooks(model, inter):
    model.maxpool.register_forward_hook(lambda m, i, o: inter.__setitem__('stem', o))
    for s in range(model.nstages):
        getattr(model, 'layer%d' % (s + 1)).register_forward_hook(
            lambda m, i, o, s=s: inter.__setitem__('layer%d' % (s + 1), o))
    model.avgpool.register_forward_hook(lambda m, i, o: inter.__setitem__('features',
                                                                          torch.flatten(o, 1)))


def step(model, images, loss_fn, train, adamw):
    """One forward (train or eval mode) and backward; optionally one AdamW step."""
    model.train(train)
    model.zero_grad()
    logits = model(images)
    loss = loss_fn(logits)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    run = {k: v.detach().clone() for k, v in model.state_dict().items() if 'running_' in k}
    after = None
    if adamw:
        dec = decays(model)
        groups = [{'params': [p for n, p in model.named_parameters() if dec[n]],
                   'weight_decay': 0.05},
                  {'params': [p for n, p in model.named_parameters() if not dec[n]],
                   'weight_decay': 0.0}]
        torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.999), eps=1e-8).step()
        after = {n: p.detach().clone() for n, p in model.named_parameters()}
    return logits.detach(), loss.detach(), grads, run, after


def rel(a, b):
    return ((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30)).item()


def float32_floor(model, state, images, loss_fn, name):
    """The same train step in float32: how far float32 arithmetic is from the float64 golden."""
    m32 = model.float()
    m32.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in state.items()})
    l32, _, g32, _, _ = step(m32, images.float(), lambda z: loss_fn(z.double()).float(), True, False)
    model.double()
    model.load_state_dict(state)
    _, _, g64, _, _ = step(model, images, loss_fn, True, False)
    model.load_state_dict(state)
    worst = max(g32, key=lambda n: rel(g32[n], g64[n]))
    print('%s: float32 vs float64: worst gradient %s rel %.2e' % (name, worst, rel(g32[worst], g64[worst])))


def generate(path, model, images, targets, extra, meta):
    state = OrderedDict((k, v.clone()) for k, v in model.state_dict().items())
    out = {('w.' + k): v for k, v in state.items()}
    out['images'] = images
    out['targets'] = targets.to(torch.int32)
    inter = {}
    hooks(model, inter)
    ce = lambda z: F.cross_entropy(z, targets)

    model.eval()
    with torch.no_grad():
        out['logits_eval'] = model(images)
    out['inter.features_eval'] = inter['features']

    logits, loss, grads, run, after = step(model, images, ce, True, extra)
    out['logits_train'] = logits
    out['loss'] = loss
    for k in ['stem', 'features'] + ['layer%d' % (s + 1) for s in range(model.nstages)]:
        out['inter.' + k] = inter[k].detach()
    out.update({'grad.' + k: v for k, v in grads.items()})
    out.update({'run.' + k: v for k, v in run.items()})
    if extra:
        out.update({'adamw.' + k: v for k, v in after.items()})

        multi = torch.tensor([[1, 0, 0, 1, 0], [0, 0, 1, 0, 0], [1, 1, 0, 0, 1]],
                             dtype=torch.float64)
        pos_weight = torch.tensor([2.0, 0.5, 1.0, 3.0, 1.5])
        out['multi_targets'] = multi
        out['pos_weight'] = pos_weight
        model.load_state_dict(state)
        bce = lambda z: F.binary_cross_entropy_with_logits(z, multi, pos_weight=pos_weight)
        _, loss, grads, _, _ = step(model, images, bce, True, False)
        out['bce.loss'] = loss
        out.update({'bce.grad.' + k: v for k, v in grads.items()})

        model.load_state_dict(state)
        _, loss, grads, _, _ = step(model, images, ce, False, False)
        out['frozen.loss'] = loss
        out.update({'frozen.grad.' + k: v for k, v in grads.items()})

        model.load_state_dict(state)
        model.eval()
        images2 = torch.randn(2, images.shape[1], 32, 40)
        with torch.no_grad():
            out['images2'] = images2
            out['logits2_eval'] = model(images2)

    model.load_state_dict(state)
    float32_floor(model, state, images, ce, os.path.basename(path))
    meta = dict(meta, torch=torch.__version__)
    save(path, out, meta)
    print('wrote', path, os.path.getsize(path), 'bytes')


def main():
    torch.manual_seed(7)
    model = TinyResNet(Bottleneck, [2, 1, 2, 1], [2, 4, 8, 16], stem_width=8, in_channels=3,
                       num_classes=5, small_stem=False).double()
    randomise(model, 11)
    images = torch.randn(3, 3, 48, 48)
    generate(os.path.join(DATA, 'resnet_tiny.safetensors'), model, images,
             torch.tensor([1, 4, 0]), True,
             {'config': 'Bottleneck [2,1,2,1] widths [2,4,8,16] stem 8 7x7/2+maxpool in 3 classes 5',
              'adamw': 'lr=1e-3 betas=(0.9,0.999) eps=1e-8 wd=0.05 on conv/fc weights, 0 on BN '
                       'and biases; one step'})

    torch.manual_seed(8)
    basic = TinyResNet(BasicBlock, [2, 1, 1], [4, 8, 16], stem_width=4, in_channels=1,
                       num_classes=7, small_stem=True).double()
    randomise(basic, 12)
    images = torch.randn(2, 1, 28, 28)
    generate(os.path.join(DATA, 'resnet_tiny_basic.safetensors'), basic, images,
             torch.tensor([6, 2]), False,
             {'config': 'BasicBlock [2,1,1] widths [4,8,16] stem 4 3x3/1 no maxpool in 1 classes 7'})


if __name__ == '__main__':
    main()
