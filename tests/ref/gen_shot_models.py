"""Goldens for the shot models (tests/test_shot_model.c): one whole training step of each kind
built from torch modules, in float64 from float32-rounded inputs: forward with padded shots,
BCEWithLogitsLoss(pos_weight) (mean), backward, clip_grad_norm_, one AdamW step (decay on the
weight matrices only, not on the positions).

Writes tests/data/shot_models.safetensors, per kind k in mean, lstm, transformer:
  k.x (B, K, D) with finite garbage in the padding, k.lengths (B), k.targets (B, NC),
  k.pos_weight (NC), k.w.<name> the initial weights, k.logits, k.loss (1), k.clip (1) the
  max_norm used (half the gradient norm, so clipping acts), k.g.<name> the clipped gradients,
  k.u.<name> the weights after the step
  metadata: <k>.config "D K NC hidden layers heads", lr, weight_decay
Run: /usr/bin/python3 tests/ref/gen_shot_models.py   (torch 1.13)"""
import math
import os
import sys

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence

sys.path.insert(0, os.path.dirname(__file__))
from safetensors_io import save  # noqa: E402

torch.manual_seed(12)
torch.set_default_dtype(torch.float64)
B, K, D, NC = 4, 6, 5, 3
LR, WD = 1e-2, 0.1


class Mean(torch.nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.fc1 = torch.nn.Linear(D, hidden)
        self.head = torch.nn.Linear(hidden, NC)

    def forward(self, x, lengths):
        valid = (torch.arange(K)[None, :] < lengths[:, None]).double()
        pooled = (x * valid[:, :, None]).sum(1) / lengths[:, None].double()
        return self.head(torch.relu(self.fc1(pooled)))


class Lstm(torch.nn.Module):
    def __init__(self, hidden, layers):
        super().__init__()
        self.lstm = torch.nn.LSTM(D, hidden, num_layers=layers, batch_first=True)
        self.head = torch.nn.Linear(hidden, NC)

    def forward(self, x, lengths):
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)
        return self.head(h_n[-1])


class Block(torch.nn.Module):
    def __init__(self, C, heads):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = torch.nn.LayerNorm(C), torch.nn.LayerNorm(C)
        self.attn = torch.nn.Module()
        self.attn.qkv, self.attn.proj = torch.nn.Linear(C, 3 * C), torch.nn.Linear(C, C)
        self.mlp = torch.nn.Module()
        self.mlp.fc1, self.mlp.fc2 = torch.nn.Linear(C, 4 * C), torch.nn.Linear(4 * C, C)

    def forward(self, x, pad):
        Bn, T, C = x.shape
        hs = C // self.heads
        q, k, v = self.attn.qkv(self.ln1(x)).split(C, dim=-1)
        q, k, v = (t.view(Bn, T, self.heads, hs).transpose(1, 2) for t in (q, k, v))
        s = q @ k.transpose(-1, -2) / math.sqrt(hs)
        s = s.masked_fill(pad[:, None, None, :], float('-inf'))  # key padding mask
        a = (s.softmax(-1) @ v).transpose(1, 2).reshape(Bn, T, C)
        x = x + self.attn.proj(a)
        return x + self.mlp.fc2(F.gelu(self.mlp.fc1(self.ln2(x))))


class Transformer(torch.nn.Module):
    def __init__(self, C, layers, heads):
        super().__init__()
        self.proj = torch.nn.Linear(D, C)
        self.cls_token = torch.nn.Parameter(0.02 * torch.randn(C))
        self.pos_embed = torch.nn.Parameter(0.02 * torch.randn(K + 1, C))
        self.blocks = torch.nn.ModuleList(Block(C, heads) for _ in range(layers))
        self.norm = torch.nn.LayerNorm(C)
        self.head = torch.nn.Linear(C, NC)

    def forward(self, x, lengths):
        t = torch.cat([self.cls_token.expand(x.shape[0], 1, -1), self.proj(x)], 1) + self.pos_embed
        pad = torch.arange(K + 1)[None, :] > lengths[:, None]  # token 0 is the class token
        for blk in self.blocks:
            t = blk(t, pad)
        return self.head(self.norm(t[:, 0]))


def randomize(model):
    with torch.no_grad():  # away from the init, so norms and biases are tested too
        for p in model.parameters():
            p.copy_((0.3 * torch.randn_like(p)).float().double() + (p.float().double() if p.dim() > 1 else 0))


def one_step(kind, model, config, g):
    randomize(model)
    lengths = torch.tensor([6, 3, 1, 4])
    x = torch.randn(B, K, D).float().double()
    targets = (torch.rand(B, NC) < 0.4).double()
    pos_weight = (0.5 + 2 * torch.rand(NC)).float().double()
    w = {n: p.detach().clone() for n, p in model.named_parameters()}
    logits = model(x, lengths)
    loss = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight)
    loss.backward()
    norm = torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters()))
    clip = float(torch.tensor(0.5 * norm.item()).float())
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    # decay on the weight matrices (LSTM's weight_ih_l0 too), not on positions or vectors
    decay = [p for n, p in model.named_parameters() if p.dim() == 2 and n != 'pos_embed']
    rest = [p for n, p in model.named_parameters() if p.dim() != 2 or n == 'pos_embed']
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': WD},
                             {'params': rest, 'weight_decay': 0.0}], lr=LR)
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    opt.step()
    g.update({f'{kind}.x': x, f'{kind}.lengths': lengths.to(torch.int32),
              f'{kind}.targets': targets, f'{kind}.pos_weight': pos_weight,
              f'{kind}.logits': logits, f'{kind}.loss': loss.reshape(1),
              f'{kind}.clip': torch.tensor([clip])})
    for n, p in model.named_parameters():
        g[f'{kind}.w.{n}'], g[f'{kind}.g.{n}'], g[f'{kind}.u.{n}'] = w[n], grads[n], p
    return f'{D} {K} {NC} {config}'


g, meta = {}, {'generator': 'tests/ref/gen_shot_models.py', 'torch': torch.__version__,
               'lr': LR, 'weight_decay': WD}
meta['mean.config'] = one_step('mean', Mean(7), '7 0 0', g)
meta['lstm.config'] = one_step('lstm', Lstm(6, 2), '6 2 0', g)
meta['transformer.config'] = one_step('transformer', Transformer(8, 2, 2), '8 2 2', g)
save(os.path.join(os.path.dirname(__file__), '..', 'data', 'shot_models.safetensors'), g, meta)
print('wrote tests/data/shot_models.safetensors')
