//! What a webhook is: its events, URL and description, how a registration is validated,
//! and the stored rows with their API views (never the secret, except on creation).

use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};

use super::egress::Egress;
use crate::error::ApiError;

/// The events a webhook can subscribe to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// An action waits for a person.
    ApprovalRequested,
    /// Denied by policy or kill switch, rejected by a person, or expired.
    ActionDenied,
    /// An action scored 70 or more (HIGH or CRITICAL), whatever its decision.
    HighRiskAlert,
    /// An administrator turned an agent's kill switch on.
    AgentBlocked,
}

impl EventKind {
    pub const ALL: [EventKind; 4] = [
        EventKind::ApprovalRequested,
        EventKind::ActionDenied,
        EventKind::HighRiskAlert,
        EventKind::AgentBlocked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ApprovalRequested => "approval.requested",
            EventKind::ActionDenied => "action.denied",
            EventKind::HighRiskAlert => "alert.high_risk",
            EventKind::AgentBlocked => "agent.blocked",
        }
    }

    pub fn parse(text: &str) -> Option<EventKind> {
        Self::ALL.into_iter().find(|e| e.as_str() == text)
    }

    fn names() -> String {
        Self::ALL.map(EventKind::as_str).join(", ")
    }
}

pub const MAX_URL_LEN: usize = 2000;
pub const MAX_DESCRIPTION_LEN: usize = 500;
/// Registrations per organisation: each event fans out to every webhook, inside the
/// decision's transaction, so the fan-out stays bounded.
pub const MAX_WEBHOOKS_PER_ORG: i64 = 50;

/// `POST /api/v1/webhooks`. Unknown fields are refused, so a typo (`"event"`) is not
/// silently a webhook for nothing.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// `http://` or `https://` URL that receives `POST`s (a Slack incoming-webhook URL
    /// works as is).
    pub url: String,
    /// Any of `approval.requested`, `action.denied`, `alert.high_risk`, `agent.blocked`.
    pub events: Vec<String>,
    pub description: Option<String>,
}

/// A registration that passed validation.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    /// Known names, each once, in the order of `EventKind::ALL`.
    pub events: Vec<EventKind>,
    pub description: String,
}

