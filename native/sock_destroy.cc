// SockDestroyer: bulk SOCK_DESTROY off the event loop, on several threads at once.
//
// The kernel does the work of a SOCK_DESTROY inside the sendmsg() that carries it (for an
// established socket: the abort, the RST through the device and, on a veth, the peer's
// processing of it). On the event loop that blocks JavaScript for a whole window, and one
// netlink socket serializes everything on one core. Here a call runs on a libuv threadpool
// thread (a Napi::AsyncWorker) that starts up to N-1 helper threads. Every thread owns one
// of the destroyer's NETLINK_SOCK_DIAG sockets, takes windows of requests from a shared
// queue, sends each window with one sendmsg() and collects its acks (one NLMSG_ERROR each).
// Since Linux 6.9 sock_diag has no global mutex, so the kernel runs the windows sent on
// different sockets in parallel.
//
// Two ways to fill the queue:
// - destroy(requests): SOCK_DESTROY messages built by JavaScript (sockets it already holds).
// - dumpDestroy(dumps): the pool thread runs the SOCK_DIAG_BY_FAMILY dumps itself on a
//   socket of its own and queues one SOCK_DESTROY per dumped socket while the dump still
//   streams, so destroying overlaps dumping and no dumped socket passes through JavaScript
//   unless it failed (the 72-byte inet_diag_msg of each is handed back for that).
//
// Threads and lifetimes (read before changing anything):
// - The sockets are opened on the main thread, inside the target namespace (SocketInNetns);
//   a socket keeps its namespace for life, so no pool thread ever calls setns().
// - The fds live in a Shared block held by the JS object AND by the call in flight
//   (shared_ptr). close() from JS, or the environment's cleanup hook, only drops the JS
//   side's reference and wakes the threads (eventfd, and a 50 ms bound on condition waits);
//   the fds are closed when the call lets go, never under a thread that may still use them.
// - Threads never touch JavaScript memory: requests are copied into the call at the start,
//   results are copied out in OnOK() on the main thread, after every thread has been joined.
// - One call at a time per destroyer (the acks of two calls on one socket would mix); the
//   Sockets class serializes its operations anyway, a second call throws EBUSY.
// - At environment teardown (process exit, worker_threads terminate) Node waits for the
//   call in flight to finish before it runs the cleanup hooks, so a terminated worker's
//   destroy runs to its end (bounded by its timeout) and terminate() waits for it; close()
//   from JavaScript is what stops a call early.
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "common.h"

namespace netheal {
namespace {

constexpr int kMaxSockets = 16;
constexpr int kDefaultRcvbuf = 32 * 1024 * 1024;
// One SOCK_DESTROY: nlmsghdr + inet_diag_req_v2.
constexpr size_t kDestroyLen = sizeof(nlmsghdr) + sizeof(inet_diag_req_v2);
// What dumpDestroy hands back per socket: the fixed part of its dump reply.
constexpr size_t kDiagMsgLen = sizeof(inet_diag_msg);
static_assert(kDestroyLen == 72 && kDiagMsgLen == 72, "uapi layout");
// Every TCP state bit (TCP_ESTABLISHED .. TCP_NEW_SYN_RECV), as src/kernel/inet-diag.ts.
constexpr uint32_t kAllStates = (1u << 13) - 2;
// recvmmsg() batch: acks are one datagram each (netlink_ack allocates one skb per ack).
constexpr unsigned kRecvBatch = 64;
// An ack with NETLINK_CAP_ACK is 36 bytes; room for an uncapped one.
constexpr size_t kAckBuffer = 512;
// A dump datagram is at most 32 KiB (netlink_recvmsg caps max_recvmsg_len); room to spare.
// The kernel sizes the datagrams it builds after the largest buffer a socket has offered to
// recvmsg() (nlk->max_recvmsg_len, never shrinks) but at least NLMSG_GOODSIZE (under 8 KiB):
// a destroyer built with a smaller dumpDatagram gets smaller datagrams, so the first destroys
// start sooner (see the hazard in Produce), at the price of more syscalls.
constexpr size_t kDumpBuffer = 64 * 1024;
constexpr size_t kMinDumpBuffer = 8 * 1024;
// errnos[] value until the kernel has answered for that request.
constexpr int32_t kUnanswered = INT32_MIN;

// What the JS object and the call in flight share. Freed (fds closed) with the last owner.
struct Shared {
  struct Channel {
    UniqueFd fd;
    uint32_t portId = 0;
  };
  std::vector<Channel> channels;  // destroy sockets, one per thread
  Channel dump;                   // dumpDestroy's dump socket
  UniqueFd wake;                  // eventfd, written once by Close(): wakes poll()
  std::atomic<bool> closed{false};
  // Main thread only:
  bool busy = false;      // a call is in flight
  uint32_t seq = 0;       // next SOCK_DESTROY sequence number
  uint32_t dumpSeq = 0;   // next dump sequence number
  int receiveBuffer = 0;  // effective SO_RCVBUF of the destroy sockets
  size_t dumpBuffer = kDumpBuffer;  // what the dump socket's recvmsg() offers (fixed for life)

