#!/usr/bin/env bash
# Makes the Dockerfile's two base images locally, for a machine that reaches Debian's mirror but no image
# registry: Debian 12 (`debootstrap --variant=minbase`, the variant the official debian:12 image is made
# from) for the build stage, and a slim flavour of the same tree for the runtime stage (documentation, manual
# pages and translations removed and kept out of later installs, as debian:12-slim does). Both get the
# official image's apt sources (deb822 debian.sources with bookworm, bookworm-updates and bookworm-security),
# today's security updates, no package lists and the official image's PATH and CMD.
#
# Usage: deploy/image/make-base-images.sh [--build-base NAME] [--runtime-base NAME] [--mirror URL] [--force]
#   --build-base    default localhost/veriface-base/debian:12       (the Dockerfile's BUILD_BASE)
#   --runtime-base  default localhost/veriface-base/debian:12-slim  (the Dockerfile's RUNTIME_BASE)
#   --mirror        default http://deb.debian.org/debian
#   --force         remake them even if both exist
# Needs root (debootstrap, chroot, rootful podman); installs debootstrap and podman with apt-get if missing.
# Scratch under VERIFACE_IMAGE_SCRATCH (default /tmp/veriface-image), removed at the end.
set -euo pipefail
# shellcheck source=deploy/image/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

build_base="$VF_BUILD_BASE_DEFAULT" runtime_base="$VF_RUNTIME_BASE_DEFAULT"
mirror="http://deb.debian.org/debian" force=0 suite=bookworm
while [ $# -gt 0 ]; do
  case "$1" in
    --build-base) build_base="$2"; shift 2 ;;
    --runtime-base) runtime_base="$2"; shift 2 ;;
    --mirror) mirror="$2"; shift 2 ;;
    --force) force=1; shift ;;
    *) vf_die "unknown argument '$1'" ;;
  esac
done
[ "$(id -u)" -eq 0 ] || vf_die "run as root: debootstrap, chroot and rootful podman need it"
vf_need debootstrap:debootstrap
vf_need_podman

if [ "$force" -eq 0 ] && vf_image_exists "$build_base" && vf_image_exists "$runtime_base"; then
  vf_say "$build_base and $runtime_base exist (--force to remake them)"
  exit 0
fi

scratch="${VERIFACE_IMAGE_SCRATCH:-/tmp/veriface-image}/bases.$$"
rootfs="$scratch/rootfs" slim="$scratch/slim"
cleanup() {
  for fs in "$rootfs" "$slim"; do
    mountpoint -q "$fs/proc" 2>/dev/null && umount "$fs/proc"
  done
  rm -rf "$scratch"
}
trap cleanup EXIT
mkdir -p "$scratch"

vf_say "debootstrap --variant=minbase $suite ($mirror)"
start=$SECONDS
debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" > "$scratch/debootstrap.log" 2>&1 ||
  { tail -20 "$scratch/debootstrap.log" >&2; vf_die "debootstrap failed"; }
vf_say "debootstrap took $((SECONDS - start)) s"

# The official image's apt configuration.
rm -f "$rootfs/etc/apt/sources.list"
cat > "$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# What docker's debian images set: caches emptied after every install, no translations, no suggests kept.
cat > "$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
echo 'Acquire::Languages "none";' > "$rootfs/etc/apt/apt.conf.d/docker-no-languages"
echo 'Apt::AutoRemove::SuggestsImportant "false";' > "$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"

# Security and point-release updates, as the official image has them on the day it is made.
in_chroot() {
  local fs="$1"; shift
  mountpoint -q "$fs/proc" || mount -t proc proc "$fs/proc"
  cp /etc/resolv.conf "$fs/etc/resolv.conf"
  chroot "$fs" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"
  umount "$fs/proc"
}
vf_say "apt-get upgrade (bookworm-updates, bookworm-security)"
in_chroot "$rootfs" sh -c 'apt-get update -qq && apt-get upgrade -y -qq >/dev/null && apt-get clean'

# What a container image leaves to the engine or should not carry.
tidy() {
  local fs="$1"
  rm -rf "$fs"/var/lib/apt/lists/* "$fs"/var/cache/apt/* "$fs"/var/cache/debconf/*-old "$fs"/var/lib/dpkg/*-old
  rm -rf "$fs"/tmp/* "$fs"/var/tmp/* "$fs"/var/log/apt/* "$fs"/var/log/dpkg.log "$fs"/var/log/alternatives.log
  rm -f "$fs/var/log/bootstrap.log" "$fs/etc/resolv.conf" "$fs/etc/hostname"
  : > "$fs/etc/machine-id"
}
tidy "$rootfs"

# The slim flavour: the same packages, without what debuerreotype-slimify removes.
cp -a "$rootfs" "$slim"
cat > "$slim/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
# Kept out of the slim image, as in debian:12-slim (a package's copyright stays).
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
EOF
find "$slim/usr/share/doc" -mindepth 1 ! -type d ! -path '*/copyright' -delete
find "$slim/usr/share/doc" -mindepth 1 -type d -empty -delete
find "$slim/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
rm -rf "$slim"/usr/share/info/* "$slim"/usr/share/linda/* "$slim"/usr/share/lintian/overrides/* \
  "$slim"/usr/share/man/* "$slim"/usr/share/groff/*

import_image() {
  local fs="$1" name="$2"
  tar --numeric-owner --xattrs -C "$fs" -c . |
    podman import -q --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["bash"]' --message "debootstrap --variant=minbase $suite, deploy/image/make-base-images.sh" \
      - "$name" >/dev/null
  vf_say "$name: $(podman image inspect --format '{{.Size}}' "$name" | numfmt --to=si) ($(du -sh "$fs" | cut -f1) on disk), $(chroot "$fs" dpkg-query -W | wc -l) packages"
}
import_image "$rootfs" "$build_base"
import_image "$slim" "$runtime_base"
