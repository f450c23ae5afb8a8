//! The OpenAPI document: what the handlers' annotations say, completed with
//! what the shared machinery answers on every route — so no handler has to
//! repeat it and none can forget it:
//!
//! - 401 on every authenticated route ([`super::auth`]);
//! - 400 on every authenticated route (an unknown query parameter, a query
//!   or body that breaks the schema: [`super::contract`]), and 413 and 415
//!   on every route with a body ([`super::extract`]);
//! - a description for every answer that has none;
//! - `additionalProperties: false` on every object the server sends or
//!   takes: requests refuse unknown fields, and answers hold exactly the
//!   fields listed (SDKs still ignore fields a newer server adds);
//! - no U+0000 in any string a request carries, which PostgreSQL cannot
//!   store: a pattern on every such string that no pattern, format or enum
//!   already keeps from it;
//! - links from the operations that create or list a resource to those that
//!   read and act on it ([`LINKS`]), so a client generator or a stateful
//!   fuzzer walks real resources.

use chronos_proto::openapi::NO_NUL;
use serde_json::{Map, Value, json};

/// `(from operation, status, to operation, parameter, where its value is)`:
/// the operation `to` takes `parameter` from the answer of `from`; a
/// parameter [`BODY`] is the whole request body, as JSON holding runtime
/// expressions.
const BODY: &str = "requestBody";

