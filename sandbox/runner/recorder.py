"""The recorder's command line: strace, as the agent starts it around each step.

It lives with the runner (which builds the plan the agent receives), not with the
trace parser: the runner never imports :mod:`sandbox.trace`, the parser reads what
the runner recorded (:mod:`sandbox.trace.strace` re-exports these names).
"""

from __future__ import annotations

STRACE_STRING_LIMIT = 1024
STRACE_SYSCALLS = (
    "%file,%process,%network,write,writev,pwrite64,pwritev,pwritev2,sendfile,splice,fchdir,fchmod,"
    "fchown,ftruncate,getdents64,kill,tkill,tgkill,ptrace,process_vm_readv,process_vm_writev,"
    "pidfd_open,pidfd_getfd,memfd_create,init_module,finit_module,delete_module,reboot,setuid,"
    "setgid,setreuid,setregid,setresuid,setresgid,setgroups,capset,unshare,setns,bpf,"
    "perf_event_open,keyctl,add_key,personality,io_uring_setup,fallocate,copy_file_range"
)


def strace_argv(output: str, *, denied: tuple[str, ...] = (), seccomp_bpf: bool = True) -> list[str]:
    """The strace command line (without the traced command) writing to *output*.

    *denied* are syscalls the sandbox's seccomp profile hands to the tracer
    (``SCMP_ACT_TRACE``, see :mod:`sandbox.runner.seccomp`): they are traced and
    failed with EPERM by fault injection, so escape attempts are recorded even
    though ``--seccomp-bpf`` keeps everything else cheap.
    """
    argv = [
        "strace",
        "-f",
        *(["--seccomp-bpf"] if seccomp_bpf else []),
        "-o",
        output,
        "-s",
        str(STRACE_STRING_LIMIT),
        "-yy",
        "-ttt",
        "-e",
        "trace=" + ",".join([STRACE_SYSCALLS, *denied]),
    ]
    if denied:
        argv += ["-e", "inject=" + ",".join(denied) + ":error=EPERM"]
    return argv
