// Shared helpers for the netheal addon: errno-carrying errors, owned fds, monotonic time.
#pragma once

#include <napi.h>
#include <uv.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <string>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

namespace netheal {

// CLOCK_MONOTONIC in nanoseconds: the same clock as process.hrtime.bigint().
inline uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// True while JavaScript can run in `env`. False once the environment is being torn down (a
// worker terminated, the process exiting): Node still runs libuv callbacks then, while it
// closes the loop, but every N-API call that could run JavaScript fails. napi_strict_equals
// is a side-effect-free call of that kind. Between terminate() and that point a call can
// still fail although this said true: callers check what they get back as well.
inline bool CanRunJs(napi_env env) {
  napi_value undefined;
  bool equal = false;
  return napi_get_undefined(env, &undefined) == napi_ok && napi_strict_equals(env, undefined, undefined, &equal) == napi_ok;
}

// One recvmsg() of a netlink datagram into [into, into + room), EINTR retried. Returns its
// length (the full length when `flags` has MSG_TRUNC) or -1 with errno set; *fromPort gets
// the sender's port (0: the kernel, the only sender to trust), *msgFlags the msg_flags.
inline ssize_t RecvNetlink(int fd, void* into, size_t room, int flags, uint32_t* fromPort, int* msgFlags) {
  for (;;) {
    sockaddr_nl from = {};
    iovec iov = {into, room};
    msghdr msg = {};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    ssize_t n = recvmsg(fd, &msg, flags);
    if (n < 0 && errno == EINTR) continue;
    *fromPort = from.nl_pid;
    *msgFlags = msg.msg_flags;
    return n;
  }
}

// The addon's errors, each kind made here and nowhere else. test/errors.test.js checks that
// every NETHEAL_ERR_* code the native sources use is registered in src/errors.ts.

// A failed syscall: message "<syscall> failed: <strerror>[ (<detail>)]", errno (negative, as
// Node's own system errors), code (the errno name, e.g. "ENOBUFS") and syscall.
inline Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const std::string& detail = "") {
  std::string message = std::string(syscall) + " failed: " + strerror(err);
  if (!detail.empty()) message += " (" + detail + ")";
  Napi::Error error = Napi::Error::New(env, message);
  // uv_err_name gives the symbolic errno name ("ENOBUFS") for a negative errno.
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("code", Napi::String::New(env, uv_err_name(-err)));
  error.Set("syscall", Napi::String::New(env, syscall));
  return error;
}

// A failed libuv call (status < 0, a negated errno): message "<what> failed: <uv_strerror>",
// errno and code as ErrnoError's.
inline Napi::Error UvError(Napi::Env env, int status, const std::string& what) {
  Napi::Error error = Napi::Error::New(env, what + " failed: " + uv_strerror(status));
  error.Set("errno", Napi::Number::New(env, status));
  error.Set("code", Napi::String::New(env, uv_err_name(status)));
  return error;
}

// A use after close(): message "<what> is closed[ (<detail>)]", code NETHEAL_ERR_CLOSED.
inline Napi::Error ClosedError(Napi::Env env, const std::string& what, const std::string& detail = "") {
  Napi::Error error = Napi::Error::New(env, what + " is closed" + (detail.empty() ? "" : " (" + detail + ")"));
  error.Set("code", Napi::String::New(env, "NETHEAL_ERR_CLOSED"));
  return error;
}

// Any other failure with a code of its own: a registered NETHEAL_ERR_* (src/errors.ts), or
// an errno name for a failure that is not one syscall's (ETIMEDOUT of a whole call).
inline Napi::Error CodedError(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

// Owns one file descriptor; closes it on destruction unless released.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.Release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    Reset(o.Release());
    return *this;
  }
  ~UniqueFd() { Reset(); }
  int Get() const { return fd_; }
  bool Valid() const { return fd_ >= 0; }
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void Reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// Creates socket(domain, type|SOCK_NONBLOCK|SOCK_CLOEXEC, protocol) inside the network
// namespace at netnsPath ("" = the current one). The calling thread re-enters its own
// namespace before returning. On failure returns -1 and sets *syscall and errno.
int SocketInNetns(const std::string& netnsPath, int domain, int type, int protocol,
                  const char** syscall);

// open(path) inside the namespace at netnsPath, like SocketInNetns.
int OpenInNetns(const std::string& netnsPath, const char* path, int flags, const char** syscall);

void InitNetlinkSocket(Napi::Env env, Napi::Object exports);
void InitIcmpSocket(Napi::Env env, Napi::Object exports);
void InitNotify(Napi::Env env, Napi::Object exports);
void InitTun(Napi::Env env, Napi::Object exports);
void InitService(Napi::Env env, Napi::Object exports);
void InitSockDestroyer(Napi::Env env, Napi::Object exports);

}  // namespace netheal
