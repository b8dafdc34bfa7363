"""Core of the conformance suite: runtimes, per-case contexts, the case registry.

Every case gets a Ctx: its own temp dir, its own --root state dir, its own container ids and a
fresh config built from the busybox base config.  Whatever a case does, Ctx.cleanup() deletes
(--force) every container id it handed out, kills helper processes it started and removes the
temp dir.
"""

import copy
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLE = os.path.join(REPO, "bundles", "busybox")
ROOTFS = os.path.join(BUNDLE, "rootfs")
TIMEOUT = 10

MUST, SHOULD, MAY = "MUST", "SHOULD", "MAY"


class Fail(Exception):
    """The runtime did not behave as the spec requires."""


class Skip(Exception):
    """The case cannot run on this host (decided from the host only, never from the runtime)."""


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def eq(got, want, what="value"):
    if got != want:
        raise Fail("%s: got %r, want %r" % (what, got, want))


# --------------------------------------------------------------------------------------------
# Runtimes

class Runtime:
    def __init__(self, spec):
        path = shutil.which(spec) or spec
        self.path = os.path.abspath(path) if os.sep in path else path
        self.name = os.path.basename(spec)
        self.prefix = []
        # crun 1.8.1 refuses hybrid cgroup hosts: run it in a private mount namespace in which
        # the cgroup2 mount is gone.  The host's mount table is never touched.
        if self.name.startswith("crun") and os.path.ismount("/sys/fs/cgroup/unified"):
            prop = "private"
            with open("/proc/self/mountinfo") as f:
                for line in f:
                    x = line.split()
                    if x[4] == "/sys/fs/cgroup/unified" and "shared:" not in line.split(" - ")[0]:
                        # nothing to propagate back: keep shared test mounts shared
                        prop = "unchanged"
            self.prefix = ["unshare", "-m", "--propagation", prop, "sh", "-c",
                           'umount /sys/fs/cgroup/unified && exec "$0" "$@"']

    def argv(self, root, args):
        return self.prefix + [self.path, "--root", root] + list(args)

    def usable(self):
        if os.sep in self.path:
            return os.access(self.path, os.X_OK)
        return shutil.which(self.path) is not None


class Result:
    def __init__(self, rc, out, err, argv):
        self.rc, self.out, self.err, self.argv = rc, out, err, argv

    def __repr__(self):
        return "rc=%s stdout=%r stderr=%r" % (self.rc, self.out[-300:], self.err[-300:])

    def ok(self, what="command"):
        if self.rc != 0:
            raise Fail("%s failed: %r" % (what, self))
        return self

    def fails(self, what="command"):
        if self.rc == 0:
            raise Fail("%s succeeded, an error is required: %r" % (what, self))
        return self


# --------------------------------------------------------------------------------------------
# Host probes: every skip decision is taken from these, so it is the same for every runtime.

