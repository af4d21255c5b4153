// Small kernel primitives for feature probes and tests: load a raw instruction buffer, run a
// program on test input (BPF_PROG_TEST_RUN), enable run-time stats, find vmlinux BTF ids.
#include "common.h"
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <cstring>
#include <vector>

// loadRawProgram(type, insns, { expectedAttachType?, attachBtfId?, license?, name? }): fd; on
// rejection the error carries verifierLog.
static Napi::Value LoadRawProgram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto type = static_cast<bpf_prog_type>(IntArg(info, 0, "type"));
  auto insns = BufArg(info, 1, "insns");
  LIBBPF_OPTS(bpf_prog_load_opts, po);
  std::string license = "GPL", name = "bpfops_probe";
  if (info.Length() > 2 && info[2].IsObject()) {
    Napi::Object o = info[2].As<Napi::Object>();
    if (o.Get("expectedAttachType").IsNumber()) po.expected_attach_type = static_cast<bpf_attach_type>(o.Get("expectedAttachType").As<Napi::Number>().Uint32Value());
    if (o.Get("attachBtfId").IsNumber()) po.attach_btf_id = o.Get("attachBtfId").As<Napi::Number>().Uint32Value();
    if (o.Get("license").IsString()) license = o.Get("license").As<Napi::String>().Utf8Value();
    if (o.Get("name").IsString()) name = o.Get("name").As<Napi::String>().Utf8Value();
  }
  std::vector<char> log(64 * 1024);
  po.log_buf = log.data();
  po.log_size = log.size();
  po.log_level = 1;
  int fd = bpf_prog_load(type, name.c_str(), license.c_str(), reinterpret_cast<const bpf_insn*>(insns.Data()),
                         insns.Length() / sizeof(bpf_insn), &po);
  if (fd < 0) {
    Napi::Error e = ErrnoError(env, LibbpfErr(fd), "BPF_PROG_LOAD", "load program " + name);
    e.Set("verifierLog", Napi::String::New(env, log.data()));
    throw e;
  }
  return Napi::Number::New(env, fd);
}

// testRun(progFd, data, repeat = 1): { retval, durationNs, data } via BPF_PROG_TEST_RUN.
static Napi::Value TestRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "progFd");
  auto data = BufArg(info, 1, "data");
  int repeat = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : 1;
  std::vector<uint8_t> out(data.Length() + 512);
  LIBBPF_OPTS(bpf_test_run_opts, to);
  to.data_in = data.Data();
  to.data_size_in = data.Length();
  to.data_out = out.data();
  to.data_size_out = out.size();
  to.repeat = repeat;
  int ret = bpf_prog_test_run_opts(fd, &to);
  if (ret) ThrowErrno(env, LibbpfErr(ret), "BPF_PROG_TEST_RUN", "test run program fd " + std::to_string(fd));
  Napi::Object o = Napi::Object::New(env);
  o.Set("retval", to.retval);
  o.Set("durationNs", to.duration);
  o.Set("data", Napi::Buffer<uint8_t>::Copy(env, out.data(), std::min<size_t>(to.data_size_out, out.size())));
  return o;
}

// enableStats(): an fd that keeps BPF run-time stats (run_cnt, run_time_ns) on while open.
static Napi::Value EnableStats(const Napi::CallbackInfo& info) {
  int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
  if (fd < 0) ThrowErrno(info.Env(), LibbpfErr(fd), "BPF_ENABLE_STATS", "enable bpf run-time stats");
  return Napi::Number::New(info.Env(), fd);
}

// vmlinuxBtfId(name, kind = "func"): the BTF type id of a kernel function or struct, or -1.
static Napi::Value VmlinuxBtfId(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = StrArg(info, 0, "name");
  std::string kind = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "func";
  btf* b = btf__load_vmlinux_btf();
  if (!b) ThrowErrno(env, errno ? errno : ENOENT, "btf__load_vmlinux_btf", "load vmlinux BTF");
  int id = btf__find_by_name_kind(b, name.c_str(), kind == "struct" ? BTF_KIND_STRUCT : BTF_KIND_FUNC);
  btf__free(b);
  return Napi::Number::New(env, id < 0 ? -1 : id);
}

// libbpfVersion(): the version of the libbpf this addon runs on, "major.minor".
static Napi::Value LibbpfVersion(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), std::to_string(libbpf_major_version()) + "." + std::to_string(libbpf_minor_version()));
}

void RegisterProbes(Napi::Env env, Napi::Object exports) {
  exports.Set("libbpfVersion", Napi::Function::New(env, LibbpfVersion));
  exports.Set("loadRawProgram", Napi::Function::New(env, LoadRawProgram));
  exports.Set("testRun", Napi::Function::New(env, TestRun));
  exports.Set("enableStats", Napi::Function::New(env, EnableStats));
  exports.Set("vmlinuxBtfId", Napi::Function::New(env, VmlinuxBtfId));
}
