# syntax=docker/dockerfile:1.6
# Veriface: veriface-server, veriface-migrate and the veriface client, with the converted default model baked in.
#
#   docker build -t veriface .
#       CPU image. Built on Debian 12 by deploy/setup.sh exactly as the README does it; runs on debian:12-slim.
#   docker build --build-context shared=../shared -t veriface .
#       The same, and the model's thresholds are calibrated on LFW View 1 from ../shared/data/lfw during the
#       build (without it the server uses its fallback threshold and says so in its log).
#   docker build --build-arg VARIANT=cuda --build-arg LIBTORCH_URL=URL --build-arg LIBTORCH_SHA256=HEX -t veriface:cuda .
#       CUDA image: Debian's CUDA toolkit plus a CUDA build of LibTorch (a +cu118 "cxx11-abi-shared-with-deps"
#       zip, checksum pinned by you). The configuration says `device: auto`, so the server takes the first GPU
#       the container sees: run it with `docker run --gpus all` (NVIDIA Container Toolkit), else it uses the CPU.
#
#   docker build --build-arg BUILD_BASE=NAME --build-arg RUNTIME_BASE=NAME -t veriface .
#       The same on base images of your own instead of the public debian:12 and debian:12-slim (for a machine
#       without a registry: deploy/image/make-base-images.sh makes both with debootstrap, and
#       deploy/image/build-image.sh builds this file with podman on them; podman needs `--format docker`, or it
#       drops the HEALTHCHECK, and buildah 1.28 needs `--build-arg VARIANT=cpu` given: deploy/docker/README.md).
#
#   docker run -p 50051:50051 -p 9464:9464 -v veriface-gallery:/var/lib/veriface veriface
#       Arguments after the image name replace the default `--config ...` and are passed to veriface-server.
#
# Every step below that does real work is a script that tests/deploy runs outside Docker (no engine runs
# where this project is tested): deploy/setup.sh, deploy/docker/install-runtime.sh (then the server is started
# from its output, with the ENTRYPOINT, CMD, WORKDIR and HEALTHCHECK read from this file), install-libtorch.sh.

ARG VARIANT=cpu
# The base images: Debian 12 to build, its slim flavour to run (the runtime stage carries no glibc of its own).
ARG BUILD_BASE=debian:12
ARG RUNTIME_BASE=debian:12-slim

# LFW for calibration: empty unless `--build-context shared=PATH` replaces this stage.
FROM scratch AS shared

# ---- build --------------------------------------------------------------------------------------------------
FROM ${BUILD_BASE} AS build-cpu
WORKDIR /src

FROM ${BUILD_BASE} AS build-cuda
ARG LIBTORCH_URL
ARG LIBTORCH_SHA256
WORKDIR /src
COPY deploy/docker/install-libtorch.sh deploy/docker/install-libtorch.sh
RUN deploy/docker/install-libtorch.sh --cuda-toolkit --url "$LIBTORCH_URL" --sha256 "$LIBTORCH_SHA256" --dest /opt/libtorch
# CMake's find_package searches the environment's CMAKE_PREFIX_PATH before the system: this LibTorch, not Debian's.
ENV CMAKE_PREFIX_PATH=/opt/libtorch

FROM build-${VARIANT} AS build
ARG VERIFACE_JOBS
# Only what the image carries (the server and the client) and the importer that converts the model: the tests
# and benchmarks are neither configured nor built (setup.sh builds veriface-eval itself if it must calibrate).
ARG VERIFACE_BUILD_TARGETS="veriface-server veriface-migrate veriface veriface-import"
ARG VERIFACE_CMAKE_ARGS="-DVERIFACE_BUILD_TESTS=OFF -DVERIFACE_BUILD_BENCH=OFF"
COPY . .
RUN --mount=type=bind,from=shared,target=/shared \
    if [ -f /shared/data/lfw/pairsDevTrain.txt ]; then \
      VERIFACE_SHARED_DIR=/shared deploy/setup.sh; \
    else \
      deploy/setup.sh --skip-calibration; \
    fi
RUN deploy/docker/install-runtime.sh --dest /staging --build build --model models/default

# ---- runtime ------------------------------------------------------------------------------------------------
FROM ${RUNTIME_BASE} AS runtime-cpu

FROM ${RUNTIME_BASE} AS runtime-cuda
# Read by the NVIDIA Container Toolkit, which mounts the host's driver libraries into the container.
ENV NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility

FROM runtime-${VARIANT} AS runtime
LABEL org.opencontainers.image.title="veriface" \
      org.opencontainers.image.description="Face verification and identification over gRPC" \
      org.opencontainers.image.licenses="see /opt/veriface/share/doc"
# A fixed numeric user, so that Kubernetes can check runAsNonRoot and volumes can be prepared for it.
RUN groupadd --system --gid 10001 veriface \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/veriface --no-create-home --shell /usr/sbin/nologin veriface \
 && mkdir -p /var/lib/veriface \
 && chown 10001:10001 /var/lib/veriface
COPY --from=build /staging/ /
ENV PATH=/opt/veriface/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /opt/veriface
USER 10001:10001
# The gallery (SQLite, WAL mode): keep it on a volume.
VOLUME ["/var/lib/veriface"]
# gRPC (server.listen) and Prometheus metrics (metrics.listen) in deploy/docker/veriface.yaml.
EXPOSE 50051 9464
# Loading the model takes a while; health says NOT_SERVING until it is loaded.
HEALTHCHECK --interval=15s --timeout=10s --start-period=120s --retries=3 \
  CMD ["veriface", "--server", "127.0.0.1:50051", "--timeout", "5", "health"]
# SIGTERM: the server stops accepting, drains for server.shutdown_grace_seconds, and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["veriface-server"]
CMD ["--config", "/opt/veriface/etc/veriface.yaml"]
