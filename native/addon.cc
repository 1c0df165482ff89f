// The netheal addon: syscalls, fds and event-loop plumbing only. Policy lives in TypeScript.
#include "common.h"

namespace netheal {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitNetlinkSocket(env, exports);
  InitIcmpSocket(env, exports);
  InitNotify(env, exports);
  InitTun(env, exports);
  InitService(env, exports);
  InitSockDestroyer(env, exports);
  return exports;
}

}  // namespace netheal

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return netheal::Init(env, exports);
}

NODE_API_MODULE(netheal, InitAddon)
