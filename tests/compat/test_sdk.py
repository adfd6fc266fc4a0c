"""ascend-ai-sdk 2.7.1, unchanged, against the real ``ascend serve``.

See docs/compat.md section 1 for what the SDK sends and reads.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from ascend import (
    AscendClient,
    AuthenticationError,
    Decision,
    DecisionStatus,
    RiskLevel,
)

from conftest import Platform, action_id_of


def make_client(platform: Platform, key: str, agent_id: str) -> AscendClient:
    return AscendClient(
        api_key=key,
        agent_id=agent_id,
        agent_name=f"Compat {agent_id}",
        api_url=platform.base_url,
        timeout=10,
    )


def test_sdk_package_is_the_pypi_release() -> None:
    import ascend

    assert ascend.__version__ == "2.7.1"


@pytest.mark.parametrize("action_type", ["s3.get_object", "s3:GetObject"])
def test_low_action_is_approved(
    platform: Platform, agent_key: str, agent_id: str, action_type: str
) -> None:
    client = make_client(platform, agent_key, agent_id)
    d = client.evaluate_action(
        action_type=action_type,
        resource="compat-bucket",
        parameters={"Bucket": "compat-bucket", "Key": "report.csv"},
    )
    assert d.decision == Decision.ALLOWED, (d.raw_status, d.reason)
    assert d.status == "approved"
    assert d.raw_status == "approved"
    assert d.execution_allowed is True
    assert d.action_id.startswith("act_"), d.action_id
    assert d.risk_level == RiskLevel.LOW
    assert isinstance(d.risk_score, (int, float)) and 0 <= d.risk_score <= 44
    # the server's record is reachable by the id the SDK surfaced
    assert platform.action_status(d.action_id, key=agent_key)["status"] == "approved"


def test_high_action_submit_is_pending_with_approval_fields(
    platform: Platform, agent_key: str, agent_id: str
) -> None:
    client = make_client(platform, agent_key, agent_id)
    d = client.evaluate_action(
        action_type="s3.delete_bucket",
        resource="compat-bucket-del",
        parameters={"Bucket": "compat-bucket-del"},
        wait_for_decision=False,
    )
    assert d.decision == Decision.PENDING
    assert d.raw_status == "pending_approval"
    assert d.status == "pending_approval"
    assert d.risk_level == RiskLevel.HIGH
    assert d.risk_score == 75
    assert d.action_id.startswith("act_")
    assert d.approval_request_id, "pending response must carry approval_request_id"
    assert d.execution_allowed is False
    assert d.alert_triggered is True  # risk >= 70 raises an alert (DESIGN §6)

    # raw wire fields the SDK does not keep but other clients read
    raw = platform.request(
        "POST",
        "/api/v1/actions/submit",
        key=agent_key,
        json={
            "agent_id": agent_id,
            "agent_name": "raw",
            "action_type": "s3.delete_bucket",
            "resource": "compat-other-bucket",
            "action_details": {"Bucket": "compat-other-bucket"},
        },
    )
    assert raw.status_code == 200, raw.text
    body = raw.json()
    assert body["id"] == body["action_id"]
    assert body["status"] == "pending_approval"
    assert body["requires_approval"] is True
    assert body["risk_level"] == "high"
    assert isinstance(body.get("summary"), str) and body["summary"]
    assert body.get("approval_request_id")
    assert "decision" not in body or body["decision"] in ("pending", "pending_approval")


def test_action_details_of_a_pending_action_parse_in_the_sdk(
    platform: Platform, agent_key: str, agent_id: str
) -> None:
    client = make_client(platform, agent_key, agent_id)
    d = client.evaluate_action(
        action_type="s3.delete_bucket",
        resource="compat-details-bucket",
        parameters={"Bucket": "compat-details-bucket"},
        wait_for_decision=False,
    )
    assert d.decision == Decision.PENDING
    details = client.get_action_details(d.action_id)
    assert details.status == DecisionStatus.PENDING
    assert details.agent_id == agent_id


def test_high_action_pending_then_approved_by_approver(
    platform: Platform, agent_key: str, approver_key: str, agent_id: str
) -> None:
    """evaluate_action blocks, polling /status every 2 s, until a person approves."""
    client = make_client(platform, agent_key, agent_id)
    approved: list[str] = []
    errors: list[BaseException] = []

    def approver() -> None:
        try:
            pending = platform.wait_for_pending(
                agent_id, key=approver_key, timeout_s=30
            )
            aid = action_id_of(pending)
            platform.approve(aid, key=approver_key, comment="compat approve")
            approved.append(aid)
        except Exception as exc:  # noqa: BLE001 - reported in the main thread
            errors.append(exc)

    t = threading.Thread(target=approver, daemon=True)
    t.start()
    started = time.monotonic()
    d = client.evaluate_action(
        action_type="s3.delete_bucket",
        resource="compat-approve-bucket",
        parameters={"Bucket": "compat-approve-bucket"},
        wait_for_decision=True,
        timeout=45,
    )
    t.join(timeout=40)
    assert not errors, errors
    assert approved, "approver thread did not approve"
    assert d.decision == Decision.ALLOWED, (d.raw_status, d.reason)
    assert d.action_id == approved[0]
    assert d.status == "approved"
    assert time.monotonic() - started < 45

    # full record of a decided action parses in the SDK
    details = client.get_action_details(d.action_id)
    assert details.status == DecisionStatus.APPROVED
    assert details.agent_id == agent_id


def test_rejected_action_reads_denied(
    platform: Platform, agent_key: str, approver_key: str, agent_id: str
) -> None:
    client = make_client(platform, agent_key, agent_id)
    d = client.evaluate_action(
        action_type="ec2.terminate_instances",
        resource="i-0compat",
        parameters={"InstanceIds": ["i-0compat"]},
        wait_for_decision=False,
    )
    assert d.decision == Decision.PENDING, (d.raw_status, d.reason)
    platform.reject(d.action_id, key=approver_key, reason="not during business hours")

    final = client.wait_for_decision(d.action_id, timeout=20, poll_interval=0.5)
    assert final.decision == Decision.DENIED, final.raw_status
    assert final.raw_status == "denied"
    assert final.reason and "not during business hours" in final.reason

    status: dict[str, Any] = platform.action_status(d.action_id, key=agent_key)
    assert status["status"] == "denied"
    assert status.get("rejected_by")


def test_policy_forbid_is_denied_with_reason(
    platform: Platform, agent_key: str, agent_id: str, policies
) -> None:
    policies(
        f'@id("compat-no-put") @reason("Compat: uploads are frozen")\n'
        f'forbid(principal == Agent::"{agent_id}", action == Action::"s3:PutObject", resource);\n'
    )
    client = make_client(platform, agent_key, agent_id)
    started = time.monotonic()
    d = client.evaluate_action(
        action_type="s3.put_object",
        resource="compat-bucket",
        parameters={"Bucket": "compat-bucket", "Key": "x.txt"},
    )
    assert time.monotonic() - started < 5, "a denial must not wait for approval"
    assert d.decision == Decision.DENIED, (d.raw_status, d.reason)
    assert d.raw_status == "denied"
    assert d.reason and "uploads are frozen" in d.reason
    assert d.execution_allowed is False
    record = platform.request("GET", f"/api/v1/actions/{d.action_id}", key=agent_key)
    assert record.status_code == 200, record.text
    assert "compat-no-put" in record.json().get("policy_ids", []), record.text


def test_kill_switch_denies_then_unblock_allows(
    platform: Platform, agent_key: str, agent_id: str
) -> None:
    client = make_client(platform, agent_key, agent_id)
    first = client.evaluate_action(action_type="s3.list_buckets", resource="s3")
    assert first.decision == Decision.ALLOWED, (first.raw_status, first.reason)

    platform.block_agent(agent_id, reason="compat incident 42")
    blocked = client.evaluate_action(action_type="s3.list_buckets", resource="s3")
    assert blocked.decision == Decision.DENIED, (blocked.raw_status, blocked.reason)
    assert blocked.raw_status == "denied"
    assert blocked.reason and "compat incident 42" in blocked.reason

    platform.unblock_agent(agent_id)
    again = client.evaluate_action(action_type="s3.list_buckets", resource="s3")
    assert again.decision == Decision.ALLOWED, (again.raw_status, again.reason)


def test_action_type_without_aws_operation_is_scored_by_verb(
    platform: Platform, agent_key: str, agent_id: str
) -> None:
    client = make_client(platform, agent_key, agent_id)
    d = client.evaluate_action(
        action_type="database_write",
        resource="customer_db",
        parameters={"table": "customers"},
        wait_for_decision=False,
    )
    assert d.risk_level == RiskLevel.MEDIUM
    # MEDIUM is not auto-approved by default: a person decides
    assert d.decision == Decision.PENDING, (d.raw_status, d.reason)


def test_bad_key_raises_authentication_error(platform: Platform, agent_id: str) -> None:
    client = make_client(platform, "owkai_agent_" + "0" * 32, agent_id)
    with pytest.raises(AuthenticationError):
        client.evaluate_action(action_type="s3.get_object", resource="b")
