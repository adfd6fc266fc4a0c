"""GovernanceConfig: the settings enable_governance resolved."""

from dataclasses import dataclass, field
from typing import FrozenSet, Optional

__all__ = ["GovernanceConfig", "DEFAULT_BASE_URL"]

DEFAULT_BASE_URL = "https://pilot.owkai.app"


@dataclass(frozen=True)
class GovernanceConfig:
    """What governs this process (see ``enable_governance``)."""

    api_key: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    agent_id: str = ""
    agent_name: str = "AWS Boto3 Agent"
    auto_approve_low_risk: bool = True
    auto_approve_medium_risk: bool = False
    bypass_services: FrozenSet[str] = frozenset()
    bypass_operations: FrozenSet[str] = frozenset()
    dry_run: bool = False
    approval_timeout: float = 300
    fail_mode: Optional[str] = None
    queue_dir: Optional[str] = None
    #: Bytes the process's audit queue file may hold (``ASCEND_DISK_QUEUE_LIMIT``);
    #: ``None`` is the default, 64 MiB.
    disk_queue_limit: Optional[int] = None

    @property
    def masked_api_key(self) -> str:
        return self.api_key[:6] + "*" * max(0, len(self.api_key) - 6)
