# How redteam-*.strace were captured (red-team evasions, issue 11), with the project's
# own agent and strace command line (sandbox.trace.strace.strace_argv):
#   python -c 'build tests/fixtures/builders.build_wheel("rtprobe", "0.1",
#              {"rtprobe/__init__.py": redteam_probe.py with @WHEEL@ replaced})'
#   pkgsandbox vet rtprobe-0.1-py3-none-any.whl --evidence EV --window 20 --module-timeout 60
#   cp EV/raw/import.0.strace redteam-import.strace
#   gzip -c EV/raw/install.0.strace > redteam-install.strace.gz
# The install step's harness argv (EV/raw/install.result.json) is in test_redteam.py.
# fallocate/copy_file_range lines (test_redteam.py) came from the same strace argv in the
# sandbox image:
S=$(python -c 'from sandbox.trace.strace import strace_argv; import shlex; print(shlex.join(strace_argv("/tmp/t.strace")))')
docker run --rm -v "$PWD/fa.py:/fa.py:ro" --cap-add SYS_PTRACE pkgsandbox-sandbox:TAG \
  sh -c "$S -- python3 /fa.py; grep -E 'fallocate|copy_file_range' /tmp/t.strace"
