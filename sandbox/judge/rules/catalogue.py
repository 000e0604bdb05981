"""The rule catalogue: stable ids, titles, default severities and descriptions.

No package name appears here; every id is documented in README.md."""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.models import (
    Severity,
)


@dataclass(frozen=True)
class RuleInfo:
    id: str
    title: str
    severity: Severity
    description: str


CATALOGUE: dict[str, RuleInfo] = {
    r.id: r
    for r in (
        RuleInfo(
            "PS001",
            "credential access",
            Severity.MEDIUM,
            "Opens, stats or lists a credential location (~/.ssh, ~/.aws, ~/.kube, ~/.docker/config.json, "
            ".env, .netrc, .git-credentials, wallets …) or the cloud metadata address; HIGH when the run "
            "also attempts any network connection.",
        ),
        RuleInfo(
            "PS002",
            "outbound connection attempt",
            Severity.HIGH,
            "Connects or sends to an address other than loopback during install, startup, import or exercise "
            "(failed attempts count: the sandbox has no route).",
        ),
        RuleInfo(
            "PS003",
            "shell or downloader spawned",
            Severity.HIGH,
            "Executes a shell (sh, bash …) or a network tool (curl, wget, nc, socat …).",
        ),
        RuleInfo(
            "PS004",
            "executes a file it wrote",
            Severity.HIGH,
            "Executes a file that candidate code wrote (or renamed into place) earlier in the run, "
            "directly or through the dynamic loader (ld-linux.so FILE).",
        ),
        RuleInfo(
            "PS005",
            "persistence write",
            Severity.HIGH,
            "Writes a shell start-up file, crontab, systemd user unit, XDG autostart entry, "
            "authorized_keys, sitecustomize, a CI job's GITHUB_ENV or GITHUB_PATH file (ci pass), or a .pth "
            "file after install; links one of those (or a "
            "credential) elsewhere; or ships sitecustomize/usercustomize (source, .pyc, extension module) "
            "or bin/activate in the installed files. Also from the snapshot diff taken after every "
            "phase: any of those, a git hook, or a .pth no wheel's RECORD lists that appeared or "
            "changed, even unseen by the trace.",
        ),
        RuleInfo(
            "PS006",
            "lingering process",
            Severity.MEDIUM,
            "A process or thread of the candidate was still running when the observation window closed.",
        ),
        RuleInfo(
            "PS007",
            "recorder tampering",
            Severity.HIGH,
            "Signals or ptraces a process outside its own tree (the recorder, init), or touches the "
            "trace directory.",
        ),
        RuleInfo(
            "PS008",
            "container escape attempt",
            Severity.HIGH,
            "Touches the container engine's socket or state, mounts, loads kernel modules, enters "
            "namespaces, makes a 32-bit system call from a 64-bit process (refused: killed by SIGSYS), "
            "writes kernel or cgroup settings (/proc/sys, /sys: core_pattern, release_agent, "
            "sysrq-trigger …), opens raw memory or disks, reads another process's memory or environment. "
            "Reading harmless kernel values (boot_id, osrelease, overcommit_memory …) is not an attempt; "
            "reading an escape knob (core_pattern, release_agent …) alone is LOW.",
        ),
        RuleInfo(
            "PS029",
            "exec through a file descriptor",
            Severity.HIGH,
            "Executes a program through /proc/self/fd/N or /dev/fd/N, or an anonymous memory file "
            "(memfd_create then fexecve/execveat with AT_EMPTY_PATH): fileless execution that hides "
            "what runs from path-based checks.",
        ),
        RuleInfo(
            "PS030",
            "evasion probe",
            Severity.MEDIUM,
            "Looks for a debugger or a sandbox: reads its own /proc status (TracerPid), calls "
            "ptrace(PTRACE_TRACEME), or probes for a container (/.dockerenv, /run/.containerenv, "
            "/proc/1/cgroup, /proc/self/cgroup, /proc/1/sched, /proc/1/cmdline …). MEDIUM alone; when the "
            "run has any other finding at MEDIUM or above, each of those is raised one severity step "
            "(MEDIUM→HIGH, HIGH→CRITICAL).",
        ),
        RuleInfo(
            "PS031",
            "requests depend on the secrets",
            Severity.HIGH,
            "What a phase sends changes when only the environment's secret values change: the secrets "
            "pass (the env honeytokens redrawn) sent tokens that the default and control passes (the run's "
            "own values, before and after it) agreed on and never sent — a secret sent in an encoding no "
            "canary scan knows. Nonces, times and UUIDs that differ between default and control are ignored; "
            "requests the passes sent unequally often are not compared; a phase needs 16 such characters.",
        ),
        RuleInfo(
            "PS020",
            "write outside allowed paths",
            Severity.LOW,
            "Creates, writes, renames or deletes files outside the venv, temp dirs, caches and the profile's "
            "allowed paths (e.g. in HOME or the project).",
        ),
        RuleInfo(
            "PS021",
            "obfuscated or decoded exec",
            Severity.HIGH,
            "Runs code decoded at run time (exec/eval of base64/hex/zlib/marshal data) in a command "
            "line or in a start-up hook.",
        ),
        RuleInfo(
            "PS022",
            "process explosion",
            Severity.MEDIUM,
            "Holds more than 64 processes at once (running, or exited and not yet reaped: a zombie keeps "
            "its pid), spawns more than 20000 in a phase, or hits the pids limit (fork bomb); HIGH when the "
            "limit was hit.",
        ),
        RuleInfo(
            "PS023",
            "CPU burn",
            Severity.MEDIUM,
            "A survivor kept a CPU busy for at least a third of the observation window (miner-like).",
        ),
        RuleInfo(
            "PS025",
            "memory exhaustion",
            Severity.MEDIUM,
            "The kernel's OOM killer killed processes: the candidate exhausted the sandbox's memory limit.",
        ),
        RuleInfo(
            "PS026",
            "storage exhaustion",
            Severity.MEDIUM,
            "Writes failed because the capped storage was full (ENOSPC/EDQUOT): a disk-fill attempt.",
        ),
        RuleInfo(
            "PS027",
            "output flood",
            Severity.LOW,
            "More than 16 MiB written to stdout/stderr in a phase (only a bounded head and tail are kept).",
        ),
        RuleInfo(
            "PS028",
            "stops itself",
            Severity.MEDIUM,
            "Sends SIGSTOP to its own process: hangs the run (anti-analysis) until a timeout.",
        ),
        RuleInfo(
            "PS024",
            "deviation from baseline",
            Severity.MEDIUM,
            "With --baseline or diff: behaviour absent from the trusted version's baseline — new endpoints, "
            "processes or start-up hooks (MEDIUM), new file accesses (LOW).",
        ),
        RuleInfo(
            "PS010",
            "credential exfiltration proven",
            Severity.CRITICAL,
            "A honeytoken planted for this run (fake cloud keys, tokens, SSH key, .env secrets, wallet …) "
            "was found in outbound bytes the sinkhole captured — plain, base64, base32, hex, URL-encoded, "
            "compressed or split into DNS labels. Evidence: the channel, the destination and the bytes.",
        ),
        RuleInfo(
            "PS032",
            "sends the secrets it is handed",
            Severity.MEDIUM,
            "A call of the execute phase sent a secret the caller handed it (a per-run canary given to "
            "parameters and attributes named like one: password, token, private_key, access_key_secret …) "
            "in a request body, non-HTTP bytes or DNS names to a host the call was not handed. A stealer "
            "that takes credentials as arguments (a cloud SDK look-alike's constructor, a wallet helper) "
            "does this; in a request's head (Authorization, a /bot<token>/ path) it is a client logging in "
            "and not counted. MEDIUM: the evidence names the host for a reviewer.",
        ),
        RuleInfo(
            "PS011",
            "DNS lookup",
            Severity.HIGH,
            "Resolves a name through DNS during install, startup, import or exercise (the sinkhole "
            "answered; nothing left the sandbox). Catches lookups a loopback resolver would hide from "
            "PS002; the machine's own name, localhost and names the profile allows are not counted.",
        ),
        RuleInfo(
            "PS012",
            "honeytoken read",
            Severity.MEDIUM,
            "Opens a credential file planted for this run (~/.aws/credentials, ~/.ssh/id_rsa, the project's "
            ".env …) for reading; PS010 says whether its content then left.",
        ),
        RuleInfo(
            "PS013",
            "ran downloaded code",
            Severity.HIGH,
            "Executes what it downloaded: every HTTP(S) request is answered with a bait second stage (a "
            "Python/sh polyglot that only looks for a random per-run path); a trace event naming that path "
            "proves the answer ran (exec/eval of the text, a saved script run, or a pipe into a shell).",
        ),
        RuleInfo(
            "PS040",
            "static second opinion",
            Severity.MEDIUM,
            "Only for a run that could not look (incomplete): the candidate's Python sources match "
            "GuardDog's YARA threat rules (exec of decoded data, webhooks, credential paths, network in "
            "setup.py …). Raises incomplete to suspicious, never to malicious; evidence is marked static.",
        ),
        RuleInfo(
            "PS009",
            "startup hook executes code",
            Severity.INFO,
            "Installs a .pth file with an import line: it runs at every interpreter start "
            "(what it does is judged by the other rules).",
        ),
    )
}
