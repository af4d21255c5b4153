// Entry point of the bpfops native addon: installs libbpf's print hook and registers
// every exported function and class. Only reconciler/kernel/ loads this module.
#include "common.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallLibbpfPrint();
  RegisterObject(env, exports);
  RegisterPinsMaps(env, exports);
  RegisterLinks(env, exports);
  RegisterPerfLinks(env, exports);
  RegisterLegacyAttach(env, exports);
  RegisterObserve(env, exports);
  RegisterProbes(env, exports);
  RegisterNetns(env, exports);
  RegisterMapAdd(env, exports);
  RegisterPerfBuffer(env, exports);
  RegisterErrors(env, exports);
  return exports;
}

NODE_API_MODULE(bpfops, Init)
