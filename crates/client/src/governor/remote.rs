//! Calls the platform must decide ([`PlatformJob`]): the submit, the long-poll of its
//! status until a person decides or the approval timeout passes, and the fail mode when
//! the platform cannot be asked. Runs on the governor's own runtime, whichever runtime
//! (or plain thread) waits for it.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ascend_core::{Decision, OperationName, RiskLevel};
use serde_json::{Value, json};

use super::{Decided, Governor, PlatformJob, Ruling, Source};
use crate::config::FailMode;
use crate::platform::{ActionAnswer, PlatformError};

impl Governor {
    /// Asks the platform, on the governor's runtime, whatever runtime awaits it.
    pub async fn resolve(&self, job: PlatformJob) -> Ruling {
        let this = self.clone();
        let unfinished = Unfinished::of(&job);
        match self
            .inner
            .handle
            .spawn(async move { this.resolve_here(job).await })
            .await
        {
            Ok(ruling) => ruling,
            Err(error) => self.fail_unfinished(unfinished, error.to_string()),
        }
    }

    /// [`Governor::resolve`] for threads outside any async runtime (blocks the thread).
    pub fn resolve_blocking(&self, job: PlatformJob) -> Ruling {
        let this = self.clone();
        let unfinished = Unfinished::of(&job);
        match self.block_on(async move { this.resolve_here(job).await }) {
            Some(ruling) => ruling,
            None => self.fail_unfinished(unfinished, "the governor's runtime stopped".into()),
        }
    }

