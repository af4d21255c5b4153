// The attach paths of kernels without BPF links for a hook: TC clsact + cls_bpf in
// direct-action mode through netlink (replaced in place: same handle and priority, NLM_F_REPLACE),
// netlink XDP (replaced with XDP_FLAGS_REPLACE and the expected old program), and cgroup
// BPF_PROG_ATTACH (replaced with BPF_F_REPLACE and the expected old program).
#include "common.h"
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <unistd.h>
#include <cerrno>

static bpf_tc_attach_point TcPoint(Napi::Env env, const std::string& dir) {
  if (dir == "ingress") return BPF_TC_INGRESS;
  if (dir == "egress") return BPF_TC_EGRESS;
  throw Napi::TypeError::New(env, "direction must be ingress or egress");
}

// Runs fn on a cls_bpf filter named by the arguments from `first` on (ifname, netns, direction,
// handle, priority), inside the filter's network namespace.
template <typename F>
static Napi::Value OnTcFilter(const Napi::CallbackInfo& info, size_t first, F fn) {
  Napi::Env env = info.Env();
  std::string ifname = StrArg(info, first, "ifname");
  std::string dir = StrArg(info, first + 2, "direction");
  uint32_t handle = static_cast<uint32_t>(IntArg(info, first + 3, "handle"));
  uint32_t priority = static_cast<uint32_t>(IntArg(info, first + 4, "priority"));
  std::string ctx = "tc " + dir + " " + ifname + " handle " + std::to_string(handle) + " priority " + std::to_string(priority);
  NetnsGuard guard(env, OptArg(info, first + 1), ctx);
  if (!guard.Describe().empty()) ctx += " in " + guard.Describe();
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ResolveIfindex(env, ifname, ctx), .attach_point = TcPoint(env, dir));
  LIBBPF_OPTS(bpf_tc_opts, opts, .handle = handle, .priority = priority);
  return fn(hook, opts, ctx);
}

// tcDetach(ifname, netns, direction, handle, priority): deletes the filter (the qdisc stays:
// other filters may use it).
static Napi::Value TcDetach(const Napi::CallbackInfo& info) {
  return OnTcFilter(info, 0, [&](bpf_tc_hook& hook, bpf_tc_opts& opts, const std::string& ctx) {
    int ret = bpf_tc_detach(&hook, &opts);
    if (ret) ThrowErrno(info.Env(), LibbpfErr(ret), "RTM_DELTFILTER", ctx);
    return info.Env().Undefined();
  });
}

// tcQuery(ifname, netns, direction, handle, priority): the program id of that filter, 0 if none.
static Napi::Value TcQuery(const Napi::CallbackInfo& info) {
  return OnTcFilter(info, 0, [&](bpf_tc_hook& hook, bpf_tc_opts& opts, const std::string& ctx) {
    int ret = bpf_tc_query(&hook, &opts);
    // No clsact qdisc (EINVAL) or no such filter (ENOENT): nothing attached there.
    if (ret == -ENOENT || ret == -EINVAL) return Napi::Number::New(info.Env(), 0);
    if (ret) ThrowErrno(info.Env(), LibbpfErr(ret), "RTM_GETTFILTER", ctx);
    return Napi::Number::New(info.Env(), opts.prog_id);
  });
}

// tcAttach(progFd, ifname, netns, direction, handle, priority, replace): progId. Makes the
// interface's clsact qdisc when it has none, then a cls_bpf filter (direct action) at handle and
// priority; with replace, the filter already there is replaced in one netlink request.
static Napi::Value TcAttach(const Napi::CallbackInfo& info) {
  int prog = FdArg(info, 0, "progFd");
  bool replace = info.Length() > 6 && info[6].ToBoolean().Value();
  return OnTcFilter(info, 1, [&](bpf_tc_hook& hook, bpf_tc_opts& opts, const std::string& ctx) {
    int ret = bpf_tc_hook_create(&hook);
    if (ret && ret != -EEXIST) ThrowErrno(info.Env(), LibbpfErr(ret), "RTM_NEWQDISC", ctx + ": clsact");
    opts.prog_fd = prog;
    opts.flags = replace ? static_cast<__u32>(BPF_TC_F_REPLACE) : 0u;
    ret = bpf_tc_attach(&hook, &opts);
    if (ret) ThrowErrno(info.Env(), LibbpfErr(ret), "RTM_NEWTFILTER", ctx);
    return Napi::Number::New(info.Env(), opts.prog_id);
  });
}

