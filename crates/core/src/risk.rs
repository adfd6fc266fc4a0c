//! Risk classification: a 0–100 score, its level, and the reasons behind both.
//!
//! Sources, most specific first: curated entries, the catalog's IAM access level, verb
//! heuristics for names the catalog lacks, MEDIUM 50 otherwise; then parameter-aware
//! escalations (public access, open ingress, admin grants, disabled logging, mass deletes,
//! production names) can only raise the score. The level always follows the score.

use std::fmt;
use std::sync::LazyLock;

use rustc_hash::FxHashMap as HashMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::{AccessLevel, OperationInfo};
use crate::name::OperationName;

mod curated;
mod escalate;

/// Risk bands: LOW 0–44 · MEDIUM 45–69 · HIGH 70–84 · CRITICAL 85–100.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
    Critical,
}

impl RiskLevel {
    pub fn from_score(score: u8) -> Self {
        match score {
            0..=44 => Self::Low,
            45..=69 => Self::Medium,
            70..=84 => Self::High,
            _ => Self::Critical,
        }
    }

    /// Lower case, as the API and Cedar context spell it: `high`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// Upper case, as log lines spell it: `HIGH`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Low => "LOW",
            Self::Medium => "MEDIUM",
            Self::High => "HIGH",
            Self::Critical => "CRITICAL",
        }
    }

    /// Parses `low`, `LOW`, `Low` ….
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "low" => Some(Self::Low),
            "medium" => Some(Self::Medium),
            "high" => Some(Self::High),
            "critical" => Some(Self::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for RiskLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A score, its level and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classification {
    pub score: u8,
    pub level: RiskLevel,
    pub reasons: Vec<String>,
}

/// What an operation does, judged from its first word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verb {
    Read,
    Write,
    Destructive,
    Unknown,
}

const READ_VERBS: &[&str] = &[
    "get",
    "list",
    "describe",
    "head",
    "query",
    "scan",
    "search",
    "lookup",
    "select",
    "check",
    "validate",
    "estimate",
    "preview",
    "view",
    "read",
    "fetch",
    "batch_get",
    "count",
    "verify",
    "simulate",
    "test",
    "filter",
    "poll",
    "receive",
    "detect",
    "discover",
    "show",
];
const DESTRUCTIVE_VERBS: &[&str] = &[
    "delete",
    "terminate",
    "remove",
    "destroy",
    "purge",
    "drop",
    "deregister",
    "disable",
    "detach",
    "disassociate",
    "stop",
    "reset",
    "revoke",
    "wipe",
    "truncate",
    "empty",
    "erase",
    "abort",
    "kill",
    "shutdown",
    "uninstall",
    "unregister",
    "schedule_key_deletion",
];
const WRITE_VERBS: &[&str] = &[
    "create",
    "put",
    "update",
    "modify",
    "set",
    "add",
    "attach",
    "associate",
    "enable",
    "start",
    "run",
    "invoke",
    "send",
    "publish",
    "copy",
    "import",
    "register",
    "tag",
    "untag",
    "write",
    "insert",
    "upload",
    "restore",
    "reboot",
    "change",
    "apply",
    "replace",
    "execute",
    "grant",
    "batch_write",
    "authorize",
    "assign",
    "allocate",
    "release",
    "move",
    "rename",
    "save",
    "submit",
    "upsert",
    "store",
    "transfer",
    "rotate",
    "restart",
    "deploy",
    "launch",
];

static VERBS: LazyLock<HashMap<&'static str, Verb>> = LazyLock::new(|| {
    let mut verbs = HashMap::default();
    // Inserted weakest first, so a word listed twice keeps its most dangerous meaning.
    for (verb, table) in [
        (Verb::Write, WRITE_VERBS),
        (Verb::Read, READ_VERBS),
        (Verb::Destructive, DESTRUCTIVE_VERBS),
    ] {
        for word in table {
            verbs.insert(*word, verb);
        }
    }
    verbs
});

/// Judges an operation by its leading word (or words: `batch_get`, `schedule_key_deletion`),
/// or by a verb anywhere in a free-form name such as `database_write`.
pub(crate) fn verb_of(name: &str) -> (Verb, Option<&'static str>) {
    let lowered;
    let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
        lowered = name.to_ascii_lowercase();
        lowered.as_str()
    } else {
        name
    };
    let lookup = |word: &str| VERBS.get_key_value(word).map(|(w, v)| (*v, Some(*w)));
    // The leading one to three words, longest first.
    let mut ends = [0; 3];
    let mut count = 0;
    for end in name
        .match_indices('_')
        .map(|(i, _)| i)
        .chain([name.len()])
        .take(3)
    {
        ends[count] = end;
        count += 1;
    }
    if let Some(found) = ends[..count]
        .iter()
        .rev()
        .find_map(|&end| lookup(&name[..end]))
    {
        return found;
    }
    // Free-form action types (`database_write`, `file_delete`): any word that is a verb.
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .find_map(lookup)
        .unwrap_or((Verb::Unknown, None))
}

