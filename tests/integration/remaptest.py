"""Shared helpers for the remapfs integration tests (Python 3, stdlib only).

Every test is a script that calls ``remaptest.run(body)``. ``body`` receives a ``Ctx`` that owns a
fresh temporary directory under /var/tmp and a LIFO stack of cleanups; every resource the test
creates (FUSE mount, daemon, loop device, ext4 mount) is registered there and released in a
``finally`` block, by name or by pid, never by pattern.

Exit codes: 0 pass, 1 fail, 77 skip (meson treats 77 as SKIP). A test never passes without having
run: missing root, /dev/fuse, a loop device or a tool is a skip, anything else is a failure.

Environment:
  REMAPFS_BUILD  meson build root (binaries at $REMAPFS_BUILD/src/remapfs and src/remapctl).
                 Default: <repo>/build.
  REMAPFS_KEEP   if set, keep the temporary directory (a failure keeps it anyway and says where).
"""

import contextlib
import hashlib
import json
import mmap
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

SKIP = 77
MiB = 1 << 20
SECTOR = 4096
LABEL_BYTES = 4096            # one copy of the label
LABEL_AREA = 2 * LABEL_BYTES  # layout 2 keeps two copies
HEADER_BLOCK = 4096
HEADERS_PER_BLOCK = 128       # 32-byte slot headers
APPLICATION_ID = 0x524D4653


class Skip(Exception):
    pass


