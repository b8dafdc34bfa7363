"""runtime/hotpath.py's path helpers (the short verbs' stand-ins for os.path and os.walk, which
they may not import): the same answers as os.path's, on generated paths and on a real tree."""
import os
import posixpath

from hypothesis import given, settings, strategies as st

from runtime import hotpath

_parts = st.lists(st.sampled_from(["", ".", "..", "a", "b", "/", "//", "///", "c.d", " "]), max_size=8)
paths = _parts.map("/".join) | _parts.map("".join)


@settings(max_examples=400, deadline=None)
@given(paths, st.lists(paths, max_size=3))
def test_join_normpath_dirname_as_posixpath(p, more):
    assert hotpath.join(p, *more) == posixpath.join(p, *more)
    assert hotpath.normpath(p) == posixpath.normpath(p)
    assert hotpath.dirname(p) == posixpath.dirname(p)


def test_file_tests_and_walk_as_os(tmp_path):
    t = tmp_path / "t"
    (t / "a" / "b").mkdir(parents=True)
    (t / "c").mkdir()
    (t / "f").write_text("x")
    os.symlink(str(t / "c"), str(t / "a" / "link"))  # a symlink to a directory: never walked through
    for p in (t, t / "a", t / "f", t / "a" / "link", t / "nope", tmp_path / "f\0"):
        p = str(p)
        assert hotpath.exists(p) == os.path.exists(p), p
        assert hotpath.isdir(p) == os.path.isdir(p), p
        assert hotpath.ismount(p) == os.path.ismount(p), p
    assert hotpath.ismount("/") and hotpath.ismount("/proc") and not hotpath.ismount(str(t))
    walked = [r for r, _, _ in os.walk(str(t))]
    assert sorted(hotpath.walk_dirs(str(t))) == sorted(walked)
    down = list(hotpath.walk_dirs(str(t)))
    up = list(hotpath.walk_dirs(str(t), topdown=False))
    assert down[0] == str(t) and up[-1] == str(t) and sorted(up) == sorted(down)
    assert up.index(str(t / "a" / "b")) < up.index(str(t / "a"))  # deepest first, as rmdir needs
    assert list(hotpath.walk_dirs(str(t / "nope"))) == []
    assert hotpath.fsdecode(b"a\xff") == os.fsdecode(b"a\xff") and hotpath.fsdecode("s") == "s"


def test_selfexe_checks_stay_light():
    """exec asks selfexe on every call (docker and podman exec: no CAP_SYS_PTRACE, so no
    re-execution): its checks must not import runtime.rootless, subprocess or shutil (27 ms)."""
    import subprocess
    import sys
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from runtime import selfexe; "
            "before = set(sys.modules); selfexe.host_root(); selfexe.protected(); "
            "selfexe.needed_by_config({'process': {}, 'linux': {'namespaces': []}}); "
            "selfexe.any_may_ptrace([1]); print(sorted(set(sys.modules) - before))")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code, repo], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout
