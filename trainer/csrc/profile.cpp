// libtorch's profiler (Kineto) around a stretch of work, called from src/native/profile.rs:
// host operators always, device kernels and copies too when CUDA is asked for (CUPTI, which
// also sees the kernels a CUDA graph replay launches). Events come back as text lines
// "<kind> <thread> <start ns> <end ns> <name>" (tab-separated; kind D: a device kernel, copy
// or fill; R: a CUDA runtime or driver call; H: a host operator), freed with
// pagan_free_error.
#include <kineto/ActivityType.h>
#include <torch/csrc/autograd/profiler_kineto.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <set>
#include <string>

namespace {

namespace prof = torch::profiler::impl;

prof::ProfilerConfig config() { return prof::ProfilerConfig(prof::ProfilerState::KINETO); }

std::set<prof::ActivityType> activities(int cuda) {
  std::set<prof::ActivityType> acts{prof::ActivityType::CPU};
  if (cuda) acts.insert(prof::ActivityType::CUDA);
  return acts;
}

// The kind letter of an event, or 0 for kinds the table leaves out (annotations, markers).
char kind(const torch::autograd::profiler::KinetoEvent& ev) {
  using A = libkineto::ActivityType;
  switch (static_cast<A>(ev.activityType())) {
    case A::CONCURRENT_KERNEL:
    case A::GPU_MEMCPY:
    case A::GPU_MEMSET:
      return 'D';
    case A::CUDA_RUNTIME:
    case A::CUDA_DRIVER:
    case A::CUDA_SYNC:
    case A::CUDA_EVENT:
      return 'R';
    case A::CPU_OP:
      return 'H';
    default:
      return 0;
  }
}

// Tabs and newlines would break the line format; kernel names may hold anything.
std::string clean(std::string s) {
  for (auto& ch : s) {
    if (ch == '\t' || ch == '\n' || ch == '\r') ch = ' ';
  }
  return s;
}

}  // namespace

extern "C" {

int pagan_profile_start(int cuda, char** err) {
  try {
    auto acts = activities(cuda);
    torch::autograd::profiler::prepareProfiler(config(), acts);
    torch::autograd::profiler::enableProfiler(config(), acts);
    return 0;
  } catch (const std::exception& e) {
    *err = strdup(e.what());
    return 1;
  }
}

// Stops the profiler; *events gets the lines; a non-null trace_path also gets the Chrome
// trace (chrome://tracing, Perfetto).
int pagan_profile_stop(const char* trace_path, char** events, char** err) {
  try {
    auto result = torch::autograd::profiler::disableProfiler();
    if (!result) {
      *err = strdup("the profiler was not running");
      return 1;
    }
    std::string out;
    for (const auto& ev : result->events()) {
      char k = kind(ev);
      if (!k || ev.isHiddenEvent() || ev.endNs() < ev.startNs()) continue;
      out += k;
      out += '\t';
      out += std::to_string(ev.startThreadId()) + "\t" + std::to_string(ev.startNs()) + "\t" +
             std::to_string(ev.endNs()) + "\t" + clean(ev.name()) + "\n";
    }
    if (trace_path) result->save(trace_path);
    *events = strdup(out.c_str());
    return 0;
  } catch (const std::exception& e) {
    *err = strdup(e.what());
    return 1;
  }
}

}  // extern "C"