class Fail(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def check(cond, msg):
    """Print the check; raise Fail if it does not hold."""
    if not cond:
        raise Fail(msg)
    log(f"  ok: {msg}")


def _show(v):
    """Short form for messages: long byte strings become <N bytes sha256 ...>."""
    if isinstance(v, (bytes, bytearray)) and len(v) > 32:
        return f"<{len(v)} bytes, sha256 {hashlib.sha256(v).hexdigest()[:16]}, starts {bytes(v[:8]).hex()}>"
    return repr(v)


def check_eq(actual, expected, what):
    if actual != expected:
        raise Fail(f"{what}: expected {_show(expected)}, got {_show(actual)}")
    log(f"  ok: {what} == {_show(expected)}")


# --------------------------------------------------------------------------------------------
# binaries and preconditions


def build_root():
    b = os.environ.get("REMAPFS_BUILD")
    if not b:
        b = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build")
    return os.path.abspath(b)


def remapfs_bin():
    return os.path.join(build_root(), "src", "remapfs")


def remapctl_bin():
    return os.path.join(build_root(), "src", "remapctl")


def require_binaries():
    for p in (remapfs_bin(), remapctl_bin()):
        if not os.access(p, os.X_OK):
            # Not a skip: meson builds them before running the tests; a missing binary is a broken
            # build or a wrong REMAPFS_BUILD.
            raise Fail(f"binary {p} not found or not executable (set REMAPFS_BUILD to the meson build root)")


def require_root():
    if os.geteuid() != 0:
        raise Skip("needs root")


def require_fuse():
    if not os.path.exists("/dev/fuse"):
        raise Skip("/dev/fuse missing")
    if shutil.which("fusermount3") is None and shutil.which("umount") is None:
        raise Skip("neither fusermount3 nor umount available")


def require_tools(*tools):
    missing = [t for t in tools if shutil.which(t) is None and not os.path.exists(os.path.join("/sbin", t))]
    if missing:
        raise Skip("missing tools: " + ", ".join(missing))


def require_loop():
    require_tools("losetup")
    r = subprocess.run(["losetup", "-f"], capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout.strip():
        raise Skip(f"no free loop device (losetup -f: {r.stderr.strip() or r.returncode})")


def tool(name):
    p = shutil.which(name)
    if p:
        return p
    for d in ("/sbin", "/usr/sbin"):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    raise Skip(f"missing tool {name}")


# --------------------------------------------------------------------------------------------
# processes


def sh(cmd, check_rc=True, timeout=120, quiet=False, input=None, env=None):
    """Run a command, return CompletedProcess (text). Raises Fail on non-zero exit if check_rc."""
    if not quiet:
        log("  $ " + " ".join(str(c) for c in cmd))
    try:
        r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                           input=input, env=env)
    except subprocess.TimeoutExpired as e:
        raise Fail(f"command timed out after {timeout}s: {' '.join(str(c) for c in cmd)}") from e
    if check_rc and r.returncode != 0:
        raise Fail(f"command failed (exit {r.returncode}): {' '.join(str(c) for c in cmd)}\n"
                   f"  stdout: {r.stdout.strip()}\n  stderr: {r.stderr.strip()}")
    return r


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still "exists"; treat it as dead.
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        if state == "Z":
            return False
    except OSError:
        return False
    return True


def thread_names(pid):
    """The names of a process's threads (/proc/PID/task/*/comm), as a set."""
    names = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                names.add(f.read().strip())
        except FileNotFoundError:  # the thread ended meanwhile
            pass
    return names


def wait_pid_exit(pid, timeout, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None:
            if proc.poll() is not None:
                return True
        elif not pid_alive(pid):
            return True
        time.sleep(0.1)
    return False


def remapctl(*args, check_rc=True, timeout=120, quiet=False):
    return sh([remapctl_bin(), *args], check_rc=check_rc, timeout=timeout, quiet=quiet)


def remapctl_json(*args, timeout=120, quiet=False):
    r = remapctl(*args, "--json", timeout=timeout, quiet=quiet)
    try:
        return json.loads(r.stdout)
    except ValueError as e:
        raise Fail(f"remapctl {' '.join(args)} --json printed invalid JSON: {e}\n{r.stdout}") from e


def sqlite(db, sql):
    """Query with the sqlite3 CLI (the tool users have); returns rows as lists of strings."""
    r = sh([tool("sqlite3"), "-batch", "-bail", db, sql])
    return [line.split("|") for line in r.stdout.splitlines() if line != ""]


def nonempty_lines(s):
    return [line for line in s.splitlines() if line.strip()]


# --------------------------------------------------------------------------------------------
# files


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def file_state(path):
    """(sha256, size, mtime_ns) or None if it does not exist. Directories: (None, None, mtime)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if not os.path.isfile(path):
        return ("<not a regular file>", None, st.st_mtime_ns)
    return (sha256_file(path), st.st_size, st.st_mtime_ns)


def make_sparse(path, size):
    with open(path, "wb") as f:
        f.truncate(size)


def pread_file(path, offset, length, direct=False):
    """Read length bytes at offset; direct=True uses O_DIRECT with an aligned buffer."""
    if not direct:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(length)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        buf = mmap.mmap(-1, length)
        n = os.preadv(fd, [buf], offset)
        data = bytes(buf[:n])
        buf.close()
        return data
    finally:
        os.close(fd)


def write_direct(path, offset, data, flags=0, fsync=False):
    """One O_DIRECT pwrite of data (a multiple of 512 bytes) at offset; flags: O_DSYNC, O_SYNC...;
    fsync: and fsync before closing."""
    fd = os.open(path, os.O_WRONLY | os.O_DIRECT | flags)
    try:
        buf = mmap.mmap(-1, len(data))
        buf[:] = data
        n = os.pwritev(fd, [buf], offset)
        buf.close()
        if n != len(data):
            raise Fail(f"short O_DIRECT write to {path}: {n} of {len(data)}")
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def expect_refused(cmd, needle, timeout=60):
    """cmd must fail with exactly one line on stderr, containing needle. Returns that line."""
    r = sh(cmd, check_rc=False, timeout=timeout)
    lines = nonempty_lines(r.stderr)
    if r.returncode == 0:
        raise Fail(f"{' '.join(str(c) for c in cmd)} succeeded; expected a refusal mentioning {needle!r}")
    if len(lines) != 1 or needle not in lines[0]:
        raise Fail(f"{' '.join(str(c) for c in cmd)}: expected one line mentioning {needle!r}, got {lines!r}")
    log(f"  ok: refused (exit {r.returncode}): {lines[0]}")
    return lines[0]


def pwrite_file(path, offset, data):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
        os.fsync(fd)
    finally:
        os.close(fd)


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def spare_layout(spare_bytes, sector=SECTOR):
    """Spec (layout 2): (slots, offset of slot 0 from the start of the spare area) for a spare area
    of spare_bytes: two label copies, one 4 KiB header block per 128 slots, then the slots."""
    n = max(0, (spare_bytes - LABEL_AREA) * HEADERS_PER_BLOCK // (HEADERS_PER_BLOCK * sector + HEADER_BLOCK))
    blocks = lambda k: -(-k // HEADERS_PER_BLOCK)
    while n > 0 and LABEL_AREA + blocks(n) * HEADER_BLOCK + n * sector > spare_bytes:
        n -= 1
    while LABEL_AREA + blocks(n + 1) * HEADER_BLOCK + (n + 1) * sector <= spare_bytes:
        n += 1
    return n, LABEL_AREA + blocks(n) * HEADER_BLOCK


def slot_offset(image_bytes, slot, backing_bytes, sector=SECTOR):
    """Byte offset of a spare slot in a backing with a tail spare (the spare is the rest)."""
    return image_bytes + spare_layout(backing_bytes - image_bytes, sector)[1] + slot * sector


def expected_image_bytes(backing_bytes, sector=SECTOR, spare=None):
    """Spec: default spare = max(1 MiB, 1% of the backing); image = rest, rounded down to the sector."""
    if spare is None:
        spare = max(MiB, backing_bytes // 100)
    return (backing_bytes - spare) // sector * sector


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == path:
                return True
    return False


def mounts_under(path):
    path = os.path.realpath(path)
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == path or mp.startswith(path + "/"):
                out.append(mp)
    return out


def find_daemon_pids(mnt, exe=None):
    """Pids of remapfs processes (by /proc/PID/exe == our binary) whose argv names this mountpoint.

    The mountpoint is a unique temp path, so this never matches anybody else's daemon."""
    exe = os.path.realpath(exe or remapfs_bin())
    mnt_abs = os.path.abspath(mnt)
    mnt_real = os.path.realpath(mnt)
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            e = os.readlink(f"/proc/{d}/exe")
            if e.endswith(" (deleted)"):
                e = e[: -len(" (deleted)")]
            if e != exe:
                continue
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        if any(os.path.abspath(a) in (mnt_abs, mnt_real) for a in argv[1:] if a.startswith("/")):
            if pid_alive(int(d)):
                found.append(int(d))
    return found


# --------------------------------------------------------------------------------------------
# resources


class Resource:
    name = "resource"

    def release(self):
        raise NotImplementedError


class Daemon(Resource):
    """A remapfs instance mounted at mnt: either our Popen child (-f) or a daemonized process."""

    def __init__(self, ctx, backing, mnt, db, pid, proc=None, logpath=None):
        self.ctx, self.backing, self.mnt, self.db = ctx, backing, mnt, db
        self.pid, self.proc, self.logpath = pid, proc, logpath
        self.name = f"remapfs pid {pid} at {mnt}"
        self.stopped = False

    @property
    def image(self):
        return os.path.join(self.mnt, "disk.img")

    def log_text(self):
        if self.logpath and os.path.exists(self.logpath):
            with open(self.logpath, errors="replace") as f:
                return f.read()
        return ""

    def stop(self, timeout=30):
        """Unmount (fusermount3 -u, then umount) and wait for the daemon to exit. Fail if it does not."""
        if self.stopped:
            return
        log(f"  stopping {self.name}")
        unmount(self.mnt)
        if self.pid is not None and not wait_pid_exit(self.pid, timeout, self.proc):
            raise Fail(f"remapfs pid {self.pid} did not exit within {timeout}s after unmounting {self.mnt}")
        if self.proc is not None:
            rc = self.proc.wait()
            if rc != 0:
                raise Fail(f"remapfs -f exited with status {rc} after a clean unmount; log:\n{self.log_text()}")
        self.stopped = True
        log(f"  ok: {self.name} exited")

    def release(self):
        if self.stopped:
            return
        try:
            if is_mounted(self.mnt):
                unmount(self.mnt, lazy_fallback=True)
        finally:
            if self.pid is not None and not wait_pid_exit(self.pid, 15, self.proc):
                log(f"  cleanup: remapfs pid {self.pid} still running; SIGTERM")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGTERM)
                if not wait_pid_exit(self.pid, 10, self.proc):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self.pid, signal.SIGKILL)
            if self.proc is not None:
                with contextlib.suppress(Exception):
                    self.proc.wait(timeout=10)
            self.stopped = True


