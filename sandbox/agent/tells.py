"""``agent tells``: what a process of the candidate sees that gives the sandbox away.

The probe runs exactly as a step does (the recorder in front, the privilege drop,
the candidate's environment and working directory) and reports raw facts; the host
(sandbox/doctor.py) decides which of them are tells.
"""

from __future__ import annotations

PROBE = r"""
import json, os, socket
def rd(p, n=65536):
    try:
        with open(p, "rb") as fh:
            return fh.read(n).decode("utf-8", "replace")
    except OSError as e:
        return None
status = dict(l.split(":", 1) for l in (rd("/proc/self/status") or "").splitlines() if ":" in l)
procs = []
for d in os.listdir("/proc"):
    if d.isdigit():
        st = rd(f"/proc/{d}/stat")
        if st and ")" in st:
            comm = st[st.index("(") + 1:st.rindex(")")]
            ppid = int(st.rsplit(")", 1)[1].split()[1])
            cmd = (rd(f"/proc/{d}/cmdline", 300) or "").replace("\0", " ").strip()
            procs.append([int(d), ppid, comm, cmd])
net = {}
for i in sorted(os.listdir("/sys/class/net")):
    net[i] = (rd(f"/sys/class/net/{i}/address") or "").strip()
dmi = {k: (rd("/sys/class/dmi/id/" + k) or "").strip() for k in
       ("product_name", "sys_vendor", "board_vendor", "bios_vendor", "chassis_vendor")}
mem = 0
for l in (rd("/proc/meminfo") or "").splitlines():
    if l.startswith("MemTotal:"):
        mem = int(l.split()[1]) * 1024
try:
    aff = len(os.sched_getaffinity(0))
except OSError:
    aff = None
r = {
    "pid1_comm": (rd("/proc/1/comm") or "").strip(),
    "pid1_cmdline": rd("/proc/1/cmdline"),
    "tracer_pid": status.get("TracerPid", "").strip(),
    "dockerenv": os.path.exists("/.dockerenv"),
    "containerenv": os.path.exists("/run/.containerenv"),
    "mounts": rd("/proc/self/mounts"),
    "mountinfo": rd("/proc/self/mountinfo"),
    "cgroup_self": rd("/proc/self/cgroup"),
    "cgroup_1": rd("/proc/1/cgroup"),
    "processes": procs,
    "hostname": socket.gethostname(),
    "env": sorted(os.environ),
    "uptime": rd("/proc/uptime"),
    "cpu_count": os.cpu_count(),
    "cpu_affinity": aff,
    "mem_total": mem,
    "version": (rd("/proc/version") or "").strip(),
    "dmi": dmi,
    "net": net,
    "uid": os.getuid(),
    "shm": sorted(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else None,
}
print(json.dumps(r))
"""
