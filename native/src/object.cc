// BpfObject: an ELF object opened with libbpf, configured before load (globals, program types,
// map sizes, map reuse and pin paths) and loaded off the main thread with per-program verifier logs.
#include "common.h"
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

namespace {

struct ProgramLog {
  std::string name;
  char* buf = nullptr;
  size_t size = 0;
};

class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit BpfObject(const Napi::CallbackInfo& info);
  ~BpfObject() override { Release(); }

  bpf_object* obj() const { return obj_; }
  const std::string& label() const { return label_; }
  std::vector<ProgramLog> logs;
  // What libbpf printed while opening and loading, until JS takes it (libbpfMessages()).
  std::vector<LibbpfMessage> messages;
  bool loading = false;
  bool loaded = false;
  void Release() {
    for (auto& l : logs) free(l.buf);
    logs.clear();
    if (obj_) bpf_object__close(obj_);
    obj_ = nullptr;
  }

 private:
  Napi::Value Programs(const Napi::CallbackInfo& info);
  Napi::Value Maps(const Napi::CallbackInfo& info);
  Napi::Value Globals(const Napi::CallbackInfo& info);
  Napi::Value SetGlobal(const Napi::CallbackInfo& info);
  Napi::Value SetProgramType(const Napi::CallbackInfo& info);
  Napi::Value SetAutoload(const Napi::CallbackInfo& info);
  Napi::Value SetMaxEntries(const Napi::CallbackInfo& info);
  Napi::Value ReuseMap(const Napi::CallbackInfo& info);
  Napi::Value SetMapPinPath(const Napi::CallbackInfo& info);
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value ProgramFd(const Napi::CallbackInfo& info);
  Napi::Value MapFd(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value LibbpfMessages(const Napi::CallbackInfo& info);

  bpf_program* FindProgram(Napi::Env env, const std::string& name);
  bpf_map* FindMap(Napi::Env env, const std::string& name);
  void RequireOpen(Napi::Env env, bool beforeLoad);

  bpf_object* obj_ = nullptr;
  std::string label_;
};

// Loads the object on a libuv worker thread; the verifier can take milliseconds to seconds.
class LoadWorker : public Napi::AsyncWorker {
 public:
  LoadWorker(Napi::Env env, BpfObject* self, Napi::Object keepAlive, uint32_t logLevel, size_t logSize)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), self_(self),
        level_(logLevel), size_(logSize) {
    ref_ = Napi::Persistent(keepAlive);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    bpf_program* prog;
    TakeLibbpfMessages();
    bpf_object__for_each_program(prog, self_->obj()) {
      if (!bpf_program__autoload(prog)) continue;
      ProgramLog l;
      l.name = bpf_program__name(prog);
      // malloc'd and untouched pages cost nothing: the kernel writes only what it logs.
      l.buf = static_cast<char*>(malloc(size_));
      if (!l.buf) { err_ = ENOMEM; return; }
      l.buf[0] = 0;
      l.size = size_;
      bpf_program__set_log_buf(prog, l.buf, l.size);
      if (level_) bpf_program__set_log_level(prog, level_);
      self_->logs.push_back(l);
    }
    int ret = bpf_object__load(self_->obj());
    if (ret) {
      err_ = LibbpfErr(ret);
      messages_ = TakeLibbpfMessages();
    } else {
      records_ = TakeLibbpfRecords();
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    self_->loading = false;
    if (err_) {
      Napi::Error e = ErrnoError(env, err_, "BPF_PROG_LOAD", "load object " + self_->label());
      // A program whose log is non-empty after a failed load is the one the verifier rejected
      // (libbpf retries a failing program with log level 1; successful ones log nothing at level 0).
      for (auto& l : self_->logs) {
        if (l.buf && l.buf[0] && (level_ == 0 || bpf_program__fd(bpf_object__find_program_by_name(self_->obj(), l.name.c_str())) < 0)) {
          e.Set("program", Napi::String::New(env, l.name));
          e.Set("verifierLog", Napi::String::New(env, l.buf));
          e.Set("message", Napi::String::New(env, "load program " + l.name + " of " + self_->label() + ": verifier rejected it: " + strerror(err_)));
          break;
        }
      }
      e.Set("libbpfLog", Napi::String::New(env, messages_));
      self_->Release();
      deferred_.Reject(e.Value());
      return;
    }
    self_->loaded = true;
    self_->messages.insert(self_->messages.end(), records_.begin(), records_.end());
    Napi::Object logs = Napi::Object::New(env);
    for (auto& l : self_->logs) {
      logs.Set(l.name, Napi::String::New(env, l.buf ? l.buf : ""));
      free(l.buf);
      l.buf = nullptr;
    }
    self_->logs.clear();
    deferred_.Resolve(logs);
  }

 private:
  Napi::Promise::Deferred deferred_;
  BpfObject* self_;
  Napi::ObjectReference ref_;
  uint32_t level_;
  size_t size_;
  int err_ = 0;
  std::string messages_;
  std::vector<LibbpfMessage> records_;
};

Napi::Function BpfObject::Define(Napi::Env env) {
  return DefineClass(env, "BpfObject", {
      InstanceMethod("programs", &BpfObject::Programs),
      InstanceMethod("maps", &BpfObject::Maps),
      InstanceMethod("globals", &BpfObject::Globals),
      InstanceMethod("setGlobal", &BpfObject::SetGlobal),
      InstanceMethod("setProgramType", &BpfObject::SetProgramType),
      InstanceMethod("setAutoload", &BpfObject::SetAutoload),
      InstanceMethod("setMaxEntries", &BpfObject::SetMaxEntries),
      InstanceMethod("reuseMap", &BpfObject::ReuseMap),
      InstanceMethod("setMapPinPath", &BpfObject::SetMapPinPath),
      InstanceMethod("load", &BpfObject::Load),
      InstanceMethod("programFd", &BpfObject::ProgramFd),
      InstanceMethod("mapFd", &BpfObject::MapFd),
      InstanceMethod("close", &BpfObject::Close),
      InstanceMethod("libbpfMessages", &BpfObject::LibbpfMessages),
  });
}

// new BpfObject(pathOrBuffer, { pinRoot, name })
BpfObject::BpfObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfObject>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[1].IsObject()) throw Napi::TypeError::New(env, "BpfObject(source, { pinRoot }) needs options");
  Napi::Object opts = info[1].As<Napi::Object>();
  if (!opts.Get("pinRoot").IsString()) throw Napi::TypeError::New(env, "BpfObject: pinRoot must be a string");
  std::string pinRoot = opts.Get("pinRoot").As<Napi::String>().Utf8Value();
  std::string name = opts.Get("name").IsString() ? opts.Get("name").As<Napi::String>().Utf8Value() : "";
  LIBBPF_OPTS(bpf_object_open_opts, oo);
  oo.pin_root_path = pinRoot.c_str();
  if (!name.empty()) oo.object_name = name.c_str();
  TakeLibbpfMessages();
  if (info[0].IsString()) {
    std::string path = info[0].As<Napi::String>().Utf8Value();
    label_ = name.empty() ? path : name;
    obj_ = bpf_object__open_file(path.c_str(), &oo);
  } else if (info[0].IsBuffer()) {
    auto buf = info[0].As<Napi::Buffer<uint8_t>>();
    label_ = name.empty() ? "<buffer>" : name;
    obj_ = bpf_object__open_mem(buf.Data(), buf.Length(), &oo);
  } else {
    throw Napi::TypeError::New(env, "BpfObject: source must be a path or a Buffer");
  }
  if (!obj_) {
    int err = errno ? errno : EINVAL;
    Napi::Error e = ErrnoError(env, err, "bpf_object__open", "open object " + label_);
    e.Set("libbpfLog", Napi::String::New(env, TakeLibbpfMessages()));
    throw e;
  }
  messages = TakeLibbpfRecords();
}