  void Close() {
    if (closed.exchange(true)) return;
    uint64_t one = 1;
    // Best effort: without it threads notice within 50 ms anyway.
    if (write(wake.Get(), &one, sizeof one) < 0) {
    }
  }
};

// Opens one bound NETLINK_SOCK_DIAG socket in the namespace (main thread). On failure throws
// into JS and returns false.
bool OpenChannel(Napi::Env env, const std::string& netns, int rcvbuf, Shared::Channel* channel) {
  const char* syscall = "socket";
  UniqueFd fd(SocketInNetns(netns, AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG, &syscall));
  if (!fd.Valid()) {
    ErrnoError(env, errno, syscall, netns).ThrowAsJavaScriptException();
    return false;
  }
  // SO_RCVBUFFORCE passes rmem_max but needs CAP_NET_ADMIN; fall back to SO_RCVBUF.
  if (setsockopt(fd.Get(), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0)
    setsockopt(fd.Get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  // Acks without a copy of the request: 36 bytes each.
  int one = 1;
  setsockopt(fd.Get(), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  sockaddr_nl local = {};
  local.nl_family = AF_NETLINK;
  socklen_t len = sizeof local;
  if (bind(fd.Get(), reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
      getsockname(fd.Get(), reinterpret_cast<sockaddr*>(&local), &len) != 0) {
    ErrnoError(env, errno, "bind").ThrowAsJavaScriptException();
    return false;
  }
  channel->fd = std::move(fd);
  channel->portId = local.nl_pid;
  return true;
}

// A Buffer holding a copy of `bytes` (an empty one for no bytes).
Napi::Buffer<uint8_t> CopyOut(Napi::Env env, const std::vector<uint8_t>& bytes) {
  if (bytes.empty()) return Napi::Buffer<uint8_t>::New(env, 0);
  return Napi::Buffer<uint8_t>::Copy(env, bytes.data(), bytes.size());
}

// ------------------------------------------------------------------ dump scanning

enum class Scan { kMore, kDone, kKernelError, kMalformed };

// Walks one dump datagram: every SOCK_DIAG_BY_FAMILY reply for (seq, portId) becomes one
// SOCK_DESTROY (appended to `requests`, same identity, cookie included, sequence number 0)
// and its inet_diag_msg is appended to `messages`. Messages for another seq or port are
// skipped. Bounds-checked: anything that does not fit is kMalformed. `*err` gets the
// kernel's errno for kKernelError (NLMSG_ERROR, or NLMSG_DONE carrying one).
Scan ScanDump(const uint8_t* data, size_t length, uint32_t seq, uint32_t portId, uint8_t protocol,
              std::vector<uint8_t>* requests, std::vector<uint8_t>* messages, int* err) {
  size_t offset = 0;
  while (offset < length) {
    nlmsghdr header;
    if (length - offset < sizeof header) return Scan::kMalformed;
    memcpy(&header, data + offset, sizeof header);
    if (header.nlmsg_len < sizeof header || header.nlmsg_len > length - offset) return Scan::kMalformed;
    const uint8_t* payload = data + offset + sizeof header;
    size_t payloadLength = header.nlmsg_len - sizeof header;
    if (header.nlmsg_pid == portId && header.nlmsg_seq == seq) {
      switch (header.nlmsg_type) {
        case NLMSG_NOOP:
        case NLMSG_OVERRUN:
          break;
        case NLMSG_DONE:
        case NLMSG_ERROR: {
          int32_t status = 0;
          if (payloadLength >= sizeof status) memcpy(&status, payload, sizeof status);
          else if (header.nlmsg_type == NLMSG_ERROR) return Scan::kMalformed;
          if (status != 0) {
            *err = -status;
            return Scan::kKernelError;
          }
          return Scan::kDone;
        }
        case SOCK_DIAG_BY_FAMILY: {
          if (payloadLength < kDiagMsgLen) return Scan::kMalformed;
          inet_diag_msg msg;
          memcpy(&msg, payload, sizeof msg);
          if (msg.idiag_family != AF_INET && msg.idiag_family != AF_INET6) return Scan::kMalformed;
          size_t at = requests->size();
          requests->resize(at + kDestroyLen);
          nlmsghdr out = {};
          out.nlmsg_len = kDestroyLen;
          out.nlmsg_type = SOCK_DESTROY;
          out.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
          inet_diag_req_v2 req = {};
          req.sdiag_family = msg.idiag_family;
          req.sdiag_protocol = protocol;
          req.idiag_states = kAllStates;
          req.id = msg.id;
          memcpy(requests->data() + at, &out, sizeof out);
          memcpy(requests->data() + at + sizeof out, &req, sizeof req);
          messages->insert(messages->end(), payload, payload + kDiagMsgLen);
          break;
        }
        default:
          return Scan::kMalformed;
      }
    }
    size_t next = offset + NLMSG_ALIGN(header.nlmsg_len);
    if (next <= offset) return Scan::kMalformed;
    offset = next;
  }
  return Scan::kMore;
}

// ------------------------------------------------------------------ one call

// One syscall a call made, timed by the thread that made it (CLOCK_MONOTONIC): what the
// kernel spent on the call's behalf, as opposed to queueing, waiting and our own code.
struct Span {
  enum Kind : uint64_t { kDumpSend = 0, kDumpRecv = 1, kDestroySend = 2, kAckRecv = 3 };
  uint64_t kind, startNs, endNs;
};

// Why a call failed, recorded by the first thread that fails (the others stop).
struct Failure {
  enum Kind { kNone, kErrno, kKernel, kTimeout, kClosed, kProtocol } kind = kNone;
  int err = 0;
  const char* what = "";  // syscall (kErrno, kKernel) or detail (kProtocol)
  size_t window = 0;      // kTimeout: size of the unanswered window (0: the dump stalled)
};

class DestroyCall : public Napi::AsyncWorker {
 public:
  // `requests`: SOCK_DESTROY messages to send (destroy()); `dumps`: dump requests to run,
  // queueing what they return (dumpDestroy()). One of the two is empty.
  DestroyCall(Napi::Env env, std::shared_ptr<Shared> shared, std::vector<uint8_t> requests,
              std::vector<std::vector<uint8_t>> dumps, size_t window, int threads, int timeoutMs)
      : Napi::AsyncWorker(env, "netheal:SockDestroy"),
        shared_(std::move(shared)),
        dumps_(std::move(dumps)),
        window_(window),
        threads_(threads),
        timeoutMs_(timeoutMs),
        requests_(std::move(requests)),
        counts_(dumps_.size(), 0) {
    // A raw promise on purpose: settling it must not turn into a fatal error (node-addon-api's
    // Deferred does when it cannot throw) if the environment is being torn down.
    if (napi_create_promise(env, &deferred_, &promise_) != napi_ok) deferred_ = nullptr;
    seqBase_ = shared_->seq;
    dumpSeqBase_ = shared_->dumpSeq;
    shared_->busy = true;
    if (dumps_.empty()) {
      released_ = requests_.size() / kDestroyLen;
      finished_ = true;
    }
  }

  // The promise (valid in the handle scope the call was made in), or empty if none was made.
  Napi::Value Promise() { return Napi::Value(Env(), promise_); }

  // Keeps the JS SockDestroyer alive until the call settles (released in OnOK).
  void Hold(Napi::Object destroyer) { holder_ = Napi::Persistent(destroyer); }

 protected:
  // On a threadpool thread.
  void Execute() override {
    executeNs_ = MonotonicNs();
    // Helper threads' start arguments must stay put: no reallocation after this.
    starts_.reserve(static_cast<size_t>(threads_));
    if (dumps_.empty()) {
      size_t windows = (released_ + window_ - 1) / window_;
      for (size_t i = 1; i < windows && static_cast<int>(i) < threads_; i++) StartHelper();
    } else {
      Produce();
    }
    Work(0);
    for (pthread_t thread : helpers_) pthread_join(thread, nullptr);
  }

  // On the main thread, after Execute() returned (every helper joined).
  void OnOK() override {
    Napi::Env env = Env();
    holder_.Reset();
    shared_->busy = false;
    // Leave a gap after this call's numbers: stray acks of a timed-out call stay unmatched.
    shared_->seq = seqBase_ + static_cast<uint32_t>(released_) + 1;
    shared_->dumpSeq = dumpSeqBase_ + static_cast<uint32_t>(dumps_.size()) + 1;
    // At environment teardown (a worker terminated, the process exiting) Node still completes
    // the call, but JavaScript can no longer run and nobody is left to tell. Leave quietly;
    // and should a value still fail to be made, never write through an empty one.
    if (deferred_ == nullptr || !CanRunJs(env)) return;
    Napi::HandleScope scope(env);
    if (failure_.kind != Failure::kNone) return Settle(false, FailureError(env).Value());
    Napi::Int32Array errnos = Napi::Int32Array::New(env, released_);
    Napi::Buffer<uint8_t> messages = CopyOut(env, messages_);
    Napi::Array counts = Napi::Array::New(env, counts_.size());
    Napi::Object result = Napi::Object::New(env);
    // Out of memory, or the environment going away after all: reject with what went wrong
    // rather than leave the caller waiting for ever.
    if (errnos.IsEmpty() || messages.IsEmpty() || counts.IsEmpty() || result.IsEmpty() || env.IsExceptionPending())
      return Settle(false, nullptr);
    for (const Window& w : done_) memcpy(errnos.Data() + w.start, w.errnos.data(), w.errnos.size() * sizeof(int32_t));
    for (size_t i = 0; i < counts_.size(); i++) counts.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(counts_[i])));
    result.Set("errnos", errnos);
    result.Set("messages", messages);
    result.Set("counts", counts);
    result.Set("lastAckNs", Napi::BigInt::New(env, lastAckNs_));
    result.Set("executeNs", Napi::BigInt::New(env, executeNs_));
    // [kind, startNs, endNs] per syscall, flat.
    Napi::BigUint64Array spans = Napi::BigUint64Array::New(env, spans_.size() * 3);
    if (spans.IsEmpty() || env.IsExceptionPending()) return Settle(false, nullptr);
    for (size_t i = 0; i < spans_.size(); i++) {
      spans[i * 3] = spans_[i].kind;
      spans[i * 3 + 1] = spans_[i].startNs;
      spans[i * 3 + 2] = spans_[i].endNs;
    }
    result.Set("spans", spans);
    Settle(true, result);
  }

  void OnError(const Napi::Error& e) override {
    // Only reached through SetError, which this class never calls.
    holder_.Reset();
    shared_->busy = false;
    if (deferred_ != nullptr && CanRunJs(Env())) Settle(false, e.Value());
  }

 private:
  struct Start {
    DestroyCall* self;
    size_t channel;
  };
  // The answers to one window: errnos for requests [start, start + size).
  struct Window {
    size_t start;
    std::vector<int32_t> errnos;
  };

  // A thread's spans, handed over to spans_ when the thread leaves (on every return path).
  struct SpanLog {
    DestroyCall* call;
    std::vector<Span> spans;
    ~SpanLog() {
      std::lock_guard<std::mutex> lock(call->mutex_);
      call->spans_.insert(call->spans_.end(), spans.begin(), spans.end());
    }
    void Add(Span::Kind kind, uint64_t startNs) { spans.push_back({kind, startNs, MonotonicNs()}); }
  };

  // Settles the promise exactly once: resolves or rejects with `value`. Should `value` be
  // missing or its making have left an exception pending, rejects with that exception (or,
  // failing that, an error saying so, or undefined): a promise returned to JavaScript always
  // settles while JavaScript can run.
  void Settle(bool resolve, napi_value value) {
    napi_env env = Env();
    napi_deferred deferred = deferred_;
    if (deferred == nullptr) return;
    deferred_ = nullptr;
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (value != nullptr && !pending) {
      if (resolve) napi_resolve_deferred(env, deferred, value);
      else napi_reject_deferred(env, deferred, value);
      return;
    }
    napi_value reason = nullptr;
    if (pending) napi_get_and_clear_last_exception(env, &reason);
    if (reason == nullptr) {
      napi_value message;
      if (napi_create_string_utf8(env, "SockDestroyer: could not build the result", NAPI_AUTO_LENGTH, &message) == napi_ok)
        napi_create_error(env, nullptr, message, &reason);
    }
    if (reason == nullptr) napi_get_undefined(env, &reason);
    napi_reject_deferred(env, deferred, reason);
  }

  Napi::Error FailureError(Napi::Env env) {
    Napi::Error error;
    switch (failure_.kind) {
      case Failure::kTimeout:
        error = CodedError(env, "ETIMEDOUT",
                           failure_.window == 0
                               ? "SOCK_DIAG_BY_FAMILY: no answer from the kernel in " + std::to_string(timeoutMs_) + " ms"
                               : "SOCK_DESTROY: no answer to a window of " + std::to_string(failure_.window) +
                                     " requests in " + std::to_string(timeoutMs_) + " ms");
        break;
      case Failure::kClosed:
        error = ClosedError(env, "SockDestroyer", "while destroying");
        break;
      case Failure::kProtocol:
        error = CodedError(env, "NETHEAL_ERR_PROTOCOL", std::string("SOCK_DIAG: ") + failure_.what);
        break;
      case Failure::kKernel:
        error = ErrnoError(env, failure_.err, failure_.what);
        error.Set("kernel", Napi::Boolean::New(env, true));
        break;
      default:
        error = ErrnoError(env, failure_.err, failure_.what,
                           failure_.err == ENOBUFS ? "acks lost: receive buffer overrun" : "");
        break;
    }
    return error;
  }

  void Fail(const Failure& failure) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (failure_.kind == Failure::kNone) failure_ = failure;
      stop_.store(true);
    }
    cv_.notify_all();
  }

  // Starts the next helper thread (channel 1, 2, ...) unless all run. A helper that cannot
  // be started leaves its share to the others: they all take windows from one queue.
  void StartHelper() {
    size_t channel = helpers_.size() + 1;
    if (channel >= static_cast<size_t>(threads_) || starts_.size() >= starts_.capacity()) return;
    starts_.push_back({this, channel});
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    // Helpers take no signals: those belong to the process's own threads.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t thread;
    if (pthread_create(&thread, &attr, &DestroyCall::HelperMain, &starts_.back()) == 0) helpers_.push_back(thread);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    pthread_attr_destroy(&attr);
  }

  static void* HelperMain(void* arg) {
    auto* start = static_cast<Start*>(arg);
    start->self->Work(start->channel);
    return nullptr;
  }

  // Appends a batch to the queue; returns the backlog (released, not yet taken).
  size_t Release(std::vector<uint8_t>* requests, std::vector<uint8_t>* messages) {
    size_t backlog;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      requests_.insert(requests_.end(), requests->begin(), requests->end());
      messages_.insert(messages_.end(), messages->begin(), messages->end());
      released_ = requests_.size() / kDestroyLen;
      backlog = released_ - taken_;
    }
    requests->clear();
    messages->clear();
    cv_.notify_all();
    return backlog;
  }

