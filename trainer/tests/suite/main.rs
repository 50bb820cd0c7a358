//! The trainer's integration tests, one binary (libtorch links once): the CLI, dataset
//! formats, PA and the training loop, run folders under kills, FID tooling, the Inception
//! and its export, generator export, sweeps and reports, the semi-supervised GAN.

mod cli;
mod common;
mod conditional;
mod data_formats;
mod export_onnx;
mod fid;
mod inception;
mod run_folders;
mod semi;
mod stack;
mod step_golden;
mod sweep_report;
mod training;
