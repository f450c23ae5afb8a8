//! How a value the document refuses is told to the client: the first
//! error of the schema, worded as the rest of the API words errors, with
//! the field named by its path (`delivery.http.url`, `jobs[3].name`).

use super::Checker;
use crate::api::error::ApiError;
use chronos_proto::openapi::NO_NUL;
use jsonschema::ValidationError;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;

impl Checker {
    pub(super) fn explain(&self, e: &ValidationError, name: Option<&str>) -> ApiError {
        let at = field_path(e.instance_path().as_str(), name);
        let field = at.clone().unwrap_or_default();
        let subject = at.clone().unwrap_or_else(|| "the request body".to_string());
        // The schema object holding the keyword that failed.
        let schema_path = e.schema_path().as_str();
        let holder = schema_path
            .rfind('/')
            .and_then(|i| self.root.pointer(&schema_path[..i]))
            .unwrap_or(&Value::Null);
        // A schema may word its own message for a keyword (`x-messages`),
        // as a seed document words it. (`dependentRequired` is reported as
        // a `required` error: its words are under its own name.)
        let keyword = match schema_path.ends_with("/dependentRequired") {
            true => "dependentRequired",
            false => e.kind().keyword(),
        };
        if let Some(Value::String(message)) = holder.get("x-messages").and_then(|m| m.get(keyword))
        {
            // A rule over the whole object may say which field it is about.
            let field = match holder.get("x-field") {
                Some(Value::String(field)) => Some(field.clone()),
                _ => at,
            };
            return ApiError::Validation {
                field,
                message: message.clone(),
            };
        }
        let message = match e.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let name = unexpected.first().cloned().unwrap_or_default();
                let field = match &at {
                    Some(p) => format!("{p}.{name}"),
                    None => name.clone(),
                };
                let known: Vec<&str> = holder["properties"]
                    .as_object()
                    .map(|p| p.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                return ApiError::UnknownField {
                    message: format!("unknown field `{name}`, expected one of {}", quoted(&known)),
                    field,
                };
            }
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                let field = match &at {
                    Some(p) => format!("{p}.{name}"),
                    None => name.to_string(),
                };
                return ApiError::Validation {
                    message: format!("{field} is required"),
                    field: Some(field),
                };
            }
            ValidationErrorKind::Minimum { .. }
            | ValidationErrorKind::Maximum { .. }
            | ValidationErrorKind::ExclusiveMinimum { .. }
            | ValidationErrorKind::ExclusiveMaximum { .. } => {
                bounds(holder, &subject, ["minimum", "maximum"], ("must be", ""))
                    .unwrap_or_else(|| format!("{subject}: {e}"))
            }
            ValidationErrorKind::MinLength { .. } | ValidationErrorKind::MaxLength { .. } => {
                bounds(
                    holder,
                    &subject,
                    ["minLength", "maxLength"],
                    ("must be", " characters"),
                )
                .unwrap_or_else(|| format!("{subject}: {e}"))
            }
            ValidationErrorKind::MinItems { .. } | ValidationErrorKind::MaxItems { .. } => bounds(
                holder,
                &subject,
                ["minItems", "maxItems"],
                ("must hold", " items"),
            )
            .unwrap_or_else(|| format!("{subject}: {e}")),
            ValidationErrorKind::PropertyNames { error } => {
                let name = error.instance().as_str().unwrap_or_default().to_string();
                let field = match &at {
                    Some(p) => format!("{p}.{name}"),
                    None => name.clone(),
                };
                return ApiError::Validation {
                    message: format!("`{name}` is not a name {subject} allows"),
                    field: Some(field),
                };
            }
            ValidationErrorKind::MaxProperties { limit } => {
                format!("{subject} may hold at most {limit} entries")
            }
            ValidationErrorKind::Pattern { pattern } => match holder.get("x-rule") {
                Some(Value::String(rule)) => format!("{subject} {rule}"),
                _ if pattern == NO_NUL => {
                    format!("{subject} may not hold the character U+0000")
                }
                _ => format!("{subject} must match the pattern `{pattern}`"),
            },
            ValidationErrorKind::Enum { options } => {
                let options: Vec<String> = options
                    .as_array()
                    .map(|o| o.iter().map(Value::to_string).collect())
                    .unwrap_or_default();
                format!("{subject} must be one of {}", options.join(", "))
            }
            ValidationErrorKind::Constant { expected_value } => {
                format!("{subject} must be {expected_value}")
            }
            ValidationErrorKind::Type { kind } => {
                let nouns: Vec<&str> = match kind {
                    TypeKind::Single(t) => vec![type_noun(&t.to_string())],
                    TypeKind::Multiple(ts) => {
                        ts.iter().map(|t| type_noun(&t.to_string())).collect()
                    }
                };
                match at {
                    None => format!("the request body must be {}", nouns.join(" or ")),
                    Some(_) => format!("{subject} must be {}", nouns.join(" or ")),
                }
            }
            ValidationErrorKind::Format { format } => {
                format!("{subject} must be {}", format_noun(format))
            }
            ValidationErrorKind::OneOfNotValid { context }
            | ValidationErrorKind::AnyOf { context } => {
                // Explain the branch the value was meant for: not the
                // `null` of an optional object (a plain type mismatch), nor
                // a variant whose tag (`"type": "push"`) it does not carry.
                let base = e.instance_path().as_str();
                let meant = |errors: &&Vec<ValidationError>| {
                    !errors.is_empty()
                        && !errors.iter().any(|inner| {
                            let at = inner.instance_path().as_str();
                            match inner.kind() {
                                ValidationErrorKind::Type { .. } => at == base,
                                ValidationErrorKind::Enum { .. }
                                | ValidationErrorKind::Constant { .. } => at
                                    .rsplit_once('/')
                                    .is_some_and(|(parent, _)| parent == base),
                                _ => false,
                            }
                        })
                };
                // A tag no variant carries: name them all.
                let tags: Vec<String> = context
                    .iter()
                    .flat_map(|errors| errors.iter())
                    .filter_map(|inner| match inner.kind() {
                        ValidationErrorKind::Enum { options } => Some(options.to_string()),
                        ValidationErrorKind::Constant { expected_value } => {
                            Some(format!("[{expected_value}]"))
                        }
                        _ => None,
                    })
                    .collect();
                if !context.iter().any(|errors| meant(&errors)) && tags.len() == context.len() {
                    let tag_error = context.iter().flatten().find(|inner| {
                        matches!(
                            inner.kind(),
                            ValidationErrorKind::Enum { .. } | ValidationErrorKind::Constant { .. }
                        )
                    });
                    if let Some(inner) = tag_error {
                        let field = field_path(inner.instance_path().as_str(), name);
                        let options: Vec<String> = tags
                            .iter()
                            .filter_map(|t| serde_json::from_str::<Vec<Value>>(t).ok())
                            .flatten()
                            .map(|v| v.to_string())
                            .collect();
                        return ApiError::Validation {
                            message: format!(
                                "{} must be one of {}",
                                field.clone().unwrap_or_else(|| subject.clone()),
                                options.join(", ")
                            ),
                            field,
                        };
                    }
                }
                let branch = context
                    .iter()
                    .find(meant)
                    .or_else(|| context.iter().find(|errors| !errors.is_empty()));
                if let Some(inner) = branch.and_then(|errors| {
                    errors
                        .iter()
                        .find(|e| {
                            matches!(e.kind(), ValidationErrorKind::AdditionalProperties { .. })
                        })
                        .or_else(|| errors.first())
                }) {
                    return self.explain(inner, name);
                }
                format!("{subject} does not match any of the accepted shapes")
            }
            _ => format!("{subject}: {e}"),
        };
        ApiError::Validation {
            field: if field.is_empty() { None } else { Some(field) },
            message,
        }
    }
}

