"""Raw HTTP checks of the exact wire details the two clients depend on.

These repeat what test_sdk.py / test_wrapper.py exercise through the real
packages, but fail with a precise message (docs/compat.md section 0).
"""

from __future__ import annotations

import time

from conftest import Platform


def _mask(key: str) -> str:
    # ascend_boto3/wrapper.py:39-43 (1.2.1)
    return key[:6] + "*" * (len(key) - 6)


def wrapper_submit(platform: Platform, key: str, agent_id: str, op: str, params: dict):
    service = op.split(".", 1)[0]
    return platform.request(
        "POST",
        "/api/v1/actions/submit",
        headers={
            "Authorization": f"Bearer {_mask(key)}",
            "X-API-Key": key,
            "Content-Type": "application/json",
        },
        json={
            "agent_id": agent_id,
            "agent_name": "AWS Boto3 Agent",
            "action_type": op,
            "description": f"Boto3 {op} operation",
            "tool_name": service,
            "parameters": params,
            "risk_score": 95,
        },
    )


def test_x_api_key_wins_over_masked_bearer_and_submit_is_200(
    platform: Platform, agent_key: str, agent_id: str
) -> None:
    resp = wrapper_submit(
        platform, agent_key, agent_id, "s3.get_object", {"Bucket": "b"}
    )
    assert resp.status_code == 200, (resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["status"] == "approved"
    assert body["id"] == body["action_id"] and str(body["id"]).startswith("act_")
    assert body["risk_level"] == "low"
    assert isinstance(body["summary"], str) and body["summary"]
    assert body["requires_approval"] is False


def test_client_risk_score_is_ignored(
    platform: Platform, agent_key: str, agent_id: str
) -> None:
    resp = wrapper_submit(
        platform, agent_key, agent_id, "s3.delete_bucket", {"Bucket": "b-x"}
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["risk_score"] == 75 and body["risk_level"] == "high"
    assert body["status"] == "pending_approval"
    assert str(body["id"]) in body["summary"] or "approv" in body["summary"].lower()


def test_status_answers_at_once_without_wait(
    platform: Platform, agent_key: str, agent_id: str
) -> None:
    resp = wrapper_submit(
        platform, agent_key, agent_id, "s3.delete_bucket", {"Bucket": "b-y"}
    )
    assert resp.status_code == 200, resp.text
    action_id = resp.json()["id"]
    started = time.monotonic()
    status = platform.action_status(action_id, key=agent_key)
    assert time.monotonic() - started < 2.0, (
        "GET /status without ?wait must not long-poll"
    )
    assert status["status"] == "pending_approval"
    assert status.get("risk_level") in (None, "high")
    assert "decision" not in status or status["decision"] in (
        "pending",
        "pending_approval",
    )


def test_errors_are_json_with_detail(platform: Platform) -> None:
    resp = platform.request(
        "POST",
        "/api/v1/actions/submit",
        key="owkai_agent_" + "f" * 32,
        json={
            "agent_id": "x",
            "agent_name": "x",
            "action_type": "s3.get_object",
            "resource": "b",
        },
    )
    assert resp.status_code == 401, resp.text
    body = resp.json()
    assert body.get("detail") and body.get("error_code")
