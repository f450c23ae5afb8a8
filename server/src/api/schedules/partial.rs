//! The schema of a request that changes only the fields it gives (`PATCH
//! /v1/schedules/{id}`, Krafter's `PUT /api/v1/cron/jobs/{id}`), derived
//! from the creating request's schema so that each rule on a field is
//! declared once: the same fields and limits, none required.

use utoipa::PartialSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{Object, OneOfBuilder, Schema, SchemaType, Type};

/// `T`'s schema with no field required. A field the creation requires is
/// not nullable there; here it may be null, which the server reads as
/// absent (as it does for every other optional field).
pub fn partial<T: PartialSchema>(description: &str) -> RefOr<Schema> {
    let RefOr::T(Schema::Object(mut object)) = T::schema() else {
        unreachable!("a request body's schema is an object");
    };
    for name in std::mem::take(&mut object.required) {
        if let Some(field) = object.properties.get_mut(&name) {
            *field = nullable(field.clone());
        }
    }
    object.description = Some(description.to_string());
    RefOr::T(Schema::Object(object))
}

/// `schema`, or null.
fn nullable(schema: RefOr<Schema>) -> RefOr<Schema> {
    match schema {
        RefOr::T(Schema::Object(mut object)) => {
            object.schema_type = match object.schema_type {
                SchemaType::Type(t) => SchemaType::from_iter([t, Type::Null]),
                SchemaType::Array(mut ts) => {
                    if !ts.contains(&Type::Null) {
                        ts.push(Type::Null);
                    }
                    SchemaType::Array(ts)
                }
                SchemaType::AnyValue => SchemaType::AnyValue,
            };
            RefOr::T(Schema::Object(object))
        }
        other => RefOr::T(Schema::OneOf(
            OneOfBuilder::new()
                .item(other)
                .item(Object::with_type(Type::Null))
                .build(),
        )),
    }
}
