// Reading the live kernel: every program, map and link by id with its info, the info of one fd,
// and what is attached to one hook (XDP via netlink, tcx and cgroup via BPF_PROG_QUERY).
#include "common.h"
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <vector>

static std::string Hex(const uint8_t* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; i++) { s += d[p[i] >> 4]; s += d[p[i] & 15]; }
  return s;
}

static Napi::Object ProgInfoObject(Napi::Env env, int fd) {
  bpf_prog_info pi;
  memset(&pi, 0, sizeof(pi));
  uint32_t len = sizeof(pi);
  int ret = bpf_obj_get_info_by_fd(fd, &pi, &len);
  if (ret) ThrowErrno(env, LibbpfErr(ret), "BPF_OBJ_GET_INFO_BY_FD", "program info of fd " + std::to_string(fd));
  std::vector<uint32_t> mapIds(pi.nr_map_ids);
  if (pi.nr_map_ids) {
    uint32_t n = pi.nr_map_ids;
    memset(&pi, 0, sizeof(pi));
    pi.nr_map_ids = n;
    pi.map_ids = reinterpret_cast<uint64_t>(mapIds.data());
    len = sizeof(pi);
    ret = bpf_obj_get_info_by_fd(fd, &pi, &len);
    if (ret) ThrowErrno(env, LibbpfErr(ret), "BPF_OBJ_GET_INFO_BY_FD", "program map ids of fd " + std::to_string(fd));
    mapIds.resize(std::min<uint32_t>(n, pi.nr_map_ids));
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", pi.id);
  o.Set("type", pi.type);
  o.Set("name", std::string(pi.name, strnlen(pi.name, sizeof(pi.name))));
  o.Set("tag", Hex(pi.tag, sizeof(pi.tag)));
  Napi::Array ids = Napi::Array::New(env, mapIds.size());
  for (size_t i = 0; i < mapIds.size(); i++) ids.Set(i, mapIds[i]);
  o.Set("mapIds", ids);
  o.Set("btfId", pi.btf_id);
  o.Set("loadTimeNs", static_cast<double>(pi.load_time));  // ns since boot
  o.Set("createdByUid", pi.created_by_uid);
  o.Set("xlatedLen", pi.xlated_prog_len);
  o.Set("jitedLen", pi.jited_prog_len);
  o.Set("verifiedInstructions", pi.verified_insns);
  o.Set("runCount", static_cast<double>(pi.run_cnt));
  o.Set("runTimeNs", static_cast<double>(pi.run_time_ns));
  return o;
}

static Napi::Object MapInfoObject(Napi::Env env, int fd) {
  bpf_map_info mi;
  memset(&mi, 0, sizeof(mi));
  uint32_t len = sizeof(mi);
  int ret = bpf_obj_get_info_by_fd(fd, &mi, &len);
  if (ret) ThrowErrno(env, LibbpfErr(ret), "BPF_OBJ_GET_INFO_BY_FD", "map info of fd " + std::to_string(fd));
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", mi.id);
  o.Set("type", mi.type);
  o.Set("name", std::string(mi.name, strnlen(mi.name, sizeof(mi.name))));
  o.Set("keySize", mi.key_size);
  o.Set("valueSize", mi.value_size);
  o.Set("maxEntries", mi.max_entries);
  o.Set("flags", mi.map_flags);
  o.Set("btfId", mi.btf_id);
  o.Set("btfKeyTypeId", mi.btf_key_type_id);
  o.Set("btfValueTypeId", mi.btf_value_type_id);
  return o;
}

static Napi::Object LinkInfoObject(Napi::Env env, int fd) {
  // Read into a raw buffer: the union's tcx/netkit members are newer than our headers.
  alignas(8) uint8_t raw[256];
  memset(raw, 0, sizeof(raw));
  char tpName[128] = {0};
  bpf_link_info* li = reinterpret_cast<bpf_link_info*>(raw);
  li->raw_tracepoint.tp_name = reinterpret_cast<uint64_t>(tpName);
  li->raw_tracepoint.tp_name_len = sizeof(tpName);
  uint32_t len = sizeof(raw);
  // Only raw tracepoint links take a name buffer; the kernel ignores it for other types, but a
  // non-zero union must not be passed for them, so query the type first.
  bpf_link_info probe;
  memset(&probe, 0, sizeof(probe));
  uint32_t plen = sizeof(probe);
  int ret = bpf_obj_get_info_by_fd(fd, &probe, &plen);
  if (ret) ThrowErrno(env, LibbpfErr(ret), "BPF_OBJ_GET_INFO_BY_FD", "link info of fd " + std::to_string(fd));
  if (probe.type != BPF_LINK_TYPE_RAW_TRACEPOINT) memset(raw, 0, sizeof(raw));
  ret = bpf_obj_get_info_by_fd(fd, raw, &len);
  if (ret) ThrowErrno(env, LibbpfErr(ret), "BPF_OBJ_GET_INFO_BY_FD", "link info of fd " + std::to_string(fd));
  auto u32 = [&](size_t off) { uint32_t v; memcpy(&v, raw + off, 4); return v; };
  auto u64 = [&](size_t off) { uint64_t v; memcpy(&v, raw + off, 8); return v; };
  Napi::Object o = Napi::Object::New(env);
  uint32_t type = u32(0);
  o.Set("id", u32(4));
  o.Set("type", type);
  o.Set("progId", u32(8));
  // Union at offset 16 (8-aligned after type, id, prog_id).
  switch (type) {
    case BPF_LINK_TYPE_RAW_TRACEPOINT: o.Set("tracepoint", std::string(tpName)); break;
    case BPF_LINK_TYPE_TRACING: o.Set("attachType", u32(16)); o.Set("targetObjId", u32(20)); o.Set("targetBtfId", u32(24)); break;
    case BPF_LINK_TYPE_CGROUP: o.Set("cgroupId", static_cast<double>(u64(16))); o.Set("attachType", u32(24)); break;
    case BPF_LINK_TYPE_NETNS: o.Set("netnsIno", u32(16)); o.Set("attachType", u32(20)); break;
    case BPF_LINK_TYPE_XDP: o.Set("ifindex", u32(16)); o.Set("attachType", static_cast<uint32_t>(BPF_XDP)); break;
    case kLinkTypeTcx: case kLinkTypeNetkit: o.Set("ifindex", u32(16)); o.Set("attachType", u32(20)); break;
    default: break;
  }
  return o;
}

// Runs fn(fd) for the object with this id; null when it vanished between listing and opening.
template <typename Fn>
static Napi::Value WithFdById(Napi::Env env, int (*getFd)(uint32_t), uint32_t id, Fn fn) {
  int fd = getFd(id);
  if (fd < 0) {
    int err = LibbpfErr(fd);
    if (err == ENOENT) return env.Null();
    ThrowErrno(env, err, "BPF_*_GET_FD_BY_ID", "open object id " + std::to_string(id));
  }
  Napi::Value v;
  try { v = fn(fd); } catch (...) { close(fd); throw; }
  close(fd);
  return v;
}

static Napi::Value ListAll(Napi::Env env, int (*next)(uint32_t, uint32_t*), int (*getFd)(uint32_t),
                           Napi::Object (*infoOf)(Napi::Env, int)) {
  Napi::Array out = Napi::Array::New(env);
  uint32_t id = 0, i = 0;
  while (true) {
    int ret = next(id, &id);
    if (ret) {
      int err = LibbpfErr(ret);
      if (err == ENOENT) break;
      ThrowErrno(env, err, "BPF_*_GET_NEXT_ID", "enumerate objects");
    }
    Napi::Value v = WithFdById(env, getFd, id, [&](int fd) { return Napi::Value(infoOf(env, fd)); });
    if (!v.IsNull()) out.Set(i++, v);
  }
  return out;
}

static Napi::Value ListPrograms(const Napi::CallbackInfo& info) {
  return ListAll(info.Env(), bpf_prog_get_next_id, bpf_prog_get_fd_by_id, ProgInfoObject);
}
static Napi::Value ListMaps(const Napi::CallbackInfo& info) {
  return ListAll(info.Env(), bpf_map_get_next_id, bpf_map_get_fd_by_id, MapInfoObject);
}
static Napi::Value ListLinks(const Napi::CallbackInfo& info) {
  return ListAll(info.Env(), bpf_link_get_next_id, bpf_link_get_fd_by_id, LinkInfoObject);
}

// infoOfFd(kind, fd): program, map or link info of one fd.
static Napi::Value InfoOfFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string kind = StrArg(info, 0, "kind");
  int fd = FdArg(info, 1, "fd");
  if (kind == "prog") return ProgInfoObject(env, fd);
  if (kind == "map") return MapInfoObject(env, fd);
  if (kind == "link") return LinkInfoObject(env, fd);
  throw Napi::TypeError::New(env, "kind must be prog, map or link");
}

