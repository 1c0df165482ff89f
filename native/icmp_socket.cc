// IcmpSocket: ICMP (IPv4) or ICMPv6 echo on the libuv loop, raw or ping (SOCK_DGRAM) socket.
//
// One socket serves every target of a family: JS hands over a burst of probes as packed
// records (one sendmmsg), and gets each wake-up's outcomes back as packed records in one
// call. Echo replies are matched here only far enough to drop other processes' traffic
// (identifier + a per-socket cookie in the payload); which probe a reply answers is decided
// in TypeScript by the 32-bit tag we put next to the cookie.
//
// Hazards handled here:
// - libuv's uv_poll stops a handle for good and reports UV_EBADF when epoll says EPOLLERR,
//   and a socket with IP_RECVERR says EPOLLERR whenever its error queue holds anything
//   (an ICMP error, a transmit timestamp). So we poll an inner epoll fd that watches the
//   socket: an epoll fd itself only ever reports EPOLLIN to its watcher.
// - Ping sockets rewrite the echo identifier to the socket's port; raw sockets see every
//   echo reply and every ICMP error of the namespace, including other pingers'.
// - sendmmsg() reports an error only for the first message that fails; we resume after it.
#include <time.h>

#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <uv.h>

#include <cstring>
#include <memory>
#include <vector>

#include "polled_socket.h"

