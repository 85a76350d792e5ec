#!/usr/bin/env python3
"""Why the image's libraries are there: the DT_NEEDED graph of PREFIX/libexec/* over PREFIX/lib (readelf), and how
many bytes are reachable only through the links that Debian's builds of LibTorch and OpenCV make to parts the
server never calls. The loader refuses to start a program whose DT_NEEDED library is missing, so those bytes
stay for as long as the image is made from Debian's packages.

Usage: library_closure.py PREFIX   (e.g. the image mounted with `podman image mount`, + /opt/veriface)
Prints JSON."""
import json
import os
import re
import subprocess
import sys

# Links of Debian's libtorch_cpu.so to OpenCV's video, GUI and DNN modules, FFmpeg, and the Caffe2 and
# distributed-training dependencies; and of Debian's libopencv_imgcodecs.so to GDAL, GDCM and OpenEXR.
UNUSED_LINKS = {
    "libtorch_cpu.so.1.13": r"libopencv_(highgui|videoio|video|optflow|ximgproc|dnn|calib3d|features2d|flann)|"
                            r"libav|libsw|libzmq|liblmdb|libleveldb|libsnappy|libtensorpipe|libgloo|libonnx",
    "libopencv_imgcodecs.so.406": r"libgdal|libgdcm|libOpenEXR",
}


def needed(path):
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True, check=False).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.*?)\]", out)


def main():
    prefix = sys.argv[1]
    lib = os.path.join(prefix, "lib")
    names = set(os.listdir(lib))
    size = lambda s: sum(os.path.getsize(os.path.join(lib, n)) for n in s)
    graph = {n: [d for d in needed(os.path.join(lib, n)) if d in names] for n in names}
    roots = []
    for p in os.listdir(os.path.join(prefix, "libexec")):
        roots += [d for d in needed(os.path.join(prefix, "libexec", p)) if d in names]

    def closure(g):
        seen, stack = set(), list(roots)
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack += g.get(n, [])
        return seen

    everything = closure(graph)
    pruned = {n: [d for d in deps if not (n in UNUSED_LINKS and re.match(UNUSED_LINKS[n], d))]
              for n, deps in graph.items()}
    kept = closure(pruned)
    # Each library's links pruned alone: what would go if only that one were built without them.
    alone = {n: size(everything - closure({**graph, n: pruned[n]})) for n in UNUSED_LINKS if n in graph}
    print(json.dumps({
        "libraries": len(names),
        "bytes": size(names),
        "reachable_from_the_programs": len(everything),
        "not_reachable": sorted(names - everything),
        "only_through_unused_links": {
            "libraries": len(everything - kept),
            "bytes": size(everything - kept),
            "bytes_if_only_this_library_dropped_its_links": alone,
            "links": UNUSED_LINKS,
        },
        "left_without_those_links": {"libraries": len(kept), "bytes": size(kept)},
    }, indent=2))


if __name__ == "__main__":
    main()
