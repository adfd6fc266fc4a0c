"""The platform away: fail modes, the circuit breaker, the disk queue across a platform
restart, and the flush at interpreter exit."""

import http.server
import json
import logging
import os
import subprocess
import sys
import threading
import time

import pytest
from conftest import bucket_exists, free_port

import ascend_boto3
from ascend_boto3 import GovernanceDenied, enable_governance

WARN_DENY = "Governance evaluation failed, denying high-risk operation"
WARN_ALLOW_LOW = "Governance evaluation failed, allowing low-risk operation"


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


def enable_down(**kwargs):
    return enable_governance(
        api_key="owkai_agent_down", base_url=dead_url(), agent_id="down-agent", **kwargs
    )


def test_down_low_fails_open_with_a_warning(client, logs, metrics):
    enable_down()
    client("s3").list_buckets()
    assert WARN_ALLOW_LOW in logs.messages(logging.WARNING)
    record = metrics.all()[-1]
    assert record["decision"] == "approved" and record["action_id"].startswith("act_")


def test_down_medium_fails_open_with_a_warning(client, logs, bucket):
    enable_down()
    client("s3").put_object(Bucket=bucket, Key="k", Body=b"x")
    assert "Governance evaluation failed, allowing medium-risk operation" in logs.messages(
        logging.WARNING
    )


def test_down_high_fails_closed(client, bucket, logs, metrics):
    enable_down()
    s3 = client("s3")
    with pytest.raises(GovernanceDenied) as denied:
        s3.delete_bucket(Bucket=bucket)
    assert denied.value.action_id.startswith("act_")
    assert WARN_DENY in logs.messages(logging.WARNING)
    assert "[Ascend Governance] s3.delete_bucket - Risk: HIGH (75) - DENIED" in logs.messages()
    assert metrics.all()[-1]["decision"] == "denied"
    assert bucket_exists(s3, bucket)


def test_down_critical_fails_closed(client, logs):
    enable_down()
    with pytest.raises(GovernanceDenied):
        client("iam").create_user(UserName="u1")
    assert WARN_DENY in logs.messages(logging.WARNING)


def test_fail_mode_open_overrides(client, bucket, logs):
    enable_down(fail_mode="open")
    s3 = client("s3")
    s3.delete_bucket(Bucket=bucket)
    assert not bucket_exists(s3, bucket)
    assert "Governance evaluation failed, allowing high-risk operation" in logs.messages(
        logging.WARNING
    )


def test_fail_mode_closed_overrides(client, logs):
    enable_down(fail_mode="closed")
    with pytest.raises(GovernanceDenied):
        client("s3").list_buckets()
    assert "Governance evaluation failed, denying low-risk operation" in logs.messages(
        logging.WARNING
    )


def test_outage_does_not_cost_a_request_per_call(client, bucket):
    enable_down()
    s3 = client("s3")
    for _ in range(3):
        with pytest.raises(GovernanceDenied):
            s3.delete_bucket(Bucket=bucket)
    stats = ascend_boto3.stats()
    assert stats["circuit_open"]
    before = stats["sync_requests"]
    for _ in range(20):
        with pytest.raises(GovernanceDenied):
            s3.delete_bucket(Bucket=bucket)
    assert ascend_boto3.stats()["sync_requests"] == before, "the breaker answers while open"


class Erroring(http.server.BaseHTTPRequestHandler):
    """A platform that answers 503 to everything (a real HTTP server on loopback)."""

    def _fail(self):
        body = json.dumps({"detail": "down for maintenance", "error_code": "UNAVAILABLE"})
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    do_GET = do_POST = _fail

    def log_message(self, *args):
        pass


def test_erroring_platform_fails_by_level(client, bucket, logs):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Erroring)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        enable_governance(
            api_key="owkai_agent_x", base_url=f"http://127.0.0.1:{server.server_port}"
        )
        s3 = client("s3")
        s3.list_buckets()
        with pytest.raises(GovernanceDenied):
            s3.delete_bucket(Bucket=bucket)
        warnings = logs.messages(logging.WARNING)
        assert WARN_ALLOW_LOW in warnings and WARN_DENY in warnings
    finally:
        ascend_boto3.disable_governance(timeout=0.5)
        server.shutdown()
        server.server_close()


