// NetlinkSocket: one AF_NETLINK socket on the libuv loop of the calling environment.
//
// JS gets every wake-up's datagrams in one call, with CLOCK_MONOTONIC taken right after each
// recvmsg(). Parsing lives in TypeScript. Loss of sync (ENOBUFS, a truncated datagram) is
// reported, never hidden. Two delivery modes:
// - copies (default): onData(datagrams: Buffer[], stamps: BigUint64Array), fresh objects that
//   JS may keep;
// - arena (`arena: true`, the event hot path): datagrams are received straight into one
//   Buffer that lives as long as the socket, and onData(arena, layout, stamps, count) gets the
//   same three objects every time (layout: offset and length of datagram i at 2i, 2i+1). Nothing
//   is allocated per wake-up; a cold process wakes measurably faster (Buffer creation alone
//   cost ~15 us per datagram when caches are cold). HAZARD: the views are only valid during
//   the call; the next wake-up overwrites them, so JS must copy whatever it keeps.
#include <linux/netlink.h>
#include <sys/socket.h>
#include <uv.h>

#include <vector>

#include "polled_socket.h"

namespace netheal {
namespace {

// At most this many datagrams per wake-up, so a storm cannot starve the loop; the poll is
// level-triggered and fires again on the next iteration for the rest.
constexpr int kReadBudget = 64;
constexpr size_t kInitialBuffer = 64 * 1024;
constexpr int kDefaultRcvbuf = 8 * 1024 * 1024;
// Arena mode: room for a burst of notifications (~1.5 KiB each), and the largest datagram a
// recvmsg() may return before the arena must grow (a truncated read grows it).
constexpr size_t kArenaSize = 256 * 1024;
constexpr size_t kInitialMaxDatagram = 64 * 1024;

class NetlinkSocket : public PolledSocket<NetlinkSocket> {
  friend class PolledSocket<NetlinkSocket>;

 public:
  static Napi::Function Define(Napi::Env env) {
    std::vector<PropertyDescriptor> members = PollingMembers();
    members.push_back(InstanceMethod<&NetlinkSocket::Send>("send"));
    members.push_back(InstanceMethod<&NetlinkSocket::AddMembership>("addMembership"));
    members.push_back(InstanceMethod<&NetlinkSocket::DropMembership>("dropMembership"));
    members.push_back(InstanceAccessor<&NetlinkSocket::PortId>("portId"));
    members.push_back(InstanceAccessor<&NetlinkSocket::ReceiveBuffer>("receiveBuffer"));
    return DefineClass(env, "NetlinkSocket", members);
  }

  // new NetlinkSocket({protocol, groups?, netns?, receiveBuffer?, arena?}, onData, onError)
  NetlinkSocket(const Napi::CallbackInfo& info) : PolledSocket<NetlinkSocket>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsObject() || !info[1].IsFunction() ||
        !info[2].IsFunction()) {
      Napi::TypeError::New(env, "NetlinkSocket(options, onData, onError)")
          .ThrowAsJavaScriptException();
      return;
    }
    Napi::Object options = info[0].As<Napi::Object>();
    int protocol = options.Get("protocol").ToNumber().Int32Value();
    std::string netns;
    if (options.Has("netns") && options.Get("netns").IsString())
      netns = options.Get("netns").As<Napi::String>().Utf8Value();
    int rcvbuf = kDefaultRcvbuf;
    if (options.Has("receiveBuffer") && options.Get("receiveBuffer").IsNumber())
      rcvbuf = options.Get("receiveBuffer").As<Napi::Number>().Int32Value();

