// One datagram to an AF_UNIX socket, which Node's dgram cannot send: sd_notify to
// $NOTIFY_SOCKET, and journal entries to /run/systemd/journal/socket (binary fields, so the
// message may be a Buffer).
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

#include "common.h"

namespace netheal {
namespace {

// sendDatagram(address, message: string | Buffer, dontWait = false). '@name' is the abstract
// namespace: sun_path[0] = 0 and the address length stops at the name's end (padding to
// sizeof(sockaddr_un) names another socket). dontWait: a full receive queue (journald stalled)
// fails with EAGAIN instead of blocking the event loop; the caller falls back.
Napi::Value SendDatagram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !(info[1].IsString() || info[1].IsBuffer())) {
    Napi::TypeError::New(env, "sendDatagram(address, message: string | Buffer, dontWait?)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string address = info[0].As<Napi::String>().Utf8Value();
  std::string message;
  if (info[1].IsBuffer()) {
    Napi::Buffer<char> data = info[1].As<Napi::Buffer<char>>();
    message.assign(data.Data(), data.Length());
  } else {
    message = info[1].As<Napi::String>().Utf8Value();
  }
  const bool dontWait = info.Length() > 2 && info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (address.empty() || address.size() >= sizeof addr.sun_path ||
      (address[0] != '/' && address[0] != '@')) {
    CodedError(env, "NETHEAL_ERR_NOTIFY_ADDRESS", "invalid NOTIFY_SOCKET address: " + address).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  memcpy(addr.sun_path, address.data(), address.size());
  socklen_t len = offsetof(sockaddr_un, sun_path) + address.size();
  if (address[0] == '@') {
    addr.sun_path[0] = '\0';
  } else {
    len += 1;  // include the terminating NUL of a path
  }
  UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.Valid()) {
    ErrnoError(env, errno, "socket").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  ssize_t n;
  do {
    n = sendto(fd.Get(), message.data(), message.size(), MSG_NOSIGNAL | (dontWait ? MSG_DONTWAIT : 0),
               reinterpret_cast<sockaddr*>(&addr), len);
  } while (n < 0 && errno == EINTR);
  if (n < 0) ErrnoError(env, errno, "sendto", address).ThrowAsJavaScriptException();
  return env.Undefined();
}

}  // namespace

void InitNotify(Napi::Env env, Napi::Object exports) {
  exports.Set("sdNotify", Napi::Function::New(env, SendDatagram, "sdNotify"));
  exports.Set("sendDatagram", Napi::Function::New(env, SendDatagram, "sendDatagram"));
}

}  // namespace netheal
