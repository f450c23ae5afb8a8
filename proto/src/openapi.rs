//! Schemas the derive cannot state from a field's attributes alone.

use std::borrow::Cow;
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ArrayBuilder, ObjectBuilder, SchemaType, Type,
};
use utoipa::openapi::{Array, Object, Ref, RefOr, Schema};

/// Any JSON value (a payload, a result) but one holding U+0000 in a string
/// or a key: PostgreSQL cannot store that character (`jsonb`, `text`), so
/// neither store takes it. Named `Json` in the document.
pub struct Json;

impl utoipa::PartialSchema for Json {
    fn schema() -> RefOr<Schema> {
        let json = || RefOr::Ref(Ref::from_schema_name("Json"));
        let no_nul = || {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(NO_NUL))
        };
        AnyOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(SchemaType::from_iter([
                Type::Null,
                Type::Boolean,
                Type::Number,
            ])))
            .item(no_nul())
            .item(ArrayBuilder::new().items(json()))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .property_names(Some(no_nul()))
                    .additional_properties(Some(AdditionalProperties::RefOr(json()))),
            )
            .description(Some(
                "Any JSON value, but no string or key may hold the character U+0000.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Json {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Json")
    }
}

/// A string without U+0000, which PostgreSQL cannot store. The document
/// states it on every string the API takes that no other pattern or format
/// already keeps from holding it.
pub const NO_NUL: &str = r"^[^\x00]*$";

/// A handler name: no comma (commas separate handlers in wake-ups), no
/// white space and no control character. White space is listed rather than
/// written `\s`, whose meaning differs between regex dialects (ECMA's holds
/// U+FEFF); the list is Rust's `char::is_whitespace`.
pub const HANDLER_PATTERN: &str =
    r"^[^,\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+$";

/// A label for people (a job's, a schedule's, a key's, a signing
/// secret's `name`): at least one character that is not white space, none
/// a control character.
pub const LABEL_PATTERN: &str = r"^[^\u0000-\u001F\u007F-\u009F]*[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\u0000-\u001F\u007F-\u009F]*$";

/// A handler's name (a job's, a schedule's): 1 to 255 characters of
/// [`HANDLER_PATTERN`].
pub fn handler() -> Object {
    short_text(Type::String, HANDLER)
}

/// [`handler`], or `null` for none.
pub fn handler_or_null() -> Object {
    short_text(SchemaType::from_iter([Type::String, Type::Null]), HANDLER)
}

/// A `name`: 1 to 255 characters of [`LABEL_PATTERN`].
pub fn label() -> Object {
    short_text(Type::String, LABEL)
}

/// [`label`], or `null` for the default.
pub fn label_or_null() -> Object {
    short_text(SchemaType::from_iter([Type::String, Type::Null]), LABEL)
}

/// A pattern, the rule it states in words, and what the text is.
type Text = (&'static str, &'static str, &'static str);

const HANDLER: Text = (
    HANDLER_PATTERN,
    "may not hold commas, white space or control characters",
    "The handler a worker registered, e.g. `send-email`.",
);

const LABEL: Text = (
    LABEL_PATTERN,
    "must hold a character other than white space, and no control characters",
    "A label for people.",
);

/// 1 to 255 characters of `text`'s pattern, with its rule as `x-rule` (the
/// words of the server's error message).
fn short_text(schema_type: impl Into<SchemaType>, (pattern, rule, about): Text) -> Object {
    let mut extensions = utoipa::openapi::extensions::Extensions::default();
    extensions.insert("x-rule".into(), serde_json::json!(rule));
    ObjectBuilder::new()
        .schema_type(schema_type)
        .min_length(Some(1))
        .max_length(Some(255))
        .pattern(Some(pattern))
        .extensions(Some(extensions))
        .description(Some(about))
        .build()
}

/// What a worker polls for: 1 to 100 handler names.
pub fn handlers() -> Array {
    ArrayBuilder::new()
        .items(handler())
        .min_items(Some(1))
        .max_items(Some(100))
        // The handler `CreateJob`'s example names: a poll from the examples
        // leases a job made from them.
        .examples([serde_json::json!(["send-email"])])
        .build()
}

/// The headers whose values answers hide ([`crate::headers`]), in words.
pub const SENSITIVE_HEADERS: &str = "`Authorization`, `Cookie`, `Proxy-Authorization`, `X-Api-Key`, and any header whose name contains `token` or `secret` (in any case)";

/// Push request headers: at most 50, each name an HTTP token, each value
/// without control characters but tab (what `http::HeaderValue` accepts).
/// Sent as given; answers show a sensitive one's value redacted, and no
/// request may give it that value (there is nothing stored to keep).
pub fn headers() -> Object {
    headers_of(SchemaType::Type(Type::Object))
}

/// [`headers`], or `null` for none.
pub fn headers_or_null() -> Object {
    headers_of(SchemaType::from_iter([Type::Object, Type::Null]))
}

fn headers_of(schema_type: SchemaType) -> Object {
    ObjectBuilder::new()
        .schema_type(schema_type)
        .max_properties(Some(50))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .pattern(Some(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")),
        ))
        .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(Schema::Object(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"^[^\x00-\x08\x0a-\x1f\x7f]*$"))
                .build(),
        )))))
        .description(Some(format!(
            "At most 50 headers; names are HTTP tokens, values hold no control characters but tab. Sent as given, but answers show the value of a sensitive header as `{REDACTED}`: {SENSITIVE_HEADERS}. A request giving a sensitive header the value `{REDACTED}` is refused (422).",
            REDACTED = crate::headers::REDACTED,
        )))
        .build()
}
