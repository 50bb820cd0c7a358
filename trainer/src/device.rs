//! `--device auto|cpu|cuda`.

use anyhow::{Result, bail};
use tch::Device;

/// Device choice on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceArg {
    /// CUDA when libtorch sees a GPU, else CPU.
    Auto,
    /// Always the CPU.
    Cpu,
    /// The first CUDA GPU; an error if none is visible.
    Cuda,
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

/// Resolves the choice to a tch device, saying clearly when CUDA was asked for but is absent.
pub fn resolve(arg: DeviceArg) -> Result<Device> {
    // `cpu` never probes CUDA (see `cuda_available`).
    match arg {
        DeviceArg::Cpu => Ok(Device::Cpu),
        DeviceArg::Auto => Ok(if cuda_available() {
            Device::Cuda(0)
        } else {
            Device::Cpu
        }),
        DeviceArg::Cuda if cuda_available() => Ok(Device::Cuda(0)),
        DeviceArg::Cuda => bail!(
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