class Loop(Resource):
    def __init__(self, dev, image):
        self.dev, self.image = dev, image
        self.name = f"loop {dev} on {image}"
        self.detached = False
        try:
            st = os.stat(image)
            self.backing_id = (f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}", str(st.st_ino))
        except OSError:
            self.backing_id = None

    def still_ours(self, bf):
        """Does the device still back our image? bf is its sysfs backing_file."""
        bf = bf.replace(" (deleted)", "")
        if os.path.realpath(bf) == os.path.realpath(self.image):
            return True
        # Once the daemon under the image is gone its mount is detached, and the path reads
        # "/disk.img"; the device and inode the loop holds still say whose it is.
        if os.path.basename(bf) != os.path.basename(self.image) or self.backing_id is None:
            return False
        r = sh(["losetup", "-l", "-n", "-O", "BACK-MAJ:MIN,BACK-INO", self.dev], check_rc=False, quiet=True)
        return tuple(r.stdout.split()) == self.backing_id

    def sysfs(self, what):
        try:
            with open(f"/sys/block/{os.path.basename(self.dev)}/loop/{what}") as f:
                return f.read().strip()
        except OSError:
            return None

    def detach(self):
        if self.detached:
            return
        # Only detach if the device is still ours (by backing file name).
        bf = self.sysfs("backing_file")
        if bf is not None and not self.still_ours(bf):
            log(f"  warning: {self.dev} now backs {bf}, not {self.image}; leaving it alone")
            self.detached = True
            return
        if bf is not None:
            for i in range(20):
                r = sh(["losetup", "-d", self.dev], check_rc=False, quiet=(i > 0))
                if r.returncode == 0:
                    break
                time.sleep(0.25)
            else:
                raise Fail(f"losetup -d {self.dev} failed: {r.stderr.strip()}")
            # Detach is asynchronous when the device was busy; wait until it is gone.
            deadline = time.monotonic() + 10
            while self.sysfs("backing_file") is not None and time.monotonic() < deadline:
                time.sleep(0.1)
        self.detached = True

    def release(self):
        self.detach()


