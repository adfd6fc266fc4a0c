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
/// (also when another replica stored it); and, where this process sees every change (one
/// server on a SQLite file), the per-agent settings and kill-switch state, forgotten on
/// every policy or block change.
#[derive(Clone, Default)]
pub struct PolicyCache {
    engines: Arc<Mutex<Compiled>>,
    snapshots: Option<Arc<Mutex<Snapshots>>>,
}

/// Cached snapshots and the generation they belong to: `forget` moves the generation on,
/// and a snapshot read before that is never stored after it.
#[derive(Default)]
struct Snapshots {
    generation: u64,
    /// Organisation id → agent id → snapshot: looked up with the request's own `&str`s
    /// (a pair as the key had to be built, two copies, on every submit).
    map: HashMap<String, HashMap<String, Snapshot>>,
    len: usize,
}

/// Organisation id → (policies version, compiled engine).
type Compiled = HashMap<String, (i64, Arc<PolicyEngine>)>;

/// (policies version, auto-approve low, auto-approve medium, blocked reason).
type Snapshot = (i64, bool, bool, Option<String>);

const MAX_SNAPSHOTS: usize = 50_000;

impl std::fmt::Debug for PolicyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PolicyCache")
    }
}

impl PolicyCache {
    /// `exact`: every change of policies and block state goes through this process.
    pub fn new(exact: bool) -> Self {
        PolicyCache {
            engines: Arc::default(),
            snapshots: exact.then(Arc::default),
        }
    }

    /// Call after changing policies or an agent's block state, before answering.
    pub fn forget(&self) {
        if let Some(cache) = &self.snapshots
            && let Ok(mut cache) = cache.lock()
        {
            cache.map.clear();
            cache.len = 0;
            cache.generation += 1;
        }
    }

    fn engine(&self, org_id: &str, version: i64) -> Option<Arc<PolicyEngine>> {
        let map = self.engines.lock().ok()?;
        map.get(org_id)
            .filter(|(v, _)| *v == version)
            .map(|(_, e)| e.clone())
    }

    fn put_engine(&self, org_id: &str, version: i64, engine: Arc<PolicyEngine>) {
        if let Ok(mut map) = self.engines.lock() {
            map.insert(org_id.to_string(), (version, engine));
        }
    }

    /// The cached snapshot, or the generation to store a fresh one under.
    fn snapshot(&self, org_id: &str, agent_id: &str) -> Result<Snapshot, Option<u64>> {
        let Some(cache) = &self.snapshots else {
            return Err(None);
        };
        let Ok(cache) = cache.lock() else {
            return Err(None);
        };
        cache
            .map
            .get(org_id)
            .and_then(|agents| agents.get(agent_id))
            .cloned()
            .ok_or(Some(cache.generation))
    }

    fn put_snapshot(&self, generation: u64, org_id: &str, agent_id: &str, snapshot: Snapshot) {
        if let Some(cache) = &self.snapshots
            && let Ok(mut cache) = cache.lock()
            && cache.generation == generation
        {
            if cache.len >= MAX_SNAPSHOTS {
                cache.map.clear();
                cache.len = 0;
            }
            let agents = cache.map.entry(org_id.to_string()).or_default();
            if agents.insert(agent_id.to_string(), snapshot).is_none() {
                cache.len += 1;
            }
        }
    }

    pub async fn context(&self, store: &Store, org_id: &str) -> Result<OrgContext, ApiError> {
        Ok(self.context_for(store, org_id, "").await?.0)
    }

    async fn load_snapshot(
        store: &Store,
        org_id: &str,
        agent_id: &str,
    ) -> Result<Snapshot, ApiError> {
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
        Ok((version, low != 0, medium != 0, blocked))
    }

    /// The context and whether `agent_id` is blocked (and why).
    pub async fn context_for(
        &self,
        store: &Store,
        org_id: &str,
        agent_id: &str,
    ) -> Result<(OrgContext, Option<String>), ApiError> {
        let (version, low, medium, blocked) = match self.snapshot(org_id, agent_id) {
            Ok(s) => s,
            Err(generation) => {
                let s = Self::load_snapshot(store, org_id, agent_id).await?;
                if let Some(g) = generation {
                    self.put_snapshot(g, org_id, agent_id, s.clone());
                }
                s
            }
        };
        let engine = match self.engine(org_id, version) {
            Some(engine) => engine,
            None => {
                let (version, text): (i64, String) =
                    sqlx::query_as("SELECT policies_version, policies FROM orgs WHERE id = $1")
                        .bind(org_id)
                        .fetch_one(&store.pool)
                        .await?;
                let engine = Arc::new(compile_stored(&text));
                self.put_engine(org_id, version, engine.clone());
                engine
            }
        };
        let context = OrgContext {
            version,
            auto_approve_low: low,
            auto_approve_medium: medium,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_are_kept_per_organisation_and_agent_until_forgotten() {
        let cache = PolicyCache::new(true);
        let before = cache
            .snapshot("o1", "a1")
            .unwrap_err()
            .expect("a generation");
        cache.put_snapshot(before, "o1", "a1", (3, true, false, None));
        cache.put_snapshot(before, "o1", "a2", (3, true, false, Some("why".into())));
        assert_eq!(cache.snapshot("o1", "a1"), Ok((3, true, false, None)));
        assert_eq!(
            cache.snapshot("o1", "a2"),
            Ok((3, true, false, Some("why".into())))
        );
        assert!(
            cache.snapshot("o2", "a1").is_err(),
            "another organisation's agent"
        );
        assert_eq!(cache.snapshots.as_ref().unwrap().lock().unwrap().len, 2);

        cache.forget();
        let after = cache
            .snapshot("o1", "a1")
            .unwrap_err()
            .expect("a generation");
        assert_ne!(before, after);
        // A snapshot read before `forget` is never stored after it.
        cache.put_snapshot(before, "o1", "a1", (2, true, false, None));
        assert!(cache.snapshot("o1", "a1").is_err());
        assert_eq!(cache.snapshots.as_ref().unwrap().lock().unwrap().len, 0);
    }

    #[test]
    fn a_cache_that_may_miss_changes_keeps_nothing() {
        let cache = PolicyCache::new(false);
        assert_eq!(cache.snapshot("o1", "a1"), Err(None));
    }
}
