"""ascend_boto3: one-line Ascend governance for every boto3/botocore call.

from ascend_boto3 import enable_governance
enable_governance(api_key="owkai_...")   # every boto3 call from here on is governed
"""

from ascend_boto3 import _native
from ascend_boto3._governance import (
    disable_governance,
    enable_governance,
    flush,
    get_config,
    is_governance_enabled,
    stats,
)
from ascend_boto3.config import GovernanceConfig
from ascend_boto3.exceptions import GovernanceDenied
from ascend_boto3.risk_classifier import RiskLevel, classify_operation_risk

__version__ = "2.0.0"
__native_version__ = _native.__version__

__all__ = [
    "GovernanceConfig",
    "GovernanceDenied",
    "RiskLevel",
    "classify_operation_risk",
    "disable_governance",
    "enable_governance",
    "flush",
    "get_config",
    "is_governance_enabled",
    "stats",
]