class Mount(Resource):
    def __init__(self, dev, mnt):
        self.dev, self.mnt = dev, mnt
        self.name = f"mount {dev} on {mnt}"
        self.done = False

    def umount(self):
        if self.done:
            return
        if is_mounted(self.mnt):
            unmount(self.mnt, fuse=False, lazy_fallback=False)
        self.done = True

    def release(self):
        if self.done:
            return
        if is_mounted(self.mnt):
            unmount(self.mnt, fuse=False, lazy_fallback=True)
        self.done = True


def unmount(mnt, fuse=True, lazy_fallback=False, tries=20):
    cmds = []
    if fuse and shutil.which("fusermount3"):
        cmds.append(["fusermount3", "-u", mnt])
    cmds.append(["umount", mnt])
    last = None
    for i in range(tries):
        if not is_mounted(mnt):
            return
        for c in cmds:
            r = sh(c, check_rc=False, quiet=(i > 0))
            if r.returncode == 0 or not is_mounted(mnt):
                return
            last = r.stderr.strip()
        time.sleep(0.25)
    if lazy_fallback:
        log(f"  cleanup: lazy unmount of {mnt} ({last})")
        if fuse and shutil.which("fusermount3"):
            sh(["fusermount3", "-uz", mnt], check_rc=False)
        if is_mounted(mnt):
            sh(["umount", "-l", mnt], check_rc=False)
        return
    raise Fail(f"cannot unmount {mnt}: {last}")


