# The README's commands. Every target that needs dependencies runs `setup` first, which is
# idempotent (seconds when everything is present).
SHELL := /bin/bash
CARGO ?= cargo
DEMO_RUN ?= runs/demo
DEMO_MODEL ?= models/fmnist-demo
DEMO_ITERS ?= 2500
DEMO_EVAL_EVERY ?= 1250

.PHONY: setup build demo test bench lint references clean-runs

setup:
	@bash scripts/setup.sh

build: setup
	$(CARGO) build --release

# Trains a short Fashion-MNIST run with input-space PA (demo preset), exports it to models/,
# writes the feature extractor and a small test reference, then serves them over HTTP.
DEMO_REF_N ?= 500
DEMO_REF ?= fashion-mnist-test-$(DEMO_REF_N)
DEMO_BIND ?= 127.0.0.1:8080
demo: build
	rm -rf $(DEMO_RUN)
	[ -f models/inception/manifest.json ] || ./target/release/pagan-train export-inception --out models/inception
	[ -f models/references/$(DEMO_REF).npz ] || ./target/release/pagan-train stats --dataset fashion-mnist \
	  --split test --n $(DEMO_REF_N) --backend onnx --out models/references/$(DEMO_REF).npz
	# Two evaluations (KID vs training images, FID vs the reference) for the model card's curve.
	./target/release/pagan-train train --dataset fashion-mnist --preset demo --pa input \
	  --iters $(DEMO_ITERS) --seed 0 --eval-every $(DEMO_EVAL_EVERY) --eval-samples $(DEMO_REF_N) \
	  --eval-fid-reference models/references/$(DEMO_REF).npz --out $(DEMO_RUN)
	./target/release/pagan-train export $(DEMO_RUN) --out $(DEMO_MODEL)
	@echo
	@echo "Demo done. Sample grid of the run:   $(DEMO_RUN)/samples/latest.png"
	@echo "Exported model (ONNX + manifest):   $(DEMO_MODEL)/"
	@echo "Metrics (one JSON line per 100 it): $(DEMO_RUN)/metrics.jsonl"
	@echo
	@echo "Open http://$(DEMO_BIND)/ in a browser: models, latent walks, scoring, status."
	@echo
	@echo "Starting pagan-serve on http://$(DEMO_BIND) (Ctrl-C stops it). In another shell:"
	@echo "  curl -s http://$(DEMO_BIND)/v1/models"
	@echo "  curl -s 'http://$(DEMO_BIND)/v1/models/$(notdir $(DEMO_MODEL))/grid.png?n=64&seed=7' -o grid.png"
	@echo "  curl -s -X POST http://$(DEMO_BIND)/v1/models/$(notdir $(DEMO_MODEL))/generate -H 'content-type: application/json' -d '{\"n\": 16, \"seed\": 7, \"format\": \"zip\"}' -o samples.zip"
	@echo "  curl -s -X POST 'http://$(DEMO_BIND)/v1/models/$(notdir $(DEMO_MODEL))/fid?reference=$(DEMO_REF)&n=100&kid=true'"
	@echo "  curl -s -X POST 'http://$(DEMO_BIND)/v1/fid?reference=$(DEMO_REF)&kid=true' -H 'content-type: application/zip' --data-binary @samples.zip"
	@echo "  # your own images: curl -s -X POST 'http://$(DEMO_BIND)/v1/fid?reference=$(DEMO_REF)' -F file=@a.png -F file=@b.png"
	@echo "  curl -s http://$(DEMO_BIND)/metrics | grep -v '^#' | head"
	@echo
	./target/release/pagan-serve --models models --bind $(DEMO_BIND)

# FID references (10k test images each, with features for KID) and the server's feature
# extractor. ~25 min per dataset on a 2-core CPU; minutes on a GPU (uses --backend tch then).
REF_BACKEND ?= $(shell ./target/release/pagan-train bench-inception --device cuda --batches 1 --batch 1 >/dev/null 2>&1 && echo tch || echo onnx)
references: build
	./target/release/pagan-train export-inception --out models/inception
	./target/release/pagan-train stats --dataset fashion-mnist --split test --backend $(REF_BACKEND) \
	  --out models/references/fashion-mnist-test.npz
	./target/release/pagan-train stats --dataset mnist --split test --backend $(REF_BACKEND) \
	  --out models/references/mnist-test.npz

test: setup
	$(CARGO) test --workspace

bench: setup
	$(CARGO) build --release -p pagan-trainer -p pagan-server
	bash bench/run.sh

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
