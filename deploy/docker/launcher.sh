#!/bin/sh
# Installed as PREFIX/bin/veriface-server and PREFIX/bin/veriface: runs the program of the same name from
# PREFIX/libexec with the shared libraries that install-runtime.sh collected into PREFIX/lib, so that the
# image needs no Debian packages beyond debian:12-slim and nothing else on the system sees those libraries.
set -eu
self="$(readlink -f "$0")"
prefix="$(dirname "$(dirname "$self")")"
LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LD_LIBRARY_PATH
exec "$prefix/libexec/$(basename "$self")" "$@"
