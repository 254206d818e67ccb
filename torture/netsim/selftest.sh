#!/usr/bin/env bash
# Self-test of flm-netsim (needs root and /dev/fuse; python3 for the syscall-level checks).
#
# Builds it, mounts two instances ("machines" A and B) over one backing
# directory under /tmp (plus C with command-line latency), and checks:
# atomic temp+rename writes on A are read at once on B (and in-place writes
# too); O_EXCL creates racing from A and B never both win; --refuse-locks makes
# flock/fcntl fail with ENOLCK; control-file faults (ENOSPC on write, EDQUOT
# after N creates), readOnly (EROFS) and latency apply and clear; mountinfo
# shows fuse.sshfs; file-lock-manager picks its lock-file strategy there; and
# SIGTERM/SIGINT unmount (even when busy) with exit code 0.
# Prints timings, and ends with "N passed, N failed" (exit 1 if any failed).
set -uo pipefail

[ "$(id -u)" = 0 ] && [ -c /dev/fuse ] || { echo "selftest: needs root and /dev/fuse"; exit 1; }
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cargo build --release --quiet --manifest-path "$HERE/Cargo.toml" || exit 1
BIN=$HERE/target/release/flm-netsim

T=$(mktemp -d /tmp/flm-netsim-selftest.XXXXXX)
mkdir -p "$T/back" "$T/a" "$T/b" "$T/c"
export T
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  for m in a b c; do grep -q " $T/$m " /proc/mounts && umount -l "$T/$m"; done
  rm -rf "$T"
}
trap cleanup EXIT

PASSED=0 FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "ok   - $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $1"; }
check() { local name=$1; shift; if "$@"; then pass "$name"; else fail "$name"; fi; }

# start NAME ARGS...: runs flm-netsim in the background, waits for "mounted", sets PID_<NAME>.
start() {
  local name=$1; shift
  "$BIN" "$@" >"$T/$name.out" 2>"$T/$name.err" &
  local pid=$!
  PIDS+=("$pid")
  printf -v "PID_$name" %s "$pid"
  for _ in $(seq 200); do grep -qx mounted "$T/$name.out" && return 0; sleep 0.05; done
  echo "mount $name did not come up:"; cat "$T/$name.err"; exit 1
}

# ctl JSON: replaces A's control file atomically, then gives it time to be noticed.
ctl() { printf '%s' "$1" >"$T/ctl.tmp" && mv "$T/ctl.tmp" "$T/ctl" && sleep 0.05; }

# py CODE: runs python with A, B, C, BACK bound to the mount/backing paths.
py() {
  python3 -c "
import os, sys, time, errno, fcntl
T = os.environ['T']; A, B, C, BACK = T + '/a', T + '/b', T + '/c', T + '/back'
$1"
}

start a "$T/back" "$T/a" --subtype sshfs --refuse-locks --control "$T/ctl"
start b "$T/back" "$T/b" --subtype sshfs
start c "$T/back" "$T/c" --latency-ms 10-20

check "mountinfo shows fuse.sshfs for A" \
  grep -q " $T/a .* - fuse.sshfs " /proc/self/mountinfo