  enum class Wait { kReady, kTimeout, kClosed };

  // Waits until `fd` is readable (kReady; also after 50 ms, so that callers look at stop_),
  // the deadline passes (kTimeout) or the destroyer is closed (kClosed). The wake eventfd is
  // written once by Close() and never read, so it stays readable: closure is final, and a
  // caller that went on waiting after kClosed would spin.
  Wait WaitReadable(int fd, uint64_t deadline) {
    if (shared_->closed.load()) return Wait::kClosed;
    uint64_t now = MonotonicNs();
    if (now >= deadline) return Wait::kTimeout;
    pollfd fds[2] = {{fd, POLLIN, 0}, {shared_->wake.Get(), POLLIN, 0}};
    int ms = static_cast<int>(std::min<uint64_t>((deadline - now + 999999) / 1000000, 50));
    poll(fds, 2, ms);
    if ((fds[1].revents & POLLIN) || shared_->closed.load()) return Wait::kClosed;
    return Wait::kReady;
  }

  // The pool thread: runs the dumps one after another, queueing a SOCK_DESTROY for every
  // socket they return, and starts helpers as the queue fills.
  //
  // Hazard: a dump resumes at (hash bucket, position in the bucket) and skips `position`
  // sockets of that bucket when the next datagram is built. Destroying a socket of the bucket
  // it paused in, before it resumed, would shift that count and make the dump skip a socket
  // it never returned. So the sockets of datagram k are queued only once datagram k+1 has
  // arrived (the kernel builds it by resuming from where k stopped), or the dump is done.
  // The next pause is then at a later bucket unless one bucket held more than a datagram of
  // sockets (hundreds: not with a hashed table).
  // Reads an abandoned dump to its end (NLMSG_DONE or NLMSG_ERROR), so that the socket can
  // dump again: the kernel answers EBUSY to a new dump while one is open. Best effort,
  // bounded by `deadline`; pointless once the destroyer is closed (the socket will not dump
  // again), so closure ends it too.
  void DrainDump(int fd, std::vector<uint8_t>& buffer, uint64_t deadline) {
    for (;;) {
      uint32_t fromPort;
      int flags;
      ssize_t n = RecvNetlink(fd, buffer.data(), buffer.size(), MSG_DONTWAIT, &fromPort, &flags);
      if (n < 0) {
        if ((errno != EAGAIN && errno != EWOULDBLOCK) || WaitReadable(fd, deadline) != Wait::kReady) return;
        continue;
      }
      if (fromPort != 0) continue;
      for (size_t at = 0; at + sizeof(nlmsghdr) <= static_cast<size_t>(n);) {
        nlmsghdr header;
        memcpy(&header, buffer.data() + at, sizeof header);
        if (header.nlmsg_type == NLMSG_DONE || header.nlmsg_type == NLMSG_ERROR || header.nlmsg_len < sizeof header) return;
        at += NLMSG_ALIGN(header.nlmsg_len);
      }
    }
  }

