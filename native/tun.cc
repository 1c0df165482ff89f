// TUN/TAP devices for namespace labs: a tap whose carrier we hold, like a physical NIC's.
// The carrier of a tap is up while a process has it open; TUNSETCARRIER toggles it.
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <sys/ioctl.h>

#include <cstring>

#include "common.h"

namespace netheal {
namespace {

// openTap(name, netns?): fd. /dev/net/tun is opened inside the namespace: the device is
// created (or attached) in the namespace of the opener.
Napi::Value OpenTap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "openTap(name, netns?)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string name = info[0].As<Napi::String>().Utf8Value();
  std::string netns = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  if (name.empty() || name.size() >= IFNAMSIZ) {
    Napi::RangeError::New(env, "openTap: interface name must have 1-15 bytes").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const char* syscall = "open";
  int fd = OpenInNetns(netns, "/dev/net/tun", O_RDWR | O_NONBLOCK, &syscall);
  if (fd < 0) {
    ErrnoError(env, errno, syscall, "/dev/net/tun").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  UniqueFd owned(fd);
  ifreq request = {};
  request.ifr_flags = IFF_TAP | IFF_NO_PI;
  memcpy(request.ifr_name, name.data(), name.size());
  if (ioctl(owned.Get(), TUNSETIFF, &request) != 0) {
    ErrnoError(env, errno, "ioctl", "TUNSETIFF " + name).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, owned.Release());
}

// setTapCarrier(fd, on): TUNSETCARRIER, as a NIC driver's netif_carrier_on/off would.
Napi::Value SetTapCarrier(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].ToNumber().Int32Value();
  int on = info[1].ToBoolean().Value() ? 1 : 0;
  if (ioctl(fd, TUNSETCARRIER, &on) != 0) ErrnoError(env, errno, "ioctl", "TUNSETCARRIER").ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  close(info[0].ToNumber().Int32Value());
  return info.Env().Undefined();
}

}  // namespace

void InitTun(Napi::Env env, Napi::Object exports) {
  exports.Set("openTap", Napi::Function::New(env, OpenTap, "openTap"));
  exports.Set("setTapCarrier", Napi::Function::New(env, SetTapCarrier, "setTapCarrier"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
}

}  // namespace netheal
