//! One CUDA stream per run of a stack ("lanes"), so the device can overlap independent
//! runs' small kernels (through `csrc/cuda_graph.cpp`; feature `cuda-graphs`). Without
//! the feature, or on the CPU, lanes are empty and every run's work stays on the current
//! stream, in order: results are the same either way.
//!
//! The rule that keeps memory safe across streams: work goes to a side stream only between
//! [`Lanes::fork`] and [`Lanes::join`], reads what was issued before the fork, and what it
//! produces is used on the caller's stream only after the join (the caching allocator
//! keeps a block per stream, so a block is reused only by the stream that made it, after
//! the next fork orders it behind the caller's uses).

use std::sync::{Arc, Mutex};

use tch::{Device, TchError};

#[cfg(feature = "cuda-graphs")]
mod raw {
    use std::ffi::{c_char, c_int, c_void};

    use tch::TchError;

    unsafe extern "C" {
        fn pagan_lanes_new(device: c_int, n: c_int, out: *mut *mut c_void, err: *mut *mut c_char) -> c_int;
        fn pagan_lanes_fork(l: *mut c_void, err: *mut *mut c_char) -> c_int;
        fn pagan_lanes_enter(l: *mut c_void, k: c_int, err: *mut *mut c_char) -> c_int;
        fn pagan_lanes_leave(l: *mut c_void, err: *mut *mut c_char) -> c_int;
        fn pagan_lanes_join(l: *mut c_void, err: *mut *mut c_char) -> c_int;
        fn pagan_lanes_free(l: *mut c_void);
    }

    /// The shim's streams (fork remembers the caller's stream in them: used under a lock).
    pub struct Streams(*mut c_void);

    // SAFETY: the handle may move between threads (libtorch streams are plain handles);
    // `Lanes` shares it only behind a Mutex, so no two threads use it at once.
    unsafe impl Send for Streams {}

    fn call(f: impl FnOnce(*mut *mut c_char) -> c_int) -> Result<(), TchError> {
        let mut err = std::ptr::null_mut();
        if f(&mut err) == 0 {
            Ok(())
        } else {
            Err(TchError::Torch(super::super::take_error(err)))
        }
    }

    impl Streams {
        pub fn new(device: usize, n: usize) -> Result<Self, TchError> {
            let mut raw = std::ptr::null_mut();
            // SAFETY: the shim writes a new handle into `raw` on success.
            call(|err| unsafe { pagan_lanes_new(device as c_int, n as c_int, &mut raw, err) })?;
            Ok(Self(raw))
        }
        pub fn fork(&self) -> Result<(), TchError> {
            // SAFETY: `self.0` is a live handle (here and below).
            call(|err| unsafe { pagan_lanes_fork(self.0, err) })
        }
        pub fn enter(&self, k: usize) -> Result<(), TchError> {
            call(|err| unsafe { pagan_lanes_enter(self.0, k as c_int, err) })
        }
        pub fn leave(&self) -> Result<(), TchError> {
            call(|err| unsafe { pagan_lanes_leave(self.0, err) })
        }
        pub fn join(&self) -> Result<(), TchError> {
            call(|err| unsafe { pagan_lanes_join(self.0, err) })
        }
    }

    impl Drop for Streams {
        fn drop(&mut self) {
            // SAFETY: the handle came from pagan_lanes_new and is freed once.
            unsafe { pagan_lanes_free(self.0) }
        }
    }
}

/// Per-run streams of a stack (cheap to clone: shared), or none.
#[derive(Clone, Default)]
pub struct Lanes {
    #[cfg(feature = "cuda-graphs")]
    streams: Option<Arc<Mutex<raw::Streams>>>,
    #[cfg(not(feature = "cuda-graphs"))]
    streams: Option<Arc<Mutex<()>>>,
}

impl std::fmt::Debug for Lanes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Lanes({})",
            if self.streams.is_some() { "streams" } else { "none" }
        )
    }
}

impl Lanes {
    /// `n` streams on `device`; none on the CPU (or for n < 2). An error where CUDA streams
    /// are wanted but this build has no CUDA part (`cuda-graphs` feature) or libtorch fails.
    pub fn new(device: Device, n: usize) -> Result<Self, TchError> {
        let Device::Cuda(index) = device else {
            return Ok(Self::default());
        };
        if n < 2 {
            return Ok(Self::default());
        }
        #[cfg(feature = "cuda-graphs")]
        {
            Ok(Self {
                streams: Some(Arc::new(Mutex::new(raw::Streams::new(index, n)?))),
            })
        }
        #[cfg(not(feature = "cuda-graphs"))]
        {
            let _ = index;
            Err(TchError::Torch(
                "per-run CUDA streams need the cuda-graphs feature (this build has no CUDA part)".into(),
            ))
        }
    }

    /// True when runs get their own streams.
    pub fn active(&self) -> bool {
        self.streams.is_some()
    }

    /// `f(m)` for every run m = 0..n, each on its own stream when there are lanes: forked
    /// from the current stream before, joined into it after (see the module's rule).
    pub fn map<R>(&self, n: usize, mut f: impl FnMut(usize) -> R) -> Vec<R> {
        #[cfg(feature = "cuda-graphs")]
        if let Some(s) = &self.streams {
            let s = s.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            expect(s.fork(), "fork");
            // Leaves the lane and joins on every exit, a panic in `f` included (inside a
            // CUDA graph capture the capture then fails cleanly and the step runs eager).
            let rejoin = Rejoin(&s);
            // Each lane becomes current in turn; the guard goes back to the caller's stream.
            let out = (0..n)
                .map(|m| {
                    expect(s.enter(m), "enter");
                    f(m)
                })
                .collect();
            drop(rejoin);
            return out;
        }
        (0..n).map(&mut f).collect()
    }

    /// The caller's stream waits for all work issued to the lanes so far (the backward of
    /// the runs' layers runs on their streams: join before the optimiser reads gradients).
    pub fn join(&self) {
        #[cfg(feature = "cuda-graphs")]
        if let Some(s) = &self.streams {
            let s = s.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            expect(s.join(), "join");
        }
    }
}

/// On drop: back to the caller's stream, which waits for the lanes.
#[cfg(feature = "cuda-graphs")]
struct Rejoin<'a>(&'a raw::Streams);

#[cfg(feature = "cuda-graphs")]
impl Drop for Rejoin<'_> {
    fn drop(&mut self) {
        let left = self.0.leave();
        let joined = self.0.join();
        if !std::thread::panicking() {
            expect(left, "leave");
            expect(joined, "join");
        }
    }
}

/// Stream calls fail only on a broken CUDA context: as tch's own operations do, panic (a
/// CUDA graph capture catches it and runs eager).
#[cfg(feature = "cuda-graphs")]
fn expect(r: Result<(), TchError>, what: &str) {
    if let Err(e) = r {
        panic!("per-run CUDA streams ({what}): {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_has_no_lanes_and_runs_in_order() {
        let lanes = Lanes::new(Device::Cpu, 3).map_err(|e| e.to_string());
        let lanes = lanes.unwrap_or_else(|e| panic!("{e}"));
        assert!(!lanes.active());
        let mut seen = Vec::new();
        assert_eq!(
            lanes.map(3, |m| {
                seen.push(m);
                m * 10
            }),
            vec![0, 10, 20]
        );
        assert_eq!(seen, vec![0, 1, 2]);
        lanes.join();
    }
}
