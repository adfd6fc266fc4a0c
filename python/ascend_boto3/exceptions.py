"""Exception types of ascend_boto3."""

from typing import Optional

from ascend_boto3.risk_classifier import RiskLevel

__all__ = ["GovernanceDenied"]


class GovernanceDenied(PermissionError):
    """An AWS call Ascend did not let through: denied by policy or kill switch, rejected
    or not approved in time, refused because the platform could not be asked (fail
    closed), or still waiting for approval (``pending`` is true; with
    ``approval_timeout=0``)."""

    def __init__(
        self,
        reason: str,
        action_id: str,
        risk_score: Optional[int] = None,
        risk_level: Optional[RiskLevel] = None,
        pending: bool = False,
        operation: Optional[str] = None,
    ) -> None:
        self.reason = reason
        self.action_id = action_id
        self.risk_score = risk_score
        self.risk_level = risk_level
        self.pending = pending
        self.operation = operation
        super().__init__(
            f"Operation denied by Ascend governance.\nReason: {reason}\nAction ID: {action_id}"
        )

    def __str__(self) -> str:
        return self.args[0]

    def __reduce__(self):  # keep it picklable with all its attributes
        return (
            type(self),
            (
                self.reason,
                self.action_id,
                self.risk_score,
                self.risk_level,
                self.pending,
                self.operation,
            ),
        )