    /// The fail mode for a job the governor's runtime could not finish.
    fn fail_unfinished(&self, job: Unfinished, why: String) -> Ruling {
        self.fail(
            job.name,
            Value::Null,
            String::new(),
            &job.decision,
            job.action_id,
            &PlatformError::Protocol(why),
            Instant::now(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn fail(
        &self,
        name: Arc<OperationName>,
        params: Value,
        region: String,
        decision: &Decision,
        action_id: String,
        error: &PlatformError,
        started: Instant,
    ) -> Ruling {
        let level = decision.risk_level;
        let mode = self
            .inner
            .config
            .fail_mode
            .unwrap_or_else(|| FailMode::default_for(level));
        let (decided, warning, reason) = match mode {
            FailMode::Open => (
                Decided::Approved,
                format!(
                    "Governance evaluation failed, allowing {}-risk operation",
                    level.as_str()
                ),
                format!("Ascend platform unavailable ({error}); allowed by fail mode open"),
            ),
            FailMode::Closed => (
                Decided::Denied,
                format!(
                    "Governance evaluation failed, denying {}-risk operation",
                    match level {
                        RiskLevel::High | RiskLevel::Critical => "high",
                        other => other.as_str(),
                    }
                ),
                format!("Ascend platform unavailable ({error}); denied by fail mode closed"),
            ),
        };
        self.local_ruling(
            &name,
            params,
            &region,
            decision,
            decision.policy_ids.clone(),
            decided,
            reason,
            action_id,
            Source::FailMode,
            Some(warning),
            started,
            SystemTime::now(),
        )
    }

    fn submit_body(&self, job: &PlatformJob) -> Value {
        let settings = match self.inner.bundle.get() {
            Some(b) => (
                b.settings.auto_approve_low_risk,
                b.settings.auto_approve_medium_risk,
            ),
            None => (
                self.inner.config.settings.auto_approve_low_risk,
                self.inner.config.settings.auto_approve_medium_risk,
            ),
        };
        let name = job.name.to_string();
        json!({
            "action_type": name,
            "service": job.name.service,
            "operation": job.name.operation,
            "parameters": ascend_core::redact(&job.params),
            "region": job.region,
            "agent_id": &*self.inner.agent_id,
            "agent_name": &*self.inner.agent_name,
            "tool_name": self.inner.config.tool_name,
            "description": name,
            "auto_approve_low_risk": settings.0,
            "auto_approve_medium_risk": settings.1,
            "client_action_id": job.action_id,
        })
    }

    fn platform_ruling(
        &self,
        job: &PlatformJob,
        answer: &ActionAnswer,
        decided: Decided,
    ) -> Ruling {
        let risk_score = answer
            .risk_score
            .map_or(job.decision.risk_score, |s| s.clamp(0.0, 100.0) as u8);
        let risk_level = answer
            .risk_level
            .as_deref()
            .and_then(RiskLevel::parse)
            .unwrap_or_else(|| RiskLevel::from_score(risk_score));
        let reason = answer.why().map_or_else(
            || match decided {
                Decided::Approved => "approved".to_string(),
                Decided::Denied => "denied by the Ascend platform".to_string(),
                Decided::Pending => "awaiting approval".to_string(),
            },
            str::to_string,
        );
        Ruling {
            action_id: answer
                .id()
                .map_or_else(|| job.action_id.clone(), str::to_string),
            name: job.name.clone(),
            decided,
            executes: decided == Decided::Approved,
            risk_score,
            risk_level,
            reason,
            policy_ids: if answer.policy_ids.is_empty() {
                job.decision.policy_ids.clone()
            } else {
                answer.policy_ids.clone()
            },
            dry_run: false,
            source: Source::Platform,
            warning: None,
            governance_latency: job.started.elapsed(),
            audit: None,
            decided_at: Instant::now(),
        }
    }

    async fn resolve_here(&self, job: PlatformJob) -> Ruling {
        let answer = match self.inner.platform.submit(&self.submit_body(&job)).await {
            Ok(answer) => answer,
            Err(error) => return self.fail_job(job, &error),
        };
        let mut answer = answer;
        let deadline = job.started + self.inner.config.approval_timeout;
        let mut backoff = Duration::from_millis(100);
        let mut last_error: Option<PlatformError> = None;
        // Bounded: each round waits on the server (≤ 60 s) or sleeps, until the deadline.
        loop {
            match answer.status.as_str() {
                "approved" | "allowed" | "auto_approved" | "executed" => {
                    return self.platform_ruling(&job, &answer, Decided::Approved);
                }
                "denied" | "rejected" | "expired" => {
                    return self.platform_ruling(&job, &answer, Decided::Denied);
                }
                _ => {}
            }
            if self.inner.config.approval_timeout.is_zero() {
                return self.platform_ruling(&job, &answer, Decided::Pending);
            }
            let Some(id) = answer.id().map(str::to_string) else {
                return self.fail_job(job, &PlatformError::Protocol("no action id".into()));
            };
            let now = Instant::now();
            if now >= deadline {
                if let Some(error) = last_error {
                    return self.fail_job(job, &error);
                }
                let mut ruling = self.platform_ruling(&job, &answer, Decided::Denied);
                ruling.reason = format!(
                    "approval timed out after {} s",
                    self.inner.config.approval_timeout.as_secs_f64()
                );
                return ruling;
            }
            let remaining = deadline - now;
            let wait = remaining.as_secs_f64().ceil().clamp(1.0, 60.0) as u64;
            let poll = self.inner.platform.status(&id, wait);
            match tokio::time::timeout(remaining + Duration::from_millis(50), poll).await {
                Ok(Ok(next)) => {
                    last_error = None;
                    backoff = Duration::from_millis(100);
                    answer = next;
                }
                Ok(Err(error)) => {
                    let pause = backoff.min(deadline.saturating_duration_since(Instant::now()));
                    last_error = Some(error);
                    tokio::time::sleep(pause).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Err(_) => {}
            }
        }
    }

    fn fail_job(&self, job: PlatformJob, error: &PlatformError) -> Ruling {
        self.fail(
            job.name,
            job.params,
            job.region,
            &job.decision,
            job.action_id,
            error,
            job.started,
        )
    }
}

/// What is kept of a job while the governor's runtime runs it: enough to apply the fail
/// mode when the runtime cannot finish it.
struct Unfinished {
    decision: Decision,
    name: Arc<OperationName>,
    action_id: String,
}

impl Unfinished {
    fn of(job: &PlatformJob) -> Self {
        Self {
            decision: job.decision.clone(),
            name: job.name.clone(),
            action_id: job.action_id.clone(),
        }
    }
}