def test_platform_restart_mid_run_loses_and_duplicates_nothing(
    platform, agent, client, bucket, metrics
):
    key, agent_id = agent
    enable_governance(api_key=key, base_url=platform.url, agent_id=agent_id)
    s3 = client("s3")
    s3.list_objects_v2(Bucket=bucket)
    platform.stop()
    try:
        for _ in range(30):
            s3.list_objects_v2(Bucket=bucket)  # decided locally with the bundle it has
        deadline = time.monotonic() + 15
        while ascend_boto3.stats()["on_disk"] < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ascend_boto3.stats()["on_disk"] >= 30, ascend_boto3.stats()
        assert not ascend_boto3.flush(0.5), "nothing can be uploaded while it is down"
    finally:
        platform.start()
    assert ascend_boto3.flush(30.0)
    ids = [r["action_id"] for r in metrics.all()]
    assert len(ids) == 31 and len(set(ids)) == 31
    seen = [e["action_id"] for e in platform.audit(agent_id)]
    assert sorted(a for a in seen if a in ids) == sorted(ids), "every event arrived once"
    assert ascend_boto3.stats()["on_disk"] == 0


def test_disk_queue_limit_from_the_environment(client, tmp_path, monkeypatch):
    queue = tmp_path / "q-limit"
    monkeypatch.setenv("ASCEND_QUEUE_DIR", str(queue))
    monkeypatch.setenv("ASCEND_DISK_QUEUE_LIMIT", "4096")
    config = enable_down(fail_mode="closed")
    assert config.disk_queue_limit == 4096
    s3 = client("s3")
    calls = 60
    for i in range(calls):
        with pytest.raises(GovernanceDenied):
            s3.delete_bucket(Bucket=f"limit-{i}")
    deadline = time.monotonic() + 15
    stats = ascend_boto3.stats()
    while stats["events_spilled"] + stats["events_dropped"] < calls:
        assert time.monotonic() < deadline, stats
        time.sleep(0.05)
        stats = ascend_boto3.stats()
    assert stats["events_spilled"] + stats["events_dropped"] == calls, stats
    assert stats["events_spilled"] > 0 and stats["events_dropped"] > 0, stats
    size = sum(p.stat().st_size for p in queue.glob("*.jsonl"))
    assert 0 < size <= 4096, size


@pytest.mark.parametrize("text", ["lots", "0", "-5", "1.5"])
def test_bad_disk_queue_limit_is_refused_and_keeps_governance(text, monkeypatch):
    before = enable_down()
    monkeypatch.setenv("ASCEND_DISK_QUEUE_LIMIT", text)
    with pytest.raises(ValueError, match="ASCEND_DISK_QUEUE_LIMIT must be a whole number"):
        enable_down(fail_mode="closed")
    assert ascend_boto3.get_config() is before, "the running settings are kept"


SCRIPT = """
import json, logging, sys, boto3
from ascend_boto3 import enable_governance
records = []
class Keep(logging.Handler):
    def emit(self, r): records.append(json.loads(r.getMessage()))
m = logging.getLogger("ascend_boto3.metrics"); m.setLevel(logging.INFO); m.addHandler(Keep())
enable_governance(api_key=sys.argv[1], base_url=sys.argv[2], agent_id=sys.argv[3])
boto3.client("s3", endpoint_url=sys.argv[4], region_name="us-east-1").list_buckets()
print(records[0]["action_id"], flush=True)
"""


def test_interpreter_exit_flushes(platform, agent, moto_url, tmp_path):
    key, agent_id = agent
    env = dict(os.environ, ASCEND_QUEUE_DIR=str(tmp_path / "q-exit"))
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, key, platform.url, agent_id, moto_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    action_id = out.stdout.strip()
    assert action_id.startswith("act_")
    assert action_id in [e["action_id"] for e in platform.audit(agent_id)]


def test_queue_left_by_a_dead_process_is_sent_by_the_next(platform, agent, moto_url, tmp_path):
    key, agent_id = agent
    queue = tmp_path / "q-orphan"
    env = dict(os.environ, ASCEND_QUEUE_DIR=str(queue))
    # The first process runs while the platform is down: its event stays on disk.
    platform.stop()
    try:
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT, key, platform.url, agent_id, moto_url],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        platform.start()
    assert out.returncode == 0, out.stderr
    action_id = out.stdout.strip()
    assert any(queue.glob("*.jsonl")), "the event waits on disk"
    # The next process with the same platform and key sends it.
    os.environ["ASCEND_QUEUE_DIR"] = str(queue)
    enable_governance(api_key=key, base_url=platform.url, agent_id=f"{agent_id}-2")
    assert ascend_boto3.flush(15.0)
    assert action_id in [e["action_id"] for e in platform.audit(agent_id)]
    assert not [p for p in queue.glob("*.jsonl") if p.stat().st_size > 0]


