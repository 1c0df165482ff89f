// NetlinkSocket: one AF_NETLINK socket on the libuv loop of the calling environment.
//
// JS gets every wake-up's datagrams in one call: (datagrams: Buffer[], stamps: BigUint64Array)
// with CLOCK_MONOTONIC taken right after each recvmsg(). Parsing lives in TypeScript.
// Loss of sync (ENOBUFS, a truncated datagram) is reported, never hidden.
#include <linux/netlink.h>
#include <sys/socket.h>
#include <uv.h>

#include <vector>

#include "common.h"

namespace netheal {
namespace {

// At most this many datagrams per wake-up, so a storm cannot starve the loop; the poll is
// level-triggered and fires again on the next iteration for the rest.
constexpr int kReadBudget = 64;
constexpr size_t kInitialBuffer = 64 * 1024;
constexpr int kDefaultRcvbuf = 8 * 1024 * 1024;

// Owns the fd and the poll handle. Outlives the JS object if needed: it is freed in the
// uv_close callback, and the fd is closed there, after the poll handle has let go of it.
struct PollState {
  uv_poll_t handle;
  int fd;
};

void OnPollClosed(uv_handle_t* handle) {
  auto* state = reinterpret_cast<PollState*>(handle);
  close(state->fd);
  delete state;
}

class NetlinkSocket : public Napi::ObjectWrap<NetlinkSocket> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NetlinkSocket",
                       {
                           InstanceMethod<&NetlinkSocket::Send>("send"),
                           InstanceMethod<&NetlinkSocket::AddMembership>("addMembership"),
                           InstanceMethod<&NetlinkSocket::DropMembership>("dropMembership"),
                           InstanceMethod<&NetlinkSocket::Close>("close"),
                           InstanceMethod<&NetlinkSocket::RefHandle>("ref"),
                           InstanceMethod<&NetlinkSocket::UnrefHandle>("unref"),
                           InstanceAccessor<&NetlinkSocket::PortId>("portId"),
                           InstanceAccessor<&NetlinkSocket::ReceiveBuffer>("receiveBuffer"),
                           InstanceAccessor<&NetlinkSocket::Fd>("fd"),
                       });
  }

  // new NetlinkSocket({protocol, groups?, netns?, receiveBuffer?}, onData, onError)
  NetlinkSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NetlinkSocket>(info) {
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

    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
      Napi::Error::New(env, "napi_get_uv_event_loop failed").ThrowAsJavaScriptException();
      return;
    }
    state_ = new PollState();
    state_->fd = fd.Release();
    state_->handle.data = this;
    int rc = uv_poll_init(loop, &state_->handle, state_->fd);
    if (rc == 0) rc = uv_poll_start(&state_->handle, UV_READABLE, OnReadable);
    if (rc != 0) {
      close(state_->fd);
      delete state_;
      state_ = nullptr;
      Napi::Error error = Napi::Error::New(env, std::string("uv_poll failed: ") + uv_strerror(rc));
      error.Set("code", Napi::String::New(env, uv_err_name(rc)));
      error.ThrowAsJavaScriptException();
      return;
    }
    buffer_.resize(kInitialBuffer);
    onData_ = Napi::Persistent(info[1].As<Napi::Function>());
    onError_ = Napi::Persistent(info[2].As<Napi::Function>());
    context_ = std::make_unique<Napi::AsyncContext>(env, "netheal:NetlinkSocket", Value());
    // Keep the JS object alive while the socket is open; Close() releases it.
    Ref();
    napi_add_env_cleanup_hook(env, CleanupHook, this);
  }

  ~NetlinkSocket() override { CloseNow(); }

 private:
  static void CleanupHook(void* arg) { static_cast<NetlinkSocket*>(arg)->CloseNow(); }

  // Idempotent. Safe from JS, from the destructor and from the environment cleanup hook.
  void CloseNow() {
    if (state_ == nullptr) return;
    napi_remove_env_cleanup_hook(Env(), CleanupHook, this);
    uv_poll_stop(&state_->handle);
    state_->handle.data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&state_->handle), OnPollClosed);
    state_ = nullptr;
    onData_.Reset();
    onError_.Reset();
    context_.reset();
  }

  static void OnReadable(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<NetlinkSocket*>(handle->data);
    if (self != nullptr) self->ReadBurst(status);
  }

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
          uv_poll_start(&state_->handle, UV_READABLE, OnReadable) != 0) {
        Napi::Error error = Napi::Error::New(env, std::string("poll failed: ") + uv_strerror(status));
        error.Set("code", Napi::String::New(env, uv_err_name(status)));
        Deliver(onError_, {error.Value()});
        return;
      }
    }
    std::vector<Napi::Value> datagrams;
    std::vector<uint64_t> stamps;
    int lostErrno = pendingError;
    size_t truncatedSize = 0;
    for (int i = 0; i < kReadBudget; i++) {
      sockaddr_nl from = {};
      iovec iov = {buffer_.data(), buffer_.size()};
      msghdr msg = {};
      msg.msg_name = &from;
      msg.msg_namelen = sizeof from;
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      ssize_t n = recvmsg(state_->fd, &msg, MSG_TRUNC);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        // ENOBUFS: the kernel dropped messages for us. The socket stays usable.
        if (lostErrno == 0) lostErrno = errno;
        break;
      }
      uint64_t stamp = MonotonicNs();
      if (msg.msg_flags & MSG_TRUNC) {
        truncatedSize = static_cast<size_t>(n);
        buffer_.resize(truncatedSize + 4096);
        break;
      }
      // Only the kernel (port 0) may talk to us; anything else is spoofing or noise.
      if (from.nl_pid != 0) continue;
      datagrams.push_back(Napi::Buffer<uint8_t>::Copy(env, buffer_.data(), static_cast<size_t>(n)));
      stamps.push_back(stamp);
    }
    if (!datagrams.empty()) {
      Napi::Array array = Napi::Array::New(env, datagrams.size());
      Napi::ArrayBuffer stampBuffer = Napi::ArrayBuffer::New(env, stamps.size() * sizeof(uint64_t));
      memcpy(stampBuffer.Data(), stamps.data(), stamps.size() * sizeof(uint64_t));
      for (size_t i = 0; i < datagrams.size(); i++) array.Set(static_cast<uint32_t>(i), datagrams[i]);
      napi_value typed;
      napi_create_typedarray(env, napi_biguint64_array, stamps.size(), stampBuffer, 0, &typed);
      if (!Deliver(onData_, {array, Napi::Value(env, typed)})) return;
    }
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

  // Calls into JS with the async context; routes a thrown exception to 'uncaughtException'.
  bool Deliver(Napi::FunctionReference& fn, std::initializer_list<napi_value> args) {
    if (fn.IsEmpty() || context_ == nullptr) return false;
    Napi::Env env = Env();
    fn.MakeCallback(Value(), args, *context_);
    if (env.IsExceptionPending()) {
      Napi::Error error = env.GetAndClearPendingException();
      napi_fatal_exception(env, error.Value());
      return false;
    }
    return state_ != nullptr;
  }

  bool CheckOpen(Napi::Env env) {
    if (state_ != nullptr) return true;
    Napi::Error error = Napi::Error::New(env, "netlink socket is closed");
    error.Set("code", Napi::String::New(env, "NETHEAL_ERR_CLOSED"));
    error.ThrowAsJavaScriptException();
    return false;
  }

  // send(datagram: Buffer): number. One datagram may carry many netlink messages.
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
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
    if (!CheckOpen(env)) return env.Undefined();
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

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (state_ != nullptr) {
      CloseNow();
      Unref();
    }
    return info.Env().Undefined();
  }
  Napi::Value RefHandle(const Napi::CallbackInfo& info) {
    if (state_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(&state_->handle));
    return info.Env().Undefined();
  }
  Napi::Value UnrefHandle(const Napi::CallbackInfo& info) {
    if (state_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(&state_->handle));
    return info.Env().Undefined();
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
  Napi::Value Fd(const Napi::CallbackInfo& info) {
    if (state_ == nullptr) return Napi::Number::New(info.Env(), -1);
    return Napi::Number::New(info.Env(), state_->fd);
  }

  PollState* state_ = nullptr;
  std::vector<uint8_t> buffer_;
  Napi::FunctionReference onData_;
  Napi::FunctionReference onError_;
  std::unique_ptr<Napi::AsyncContext> context_;
};

}  // namespace

void InitNetlinkSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("NetlinkSocket", NetlinkSocket::Define(env));
}

}  // namespace netheal
