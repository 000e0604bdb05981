#!/bin/sh
# Build the offline base image for hosts that cannot pull from a registry:
# debootstrap a Debian bookworm minbase with python3 + strace (+ the tools the
# sandbox needs, and a C/C++ toolchain with Python headers) and `docker import` it.
# pkgsandbox tags it by a digest of this file, so a changed recipe builds a new base. Needs root, debootstrap and a Debian
# mirror (apt's registry access is enough).
#
#   images/build-offline-base.sh [TAG]      (default: pkgsandbox-base:bookworm)
#
# Environment: PKGSANDBOX_MIRROR (default http://deb.debian.org/debian).
set -eu
TAG="${1:-pkgsandbox-base:bookworm}"
MIRROR="${PKGSANDBOX_MIRROR:-http://deb.debian.org/debian}"
# Keep this list in sync with the sandbox Dockerfile's apt line: the Dockerfile
# installs them on a registry base, this script bakes them into the offline one.
# The C/C++ toolchain and Python headers let the default profile build typical native
# extensions from sdists (setuptools/Cython/meson builds) without switching profiles;
# faketime (libfaketime) moves the clock in the time-travel pass. The client libraries
# and headers of PostgreSQL, MySQL/MariaDB and ODBC (with OpenSSL's, which libpq-dev
# brings) are what popular database drivers build against or load (psycopg2's
# pg_config, mysqlclient's pkg-config, pyodbc's sql.h, psycopg's libpq.so): without
# them those projects ended incomplete, and a developer's machine has them.
PACKAGES="python3,python3-venv,python3-pip,python3-psutil,strace,ca-certificates,iptables,iproute2,procps,curl,git,tar,gzip,xz-utils,less,nano,openssh-client,faketime"
PACKAGES="$PACKAGES,gcc,g++,make,pkg-config,libc6-dev,python3-dev"
PACKAGES="$PACKAGES,libpq-dev,default-libmysqlclient-dev,unixodbc-dev"

if ! command -v debootstrap >/dev/null 2>&1; then
    echo "build-offline-base: debootstrap is missing (apt-get install -y debootstrap)" >&2
    exit 2
fi
if docker image inspect "$TAG" >/dev/null 2>&1; then
    echo "build-offline-base: $TAG already present"
    exit 0
fi
ROOT="$(mktemp -d /var/tmp/pkgsandbox-base.XXXXXX)"
trap 'rm -rf "$ROOT"' EXIT INT TERM
debootstrap --variant=minbase --include="$PACKAGES" bookworm "$ROOT" "$MIRROR" >"$ROOT.log" 2>&1 || {
    echo "build-offline-base: debootstrap failed, see $ROOT.log" >&2; tail -20 "$ROOT.log" >&2; exit 3; }
rm -f "$ROOT.log"
# Slim down: apt lists and caches are useless in a sandbox that has no network.
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/* "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/*
# Building an extension module needs neither the static libpython nor the sanitizer
# runtimes (about 50 MB of the toolchain's 290 MB).
rm -f "$ROOT"/usr/lib/python3*/config-*/libpython3*.a "$ROOT"/usr/lib/*-linux-gnu/libpython3*.a \
    "$ROOT"/usr/lib/*-linux-gnu/lib*san.so.* "$ROOT"/usr/lib/gcc/*/*/lib*san*.a
tar -C "$ROOT" -c . | docker import \
    --change 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    --message "pkgsandbox offline base (debootstrap bookworm minbase)" - "$TAG"
echo "build-offline-base: built $TAG"
