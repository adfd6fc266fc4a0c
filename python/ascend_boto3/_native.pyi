from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

__version__: str
OPTIMIZED: bool  # False for the unoptimised build scripts/test installs

class Ruling:
    action_id: str
    service: str
    operation: str
    decision: str
    executes: bool
    risk_score: int
    risk_level: str
    reason: str
    policy_ids: List[str]
    dry_run: bool
    source: str
    warning: Optional[str]
    latency_ms: float
    @property
    def name(self) -> str: ...
    @property
    def risk_label(self) -> str: ...
    def log_line(self) -> str: ...
    def metrics_json(self, agent_id: str) -> str: ...

class NativeGovernor:
    def __init__(
        self,
        api_key: str,
        base_url: str,
        agent_id: str,
        agent_name: str,
        *,
        auto_approve_low_risk: bool = ...,
        auto_approve_medium_risk: bool = ...,
        bypass_services: Sequence[str] = ...,
        bypass_operations: Sequence[str] = ...,
        dry_run: bool = ...,
        approval_timeout: float = ...,
        fail_mode: Optional[str] = ...,
        queue_dir: Optional[str] = ...,
        tool_name: str = ...,
        bundle_wait: float = ...,
        request_timeout: float = ...,
        connect_timeout: float = ...,
        upload_interval: float = ...,
    ) -> None: ...
    @property
    def agent_id(self) -> str: ...
    def wait_ready(self, timeout: float) -> bool: ...
    def check(
        self, service: str, operation: str, params: Any, region: Optional[str] = ...
    ) -> Optional[Ruling]: ...
    def finish(self, ruling: Ruling, error_code: Optional[str] = ...) -> None: ...
    def flush(self, timeout: float = ...) -> bool: ...
    def close(self, timeout: float = ...) -> bool: ...
    def stats(self) -> Dict[str, Any]: ...

def classify_operation(
    service: str, operation: str, params: Optional[Mapping[str, Any]] = ...
) -> Tuple[int, str]: ...
def canonical_name(service: str, operation: str) -> str: ...
def new_action_id() -> str: ...