    const char* syscall = "socket";
    UniqueFd fd(SocketInNetns(netns, AF_NETLINK, SOCK_RAW, protocol, &syscall));
    if (!fd.Valid()) {
      ErrnoError(env, errno, syscall, netns.empty() ? "" : netns).ThrowAsJavaScriptException();
      return;
    }
    // SO_RCVBUFFORCE passes rmem_max but needs CAP_NET_ADMIN; fall back to SO_RCVBUF.
    if (setsockopt(fd.Get(), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0)
      setsockopt(fd.Get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    int one = 1;
    // Best effort: the kernel's error text in NLMSG_ERROR, and strict dump filtering.
    setsockopt(fd.Get(), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
    setsockopt(fd.Get(), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);

    sockaddr_nl local = {};
    local.nl_family = AF_NETLINK;
    if (bind(fd.Get(), reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
      ErrnoError(env, errno, "bind").ThrowAsJavaScriptException();
      return;
    }
    if (options.Has("groups") && options.Get("groups").IsArray()) {
      Napi::Array groups = options.Get("groups").As<Napi::Array>();
      for (uint32_t i = 0; i < groups.Length(); i++) {
        int group = groups.Get(i).ToNumber().Int32Value();
        if (setsockopt(fd.Get(), SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) != 0) {
          ErrnoError(env, errno, "setsockopt", "NETLINK_ADD_MEMBERSHIP " + std::to_string(group))
              .ThrowAsJavaScriptException();
          return;
        }
      }
    }

    if (options.Has("arena") && options.Get("arena").ToBoolean().Value()) {
      arenaMode_ = true;
      AllocateArena(env, kArenaSize);
      if (arenaData_ == nullptr) {
        if (!env.IsExceptionPending()) Napi::Error::New(env, "arena allocation failed").ThrowAsJavaScriptException();
        return;
      }
      Napi::ArrayBuffer layout = Napi::ArrayBuffer::New(env, 2 * kReadBudget * sizeof(uint32_t));
      Napi::ArrayBuffer stamps = Napi::ArrayBuffer::New(env, kReadBudget * sizeof(uint64_t));
      // Off-heap backing stores: the pointers stay valid while the references hold them.
      layoutData_ = static_cast<uint32_t*>(layout.Data());
      stampsData_ = static_cast<uint64_t*>(stamps.Data());
      layout_ = Napi::Persistent(Napi::Uint32Array::New(env, 2 * kReadBudget, layout, 0));
      napi_value typed;
      napi_create_typedarray(env, napi_biguint64_array, kReadBudget, stamps, 0, &typed);
      stamps_ = Napi::Persistent(Napi::Object(env, typed));
    } else {
      buffer_.resize(kInitialBuffer);
    }
    StartPolling(env, fd.Release(), -1, info[1], info[2], "netheal:NetlinkSocket");
  }

  // Called by PolledSocket when the socket is readable.
  void ReadBurst(int status) {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    int pendingError = 0;
    if (status < 0) {
      // libuv turns EPOLLERR into UV_EBADF and stops the handle. On a netlink socket
      // EPOLLERR means a pending socket error (ENOBUFS after an overrun): fetch and clear it,
      // restart polling, and carry on reading what is queued.
      socklen_t len = sizeof pendingError;
      if (getsockopt(state_->fd, SOL_SOCKET, SO_ERROR, &pendingError, &len) != 0 || pendingError == 0 ||
          !RestartPolling()) {
        Deliver(onError_, {UvError(env, status, "poll").Value()});
        return;
      }
    }
    if (arenaMode_) {
      ReadIntoArena(env, pendingError);
      return;
    }
    std::vector<Napi::Value> datagrams;
    std::vector<uint64_t> stamps;
    int lostErrno = pendingError;
    size_t truncatedSize = 0;
    for (int i = 0; i < kReadBudget; i++) {
      size_t n;
      uint64_t stamp;
      Got got = ReceiveOne(buffer_.data(), buffer_.size(), &n, &stamp, &lostErrno, &truncatedSize);
      if (got == Got::kStop) break;
      if (got == Got::kSkip) continue;
      datagrams.push_back(Napi::Buffer<uint8_t>::Copy(env, buffer_.data(), n));
      stamps.push_back(stamp);
    }
    if (truncatedSize != 0) buffer_.resize(truncatedSize + 4096);
    if (!datagrams.empty()) {
      Napi::Array array = Napi::Array::New(env, datagrams.size());
      Napi::ArrayBuffer stampBuffer = Napi::ArrayBuffer::New(env, stamps.size() * sizeof(uint64_t));
      // Values cannot be made while a worker is being terminated: give up on this burst.
      if (array.IsEmpty() || stampBuffer.IsEmpty() || env.IsExceptionPending()) return;
      memcpy(stampBuffer.Data(), stamps.data(), stamps.size() * sizeof(uint64_t));
      for (size_t i = 0; i < datagrams.size(); i++) array.Set(static_cast<uint32_t>(i), datagrams[i]);
      napi_value typed;
      napi_create_typedarray(env, napi_biguint64_array, stamps.size(), stampBuffer, 0, &typed);
      if (!Deliver(onData_, {array, Napi::Value(env, typed)})) return;
    }
    ReportLoss(env, lostErrno, truncatedSize);
  }

 private:
  enum class Got { kDatagram, kSkip, kStop };

  // One datagram of a burst into [into, into + room), stamped right after recvmsg(). kStop
  // ends the burst: nothing queued (EAGAIN), a loss (ENOBUFS: *lostErrno; the socket stays
  // usable) or a datagram that did not fit (*truncatedSize, its real length). kSkip: not
  // from the kernel (port 0), which alone may talk to us; anything else is spoofing or noise.
  Got ReceiveOne(uint8_t* into, size_t room, size_t* length, uint64_t* stamp, int* lostErrno, size_t* truncatedSize) {
    uint32_t fromPort;
    int flags;
    ssize_t n = RecvNetlink(state_->fd, into, room, MSG_TRUNC, &fromPort, &flags);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && *lostErrno == 0) *lostErrno = errno;
      return Got::kStop;
    }
    *stamp = MonotonicNs();
    if (flags & MSG_TRUNC) {
      *truncatedSize = static_cast<size_t>(n);
      return Got::kStop;
    }
    if (fromPort != 0) return Got::kSkip;
    *length = static_cast<size_t>(n);
    return Got::kDatagram;
  }

  // Reports ENOBUFS or a truncated datagram after the datagrams were delivered.
  void ReportLoss(Napi::Env env, int lostErrno, size_t truncatedSize) {
    if (state_ == nullptr) return;  // closed from the callback
    if (lostErrno != 0) {
      Deliver(onError_, {ErrnoError(env, lostErrno, "recvmsg").Value()});
    } else if (truncatedSize != 0) {
      Deliver(onError_, {ErrnoError(env, EMSGSIZE, "recvmsg",
                                    "datagram of " + std::to_string(truncatedSize) +
                                        " bytes truncated")
                             .Value()});
    }
  }

  void AllocateArena(Napi::Env env, size_t size) {
    // Made by JS's own Buffer.allocUnsafeSlow, not napi_create_buffer: a Buffer made in C++
    // has a different hidden class, and V8's optimized code for the JS decoders (trained on
    // JS Buffers, see src/monitor/warm-up.ts) would deoptimize on it ("wrong map").
    Napi::Function allocUnsafeSlow =
        env.Global().Get("Buffer").As<Napi::Object>().Get("allocUnsafeSlow").As<Napi::Function>();
    Napi::Value made = allocUnsafeSlow.Call({Napi::Number::New(env, static_cast<double>(size))});
    if (made.IsEmpty() || !made.IsBuffer()) return;  // teardown: keep the arena we have
    Napi::Buffer<uint8_t> arena = made.As<Napi::Buffer<uint8_t>>();
    arenaData_ = arena.Data();
    arenaSize_ = size;
    arena_ = Napi::Persistent(arena);
  }

  // Arena mode: receives each datagram at the next free offset of the arena (no copy), stops
  // when less than the largest datagram seen fits (the level-triggered poll fires again), and
  // calls onData(arena, layout, stamps, count) with the same objects every time.
  void ReadIntoArena(Napi::Env env, int pendingError) {
    int lostErrno = pendingError;
    size_t truncatedSize = 0;
    size_t used = 0;
    uint32_t count = 0;
    while (count < static_cast<uint32_t>(kReadBudget) && arenaSize_ - used >= maxDatagram_) {
      size_t n;
      uint64_t stamp;
      Got got = ReceiveOne(arenaData_ + used, arenaSize_ - used, &n, &stamp, &lostErrno, &truncatedSize);
      if (got == Got::kStop) break;
      if (got == Got::kSkip) continue;
      layoutData_[2 * count] = static_cast<uint32_t>(used);
      layoutData_[2 * count + 1] = static_cast<uint32_t>(n);
      stampsData_[count] = stamp;
      count++;
      // 8-byte aligned starts keep every datagram's header reads aligned.
      used += (n + 7) & ~static_cast<size_t>(7);
    }
    if (count > 0) {
      Napi::Value arena = arena_.Value(), layout = layout_.Value(), stamps = stamps_.Value();
      Napi::Value countValue = Napi::Number::New(env, count);
      // Values cannot be made while a worker is being terminated: give up on this burst.
      if (arena.IsEmpty() || layout.IsEmpty() || stamps.IsEmpty() || countValue.IsEmpty() || env.IsExceptionPending())
        return;
      if (!Deliver(onData_, {arena, layout, stamps, countValue})) return;
    }
    if (truncatedSize != 0 && state_ != nullptr) {
      // Room for the datagram that did not fit next time; JS still holds the old arena's
      // views only during its call, so replacing it here is safe.
      maxDatagram_ = truncatedSize + 4096;
      if (arenaSize_ < 4 * maxDatagram_) AllocateArena(env, 4 * maxDatagram_);
    }
    ReportLoss(env, lostErrno, truncatedSize);
  }

  // send(datagram: Buffer): number. One datagram may carry many netlink messages.
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env, "netlink socket")) return env.Undefined();
    if (info.Length() < 1 || !info[0].IsBuffer()) {
      Napi::TypeError::New(env, "send(buffer)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Buffer<uint8_t> data = info[0].As<Napi::Buffer<uint8_t>>();
    sockaddr_nl kernel = {};
    kernel.nl_family = AF_NETLINK;
    ssize_t n;
    do {
      n = sendto(state_->fd, data.Data(), data.Length(), 0, reinterpret_cast<sockaddr*>(&kernel),
                 sizeof kernel);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      ErrnoError(env, errno, "sendto").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    return Napi::Number::New(env, static_cast<double>(n));
  }

  Napi::Value Membership(const Napi::CallbackInfo& info, int option, const char* name) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env, "netlink socket")) return env.Undefined();
    int group = info[0].ToNumber().Int32Value();
    if (setsockopt(state_->fd, SOL_NETLINK, option, &group, sizeof group) != 0)
      ErrnoError(env, errno, "setsockopt", name).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Value AddMembership(const Napi::CallbackInfo& info) {
    return Membership(info, NETLINK_ADD_MEMBERSHIP, "NETLINK_ADD_MEMBERSHIP");
  }
  Napi::Value DropMembership(const Napi::CallbackInfo& info) {
    return Membership(info, NETLINK_DROP_MEMBERSHIP, "NETLINK_DROP_MEMBERSHIP");
  }

