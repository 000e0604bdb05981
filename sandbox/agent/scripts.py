"""Source of the tiny drivers that run as the candidate user inside the venv.

They are written to ``/opt/pkgsandbox/run/`` at image build time (a directory that
holds nothing else, so ``sys.path[0]`` adds no module the candidate could pick up).
Each reports progress as JSON lines on fd 3, a pipe to the agent; the candidate can
write there too, which only affects progress bookkeeping, never the syscall record.
"""

# Keeps the interpreter alive while any other thread of it exists, so that daemon
# threads started by .pth hooks or imports get the chance to act (a real program
# would live on). The agent's observation window bounds how long this can last.
LINGER = r'''
def _pkgsandbox_linger():
    import os, time
    while True:
        try:
            n = len(os.listdir("/proc/self/task"))
        except OSError:
            return
        if n <= 1:
            return
        time.sleep(0.05)
'''

KEEP = LINGER + r'''
_pkgsandbox_linger()
'''

IMPORTER = LINGER + r'''
def _pkgsandbox_main():
    import importlib, json, os, sys, time, traceback
    try:
        ctl = os.fdopen(3, "w", buffering=1)
        os.set_inheritable(3, False)
    except OSError:
        ctl = None

    def say(**kw):
        if ctl is None:
            return
        try:
            ctl.write(json.dumps(kw) + "\n")
            ctl.flush()
        except Exception:
            pass

    modules = sys.argv[1:]
    del sys.argv[1:]
    for name in modules:
        say(ev="start", m=name, t=time.time())
        try:
            importlib.import_module(name)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt from a module count too
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            say(ev="end", m=name, ok=False, err=last[:500], t=time.time())
        else:
            say(ev="end", m=name, ok=True, t=time.time())
    say(ev="done", t=time.time())
    _pkgsandbox_linger()

_pkgsandbox_main()
'''

SCRIPTS = {
    "pkgsandbox_keep.py": KEEP,
    "pkgsandbox_import.py": IMPORTER,
}
