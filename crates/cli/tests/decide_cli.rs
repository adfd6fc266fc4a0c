//! `ascend classify` and `ascend policy check|test`: what a person sees, and the exit
//! code and message for every kind of bad input.

use std::io::Write;
use std::process::{Command, Output};

fn ascend(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ascend"))
        .args(args)
        .output()
        .expect("the ascend binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn policy_file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

const POLICY: &str = r#"@id("no-prod-bucket-delete") @reason("Bucket deletion requires manager approval")
@approval("required")
permit(principal, action == Action::"s3:DeleteBucket", resource) when { resource.name like "prod*" };

@id("never-open-ssh") @reason("Security groups must not open to the internet")
forbid(principal, action == Action::"ec2:AuthorizeSecurityGroupIngress", resource)
  when { context.risk_level == "critical" };
"#;

#[test]
fn classify_prints_level_score_and_reasons() {
    let out = ascend(&[
        "classify",
        "s3.delete_bucket",
        "--params",
        r#"{"Bucket":"b"}"#,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("s3.delete_bucket: HIGH (75)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  - s3.delete_bucket: deletes a bucket (75)"),
        "{stdout}"
    );
}

#[test]
fn classify_json_has_the_documented_fields() {
    for spelling in ["s3.delete_bucket", "s3:DeleteBucket", "S3.DELETE_BUCKET"] {
        let out = ascend(&[
            "classify",
            spelling,
            "--params",
            r#"{"Bucket":"b"}"#,
            "--json",
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["service"], "s3");
        assert_eq!(json["operation"], "delete_bucket");
        assert_eq!(json["risk_score"], 75);
        assert_eq!(json["risk_level"], "high");
        assert!(json["reasons"].as_array().is_some_and(|r| !r.is_empty()));
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 5, "{keys:?}");
    }
}

#[test]
fn bad_classify_input_is_one_message_and_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["classify", "s3"], "expected `service.operation`"),
        (&["classify", "s3.delete bucket"], "only letters"),
        (
            &["classify", "s3.delete_bucket", "--params", "{"],
            "--params is not valid JSON",
        ),
        (
            &["classify", "s3.delete_bucket", "--params", "[1]"],
            "must be a JSON object",
        ),
        (&["classify"], "required"),
        (
            &["classify", "s3.x", "--no-such-flag"],
            "unexpected argument",
        ),
    ];
    for (args, message) in cases {
        let out = ascend(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
    }
}

#[test]
fn policy_check_accepts_valid_files_and_locates_errors() {
    let good = policy_file(POLICY);
    let out = ascend(&["policy", "check", good.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("2 policies valid"));

    let bad =
        policy_file("permit(principal, action, resource);\npermit(principal action, resource);\n");
    let out = ascend(&["policy", "check", bad.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("line 2, column 18: unexpected token `action`"),
        "{stderr}"
    );

    let unknown =
        policy_file("forbid(principal, action == Action::\"s3:DeleteBukket\", resource);");
    let out = ascend(&["policy", "check", unknown.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown action `s3:DeleteBukket`"));

    let out = ascend(&["policy", "check", "/no/such/file.cedar"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read /no/such/file.cedar"));
}

#[test]
fn policy_test_prints_verdict_policy_and_reason() {
    let file = policy_file(POLICY);
    let path = file.path().to_str().unwrap();
    let out = ascend(&[
        "policy",
        "test",
        path,
        "--agent",
        "a1",
        "--call",
        "s3:DeleteBucket",
        "--params",
        r#"{"Bucket":"prod-logs"}"#,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("NEEDS APPROVAL: s3.delete_bucket by agent a1\n"),
        "{stdout}"
    );
    assert!(stdout.contains("policy: no-prod-bucket-delete"), "{stdout}");
    assert!(
        stdout.contains("reason: Bucket deletion requires manager approval"),
        "{stdout}"
    );

    let open = r#"{"GroupId":"sg-1","IpPermissions":[{"IpRanges":[{"CidrIp":"0.0.0.0/0"}]}]}"#;
    let out = ascend(&[
        "policy",
        "test",
        path,
        "--call",
        "ec2.authorize_security_group_ingress",
        "--params",
        open,
    ]);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("DENY"), "{stdout}");
    assert!(
        stdout.contains("reason: Security groups must not open to the internet"),
        "{stdout}"
    );

    let out = ascend(&["policy", "test", path, "--call", "s3.list_buckets"]);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("ALLOW"), "{stdout}");
    assert!(
        stdout.contains("policy: none matched; decided by the defaults"),
        "{stdout}"
    );
}

#[test]
fn bad_policy_test_input_is_exit_2() {
    let file = policy_file(POLICY);
    let path = file.path().to_str().unwrap();
    for (args, message) in [
        (
            vec!["policy", "test", path, "--call", "nodot"],
            "expected `service.operation`",
        ),
        (
            vec!["policy", "test", path, "--call", "s3.x", "--params", "nope"],
            "not valid JSON",
        ),
        (vec!["policy", "test", path], "--call"),
    ] {
        let out = ascend(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(message),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn help_is_everywhere() {
    for args in [
        vec!["--help"],
        vec!["classify", "--help"],
        vec!["policy", "--help"],
        vec!["policy", "check", "--help"],
        vec!["policy", "test", "--help"],
    ] {
        let out = ascend(&args);
        assert!(out.status.success(), "{args:?}");
        assert!(text(&out.stdout).contains("Usage:"), "{args:?}");
    }
}
