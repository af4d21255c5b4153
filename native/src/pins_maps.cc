// File descriptors, bpffs pins and map element operations: the calls that move bytes in and
// out of maps (lookup, update, delete, iteration, batches, prog-array slots, ring buffers).
#include "common.h"
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <vector>

static constexpr long kBpffsMagic = 0xcafe4a11;
static constexpr int kENOTSUPP = 524;  // kernel-internal "not supported", leaks out of bpf(2)

static Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0, "fd");
  if (close(fd) != 0) ThrowErrno(info.Env(), errno, "close", "close fd " + std::to_string(fd));
  return info.Env().Undefined();
}

static Napi::Value DupFd(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0, "fd");
  int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (d < 0) ThrowErrno(info.Env(), errno, "dup", "dup fd " + std::to_string(fd));
  return Napi::Number::New(info.Env(), d);
}

// flock(fd, exclusive, wait): true when the lock is held, false when it is busy and wait is false.
static Napi::Value Flock(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0, "fd");
  bool exclusive = info.Length() > 1 && info[1].ToBoolean().Value();
  bool wait = info.Length() > 2 && info[2].ToBoolean().Value();
  int op = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB);
  if (flock(fd, op) == 0) return Napi::Boolean::New(info.Env(), true);
  if (errno == EWOULDBLOCK && !wait) return Napi::Boolean::New(info.Env(), false);
  ThrowErrno(info.Env(), errno, "flock", "lock fd " + std::to_string(fd));
}

static Napi::Value ObjPin(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0, "fd");
  std::string path = StrArg(info, 1, "path");
  int ret = bpf_obj_pin(fd, path.c_str());
  if (ret) ThrowErrno(info.Env(), LibbpfErr(ret), "BPF_OBJ_PIN", "pin " + path);
  return info.Env().Undefined();
}

static Napi::Value ObjGet(const Napi::CallbackInfo& info) {
  std::string path = StrArg(info, 0, "path");
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) ThrowErrno(info.Env(), LibbpfErr(fd), "BPF_OBJ_GET", "open pin " + path);
  return Napi::Number::New(info.Env(), fd);
}

// fdKind(fd): "prog" | "map" | "link" | "btf" | "other", from the anon inode's name (a new link
// is "bpf_link", one reopened from a pin "bpf-link").
static Napi::Value FdKind(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0, "fd");
  char link[64];
  std::string p = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = readlink(p.c_str(), link, sizeof(link) - 1);
  if (n < 0) ThrowErrno(info.Env(), errno, "readlink", "kind of fd " + std::to_string(fd));
  link[n] = 0;
  std::string s(link);
  const char* kind = s == "anon_inode:bpf-prog" ? "prog" : s == "anon_inode:bpf-map" ? "map"
                   : (s == "anon_inode:bpf_link" || s == "anon_inode:bpf-link") ? "link" : s == "anon_inode:btf" ? "btf" : "other";
  return Napi::String::New(info.Env(), kind);
}

