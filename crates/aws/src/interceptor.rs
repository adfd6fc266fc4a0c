//! The [`Intercept`] implementation and the asynchronous approval gate.
//!
//! Interceptor hooks are synchronous. A call the governor decides locally (the common case:
//! allowed or denied with the policy bundle) is settled inside `modify_before_serialization`
//! without any I/O. A call that needs the platform (approval, or no bundle yet) must wait
//! without blocking a thread, so the hook swaps the operation's request serializer (held in
//! the config bag) for one that puts a gate in front of the serialized body and asks the
//! orchestrator to load the body into memory ([`LoadedRequestBody::Requested`]). The
//! orchestrator awaits that load right after serialization, before the retry loop, signing
//! or any connection: the gate's first poll awaits [`Governor::resolve`], then yields the
//! real body, or fails with [`GovernanceDenied`] and the call ends there.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use ascend_client::{
    CallOutcome, Decided, GovernanceDenied, Governor, PlatformJob, Prepared, Ruling,
};
use aws_runtime::invocation_id::InvocationIdInterceptor;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextMut, FinalizerInterceptorContextRef, Input,
};
use aws_smithy_runtime_api::client::interceptors::{DisableInterceptor, Intercept};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, LoadedRequestBody, Metadata};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::client::ser_de::{SerializeRequest, SharedRequestSerializer};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use aws_types::region::Region;
use bytes::Bytes;
use http_body_1_0::{Body, Frame, SizeHint};

use crate::params;

/// Log target of the decision lines (the Python package's `ascend_boto3`).
pub const LOG_TARGET: &str = "ascend_aws";
/// Log target of the one-JSON-object-per-call metrics records.
pub const METRICS_TARGET: &str = "ascend_aws::metrics";

/// The name of the interceptor every aws-sdk-rust service adds when it presigns a request.
const PRESIGNING_INTERCEPTOR: &str = "SigV4PresigningInterceptor";

/// Governs every operation of the SDK client it is added to. Made by
/// [`crate::Ascend::interceptor`]; cheap to clone.
#[derive(Clone, Debug)]
pub struct AscendInterceptor {
    governor: Governor,
}

impl AscendInterceptor {
    pub(crate) fn new(governor: Governor) -> Self {
        Self { governor }
    }
}

/// The ruling of an executing call, finished in `read_after_execution`: held alone when
/// decided in `modify_before_serialization`, shared with the approval gate otherwise.
/// Kept in the config bag's top layer, where `read_after_execution` takes it through a
/// `&mut` (no lock for the common, settled case).
#[derive(Debug)]
enum Slot {
    Settled(Option<Ruling>),
    Gated(Arc<Mutex<Option<Ruling>>>),
}

impl Storable for Slot {
    type Storer = StoreReplace<Self>;
}

impl Slot {
    fn take(&mut self) -> Option<Ruling> {
        match self {
            Self::Settled(ruling) => ruling.take(),
            Self::Gated(cell) => cell.lock().unwrap_or_else(|e| e.into_inner()).take(),
        }
    }
}

fn put(cell: &Mutex<Option<Ruling>>, ruling: Ruling) {
    *cell.lock().unwrap_or_else(|e| e.into_inner()) = Some(ruling);
}

/// The log lines and metrics record of one governed call, as the Python package writes them.
pub(crate) fn report(ruling: &Ruling, agent_id: &str) {
    if let Some(warning) = &ruling.warning {
        log::warn!(target: LOG_TARGET, "{warning}");
    }
    let level = if ruling.decided == Decided::Denied {
        log::Level::Warn
    } else {
        log::Level::Info
    };
    if log::log_enabled!(target: LOG_TARGET, level) {
        log::log!(target: LOG_TARGET, level, "{}", ruling.log_line());
    }
    if ruling.dry_run {
        log::info!(target: LOG_TARGET, "[DRY RUN] Would execute: {}", ruling.name());
    }
    if log::log_enabled!(target: METRICS_TARGET, log::Level::Info) {
        log::info!(target: METRICS_TARGET, "{}", ruling.metrics_record(agent_id));
    }
}

/// Whether this invocation presigns a request. Every service's presigning plugin disables
/// the invocation-id interceptor (a presigned URL carries no such header), and one look in
/// the config bag for that is cheaper than walking the client's interceptors, which clones
/// and drops an `Arc` for each (~1.5% of a governed call); the walk by name confirms.
fn presigning(runtime_components: &RuntimeComponents, cfg: &ConfigBag) -> bool {
    cfg.load::<DisableInterceptor<InvocationIdInterceptor>>()
        .is_some()
        && runtime_components
            .interceptors()
            .any(|i| i.name() == PRESIGNING_INTERCEPTOR)
}