class Host:
    def __init__(self):
        self.controllers = {}
        with open("/proc/self/mountinfo") as f:
            for line in f:
                parts = line.split()
                sep = parts.index("-")
                fstype, opts = parts[sep + 1], parts[sep + 3]
                if fstype == "cgroup":
                    for o in opts.split(","):
                        if o in ("rw", "ro", "relatime", "noexec", "nosuid", "nodev"):
                            continue
                        self.controllers[o] = parts[4]   # includes named ones: name=systemd
                elif fstype == "cgroup2":
                    self.controllers[""] = parts[4]      # key of "0::/path" in /proc/PID/cgroup
        self.own = {}
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                for c in ctrls.split(","):
                    self.own[c] = path
        lsm = ""
        try:
            with open("/sys/kernel/security/lsm") as f:
                lsm = f.read()
        except OSError:
            pass
        self.apparmor = "apparmor" in lsm or os.path.exists("/sys/kernel/security/apparmor")
        self.selinux = "selinux" in lsm or os.path.exists("/sys/fs/selinux/enforce")
        self.resctrl = os.path.ismount("/sys/fs/resctrl")
        self.seccomp = os.path.exists("/proc/sys/kernel/seccomp/actions_avail")
        self.userns = os.path.exists("/proc/self/ns/user")
        self.timens = os.path.exists("/proc/self/ns/time")
        self.cgroupns = os.path.exists("/proc/self/ns/cgroup")
        self.cpus = os.sched_getaffinity(0)
        self._probed = {}

    def cgfile(self, ctrl, name):
        """Does the (v1) controller expose this file in a child cgroup?"""
        mnt = self.controllers.get(ctrl)
        if not mnt:
            return False
        base = os.path.join(mnt, self.own.get(ctrl, "/").lstrip("/"))
        if os.path.exists(os.path.join(mnt, name)) or os.path.exists(os.path.join(base, name)):
            return True
        # some files exist only below the root: look into an empty probe cgroup of our own
        if ctrl not in self._probed:
            probe = os.path.join(base, "oci-conformance-probe-%d" % os.getpid())
            try:
                os.mkdir(probe)
                self._probed[ctrl] = set(os.listdir(probe))
            except OSError:
                self._probed[ctrl] = set()
            finally:
                try:
                    os.rmdir(probe)
                except OSError:
                    pass
        return name in self._probed[ctrl]

    def need_ctrl(self, ctrl, fname=None):
        if ctrl not in self.controllers:
            return "cgroup controller %s not available on this host" % ctrl
        if fname and not self.cgfile(ctrl, fname):
            return "%s not available on this host" % fname
        return None


HOST = None


def host():
    global HOST
    if HOST is None:
        HOST = Host()
    return HOST


# --------------------------------------------------------------------------------------------
# Base config

_BASE = None


def base_config():
    global _BASE
    if _BASE is None:
        with open(os.path.join(BUNDLE, "config.json")) as f:
            _BASE = json.load(f)
    c = copy.deepcopy(_BASE)
    c["root"] = {"path": ROOTFS, "readonly": True}
    c["process"]["args"] = ["true"]
    c["hostname"] = "conformance"
    return c


# --------------------------------------------------------------------------------------------
# Per-case context

