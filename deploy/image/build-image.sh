#!/usr/bin/env bash
# Builds the CPU image from the project's Dockerfile with podman, on base images made here
# (make-base-images.sh, run first unless they exist), and reports its size and what is in it.
#
# Usage: deploy/image/build-image.sh [--tag NAME] [--context DIR] [--shared DIR] [--jobs N] [--no-cache]
#                                    [--build-base NAME] [--runtime-base NAME] [--public-bases]
#                                    [--log FILE] [--report FILE] [-- EXTRA_PODMAN_BUILD_ARGS...]
#   --tag           default localhost/veriface:latest (docker-compose.yml's veriface:latest)
#   --context       the build context, default the repository root (its .dockerignore applies)
#   --git REV       instead, the tree of commit REV (git archive) with the weights tarball of .cache/npm, if any:
#                   what was committed, not what is being edited (the context is SCRATCH/context)
#   --overlay PATH  with --git: PATH (a file or folder of the working tree) replaces REV's (repeatable)
#   --shared        a folder holding data/lfw: `--build-context shared=DIR`, so that the model is calibrated in
#                   the build if the recipe is not for it (the default model's recipe is; see the Dockerfile)
#   --jobs          compile jobs in the build (VERIFACE_JOBS), default the number of cores
#   --public-bases  use the Dockerfile's defaults (debian:12, debian:12-slim) from a registry instead
#   --log           the build's output, default SCRATCH/build.log (SCRATCH: VERIFACE_IMAGE_SCRATCH, /tmp/veriface-image)
#   --report        also write the result as JSON to FILE
# The build runs under `nice -n 10`, so that it does not starve other work on the machine. Podman keeps its
# layer cache between builds; a change to the sources repeats the setup stage (packages, weights, compile).
# Needs root (rootful podman; see containers.conf here for the settings this folder's scripts use).
set -euo pipefail
# shellcheck source=deploy/image/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

tag="localhost/veriface:latest" context="$VF_ROOT" shared="" jobs="$(nproc)" no_cache=() public=0
build_base="$VF_BUILD_BASE_DEFAULT" runtime_base="$VF_RUNTIME_BASE_DEFAULT"
scratch="${VERIFACE_IMAGE_SCRATCH:-/tmp/veriface-image}"
log="$scratch/build.log" report="" extra=() rev="" overlays=()
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag="$2"; shift 2 ;;
    --context) context="$2"; shift 2 ;;
    --git) rev="$2"; shift 2 ;;
    --overlay) overlays+=("$2"); shift 2 ;;
    --shared) shared="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --no-cache) no_cache=(--no-cache); shift ;;
    --build-base) build_base="$2"; shift 2 ;;
    --runtime-base) runtime_base="$2"; shift 2 ;;
    --public-bases) public=1; shift ;;
    --log) log="$2"; shift 2 ;;
    --report) report="$2"; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) vf_die "unknown argument '$1'" ;;
  esac
done
[ "$(id -u)" -eq 0 ] || vf_die "run as root (rootful podman)"
vf_need_podman
if [ -n "$rev" ]; then
  context="$scratch/context"
  commit="$(git -C "$VF_ROOT" rev-parse --verify "$rev^{commit}")" || vf_die "no commit '$rev'"
  rm -rf "$context" && mkdir -p "$context"
  git -C "$VF_ROOT" archive "$commit" | tar -x -C "$context"
  for o in "${overlays[@]}"; do
    [ -e "$VF_ROOT/$o" ] || vf_die "--overlay '$o' is not in the working tree"
    rm -rf "${context:?}/$o" && mkdir -p "$(dirname "$context/$o")" && cp -a "$VF_ROOT/$o" "$context/$o"
  done
  # setup.sh checks the tarball's sha256 itself; without it, the build runs `npm pack`.
  if compgen -G "$VF_ROOT/.cache/npm/*.tgz" >/dev/null; then
    mkdir -p "$context/.cache/npm" && cp "$VF_ROOT"/.cache/npm/*.tgz "$context/.cache/npm/"
  fi
  vf_say "context: commit ${commit:0:12} in $context, overlaid from the working tree: ${overlays[*]:-nothing}"
fi
[ -f "$context/Dockerfile" ] || vf_die "no Dockerfile in the context '$context'"

# VARIANT given although it is the default: buildah 1.28 (Debian 12's podman) resolves `FROM build-${VARIANT}`
# to the stage only when the argument is passed; else it looks for an image "build-cpu" in a registry
# (containers/buildah#4312).
args=(--build-arg VARIANT=cpu --build-arg "VERIFACE_JOBS=$jobs")
if [ "$public" -eq 0 ]; then
  "$VF_IMAGE_DIR/make-base-images.sh" --build-base "$build_base" --runtime-base "$runtime_base"
  args+=(--build-arg "BUILD_BASE=$build_base" --build-arg "RUNTIME_BASE=$runtime_base")
fi
if [ -n "$shared" ]; then
  [ -f "$shared/data/lfw/pairsDevTrain.txt" ] || vf_die "--shared '$shared' has no data/lfw/pairsDevTrain.txt"
  args+=(--build-context "shared=$(cd "$shared" && pwd)")
fi

mkdir -p "$(dirname "$log")"
# Docker's image format: podman's default, OCI, has no place for HEALTHCHECK (nor SHELL) and drops it with a warning.
cmd=(podman build --format docker "${no_cache[@]}" "${args[@]}" "${extra[@]}" -f "$context/Dockerfile" -t "$tag" "$context")
vf_say "nice -n 10 ${cmd[*]}  (log: $log)"
start=$(date +%s)
if ! nice -n 10 "${cmd[@]}" > "$log" 2>&1; then
  tail -30 "$log" >&2
  vf_die "the build failed after $(( $(date +%s) - start )) s; the whole log is $log"
fi
seconds=$(( $(date +%s) - start ))

id="$(podman image inspect --format '{{.Id}}' "$tag")"
size="$(podman image inspect --format '{{.Size}}' "$tag")"
base_size="$(podman image inspect --format '{{.Size}}' "${runtime_base}" 2>/dev/null || echo 0)"
vf_say "$tag (${id:0:12}): $(numfmt --to=si "$size")B, of which $(numfmt --to=si "$base_size")B the runtime base; built in $seconds s"
vf_say "layers:"
podman history --format '{{.Size}}\t{{.CreatedBy}}' "$tag" | cut -c1-150 >&2
vf_say "/opt/veriface:"
podman run --rm --entrypoint /usr/bin/du "$tag" -sh /opt/veriface/bin /opt/veriface/libexec /opt/veriface/lib \
  /opt/veriface/models /opt/veriface/etc /opt/veriface/share >&2

if [ -n "$report" ]; then
  python3 - "$report" "$tag" "$id" "$size" "$base_size" "$seconds" "$log" "${commit:-}" "${overlays[*]:-}" \
    "${cmd[@]}" <<'EOF'
import json, sys
out, tag, image_id, size, base, seconds, log, commit, overlays, *cmd = sys.argv[1:]
json.dump({"image": tag, "id": image_id, "size_bytes": int(size), "runtime_base_size_bytes": int(base),
           "build_seconds": int(seconds), "log": log, "git_commit": commit or None,
           "overlaid_from_working_tree": overlays.split(), "command": ["nice", "-n", "10"] + cmd},
          open(out, "w"), indent=2)
EOF
fi
