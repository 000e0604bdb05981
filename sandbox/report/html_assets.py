"""The page's inline style and its one script (static text: the CSP allows that script by its sha256)."""

_CSS = """
:root{--bg:#fff;--fg:#1d2329;--mute:#5f6b76;--line:#dde2e7;--soft:#f4f6f8;--red:#b3261e;--amber:#9a6700;
--green:#1a7f37;--purple:#8250df;--blue:#0b5cad;--mark:#fff4d6}
@media (prefers-color-scheme:dark){:root{--bg:#14171a;--fg:#e3e7eb;--mute:#98a3ad;--line:#2c3238;
--soft:#1c2126;--red:#ff7b72;--amber:#e3b341;--green:#56d364;--purple:#bc8cff;--blue:#79c0ff;--mark:#3a3320}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:1400px;padding:0 16px 40px;background:var(--bg);color:var(--fg);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
code,pre,.mono,td.num,.argv,.path,.dest,.data{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,
"Liberation Mono",monospace;font-size:12.5px}
code,.argv,.path,.dest,.data,td{overflow-wrap:anywhere}
pre{white-space:pre-wrap;background:var(--soft);padding:8px;border-radius:4px;max-height:30em;overflow:auto}
h1{margin:4px 0;font-size:22px}h2{font-size:17px;margin:22px 0 8px;border-bottom:1px solid var(--line)}
a{color:var(--blue)}
.banner{margin-top:16px;padding:14px 18px;border-radius:6px;border-left:8px solid var(--mute);
background:var(--soft)}
.banner .verdict{font-weight:700;letter-spacing:.08em;font-size:13px}
.v-malicious{border-color:var(--red)}.v-malicious .verdict{color:var(--red)}
.v-suspicious{border-color:var(--amber)}.v-suspicious .verdict{color:var(--amber)}
.v-clean{border-color:var(--green)}.v-clean .verdict{color:var(--green)}
.v-incomplete{border-color:var(--purple)}.v-incomplete .verdict{color:var(--purple)}
.reason{margin:4px 0 8px;font-weight:600}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:1px 12px;margin:0;color:var(--mute);
font-size:13px}
.facts dt{font-weight:600}.facts dd{margin:0;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;margin:4px 0}
th,td{text-align:left;vertical-align:top;padding:3px 8px;border-bottom:1px solid var(--line)}
th{font-weight:600;color:var(--mute);font-size:12px}
td.num{text-align:right;white-space:nowrap}
td.nw{white-space:nowrap;overflow-wrap:normal}
.evidence td:last-child{min-width:16em}.evidence td:nth-child(4){max-width:36em}
.st-ok,.st.ok{color:var(--green)}.st-bad,.st.bad{color:var(--red)}.st.unknown{color:var(--amber)}
details{margin:6px 0}summary{cursor:pointer;font-weight:600;padding:2px 0}
.finding{border:1px solid var(--line);border-left:6px solid var(--mute);border-radius:4px;padding:6px 10px}
.finding summary{font-weight:400}
.sev-critical,.sev-high{border-left-color:var(--red)}.sev-medium{border-left-color:var(--amber)}
.sev-low{border-left-color:var(--blue)}
.sev{font-weight:700;font-size:12px;letter-spacing:.05em}
.sev-critical .sev,.sev-high .sev{color:var(--red)}.sev-medium .sev{color:var(--amber)}
.desc,.ph,.note,.notes,.t,.ev,.via,.none,footer,.count{color:var(--mute)}
.desc{margin:4px 0;font-size:13px}
.errno{color:var(--mute)}.dest{font-weight:600}
.tabs{position:sticky;top:0;z-index:2;background:var(--bg);padding:8px 0;margin-top:18px;
border-bottom:2px solid var(--line);display:flex;gap:6px;flex-wrap:wrap}
.tabs button{font:inherit;border:1px solid var(--line);background:var(--soft);color:var(--fg);
border-radius:4px;padding:4px 12px;cursor:pointer}
.tabs button[aria-selected=true]{background:var(--blue);color:var(--bg);border-color:var(--blue)}
.tabs button[aria-selected=true] .count{color:var(--bg)}
.count{margin-left:6px;font-size:12px}.flag{margin-left:6px;color:var(--red);font-weight:700}
.tabs button[aria-selected=true] .flag{color:var(--bg)}
ul.tree,ul.tree ul{list-style:none;margin:0;padding-left:20px}
ul.tree{padding-left:4px}
ul.tree li{border-left:1px solid var(--line);padding-left:10px;margin:2px 0}
.node{padding:1px 4px;border-radius:3px}
.node>span,.node>code{margin-right:6px}
.pidn{font-weight:700}
.proc.flagged>.node{background:var(--mark)}
.rules,.flagcell{color:var(--red);font-weight:700;white-space:nowrap}
.tag{font-size:11px;border:1px solid var(--line);border-radius:8px;padding:0 6px;color:var(--mute)}
.tag.linger{color:var(--purple);border-color:var(--purple)}
:target>.node,:target{outline:2px solid var(--blue);outline-offset:1px}
tr.flagged td{background:var(--mark)}tr.failed td.evt{color:var(--mute)}
tr.outbound .dest{color:var(--red)}
.controls{display:flex;gap:12px;align-items:center;flex-wrap:wrap;margin:4px 0}
.controls input[type=search]{font:inherit;padding:3px 8px;min-width:24em;border:1px solid var(--line);
border-radius:4px;background:var(--bg);color:var(--fg)}
.shown{color:var(--mute);font-size:12px}
button.more{font:inherit;margin:6px 0;border:1px solid var(--line);background:var(--soft);color:var(--fg);
border-radius:4px;padding:3px 12px;cursor:pointer}
.loc-credentials>summary b{color:var(--red)}
.warn{background:var(--mark);padding:6px 10px;border-radius:4px}
.label{font-weight:700;font-size:16px;margin:24px 0 0}
footer{margin-top:30px;font-size:12px}
"""

