//! The OpenAPI document is the contract, and the server holds every request
//! to it: before a handler runs, the query is checked against the
//! operation's parameters and the body against its request schema, as the
//! document states them. A limit, pattern, enum or required field is
//! declared once — in the utoipa attributes of a wire type or a handler's
//! parameters — and that one declaration is both what clients read and what
//! the server enforces, so the two cannot disagree.
//!
//! What the document refuses is a 400: `unknown_field` for a query parameter
//! or body field the operation does not declare (`additionalProperties:
//! false`), `validation_failed` naming the `field` for any other value it
//! refuses, `invalid_json` for a body that is not JSON. Rules no schema can
//! state (one field excludes another, a time still in the future, a cron
//! expression that parses, a push target on the public internet) stay with
//! the handlers and are answered 422, so a 400 always means "the document
//! says no".

mod explain;

use super::error::ApiError;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Every operation of the document, by method and path template.
pub struct Contract {
    operations: HashMap<String, Vec<(Method, Arc<Operation>)>>,
}

/// What one operation accepts.
pub struct Operation {
    /// The request body's schema, if the operation takes one.
    body: Option<Arc<Checker>>,
    /// Query parameters by name.
    query: BTreeMap<String, Param>,
    /// The scope the route needs, as its `security` requirement names it
    /// (`["jobs:read"]`), read once here rather than on each request;
    /// `None` when it names none, or names `owner` (which its handler
    /// checks: it is a role, not a scope).
    pub scope: Option<chronos_proto::Scope>,
}

struct Param {
    checker: Arc<Checker>,
    kind: Scalar,
    required: bool,
}

/// How a query parameter's text is read before its schema checks it.
#[derive(Clone, Copy)]
enum Scalar {
    Integer,
    Number,
    Boolean,
    String,
}

/// A compiled schema and the document it lives in (error messages look up
/// the keywords next to the one that failed: `maximum` beside `minimum`).
struct Checker {
    validator: Validator,
    root: Value,
}

impl Contract {
    /// Compiles every operation of `doc`. Fails only if the document holds a
    /// schema that is not valid JSON Schema, which is a bug caught by the
    /// first test that starts a server.
    pub fn new(doc: &Value) -> anyhow::Result<Self> {
        let components = doc.get("components").cloned().unwrap_or(json!({}));
        // Operations share schemas (every list's `limit`, `cursor`): each
        // distinct one is compiled once.
        let mut compiled: HashMap<String, Arc<Checker>> = HashMap::new();
        let mut checker = |schema: &Value| -> anyhow::Result<Arc<Checker>> {
            let key = schema.to_string();
            if let Some(c) = compiled.get(&key) {
                return Ok(c.clone());
            }
            let c = Arc::new(Checker::new(schema, &components)?);
            compiled.insert(key, c.clone());
            Ok(c)
        };
        let mut operations: HashMap<String, Vec<(Method, Arc<Operation>)>> = HashMap::new();
        let empty = Map::new();
        for (path, item) in doc["paths"].as_object().unwrap_or(&empty) {
            for (method, op) in item.as_object().unwrap_or(&empty) {
                let Ok(method) = method.to_ascii_uppercase().parse::<Method>() else {
                    continue;
                };
                let body = op
                    .pointer("/requestBody/content/application~1json/schema")
                    .map(&mut checker)
                    .transpose()?;
                let mut query = BTreeMap::new();
                for p in op["parameters"].as_array().into_iter().flatten() {
                    if p["in"] != "query" {
                        continue;
                    }
                    let name = p["name"].as_str().unwrap_or_default().to_string();
                    let schema = p.get("schema").cloned().unwrap_or(json!({}));
                    let kind = scalar(&schema);
                    query.insert(
                        name,
                        Param {
                            checker: checker(&schema)?,
                            kind,
                            required: p["required"] == true,
                        },
                    );
                }
                let scope = op
                    .pointer("/security/0/api_key/0")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse().ok());
                operations
                    .entry(path.to_string())
                    .or_default()
                    .push((method, Arc::new(Operation { body, query, scope })));
            }
        }
        Ok(Contract { operations })
    }

    fn operation(&self, method: &Method, path: &str) -> Option<&Arc<Operation>> {
        let ops = self.operations.get(path)?;
        ops.iter().find(|(m, _)| m == method).map(|(_, op)| op)
    }
}

