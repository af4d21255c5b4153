// Perf event arrays read from user space (`bpfops events`): libbpf's perf buffer, one per open
// call, kept in a table by handle; each poll returns the records that arrived and how many the
// kernel lost. Ring buffers need no state here (pins_maps.cc drains them).
#include "common.h"
#include <bpf/libbpf.h>
#include <map>
#include <memory>
#include <vector>

namespace {

struct Reader {
  perf_buffer* pb = nullptr;
  std::vector<std::vector<uint8_t>> records;
  uint64_t lost = 0;
};

std::map<int, std::unique_ptr<Reader>> readers;
int nextHandle = 1;

void OnSample(void* ctx, int cpu, void* data, __u32 size) {
  auto* r = static_cast<Reader*>(ctx);
  auto* p = static_cast<uint8_t*>(data);
  r->records.emplace_back(p, p + size);
}

void OnLost(void* ctx, int cpu, __u64 count) {
  static_cast<Reader*>(ctx)->lost += count;
}

Reader* Find(Napi::Env env, int handle) {
  auto it = readers.find(handle);
  if (it == readers.end()) throw Napi::RangeError::New(env, "no open perf buffer " + std::to_string(handle));
  return it->second.get();
}

}  // namespace

// perfBufferOpen(mapFd, pagesPerCpu): a handle for perfBufferPoll and perfBufferClose.
static Napi::Value PerfBufferOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "mapFd");
  size_t pages = static_cast<size_t>(IntArg(info, 1, "pagesPerCpu"));
  auto r = std::make_unique<Reader>();
  r->pb = perf_buffer__new(fd, pages, OnSample, OnLost, r.get(), nullptr);
  if (!r->pb) ThrowErrno(env, errno ? errno : EINVAL, "perf_buffer__new", "open perf event array fd " + std::to_string(fd));
  int handle = nextHandle++;
  readers[handle] = std::move(r);
  return Napi::Number::New(env, handle);
}

// perfBufferPoll(handle, timeoutMs): { records: Buffer[], lost: number } since the last poll.
static Napi::Value PerfBufferPoll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Reader* r = Find(env, static_cast<int>(IntArg(info, 0, "handle")));
  int timeout = static_cast<int>(IntArg(info, 1, "timeoutMs"));
  int ret = perf_buffer__poll(r->pb, timeout);
  if (ret < 0 && ret != -EINTR) ThrowErrno(env, -ret, "perf_buffer__poll", "poll perf buffer");
  Napi::Array records = Napi::Array::New(env, r->records.size());
  for (size_t i = 0; i < r->records.size(); i++) records.Set(i, Napi::Buffer<uint8_t>::Copy(env, r->records[i].data(), r->records[i].size()));
  Napi::Object o = Napi::Object::New(env);
  o.Set("records", records);
  o.Set("lost", static_cast<double>(r->lost));
  r->records.clear();
  r->lost = 0;
  return o;
}

static Napi::Value PerfBufferClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int handle = static_cast<int>(IntArg(info, 0, "handle"));
  auto it = readers.find(handle);
  if (it != readers.end()) {
    perf_buffer__free(it->second->pb);
    readers.erase(it);
  }
  return env.Undefined();
}

void RegisterPerfBuffer(Napi::Env env, Napi::Object exports) {
  exports.Set("perfBufferOpen", Napi::Function::New(env, PerfBufferOpen));
  exports.Set("perfBufferPoll", Napi::Function::New(env, PerfBufferPoll));
  exports.Set("perfBufferClose", Napi::Function::New(env, PerfBufferClose));
}
