# The README's commands. Every target that needs dependencies runs `setup` first, which is
# idempotent (seconds when everything is present).
SHELL := /bin/bash
CARGO ?= cargo
DEMO_RUN ?= runs/demo
DEMO_MODEL ?= models/fmnist-demo
DEMO_ITERS ?= 2500

.PHONY: setup build demo test bench lint clean-runs

setup:
	@bash scripts/setup.sh

build: setup
	$(CARGO) build --release

# Trains a short Fashion-MNIST run with input-space PA (demo preset), exports it to models/.
demo: build
	rm -rf $(DEMO_RUN)
	./target/release/pagan-train train --dataset fashion-mnist --preset demo --pa input \
	  --iters $(DEMO_ITERS) --seed 0 --out $(DEMO_RUN)
	./target/release/pagan-train export $(DEMO_RUN) --out $(DEMO_MODEL)
	@echo
	@echo "Demo done. Sample grid of the run:   $(DEMO_RUN)/samples/latest.png"
	@echo "Exported model (ONNX + manifest):   $(DEMO_MODEL)/"
	@echo "Metrics (one JSON line per 100 it): $(DEMO_RUN)/metrics.jsonl"

test: setup
	$(CARGO) test --workspace

bench: setup
	$(CARGO) build --release -p pagan-trainer
	bash bench/run.sh

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
