"""Writes pytorch-fid's Inception state dict layout from the TorchScript FID weights.

The names come from torchvision's own Inception3 (what pytorch-fid's FIDInception*
blocks subclass), not from our mapping: layers are paired by order and checked by shape,
so a wrong name table in the Rust loader cannot cancel out here.

usage: write_fid_pth.py TORCHSCRIPT OUT.pth {zip|legacy} [--bad-scale]
"""
import sys
from collections import OrderedDict

import torch
import torchvision

src, out, fmt = sys.argv[1], sys.argv[2], sys.argv[3]
bad_scale = "--bad-scale" in sys.argv

ts = torch.jit.load(src)
layers = OrderedDict()
for name, p in ts.named_parameters():
    layer, param = name.rsplit(".", 1)
    layers.setdefault(layer, {})[param] = p.detach().clone()

tv = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=1008)
convs = [n for n, m in tv.named_modules() if type(m).__name__ == "BasicConv2d"]
assert len(convs) == len(layers), (len(convs), len(layers))

sd = OrderedDict()
for i, (tv_name, (ts_name, p)) in enumerate(zip(convs, layers.items())):
    want = tuple(tv.get_submodule(tv_name).conv.weight.shape)
    assert tuple(p["weight"].shape) == want, (tv_name, ts_name, want, tuple(p["weight"].shape))
    n = p["beta"].numel()
    sd[f"{tv_name}.conv.weight"] = p["weight"]
    gamma = torch.ones(n)
    if bad_scale and i == 5:
        gamma[0] = 2.0
    sd[f"{tv_name}.bn.weight"] = gamma
    sd[f"{tv_name}.bn.bias"] = p["beta"]
    sd[f"{tv_name}.bn.running_mean"] = p["mean"]
    sd[f"{tv_name}.bn.running_var"] = p["var"]
    sd[f"{tv_name}.bn.num_batches_tracked"] = torch.tensor(0)
sd["fc.weight"] = torch.zeros(1008, 2048)
sd["fc.bias"] = torch.zeros(1008)
torch.save(sd, out, _use_new_zipfile_serialization=(fmt == "zip"))
print(len(sd))