namespace netheal {
namespace {

// <linux/icmp.h> clashes with glibc's headers; these two come from there.
constexpr int kIcmpFilter = 1;  // ICMP_FILTER, SOL_RAW
constexpr int kSolRaw = 255;    // SOL_RAW

constexpr int kBatch = 64;            // datagrams per recvmmsg()
constexpr int kReadRounds = 16;       // recvmmsg() calls per queue per wake-up
constexpr int kMaxSend = 1024;        // UIO_MAXIOV: messages per sendmmsg()
constexpr size_t kSlotData = 256;
constexpr size_t kSlotControl = 512;
constexpr size_t kPayload = 16;       // u64 cookie, u32 tag, u32 zero
constexpr size_t kPacket = 8 + kPayload;
constexpr size_t kSendRecord = 24;    // address[16], u16 seq, u16 0, u32 tag
constexpr size_t kResultRecord = 64;
constexpr uint32_t kRing = 1u << 16;
constexpr size_t kArenaMin = 128 * kResultRecord;  // result Buffer: 128 records to start  // transmit stamps kept per tag (mod kRing)

// Result record layout (little-endian), read by src/kernel/icmp.ts:
//  0 u8 kind (0 reply, 1 ICMP error, 2 local error)   1 u8 ICMP type   2 u8 code
//  3 u8 flags (1 tag valid, 2 RTT kernel-to-kernel, 4 RTT known)
//  4 u16 seq   6 u16 identifier   8 u32 tag   12 i32 errno
// 16 address[16]: reply source, or the offender (router) of an error
// 32 address[16]: destination of the probe (errors), else zero
// 48 f64 RTT in ns   56 f64 CLOCK_MONOTONIC receive time in ns
enum : uint8_t { kReply = 0, kIcmpError = 1, kLocalError = 2 };
enum : uint8_t { kTagValid = 1, kKernelRtt = 2, kRttKnown = 4 };

struct TxStamp {
  uint32_t tag = 0;
  bool valid = false;
  uint64_t userNs = 0;    // CLOCK_REALTIME just before sendmmsg()
  uint64_t kernelNs = 0;  // SOF_TIMESTAMPING_TX_SOFTWARE, 0 until it arrives
};

uint64_t RealtimeNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

uint16_t Checksum(const uint8_t* data, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += static_cast<uint32_t>(data[i] << 8 | data[i + 1]);
  if (len & 1) sum += static_cast<uint32_t>(data[len - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

void PutU16(uint8_t* p, uint16_t v) { memcpy(p, &v, 2); }
void PutU32(uint8_t* p, uint32_t v) { memcpy(p, &v, 4); }
uint16_t GetBe16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

class IcmpSocket : public PolledSocket<IcmpSocket> {
  friend class PolledSocket<IcmpSocket>;

 public:
  static Napi::Function Define(Napi::Env env) {
    std::vector<PropertyDescriptor> members = PollingMembers();
    members.push_back(InstanceMethod<&IcmpSocket::Send>("send"));
    members.push_back(InstanceAccessor<&IcmpSocket::Kind>("kind"));
    members.push_back(InstanceAccessor<&IcmpSocket::Ident>("ident"));
    return DefineClass(env, "IcmpSocket", members);
  }

  // new IcmpSocket({family, netns?, device?, mode?, receiveBuffer?}, onResults, onError)
  IcmpSocket(const Napi::CallbackInfo& info) : PolledSocket<IcmpSocket>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsObject() || !info[1].IsFunction() ||
        !info[2].IsFunction()) {
      Napi::TypeError::New(env, "IcmpSocket(options, onResults, onError)")
          .ThrowAsJavaScriptException();
      return;
    }
    Napi::Object options = info[0].As<Napi::Object>();
    int family = options.Get("family").ToNumber().Int32Value();
    if (family != 4 && family != 6) {
      Napi::TypeError::New(env, "family must be 4 or 6").ThrowAsJavaScriptException();
      return;
    }
    v6_ = family == 6;
    std::string netns, device, mode = "auto";
    if (options.Get("netns").IsString()) netns = options.Get("netns").As<Napi::String>();
    if (options.Get("device").IsString()) device = options.Get("device").As<Napi::String>();
    if (options.Get("mode").IsString()) mode = options.Get("mode").As<Napi::String>();
    int rcvbuf = 4 * 1024 * 1024;
    if (options.Get("receiveBuffer").IsNumber())
      rcvbuf = options.Get("receiveBuffer").As<Napi::Number>().Int32Value();

    const int domain = v6_ ? AF_INET6 : AF_INET;
    const int protocol = v6_ ? static_cast<int>(IPPROTO_ICMPV6) : static_cast<int>(IPPROTO_ICMP);
    const char* syscall = "socket";
    UniqueFd fd;
    int rawErrno = 0;
    if (mode != "dgram") {
      fd.Reset(SocketInNetns(netns, domain, SOCK_RAW, protocol, &syscall));
      if (!fd.Valid()) {
        rawErrno = errno;
        if (mode == "raw" || (rawErrno != EPERM && rawErrno != EACCES)) {
          ErrnoError(env, rawErrno, syscall, "raw ICMP socket").ThrowAsJavaScriptException();
          return;
        }
      }
    }
    raw_ = fd.Valid();
    if (!raw_) {
      fd.Reset(SocketInNetns(netns, domain, SOCK_DGRAM, protocol, &syscall));
      if (!fd.Valid()) {
        int dgramErrno = errno;
        Napi::Error error = ErrnoError(env, dgramErrno, syscall,
                                       rawErrno != 0 ? "raw ICMP socket refused, ping socket refused"
                                                     : "ping socket");
        if (rawErrno != 0) error.Set("rawErrno", Napi::Number::New(env, rawErrno));
        error.Set("dgramErrno", Napi::Number::New(env, dgramErrno));
        error.ThrowAsJavaScriptException();
        return;
      }
    }
    int s = fd.Get();
    if (!device.empty() &&
        setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, device.c_str(), device.size()) != 0) {
      ErrnoError(env, errno, "setsockopt", "SO_BINDTODEVICE " + device).ThrowAsJavaScriptException();
      return;
    }
    int one = 1;
    if (setsockopt(s, v6_ ? SOL_IPV6 : SOL_IP, v6_ ? IPV6_RECVERR : IP_RECVERR, &one, sizeof one) != 0) {
      ErrnoError(env, errno, "setsockopt", v6_ ? "IPV6_RECVERR" : "IP_RECVERR").ThrowAsJavaScriptException();
      return;
    }
    // Software stamps on receive and on transmit (the latter on the error queue, with the
    // packet so the tag can be found in it); CLOCK_REALTIME, so only differences are used.
    bool txStamps = true;
    if (options.Get("txTimestamps").IsBoolean())
      txStamps = options.Get("txTimestamps").As<Napi::Boolean>().Value();
    int stamping = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE |
                   (txStamps ? SOF_TIMESTAMPING_TX_SOFTWARE : 0);
    if (setsockopt(s, SOL_SOCKET, SO_TIMESTAMPING, &stamping, sizeof stamping) != 0)
      setsockopt(s, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
    if (setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0)
      setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (options.Get("ttl").IsNumber()) {
      int ttl = options.Get("ttl").As<Napi::Number>().Int32Value();
      if (setsockopt(s, v6_ ? SOL_IPV6 : SOL_IP, v6_ ? IPV6_UNICAST_HOPS : IP_TTL, &ttl, sizeof ttl) != 0) {
        ErrnoError(env, errno, "setsockopt", v6_ ? "IPV6_UNICAST_HOPS" : "IP_TTL").ThrowAsJavaScriptException();
        return;
      }
    }
    int sndbuf = 1024 * 1024;
    if (setsockopt(s, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) != 0)
      setsockopt(s, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    if (raw_) {
      // Only echo replies on the normal queue; errors arrive through the error queue.
      if (v6_) {
        icmp6_filter filter;
        ICMP6_FILTER_SETBLOCKALL(&filter);
        ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &filter);
        setsockopt(s, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof filter);
      } else {
        uint32_t mask = ~(1u << 0);  // pass ICMP_ECHOREPLY only
        setsockopt(s, kSolRaw, kIcmpFilter, &mask, sizeof mask);
      }
      uint16_t random = 0;
      if (getrandom(&random, sizeof random, 0) != sizeof random) random = static_cast<uint16_t>(getpid());
      ident_ = random;
    } else {
      // The kernel picks the port, which becomes the identifier of every echo we send.
      sockaddr_storage local = {};
      socklen_t len = v6_ ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
      local.ss_family = static_cast<sa_family_t>(domain);
      if (bind(s, reinterpret_cast<sockaddr*>(&local), len) != 0) {
        ErrnoError(env, errno, "bind", "ping socket").ThrowAsJavaScriptException();
        return;
      }
      len = sizeof local;
      getsockname(s, reinterpret_cast<sockaddr*>(&local), &len);
      ident_ = ntohs(v6_ ? reinterpret_cast<sockaddr_in6*>(&local)->sin6_port
                         : reinterpret_cast<sockaddr_in*>(&local)->sin_port);
    }
    if (getrandom(&cookie_, sizeof cookie_, 0) != sizeof cookie_) cookie_ = MonotonicNs() ^ 0x6e657468;

    UniqueFd epfd(epoll_create1(EPOLL_CLOEXEC));
    if (!epfd.Valid()) {
      ErrnoError(env, errno, "epoll_create1").ThrowAsJavaScriptException();
      return;
    }
    epoll_event ev = {};
    ev.events = EPOLLIN;
    ev.data.fd = s;
    if (epoll_ctl(epfd.Get(), EPOLL_CTL_ADD, s, &ev) != 0) {
      ErrnoError(env, errno, "epoll_ctl").ThrowAsJavaScriptException();
      return;
    }
    ring_.reset(new TxStamp[kRing]);
    data_.resize(kBatch * kSlotData);
    control_.resize(kBatch * kSlotControl);
    names_.resize(kBatch);
    // uv_poll watches an epoll fd wrapping the socket: queued ICMP errors and transmit stamps
    // raise EPOLLERR on the socket itself, which makes libuv stop the handle for good.
    int socketFd = fd.Release();
    StartPolling(env, socketFd, epfd.Release(), info[1], info[2], "netheal:IcmpSocket");
  }

 private:
  // Finds our cookie in a packet (echo payload or a transmitted packet of unknown framing).
  bool FindTag(const uint8_t* data, size_t len, uint32_t* tag) const {
    for (size_t i = 0; i + kPayload <= len; i++) {
      if (memcmp(data + i, &cookie_, sizeof cookie_) == 0) {
        memcpy(tag, data + i + 8, 4);
        return true;
      }
    }
    return false;
  }

  // Kernel receive stamp from SCM_TIMESTAMPING / SCM_TIMESTAMPNS; 0 if none.
  static uint64_t RxStamp(msghdr* msg) {
    for (cmsghdr* c = CMSG_FIRSTHDR(msg); c != nullptr; c = CMSG_NXTHDR(msg, c)) {
      if (c->cmsg_level != SOL_SOCKET) continue;
      if (c->cmsg_type == SO_TIMESTAMPING && c->cmsg_len >= CMSG_LEN(sizeof(timespec))) {
        timespec ts;
        memcpy(&ts, CMSG_DATA(c), sizeof ts);
        return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
      }
      if (c->cmsg_type == SO_TIMESTAMPNS && c->cmsg_len >= CMSG_LEN(sizeof(timespec))) {
        timespec ts;
        memcpy(&ts, CMSG_DATA(c), sizeof ts);
        return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
      }
    }
    return 0;
  }

  void PutAddress(uint8_t* out, const sockaddr* sa) const {
    if (sa->sa_family == AF_INET)
      memcpy(out, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, 4);
    else if (sa->sa_family == AF_INET6)
      memcpy(out, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, 16);
  }

  void SetRtt(uint8_t* rec, uint32_t tag, uint64_t rxKernel, uint64_t rxUser) {
    TxStamp& slot = ring_[tag & (kRing - 1)];
    if (!slot.valid || slot.tag != tag) return;
    double rtt;
    uint8_t flags = kRttKnown;
    if (rxKernel != 0 && slot.kernelNs != 0 && rxKernel >= slot.kernelNs) {
      rtt = static_cast<double>(rxKernel - slot.kernelNs);
      flags |= kKernelRtt;
    } else {
      uint64_t rx = rxKernel != 0 ? rxKernel : rxUser;
      rtt = rx >= slot.userNs ? static_cast<double>(rx - slot.userNs) : 0.0;
    }
    slot.valid = false;
    rec[3] |= flags;
    memcpy(rec + 48, &rtt, 8);
  }

  uint8_t* NewRecord() {
    out_.resize(out_.size() + kResultRecord);
    uint8_t* rec = out_.data() + out_.size() - kResultRecord;
    memset(rec, 0, kResultRecord);
    double mono = static_cast<double>(MonotonicNs());
    memcpy(rec + 56, &mono, 8);
    return rec;
  }

  // One recvmmsg() round on the normal (errqueue=false) or error queue. Returns the count
  // read, 0 when empty, -1 on an unexpected error (stored in *err).
  int ReadRound(bool errqueue, int* err) {
    mmsghdr msgs[kBatch];
    iovec iovs[kBatch];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < kBatch; i++) {
      iovs[i] = {data_.data() + i * kSlotData, kSlotData};
      msgs[i].msg_hdr.msg_name = &names_[i];
      msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      msgs[i].msg_hdr.msg_iov = &iovs[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_control = control_.data() + i * kSlotControl;
      msgs[i].msg_hdr.msg_controllen = kSlotControl;
    }
    int n;
    do {
      n = recvmmsg(state_->fd, msgs, kBatch, MSG_DONTWAIT | (errqueue ? MSG_ERRQUEUE : 0), nullptr);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      *err = errno;
      return -1;
    }
    uint64_t rxUser = RealtimeNs();
    for (int i = 0; i < n; i++) {
      msghdr* msg = &msgs[i].msg_hdr;
      const uint8_t* data = data_.data() + i * kSlotData;
      size_t len = msgs[i].msg_len < kSlotData ? msgs[i].msg_len : kSlotData;
      if (errqueue)
        HandleError(msg, data, len);
      else
        HandleReply(msg, data, len, rxUser);
    }
    return n;
  }

  void HandleReply(msghdr* msg, const uint8_t* data, size_t len, uint64_t rxUser) {
    if (!v6_ && raw_) {
      if (len < 20) return;
      size_t ihl = static_cast<size_t>(data[0] & 0x0f) * 4;
      if (ihl < 20 || len < ihl) return;
      data += ihl;
      len -= ihl;
    }
    if (len < 8) return;
    if (data[0] != (v6_ ? static_cast<int>(ICMP6_ECHO_REPLY) : 0) || data[1] != 0) return;
    uint16_t ident = GetBe16(data + 4);
    // Ping sockets only get their own replies; raw sockets see everyone's.
    if (raw_ && ident != ident_) return;
    uint32_t tag = 0;
    bool tagged = len >= 8 + kPayload && memcmp(data + 8, &cookie_, 8) == 0;
    if (!tagged) return;  // our replies always echo the payload: anything else is not ours
    memcpy(&tag, data + 16, 4);
    uint8_t* rec = NewRecord();
    rec[0] = kReply;
    rec[1] = data[0];
    rec[2] = data[1];
    rec[3] = kTagValid;
    PutU16(rec + 4, GetBe16(data + 6));
    PutU16(rec + 6, ident);
    PutU32(rec + 8, tag);
    PutAddress(rec + 16, reinterpret_cast<sockaddr*>(msg->msg_name));
    SetRtt(rec, tag, RxStamp(msg), rxUser);
  }

  void HandleError(msghdr* msg, const uint8_t* data, size_t len) {
    // Copies out of the control buffer, bounded by cmsg_len: a control message shorter than
    // a sock_extended_err (MSG_CTRUNC, or a kernel that sends less) is ignored, and the
    // offender address that follows it counts only when it is there in full.
    sock_extended_err eeCopy;
    sock_extended_err* ee = nullptr;
    sockaddr_storage offender = {};  // AF_UNSPEC: PutAddress writes nothing
    uint64_t stamp = 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(msg); c != nullptr; c = CMSG_NXTHDR(msg, c)) {
      if ((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
          (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR)) {
        if (c->cmsg_len < CMSG_LEN(sizeof eeCopy)) continue;
        memcpy(&eeCopy, CMSG_DATA(c), sizeof eeCopy);
        ee = &eeCopy;
        offender = {};
        size_t extra = c->cmsg_len - CMSG_LEN(sizeof eeCopy);
        sa_family_t family = AF_UNSPEC;
        if (extra >= sizeof family) memcpy(&family, CMSG_DATA(c) + sizeof eeCopy, sizeof family);
        size_t need = family == AF_INET ? sizeof(sockaddr_in) : family == AF_INET6 ? sizeof(sockaddr_in6) : SIZE_MAX;
        if (extra >= need) memcpy(&offender, CMSG_DATA(c) + sizeof eeCopy, need);
      } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPING &&
                 c->cmsg_len >= CMSG_LEN(sizeof(timespec))) {
        timespec ts;
        memcpy(&ts, CMSG_DATA(c), sizeof ts);
        stamp = static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
      }
    }
    if (ee == nullptr) return;
    if (ee->ee_origin == SO_EE_ORIGIN_TIMESTAMPING) {
      uint32_t tag;
      if (stamp != 0 && FindTag(data, len, &tag)) {
        TxStamp& slot = ring_[tag & (kRing - 1)];
        if (slot.valid && slot.tag == tag) slot.kernelNs = stamp;
      }
      return;
    }
    uint8_t* rec;
    if (ee->ee_origin == SO_EE_ORIGIN_ICMP || ee->ee_origin == SO_EE_ORIGIN_ICMP6) {
      // The quoted packet starts at the ICMP header of the echo request that failed.
      if (len < 8 || data[0] != (v6_ ? static_cast<int>(ICMP6_ECHO_REQUEST) : 8)) return;
      uint16_t ident = GetBe16(data + 4);
      if (raw_ && ident != ident_) return;
      bool tagged = len >= 8 + kPayload && memcmp(data + 8, &cookie_, 8) == 0;
      // A router that quotes only 8 bytes leaves the tag out; a different cookie means
      // another process that happened to pick our identifier.
      if (!tagged && len >= 8 + kPayload) return;
      rec = NewRecord();
      rec[0] = kIcmpError;
      rec[1] = ee->ee_type;
      rec[2] = ee->ee_code;
      PutU16(rec + 4, GetBe16(data + 6));
      PutU16(rec + 6, ident);
      if (tagged) {
        rec[3] = kTagValid;
        memcpy(rec + 8, data + 16, 4);
      }
      PutAddress(rec + 16, reinterpret_cast<const sockaddr*>(&offender));
    } else if (ee->ee_origin == SO_EE_ORIGIN_LOCAL) {
      rec = NewRecord();
      rec[0] = kLocalError;
    } else {
      return;
    }
    int32_t err = static_cast<int32_t>(ee->ee_errno);
    memcpy(rec + 12, &err, 4);
    PutAddress(rec + 32, reinterpret_cast<sockaddr*>(msg->msg_name));
  }

  void ReadBurst(int status) {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (status < 0) {
      Deliver(onError_, {UvError(env, status, "poll").Value()});
      return;
    }
    out_.clear();
    int err = 0;
    // The error queue first: transmit stamps must be in before the replies they time.
    for (int round = 0; round < kReadRounds; round++) {
      int n = ReadRound(true, &err);
      if (n < kBatch) break;
    }
    for (int round = 0; round < kReadRounds; round++) {
      int n = ReadRound(false, &err);
      // A pending socket error (a lost sendmmsg error) is returned once by recv: go on.
      if (n < 0 && round + 1 < kReadRounds) continue;
      if (n < kBatch) break;
      // Stamps of probes sent in this wake-up may have queued meanwhile.
      ReadRound(true, &err);
    }
    if (out_.empty()) return;
    size_t count = out_.size() / kResultRecord;
    // One result Buffer for the socket's life, grown when a wake-up outgrows it: a new Buffer
    // per wake-up (a malloc, an ArrayBuffer and external-memory accounting for V8) showed up
    // in perf at a few hundred wake-ups a second. Its records are valid during the callback
    // only (documented in src/native.ts).
    if (arena_.IsEmpty() || arenaSize_ < out_.size()) {
      size_t size = out_.size() < kArenaMin ? kArenaMin : out_.size();
      arena_ = Napi::Persistent(Napi::Buffer<uint8_t>::New(env, size));
      arenaSize_ = size;
    }
    Napi::Buffer<uint8_t> buffer = arena_.Value();
    memcpy(buffer.Data(), out_.data(), out_.size());
    Deliver(onData_, {buffer, Napi::Number::New(env, static_cast<double>(count))});
  }

  // send(records: Buffer, count: number, errnos: Int32Array): number of failed probes.
  // errnos[i] is set to 0 or the errno of probe i.
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env, "ICMP socket")) return env.Undefined();
    if (info.Length() < 3 || !info[0].IsBuffer() || !info[1].IsNumber() || !info[2].IsTypedArray()) {
      Napi::TypeError::New(env, "send(records, count, errnos)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Buffer<uint8_t> records = info[0].As<Napi::Buffer<uint8_t>>();
    size_t count = info[1].As<Napi::Number>().Uint32Value();
    Napi::TypedArray typed = info[2].As<Napi::TypedArray>();
    if (typed.TypedArrayType() != napi_int32_array || count * kSendRecord > records.Length() ||
        typed.ElementLength() < count) {
      Napi::RangeError::New(env, "send: records or errnos too short").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    int32_t* errnos = reinterpret_cast<int32_t*>(
        static_cast<uint8_t*>(typed.ArrayBuffer().Data()) + typed.ByteOffset());
    size_t failed = 0;
    // Scratch kept between calls: a burst is sent every few milliseconds.
    if (sendPackets_.size() < count * kPacket) {
      sendPackets_.resize(count * kPacket);
      sendAddrs_.resize(count);
      sendIovs_.resize(count);
      sendMsgs_.resize(count);
    }
    uint8_t* packets = sendPackets_.data();
    sockaddr_in6* addrs = sendAddrs_.data();
    iovec* iovs = sendIovs_.data();
    mmsghdr* msgs = sendMsgs_.data();
    const uint8_t* rec = records.Data();
    for (size_t i = 0; i < count; i++, rec += kSendRecord) {
      uint8_t* p = packets + i * kPacket;
      uint16_t seq;
      uint32_t tag;
      memcpy(&seq, rec + 16, 2);
      memcpy(&tag, rec + 20, 4);
      p[0] = v6_ ? static_cast<uint8_t>(ICMP6_ECHO_REQUEST) : 8;
      p[1] = 0;
      p[2] = p[3] = 0;
      p[4] = static_cast<uint8_t>(ident_ >> 8);
      p[5] = static_cast<uint8_t>(ident_);
      p[6] = static_cast<uint8_t>(seq >> 8);
      p[7] = static_cast<uint8_t>(seq);
      memcpy(p + 8, &cookie_, 8);
      memcpy(p + 16, &tag, 4);
      memset(p + 20, 0, 4);
      // ICMPv6 checksums (raw and ping) and ping-socket ICMP checksums are the kernel's.
      if (!v6_ && raw_) {
        uint16_t sum = Checksum(p, kPacket);
        p[2] = static_cast<uint8_t>(sum >> 8);
        p[3] = static_cast<uint8_t>(sum);
      }
      sockaddr_in6& a = addrs[i];
      memset(&a, 0, sizeof a);
      socklen_t alen;
      if (v6_) {
        a.sin6_family = AF_INET6;
        memcpy(&a.sin6_addr, rec, 16);
        alen = sizeof(sockaddr_in6);
      } else {
        auto* a4 = reinterpret_cast<sockaddr_in*>(&a);
        a4->sin_family = AF_INET;
        memcpy(&a4->sin_addr, rec, 4);
        alen = sizeof(sockaddr_in);
      }
      iovs[i] = {p, kPacket};
      memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_name = &a;
      msgs[i].msg_hdr.msg_namelen = alen;
      msgs[i].msg_hdr.msg_iov = &iovs[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      errnos[i] = 0;
      TxStamp& slot = ring_[tag & (kRing - 1)];
      slot.tag = tag;
      slot.valid = false;
    }
    size_t next = 0;
    while (next < count) {
      unsigned vlen = static_cast<unsigned>(count - next < kMaxSend ? count - next : kMaxSend);
      uint64_t now = RealtimeNs();
      for (size_t i = next; i < next + vlen; i++) {
        TxStamp& slot = ring_[ring_index(records.Data(), i)];
        slot.userNs = now;
        slot.kernelNs = 0;
        slot.valid = true;
      }
      int n = sendmmsg(state_->fd, msgs + next, vlen, MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        errnos[next] = errno;
        ring_[ring_index(records.Data(), next)].valid = false;
        failed++;
        next++;
        continue;
      }
      next += static_cast<size_t>(n);
    }
    return Napi::Number::New(env, static_cast<double>(failed));
  }

  static uint32_t ring_index(const uint8_t* records, size_t i) {
    uint32_t tag;
    memcpy(&tag, records + i * kSendRecord + 20, 4);
    return tag & (kRing - 1);
  }

  Napi::Value Kind(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), raw_ ? "raw" : "dgram");
  }
  Napi::Value Ident(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), ident_);
  }
  bool v6_ = false;
  bool raw_ = false;
  uint16_t ident_ = 0;
  uint64_t cookie_ = 0;
  std::unique_ptr<TxStamp[]> ring_;
  std::vector<uint8_t> data_;
  std::vector<uint8_t> control_;
  std::vector<sockaddr_storage> names_;
  std::vector<uint8_t> out_;
  Napi::Reference<Napi::Buffer<uint8_t>> arena_;
  size_t arenaSize_ = 0;
  std::vector<uint8_t> sendPackets_;
  std::vector<sockaddr_in6> sendAddrs_;
  std::vector<iovec> sendIovs_;
  std::vector<mmsghdr> sendMsgs_;
};

}  // namespace

void InitIcmpSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("IcmpSocket", IcmpSocket::Define(env));
}

}  // namespace netheal
