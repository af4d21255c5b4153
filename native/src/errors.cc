// Error construction for the addon: errno-carrying JS errors with context, and capture of
// libbpf's own messages (with their level) so that a load can say what libbpf saw.
#include "common.h"
#include <bpf/libbpf.h>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstring>

// Per thread: libbpf prints from whichever thread calls it (the main thread opens objects, a
// libuv worker loads them), and each caller takes what its own calls printed.
static thread_local std::vector<LibbpfMessage> libbpf_messages;
static thread_local size_t libbpf_bytes = 0;
// Debug messages are many (every relocation); they are kept only when the log asks for them.
static std::atomic<int> capture_level{LIBBPF_INFO};

static int CapturePrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level > capture_level.load(std::memory_order_relaxed)) return 0;
  char buf[4096];
  int n = vsnprintf(buf, sizeof(buf), fmt, args);
  libbpf_messages.push_back({level, std::string(buf, n < 0 ? 0 : std::min<size_t>(n, sizeof(buf) - 1))});
  libbpf_bytes += libbpf_messages.back().text.size();
  // Keep a bounded tail: the last messages are the ones that explain a failure.
  while (libbpf_bytes > 65536 && !libbpf_messages.empty()) {
    libbpf_bytes -= libbpf_messages.front().text.size();
    libbpf_messages.erase(libbpf_messages.begin());
  }
  return 0;
}

void InstallLibbpfPrint() { libbpf_set_print(CapturePrint); }

std::vector<LibbpfMessage> TakeLibbpfRecords() {
  std::vector<LibbpfMessage> out;
  out.swap(libbpf_messages);
  libbpf_bytes = 0;
  return out;
}

std::string TakeLibbpfMessages() {
  std::string out;
  for (auto& m : TakeLibbpfRecords()) {
    if (m.level == LIBBPF_DEBUG) continue;
    out += m.text;
  }
  return out;
}

Napi::Array LibbpfRecordsToJs(Napi::Env env, const std::vector<LibbpfMessage>& records) {
  Napi::Array out = Napi::Array::New(env, records.size());
  for (size_t i = 0; i < records.size(); i++) {
    Napi::Object m = Napi::Object::New(env);
    const LibbpfMessage& r = records[i];
    m.Set("level", Napi::String::New(env, r.level == LIBBPF_WARN ? "warn" : r.level == LIBBPF_INFO ? "info" : "debug"));
    std::string text = r.text;
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    m.Set("message", Napi::String::New(env, text));
    out.Set(i, m);
  }
  return out;
}

// setLibbpfLogLevel("warn" | "info" | "debug"): the most verbose level captured from now on.
static Napi::Value SetLibbpfLogLevel(const Napi::CallbackInfo& info) {
  std::string level = StrArg(info, 0, "level");
  if (level == "warn") capture_level = LIBBPF_WARN;
  else if (level == "info") capture_level = LIBBPF_INFO;
  else if (level == "debug") capture_level = LIBBPF_DEBUG;
  else throw Napi::TypeError::New(info.Env(), "setLibbpfLogLevel: level must be warn, info or debug, not " + level);
  return info.Env().Undefined();
}

void RegisterErrors(Napi::Env env, Napi::Object exports) {
  exports.Set("setLibbpfLogLevel", Napi::Function::New(env, SetLibbpfLogLevel));
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
