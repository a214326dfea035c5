"""Shared pieces of the deploy tests: the repository paths, free loopback ports, and processes
(a registry, Envoy) that each test starts and always stops."""
import json
import pathlib
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
WASM = ROOT / "build" / "sluice.wasm"
ENVOY = ROOT / ".venv" / "bin" / "envoy"


def need(tool, how):
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: {how}", pytrace=False)
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, headers=None, timeout=5):
    """(status, body, headers) without following redirects."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None
    opener = urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(req, timeout=timeout) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def wait_until(check, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Process:
    def __init__(self, cmd, log_path):
        self.log_path = log_path
        self.log_file = open(log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT)

    def log(self):
        return pathlib.Path(self.log_path).read_text(errors="replace")

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()


class Registry(Process):
    """Debian's docker-registry (distribution v2) with filesystem storage on a loopback port."""

    def __init__(self, tmp):
        exe = need("docker-registry", "apt-get install docker-registry (or: make setup-oci)")
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        config = tmp / "registry.yml"
        config.write_text(json.dumps({
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(tmp / "registry-data")}},
            "http": {"addr": self.addr},
        }))
        super().__init__([exe, "serve", str(config)], tmp / "registry.log")

    def wait_ready(self):
        wait_until(lambda: http_get(f"http://{self.addr}/v2/", timeout=1)[0] == 200, 15,
                   f"the registry on {self.addr}")


class Envoy(Process):
    def __init__(self, tmp, name, config):
        if not ENVOY.exists():
            pytest.fail(f"{ENVOY} is missing: make setup-envoy", pytrace=False)
        path = tmp / f"{name}.json"
        path.write_text(json.dumps(config))
        self.admin = config["admin"]["address"]["socket_address"]["port_value"]
        super().__init__([str(ENVOY), "-c", str(path), "--concurrency", "1", "--use-dynamic-base-id",
                          "-l", "warning"], tmp / f"{name}.log")
        self.name = name

    def wait_ready(self):
        name = self.name

        def ready():
            assert self.alive(), f"Envoy {name} exited:\n{self.log()[-3000:]}"
            return http_get(f"http://127.0.0.1:{self.admin}/ready", timeout=1)[0] == 200
        wait_until(ready, 30, f"Envoy {name}")


@pytest.fixture
def registry(tmp_path):
    r = Registry(tmp_path)
    try:
        r.wait_ready()
        yield r
    finally:
        r.stop()


@pytest.fixture
def envoys(tmp_path):
    started = []

    def start(name, config):
        e = Envoy(tmp_path, name, config)
        started.append(e)
        e.wait_ready()
        return e
    try:
        yield start
    finally:
        for e in started:
            e.stop()
