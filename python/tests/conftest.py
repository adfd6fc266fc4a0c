"""Real parts only: a moto server on loopback, real boto3 pointed at it with
endpoint_url, and the real `ascend serve` binary on a free port with a temp data dir."""

import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest

import ascend_boto3

REPO = Path(__file__).resolve().parents[2]
ASCEND_BIN = os.environ.get("ASCEND_BIN") or str(REPO / "target" / "debug" / "ascend")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except Exception as error:  # not up yet
            last = error
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up in {timeout} s: {last}")


class Http:
    """A tiny real HTTP client (urllib) for the platform's admin API."""

    def __init__(self, base: str, key: str) -> None:
        self.base, self.key = base, key

    def call(self, method: str, path: str, body=None, content_type="application/json"):
        data = None
        if body is not None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("X-API-Key", self.key)
        if data is not None:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read().decode()
                return response.status, raw
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def json(self, method: str, path: str, body=None, expect=(200, 201)):
        status, raw = self.call(method, path, body)
        assert status in expect, f"{method} {path} -> {status}: {raw}"
        return json.loads(raw) if raw else None


class Platform:
    """`ascend serve` on a free loopback port; can be stopped and started again."""

    def __init__(self, tmp: Path) -> None:
        self.data_dir = tmp / "ascend-data"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_key = "owkai_admin_" + secrets.token_hex(16)
        self.proc = None
        self.log = open(tmp / "ascend-serve.log", "ab")
        self.admin = Http(self.url, self.admin_key)

    def start(self) -> None:
        env = dict(os.environ, ASCEND_BOOTSTRAP_KEY=self.admin_key)
        self.proc = subprocess.Popen(
            [
                ASCEND_BIN,
                "serve",
                "--listen",
                f"127.0.0.1:{self.port}",
                "--data-dir",
                str(self.data_dir),
            ],
            env=env,
            stdout=self.log,
            stderr=self.log,
            stdin=subprocess.DEVNULL,
        )
        wait_http(self.url + "/healthz")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.proc = None

    def agent_key(self, name: str = "pytest") -> str:
        return self.admin.json("POST", "/api/v1/keys", {"role": "agent", "name": name})["key"]

    def set_policies(self, text: str) -> None:
        status, raw = self.admin.call("PUT", "/api/v1/policies", text, "text/plain")
        assert status == 200, raw

    def actions(self, agent_id: str, status: str = "pending_approval"):
        query = f"/api/v1/actions?agent_id={agent_id}&status={status}&limit=100"
        return self.admin.json("GET", query)["actions"]

    def wait_pending(self, agent_id: str, timeout: float = 15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = self.actions(agent_id)
            if pending:
                return pending[0]
            time.sleep(0.05)
        raise AssertionError(f"no pending action of {agent_id} within {timeout} s")

    def audit(self, agent_id: str):
        status, raw = self.admin.call("GET", f"/api/v1/audit?agent_id={agent_id}")
        assert status == 200, raw
        return [json.loads(line) for line in raw.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def platform(tmp_path_factory):
    if not os.path.exists(ASCEND_BIN):
        pytest.skip(f"ascend binary not built at {ASCEND_BIN}")
    p = Platform(tmp_path_factory.mktemp("platform"))
    p.start()
    yield p
    p.stop()


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory):
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/moto-api/")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Own queue dir, AWS test credentials, no ASCEND_* leaking in; governance off after."""
    for name in ("ASCEND_API_KEY", "ASCEND_API_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ASCEND_QUEUE_DIR", str(tmp_path / "queue"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    yield
    ascend_boto3.disable_governance()


@pytest.fixture
def policies(platform):
    """Set the organisation's Cedar policies for one test; cleared afterwards."""
    yield platform.set_policies
    platform.set_policies("")


@pytest.fixture
def agent(platform):
    """A fresh agent key and agent id."""
    return platform.agent_key(), f"agent-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def client(moto_url):
    def make(service: str = "s3", session=None):
        factory = session.client if session is not None else boto3.client
        return factory(service, endpoint_url=moto_url, region_name="us-east-1")

    return make


@pytest.fixture
def bucket(client):
    name = f"b-{uuid.uuid4().hex[:12]}"
    s3 = client("s3")
    # Created before governance is enabled (or bypassing it): the fixture is setup.
    was = ascend_boto3._governance._governor
    ascend_boto3._governance._governor = None
    try:
        s3.create_bucket(Bucket=name)
    finally:
        ascend_boto3._governance._governor = was
    return name


def bucket_exists(s3, name: str) -> bool:
    governor = ascend_boto3._governance._governor
    ascend_boto3._governance._governor = None  # look without governing
    try:
        return any(b["Name"] == name for b in s3.list_buckets().get("Buckets", []))
    finally:
        ascend_boto3._governance._governor = governor


class Records(logging.Handler):
    def __init__(self, only=None) -> None:
        super().__init__(logging.DEBUG)
        self.records = []
        self.only = only

    def emit(self, record) -> None:
        if self.only is None or record.name == self.only:
            self.records.append(record)

    def messages(self, level=None):
        return [r.getMessage() for r in self.records if level is None or r.levelno == level]


@pytest.fixture
def logs():
    """Records of logger ascend_boto3 (without metrics)."""
    handler = Records(only="ascend_boto3")
    logger = logging.getLogger("ascend_boto3")
    old = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old)


@pytest.fixture
def metrics():
    """Parsed JSON records of logger ascend_boto3.metrics."""
    handler = Records()
    logger = logging.getLogger("ascend_boto3.metrics")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)

    class View:
        def all(self):
            return [json.loads(r.getMessage()) for r in handler.records]

    yield View()
    logger.removeHandler(handler)
