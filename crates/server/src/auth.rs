//! API keys and roles: `owkai_<role>_<random>`, stored only as SHA-256 hashes, one
//! organisation each. The `Principal` extractor authenticates and rate-limits a request.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::routes::AppState;
use crate::util::sha256_hex;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Approver,
    Agent,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Approver => "approver",
            Role::Agent => "agent",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "approver" => Some(Role::Approver),
            "agent" => Some(Role::Agent),
            _ => None,
        }
    }
}

/// A fresh key for `role`: `owkai_<role>_<32 random alphanumerics>`.
pub fn generate_key(role: Role) -> String {
    let random: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    format!("owkai_{}_{random}", role.as_str())
}

pub fn hash_key(key: &str) -> String {
    sha256_hex(key.as_bytes())
}

/// What a key shows of itself after creation: `owkai_agent_AbCd…`.
pub fn key_prefix(key: &str) -> String {
    let keep = key.len().min(key.rfind('_').map_or(6, |i| i + 5));
    format!("{}…", &key[..keep])
}

/// Who is calling: the key, its organisation and role.
#[derive(Clone, Debug)]
pub struct Principal {
    pub key_id: String,
    pub key_name: String,
    pub org_id: String,
    pub role: Role,
}

impl Principal {
    /// 403 unless the key has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            return Ok(());
        }
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(ApiError::forbidden(format!(
            "this endpoint needs a key with role {}; this key's role is {}",
            names.join(" or "),
            self.role.as_str()
        )))
    }

    /// Who decided, as recorded: `name (key_id)`.
    pub fn actor(&self) -> String {
        format!("{} ({})", self.key_name, self.key_id)
    }
}

fn candidates(parts: &Parts) -> Vec<&str> {
    let mut keys = Vec::with_capacity(2);
    if let Some(k) = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        keys.push(k.trim());
    }
    if let Some(v) = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        if let Some(token) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        {
            keys.push(token.trim());
        }
    }
    keys
}

/// Valid keys by hash, where this process sees every revocation (one server on a SQLite
/// file). A revocation forgets them all before it answers; a lookup that started before
/// it never stores its (now stale) answer after it.
#[derive(Clone, Debug, Default)]
pub struct KeyCache(Option<Arc<Mutex<KnownKeys>>>);

#[derive(Debug, Default)]
pub struct KnownKeys {
    generation: u64,
    map: HashMap<String, Principal>,
}

impl KeyCache {
    pub fn new(exact: bool) -> Self {
        KeyCache(exact.then(Arc::default))
    }

    fn get(&self, hash: &str) -> Result<Principal, Option<u64>> {
        let Some(cache) = &self.0 else {
            return Err(None);
        };
        let Ok(cache) = cache.lock() else {
            return Err(None);
        };
        cache.map.get(hash).cloned().ok_or(Some(cache.generation))
    }

    fn put(&self, generation: u64, hash: String, principal: Principal) {
        if let Some(cache) = &self.0
            && let Ok(mut cache) = cache.lock()
            && cache.generation == generation
        {
            if cache.map.len() >= 10_000 {
                cache.map.clear();
            }
            cache.map.insert(hash, principal);
        }
    }

    /// Call after revoking a key, before answering.
    pub fn forget(&self) {
        if let Some(cache) = &self.0
            && let Ok(mut cache) = cache.lock()
        {
            cache.map.clear();
            cache.generation += 1;
        }
    }
}

async fn lookup(state: &AppState, key: &str) -> Result<Option<Principal>, ApiError> {
    if !key.starts_with("owkai_") {
        return Ok(None);
    }
    let hash = hash_key(key);
    let generation = match state.keys.get(&hash) {
        Ok(principal) => return Ok(Some(principal)),
        Err(generation) => generation,
    };
    let row: Option<(String, String, String, String)> = sqlx::query_as(
        "SELECT id, name, org_id, role FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
    )
    .bind(&hash)
    .fetch_optional(&state.store.pool)
    .await?;
    let principal = row.and_then(|(key_id, key_name, org_id, role)| {
        Some(Principal {
            key_id,
            key_name,
            org_id,
            role: Role::parse(&role)?,
        })
    });
    if let (Some(p), Some(g)) = (&principal, generation) {
        state.keys.put(g, hash, p.clone());
    }
    Ok(principal)
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let keys = candidates(parts);
        if keys.is_empty() {
            return Err(ApiError::unauthorized(
                "missing API key: send X-API-Key or Authorization: Bearer",
            ));
        }
        // A valid X-API-Key wins over whatever Authorization holds (legacy clients send
        // a masked bearer token).
        for key in keys {
            if let Some(principal) = lookup(state, key).await? {
                state.limiter.check(&principal.key_id)?;
                return Ok(principal);
            }
        }
        Err(ApiError::unauthorized("invalid or revoked API key"))
    }
}

/// Per-key request rate limit.
#[derive(Clone, Debug)]
pub struct Limiter(Option<Arc<DefaultKeyedRateLimiter<String>>>);

impl Limiter {
    /// `per_second` requests per key per second, with a burst of the same size; 0 = off.
    pub fn new(per_second: u32) -> Self {
        Limiter(
            NonZeroU32::new(per_second)
                .map(|n| Arc::new(RateLimiter::keyed(Quota::per_second(n).allow_burst(n)))),
        )
    }

    pub fn check(&self, key_id: &str) -> Result<(), ApiError> {
        let Some(limiter) = &self.0 else {
            return Ok(());
        };
        match limiter.check_key(&key_id.to_string()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                metrics::counter!("ascend_rate_limited_total").increment(1);
                Err(ApiError::rate_limited(wait.as_secs_f64().ceil() as u64))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_role_and_show_only_a_prefix() {
        for role in [Role::Admin, Role::Approver, Role::Agent] {
            let key = generate_key(role);
            assert!(key.starts_with(&format!("owkai_{}_", role.as_str())));
            assert_eq!(key.len(), "owkai_".len() + role.as_str().len() + 1 + 32);
            let prefix = key_prefix(&key);
            assert!(prefix.ends_with('…') && prefix.len() < key.len());
            assert_eq!(hash_key(&key).len(), 64);
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_ne!(generate_key(Role::Agent), generate_key(Role::Agent));
    }
}