pub(crate) const SCORE_LIST: u8 = 10;
pub(crate) const SCORE_READ: u8 = 20;
pub(crate) const SCORE_TAGGING: u8 = 45;
pub(crate) const SCORE_WRITE: u8 = 55;
pub(crate) const SCORE_DESTRUCTIVE: u8 = 75;
pub(crate) const SCORE_PERMISSIONS: u8 = 90;
pub(crate) const SCORE_IDENTITY_WRITE: u8 = 90;
pub(crate) const SCORE_UNKNOWN: u8 = 50;

/// Services whose every write changes who may do what, or key material.
const IDENTITY_SERVICES: &[&str] = &["iam", "kms"];

/// Scores a call. `params` may be `Value::Null` when the parameters are not known.
pub fn classify(name: &OperationName, params: &Value) -> Classification {
    let mut reasons = Vec::with_capacity(2);
    let info = name.info();
    let (verb, verb_word) = verb_of(&name.operation);
    let mut score = base_score(name, info, verb, verb_word, &mut reasons);

    let is_write = match info.and_then(|i| i.access) {
        Some(AccessLevel::Write | AccessLevel::Tagging | AccessLevel::PermissionsManagement) => {
            true
        }
        Some(_) => false,
        None => matches!(verb, Verb::Write | Verb::Destructive),
    };
    if is_write
        && IDENTITY_SERVICES.contains(&name.service.as_str())
        && score < SCORE_IDENTITY_WRITE
    {
        score = SCORE_IDENTITY_WRITE;
        reasons.push(format!(
            "any {} write is CRITICAL: it changes who may do what or key material ({score})",
            name.service.to_ascii_uppercase()
        ));
    }

    if !params.is_null() {
        score = escalate::apply(name, info, verb, is_write, params, score, &mut reasons);
    }
    let score = score.min(100);
    Classification {
        score,
        level: RiskLevel::from_score(score),
        reasons,
    }
}

/// Scores a free-form action type that names no AWS operation (`database_write`):
/// by its verb, MEDIUM when unsure.
pub fn classify_action_type(action_type: &str) -> Classification {
    let mut reasons = Vec::with_capacity(1);
    let (verb, word) = verb_of(action_type);
    let score = verb_score(action_type, verb, word, &mut reasons);
    Classification {
        score,
        level: RiskLevel::from_score(score),
        reasons,
    }
}

fn verb_score(subject: &str, verb: Verb, word: Option<&str>, reasons: &mut Vec<String>) -> u8 {
    let word = word.unwrap_or_default();
    let (score, what) = match verb {
        Verb::Read => (SCORE_READ, "a read"),
        Verb::Write => (SCORE_WRITE, "a change"),
        Verb::Destructive => (SCORE_DESTRUCTIVE, "a destructive change"),
        Verb::Unknown => {
            reasons.push(format!(
                "`{subject}` is not in the AWS catalog and its verb is not recognised: \
                 MEDIUM by default ({SCORE_UNKNOWN})"
            ));
            return SCORE_UNKNOWN;
        }
    };
    reasons.push(format!(
        "`{subject}` is not in the AWS catalog; the verb `{word}` suggests {what} ({score})"
    ));
    score
}

/// (service, operation) → (score, why)
type CuratedIndex = HashMap<(&'static str, &'static str), (u8, &'static str)>;

static CURATED: LazyLock<CuratedIndex> = LazyLock::new(|| {
    curated::ENTRIES
        .iter()
        .map(|&(service, op, score, why)| ((service, op), (score, why)))
        .collect()
});

fn base_score(
    name: &OperationName,
    info: Option<&OperationInfo>,
    verb: Verb,
    verb_word: Option<&str>,
    reasons: &mut Vec<String>,
) -> u8 {
    let curated: &HashMap<(&str, &str), (u8, &str)> = &CURATED;
    if let Some(&(score, why)) = curated.get(&(name.service.as_str(), name.operation.as_str())) {
        reasons.push(format!(
            "{}.{}: {why} ({score})",
            name.service, name.operation
        ));
        return score;
    }
    let Some(info) = info else {
        return verb_score(&name.to_string(), verb, verb_word, reasons);
    };
    let Some(access) = info.access else {
        // A real operation with no IAM entry: judge it by its verb.
        return verb_score(&name.to_string(), verb, verb_word, reasons);
    };
    let action = info.iam_actions.first().copied().unwrap_or_default();
    let (score, note) = match access {
        AccessLevel::List => (SCORE_LIST, "lists resources"),
        AccessLevel::Read => (SCORE_READ, "reads data"),
        AccessLevel::Tagging => (SCORE_TAGGING, "changes tags"),
        AccessLevel::Write if verb == Verb::Destructive => (
            SCORE_DESTRUCTIVE,
            "a destructive write (its verb removes or stops something)",
        ),
        AccessLevel::Write => (SCORE_WRITE, "changes resources"),
        AccessLevel::PermissionsManagement => (SCORE_PERMISSIONS, "changes permissions"),
    };
    reasons.push(format!(
        "IAM access level {} for {action}: {note} ({score})",
        access.as_str()
    ));
    score
}

#[cfg(test)]
mod tests;
