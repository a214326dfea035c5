"""Every Istio bundle in examples/istio, as an operator applies it (`kubectl apply -k`):

- rendered with kustomize (kubectl's built-in kustomize),
- every Istio and Gateway API object against the CRD schemas (npm @kubernetes-models/istio and
  @kubernetes-models/gateway-api), every core object against Kubernetes' schemas, strict
  (PyPI kubernetes-validate),
- every Sluice config (WasmPlugin pluginConfig, EnvoyFilter StringValue) against
  schema/sluice-config.schema.json,
- every Envoy chain (EnvoyFilter patches, the WasmPlugin's filter, examples/envoy) with
  `envoy --mode validate`, which also loads the module and runs its config check,
- cross-checks: the headers and values Sluice writes are the ones the routing objects match,
  every subset / backend / gateway / target exists, selectors match the Deployments' labels.
"""
import concurrent.futures
import functools
import json
import re
import shutil
import subprocess

import jsonschema
import kubernetes_validate
import pytest
import yaml

from conftest import ROOT, WASM, ENVOY

EXAMPLES = ROOT / "examples"
TECHNIQUES = ["canary", "blue-green", "ab-split", "pins-overrides"]
OVERLAYS = ["sidecar", "gateway", "gateway-api", "envoyfilter"]
BUNDLES = [(t, o) for t in TECHNIQUES for o in OVERLAYS]
NODE_DIR = ROOT / "build" / "node"
K8S_VERSION = "1.32.0"
HELM_GATEWAY = ("istio-ingress", {"istio": "ingress"})  # helm install istio-ingress istio/gateway
ISTIO_KINDS = {"WasmPlugin", "VirtualService", "DestinationRule", "EnvoyFilter", "Gateway", "HTTPRoute"}


@functools.lru_cache(maxsize=None)
def kubectl():
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail("kubectl (with kustomize v5) is not installed: install kubectl 1.27+ "
                    "(Kubernetes' apt repository or cloud SDK); Debian's kubernetes-client is too old",
                    pytrace=False)
    out = subprocess.run([path, "version", "--client"], capture_output=True, text=True).stdout
    m = re.search(r"Kustomize Version: v(\d+)", out)
    if not m or int(m.group(1)) < 5:
        pytest.fail(f"kubectl's kustomize is older than v5: {out.strip()}", pytrace=False)
    return path


@functools.lru_cache(maxsize=None)
def rendered(technique, overlay):
    d = EXAMPLES / "istio" / technique / overlay
    run = subprocess.run([kubectl(), "kustomize", str(d)], capture_output=True, text=True)
    assert run.returncode == 0, f"kubectl kustomize {d}: {run.stderr}"
    return [doc for doc in yaml.safe_load_all(run.stdout) if doc]


def where(technique, overlay, doc):
    m = doc["metadata"]
    return f"{technique}/{overlay}: {doc['kind']} {m.get('namespace', '-')}/{m['name']}"


def of_kind(docs, kind, api_prefix=None):
    return [d for d in docs if d["kind"] == kind
            and (api_prefix is None or d["apiVersion"].startswith(api_prefix))]


def sluice_configs(docs):
    """(where it is, the config) for every Sluice install in the docs."""
    out = []
    for d in of_kind(docs, "WasmPlugin"):
        out.append((d, d["spec"]["pluginConfig"]))
    for d in of_kind(docs, "EnvoyFilter"):
        for p in d["spec"]["configPatches"]:
            v = p["patch"]["value"]
            if v.get("name") == "envoy.filters.http.wasm":
                out.append((d, json.loads(v["typed_config"]["config"]["configuration"]["value"])))
    return out


def the_config(docs):
    configs = sluice_configs(docs)
    assert len(configs) == 1, f"expected exactly one Sluice install, found {len(configs)}"
    return configs[0][1]


def labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def pods(docs):
    return [(d["metadata"]["name"], d["spec"]["template"]["metadata"]["labels"])
            for d in of_kind(docs, "Deployment")]


def fqdn(name, ns):
    return name if "." in name else f"{name}.{ns}.svc.cluster.local"