// isBpffs(path): whether path is on a bpf filesystem (checked before any mkdir under it).
static Napi::Value IsBpffs(const Napi::CallbackInfo& info) {
  std::string path = StrArg(info, 0, "path");
  struct statfs st;
  if (statfs(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Napi::Boolean::New(info.Env(), false);
    ThrowErrno(info.Env(), errno, "statfs", "statfs " + path);
  }
  return Napi::Boolean::New(info.Env(), st.f_type == kBpffsMagic);
}

// The sizes the kernel really uses for a map's keys and values (per-CPU values: rounded to 8 bytes,
// times the possible CPUs). Every map call checks its Buffers against them: a short Buffer would
// let the kernel read past it, a short lookup buffer would let it write past it.
MapSizes SizesOf(Napi::Env env, int fd) {
  bpf_map_info mi = {};
  uint32_t len = sizeof(mi);
  int ret = bpf_obj_get_info_by_fd(fd, &mi, &len);
  if (ret) ThrowErrno(env, LibbpfErr(ret), "BPF_OBJ_GET_INFO_BY_FD", "map fd " + std::to_string(fd));
  bool percpu = mi.type == BPF_MAP_TYPE_PERCPU_HASH || mi.type == BPF_MAP_TYPE_PERCPU_ARRAY || mi.type == BPF_MAP_TYPE_LRU_PERCPU_HASH ||
                mi.type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
  size_t v = mi.value_size;
  if (percpu) v = ((v + 7) & ~static_cast<size_t>(7)) * static_cast<size_t>(libbpf_num_possible_cpus());
  // Maps of maps and prog-arrays read back ids (4 bytes) but take fds (4 bytes): the same size.
  return {mi.key_size, v, mi.value_size, mi.type, percpu};
}
static void CheckLen(Napi::Env env, size_t got, size_t want, const char* what, int fd) {
  if (got != want) {
    throw Napi::RangeError::New(env, std::string(what) + " has " + std::to_string(got) + " bytes; map fd " + std::to_string(fd) + " takes " + std::to_string(want));
  }
}

// mapLookup(fd, key, valueSize, flags?): Buffer | null (null when the key is absent).
static Napi::Value MapLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  auto key = BufArg(info, 1, "key");
  size_t vsize = static_cast<size_t>(IntArg(info, 2, "valueSize"));
  uint64_t flags = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().Int64Value() : 0;
  MapSizes sz = SizesOf(env, fd);
  CheckLen(env, key.Length(), sz.key, "key", fd);
  CheckLen(env, vsize, sz.value, "valueSize", fd);
  auto out = Napi::Buffer<uint8_t>::New(env, vsize);
  int ret = bpf_map_lookup_elem_flags(fd, key.Data(), out.Data(), flags);
  if (ret) {
    int err = LibbpfErr(ret);
    if (err == ENOENT) return env.Null();
    ThrowErrno(env, err, "BPF_MAP_LOOKUP_ELEM", "lookup in map fd " + std::to_string(fd));
  }
  return out;
}

// mapUpdate(fd, key, value, flags = BPF_ANY, netns?): with netns, the update is made from inside
// that network namespace: the kernel resolves a devmap or cpumap value's ifindex in the updating
// task's namespace, so an interface of another namespace must be written from there.
static Napi::Value MapUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  auto key = BufArg(info, 1, "key");
  auto value = BufArg(info, 2, "value");
  uint64_t flags = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().Int64Value() : 0;
  MapSizes sz = SizesOf(env, fd);
  CheckLen(env, key.Length(), sz.key, "key", fd);
  CheckLen(env, value.Length(), sz.value, "value", fd);
  std::string ctx = "update map fd " + std::to_string(fd);
  NetnsGuard guard(env, info.Length() > 4 ? info[4] : env.Undefined(), ctx);
  int ret = bpf_map_update_elem(fd, key.Data(), value.Data(), flags);
  if (ret) ThrowErrno(env, LibbpfErr(ret), "BPF_MAP_UPDATE_ELEM", guard.Describe().empty() ? ctx : ctx + " in " + guard.Describe());
  return env.Undefined();
}

// mapDelete(fd, key): true if deleted, false if absent.
static Napi::Value MapDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  auto key = BufArg(info, 1, "key");
  CheckLen(env, key.Length(), SizesOf(env, fd).key, "key", fd);
  int ret = bpf_map_delete_elem(fd, key.Data());
  if (ret) {
    int err = LibbpfErr(ret);
    if (err == ENOENT) return Napi::Boolean::New(env, false);
    ThrowErrno(env, err, "BPF_MAP_DELETE_ELEM", "delete from map fd " + std::to_string(fd));
  }
  return Napi::Boolean::New(env, true);
}

