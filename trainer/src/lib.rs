//! PA-GAN trainer: SN-DCGAN with progressive augmentation (Zhang & Khoreva, NeurIPS 2019) in tch.

pub mod adam;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod device;
pub mod eval;
pub mod export;
pub mod inception;
pub mod loss;
pub mod nets;
pub mod onnx;
pub mod ort_run;
pub mod pa;
pub mod report;
pub mod rng;
pub mod sample;
pub mod schedule;
pub mod spectral_norm;
pub mod sweep;
pub mod train;
