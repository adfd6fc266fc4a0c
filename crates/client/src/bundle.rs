//! The organisation's policy bundle, kept fresh by a background long-poll
//! (`GET /api/v1/bundle?agent_id=…&wait=…` with `If-None-Match`), so a policy change or
//! a kill switch reaches a running client as soon as the platform records it.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use ascend_core::{PolicyEngine, Settings};
use tokio::sync::watch;

use crate::platform::{BundleBody, Platform};

/// One received bundle, compiled.
#[derive(Debug)]
pub(crate) struct BundleState {
    pub etag: Option<String>,
    /// `None` when the policies did not compile here: the platform decides every call.
    pub engine: Option<PolicyEngine>,
    /// `Some(reason)` while an administrator has blocked this agent.
    pub blocked: Option<String>,
    /// The client's settings made stricter by the organisation's.
    pub settings: Settings,
}

#[derive(Debug)]
pub(crate) struct BundleCell {
    current: RwLock<Option<Arc<BundleState>>>,
    /// (bundles received, failed polls); `ready` waits on it.
    progress: watch::Sender<(u64, u64)>,
}

impl BundleCell {
    pub(crate) fn new() -> Self {
        Self {
            current: RwLock::new(None),
            progress: watch::channel((0, 0)).0,
        }
    }

    pub(crate) fn get(&self) -> Option<Arc<BundleState>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn version(&self) -> u64 {
        self.progress.borrow().0
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<(u64, u64)> {
        self.progress.subscribe()
    }

    fn failed(&self) {
        self.progress.send_modify(|p| p.1 += 1);
    }

    fn set(&self, state: BundleState) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(state));
        self.progress.send_modify(|p| p.0 += 1);
    }
}

fn compile(etag: Option<String>, body: BundleBody, client: &Settings) -> BundleState {
    let engine = if body.policies.trim().is_empty() {
        Some(PolicyEngine::empty())
    } else {
        match PolicyEngine::compile(&body.policies) {
            Ok(engine) => Some(engine),
            Err(error) => {
                log::warn!(
                    "ascend: the organisation's policies do not compile here ({error}); \
                     the platform will decide every call"
                );
                None
            }
        }
    };
    let blocked = body
        .agent
        .blocked
        .then(|| body.agent.blocked_reason.clone().unwrap_or_default());
    let mut settings = client.clone();
    if let Some(org) = body.settings {
        settings.auto_approve_low_risk &= org.auto_approve_low_risk;
        settings.auto_approve_medium_risk &= org.auto_approve_medium_risk;
    }
    BundleState {
        etag,
        engine,
        blocked,
        settings,
    }
}

/// Runs until `stop` turns true.
pub(crate) async fn poll(
    platform: Arc<Platform>,
    cell: Arc<BundleCell>,
    agent_id: String,
    client_settings: Settings,
    wait: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let wait = wait.as_secs().clamp(1, 60);
    let mut backoff = Duration::from_millis(100);
    loop {
        if *stop.borrow() {
            return;
        }
        let etag = cell.get().and_then(|b| b.etag.clone());
        let started = tokio::time::Instant::now();
        let result = tokio::select! {
            result = platform.bundle(&agent_id, wait, etag.as_deref()) => result,
            _ = stop.changed() => return,
        };
        // An answer of "unchanged" that came at once means the server does not hold the
        // poll; pause instead of spinning.
        let unchanged = match &result {
            Ok(None) => true,
            Ok(Some((new, _))) => new.is_some() && *new == etag,
            Err(_) => false,
        };
        if unchanged && started.elapsed() < Duration::from_millis(100) {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = stop.changed() => return,
            }
        }
        match result {
            Ok(Some((new, body))) => {
                backoff = Duration::from_millis(100);
                if !(new.is_some() && new == etag) {
                    cell.set(compile(new, body, &client_settings));
                }
            }
            Ok(None) => backoff = Duration::from_millis(100),
            Err(error) => {
                log::debug!("ascend: bundle poll failed: {error}");
                cell.failed();
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::{BundleAgent, BundleSettings};

    #[test]
    fn stricter_settings_win_and_block_is_read() {
        let body = BundleBody {
            etag: Some("\"b-1\"".into()),
            policies: String::new(),
            agent: BundleAgent {
                blocked: true,
                blocked_reason: Some("incident".into()),
            },
            settings: Some(BundleSettings {
                auto_approve_low_risk: false,
                auto_approve_medium_risk: true,
            }),
        };
        let state = compile(Some("\"b-1\"".into()), body, &Settings::default());
        assert!(!state.settings.auto_approve_low_risk);
        assert!(!state.settings.auto_approve_medium_risk, "client said no");
        assert_eq!(state.blocked.as_deref(), Some("incident"));
        assert!(state.engine.is_some());
    }

    #[test]
    fn uncompilable_policies_leave_the_platform_to_decide() {
        let body = BundleBody {
            policies: "permit(".into(),
            ..BundleBody::default()
        };
        let state = compile(None, body, &Settings::default());
        assert!(state.engine.is_none());
        assert!(state.blocked.is_none());
    }
}