/// `/jobs/3/name` → `jobs[3].name` (as serde_path_to_error names fields);
/// a query parameter's value is named by the parameter.
fn field_path(pointer: &str, name: Option<&str>) -> Option<String> {
    let mut out = name.map(str::to_string).unwrap_or_default();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.parse::<usize>().is_ok() {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// "`subject` must be between 1 and 100", "… 1 to 255 characters", "… at
/// least 1 item…": the limits the schema object `holder` states under
/// `keys` (low, high), in words of `verb` and `unit`.
fn bounds(
    holder: &Value,
    subject: &str,
    keys: [&str; 2],
    (verb, unit): (&str, &str),
) -> Option<String> {
    // Numbers read "between 1 and 100"; lengths and counts "1 to 255".
    let (between, and) = if unit.is_empty() {
        ("between ", " and ")
    } else {
        ("", " to ")
    };
    let may = if verb == "must be" {
        "may be"
    } else {
        "may hold"
    };
    Some(match (holder.get(keys[0]), holder.get(keys[1])) {
        (Some(lo), Some(hi)) => format!("{subject} {verb} {between}{lo}{and}{hi}{unit}"),
        (Some(lo), None) => format!("{subject} {verb} at least {lo}{unit}"),
        (None, Some(hi)) => format!("{subject} {may} at most {hi}{unit}"),
        (None, None) => return None,
    })
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn type_noun(t: &str) -> &'static str {
    match t {
        "object" => "a JSON object",
        "array" => "an array",
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "true or false",
        "null" => "null",
        _ => "of another type",
    }
}

fn format_noun(format: &str) -> String {
    match format {
        "uuid" => "a UUID".to_string(),
        "date-time" => "an RFC 3339 timestamp such as 2030-02-15T00:00:00Z".to_string(),
        "uri" => "an absolute URL".to_string(),
        other => format!("a valid `{other}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::field_path;

    #[test]
    fn field_paths_read_as_serde_names_them() {
        assert_eq!(field_path("", None), None);
        assert_eq!(field_path("/delay/value", None).unwrap(), "delay.value");
        assert_eq!(field_path("/jobs/3/name", None).unwrap(), "jobs[3].name");
        assert_eq!(field_path("", Some("limit")).unwrap(), "limit");
        assert_eq!(field_path("/headers/a~1b", None).unwrap(), "headers.a/b");
    }
}