/// Middleware: hands the operation a request reached to the extractors.
/// [`super::auth::Auth`] checks the query once the caller is known, and
/// [`super::extract::JsonBody`] checks the body once it has read it (within
/// the route's size limit).
pub async fn attach(
    State(contract): State<Arc<Contract>>,
    mut req: Request,
    next: Next,
) -> Response {
    let op = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|path| contract.operation(req.method(), path.as_str()))
        .cloned();
    if let Some(op) = op {
        req.extensions_mut().insert(op);
    }
    next.run(req).await
}

impl Operation {
    pub fn check_query(&self, query: &str) -> Result<(), ApiError> {
        let mut seen = BTreeMap::new();
        for (name, text) in url::form_urlencoded::parse(query.as_bytes()) {
            let Some(param) = self.query.get(name.as_ref()) else {
                let known: Vec<&str> = self.query.keys().map(String::as_str).collect();
                return Err(ApiError::UnknownField {
                    message: if known.is_empty() {
                        format!("unknown query parameter `{name}`; this route takes none")
                    } else {
                        format!(
                            "unknown query parameter `{name}`; this route takes {}",
                            known.join(", ")
                        )
                    },
                    field: name.into_owned(),
                });
            };
            if seen.insert(name.to_string(), ()).is_some() {
                return Err(ApiError::validation(
                    &name,
                    format!("{name} is given more than once"),
                ));
            }
            let value = param.kind.read(&text).ok_or_else(|| {
                ApiError::validation(&name, format!("{name} must be {}", param.kind.noun()))
            })?;
            param.checker.check(&value, Some(&name))?;
        }
        if let Some((name, _)) = self
            .query
            .iter()
            .find(|(name, p)| p.required && !seen.contains_key(*name))
        {
            return Err(ApiError::validation(name, format!("{name} is required")));
        }
        Ok(())
    }

    /// Checks a JSON body against the operation's request schema (nothing to
    /// check if it declares none). JSON Schema counts `90.0` as an integer,
    /// and so does the server: where the schema says `integer`, such a
    /// number is rewritten as one before the body is read.
    pub fn check_body(&self, value: &mut Value) -> Result<(), ApiError> {
        let Some(checker) = &self.body else {
            return Ok(());
        };
        checker.check(value, None)?;
        // Most bodies hold no fractions at all; only those are walked.
        if has_fraction(value) {
            integers(&checker.root, &checker.root["x-checked"], value, 0);
        }
        Ok(())
    }
}

impl Scalar {
    fn read(self, text: &str) -> Option<Value> {
        match self {
            Scalar::String => Some(Value::String(text.to_string())),
            Scalar::Integer => text.parse::<i64>().ok().map(Value::from),
            Scalar::Number => text
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number),
            Scalar::Boolean => match text {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                _ => None,
            },
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Scalar::String => "a string",
            Scalar::Integer => "an integer",
            Scalar::Number => "a number",
            Scalar::Boolean => "true or false",
        }
    }
}

/// The scalar a parameter's schema declares (`type: integer`, or
/// `[integer, null]`); text otherwise.
fn scalar(schema: &Value) -> Scalar {
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if types.contains(&"integer") {
        Scalar::Integer
    } else if types.contains(&"number") {
        Scalar::Number
    } else if types.contains(&"boolean") {
        Scalar::Boolean
    } else {
        Scalar::String
    }
}

