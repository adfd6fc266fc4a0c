"""The botocore glue: one patch of ``BaseClient._make_api_call`` governs every API call
of every client (created before or after enabling, any session, paginators, waiters,
boto3 resources, any thread) exactly once, and leaves local helpers that send nothing
(``generate_presigned_url``, ``get_paginator``, ``can_paginate``) and client creation
alone. Decisions, HTTP and queues are in the native governor."""

import atexit
import logging
import multiprocessing.util
import os
import threading
import uuid
from typing import Any, Iterable, Optional

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from ascend_boto3 import _native
from ascend_boto3.config import DEFAULT_BASE_URL, GovernanceConfig
from ascend_boto3.exceptions import GovernanceDenied
from ascend_boto3.risk_classifier import RiskLevel

logger = logging.getLogger("ascend_boto3")
metrics_logger = logging.getLogger("ascend_boto3.metrics")

_INFO = logging.INFO
_WARNING = logging.WARNING

_lock = threading.RLock()
_local = threading.local()
_governor: Optional[Any] = None
_config: Optional[GovernanceConfig] = None
_original_make_api_call = BaseClient._make_api_call
_process_agent_id: Optional[str] = None


def _default_agent_id() -> str:
    global _process_agent_id
    if _process_agent_id is None:
        _process_agent_id = f"boto3-agent-{uuid.uuid4().hex[:8]}"
    return _process_agent_id


def _strings(values: Optional[Iterable[str]], what: str) -> frozenset:
    if values is None:
        return frozenset()
    if isinstance(values, str):
        values = [values]
    out = []
    for value in values:
        if not isinstance(value, str):
            raise TypeError(f"{what} must hold strings, not {type(value).__name__}")
        out.append(value.strip())
    return frozenset(out)


def _report(ruling: Any, governor: Any) -> None:
    """The log lines and the metrics record of one governed call."""
    if ruling.warning:
        logger.warning(ruling.warning)
    level = _WARNING if ruling.decision == "denied" else _INFO
    if logger.isEnabledFor(level):
        logger.log(level, ruling.log_line())
    if ruling.dry_run and logger.isEnabledFor(_INFO):
        logger.info("[DRY RUN] Would execute: %s", ruling.name)
    if metrics_logger.isEnabledFor(_INFO):
        metrics_logger.info(ruling.metrics_json(governor.agent_id))


def _governed_make_api_call(self, operation_name, api_params):
    governor = _governor
    if governor is None or getattr(_local, "busy", False):
        # Not enabled, or a call botocore makes while sending a governed one (an S3
        # region redirect's head_bucket): governed once, as the outer call.
        return _original_make_api_call(self, operation_name, api_params)
    meta = self.meta
    ruling = governor.check(
        meta.service_model.service_name, operation_name, api_params, meta.region_name
    )
    if ruling is None:  # bypassed: no decision, no record
        return _original_make_api_call(self, operation_name, api_params)
    _report(ruling, governor)
    if not ruling.executes:
        raise GovernanceDenied(
            ruling.reason,
            ruling.action_id,
            ruling.risk_score,
            RiskLevel(ruling.risk_level),
            pending=ruling.decision == "pending",
            operation=ruling.name,
        )
    _local.busy = True
    try:
        result = _original_make_api_call(self, operation_name, api_params)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code") or type(error).__name__
        governor.finish(ruling, str(code))
        raise
    except BaseException as error:
        governor.finish(ruling, type(error).__name__)
        raise
    finally:
        _local.busy = False
    governor.finish(ruling, None)
    return result


_governed_make_api_call.__wrapped__ = _original_make_api_call  # type: ignore[attr-defined]


def _native_governor(config: GovernanceConfig):
    return _native.NativeGovernor(
        config.api_key,
        config.base_url,
        config.agent_id,
        config.agent_name,
        auto_approve_low_risk=config.auto_approve_low_risk,
        auto_approve_medium_risk=config.auto_approve_medium_risk,
        bypass_services=sorted(config.bypass_services),
        bypass_operations=sorted(config.bypass_operations),
        dry_run=config.dry_run,
        approval_timeout=config.approval_timeout,
        fail_mode=config.fail_mode,
        queue_dir=config.queue_dir,
        disk_queue_limit=config.disk_queue_limit,
    )


def _disk_queue_limit() -> Optional[int]:
    text = os.environ.get("ASCEND_DISK_QUEUE_LIMIT", "").strip()
    if not text:
        return None
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if limit <= 0:
        raise ValueError(
            "ASCEND_DISK_QUEUE_LIMIT must be a whole number of bytes above 0 "
            f"(e.g. 67108864 for 64 MiB), not {text!r}"
        )
    return limit