const LINKS: &[(&str, &str, &str, &str, &str)] = &[
    // Jobs
    ("create_job", "201", "get_job", "id", "$response.body#/id"),
    (
        "create_job",
        "201",
        "cancel_job",
        "id",
        "$response.body#/id",
    ),
    ("create_job", "201", "retry_job", "id", "$response.body#/id"),
    (
        "create_job",
        "201",
        "list_executions",
        "id",
        "$response.body#/id",
    ),
    (
        "list_jobs",
        "200",
        "get_job",
        "id",
        "$response.body#/data/0/id",
    ),
    (
        "list_jobs",
        "200",
        "cancel_job",
        "id",
        "$response.body#/data/0/id",
    ),
    (
        "list_jobs",
        "200",
        "retry_job",
        "id",
        "$response.body#/data/0/id",
    ),
    (
        "create_jobs",
        "200",
        "get_job",
        "id",
        "$response.body#/data/0/job/id",
    ),
    // Messages are jobs too.
    (
        "create_message",
        "202",
        "get_message",
        "id",
        "$response.body#/message_id",
    ),
    (
        "create_message",
        "202",
        "get_job",
        "id",
        "$response.body#/message_id",
    ),
    (
        "create_message",
        "202",
        "cancel_job",
        "id",
        "$response.body#/message_id",
    ),
    // Schedules
    (
        "create_schedule",
        "201",
        "get_schedule",
        "id",
        "$response.body#/id",
    ),
    (
        "create_schedule",
        "201",
        "put_schedule",
        "id",
        "$response.body#/id",
    ),
    (
        "create_schedule",
        "201",
        "patch_schedule",
        "id",
        "$response.body#/id",
    ),
    (
        "create_schedule",
        "201",
        "delete_schedule",
        "id",
        "$response.body#/id",
    ),
    (
        "create_schedule",
        "201",
        "pause_schedule",
        "id",
        "$response.body#/id",
    ),
    (
        "create_schedule",
        "201",
        "resume_schedule",
        "id",
        "$response.body#/id",
    ),
    (
        "create_schedule",
        "201",
        "trigger_schedule",
        "id",
        "$response.body#/id",
    ),
    (
        "create_schedule",
        "201",
        "archive_schedule",
        "id",
        "$response.body#/id",
    ),
    (
        "create_schedule",
        "201",
        "schedule_executions",
        "id",
        "$response.body#/id",
    ),
    (
        "create_schedule",
        "201",
        "next_runs",
        "id",
        "$response.body#/id",
    ),
    (
        "create_schedule",
        "201",
        "skipped_runs",
        "id",
        "$response.body#/id",
    ),
    (
        "list_schedules",
        "200",
        "get_schedule",
        "id",
        "$response.body#/data/0/id",
    ),
    (
        "trigger_schedule",
        "202",
        "get_job",
        "id",
        "$response.body#/id",
    ),
    (
        "trigger_schedule",
        "202",
        "cancel_job",
        "id",
        "$response.body#/id",
    ),
    // Krafter's cron jobs
    (
        "create_cron_job",
        "201",
        "get_cron_job",
        "id",
        "$response.body#/data/id",
    ),
    (
        "create_cron_job",
        "201",
        "put_cron_job",
        "id",
        "$response.body#/data/id",
    ),
    (
        "create_cron_job",
        "201",
        "delete_cron_job",
        "id",
        "$response.body#/data/id",
    ),
    (
        "create_cron_job",
        "201",
        "cron_job_executions",
        "id",
        "$response.body#/data/id",
    ),
    (
        "create_cron_job",
        "201",
        "trigger_cron_job",
        "id",
        "$response.body#/data/id",
    ),
    (
        "create_cron_job",
        "201",
        "pause_cron_job",
        "id",
        "$response.body#/data/id",
    ),
    (
        "create_cron_job",
        "201",
        "resume_cron_job",
        "id",
        "$response.body#/data/id",
    ),
    (
        "list_cron_jobs",
        "200",
        "get_cron_job",
        "id",
        "$response.body#/data/0/id",
    ),
    (
        "list_cron_jobs",
        "200",
        "pause_cron_job",
        "id",
        "$response.body#/data/0/id",
    ),
    (
        "list_cron_jobs",
        "200",
        "resume_cron_job",
        "id",
        "$response.body#/data/0/id",
    ),
    (
        "list_cron_jobs",
        "200",
        "trigger_cron_job",
        "id",
        "$response.body#/data/0/id",
    ),
    // Queues, by name.
    (
        "create_queue",
        "201",
        "get_queue",
        "name",
        "$response.body#/name",
    ),
    (
        "list_queues",
        "200",
        "get_queue",
        "name",
        "$response.body#/data/0/name",
    ),
    (
        "create_queue",
        "201",
        "update_queue",
        "name",
        "$response.body#/name",
    ),
    (
        "list_queues",
        "200",
        "update_queue",
        "name",
        "$response.body#/data/0/name",
    ),
    (
        "create_queue",
        "201",
        "delete_queue",
        "name",
        "$response.body#/name",
    ),
    (
        "list_queues",
        "200",
        "delete_queue",
        "name",
        "$response.body#/data/0/name",
    ),
    (
        "create_queue",
        "201",
        "pause_queue",
        "name",
        "$response.body#/name",
    ),
    (
        "list_queues",
        "200",
        "pause_queue",
        "name",
        "$response.body#/data/0/name",
    ),
    (
        "create_queue",
        "201",
        "resume_queue",
        "name",
        "$response.body#/name",
    ),
    (
        "list_queues",
        "200",
        "resume_queue",
        "name",
        "$response.body#/data/0/name",
    ),
    (
        "create_queue",
        "201",
        "unblock_queue",
        "name",
        "$response.body#/name",
    ),
    (
        "list_queues",
        "200",
        "unblock_queue",
        "name",
        "$response.body#/data/0/name",
    ),
    (
        "create_queue",
        "201",
        "queue_keys",
        "name",
        "$response.body#/name",
    ),
    (
        "list_queues",
        "200",
        "queue_keys",
        "name",
        "$response.body#/data/0/name",
    ),
    (
        "create_queue",
        "201",
        "publish_message",
        "name",
        "$response.body#/name",
    ),
    (
        "list_queues",
        "200",
        "publish_message",
        "name",
        "$response.body#/data/0/name",
    ),
    // Target groups, their members, fan-outs
    (
        "create_group",
        "201",
        "get_group",
        "id",
        "$response.body#/id",
    ),
    (
        "list_groups",
        "200",
        "get_group",
        "id",
        "$response.body#/data/0/id",
    ),
    (
        "create_group",
        "201",
        "rename_group",
        "id",
        "$response.body#/id",
    ),
    (
        "create_group",
        "201",
        "delete_group",
        "id",
        "$response.body#/id",
    ),
    (
        "create_group",
        "201",
        "add_member",
        "id",
        "$response.body#/id",
    ),
    (
        "list_groups",
        "200",
        "add_member",
        "id",
        "$response.body#/data/0/id",
    ),
    (
        "create_group",
        "201",
        "list_members",
        "id",
        "$response.body#/id",
    ),
    (
        "add_member",
        "201",
        "remove_member",
        "id",
        "$request.path.id",
    ),
    (
        "add_member",
        "201",
        "remove_member",
        "member_id",
        "$response.body#/id",
    ),
    (
        "create_message",
        "202",
        "get_fan_out",
        "id",
        "$response.body#/fan_out_id",
    ),
    (
        "publish_message",
        "202",
        "get_fan_out",
        "id",
        "$response.body#/fan_out_id",
    ),
    // Endpoints and their health
    (
        "list_endpoints",
        "200",
        "get_endpoint",
        "id",
        "$response.body#/data/0/id",
    ),
    (
        "list_endpoints",
        "200",
        "enable_endpoint",
        "id",
        "$response.body#/data/0/id",
    ),
    (
        "get_endpoint",
        "200",
        "enable_endpoint",
        "id",
        "$response.body#/id",
    ),
    // Domains
    (
        "add_domain",
        "201",
        "get_domain",
        "id",
        "$response.body#/id",
    ),
    (
        "add_domain",
        "201",
        "delete_domain",
        "id",
        "$response.body#/id",
    ),
    (
        "list_domains",
        "200",
        "get_domain",
        "id",
        "$response.body#/data/0/id",
    ),
    // Signing secrets
    (
        "create_secret",
        "201",
        "get_secret",
        "id",
        "$response.body#/id",
    ),
    (
        "create_secret",
        "201",
        "rotate_secret",
        "id",
        "$response.body#/id",
    ),
    (
        "list_secrets",
        "200",
        "get_secret",
        "id",
        "$response.body#/data/0/id",
    ),
    (
        "list_secrets",
        "200",
        "rotate_secret",
        "id",
        "$response.body#/data/0/id",
    ),
    // API keys
    (
        "create_key",
        "201",
        "revoke_key",
        "id",
        "$response.body#/id",
    ),
    (
        "list_keys",
        "200",
        "revoke_key",
        "id",
        "$response.body#/data/0/id",
    ),
    // Leases: a polled job's token acks, fails or extends it.
    (
        "poll",
        "200",
        "ack",
        BODY,
        r#"{"token": "$response.body#/data/0/lease/token"}"#,
    ),
    (
        "poll",
        "200",
        "fail",
        BODY,
        r#"{"token": "$response.body#/data/0/lease/token"}"#,
    ),
    (
        "poll",
        "200",
        "extend",
        BODY,
        r#"{"token": "$response.body#/data/0/lease/token", "seconds": 60}"#,
    ),
    // Organizations, members, invites (and seed 003's aliases)
    (
        "create_org",
        "201",
        "get_org",
        "slug",
        "$response.body#/slug",
    ),
    (
        "create_org",
        "201",
        "update_org",
        "slug",
        "$response.body#/slug",
    ),
    (
        "create_org",
        "201",
        "delete_org",
        "slug",
        "$response.body#/slug",
    ),
    (
        "create_org",
        "201",
        "list_org_members",
        "slug",
        "$response.body#/slug",
    ),
    (
        "create_org",
        "201",
        "create_org_key",
        "slug",
        "$response.body#/slug",
    ),
    (
        "create_org",
        "201",
        "list_org_keys",
        "slug",
        "$response.body#/slug",
    ),
    (
        "create_org_alias",
        "201",
        "get_org_alias",
        "slug",
        "$response.body#/slug",
    ),
    (
        "create_org_alias",
        "201",
        "update_org_alias",
        "slug",
        "$response.body#/slug",
    ),
    (
        "create_org_alias",
        "201",
        "delete_org_alias",
        "slug",
        "$response.body#/slug",
    ),
    (
        "create_org_alias",
        "201",
        "list_org_members_alias",
        "slug",
        "$response.body#/slug",
    ),
    (
        "create_org_alias",
        "201",
        "create_org_key_alias",
        "slug",
        "$response.body#/slug",
    ),
    (
        "create_org_alias",
        "201",
        "list_org_keys_alias",
        "slug",
        "$response.body#/slug",
    ),
    (
        "create_org",
        "201",
        "create_invite",
        "slug",
        "$response.body#/slug",
    ),
    (
        "create_org",
        "201",
        "list_invites",
        "slug",
        "$response.body#/slug",
    ),
    (
        "create_org_alias",
        "201",
        "create_invite_alias",
        "slug",
        "$response.body#/slug",
    ),
    (
        "list_org_members",
        "200",
        "update_org_member",
        "slug",
        "$request.path.slug",
    ),
    (
        "list_org_members",
        "200",
        "update_org_member",
        "user_id",
        "$response.body#/data/0/user_id",
    ),
    (
        "list_org_members",
        "200",
        "remove_org_member",
        "slug",
        "$request.path.slug",
    ),
    (
        "list_org_members",
        "200",
        "remove_org_member",
        "user_id",
        "$response.body#/data/0/user_id",
    ),
    (
        "create_invite",
        "201",
        "revoke_invite",
        "slug",
        "$request.path.slug",
    ),
    (
        "create_invite",
        "201",
        "revoke_invite",
        "id",
        "$response.body#/id",
    ),
    (
        "create_invite_alias",
        "201",
        "revoke_invite",
        "slug",
        "$request.path.slug",
    ),
    (
        "create_invite_alias",
        "201",
        "revoke_invite",
        "id",
        "$response.body#/id",
    ),
    (
        "list_invites",
        "200",
        "revoke_invite",
        "slug",
        "$request.path.slug",
    ),
    (
        "list_invites",
        "200",
        "revoke_invite",
        "id",
        "$response.body#/data/0/id",
    ),
    (
        "create_invite",
        "201",
        "resend_invite",
        "slug",
        "$request.path.slug",
    ),
    (
        "create_invite",
        "201",
        "resend_invite",
        "id",
        "$response.body#/id",
    ),
    (
        "create_invite_alias",
        "201",
        "resend_invite",
        "slug",
        "$request.path.slug",
    ),
    (
        "create_invite_alias",
        "201",
        "resend_invite",
        "id",
        "$response.body#/id",
    ),
    (
        "list_invites",
        "200",
        "resend_invite",
        "slug",
        "$request.path.slug",
    ),
    (
        "list_invites",
        "200",
        "resend_invite",
        "id",
        "$response.body#/data/0/id",
    ),
];

