// mapAddValues(mapFd, keys, deltas, count): adds u64 deltas to map values inside the kernel, so
// that no increment the datapath makes meanwhile is lost (a read-modify-write from user space
// would overwrite them). A tiny raw_tp program, bound to the map, does one atomic add per u64
// lane; for per-CPU maps it runs once on each CPU, from this thread pinned to that CPU, so the
// datapath (softirq) can interrupt it between instructions but never inside the add.
#include "common.h"
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <sched.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <vector>

namespace {

constexpr int kMaxArgs = 12;  // MAX_BPF_FUNC_ARGS: a raw_tp context of u64 arguments

bpf_insn Insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i = {};
  i.code = code;
  i.dst_reg = dst;
  i.src_reg = src;
  i.off = off;
  i.imm = imm;
  return i;
}

// ctx: [0] the key (little-endian, at most 8 bytes), [1..lanes] the delta of each u64 lane.
std::vector<bpf_insn> AddProgram(int mapFd, uint32_t lanes) {
  std::vector<bpf_insn> p;
  p.push_back(Insn(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_6, BPF_REG_1, 0, 0));      // r6 = ctx
  p.push_back(Insn(BPF_LDX | BPF_MEM | BPF_DW, BPF_REG_2, BPF_REG_6, 0, 0));       // r2 = ctx[0]
  p.push_back(Insn(BPF_STX | BPF_MEM | BPF_DW, BPF_REG_10, BPF_REG_2, -8, 0));     // *(fp-8) = key
  p.push_back(Insn(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0));     // r2 = fp
  p.push_back(Insn(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -8));             // r2 -= 8
  p.push_back(Insn(BPF_LD | BPF_IMM | BPF_DW, BPF_REG_1, BPF_PSEUDO_MAP_FD, 0, mapFd));  // r1 = map
  p.push_back(Insn(0, 0, 0, 0, 0));
  p.push_back(Insn(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem));
  p.push_back(Insn(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_0, 0, static_cast<int16_t>(2 * lanes), 0));  // absent: skip
  for (uint32_t l = 0; l < lanes; l++) {
    p.push_back(Insn(BPF_LDX | BPF_MEM | BPF_DW, BPF_REG_1, BPF_REG_6, static_cast<int16_t>(8 * (l + 1)), 0));
    p.push_back(Insn(BPF_STX | BPF_ATOMIC | BPF_DW, BPF_REG_0, BPF_REG_1, static_cast<int16_t>(8 * l), BPF_ADD));
  }
  p.push_back(Insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0));
  p.push_back(Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
  return p;
}

struct Affinity {
  cpu_set_t saved;
  bool ok;
  Affinity() { ok = sched_getaffinity(0, sizeof(saved), &saved) == 0; }
  ~Affinity() {
    if (ok) sched_setaffinity(0, sizeof(saved), &saved);
  }
};

}  // namespace

static Napi::Value MapAddValues(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "mapFd");
  auto keys = BufArg(info, 1, "keys");
  auto deltas = BufArg(info, 2, "deltas");
  uint32_t count = static_cast<uint32_t>(IntArg(info, 3, "count"));
  MapSizes mi = SizesOf(env, fd);
  bool percpu = mi.percpu;
  uint32_t lanes = mi.rawValue / 8;
  if (mi.key > 8 || mi.rawValue % 8 || lanes == 0 || lanes > kMaxArgs - 1) {
    throw Napi::RangeError::New(env, "mapAddValues: keys of at most 8 bytes and values of 1 to 11 u64 lanes, not key " + std::to_string(mi.key) + " value " + std::to_string(mi.rawValue));
  }
  int cpus = percpu ? libbpf_num_possible_cpus() : 1;
  size_t stride = static_cast<size_t>(lanes) * 8 * cpus;  // per entry: the deltas of every CPU
  if (keys.Length() != static_cast<size_t>(count) * mi.key || deltas.Length() != count * stride) {
    throw Napi::RangeError::New(env, "mapAddValues: keys and deltas do not match the count and the map's sizes");
  }
  std::vector<bpf_insn> prog = AddProgram(fd, lanes);
  LIBBPF_OPTS(bpf_prog_load_opts, lo);
  int pfd = bpf_prog_load(BPF_PROG_TYPE_RAW_TRACEPOINT, "bpfops_map_add", "GPL", prog.data(), prog.size(), &lo);
  if (pfd < 0) ThrowErrno(env, LibbpfErr(pfd), "BPF_PROG_LOAD", "load the map-add program for map fd " + std::to_string(fd));
  Affinity restore;
  int err = 0;
  std::string where;
  for (int cpu = 0; cpu < cpus && !err; cpu++) {
    if (percpu) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      // A possible CPU that is offline holds no datapath writes: nothing to add there.
      if (sched_setaffinity(0, sizeof(one), &one) != 0) continue;
    }
    for (uint32_t e = 0; e < count && !err; e++) {
      uint64_t ctx[kMaxArgs] = {};
      memcpy(&ctx[0], keys.Data() + static_cast<size_t>(e) * mi.key, mi.key);
      memcpy(&ctx[1], deltas.Data() + e * stride + static_cast<size_t>(cpu) * lanes * 8, lanes * 8);
      LIBBPF_OPTS(bpf_test_run_opts, to, .ctx_in = ctx, .ctx_size_in = sizeof(ctx));
      int r = bpf_prog_test_run_opts(pfd, &to);
      if (r) {
        err = LibbpfErr(r);
        where = "cpu " + std::to_string(cpu);
      }
    }
  }
  close(pfd);
  if (err) ThrowErrno(env, err, "BPF_PROG_TEST_RUN", "add to map fd " + std::to_string(fd) + " on " + where);
  return env.Undefined();
}

void RegisterMapAdd(Napi::Env env, Napi::Object exports) {
  exports.Set("mapAddValues", Napi::Function::New(env, MapAddValues));
}