// libbpfMessages(): what libbpf printed while opening and loading, taken (a second call returns
// only what came after the first).
Napi::Value BpfObject::LibbpfMessages(const Napi::CallbackInfo& info) {
  Napi::Array out = LibbpfRecordsToJs(info.Env(), messages);
  messages.clear();
  return out;
}

void BpfObject::RequireOpen(Napi::Env env, bool beforeLoad) {
  if (!obj_) throw Napi::Error::New(env, "object " + label_ + " is closed");
  if (loading) throw Napi::Error::New(env, "object " + label_ + " is loading");
  if (beforeLoad && loaded) throw Napi::Error::New(env, "object " + label_ + " is already loaded");
}

bpf_program* BpfObject::FindProgram(Napi::Env env, const std::string& name) {
  RequireOpen(env, false);
  bpf_program* p = bpf_object__find_program_by_name(obj_, name.c_str());
  if (!p) ThrowErrno(env, ENOENT, "bpf_object__find_program_by_name", "object " + label_ + ": no program " + name);
  return p;
}

bpf_map* BpfObject::FindMap(Napi::Env env, const std::string& name) {
  RequireOpen(env, false);
  bpf_map* m = bpf_object__find_map_by_name(obj_, name.c_str());
  if (!m) {
    // Internal maps are named "<obj>.rodata"; accept the section name (".rodata") too.
    bpf_map* it;
    bpf_object__for_each_map(it, obj_) {
      std::string n = bpf_map__name(it);
      if (bpf_map__is_internal(it) && n.size() >= name.size() && n.compare(n.size() - name.size(), name.size(), name) == 0) return it;
    }
    ThrowErrno(env, ENOENT, "bpf_object__find_map_by_name", "object " + label_ + ": no map " + name);
  }
  return m;
}

