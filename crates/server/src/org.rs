//! An organisation's decision context: its compiled policies (cached by version) and
//! its auto-approve settings.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ascend_core::PolicyEngine;

use crate::error::ApiError;
use crate::store::Store;

#[derive(Clone)]
pub struct OrgContext {
    pub version: i64,
    pub auto_approve_low: bool,
    pub auto_approve_medium: bool,
    pub engine: Arc<PolicyEngine>,
}

impl std::fmt::Debug for OrgContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgContext")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Compiled policy sets by organisation, replaced when the stored version moves on
/// (also when another replica stored it).
#[derive(Clone, Default)]
pub struct PolicyCache(Arc<Mutex<Compiled>>);

/// Organisation id → (policies version, compiled engine).
type Compiled = HashMap<String, (i64, Arc<PolicyEngine>)>;

impl std::fmt::Debug for PolicyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PolicyCache")
    }
}

impl PolicyCache {
    fn get(&self, org_id: &str, version: i64) -> Option<Arc<PolicyEngine>> {
        let map = self.0.lock().ok()?;
        map.get(org_id)
            .filter(|(v, _)| *v == version)
            .map(|(_, e)| e.clone())
    }

    fn put(&self, org_id: &str, version: i64, engine: Arc<PolicyEngine>) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(org_id.to_string(), (version, engine));
        }
    }

    pub async fn context(&self, store: &Store, org_id: &str) -> Result<OrgContext, ApiError> {
        Ok(self.context_for(store, org_id, "").await?.0)
    }

    /// The context and, in the same query, whether `agent_id` is blocked (and why).
    pub async fn context_for(
        &self,
        store: &Store,
        org_id: &str,
        agent_id: &str,
    ) -> Result<(OrgContext, Option<String>), ApiError> {
        let (version, low, medium, blocked, why): (i64, i64, i64, Option<i64>, Option<String>) =
            sqlx::query_as(
                "SELECT o.policies_version, o.auto_approve_low, o.auto_approve_medium, \
                 a.blocked, a.blocked_reason FROM orgs o LEFT JOIN agents a \
                 ON a.org_id = o.id AND a.agent_id = $2 WHERE o.id = $1",
            )
            .bind(org_id)
            .bind(agent_id)
            .fetch_one(&store.pool)
            .await?;
        let blocked = (blocked.unwrap_or(0) != 0).then(|| why.unwrap_or_default());
        let engine = match self.get(org_id, version) {
            Some(engine) => engine,
            None => {
                let (version, text): (i64, String) =
                    sqlx::query_as("SELECT policies_version, policies FROM orgs WHERE id = $1")
                        .bind(org_id)
                        .fetch_one(&store.pool)
                        .await?;
                let engine = Arc::new(compile_stored(&text));
                self.put(org_id, version, engine.clone());
                engine
            }
        };
        let context = OrgContext {
            version,
            auto_approve_low: low != 0,
            auto_approve_medium: medium != 0,
            engine,
        };
        Ok((context, blocked))
    }
}

/// Stored policies were validated on upload; should one ever fail to compile (a newer
/// Cedar), no policy applies and the defaults decide, which never allows more than LOW.
fn compile_stored(text: &str) -> PolicyEngine {
    if text.trim().is_empty() {
        return PolicyEngine::empty();
    }
    PolicyEngine::compile(text).unwrap_or_else(|e| {
        tracing::error!(error = ?e.diagnostics, "stored policies do not compile");
        PolicyEngine::empty()
    })
}
