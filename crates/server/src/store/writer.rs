//! The write path. PostgreSQL: one transaction per request (rows lock what must be
//! serialised). SQLite: one writer thread; requests queue up and what queued while a
//! commit ran shares the next one (up to `MAX_BATCH`), so the fsync of `synchronous =
//! FULL` is paid once per batch, not once per request.
//!
//! The SQLite writer holds two connections to the one file and uses one at a time, so
//! they never wait on each other: sqlx's, for writes written against `AnyConnection`,
//! and its own `rusqlite` connection for `WriteJob`s (the hot path, a submit), whose
//! statements run on the writer's thread instead of a round trip to a driver thread each.
//!
//! The rule for a write job: refuse (4xx) before writing anything. A job that fails with a
//! server error (5xx, a storage error) rolls the whole batch back and every job of the
//! batch fails with it, so nothing half-written is ever committed.

use std::any::Any;
use std::future::Future;

use futures_util::future::BoxFuture;
use sqlx::{AnyConnection, AnyPool};
use tokio::sync::{mpsc, oneshot};

use super::tx::{Native, Tx};
use crate::error::ApiError;

type Output = Result<Box<dyn Any + Send>, ApiError>;
type JobFn<C> = Box<dyn for<'c> FnOnce(&'c mut C) -> BoxFuture<'c, Output> + Send>;

/// A write written once against `Tx`, so it runs on whichever connection the backend has.
pub trait WriteJob: Send + 'static {
    type Output: Send + 'static;

    fn run<T: Tx>(
        self,
        conn: &mut T,
    ) -> impl Future<Output = Result<Self::Output, ApiError>> + Send;
}

pub struct Job<C> {
    run: JobFn<C>,
    done: oneshot::Sender<Output>,
}

pub enum Queued {
    Any(Job<AnyConnection>),
    Native(Job<Native>),
}

#[derive(Clone)]
pub enum Writer {
    Pool(AnyPool),
    Sqlite {
        queue: mpsc::Sender<Queued>,
        native: bool,
    },
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Writer::Pool(_) => "Writer::Pool",
            Writer::Sqlite { .. } => "Writer::Sqlite",
        })
    }
}

/// Most jobs one commit takes. A commit's fixed cost (its sync, rewriting the right-hand
/// pages of each b-tree it touches) is mostly spread by a few dozen jobs: at 256 clients,
/// bytes written per submit were 6.8 kB with commits capped at 24 jobs, 5.0 kB at 48,
/// 4.3 kB at 96 and 4.0 kB uncapped. Past that a larger batch only holds more requests
/// back at once: at 256 clients the uncapped writer's batches swung between a few jobs and
/// nearly all of them (median 39, p90 164), and while it ran a large one the request
/// threads had little to do. Capped at 96, a backlog goes out in several commits, the first
/// answered sooner; submits/s rose by a median 5% (13 of 14 alternating 4 s pairs faster)
/// on the load benchmark.
const MAX_BATCH: usize = 96;

fn boxed<T: Send + 'static>(v: T) -> Box<dyn Any + Send> {
    Box::new(v)
}

fn unbox<T: 'static>(value: Box<dyn Any + Send>) -> Result<T, ApiError> {
    value
        .downcast::<T>()
        .map(|b| *b)
        .map_err(|_| ApiError::internal("writer result of the wrong type"))
}