// mapNextKey(fd, key | null, keySize): the key after key (the first key for null), or null at the end.
static Napi::Value MapNextKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  size_t ksize = static_cast<size_t>(IntArg(info, 2, "keySize"));
  CheckLen(env, ksize, SizesOf(env, fd).key, "keySize", fd);
  if (info[1].IsBuffer()) CheckLen(env, info[1].As<Napi::Buffer<uint8_t>>().Length(), ksize, "key", fd);
  const void* cur = info[1].IsBuffer() ? info[1].As<Napi::Buffer<uint8_t>>().Data() : nullptr;
  auto out = Napi::Buffer<uint8_t>::New(env, ksize);
  int ret = bpf_map_get_next_key(fd, cur, out.Data());
  if (ret) {
    int err = LibbpfErr(ret);
    if (err == ENOENT) return env.Null();
    ThrowErrno(env, err, "BPF_MAP_GET_NEXT_KEY", "iterate map fd " + std::to_string(fd));
  }
  return out;
}

// mapLookupBatch(fd, keySize, valueSize, maxEntries): { keys, values, count } with every entry,
// using BPF_MAP_LOOKUP_BATCH; throws ENOTSUP-class errors for maps without batch support so the
// caller can fall back to iteration.
static Napi::Value MapLookupBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  size_t ksize = static_cast<size_t>(IntArg(info, 1, "keySize"));
  size_t vsize = static_cast<size_t>(IntArg(info, 2, "valueSize"));
  uint32_t cap = static_cast<uint32_t>(IntArg(info, 3, "maxEntries"));
  MapSizes sz = SizesOf(env, fd);
  CheckLen(env, ksize, sz.key, "keySize", fd);
  CheckLen(env, vsize, sz.value, "valueSize", fd);
  if (cap == 0) cap = 1;
  // Read in chunks, growing with what the map holds: a huge, sparse map costs its entries, not
  // maxEntries of memory up front.
  const uint32_t chunk = 4096;
  std::vector<uint8_t> keys, values;
  // Hash maps need a batch token as large as a key; 8 bytes covers array maps.
  std::vector<uint8_t> inTok(std::max<size_t>(ksize, 8)), outTok(std::max<size_t>(ksize, 8));
  uint32_t total = 0;
  bool first = true;
  while (total < cap) {
    uint32_t count = std::min(chunk, cap - total);
    keys.resize((static_cast<size_t>(total) + count) * ksize);
    values.resize((static_cast<size_t>(total) + count) * vsize);
    LIBBPF_OPTS(bpf_map_batch_opts, bo);
    int ret = bpf_map_lookup_batch(fd, first ? nullptr : inTok.data(), outTok.data(), keys.data() + total * ksize,
                                   values.data() + total * vsize, &count, &bo);
    int err = ret ? LibbpfErr(ret) : 0;
    if (err && err != ENOENT) {
      if (err == kENOTSUPP) err = ENOTSUP;
      ThrowErrno(env, err, "BPF_MAP_LOOKUP_BATCH", "dump map fd " + std::to_string(fd));
    }
    total += count;
    if (err == ENOENT) break;
    inTok.swap(outTok);
    first = false;
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("keys", Napi::Buffer<uint8_t>::Copy(env, keys.data(), total * ksize));
  o.Set("values", Napi::Buffer<uint8_t>::Copy(env, values.data(), total * vsize));
  o.Set("count", static_cast<double>(total));
  return o;
}

// mapUpdateBatch(fd, keys, values, count, flags = BPF_ANY)
static Napi::Value MapUpdateBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  auto keys = BufArg(info, 1, "keys");
  auto values = BufArg(info, 2, "values");
  uint32_t count = static_cast<uint32_t>(IntArg(info, 3, "count"));
  MapSizes sz = SizesOf(env, fd);
  CheckLen(env, keys.Length(), static_cast<size_t>(count) * sz.key, "keys", fd);
  CheckLen(env, values.Length(), static_cast<size_t>(count) * sz.value, "values", fd);
  LIBBPF_OPTS(bpf_map_batch_opts, bo);
  if (info.Length() > 4 && info[4].IsNumber()) bo.elem_flags = info[4].As<Napi::Number>().Int64Value();
  int ret = bpf_map_update_batch(fd, keys.Data(), values.Data(), &count, &bo);
  if (ret) {
    int err = LibbpfErr(ret);
    if (err == kENOTSUPP) err = ENOTSUP;
    Napi::Error e = ErrnoError(env, err, "BPF_MAP_UPDATE_BATCH", "batch update map fd " + std::to_string(fd));
    e.Set("updated", static_cast<double>(count));
    throw e;
  }
  return Napi::Number::New(env, count);
}

