#!/usr/bin/env bash
# For the CUDA image (Dockerfile, VARIANT=cuda): fetches a CUDA build of LibTorch, refuses it unless its sha256
# is the one given, and unpacks it so that CMake finds it first (CMAKE_PREFIX_PATH=DEST). Debian 12 packages
# LibTorch for the CPU only, hence this one download from outside Debian; the caller must pin its checksum.
# With --cuda-toolkit it also installs Debian's CUDA toolkit (non-free), which a CUDA LibTorch's CMake files need.
#
# Usage: deploy/docker/install-libtorch.sh --url URL --sha256 HEX --dest DIR [--cuda-toolkit]
#   URL: a "libtorch-cxx11-abi-shared-with-deps-*.zip" whose CUDA version the toolkit supports
#        (Debian 12's nvidia-cuda-toolkit is CUDA 11.8, so a +cu118 build).
set -euo pipefail

url="" sha256="" dest="" toolkit=0
while [ $# -gt 0 ]; do
  case "$1" in
    --url) url="$2"; shift 2 ;;
    --sha256) sha256="$2"; shift 2 ;;
    --dest) dest="$2"; shift 2 ;;
    --cuda-toolkit) toolkit=1; shift ;;
    *) echo "install-libtorch.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
fail() { echo "install-libtorch.sh: $*" >&2; exit 1; }
[ -n "$url" ] && [ -n "$dest" ] || fail "usage: --url URL --sha256 HEX --dest DIR [--cuda-toolkit]"
[[ "$sha256" =~ ^[0-9a-f]{64}$ ]] || fail "--sha256 must be the archive's 64-digit lowercase hex sha256, not '$sha256'"

apt_install() {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}
need=()
command -v curl >/dev/null || need+=(curl ca-certificates)
command -v unzip >/dev/null || need+=(unzip)
[ "${#need[@]}" -eq 0 ] || apt_install "${need[@]}"

if [ "$toolkit" -eq 1 ]; then
  # Debian 12 keeps the CUDA toolkit in contrib/non-free; enable them for this one install.
  sed -i 's/^Components: main$/Components: main contrib non-free non-free-firmware/' /etc/apt/sources.list.d/debian.sources
  apt_install nvidia-cuda-toolkit
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
curl -fsSL --retry 3 -o "$work/libtorch.zip" "$url" || fail "cannot download '$url'"
actual="$(sha256sum "$work/libtorch.zip" | cut -d' ' -f1)"
[ "$actual" = "$sha256" ] || fail "'$url' has sha256 $actual, expected $sha256; refusing it"
unzip -q "$work/libtorch.zip" -d "$work/unpacked"
[ -f "$work/unpacked/libtorch/share/cmake/Torch/TorchConfig.cmake" ] ||
  fail "'$url' is not a LibTorch archive (no libtorch/share/cmake/Torch/TorchConfig.cmake inside)"
rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
mv "$work/unpacked/libtorch" "$dest"
echo "install-libtorch.sh: LibTorch from $url (sha256 $sha256) in $dest" >&2