class Ctx:
    def __init__(self, rt, tmpbase, verbose=False):
        self.rt = rt
        self.host = host()
        self.tmp = tempfile.mkdtemp(prefix="case-", dir=tmpbase)
        os.chmod(self.tmp, 0o755)
        self.root = os.path.join(self.tmp, "state")
        self.bundle = os.path.join(self.tmp, "bundle")
        os.makedirs(self.bundle)
        self.config = base_config()
        self.ids = []
        self.pids = []          # container pids seen (checked gone at cleanup)
        self.helpers = []       # Popen objects of helper processes we started
        self.log = []
        self.verbose = verbose

    # ---- helpers for building configs
    @property
    def proc(self):
        return self.config["process"]

    @property
    def linux(self):
        return self.config.setdefault("linux", {})

    def path(self, *p):
        return os.path.join(self.tmp, *p)

    def write(self, relpath, content, mode=0o644):
        p = self.path(relpath)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(content)
        os.chmod(p, mode)
        return p

    def read(self, relpath, default=None):
        try:
            with open(self.path(relpath)) as f:
                return f.read()
        except OSError:
            if default is not None:
                return default
            raise

    def new_id(self):
        cid = "conf-%s" % uuid.uuid4().hex[:12]
        self.ids.append(cid)
        return cid

    def add_mount(self, dest, typ, source, options=None):
        m = {"destination": dest, "type": typ, "source": source}
        if options is not None:
            m["options"] = options
        self.config.setdefault("mounts", []).append(m)
        return m

    def share(self, dest="/run"):
        """A host directory bind-mounted read-write into the container; returns its host path."""
        d = self.path("share")
        if not os.path.isdir(d):
            os.makedirs(d)
            os.chmod(d, 0o777)
            self.add_mount(dest, "bind", d, ["rbind", "rw"])
        return d

    def writable_tmp(self):
        """A tmpfs on /tmp so scripts can write although the rootfs is read-only."""
        self.add_mount("/tmp", "tmpfs", "tmpfs", ["nosuid", "nodev", "mode=1777"])

    def small_rootfs(self):
        """A private writable copy of a minimal rootfs (busybox + its links, a few dirs)."""
        dst = self.path("rootfs")
        if not os.path.exists(dst):
            for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "dev", "proc", "sys", "tmp",
                      "root", "run", "mnt", "var/tmp"):
                os.makedirs(os.path.join(dst, d), exist_ok=True)
            shutil.copy2(os.path.join(ROOTFS, "bin/busybox"), os.path.join(dst, "bin/busybox"))
            for d in ("bin", "sbin", "usr/bin", "usr/sbin"):
                for n in os.listdir(os.path.join(ROOTFS, d)):
                    src = os.path.join(ROOTFS, d, n)
                    if os.path.islink(src):
                        os.symlink(os.readlink(src), os.path.join(dst, d, n))
            for n in ("passwd", "group"):
                shutil.copy2(os.path.join(ROOTFS, "etc", n), os.path.join(dst, "etc", n))
        self.config["root"] = {"path": dst, "readonly": False}
        return dst

    def write_bundle(self, config=None, bundle=None):
        bundle = bundle or self.bundle
        os.makedirs(bundle, exist_ok=True)
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(self.config if config is None else config, f, indent=1)
        return bundle

    # ---- running the runtime
    def call(self, *args, timeout=TIMEOUT, stdin=None, out=None, env=None, pass_fds=()):
        """Run `runtime --root STATE args...`.  Output goes to files (never pipes): a container
        started by create inherits them and would otherwise keep a pipe open forever."""
        argv = self.rt.argv(self.root, args)
        n = len(self.log)
        outp = out or self.path("out.%d" % n)
        errp = self.path("err.%d" % n)
        with open(outp, "wb") as fo, open(errp, "wb") as fe:
            fi = open(stdin, "rb") if stdin else subprocess.DEVNULL
            try:
                p = subprocess.Popen(argv, stdin=fi, stdout=fo, stderr=fe, env=env,
                                     start_new_session=True, pass_fds=pass_fds)
                try:
                    rc = p.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except OSError:
                        pass
                    p.wait()
                    rc = "timeout"
            finally:
                if stdin:
                    fi.close()
        with open(outp, "rb") as f:
            o = f.read().decode(errors="replace")
        with open(errp, "rb") as f:
            e = f.read().decode(errors="replace")
        r = Result(rc, o, e, argv)
        self.log.append(r)
        return r

    def create(self, cid=None, bundle=None, check_ok=True, extra=()):
        if cid is None:
            cid = self.new_id()
        if bundle is None:
            bundle = self.write_bundle()
        r = self.call("create", *extra, "--bundle", bundle, cid, out=self.path("ctr-%s.out" % cid.replace("/", "_")))
        if check_ok:
            r.ok("create")
            st = self.state(cid)
            if st.get("pid"):
                self.pids.append(st["pid"])
        return cid if check_ok else r

    def ctr_output(self, cid):
        try:
            with open(self.path("ctr-%s.out" % cid.replace("/", "_"))) as f:
                return f.read()
        except OSError:
            return ""

    def start(self, cid):
        return self.call("start", cid)

    def state(self, cid, must=True):
        r = self.call("state", cid)
        if must:
            r.ok("state")
        try:
            return json.loads(r.out)
        except ValueError:
            if must:
                raise Fail("state output is not JSON: %r" % r.out[:200])
            return None

    def kill(self, cid, sig="KILL", all_=False):
        return self.call("kill", *(["--all"] if all_ else []), cid, sig)

    def delete(self, cid, force=False):
        return self.call("delete", *(["--force"] if force else []), cid)

    def wait_status(self, cid, want, timeout=5.0):
        end = time.time() + timeout
        st = None
        while time.time() < end:
            st = self.state(cid, must=False)
            if st and st.get("status") == want:
                return st
            time.sleep(0.02)
        raise Fail("container did not reach status %r (last state %r)" % (want, st))

    def run(self, args=None, bundle=None, timeout=TIMEOUT):
        if args is not None:
            self.proc["args"] = list(args)
        cid = self.new_id()
        bundle = bundle or self.write_bundle()
        return self.call("run", "--bundle", bundle, cid, timeout=timeout)

    def sh(self, script, ok=True):
        r = self.run(["sh", "-c", script])
        if ok:
            r.ok("run")
            return r.out
        return r

    def console_run(self, script, timeout=5.0):
        """create with terminal=true and a console socket, start, return the pty output."""
        import socket
        import select
        self.proc["terminal"] = True
        self.proc["args"] = ["sh", "-c", script]
        sock_path = self.path("console.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(sock_path)
        srv.listen(1)
        srv.settimeout(timeout)
        master = None
        try:
            cid = self.new_id()
            r = self.call("create", "--console-socket", sock_path, "--bundle", self.write_bundle(),
                          cid)
            r.ok("create with a console socket")
            conn, _ = srv.accept()
            conn.settimeout(timeout)
            try:
                _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
            finally:
                conn.close()
            check(fds, "no pty master received on the console socket")
            master = fds[0]
            self.start(cid).ok("start")
            out = b""
            end = time.time() + timeout
            while time.time() < end:
                rl, _, _ = select.select([master], [], [], 0.1)
                if not rl:
                    st = self.state(cid, must=False)
                    if st and st.get("status") == "stopped":
                        break
                    continue
                try:
                    b = os.read(master, 4096)
                except OSError:
                    break
                if not b:
                    break
                out += b
            return out.decode(errors="replace").replace("\r\n", "\n")
        finally:
            if master is not None:
                os.close(master)
            srv.close()

    def host_tmpfs(self, rel, shared=False, content=None):
        """Mount a tmpfs under our temp dir on the host (unmounted by cleanup)."""
        p = self.path(rel)
        os.makedirs(p, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", p], check=True,
                       timeout=TIMEOUT)
        if shared:
            subprocess.run(["mount", "--make-shared", p], check=True, timeout=TIMEOUT)
        for name, data in (content or {}).items():
            with open(os.path.join(p, name), "w") as f:
                f.write(data)
        return p

    # ---- helper processes (namespace holders etc.)
    def helper(self, argv):
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        self.helpers.append(p)
        return p

    def cleanup(self):
        problems = []
        try:
            entries = os.listdir(self.root)
        except OSError:
            entries = []
        # a runtime keeping its state elsewhere than ROOT/ID gets delete --force for every id
        unknown = any(not any(cid in n for cid in self.ids) for n in entries)
        for cid in self.ids:
            if unknown or os.path.exists(os.path.join(self.root, cid)):
                self.call("delete", "--force", cid)
        for p in self.helpers:
            family = _descendants(p.pid)
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            _kill_wait(family)
            try:
                p.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        # anything the runtime left behind? (our own container ids only)
        for cid in self.ids:
            if os.path.exists(os.path.join(self.root, cid)):
                problems.append("state of %s left after delete --force" % cid)
        for pid in self.pids:
            if _alive(pid):
                problems.append("container process %d still alive after delete --force" % pid)
                _kill_wait([pid])
        for cid in self.ids:
            for ctrl, mnt in self.host.controllers.items():
                for base in ("/", self.host.own.get(ctrl, "/")):
                    d = os.path.join(mnt, base.lstrip("/"), cid)
                    if os.path.isdir(d):
                        problems.append("cgroup %s left behind" % d)
                        # only processes of our own container (cgroup named by its unique id)
                        _kill_wait(_cgroup_pids(d))
                        _rmdir_tree(d)
        _unmount_under(self.tmp)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return problems


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _descendants(pid):
    """pid and every process below it (helpers fork: unshare --fork)."""
    kids = {}
    for n in os.listdir("/proc"):
        if n.isdigit():
            try:
                with open("/proc/%s/stat" % n) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(n))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def _cgroup_pids(d):
    pids = []
    for dp, _, fns in os.walk(d):
        if "cgroup.procs" in fns:
            try:
                with open(os.path.join(dp, "cgroup.procs")) as f:
                    pids += [int(x) for x in f.read().split()]
            except (OSError, ValueError):
                pass
    return pids