impl Checker {
    /// Compiles `schema` with the components it refers to, and only those:
    /// each compiled schema keeps its document, so carrying every component
    /// into each would cost the server megabytes for nothing.
    fn new(schema: &Value, components: &Value) -> anyhow::Result<Self> {
        let empty = Map::new();
        let schemas = components["schemas"].as_object().unwrap_or(&empty);
        let needed = referenced(std::slice::from_ref(schema), schemas);
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": "#/x-checked",
            "x-checked": schema,
            "components": {"schemas": needed},
        });
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&root)
            .map_err(|e| anyhow::anyhow!("the OpenAPI document holds a bad schema: {e}"))?;
        Ok(Checker { validator, root })
    }

    /// The first thing `value` breaks, as our error. Unknown fields are
    /// named before anything else: a misspelt field explains the rest.
    /// `name` is a query parameter's name (a body's fields are named by
    /// their path).
    fn check(&self, value: &Value, name: Option<&str>) -> Result<(), ApiError> {
        if self.validator.is_valid(value) {
            return Ok(());
        }
        let errors: Vec<ValidationError> = self.validator.iter_errors(value).collect();
        let first = errors
            .iter()
            .find(|e| matches!(e.kind(), ValidationErrorKind::AdditionalProperties { .. }))
            .or_else(|| errors.first());
        match first {
            Some(e) => Err(self.explain(e, name)),
            None => Ok(()),
        }
    }
}

/// The components `roots` refer to, directly or through one another, by
/// name.
pub(super) fn referenced(roots: &[Value], schemas: &Map<String, Value>) -> Map<String, Value> {
    let mut needed = Map::new();
    let mut todo = Vec::new();
    roots.iter().for_each(|r| refs(r, &mut todo));
    while let Some(name) = todo.pop() {
        if needed.contains_key(&name) {
            continue;
        }
        if let Some(s) = schemas.get(&name) {
            refs(s, &mut todo);
            needed.insert(name, s.clone());
        }
    }
    needed
}

/// Adds the names of the components `schema` refers to directly.
fn refs(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref")
                && let Some(name) = r.strip_prefix("#/components/schemas/")
            {
                out.push(name.to_string());
            }
            map.values().for_each(|child| refs(child, out));
        }
        Value::Array(items) => items.iter().for_each(|child| refs(child, out)),
        _ => {}
    }
}

/// Whether `value` holds a number written with a fraction or exponent.
fn has_fraction(value: &Value) -> bool {
    match value {
        Value::Number(n) => !n.is_i64() && !n.is_u64(),
        Value::Array(items) => items.iter().any(has_fraction),
        Value::Object(map) => map.values().any(has_fraction),
        _ => false,
    }
}

/// Rewrites whole floats (`90.0`) as integers wherever `schema` says
/// `integer`, following `$ref`s and every branch of `oneOf`/`anyOf`/`allOf`
/// (a value the schema accepted fits any branch it is rewritten by). A
/// schema without a type — a payload's "any JSON" — is left as sent.
fn integers(root: &Value, schema: &Value, value: &mut Value, depth: usize) {
    if depth > 32 {
        return;
    }
    if let Some(Value::String(r)) = schema.get("$ref") {
        if let Some(target) = r.strip_prefix('#').and_then(|p| root.pointer(p)) {
            integers(root, target, value, depth + 1);
        }
        return;
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        for branch in schema[key].as_array().into_iter().flatten() {
            integers(root, branch, value, depth + 1);
        }
    }
    let says_integer = match &schema["type"] {
        Value::String(t) => t == "integer",
        Value::Array(ts) => ts.iter().any(|t| t == "integer"),
        _ => false,
    };
    match value {
        Value::Number(n) if says_integer && !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() < 9.0e15
            {
                *value = Value::from(f as i64);
            }
        }
        Value::Object(map) => {
            if let Some(props) = schema["properties"].as_object() {
                for (name, v) in map.iter_mut() {
                    if let Some(s) = props.get(name) {
                        integers(root, s, v, depth + 1);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for v in items {
                    integers(root, s, v, depth + 1);
                }
            }
        }
        _ => {}
    }
}
