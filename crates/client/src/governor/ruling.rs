//! What the governor answers for one call: the [`Ruling`], and the error a front end
//! raises when the call does not run ([`GovernanceDenied`]). Their texts (log line,
//! metrics record, denial message) are the same in every front end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ascend_core::{OperationName, RiskLevel};
use serde_json::{Value, json};

use crate::audit::AuditEvent;

/// The decision as the metrics and logs name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decided {
    Approved,
    Denied,
    /// Waiting for a person; only when `approval_timeout` is zero.
    Pending,
}

impl Decided {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Pending => "pending",
        }
    }
}

/// Who decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// This client, with the organisation's policy bundle.
    Local,
    /// The platform (submit, then a person or the server's policies).
    Platform,
    /// The platform could not be asked; the fail mode decided.
    FailMode,
}

/// The answer for one governed call.
#[derive(Debug)]
pub struct Ruling {
    pub action_id: String,
    /// Canonical names (`s3`, `delete_bucket`), shared with the governor's name table: a
    /// ruling is made on every call, and two name copies were a third of its allocations.
    pub(super) name: Arc<OperationName>,
    pub decided: Decided,
    /// Whether the front end sends the call now.
    pub executes: bool,
    pub risk_score: u8,
    pub risk_level: RiskLevel,
    pub reason: String,
    pub policy_ids: Vec<String>,
    pub dry_run: bool,
    pub source: Source,
    /// The fail-mode warning, when the platform could not be asked.
    pub warning: Option<String>,
    /// Time spent deciding.
    pub governance_latency: Duration,
    pub(super) audit: Option<Box<AuditEvent>>,
    pub(super) decided_at: Instant,
}

impl Ruling {
    /// `s3.delete_bucket`.
    pub fn name(&self) -> String {
        self.name.to_string()
    }

    /// The canonical service name (`s3`).
    pub fn service(&self) -> &str {
        &self.name.service
    }

    /// The canonical operation name (`delete_bucket`).
    pub fn operation(&self) -> &str {
        &self.name.operation
    }

    /// The front ends' log line: `[Ascend Governance] s3.delete_bucket - Risk: HIGH (75) -
    /// DENIED` (APPROVED, PENDING likewise).
    pub fn log_line(&self) -> String {
        format!(
            "[Ascend Governance] {} - Risk: {} ({}) - {}",
            self.name,
            self.risk_level.label(),
            self.risk_score,
            self.decided.as_str().to_ascii_uppercase()
        )
    }

    /// The metrics record every front end emits for a governed call.
    pub fn metrics_record(&self, agent_id: &str) -> Value {
        json!({
            "service": self.name.service,
            "operation": self.name.operation,
            "risk_score": self.risk_score,
            "risk_level": self.risk_level.as_str(),
            "decision": self.decided.as_str(),
            "action_id": self.action_id,
            "latency_ms": (self.governance_latency.as_secs_f64() * 1e6).round() / 1e3,
            "agent_id": agent_id,
            "reason": self.reason,
            "dry_run": self.dry_run,
        })
    }

    /// The error a front end raises when the call does not run.
    pub fn denial(&self) -> Option<GovernanceDenied> {
        (!self.executes).then(|| GovernanceDenied {
            action_id: self.action_id.clone(),
            reason: self.reason.clone(),
            risk_score: self.risk_score,
            risk_level: self.risk_level,
            pending: self.decided == Decided::Pending,
        })
    }
}

/// A call Ascend did not let through. Its text is the same in every front end:
/// `Operation denied by Ascend governance.\nReason: <reason>\nAction ID: <act_…>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Operation denied by Ascend governance.\nReason: {reason}\nAction ID: {action_id}")]
pub struct GovernanceDenied {
    pub action_id: String,
    pub reason: String,
    pub risk_score: u8,
    pub risk_level: RiskLevel,
    /// Still waiting for a person (`approval_timeout` zero).
    pub pending: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ruling(decided: Decided, executes: bool) -> Ruling {
        Ruling {
            action_id: "act_123xyz".into(),
            name: Arc::new(OperationName::from_parts("s3", "delete_bucket")),
            decided,
            executes,
            risk_score: 75,
            risk_level: RiskLevel::High,
            reason: "Bucket deletion requires manager approval.".into(),
            policy_ids: vec![],
            dry_run: false,
            source: Source::Local,
            warning: None,
            governance_latency: Duration::from_micros(42),
            audit: None,
            decided_at: Instant::now(),
        }
    }

    #[test]
    fn log_line_metrics_and_denial_text_are_the_documented_ones() {
        let denied = ruling(Decided::Denied, false);
        assert_eq!(
            denied.log_line(),
            "[Ascend Governance] s3.delete_bucket - Risk: HIGH (75) - DENIED"
        );
        assert_eq!(
            denied.denial().unwrap().to_string(),
            "Operation denied by Ascend governance.\n\
             Reason: Bucket deletion requires manager approval.\n\
             Action ID: act_123xyz"
        );
        let record = denied.metrics_record("agent-1");
        assert_eq!(record["decision"], "denied");
        assert_eq!(record["risk_level"], "high");
        assert_eq!(record["latency_ms"], 0.042);
        assert!(ruling(Decided::Approved, true).denial().is_none());
        assert!(ruling(Decided::Pending, false).denial().unwrap().pending);
        assert!(
            ruling(Decided::Pending, false)
                .log_line()
                .ends_with("- PENDING")
        );
    }
}
