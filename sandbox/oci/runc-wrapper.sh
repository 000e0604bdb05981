#!/bin/sh
# pkgsandbox-runc: runc with a workstation's view from inside (wrapper.py beside this
# file says what and why). containerd-shim runs this as it runs runc. Python starts
# only for create and delete (and, in the background, to place PID 1's services after
# start): exec adds the --cgroup arguments create left, anything else is runc's.
here=${0%/*}
runc=runc
for r in /usr/sbin/runc /usr/bin/runc /usr/local/sbin/runc /usr/local/bin/runc; do
    if [ -x "$r" ]; then runc=$r; break; fi
done
runc=${PKGSANDBOX_RUNC:-$runc}                    # tests: a fake runc
state=${PKGSANDBOX_OCI_STATE:-/run/pkgsandbox-oci} # tests: another state directory
cmd=
skip=0
for a; do
    if [ "$skip" = 1 ]; then skip=0; continue; fi
    case $a in
        --root|--log|--log-format|--criu|--rootless) skip=1 ;;
        -*) ;;
        *) cmd=$a; break ;;
    esac
done
for id; do :; done
case $cmd in
    create|delete)
        exec /usr/bin/python3 -IS "$here/wrapper.py" "$@" ;;
    start)
        "$runc" "$@"
        rc=$?
        if [ "$rc" = 0 ] && [ -r "$state/$id" ]; then
            /usr/bin/python3 -IS "$here/wrapper.py" --services "$id" </dev/null >/dev/null 2>&1 &
        fi
        exit "$rc" ;;
    exec)
        if [ -r "$state/$id" ]; then
            { read -r _pid; read -r extra; read -r unified; } <"$state/$id"
            seen=0
            prev=
            pidfile=
            for a; do
                shift
                set -- "$@" "$a"
                if [ "$seen" = 0 ] && [ "$a" = exec ]; then
                    seen=1
                    for c in $extra; do set -- "$@" --cgroup "$c"; done
                fi
                case $a in --pid-file=*) pidfile=${a#--pid-file=} ;; esac
                if [ "$prev" = --pid-file ]; then pidfile=$a; fi
                prev=$a
            done
            if [ -n "$unified" ] && [ -n "$pidfile" ]; then
                # cgroup v1 beside a unified hierarchy: runc leaves the exec'd process
                # at the unified root; moved before it can start anything (a detached
                # exec returns as the process starts; an interpreter takes far longer)
                "$runc" "$@"
                rc=$?
                p=
                [ "$rc" = 0 ] && { read -r p || :; } <"$pidfile"  # runc writes no newline
                if [ -n "$p" ]; then echo "$p" >"$unified" 2>/dev/null; fi
                exit "$rc"
            fi
        fi ;;
esac
exec "$runc" "$@"
