// libtorch functions tch 0.24 does not expose, called from src/native/mod.rs. Each returns
// a new tensor, or null with *err set to a message the caller frees (pagan_free_error).
#include <ATen/ATen.h>
#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <vector>

extern "C" {

// Leaky ReLU with the given slope, differentiable (tch's leaky_relu fixes it at 0.01).
at::Tensor* pagan_leaky_relu(const at::Tensor* x, double slope, char** err) {
  try {
    return new at::Tensor(at::leaky_relu(*x, slope));
  } catch (const std::exception& e) {
    *err = strdup(e.what());
    return nullptr;
  }
}

// Adam over lists of n parameters, gradients, moments and step counts (float32 tensors on
// the parameters' device holding the count of the coming update): libtorch's fused kernel,
// one pass over the memory instead of one per arithmetic operation (CPU), one multi-tensor
// launch (CUDA; it reads the step counts on the device, so it can be captured in a graph).
int pagan_fused_adam(const at::Tensor** params, const at::Tensor** grads, const at::Tensor** exp_avgs,
                     const at::Tensor** exp_avg_sqs, const at::Tensor** steps, int n, double lr, double beta1,
                     double beta2, double eps, char** err) {
  try {
    auto list = [n](const at::Tensor** ts) {
      std::vector<at::Tensor> v;
      v.reserve(n);
      for (int i = 0; i < n; ++i) v.push_back(*ts[i]);
      return v;
    };
    at::_fused_adam_(list(params), list(grads), list(exp_avgs), list(exp_avg_sqs), {}, list(steps), lr, beta1,
                     beta2, 0.0, eps, false, false);
    return 0;
  } catch (const std::exception& e) {
    *err = strdup(e.what());
    return 1;
  }
}

void pagan_free_error(char* err) { free(err); }

// glibc malloc: serve allocations up to `mmap_threshold` bytes from the heap and trim the
// heap only past `trim_threshold`, so the same tensor sizes freed and allocated again every
// iteration reuse memory instead of mapping fresh zeroed pages. Returns 1 on success.
int pagan_keep_freed_memory(int mmap_threshold, int trim_threshold) {
  return mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 && mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1;
}

}  // extern "C"
