//! The live queue: `/dashboard/events` streams server-sent events fed by the store's hub
//! (on PostgreSQL also other replicas' writes, through the same NOTIFY path). `pending`
//! carries the new card's HTML, `decided` the id of an action that left the queue,
//! `reload` asks the page to redraw after missed events. The stream ends on shutdown and
//! when the session stops being valid (sign-out, revoked key).

use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use super::approvals::{Card, PendingView};
use super::session::{self, Session};
use crate::actions::{PENDING, load_visible};
use crate::routes::AppState;
use crate::store::Event;

struct Feed {
    state: AppState,
    headers: HeaderMap,
    session: Session,
    events: tokio::sync::broadcast::Receiver<Event>,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

impl Feed {
    /// The next event for this page, or `None` when the stream should end.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if *self.shutdown.borrow() {
                return None;
            }
            let event = tokio::select! {
                e = self.events.recv() => e,
                _ = self.shutdown.changed() => return None,
            };
            let org = &self.session.who.org_id;
            let sse = match event {
                Ok(Event::Pending { org: o, id }) if &o == org => self.card(&id).await,
                Ok(Event::Action { org: o, id }) if &o == org => {
                    Some(SseEvent::default().event("decided").data(id))
                }
                Ok(_) => None,
                Err(RecvError::Lagged(_)) => {
                    Some(SseEvent::default().event("reload").data("lagged"))
                }
                Err(RecvError::Closed) => return None,
            };
            let Some(sse) = sse else { continue };
            // Revocation and sign-out take effect here too, not only on the next page.
            match session::current(&self.state, &self.headers).await {
                Ok(Some(_)) => return Some(sse),
                _ => return None,
            }
        }
    }

    async fn card(&self, id: &str) -> Option<SseEvent> {
        let record = load_visible(&self.state.store, &self.session.who, id)
            .await
            .ok()?;
        if record.status != PENDING {
            return None;
        }
        card_event(&PendingView::from(&record), &self.session.csrf)
    }
}

pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: Session,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let events = state.store.hub.subscribe();
    // What waits now, subscribed first: a request made between the page's render and this
    // connection still reaches the page (it skips cards it already shows).
    let waiting = super::approvals::pending(&state.store, &session.who.org_id)
        .await
        .unwrap_or_default();
    let initial: Vec<Result<SseEvent, Infallible>> = waiting
        .iter()
        .rev()
        .filter_map(|r| card_event(&PendingView::from(r), &session.csrf).map(Ok))
        .collect();
    let feed = Feed {
        events,
        shutdown: state.shutdown.clone(),
        state,
        headers,
        session,
    };
    let live = futures_util::stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await?;
        Some((Ok(event), feed))
    });
    let stream = futures_util::stream::iter(initial).chain(live);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

fn card_event(view: &PendingView, csrf: &str) -> Option<SseEvent> {
    let html = Card { a: view, csrf }.render().ok()?;
    Some(SseEvent::default().event("pending").id(&view.id).data(html))
}