def enable_governance(
    api_key: Optional[str] = None,
    base_url: Optional[str] = None,
    agent_id: Optional[str] = None,
    agent_name: str = "AWS Boto3 Agent",
    auto_approve_low_risk: bool = True,
    auto_approve_medium_risk: bool = False,
    bypass_services: Optional[Iterable[str]] = None,
    bypass_operations: Optional[Iterable[str]] = None,
    dry_run: bool = False,
    approval_timeout: float = 300,
    fail_mode: Optional[str] = None,
) -> GovernanceConfig:
    """Govern every boto3/botocore call of this process from now on.

    ``api_key`` falls back to ``ASCEND_API_KEY``; ``base_url`` to ``ASCEND_API_URL``, then
    ``https://pilot.owkai.app``. Calling it again replaces the previous settings."""
    global _governor, _config
    api_key = api_key or os.environ.get("ASCEND_API_KEY")
    if not api_key:
        raise ValueError(
            "API key required: pass enable_governance(api_key=...) or set ASCEND_API_KEY"
        )
    base_url = (base_url or os.environ.get("ASCEND_API_URL") or DEFAULT_BASE_URL).rstrip("/")
    if fail_mode is not None and fail_mode not in ("open", "closed"):
        raise ValueError(f'fail_mode must be "open", "closed" or None, not {fail_mode!r}')
    if approval_timeout is None or approval_timeout < 0:
        raise ValueError("approval_timeout must be a number of seconds >= 0")
    disk_queue_limit = _disk_queue_limit()
    config = GovernanceConfig(
        api_key=api_key,
        base_url=base_url,
        agent_id=agent_id or _default_agent_id(),
        agent_name=agent_name,
        auto_approve_low_risk=bool(auto_approve_low_risk),
        auto_approve_medium_risk=bool(auto_approve_medium_risk),
        bypass_services=_strings(bypass_services, "bypass_services"),
        bypass_operations=_strings(bypass_operations, "bypass_operations"),
        dry_run=bool(dry_run),
        approval_timeout=float(approval_timeout),
        fail_mode=fail_mode,
        queue_dir=os.environ.get("ASCEND_QUEUE_DIR") or None,
        disk_queue_limit=disk_queue_limit,
    )
    governor = _native_governor(config)
    with _lock:
        previous = _governor
        _governor, _config = governor, config
        if BaseClient._make_api_call is not _governed_make_api_call:
            BaseClient._make_api_call = _governed_make_api_call
    if previous is not None:
        previous.close(5.0)
    ready = governor.wait_ready(2.0)
    logger.info(
        "[Ascend Governance] Governance enabled: agent_id=%s agent_name=%r platform=%s%s",
        config.agent_id,
        config.agent_name,
        config.base_url,
        "" if ready else " (policy bundle not received yet)",
    )
    return config


def disable_governance(timeout: float = 5.0) -> None:
    """Stop governing; queued audit events are flushed first (up to ``timeout`` s)."""
    global _governor, _config
    with _lock:
        governor, _governor, _config = _governor, None, None
        if BaseClient._make_api_call is _governed_make_api_call:
            BaseClient._make_api_call = _original_make_api_call
    if governor is not None:
        governor.close(timeout)
        logger.info("[Ascend Governance] Governance disabled")


def is_governance_enabled() -> bool:
    return _governor is not None


def get_config() -> Optional[GovernanceConfig]:
    """The settings in force, or None."""
    return _config


def flush(timeout: float = 5.0) -> bool:
    """Upload queued audit events, waiting up to ``timeout`` s. True when none are left."""
    governor = _governor
    return True if governor is None else bool(governor.flush(timeout))


def stats() -> dict:
    """Counters of the governor (sync requests, events queued/uploaded/on disk …)."""
    governor = _governor
    return {} if governor is None else dict(governor.stats())


# The governor's threads do not survive fork(): a forked child (multiprocessing's default
# on Linux) gets a governor of its own with the same settings. The parent's copy is kept
# (not dropped) because its runtime's threads do not exist in the child.
_orphans = []


def _after_fork_in_child() -> None:
    global _governor, _lock
    _lock = threading.RLock()
    if _governor is not None and _config is not None:
        _orphans.append(_governor)
        try:
            _governor = _native_governor(_config)
        except Exception:  # cannot govern here: stop rather than hang
            _governor = None
            logger.exception("[Ascend Governance] cannot restart governance after fork")
            return


def _before_fork() -> None:
    # The operation catalog loads lazily (the governor warms it on a background thread);
    # a fork in the middle of that would leave the child waiting for it forever.
    _native.canonical_name("s3", "list_buckets")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


class _ForkHook:
    """multiprocessing's workers leave through os._exit, skipping atexit, and clear the
    finalizers they inherit; this re-registers the exit flush in each new worker."""

    @staticmethod
    def after_fork(_hook: "_ForkHook") -> None:
        multiprocessing.util.Finalize(None, _flush_at_exit, exitpriority=0)


_fork_hook = _ForkHook()
multiprocessing.util.register_after_fork(_fork_hook, _ForkHook.after_fork)


@atexit.register
def _flush_at_exit() -> None:
    governor = _governor
    if governor is not None:
        try:
            governor.close(5.0)
        except Exception:  # interpreter is going away; nothing to report to
            pass
