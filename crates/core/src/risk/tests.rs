use serde_json::{Value, json};

use super::*;

fn score(call: &str, params: Value) -> (u8, RiskLevel, Vec<String>) {
    let name = OperationName::parse(call).unwrap();
    let c = classify(&name, &params);
    (c.score, c.level, c.reasons)
}

#[test]
fn fixed_points_of_the_design() {
    use RiskLevel::*;
    for (call, level) in [
        ("s3.get_object", Low),
        ("ec2.describe_instances", Low),
        ("s3.list_buckets", Low),
        ("s3.put_object", Medium),
        ("dynamodb.put_item", Medium),
        ("s3.delete_bucket", High),
        ("ec2.terminate_instances", High),
        ("iam.create_user", Critical),
        ("kms.delete_key", Critical),
        ("unknownservice.unknown_operation", Medium),
    ] {
        let (s, l, reasons) = score(call, json!({}));
        assert_eq!(l, level, "{call} scored {s}: {reasons:?}");
        assert!(!reasons.is_empty(), "{call} has no reason");
    }
    assert_eq!(score("s3.delete_bucket", json!({"Bucket": "b"})).0, 75);
    assert_eq!(score("s3:DeleteBucket", json!({"Bucket": "b"})).0, 75);
    assert_eq!(score("madeup.frobnicate", Value::Null).0, 50);
}

#[test]
fn every_iam_and_kms_write_is_critical() {
    for op in crate::catalog().operations() {
        if !["iam", "kms"].contains(&op.service) {
            continue;
        }
        let name = OperationName::from_info(op);
        let c = classify(&name, &Value::Null);
        let writes = matches!(
            op.access,
            Some(AccessLevel::Write | AccessLevel::Tagging | AccessLevel::PermissionsManagement)
        );
        if writes {
            assert_eq!(c.level, RiskLevel::Critical, "{name}: {:?}", c.reasons);
        }
    }
}

#[test]
fn catalog_access_levels_set_the_base() {
    // No curated entry for these: the catalog's access level decides.
    let (s, l, r) = score("sagemaker.list_models", Value::Null);
    assert_eq!((s, l), (SCORE_LIST, RiskLevel::Low), "{r:?}");
    assert!(r[0].contains("IAM access level List"), "{r:?}");
    let (_, l, r) = score("glue.delete_database", Value::Null);
    assert_eq!(l, RiskLevel::High, "{r:?}");
    let (_, l, _) = score("glue.create_database", Value::Null);
    assert_eq!(l, RiskLevel::Medium);
}

#[test]
fn verbs_judge_names_the_catalog_lacks() {
    assert_eq!(
        classify_action_type("database_write").level,
        RiskLevel::Medium
    );
    assert_eq!(classify_action_type("file_delete").level, RiskLevel::High);
    assert_eq!(classify_action_type("get_weather").level, RiskLevel::Low);
    assert_eq!(classify_action_type("ponder").score, SCORE_UNKNOWN);
}

#[test]
fn public_access_escalates() {
    let (s, l, r) = score(
        "s3.put_bucket_acl",
        json!({"Bucket": "b", "ACL": "public-read"}),
    );
    assert_eq!(l, RiskLevel::Critical, "{s} {r:?}");
    assert!(r.iter().any(|r| r.contains("public-read")), "{r:?}");
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
    ]})
    .to_string();
    let (_, l, _) = score(
        "s3.put_bucket_policy",
        json!({"Bucket": "b", "Policy": policy}),
    );
    assert_eq!(l, RiskLevel::Critical);
    let private =
        json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}}]});
    let (s, _, _) = score(
        "s3.put_bucket_policy",
        json!({"Bucket": "b", "Policy": private.to_string()}),
    );
    assert_eq!(s, 75);
}

#[test]
fn open_ingress_escalates() {
    let open = json!({"GroupId": "sg-1", "IpPermissions": [
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    ]});
    let (_, l, r) = score("ec2.authorize_security_group_ingress", open);
    assert_eq!(l, RiskLevel::Critical, "{r:?}");
    let closed =
        json!({"GroupId": "sg-1", "IpPermissions": [{"IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]});
    assert_eq!(
        score("ec2.authorize_security_group_ingress", closed).1,
        RiskLevel::High
    );
}

#[test]
fn admin_grants_and_disabled_monitoring_escalate() {
    let (s, _, _) = score(
        "iam.attach_role_policy",
        json!({"RoleName": "r", "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
    );
    assert_eq!(s, 95);
    let doc = json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    let (s, _, _) = score(
        "iam.put_user_policy",
        json!({"UserName": "u", "PolicyName": "p", "PolicyDocument": doc.to_string()}),
    );
    assert_eq!(s, 95);
    let (_, l, _) = score(
        "guardduty.update_detector",
        json!({"DetectorId": "d", "Enable": false}),
    );
    assert_eq!(l, RiskLevel::Critical);
    assert_eq!(
        score("cloudtrail.stop_logging", json!({"Name": "t"})).1,
        RiskLevel::Critical
    );
}

#[test]
fn mass_deletes_and_production_names_escalate() {
    let ids: Vec<String> = (0..12).map(|i| format!("i-{i}")).collect();
    let (s, _, r) = score("ec2.terminate_instances", json!({"InstanceIds": ids}));
    assert_eq!(s, 90, "{r:?}");
    let (s, l, r) = score("s3.delete_bucket", json!({"Bucket": "prod-data"}));
    assert_eq!((s, l), (85, RiskLevel::Critical), "{r:?}");
    assert!(r.iter().any(|r| r.contains("production")));
    // Reads of production resources stay reads; "product" is not "prod".
    assert_eq!(
        score("s3.get_object", json!({"Bucket": "prod-data", "Key": "k"})).0,
        20
    );
    assert_eq!(
        score("s3.delete_bucket", json!({"Bucket": "product-images"})).0,
        75
    );
}

#[test]
fn bands_are_exact() {
    for (s, level) in [
        (0, RiskLevel::Low),
        (44, RiskLevel::Low),
        (45, RiskLevel::Medium),
        (69, RiskLevel::Medium),
        (70, RiskLevel::High),
        (84, RiskLevel::High),
        (85, RiskLevel::Critical),
        (100, RiskLevel::Critical),
    ] {
        assert_eq!(RiskLevel::from_score(s), level, "{s}");
    }
    assert_eq!(RiskLevel::parse("HIGH"), Some(RiskLevel::High));
    assert_eq!(
        serde_json::to_string(&RiskLevel::Critical).unwrap(),
        "\"critical\""
    );
}
