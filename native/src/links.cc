// Attaching programs to hooks as BPF links (XDP, tcx, cgroup, raw tracepoint, tracing, netfilter,
// netns, sockmap), updating a link's program atomically, and detaching. (Links on perf events:
// perf_links.cc.)
#include "common.h"
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/membarrier.h>
#include <cerrno>
#include <cstring>

// The link_create part of union bpf_attr, laid out as in kernel 6.6+ (tcx fields), which
// Debian's 6.1 headers and libbpf 1.1 do not know.
struct LinkCreateTcxAttr {
  uint32_t prog_fd;
  uint32_t target_ifindex;
  uint32_t attach_type;
  uint32_t flags;
  uint32_t relative;  // relative_fd or relative_id
  uint32_t pad;
  uint64_t expected_revision;
  uint8_t rest[128 - 32];
};

static Napi::Object LinkResult(Napi::Env env, int fd, int ifindex) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("fd", fd);
  o.Set("ifindex", ifindex);
  return o;
}

// attachXdp(progFd, ifname, netns, flags): { fd, ifindex }. flags are XDP_FLAGS_* (mode).
static Napi::Value AttachXdp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int prog = FdArg(info, 0, "progFd");
  std::string ifname = StrArg(info, 1, "ifname");
  uint32_t flags = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().Uint32Value() : 0;
  std::string ctx = "attach xdp " + ifname;
  NetnsGuard guard(env, OptArg(info, 2), ctx);
  if (!guard.Describe().empty()) ctx += " in " + guard.Describe();
  int ifindex = ResolveIfindex(env, ifname, ctx);
  LIBBPF_OPTS(bpf_link_create_opts, lo);
  lo.flags = flags;
  int fd = bpf_link_create(prog, ifindex, BPF_XDP, &lo);
  if (fd < 0) ThrowErrno(env, LibbpfErr(fd), "BPF_LINK_CREATE", ctx);
  return LinkResult(env, fd, ifindex);
}

// attachTcx(progFd, ifname, netns, direction "ingress"|"egress", { before?, after?: fd, link? }):
// raw bpf(2), since libbpf 1.1 has no tcx API.
static Napi::Value AttachTcx(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int prog = FdArg(info, 0, "progFd");
  std::string ifname = StrArg(info, 1, "ifname");
  std::string dir = StrArg(info, 3, "direction");
  if (dir != "ingress" && dir != "egress") throw Napi::TypeError::New(env, "direction must be ingress or egress");
  std::string ctx = "attach tcx " + dir + " " + ifname;
  NetnsGuard guard(env, OptArg(info, 2), ctx);
  if (!guard.Describe().empty()) ctx += " in " + guard.Describe();
  int ifindex = ResolveIfindex(env, ifname, ctx);
  LinkCreateTcxAttr attr;
  memset(&attr, 0, sizeof(attr));
  attr.prog_fd = prog;
  attr.target_ifindex = ifindex;
  attr.attach_type = dir == "ingress" ? kAttachTcxIngress : kAttachTcxEgress;
  if (info.Length() > 4 && info[4].IsObject()) {
    Napi::Object o = info[4].As<Napi::Object>();
    // BPF_F_BEFORE / BPF_F_AFTER relative to another program's fd, or with link: true to a
    // link's fd (BPF_F_LINK), which keeps its place whatever program it is updated to run.
    if (o.Get("before").IsNumber()) { attr.flags |= 1u << 3; attr.relative = o.Get("before").As<Napi::Number>().Uint32Value(); }
    if (o.Get("after").IsNumber()) { attr.flags |= 1u << 4; attr.relative = o.Get("after").As<Napi::Number>().Uint32Value(); }
    if (o.Get("link").ToBoolean().Value()) attr.flags |= 1u << 13;
  }
  long fd = syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
  if (fd < 0) ThrowErrno(env, errno, "BPF_LINK_CREATE", ctx);
  fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
  return LinkResult(env, static_cast<int>(fd), ifindex);
}

