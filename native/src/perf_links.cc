// Links on perf events: tracepoints (by their tracefs id), uprobes (the uprobe PMU) and sampling
// events per CPU. Each link owns its perf event, so the link alone keeps the attachment alive.
#include "common.h"
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

// Opens the perf event (pid and cpu as perf_event_open takes them) and links the program to it;
// the perf event's fd is closed once the link holds it.
static Napi::Value PerfEventLink(Napi::Env env, int prog, perf_event_attr& pa, int pid, int cpu, const std::string& ctx) {
  pa.size = sizeof(pa);
  int pfd = static_cast<int>(syscall(__NR_perf_event_open, &pa, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC));
  if (pfd < 0) ThrowErrno(env, errno, "perf_event_open", ctx);
  int fd = bpf_link_create(prog, pfd, BPF_PERF_EVENT, nullptr);
  int err = fd < 0 ? LibbpfErr(fd) : 0;
  close(pfd);
  if (fd < 0) ThrowErrno(env, err, "BPF_LINK_CREATE", ctx);
  return Napi::Number::New(env, fd);
}

// attachTracepoint(progFd, category, name, tracefsRoot = /sys/kernel/tracing): fd.
static Napi::Value AttachTracepoint(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int prog = FdArg(info, 0, "progFd");
  std::string cat = StrArg(info, 1, "category");
  std::string name = StrArg(info, 2, "name");
  std::string root = info.Length() > 3 && info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : "/sys/kernel/tracing";
  std::string ctx = "attach tracepoint " + cat + "/" + name;
  std::string idPath = root + "/events/" + cat + "/" + name + "/id";
  std::ifstream f(idPath);
  long id = -1;
  if (!(f >> id)) ThrowErrno(env, ENOENT, "open", ctx + ": " + idPath + " not readable (is tracefs mounted?)");
  perf_event_attr pa;
  memset(&pa, 0, sizeof(pa));
  pa.type = PERF_TYPE_TRACEPOINT;
  pa.config = id;
  return PerfEventLink(env, prog, pa, -1, 0, ctx);
}

// Reads a line of a sysfs file of the uprobe PMU (its type, or the bit that makes a retprobe).
static bool ReadPmuFile(const std::string& path, std::string& out) {
  std::ifstream f(path);
  return static_cast<bool>(std::getline(f, out));
}

// attachUprobe(progFd, path, offset, retprobe, pid = -1): fd.
static Napi::Value AttachUprobe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int prog = FdArg(info, 0, "progFd");
  std::string path = StrArg(info, 1, "path");
  uint64_t offset = static_cast<uint64_t>(IntArg(info, 2, "offset"));
  bool ret = info.Length() > 3 && info[3].ToBoolean().Value();
  int pid = info.Length() > 4 && info[4].IsNumber() ? info[4].As<Napi::Number>().Int32Value() : -1;
  char at[32];
  snprintf(at, sizeof at, "+0x%llx", static_cast<unsigned long long>(offset));
  std::string ctx = std::string(ret ? "attach uretprobe " : "attach uprobe ") + path + at;
  std::string type, bit;
  if (!ReadPmuFile("/sys/bus/event_source/devices/uprobe/type", type)) ThrowErrno(env, ENOENT, "open", ctx + ": no uprobe PMU (/sys/bus/event_source/devices/uprobe/type)");
  perf_event_attr pa;
  memset(&pa, 0, sizeof(pa));
  pa.type = static_cast<uint32_t>(std::stoul(type));
  if (ret) {
    // "config:0": the bit of config that asks for a return probe.
    if (!ReadPmuFile("/sys/bus/event_source/devices/uprobe/format/retprobe", bit) || bit.rfind("config:", 0) != 0) ThrowErrno(env, ENOTSUP, "open", ctx + ": the uprobe PMU has no retprobe format");
    pa.config |= 1ull << std::stoul(bit.substr(7));
  }
  pa.config1 = reinterpret_cast<uint64_t>(path.c_str());
  pa.config2 = offset;
  // A uprobe for every process: pid -1 on one CPU (the probe fires on all of them).
  return PerfEventLink(env, prog, pa, pid, pid == -1 ? 0 : -1, ctx);
}

// attachPerfEvent(progFd, type, config, frequency, cpu): fd. A sampling event on one CPU (every
// process there) at `frequency` Hz.
static Napi::Value AttachPerfEvent(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int prog = FdArg(info, 0, "progFd");
  perf_event_attr pa;
  memset(&pa, 0, sizeof(pa));
  pa.type = static_cast<uint32_t>(IntArg(info, 1, "type"));
  pa.config = static_cast<uint64_t>(IntArg(info, 2, "config"));
  pa.sample_freq = static_cast<uint64_t>(IntArg(info, 3, "frequency"));
  pa.freq = 1;
  int cpu = static_cast<int>(IntArg(info, 4, "cpu"));
  return PerfEventLink(env, prog, pa, -1, cpu, "attach perf_event type " + std::to_string(pa.type) + " config " + std::to_string(pa.config) + " on cpu " + std::to_string(cpu));
}

void RegisterPerfLinks(Napi::Env env, Napi::Object exports) {
  exports.Set("attachTracepoint", Napi::Function::New(env, AttachTracepoint));
  exports.Set("attachUprobe", Napi::Function::New(env, AttachUprobe));
  exports.Set("attachPerfEvent", Napi::Function::New(env, AttachPerfEvent));
}
