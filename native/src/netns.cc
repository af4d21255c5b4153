// Network-namespace switching on the calling thread (setns is per thread, so the JS thread
// can step into a namespace for one call and back), and private namespaces for probes.
#include "common.h"
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

NetnsGuard::NetnsGuard(Napi::Env env, const Napi::Value& netns, const std::string& context) {
  if (netns.IsUndefined() || netns.IsNull()) return;
  int target = -1;
  bool owned = false;
  if (netns.IsNumber()) {
    target = netns.As<Napi::Number>().Int32Value();
    describe_ = "netns fd " + std::to_string(target);
  } else if (netns.IsString()) {
    std::string path = netns.As<Napi::String>().Utf8Value();
    if (path.find('/') == std::string::npos) path = "/var/run/netns/" + path;
    describe_ = "netns " + path.substr(path.rfind('/') + 1);
    target = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (target < 0) ThrowErrno(env, errno, "open", context + " in " + describe_);
    owned = true;
  } else {
    throw Napi::TypeError::New(env, "netns must be a path, a name, an fd or null");
  }
  orig_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (orig_ < 0) {
    int err = errno;
    if (owned) close(target);
    ThrowErrno(env, err, "open", context + ": /proc/thread-self/ns/net");
  }
  if (setns(target, CLONE_NEWNET) != 0) {
    int err = errno;
    if (owned) close(target);
    close(orig_);
    orig_ = -1;
    // Say why, where it happens for every caller: EPERM here is a missing privilege, not a missing interface.
    ThrowErrno(env, err, "setns", context + " in " + describe_ + (err == EPERM ? " (entering a network namespace needs CAP_SYS_ADMIN)" : ""));
  }
  if (owned) close(target);
}

NetnsGuard::~NetnsGuard() {
  if (orig_ < 0) return;
  // Returning to the original namespace cannot fail for a namespace we came from; if it ever
  // did, this thread would go on making calls in the wrong namespace: stop the process loudly.
  if (setns(orig_, CLONE_NEWNET) != 0) {
    fprintf(stderr, "bpfops: fatal: setns back to the original network namespace failed (errno %d)\n", errno);
    abort();
  }
  close(orig_);
}

int ResolveIfindex(Napi::Env env, const std::string& ifname, const std::string& context) {
  unsigned idx = if_nametoindex(ifname.c_str());
  if (idx == 0) ThrowErrno(env, errno == 0 ? ENODEV : errno, "if_nametoindex", context);
  return static_cast<int>(idx);
}

// privateNetns(): a new, empty network namespace (only `lo`, down) returned as an fd, made by
// unsharing on this thread and stepping straight back. Used by feature probes that need a device.
static Napi::Value PrivateNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (orig < 0) ThrowErrno(env, errno, "open", "private netns: /proc/thread-self/ns/net");
  if (unshare(CLONE_NEWNET) != 0) {
    int err = errno;
    close(orig);
    ThrowErrno(env, err, "unshare", "private netns");
  }
  int fresh = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  int err = errno;
  setns(orig, CLONE_NEWNET);
  close(orig);
  if (fresh < 0) ThrowErrno(env, err, "open", "private netns");
  return Napi::Number::New(env, fresh);
}

// ifindex(name, netns?)
static Napi::Value Ifindex(const Napi::CallbackInfo& info) {
  std::string ifname = StrArg(info, 0, "ifname");
  std::string ctx = "ifindex " + ifname;
  NetnsGuard guard(info.Env(), OptArg(info, 1), ctx);
  if (!guard.Describe().empty()) ctx += " in " + guard.Describe();
  return Napi::Number::New(info.Env(), ResolveIfindex(info.Env(), ifname, ctx));
}

// interfaces(netns?): names of the network interfaces in a namespace.
static Napi::Value Interfaces(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NetnsGuard guard(env, OptArg(info, 0), "list interfaces");
  struct if_nameindex* list = if_nameindex();
  if (!list) ThrowErrno(env, errno, "if_nameindex", "list interfaces" + (guard.Describe().empty() ? "" : " in " + guard.Describe()));
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  for (struct if_nameindex* p = list; p->if_index != 0; p++) out.Set(n++, Napi::String::New(env, p->if_name));
  if_freenameindex(list);
  return out;
}

int OpenCgroup(Napi::Env env, const std::string& path, const std::string& context) {
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) ThrowErrno(env, errno, "open", context);
  return fd;
}

int OpenThreadNetns(Napi::Env env, const std::string& context) {
  int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (fd < 0) ThrowErrno(env, errno, "open", context + ": /proc/thread-self/ns/net");
  return fd;
}

void RegisterNetns(Napi::Env env, Napi::Object exports) {
  exports.Set("privateNetns", Napi::Function::New(env, PrivateNetns));
  exports.Set("ifindex", Napi::Function::New(env, Ifindex));
  exports.Set("interfaces", Napi::Function::New(env, Interfaces));
}