// xdpAttachNetlink(progFd, ifname, netns, flags, expectedOldFd = -1): with an expected old
// program, XDP_FLAGS_REPLACE: the kernel swaps only if that one is still attached (EEXIST
// otherwise); without, XDP_FLAGS_UPDATE_IF_NOEXIST: only onto an empty hook.
static Napi::Value XdpAttachNetlink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int prog = FdArg(info, 0, "progFd");
  std::string ifname = StrArg(info, 1, "ifname");
  uint32_t flags = static_cast<uint32_t>(IntArg(info, 3, "flags"));
  int old = info.Length() > 4 && info[4].IsNumber() ? info[4].As<Napi::Number>().Int32Value() : -1;
  std::string ctx = "netlink xdp " + ifname;
  NetnsGuard guard(env, OptArg(info, 2), ctx);
  if (!guard.Describe().empty()) ctx += " in " + guard.Describe();
  int ifindex = ResolveIfindex(env, ifname, ctx);
  LIBBPF_OPTS(bpf_xdp_attach_opts, opts);
  if (old >= 0) {
    flags |= XDP_FLAGS_REPLACE;
    opts.old_prog_fd = old;
  } else {
    flags |= XDP_FLAGS_UPDATE_IF_NOEXIST;
  }
  int ret = bpf_xdp_attach(ifindex, prog, flags, &opts);
  if (ret) ThrowErrno(env, LibbpfErr(ret), "RTM_SETLINK", ctx);
  return Napi::Number::New(env, ifindex);
}

// xdpDetachNetlink(ifname, netns, flags, expectedFd): detaches only the expected program.
static Napi::Value XdpDetachNetlink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname = StrArg(info, 0, "ifname");
  uint32_t flags = static_cast<uint32_t>(IntArg(info, 2, "flags"));
  int old = FdArg(info, 3, "expectedFd");
  std::string ctx = "netlink xdp detach " + ifname;
  NetnsGuard guard(env, OptArg(info, 1), ctx);
  if (!guard.Describe().empty()) ctx += " in " + guard.Describe();
  int ifindex = ResolveIfindex(env, ifname, ctx);
  LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = old);
  int ret = bpf_xdp_detach(ifindex, flags | XDP_FLAGS_REPLACE, &opts);
  if (ret) ThrowErrno(env, LibbpfErr(ret), "RTM_SETLINK", ctx);
  return env.Undefined();
}

// cgroupProgAttach(progFd, cgroupPath, attachType, replaceFd = -1): BPF_PROG_ATTACH with
// BPF_F_ALLOW_MULTI (programs stack, as links do); with replaceFd, BPF_F_REPLACE of that program.
static Napi::Value CgroupProgAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int prog = FdArg(info, 0, "progFd");
  std::string path = StrArg(info, 1, "cgroupPath");
  uint32_t type = static_cast<uint32_t>(IntArg(info, 2, "attachType"));
  int old = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().Int32Value() : -1;
  std::string ctx = "prog attach cgroup " + path + " (attach type " + std::to_string(type) + ")";
  ScopedFd cg(OpenCgroup(env, path, ctx));
  LIBBPF_OPTS(bpf_prog_attach_opts, opts, .flags = BPF_F_ALLOW_MULTI);
  if (old >= 0) {
    opts.flags |= BPF_F_REPLACE;
    opts.replace_prog_fd = old;
  }
  int ret = bpf_prog_attach_opts(prog, cg.get(), static_cast<bpf_attach_type>(type), &opts);
  if (ret) ThrowErrno(env, LibbpfErr(ret), "BPF_PROG_ATTACH", ctx);
  return env.Undefined();
}

// cgroupProgDetach(progFd, cgroupPath, attachType): BPF_PROG_DETACH of that program.
static Napi::Value CgroupProgDetach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int prog = FdArg(info, 0, "progFd");
  std::string path = StrArg(info, 1, "cgroupPath");
  uint32_t type = static_cast<uint32_t>(IntArg(info, 2, "attachType"));
  std::string ctx = "prog detach cgroup " + path + " (attach type " + std::to_string(type) + ")";
  ScopedFd cg(OpenCgroup(env, path, ctx));
  int ret = bpf_prog_detach2(prog, cg.get(), static_cast<bpf_attach_type>(type));
  if (ret) ThrowErrno(env, LibbpfErr(ret), "BPF_PROG_DETACH", ctx);
  return env.Undefined();
}

void RegisterLegacyAttach(Napi::Env env, Napi::Object exports) {
  exports.Set("tcAttach", Napi::Function::New(env, TcAttach));
  exports.Set("tcDetach", Napi::Function::New(env, TcDetach));
  exports.Set("tcQuery", Napi::Function::New(env, TcQuery));
  exports.Set("xdpAttachNetlink", Napi::Function::New(env, XdpAttachNetlink));
  exports.Set("xdpDetachNetlink", Napi::Function::New(env, XdpDetachNetlink));
  exports.Set("cgroupProgAttach", Napi::Function::New(env, CgroupProgAttach));
  exports.Set("cgroupProgDetach", Napi::Function::New(env, CgroupProgDetach));
}
