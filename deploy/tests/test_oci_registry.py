"""The module as OCI artifacts in a real registry, and a real Envoy loading it from there.

A Debian `docker-registry` on a loopback port (started and stopped by each test); `make oci`'s
layout pushed with skopeo, the Wasm artifact also pushed with oras (PyPI); both pulled back and
compared; Envoy 1.40 fetching the module from the registry's blob endpoint through
vm_config.code.remote with the shipped EnvoyFilter's filters and the shipped VirtualService's
routes, refusing a wrong sha256, and a missing module that cannot be spoofed.
"""
import copy
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import time
import uuid

import pytest
import yaml

from conftest import ROOT, WASM, free_port, http_get, need

OCI = ROOT / "deploy" / "oci.py"
WASM_LAYER = "application/vnd.module.wasm.content.layer.v1+wasm"
WASM_CONFIG = "application/vnd.module.wasm.config.v1+json"
TECHNIQUE = "pins-overrides"  # catalog v1/v2; `x-canary: always` pins v2; secret overrides
SPOOFS = 200


def sha(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def module():
    if not WASM.exists():
        pytest.fail(f"{WASM} is missing: make wasm", pytrace=False)
    return WASM.read_bytes()


@pytest.fixture
def layout(tmp_path, module):
    need("umoci", "apt-get install umoci (or: make setup-oci)")
    out = tmp_path / "oci"
    run = subprocess.run([sys.executable, str(OCI), "build", "--wasm", str(WASM), "--out", str(out),
                          "--tag", "0.1.0"], capture_output=True, text=True, check=True)
    return out, json.loads((tmp_path / "oci-pins.json").read_text()), run.stdout


def blob(layout_dir, digest):
    return (layout_dir / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


def skopeo(*args):
    need("skopeo", "apt-get install skopeo (or: make setup-oci)")
    return subprocess.run(["skopeo", *args], capture_output=True, check=True).stdout


def check_artifact(manifest_bytes, fetch, module):
    m = json.loads(manifest_bytes)
    assert m["config"]["mediaType"] == WASM_CONFIG
    assert [layer["mediaType"] for layer in m["layers"]] == [WASM_LAYER]
    assert m["layers"][0]["digest"] == f"sha256:{sha(module)}"
    assert fetch(m["layers"][0]["digest"]) == module


def check_image(manifest_bytes, fetch, module):
    m = json.loads(manifest_bytes)
    assert m["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    last = m["layers"][-1]
    assert last["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    with tarfile.open(fileobj=io.BytesIO(fetch(last["digest"])), mode="r:gz") as tar:
        names = [n.lstrip("./") for n in tar.getnames()]
        assert "plugin.wasm" in names, names
        member = next(x for x in tar.getmembers() if x.name.lstrip("./") == "plugin.wasm")
        assert tar.extractfile(member).read() == module


def test_make_oci_builds_both_forms_reproducibly(layout, module, tmp_path):
    out, pins, stdout = layout
    assert pins["module_sha256"] == sha(module)
    for tag, check in ((pins["artifact"]["tag"], check_artifact), (pins["image"]["tag"], check_image)):
        digest = pins["artifact" if check is check_artifact else "image"]["digest"]
        manifest = blob(out, digest)
        assert f"sha256:{sha(manifest)}" == digest
        check(manifest, lambda d: blob(out, d), module)
        assert digest in stdout, f"make oci does not print the digest of {tag}"
    # Same module, same digests: what an operator pins does not change with a rebuild.
    time.sleep(1.1)  # a rebuild in another second: no timestamp may leak into a digest
    again = tmp_path / "again"
    subprocess.run([sys.executable, str(OCI), "build", "--wasm", str(WASM), "--out", str(again / "oci")],
                   check=True, capture_output=True)
    assert json.loads((again / "oci-pins.json").read_text()) == pins


def test_push_both_forms_and_pull_them_back(registry, layout, module, tmp_path):
    out, pins, _ = layout
    repo = f"{registry.addr}/acme-shop/sluice"
    subprocess.run([sys.executable, str(OCI), "push", repo, "--out", str(out), "--dest-tls-verify=false"],
                   check=True, capture_output=True)
    for kind, check in (("artifact", check_artifact), ("image", check_image)):
        tag, digest = pins[kind]["tag"], pins[kind]["digest"]
        raw = skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{repo}:{tag}")
        assert f"sha256:{sha(raw)}" == digest, f"{kind}: the registry serves another manifest"
        status, _, headers = http_get(f"http://{registry.addr}/v2/acme-shop/sluice/manifests/{tag}",
                                      {"Accept": "application/vnd.oci.image.manifest.v1+json"})
        assert status == 200 and headers.get("Docker-Content-Digest") == digest
        pulled = tmp_path / f"pulled-{kind}"
        skopeo("copy", "--quiet", "--src-tls-verify=false", f"docker://{repo}:{tag}", f"oci:{pulled}:{tag}")
        check(raw, lambda d: blob(pulled, d), module)

    # The other tool: oras (PyPI) pushes the Wasm artifact itself and pulls it back.
    import oras.client
    client = oras.client.OrasClient(hostname=registry.addr, insecure=True)
    work = tmp_path / "oras"
    work.mkdir()
    (work / "plugin.wasm").write_bytes(module)
    (work / "config.json").write_text("{}")
    target = f"{registry.addr}/acme-shop/sluice-oras:0.1.0"
    client.push(target=target, files=[str(work / f"plugin.wasm:{WASM_LAYER}")],
                manifest_config=f"{work / 'config.json'}:{WASM_CONFIG}", disable_path_validation=True)
    manifest = client.get_manifest(target)
    assert manifest["config"]["mediaType"] == WASM_CONFIG
    assert [layer["mediaType"] for layer in manifest["layers"]] == [WASM_LAYER]
    back = client.pull(target=target, outdir=str(tmp_path / "oras-pull"))
    assert [open(f, "rb").read() for f in back] == [module]


def test_registry_serves_the_module_blob_without_redirect(registry, layout, module):
    out, pins, _ = layout
    repo = f"{registry.addr}/acme-shop/sluice"
    subprocess.run([sys.executable, str(OCI), "push", repo, "--out", str(out), "--dest-tls-verify=false"],
                   check=True, capture_output=True)
    status, body, headers = http_get(blob_url(registry, module))
    assert status == 200, f"blob endpoint answered {status} {headers.get('Location')}"
    assert sha(body) == sha(module)


# --- Envoy -------------------------------------------------------------------------------

def blob_url(registry, module):
    return f"http://{registry.addr}/v2/acme-shop/sluice/blobs/sha256:{sha(module)}"


def shipped(technique):
    bundle = ROOT / "examples" / "istio" / technique / "envoyfilter"
    (ef,) = yaml.safe_load_all((bundle / "envoyfilter.yaml").read_text())
    (vs,) = yaml.safe_load_all((bundle / "virtualservice.yaml").read_text())
    filters = [p["patch"]["value"] for p in ef["spec"]["configPatches"]]
    return filters, vs


def envoy_routes(vs):
    """The VirtualService's http routes as Envoy routes; each answers with the subset's name,
    so the response says which version the request was routed to."""
    routes = []
    for http in vs["spec"]["http"]:
        subset = http["route"][0]["destination"]["subset"]
        headers = []
        for m in http.get("match", []):
            for name, cond in m["headers"].items():
                headers.append({"name": name, "string_match": {"exact": cond["exact"]}})
        routes.append({"match": {"prefix": "/", **({"headers": headers} if headers else {})},
                       "direct_response": {"status": 200, "body": {"inline_string": subset}}})
    return routes


def envoy_config(registry, module, *, sha256=None, guard=True, failure_policy=None):
    filters, vs = shipped(TECHNIQUE)
    filters = copy.deepcopy(filters)
    wasm = filters[-1]["typed_config"]["config"]
    assert filters[-1]["name"] == "envoy.filters.http.wasm"
    wasm["vm_config"]["code"] = {"remote": {
        "http_uri": {"uri": blob_url(registry, module), "cluster": "registry", "timeout": "10s"},
        "sha256": sha256 or sha(module),
        "retry_policy": {"num_retries": 1}}}
    if failure_policy:
        wasm["failure_policy"] = failure_policy
    if not guard:
        filters = filters[-1:]
    port = free_port()
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": free_port()}}},
        "static_resources": {
            "listeners": [{"name": "outbound", "address": {"socket_address": {
                "address": "127.0.0.1", "port_value": port}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network."
                                 "http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "outbound",
                        "route_config": {"virtual_hosts": [
                            {"name": "catalog", "domains": ["*"], "routes": envoy_routes(vs)}]},
                        "http_filters": filters + [{"name": "envoy.filters.http.router", "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
                    }}]}]}],
            "clusters": [{"name": "registry", "type": "STATIC", "connect_timeout": "2s",
                          "load_assignment": {"cluster_name": "registry", "endpoints": [{"lb_endpoints": [
                              {"endpoint": {"address": {"socket_address": {
                                  "address": "127.0.0.1", "port_value": registry.port}}}}]}]}}],
        },
    }, port


def push_module(registry, layout):
    out, _, _ = layout
    subprocess.run([sys.executable, str(OCI), "push", f"{registry.addr}/acme-shop/sluice", "--out", str(out),
                    "--dest-tls-verify=false"], check=True, capture_output=True)


def ask(port, **headers):
    h = {"Host": "catalog"}
    h.update({k.replace("_", "-"): v for k, v in headers.items()})
    status, body, _ = http_get(f"http://127.0.0.1:{port}/", h)
    return status, body.decode(errors="replace")


def test_envoy_loads_the_module_from_the_registry_and_routes(registry, layout, module, envoys):
    push_module(registry, layout)
    config, port = envoy_config(registry, module)
    envoy = envoys("from-registry", config)
    assert "failed to load" not in envoy.log()
    # Sluice decides: the pin and the tester override reach v2, a plain user stays on v1 ...
    assert ask(port, x_canary="always") == (200, "v2")
    assert ask(port, x_sluice_secret="let-me-test", x_sluice_override="catalog=v2") == (200, "v2")
    users = [f"user-{i}" for i in range(200)]
    placed = {u: ask(port, x_user_id=u)[1] for u in users}
    on_v1 = [u for u, v in placed.items() if v == "v1"]
    assert on_v1 and set(placed.values()) <= {"v1", "v2"}
    # ... and a user on v1 who sends the route header is still on v1.
    spoofed = [u for u in on_v1[:50] if ask(port, x_user_id=u, x_route_catalog="v2")[1] != "v1"]
    assert spoofed == [], f"{len(spoofed)} spoofed requests reached v2"


def test_envoy_refuses_a_module_whose_sha256_does_not_match(registry, layout, module, envoys):
    push_module(registry, layout)
    config, port = envoy_config(registry, module, sha256="0" * 64, failure_policy="FAIL_CLOSED")
    envoy = envoys("wrong-sha", config)
    statuses = [ask(port, x_canary="always")[0] for _ in range(20)]
    assert statuses == [503] * 20, statuses
    assert "Plugin sluice failed to load" in envoy.log()


def test_a_missing_module_cannot_be_spoofed(registry, layout, module, envoys):
    """The module fails to load (wrong sha256) and Sluice fails open, as in the shipped
    EnvoyFilter: the guard before it must keep clients from choosing v2 with the header."""
    push_module(registry, layout)
    bad = "f" * 64
    guarded, port = envoy_config(registry, module, sha256=bad)
    envoy = envoys("guarded", guarded)
    assert "Plugin sluice failed to load" in envoy.log()
    results = [ask(port, x_user_id=str(uuid.uuid4()), x_route_catalog="v2") for _ in range(SPOOFS)]
    assert all(status == 200 for status, _ in results), "fail open must keep serving"
    reached = sum(body == "v2" for _, body in results)
    # The same chain without the guard: what the guard prevents.
    bare, bare_port = envoy_config(registry, module, sha256=bad, guard=False)
    envoys("unguarded", bare)
    unguarded = sum(ask(bare_port, x_route_catalog="v2")[1] == "v2" for _ in range(SPOOFS))
    print(f"\nmodule failed to load, fail open: spoofed requests reaching v2: "
          f"{reached} of {SPOOFS} with the guard, {unguarded} of {SPOOFS} without")
    assert unguarded == SPOOFS
    assert reached == 0
