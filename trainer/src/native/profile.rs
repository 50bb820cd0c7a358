//! libtorch's profiler (Kineto, through `csrc/profile.cpp`) around a stretch of work: the
//! host operators it ran and, on CUDA, the kernels and copies the device ran (including
//! those a CUDA graph replay launches).

use std::ffi::{CStr, CString, c_char, c_int};
use std::marker::PhantomData;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use tch::TchError;

use super::take_error;

unsafe extern "C" {
    fn pagan_profile_start(cuda: c_int, err: *mut *mut c_char) -> c_int;
    fn pagan_profile_stop(
        trace_path: *const c_char,
        events: *mut *mut c_char,
        err: *mut *mut c_char,
    ) -> c_int;
    fn pagan_free_error(err: *mut c_char);
}

/// Where an event ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// A kernel, copy or fill on the device.
    Device,
    /// A CUDA runtime or driver call on the host (launches, waits, event records).
    Runtime,
    /// A libtorch operator on a host thread.
    Host,
}

/// One profiled interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Where it ran.
    pub side: Side,
    /// The host thread libtorch attributes it to (for device events: the thread of the
    /// operator that launched it).
    pub thread: u64,
    /// Start, nanoseconds (one clock for all events).
    pub start_ns: u64,
    /// End, nanoseconds.
    pub end_ns: u64,
    /// The operator's or kernel's name.
    pub name: String,
}

/// A running profiler; [`Profiler::stop`] returns what it saw. libtorch keeps the profiler's
/// state per thread, so it stays on the thread that started it (not `Send`).
pub struct Profiler {
    running: bool,
    _thread: PhantomData<*const ()>,
}

impl Profiler {
    /// Starts profiling host operators, and with `cuda` the device's kernels and copies.
    pub fn start(cuda: bool) -> Result<Self, TchError> {
        let mut err = std::ptr::null_mut();
        // SAFETY: the shim only reads the flag and sets `err` on failure.
        if unsafe { pagan_profile_start(cuda as c_int, &mut err) } != 0 {
            return Err(TchError::Torch(take_error(err)));
        }
        Ok(Self {
            running: true,
            _thread: PhantomData,
        })
    }

    /// Stops and returns the events; with `trace`, also writes a Chrome trace there.
    pub fn stop(mut self, trace: Option<&Path>) -> Result<Vec<Event>, TchError> {
        // A bad path returns early: Drop still switches the profiler off.
        let path = trace
            .map(|p| CString::new(p.as_os_str().as_bytes()))
            .transpose()
            .map_err(|e| TchError::Torch(format!("trace path: {e}")))?;
        self.running = false;
        let (mut events, mut err) = (std::ptr::null_mut(), std::ptr::null_mut());
        let path_ptr = path.as_ref().map_or(std::ptr::null(), |p| p.as_ptr());
        // SAFETY: `path_ptr` is null or a NUL-terminated string alive for the call; on
        // success `events` is a strdup'd string freed once below.
        if unsafe { pagan_profile_stop(path_ptr, &mut events, &mut err) } != 0 {
            return Err(TchError::Torch(take_error(err)));
        }
        let text = unsafe { CStr::from_ptr(events) }.to_string_lossy().into_owned();
        unsafe { pagan_free_error(events) };
        Ok(text.lines().filter_map(parse_line).collect())
    }
}

impl Drop for Profiler {
    fn drop(&mut self) {
        if self.running {
            // Dropped without stop (an error in the profiled work): switch it off.
            let (mut events, mut err) = (std::ptr::null_mut(), std::ptr::null_mut());
            // SAFETY: as in `stop`, with no trace path; whatever comes back is freed.
            unsafe {
                if pagan_profile_stop(std::ptr::null(), &mut events, &mut err) == 0 {
                    pagan_free_error(events);
                } else {
                    pagan_free_error(err);
                }
            }
        }
    }
}

/// "D|R|H thread start end name" (tab-separated) -> an event.
fn parse_line(line: &str) -> Option<Event> {
    let mut f = line.splitn(5, '\t');
    let side = match f.next()? {
        "D" => Side::Device,
        "R" => Side::Runtime,
        "H" => Side::Host,
        _ => return None,
    };
    let thread = f.next()?.parse().ok()?;
    let start_ns = f.next()?.parse().ok()?;
    let end_ns = f.next()?.parse().ok()?;
    Some(Event {
        side,
        thread,
        start_ns,
        end_ns,
        name: f.next()?.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use tch::{Device, Kind, Tensor};

    use super::*;

    /// Host operators run while profiling come back with their names and durations; the
    /// profiler can be started again after a stop.
    #[test]
    fn host_operators_are_seen_by_name() {
        let _rng = crate::rng::torch_rng_lock();
        for _ in 0..2 {
            let p = Profiler::start(false).map_err(|e| e.to_string());
            let p = p.unwrap_or_else(|e| panic!("start: {e}"));
            let a = Tensor::ones([64, 64], (Kind::Float, Device::Cpu));
            let _ = a.mm(&a).sum(Kind::Float);
            let ev = p.stop(None).map_err(|e| e.to_string());
            let ev = ev.unwrap_or_else(|e| panic!("stop: {e}"));
            let mm = ev.iter().find(|e| e.name == "aten::mm");
            let mm = mm.unwrap_or_else(|| panic!("no aten::mm in {ev:?}"));
            assert!(mm.side == Side::Host && mm.end_ns > mm.start_ns, "{mm:?}");
            assert!(ev.iter().any(|e| e.name == "aten::sum"));
        }
    }

    #[test]
    fn lines_parse_and_junk_is_skipped() {
        let e = parse_line("D\t7\t100\t250\tvoid k<float>(int)\tx");
        assert_eq!(
            e,
            Some(Event {
                side: Side::Device,
                thread: 7,
                start_ns: 100,
                end_ns: 250,
                name: "void k<float>(int)\tx".into()
            })
        );
        assert_eq!(parse_line("H\tx\t1\t2\tname"), None);
        assert_eq!(parse_line("X\t1\t1\t2\tname"), None);
        assert_eq!(
            parse_line("R\t1\t1\t2\tcudaLaunchKernel").map(|e| e.side),
            Some(Side::Runtime)
        );
        assert_eq!(parse_line("H\t1\t2"), None);
    }
}