class Ctx:
    def __init__(self, name):
        base = "/var/tmp"
        self.tmp = tempfile.mkdtemp(prefix=f"remapfs-{name}-", dir=base)
        self.bindir = os.path.join(self.tmp, "bin")
        os.mkdir(self.bindir)
        self.resources = []
        self.failed = False

    def path(self, *p):
        return os.path.join(self.tmp, *p)

    def mkdir(self, name):
        p = self.path(name)
        os.makedirs(p, exist_ok=True)
        return p

    def add(self, res):
        self.resources.append(res)
        return res

    def cleanup(self):
        errors = []
        while self.resources:
            res = self.resources.pop()
            try:
                res.release()
            except Exception as e:  # keep cleaning up
                errors.append(f"{res.name}: {e}")
        left = mounts_under(self.tmp)
        if left:
            errors.append(f"still mounted under {self.tmp}: {left}")
        if errors:
            for e in errors:
                log(f"CLEANUP ERROR: {e}")
        if self.failed or errors or os.environ.get("REMAPFS_KEEP"):
            log(f"temporary directory kept: {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return errors

    # ---- remapfs

    def mount_helper_path(self, name="mount.remapfs"):
        """tmp/bin/mount.remapfs -> the built remapfs (the build dir has no such symlink)."""
        p = os.path.join(self.bindir, name)
        if not os.path.lexists(p):
            os.symlink(remapfs_bin(), p)
        return p

    def mount_helper(self, backing, mnt, opts, extra=(), timeout=30, prog="mount.remapfs", image="disk.img"):
        """Mount the mount(8) way: mount.remapfs BACKING MNT -o OPTS. It daemonizes after mounting."""
        cmd = [self.mount_helper_path(prog), backing, mnt, *extra]
        if opts:
            cmd += ["-o", opts]
        try:
            r = sh(cmd, check_rc=False, timeout=timeout)
        finally:
            mounted = is_mounted(mnt)
            pids = find_daemon_pids(mnt)
            deadline = time.monotonic() + 5
            while mounted and len(pids) != 1 and time.monotonic() < deadline:
                time.sleep(0.1)  # a double fork may still be in flight
                pids = find_daemon_pids(mnt)
            if mounted or pids:
                # Whatever happened, what is up gets taken down again.
                self.add(Daemon(self, backing, mnt, dbfrom(opts), pids[0] if len(pids) == 1 else None))
        if r.returncode != 0:
            raise Fail(f"mount.remapfs exited {r.returncode}: {r.stderr.strip()}")
        # It only returns once the mount is up.
        check(mounted, f"{mnt} is mounted when {prog} returns")
        wait_for_image(mnt, timeout=10, name=image)
        if len(pids) != 1:
            raise Fail(f"expected exactly one remapfs daemon serving {mnt}, found pids {pids}")
        log(f"  daemon pid {pids[0]} serves {mnt}")
        return self.resources[-1]

    def mount_fg(self, backing, mnt, opts, timeout=30):
        """remapfs -f BACKING MNT -o OPTS as our child; returns once MNT/disk.img is visible."""
        logpath = self.path(f"remapfs-{int(time.time() * 1000)}.log")
        cmd = [remapfs_bin(), "-f", backing, mnt]
        if opts:
            cmd += ["-o", opts]
        log("  $ " + " ".join(cmd) + " &")
        lf = open(logpath, "wb")
        proc = subprocess.Popen(cmd, stdout=lf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        lf.close()
        d = self.add(Daemon(self, backing, mnt, dbfrom(opts), proc.pid, proc, logpath))
        wait_for_image(mnt, timeout=timeout, proc=proc, logpath=logpath)
        log(f"  daemon pid {proc.pid} serves {mnt}")
        return d

    def expect_mount_refused(self, backing, mnt, opts, needle):
        """remapfs BACKING MNT -o OPTS (daemonizing) must fail with one line mentioning needle."""
        cmd = [remapfs_bin(), backing, mnt] + (["-o", opts] if opts else [])
        try:
            return expect_refused(cmd, needle)
        finally:
            pids = find_daemon_pids(mnt)
            if is_mounted(mnt) or pids:  # it should not have: take it down again
                self.add(Daemon(self, backing, mnt, dbfrom(opts), pids[0] if len(pids) == 1 else None))

    # ---- loop devices and filesystems

    def losetup(self, image, dio):
        r = sh(["losetup", f"--direct-io={dio}", "--show", "-f", image], check_rc=False)
        if r.returncode != 0:
            raise Fail(f"losetup --direct-io={dio} -f {image} failed: {r.stderr.strip()}")
        dev = r.stdout.strip()
        lp = self.add(Loop(dev, image))
        log(f"  attached {dev} (sysfs dio={lp.sysfs('dio')}) stderr={r.stderr.strip()!r}")
        return lp

    def mount_dev(self, dev, mnt, opts=None):
        cmd = ["mount"]
        if opts:
            cmd += ["-o", opts]
        sh(cmd + [dev, mnt])
        return self.add(Mount(dev, mnt))


def dbfrom(opts):
    for o in (opts or "").split(","):
        if o.startswith("db="):
            return o[3:]
    return None


def wait_for_image(mnt, timeout=30, proc=None, logpath=None, name="disk.img"):
    img = os.path.join(mnt, name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            text = ""
            if logpath:
                with open(logpath, errors="replace") as f:
                    text = f.read()
            raise Fail(f"remapfs exited with status {proc.returncode} before {img} appeared; output:\n{text}")
        if is_mounted(mnt) and os.path.exists(img):
            return img
        time.sleep(0.1)
    raise Fail(f"{img} did not appear within {timeout}s")


def write_random_file(path, size, rng):
    data = rng.randbytes(size)
    with open(path, "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def tree_checksums(root):
    out = {}
    for dp, dns, fns in os.walk(root):
        dns[:] = [d for d in dns if d != "lost+found"]
        for fn in fns:
            p = os.path.join(dp, fn)
            out[os.path.relpath(p, root)] = sha256_file(p)
    return out


def ext4_block_size(dev):
    r = sh([tool("dumpe2fs"), "-h", dev], quiet=True)
    for line in r.stdout.splitlines():
        if line.startswith("Block size:"):
            return int(line.split(":")[1])
    raise Fail(f"dumpe2fs -h {dev}: no block size")


def file_blocks(dev, path_in_fs):
    r = sh([tool("debugfs"), "-R", f"blocks {path_in_fs}", dev])
    try:
        return [int(x) for x in r.stdout.split()]
    except ValueError as e:
        raise Fail(f"debugfs blocks output not understood: {r.stdout!r} {r.stderr!r}") from e


# --------------------------------------------------------------------------------------------
# driver


def _on_term(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def run(name, body, needs_loop=False, tools=()):
    """Run body(ctx) with skip/fail handling and guaranteed cleanup; exits the process."""
    signal.signal(signal.SIGTERM, _on_term)
    log(f"=== {name}")
    ctx = None
    rc = 0
    try:
        require_root()
        require_fuse()
        require_tools(*tools)
        if needs_loop:
            require_loop()
        require_binaries()
        ctx = Ctx(name)
        body(ctx)
    except Skip as e:
        log(f"SKIP: {name}: {e}")
        rc = SKIP
    except Fail as e:
        log(f"FAIL: {name}: {e}")
        rc = 1
    except KeyboardInterrupt as e:
        log(f"FAIL: {name}: interrupted ({e})")
        rc = 1
    except Exception:
        log(f"FAIL: {name}: unexpected exception")
        traceback.print_exc(file=sys.stdout)
        rc = 1
    finally:
        if ctx is not None:
            if rc == 1:
                ctx.failed = True
            try:
                errors = ctx.cleanup()
            except Exception:
                traceback.print_exc(file=sys.stdout)
                errors = ["cleanup raised"]
            if errors and rc == 0:
                log(f"FAIL: {name}: cleanup errors")
                rc = 1
    if rc == 0:
        log(f"PASS: {name}")
    sys.stdout.flush()
    sys.exit(rc)