check "a file replaced on A by temp+fsync+rename is read on B at once (100 times)" py '
for i in range(100):
    data = ("version %d " % i).encode() * (i % 7 + 1)
    fd = os.open(A + "/roles.json.tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, data); os.fsync(fd); os.close(fd)
    os.rename(A + "/roles.json.tmp", A + "/roles.json")
    with open(B + "/roles.json", "rb") as f:
        got = f.read()
    if got != data:
        sys.exit("round %d: B read %r" % (i, got[:40]))
'

check "a reader on B never misses the file while A keeps replacing it (3 s)" py '
import threading
stop, writes, bad, reads = [], [0], {}, 0
def writer():
    while not stop:
        fd = os.open(A + "/r.tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, b"{\"n\": %d}" % writes[0]); os.close(fd)
        os.rename(A + "/r.tmp", A + "/r.json"); writes[0] += 1
fd = os.open(A + "/r.json", os.O_WRONLY | os.O_CREAT, 0o644); os.write(fd, b"{}"); os.close(fd)
w = threading.Thread(target=writer); w.start()
t0 = time.time()
while time.time() - t0 < 3:
    try:
        with open(B + "/r.json", "rb") as f: d = f.read()
        reads += 1
        if not (d.startswith(b"{") and d.endswith(b"}")): bad["partial"] = bad.get("partial", 0) + 1
    except OSError as e:
        bad[errno.errorcode[e.errno]] = bad.get(errno.errorcode[e.errno], 0) + 1
stop.append(1); w.join()
print("     (%d replaces on A, %d reads on B, bad: %s)" % (writes[0], reads, bad or "none"))
assert not bad and writes[0] > 100 and reads > 100
'

check "an in-place write on A is read through a file already open on B" py '
w = os.open(A + "/inplace", os.O_RDWR | os.O_CREAT, 0o644)
os.write(w, b"old contents")
r = os.open(B + "/inplace", os.O_RDONLY)
assert os.pread(r, 100, 0) == b"old contents"
os.pwrite(w, b"NEW", 0)
got = os.pread(r, 100, 0)
assert got == b"NEW contents", got
assert os.fstat(r).st_ino == os.stat(A + "/inplace").st_ino == os.stat(BACK + "/inplace").st_ino
'

# O_EXCL race: A and B both try to create each of 200 names in the same 10 ms slot.
race() {
  py "
start = float(os.environ['RACE_T0'])
won = []
for i in range(200):
    delay = start + i * 0.01 - time.time()
    if delay > 0: time.sleep(delay)
    try:
        os.close(os.open('$1/excl-%d' % i, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)); won.append(i)
    except FileExistsError:
        pass
open(T + '/won-$2', 'w').write(' '.join(map(str, won)))
"
}
export RACE_T0
RACE_T0=$(python3 -c 'import time; print(time.time() + 0.5)')
race "$T/a" a & R1=$!
race "$T/b" b & R2=$!
wait $R1 $R2
check "O_EXCL creates racing on A and B: each of 200 names won exactly once" py '
a = set(map(int, open(T + "/won-a").read().split()))
b = set(map(int, open(T + "/won-b").read().split()))
print("     (A won %d, B won %d)" % (len(a), len(b)))
assert not (a & b), sorted(a & b)[:10]
assert a | b == set(range(200)), sorted(set(range(200)) - (a | b))[:10]
'

check "--refuse-locks: flock and fcntl locks on A fail with ENOLCK" py '
fd = os.open(A + "/locked", os.O_RDWR | os.O_CREAT)
for name, lock in (("flock", lambda: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)),
                   ("lockf", lambda: fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB))):
    try:
        lock(); sys.exit(name + " succeeded")
    except OSError as e:
        assert e.errno == errno.ENOLCK, (name, e)
