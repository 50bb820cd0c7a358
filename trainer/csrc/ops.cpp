// libtorch functions tch 0.24 does not expose, called from src/native/mod.rs. Each returns
// a new tensor, or null with *err set to a message the caller frees (pagan_free_error).
#include <ATen/ATen.h>
#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <exception>

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

void pagan_free_error(char* err) { free(err); }

// glibc malloc: serve allocations up to `mmap_threshold` bytes from the heap and trim the
// heap only past `trim_threshold`, so the same tensor sizes freed and allocated again every
// iteration reuse memory instead of mapping fresh zeroed pages. Returns 1 on success.
int pagan_keep_freed_memory(int mmap_threshold, int trim_threshold) {
  return mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 && mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1;
}

}  // extern "C"
