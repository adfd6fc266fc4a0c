//! A small blocking HTTP client for the operator commands, with the server's error
//! bodies turned into messages.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::Value;

use super::Remote;
use crate::CliError;

pub struct Api {
    client: Client,
    base: String,
    key: String,
}

impl Api {
    pub fn new(remote: &Remote) -> Result<Api, CliError> {
        let key = remote
            .api_key
            .clone()
            .filter(|k| !k.trim().is_empty())
            .ok_or_else(|| CliError::usage("an API key is needed: --api-key or ASCEND_API_KEY"))?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::builder()
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| CliError::failed(format!("cannot build an HTTP client: {e}")))?;
        Ok(Api {
            client,
            base: remote.url.trim_end_matches('/').to_string(),
            key,
        })
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .header("X-API-Key", &self.key)
    }

    /// Sends and returns the response when it is a success.
    pub fn send(&self, request: RequestBuilder) -> Result<Response, CliError> {
        let response = request
            .send()
            .map_err(|e| CliError::failed(format!("cannot reach {}: {e}", self.base)))?;
        let status = response.status();
        if status.is_success() || status == StatusCode::NOT_MODIFIED {
            return Ok(response);
        }
        let body: Value = response.json().unwrap_or(Value::Null);
        Err(error_of(status, &body))
    }

    pub fn json(&self, request: RequestBuilder) -> Result<Value, CliError> {
        self.send(request)?
            .json()
            .map_err(|e| CliError::failed(format!("the server's answer is not JSON: {e}")))
    }
}

/// 4xx: what the user sent or the key is wrong (exit 2); 5xx: the server failed (exit 1).
pub fn error_of(status: StatusCode, body: &Value) -> CliError {
    let detail = body["detail"].as_str().unwrap_or("no detail");
    let code = body["error_code"].as_str().unwrap_or("");
    let mut message = format!("the server answered {} {code}: {detail}", status.as_u16());
    if let Some(errors) = body["errors"].as_array() {
        for e in errors {
            let at = match (e["line"].as_u64(), e["column"].as_u64()) {
                (Some(l), Some(c)) => format!("{l}:{c}: "),
                (Some(l), None) => format!("{l}: "),
                _ => String::new(),
            };
            message.push_str(&format!("\n  {at}{}", e["message"].as_str().unwrap_or("")));
        }
    }
    if status.is_client_error() {
        CliError::usage(message)
    } else {
        CliError::failed(message)
    }
}
