#!/usr/bin/env python3
"""Writes bench/results/container.json and container.md from what container_check.sh left in its scratch folder."""
import argparse
import datetime
import json
import os
import platform
import re
import subprocess


def run(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def mb(n):
    if n is None:
        return "?"
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def main():
    ap = argparse.ArgumentParser()
    for a in ("scratch", "out-dir", "image", "command", "started", "client", "source", "root"):
        ap.add_argument("--" + a, required=True)
    args = ap.parse_args()
    s = args.scratch

    checks = [json.loads(line) for line in read(os.path.join(s, "checks.jsonl")).splitlines() if line.strip()]
    build = json.loads(read(os.path.join(s, "build.json"), "{}") or "{}")
    image = json.loads(read(os.path.join(s, "image.json"), "[{}]"))[0]
    info = {}
    try:
        info = json.loads(read(os.path.join(s, "info.json"), "{}"))
    except json.JSONDecodeError:
        pass
    closure = json.loads(read(os.path.join(s, "closure.json"), "{}") or "{}")
    model = info.get("model", info) if isinstance(info.get("model", info), dict) else {}

    # /opt/veriface by folder, the biggest libraries, the duplicates of the base image's libraries.
    folders, big, duplicates, misc = {}, [], [], {}
    for line in read(os.path.join(s, "contents.txt")).splitlines():
        w = line.split()
        if len(w) == 2 and w[1].startswith("/opt/veriface/"):
            folders[w[1]] = int(w[0])
        elif w and w[0] == "big":
            big.append({"library": w[2], "bytes": int(w[1])})
        elif w and w[0] == "duplicate":
            duplicates.append({"library": w[2], "bytes": int(w[1])})
        elif len(w) == 2:
            misc[w[0]] = int(w[1])
    packages = set()
    for line in read(os.path.join(s, "runtime-libraries.txt")).splitlines():
        if not line.startswith("#") and len(line.split()) == 3 and line.split()[2] != "-":
            packages.add(line.split()[2])
    layers = []
    for line in read(os.path.join(s, "history.txt")).splitlines():
        size, _, created = line.partition("\t")
        layers.append({"size": size, "created_by": re.sub(r"\s+", " ", created)[:160]})

    mem_kib = int(re.search(r"MemTotal:\s+(\d+)", read("/proc/meminfo")).group(1))
    record = {
        "what": "The container image built with podman from the project's Dockerfile on locally made Debian 12 base "
                "images, and the running container checked from outside through its published ports",
        "command": args.command,
        "started": args.started,
        "finished": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gib": round(mem_kib / 2**20, 1),
            "kernel": platform.release(),
            "os": re.search(r'PRETTY_NAME="([^"]*)"', read("/etc/os-release")).group(1),
            "podman": run("podman", "--version"),
            "runc": run("runc", "--version").splitlines()[0] if run("runc", "--version") else "",
            "podman_compose": run("dpkg-query", "-W", "-f", "${Version}", "podman-compose"),
            "docker_compose": run("docker-compose", "version", "--short"),
            "note": "2 cores shared with other builds; the image build ran under nice -n 10",
        },
        "source": {
            "tree": args.source,
            "git_commit": build.get("git_commit") or run("git", "-C", args.root, "rev-parse", "HEAD"),
            "overlaid_from_working_tree": build.get("overlaid_from_working_tree", []),
        },
        "build": {k: build.get(k) for k in ("build_seconds", "command", "id")},
        "image": {
            "name": args.image,
            "size_bytes": image.get("Size"),
            "runtime_base_size_bytes": build.get("runtime_base_size_bytes"),
            "user": image.get("Config", {}).get("User"),
            "entrypoint": image.get("Config", {}).get("Entrypoint"),
            "cmd": image.get("Config", {}).get("Cmd"),
            "exposed_ports": sorted((image.get("Config", {}).get("ExposedPorts") or {}).keys()),
            "volumes": sorted((image.get("Config", {}).get("Volumes") or {}).keys()),
            "healthcheck": image.get("Healthcheck") or image.get("Config", {}).get("Healthcheck"),
            "layers": layers,
            "opt_veriface_bytes": folders,
            "libraries": misc.get("libraries"),
            "libraries_from_debian_packages": len(packages),
            "debian_packages_installed": misc.get("packages"),
            "largest_libraries": big,
            "why_the_libraries": closure,
            "libraries_also_in_the_base_image": {"count": len(duplicates),
                                                 "bytes": sum(d["bytes"] for d in duplicates),
                                                 "names": sorted(d["library"] for d in duplicates)},
        },
        "model": {"model_id": model.get("model_id"), "default_threshold": model.get("default_threshold"),
                  "default_threshold_source": model.get("default_threshold_source")},
        "client": {"binary": "build/client/veriface (a copy)", "sha256": args.client},
        "checks": checks,
        "passed": sum(c["passed"] for c in checks),
        "failed": sum(not c["passed"] for c in checks),
    }
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "container.json"), "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")

    im = record["image"]
    lines = [
        "# The container image, built and run (podman)",
        "",
        f"`{args.command}` on {record['started']} ({record['machine']['cpus']} cores, "
        f"{record['machine']['memory_gib']} GiB, {record['machine']['os']}, {record['machine']['podman']}, "
        f"{record['machine']['runc']}). Source: commit {record['source']['git_commit'][:12]}"
        + (f" with the working tree's {', '.join(record['source']['overlaid_from_working_tree'])}"
           if record["source"]["overlaid_from_working_tree"] else "") + ". The whole record: `container.json`.",
        "",
        f"- Build: {record['build']['build_seconds']} s (`{' '.join(record['build']['command'] or [])}`)"
        if record["build"].get("build_seconds") else "- Build: reused an existing image",
        f"- Image: {mb(im['size_bytes'])}, of which {mb(im['runtime_base_size_bytes'])} the slim Debian 12 base; "
        f"user {im['user']}; {im['libraries']} libraries from {im['libraries_from_debian_packages']} Debian packages; "
        f"{im['debian_packages_installed']} packages installed (the base's only)",
        f"- Model: {record['model']['model_id']}, threshold {record['model']['default_threshold']} "
        f"({record['model']['default_threshold_source']})",
        "",
        "| /opt/veriface | bytes |",
        "|---|---|",
    ]
    lines += [f"| `{k.replace('/opt/veriface/', '')}` | {mb(v)} |" for k, v in im["opt_veriface_bytes"].items()]
    unused = closure.get("only_through_unused_links")
    if unused:
        alone = unused["bytes_if_only_this_library_dropped_its_links"]
        lines += ["", f"Every one of the {closure['libraries']} libraries is loaded (DT_NEEDED, `library_closure.py`); "
                  f"{unused['libraries']} of them, {mb(unused['bytes'])}, only because Debian's libtorch_cpu links "
                  f"OpenCV's video, GUI and DNN modules, FFmpeg and Caffe2's distributed-training libraries "
                  f"({mb(alone.get('libtorch_cpu.so.1.13'))} of it through those links alone) and Debian's "
                  f"libopencv_imgcodecs links GDAL, GDCM and OpenEXR ({mb(alone.get('libopencv_imgcodecs.so.406'))} "
                  f"alone). Without those links: {closure['left_without_those_links']['libraries']} libraries, "
                  f"{mb(closure['left_without_those_links']['bytes'])}."]
    lines += ["", "Largest libraries: " + ", ".join(f"{b['library']} {mb(b['bytes'])}" for b in im["largest_libraries"]),
              "", f"Libraries copied although the base image has the same soname: "
              f"{im['libraries_also_in_the_base_image']['count']} ({mb(im['libraries_also_in_the_base_image']['bytes'])}): "
              + ", ".join(im["libraries_also_in_the_base_image"]["names"]),
              "", "| check | result | s | detail |", "|---|---|---|---|"]
    for c in checks:
        detail = c["detail"].replace("|", "\\|")
        lines.append(f"| {c['check']} | {'pass' if c['passed'] else 'FAIL'} | "
                     f"{'' if c['seconds'] is None else c['seconds']} | {detail} |")
    lines += ["", f"{record['passed']} passed, {record['failed']} failed.", ""]
    with open(os.path.join(args.out_dir, "container.md"), "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