  void Produce() {
    const Shared::Channel& dump = shared_->dump;
    SpanLog log{this, {}};
    std::vector<uint8_t> buffer(shared_->dumpBuffer);
    std::vector<uint8_t> heldRequests, heldMessages, newRequests, newMessages;
    for (size_t d = 0; d < dumps_.size() && !stop_.load(); d++) {
      std::vector<uint8_t>& request = dumps_[d];
      if (request.size() < sizeof(nlmsghdr) + sizeof(inet_diag_req_v2)) return Fail({Failure::kProtocol, 0, "dump request too short"});
      uint32_t seq = dumpSeqBase_ + static_cast<uint32_t>(d);
      uint8_t protocol = request[sizeof(nlmsghdr) + offsetof(inet_diag_req_v2, sdiag_protocol)];
      reinterpret_cast<nlmsghdr*>(request.data())->nlmsg_seq = seq;
      sockaddr_nl kernel = {};
      kernel.nl_family = AF_NETLINK;
      ssize_t sent;
      uint64_t sendNs = MonotonicNs();
      do {
        sent = sendto(dump.fd.Get(), request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
      } while (sent < 0 && errno == EINTR);
      log.Add(Span::kDumpSend, sendNs);
      if (sent < 0) return Fail({Failure::kErrno, errno, "sendmsg"});
      uint64_t deadline = MonotonicNs() + static_cast<uint64_t>(timeoutMs_) * 1000000ull;
      for (;;) {
        // Once another thread failed, the rest of this dump is read and dropped: the kernel
        // refuses a new dump (EBUSY) on a socket whose dump was left unfinished.
        bool discard = stop_.load();
        if (shared_->closed.load()) return Fail({Failure::kClosed});
        uint32_t fromPort;
        int flags;
        uint64_t recvNs = MonotonicNs();
        ssize_t n = RecvNetlink(dump.fd.Get(), buffer.data(), buffer.size(), MSG_DONTWAIT, &fromPort, &flags);
        // The kernel builds the next datagram inside this recvmsg(): timed when it returned one.
        if (n >= 0) log.Add(Span::kDumpRecv, recvNs);
        if (n < 0) {
          if (errno != EAGAIN && errno != EWOULDBLOCK) return Fail({Failure::kErrno, errno, "recvmsg"});
          Wait wait = WaitReadable(dump.fd.Get(), deadline);
          if (wait == Wait::kClosed) return Fail({Failure::kClosed});
          if (wait == Wait::kTimeout) return Fail({Failure::kTimeout, 0, "", 0});
          continue;
        }
        // Only the kernel (port 0) may answer.
        if (fromPort != 0) continue;
        if (flags & MSG_TRUNC) {
          DrainDump(dump.fd.Get(), buffer, deadline);
          return Fail({Failure::kProtocol, 0, "dump datagram truncated"});
        }
        deadline = MonotonicNs() + static_cast<uint64_t>(timeoutMs_) * 1000000ull;
        int err = 0;
        Scan scan = ScanDump(buffer.data(), static_cast<size_t>(n), seq, dump.portId, protocol, &newRequests,
                             &newMessages, &err);
        if (scan == Scan::kMalformed) {
          DrainDump(dump.fd.Get(), buffer, deadline);
          return Fail({Failure::kProtocol, 0, "malformed SOCK_DIAG_BY_FAMILY reply"});
        }
        if (scan == Scan::kKernelError) return Fail({Failure::kKernel, err, "SOCK_DIAG_BY_FAMILY"});
        if (discard) {
          newRequests.clear();
          newMessages.clear();
          if (scan == Scan::kDone) return;
          continue;
        }
        counts_[d] += newRequests.size() / kDestroyLen;
        // Datagram k+1 is here: datagram k may go (see the hazard above).
        size_t backlog = heldRequests.empty() ? 0 : Release(&heldRequests, &heldMessages);
        std::swap(heldRequests, newRequests);
        std::swap(heldMessages, newMessages);
        if (scan == Scan::kDone && !heldRequests.empty()) backlog = Release(&heldRequests, &heldMessages);
        // One more helper per window of backlog, up to the limit.
        if (backlog > 0 && (helpers_.empty() || backlog > window_ * helpers_.size())) StartHelper();
        if (scan == Scan::kDone) break;
      }
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      finished_ = true;
    }
    cv_.notify_all();
  }

  // A destroy thread: takes windows from the queue until it is finished and empty.
  void Work(size_t index) {
    const Shared::Channel& channel = shared_->channels[index];
    int fd = channel.fd.Get();
    SpanLog log{this, {}};
    // Leftover acks of an earlier call that timed out must not be counted as ours.
    Drain(fd);
    std::vector<uint8_t> window;
    std::vector<uint8_t> buffers(kRecvBatch * kAckBuffer);
    std::vector<iovec> iovs(kRecvBatch);
    std::vector<sockaddr_nl> from(kRecvBatch);
    std::vector<mmsghdr> msgs(kRecvBatch);
    for (;;) {
      size_t start, n;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        while (!stop_.load() && !shared_->closed.load() && taken_ == released_ && !finished_)
          cv_.wait_for(lock, std::chrono::milliseconds(50));
        if (stop_.load()) return;
        if (taken_ == released_ && finished_) return;
        if (shared_->closed.load()) {
          lock.unlock();
          return Fail({Failure::kClosed});
        }
        start = taken_;
        n = std::min(window_, released_ - taken_);
        taken_ += n;
        window.assign(requests_.begin() + static_cast<std::ptrdiff_t>(start * kDestroyLen),
                      requests_.begin() + static_cast<std::ptrdiff_t>((start + n) * kDestroyLen));
      }
      // Sequence numbers say which request an answer is for: seqBase_ + index in the call.
      // Only the window's last request asks for an ack. The kernel handles a datagram's
      // requests in order inside sendmsg() and answers a request without NLM_F_ACK only when
      // it fails, so once the last one's ack is read every failure before it has been read
      // too (or the queue overflowed, and recvmmsg() reports ENOBUFS). That spares the kernel
      // and us one ack skb per destroyed socket.
      for (size_t i = 0; i < n; i++) {
        auto* header = reinterpret_cast<nlmsghdr*>(window.data() + i * kDestroyLen);
        header->nlmsg_seq = seqBase_ + static_cast<uint32_t>(start + i);
        header->nlmsg_flags = static_cast<uint16_t>(i + 1 == n ? (NLM_F_REQUEST | NLM_F_ACK) : NLM_F_REQUEST);
      }
      sockaddr_nl kernel = {};
      kernel.nl_family = AF_NETLINK;
      ssize_t sent;
      uint64_t sendNs = MonotonicNs();
      do {
        sent = sendto(fd, window.data(), window.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
      } while (sent < 0 && errno == EINTR);
      log.Add(Span::kDestroySend, sendNs);
      if (sent < 0) return Fail({Failure::kErrno, errno, "sendmsg"});

      // The kernel has done the window inside sendto(); its answers are normally all queued.
      Window answers{start, std::vector<int32_t>(n, 0)};
      answers.errnos[n - 1] = kUnanswered;
      uint64_t deadline = MonotonicNs() + static_cast<uint64_t>(timeoutMs_) * 1000000ull;
      while (answers.errnos[n - 1] == kUnanswered) {
        for (unsigned i = 0; i < kRecvBatch; i++) {
          iovs[i] = {buffers.data() + i * kAckBuffer, kAckBuffer};
          msgs[i] = {};
          msgs[i].msg_hdr.msg_name = &from[i];
          msgs[i].msg_hdr.msg_namelen = sizeof from[i];
          msgs[i].msg_hdr.msg_iov = &iovs[i];
          msgs[i].msg_hdr.msg_iovlen = 1;
        }
        uint64_t recvNs = MonotonicNs();
        int got = recvmmsg(fd, msgs.data(), kRecvBatch, MSG_DONTWAIT, nullptr);
        if (got > 0) log.Add(Span::kAckRecv, recvNs);
        if (got < 0) {
          if (errno == EINTR) continue;
          if (errno != EAGAIN && errno != EWOULDBLOCK) return Fail({Failure::kErrno, errno, "recvmsg"});
          if (stop_.load()) return;
          Wait wait = WaitReadable(fd, deadline);
          if (wait == Wait::kClosed) return Fail({Failure::kClosed});
          if (wait == Wait::kTimeout) return Fail({Failure::kTimeout, 0, "", n});
          continue;
        }
        for (int m = 0; m < got; m++) {
          // Only the kernel (port 0) may answer.
          if (from[m].nl_pid != 0) continue;
          if (msgs[m].msg_hdr.msg_flags & MSG_TRUNC) return Fail({Failure::kProtocol, 0, "ack truncated"});
          RecordAnswers(buffers.data() + m * kAckBuffer, msgs[m].msg_len, channel.portId, &answers);
        }
      }
      uint64_t now = MonotonicNs();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        done_.push_back(std::move(answers));
        lastAckNs_ = std::max(lastAckNs_, now);
      }
    }
  }

