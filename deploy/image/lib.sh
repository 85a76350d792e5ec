# Sourced by the scripts of deploy/image and bench/container: podman with this folder's settings, and the
# Debian packages those scripts need, installed when missing (they are not deploy/setup.sh's: the project's
# build and tests need no container engine).
# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are the sourcing scripts'

VF_IMAGE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VF_ROOT="$(cd "$VF_IMAGE_DIR/../.." && pwd)"
# The names the Dockerfile's BUILD_BASE and RUNTIME_BASE are pointed at (podman prefixes localhost/).
VF_BUILD_BASE_DEFAULT="localhost/veriface-base/debian:12"
VF_RUNTIME_BASE_DEFAULT="localhost/veriface-base/debian:12-slim"

export CONTAINERS_CONF="${CONTAINERS_CONF:-$VF_IMAGE_DIR/containers.conf}"

vf_say() { printf '\033[1m[%s]\033[0m %s\n' "$(basename "$0")" "$*" >&2; }
vf_die() { printf '\033[1;31m[%s] %s\033[0m\n' "$(basename "$0")" "$*" >&2; exit 1; }

# vf_need COMMAND:PACKAGE ...: installs the packages whose command is missing (as root, with apt-get).
vf_need() {
  local missing=() pair
  for pair in "$@"; do command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}"); done
  [ "${#missing[@]}" -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || vf_die "missing ${missing[*]}: run as root, or apt-get install ${missing[*]}"
  vf_say "installing ${missing[*]} (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Podman and what a rootful podman with netavark needs on Debian 12 to build and to publish ports.
vf_need_podman() {
  vf_need podman:podman runc:runc conmon:conmon iptables:iptables
  [ -x /usr/lib/podman/netavark ] || vf_need /usr/lib/podman/netavark:netavark
  [ -x /usr/lib/podman/aardvark-dns ] || vf_need /usr/lib/podman/aardvark-dns:aardvark-dns
}

vf_image_exists() { podman image exists "$1"; }