def _kill_wait(pids, timeout=3.0):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    end = time.time() + timeout
    while time.time() < end and any(_alive(p) for p in pids):
        time.sleep(0.02)


def _rmdir_tree(d):
    """Remove a cgroup directory that one of our own containers left behind (children first)."""
    for dp, dns, _ in os.walk(d, topdown=False):
        for n in dns:
            try:
                os.rmdir(os.path.join(dp, n))
            except OSError:
                pass
    try:
        os.rmdir(d)
    except OSError:
        pass


def _unmount_under(path):
    """Safety net: lazily unmount anything a misbehaving runtime left mounted under our temp dir."""
    try:
        with open("/proc/self/mountinfo") as f:
            mps = [l.split()[4] for l in f]
    except OSError:
        return
    for mp in sorted((m for m in mps if m.startswith(path + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=TIMEOUT)


# --------------------------------------------------------------------------------------------
# Registry

class Case:
    def __init__(self, name, spec, level, fn, skip):
        self.name, self.spec, self.level, self.fn, self.skip = name, spec, level, fn, skip


CASES = []
_NAMES = set()


def case(name, spec, level=MUST, skip=None):
    """Register a case.  `skip` is a function (Host) -> reason or None."""
    def deco(fn):
        if name in _NAMES:
            raise ValueError("duplicate case name %s" % name)
        _NAMES.add(name)
        CASES.append(Case(name, spec, level, fn, skip))
        return fn
    return deco


def rootfs_fingerprint():
    """Names, types, sizes and mtimes of the shared rootfs (its directories and /etc, /dev): a
    runtime must not change the bundle's rootfs on the host (mount points, device nodes)."""
    fp = []
    for d in ("", "etc", "dev", "mnt", "run", "tmp", "root", "var"):
        base = os.path.join(ROOTFS, d)
        try:
            names = sorted(os.listdir(base))
        except OSError:
            continue
        for n in names:
            st = os.lstat(os.path.join(base, n))
            fp.append((d, n, st.st_mode, st.st_size if not os.path.isdir(os.path.join(base, n))
                       else 0, st.st_mtime_ns if d == "etc" else 0))
    return fp


def run_case(c, rt, tmpbase, verbose=False):
    """-> (status, reason, seconds); status in ok / fail / skip."""
    t0 = time.time()
    before = rootfs_fingerprint()
    if c.skip:
        reason = c.skip(host())
        if reason:
            return "skip", reason, 0.0
    ctx = Ctx(rt, tmpbase, verbose)
    status, reason = "ok", ""
    try:
        c.fn(ctx)
    except Skip as e:
        status, reason = "skip", str(e)
    except Fail as e:
        status, reason = "fail", str(e)
    except Exception as e:  # a crash of the case is reported against the runtime as well
        status, reason = "fail", "%s: %s" % (type(e).__name__, e)
    finally:
        problems = ctx.cleanup()
    after = rootfs_fingerprint()
    if after != before:
        changed = sorted(set(after) ^ set(before))
        problems.append("the shared read-only rootfs was modified on the host: %s"
                        % ["/".join(x[:2]) for x in changed][:6])
    if problems and status != "skip":
        if status == "ok":
            status = "fail"
        reason = (reason + "; " if reason else "") + "; ".join(problems)
    return status, reason, time.time() - t0
