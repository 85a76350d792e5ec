#!/usr/bin/env bash
# Lays out everything the runtime image needs under one prefix, so that the Dockerfile's runtime stage is a
# single COPY of DEST onto debian:12-slim. tests/deploy runs this script into a temporary folder and starts
# the server from there, so what the image carries is what the tests ran.
#
# Usage: deploy/docker/install-runtime.sh --dest DIR --build BUILD_DIR --model MODEL_DIR [--prefix /opt/veriface]
#
# Writes, under DIR + PREFIX:
#   libexec/veriface-server, libexec/veriface-migrate, libexec/veriface  the programs (ELF), as built
#   bin/veriface-server, bin/veriface-migrate, bin/veriface  launchers (deploy/docker/launcher.sh) that point the loader at lib/
#   lib/                                       every shared library the programs load, except glibc's own
#   models/default/                            the model bundle
#   etc/veriface.yaml                          the container configuration (deploy/docker/veriface.yaml)
#   share/runtime-libraries.txt                each copied library, where it came from and its Debian package
#   share/doc/PACKAGE/copyright                the licence of each Debian package a library came from
#
# glibc is left out on purpose: it must be the one matching the base image's dynamic loader, and
# debian:12-slim has Debian 12's. Libraries that are allowed to be missing at build time (the NVIDIA driver,
# which the container runtime mounts on a GPU host) match VERIFACE_ALLOW_MISSING, a regular expression.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ALLOW_MISSING="${VERIFACE_ALLOW_MISSING:-^(libcuda\.so|libnvidia-)}"
PROGRAMS=(server/veriface-server server/veriface-migrate client/veriface)

dest="" build="" model="" prefix="/opt/veriface"
while [ $# -gt 0 ]; do
  case "$1" in
    --dest) dest="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --prefix) prefix="$2"; shift 2 ;;
    *) echo "install-runtime.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
fail() { echo "install-runtime.sh: $*" >&2; exit 1; }
[ -n "$dest" ] && [ -n "$build" ] && [ -n "$model" ] || fail "usage: --dest DIR --build BUILD_DIR --model MODEL_DIR"
[ -f "$model/model.json" ] || fail "no model bundle at '$model' (model.json missing); run deploy/setup.sh first"

home="$dest$prefix"
mkdir -p "$home/bin" "$home/libexec" "$home/lib" "$home/etc" "$home/share/doc" "$home/models"

# glibc's files, by name: the loader of the base image brings these and they must not be shadowed.
declare -A glibc=()
while IFS= read -r f; do glibc["$(basename "$f")"]=1; done < <(dpkg-query -L libc6 2>/dev/null | grep '\.so' || true)
[ "${#glibc[@]}" -gt 0 ] || fail "cannot list glibc's files (dpkg-query -L libc6); is this Debian?"

# The programs and their launchers.
elves=()
for p in "${PROGRAMS[@]}"; do
  name="$(basename "$p")"
  [ -x "$build/$p" ] || fail "'$build/$p' is missing; build the targets veriface-server, veriface-migrate and veriface first"
  install -m 0755 "$build/$p" "$home/libexec/$name"
  install -m 0755 "$ROOT/deploy/docker/launcher.sh" "$home/bin/$name"
  elves+=("$home/libexec/$name")
done

# The libraries: ldd walks the whole dependency tree, so one pass over the programs is enough. Each is copied
# under the name the loader asks for (its soname), with symbolic links resolved.
declare -A origin=()
missing=()
while read -r soname arrow path _; do
  [ "$arrow" = "=>" ] || continue
  if [ "$path" = "not" ]; then
    [[ "$soname" =~ $ALLOW_MISSING ]] || missing+=("$soname")
    continue
  fi
  [ -n "${glibc[$soname]:-}" ] && continue
  origin["$soname"]="$path"
done < <(for e in "${elves[@]}"; do ldd "$e"; done)
[ "${#missing[@]}" -eq 0 ] || fail "libraries not found on this machine: ${missing[*]}"

# Which Debian package each came from, asked in one go. dpkg knows a file by the path its package installed
# it at, /lib/... or /usr/lib/... on a merged-/usr system, so both spellings are asked.
declare -A owner=()
candidates=()
# A library chosen through /etc/alternatives (libblas.so.3) belongs to the package of the file it points to.
declare -A real=()
for src in "${origin[@]}"; do
  real["$src"]="$(readlink -f "$src")"
  candidates+=("$src" "${src#/usr}" "/usr${src#/usr}" "${real[$src]}")
done
while IFS= read -r line; do
  pkg="${line%%: *}"    # "libfoo1:amd64: /usr/lib/x86_64-linux-gnu/libfoo.so.1"
  pkg="${pkg%%,*}"      # a file two packages share: the first
  owner["${line#*: }"]="${pkg%%:*}"
done < <(dpkg-query -S "${candidates[@]}" 2>/dev/null || true)

manifest="$home/share/runtime-libraries.txt"
echo "# soname  source  debian-package (copied by deploy/docker/install-runtime.sh)" > "$manifest"
declare -A packages=()
for soname in $(printf '%s\n' "${!origin[@]}" | sort); do
  src="${origin[$soname]}"
  cp -L "$src" "$home/lib/$soname"
  chmod 0644 "$home/lib/$soname"
  pkg="${owner[$src]:-${owner[${src#/usr}]:-${owner[/usr${src#/usr}]:-${owner[${real[$src]}]:-}}}}"
  echo "$soname $src ${pkg:--}" >> "$manifest"
  [ -n "$pkg" ] && packages["$pkg"]=1
done
for pkg in "${!packages[@]}"; do
  if [ -f "/usr/share/doc/$pkg/copyright" ]; then
    mkdir -p "$home/share/doc/$pkg"
    cp "/usr/share/doc/$pkg/copyright" "$home/share/doc/$pkg/copyright"
  fi
done

# The model and the configuration.
rm -rf "$home/models/default"
cp -R "$model" "$home/models/default"
install -m 0644 "$ROOT/deploy/docker/veriface.yaml" "$home/etc/veriface.yaml"
chmod -R a+rX "$home"

echo "install-runtime.sh: $home: ${#elves[@]} programs, ${#origin[@]} libraries from ${#packages[@]} packages" >&2