// attachCgroup(progFd, cgroupPath, attachType): fd.
static Napi::Value AttachCgroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int prog = FdArg(info, 0, "progFd");
  std::string path = StrArg(info, 1, "cgroupPath");
  uint32_t type = static_cast<uint32_t>(IntArg(info, 2, "attachType"));
  std::string ctx = "attach cgroup " + path + " (attach type " + std::to_string(type) + ")";
  ScopedFd cg(OpenCgroup(env, path, ctx));
  int fd = bpf_link_create(prog, cg.get(), static_cast<bpf_attach_type>(type), nullptr);
  if (fd < 0) ThrowErrno(env, LibbpfErr(fd), "BPF_LINK_CREATE", ctx);
  return Napi::Number::New(env, fd);
}

// attachRawTracepoint(progFd, name): fd.
static Napi::Value AttachRawTracepoint(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int prog = FdArg(info, 0, "progFd");
  std::string name = StrArg(info, 1, "name");
  int fd = bpf_raw_tracepoint_open(name.c_str(), prog);
  if (fd < 0) ThrowErrno(env, LibbpfErr(fd), "BPF_RAW_TRACEPOINT_OPEN", "attach raw tracepoint " + name);
  return Napi::Number::New(env, fd);
}

// attachTracing(progFd, attachType): fentry/fexit/tp_btf links (the target is in the program).
static Napi::Value AttachTracing(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int prog = FdArg(info, 0, "progFd");
  uint32_t type = static_cast<uint32_t>(IntArg(info, 1, "attachType"));
  int fd = bpf_link_create(prog, 0, static_cast<bpf_attach_type>(type), nullptr);
  if (fd < 0) ThrowErrno(env, LibbpfErr(fd), "BPF_LINK_CREATE", "attach tracing program (attach type " + std::to_string(type) + ")");
  return Napi::Number::New(env, fd);
}

// The link_create part of union bpf_attr for netfilter links (kernel 6.4+), which Debian's
// headers and libbpf 1.1 do not know.
struct LinkCreateNetfilterAttr {
  uint32_t prog_fd;
  uint32_t target_fd;
  uint32_t attach_type;
  uint32_t flags;
  uint32_t pf;
  uint32_t hooknum;
  int32_t priority;
  uint32_t nf_flags;
  uint8_t rest[128 - 32];
};
static constexpr uint32_t kAttachNetfilter = 45;

// attachNetfilter(progFd, netns, pf, hooknum, priority, defrag): fd. The hook is in the
// namespace the link is made from.
static Napi::Value AttachNetfilter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int prog = FdArg(info, 0, "progFd");
  uint32_t pf = static_cast<uint32_t>(IntArg(info, 2, "pf"));
  uint32_t hooknum = static_cast<uint32_t>(IntArg(info, 3, "hooknum"));
  int32_t priority = static_cast<int32_t>(IntArg(info, 4, "priority"));
  bool defrag = info.Length() > 5 && info[5].ToBoolean().Value();
  std::string ctx = "attach netfilter pf " + std::to_string(pf) + " hook " + std::to_string(hooknum) + " priority " + std::to_string(priority);
  NetnsGuard guard(env, OptArg(info, 1), ctx);
  if (!guard.Describe().empty()) ctx += " in " + guard.Describe();
  LinkCreateNetfilterAttr attr;
  memset(&attr, 0, sizeof(attr));
  attr.prog_fd = prog;
  attr.attach_type = kAttachNetfilter;
  attr.pf = pf;
  attr.hooknum = hooknum;
  attr.priority = priority;
  attr.nf_flags = defrag ? 1u /* BPF_F_NETFILTER_IP_DEFRAG */ : 0;
  long fd = syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
  if (fd < 0) ThrowErrno(env, errno, "BPF_LINK_CREATE", ctx);
  fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
  return Napi::Number::New(env, static_cast<double>(fd));
}

