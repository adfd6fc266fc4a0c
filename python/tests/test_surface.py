"""The public surface of DESIGN §7/§9 that needs no platform."""

import inspect
import logging
import subprocess
import sys
from pathlib import Path

import pytest

import ascend_boto3
from ascend_boto3 import (
    GovernanceConfig,
    GovernanceDenied,
    RiskLevel,
    classify_operation_risk,
    disable_governance,
    enable_governance,
    flush,
    is_governance_enabled,
)


def test_enable_governance_signature_is_the_documented_one():
    params = inspect.signature(enable_governance).parameters
    assert [(n, p.default) for n, p in params.items()] == [
        ("api_key", None),
        ("base_url", None),
        ("agent_id", None),
        ("agent_name", "AWS Boto3 Agent"),
        ("auto_approve_low_risk", True),
        ("auto_approve_medium_risk", False),
        ("bypass_services", None),
        ("bypass_operations", None),
        ("dry_run", False),
        ("approval_timeout", 300),
        ("fail_mode", None),
    ]
    assert inspect.signature(flush).parameters["timeout"].default == 5.0


def test_no_key_anywhere_is_a_value_error():
    with pytest.raises(ValueError, match="API key required"):
        enable_governance()
    assert not is_governance_enabled()


def test_classify_fixed_points():
    assert classify_operation_risk("s3", "delete_bucket", {"Bucket": "b"}) == (75, RiskLevel.HIGH)
    assert classify_operation_risk("s3", "get_object")[1] is RiskLevel.LOW
    assert classify_operation_risk("ec2", "describe_instances")[1] is RiskLevel.LOW
    assert classify_operation_risk("s3", "list_buckets")[1] is RiskLevel.LOW
    assert classify_operation_risk("s3", "put_object")[1] is RiskLevel.MEDIUM
    assert classify_operation_risk("dynamodb", "put_item")[1] is RiskLevel.MEDIUM
    assert classify_operation_risk("ec2", "terminate_instances")[1] is RiskLevel.HIGH
    assert classify_operation_risk("iam", "create_user")[1] is RiskLevel.CRITICAL
    assert classify_operation_risk("kms", "delete_key")[1] is RiskLevel.CRITICAL
    assert classify_operation_risk("nosuchservice", "frobnicate")[1] is RiskLevel.MEDIUM
    # any spelling
    assert classify_operation_risk("S3", "DeleteBucket", {"Bucket": "b"}) == (75, RiskLevel.HIGH)


def test_risk_level_is_a_str_enum():
    score, level = classify_operation_risk("s3", "delete_bucket", {"Bucket": "b"})
    assert f"Risk: {level.value} ({score})" == "Risk: high (75)"
    assert isinstance(level, str) and level == "high"
    assert [m.value for m in RiskLevel] == ["low", "medium", "high", "critical"]


def test_risk_classifier_module_reexports():
    from ascend_boto3.risk_classifier import RiskLevel as R
    from ascend_boto3.risk_classifier import classify_operation_risk as c

    assert R is RiskLevel and c is classify_operation_risk


def test_governance_denied_text_and_attributes():
    error = GovernanceDenied(
        "Bucket deletion requires manager approval.", "act_123xyz", 75, RiskLevel.HIGH
    )
    assert isinstance(error, PermissionError)
    assert str(error) == (
        "Operation denied by Ascend governance.\n"
        "Reason: Bucket deletion requires manager approval.\n"
        "Action ID: act_123xyz"
    )
    assert (error.action_id, error.reason, error.risk_score, error.risk_level) == (
        "act_123xyz",
        "Bucket deletion requires manager approval.",
        75,
        RiskLevel.HIGH,
    )


def test_public_names_and_typing_files():
    for name in (
        "enable_governance",
        "disable_governance",
        "is_governance_enabled",
        "flush",
        "classify_operation_risk",
        "RiskLevel",
        "GovernanceConfig",
        "GovernanceDenied",
    ):
        assert name in ascend_boto3.__all__
    from pathlib import Path

    package = Path(ascend_boto3.__file__).parent
    assert (package / "py.typed").exists()
    assert (package / "_native.pyi").exists()


def test_env_fallbacks_and_generated_agent_id(monkeypatch, caplog):
    # A closed loopback port: nothing is listening, nothing leaves the machine.
    monkeypatch.setenv("ASCEND_API_KEY", "owkai_agent_fromenv")
    monkeypatch.setenv("ASCEND_API_URL", "http://127.0.0.1:9/")
    with caplog.at_level(logging.INFO, logger="ascend_boto3"):
        config = enable_governance()
    assert isinstance(config, GovernanceConfig)
    assert config.api_key == "owkai_agent_fromenv"
    assert config.base_url == "http://127.0.0.1:9"
    assert config.agent_id.startswith("boto3-agent-")
    assert config.agent_id in caplog.text
    assert "owkai_agent_fromenv" not in repr(config)
    first = config.agent_id
    disable_governance()
    assert not is_governance_enabled()
    again = enable_governance(api_key="owkai_agent_other", base_url="http://127.0.0.1:9")
    assert again.agent_id == first, "the generated agent id is stable for the process"
    assert is_governance_enabled()


def test_default_base_url():
    assert GovernanceConfig(api_key="k").base_url == "https://pilot.owkai.app"


def test_invalid_fail_mode():
    with pytest.raises(ValueError):
        enable_governance(api_key="owkai_agent_x", base_url="http://127.0.0.1:9", fail_mode="maybe")


def test_the_overhead_bench_refuses_an_unoptimised_build():
    from ascend_boto3 import _native

    if _native.OPTIMIZED:
        pytest.skip("this install is the optimised build; the refusal needs the test build")
    bench = Path(__file__).resolve().parents[1] / "benches" / "bench_overhead.py"
    done = subprocess.run(
        [sys.executable, str(bench), "--quick"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "pip install ./python" in done.stderr, done.stderr
