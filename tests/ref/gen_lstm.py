"""Goldens for the LSTM op (tests/test_lstm.c): torch.nn.LSTM, 2 layers, batch_first, with
sequence lengths through pack_padded_sequence, in float64 from float32-rounded inputs.

Writes tests/data/lstm.safetensors:
  x (B, T, I), lengths (B), h0, c0 (2, B, H), l{0,1}_{w_ih,w_hh,b_ih,b_hh}  the inputs
  y (B, T, H) the top layer's padded output, h_n, c_n (2, B, H)
  ry, rh, rc   random weights of the loss  sum(y·ry) + sum(h_n·rh) + sum(c_n·rc)
  dx, dh0, dc0, l{0,1}_d{w_ih,w_hh,b_ih,b_hh}   that loss's gradients
Run: /usr/bin/python3 tests/ref/gen_lstm.py   (torch 1.13)"""
import os
import sys

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, os.path.dirname(__file__))
from safetensors_io import save  # noqa: E402

torch.manual_seed(7)
B, T, I, H = 4, 9, 5, 6
lengths = torch.tensor([9, 4, 1, 6])  # unsorted, one of length 1

lstm = torch.nn.LSTM(I, H, num_layers=2, batch_first=True).double()
with torch.no_grad():
    for p in lstm.parameters():
        p.copy_(p.float().double())  # the C code is given float32


def leaf(*shape):
    return torch.randn(*shape).float().double().requires_grad_(True)


x, h0, c0 = leaf(B, T, I), leaf(2, B, H), leaf(2, B, H)
packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
out, (h_n, c_n) = lstm(packed, (h0, c0))
y, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
ry, rh, rc = torch.randn(B, T, H).double(), torch.randn(2, B, H).double(), torch.randn(2, B, H).double()
loss = (y * ry).sum() + (h_n * rh).sum() + (c_n * rc).sum()
loss.backward()

g = {'x': x, 'lengths': lengths.to(torch.int32), 'h0': h0, 'c0': c0, 'y': y, 'h_n': h_n,
     'c_n': c_n, 'ry': ry, 'rh': rh, 'rc': rc, 'dx': x.grad, 'dh0': h0.grad, 'dc0': c0.grad}
for layer in range(2):
    for name in ('w_ih', 'w_hh', 'b_ih', 'b_hh'):
        p = getattr(lstm, f'{name.replace("w_", "weight_").replace("b_", "bias_")}_l{layer}')
        g[f'l{layer}_{name}'] = p
        g[f'l{layer}_d{name}'] = p.grad
save(os.path.join(os.path.dirname(__file__), '..', 'data', 'lstm.safetensors'), g,
     {'generator': 'tests/ref/gen_lstm.py', 'torch': torch.__version__})
print('wrote tests/data/lstm.safetensors')
