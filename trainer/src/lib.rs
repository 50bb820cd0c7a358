//! PA-GAN trainer: SN-DCGAN with progressive augmentation (Zhang & Khoreva, NeurIPS 2019) in
//! tch, FID/KID tooling and ONNX export. Modules from the bottom up: `config` (what a run
//! is), `data`, `rng`, `ops` and `model` (the networks), `objective` (PA, losses, level
//! schedule; Salimans et al.'s techniques), `run_dir` (the run-folder format), `fid`, `onnx`,
//! `train`, `semi` (the semi-supervised GAN), `export`,
//! `experiments` (sweeps, reports), `bench` and `profile` (where its time goes). See docs/ARCHITECTURE.md.

pub mod bench;
pub mod config;
pub mod data;
pub mod device;
pub mod experiments;
pub mod export;
pub mod fid;
pub mod model;
pub mod native;
pub mod objective;
pub mod onnx;
pub mod ops;
pub mod profile;
pub mod progress;
pub mod rng;
pub mod run_dir;
pub mod semi;
pub mod train;