// mapDeleteBatch(fd, keys, count): deletes count keys with BPF_MAP_DELETE_BATCH; returns how many
// were deleted. A missing key stops the kernel's batch (ENOENT, with "deleted" on the error saying
// how far it got), so the caller can skip that key and go on.
static Napi::Value MapDeleteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  auto keys = BufArg(info, 1, "keys");
  uint32_t count = static_cast<uint32_t>(IntArg(info, 2, "count"));
  MapSizes sz = SizesOf(env, fd);
  CheckLen(env, keys.Length(), static_cast<size_t>(count) * sz.key, "keys", fd);
  LIBBPF_OPTS(bpf_map_batch_opts, bo);
  int ret = bpf_map_delete_batch(fd, keys.Data(), &count, &bo);
  if (ret) {
    int err = LibbpfErr(ret);
    if (err == kENOTSUPP) err = ENOTSUP;
    Napi::Error e = ErrnoError(env, err, "BPF_MAP_DELETE_BATCH", "batch delete map fd " + std::to_string(fd));
    e.Set("deleted", static_cast<double>(count));
    throw e;
  }
  return Napi::Number::New(env, count);
}

// mapCreate(type, keySize, valueSize, maxEntries, flags = 0, name = "", innerMapFd?): fd of a new map.
static Napi::Value MapCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto type = static_cast<bpf_map_type>(IntArg(info, 0, "type"));
  uint32_t ksize = static_cast<uint32_t>(IntArg(info, 1, "keySize"));
  uint32_t vsize = static_cast<uint32_t>(IntArg(info, 2, "valueSize"));
  uint32_t max = static_cast<uint32_t>(IntArg(info, 3, "maxEntries"));
  LIBBPF_OPTS(bpf_map_create_opts, mo);
  if (info.Length() > 4 && info[4].IsNumber()) mo.map_flags = info[4].As<Napi::Number>().Uint32Value();
  std::string name = info.Length() > 5 && info[5].IsString() ? info[5].As<Napi::String>().Utf8Value() : "";
  // map-in-map: a map of the inner definition, which the kernel takes as the template
  if (info.Length() > 6 && info[6].IsNumber()) mo.inner_map_fd = info[6].As<Napi::Number>().Int32Value();
  // Kernel map names: 15 characters of [A-Za-z0-9_.].
  std::string kname;
  for (char c : name) if (kname.size() < 15) kname += (isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.') ? c : '_';
  int fd = bpf_map_create(type, kname.empty() ? nullptr : kname.c_str(), ksize, vsize, max, &mo);
  if (fd < 0) ThrowErrno(env, LibbpfErr(fd), "BPF_MAP_CREATE", "create map " + name);
  return Napi::Number::New(env, fd);
}

// mapCreateWithBtf(type, keySize, valueSize, maxEntries, flags, name, btf, keyTypeId, valueTypeId):
// a map that carries its key and value types (raw BTF, loaded for it), like a libbpf map does.
static Napi::Value MapCreateWithBtf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto type = static_cast<bpf_map_type>(IntArg(info, 0, "type"));
  uint32_t ksize = static_cast<uint32_t>(IntArg(info, 1, "keySize"));
  uint32_t vsize = static_cast<uint32_t>(IntArg(info, 2, "valueSize"));
  uint32_t max = static_cast<uint32_t>(IntArg(info, 3, "maxEntries"));
  uint32_t flags = static_cast<uint32_t>(IntArg(info, 4, "flags"));
  std::string name = StrArg(info, 5, "name");
  auto raw = BufArg(info, 6, "btf");
  uint32_t keyType = static_cast<uint32_t>(IntArg(info, 7, "keyTypeId"));
  uint32_t valueType = static_cast<uint32_t>(IntArg(info, 8, "valueTypeId"));
  int btfFd = bpf_btf_load(raw.Data(), raw.Length(), nullptr);
  if (btfFd < 0) ThrowErrno(env, LibbpfErr(btfFd), "BPF_BTF_LOAD", "create map " + name + ": load its BTF");
  LIBBPF_OPTS(bpf_map_create_opts, mo);
  mo.map_flags = flags;
  mo.btf_fd = btfFd;
  mo.btf_key_type_id = keyType;
  mo.btf_value_type_id = valueType;
  std::string kname;
  for (char c : name) if (kname.size() < 15) kname += (isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.') ? c : '_';
  int fd = bpf_map_create(type, kname.empty() ? nullptr : kname.c_str(), ksize, vsize, max, &mo);
  int err = fd < 0 ? LibbpfErr(fd) : 0;
  close(btfFd);  // the map keeps its own reference to the BTF
  if (fd < 0) ThrowErrno(env, err, "BPF_MAP_CREATE", "create map " + name + " with its BTF");
  return Napi::Number::New(env, fd);
}

