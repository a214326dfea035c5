"""Seed corpora for the fuzz targets, written to OUT/<target>/ (`make fuzz-seeds`).

config: the examples and the CLI's test configs. unleash_payload: the example's inline payload
and the `state` of every case of the Unleash client specification (fetched by `make unleash-spec`).
spring_payload: Spring Cloud Config Environments for examples/spring.json's `features` prefix.
The request target's seeds are committed in fuzz/seeds/request (binary layout: fuzz/src/lib.rs).
"""
import glob
import json
import os
import sys

out, spec = sys.argv[1], sys.argv[2]
TARGETS = ("config", "unleash_payload", "spring_payload")
for target in TARGETS:
    os.makedirs(os.path.join(out, target), exist_ok=True)


def write(target, name, data):
    with open(os.path.join(out, target, name), "wb") as f:
        f.write(data)


for path in sorted(glob.glob("examples/*.json") + glob.glob("cli/tests/configs/*.json")):
    name = path.replace("/", "_")
    with open(path, "rb") as f:
        write("config", name, f.read())
    payload = json.load(open(path)).get("unleash", {}).get("payload")
    if payload is not None:
        write("unleash_payload", name, json.dumps(payload).encode())
cases = sorted(glob.glob(os.path.join(spec, "[0-9]*.json")))
if not cases:
    sys.exit(f"no Unleash specification cases in {spec}: run `make unleash-spec`")
for path in cases:
    case = json.load(open(path))
    if "state" in case:
        write("unleash_payload", os.path.basename(path), json.dumps(case["state"]).encode())

def environment(sources):
    return json.dumps({"name": "storefront", "profiles": ["prod", "eu"], "label": "main",
                       "version": "abc123", "state": None,
                       "propertySources": [{"name": n, "source": s} for n, s in sources]}).encode()


write("spring_payload", "environment", environment([
    ("git:main:storefront-eu.yml", {"features.checkout.rollout": 25, "features.banner.variant": "b"}),
    ("git:main:storefront-prod.yml", {"features.checkout.enabled": True, "features.search.enabled": "false"}),
    ("git:main:application.yml", {"features.checkout.enabled": False, "features.wishlist.enabled": True,
                                  "other.key": "x"}),
]))
write("spring_payload", "empty", environment([]))
print(f"fuzz seeds in {out}: " + ", ".join(
    f"{t} {len(os.listdir(os.path.join(out, t)))}" for t in TARGETS))