Napi::Value BpfObject::Programs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env, false);
  Napi::Array out = Napi::Array::New(env);
  bpf_program* p;
  uint32_t i = 0;
  bpf_object__for_each_program(p, obj_) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", bpf_program__name(p));
    o.Set("section", bpf_program__section_name(p));
    o.Set("type", static_cast<double>(bpf_program__type(p)));
    o.Set("expectedAttachType", static_cast<double>(bpf_program__expected_attach_type(p)));
    o.Set("autoload", bpf_program__autoload(p));
    o.Set("instructions", static_cast<double>(bpf_program__insn_cnt(p)));
    out.Set(i++, o);
  }
  return out;
}

Napi::Value BpfObject::Maps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env, false);
  Napi::Array out = Napi::Array::New(env);
  bpf_map* m;
  uint32_t i = 0;
  bpf_object__for_each_map(m, obj_) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", bpf_map__name(m));
    o.Set("type", static_cast<double>(bpf_map__type(m)));
    o.Set("keySize", static_cast<double>(bpf_map__key_size(m)));
    o.Set("valueSize", static_cast<double>(bpf_map__value_size(m)));
    o.Set("maxEntries", static_cast<double>(bpf_map__max_entries(m)));
    o.Set("flags", static_cast<double>(bpf_map__map_flags(m)));
    o.Set("internal", bpf_map__is_internal(m));
    const char* pin = bpf_map__pin_path(m);
    o.Set("pinPath", pin ? Napi::Value(Napi::String::New(env, pin)) : env.Null());
    out.Set(i++, o);
  }
  return out;
}

// globals(section = ".rodata"): [{ name, offset, size }] from the object's BTF datasec.
Napi::Value BpfObject::Globals(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env, false);
  std::string sec = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : ".rodata";
  Napi::Array out = Napi::Array::New(env);
  btf* b = bpf_object__btf(obj_);
  if (!b) return out;
  int id = btf__find_by_name_kind(b, sec.c_str(), BTF_KIND_DATASEC);
  if (id < 0) return out;
  const btf_type* t = btf__type_by_id(b, id);
  const btf_var_secinfo* vs = btf_var_secinfos(t);
  for (uint32_t i = 0; i < btf_vlen(t); i++, vs++) {
    const btf_type* var = btf__type_by_id(b, vs->type);
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", btf__name_by_offset(b, var->name_off));
    o.Set("offset", static_cast<double>(vs->offset));
    o.Set("size", static_cast<double>(vs->size));
    out.Set(i, o);
  }
  return out;
}

// setGlobal(section, varName, value): writes a `const volatile` (or .data/.bss) variable's initial
// value, located by its BTF name; the value must have the variable's exact size.
Napi::Value BpfObject::SetGlobal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env, true);
  std::string sec = StrArg(info, 0, "section");
  std::string var = StrArg(info, 1, "variable");
  auto value = BufArg(info, 2, "value");
  std::string ctx = "set global " + var + " in " + sec + " of " + label_;
  btf* b = bpf_object__btf(obj_);
  int id = b ? btf__find_by_name_kind(b, sec.c_str(), BTF_KIND_DATASEC) : -1;
  if (id < 0) ThrowErrno(env, ENOENT, "btf__find_by_name_kind", ctx + ": object has no " + sec + " section");
  const btf_type* t = btf__type_by_id(b, id);
  const btf_var_secinfo* vs = btf_var_secinfos(t);
  for (uint32_t i = 0; i < btf_vlen(t); i++, vs++) {
    const btf_type* v = btf__type_by_id(b, vs->type);
    if (var != btf__name_by_offset(b, v->name_off)) continue;
    if (vs->size != value.Length())
      ThrowErrno(env, EINVAL, "setGlobal", ctx + ": variable has " + std::to_string(vs->size) + " bytes, value has " + std::to_string(value.Length()));
    bpf_map* m = FindMap(env, sec);
    size_t size = 0;
    const void* cur = bpf_map__initial_value(m, &size);
    if (!cur || vs->offset + vs->size > size) ThrowErrno(env, EINVAL, "bpf_map__initial_value", ctx);
    std::vector<uint8_t> data(static_cast<const uint8_t*>(cur), static_cast<const uint8_t*>(cur) + size);
    memcpy(data.data() + vs->offset, value.Data(), vs->size);
    int ret = bpf_map__set_initial_value(m, data.data(), size);
    if (ret) ThrowErrno(env, LibbpfErr(ret), "bpf_map__set_initial_value", ctx);
    return env.Undefined();
  }
  ThrowErrno(env, ENOENT, "setGlobal", ctx + ": no such variable");
}

