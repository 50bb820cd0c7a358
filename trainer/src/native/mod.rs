//! libtorch functions tch does not expose, through the small C++ shim in `csrc/` that the
//! build script compiles against the same libtorch: leaky ReLU with a slope, the fused Adam
//! kernel, malloc settings for a process that allocates the same tensors every iteration,
//! libtorch's profiler, and (feature `cuda-graphs`) CUDA graph capture and replay and
//! per-run CUDA streams.

#[cfg(feature = "cuda-graphs")]
pub mod cuda_graph;
pub mod lanes;
pub mod profile;

use std::ffi::{CStr, c_char, c_int};

use tch::{TchError, Tensor};
use torch_sys::C_tensor;

unsafe extern "C" {
    fn pagan_leaky_relu(x: *const C_tensor, slope: f64, err: *mut *mut c_char) -> *mut C_tensor;
    fn pagan_fused_adam(
        params: *const *const C_tensor,
        grads: *const *const C_tensor,
        exp_avgs: *const *const C_tensor,
        exp_avg_sqs: *const *const C_tensor,
        steps: *const *const C_tensor,
        n: c_int,
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
        err: *mut *mut c_char,
    ) -> c_int;
    fn pagan_free_error(err: *mut c_char);
    fn pagan_keep_freed_memory(mmap_threshold: c_int, trim_threshold: c_int) -> c_int;
}

/// Tells glibc's malloc to keep freed memory for reuse: a training step frees and
/// allocates the same tensor sizes every iteration, and by default those of more than a
/// few hundred KiB are unmapped and mapped again as fresh zeroed pages each time (page
/// faults measured at ~15% of a CPU step). Allocations up to 32 MiB (glibc's maximum for
/// this setting) come from the heap, which is trimmed only past 1 GiB free. Set
/// `PAGAN_KEEP_FREED_MEMORY=0` to keep glibc's defaults. Returns whether it applied.
pub fn keep_freed_memory() -> bool {
    if std::env::var("PAGAN_KEEP_FREED_MEMORY").is_ok_and(|v| v == "0") {
        return false;
    }
    // SAFETY: mallopt only changes allocator parameters.
    unsafe { pagan_keep_freed_memory(32 << 20, 1 << 30) == 1 }
}

/// Takes the shim's error message (and frees it).
fn take_error(err: *mut c_char) -> String {
    if err.is_null() {
        return "unknown error in the libtorch shim".into();
    }
    // SAFETY: the shim sets `err` to a NUL-terminated strdup'd string, freed once here.
    let msg = unsafe { CStr::from_ptr(err) }.to_string_lossy().into_owned();
    unsafe { pagan_free_error(err) };
    msg
}

/// Leaky ReLU with slope `slope` (one kernel forward and backward, differentiable).
pub fn f_leaky_relu(x: &Tensor, slope: f64) -> Result<Tensor, TchError> {
    let mut err = std::ptr::null_mut();
    // SAFETY: `x` is a live tensor; the shim returns a new heap tensor or null with `err` set.
    let out = unsafe { pagan_leaky_relu(x.as_ptr(), slope, &mut err) };
    if out.is_null() {
        return Err(TchError::Torch(take_error(err)));
    }
    // SAFETY: `out` is a fresh at::Tensor* that the returned Tensor now owns.
    Ok(unsafe { Tensor::from_ptr(out) })
}

/// The tensors of one Adam update: parameters, their gradients, both moments and the step
/// counts (float32, the count of this update), all lists in the same order and shapes.
pub struct AdamTensors<'a> {
    /// Parameters, updated in place.
    pub params: &'a [&'a Tensor],
    /// Their gradients (defined, same shapes).
    pub grads: &'a [Tensor],
    /// First moments, updated in place.
    pub exp_avgs: &'a [Tensor],
    /// Second moments, updated in place.
    pub exp_avg_sqs: &'a [Tensor],
    /// Step counts (float32 scalars on the parameters' device), read only.
    pub steps: &'a [Tensor],
}

