//! Where tensors live: `auto` (CUDA when libtorch sees a GPU), `cpu` or `cuda`.

use anyhow::{Result, bail};
use tch::{Device, Tensor};

use crate::config::Choice;

/// A device choice (`--device`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// CUDA when libtorch sees a GPU, else CPU.
    Auto,
    /// Always the CPU.
    Cpu,
    /// The first CUDA GPU; an error if none is visible.
    Cuda,
}

impl Choice for DeviceChoice {
    const ALL: &'static [(&'static str, Self)] =
        &[("auto", Self::Auto), ("cpu", Self::Cpu), ("cuda", Self::Cuda)];
    const HELP: &'static [&'static str] = &[
        "CUDA when libtorch sees a GPU, else CPU",
        "always the CPU",
        "the first CUDA GPU; an error if none is visible",
    ];
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse_word(s, "device")
    }
}

/// True when an NVIDIA driver is visible and libtorch can use it.
///
/// The driver check comes first because probing CUDA on a host without one leaves libtorch's
/// CPU threads fighting (measured: 2-thread training 3-5x slower afterwards), so CPU-only
/// hosts must never call into CUDA at all.
pub fn cuda_available() -> bool {
    let driver = ["/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/nvidia0"]
        .iter()
        .any(|p| std::path::Path::new(p).exists());
    driver && tch::Cuda::is_available()
}

/// The first GPU, with cuDNN's benchmark mode on: our shapes are fixed for a whole run
/// (training step, Inception batches), so timing the algorithms once per shape pays.
/// `PAGAN_CUDNN_BENCHMARK=0` keeps cuDNN's heuristic choice (the same algorithms in every
/// process, for comparing two runs number by number).
fn first_gpu() -> Device {
    let benchmark = std::env::var("PAGAN_CUDNN_BENCHMARK").map_or(true, |v| v != "0");
    tch::Cuda::cudnn_set_benchmark(benchmark);
    Device::Cuda(0)
}

/// Resolves the choice to a tch device, saying clearly when CUDA was asked for but is absent.
pub fn resolve(arg: DeviceChoice) -> Result<Device> {
    // `cpu` never probes CUDA (see `cuda_available`).
    match arg {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Auto => Ok(if cuda_available() {
            first_gpu()
        } else {
            Device::Cpu
        }),
        DeviceChoice::Cuda if cuda_available() => Ok(first_gpu()),
        DeviceChoice::Cuda => bail!(
            "--device cuda: libtorch sees no CUDA device (driver missing, no GPU, or a CPU-only libtorch)"
        ),
    }
}

/// A short human name for logs.
pub fn describe(d: Device) -> String {
    match d {
        Device::Cpu => format!("cpu ({} threads)", tch::get_num_threads()),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}"),
    }
}

/// `host` (a CPU tensor built this iteration) on `device` without a host sync: on CUDA a
/// blocking copy makes libtorch synchronise the stream after it, which in the training step
/// stalled the host once per copy (the batch indices, each PA run's probabilities). A
/// non-blocking copy from pageable memory is staged by CUDA before the call returns, so the
/// host buffer may go at once, and the host no longer waits for the GPU to drain.
pub fn upload(host: &Tensor, device: Device) -> Tensor {
    if device.is_cuda() {
        host.to_device_(device, host.kind(), true, false)
    } else {
        host.to_device(device)
    }
}
