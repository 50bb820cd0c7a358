"""Independent FID statistics of image folders: a reference computed another way.

Nothing here shares code with the Rust side: images are read with PIL at their own size,
grey replicated to RGB, resized to 299x299 with TF1 `resize_bilinear` (asymmetric
coordinates) written out in float64 numpy, or with clean-fid's own resize function
(`clean`: PyPI clean-fid, PIL bicubic on floats, clipped), normalised to (x - 128) / 128,
and run through the TorchScript FID Inception (the setup's weights) in torch. Mean and
covariance are float64 numpy, the Frechet distance uses scipy.linalg.sqrtm; precision,
recall, density and coverage are float64 numpy with full distance matrices.

usage:
  folder_fid_reference.py stats WEIGHTS FOLDER OUT.npz [clean]  # mu, sigma, features, n
  folder_fid_reference.py fid A.npz B.npz                       # the FID (scipy) as JSON
  folder_fid_reference.py prdc REAL.npz FAKE.npz                # PRDC (k = 3 / 5) as JSON
"""
import json
import os
import sys

import numpy as np


def list_images(folder):
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in files:
            if not f.startswith(".") and f.lower().endswith((".png", ".jpg", ".jpeg")):
                out.append(os.path.join(root, f))
    return sorted(out)


def tf1_resize(img, side):
    """TF1 resize_bilinear (align_corners=False, no half-pixel centres) of [C, H, W] float64."""
    c, h, w = img.shape

    def taps(n_in):
        src = np.arange(side, dtype=np.float64) * (n_in / side)
        i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, src - i0

    y0, y1, wy = taps(h)
    x0, x1, wx = taps(w)
    rows = img[:, y0, :] * (1 - wy)[None, :, None] + img[:, y1, :] * wy[None, :, None]
    return rows[:, :, x0] * (1 - wx)[None, None, :] + rows[:, :, x1] * wx[None, None, :]


def clean_resize(img, side):
    """clean-fid's resize (its default mode) of [C, H, W] float64, through clean-fid itself."""
    from cleanfid.resize import make_resizer

    fn = make_resizer("PIL", False, "bicubic", (side, side))
    hwc = np.ascontiguousarray(img.transpose(1, 2, 0)).astype(np.uint8)
    return fn(hwc).transpose(2, 0, 1).astype(np.float64)


def features(weights, folder, mode="asymmetric"):
    import torch
    from PIL import Image

    resize = clean_resize if mode == "clean" else tf1_resize
    net = torch.jit.load(weights).eval()
    rows = []
    for path in list_images(folder):
        im = Image.open(path)
        grey = im.mode in ("L", "LA", "I", "I;16", "1")
        a = np.asarray(im.convert("L" if grey else "RGB"), dtype=np.float64)
        a = np.repeat(a[None], 3, 0) if grey else a.transpose(2, 0, 1)
        x = (resize(a, 299) - 128.0) / 128.0
        with torch.no_grad():
            f = net(torch.from_numpy(x[None].astype(np.float32)))
        rows.append(f.reshape(-1).double().numpy())
    return np.stack(rows)


def frechet(mu1, s1, mu2, s2):
    from scipy import linalg

    covmean, _ = linalg.sqrtm(s1 @ s2, disp=False)
    covmean = covmean.real
    d = mu1 - mu2
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def prdc(real, fake, k_pr=3, k_dc=5):
    """Precision/recall (Kynkaanniemi et al., k_pr) and density/coverage (Naeem et al.,
    k_dc): radii are k-th neighbour distances within a set, self excluded; strict <."""

    def dist(a, b):
        return np.sqrt(np.maximum(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1), 0.0))

    rr, ff, rf = dist(real, real), dist(fake, fake), dist(real, fake)
    radius = lambda d, k: np.sort(d, axis=1)[:, k]  # column 0 is the point itself
    r_pr, f_pr, r_dc = radius(rr, k_pr), radius(ff, k_pr), radius(rr, k_dc)
    return {
        "precision": float((rf < r_pr[:, None]).any(axis=0).mean()),
        "recall": float((rf < f_pr[None, :]).any(axis=1).mean()),
        "density": float((rf < r_dc[:, None]).sum(axis=0).mean() / k_dc),
        "coverage": float((rf.min(axis=1) < r_dc).mean()),
    }


def main():
    cmd = sys.argv[1]
    if cmd == "stats":
        weights, folder, out = sys.argv[2:5]
        mode = sys.argv[5] if len(sys.argv) > 5 else "asymmetric"
        x = features(weights, folder, mode)
        np.savez(out, mu=x.mean(0), sigma=np.cov(x, rowvar=False), features=x.astype(np.float32), n=len(x))
        print(json.dumps({"n": len(x)}))
    elif cmd == "fid":
        a, b = np.load(sys.argv[2]), np.load(sys.argv[3])
        print(json.dumps({"fid": frechet(a["mu"], a["sigma"], b["mu"], b["sigma"])}))
    elif cmd == "prdc":
        real, fake = np.load(sys.argv[2])["features"], np.load(sys.argv[3])["features"]
        print(json.dumps(prdc(real.astype(np.float64), fake.astype(np.float64))))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