# --- schemas ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def crd_results():
    if shutil.which("node") is None:
        pytest.fail("node is not installed: apt-get install nodejs npm", pytrace=False)
    if not (NODE_DIR / "node_modules" / "@kubernetes-models" / "istio").exists():
        pytest.fail(f"{NODE_DIR}/node_modules is missing: make setup-deploy", pytrace=False)
    shutil.copyfile(ROOT / "deploy" / "validate-crds.mjs", NODE_DIR / "validate-crds.mjs")
    items = [{"where": where(t, o, d), "doc": d}
             for t, o in BUNDLES for d in rendered(t, o) if d["kind"] in ISTIO_KINDS]
    run = subprocess.run(["node", str(NODE_DIR / "validate-crds.mjs")], input=json.dumps(items),
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_crd_validator_rejects_a_broken_object():
    """The validator bites: a WasmPlugin with a bad sha256 and failStrategy is refused."""
    bad = {"apiVersion": "extensions.istio.io/v1alpha1", "kind": "WasmPlugin", "metadata": {"name": "x"},
           "spec": {"url": "oci://x", "sha256": "not-hex", "failStrategy": "FAIL_SOMETIMES"}}
    shutil.copyfile(ROOT / "deploy" / "validate-crds.mjs", NODE_DIR / "validate-crds.mjs")
    run = subprocess.run(["node", str(NODE_DIR / "validate-crds.mjs")],
                         input=json.dumps([{"where": "bad", "doc": bad}]), capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)[0]["error"], "a broken WasmPlugin passed the CRD schema"


def test_istio_and_gateway_api_objects_pass_their_crd_schemas(crd_results):
    kinds = {r["kind"] for r in crd_results}
    assert kinds == ISTIO_KINDS, f"kinds validated: {sorted(kinds)}"
    errors = [f"{r['where']}: {r['error']}" for r in crd_results if r["error"]]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("technique,overlay", BUNDLES)
def test_core_objects_pass_kubernetes_schemas(technique, overlay):
    core = [d for d in rendered(technique, overlay) if d["kind"] not in ISTIO_KINDS]
    assert {d["kind"] for d in core} >= {"Namespace", "Deployment", "Service"}
    for d in core:
        try:
            kubernetes_validate.validate(d, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{where(technique, overlay, d)}: {e.message}")


@pytest.mark.parametrize("technique,overlay", BUNDLES)
def test_sluice_configs_pass_the_config_schema(technique, overlay):
    schema = json.loads((ROOT / "schema" / "sluice-config.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    for doc, config in sluice_configs(rendered(technique, overlay)):
        errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(config)]
        assert not errors, f"{where(technique, overlay, doc)}: " + "; ".join(errors)
        want = json.loads((EXAMPLES / f"{technique}.json").read_text())
        want.pop("$schema", None)
        assert config == want, f"{where(technique, overlay, doc)}: stale, run python3 examples/render.py"


def test_rendered_files_are_current():
    run = subprocess.run(["python3", str(EXAMPLES / "render.py"), "--check"], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


# --- Envoy validate --------------------------------------------------------------------------

def envoy_chain(docs):
    """The HTTP filter chain the proxy ends up with: EnvoyFilter patches applied in order to
    [router], and a WasmPlugin's filter where Istio puts it (before the router)."""
    chain = [{"name": "envoy.filters.http.router", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]
    for d in of_kind(docs, "WasmPlugin"):
        chain.insert(-1, {"name": "envoy.filters.http.wasm", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {"name": "sluice", "root_id": "",
                       "failure_policy": "FAIL_OPEN" if d["spec"]["failStrategy"] == "FAIL_OPEN" else "FAIL_CLOSED",
                       "vm_config": {"vm_id": "sluice", "runtime": "envoy.wasm.runtime.v8",
                                     "code": {"local": {"filename": "/var/local/lib/wasm/sluice.wasm"}}},
                       "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                         "value": json.dumps(d["spec"]["pluginConfig"])}}}})
    for d in of_kind(docs, "EnvoyFilter"):
        for p in d["spec"]["configPatches"]:
            assert p["applyTo"] == "HTTP_FILTER"
            op, value = p["patch"]["operation"], json.loads(json.dumps(p["patch"]["value"]))
            if op == "INSERT_FIRST":
                chain.insert(0, value)
            elif op == "INSERT_BEFORE":
                assert p["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"] == "envoy.filters.http.router"
                chain.insert(len(chain) - 1, value)
            else:
                pytest.fail(f"unexpected patch operation {op}")
    for f in chain:
        code = f.get("typed_config", {}).get("config", {}).get("vm_config", {}).get("code", {})
        if "local" in code:
            code["local"]["filename"] = str(WASM)
    return chain


def routes_of(docs):
    vs = of_kind(docs, "VirtualService")
    routes = []
    for http in (vs[0]["spec"]["http"] if vs else []):
        headers = [{"name": n, "string_match": {"exact": c["exact"]}}
                   for m in http.get("match", []) for n, c in m["headers"].items()]
        routes.append({"match": {"prefix": "/", **({"headers": headers} if headers else {})},
                       "direct_response": {"status": 200}})
    return routes or [{"match": {"prefix": "/"}, "direct_response": {"status": 200}}]


def bootstrap(chain, routes):
    return {"static_resources": {"listeners": [{"name": "l", "address": {"socket_address": {
        "address": "127.0.0.1", "port_value": 10000}}, "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "v", "route_config": {"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": routes}]},
                "http_filters": chain}}]}]}]}}


def envoy_validate(args):
    name, config_path = args
    run = subprocess.run([str(ENVOY), "--mode", "validate", "-c", str(config_path), "-l", "error"],
                         capture_output=True, text=True, cwd=ROOT)
    return name, run.returncode, (run.stdout + run.stderr)[-2000:]


def test_every_envoy_chain_passes_envoy_validate(tmp_path):
    if not ENVOY.exists():
        pytest.fail(f"{ENVOY} is missing: make setup-envoy", pytrace=False)
    if not WASM.exists():
        pytest.fail(f"{WASM} is missing: make wasm", pytrace=False)
    jobs = []
    for t, o in BUNDLES:
        if o not in ("sidecar", "envoyfilter", "gateway"):
            continue
        docs = rendered(t, o)
        path = tmp_path / f"{t}-{o}.json"
        path.write_text(json.dumps(bootstrap(envoy_chain(docs), routes_of(docs))))
        jobs.append((f"{t}/{o}", path))
    for t in TECHNIQUES:
        jobs.append((f"examples/envoy/{t}.yaml", EXAMPLES / "envoy" / f"{t}.yaml"))
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(envoy_validate, jobs))
    failed = [f"{name}:\n{out}" for name, rc, out in results if rc != 0 or "OK" not in out]
    assert not failed, "\n".join(failed)


# --- cross-checks ----------------------------------------------------------------------------

@pytest.mark.parametrize("technique,overlay", BUNDLES)
def test_routing_objects_match_what_sluice_writes(technique, overlay):
    docs = rendered(technique, overlay)
    config = the_config(docs)
    (route_name, route), = config["routes"].items()
    header, versions = route["header"], route["versions"]
    authorities = set(route.get("match", {}).get("authority", []))
    services = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in of_kind(docs, "Service")}
    drs = {d["spec"]["host"]: d for d in of_kind(docs, "DestinationRule")}

    def check_matches(matched, where_):
        for name, value in matched:
            assert name == header, f"{where_}: matches header {name}, Sluice writes {header}"
            assert value in versions, f"{where_}: matches {header}: {value}, not a version of {versions}"

    reached = set()
    routing = of_kind(docs, "VirtualService") + of_kind(docs, "HTTPRoute")
    assert len(routing) == 1, f"expected one routing object, found {len(routing)}"
    for vs in of_kind(docs, "VirtualService"):
        ns = vs["metadata"]["namespace"]
        for h in vs["spec"]["hosts"]:
            assert h in authorities, f"Sluice route {route_name} does not match authority {h}"
        for http in vs["spec"]["http"]:
            matched = [(n, c["exact"]) for m in http.get("match", []) for n, c in m["headers"].items()]
            check_matches(matched, f"VirtualService {vs['metadata']['name']} {http['name']}")
            (dest,) = [r["destination"] for r in http["route"]]
            host = fqdn(dest["host"], ns)
            assert host in drs, f"no DestinationRule for {host}"
            subsets = {s["name"]: s["labels"] for s in drs[host]["spec"]["subsets"]}
            assert dest["subset"] in subsets, f"subset {dest['subset']} of {host} does not exist"
            svc_name, svc_ns = host.split(".")[:2]
            svc = services.get((svc_ns, svc_name))
            assert svc, f"no Service {svc_ns}/{svc_name}"
            selector = dict(svc["spec"]["selector"], **subsets[dest["subset"]])
            hits = [n for n, labels in pods(docs) if labels_match(selector, labels)]
            assert hits, f"subset {dest['subset']} ({selector}) selects no Deployment"
            want = [v for n, v in matched] or [dest["subset"]]
            assert all(v == dest["subset"] for v in want), f"{header} {want} routed to {dest['subset']}"
            reached.add(dest["subset"])
        for gw_ref in vs["spec"].get("gateways", []):
            gw_ns, gw_name = gw_ref.split("/")
            gws = [g for g in of_kind(docs, "Gateway", "networking.istio.io")
                   if (g["metadata"]["namespace"], g["metadata"]["name"]) == (gw_ns, gw_name)]
            assert gws, f"VirtualService binds {gw_ref}, which is not an Istio Gateway here"
            hosts = {h for s in gws[0]["spec"]["servers"] for h in s["hosts"]}
            assert set(vs["spec"]["hosts"]) <= hosts, "VirtualService hosts not served by its Gateway"
    for hr in of_kind(docs, "HTTPRoute"):
        ns = hr["metadata"]["namespace"]
        for h in hr["spec"]["hostnames"]:
            assert h in authorities, f"Sluice route {route_name} does not match hostname {h}"
        for ref in hr["spec"]["parentRefs"]:
            gws = [g for g in of_kind(docs, "Gateway", "gateway.networking.k8s.io")
                   if g["metadata"]["name"] == ref["name"] and g["metadata"]["namespace"] == ref.get("namespace", ns)]
            assert gws, f"HTTPRoute parent {ref['name']} is not a Gateway API Gateway here"
            assert ref.get("sectionName") in {None, *(l["name"] for l in gws[0]["spec"]["listeners"])}
        for rule in hr["spec"]["rules"]:
            matched = [(h["name"], h["value"]) for m in rule.get("matches", []) for h in m.get("headers", [])]
            check_matches(matched, f"HTTPRoute {hr['metadata']['name']}")
            (backend,) = rule["backendRefs"]
            svc = services.get((ns, backend["name"]))
            assert svc, f"HTTPRoute backend Service {backend['name']} does not exist"
            assert backend["port"] in [p["port"] for p in svc["spec"]["ports"]]
            selected = [labels for n, labels in pods(docs) if labels_match(svc["spec"]["selector"], labels)]
            got = {labels.get("version") for labels in selected}
            assert len(got) == 1, f"backend {backend['name']} selects versions {got}, want exactly one"
            (version,) = got
            for _, value in matched:
                assert value == version, f"{header}: {value} routed to Service of version {version}"
            reached.add(version)
    assert reached == set(versions), f"versions reachable: {sorted(reached)}, Sluice writes {versions}"


@pytest.mark.parametrize("technique,overlay", BUNDLES)
def test_workloads_services_and_attachment(technique, overlay):
    docs = rendered(technique, overlay)
    keys = [(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs]
    assert len(keys) == len(set(keys)), f"duplicate objects: {keys}"
    for dep in of_kind(docs, "Deployment"):
        sel = dep["spec"]["selector"]["matchLabels"]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert labels_match(sel, labels), f"Deployment {dep['metadata']['name']}: selector misses its pods"
        assert "version" in labels, f"Deployment {dep['metadata']['name']} has no version label"
    for svc in of_kind(docs, "Service"):
        assert any(labels_match(svc["spec"]["selector"], l) for _, l in pods(docs)), \
            f"Service {svc['metadata']['name']} selects no Deployment"
        for p in svc["spec"]["ports"]:
            assert p.get("appProtocol") == "http" or p["name"].startswith("http"), \
                f"Service {svc['metadata']['name']} port {p['name']}: Istio would treat it as TCP"
    ns_names = {d["metadata"]["name"] for d in of_kind(docs, "Namespace")}
    for d in docs:
        ns = d["metadata"].get("namespace")
        assert d["kind"] == "Namespace" or ns in ns_names or ns == HELM_GATEWAY[0], f"{where(technique, overlay, d)}: unknown namespace"

    config = the_config(docs)
    route_headers = [r["header"] for r in config["routes"].values()]
    for wp in of_kind(docs, "WasmPlugin"):
        spec = wp["spec"]
        assert re.fullmatch(r"[0-9a-f]{64}", spec["sha256"]), "WasmPlugin sha256 is not a digest"
        assert spec.get("imagePullSecret"), "WasmPlugin has no imagePullSecret reference"
        assert spec["url"].startswith("oci://")
        assert not ("selector" in spec and "targetRefs" in spec), "selector and targetRefs are exclusive"
        if overlay == "sidecar":
            assert spec["match"] == [{"mode": "CLIENT"}]
            assert any(labels_match(spec["selector"]["matchLabels"], l) for _, l in pods(docs)), \
                "the sidecar WasmPlugin selects no caller Deployment"
        if overlay == "gateway":
            assert (wp["metadata"]["namespace"], spec["selector"]["matchLabels"]) == HELM_GATEWAY
            (gw,) = of_kind(docs, "Gateway", "networking.istio.io")
            assert gw["spec"]["selector"] == spec["selector"]["matchLabels"]
            assert spec["failStrategy"] == "FAIL_CLOSE"
        if overlay == "gateway-api":
            (ref,) = spec["targetRefs"]
            gws = [g for g in of_kind(docs, "Gateway", "gateway.networking.k8s.io")
                   if g["metadata"]["name"] == ref["name"]
                   and g["metadata"]["namespace"] == wp["metadata"]["namespace"]]
            assert gws, "targetRefs names no Gateway API Gateway in the WasmPlugin's namespace"
            assert spec["failStrategy"] == "FAIL_CLOSE"
    # The spoof guard: before Sluice, it removes every route header Sluice owns and re-picks the route.
    if overlay in ("sidecar", "envoyfilter"):
        chain = envoy_chain(docs)
        names = [f["name"] for f in chain]
        wasm_at = names.index("envoy.filters.http.wasm")
        strip = [f for f in chain[:wasm_at] if "header_mutation" in f["typed_config"]["@type"]]
        assert strip, "no header_mutation guard before Sluice"
        removed = {m["remove"] for m in strip[0]["typed_config"]["mutations"]["request_mutations"]}
        assert removed == set(route_headers)
        lua = [f for f in chain[names.index(strip[0]["name"]):wasm_at] if "lua" in f["typed_config"]["@type"]]
        assert lua and "clearRouteCache" in lua[0]["typed_config"]["default_source_code"]["inline_string"]
    for ef in of_kind(docs, "EnvoyFilter"):
        assert "fail_open" not in json.dumps(ef), "deprecated fail_open: use failure_policy"


@pytest.mark.parametrize("technique", TECHNIQUES)
def test_names_are_unique_and_installs_exclusive(technique):
    sluice_objects = {}
    for overlay in OVERLAYS:
        docs = rendered(technique, overlay)
        installs = of_kind(docs, "WasmPlugin") + [
            d for d in of_kind(docs, "EnvoyFilter") if "envoy.filters.http.wasm" in json.dumps(d)]
        assert len(installs) == 1, f"{technique}/{overlay}: {len(installs)} Sluice installs"
        for d in of_kind(docs, "WasmPlugin") + of_kind(docs, "EnvoyFilter"):
            key = (d["kind"], d["metadata"]["namespace"], d["metadata"]["name"])
            assert key not in sluice_objects, f"{key} in both {sluice_objects.get(key)} and {overlay}"
            sluice_objects[key] = overlay
    # Nothing at the technique's top level that `kubectl apply -f <technique>/` would pick up.
    top = sorted(p.name for p in (EXAMPLES / "istio" / technique).glob("*.yaml"))
    assert top == [], f"{technique}: {top} at the top level"


# --- the memory release setting docs/deploying.md recommends ---------------------------------

def test_the_memory_release_override_in_the_docs_is_valid(tmp_path):
    """The ConfigMap docs/deploying.md gives for `sidecar.istio.io/bootstrapOverride`: a valid
    Kubernetes object, and Envoy accepts its custom_bootstrap.json merged into a bootstrap (the
    sidecar's agent merges it the same way), with the setting the plain-Envoy examples carry."""
    text = (ROOT / "docs" / "deploying.md").read_text()
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]
    (configmap,) = [b for b in blocks if isinstance(b, dict) and b.get("kind") == "ConfigMap"]
    kubernetes_validate.validate(configmap, K8S_VERSION, strict=True)
    override = json.loads(configmap["data"]["custom_bootstrap.json"])
    assert override["memory_allocator_manager"]["bytes_to_release"] > 0
    for t in TECHNIQUES:
        plain = yaml.safe_load((EXAMPLES / "envoy" / f"{t}.yaml").read_text())
        assert plain["memory_allocator_manager"] == {
            "bytes_to_release": override["memory_allocator_manager"]["bytes_to_release"],
            "memory_release_interval": override["memory_allocator_manager"]["memory_release_interval"],
        }, f"examples/envoy/{t}.yaml and the docs' override differ"
    if not ENVOY.exists():
        pytest.fail(f"{ENVOY} is missing: make setup-envoy", pytrace=False)
    base = tmp_path / "base.json"
    base.write_text(json.dumps(bootstrap([{"name": "envoy.filters.http.router", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
        [{"match": {"prefix": "/"}, "direct_response": {"status": 200}}])))
    run = subprocess.run([str(ENVOY), "--mode", "validate", "-c", str(base), "--config-yaml",
                          configmap["data"]["custom_bootstrap.json"], "-l", "error"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0 and "OK" in run.stdout + run.stderr, (run.stdout + run.stderr)[-2000:]
    # And a broken override is refused: the check can fail.
    run = subprocess.run([str(ENVOY), "--mode", "validate", "-c", str(base), "--config-yaml",
                          '{"memory_allocator_manager": {"bytes_to_release": "lots"}}', "-l", "error"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode != 0
