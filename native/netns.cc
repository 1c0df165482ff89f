// Opening a socket inside another network namespace.
//
// setns(CLONE_NEWNET) affects only the calling thread, and a socket keeps the namespace it
// was created in for life, so: remember our namespace, enter the target, socket(), go back.
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>

#include <cstring>

#include "common.h"

namespace netheal {

// Runs fn() with the calling thread inside the namespace at netnsPath ("" = stay here).
template <typename Fn>
static int InNetns(const std::string& netnsPath, const char** syscall, Fn fn) {
  if (netnsPath.empty()) return fn();
  UniqueFd target(open(netnsPath.c_str(), O_RDONLY | O_CLOEXEC));
  if (!target.Valid()) {
    *syscall = "open";
    return -1;
  }
  UniqueFd self(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!self.Valid()) {
    *syscall = "open";
    return -1;
  }
  if (setns(target.Get(), CLONE_NEWNET) != 0) {
    *syscall = "setns";
    return -1;
  }
  int fd = fn();
  int saved = errno;
  // Going home must not fail: a thread left in the wrong namespace would silently probe and
  // change the wrong network. If it does fail, stop the process rather than continue.
  if (setns(self.Get(), CLONE_NEWNET) != 0) abort();
  errno = saved;
  return fd;
}

int SocketInNetns(const std::string& netnsPath, int domain, int type, int protocol,
                  const char** syscall) {
  *syscall = "socket";
  return InNetns(netnsPath, syscall, [&] {
    return socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  });
}

int OpenInNetns(const std::string& netnsPath, const char* path, int flags, const char** syscall) {
  *syscall = "open";
  return InNetns(netnsPath, syscall, [&] { return open(path, flags | O_CLOEXEC); });
}

}  // namespace netheal
