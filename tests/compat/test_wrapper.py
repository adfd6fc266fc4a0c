"""ascend-boto3-wrapper 1.2.1, unchanged, governing real boto3 calls against moto.

The wrapper takes its direct-API path (``_evaluate_via_api``) only when
``from ascend import AscendClient, AgentAction`` fails, i.e. when
ascend-ai-sdk is not installed.  This venv has the SDK (the SDK tests need
it), so the direct-path fixture hides it for the test's duration with
``sys.modules["ascend"] = None`` -- the standard way to make an import fail,
equivalent to ``pip install --no-deps ascend-boto3-wrapper``.  See
docs/compat.md section 2.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import Platform, action_id_of

ACTION_ID_RE = re.compile(r"Action ID: (act_[A-Za-z0-9_]+)")


def s3_client(moto_url: str):
    return boto3.client(
        "s3",
        endpoint_url=moto_url,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )


def bucket_exists(raw_s3, bucket: str) -> bool:
    try:
        raw_s3.head_bucket(Bucket=bucket)
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchBucket", "NotFound"):
            return False
        raise


@pytest.fixture
def make_governed(
    platform: Platform, agent_key: str, agent_id: str, moto_url: str, monkeypatch
) -> Iterator[Callable[..., SimpleNamespace]]:
    import ascend_boto3
    from ascend_boto3 import (
        disable_governance,
        enable_governance,
        is_governance_enabled,
    )

    assert ascend_boto3.__version__ == "1.2.1", ascend_boto3.__file__
    raw = s3_client(moto_url)  # created before enable_governance: not governed by 1.2.1

    def _make(direct_api: bool = True) -> SimpleNamespace:
        if direct_api:
            monkeypatch.setitem(sys.modules, "ascend", None)
        enable_governance(
            api_key=agent_key, base_url=platform.base_url, agent_id=agent_id
        )
        assert is_governance_enabled()
        return SimpleNamespace(s3=s3_client(moto_url), raw=raw, agent_id=agent_id)

    yield _make
    if is_governance_enabled():
        disable_governance()


def test_wrapper_package_is_the_pypi_release() -> None:
    import ascend_boto3

    assert ascend_boto3.__version__ == "1.2.1"
    assert "site-packages" in ascend_boto3.__file__, ascend_boto3.__file__


def test_wrapper_allowed_call_runs(platform: Platform, make_governed, policies) -> None:
    g = make_governed()
    bucket = f"{g.agent_id}-allowed"
    policies(
        '@id("compat-permit-create") @reason("Compat: bucket creation allowed")\n'
        f'permit(principal == Agent::"{g.agent_id}", action == Action::"s3:CreateBucket", '
        "resource);\n"
    )
    # MEDIUM for the wrapper: submitted to the platform, which allows it by policy
    g.s3.create_bucket(Bucket=bucket)
    assert bucket_exists(g.raw, bucket)

    actions = platform.list_actions(agent_id=g.agent_id)
    assert len(actions) == 1, actions
    assert actions[0]["status"] == "approved"


def test_wrapper_denied_call_raises(
    platform: Platform, make_governed, policies
) -> None:
    g = make_governed()
    bucket = f"{g.agent_id}-keep"
    g.raw.create_bucket(Bucket=bucket)
    policies(
        '@id("compat-no-delete") @reason("Compat: buckets are never deleted")\n'
        f'forbid(principal == Agent::"{g.agent_id}", action == Action::"s3:DeleteBucket", '
        "resource);\n"
    )
    with pytest.raises(PermissionError) as excinfo:
        g.s3.delete_bucket(Bucket=bucket)
    msg = str(excinfo.value)
    assert "s3.delete_bucket denied by Ascend governance" in msg
    # the wrapper shows the response's `summary` as the reason
    assert "buckets are never deleted" in msg, msg
    match = ACTION_ID_RE.search(msg)
    assert match, msg
    assert platform.action_status(match.group(1))["status"] == "denied"
    assert bucket_exists(g.raw, bucket), "a denied call must not reach AWS"


def test_wrapper_approved_then_repeated_call_runs_once(
    platform: Platform, approver_key: str, make_governed
) -> None:
    g = make_governed()
    bucket = f"{g.agent_id}-approve"
    g.raw.create_bucket(Bucket=bucket)

    # 1. HIGH: needs a person; 1.2.1 does not wait, it raises with the action id
    with pytest.raises(PermissionError) as excinfo:
        g.s3.delete_bucket(Bucket=bucket)
    match = ACTION_ID_RE.search(str(excinfo.value))
    assert match, str(excinfo.value)
    first_id = match.group(1)
    assert platform.action_status(first_id)["status"] == "pending_approval"
    assert bucket_exists(g.raw, bucket)

    # 2. a person approves it
    platform.approve(first_id, key=approver_key, comment="go ahead")

    # 3. the same call, repeated, is approved against that grant and runs
    g.s3.delete_bucket(Bucket=bucket)
    assert not bucket_exists(g.raw, bucket)

    # 4. the grant is used once: the next identical call needs approval again
    g.raw.create_bucket(Bucket=bucket)
    with pytest.raises(PermissionError) as excinfo2:
        g.s3.delete_bucket(Bucket=bucket)
    match2 = ACTION_ID_RE.search(str(excinfo2.value))
    assert match2, str(excinfo2.value)
    assert match2.group(1) != first_id
    assert bucket_exists(g.raw, bucket)
    pending = platform.list_actions(agent_id=g.agent_id, status="pending_approval")
    assert [action_id_of(a) for a in pending] == [match2.group(1)]


def test_wrapper_low_call_runs_without_asking_platform(
    platform: Platform, make_governed
) -> None:
    """1.2.1 auto-approves LOW locally (wrapper.py:161-168): no submit at all."""
    g = make_governed()
    g.s3.list_buckets()
    assert platform.list_actions(agent_id=g.agent_id) == []


def test_wrapper_with_sdk_installed_fails_closed_without_asking_platform(
    platform: Platform, make_governed, policies
) -> None:
    """Documents a client-side defect no server can fix (docs/compat.md §2.3).

    With ascend-ai-sdk 2.7.1 importable, 1.2.1 calls AscendClient(base_url=...),
    which 2.7.1 does not accept; the TypeError is treated as 'unreachable' and
    every MEDIUM+ call is denied locally.
    """
    g = make_governed(direct_api=False)
    bucket = f"{g.agent_id}-sdkpath"
    policies(
        f'permit(principal == Agent::"{g.agent_id}", action == Action::"s3:CreateBucket", '
        "resource);\n"
    )
    with pytest.raises(PermissionError, match="fail_mode=closed"):
        g.s3.create_bucket(Bucket=bucket)
    assert not bucket_exists(g.raw, bucket)
    assert platform.list_actions(agent_id=g.agent_id) == []
