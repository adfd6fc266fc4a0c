//! Policy errors that point at a line and column of the Cedar text.

use std::fmt;

use cedar_policy::ParseErrors;
use miette::Diagnostic;
use serde::Serialize;

/// One problem in a policy set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyDiagnostic {
    pub message: String,
    /// 1-based; `None` when the problem belongs to no one place.
    pub line: Option<usize>,
    /// 1-based, in characters.
    pub column: Option<usize>,
}

impl fmt::Display for PolicyDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => {
                write!(f, "line {line}, column {column}: {}", self.message)
            }
            _ => f.write_str(&self.message),
        }
    }
}

/// A policy set that cannot be used, with every problem found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct PolicyError {
    pub diagnostics: Vec<PolicyDiagnostic>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.diagnostics.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

/// 1-based line and column of a byte offset.
pub(crate) fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl PolicyError {
    pub(crate) fn single(message: impl Into<String>) -> Self {
        Self {
            diagnostics: vec![PolicyDiagnostic {
                message: message.into(),
                line: None,
                column: None,
            }],
        }
    }

    /// A problem located at the first occurrence of `needle` in the source.
    pub(crate) fn at_text(source: &str, needle: &str, message: String) -> Self {
        let (line, column) = match source.find(needle) {
            Some(offset) => {
                let (l, c) = line_column(source, offset);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        Self {
            diagnostics: vec![PolicyDiagnostic {
                message,
                line,
                column,
            }],
        }
    }

    /// Turns any miette diagnostic into ours, located by its first label.
    pub(crate) fn diagnostic(source: &str, error: &dyn Diagnostic) -> PolicyDiagnostic {
        let mut message = error.to_string();
        if let Some(help) = error.help() {
            message = format!("{message} ({help})");
        }
        let offset = error
            .labels()
            .and_then(|mut labels| labels.next())
            .map(|label| label.offset());
        let (line, column) = match offset {
            Some(offset) => {
                let (l, c) = line_column(source, offset);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        PolicyDiagnostic {
            message,
            line,
            column,
        }
    }

    pub(crate) fn from_parse(source: &str, errors: &ParseErrors) -> Self {
        Self {
            diagnostics: errors.iter().map(|e| Self::diagnostic(source, e)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::line_column;

    #[test]
    fn offsets_become_lines_and_columns() {
        let text = "ab\ncdé\nf";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 3), (2, 1));
        assert_eq!(line_column(text, 7), (2, 4));
        assert_eq!(line_column(text, 100), (3, 2));
    }
}
