use serde_json::json;

use super::*;
use crate::name::OperationName;
use crate::resource::main_resource;

const POLICIES: &str = r#"
@id("no-prod-bucket-delete") @reason("Bucket deletion requires manager approval")
@approval("required")
permit(principal, action == Action::"s3:DeleteBucket", resource) when { resource.name like "prod*" };

@id("never-open-ssh") @reason("Security groups must not open to the internet")
forbid(principal, action == Action::"ec2:AuthorizeSecurityGroupIngress", resource)
  when { context.risk_level == "critical" };

@id("reads-ok")
permit(principal, action in [Action::"s3:GetObject", Action::"s3:ListBuckets"], resource);

@id("tagged-table") @reason("the audit table is append-only")
forbid(principal, action == Action::"dynamodb:DeleteItem", resource)
  when { context.params has TableName && context.params.TableName == "audit" };

@id("quarantine") @reason("agent under review")
forbid(principal == Agent::"suspect", action, resource);
"#;

fn outcome_of(
    engine: &PolicyEngine,
    agent: &str,
    call: &str,
    params: serde_json::Value,
) -> (String, Vec<String>) {
    let name = OperationName::parse(call).unwrap();
    let classification = crate::risk::classify(&name, &params);
    let resource = main_resource(name.info(), &params);
    let action = name.cedar_action();
    let outcome = engine.evaluate(&PolicyInput {
        agent_id: agent,
        action: &action,
        resource: resource.as_ref(),
        service: &name.service,
        operation: &name.operation,
        risk_score: classification.score,
        risk_level: classification.level.as_str(),
        region: "us-east-1",
        params: &params,
    });
    let ids = |p: Vec<&PolicyInfo>| p.iter().map(|p| p.id.clone()).collect();
    match outcome {
        PolicyOutcome::NoMatch => ("none".into(), vec![]),
        PolicyOutcome::Allow(p) => ("allow".into(), ids(p)),
        PolicyOutcome::NeedsApproval(p) => ("approval".into(), ids(p)),
        PolicyOutcome::Deny(p) => ("deny".into(), ids(p)),
    }
}