impl Writer {
    /// `native` is the writer's own connection; without one (an in-memory database, which
    /// a second connection cannot see) every write goes through `conn`.
    pub fn sqlite(conn: AnyConnection, native: Option<rusqlite::Connection>) -> Self {
        let (tx, rx) = mpsc::channel(4096);
        let has_native = native.is_some();
        // Its own thread: between the statements of a batch the writer wakes at once
        // instead of queueing behind the request handlers on the shared runtime.
        let spawned = std::thread::Builder::new()
            .name("ascend-writer".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(run_sqlite(conn, native, rx)),
                    Err(e) => tracing::error!(error = %e, "cannot start the writer"),
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the writer thread");
        }
        Writer::Sqlite {
            queue: tx,
            native: has_native,
        }
    }

    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
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
            Writer::Sqlite { queue, .. } => {
                let run: JobFn<AnyConnection> =
                    Box::new(move |conn| Box::pin(async move { f(conn).await.map(boxed) }));
                unbox(enqueue(queue, |done| Queued::Any(Job { run, done })).await?)
            }
        }
    }

    pub async fn run_job<J: WriteJob>(&self, job: J) -> Result<J::Output, ApiError> {
        match self {
            Writer::Pool(pool) => {
                let mut tx = pool.begin().await?;
                let value = job.run(&mut *tx).await?;
                tx.commit().await?;
                Ok(value)
            }
            Writer::Sqlite { queue, native } => {
                let queued = |done| match native {
                    true => Queued::Native(Job {
                        run: job_fn(job),
                        done,
                    }),
                    false => Queued::Any(Job {
                        run: job_fn(job),
                        done,
                    }),
                };
                unbox(enqueue(queue, queued).await?)
            }
        }
    }
}

fn job_fn<C: Tx + 'static, J: WriteJob>(job: J) -> JobFn<C> {
    Box::new(move |conn| Box::pin(async move { job.run(conn).await.map(boxed) }))
}

async fn enqueue(
    queue: &mpsc::Sender<Queued>,
    job: impl FnOnce(oneshot::Sender<Output>) -> Queued,
) -> Output {
    let (done, wait) = oneshot::channel();
    queue
        .send(job(done))
        .await
        .map_err(|_| ApiError::internal("the writer has stopped"))?;
    wait.await
        .map_err(|_| ApiError::internal("the writer has stopped"))?
}

async fn run_sqlite(
    mut conn: AnyConnection,
    native: Option<rusqlite::Connection>,
    mut rx: mpsc::Receiver<Queued>,
) {
    let mut native = native.map(Native::new);
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // How many requests share a commit (and its fsync): what group commit buys.
        metrics::histogram!("ascend_sqlite_commit_batch_jobs").record(batch.len() as f64);
        // Jobs of one batch were queued concurrently, so any order is a valid one.
        let (mut on_native, mut on_any) = (Vec::new(), Vec::new());
        for job in batch {
            match job {
                Queued::Native(job) => on_native.push(job),
                Queued::Any(job) => on_any.push(job),
            }
        }
        if let Some(native) = native.as_mut()
            && !commit_batch(native, on_native).await
        {
            native.forget();
        }
        if !on_any.is_empty() {
            commit_batch(&mut conn, on_any).await;
            if let Some(native) = native.as_mut() {
                native.forget();
            }
        }
    }
}

/// Runs `jobs` in one transaction and answers each once the commit is durable. False
/// when nothing was committed.
async fn commit_batch<C: Tx>(conn: &mut C, jobs: Vec<Job<C>>) -> bool {
    if jobs.is_empty() {
        return true;
    }
    if let Err(e) = conn.execute("BEGIN IMMEDIATE", &[]).await {
        tracing::error!(error = ?e, "cannot begin a write transaction");
        for job in jobs {
            let _ = job.done.send(Err(ApiError::internal("storage error")));
        }
        return false;
    }
    let mut results = Vec::with_capacity(jobs.len());
    let mut poisoned = false;
    for job in jobs {
        let outcome = (job.run)(conn).await;
        poisoned |= matches!(&outcome, Err(e) if e.status.is_server_error());
        results.push((job.done, outcome));
    }
    let committed = if poisoned {
        conn.execute("ROLLBACK", &[]).await.map(|_| false)
    } else {
        match conn.before_commit().await {
            Ok(()) => conn.execute("COMMIT", &[]).await.map(|_| true),
            Err(e) => Err(e),
        }
    };
    if matches!(committed, Ok(true)) {
        for (done, outcome) in results {
            let _ = done.send(outcome);
        }
        return true;
    }
    if committed.is_err() {
        let _ = conn.execute("ROLLBACK", &[]).await;
        tracing::error!("commit failed");
    }
    for (done, _) in results {
        let _ = done.send(Err(ApiError::internal("storage error")));
    }
    false
}
