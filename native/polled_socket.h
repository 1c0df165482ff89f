// PolledSocket: what the addon's socket classes share: a uv_poll handle on the loop of the
// environment that created it, explicit fd lifetimes, and calls into JS with an async context.
#pragma once

#include <memory>
#include <vector>

#include "common.h"

namespace netheal {

// Owns the fds and the poll handle. It is freed in the uv_close callback, after the poll
// handle has let go of the fds, so it may outlive the JS object.
struct PollState {
  uv_poll_t handle;
  int fd = -1;      // the socket
  int pollFd = -1;  // what uv_poll watches: the socket, or an epoll fd wrapping it
};

inline void OnPollClosed(uv_handle_t* handle) {
  auto* state = reinterpret_cast<PollState*>(handle);
  if (state->pollFd != state->fd) close(state->pollFd);
  close(state->fd);
  delete state;
}

// CRTP base: T implements `void ReadBurst(int status)`, called when the fd is readable.
template <typename T>
class PolledSocket : public Napi::ObjectWrap<T> {
 public:
  explicit PolledSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<T>(info) {}
  ~PolledSocket() override { CloseNow(); }

  // close(), ref(), unref() and the fd accessor, for T's DefineClass.
  static std::vector<typename Napi::ObjectWrap<T>::PropertyDescriptor> PollingMembers() {
    using Method = Napi::Value (T::*)(const Napi::CallbackInfo&);
    return {
        Napi::ObjectWrap<T>::InstanceMethod("close", static_cast<Method>(&PolledSocket::Close)),
        Napi::ObjectWrap<T>::InstanceMethod("ref", static_cast<Method>(&PolledSocket::RefHandle)),
        Napi::ObjectWrap<T>::InstanceMethod("unref", static_cast<Method>(&PolledSocket::UnrefHandle)),
        Napi::ObjectWrap<T>::InstanceAccessor("fd", static_cast<Method>(&PolledSocket::Fd), nullptr),
    };
  }

 protected:
  // Starts watching `pollFd` (-1: the socket itself) for readability. Takes ownership of both
  // fds whatever happens; on failure throws into JS and returns false.
  bool StartPolling(Napi::Env env, int fd, int pollFd, const Napi::Value& onData, const Napi::Value& onError,
                    const char* resource) {
    uv_loop_t* loop = nullptr;
    auto* state = new PollState();
    state->fd = fd;
    state->pollFd = pollFd < 0 ? fd : pollFd;
    int rc = napi_get_uv_event_loop(env, &loop) == napi_ok ? uv_poll_init(loop, &state->handle, state->pollFd) : UV_EINVAL;
    if (rc == 0) {
      state->handle.data = static_cast<T*>(this);
      rc = uv_poll_start(&state->handle, UV_READABLE, OnReadable);
      if (rc != 0) {
        // Initialized: must go through uv_close, which closes the fds.
        uv_close(reinterpret_cast<uv_handle_t*>(&state->handle), OnPollClosed);
        state = nullptr;
      }
    }
    if (rc != 0) {
      if (state != nullptr) {
        if (state->pollFd != fd) close(state->pollFd);
        close(fd);
        delete state;
      }
      UvError(env, rc, "uv_poll").ThrowAsJavaScriptException();
      return false;
    }
    state_ = state;
    onData_ = Napi::Persistent(onData.As<Napi::Function>());
    onError_ = Napi::Persistent(onError.As<Napi::Function>());
    context_ = std::make_unique<Napi::AsyncContext>(env, resource, this->Value());
    // Keep the JS object alive while the socket is open; Close() releases it.
    this->Ref();
    napi_add_env_cleanup_hook(env, CleanupHook, this);
    return true;
  }

  // Idempotent. Safe from JS, from the destructor and from the environment cleanup hook.
  void CloseNow() {
    if (state_ == nullptr) return;
    napi_remove_env_cleanup_hook(this->Env(), CleanupHook, this);
    uv_poll_stop(&state_->handle);
    state_->handle.data = nullptr;
    // The poll handle lets go of the fds before they are closed (in OnPollClosed).
    uv_close(reinterpret_cast<uv_handle_t*>(&state_->handle), OnPollClosed);
    state_ = nullptr;
    onData_.Reset();
    onError_.Reset();
    context_.reset();
  }

  // libuv reports EPOLLERR as UV_EBADF and stops the handle; a subclass that reads the error
  // itself (SO_ERROR, MSG_ERRQUEUE) restarts it with this.
  bool RestartPolling() {
    return state_ != nullptr && uv_poll_start(&state_->handle, UV_READABLE, OnReadable) == 0;
  }

  // Calls into JS with the async context; routes a thrown exception to 'uncaughtException'.
  // Returns false when the socket was closed from the callback (or the call threw).
  bool Deliver(Napi::FunctionReference& fn, std::initializer_list<napi_value> args) {
    if (fn.IsEmpty() || context_ == nullptr) return false;
    Napi::Env env = this->Env();
    // The raw call on purpose: node-addon-api's MakeCallback turns a failed call into a fatal
    // error when it cannot throw, which is what a worker terminated during the callback gets.
    napi_value result;
    napi_status status = napi_make_callback(env, *context_, this->Value(), fn.Value(), args.size(), args.begin(), &result);
    if (status != napi_ok) {
      bool pending = false;
      napi_value error;
      if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
          napi_get_and_clear_last_exception(env, &error) == napi_ok && CanRunJs(env)) {
        napi_fatal_exception(env, error);
      }
      return false;
    }
    return state_ != nullptr;
  }

  bool CheckOpen(Napi::Env env, const char* what) {
    if (state_ != nullptr) return true;
    ClosedError(env, what).ThrowAsJavaScriptException();
    return false;
  }

  Napi::FunctionReference onData_;
  Napi::FunctionReference onError_;
  PollState* state_ = nullptr;

 private:
  static void OnReadable(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<T*>(handle->data);
    if (self == nullptr) return;
    // At environment teardown Node runs the loop once more before the cleanup hook closes
    // us; JavaScript cannot be called then. Stop watching; the hook closes the fds.
    if (!CanRunJs(self->Env())) {
      uv_poll_stop(handle);
      return;
    }
    self->ReadBurst(status);
  }
  static void CleanupHook(void* arg) { static_cast<PolledSocket*>(arg)->CloseNow(); }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (state_ != nullptr) {
      CloseNow();
      this->Unref();
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
  Napi::Value Fd(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), state_ == nullptr ? -1 : state_->fd);
  }

  std::unique_ptr<Napi::AsyncContext> context_;
};

}  // namespace netheal
