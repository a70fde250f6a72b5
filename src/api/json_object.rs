//! `JsonObject`: any JSON object, kept as sent (key order included), typed `object` in the spec.
//! `RawObject`: the same in a response, carried as the JSON text it is stored as.

use std::borrow::Cow;

use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type};
use serde_json::{Map, Value};

use crate::store::flows::Definition;

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(transparent)]
pub struct JsonObject(pub Map<String, Value>);

/// The schema of any JSON object, as the document states it.
fn object_schema() -> MetaSchemaRef {
    MetaSchemaRef::Inline(Box::new(MetaSchema {
        description: Some("Any JSON object."),
        additional_properties: Some(Box::new(MetaSchemaRef::Inline(Box::new(MetaSchema::ANY)))),
        ..MetaSchema::new("object")
    }))
}

impl Type for JsonObject {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "JsonObject".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        object_schema()
    }

    fn register(_registry: &mut Registry) {}

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(std::iter::once(self))
    }
}

impl ParseFromJSON for JsonObject {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::Object(map) => Ok(JsonObject(map)),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl ToJSON for JsonObject {
    fn to_json(&self) -> Option<Value> {
        Some(Value::Object(self.0.clone()))
    }
}

/// A JSON object in a response, held as its text ([`Definition`]): written into the body as it
/// is, never parsed into a tree (a flow read costs the definition's bytes, not a tree of it). The
/// document shows it as [`JsonObject`] does.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(transparent)]
pub struct RawObject(pub Definition);

impl Type for RawObject {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        JsonObject::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        object_schema()
    }

    fn register(_registry: &mut Registry) {}

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(std::iter::once(self))
    }
}

impl ParseFromJSON for RawObject {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        let object = JsonObject::parse_from_json(value).map_err(ParseError::propagate)?;
        Definition::of(&object)
            .map(RawObject)
            .map_err(|err| ParseError::custom(err.to_string()))
    }
}

impl ToJSON for RawObject {
    /// Parses the text: only for `Json<…>` bodies and the document's examples, never on the
    /// paths that send flows (they write the text with serde, see `api::serialized`).
    fn to_json(&self) -> Option<Value> {
        serde_json::from_str(self.0.as_str()).ok()
    }
}
