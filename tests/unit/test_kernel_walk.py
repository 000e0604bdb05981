"""The kernel-like walk of a path through the symlinks a trace created (pure)."""

from __future__ import annotations

from sandbox.trace.kernel_paths import through_links, walk

LINKS = {
    "/tmp/l": "/home/dev/.cache",
    "/tmp/d": "/home/dev",
    "/tmp/k": "/tmp/d/.ssh/id_rsa",
    "/tmp/loop": "/tmp/loop",
}


def test_dotdot_after_a_link_climbs_from_its_target() -> None:
    assert walk("/tmp/l/../.ssh/id_rsa", LINKS, follow_last=False) == "/home/dev/.ssh/id_rsa"
    assert through_links("/tmp/l/../.ssh/id_rsa", LINKS) == "/home/dev/.ssh/id_rsa"


def test_the_last_component_is_followed_only_when_asked() -> None:
    assert walk("/tmp/k", LINKS, follow_last=True) == "/home/dev/.ssh/id_rsa"  # open, exec
    assert walk("/tmp/k", LINKS, follow_last=False) == "/tmp/k"  # lstat, unlink


def test_without_links_it_is_lexical_and_a_loop_ends() -> None:
    assert walk("/a/./b//c/../d", {}, follow_last=True) == "/a/b/d"
    assert walk("/../../etc/passwd", {}, follow_last=True) == "/etc/passwd"
    assert walk("/tmp/loop/x", LINKS, follow_last=True) == "/tmp/loop/x"  # ELOOP: as written
    assert walk("relative/path", LINKS, follow_last=True) == "relative/path"


def test_a_rename_moves_the_links_at_and_under_it_and_drops_the_replaced() -> None:
    from sandbox.models import Phase
    from sandbox.trace.ebpf import StepWindow, _Step

    step = _Step(StepWindow(key="import.0", phase=Phase.IMPORT, start_ns=0), 0.0)
    step.links.update({"/tmp/d/l": "/home/dev", "/tmp/e/old": "/etc", "/tmp/x": "/home"})
    step.move_links("/tmp/d", "/tmp/e")
    assert step.links == {"/tmp/e/l": "/home/dev", "/tmp/x": "/home"}
    step.move_links("/tmp/plain", "/tmp/x")  # a file renamed over a link replaces it
    assert step.links == {"/tmp/e/l": "/home/dev"}