// fdById(kind, id): an owned fd for the object with this id.
static Napi::Value FdById(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string kind = StrArg(info, 0, "kind");
  uint32_t id = static_cast<uint32_t>(IntArg(info, 1, "id"));
  int fd = kind == "prog" ? bpf_prog_get_fd_by_id(id) : kind == "map" ? bpf_map_get_fd_by_id(id)
         : kind == "link" ? bpf_link_get_fd_by_id(id) : -EINVAL;
  if (fd < 0) ThrowErrno(env, LibbpfErr(fd), "BPF_*_GET_FD_BY_ID", "open " + kind + " id " + std::to_string(id));
  return Napi::Number::New(env, fd);
}

// queryXdp(ifname, netns): { ifindex, progId, mode, driverProgId, genericProgId, offloadProgId }.
static Napi::Value QueryXdp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname = StrArg(info, 0, "ifname");
  std::string ctx = "query xdp " + ifname;
  NetnsGuard guard(env, OptArg(info, 1), ctx);
  if (!guard.Describe().empty()) ctx += " in " + guard.Describe();
  int ifindex = ResolveIfindex(env, ifname, ctx);
  LIBBPF_OPTS(bpf_xdp_query_opts, qo);
  int ret = bpf_xdp_query(ifindex, 0, &qo);
  if (ret) ThrowErrno(env, LibbpfErr(ret), "netlink RTM_GETLINK", ctx);
  Napi::Object o = Napi::Object::New(env);
  o.Set("ifindex", ifindex);
  o.Set("progId", qo.prog_id);
  const char* modes[] = {"none", "driver", "generic", "offload", "multi"};
  o.Set("mode", qo.attach_mode <= 4 ? modes[qo.attach_mode] : "unknown");
  o.Set("driverProgId", qo.drv_prog_id);
  o.Set("genericProgId", qo.skb_prog_id);
  o.Set("offloadProgId", qo.hw_prog_id);
  return o;
}

// The BPF_PROG_QUERY part of union bpf_attr with the 6.6+ link fields.
struct ProgQueryAttr {
  uint32_t target;  // target_fd or target_ifindex
  uint32_t attach_type;
  uint32_t query_flags;
  uint32_t attach_flags;
  uint64_t prog_ids;
  uint32_t count;
  uint32_t pad;
  uint64_t prog_attach_flags;
  uint64_t link_ids;
  uint64_t link_attach_flags;
  uint64_t revision;
  uint8_t rest[128 - 64];
};

static Napi::Object RunProgQuery(Napi::Env env, uint32_t target, uint32_t attachType, const std::string& ctx) {
  std::vector<uint32_t> progs(64), links(64);
  ProgQueryAttr a;
  memset(&a, 0, sizeof(a));
  a.target = target;
  a.attach_type = attachType;
  a.prog_ids = reinterpret_cast<uint64_t>(progs.data());
  a.link_ids = reinterpret_cast<uint64_t>(links.data());
  a.count = progs.size();
  if (syscall(__NR_bpf, BPF_PROG_QUERY, &a, sizeof(a)) < 0) ThrowErrno(env, errno, "BPF_PROG_QUERY", ctx);
  uint32_t n = std::min<uint32_t>(a.count, progs.size());
  Napi::Array pa = Napi::Array::New(env, n), la = Napi::Array::New(env, n);
  for (uint32_t i = 0; i < n; i++) { pa.Set(i, progs[i]); la.Set(i, links[i]); }
  Napi::Object o = Napi::Object::New(env);
  o.Set("progIds", pa);
  o.Set("linkIds", la);  // 0 where a program is attached without a link
  o.Set("revision", static_cast<double>(a.revision));
  return o;
}

