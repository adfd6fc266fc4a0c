//! The native half of `ascend_boto3` (imported as `ascend_boto3._native`).
//!
//! Owns the conversion between Python objects and `ascend-client`'s types, and releasing
//! the GIL whenever a call waits on the platform. Must not touch: botocore (the Python
//! half hooks it), log formats and exception types (Python), decisions (ascend-core) or
//! HTTP and queues (ascend-client).

use std::sync::Mutex;
use std::time::Duration;

use ascend_client::{CallOutcome, CallRequest, Config, FailMode, Governor, Prepared};
use ascend_core::{OperationName, Settings, classify};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PySet, PyString, PyTuple,
};
use serde_json::{Map, Number, Value};

const MAX_DEPTH: usize = 32;

/// Python value → JSON, for classification and the (redacted) audit record. Bytes and
/// streams are described, not copied.
fn to_value(obj: &Bound<'_, PyAny>, depth: usize) -> Value {
    if obj.is_none() {
        return Value::Null;
    }
    if depth > MAX_DEPTH {
        return Value::String("<too deep>".into());
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Value::String(s.to_string_lossy().into_owned());
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Value::Bool(b.is_true());
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Value::Number(i.into());
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Value::Number(u.into());
        }
        return Value::String(
            obj.str()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Number::from_f64(f.value()).map_or(Value::Null, Value::Number);
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = Map::with_capacity(d.len());
        for (k, v) in d.iter() {
            let key = match k.cast::<PyString>() {
                Ok(s) => s.to_string_lossy().into_owned(),
                Err(_) => k
                    .str()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            };
            map.insert(key, to_value(&v, depth + 1));
        }
        return Value::Object(map);
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return Value::Array(l.iter().map(|v| to_value(&v, depth + 1)).collect());
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return Value::Array(t.iter().map(|v| to_value(&v, depth + 1)).collect());
    }
    if let Ok(s) = obj.cast::<PySet>() {
        return Value::Array(s.iter().map(|v| to_value(&v, depth + 1)).collect());
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Value::String(format!("<{} bytes>", b.as_bytes().len()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Value::String(format!("<{} bytes>", b.len()));
    }
    // Streams, datetimes, Decimals …: their text for datetimes and numbers, the type name
    // for anything that may hold data.
    let type_name = obj
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".into());
    match type_name.as_str() {
        "datetime" | "date" | "Decimal" | "UUID" => Value::String(
            obj.str()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
        _ => Value::String(format!("<{type_name}>")),
    }
}

/// The answer for one governed call (see `ascend_client::Ruling`).
#[pyclass(frozen, module = "ascend_boto3._native")]
struct Ruling {
    #[pyo3(get)]
    action_id: String,
    #[pyo3(get)]
    service: String,
    #[pyo3(get)]
    operation: String,
    /// `approved` / `denied` / `pending`.
    #[pyo3(get)]
    decision: &'static str,
    #[pyo3(get)]
    executes: bool,
    #[pyo3(get)]
    risk_score: u8,
    /// Lower case: `low` … `critical`.
    #[pyo3(get)]
    risk_level: &'static str,
    #[pyo3(get)]
    reason: String,
    #[pyo3(get)]
    policy_ids: Vec<String>,
    #[pyo3(get)]
    dry_run: bool,
    /// `local` / `platform` / `fail_mode`.
    #[pyo3(get)]
    source: &'static str,
    #[pyo3(get)]
    warning: Option<String>,
    /// Time spent deciding, in milliseconds.
    #[pyo3(get)]
    latency_ms: f64,
    inner: Mutex<Option<ascend_client::Ruling>>,
}

impl Ruling {
    fn new(ruling: ascend_client::Ruling) -> Self {
        Self {
            action_id: ruling.action_id.clone(),
            service: ruling.service().to_string(),
            operation: ruling.operation().to_string(),
            decision: ruling.decided.as_str(),
            executes: ruling.executes,
            risk_score: ruling.risk_score,
            risk_level: ruling.risk_level.as_str(),
            reason: ruling.reason.clone(),
            policy_ids: ruling.policy_ids.clone(),
            dry_run: ruling.dry_run,
            source: match ruling.source {
                ascend_client::Source::Local => "local",
                ascend_client::Source::Platform => "platform",
                ascend_client::Source::FailMode => "fail_mode",
            },
            warning: ruling.warning.clone(),
            latency_ms: ruling.governance_latency.as_secs_f64() * 1000.0,
            inner: Mutex::new(Some(ruling)),
        }
    }
}

#[pymethods]
impl Ruling {
    /// `s3.delete_bucket`.
    #[getter]
    fn name(&self) -> String {
        format!("{}.{}", self.service, self.operation)
    }

    /// `LOW` … `CRITICAL`.
    #[getter]
    fn risk_label(&self) -> String {
        self.risk_level.to_ascii_uppercase()
    }

    /// `[Ascend Governance] s3.delete_bucket - Risk: HIGH (75) - DENIED`, the same line
    /// every front end logs.
    fn log_line(&self) -> String {
        format!(
            "[Ascend Governance] {}.{} - Risk: {} ({}) - {}",
            self.service,
            self.operation,
            self.risk_level.to_ascii_uppercase(),
            self.risk_score,
            self.decision.to_ascii_uppercase()
        )
    }

    /// The metrics record (one JSON object), the same in every front end.
    fn metrics_json(&self, agent_id: &str) -> String {
        serde_json::json!({
            "service": self.service,
            "operation": self.operation,
            "risk_score": self.risk_score,
            "risk_level": self.risk_level,
            "decision": self.decision,
            "action_id": self.action_id,
            "latency_ms": (self.latency_ms * 1e3).round() / 1e3,
            "agent_id": agent_id,
            "reason": self.reason,
            "dry_run": self.dry_run,
        })
        .to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "Ruling({}.{}, {}, {} ({}), {})",
            self.service,
            self.operation,
            self.decision,
            self.risk_level,
            self.risk_score,
            self.action_id
        )
    }
}

/// The Rust `Governor` for one agent.
#[pyclass(frozen, module = "ascend_boto3._native")]
struct NativeGovernor {
    governor: Governor,
}

fn duration(seconds: f64, what: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(seconds.max(0.0))
        .map_err(|_| PyValueError::new_err(format!("{what} must be a number of seconds")))
}

#[pymethods]
impl NativeGovernor {
    #[new]
    #[pyo3(signature = (api_key, base_url, agent_id, agent_name, *, auto_approve_low_risk=true,
        auto_approve_medium_risk=false, bypass_services=Vec::new(), bypass_operations=Vec::new(),
        dry_run=false, approval_timeout=300.0, fail_mode=None, queue_dir=None, tool_name="boto3",
        bundle_wait=25.0, request_timeout=10.0, connect_timeout=2.0, upload_interval=0.25,
        disk_queue_limit=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        api_key: String,
        base_url: String,
        agent_id: String,
        agent_name: String,
        auto_approve_low_risk: bool,
        auto_approve_medium_risk: bool,
        bypass_services: Vec<String>,
        bypass_operations: Vec<String>,
        dry_run: bool,
        approval_timeout: f64,
        fail_mode: Option<String>,
        queue_dir: Option<String>,
        tool_name: &str,
        bundle_wait: f64,
        request_timeout: f64,
        connect_timeout: f64,
        upload_interval: f64,
        disk_queue_limit: Option<u64>,
    ) -> PyResult<Self> {
        let fail_mode = match fail_mode.as_deref() {
            None => None,
            Some(text) => Some(FailMode::parse(text).ok_or_else(|| {
                PyValueError::new_err(format!(
                    "fail_mode must be \"open\", \"closed\" or None, not {text:?}"
                ))
            })?),
        };
        let mut config = Config::new(api_key, base_url, agent_id);
        config.agent_name = agent_name;
        config.tool_name = tool_name.to_string();
        config.settings = Settings {
            auto_approve_low_risk,
            auto_approve_medium_risk,
            bypass_services,
            bypass_operations,
            dry_run,
        };
        config.approval_timeout = duration(approval_timeout, "approval_timeout")?;
        config.fail_mode = fail_mode;
        config.queue_dir = queue_dir.map(Into::into);
        config.bundle_wait = duration(bundle_wait, "bundle_wait")?;
        config.request_timeout = duration(request_timeout, "request_timeout")?;
        config.connect_timeout = duration(connect_timeout, "connect_timeout")?;
        config.upload_interval =
            duration(upload_interval, "upload_interval")?.max(Duration::from_millis(10));
        if let Some(limit) = disk_queue_limit {
            config.disk_queue_limit = limit;
        }
        let governor = Governor::new(config).map_err(|e| match e {
            ascend_client::StartError::MissingKey => {
                PyValueError::new_err("API key required: pass api_key= or set ASCEND_API_KEY")
            }
            other => PyRuntimeError::new_err(other.to_string()),
        })?;
        Ok(Self { governor })
    }

    #[getter]
    fn agent_id(&self) -> String {
        self.governor.agent_id().to_string()
    }

    /// Waits (GIL released) up to `timeout` s for the first policy bundle.
    fn wait_ready(&self, py: Python<'_>, timeout: f64) -> PyResult<bool> {
        let timeout = duration(timeout, "timeout")?;
        let governor = self.governor.clone();
        Ok(py.detach(move || governor.wait_ready_blocking(timeout)))
    }

    /// Governs one call. `None`: bypassed. Waits on the platform with the GIL released.
    #[pyo3(signature = (service, operation, params, region=None))]
    fn check(
        &self,
        py: Python<'_>,
        service: &str,
        operation: &str,
        params: &Bound<'_, PyAny>,
        region: Option<&str>,
    ) -> Option<Ruling> {
        let request = CallRequest {
            service,
            operation,
            params: to_value(params, 0),
            region: region.unwrap_or(""),
        };
        match self.governor.prepare(request) {
            Prepared::Bypass => None,
            Prepared::Done(ruling) => Some(Ruling::new(ruling)),
            Prepared::Platform(job) => {
                let governor = self.governor.clone();
                Some(Ruling::new(
                    py.detach(move || governor.resolve_blocking(job)),
                ))
            }
        }
    }

    /// Records how an executed call ended (`error_code` None: it succeeded).
    #[pyo3(signature = (ruling, error_code=None))]
    fn finish(&self, ruling: &Ruling, error_code: Option<String>) {
        let inner = ruling
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(inner) = inner {
            let outcome = match error_code {
                None => CallOutcome::succeeded(),
                Some(code) => CallOutcome::failed(code),
            };
            self.governor.finish(inner, outcome);
        }
    }

    /// Uploads queued audit events (GIL released). `True` when nothing is left.
    #[pyo3(signature = (timeout=5.0))]
    fn flush(&self, py: Python<'_>, timeout: f64) -> PyResult<bool> {
        let timeout = duration(timeout, "timeout")?;
        let governor = self.governor.clone();
        Ok(py.detach(move || governor.flush_blocking(timeout)))
    }

    /// Flushes, then stops the background tasks; what could not be sent stays on disk.
    #[pyo3(signature = (timeout=5.0))]
    fn close(&self, py: Python<'_>, timeout: f64) -> PyResult<bool> {
        let timeout = duration(timeout, "timeout")?;
        let governor = self.governor.clone();
        Ok(py.detach(move || governor.close_blocking(timeout)))
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.governor.stats();
        let d = PyDict::new(py);
        d.set_item("sync_requests", s.sync_requests)?;
        d.set_item("events_queued", s.events_queued)?;
        d.set_item("events_uploaded", s.events_uploaded)?;
        d.set_item("events_spilled", s.events_spilled)?;
        d.set_item("events_dropped", s.events_dropped)?;
        d.set_item("on_disk", s.on_disk)?;
        d.set_item("in_memory", s.in_memory)?;
        d.set_item("bundle_version", s.bundle_version)?;
        d.set_item("has_bundle", s.has_bundle)?;
        d.set_item("blocked", s.blocked)?;
        d.set_item("circuit_open", s.circuit_open)?;
        Ok(d)
    }
}

/// `(score, level)` of a call, level lower case; the same engine the governor uses.
#[pyfunction]
#[pyo3(signature = (service, operation, params=None))]
fn classify_operation(
    service: &str,
    operation: &str,
    params: Option<&Bound<'_, PyAny>>,
) -> (u8, &'static str) {
    let name = OperationName::from_parts(service, operation);
    let params = params.map_or(Value::Object(Map::new()), |p| to_value(p, 0));
    let c = classify(&name, &params);
    (c.score, c.level.as_str())
}

/// The canonical `service.operation` of any spelling.
#[pyfunction]
fn canonical_name(service: &str, operation: &str) -> String {
    OperationName::from_parts(service, operation).to_string()
}

/// A fresh `act_…` id.
#[pyfunction]
fn new_action_id() -> String {
    ascend_client::new_action_id()
}

#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeGovernor>()?;
    m.add_class::<Ruling>()?;
    m.add_function(wrap_pyfunction!(classify_operation, m)?)?;
    m.add_function(wrap_pyfunction!(canonical_name, m)?)?;
    m.add_function(wrap_pyfunction!(new_action_id, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // The test suite installs an unoptimised build (it reuses the workspace's debug
    // artifacts); the benchmarks check this before measuring anything.
    m.add("OPTIMIZED", !cfg!(debug_assertions))?;
    Ok(())
}
