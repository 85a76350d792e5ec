#!/usr/bin/python3
"""Decodes the golden images (and one group photo) to raw RGB for cuda_check.

cuda_check is built on accelerator machines that have a CUDA LibTorch but not OpenCV's image codecs
(Debian's pull in GDAL and dozens of libraries more), so the JPEGs are decoded here, with Debian's
OpenCV: the decoder the goldens were made with. Writes OUT/inputs.json and one OUT/<name>.rgb per image
(height x width x 3 bytes, row-major).

  /usr/bin/python3 bench/device/prepare_inputs.py --goldens ../shared/reference/goldens \
      --data ../shared/data --out .device/inputs
"""
import argparse
import json
import os

import cv2
import numpy as np


def load_rgb(path):
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot decode {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def golden_image(record, lfw):
    if "op" not in record:
        return load_rgb(os.path.join(lfw, record["path"]))
    parts = [load_rgb(os.path.join(lfw, p)) for p in record["inputs"]]
    if record["op"] == "hconcat":
        return np.hstack(parts)
    if record["op"] == "upscale3":
        return np.repeat(np.repeat(parts[0], 3, axis=0), 3, axis=1)
    raise SystemExit(f"unknown golden op {record['op']}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--goldens", required=True)
    parser.add_argument("--data", required=True, help="the folder holding lfw/ and group-photos/")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.goldens, "lfw_pipeline.json")) as f:
        records = json.load(f)["images"]
    manifest = []

    def write(name, rgb, kind):
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        rgb.tofile(os.path.join(args.out, name + ".rgb"))
        manifest.append({"name": name, "kind": kind, "file": name + ".rgb",
                         "height": int(rgb.shape[0]), "width": int(rgb.shape[1])})

    for record in records:
        write(record["name"], golden_image(record, os.path.join(args.data, "lfw")), "golden_image")
        write(record["name"] + ".chip", load_rgb(os.path.join(args.goldens, record["chip"])), "golden_chip")
    write("group", load_rgb(os.path.join(args.data, "group-photos", "sample1.jpg")), "group_photo")
    with open(os.path.join(args.out, "inputs.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"{len(manifest)} images -> {args.out}")


if __name__ == "__main__":
    main()