  Napi::Value PortId(const Napi::CallbackInfo& info) {
    if (state_ == nullptr) return info.Env().Null();
    sockaddr_nl local = {};
    socklen_t len = sizeof local;
    getsockname(state_->fd, reinterpret_cast<sockaddr*>(&local), &len);
    return Napi::Number::New(info.Env(), local.nl_pid);
  }
  Napi::Value ReceiveBuffer(const Napi::CallbackInfo& info) {
    if (state_ == nullptr) return info.Env().Null();
    int size = 0;
    socklen_t len = sizeof size;
    getsockopt(state_->fd, SOL_SOCKET, SO_RCVBUF, &size, &len);
    return Napi::Number::New(info.Env(), size);
  }
  std::vector<uint8_t> buffer_;
  // Arena mode (see the top of this file).
  bool arenaMode_ = false;
  Napi::Reference<Napi::Buffer<uint8_t>> arena_;
  uint8_t* arenaData_ = nullptr;
  size_t arenaSize_ = 0;
  size_t maxDatagram_ = kInitialMaxDatagram;
  Napi::Reference<Napi::Uint32Array> layout_;
  uint32_t* layoutData_ = nullptr;
  Napi::ObjectReference stamps_;
  uint64_t* stampsData_ = nullptr;
};

}  // namespace

void InitNetlinkSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("NetlinkSocket", NetlinkSocket::Define(env));
}

}  // namespace netheal