#[test]
fn three_way_outcome_with_ids() {
    let engine = PolicyEngine::compile(POLICIES).unwrap();
    assert_eq!(engine.policies().len(), 5);
    let cases = [
        (
            "a",
            "s3.delete_bucket",
            json!({"Bucket": "prod-logs"}),
            "approval",
            "no-prod-bucket-delete",
        ),
        (
            "a",
            "s3.delete_bucket",
            json!({"Bucket": "scratch"}),
            "none",
            "",
        ),
        (
            "a",
            "s3.get_object",
            json!({"Bucket": "b", "Key": "k"}),
            "allow",
            "reads-ok",
        ),
        (
            "a",
            "dynamodb.delete_item",
            json!({"TableName": "audit", "Key": {}}),
            "deny",
            "tagged-table",
        ),
        (
            "a",
            "dynamodb.delete_item",
            json!({"TableName": "other", "Key": {}}),
            "none",
            "",
        ),
        (
            "suspect",
            "s3.get_object",
            json!({"Bucket": "b"}),
            "deny",
            "quarantine",
        ),
        (
            "suspect",
            "sqs.list_queues",
            json!({}),
            "deny",
            "quarantine",
        ),
    ];
    for (agent, call, params, expected, id) in cases {
        let (got, ids) = outcome_of(&engine, agent, call, params.clone());
        assert_eq!(got, expected, "{agent} {call} {params}");
        if !id.is_empty() {
            assert_eq!(ids, [id], "{call}");
        }
    }
    let open = json!({"GroupId": "sg", "IpPermissions": [{"IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]});
    assert_eq!(
        outcome_of(&engine, "a", "ec2.authorize_security_group_ingress", open).0,
        "deny"
    );
}

#[test]
fn reasons_and_approval_are_read_from_annotations() {
    let engine = PolicyEngine::compile(POLICIES).unwrap();
    let first = &engine.policies()[0];
    assert_eq!(first.id, "no-prod-bucket-delete");
    assert!(first.approval_required);
    assert_eq!(
        first.reason.as_deref(),
        Some("Bucket deletion requires manager approval")
    );
    assert_eq!(engine.policies()[1].effect, PolicyEffect::Forbid);
}

#[test]
fn index_skips_actions_no_policy_names() {
    let engine =
        PolicyEngine::compile(r#"permit(principal, action == Action::"s3:GetObject", resource);"#)
            .unwrap();
    assert!(engine.may_match("s3:GetObject"));
    assert!(!engine.may_match("s3:DeleteBucket"));
    assert_eq!(engine.policies()[0].id, "policy0");
}

fn error_of(text: &str) -> PolicyError {
    PolicyEngine::compile(text).expect_err(text)
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let err =
        error_of("permit(principal, action, resource);\n\npermit(principal action, resource);");
    let d = &err.diagnostics[0];
    assert_eq!(d.line, Some(3), "{err}");
    assert!(d.column.is_some(), "{err}");
    assert!(err.to_string().starts_with("line 3, column"), "{err}");
}

#[test]
fn unknown_actions_are_rejected_with_a_hint() {
    let err = error_of("forbid(principal,\n  action == Action::\"s3:deletebucket\", resource);");
    let d = &err.diagnostics[0];
    assert!(
        d.message.contains("unknown action `s3:deletebucket`"),
        "{err}"
    );
    assert!(
        d.message.contains("did you mean `s3:DeleteBucket`"),
        "{err}"
    );
    assert_eq!((d.line, d.column), (Some(2), Some(21)), "{err}");
}

#[test]
fn type_errors_are_located() {
    let err = error_of(
        "permit(principal, action == Action::\"s3:GetObject\", resource)\n  when { context.risk_score == \"high\" };",
    );
    assert_eq!(err.diagnostics[0].line, Some(2), "{err}");
    let err = error_of(
        "permit(principal, action == Action::\"s3:GetObject\", resource)\n  when { resource.owner == \"x\" };",
    );
    assert_eq!(err.diagnostics[0].line, Some(2), "{err}");
    // Parameters are optional: reading one without `has` is a validation error.
    let err = error_of(
        "permit(principal, action == Action::\"s3:GetObject\", resource)\n  when { context.params.Bucket == \"x\" };",
    );
    assert_eq!(err.diagnostics[0].line, Some(2), "{err}");
}

#[test]
fn bad_annotations_and_duplicates_are_rejected() {
    assert!(
        error_of("@approval(\"maybe\") permit(principal, action, resource);")
            .to_string()
            .contains("@approval takes only \"required\"")
    );
    assert!(
        error_of("@approval(\"required\") forbid(principal, action, resource);")
            .to_string()
            .contains("belongs on a permit")
    );
    assert!(error_of("@id(\"x\") permit(principal, action, resource);\n@id(\"x\") forbid(principal, action, resource);")
        .to_string()
        .contains("two policies have the id `x`"));
    assert!(
        error_of("permit(principal == ?principal, action, resource);")
            .to_string()
            .contains("templates")
    );
}

#[test]
fn empty_text_is_an_empty_set() {
    let engine = PolicyEngine::compile("// nothing yet\n").unwrap();
    assert!(engine.is_empty());
}

/// Cedar's own authorizer, given every attribute, must agree with `evaluate`.
fn cedar_says(engine: &PolicyEngine, input: &PolicyInput<'_>) -> (String, Vec<String>) {
    use cedar_policy::{Authorizer, Decision};
    let (uid, policies, mut needs) = match engine.by_action.get(input.action) {
        Some(e) => (e.uid.clone(), &e.policies, e.needs.clone()),
        None => (
            EntityUid::from_type_name_and_id(
                engine.action_type.clone(),
                EntityId::new(input.action),
            ),
            &engine.unconstrained,
            engine.unconstrained_needs.clone(),
        ),
    };
    needs.resource = true;
    needs.all_context = true;
    let (request, entities) = engine.request(input, &uid, &needs).unwrap();
    let (request, entities) = (
        cedar_policy::Request::from(request),
        cedar_policy::Entities::from(entities),
    );
    let response = Authorizer::new().is_authorized(&request, policies, &entities);
    let mut ids: Vec<String> = response
        .diagnostics()
        .reason()
        .map(|id| id.to_string())
        .collect();
    ids.sort();
    let verdict = match (response.decision(), ids.is_empty()) {
        (_, true) => "none",
        (Decision::Deny, false) => "deny",
        (Decision::Allow, false) => "allow",
    };
    (verdict.to_string(), ids)
}

mod differential {
    use proptest::prelude::*;

    use super::*;

    const MIXED: &str = r#"
@id("u-forbid-region") forbid(principal, action, resource) when { context.region == "cn-north-1" };
@id("u-permit-low") permit(principal, action, resource) when { context.risk_level == "low" };
@id("ops-approval") @approval("required")
permit(principal, action in [Action::"s3:DeleteBucket", Action::"ec2:TerminateInstances"], resource)
  when { [Agent::"ops", Agent::"deploy"].contains(principal) && context.risk_score >= 70 };
@id("param-rule") forbid(principal, action == Action::"s3:PutObject", resource)
  when { context.params has Key && context.params.Key like "*.exe" };
@id("name-rule") permit(principal, action == Action::"s3:DeleteBucket", resource) unless { resource.name like "prod*" };
"#;

    /// Scope constraints on principal and resource, which the engine keeps in the condition
    /// it evaluates (the action scope it drops: the index already matched it).
    const SCOPED: &str = r#"
@id("intern-no-delete") forbid(principal == Agent::"intern", action == Action::"s3:DeleteBucket", resource);
@id("suspect-anything") forbid(principal in Agent::"suspect", action, resource);
@id("one-bucket") @approval("required")
permit(principal, action in [Action::"s3:DeleteBucket", Action::"s3:PutObject"], resource == Resource::"prod-1");
@id("typed") permit(principal is Agent, action == Action::"s3:PutObject", resource is Resource)
  when { resource.name like "sandbox*" };
@id("open") permit(principal, action, resource);
"#;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
        #[test]
        fn agrees_with_cedars_authorizer(
            set in 0..3usize,
            agent in prop_oneof![Just("ops"), Just("suspect"), Just("intern"), Just("x")],
            call in prop_oneof![Just("s3.delete_bucket"), Just("s3.put_object"), Just("s3.get_object"),
                Just("ec2.terminate_instances"), Just("dynamodb.delete_item"), Just("sqs.list_queues")],
            bucket in prop_oneof![Just("prod-1"), Just("dev"), Just("sandbox-2"), Just("my-audit-logs")],
            key in prop_oneof![Just("a.exe"), Just("b.txt")],
            region in prop_oneof![Just("us-east-1"), Just("cn-north-1")],
        ) {
            let engine = PolicyEngine::compile([POLICIES, MIXED, SCOPED][set]).unwrap();
            let name = OperationName::parse(call).unwrap();
            let params = json!({"Bucket": bucket, "Key": key, "TableName": "audit", "InstanceIds": ["i-1"]});
            let classification = crate::risk::classify(&name, &params);
            let resource = main_resource(name.info(), &params);
            let action = name.cedar_action();
            let input = PolicyInput {
                agent_id: agent, action: &action, resource: resource.as_ref(),
                service: &name.service, operation: &name.operation,
                risk_score: classification.score, risk_level: classification.level.as_str(),
                region, params: &params,
            };
            let ids = |p: Vec<&PolicyInfo>| -> Vec<String> {
                let mut ids: Vec<String> = p.iter().map(|p| p.id.clone()).collect();
                ids.sort();
                ids
            };
            // Cedar's Allow lists every satisfied permit; NeedsApproval narrows that list
            // to the approval ones, so it must be a subset.
            let ours = match engine.evaluate(&input) {
                PolicyOutcome::NoMatch => ("none".to_string(), vec![]),
                PolicyOutcome::Deny(p) => ("deny".into(), ids(p)),
                PolicyOutcome::Allow(p) | PolicyOutcome::NeedsApproval(p) => ("allow".into(), ids(p)),
            };
            let theirs = cedar_says(&engine, &input);
            if ours.0 == "allow" {
                prop_assert_eq!(&ours.0, &theirs.0);
                prop_assert!(ours.1.iter().all(|id| theirs.1.contains(id)), "{:?} vs {:?}", ours, theirs);
            } else {
                prop_assert_eq!(ours, theirs);
            }
        }
    }
}
