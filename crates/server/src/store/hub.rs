//! Wake-ups without polling: a broadcast channel in the process, fed by the writers of
//! this process and, on PostgreSQL, by `LISTEN ascend_events` (other replicas' writes).

use std::time::Duration;

use tokio::sync::broadcast;

/// Something that waiters may care about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// An action got its decision (approved, rejected, expired).
    Action { org: String, id: String },
    /// The organisation's policies or settings, or an agent's block state, changed.
    Bundle { org: String },
    /// A new action waits for a person (the dashboard's live queue).
    Pending { org: String, id: String },
}

impl Event {
    pub fn encode(&self) -> String {
        match self {
            Event::Action { org, id } => format!("a|{org}|{id}"),
            Event::Bundle { org } => format!("b|{org}"),
            Event::Pending { org, id } => format!("p|{org}|{id}"),
        }
    }

    pub fn decode(text: &str) -> Option<Event> {
        let mut parts = text.split('|');
        match (parts.next()?, parts.next()?, parts.next()) {
            ("a", org, Some(id)) => Some(Event::Action {
                org: org.into(),
                id: id.into(),
            }),
            ("b", org, None) => Some(Event::Bundle { org: org.into() }),
            ("p", org, Some(id)) => Some(Event::Pending {
                org: org.into(),
                id: id.into(),
            }),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Hub {
    tx: broadcast::Sender<Event>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(4096);
        Hub { tx }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    pub fn publish(&self, event: Event) {
        let _ = self.tx.send(event);
    }

    /// Forwards PostgreSQL notifications to local waiters, reconnecting on failure.
    pub fn listen_postgres(&self, url: String) {
        let hub = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = hub.listen_once(&url).await {
                    tracing::warn!(error = %e, "LISTEN connection lost; reconnecting");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }

    async fn listen_once(&self, url: &str) -> Result<(), sqlx::Error> {
        let mut listener = sqlx::postgres::PgListener::connect(url).await?;
        listener.listen("ascend_events").await?;
        loop {
            let note = listener.recv().await?;
            if let Some(event) = Event::decode(note.payload()) {
                self.publish(event);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Event;

    #[test]
    fn events_round_trip_through_notify_payloads() {
        for e in [
            Event::Action {
                org: "org_1".into(),
                id: "act_1".into(),
            },
            Event::Bundle {
                org: "org_2".into(),
            },
            Event::Pending {
                org: "org_3".into(),
                id: "act_3".into(),
            },
        ] {
            assert_eq!(Event::decode(&e.encode()), Some(e));
        }
        assert_eq!(Event::decode("x|y"), None);
    }
}
