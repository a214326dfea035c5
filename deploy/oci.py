#!/usr/bin/env python3
"""The Sluice module as OCI artifacts, without Docker.

    deploy/oci.py build [--wasm build/sluice.wasm] [--out build/oci] [--tag 0.1.0]
    deploy/oci.py push  REGISTRY/REPOSITORY [--out build/oci] [--tag 0.1.0] [skopeo copy flags...]

`build` writes one OCI image layout (build/oci) holding both forms Istio's WasmPlugin accepts:

  TAG        the Wasm OCI artifact: config application/vnd.module.wasm.config.v1+json, one layer
             application/vnd.module.wasm.content.layer.v1+wasm holding the module
  TAG-image  an OCI image (built with umoci) whose last layer holds /plugin.wasm

and prints the digests to pin. Both are reproducible (fixed timestamps), so the same module always
gives the same manifest digests. `push` copies both tags with skopeo, byte for byte
(--preserve-digests), so the digests printed by `build` are the ones the registry serves.

What to pin (WasmPlugin `sha256`):
  url: oci://REPO:TAG          -> the manifest digest of that tag (Istio compares the image digest)
  url: https://.../sluice.wasm -> the module's sha256 (also Envoy's vm_config.code.remote.sha256)
"""
import argparse
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

WASM_CONFIG_TYPE = "application/vnd.module.wasm.config.v1+json"
WASM_LAYER_TYPE = "application/vnd.module.wasm.content.layer.v1+wasm"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
EPOCH = "1970-01-01T00:00:00Z"


def need(tool, package):
    if shutil.which(tool) is None:
        sys.exit(f"{tool} is not installed: apt-get install {package} (or: make setup-oci)")


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def run(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def read_index(layout):
    return json.loads((layout / "index.json").read_text())


def tag_digest(layout, tag):
    for m in read_index(layout)["manifests"]:
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            return m["digest"]
    raise KeyError(f"{layout}: no tag {tag}")


def build_image(layout, tag, wasm):
    """The image form, with umoci: an empty image, unpacked, plugin.wasm added, repacked into
    one more layer. (umoci 0.4's `insert` writes a tar without its end blocks, so repack.)"""
    need("umoci", "umoci")
    ref = f"{layout}:{tag}"
    rootless = ["--rootless"] if os.geteuid() != 0 else []
    run("umoci", "new", "--image", ref)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = pathlib.Path(tmp) / "bundle"
        run("umoci", "unpack", *rootless, "--image", ref, str(bundle))
        dst = bundle / "rootfs" / "plugin.wasm"
        shutil.copyfile(wasm, dst)
        os.chmod(dst, 0o644)
        # Tar headers carry mtimes: fixed ones for the file and for / (changed by the copy).
        os.utime(dst, (0, 0))
        os.utime(dst.parent, (0, 0))
        run("umoci", "repack", "--image", ref, "--history.created", EPOCH,
            "--history.created_by", "sluice deploy/oci.py", str(bundle))
    run("umoci", "config", "--image", ref, "--created", EPOCH, "--history.created", EPOCH,
        "--history.created_by", "sluice deploy/oci.py", "--os", "linux", "--architecture", "amd64",
        "--config.label", "org.opencontainers.image.title=sluice")
    run("umoci", "gc", "--layout", str(layout))


def add_wasm_artifact(layout, tag, wasm):
    """The Wasm OCI artifact (Istio's "OCI spec compliant" format): written as blobs into the
    same layout. No Debian or PyPI tool writes such an artifact into a local layout (oras-py
    only talks to registries), and the format is three JSON fields; skopeo then copies it."""
    blobs = layout / "blobs" / "sha256"

    def put(data):
        digest = sha256(data)
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    module = wasm.read_bytes()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": WASM_CONFIG_TYPE, **put(b"{}")},
        "layers": [{"mediaType": WASM_LAYER_TYPE, **put(module),
                    "annotations": {"org.opencontainers.image.title": "plugin.wasm"}}],
    }
    data = json.dumps(manifest, separators=(",", ":")).encode()
    desc = {"mediaType": MANIFEST_TYPE, **put(data),
            "annotations": {"org.opencontainers.image.ref.name": tag}}
    index = read_index(layout)
    index["manifests"] = [m for m in index["manifests"]
                          if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag]
    index["manifests"].append(desc)
    (layout / "index.json").write_text(json.dumps(index, separators=(",", ":")))


def build(args):
    wasm = pathlib.Path(args.wasm)
    if not wasm.is_file():
        sys.exit(f"{wasm} not found: make wasm")
    layout = pathlib.Path(args.out)
    shutil.rmtree(layout, ignore_errors=True)
    need("umoci", "umoci")
    run("umoci", "init", "--layout", str(layout))
    build_image(layout, f"{args.tag}-image", wasm)
    add_wasm_artifact(layout, args.tag, wasm)
    module = sha256(wasm.read_bytes())
    artifact = tag_digest(layout, args.tag)
    image = tag_digest(layout, f"{args.tag}-image")
    pins = {"module_sha256": module, "artifact": {"tag": args.tag, "digest": artifact},
            "image": {"tag": f"{args.tag}-image", "digest": image}}
    (layout.parent / "oci-pins.json").write_text(json.dumps(pins, indent=2) + "\n")
    print(f"OCI layout {layout} ({wasm}, {wasm.stat().st_size} bytes)")
    print(f"  {args.tag:<14} Wasm OCI artifact  manifest {artifact}")
    print(f"  {args.tag + '-image':<14} image (plugin.wasm) manifest {image}")
    print(f"module sha256 {module}  (https:// URLs, Envoy vm_config.code.remote.sha256)")
    print()
    print("Push (skopeo; digests preserved):  make oci-push OCI_REPO=<registry>/<repository>")
    print("Pin in the WasmPlugin (a kustomize patch in your overlay, see docs/deploying.md):")
    print(f"  url: oci://<registry>/<repository>:{args.tag}")
    print(f"  sha256: {artifact.split(':', 1)[1]}")


def push(args, extra):
    need("skopeo", "skopeo")
    layout = pathlib.Path(args.out)
    if not (layout / "index.json").is_file():
        sys.exit(f"{layout} has no OCI layout: make oci")
    for tag in (args.tag, f"{args.tag}-image"):
        dest = f"docker://{args.repository}:{tag}"
        subprocess.run(["skopeo", "copy", "--quiet", "--preserve-digests", *extra,
                        f"oci:{layout}:{tag}", dest], check=True)
        print(f"pushed {dest}  {tag_digest(layout, tag)}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--wasm", default="build/sluice.wasm")
    b.add_argument("--out", default="build/oci")
    b.add_argument("--tag", default="0.1.0")
    q = sub.add_parser("push")
    q.add_argument("repository", help="REGISTRY/REPOSITORY, e.g. ghcr.io/acme-shop/sluice")
    q.add_argument("--out", default="build/oci")
    q.add_argument("--tag", default="0.1.0")
    args, extra = p.parse_known_args()
    if args.cmd == "build":
        if extra:
            p.error(f"unknown arguments {extra}")
        build(args)
    else:
        push(args, extra)


if __name__ == "__main__":
    main()
