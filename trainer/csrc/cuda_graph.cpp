// CUDA graph capture and replay through libtorch's at::cuda::CUDAGraph, called from
// src/native/cuda_graph.rs (built with the cuda-graphs feature). A graph owns a side stream
// from libtorch's pool: warm-up and capture run on it (CUDA cannot capture the legacy
// default stream); replays run on the caller's current stream. Every function returns 0,
// or 1 with *err set to a message the caller frees (pagan_free_error).
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/core/Event.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

namespace {

struct Graph {
  at::cuda::CUDAGraph graph;
  c10::cuda::CUDAStream side;
  std::optional<c10::cuda::CUDAStream> outer;
  explicit Graph(c10::DeviceIndex device) : side(c10::cuda::getStreamFromPool(false, device)) {}
};

template <class F>
int guarded(char** err, F f) {
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    *err = strdup(e.what());
    return 1;
  }
}

}  // namespace

extern "C" {

int pagan_graph_new(int device, void** out, char** err) {
  return guarded(err, [&] { *out = new Graph(static_cast<c10::DeviceIndex>(device)); });
}

// Makes the graph's side stream current (after the device finished earlier work).
int pagan_graph_enter(void* g, char** err) {
  auto* graph = static_cast<Graph*>(g);
  return guarded(err, [&] {
    c10::cuda::device_synchronize();
    graph->outer = c10::cuda::getCurrentCUDAStream(graph->side.device_index());
    c10::cuda::setCurrentCUDAStream(graph->side);
  });
}

// Makes the caller's stream current again (first, so a failed synchronisation after a
// broken capture still leaves the caller on its own stream), then waits for the device.
int pagan_graph_leave(void* g, char** err) {
  auto* graph = static_cast<Graph*>(g);
  return guarded(err, [&] {
    if (graph->outer) {
      c10::cuda::setCurrentCUDAStream(*graph->outer);
      graph->outer.reset();
    }
    c10::cuda::device_synchronize();
  });
}

int pagan_graph_capture_begin(void* g, char** err) {
  return guarded(err, [&] { static_cast<Graph*>(g)->graph.capture_begin(); });
}

// Ends on the stream the capture began on, whatever work inside left current (a panic
// inside per-run streams can skip their leave).
int pagan_graph_capture_end(void* g, char** err) {
  auto* graph = static_cast<Graph*>(g);
  return guarded(err, [&] {
    c10::cuda::setCurrentCUDAStream(graph->side);
    graph->graph.capture_end();
  });
}

// Drops a failed capture so the stream and allocator are usable again.
int pagan_graph_reset(void* g, char** err) {
  return guarded(err, [&] { static_cast<Graph*>(g)->graph.reset(); });
}

int pagan_graph_replay(void* g, char** err) {
  return guarded(err, [&] { static_cast<Graph*>(g)->graph.replay(); });
}

void pagan_graph_free(void* g) { delete static_cast<Graph*>(g); }

// One stream per run of a stack (src/native/lanes.rs). fork: each side stream waits for
// the work issued so far to the current stream (which it remembers); enter/leave: make a
// side stream current and back; join: the remembered stream waits for every side stream.
// Inside a capture the waits are the graph's edges, and forked streams join the capture.
struct Lanes {
  std::vector<c10::cuda::CUDAStream> side;
  std::optional<c10::cuda::CUDAStream> outer;
};

int pagan_lanes_new(int device, int n, void** out, char** err) {
  return guarded(err, [&] {
    auto lanes = std::make_unique<Lanes>();
    for (int i = 0; i < n; ++i) {
      lanes->side.push_back(c10::cuda::getStreamFromPool(false, static_cast<c10::DeviceIndex>(device)));
    }
    *out = lanes.release();
  });
}

int pagan_lanes_fork(void* l, char** err) {
  auto* lanes = static_cast<Lanes*>(l);
  return guarded(err, [&] {
    auto cur = c10::cuda::getCurrentCUDAStream(lanes->side.at(0).device_index());
    lanes->outer = cur;
    // c10::Event (not at::cuda::CUDAEvent, whose header needs more CUDA headers than the
    // wheel ships): cudaEventRecord / cudaStreamWaitEvent through libtorch's CUDA backend.
    c10::Event ready(c10::DeviceType::CUDA);
    ready.record(cur);
    for (auto& s : lanes->side) ready.block(s);
  });
}

int pagan_lanes_enter(void* l, int k, char** err) {
  auto* lanes = static_cast<Lanes*>(l);
  return guarded(err, [&] { c10::cuda::setCurrentCUDAStream(lanes->side.at(k)); });
}

int pagan_lanes_leave(void* l, char** err) {
  auto* lanes = static_cast<Lanes*>(l);
  return guarded(err, [&] {
    if (!lanes->outer) throw std::runtime_error("lanes: leave without fork");
    c10::cuda::setCurrentCUDAStream(*lanes->outer);
  });
}

int pagan_lanes_join(void* l, char** err) {
  auto* lanes = static_cast<Lanes*>(l);
  return guarded(err, [&] {
    if (!lanes->outer) throw std::runtime_error("lanes: join without fork");
    for (auto& s : lanes->side) {
      c10::Event done(c10::DeviceType::CUDA);
      done.record(s);
      done.block(*lanes->outer);
    }
  });
}

void pagan_lanes_free(void* l) { delete static_cast<Lanes*>(l); }

}  // extern "C"