// btfRaw(btfId): the raw BTF the kernel holds under that id (a map's types, for decoding it).
static Napi::Value BtfRaw(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id = static_cast<uint32_t>(IntArg(info, 0, "btfId"));
  btf* b = btf__load_from_kernel_by_id(id);
  if (!b) ThrowErrno(env, errno ? errno : ENOENT, "BPF_BTF_GET_FD_BY_ID", "read BTF id " + std::to_string(id));
  uint32_t size = 0;
  const void* data = btf__raw_data(b, &size);
  if (!data) {
    btf__free(b);
    ThrowErrno(env, ENOMEM, "btf__raw_data", "read BTF id " + std::to_string(id));
  }
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t*>(data), size);
  btf__free(b);
  return out;
}

// mapCreateStringHash(keySize, valueSize, maxEntries, name): a hash map from char[keySize] to
// char[valueSize], with BTF so that bpftool prints keys and values as strings.
static Napi::Value MapCreateStringHash(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t ksize = static_cast<uint32_t>(IntArg(info, 0, "keySize"));
  uint32_t vsize = static_cast<uint32_t>(IntArg(info, 1, "valueSize"));
  uint32_t max = static_cast<uint32_t>(IntArg(info, 2, "maxEntries"));
  std::string name = StrArg(info, 3, "name");
  btf* b = btf__new_empty();
  if (!b) ThrowErrno(env, errno ? errno : ENOMEM, "btf__new_empty", "create map " + name);
  int u32 = btf__add_int(b, "unsigned int", 4, 0);
  int chr = btf__add_int(b, "char", 1, BTF_INT_CHAR);
  int key = btf__add_array(b, u32, chr, ksize);
  int val = btf__add_array(b, u32, chr, vsize);
  int ret = (u32 < 0 || chr < 0 || key < 0 || val < 0) ? -EINVAL : btf__load_into_kernel(b);
  if (ret) {
    btf__free(b);
    ThrowErrno(env, LibbpfErr(ret), "BPF_BTF_LOAD", "create map " + name + ": load its BTF");
  }
  LIBBPF_OPTS(bpf_map_create_opts, mo);
  mo.btf_fd = btf__fd(b);
  mo.btf_key_type_id = key;
  mo.btf_value_type_id = val;
  // Entries are allocated as they are written: a few records must not cost maxEntries of memory.
  mo.map_flags = BPF_F_NO_PREALLOC;
  std::string kname = name.substr(0, 15);
  int fd = bpf_map_create(BPF_MAP_TYPE_HASH, kname.c_str(), ksize, vsize, max, &mo);
  int err = fd < 0 ? LibbpfErr(fd) : 0;
  btf__free(b);  // the map keeps its own reference to the BTF
  if (fd < 0) ThrowErrno(env, err, "BPF_MAP_CREATE", "create map " + name);
  return Napi::Number::New(env, fd);
}