  // Records the answers (NLMSG_ERROR: an errno, or 0 for the final ack) in one datagram that
  // are for `w`'s requests.
  void RecordAnswers(const uint8_t* data, size_t length, uint32_t portId, Window* w) {
    size_t offset = 0;
    while (offset < length && length - offset >= sizeof(nlmsghdr)) {
      nlmsghdr header;
      memcpy(&header, data + offset, sizeof header);
      if (header.nlmsg_len < sizeof header || header.nlmsg_len > length - offset) break;
      if (header.nlmsg_type == NLMSG_ERROR && header.nlmsg_pid == portId &&
          header.nlmsg_len >= sizeof header + sizeof(int32_t)) {
        size_t index = static_cast<uint32_t>(header.nlmsg_seq - seqBase_);
        if (index >= w->start && index - w->start < w->errnos.size()) {
          int32_t error;
          memcpy(&error, data + offset + sizeof header, sizeof error);
          w->errnos[index - w->start] = -error;
        }
      }
      offset += NLMSG_ALIGN(header.nlmsg_len);
    }
  }

  static void Drain(int fd) {
    uint8_t scratch[kAckBuffer];
    for (int i = 0; i < 100000; i++) {
      ssize_t n = recv(fd, scratch, sizeof scratch, MSG_DONTWAIT | MSG_TRUNC);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return;
    }
  }

