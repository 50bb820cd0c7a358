// libtorch functions tch 0.24 does not expose, called from src/native/mod.rs. Each returns
// a new tensor, or null with *err set to a message the caller frees (pagan_free_error).
#include <ATen/ATen.h>

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

}  // extern "C"
