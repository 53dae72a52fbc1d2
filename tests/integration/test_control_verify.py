#!/usr/bin/env python3
"""A live `remapctl verify` does not hold up the control channel (src/daemon/control_server.cpp).

The image is slowed to 40 MB/s with the HDD model, so verifying its 1 GiB takes ~25 s:
1. While it runs, `remapctl status` is answered (the verify is still running afterwards), and a
   second verify is refused with one line and exit status 1.
2. SIGTERM during the verify: the daemon exits within seconds with status 0, and the verify
   client gets one line saying the verify stopped, exit status 1.
3. After a remount, verifies run one after another (the first one's end frees the slot).
"""

import os
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import remaptest as rt  # noqa: E402
from remaptest import check, check_eq, log  # noqa: E402

BACKING_BYTES = 1024 * rt.MiB
OPTS = "noscan,allow_inject,hdd_model=40"


def start_verify(mnt):
    return subprocess.Popen([rt.remapctl_bin(), "--mount", mnt, "verify"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc, timeout, what):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise rt.Fail(f"{what} did not finish within {timeout}s")
    return proc.returncode, out, err


def body(ctx):
    backing, db, mnt = ctx.path("backing.img"), ctx.path("remap.db"), ctx.mkdir("mnt")
    rt.make_sparse(backing, BACKING_BYTES)
    d = ctx.mount_fg(backing, mnt, f"db={db},{OPTS}")

    log("--- a verify of the whole image runs; status and a second verify meanwhile")
    verifier = start_verify(mnt)
    try:
        time.sleep(1.0)
        check(verifier.poll() is None, "the verify is still running a second after it started")
        st = rt.remapctl_json("--mount", mnt, "status", timeout=10)
        check_eq((st.get("daemon") or {}).get("running"), True, "status answered by the daemon during the verify")
        check(verifier.poll() is None, "the verify was still running when status had been answered")
        second = rt.remapctl("--mount", mnt, "verify", "0", "8", check_rc=False, timeout=10)
        check_eq(second.returncode, 1, "exit status of a second verify while one runs")
        check("already running" in second.stderr and len(rt.nonempty_lines(second.stderr)) == 1,
              f"a second verify gets one line saying why (got {second.stderr!r})")

        log("--- SIGTERM while the verify runs")
        check(verifier.poll() is None, "the verify is still running when the signal is sent")
        os.kill(d.pid, signal.SIGTERM)
        try:
            rc = d.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            raise rt.Fail(f"remapfs did not exit within 15s of SIGTERM during a verify; log:\n{d.log_text()}")
        d.stopped = True
        check_eq(rc, 0, "remapfs exit status after SIGTERM during a verify")
        check(not rt.is_mounted(mnt), f"{mnt} is unmounted")
        rc, out, err = finish(verifier, 10, "the verify client after the daemon stopped")
        check_eq(rc, 1, "exit status of the stopped verify")
        check("verify stopped after" in err and len(rt.nonempty_lines(err)) == 1,
              f"the stopped verify says so in one line (got {err!r})")
    finally:
        if verifier.poll() is None:
            verifier.kill()
            verifier.wait()

    log("--- remount: verifies one after another")
    d = ctx.mount_fg(backing, mnt, f"db={db},{OPTS}")
    for n in (1, 2):
        v = rt.remapctl_json("--mount", mnt, "verify", "0", "256", timeout=30)
        check_eq((v.get("checked"), v.get("unreadable")), (256, []), f"verify {n} of sectors 0+256")
    d.stop()


if __name__ == "__main__":
    rt.run("control_verify", body)