def test_unique_ids_per_call_also_across_fork():
    ids = {ascend_boto3._native.new_action_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(i.startswith("act_") for i in ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        child = ",".join(ascend_boto3._native.new_action_id() for _ in range(200))
        os.write(write, child.encode())
        os._exit(0)
    os.close(write)
    mine = {ascend_boto3._native.new_action_id() for _ in range(200)}
    os.waitpid(pid, 0)
    with os.fdopen(read) as f:
        theirs = set(f.read().split(","))
    assert len(theirs) == 200 and not (mine & theirs)


def test_rejected_key_fails_by_level(platform, client, bucket, logs):
    enable_governance(api_key="owkai_agent_notakey", base_url=platform.url, agent_id="badkey")
    s3 = client("s3")
    s3.list_buckets()  # LOW: allowed, with the warning
    with pytest.raises(GovernanceDenied):
        s3.delete_bucket(Bucket=bucket)
    warnings = logs.messages(logging.WARNING)
    assert WARN_ALLOW_LOW in warnings and WARN_DENY in warnings
    assert bucket_exists(s3, bucket)


def test_platform_stopped_for_a_while_under_a_running_agent_thread(
    platform, agent, client, bucket, metrics, logs
):
    """An agent thread keeps calling while the platform is stopped for seconds (not just
    restarted): LOW calls run (decided locally from the cached bundle), HIGH calls are
    denied by fail mode closed, every audit event waits on disk (not in memory), and all
    of them arrive once after the platform is back — none lost, none stored twice."""
    key, agent_id = agent
    enable_governance(api_key=key, base_url=platform.url, agent_id=agent_id, approval_timeout=0)
    s3 = client("s3")
    s3.list_objects_v2(Bucket=bucket)  # the bundle is in place
    stop, away = threading.Event(), threading.Event()
    calls, errors = [], []  # (during the outage, "low"/"high", what happened)

    def agent_loop():
        for i in range(5000):
            if stop.is_set():
                return
            during = away.is_set()
            try:
                if i % 4 == 0:
                    try:
                        s3.delete_bucket(Bucket=bucket)
                        calls.append((during, "high", "executed"))
                    except GovernanceDenied as denied:
                        calls.append((during, "high", "pending" if denied.pending else "denied"))
                else:
                    s3.list_objects_v2(Bucket=bucket)
                    calls.append((during, "low", "executed"))
            except Exception as error:  # anything else fails the test below
                errors.append(repr(error))
                return
            time.sleep(0.005)

    def wait_calls(n: int) -> None:
        deadline = time.monotonic() + 30
        while len(calls) < n and time.monotonic() < deadline and not errors:
            time.sleep(0.01)

    thread = threading.Thread(target=agent_loop, daemon=True)
    thread.start()
    wait_calls(20)
    platform.stop()
    away.set()
    samples = []
    try:
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            stats = ascend_boto3.stats()
            samples.append((stats["in_memory"], stats["on_disk"]))
            time.sleep(0.05)
        away.clear()
    finally:
        platform.start()
    wait_calls(len(calls) + 20)
    stop.set()
    thread.join(30)
    assert not thread.is_alive() and not errors, errors
    assert ascend_boto3.flush(30.0), ascend_boto3.stats()

    during = [c for c in calls if c[0]]
    low = [c for c in during if c[1] == "low"]
    high = [c for c in during if c[1] == "high"]
    assert len(low) >= 30 and high, f"{len(low)} LOW and {len(high)} HIGH calls while away"
    assert all(c[2] == "executed" for c in low), "LOW runs on the cached bundle"
    assert all(c[2] == "denied" for c in high), "HIGH is denied by fail mode closed"
    assert WARN_DENY in logs.messages(logging.WARNING)
    # While away, events go to disk within an upload tick: memory does not grow with the
    # outage, the disk queue does.
    max_memory = max(m for m, _ in samples)
    max_disk = max(d for _, d in samples)
    assert max_memory <= 50, samples
    assert max_disk >= len(during) // 2, (max_disk, len(during))

    ids = [r["action_id"] for r in metrics.all()]
    assert len(ids) == len(set(ids)) == len(calls) + 1
    stored = {}
    for event in platform.audit(agent_id):
        stored.setdefault((event["action_id"], event["kind"]), []).append(event)
    lost = [i for i in ids if (i, "local") not in stored and (i, "decision") not in stored]
    duplicated = [k for k, events in stored.items() if len(events) > 1]
    print(
        f"FIGURE python-agent calls {len(calls)}  during the outage {len(during)} "
        f"({len(low)} LOW ran, {len(high)} HIGH denied by fail mode)  lost {len(lost)}  "
        f"duplicated {len(duplicated)}  max in memory {max_memory}  max on disk {max_disk}"
    )
    assert not lost and not duplicated, (lost[:5], duplicated[:5])
    assert ascend_boto3.stats()["on_disk"] == 0 and ascend_boto3.stats()["in_memory"] == 0