Napi::Value BpfObject::SetProgramType(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env, true);
  std::string name = StrArg(info, 0, "program");
  bpf_program* p = FindProgram(env, name);
  int ret = bpf_program__set_type(p, static_cast<bpf_prog_type>(IntArg(info, 1, "type")));
  if (!ret && info.Length() > 2 && info[2].IsNumber())
    ret = bpf_program__set_expected_attach_type(p, static_cast<bpf_attach_type>(IntArg(info, 2, "expectedAttachType")));
  if (ret) ThrowErrno(env, LibbpfErr(ret), "bpf_program__set_type", "set type of program " + name + " in " + label_);
  return env.Undefined();
}

Napi::Value BpfObject::SetAutoload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env, true);
  std::string name = StrArg(info, 0, "program");
  int ret = bpf_program__set_autoload(FindProgram(env, name), info[1].ToBoolean().Value());
  if (ret) ThrowErrno(env, LibbpfErr(ret), "bpf_program__set_autoload", "set autoload of " + name);
  return env.Undefined();
}

Napi::Value BpfObject::SetMaxEntries(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env, true);
  std::string name = StrArg(info, 0, "map");
  int ret = bpf_map__set_max_entries(FindMap(env, name), static_cast<uint32_t>(IntArg(info, 1, "maxEntries")));
  if (ret) ThrowErrno(env, LibbpfErr(ret), "bpf_map__set_max_entries", "set max entries of map " + name + " in " + label_);
  return env.Undefined();
}

// reuseMap(name, fd): the object's map becomes an existing map (e.g. one opened from a pin);
// libbpf checks that type, key/value size and max entries agree.
Napi::Value BpfObject::ReuseMap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env, true);
  std::string name = StrArg(info, 0, "map");
  int ret = bpf_map__reuse_fd(FindMap(env, name), FdArg(info, 1, "fd"));
  if (ret) ThrowErrno(env, LibbpfErr(ret), "bpf_map__reuse_fd", "bind map " + name + " of " + label_ + " to an existing map");
  return env.Undefined();
}

// setMapPinPath(name, path|null): pin (or reuse the pin at) path on load; null unpins by name.
Napi::Value BpfObject::SetMapPinPath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env, true);
  std::string name = StrArg(info, 0, "map");
  std::string path = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  int ret = bpf_map__set_pin_path(FindMap(env, name), path.empty() ? nullptr : path.c_str());
  if (ret) ThrowErrno(env, LibbpfErr(ret), "bpf_map__set_pin_path", "set pin path of map " + name);
  return env.Undefined();
}

// load({ logLevel = 0, logSize = 16 MiB }): Promise<{ [program]: verifierLog }>.
Napi::Value BpfObject::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env, true);
  uint32_t level = 0;
  size_t size = 16u << 20;
  if (info.Length() > 0 && info[0].IsObject()) {
    Napi::Object o = info[0].As<Napi::Object>();
    if (o.Get("logLevel").IsNumber()) level = o.Get("logLevel").As<Napi::Number>().Uint32Value();
    if (o.Get("logSize").IsNumber()) size = o.Get("logSize").As<Napi::Number>().Int64Value();
  }
  loading = true;
  auto* w = new LoadWorker(env, this, info.This().As<Napi::Object>(), level, size);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// programFd(name) / mapFd(name): a dup of the object's fd, owned by the caller, so the program or
// map can outlive the object.
Napi::Value BpfObject::ProgramFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = StrArg(info, 0, "program");
  int fd = bpf_program__fd(FindProgram(env, name));
  if (fd < 0) ThrowErrno(env, EBADF, "bpf_program__fd", "program " + name + " of " + label_ + " is not loaded");
  int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (d < 0) ThrowErrno(env, errno, "dup", "program " + name);
  return Napi::Number::New(env, d);
}

Napi::Value BpfObject::MapFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = StrArg(info, 0, "map");
  int fd = bpf_map__fd(FindMap(env, name));
  if (fd < 0) ThrowErrno(env, EBADF, "bpf_map__fd", "map " + name + " of " + label_ + " is not created");
  int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (d < 0) ThrowErrno(env, errno, "dup", "map " + name);
  return Napi::Number::New(env, d);
}

Napi::Value BpfObject::Close(const Napi::CallbackInfo& info) {
  if (loading) throw Napi::Error::New(info.Env(), "object " + label_ + " is loading");
  Release();
  return info.Env().Undefined();
}

}  // namespace

void RegisterObject(Napi::Env env, Napi::Object exports) {
  exports.Set("BpfObject", BpfObject::Define(env));
}
