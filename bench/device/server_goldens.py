#!/usr/bin/env python3
"""The goldens through the server's own path: Embed over gRPC, on the device the server runs on.

For each golden record of an LFW image (lfw_pipeline.json), asks a running veriface-server (one serving a
single-view bundle: the template chip alone, no flip, pass-through head, so that its embedding is the
network's own descriptor, normalised) for every face with `veriface --json embed`, and checks them against
the goldens with the goldens' README tolerances: the same number of faces, boxes within 2 px, and the
central face's embedding within 0.03 (Euclidean) of `descriptor_normalized`. Writes a JSON report and
exits 1 if any image fails. Standard library only: the accelerator machines have no numpy guarantee.

  server_goldens.py --client BIN --server 127.0.0.1:PORT --goldens DIR --lfw DIR --out report.json
"""
import argparse
import json
import math
import subprocess
import sys

BOX_TOLERANCE_PX = 2.0
DESCRIPTOR_TOLERANCE = 0.03


def embed(client, server, path):
    run = subprocess.run([client, "--server", server, "--json", "embed", path], capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"veriface embed {path}: {run.stderr.strip()}")
    return json.loads(run.stdout)


def box_of(face):
    b = face.get("box", {})
    return [float(b.get(k, 0)) for k in ("x1", "y1", "x2", "y2")]


def check(record, response):
    faces = response.get("faces", [])
    expected = record["faces"]
    result = {"name": record["name"], "faces": len(faces), "expected_faces": len(expected), "ok": True}
    if len(faces) != len(expected):
        result.update(ok=False, why="face count differs")
        return result
    # The server lists faces by score as the goldens do; match each golden face to the nearest box anyway,
    # so that a tie in score cannot fail the check.
    worst_box = 0.0
    matched = []
    for e in expected:
        gaps = [max(abs(a - b) for a, b in zip(box_of(f), e["box"])) for f in faces]
        i = min(range(len(faces)), key=gaps.__getitem__)
        worst_box = max(worst_box, gaps[i])
        matched.append(i)
    result["max_box_diff_px"] = worst_box
    if worst_box > BOX_TOLERANCE_PX:
        result.update(ok=False, why="a box is off by more than 2 px")
    central = record.get("central_face")
    if central is not None and record.get("descriptor_normalized"):
        got = [float(v) for v in faces[matched[central]].get("embedding", [])]
        want = record["descriptor_normalized"]
        if len(got) != len(want):
            result.update(ok=False, why=f"embedding has {len(got)} values, the golden {len(want)}")
            return result
        distance = math.sqrt(sum((a - b) ** 2 for a, b in zip(got, want)))
        result["descriptor_distance"] = distance
        if distance > DESCRIPTOR_TOLERANCE:
            result.update(ok=False, why="central face's embedding off by more than 0.03")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", required=True)
    parser.add_argument("--server", required=True)
    parser.add_argument("--goldens", required=True)
    parser.add_argument("--lfw", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(f"{args.goldens}/lfw_pipeline.json") as f:
        records = [r for r in json.load(f)["images"] if "path" in r]
    results = []
    for record in records:
        try:
            results.append(check(record, embed(args.client, args.server, f"{args.lfw}/{record['path']}")))
        except (RuntimeError, json.JSONDecodeError) as e:
            results.append({"name": record["name"], "ok": False, "why": str(e)})
    distances = [r["descriptor_distance"] for r in results if "descriptor_distance" in r]
    report = {
        "images": len(results),
        "passed": sum(r["ok"] for r in results),
        "max_descriptor_distance": max(distances) if distances else None,
        "max_box_diff_px": max((r.get("max_box_diff_px", 0) for r in results), default=None),
        "tolerances": {"box_px": BOX_TOLERANCE_PX, "descriptor_euclidean": DESCRIPTOR_TOLERANCE},
        "results": results,
    }
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"goldens through the server: {report['passed']}/{report['images']} images pass, "
          f"max descriptor distance {report['max_descriptor_distance']}, max box diff {report['max_box_diff_px']} px")
    for r in results:
        if not r["ok"]:
            print(f"  FAIL {r['name']}: {r.get('why')}")
    return 0 if report["passed"] == report["images"] else 1


if __name__ == "__main__":
    sys.exit(main())
