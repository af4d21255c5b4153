// Error construction for the addon: errno-carrying JS errors with context, and capture of
// libbpf's own warnings so that a failed load can say what libbpf saw.
#include "common.h"
#include <bpf/libbpf.h>
#include <cerrno>
#include <cstdarg>
#include <cstring>

static thread_local std::string libbpf_messages;

static int CapturePrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char buf[4096];
  int n = vsnprintf(buf, sizeof(buf), fmt, args);
  // Keep a bounded tail: the last messages are the ones that explain a failure.
  libbpf_messages.append(buf, n < 0 ? 0 : std::min<size_t>(n, sizeof(buf) - 1));
  if (libbpf_messages.size() > 16384) libbpf_messages.erase(0, libbpf_messages.size() - 16384);
  return 0;
}

void InstallLibbpfPrint() { libbpf_set_print(CapturePrint); }

std::string TakeLibbpfMessages() {
  std::string out;
  out.swap(libbpf_messages);
  return out;
}

int LibbpfErr(int ret) {
  // libbpf 1.x returns -errno (and sets errno); -1 is -EPERM, not "see errno".
  if (ret < 0) return -ret;
  return errno ? errno : EINVAL;
}

Napi::Error ErrnoError(Napi::Env env, int err, const std::string& syscall, const std::string& context) {
  const char* name = strerrorname_np(err);
  std::string msg = context + ": " + strerror(err);
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, name ? name : ("E" + std::to_string(err))));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

void ThrowErrno(Napi::Env env, int err, const std::string& syscall, const std::string& context) {
  throw ErrnoError(env, err, syscall, context);
}
