//! The OpenAPI document's schedule and Krafter operations state the same
//! limits as the code that also needs them, and each rule once: the
//! document is what the server enforces (`api::contract`), so a number
//! that drifts from a constant is a bug these tests catch. (The limits only
//! jobs' code knows are checked in `api::schedules`' unit tests.) And a
//! field taken by jobs, schedules and messages alike has one rule.

use chronos_proto::message::MAX_MESSAGE_BODY_BYTES;
use chronos_proto::schedule::MAX_NEXT_RUNS;
use chronos_server::api::pagination::MAX_LIMIT;
use chronos_server::job::rules::validate_handler;
use serde_json::{Value, json};

fn document() -> Value {
    serde_json::to_value(chronos_server::api::document()).unwrap()
}

fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let schema = &doc["components"]["schemas"][name];
    assert!(schema.is_object(), "no schema {name}");
    schema
}

/// The operations tagged `schedules` or `krafter`, as (method, path, op).
fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let tags = op["tags"].as_array().cloned().unwrap_or_default();
            if tags.contains(&json!("schedules")) || tags.contains(&json!("krafter")) {
                ops.push((method.clone(), path.clone(), op));
            }
        }
    }
    assert_eq!(ops.len(), 22, "the schedules and krafter operations");
    ops
}

fn query_param<'a>(doc: &'a Value, method: &str, path: &str, name: &str) -> &'a Value {
    doc["paths"][path][method]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name && p["in"] == "query")
        .unwrap_or_else(|| panic!("{method} {path} has no ?{name}"))
}

#[test]
fn the_document_states_the_constants_the_code_uses() {
    let doc = document();
    let count = query_param(&doc, "get", "/v1/schedules/{id}/next-runs", "count");
    assert_eq!(count["schema"]["maximum"], json!(MAX_NEXT_RUNS));
    assert_eq!(count["schema"]["minimum"], 1);
    for path in [
        "/v1/schedules",
        "/v1/schedules/{id}/executions",
        "/api/v1/cron/jobs",
        "/api/v1/cron/jobs/{id}/executions",
    ] {
        let limit = query_param(&doc, "get", path, "limit");
        assert_eq!(limit["schema"]["maximum"], json!(MAX_LIMIT), "{path}");
    }
    let create = schema(&doc, "CreateSchedule");
    assert_eq!(
        create["properties"]["body"]["maxLength"],
        json!(MAX_MESSAGE_BODY_BYTES)
    );
}

