"""Full-size models for `make test-full`: torchvision's vit_b_16 and resnet50 with random weights
(the head randomised too: torchvision starts ViT's head at zero, which would make the logits
trivially equal), saved with their official key names, plus PyTorch's logits for a fixed input.

Writes into $MCNN_FULL_DIR (default build/full): vit_b_16.safetensors, resnet50.safetensors, the
same state dicts as torchvision publishes them (torch.save: vit_b_16.pth, resnet50.pth) and
full_size_ref.safetensors (inputs and logits).  About 900 MB; nothing here is committed.
Run: /usr/bin/python3 tests/ref/gen_full_size.py"""
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.dirname(__file__))
from safetensors_io import save  # noqa: E402


def main():
    out = os.environ.get('MCNN_FULL_DIR', 'build/full')
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    ref = {}
    x = torch.randn(2, 3, 224, 224)
    ref['images'] = x
    for name, make in [('vit_b_16', torchvision.models.vit_b_16),
                       ('resnet50', torchvision.models.resnet50)]:
        model = make().eval()
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n.startswith('heads.') or n.startswith('fc.'):
                    p.normal_(0, 0.02)
            for n, b in model.named_buffers():  # running statistics away from 0 and 1
                if n.endswith('running_mean'):
                    b.normal_(0, 0.1)
                elif n.endswith('running_var'):
                    b.uniform_(0.5, 1.5)
            ref[name + '.logits'] = model.double()(x.double())
        state = {k: v for k, v in model.float().state_dict().items()}
        save(os.path.join(out, name + '.safetensors'), state, {'source': 'torchvision ' + name})
        torch.save(state, os.path.join(out, name + '.pth'))  # the layout of torchvision's .pth files
        print('wrote', name)
    save(os.path.join(out, 'full_size_ref.safetensors'), ref, {'torch': torch.__version__})


if __name__ == '__main__':
    main()
