// A TCP listener with SO_REUSEADDR + SO_REUSEPORT, for handing to net.Server as { fd }.
// Node 20 has no `reusePort` (22.12 / 23.1 added it) and would silently ignore the option,
// so a restarted instance could not bind while the old one drains.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "common.h"

namespace netheal {
namespace {

// reusePortListener(address, port, backlog, netnsPath?) -> fd (non-blocking, close-on-exec).
// The fd belongs to the caller from here on: net.Server closes it on server.close().
Napi::Value ReusePortListener(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsNumber()) {
    Napi::TypeError::New(env, "reusePortListener(address, port, backlog, netns?)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string address = info[0].As<Napi::String>().Utf8Value();
  int port = info[1].As<Napi::Number>().Int32Value();
  int backlog = info[2].As<Napi::Number>().Int32Value();
  std::string netns = info.Length() > 3 && info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : "";
  if (port < 0 || port > 65535) {
    Napi::RangeError::New(env, "port must be 0..65535").ThrowAsJavaScriptException();
    return env.Undefined();
  }

  sockaddr_storage storage = {};
  socklen_t len = 0;
  int domain;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  if (inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    domain = AF_INET;
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof *v4;
  } else if (inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    domain = AF_INET6;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof *v6;
  } else {
    Napi::TypeError::New(env, "not an IP address: " + address).ThrowAsJavaScriptException();
    return env.Undefined();
  }

  const char* syscall = "socket";
  UniqueFd fd(SocketInNetns(netns, domain, SOCK_STREAM, 0, &syscall));
  if (!fd.Valid()) {
    ErrnoError(env, errno, syscall, netns).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int on = 1;
  if (setsockopt(fd.Get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
      setsockopt(fd.Get(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) {
    ErrnoError(env, errno, "setsockopt").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (bind(fd.Get(), reinterpret_cast<sockaddr*>(&storage), len) != 0) {
    ErrnoError(env, errno, "bind", address + " port " + std::to_string(port)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (listen(fd.Get(), backlog) != 0) {
    ErrnoError(env, errno, "listen").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd.Release());
}

// tcpSocket(family 4|6, netnsPath?, device?) -> fd: an unconnected, non-blocking TCP socket
// created inside the namespace (a socket keeps its namespace for life) and bound to `device`
// (SO_BINDTODEVICE), for `new net.Socket({ fd }).connect(...)`: the TCP and HTTP probes of the
// watched namespace. SO_LINGER 0: closing it sends a RST and leaves no TIME_WAIT behind, so a
// probe every few milliseconds does not fill the port range.
Napi::Value TcpSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "tcpSocket(family, netns?, device?)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int family = info[0].As<Napi::Number>().Int32Value();
  if (family != 4 && family != 6) {
    Napi::RangeError::New(env, "family must be 4 or 6").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string netns = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  std::string device = info.Length() > 2 && info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
  const char* syscall = "socket";
  UniqueFd fd(SocketInNetns(netns, family == 4 ? AF_INET : AF_INET6, SOCK_STREAM, 0, &syscall));
  if (!fd.Valid()) {
    ErrnoError(env, errno, syscall, netns).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!device.empty() &&
      setsockopt(fd.Get(), SOL_SOCKET, SO_BINDTODEVICE, device.c_str(), static_cast<socklen_t>(device.size())) != 0) {
    ErrnoError(env, errno, "setsockopt", "SO_BINDTODEVICE " + device).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  linger off = {1, 0};
  if (setsockopt(fd.Get(), SOL_SOCKET, SO_LINGER, &off, sizeof off) != 0) {
    ErrnoError(env, errno, "setsockopt", "SO_LINGER").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd.Release());
}

}  // namespace

void InitService(Napi::Env env, Napi::Object exports) {
  exports.Set("reusePortListener", Napi::Function::New(env, ReusePortListener, "reusePortListener"));
  exports.Set("tcpSocket", Napi::Function::New(env, TcpSocket, "tcpSocket"));
}

}  // namespace netheal