// queryTcx(ifname, netns, direction): { ifindex, progIds, linkIds, revision } in chain order.
static Napi::Value QueryTcx(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname = StrArg(info, 0, "ifname");
  std::string dir = StrArg(info, 2, "direction");
  std::string ctx = "query tcx " + dir + " " + ifname;
  NetnsGuard guard(env, OptArg(info, 1), ctx);
  if (!guard.Describe().empty()) ctx += " in " + guard.Describe();
  int ifindex = ResolveIfindex(env, ifname, ctx);
  Napi::Object o = RunProgQuery(env, ifindex, dir == "egress" ? kAttachTcxEgress : kAttachTcxIngress, ctx);
  o.Set("ifindex", ifindex);
  return o;
}

// queryCgroup(path, attachType): { progIds, linkIds, revision }.
static Napi::Value QueryCgroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = StrArg(info, 0, "cgroupPath");
  uint32_t type = static_cast<uint32_t>(IntArg(info, 1, "attachType"));
  std::string ctx = "query cgroup " + path;
  ScopedFd cg(OpenCgroup(env, path, ctx));
  return RunProgQuery(env, cg.get(), type, ctx);
}

// queryNetns(netns, attachType): { progIds, linkIds, revision } of a network namespace's hook
// (sk_lookup, flow_dissector), asked from inside it.
static Napi::Value QueryNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t type = static_cast<uint32_t>(IntArg(info, 1, "attachType"));
  std::string ctx = "query netns (attach type " + std::to_string(type) + ")";
  NetnsGuard guard(env, OptArg(info, 0), ctx);
  if (!guard.Describe().empty()) ctx += " in " + guard.Describe();
  ScopedFd ns(OpenThreadNetns(env, ctx));
  return RunProgQuery(env, ns.get(), type, ctx);
}

// queryMap(mapFd, attachType): { progIds, linkIds, revision } of a sockmap's verdict or parser.
static Napi::Value QueryMap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "mapFd");
  uint32_t type = static_cast<uint32_t>(IntArg(info, 1, "attachType"));
  return RunProgQuery(env, fd, type, "query map fd " + std::to_string(fd) + " (attach type " + std::to_string(type) + ")");
}

void RegisterObserve(Napi::Env env, Napi::Object exports) {
  exports.Set("queryNetns", Napi::Function::New(env, QueryNetns));
  exports.Set("queryMap", Napi::Function::New(env, QueryMap));
  exports.Set("listPrograms", Napi::Function::New(env, ListPrograms));
  exports.Set("listMaps", Napi::Function::New(env, ListMaps));
  exports.Set("listLinks", Napi::Function::New(env, ListLinks));
  exports.Set("infoOfFd", Napi::Function::New(env, InfoOfFd));
  exports.Set("fdById", Napi::Function::New(env, FdById));
  exports.Set("queryXdp", Napi::Function::New(env, QueryXdp));
  exports.Set("queryTcx", Napi::Function::New(env, QueryTcx));
  exports.Set("queryCgroup", Napi::Function::New(env, QueryCgroup));
}
