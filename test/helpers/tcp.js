// A long-lived TCP connection between two test namespaces, to assert that it survives (or
// not) what netheal does: an echo server in `serverNs`, a client in `clientNs` bound to
// `clientAddress`. Both are small python3 processes; exchange() sends a line and resolves
// true when the echo comes back within the limit.
'use strict';
const { spawn } = require('node:child_process');
const { Lab } = require('../../lib/lab/lab');

const SERVER = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(8)
print("listening", flush=True)
c, _ = s.accept()
while True:
    d = c.recv(4096)
    if not d: break
    c.sendall(d)
`;

const CLIENT = `
import socket, sys, time
# A namespace just made may still be settling (the peer's neighbour entry, a busy machine):
# try for a while, then say why.
deadline = time.monotonic() + 10
while True:
    try:
        if len(sys.argv) > 4:
            # Bound to a device too (SO_BINDTODEVICE = 25): its own way out, whatever the default route.
            c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, 25, sys.argv[4].encode())
            c.bind((sys.argv[3], 0)); c.settimeout(5); c.connect((sys.argv[1], int(sys.argv[2])))
        else:
            c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5, source_address=(sys.argv[3], 0))
        break
    except OSError as e:
        if time.monotonic() > deadline:
            print("failed " + str(e), flush=True)
            sys.exit(1)
        time.sleep(0.05)
c.settimeout(None)
print("connected", flush=True)
f = c.makefile("rb")
for line in sys.stdin:
    try:
        c.sendall(line.encode()); r = f.readline()
        print("echo" if r else "eof", flush=True)
    except OSError as e:
        print("error " + (e.strerror or str(e)), flush=True)
`;

function lines(child) {
  const queue = [];
  const waiters = [];
  let buffer = '';
  child.stdout.on('data', (chunk) => {
    buffer += chunk;
    let i;
    while ((i = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, i);
      buffer = buffer.slice(i + 1);
      const w = waiters.shift();
      if (w) w(line); else queue.push(line);
    }
  });
  return (timeoutMs) => new Promise((resolve) => {
    if (queue.length) return resolve(queue.shift());
    const timer = setTimeout(() => { waiters.splice(waiters.indexOf(done), 1); resolve(null); }, timeoutMs);
    const done = (line) => { clearTimeout(timer); resolve(line); };
    waiters.push(done);
  });
}

async function tcpConnection(t, { clientNs, serverNs, serverAddress, clientAddress, port, device = undefined }) {
  const nsexec = (ns, code, args) => spawn('nsenter', [`--net=${Lab.path(ns)}`, '--', 'python3', '-u', '-c', code, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const server = nsexec(serverNs, SERVER, [serverAddress, String(port)]);
  const serverLine = lines(server);
  t.teardown(() => server.kill('SIGKILL'));
  // A deadline for a stuck start only: python's start-up takes seconds on a loaded machine.
  if ((await serverLine(30000)) !== 'listening') throw new Error('echo server did not start within 30 s');
  const client = nsexec(clientNs, CLIENT, [serverAddress, String(port), clientAddress, ...(device ? [device] : [])]);
  const clientLine = lines(client);
  t.teardown(() => client.kill('SIGKILL'));
  const first = await clientLine(15000);
  if (first !== 'connected') throw new Error(`client did not connect: ${first}`);
  return {
    /** Sends a line; the reply within `timeoutMs`: 'echo', 'eof', 'error ...' or null. */
    async exchange(timeoutMs = 3000) {
      client.stdin.write('ping\n');
      return clientLine(timeoutMs);
    },
  };
}

module.exports = { tcpConnection };
