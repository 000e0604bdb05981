mkdir -p /var/trace; chmod 700 /var/trace
useradd -m -u 1000 dev 2>/dev/null
E=%file,%process,%network,write,writev,pwrite64,pwritev,pwritev2,sendfile,splice,fchdir,fchmod,fchown,ftruncate,getdents64,kill,tkill,tgkill,ptrace,process_vm_readv,process_vm_writev,pidfd_open,pidfd_getfd,memfd_create,init_module,finit_module,delete_module,reboot,setuid,setgid,setreuid,setregid,setresuid,setresgid,setgroups,capset,unshare,setns,bpf,perf_event_open,keyctl,add_key,personality,io_uring_setup
S="strace -f --seccomp-bpf -s 1024 -yy -ttt -e trace=$E"
P="setpriv --reuid=1000 --regid=1000 --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs --"
$S -o /var/trace/b -- $P env HOME=/home/dev python3 /cap/behave.py > /dev/null 2>&1
cp /var/trace/b /cap/behave2.strace
$P python3 -m venv /home/dev/v
T0=$(date +%s.%N)
$S -o /var/trace/p -- $P env HOME=/home/dev /home/dev/v/bin/python -m pip install -q --no-index --find-links /stage requests
T1=$(date +%s.%N)
$S -o /var/trace/i -- $P env HOME=/home/dev /home/dev/v/bin/python -c "import requests"
T2=$(date +%s.%N)
python3 -c "print('install', $T1-$T0, 'import', $T2-$T1)"
cp /var/trace/p /cap/pip-install.strace; cp /var/trace/i /cap/import-requests.strace
