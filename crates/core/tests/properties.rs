//! Properties of the pipeline that must hold for any input.

use ascend_core::{
    Call, OperationName, PolicyEngine, RiskLevel, Settings, Verdict, catalog, classify, decide,
    redact,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::sync::LazyLock;

const POLICIES: &str = r#"
@id("approve-deletes") @approval("required")
permit(principal, action == Action::"s3:DeleteBucket", resource) when { resource.name like "prod*" };
@id("no-open-ingress")
forbid(principal, action == Action::"ec2:AuthorizeSecurityGroupIngress", resource)
  when { context.risk_level == "critical" };
@id("quarantine") forbid(principal == Agent::"suspect", action, resource);
"#;

static ENGINE: LazyLock<PolicyEngine> = LazyLock::new(|| PolicyEngine::compile(POLICIES).unwrap());

fn any_operation() -> impl Strategy<Value = OperationName> {
    let count = catalog().operations().len();
    prop_oneof![
        (0..count).prop_map(|i| OperationName::from_info(&catalog().operations()[i])),
        ("[a-z][a-z0-9]{0,8}", "[a-z][a-z_]{0,20}")
            .prop_map(|(s, o)| OperationName::from_parts(&s, &o)),
    ]
}

fn any_params() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        prop_oneof![
            "[a-zA-Z0-9 /*:._-]{0,16}".prop_map(Value::String),
            Just(json!("0.0.0.0/0")),
            Just(json!("prod-data")),
            Just(json!("public-read")),
        ],
    ];
    let value = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[A-Z][a-zA-Z]{0,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let key = prop_oneof![
        Just("Bucket".to_string()),
        Just("ACL".to_string()),
        Just("InstanceIds".to_string()),
        Just("Password".to_string()),
        "[A-Z][a-zA-Z]{0,12}",
    ];
    prop::collection::btree_map(key, value, 0..5)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn any_settings() -> impl Strategy<Value = Settings> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::option::of("[a-z0-9]{1,6}"),
    )
        .prop_map(|(low, medium, dry_run, bypass)| Settings {
            auto_approve_low_risk: low,
            auto_approve_medium_risk: medium,
            bypass_services: bypass.into_iter().collect(),
            bypass_operations: vec!["S3:ListBuckets".into()],
            dry_run,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn level_always_matches_its_band(name in any_operation(), params in any_params()) {
        let c = classify(&name, &params);
        prop_assert!(c.score <= 100);
        prop_assert_eq!(c.level, RiskLevel::from_score(c.score));
        prop_assert!(!c.reasons.is_empty());
    }

    #[test]
    fn decide_is_deterministic(
        name in any_operation(),
        params in any_params(),
        settings in any_settings(),
        agent in prop_oneof![Just("suspect".to_string()), "[a-z]{1,8}"],
        blocked in prop::option::of("[a-z ]{0,12}"),
    ) {
        let call = Call { agent_id: &agent, name: &name, params: &params, region: "eu-west-1" };
        let first = decide(&call, &settings, &ENGINE, blocked.as_deref());
        let again = decide(&call, &settings, &ENGINE, blocked.as_deref());
        prop_assert_eq!(&first, &again);
        prop_assert_eq!(first.risk_level, RiskLevel::from_score(first.risk_score));
        if blocked.is_some() && first.verdict != Verdict::Bypass {
            prop_assert_eq!(first.verdict, Verdict::Deny);
        }
        if first.verdict == Verdict::Allow && first.policy_ids.is_empty() {
            prop_assert!(settings.auto_approves(first.risk_level));
        }
        if matches!(first.risk_level, RiskLevel::High | RiskLevel::Critical) && first.policy_ids.is_empty() {
            prop_assert_ne!(first.verdict, Verdict::Allow);
        }
    }

    #[test]
    fn bypass_never_decides(name in any_operation(), params in any_params(), settings in any_settings()) {
        let mut settings = settings;
        settings.bypass_services = vec![name.service.to_ascii_uppercase()];
        let call = Call { agent_id: "suspect", name: &name, params: &params, region: "us-east-1" };
        let d = decide(&call, &settings, &ENGINE, Some("blocked"));
        // Bypassed calls are not governed: no policy, no kill switch, nothing to audit.
        prop_assert_eq!(d.verdict, Verdict::Bypass);
        prop_assert!(d.policy_ids.is_empty());
        prop_assert!(d.executes());
    }

    #[test]
    fn redaction_keeps_shape_and_drops_secrets(params in any_params()) {
        let out = redact(&params);
        let (a, b) = (params.as_object().unwrap(), out.as_object().unwrap());
        prop_assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        if let Some(pw) = a.get("Password").filter(|v| !v.is_null()) {
            prop_assert_eq!(&b["Password"], &json!("[REDACTED]"), "{}", pw);
        }
        prop_assert_eq!(redact(&out), out.clone());
    }

    #[test]
    fn any_spelling_parses_to_the_catalog_name(i in 0..catalog().operations().len(), style in 0..3u8) {
        let op = &catalog().operations()[i];
        let spelled = match style {
            0 => format!("{}.{}", op.service, op.name),
            1 => format!("{}:{}", op.service, op.api_name),
            _ => format!("{}.{}", op.service.to_ascii_uppercase(), op.name.to_ascii_uppercase()),
        };
        let name = OperationName::parse(&spelled).unwrap();
        prop_assert_eq!(name.service.as_str(), op.service);
        prop_assert_eq!(name.operation.as_str(), op.name);
    }
}

#[test]
fn bypass_lists_take_any_spelling() {
    let name = OperationName::parse("s3.list_buckets").unwrap();
    for entry in ["s3.list_buckets", "S3:ListBuckets", "s3.LIST_BUCKETS"] {
        let settings = Settings {
            bypass_operations: vec![entry.into()],
            ..Settings::default()
        };
        assert!(settings.bypasses(&name), "{entry}");
    }
    let settings = Settings {
        bypass_operations: vec!["s3.get_object".into()],
        ..Settings::default()
    };
    assert!(!settings.bypasses(&name));
}

#[test]
fn dry_run_keeps_the_verdict_but_executes() {
    let name = OperationName::parse("iam.create_user").unwrap();
    let params = json!({"UserName": "u"});
    let call = Call {
        agent_id: "a",
        name: &name,
        params: &params,
        region: "us-east-1",
    };
    let settings = Settings {
        dry_run: true,
        ..Settings::default()
    };
    let d = decide(&call, &settings, &PolicyEngine::empty(), None);
    assert_eq!(d.verdict, Verdict::NeedsApproval);
    assert!(d.dry_run && d.executes());
}

#[test]
fn defaults_follow_the_auto_approve_flags() {
    let engine = PolicyEngine::empty();
    let verdict = |call: &str, settings: &Settings| {
        let name = OperationName::parse(call).unwrap();
        let params = json!({});
        decide(
            &Call {
                agent_id: "a",
                name: &name,
                params: &params,
                region: "r",
            },
            settings,
            &engine,
            None,
        )
        .verdict
    };
    let default = Settings::default();
    assert_eq!(verdict("s3.list_buckets", &default), Verdict::Allow);
    assert_eq!(verdict("s3.put_object", &default), Verdict::NeedsApproval);
    assert_eq!(
        verdict("s3.delete_bucket", &default),
        Verdict::NeedsApproval
    );
    let trusting = Settings {
        auto_approve_medium_risk: true,
        ..default.clone()
    };
    assert_eq!(verdict("s3.put_object", &trusting), Verdict::Allow);
    let strict = Settings {
        auto_approve_low_risk: false,
        ..default
    };
    assert_eq!(verdict("s3.list_buckets", &strict), Verdict::NeedsApproval);
}

#[test]
fn kill_switch_denies_with_its_reason() {
    let name = OperationName::parse("s3.list_buckets").unwrap();
    let call = Call {
        agent_id: "bot",
        name: &name,
        params: &Value::Null,
        region: "r",
    };
    let d = decide(
        &call,
        &Settings::default(),
        &PolicyEngine::empty(),
        Some("runaway loop"),
    );
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(
        d.reason,
        "agent `bot` is blocked by an administrator: runaway loop"
    );
}

#[test]
fn a_shared_iam_action_governs_every_service_that_uses_it() {
    let engine = PolicyEngine::compile(
        r#"@id("no-lb-deletes") forbid(principal, action == Action::"elasticloadbalancing:DeleteLoadBalancer", resource);"#,
    )
    .unwrap();
    for call in ["elb.delete_load_balancer", "elbv2.delete_load_balancer"] {
        let name = OperationName::parse(call).unwrap();
        let params = json!({"LoadBalancerName": "lb"});
        let call = Call {
            agent_id: "a",
            name: &name,
            params: &params,
            region: "r",
        };
        let d = decide(&call, &Settings::default(), &engine, None);
        assert_eq!(d.verdict, Verdict::Deny, "{name}");
        assert_eq!(d.policy_ids, ["no-lb-deletes"]);
    }
}
