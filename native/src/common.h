// Shared declarations of the bpfops native addon: error helpers, netns switching, buffer helpers,
// and the registration functions each source file exports to addon.cc.
#pragma once
#include <unistd.h>
#include <napi.h>
#include <string>
#include <cstdint>
#include <vector>

// Kernel constants newer than Debian's 6.1 UAPI headers; values are ABI and never change.
constexpr uint32_t kAttachTcxIngress = 46;
constexpr uint32_t kAttachTcxEgress = 47;
constexpr uint32_t kLinkTypeTcx = 11;
constexpr uint32_t kLinkTypeNetkit = 13;

// Throws a JS Error carrying code (ENOENT...), errno, syscall and a contextual message:
// "<context>: <strerror>". err is a positive errno.
[[noreturn]] void ThrowErrno(Napi::Env env, int err, const std::string& syscall, const std::string& context);
// Builds (without throwing) the same Error object, for Promise rejections.
Napi::Error ErrnoError(Napi::Env env, int err, const std::string& syscall, const std::string& context);
// Normalizes libbpf's return convention (negative errno, or -1 with errno) to a positive errno.
int LibbpfErr(int ret);
// What libbpf printed, with its libbpf_print_level (0 warn, 1 info, 2 debug).
struct LibbpfMessage {
  int level;
  std::string text;
};
// The messages libbpf printed on this thread since the last take, in order.
std::vector<LibbpfMessage> TakeLibbpfRecords();
// The same, warnings and information only, as one string for an error's context.
std::string TakeLibbpfMessages();
// [{ level: "warn" | "info" | "debug", message }] with the trailing newline dropped.
Napi::Array LibbpfRecordsToJs(Napi::Env env, const std::vector<LibbpfMessage>& records);
void InstallLibbpfPrint();

// Switches the calling thread into a network namespace for the guard's lifetime. The namespace is a
// path (/var/run/netns/NAME, /proc/PID/ns/net), an fd number, or undefined/null for "stay here".
class NetnsGuard {
 public:
  NetnsGuard(Napi::Env env, const Napi::Value& netns, const std::string& context);
  ~NetnsGuard();
  const std::string& Describe() const { return describe_; }
 private:
  int orig_ = -1;
  std::string describe_;
};
// Resolves an interface name in the guard's namespace; throws ENODEV with context.
int ResolveIfindex(Napi::Env env, const std::string& ifname, const std::string& context);

inline std::string StrArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}
inline int64_t IntArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  // A fraction, NaN or a number past 2^53 is a caller's bug: never let it truncate to another fd or size.
  if (!(d == static_cast<double>(static_cast<int64_t>(d))) || d > 9007199254740991.0 || d < -9007199254740991.0) {
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be an integer");
  }
  return static_cast<int64_t>(d);
}
// A file descriptor argument: a non-negative integer.
inline int FdArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  int64_t v = IntArg(info, i, what);
  if (v < 0 || v > 0x7fffffff) throw Napi::RangeError::New(info.Env(), std::string(what) + " must be a file descriptor (a non-negative integer)");
  return static_cast<int>(v);
}
inline Napi::Buffer<uint8_t> BufArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsBuffer()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a Buffer");
  return info[i].As<Napi::Buffer<uint8_t>>();
}
inline Napi::Value OptArg(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i ? info[i] : info.Env().Undefined();
}

// An fd closed when it goes out of scope, also when a call in between throws.
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) close(fd_);
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  int get() const { return fd_; }
 private:
  int fd_;
};
// A cgroup v2 directory, opened for an attach or a query; throws with context.
int OpenCgroup(Napi::Env env, const std::string& path, const std::string& context);
// The calling thread's network namespace (inside a NetnsGuard: the one it entered).
int OpenThreadNetns(Napi::Env env, const std::string& context);

// The sizes the kernel really uses for a map's keys and values (value: per-CPU values rounded to
// 8 bytes, times the possible CPUs; rawValue: the map's value_size).
struct MapSizes {
  uint32_t key;
  size_t value;
  uint32_t rawValue;
  uint32_t type;
  bool percpu;
};
MapSizes SizesOf(Napi::Env env, int fd);

void RegisterObject(Napi::Env env, Napi::Object exports);
void RegisterPinsMaps(Napi::Env env, Napi::Object exports);
void RegisterLinks(Napi::Env env, Napi::Object exports);
void RegisterPerfLinks(Napi::Env env, Napi::Object exports);
void RegisterLegacyAttach(Napi::Env env, Napi::Object exports);
void RegisterObserve(Napi::Env env, Napi::Object exports);
void RegisterProbes(Napi::Env env, Napi::Object exports);
void RegisterNetns(Napi::Env env, Napi::Object exports);
void RegisterMapAdd(Napi::Env env, Napi::Object exports);
void RegisterPerfBuffer(Napi::Env env, Napi::Object exports);
void RegisterErrors(Napi::Env env, Napi::Object exports);
