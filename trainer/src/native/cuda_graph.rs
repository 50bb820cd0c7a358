//! CUDA graphs: one capture of device work, replayed many times with a single launch
//! (libtorch's `at::cuda::CUDAGraph` through `csrc/cuda_graph.cpp`). Capture and warm-up
//! run on the graph's own side stream; replays run on the current stream, after whatever
//! the caller wrote into the captured tensors.

use std::ffi::{c_char, c_int, c_void};

use tch::{Device, TchError};

use super::take_error;

unsafe extern "C" {
    fn pagan_graph_new(device: c_int, out: *mut *mut c_void, err: *mut *mut c_char) -> c_int;
    fn pagan_graph_enter(g: *mut c_void, err: *mut *mut c_char) -> c_int;
    fn pagan_graph_leave(g: *mut c_void, err: *mut *mut c_char) -> c_int;
    fn pagan_graph_capture_begin(g: *mut c_void, err: *mut *mut c_char) -> c_int;
    fn pagan_graph_capture_end(g: *mut c_void, err: *mut *mut c_char) -> c_int;
    fn pagan_graph_reset(g: *mut c_void, err: *mut *mut c_char) -> c_int;
    fn pagan_graph_replay(g: *mut c_void, err: *mut *mut c_char) -> c_int;
    fn pagan_graph_free(g: *mut c_void);
}

/// A CUDA graph with its side stream.
pub struct CudaGraph {
    raw: *mut c_void,
    captured: bool,
}

/// Calls a shim function that reports failure through `err`.
fn call(f: impl FnOnce(*mut *mut c_char) -> c_int) -> Result<(), TchError> {
    let mut err = std::ptr::null_mut();
    if f(&mut err) == 0 {
        Ok(())
    } else {
        Err(TchError::Torch(take_error(err)))
    }
}

impl CudaGraph {
    /// An empty graph for CUDA device `device`.
    pub fn new(device: Device) -> Result<Self, TchError> {
        let Device::Cuda(index) = device else {
            return Err(TchError::Torch(format!(
                "CUDA graphs need a CUDA device, not {device:?}"
            )));
        };
        let mut raw = std::ptr::null_mut();
        // SAFETY: the shim writes a new graph pointer into `raw` on success.
        call(|err| unsafe { pagan_graph_new(index as c_int, &mut raw, err) })?;
        Ok(Self { raw, captured: false })
    }

    /// Runs `f` eagerly on the side stream (warm-up: libraries allocate their workspaces
    /// and pick algorithms before a capture, which must not).
    pub fn warm_up<R>(&mut self, f: impl FnOnce() -> R) -> Result<R, TchError> {
        // SAFETY: `raw` is a live graph; enter/leave are paired here.
        call(|err| unsafe { pagan_graph_enter(self.raw, err) })?;
        let out = f();
        call(|err| unsafe { pagan_graph_leave(self.raw, err) })?;
        Ok(out)
    }

    /// Records the device work of `f` without running it (`f` must do no host sync and
    /// copy nothing from the host). A failed capture leaves the graph empty and the
    /// device usable; a panic inside `f` is returned as an error.
    pub fn capture<R>(&mut self, f: impl FnOnce() -> R) -> Result<R, TchError> {
        // SAFETY: `raw` is a live graph; every path below leaves the side stream and ends
        // or resets the capture.
        call(|err| unsafe { pagan_graph_enter(self.raw, err) })?;
        let began = call(|err| unsafe { pagan_graph_capture_begin(self.raw, err) });
        let out = match began {
            Ok(()) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                .map_err(|p| TchError::Torch(panic_text(&p))),
            Err(e) => Err(e),
        };
        let ended = match &out {
            Ok(_) => call(|err| unsafe { pagan_graph_capture_end(self.raw, err) }),
            Err(_) => Ok(()),
        };
        let result = out.and_then(|r| ended.map(|()| r));
        if result.is_err() {
            // Best effort: end whatever capture is open, then drop it.
            let _ = call(|err| unsafe { pagan_graph_capture_end(self.raw, err) });
            let _ = call(|err| unsafe { pagan_graph_reset(self.raw, err) });
        }
        call(|err| unsafe { pagan_graph_leave(self.raw, err) })?;
        self.captured = result.is_ok();
        result
    }

    /// Launches the captured work on the current stream.
    pub fn replay(&self) -> Result<(), TchError> {
        if !self.captured {
            return Err(TchError::Torch(
                "replay of a CUDA graph that holds no capture".into(),
            ));
        }
        // SAFETY: `raw` is a live graph holding a capture.
        call(|err| unsafe { pagan_graph_replay(self.raw, err) })
    }
}

impl Drop for CudaGraph {
    fn drop(&mut self) {
        // SAFETY: `raw` came from pagan_graph_new and is freed once.
        unsafe { pagan_graph_free(self.raw) }
    }
}

/// The message of a caught panic.
fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic during CUDA graph capture".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cpu_device_is_refused_with_a_reason() {
        let err = CudaGraph::new(Device::Cpu)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("CUDA device"), "{err}");
    }
}
