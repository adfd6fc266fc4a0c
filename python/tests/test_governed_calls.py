"""Governed boto3 calls against moto, decided against the real `ascend serve`."""

import json
import logging
import threading
import time
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError
from conftest import bucket_exists

import ascend_boto3
from ascend_boto3 import GovernanceDenied, RiskLevel, enable_governance


def enable(platform, agent, **kwargs):
    key, agent_id = agent
    return enable_governance(api_key=key, base_url=platform.url, agent_id=agent_id, **kwargs)


def test_low_call_is_allowed_locally_with_no_sync_request(platform, agent, client, logs, metrics):
    enable(platform, agent)
    s3 = client("s3")
    before = ascend_boto3.stats()["sync_requests"]
    s3.list_buckets()
    assert ascend_boto3.stats()["sync_requests"] == before
    assert "[Ascend Governance] s3.list_buckets - Risk: LOW" in "\n".join(logs.messages())
    assert logs.messages()[-1].endswith("- APPROVED")
    [record] = metrics.all()
    assert record["decision"] == "approved" and record["dry_run"] is False
    assert record["action_id"].startswith("act_")
    assert record["agent_id"] == agent[1]
    assert {"service", "operation", "risk_score", "risk_level", "latency_ms", "reason"} <= set(
        record
    )
    assert (record["service"], record["operation"], record["risk_level"]) == (
        "s3",
        "list_buckets",
        "low",
    )


def test_policy_allowed_medium_call_makes_no_sync_request(
    platform, agent, client, policies, bucket
):
    policies('@id("puts-ok") permit(principal, action == Action::"s3:PutObject", resource);')
    enable(platform, agent)
    s3 = client("s3")
    before = ascend_boto3.stats()["sync_requests"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"hello")
    assert ascend_boto3.stats()["sync_requests"] == before
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"hello"
    assert platform.actions(agent[1], "approved") == []


def test_policy_forbid_denies_locally(platform, agent, client, policies, bucket, logs, metrics):
    policies(
        '@id("no-deletes") @reason("Bucket deletion requires manager approval.")\n'
        'forbid(principal, action == Action::"s3:DeleteBucket", resource);'
    )
    enable(platform, agent)
    s3 = client("s3")
    with pytest.raises(GovernanceDenied) as denied:
        s3.delete_bucket(Bucket=bucket)
    error = denied.value
    assert isinstance(error, PermissionError)
    assert error.reason == "Bucket deletion requires manager approval."
    assert error.risk_score == 75 and error.risk_level is RiskLevel.HIGH
    assert str(error) == (
        "Operation denied by Ascend governance.\n"
        "Reason: Bucket deletion requires manager approval.\n"
        f"Action ID: {error.action_id}"
    )
    assert error.action_id.startswith("act_")
    assert "[Ascend Governance] s3.delete_bucket - Risk: HIGH (75) - DENIED" in logs.messages()
    assert metrics.all()[-1]["decision"] == "denied"
    assert bucket_exists(s3, bucket)


def approve_when_pending(platform, agent_id, verb="approve", body=None):
    result = {}

    def run():
        try:
            action = platform.wait_pending(agent_id)
            result["id"] = action["id"]
            result["at"] = time.monotonic()
            platform.admin.json("POST", f"/api/v1/actions/{action['id']}/{verb}", body or {})
        except BaseException as error:  # reported by the test
            result["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def test_approval_from_another_thread_deletes_the_bucket(
    platform, agent, client, bucket, logs, metrics
):
    enable(platform, agent, approval_timeout=30)
    s3 = client("s3")
    thread, result = approve_when_pending(platform, agent[1], "approve", {"comment": "ok"})
    s3.delete_bucket(Bucket=bucket)
    thread.join(30)
    assert "error" not in result
    assert not bucket_exists(s3, bucket)
    assert "[Ascend Governance] s3.delete_bucket - Risk: HIGH (75) - APPROVED" in logs.messages()
    record = metrics.all()[-1]
    assert record["decision"] == "approved" and record["action_id"] == result["id"]
    # the outcome of a platform-decided call is reported to the platform
    assert ascend_boto3.flush(10.0)
    action = platform.admin.json("GET", f"/api/v1/actions/{result['id']}")
    assert action["result"]["status"] == "succeeded", action


def test_rejection_keeps_the_bucket(platform, agent, client, bucket, metrics):
    enable(platform, agent, approval_timeout=30)
    s3 = client("s3")
    thread, result = approve_when_pending(platform, agent[1], "reject", {"reason": "not today"})
    with pytest.raises(GovernanceDenied) as denied:
        s3.delete_bucket(Bucket=bucket)
    thread.join(30)
    assert denied.value.action_id == result["id"]
    assert "not today" in denied.value.reason
    assert bucket_exists(s3, bucket)
    assert metrics.all()[-1]["decision"] == "denied"


