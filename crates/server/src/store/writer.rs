//! The write path. PostgreSQL: one transaction per request (rows lock what must be
//! serialised). SQLite: one writer connection; requests queue up and everything queued
//! while a commit runs shares the next one, so the fsync of `synchronous = FULL` is paid
//! once per batch, not once per request.
//!
//! The rule for a write job: refuse (4xx) before writing anything. A job that fails with a
//! server error (5xx, a storage error) rolls the whole batch back and every job of the
//! batch fails with it, so nothing half-written is ever committed.

use std::any::Any;

use futures_util::future::BoxFuture;
use sqlx::{AnyConnection, AnyPool};
use tokio::sync::{mpsc, oneshot};

use super::Backend;
use crate::error::ApiError;

type Output = Result<Box<dyn Any + Send>, ApiError>;
type JobFn = Box<dyn for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Output> + Send>;

pub struct Job {
    run: JobFn,
    done: oneshot::Sender<Output>,
}

#[derive(Clone)]
pub enum Writer {
    Pool(AnyPool),
    Sqlite(mpsc::Sender<Job>),
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Writer::Pool(_) => "Writer::Pool",
            Writer::Sqlite(_) => "Writer::Sqlite",
        })
    }
}

const MAX_BATCH: usize = 256;

impl Writer {
    pub fn sqlite(conn: AnyConnection) -> Self {
        let (tx, rx) = mpsc::channel(4096);
        // Its own thread: between the statements of a batch the writer wakes at once
        // instead of queueing behind the request handlers on the shared runtime.
        let spawned = std::thread::Builder::new()
            .name("ascend-writer".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(run_sqlite(conn, rx)),
                    Err(e) => tracing::error!(error = %e, "cannot start the writer"),
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the writer thread");
        }
        Writer::Sqlite(tx)
    }

    pub async fn run<T, F>(&self, _backend: Backend, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, ApiError>>
            + Send
            + 'static,
    {
        match self {
            Writer::Pool(pool) => {
                let mut tx = pool.begin().await?;
                let value = f(&mut tx).await?;
                tx.commit().await?;
                Ok(value)
            }
            Writer::Sqlite(queue) => {
                let run: JobFn = Box::new(move |conn| {
                    Box::pin(
                        async move { f(conn).await.map(|v| Box::new(v) as Box<dyn Any + Send>) },
                    )
                });
                let (done, wait) = oneshot::channel();
                queue
                    .send(Job { run, done })
                    .await
                    .map_err(|_| ApiError::internal("the writer has stopped"))?;
                let value = wait
                    .await
                    .map_err(|_| ApiError::internal("the writer has stopped"))??;
                value
                    .downcast::<T>()
                    .map(|b| *b)
                    .map_err(|_| ApiError::internal("writer result of the wrong type"))
            }
        }
    }
}

async fn exec(conn: &mut AnyConnection, sql: &'static str) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(sql).execute(conn).await.map(|_| ())
}

async fn run_sqlite(mut conn: AnyConnection, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = exec(&mut conn, "BEGIN IMMEDIATE").await {
            fail_all(batch, &e);
            continue;
        }
        let mut results = Vec::with_capacity(batch.len());
        let mut poisoned = false;
        for job in batch {
            let outcome = (job.run)(&mut conn).await;
            poisoned |= matches!(&outcome, Err(e) if e.status.is_server_error());
            results.push((job.done, outcome));
        }
        let committed = if poisoned {
            Err(exec(&mut conn, "ROLLBACK").await.err())
        } else {
            exec(&mut conn, "COMMIT").await.map_err(Some)
        };
        match committed {
            Ok(()) => {
                for (done, outcome) in results {
                    let _ = done.send(outcome);
                }
            }
            Err(e) => {
                if let Some(e) = e {
                    let _ = exec(&mut conn, "ROLLBACK").await;
                    tracing::error!(error = %e, "commit failed");
                }
                for (done, _) in results {
                    let _ = done.send(Err(ApiError::internal("storage error")));
                }
            }
        }
    }
}

fn fail_all(batch: Vec<Job>, e: &sqlx::Error) {
    tracing::error!(error = %e, "cannot begin a write transaction");
    for job in batch {
        let _ = job.done.send(Err(ApiError::internal("storage error")));
    }
}
