"""Fixtures for the compatibility suite.

The suite drives the real PyPI clients (ascend-ai-sdk 2.7.1 and
ascend-boto3-wrapper 1.2.1, unchanged) against the real ``ascend serve``
binary and a real moto server, all on 127.0.0.1.

Nothing is built here: the binary is ``$ASCEND_BIN`` or
``<repo>/target/debug/ascend``.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
SERVER_START_TIMEOUT_S = 60.0
MOTO_START_TIMEOUT_S = 60.0
HTTP_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return "<no log>"


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def ascend_bin_path() -> Path:
    env = os.environ.get("ASCEND_BIN")
    return Path(env) if env else REPO_ROOT / "target" / "debug" / "ascend"


@dataclass
class Platform:
    """A running ``ascend serve`` plus small admin helpers over its HTTP API."""

    base_url: str
    admin_key: str
    data_dir: Path
    log_path: Path

    # -- raw HTTP -------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        key: str | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        headers.setdefault("X-API-Key", key or self.admin_key)
        kwargs.setdefault("timeout", HTTP_TIMEOUT_S)
        return requests.request(method, self.base_url + path, headers=headers, **kwargs)

    @staticmethod
    def _expect(resp: requests.Response, *codes: int) -> requests.Response:
        assert resp.status_code in codes, (
            f"{resp.request.method} {resp.request.url} -> {resp.status_code}: {resp.text[:500]}"
        )
        return resp

    # -- admin helpers --------------------------------------------------
    def create_key(self, role: str, name: str) -> dict[str, Any]:
        resp = self._expect(
            self.request("POST", "/api/v1/keys", json={"role": role, "name": name}), 201
        )
        body = resp.json()
        for field in ("id", "key", "role", "name", "created_at"):
            assert field in body, f"POST /api/v1/keys response lacks {field!r}: {body}"
        assert body["role"] == role
        assert body["key"].startswith(f"owkai_{role}_"), body["key"]
        return body

    def put_policies(self, cedar_text: str) -> requests.Response:
        return self._expect(
            self.request(
                "PUT",
                "/api/v1/policies",
                data=cedar_text.encode(),
                headers={"Content-Type": "text/plain"},
            ),
            200,
        )

    def block_agent(self, agent_id: str, reason: str) -> dict[str, Any]:
        resp = self._expect(
            self.request(
                "POST", f"/api/v1/agents/{agent_id}/block", json={"reason": reason}
            ),
            200,
        )
        return resp.json()

    def unblock_agent(self, agent_id: str) -> dict[str, Any]:
        resp = self._expect(
            self.request("POST", f"/api/v1/agents/{agent_id}/unblock"), 200
        )
        return resp.json()

    def approve(self, action_id: str, key: str, comment: str = "ok") -> dict[str, Any]:
        resp = self._expect(
            self.request(
                "POST",
                f"/api/v1/actions/{action_id}/approve",
                key=key,
                json={"comment": comment},
            ),
            200,
        )
        return resp.json()

    def reject(self, action_id: str, key: str, reason: str) -> dict[str, Any]:
        resp = self._expect(
            self.request(
                "POST",
                f"/api/v1/actions/{action_id}/reject",
                key=key,
                json={"reason": reason},
            ),
            200,
        )
        return resp.json()

    def list_actions(
        self, key: str | None = None, **params: Any
    ) -> list[dict[str, Any]]:
        resp = self._expect(
            self.request("GET", "/api/v1/actions", key=key, params=params), 200
        )
        body = resp.json()
        assert isinstance(body.get("actions"), list), body
        return body["actions"]

    def action_status(self, action_id: str, key: str | None = None) -> dict[str, Any]:
        resp = self._expect(
            self.request("GET", f"/api/v1/actions/{action_id}/status", key=key), 200
        )
        return resp.json()

    def wait_for_pending(
        self, agent_id: str, key: str, timeout_s: float = 30.0
    ) -> dict[str, Any]:
        """Return the first pending_approval action of ``agent_id`` (bounded wait)."""
        deadline = time.monotonic() + timeout_s
        for _ in range(int(timeout_s / 0.25) + 1):
            actions = self.list_actions(
                key=key, agent_id=agent_id, status="pending_approval"
            )
            if actions:
                return actions[0]
            if time.monotonic() > deadline:
                break
            time.sleep(0.25)
        raise AssertionError(
            f"no pending_approval action for agent {agent_id} in {timeout_s}s"
        )


def action_id_of(record: dict[str, Any]) -> str:
    return str(record.get("id") or record.get("action_id"))


@pytest.fixture(scope="session", autouse=True)
def _aws_test_env() -> Iterator[None]:
    """Dummy AWS credentials: boto3 only ever talks to the local moto server."""
    saved = {k: os.environ.get(k) for k in _AWS_ENV}
    os.environ.update(_AWS_ENV)
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(scope="session")
def ascend_bin() -> Path:
    path = ascend_bin_path()
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"ascend binary not found at {path}: build it (cargo build -p ascend) "
            "or set ASCEND_BIN",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def platform(
    ascend_bin: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    tmp = tmp_path_factory.mktemp("ascend")
    data_dir = tmp / "data"  # does not exist yet: `ascend serve` must create it
    log_path = tmp / "serve.log"
    port = free_port()
    admin_key = "owkai_admin_" + secrets.token_hex(16)
    env = dict(os.environ)
    env["ASCEND_BOOTSTRAP_KEY"] = admin_key
    for var in ("ASCEND_DATABASE_URL", "ASCEND_LISTEN", "ASCEND_DATA_DIR"):
        env.pop(var, None)
    base_url = f"http://{HOST}:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                str(ascend_bin),
                "serve",
                "--listen",
                f"{HOST}:{port}",
                "--data-dir",
                str(data_dir),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        ready = False
        for _ in range(int(SERVER_START_TIMEOUT_S / 0.1) + 1):
            if proc.poll() is not None:
                pytest.fail(
                    f"ascend serve exited with {proc.returncode}:\n{_tail(log_path)}",
                    pytrace=False,
                )
            try:
                r = requests.get(base_url + "/healthz", timeout=2)
                if r.status_code == 200:
                    assert r.json().get("status") == "ok", r.text
                    ready = True
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if not ready:
            pytest.fail(
                f"ascend serve not ready in {SERVER_START_TIMEOUT_S}s:\n{_tail(log_path)}",
                pytrace=False,
            )
        yield Platform(
            base_url=base_url, admin_key=admin_key, data_dir=data_dir, log_path=log_path
        )
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def agent_key(platform: Platform) -> str:
    return platform.create_key("agent", "compat-agent")["key"]


@pytest.fixture(scope="session")
def approver_key(platform: Platform) -> str:
    return platform.create_key("approver", "compat-approver")["key"]


@pytest.fixture
def agent_id() -> str:
    return f"compat-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def policies(platform: Platform) -> Iterator[Callable[[str], None]]:
    """Set the organisation's Cedar policy set; emptied again after the test."""

    def _set(text: str) -> None:
        platform.put_policies(text)

    yield _set
    platform.put_policies("")


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    url = f"http://{HOST}:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + MOTO_START_TIMEOUT_S
        ready = False
        for _ in range(int(MOTO_START_TIMEOUT_S / 0.2) + 1):
            if proc.poll() is not None:
                pytest.fail(f"moto server exited:\n{_tail(log_path)}", pytrace=False)
            try:
                requests.get(url + "/moto-api/", timeout=2)
                ready = True
                break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if not ready:
            pytest.fail(f"moto server not ready:\n{_tail(log_path)}", pytrace=False)
        yield url
    finally:
        _stop(proc)