  napi_deferred deferred_ = nullptr;
  napi_value promise_ = nullptr;
  Napi::ObjectReference holder_;
  // Keeps the fds open until this call is done with them (see the header comment).
  std::shared_ptr<Shared> shared_;
  std::vector<std::vector<uint8_t>> dumps_;
  const size_t window_;
  const int threads_;
  const int timeoutMs_;
  uint32_t seqBase_ = 0;
  uint32_t dumpSeqBase_ = 0;
  // Pool thread only:
  std::vector<pthread_t> helpers_;
  std::vector<Start> starts_;
  // The queue, and the answers, under mutex_:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<uint8_t> requests_;  // SOCK_DESTROY messages, kDestroyLen each
  std::vector<uint8_t> messages_;  // dumpDestroy: the inet_diag_msg of each
  size_t released_ = 0;            // requests_ entries ready to send
  size_t taken_ = 0;               // ... of which handed to a thread
  bool finished_ = false;          // no more will come
  std::vector<Window> done_;
  std::vector<Span> spans_;
  uint64_t lastAckNs_ = 0;
  uint64_t executeNs_ = 0;  // when a pool thread picked the call up
  Failure failure_;
  std::atomic<bool> stop_{false};
  // Producer only while running; read in OnOK.
  std::vector<size_t> counts_;
};

// ------------------------------------------------------------------ the JS class

class SockDestroyer : public Napi::ObjectWrap<SockDestroyer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "SockDestroyer",
                       {
                           InstanceMethod<&SockDestroyer::Destroy>("destroy"),
                           InstanceMethod<&SockDestroyer::DumpDestroy>("dumpDestroy"),
                           InstanceMethod<&SockDestroyer::Close>("close"),
                           InstanceAccessor<&SockDestroyer::Sockets>("sockets"),
                           InstanceAccessor<&SockDestroyer::ReceiveBuffer>("receiveBuffer"),
                       });
  }

  // new SockDestroyer({sockets, netns?, receiveBuffer?, dumpDatagram?})
  SockDestroyer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SockDestroyer>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) {
      Napi::TypeError::New(env, "SockDestroyer(options)").ThrowAsJavaScriptException();
      return;
    }
    Napi::Object options = info[0].As<Napi::Object>();
    int sockets = options.Get("sockets").IsNumber() ? options.Get("sockets").As<Napi::Number>().Int32Value() : 1;
    if (sockets < 1 || sockets > kMaxSockets) {
      Napi::RangeError::New(env, "sockets must be 1.." + std::to_string(kMaxSockets)).ThrowAsJavaScriptException();
      return;
    }
    std::string netns;
    if (options.Get("netns").IsString()) netns = options.Get("netns").As<Napi::String>().Utf8Value();
    int rcvbuf = kDefaultRcvbuf;
    if (options.Get("receiveBuffer").IsNumber()) rcvbuf = options.Get("receiveBuffer").As<Napi::Number>().Int32Value();
    size_t dumpBuffer = kDumpBuffer;
    if (options.Get("dumpDatagram").IsNumber()) {
      int64_t bytes = options.Get("dumpDatagram").As<Napi::Number>().Int64Value();
      if (bytes < static_cast<int64_t>(kMinDumpBuffer) || bytes > static_cast<int64_t>(kDumpBuffer)) {
        Napi::RangeError::New(env, "dumpDatagram must be 8192..65536").ThrowAsJavaScriptException();
        return;
      }
      dumpBuffer = static_cast<size_t>(bytes);
    }

    auto shared = std::make_shared<Shared>();
    shared->dumpBuffer = dumpBuffer;
    shared->wake.Reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!shared->wake.Valid()) {
      ErrnoError(env, errno, "eventfd").ThrowAsJavaScriptException();
      return;
    }
    // Opened here, on the main thread: SocketInNetns enters the namespace and comes back.
    shared->channels.resize(static_cast<size_t>(sockets));
    for (Shared::Channel& channel : shared->channels) {
      if (!OpenChannel(env, netns, rcvbuf, &channel)) return;
    }
    if (!OpenChannel(env, netns, rcvbuf, &shared->dump)) return;
    socklen_t size = sizeof shared->receiveBuffer;
    getsockopt(shared->channels[0].fd.Get(), SOL_SOCKET, SO_RCVBUF, &shared->receiveBuffer, &size);
    // Arbitrary starts; acks are matched by port id as well.
    shared->seq = static_cast<uint32_t>(MonotonicNs());
    shared->dumpSeq = shared->seq ^ 0x80000000u;
    shared_ = std::move(shared);
    napi_add_env_cleanup_hook(env, CleanupHook, this);
  }

  ~SockDestroyer() override { CloseNow(); }

 private:
  bool Usable(Napi::Env env) {
    if (shared_ == nullptr) {
      ClosedError(env, "SockDestroyer").ThrowAsJavaScriptException();
      return false;
    }
    if (shared_->busy) {
      ErrnoError(env, EBUSY, "SOCK_DESTROY", "one call at a time per SockDestroyer").ThrowAsJavaScriptException();
      return false;
    }
    return true;
  }

  // Reads (window, threads, timeoutMs) at info[first..first+2]; throws and returns false when bad.
  static bool Limits(const Napi::CallbackInfo& info, size_t first, size_t* window, int* threads, int* timeoutMs) {
    Napi::Env env = info.Env();
    if (info.Length() < first + 3 || !info[first].IsNumber() || !info[first + 1].IsNumber() || !info[first + 2].IsNumber()) {
      Napi::TypeError::New(env, "window, threads and timeoutMs must be numbers").ThrowAsJavaScriptException();
      return false;
    }
    int64_t w = info[first].As<Napi::Number>().Int64Value();
    int64_t t = info[first + 1].As<Napi::Number>().Int64Value();
    int64_t ms = info[first + 2].As<Napi::Number>().Int64Value();
    if (w < 1 || w > 65536 || t < 1 || ms < 1 || ms > INT_MAX) {
      Napi::RangeError::New(env, "window 1..65536, threads >= 1, timeoutMs >= 1").ThrowAsJavaScriptException();
      return false;
    }
    *window = static_cast<size_t>(w);
    *threads = static_cast<int>(std::min<int64_t>(t, kMaxSockets));
    *timeoutMs = static_cast<int>(ms);
    return true;
  }

  // destroy(requests: Buffer, window, threads, timeoutMs): Promise<Result>
  // `requests` holds SOCK_DESTROY messages of SOCK_DESTROY_LEN bytes back to back (their
  // sequence numbers are overwritten).
  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Usable(env)) return env.Undefined();
    size_t window;
    int threads, timeoutMs;
    if (info.Length() < 1 || !info[0].IsBuffer()) {
      Napi::TypeError::New(env, "destroy(requests, window, threads, timeoutMs)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (!Limits(info, 1, &window, &threads, &timeoutMs)) return env.Undefined();
    Napi::Buffer<uint8_t> buffer = info[0].As<Napi::Buffer<uint8_t>>();
    if (buffer.Length() % kDestroyLen != 0) {
      Napi::RangeError::New(env, "destroy: requests must be SOCK_DESTROY messages of 72 bytes").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    for (size_t at = 0; at < buffer.Length(); at += kDestroyLen) {
      nlmsghdr header;
      memcpy(&header, buffer.Data() + at, sizeof header);
      if (header.nlmsg_len != kDestroyLen || header.nlmsg_type != SOCK_DESTROY) {
        Napi::RangeError::New(env, "destroy: request " + std::to_string(at / kDestroyLen) + " is not a SOCK_DESTROY")
            .ThrowAsJavaScriptException();
        return env.Undefined();
      }
    }
    return Start(info, std::vector<uint8_t>(buffer.Data(), buffer.Data() + buffer.Length()), {}, window, threads, timeoutMs);
  }

  // dumpDestroy(dumps: Buffer[], window, threads, timeoutMs): Promise<Result>
  // Each dump is one SOCK_DIAG_BY_FAMILY dump request (sequence number overwritten); every
  // socket it returns is destroyed. Result: {errnos, messages, counts, lastAckNs}: one errno
  // per socket in dump order, the 72-byte inet_diag_msg of each, how many each dump returned,
  // and CLOCK_MONOTONIC when the last ack was read (0 when there was nothing to destroy).
  Napi::Value DumpDestroy(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Usable(env)) return env.Undefined();
    size_t window;
    int threads, timeoutMs;
    if (info.Length() < 1 || !info[0].IsArray()) {
      Napi::TypeError::New(env, "dumpDestroy(dumps, window, threads, timeoutMs)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (!Limits(info, 1, &window, &threads, &timeoutMs)) return env.Undefined();
    Napi::Array array = info[0].As<Napi::Array>();
    std::vector<std::vector<uint8_t>> dumps;
    for (uint32_t i = 0; i < array.Length(); i++) {
      Napi::Value item = array.Get(i);
      if (!item.IsBuffer()) {
        Napi::TypeError::New(env, "dumpDestroy: every dump must be a Buffer").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      Napi::Buffer<uint8_t> buffer = item.As<Napi::Buffer<uint8_t>>();
      nlmsghdr header = {};
      if (buffer.Length() >= sizeof header) memcpy(&header, buffer.Data(), sizeof header);
      if (buffer.Length() < sizeof header + sizeof(inet_diag_req_v2) || header.nlmsg_len != buffer.Length() ||
          header.nlmsg_type != SOCK_DIAG_BY_FAMILY || !(header.nlmsg_flags & NLM_F_DUMP)) {
        Napi::RangeError::New(env, "dumpDestroy: dump " + std::to_string(i) + " is not a SOCK_DIAG_BY_FAMILY dump request")
            .ThrowAsJavaScriptException();
        return env.Undefined();
      }
      dumps.emplace_back(buffer.Data(), buffer.Data() + buffer.Length());
    }
    return Start(info, {}, std::move(dumps), window, threads, timeoutMs);
  }

  // Queues a destroy() or dumpDestroy() on the threadpool, on at most as many threads as
  // there are channels; the promise settles with its result.
  Napi::Value Start(const Napi::CallbackInfo& info, std::vector<uint8_t> requests, std::vector<std::vector<uint8_t>> dumps,
                    size_t window, int threads, int timeoutMs) {
    threads = std::min(threads, static_cast<int>(shared_->channels.size()));
    auto* call = new DestroyCall(info.Env(), shared_, std::move(requests), std::move(dumps), window, threads, timeoutMs);
    call->Hold(info.This().As<Napi::Object>());
    Napi::Value promise = call->Promise();
    call->Queue();
    return promise;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    CloseNow();
    return info.Env().Undefined();
  }

  // Idempotent; from JS, the destructor or the environment cleanup hook. A call in flight
  // keeps its own reference: it stops at its next wait and rejects with NETHEAL_ERR_CLOSED;
  // the fds close when it lets go.
  void CloseNow() {
    if (shared_ == nullptr) return;
    napi_remove_env_cleanup_hook(Env(), CleanupHook, this);
    shared_->Close();
    shared_.reset();
  }

  static void CleanupHook(void* arg) { static_cast<SockDestroyer*>(arg)->CloseNow(); }

  Napi::Value Sockets(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), shared_ == nullptr ? 0 : static_cast<double>(shared_->channels.size()));
  }
  Napi::Value ReceiveBuffer(const Napi::CallbackInfo& info) {
    if (shared_ == nullptr) return info.Env().Null();
    return Napi::Number::New(info.Env(), shared_->receiveBuffer);
  }

  std::shared_ptr<Shared> shared_;
};

// scanSockDiagDump(datagram, seq, portId, protocol): what the dump thread makes of one
// datagram: {status: 'more'|'done'|'error'|'malformed', errno, requests, messages}. For the
// fuzz and fixture tests of ScanDump; not used by the library.
Napi::Value ScanSockDiagDump(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsBuffer() || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsNumber()) {
    Napi::TypeError::New(env, "scanSockDiagDump(datagram, seq, portId, protocol)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Buffer<uint8_t> datagram = info[0].As<Napi::Buffer<uint8_t>>();
  std::vector<uint8_t> requests, messages;
  int err = 0;
  Scan scan = ScanDump(datagram.Data(), datagram.Length(), info[1].As<Napi::Number>().Uint32Value(),
                       info[2].As<Napi::Number>().Uint32Value(),
                       static_cast<uint8_t>(info[3].As<Napi::Number>().Uint32Value()), &requests, &messages, &err);
  static const char* const kNames[] = {"more", "done", "error", "malformed"};
  Napi::Object result = Napi::Object::New(env);
  result.Set("status", Napi::String::New(env, kNames[static_cast<int>(scan)]));
  result.Set("errno", Napi::Number::New(env, err));
  result.Set("requests", CopyOut(env, requests));
  result.Set("messages", CopyOut(env, messages));
  return result;
}

}  // namespace

void InitSockDestroyer(Napi::Env env, Napi::Object exports) {
  exports.Set("SockDestroyer", SockDestroyer::Define(env));
  exports.Set("scanSockDiagDump", Napi::Function::New(env, ScanSockDiagDump, "scanSockDiagDump"));
}

}  // namespace netheal