# Vanilla JS, no libraries.  Data only ever reaches the page through textContent.
_SCRIPT = r"""
(function () {
  "use strict";
  var PAGE = 500;
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = text; }
    return e;
  }
  function secs(us) { return (us / 1e6).toFixed(6); }
  function pidLink(rid, phase, pid) {
    var a = el("a", "pid", String(pid));
    a.href = "#" + rid + "-" + phase + "-p" + String(Number(pid));
    return a;
  }
  function terms(text) {
    return text.toLowerCase().split(/\s+/).filter(function (t) { return t.length > 0; });
  }
  function matches(hay, ts) {
    for (var i = 0; i < ts.length; i++) {
      var t = ts[i];
      if (t.charAt(0) === "-" && t.length > 1) { if (hay.indexOf(t.slice(1)) >= 0) { return false; } }
      else if (hay.indexOf(t) < 0) { return false; }
    }
    return true;
  }

  // A table over rows held in memory: filtered by words, shown a page at a time.
  function LazyTable(host, spec) {
    var rows = spec.rows, hay = new Array(rows.length), selected = [], shown = 0;
    var controls = el("div", "controls");
    var input = el("input");
    input.type = "search";
    input.placeholder = spec.placeholder;
    input.setAttribute("aria-label", "filter");
    controls.appendChild(input);
    var onlyFlagged = null;
    if (spec.flagged) {
      var lab = el("label");
      onlyFlagged = el("input");
      onlyFlagged.type = "checkbox";
      lab.appendChild(onlyFlagged);
      lab.appendChild(document.createTextNode(" only rows cited by findings"));
      controls.appendChild(lab);
    }
    var counter = el("span", "shown");
    controls.appendChild(counter);
    var table = el("table", spec.cls), thead = el("thead"), htr = el("tr"), tbody = el("tbody");
    spec.head.forEach(function (h) { htr.appendChild(el("th", null, h)); });
    thead.appendChild(htr); table.appendChild(thead); table.appendChild(tbody);
    var more = el("button", "more", "");
    more.type = "button";
    host.appendChild(controls); host.appendChild(table); host.appendChild(more);
    if (spec.dropped) { host.appendChild(el("p", "note", spec.dropped)); }

    function text(i) {
      if (hay[i] === undefined) { hay[i] = spec.text(rows[i]).toLowerCase(); }
      return hay[i];
    }
    function update() {
      counter.textContent = "showing " + shown + " of " + selected.length +
        (selected.length !== rows.length ? " matching (" + rows.length + " in all)" : "");
      var left = selected.length - shown;
      more.hidden = left <= 0;
      more.textContent = "show " + Math.min(PAGE, left) + " more (" + left + " left)";
    }
    function page() {
      var frag = document.createDocumentFragment(), end = Math.min(selected.length, shown + PAGE);
      for (var k = shown; k < end; k++) { frag.appendChild(spec.render(rows[selected[k]])); }
      tbody.appendChild(frag);
      shown = end;
      update();
    }
    function apply() {
      var ts = terms(input.value), flagOnly = onlyFlagged !== null && onlyFlagged.checked;
      selected = [];
      for (var i = 0; i < rows.length; i++) {
        if (flagOnly && !spec.flagged(rows[i])) { continue; }
        if (ts.length === 0 || matches(text(i), ts)) { selected.push(i); }
      }
      tbody.textContent = "";
      shown = 0;
      page();
    }
    var timer = null;
    input.addEventListener("input", function () {
      if (timer !== null) { clearTimeout(timer); }
      timer = setTimeout(apply, 150);
    });
    if (onlyFlagged !== null) { onlyFlagged.addEventListener("change", apply); }
    more.addEventListener("click", page);
    apply();
  }

  function cell(tr, cls, content) {
    var td = el("td", cls);
    if (typeof content === "string") { td.textContent = content; }
    else if (content) { td.appendChild(content); }
    tr.appendChild(td);
    return td;
  }
  function droppedNote(d, key) {
    if (!d || !d[key]) { return ""; }
    return d[key] + " rows left out of this page to keep it small; the JSON report has them.";
  }

  function initReport(root) {
    var rid = root.id;
    var node = document.getElementById(rid + "-data");
    var data = JSON.parse(node.textContent), S = data.s, ops = {};
    function str(r, i) { return S[r[i] || 0]; }  // trailing zero columns are left off
    function op(i) {  // "kind syscall" → [kind, syscall], split once per distinct value
      if (!ops[i]) { var t = S[i], k = t.indexOf(" "); ops[i] = [t.slice(0, k), t.slice(k + 1)]; }
      return ops[i];
    }

    function specFor(kind, phase, group) {
      var pd = data.phases[phase];
      if (!pd) { return null; }
      if (kind === "tl") {
        if (!pd.tlReady) {  // times are deltas from the previous row: make them absolute once
          var acc = 0;
          pd.tl.forEach(function (r) { acc += r[0]; r[0] = acc; });
          pd.tlReady = true;
        }
        return {
          rows: pd.tl, cls: "tl", dropped: droppedNote(pd.dropped, "tl"),
          head: ["t (s)", "pid", "kind", "event", ""],
          placeholder: "filter: words, pid:123, kind:connect, PS002, -stat (exclude)",
          flagged: function (r) { return (r[7] || 0) !== 0; },
          text: function (r) {
            var o = op(r[2]);
            return "pid:" + r[1] + " kind:" + o[0] + " " + o[1] + " " + str(r, 3) + str(r, 4) + " " +
              str(r, 5) + " " + str(r, 6) + " " + str(r, 7);
          },
          render: function (r) {
            var o = op(r[2]), err = str(r, 6), rules = str(r, 7), det = str(r, 5);
            var subj = str(r, 3) + str(r, 4);
            var tr = el("tr", rules ? "flagged" : (err ? "failed" : ""));
            cell(tr, "num", secs(r[0]));
            cell(tr, "num", pidLink(rid, phase, r[1]));
            cell(tr, "nw", o[0]);
            cell(tr, "evt mono", o[1] + (subj ? " " + subj : "") + (det ? " " + det : "") +
              (err ? " (" + err + ")" : ""));
            cell(tr, "flagcell", rules ? "⚑ " + rules : "");
            return tr;
          }
        };
      }
      if (kind === "net") {
        return {
          rows: pd.net, cls: "net", dropped: droppedNote(pd.dropped, "net"),
          head: ["first (s)", "pid", "op", "destination", "proto", "count", "bytes", "result", "process", ""],
          placeholder: "filter: destination, pid:123, connect, ENETUNREACH …",
          flagged: function (r) { return r[10] !== 0; },
          text: function (r) {
            return "pid:" + r[1] + " " + S[r[2]] + " " + S[r[3]] + " " + S[r[4]] + " " +
              (S[r[7]] || "ok") + " " + S[r[8]] + " " + S[r[9]] + " " + S[r[10]] + (r[11] ? " outbound" : "");
          },
          render: function (r) {
            var tr = el("tr", (r[10] ? "flagged " : "") + (r[11] ? "outbound" : ""));
            cell(tr, "num", secs(r[0]));
            cell(tr, "num", pidLink(rid, phase, r[1]));
            cell(tr, "nw", S[r[2]]);
            var td = cell(tr, "", el("span", "dest", S[r[3]]));
            if (S[r[9]]) { td.appendChild(el("div", "data", "\"" + S[r[9]] + "\"")); }
            cell(tr, "", S[r[4]]);
            cell(tr, "num", String(r[5]));
            cell(tr, "num", r[6] === null ? "-" : String(r[6]));
            cell(tr, "", S[r[7]] || "ok");
            cell(tr, "argv", S[r[8]]);
            cell(tr, "flagcell", S[r[10]] ? "⚑ " + S[r[10]] : "");
            return tr;
          }
        };
      }
      var rows = pd.files[group] || [];
      return {
        rows: rows, cls: "files", dropped: group === "credentials" ? droppedNote(pd.dropped, "files") : "",
        head: ["path", "access", "count", "result", "pids", ""],
        placeholder: "filter: path words, write, exec, ENOENT …",
        flagged: function (r) { return (r[7] || 0) !== 0; },
        text: function (r) {
          return str(r, 0) + str(r, 1) + " " + str(r, 2) + " " + str(r, 5) + " pid:" +
            str(r, 6).split(" ").join(" pid:") + " " + str(r, 7);
        },
        render: function (r) {
          var rules = str(r, 7), errs = str(r, 5), ok = r[4] || 0;
          var tr = el("tr", rules ? "flagged" : "");
          cell(tr, "path", str(r, 0) + str(r, 1));
          cell(tr, "", str(r, 2));
          cell(tr, "num", "x" + r[3]);
          cell(tr, "", errs ? errs + (ok ? " (" + ok + " ok)" : "") : "ok");
          cell(tr, "mono", str(r, 6));
          cell(tr, "flagcell", rules ? "⚑ " + rules : "");
          return tr;
        }
      };
    }

    function ensure(host) {
      if (host.getAttribute("data-ready") === "1") { return; }
      var spec = specFor(host.getAttribute("data-kind"), host.getAttribute("data-phase"),
                         host.getAttribute("data-group"));
      host.setAttribute("data-ready", "1");
      if (spec === null) { return; }
      if (spec.rows.length === 0) { host.appendChild(el("p", "none", "none")); return; }
      LazyTable(host, spec);
    }
    // Tables are built when first seen: an open <details> in the shown phase, or on opening.
    function renderVisible() {
      root.querySelectorAll(".lazy").forEach(function (host) {
        var sec = host.closest(".phase");
        if (sec && sec.hidden) { return; }
        var d = host.parentElement;
        while (d && d !== root) {
          if (d.tagName === "DETAILS" && !d.open) { return; }
          d = d.parentElement;
        }
        ensure(host);
      });
    }
    root.querySelectorAll("details").forEach(function (d) {
      d.addEventListener("toggle", function () { if (d.open) { renderVisible(); } });
    });

    var tabs = root.querySelectorAll(".tabs button");
    var sections = root.querySelectorAll("section.phase");
    function select(phase) {
      tabs.forEach(function (b) {
        b.setAttribute("aria-selected", b.getAttribute("data-phase") === phase ? "true" : "false");
      });
      sections.forEach(function (s) { s.hidden = phase !== "*" && s.getAttribute("data-phase") !== phase; });
      renderVisible();
    }
    tabs.forEach(function (b) {
      b.addEventListener("click", function () { select(b.getAttribute("data-phase")); });
    });
    // Links to a process (pid cells, evidence) switch to its phase and open what hides it.
    root.addEventListener("click", function (ev) {
      var a = ev.target.closest ? ev.target.closest("a[href^='#']") : null;
      if (!a) { return; }
      var target = document.getElementById(a.getAttribute("href").slice(1));
      if (!target) { return; }
      var sec = target.closest("section.phase");
      if (sec && sec.hidden) { select(sec.getAttribute("data-phase")); }
      for (var d = target.parentElement; d; d = d.parentElement) {
        if (d.tagName === "DETAILS") { d.open = true; }
      }
    });
    select(root.getAttribute("data-default-phase") || "*");
  }

  document.querySelectorAll(".report").forEach(function (root) {
    try { initReport(root); } catch (e) {
      var p = el("p", "warn", "This page could not lay out its data: " + e);
      root.insertBefore(p, root.firstChild);
      throw e;
    }
  });
})();
"""