#[test]
fn creation_requires_what_the_server_needs_and_a_change_nothing() {
    let doc = document();
    assert_eq!(schema(&doc, "CreateSchedule")["required"], json!(["name"]));
    assert_eq!(
        schema(&doc, "CronJobRequest")["required"],
        json!(["name", "schedule_type", "schedule", "url"])
    );
    for (change, create) in [
        ("SchedulePatch", "CreateSchedule"),
        ("CronJobUpdate", "CronJobRequest"),
    ] {
        let (change, create) = (schema(&doc, change), schema(&doc, create));
        assert!(change.get("required").is_none(), "{change}");
        assert_eq!(change["additionalProperties"], false);
        let names = |s: &Value| -> Vec<String> {
            s["properties"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect()
        };
        assert_eq!(names(change), names(create));
        // The same rules, with null allowed where creation requires a value.
        for (name, field) in change["properties"].as_object().unwrap() {
            let created = &create["properties"][name];
            for keyword in [
                "minLength",
                "maxLength",
                "pattern",
                "minimum",
                "maximum",
                "format",
            ] {
                assert_eq!(field.get(keyword), created.get(keyword), "{name}.{keyword}");
            }
        }
    }
    // Where the two requests share a field, they share its rules.
    let native = &schema(&doc, "CreateSchedule")["properties"];
    let krafter = &schema(&doc, "CronJobRequest")["properties"];
    for name in ["name", "headers", "timeout_ms", "max_retries"] {
        let (a, b) = (&native[name], &krafter[name]);
        for keyword in [
            "minLength",
            "maxLength",
            "pattern",
            "minimum",
            "maximum",
            "maxProperties",
            "propertyNames",
            "additionalProperties",
        ] {
            assert_eq!(a.get(keyword), b.get(keyword), "{name}.{keyword}");
        }
    }
    assert_eq!(krafter["url"]["format"], native["url"]["format"]);
}

/// A `concurrency_key` is held to a job's rules wherever it is taken: a
/// schedule (and its change), a message, a message onto a queue.
#[test]
fn a_concurrency_key_has_a_jobs_rules_wherever_it_is_taken() {
    let doc = document();
    let job = &schema(&doc, "CreateJob")["properties"]["concurrency_key"];
    assert_eq!(
        (&job["minLength"], &job["maxLength"]),
        (&json!(1), &json!(255))
    );
    for name in [
        "CreateSchedule",
        "SchedulePatch",
        "CreateMessage",
        "PublishMessage",
    ] {
        let key = &schema(&doc, name)["properties"]["concurrency_key"];
        for keyword in ["type", "minLength", "maxLength", "pattern"] {
            assert_eq!(key.get(keyword), job.get(keyword), "{name}.{keyword}");
        }
    }
    for shown in ["Schedule", "Message", "Job"] {
        let key = &schema(&doc, shown)["properties"]["concurrency_key"];
        assert!(key.is_object(), "{shown} shows its concurrency_key");
    }
}

#[test]
fn every_status_a_route_answers_is_listed() {
    let doc = document();
    for (method, path, op) in operations(&doc) {
        let responses = op["responses"].as_object().unwrap();
        let mut expected = vec!["400", "401", "403"];
        if path.contains("{id}") {
            expected.push("404");
        }
        if op.get("requestBody").is_some() {
            expected.extend(["413", "415", "422"]);
        }
        for status in expected {
            let response = &responses
                .get(status)
                .unwrap_or_else(|| panic!("{method} {path} does not list {status}"));
            assert_eq!(
                response["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{method} {path} {status}"
            );
            assert!(
                response["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{method} {path} {status} says nothing"
            );
        }
    }
}

/// What a text field's schema accepts, as a string (its length and
/// pattern; a `null` it may also take is beside the point here).
fn text_rule(field: &Value) -> jsonschema::Validator {
    jsonschema::validator_for(&json!({
        "type": "string",
        "minLength": field["minLength"],
        "maxLength": field["maxLength"],
        "pattern": field["pattern"],
    }))
    .unwrap()
}

/// The document's handler pattern is the rule `validate_handler` keeps for
/// the WebSocket path: the two agree on every sample.
#[test]
fn the_handler_pattern_is_the_handler_rule() {
    let doc = document();
    let validator = text_rule(&schema(&doc, "CreateSchedule")["properties"]["handler"]);
    for sample in [
        "send-email",
        "a.b:c/d",
        "ünïcode",
        "h".repeat(255).as_str(),
        "h".repeat(256).as_str(),
        "",
        "a,b",
        "a b",
        "a\tb",
        "a\u{0}b",
        "a\u{85}b",
        "a\u{a0}b",
        "a\u{2003}b",
        "a\u{3000}b",
        "a\u{7f}b",
        "a\u{feff}b",
    ] {
        assert_eq!(
            validator.is_valid(&json!(sample)),
            validate_handler("handler", sample).is_ok(),
            "{sample:?}"
        );
    }
}

/// A name may be anything a person reads: not blank, no control characters.
#[test]
fn the_name_pattern_refuses_blank_names_and_control_characters() {
    let doc = document();
    let validator = text_rule(&schema(&doc, "CreateSchedule")["properties"]["name"]);
    for ok in ["n", " n ", "Hello every 10 minutes", "ünï", "a\u{feff}"] {
        assert!(validator.is_valid(&json!(ok)), "{ok:?}");
    }
    for bad in ["", " ", "\u{a0}\u{3000}", "a\nb", "a\u{7}", "a\u{9f}"] {
        assert!(!validator.is_valid(&json!(bad)), "{bad:?}");
    }
}