// attachNetns(progFd, netns, attachType): fd. A link on a network namespace (sk_lookup,
// flow_dissector), made from inside it on its own /proc/thread-self/ns/net.
static Napi::Value AttachNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int prog = FdArg(info, 0, "progFd");
  uint32_t type = static_cast<uint32_t>(IntArg(info, 2, "attachType"));
  std::string ctx = "attach netns (attach type " + std::to_string(type) + ")";
  NetnsGuard guard(env, OptArg(info, 1), ctx);
  if (!guard.Describe().empty()) ctx += " in " + guard.Describe();
  ScopedFd ns(OpenThreadNetns(env, ctx));
  int fd = bpf_link_create(prog, ns.get(), static_cast<bpf_attach_type>(type), nullptr);
  if (fd < 0) ThrowErrno(env, LibbpfErr(fd), "BPF_LINK_CREATE", ctx);
  return Napi::Number::New(env, fd);
}

// attachMap(progFd, mapFd, attachType): fd. A sockmap/sockhash link (sk_msg, sk_skb verdicts and
// parsers; kernel 6.10+).
static Napi::Value AttachMap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int prog = FdArg(info, 0, "progFd");
  int map = FdArg(info, 1, "mapFd");
  uint32_t type = static_cast<uint32_t>(IntArg(info, 2, "attachType"));
  int fd = bpf_link_create(prog, map, static_cast<bpf_attach_type>(type), nullptr);
  if (fd < 0) ThrowErrno(env, LibbpfErr(fd), "BPF_LINK_CREATE", "attach to map fd " + std::to_string(map) + " (attach type " + std::to_string(type) + ")");
  return Napi::Number::New(env, fd);
}

// linkUpdate(linkFd, newProgFd, expectedOldProgFd = -1): BPF_LINK_UPDATE; with an expected old
// program it is a compare-and-swap (BPF_F_REPLACE) that fails with EPERM if someone else swapped.
static Napi::Value LinkUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int link = FdArg(info, 0, "linkFd");
  int prog = FdArg(info, 1, "progFd");
  int old = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : -1;
  LIBBPF_OPTS(bpf_link_update_opts, uo);
  if (old >= 0) {
    uo.flags = BPF_F_REPLACE;
    uo.old_prog_fd = old;
  }
  int ret = bpf_link_update(link, prog, &uo);
  if (ret) ThrowErrno(env, LibbpfErr(ret), "BPF_LINK_UPDATE", "update link fd " + std::to_string(link));
  return env.Undefined();
}

static Napi::Value LinkDetach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int link = FdArg(info, 0, "linkFd");
  int ret = bpf_link_detach(link);
  if (ret) ThrowErrno(env, LibbpfErr(ret), "BPF_LINK_DETACH", "detach link fd " + std::to_string(link));
  return env.Undefined();
}

// rcuGracePeriod(): returns once every CPU has passed an RCU grace period (membarrier's global
// command waits for one). BPF programs run inside RCU read sections, so after a link update and
// this call no CPU still runs the program the link ran before.
static Napi::Value RcuGracePeriod(const Napi::CallbackInfo& info) {
  if (syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) != 0) ThrowErrno(info.Env(), errno, "membarrier", "wait for an RCU grace period");
  return info.Env().Undefined();
}

void RegisterLinks(Napi::Env env, Napi::Object exports) {
  exports.Set("attachXdp", Napi::Function::New(env, AttachXdp));
  exports.Set("attachTcx", Napi::Function::New(env, AttachTcx));
  exports.Set("attachCgroup", Napi::Function::New(env, AttachCgroup));
  exports.Set("attachRawTracepoint", Napi::Function::New(env, AttachRawTracepoint));
  exports.Set("attachTracing", Napi::Function::New(env, AttachTracing));
  exports.Set("attachNetfilter", Napi::Function::New(env, AttachNetfilter));
  exports.Set("attachNetns", Napi::Function::New(env, AttachNetns));
  exports.Set("attachMap", Napi::Function::New(env, AttachMap));
  exports.Set("linkUpdate", Napi::Function::New(env, LinkUpdate));
  exports.Set("linkDetach", Napi::Function::New(env, LinkDetach));
  exports.Set("rcuGracePeriod", Napi::Function::New(env, RcuGracePeriod));
}