'
check "without --refuse-locks (B) flock works, kept by the kernel per mount" py '
fd = os.open(B + "/locked", os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
'

ctl '{"faults":[{"op":"write","errno":"ENOSPC","count":1}]}'
check "control: one write fails with ENOSPC, the next succeeds" py '
fd = os.open(A + "/w", os.O_WRONLY | os.O_CREAT, 0o644)
try:
    os.write(fd, b"x"); sys.exit("first write succeeded")
except OSError as e:
    assert e.errno == errno.ENOSPC, e
assert os.write(fd, b"y") == 1
'
check "control: the injected fault is logged on stderr" grep -q "fault write /w -> ENOSPC" "$T/a.err"

ctl '{"faults":[{"op":"create","errno":"EDQUOT","after":2,"count":1,"pathContains":"/q-"}]}'
check "control: after 2 creates of /q-*, the 3rd fails with EDQUOT, the 4th works" py '
results = []
for i in range(4):
    try:
        os.close(os.open(A + "/q-%d" % i, os.O_WRONLY | os.O_CREAT | os.O_EXCL)); results.append(0)
    except OSError as e:
        results.append(e.errno)
os.close(os.open(A + "/other", os.O_WRONLY | os.O_CREAT))
assert results == [0, 0, errno.EDQUOT, 0], results
'

ctl '{"readOnly":true}'
check "control: readOnly makes create, write, rename, unlink, mkdir, truncate fail with EROFS" py '
def erofs(what, f):
    try:
        f(); sys.exit(what + " succeeded")
    except OSError as e:
        assert e.errno == errno.EROFS, (what, e)
erofs("create", lambda: os.open(A + "/new", os.O_WRONLY | os.O_CREAT))
erofs("open for write", lambda: os.open(A + "/roles.json", os.O_WRONLY))
erofs("rename", lambda: os.rename(A + "/w", A + "/w2"))
erofs("unlink", lambda: os.unlink(A + "/w"))
erofs("mkdir", lambda: os.mkdir(A + "/d"))
erofs("truncate", lambda: os.truncate(A + "/w", 0))
assert open(A + "/roles.json", "rb").read()            # reads still work
os.close(os.open(B + "/via-b", os.O_WRONLY | os.O_CREAT))  # and B is not read-only
'
ctl '{}'
check "control: clearing the file makes A writable again" py '
fd = os.open(A + "/w", os.O_WRONLY); os.write(fd, b"z"); os.close(fd)
os.rename(A + "/w", A + "/w2"); os.mkdir(A + "/d"); os.rmdir(A + "/d")
'

timed_stats() { # MOUNT N -> milliseconds for N stats
  py "
t = time.perf_counter()
for _ in range($2): os.stat('$1/roles.json')
print(round((time.perf_counter() - t) * 1000))"
}
ctl '{"latencyMs":[20,30]}'
ms=$(timed_stats "$T/a" 20)
check "control latencyMs [20,30]: 20 stats on A take >= 400 ms (took $ms ms)" test "$ms" -ge 400
ctl '{}'
ms=$(timed_stats "$T/a" 20)
check "latency cleared: 20 stats on A take < 300 ms (took $ms ms)" test "$ms" -lt 300
ms=$(timed_stats "$T/c" 20)
check "--latency-ms 10-20: 20 stats on C take >= 200 ms (took $ms ms)" test "$ms" -ge 200
ms=$(py '
import threading
def work():
    for _ in range(10): os.stat(C + "/roles.json")
ts = [threading.Thread(target=work) for _ in range(8)]
t = time.perf_counter()
for x in ts: x.start()
for x in ts: x.join()
print(round((time.perf_counter() - t) * 1000))')
check "latency does not serialise: 8 threads x 10 stats on C take < 1500 ms, serially ~3600 (took $ms ms)" test "$ms" -lt 1500

echo "# timings with latency 0 (per operation):"
py '
def per_op(n, f):
    t = time.perf_counter()
    for i in range(n): f(i)
    return (time.perf_counter() - t) / n * 1e6
def replace(d):
    def f(i):
        fd = os.open(d + "/t.tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, b"{\"n\": %d}" % i); os.close(fd)
        os.rename(d + "/t.tmp", d + "/t.json")
    return f
def excl(d):
    def f(i):
        os.close(os.open(d + "/x.lock", os.O_WRONLY | os.O_CREAT | os.O_EXCL)); os.unlink(d + "/x.lock")
    return f
def read(d):
    return lambda i: open(d + "/roles.json", "rb").read()
for name, make, n in (("stat", lambda d: (lambda i: os.stat(d + "/roles.json")), 2000),
                      ("open+read+close", read, 1000),
                      ("write temp + rename", replace, 500),
                      ("O_EXCL create + unlink", excl, 500)):
    direct, mounted = per_op(n, make(BACK)), per_op(n, make(A))
    print("#   %-24s backing %7.1f us   via mount %7.1f us" % (name, direct, mounted))
'

if command -v node >/dev/null && [ -f "$ROOT/index.js" ]; then
  out=$(cd /tmp && timeout 60 node -e "
const {FileLockManager} = require('$ROOT/index.js');
(async () => {
  const m = new FileLockManager();
  const l = await m.acquireLock('$T/a/roles.json');
  console.log(l.strategy + ': ' + l.strategyReason);
  await l.release(); await m.close();
})().catch(e => { console.log('error: ' + e.message); process.exit(1) })" 2>&1)
  echo "     (file-lock-manager on A: $out)"
  check "file-lock-manager uses its lock-file strategy on A" test "${out%%:*}" = lockfile
else
  echo "skip - file-lock-manager check (no node or no $ROOT/index.js)"
fi

# Busy unmount: a file stays open on B while B gets SIGTERM.
python3 -c "import os, time; fd = os.open('$T/b/roles.json', os.O_RDONLY); open('$T/held', 'w'); time.sleep(20)" &
HOLDER=$!
for _ in $(seq 100); do [ -e "$T/held" ] && break; sleep 0.05; done
check "a file on B is held open" test -e "$T/held"
stopped() { # NAME SIGNAL: the daemon exits 0 on SIGNAL and leaves no mount behind
  local pid_var=PID_$1
  kill "-$2" "${!pid_var}"
  wait "${!pid_var}"
  local rc=$?
  [ "$rc" -eq 0 ] && ! grep -q " $T/$1 " /proc/mounts
}
check "SIGTERM on A: exit 0, no mount left" stopped a TERM
check "SIGTERM on B with a file open on it: exit 0, no mount left" stopped b TERM
check "SIGINT on C: exit 0, no mount left" stopped c INT
kill "$HOLDER" 2>/dev/null; wait "$HOLDER" 2>/dev/null
PIDS=()

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