// progArraySet(mapFd, slot, progFd | -1): one atomic slot update (or delete for -1).
static Napi::Value ProgArraySet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "mapFd");
  uint32_t slot = static_cast<uint32_t>(IntArg(info, 1, "slot"));
  int prog = static_cast<int>(IntArg(info, 2, "progFd"));  // -1 empties the slot
  if (prog < -1) throw Napi::RangeError::New(env, "progFd must be a file descriptor, or -1 to empty the slot");
  int ret = prog < 0 ? bpf_map_delete_elem(fd, &slot) : bpf_map_update_elem(fd, &slot, &prog, BPF_ANY);
  if (ret) {
    int err = LibbpfErr(ret);
    if (prog < 0 && err == ENOENT) return env.Undefined();
    ThrowErrno(env, err, "BPF_MAP_UPDATE_ELEM", "set prog-array slot " + std::to_string(slot));
  }
  return env.Undefined();
}

static int CollectRecord(void* ctx, void* data, size_t size) {
  auto* out = static_cast<std::vector<std::vector<uint8_t>>*>(ctx);
  auto* p = static_cast<uint8_t*>(data);
  out->emplace_back(p, p + size);
  return 0;
}

// ringbufDrain(mapFd): every record waiting in a BPF ring buffer, as Buffers.
static Napi::Value RingbufDrain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "mapFd");
  std::vector<std::vector<uint8_t>> records;
  ring_buffer* rb = ring_buffer__new(fd, CollectRecord, &records, nullptr);
  if (!rb) ThrowErrno(env, errno ? errno : EINVAL, "ring_buffer__new", "open ring buffer fd " + std::to_string(fd));
  int ret = ring_buffer__consume(rb);
  ring_buffer__free(rb);
  if (ret < 0) ThrowErrno(env, -ret, "ring_buffer__consume", "drain ring buffer fd " + std::to_string(fd));
  Napi::Array out = Napi::Array::New(env, records.size());
  for (size_t i = 0; i < records.size(); i++) out.Set(i, Napi::Buffer<uint8_t>::Copy(env, records[i].data(), records[i].size()));
  return out;
}

static Napi::Value PossibleCpus(const Napi::CallbackInfo& info) {
  int n = libbpf_num_possible_cpus();
  if (n < 0) ThrowErrno(info.Env(), -n, "libbpf_num_possible_cpus", "count possible cpus");
  return Napi::Number::New(info.Env(), n);
}

void RegisterPinsMaps(Napi::Env env, Napi::Object exports) {
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("dupFd", Napi::Function::New(env, DupFd));
  exports.Set("flock", Napi::Function::New(env, Flock));
  exports.Set("objPin", Napi::Function::New(env, ObjPin));
  exports.Set("objGet", Napi::Function::New(env, ObjGet));
  exports.Set("fdKind", Napi::Function::New(env, FdKind));
  exports.Set("isBpffs", Napi::Function::New(env, IsBpffs));
  exports.Set("mapLookup", Napi::Function::New(env, MapLookup));
  exports.Set("mapUpdate", Napi::Function::New(env, MapUpdate));
  exports.Set("mapDelete", Napi::Function::New(env, MapDelete));
  exports.Set("mapNextKey", Napi::Function::New(env, MapNextKey));
  exports.Set("mapLookupBatch", Napi::Function::New(env, MapLookupBatch));
  exports.Set("mapUpdateBatch", Napi::Function::New(env, MapUpdateBatch));
  exports.Set("mapDeleteBatch", Napi::Function::New(env, MapDeleteBatch));
  exports.Set("mapCreate", Napi::Function::New(env, MapCreate));
  exports.Set("mapCreateStringHash", Napi::Function::New(env, MapCreateStringHash));
  exports.Set("mapCreateWithBtf", Napi::Function::New(env, MapCreateWithBtf));
  exports.Set("btfRaw", Napi::Function::New(env, BtfRaw));
  exports.Set("progArraySet", Napi::Function::New(env, ProgArraySet));
  exports.Set("ringbufDrain", Napi::Function::New(env, RingbufDrain));
  exports.Set("possibleCpus", Napi::Function::New(env, PossibleCpus));
}
