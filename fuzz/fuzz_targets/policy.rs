//! Cedar policy upload: any text goes through `PolicyEngine::compile` exactly as
//! `PUT /api/v1/policies` does (UTF-8 first, empty means no policies). It must never
//! panic; an error must carry its diagnostics; a policy set that compiles must evaluate
//! a few calls without panicking and compile again from its own source.
#![no_main]

use ascend_core::{Call, OperationName, PolicyEngine, Settings, decide};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // the server answers 422 "policies must be UTF-8 text" before compiling
    };
    if text.trim().is_empty() {
        return;
    }
    match PolicyEngine::compile(text) {
        Err(e) => assert!(!e.to_string().is_empty(), "an error without a message"),
        Ok(engine) => {
            assert!(PolicyEngine::compile(engine.source()).is_ok());
            let params = json!({"Bucket": "prod-logs", "Key": "a/b", "UserName": "x"});
            for spelled in [
                "s3.delete_bucket",
                "iam.create_user",
                "s3.get_object",
                "custom.thing",
            ] {
                let name = OperationName::parse(spelled).expect("a valid name");
                let call = Call {
                    agent_id: "fuzz",
                    name: &name,
                    params: &params,
                    region: "us-east-1",
                };
                let d = decide(&call, &Settings::default(), &engine, None);
                assert!(d.risk_score <= 100);
            }
        }
    }
});
