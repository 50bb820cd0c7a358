"""Inception feature throughput of the TorchScript FID module in PyTorch (the reference for
`make bench`): the same input as `pagan-train bench-inception` -- uint8-valued CxSxS images,
bilinear resize to 299 (torch's, the pytorch-fid convention; it costs the same as TF1's),
(x - 128) / 128, then the module. Prints one JSON line."""
import argparse
import json
import time

import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--side", type=int, default=28)
p.add_argument("--channels", type=int, default=1)
p.add_argument("--batch", type=int, default=25)
p.add_argument("--batches", type=int, default=4)
p.add_argument("--warmup", type=int, default=1)
p.add_argument("--threads", type=int, default=None)
p.add_argument("--device", default="cpu")
p.add_argument("--weights", default="weights/pt_inception-2015-12-05.torchscript.pt")
a, _ = p.parse_known_args()
if a.threads:
    torch.set_num_threads(a.threads)
dev = torch.device(a.device)
m = torch.jit.load(a.weights, map_location=dev).eval()
x = torch.randint(0, 256, (a.batch, a.channels, a.side, a.side), dtype=torch.uint8)


def features(imgs):
    with torch.no_grad():
        t = imgs.to(dev).float()
        if t.shape[1] == 1:
            t = t.expand(-1, 3, -1, -1)
        t = F.interpolate(t, size=(299, 299), mode="bilinear", align_corners=False)
        return m((t - 128) / 128).cpu()


for _ in range(a.warmup):
    features(x)
start = time.perf_counter()
for _ in range(a.batches):
    features(x)
secs = time.perf_counter() - start
print(json.dumps({
    "impl": "TorchScript (PyTorch)",
    "device": a.device,
    "input": f"{a.channels}x{a.side}x{a.side}",
    "batch": a.batch,
    "images": a.batch * a.batches,
    "threads": torch.get_num_threads(),
    "images_per_s": a.batch * a.batches / secs,
}))
