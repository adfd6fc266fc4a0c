//! First start (organisation `default` and one admin key) and `ascend orgs create`.

use sqlx::AnyConnection;

use super::{Backend, Store, StoreError};
use crate::auth::{Role, generate_key, hash_key, key_prefix};
use crate::error::ApiError;
use crate::util::{new_id, now};

/// The admin key made at first start; `generated` when it was not given by the operator.
#[derive(Debug, Clone)]
pub struct BootstrapKey {
    pub key: String,
    pub generated: bool,
}

pub async fn insert_key(
    conn: &mut AnyConnection,
    org_id: &str,
    role: Role,
    name: &str,
    key: &str,
) -> Result<(String, String), ApiError> {
    let id = new_id("key");
    let created_at = now();
    sqlx::query(
        "INSERT INTO api_keys (id, org_id, role, name, key_hash, prefix, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(org_id)
    .bind(role.as_str())
    .bind(name)
    .bind(hash_key(key))
    .bind(key_prefix(key))
    .bind(&created_at)
    .execute(&mut *conn)
    .await?;
    Ok((id, created_at))
}

async fn insert_org(conn: &mut AnyConnection, name: &str) -> Result<String, ApiError> {
    let id = new_id("org");
    sqlx::query("INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(&id)
        .bind(name)
        .bind(now())
        .execute(&mut *conn)
        .await?;
    Ok(id)
}

async fn lock(backend: Backend, conn: &mut AnyConnection) -> Result<(), ApiError> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(87001)")
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// On an empty store: creates organisation `default` and its first admin key (the given
/// one, or a random one). Returns `None` once any key exists.
pub async fn bootstrap(
    store: &Store,
    given: Option<String>,
) -> Result<Option<BootstrapKey>, StoreError> {
    if let Some(key) = &given
        && !key.starts_with("owkai_admin_")
    {
        return Err(StoreError::Bootstrap(
            "ASCEND_BOOTSTRAP_KEY must start with owkai_admin_".into(),
        ));
    }
    let backend = store.backend;
    let result = store
        .write(move |conn| {
            Box::pin(async move {
                lock(backend, conn).await?;
                let (keys,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM api_keys")
                    .fetch_one(&mut *conn)
                    .await?;
                if keys > 0 {
                    return Ok(None);
                }
                let existing: Option<(String,)> =
                    sqlx::query_as("SELECT id FROM orgs WHERE name = 'default'")
                        .fetch_optional(&mut *conn)
                        .await?;
                let org_id = match existing {
                    Some((id,)) => id,
                    None => insert_org(conn, "default").await?,
                };
                let generated = given.is_none();
                let key = given.unwrap_or_else(|| generate_key(Role::Admin));
                insert_key(conn, &org_id, Role::Admin, "bootstrap", &key).await?;
                Ok(Some(BootstrapKey { key, generated }))
            })
        })
        .await;
    result.map_err(|e| StoreError::Bootstrap(e.detail))
}

/// Creates an organisation and returns its first admin key.
pub async fn create_org(store: &Store, name: &str) -> Result<String, StoreError> {
    let name = name.trim().to_string();
    if name.is_empty() || name.len() > 100 {
        return Err(StoreError::Bootstrap(
            "an organisation name has 1 to 100 characters".into(),
        ));
    }
    let backend = store.backend;
    let result = store
        .write(move |conn| {
            Box::pin(async move {
                lock(backend, conn).await?;
                let exists: Option<(String,)> =
                    sqlx::query_as("SELECT id FROM orgs WHERE name = $1")
                        .bind(&name)
                        .fetch_optional(&mut *conn)
                        .await?;
                if exists.is_some() {
                    return Err(ApiError::conflict(format!(
                        "organisation `{name}` already exists"
                    )));
                }
                let org_id = insert_org(conn, &name).await?;
                let key = generate_key(Role::Admin);
                insert_key(conn, &org_id, Role::Admin, "first admin", &key).await?;
                Ok(key)
            })
        })
        .await;
    result.map_err(|e| StoreError::Bootstrap(e.detail))
}
