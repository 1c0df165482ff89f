// IcmpSocket: ICMP/ICMPv6 echo on the libuv loop (raw or ping sockets). See issue #3.
#include "common.h"

namespace netheal {

void InitIcmpSocket(Napi::Env env, Napi::Object exports) {}

}  // namespace netheal
