//! `Body<T>`: a JSON request body checked against its own OpenAPI schema before it is parsed, so a
//! missing field or a value of the wrong type is a 400 that names the field. (The framework's own
//! JSON payload accepts `7` for a string and reports errors by type name, not by field.)

use poem::{FromRequest, Request, RequestBody};
use poem_openapi::error::ParseRequestPayloadError;
use poem_openapi::impl_apirequest_for_payload;
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, Type};
use serde_json::Value;

/// A JSON request body of type `T`.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T: Type> Payload for Body<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        matches!(content_type.parse::<mime::Mime>(),
            Ok(mime) if mime.type_() == "application"
                && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json")))
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

/// Deepest accepted nesting of arrays and objects in a body (the parser itself stops at 128).
pub const MAX_JSON_DEPTH: usize = 32;

/// How deeply arrays and objects nest in `value` (a scalar is 0), without recursion.
fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((value, level)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(fields) => Box::new(fields.values()),
            _ => continue,
        };
        deepest = deepest.max(level + 1);
        stack.extend(children.map(|child| (child, level + 1)));
    }
    deepest
}

fn resolve<'a>(schema: &'a MetaSchemaRef, registry: &'a Registry) -> Option<&'a MetaSchema> {
    let schema = match schema {
        MetaSchemaRef::Inline(schema) => schema,
        MetaSchemaRef::Reference(name) => registry.schemas.get(name)?,
    };
    // A described reference is written as `allOf: [ref]` around it.
    match schema.all_of.as_slice() {
        [only] if schema.ty.is_empty() || schema.ty == "object" && schema.properties.is_empty() => {
            resolve(only, registry).or(Some(schema))
        }
        _ => Some(schema),
    }
}

fn type_matches(ty: &str, value: &Value) -> bool {
    match ty {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        _ => true,
    }
}

fn article(ty: &str) -> &'static str {
    if ty.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

fn plural(count: usize, one: &str) -> String {
    if count == 1 {
        format!("{count} {one}")
    } else {
        format!("{count} {one}s")
    }
}

/// A string field against its format, its allowed values, its length bounds and its pattern,
/// with a message a person can act on.
fn check_string(name: &str, text: &str, schema: &MetaSchema) -> Result<(), String> {
    if schema.format == Some("uuid") && uuid::Uuid::parse_str(text).is_err() {
        return Err(format!("{name}: must be a UUID"));
    }
    if !schema.enum_items.is_empty() && !schema.enum_items.iter().any(|v| v == text) {
        let allowed: Vec<&str> = schema.enum_items.iter().filter_map(Value::as_str).collect();
        return Err(format!("{name}: must be one of {}", allowed.join(", ")));
    }
    let length = text.chars().count();
    if let Some(min) = schema.min_length
        && length < min
    {
        return Err(format!(
            "{name}: must be at least {} long",
            plural(min, "character")
        ));
    }
    if let Some(max) = schema.max_length
        && length > max
    {
        return Err(format!(
            "{name}: must be at most {} long",
            plural(max, "character")
        ));
    }
    if let Some(pattern) = &schema.pattern
        && !regex::Regex::new(pattern).is_ok_and(|re| re.is_match(text))
    {
        // The field's description states the rule in words; the pattern is the fallback.
        return Err(match schema.description {
            Some(rule) => format!("{name}: invalid value: {}", rule.trim_end_matches('.')),
            None => format!("{name}: must match the pattern {pattern}"),
        });
    }
    Ok(())
}

/// The first problem of `value` against `schema`, naming the field by its path
/// (`name`, `resource.type`, `items[3].action`).
fn check_value(
    path: &str,
    value: &Value,
    schema: &MetaSchema,
    registry: &Registry,
) -> Result<(), String> {
    if !type_matches(schema.ty, value) {
        return Err(format!(
            "{path}: must be {} {}",
            article(schema.ty),
            schema.ty
        ));
    }
    match value {
        Value::String(text) => check_string(path, text, schema),
        Value::Array(items) => {
            if let Some(min) = schema.min_items
                && items.len() < min
            {
                return Err(format!(
                    "{path}: must have at least {}",
                    plural(min, "item")
                ));
            }
            if let Some(max) = schema.max_items
                && items.len() > max
            {
                return Err(format!("{path}: must have at most {}", plural(max, "item")));
            }
            if let Some(item_schema) = schema.items.as_deref().and_then(|s| resolve(s, registry)) {
                for (index, item) in items.iter().enumerate() {
                    check_value(&format!("{path}[{index}]"), item, item_schema, registry)?;
                }
            }
            Ok(())
        }
        Value::Object(fields) => check_object(path, fields, schema, registry),
        _ => Ok(()),
    }
}

fn check_object(
    path: &str,
    fields: &serde_json::Map<String, Value>,
    schema: &MetaSchema,
    registry: &Registry,
) -> Result<(), String> {
    for (name, property) in &schema.properties {
        let field_path = if path.is_empty() {
            (*name).to_owned()
        } else {
            format!("{path}.{name}")
        };
        let property = resolve(property, registry);
        match fields.get(*name) {
            None => {
                if schema.required.contains(name) {
                    return Err(format!("{field_path}: is required"));
                }
            }
            Some(Value::Null) if property.is_some_and(|p| p.nullable) => {}
            // An optional field is left out, not sent as null: the schema does not allow null.
            Some(Value::Null) => {
                return Err(if schema.required.contains(name) {
                    format!("{field_path}: is required")
                } else {
                    format!("{field_path}: must not be null (leave it out instead)")
                });
            }
            Some(field) => {
                if let Some(property) = property {
                    check_value(&field_path, field, property, registry)?;
                }
            }
        }
    }
    Ok(())
}

/// The first problem of the body against its schema, naming the field.
fn check(value: &Value, schema: &MetaSchemaRef, registry: &Registry) -> Result<(), String> {
    let Some(schema) = resolve(schema, registry) else {
        return Ok(());
    };
    if schema.ty != "object" || schema.properties.is_empty() {
        return Ok(());
    }
    let Value::Object(fields) = value else {
        return Err("the body must be a JSON object".into());
    };
    check_object("", fields, schema, registry)
}

impl<T: ParseFromJSON> ParsePayload for Body<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let data = Vec::<u8>::from_request(request, body).await?;
        let invalid = |reason: String| ParseRequestPayloadError { reason };
        if data.is_empty() {
            return Err(invalid("the body must be a JSON object".into()).into());
        }
        let value: Value = serde_json::from_slice(&data)
            .map_err(|err| invalid(format!("the body is not valid JSON: {err}")))?;
        if depth(&value) > MAX_JSON_DEPTH {
            return Err(invalid(format!(
                "the body is nested too deeply: at most {MAX_JSON_DEPTH} levels of arrays and objects"
            ))
            .into());
        }
        let mut registry = Registry::new();
        T::register(&mut registry);
        check(&value, &T::schema_ref(), &registry).map_err(invalid)?;
        let parsed = T::parse_from_json(Some(value)).map_err(|err| invalid(err.into_message()))?;
        Ok(Body(parsed))
    }
}

impl_apirequest_for_payload!(Body<T>, T: ParseFromJSON);

impl<T> std::ops::Deref for Body<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}