def test_approval_timeout_denies(platform, agent, client, bucket):
    enable(platform, agent, approval_timeout=1)
    s3 = client("s3")
    started = time.monotonic()
    with pytest.raises(GovernanceDenied) as denied:
        s3.delete_bucket(Bucket=bucket)
    assert time.monotonic() - started < 10
    assert "timed out" in denied.value.reason
    assert bucket_exists(s3, bucket)


def test_approval_timeout_zero_raises_at_once_then_runs_once_after_approval(
    platform, agent, client, bucket, logs, metrics
):
    enable(platform, agent, approval_timeout=0)
    s3 = client("s3")
    with pytest.raises(GovernanceDenied) as pending:
        s3.delete_bucket(Bucket=bucket)
    assert pending.value.pending
    action_id = pending.value.action_id
    assert action_id.startswith("act_")
    assert metrics.all()[-1]["decision"] == "pending"
    assert "[Ascend Governance] s3.delete_bucket - Risk: HIGH (75) - PENDING" in logs.messages()
    platform.admin.json("POST", f"/api/v1/actions/{action_id}/approve", {})
    s3.delete_bucket(Bucket=bucket)  # the grant, once
    assert not bucket_exists(s3, bucket)
    with pytest.raises(GovernanceDenied) as again:
        s3.delete_bucket(Bucket=bucket)
    assert again.value.pending, "the grant is used once"


def test_clients_created_before_enabling_are_governed(platform, agent, client, metrics):
    s3 = client("s3")  # before
    session_client = client("sqs", session=boto3.session.Session())
    enable(platform, agent)
    s3.list_buckets()
    session_client.list_queues()
    names = [(r["service"], r["operation"]) for r in metrics.all()]
    assert names == [("s3", "list_buckets"), ("sqs", "list_queues")]


def test_resources_are_governed(platform, agent, moto_url, bucket, metrics):
    enable(platform, agent)
    s3 = boto3.resource("s3", endpoint_url=moto_url, region_name="us-east-1")
    keys = [o.key for o in s3.Bucket(bucket).objects.all()]
    assert keys == []
    assert [r["operation"] for r in metrics.all()] == ["list_objects"]


def test_paginators_govern_each_page_once(platform, agent, client, bucket, policies, metrics):
    policies('@id("puts-ok") permit(principal, action == Action::"s3:PutObject", resource);')
    enable(platform, agent)
    s3 = client("s3")
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
    before = len(metrics.all())
    paginator = s3.get_paginator("list_objects_v2")  # a local helper: not governed
    assert len(metrics.all()) == before
    pages = list(paginator.paginate(Bucket=bucket, PaginationConfig={"PageSize": 2}))
    assert len(pages) == 3
    records = metrics.all()[before:]
    assert [r["operation"] for r in records] == ["list_objects_v2"] * 3
    assert len({r["action_id"] for r in records}) == 3


def test_waiters_are_governed(platform, agent, client, bucket, metrics):
    enable(platform, agent)
    s3 = client("s3")
    s3.get_waiter("bucket_exists").wait(Bucket=bucket, WaiterConfig={"Delay": 1, "MaxAttempts": 3})
    assert [r["operation"] for r in metrics.all()] == ["head_bucket"]


def test_local_helpers_are_not_governed(platform, agent, client, bucket, metrics):
    enable(platform, agent)
    s3 = client("s3")
    url = s3.generate_presigned_url("delete_bucket", Params={"Bucket": bucket})
    assert bucket in url
    assert s3.can_paginate("list_objects_v2")
    s3.get_paginator("list_objects_v2")
    client("ec2")  # client creation
    assert metrics.all() == []


def test_each_call_is_governed_exactly_once(platform, agent, client, metrics, logs):
    enable(platform, agent)
    s3 = client("s3")
    s3.list_buckets()
    s3.list_buckets()
    records = metrics.all()
    assert len(records) == 2 and records[0]["action_id"] != records[1]["action_id"]
    assert sum("[Ascend Governance] s3.list_buckets" in m for m in logs.messages()) == 2


def test_ten_threads_at_once(platform, agent, client, bucket, metrics):
    enable(platform, agent)
    errors = []

    def work():
        try:
            s3 = client("s3")
            s3.list_objects_v2(Bucket=bucket)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    records = metrics.all()
    assert len(records) == 10
    assert len({r["action_id"] for r in records}) == 10


def test_ten_threads_waiting_for_approval_at_once(platform, agent, client, metrics):
    enable(platform, agent, approval_timeout=30)
    names = [f"b-{uuid.uuid4().hex[:10]}" for _ in range(10)]
    governor, ascend_boto3._governance._governor = ascend_boto3._governance._governor, None
    for name in names:
        client("s3").create_bucket(Bucket=name)
    ascend_boto3._governance._governor = governor
    errors = []

    def work(name):
        try:
            client("s3").delete_bucket(Bucket=name)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in names]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    approved = set()
    while len(approved) < 10 and time.monotonic() < deadline:
        for action in platform.actions(agent[1]):
            if action["id"] not in approved:
                platform.admin.json("POST", f"/api/v1/actions/{action['id']}/approve", {})
                approved.add(action["id"])
        time.sleep(0.05)
    for t in threads:
        t.join(30)
    assert errors == []
    s3 = client("s3")
    assert not any(bucket_exists(s3, n) for n in names)