/// Rules between fields of a request, which the derive cannot state: the
/// keywords are added to the component's schema, and `x-messages` gives the
/// error message for each (as the seed documents word them).
fn rules() -> Vec<(&'static str, Value)> {
    vec![
        (
            "CreateJob",
            json!({
                "not": {
                    "required": ["delay", "scheduled_for"],
                    "properties": {"delay": {"type": "object"}, "scheduled_for": {"type": "string"}}
                },
                "x-messages": {"not": "give either delay or scheduled_for, not both"}
            }),
        ),
        // The enums' own words, as seed 004 has them.
        (
            "QueueOrdering",
            json!({"x-messages": {"enum": "ordering must be one of: fifo, lifo"}}),
        ),
        (
            "FailureMode",
            json!({"x-messages": {"enum": "failure_mode must be one of: continue, block, pause"}}),
        ),
        (
            "CreateQueue",
            json!({
                "allOf": [
                    {
                        "dependentRequired": {
                            "rate_limit": ["rate_period_seconds"],
                            "rate_period_seconds": ["rate_limit"]
                        },
                        "x-messages": {
                            "dependentRequired": "rate_limit and rate_period_seconds must be set together"
                        }
                    },
                    {
                        "dependentRequired": {
                            "key_rate_limit": ["key_rate_period_seconds"],
                            "key_rate_period_seconds": ["key_rate_limit"]
                        },
                        "x-messages": {
                            "dependentRequired": "key_rate_limit and key_rate_period_seconds must be set together"
                        }
                    }
                ]
            }),
        ),
        // Seed 004's words for what a target group or member lacks, and for
        // a method it doesn't know (its own, wherever a method is given).
        (
            "CreateTargetGroup",
            json!({"x-messages": {"required": "name is required (max 200 chars)"}}),
        ),
        (
            "CreateMember",
            json!({"x-messages": {"required": "target_url is required"}}),
        ),
        (
            "HttpMethod",
            json!({"x-messages": {"enum": "method must be one of: GET, POST, PUT, PATCH, DELETE"}}),
        ),
        (
            "CreateMessage",
            json!({
                "allOf": [
                    {
                        "not": {
                            "required": ["delay", "scheduled_at"],
                            "properties": {"delay": {"type": "integer"}, "scheduled_at": {"type": "string"}}
                        },
                        "x-messages": {"not": "Provide either delay or scheduled_at, not both"}
                    },
                    {
                        "anyOf": [{"required": ["url"]}, {"required": ["default_target_group_id"]}],
                        "x-messages": {"anyOf": "url is required"},
                        "x-field": "url"
                    },
                    {
                        "not": {"required": ["url", "default_target_group_id"]},
                        "x-messages": {"not": "Provide either url or default_target_group_id, not both"}
                    }
                ]
            }),
        ),
        (
            "PublishMessage",
            json!({
                "not": {"required": ["url", "default_target_group_id"]},
                "x-messages": {"not": "Provide either url or default_target_group_id, not both"}
            }),
        ),
    ]
}

