// libtorch's profiler (Kineto) around a stretch of work, called from src/native/profile.rs:
// host operators always, device kernels and copies too when CUDA is asked for (CUPTI, which
// also sees the kernels a CUDA graph replay launches). Events come back as text lines
// "D|H <thread> <start ns> <end ns> <name>" (tab-separated), freed with pagan_free_error.
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
      if (ev.isHiddenEvent() || ev.endNs() < ev.startNs()) continue;
      out += ev.deviceType() == c10::DeviceType::CPU ? "H\t" : "D\t";
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