// Tells the orchestrator which hooks this interceptor has, so it skips the other
// seventeen on every call.
#[aws_smithy_runtime_api::client::interceptors::dyn_dispatch_hint]
impl Intercept for AscendInterceptor {
    fn name(&self) -> &'static str {
        "AscendGovernance"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // A presigned URL is made locally and sends nothing: not governed (as in Python,
        // where `generate_presigned_url` is not governed either).
        if presigning(runtime_components, cfg) {
            return Ok(());
        }
        // Names and region are borrowed from the config bag for the decision only (the
        // bag is changed below, once they are no longer needed).
        let prepared = {
            let Some(metadata) = cfg.load::<Metadata>() else {
                return Err(
                    "Ascend governance: the SDK gave no operation metadata; call refused".into(),
                );
            };
            let region = cfg.load::<Region>();
            // Parameters are read only for a governed call (not for a bypassed one).
            self.governor.prepare_with(
                metadata.service(),
                metadata.name(),
                region.map_or("", |r| r.as_ref()),
                || params::from_debug(context.input() as &Input),
            )
        };
        match prepared {
            Prepared::Bypass => Ok(()),
            Prepared::Done(ruling) => {
                report(&ruling, self.governor.agent_id());
                if let Some(denied) = ruling.denial() {
                    return Err(Box::new(denied));
                }
                cfg.interceptor_state()
                    .store_put(Slot::Settled(Some(ruling)));
                Ok(())
            }
            Prepared::Platform(job) => {
                let original = cfg
                    .load::<SharedRequestSerializer>()
                    .cloned()
                    .ok_or("Ascend governance: no request serializer; call refused")?;
                let slot = Arc::new(Mutex::new(None));
                let gate = GatedSerializer {
                    original,
                    governor: self.governor.clone(),
                    job: Mutex::new(Some(job)),
                    slot: slot.clone(),
                };
                let layer = cfg.interceptor_state();
                layer.store_put(Slot::Gated(slot));
                layer.store_put(SharedRequestSerializer::new(gate));
                Ok(())
            }
        }
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(ruling) = cfg
            .get_mut_from_interceptor_state::<Slot>()
            .and_then(Slot::take)
        else {
            return Ok(());
        };
        let outcome = match context.output_or_error() {
            Some(Ok(_)) => CallOutcome::succeeded(),
            Some(Err(error)) => {
                let code = match error.as_operation_error() {
                    Some(operation_error) => error_code(operation_error),
                    None if error.is_timeout_error() => "TimeoutError".to_string(),
                    None => "DispatchFailure".to_string(),
                };
                CallOutcome::failed(code)
            }
            None => CallOutcome::failed("Unknown"),
        };
        self.governor.finish(ruling, outcome);
        Ok(())
    }
}

/// The service's error code (`NoSuchBucket`) from a generated error's `Debug`
/// (`ErrorMetadata { code: Some("NoSuchBucket"), … }`), else its variant name.
fn error_code(error: &dyn fmt::Debug) -> String {
    let text = format!("{error:?}");
    if let Some(start) = text.find("code: Some(\"") {
        let rest = &text[start + 12..];
        if let Some(end) = rest.find('"') {
            return rest[..end].to_string();
        }
    }
    let head: String = text
        .trim_start_matches("TypeErasedError:")
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if head.is_empty() {
        "ServiceError".to_string()
    } else {
        head
    }
}

/// The operation's serializer with the approval gate in front of the body.
struct GatedSerializer {
    original: SharedRequestSerializer,
    governor: Governor,
    job: Mutex<Option<PlatformJob>>,
    slot: Arc<Mutex<Option<Ruling>>>,
}

impl fmt::Debug for GatedSerializer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatedSerializer")
            .field("original", &self.original)
            .finish_non_exhaustive()
    }
}

impl SerializeRequest for GatedSerializer {
    fn serialize_input(&self, input: Input, cfg: &mut ConfigBag) -> Result<HttpRequest, BoxError> {
        let mut request = self.original.serialize_input(input, cfg)?;
        let job = self
            .job
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or("Ascend governance: the call was serialized twice; refused")?;
        let governor = self.governor.clone();
        let slot = self.slot.clone();
        let decision = async move {
            let ruling = governor.resolve(job).await;
            report(&ruling, governor.agent_id());
            match ruling.denial() {
                Some(denied) => Err(denied),
                None => {
                    put(&slot, ruling);
                    Ok(())
                }
            }
        };
        let body = std::mem::replace(request.body_mut(), SdkBody::taken());
        *request.body_mut() = SdkBody::from_body_1_x(GateBody {
            gate: Some(Mutex::new(Box::pin(decision))),
            inner: body,
        });
        cfg.interceptor_state()
            .store_put(LoadedRequestBody::Requested);
        Ok(request)
    }
}

type Decision = Pin<Box<dyn Future<Output = Result<(), GovernanceDenied>> + Send>>;

/// A request body that yields nothing until the decision allows the call.
struct GateBody {
    /// `Mutex` only to make the future `Sync`; it is polled through `get_mut`, never locked.
    gate: Option<Mutex<Decision>>,
    inner: SdkBody,
}

impl Body for GateBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(gate) = &mut this.gate {
            let decision = gate.get_mut().unwrap_or_else(|e| e.into_inner());
            match decision.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => this.gate = None,
                Poll::Ready(Err(denied)) => {
                    this.gate = None;
                    this.inner = SdkBody::empty();
                    return Poll::Ready(Some(Err(Box::new(denied))));
                }
            }
        }
        Pin::new(&mut this.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.gate.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.gate.is_some() {
            SizeHint::default()
        } else {
            self.inner.size_hint()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_from_generated_debug() {
        struct E(&'static str);
        impl fmt::Debug for E {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.0)
            }
        }
        assert_eq!(
            error_code(&E(
                "TypeErasedError:NoSuchBucket(NoSuchBucket { message: None, meta: ErrorMetadata { code: Some(\"NoSuchBucket\"), message: None } })"
            )),
            "NoSuchBucket"
        );
        assert_eq!(
            error_code(&E("TypeErasedError:Unhandled(Unhandled)")),
            "Unhandled"
        );
    }
}
