//! Operation names in any common spelling: `s3.delete_bucket`, `s3:DeleteBucket`,
//! `S3.DELETE_BUCKET`, all naming one canonical `s3.delete_bucket`.

use std::fmt;

use crate::catalog::{OperationInfo, catalog};

/// A canonical operation name: boto3 client name and snake_case method name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OperationName {
    pub service: String,
    pub operation: String,
}

/// A name that is not of the form `service.operation`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid operation name `{input}`: {problem}; expected `service.operation` \
     (e.g. `s3.delete_bucket`) or `service:Operation` (e.g. `s3:DeleteBucket`)"
)]
pub struct NameError {
    pub input: String,
    pub problem: &'static str,
}

fn is_service_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn is_operation_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `DeleteBucket` → `delete_bucket`; `ListObjectsV2` → `list_objects_v2`. Used only for
/// names the catalog lacks; catalog names come from botocore itself.
fn to_snake(name: &str) -> String {
    if name.contains('_') || !name.chars().any(|c| c.is_ascii_uppercase()) {
        return name.to_ascii_lowercase();
    }
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).map(|j| chars[j]);
        let next = chars.get(i + 1).copied();
        let boundary = match prev {
            None => false,
            Some(p) if c.is_ascii_uppercase() => {
                p.is_ascii_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_ascii_uppercase() && next.is_some_and(|n| n.is_ascii_lowercase()))
            }
            _ => false,
        };
        if boundary {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

impl OperationName {
    /// Parses any common spelling. Names the catalog knows come back in the catalog's
    /// spelling; others are lower-cased and snake_cased.
    pub fn parse(input: &str) -> Result<Self, NameError> {
        let error = |problem| NameError {
            input: input.to_string(),
            problem,
        };
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(error("the name is empty"));
        }
        let (service, operation) = trimmed
            .split_once(['.', ':'])
            .ok_or_else(|| error("there is no `.` or `:` between service and operation"))?;
        if service.is_empty() {
            return Err(error("the service is empty"));
        }
        if operation.is_empty() {
            return Err(error("the operation is empty"));
        }
        if !service.chars().all(is_service_char) {
            return Err(error(
                "the service may hold only letters, digits, `-` and `_`",
            ));
        }
        if !operation.chars().all(is_operation_char) {
            return Err(error("the operation may hold only letters, digits and `_`"));
        }
        Ok(Self::from_parts(service, operation))
    }

    /// Builds a name from a service and operation already split, in any spelling.
    pub fn from_parts(service: &str, operation: &str) -> Self {
        match catalog().find(service, operation) {
            Some(info) => Self::from_info(info),
            None => {
                let service = service.to_ascii_lowercase();
                let service = catalog()
                    .client_name(&service)
                    .map(str::to_string)
                    .unwrap_or(service);
                Self {
                    service,
                    operation: to_snake(operation),
                }
            }
        }
    }

    pub fn from_info(info: &OperationInfo) -> Self {
        Self {
            service: info.service.to_string(),
            operation: info.name.to_string(),
        }
    }

    /// The catalog's entry, when the operation is a real AWS one.
    pub fn info(&self) -> Option<&'static OperationInfo> {
        catalog().operation(&self.service, &self.operation)
    }

    /// The Cedar action id: `<iam-prefix>:<ApiName>` (`s3:DeleteBucket`).
    pub fn cedar_action(&self) -> String {
        match self.info() {
            Some(info) => info.cedar_action(),
            None => {
                let api: String = self
                    .operation
                    .split('_')
                    .map(|part| {
                        let mut chars = part.chars();
                        chars.next().map_or_else(String::new, |first| {
                            first.to_ascii_uppercase().to_string() + chars.as_str()
                        })
                    })
                    .collect();
                format!("{}:{api}", self.service)
            }
        }
    }
}

impl fmt::Display for OperationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.service, self.operation)
    }
}

impl std::str::FromStr for OperationName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_are_one_name() {
        for spelling in [
            "s3.delete_bucket",
            "s3:DeleteBucket",
            "S3.DELETE_BUCKET",
            " s3.DeleteBucket ",
        ] {
            let name = OperationName::parse(spelling).unwrap();
            assert_eq!(name.to_string(), "s3.delete_bucket", "{spelling}");
        }
    }

    #[test]
    fn unknown_names_are_snake_cased() {
        let name = OperationName::parse("Acme:DoThingV2").unwrap();
        assert_eq!(name.to_string(), "acme.do_thing_v2");
        assert_eq!(to_snake("DescribeDBInstances"), "describe_db_instances");
        assert_eq!(name.cedar_action(), "acme:DoThingV2");
    }

    #[test]
    fn malformed_names_say_what_was_expected() {
        for (bad, problem) in [
            ("", "empty"),
            ("s3", "no `.` or `:`"),
            (".delete_bucket", "service is empty"),
            ("s3.", "operation is empty"),
            ("s3.delete bucket", "only letters"),
            ("s3/x.delete", "service may hold"),
        ] {
            let err = OperationName::parse(bad).unwrap_err().to_string();
            assert!(err.contains(problem), "{bad:?}: {err}");
            assert!(err.contains("expected `service.operation`"), "{err}");
        }
    }
}
