"""PyTorch eager reference of pagan-train's training step, for `make bench`.

The same SN-DCGAN (+ PA bit channels, level mask, spectral norm by one power iteration),
the same step (G forward once; D step on reals + detached fakes in one batch; G step on the
same fakes with D's gradients skipped), the same Adam settings. Written independently from
the Rust code, so the ratio compares two implementations of one algorithm.
Prints one JSON line like `pagan-train bench`.
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

LEAK = 0.1


def half_up(x):
    return (x + 1) // 2


def same_pad(size, k, stride):
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


class SNWeight(torch.nn.Module):
    """A weight divided by its largest singular value, estimated by one power step per call."""

    def __init__(self, shape):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(shape) * 0.02)
        self.register_buffer("u", F.normalize(torch.randn(shape[0]), dim=0))

    def forward(self, mask=None):
        w = self.weight if mask is None else self.weight * mask
        w2 = w.reshape(w.shape[0], -1)
        with torch.no_grad():
            v = F.normalize(w2.t() @ self.u, dim=0, eps=1e-12)
            u = F.normalize(w2 @ v, dim=0, eps=1e-12)
            self.u.copy_(u)
        sigma = torch.dot(u, w2 @ v)
        return w / sigma


class D(torch.nn.Module):
    def __init__(self, image, widths, pa_layer, max_level, level):
        super().__init__()
        c, h, _ = image
        self.pa_layer, self.max_level = pa_layer, max_level
        self.convs, self.biases, self.geom = torch.nn.ModuleList(), torch.nn.ParameterList(), []
        in_c = c
        for i, (k, out_c) in enumerate(zip([3, 4, 3, 4, 3, 4, 3], widths)):
            s = 2 if k == 4 else 1
            extra = max_level if i == pa_layer else 0
            sn = SNWeight((out_c, in_c + extra, k, k))
            if extra:
                with torch.no_grad():
                    sn.weight[:, in_c:] = 0
                mask = torch.ones(1, in_c + extra, 1, 1)
                mask[:, in_c + level :] = 0
                self.register_buffer("mask", mask)
            self.convs.append(sn)
            self.biases.append(torch.nn.Parameter(torch.zeros(out_c)))
            self.geom.append((s, same_pad(h, k, s)))
            h = (h + s - 1) // s
            in_c = out_c
        self.fc = SNWeight((1, in_c * h * h))
        self.fc_b = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, bits):
        for i, (sn, b, (s, (p0, p1))) in enumerate(zip(self.convs, self.biases, self.geom)):
            mask = None
            if i == self.pa_layer:
                n, _, hh, ww = x.shape
                x = torch.cat([x, bits.view(n, -1, 1, 1).expand(n, self.max_level, hh, ww)], 1)
                mask = self.mask
            if p0 == p1:
                x = F.conv2d(x, sn(mask), b, stride=s, padding=p0)
            else:
                x = F.conv2d(F.pad(x, (p0, p1, p0, p1)), sn(mask), b, stride=s)
            x = F.leaky_relu(x, LEAK)
        return F.linear(x.flatten(1), self.fc(), self.fc_b).view(-1)


class G(torch.nn.Module):
    def __init__(self, image, widths, latent):
        super().__init__()
        c, h, _ = image
        s2 = half_up(h)
        s1 = half_up(s2)
        sizes = [half_up(s1), s1, s2, h]
        self.start = (widths[0], sizes[0])
        f = widths[0] * sizes[0] ** 2
        self.fc = torch.nn.Linear(latent, f)
        self.bn0 = torch.nn.BatchNorm1d(f)
        ups = []
        for i in range(3):
            pad, opad = (1, 0) if sizes[i + 1] == 2 * sizes[i] else (2, 1)
            ups += [
                torch.nn.ConvTranspose2d(widths[i], widths[i + 1], 4, 2, pad, opad, bias=False),
                torch.nn.BatchNorm2d(widths[i + 1]),
                torch.nn.ReLU(),
            ]
        ups += [torch.nn.ConvTranspose2d(widths[3], c, 3, 1, 1), torch.nn.Tanh()]
        self.body = torch.nn.Sequential(*ups)

    def forward(self, z):
        x = F.relu(self.bn0(self.fc(z)))
        return self.body(x.view(-1, self.start[0], self.start[1], self.start[1]))


class Run:
    """One training run (its networks, optimisers and step) on the shared data."""

    def __init__(self, a, dev, image, data, seed, fused):
        # demo preset: G at 1/4, D at 1/8 of the paper's widths (as pagan-train's Preset::Demo).
        gdiv, ddiv = (4, 8) if a.preset == "demo" else (1, 1)
        gw = [max(w // gdiv, 8) for w in (512, 256, 128, 64)]
        dw = [max(w // ddiv, 8) for w in (64, 128, 128, 256, 256, 512, 512)]
        self.pa_layer = {"off": None, "input": 0, "feat": 6}[a.pa]
        torch.manual_seed(seed)
        self.g = G(image, gw, 128).to(dev)
        self.d = D(image, dw, self.pa_layer, a.max_level, a.level).to(dev)
        # fused (one kernel per update, device-side step count) is what a CUDA graph needs.
        kw = dict(lr=2e-4, betas=(0.5, 0.999), **({"fused": True, "capturable": True} if fused else {}))
        self.opt_g = torch.optim.Adam(self.g.parameters(), **kw)
        self.opt_d = torch.optim.Adam(self.d.parameters(), **kw)
        self.probs = torch.tensor([0.5] * a.level + [0.0] * (a.max_level - a.level), device=dev)
        self.data, self.b, self.dev, self.max_level = data, a.batch, dev, a.max_level
        self.last = None

    def step(self):
        b, dev = self.b, self.dev
        idx = torch.randint(0, self.data.shape[0], (b,), device=dev)
        real = self.data[idx].float() / 127.5 - 1.0
        z = torch.rand(b, 128, device=dev) * 2 - 1
        bits = None
        if self.pa_layer is not None:
            bits = (torch.rand(b, self.max_level, device=dev) < self.probs).float()
        parity = bits.sum(1).remainder(2) if bits is not None else torch.zeros(b, device=dev)
        fake = self.g(z)
        logits = self.d(torch.cat([real, fake.detach()]), None if bits is None else torch.cat([bits, bits]))
        d_loss = F.binary_cross_entropy_with_logits(logits[:b], 1 - parity) + F.binary_cross_entropy_with_logits(
            logits[b:], parity
        )
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        g_loss = F.binary_cross_entropy_with_logits(self.d(fake, bits), 1 - parity)
        grads = torch.autograd.grad(g_loss, list(self.g.parameters()))
        for p, gr in zip(self.g.parameters(), grads):
            p.grad = gr
        self.opt_g.step()
        self.last = d_loss


def graphed(runs, concurrent, warmup):
    """One CUDA graph of every run's step: one after another on one stream, or (concurrent)
    each run on its own stream, so the device may overlap the runs' kernels."""
    streams = [torch.cuda.Stream() for _ in runs]

    def all_steps():
        cur = torch.cuda.current_stream()
        if not concurrent:
            for r in runs:
                r.step()
            return
        for r, s in zip(runs, streams):
            s.wait_stream(cur)
            with torch.cuda.stream(s):
                r.step()
        for s in streams:
            cur.wait_stream(s)

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(max(warmup, 3)):
            all_steps()
    torch.cuda.current_stream().wait_stream(side)
    # Warm-up gradients freed now, not inside the capture (where their memory would stay
    # reserved by the graph's pool).
    for r in runs:
        r.opt_d.zero_grad(set_to_none=True)
        r.opt_g.zero_grad(set_to_none=True)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        all_steps()
    return graph.replay


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", default="1x28x28")
    ap.add_argument("--preset", default="paper", choices=["paper", "demo"])
    ap.add_argument("--pa", default="input", choices=["off", "input", "feat"])
    ap.add_argument("--level", type=int, default=2)
    ap.add_argument("--max-level", type=int, default=7)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--models", type=int, default=1, help="independent runs trained per iteration")
    ap.add_argument(
        "--graph",
        default="none",
        choices=["none", "serial", "streams"],
        help="CUDA only: every run's step in one CUDA graph, one after another (serial) or "
        "each on its own stream (streams); none: eager, one run after another",
    )
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    if a.graph != "none" and dev.type != "cuda":
        sys.exit(f"--graph {a.graph} needs --device cuda")
    image = tuple(int(v) for v in a.image.split("x"))
    torch.manual_seed(0)
    data = torch.randint(0, 256, (512,) + image, dtype=torch.uint8, device=dev)
    runs = [Run(a, dev, image, data, seed, fused=a.graph != "none") for seed in range(max(a.models, 1))]

    def eager():
        for r in runs:
            r.step()

    one = graphed(runs, a.graph == "streams", a.warmup) if a.graph != "none" else eager

    def run(n):
        for i in range(n):
            one()
        return sum(float(r.last) for r in runs)  # waits for the device

    run(a.warmup)
    # bench/stack.sh's K processes: report warmed up, wait for the common start (see
    # wait_for_start in pagan-train's bench), so their windows overlap.
    barrier = os.environ.get("PAGAN_BENCH_BARRIER")
    if barrier:
        open(os.path.join(barrier, f"ready.{os.getpid()}"), "w").close()
        deadline = time.time() + 900
        while not os.path.exists(os.path.join(barrier, "go")):
            if time.time() > deadline:
                sys.exit(f"benchmark barrier: no {barrier}/go after 900 s")
            time.sleep(0.002)
    start_unix = time.time()
    rates = []
    for _ in range(max(a.repeats, 1)):
        t0 = time.perf_counter()
        loss = run(a.iters)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if loss != loss:
            sys.exit("loss became NaN during the benchmark")
        rates.append(a.iters / (time.perf_counter() - t0))
    print(
        json.dumps(
            {
                "impl": "PyTorch eager" if a.graph == "none" else f"PyTorch CUDA graph ({a.graph})",
                "device": str(dev),
                "image": a.image,
                "preset": a.preset,
                "pa": a.pa,
                "batch": a.batch,
                "threads": torch.get_num_threads(),
                "models": len(runs),
                "step_mode": "eager" if a.graph == "none" else "cuda-graph",
                "kernels": {"none": "-", "serial": "per-model", "streams": "per-model, K streams"}[a.graph],
                "it_per_s": statistics.median(rates),
                "run_it_per_s": statistics.median(rates) * len(runs),
                "all_it_per_s": rates,
                "window": [start_unix, time.time()],
            }
        )
    )


if __name__ == "__main__":
    main()