fn check_url(text: &str, egress: Egress) -> Result<String, ApiError> {
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_URL_LEN {
        return Err(ApiError::invalid(format!(
            "url must hold 1 to {MAX_URL_LEN} characters"
        )));
    }
    let url = reqwest::Url::parse(text).map_err(|e| {
        ApiError::invalid(format!(
            "url `{text}` is not a valid URL ({e}); give an absolute http:// or https:// URL"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ApiError::invalid(format!(
            "url must use http or https, not `{}`",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::invalid("url must name a host"));
    }
    if let Some(why) = url.host().and_then(|h| egress.forbidden_host(&h)) {
        let rule = if egress.refuse_private {
            "this server refuses loopback and private networks \
             (--webhook-refuse-private-networks); give a receiver on the public internet"
        } else {
            "loopback and private addresses may"
        };
        return Err(ApiError::invalid(format!(
            "url `{text}` points at {why}; webhooks may not reach it ({rule})"
        )));
    }
    Ok(url.to_string())
}

fn check_events(names: &[String]) -> Result<Vec<EventKind>, ApiError> {
    if names.is_empty() {
        return Err(ApiError::invalid(format!(
            "events must name at least one event; allowed: {}",
            EventKind::names()
        )));
    }
    let mut wanted = Vec::with_capacity(names.len());
    for name in names {
        let kind = EventKind::parse(name.trim()).ok_or_else(|| {
            ApiError::invalid(format!(
                "unknown event `{name}`; allowed: {}",
                EventKind::names()
            ))
        })?;
        wanted.push(kind);
    }
    Ok(EventKind::ALL
        .into_iter()
        .filter(|k| wanted.contains(k))
        .collect())
}

impl CreateWebhook {
    /// The registration, if it is valid and its URL is one deliveries may reach.
    pub fn validate(self, egress: Egress) -> Result<NewWebhook, ApiError> {
        let url = check_url(&self.url, egress)?;
        let events = check_events(&self.events)?;
        let description = self.description.unwrap_or_default().trim().to_string();
        if description.chars().count() > MAX_DESCRIPTION_LEN {
            return Err(ApiError::invalid(format!(
                "description holds at most {MAX_DESCRIPTION_LEN} characters"
            )));
        }
        Ok(NewWebhook {
            url,
            events,
            description,
        })
    }
}

/// A fresh signing secret: `whsec_<32 random alphanumerics>`.
pub fn generate_secret() -> String {
    let random: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    format!("whsec_{random}")
}

pub fn events_json(events: &[EventKind]) -> String {
    json!(events.iter().map(|e| e.as_str()).collect::<Vec<_>>()).to_string()
}

/// One row of `webhooks`.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct WebhookRow {
    pub id: String,
    pub org_id: String,
    pub url: String,
    pub events: String,
    pub description: String,
    pub secret: String,
    pub created_at: String,
}

impl WebhookRow {
    /// From `SELECT id, org_id, url, events, description, secret, created_at`.
    pub fn from_row(row: &crate::store::Row) -> Result<Self, crate::error::ApiError> {
        Ok(WebhookRow {
            id: row.text(0)?,
            org_id: row.text(1)?,
            url: row.text(2)?,
            events: row.text(3)?,
            description: row.text(4)?,
            secret: row.text(5)?,
            created_at: row.text(6)?,
        })
    }

    pub fn subscribes_to(&self, kind: EventKind) -> bool {
        serde_json::from_str::<Vec<String>>(&self.events)
            .is_ok_and(|events| events.iter().any(|e| e == kind.as_str()))
    }

    /// What `GET` shows: everything but the secret.
    pub fn view(&self) -> Value {
        json!({
            "id": self.id,
            "url": self.url,
            "events": serde_json::from_str::<Value>(&self.events).unwrap_or(Value::Null),
            "description": self.description,
            "created_at": self.created_at,
        })
    }
}

/// One row of `webhook_deliveries` with its log.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: String,
    pub event: String,
    pub payload: String,
    pub state: String,
    pub attempts: i64,
    pub created_at: String,
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
}

/// One row of `webhook_attempts`.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AttemptRow {
    pub delivery_id: String,
    pub attempt: i64,
    pub started_at: String,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

impl AttemptRow {
    pub fn view(&self) -> Value {
        json!({
            "attempt": self.attempt, "started_at": self.started_at,
            "status_code": self.status_code, "error": self.error,
            "duration_ms": self.duration_ms,
            "outcome": if self.status_code.is_some_and(|c| (200..300).contains(&c)) { "delivered" } else { "failed" },
        })
    }
}

impl DeliveryRow {
    pub fn view(&self, log: &[&AttemptRow]) -> Value {
        let last = log.last();
        json!({
            "id": self.id,
            "event": self.event,
            "state": self.state,
            "delivered": self.state == "delivered",
            "failed": self.state == "failed",
            "attempts": self.attempts,
            "created_at": self.created_at,
            "next_attempt_at": if self.state == "pending" { self.next_attempt_at.clone() } else { None },
            "delivered_at": self.delivered_at,
            "last_status_code": last.and_then(|a| a.status_code),
            "last_error": last.and_then(|a| a.error.clone()),
            "last_duration_ms": last.map(|a| a.duration_ms),
            "log": log.iter().map(|a| a.view()).collect::<Vec<_>>(),
            "payload": serde_json::from_str::<Value>(&self.payload).unwrap_or(Value::Null),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(url: &str, events: &[&str]) -> CreateWebhook {
        CreateWebhook {
            url: url.into(),
            events: events.iter().map(|s| s.to_string()).collect(),
            description: None,
        }
    }

    #[test]
    fn event_names_round_trip() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("approval_requested"), None);
    }

    #[test]
    fn only_http_urls_with_a_host_and_known_events_pass() {
        let ok = body(
            "https://hooks.example.com/x",
            &["agent.blocked", "action.denied"],
        )
        .validate(Egress::default())
        .unwrap();
        assert_eq!(
            ok.events,
            vec![EventKind::ActionDenied, EventKind::AgentBlocked]
        );
        for url in [
            "ftp://x/y",
            "hooks.example.com",
            "",
            "http://",
            "javascript:alert(1)",
        ] {
            let e = body(url, &["agent.blocked"])
                .validate(Egress::default())
                .unwrap_err();
            assert_eq!(e.status.as_u16(), 422, "{url}: {e}");
        }
        let e = body("http://x", &["approval.granted"])
            .validate(Egress::default())
            .unwrap_err();
        assert!(e.detail.contains("allowed: approval.requested"), "{e}");
        assert!(body("http://x", &[]).validate(Egress::default()).is_err());
    }

    #[test]
    fn refusing_private_networks_says_which_switch_refused_the_url() {
        let refuse = Egress {
            refuse_private: true,
        };
        for url in ["http://127.0.0.1:9000/hook", "http://localhost:9/x"] {
            assert!(
                body(url, &["agent.blocked"])
                    .validate(Egress::default())
                    .is_ok()
            );
            let e = body(url, &["agent.blocked"]).validate(refuse).unwrap_err();
            assert_eq!(e.status.as_u16(), 422, "{url}: {e}");
            assert!(e.detail.contains("loopback"), "{e}");
            assert!(
                e.detail.contains("--webhook-refuse-private-networks"),
                "{e}"
            );
        }
        assert!(
            body("https://hooks.example.com/x", &["agent.blocked"])
                .validate(refuse)
                .is_ok()
        );
    }
}