/// Adds to `doc` (the annotations' document, as JSON) what every route
/// answers and the links between operations.
pub fn complete(mut doc: Value) -> Value {
    let error_body = json!({
        "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
    });
    let mut operation_ids = Map::new();
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in item.iter_mut() {
                let Some(op) = op.as_object_mut() else {
                    continue;
                };
                if let Some(id) = op.get("operationId").and_then(Value::as_str) {
                    operation_ids.insert(id.to_string(), json!([path, method]));
                }
                // A person's session serves where a key does, under the
                // same scope (their role grants it).
                if let Some(Value::Array(reqs)) = op.get_mut("security") {
                    let sessions: Vec<Value> = reqs
                        .iter()
                        .filter_map(|r| r.get("api_key"))
                        .map(|scopes| json!({"session": scopes}))
                        .collect();
                    reqs.extend(sessions);
                }
                let has_body = op.contains_key("requestBody");
                let has_query = op
                    .get("parameters")
                    .and_then(Value::as_array)
                    .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
                let authenticated = op.contains_key("security");
                let responses = op
                    .entry("responses")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .expect("responses is an object");
                let mut add = |status: &str, description: &str| {
                    responses.entry(status.to_string()).or_insert_with(
                        || json!({"description": description, "content": error_body.clone()}),
                    );
                };
                if authenticated {
                    add("401", "Missing, malformed, unknown or revoked API key");
                    // Every route refuses a query parameter it does not take.
                    add(
                        "400",
                        if has_body {
                            "`validation_failed`, `unknown_field` or `invalid_json`: the body or query breaks the schema; `field` names the culprit"
                        } else if has_query {
                            "`validation_failed` or `unknown_field`: the query breaks the schema; `field` names the parameter"
                        } else {
                            "`unknown_field`: a query parameter (this route takes none)"
                        },
                    );
                }
                if has_body && !authenticated {
                    add(
                        "400",
                        "`validation_failed`, `unknown_field` or `invalid_json`: the body breaks the schema; `field` names the culprit",
                    );
                }
                if has_body {
                    add("413", "The body is over the route's size limit (1 MiB)");
                    add("415", "The body is not `application/json`");
                }
                for (status, response) in responses.iter_mut() {
                    let described = response["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty());
                    if !described && let Some(r) = response.as_object_mut() {
                        r.insert("description".into(), json!(default_description(status)));
                    }
                }
            }
        }
    }
    // What requests carry: their bodies' schemas, and all they refer to.
    let request_bodies: Vec<Value> = doc["paths"]
        .as_object()
        .into_iter()
        .flat_map(|paths| paths.values())
        .filter_map(Value::as_object)
        .flat_map(|item| item.values())
        .filter_map(|op| op.pointer("/requestBody/content/application~1json/schema"))
        .cloned()
        .collect();
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        // A schema that `allOf` composes (a flattened struct) is one part of
        // an answer's fields, so it stays open.
        let parts: Vec<String> = schemas
            .values()
            .flat_map(|s| s["allOf"].as_array().cloned().unwrap_or_default())
            .filter_map(|part| part["$ref"].as_str().map(str::to_string))
            .collect();
        for (name, schema) in schemas.iter_mut() {
            if !parts.contains(&format!("#/components/schemas/{name}")) {
                closed(schema);
            }
        }
        let carried: Vec<String> = super::contract::referenced(&request_bodies, schemas)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        for name in &carried {
            if let Some(schema) = schemas.get_mut(name) {
                no_nul(schema);
            }
        }
        for (name, keywords) in rules() {
            let schema = schemas
                .get_mut(name)
                .and_then(Value::as_object_mut)
                .unwrap_or_else(|| panic!("a rule names a schema the document lacks: {name}"));
            for (k, v) in keywords.as_object().into_iter().flatten() {
                schema.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(paths) = doc["paths"].as_object_mut() {
        for item in paths.values_mut() {
            for op in item
                .as_object_mut()
                .into_iter()
                .flat_map(|i| i.values_mut())
            {
                let parameters = op.get_mut("parameters").and_then(Value::as_array_mut);
                for p in parameters.into_iter().flatten() {
                    no_nul(&mut p["schema"]);
                }
            }
        }
    }
    for (from, status, to, parameter, expression) in LINKS {
        let (Some(from_at), true) = (operation_ids.get(*from), operation_ids.contains_key(*to))
        else {
            panic!("a link names an operation the document lacks: {from} → {to}");
        };
        let pointer = format!(
            "/paths/{}/{}/responses/{status}",
            escape(from_at[0].as_str().unwrap_or_default()),
            from_at[1].as_str().unwrap_or_default()
        );
        let Some(response) = doc.pointer_mut(&pointer).and_then(Value::as_object_mut) else {
            panic!("a link starts from an answer the document lacks: {from} {status}");
        };
        let links = response
            .entry("links")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("links is an object");
        // Several entries for one link give it several parameters.
        let link = links
            .entry(to.to_string())
            .or_insert_with(|| json!({"operationId": to}));
        if *parameter == BODY {
            let body: Value = serde_json::from_str(expression).expect("a link's body is JSON");
            link["requestBody"] = body;
        } else {
            link["parameters"][*parameter] = json!(expression);
        }
    }
    doc
}

/// Calls `f` on every schema object in `schema`, at any depth, but those
/// under the keywords in `skip` (and never inside values: examples,
/// defaults, enums).
fn each_schema(schema: &mut Value, skip: &[&str], f: &mut impl FnMut(&mut Map<String, Value>)) {
    match schema {
        Value::Object(map) => {
            f(map);
            for (key, child) in map.iter_mut() {
                let value = matches!(
                    key.as_str(),
                    "example" | "examples" | "default" | "enum" | "const"
                );
                if !value && !skip.contains(&key.as_str()) {
                    each_schema(child, skip, f);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| each_schema(i, skip, f)),
        _ => {}
    }
}

/// Marks every object schema with listed properties, at any depth, as
/// taking no others (unless it says what others it takes). The parts of an
/// `allOf` are each only part of an object, and a `not` describes what is
/// refused: neither is closed.
fn closed(schema: &mut Value) {
    each_schema(schema, &["allOf", "not"], &mut |map| {
        if map.contains_key("properties") && !map.contains_key("additionalProperties") {
            map.insert("additionalProperties".into(), Value::Bool(false));
        }
    });
}

/// Gives every string schema without a pattern, format or enum the
/// pattern [`NO_NUL`], at any depth.
fn no_nul(schema: &mut Value) {
    each_schema(schema, &[], &mut |map| {
        let is_string = match map.get("type") {
            Some(Value::String(t)) => t == "string",
            Some(Value::Array(ts)) => ts.iter().any(|t| t == "string"),
            _ => false,
        };
        let kept = ["pattern", "format", "enum", "const"]
            .iter()
            .any(|k| map.contains_key(*k));
        if is_string && !kept {
            map.insert("pattern".into(), json!(NO_NUL));
        }
    });
}

fn default_description(status: &str) -> &'static str {
    match status {
        "200" => "OK",
        "201" => "Created",
        "202" => "Accepted",
        "204" => "Done; no body",
        "400" => "The request breaks the schema; `field` names the culprit",
        "401" => "Missing, malformed, unknown or revoked API key",
        "403" => "The key lacks the scope this route needs",
        "404" => "Not found in this organization",
        "409" => "Conflicts with the resource's state",
        "413" => "The body is over the route's size limit",
        "415" => "The body is not `application/json`",
        "422" => "Fits the schema but breaks a rule the route's description states",
        _ => "See the route's description",
    }
}

/// A path as a JSON pointer segment (`/` is `~1`).
fn escape(path: &str) -> String {
    path.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    //! The numbers both the document and the code need are written twice —
    //! a literal in a utoipa attribute, a constant in the code — so these
    //! tests hold each pair equal.

    use super::super::jobs::{
        DEFAULT_MAX_RETRIES, DEFAULT_QUEUE, DEFAULT_TIMEOUT_SECONDS, MAX_RETRIES_LIMIT,
        MAX_SCHEDULE_AHEAD_SECONDS, MAX_TIMEOUT_SECONDS,
    };
    use super::super::pagination::{CURSOR_PATTERN, Cursor, MAX_LIMIT};
    use super::super::signing_secrets::{DEFAULT_ROTATION_WINDOW, MAX_ROTATION_WINDOW};
    use crate::job::rules::{MAX_EXTEND_SECONDS, MAX_RETRY_IN_SECONDS};
    use chronos_proto::job::MAX_BATCH_JOBS;
    use chronos_proto::message::MAX_MESSAGE_BODY_BYTES;
    use serde_json::{Value, json};

    fn doc() -> Value {
        super::super::document()
    }

    fn field(doc: &Value, schema: &str, field: &str) -> Value {
        doc["components"]["schemas"][schema]["properties"][field].clone()
    }

    fn matches(pattern: &str, text: &str) -> bool {
        jsonschema::is_valid(&json!({"type": "string", "pattern": pattern}), &json!(text))
    }

    #[test]
    fn the_document_states_the_limits_the_code_keeps() {
        let d = doc();
        let job = |f: &str| field(&d, "CreateJob", f);
        assert_eq!(job("timeout")["maximum"], MAX_TIMEOUT_SECONDS);
        assert_eq!(job("timeout")["default"], DEFAULT_TIMEOUT_SECONDS);
        assert_eq!(job("max_retries")["maximum"], MAX_RETRIES_LIMIT);
        assert_eq!(job("max_retries")["default"], DEFAULT_MAX_RETRIES);
        assert_eq!(job("queue")["default"], DEFAULT_QUEUE);
        assert_eq!(
            field(&d, "Delay", "value")["maximum"],
            MAX_SCHEDULE_AHEAD_SECONDS
        );
        let message = |f: &str| field(&d, "CreateMessage", f);
        assert_eq!(message("delay")["maximum"], MAX_SCHEDULE_AHEAD_SECONDS);
        assert_eq!(message("retries")["maximum"], MAX_RETRIES_LIMIT);
        assert_eq!(message("body")["maxLength"], MAX_MESSAGE_BODY_BYTES);
        assert_eq!(field(&d, "CreateJobs", "jobs")["maxItems"], MAX_BATCH_JOBS);
        assert_eq!(
            field(&d, "ExtendRequest", "seconds")["maximum"],
            MAX_EXTEND_SECONDS
        );
        assert_eq!(
            field(&d, "FailRequest", "retry_in")["maximum"],
            MAX_RETRY_IN_SECONDS
        );
        let window = field(&d, "RotateSigningSecret", "window_seconds");
        assert_eq!(window["maximum"], MAX_ROTATION_WINDOW);
        assert_eq!(window["default"], DEFAULT_ROTATION_WINDOW);
    }

    #[test]
    fn every_list_pages_as_the_code_pages() {
        let d = doc();
        let mut lists = 0;
        for (path, item) in d["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for p in op["parameters"].as_array().into_iter().flatten() {
                    match p["name"].as_str() {
                        Some("limit") => {
                            lists += 1;
                            assert_eq!(p["schema"]["minimum"], 1, "{method} {path}");
                            assert_eq!(p["schema"]["maximum"], MAX_LIMIT, "{method} {path}");
                        }
                        Some("cursor") => {
                            assert_eq!(p["schema"]["pattern"], CURSOR_PATTERN, "{method} {path}")
                        }
                        _ => {}
                    }
                }
            }
        }
        assert!(lists >= 6, "{lists} lists");
        // Every cursor the server gives out is one the document accepts.
        for _ in 0..200 {
            let cursor = Cursor(uuid::Uuid::new_v4()).encode();
            assert!(matches(CURSOR_PATTERN, &cursor), "{cursor}");
            assert!(Cursor::decode(&cursor).is_some());
        }
    }

    #[test]
    fn every_operation_on_a_resource_is_reached_by_a_link() {
        let d = doc();
        let mut targets = std::collections::BTreeSet::new();
        for item in d["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                for response in op["responses"].as_object().unwrap().values() {
                    for link in response["links"].as_object().into_iter().flatten() {
                        targets.insert(link.1["operationId"].as_str().unwrap().to_string());
                    }
                }
            }
        }
        for (path, item) in d["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let takes_id = path.contains('{')
                    || method == "post" && {
                        // Lease reports take their token in the body.
                        op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                            .as_str()
                            .is_some_and(|r| {
                                ["AckRequest", "FailRequest", "ExtendRequest"]
                                    .iter()
                                    .any(|t| r.ends_with(t))
                            })
                    };
                if takes_id {
                    let id = op["operationId"].as_str().unwrap();
                    assert!(
                        targets.contains(id),
                        "no link reaches {method} {path} ({id})"
                    );
                }
            }
        }
    }

    #[test]
    fn slugs_are_held_to_one_pattern() {
        let d = doc();
        let pattern = chronos_proto::accounts::SLUG_PATTERN;
        assert_eq!(field(&d, "CreateOrganization", "slug")["pattern"], pattern);
        assert_eq!(field(&d, "UpdateOrganization", "slug")["pattern"], pattern);
    }

    #[test]
    fn every_error_answer_has_the_error_body() {
        let d = doc();
        for (path, item) in d["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                if op.get("security").is_some() {
                    assert!(responses.contains_key("401"), "{method} {path}");
                }
                if op.get("requestBody").is_some() {
                    for status in ["400", "413", "415"] {
                        assert!(responses.contains_key(status), "{method} {path} {status}");
                    }
                }
                for (status, response) in responses {
                    assert!(
                        response["description"]
                            .as_str()
                            .is_some_and(|d| !d.is_empty()),
                        "{method} {path} {status}"
                    );
                    if status.starts_with('4') {
                        assert_eq!(
                            response["content"]["application/json"]["schema"]["$ref"],
                            "#/components/schemas/ErrorBody",
                            "{method} {path} {status}"
                        );
                    }
                }
            }
        }
    }
}