/// One Adam update (no weight decay) by libtorch's fused kernel: the bias corrections come
/// from the step counts on the device, so no host value changes between updates.
pub fn fused_adam(t: &AdamTensors, lr: f64, beta1: f64, beta2: f64, eps: f64) -> Result<(), TchError> {
    let n = t.params.len();
    let lens = [
        t.grads.len(),
        t.exp_avgs.len(),
        t.exp_avg_sqs.len(),
        t.steps.len(),
    ];
    if lens.iter().any(|&l| l != n) {
        return Err(TchError::Torch(format!(
            "fused Adam: {n} parameters but lists of {lens:?} gradients, moments and steps"
        )));
    }
    if n == 0 {
        // Nothing to update (libtorch cannot dispatch an operator on empty lists).
        return Ok(());
    }
    let ptrs = |ts: &[Tensor]| ts.iter().map(|t| t.as_ptr()).collect::<Vec<_>>();
    let params: Vec<*const C_tensor> = t.params.iter().map(|p| p.as_ptr()).collect();
    let (grads, m, v, steps) = (
        ptrs(t.grads),
        ptrs(t.exp_avgs),
        ptrs(t.exp_avg_sqs),
        ptrs(t.steps),
    );
    let mut err = std::ptr::null_mut();
    // SAFETY: every pointer is a live tensor borrowed for the call (the shim copies the
    // handles; the kernel writes the storage of params and moments); the lists hold n each.
    let rc = unsafe {
        pagan_fused_adam(
            params.as_ptr(),
            grads.as_ptr(),
            m.as_ptr(),
            v.as_ptr(),
            steps.as_ptr(),
            n as c_int,
            lr,
            beta1,
            beta2,
            eps,
            &mut err,
        )
    };
    if rc != 0 {
        return Err(TchError::Torch(take_error(err)));
    }
    Ok(())
}

/// [`f_leaky_relu`], panicking on a libtorch error as tch's own operations do (the
/// networks call it on shapes they built themselves).
pub fn leaky_relu(x: &Tensor, slope: f64) -> Tensor {
    match f_leaky_relu(x, slope) {
        Ok(t) => t,
        Err(e) => panic!("leaky_relu: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use tch::{Device, Kind, Tensor};

    /// Values and gradients equal the PReLU form it replaces, exactly.
    #[test]
    fn leaky_relu_matches_prelu_values_and_gradients() {
        let _rng = crate::rng::torch_rng_lock();
        let x = (Tensor::randn([4, 3, 5, 5], (Kind::Float, Device::Cpu)) * 3.0).set_requires_grad(true);
        let w = Tensor::from_slice(&[0.1f32]);
        let a = super::leaky_relu(&x, 0.1);
        let b = x.prelu(&w);
        assert_eq!(f64::try_from((&a - &b).abs().max()).unwrap_or(1.0), 0.0);
        let up = Tensor::randn([4, 3, 5, 5], (Kind::Float, Device::Cpu));
        let ga = Tensor::run_backward(&[(&a * &up).sum(Kind::Float)], &[&x], false, false);
        let gb = Tensor::run_backward(&[(&b * &up).sum(Kind::Float)], &[&x], false, false);
        assert_eq!(f64::try_from((&ga[0] - &gb[0]).abs().max()).unwrap_or(1.0), 0.0);
        // Negative inputs are scaled, positive ones pass.
        let v = Vec::<f32>::try_from(super::leaky_relu(&Tensor::from_slice(&[-2.0f32, 3.0]), 0.1))
            .unwrap_or_default();
        assert_eq!(v, vec![-0.2, 3.0]);
    }

    #[test]
    fn a_libtorch_error_is_an_error_not_a_crash() {
        let ints = Tensor::from_slice(&[1i64, -2]).view([2]);
        // Leaky ReLU is defined for floating types only.
        assert!(super::f_leaky_relu(&ints, 0.1).is_err());
    }
}
