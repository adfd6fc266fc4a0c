"""Risk classification of AWS operations (the same Rust engine the governor uses)."""

from enum import Enum
from typing import Any, Mapping, Optional, Tuple

from ascend_boto3 import _native

__all__ = ["RiskLevel", "classify_operation_risk"]


class RiskLevel(str, Enum):
    """Risk bands: LOW 0-44, MEDIUM 45-69, HIGH 70-84, CRITICAL 85-100."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    def __str__(self) -> str:
        return self.value


def classify_operation_risk(
    service: str, operation: str, params: Optional[Mapping[str, Any]] = None
) -> Tuple[int, RiskLevel]:
    """Score one call: ``classify_operation_risk("s3", "delete_bucket", {"Bucket": "b"})``
    gives ``(75, RiskLevel.HIGH)``. Names in any spelling (``DeleteBucket`` too)."""
    score, level = _native.classify_operation(service, operation, params)
    return score, RiskLevel(level)
