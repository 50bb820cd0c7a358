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

/// Resolves the choice to a tch device, saying clearly when CUDA was asked for but is absent.
pub fn resolve(arg: DeviceArg) -> Result<Device> {
    let cuda = tch::Cuda::is_available();
    match arg {
        DeviceArg::Cpu => Ok(Device::Cpu),
        DeviceArg::Auto => Ok(if cuda { Device::Cuda(0) } else { Device::Cpu }),
        DeviceArg::Cuda if cuda => Ok(Device::Cuda(0)),
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