def test_dry_run_executes_and_logs(platform, agent, client, bucket, logs, metrics):
    enable(platform, agent, dry_run=True)
    s3 = client("s3")
    s3.delete_bucket(Bucket=bucket)  # needs approval, but dry run lets it through
    assert not bucket_exists(s3, bucket)
    assert "[DRY RUN] Would execute: s3.delete_bucket" in logs.messages()
    record = metrics.all()[-1]
    assert record["dry_run"] is True and record["decision"] in ("approved", "denied", "pending")


def test_bypass_takes_any_iterable_and_records_nothing(platform, agent, client, metrics, logs):
    for bypass in ({"S3"}, ("s3",), ["s3"]):
        enable(platform, agent, bypass_services=bypass, bypass_operations=("sqs.ListQueues",))
        client("s3").list_buckets()
        client("sqs").list_queues()
        assert metrics.all() == []
    assert not [m for m in logs.messages() if "[Ascend Governance] s3." in m]


def test_kill_switch_reaches_a_running_client(platform, agent, client, metrics):
    enable(platform, agent)
    s3 = client("s3")
    s3.list_buckets()
    platform.admin.json("POST", f"/api/v1/agents/{agent[1]}/block", {"reason": "incident 42"})
    deadline = time.monotonic() + 5
    while not ascend_boto3.stats()["blocked"] and time.monotonic() < deadline:
        time.sleep(0.01)
    blocked_after = time.monotonic() - (deadline - 5)
    with pytest.raises(GovernanceDenied) as denied:
        s3.list_buckets()
    assert "incident 42" in denied.value.reason
    assert blocked_after < 2.0, blocked_after  # generous bound; typically a few ms
    platform.admin.json("POST", f"/api/v1/agents/{agent[1]}/unblock", {})
    deadline = time.monotonic() + 5
    while ascend_boto3.stats()["blocked"] and time.monotonic() < deadline:
        time.sleep(0.01)
    s3.list_buckets()


def test_audit_events_arrive_with_outcomes(platform, agent, client, bucket, metrics):
    enable(platform, agent)
    s3 = client("s3")
    s3.list_objects_v2(Bucket=bucket)
    with pytest.raises(ClientError):
        s3.list_objects_v2(Bucket="no-such-bucket-" + uuid.uuid4().hex[:6])
    ok_id, failed_id = [r["action_id"] for r in metrics.all()]
    assert ascend_boto3.flush(10.0)
    events = {e["action_id"]: e for e in platform.audit(agent[1])}
    assert ok_id in events and failed_id in events
    text = str(events[failed_id])
    assert "NoSuchBucket" in text and "failed" in text
    assert "succeeded" in str(events[ok_id])


def test_forked_child_governs_with_its_own_governor(platform, agent, client, bucket):
    import os

    enable(platform, agent)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: govern a call, flush, report its action id
        code = 1
        try:
            records = []
            handler = logging.Handler()
            handler.emit = lambda r: records.append(r.getMessage())
            logging.getLogger("ascend_boto3.metrics").addHandler(handler)
            logging.getLogger("ascend_boto3.metrics").setLevel(logging.INFO)
            client("s3").list_objects_v2(Bucket=bucket)
            if ascend_boto3.flush(10.0):
                os.write(write, json.loads(records[-1])["action_id"].encode())
                code = 0
        finally:
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    action_id = os.read(read, 100).decode()
    os.close(read)
    assert status == 0 and action_id.startswith("act_")
    assert action_id in [e["action_id"] for e in platform.audit(agent[1])]


def _mp_child(moto_url, bucket, out):
    records = []
    handler = logging.Handler()
    handler.emit = lambda r: records.append(json.loads(r.getMessage()))
    metrics = logging.getLogger("ascend_boto3.metrics")
    metrics.addHandler(handler)
    metrics.setLevel(logging.INFO)
    boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1").list_objects_v2(
        Bucket=bucket
    )
    out.put(records[-1]["action_id"])  # no flush: the worker's exit must send it


def test_multiprocessing_fork_worker_events_arrive(platform, agent, moto_url, bucket):
    import multiprocessing

    enable(platform, agent)
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    worker = context.Process(target=_mp_child, args=(moto_url, bucket, out))
    worker.start()
    action_id = out.get(timeout=30)
    worker.join(30)
    assert worker.exitcode == 0
    assert action_id in [e["action_id"] for e in platform.audit(agent[1])]
