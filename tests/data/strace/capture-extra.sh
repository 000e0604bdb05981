# Extra captures for the parser tests (run by hand, Debian bookworm image, strace 6.1).
# Same strace flags as the runner, but the container runs with seccomp=unconfined so
# that clone3 and the privileged syscalls reach strace (Docker's default profile
# answers them with ENOSYS/EPERM before strace's seccomp filter sees them).
#
#   docker run --rm --network none --security-opt seccomp=unconfined --cap-drop ALL \
#     --cap-add SETUID --cap-add SETGID --cap-add SETPCAP --cap-add SYS_PTRACE \
#     --cap-add DAC_READ_SEARCH --cap-add CHOWN --security-opt no-new-privileges \
#     -v $PWD:/x pkgsandbox-base:bookworm bash /x/capture-extra.sh
#
# extra-behaviours.strace: extra_behaviours.py (fchdir, *at calls, renameat2, writev,
#   sendfile, splice, memfd, openat2, unreadable pointer, odd file names, loopback
#   TCP/UDP, sendmsg/recvmsg, abstract unix socket, netlink, privileged calls,
#   SIGKILL/SIGABRT core dumps, execveat, clone3 threads, exec from a thread).
# privileged.strace: privileged.py; strace is SIGKILLed while `sleep 30` runs, so the
#   trace ends with an <unfinished ...> wait4 that never resumes.
# sigstop.strace: two lines from a first privileged.py run that tkill'ed itself with SIGSTOP.
# detached.strace/.stderr: strace -p on a process blocked in wait4, then SIGINT to strace.
useradd -m -u 1000 dev 2>/dev/null
mkdir -p /var/trace; chmod 700 /var/trace
E=%file,%process,%network,write,writev,pwrite64,pwritev,pwritev2,sendfile,splice,fchdir,fchmod,fchown,ftruncate,getdents64,kill,tkill,tgkill,ptrace,process_vm_readv,process_vm_writev,pidfd_open,pidfd_getfd,memfd_create,init_module,finit_module,delete_module,reboot,setuid,setgid,setreuid,setregid,setresuid,setresgid,setgroups,capset,unshare,setns,bpf,perf_event_open,keyctl,add_key,personality,io_uring_setup
S="strace -f --seccomp-bpf -s 1024 -yy -ttt -e trace=$E"
P="setpriv --reuid=1000 --regid=1000 --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs --"
ulimit -c unlimited
(cd /tmp && $S -o /var/trace/e -- $P env HOME=/home/dev python3 /x/extra_behaviours.py > /dev/null 2>&1)
cp /var/trace/e /x/extra-behaviours.strace
(cd /tmp && $S -o /var/trace/p -- $P env HOME=/home/dev python3 /x/privileged.py > /dev/null 2>&1) &
sleep 2; kill -KILL $!; sleep 0.5
cp /var/trace/p /x/privileged.strace
python3 -c 'import subprocess; subprocess.run(["sleep","30"])' &
T=$!; sleep 0.5
strace -f -s 1024 -yy -ttt -e trace=$E -o /x/detached.strace -p $T 2>/x/detached.stderr &
sleep 1; kill -INT $!; wait $!; kill $T
# ipv6-loopback.strace: ipv6_loopback.py, root, plain strace (no setpriv), container run with
#   --sysctl net.ipv6.conf.all.disable_ipv6=0 --sysctl net.ipv6.conf.lo.disable_ipv6=0;
#   an excerpt: start-up lines (python3.11, locale, .so, ld.so, LC_, gconv, /x) grepped out.
#   strace -f --seccomp-bpf -s 1024 -yy -ttt -e trace=$E -o /tmp/v6 python3 /x/ipv6_loopback.py
#   grep -v 'python3.11\|locale\|\.so\|ld.so\|LC_\|gconv\|/x' /tmp/v6 > /x/ipv6-loopback.strace
# hostile-names.strace: hostile_names.py (file names, data and a unix socket path that
#   imitate strace syntax, opened from two threads so calls split), root, plain strace;
#   lines from its chdir("/tmp") on (start-up lines dropped with awk). Two churn threads
#   die on 'f", O_RDONLY) = 3</g>' (no such directory), which is fine.
#   strace -f --seccomp-bpf -s 1024 -yy -ttt -e trace=$E -o /tmp/h python3 /x/hostile_names.py
#   awk 'f || /chdir\("\/tmp"\)/ {f=1; print}' /tmp/h > /x/hostile-names.strace
