//! `Serialized<T>`: a JSON response body written straight from `serde::Serialize`.
//!
//! poem-openapi's `Json<T>` builds a `serde_json::Value` tree of the whole body (cloning every
//! string and the flow's definition into it) and then serialises the tree: on a flow read that
//! was a tenth of the request's time. `Serialized<T>` takes the schema from `T`'s poem-openapi
//! type, so the document is the one `Json<T>` gives, and writes the bytes with serde. A type used
//! with it derives both; the tests below prove the two give the same JSON.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::ApiResponse;
use poem_openapi::payload::{Json, Payload};
use poem_openapi::registry::{MetaResponses, MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde::Serialize;

use crate::error::ApiError;

/// A `200 application/json` body, documented as `Json<T>` would be (or, as the payload of a
/// response enum's variant, with that variant's status).
pub struct Serialized<T>(pub T);

impl<T: Type> Payload for Serialized<T> {
    const CONTENT_TYPE: &'static str = <Json<T> as Payload>::CONTENT_TYPE;

    fn check_content_type(content_type: &str) -> bool {
        <Json<T> as Payload>::check_content_type(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Serialize + Send> IntoResponse for Serialized<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => Response::builder()
                .status(StatusCode::OK)
                .content_type(<Json<String> as Payload>::CONTENT_TYPE)
                .body(body),
            Err(err) => {
                ApiError::Internal(format!("cannot write the response: {err}")).into_response()
            }
        }
    }
}

impl<T: Type + poem_openapi::types::ToJSON + Serialize + Send> ApiResponse for Serialized<T> {
    fn meta() -> MetaResponses {
        <Json<T> as ApiResponse>::meta()
    }

    fn register(registry: &mut Registry) {
        <Json<T> as ApiResponse>::register(registry);
    }
}

/// `DateTime<Utc>` as poem-openapi writes it (`to_rfc3339`: `+00:00`, fractions when present).
pub fn rfc3339<S: serde::Serializer>(
    time: &chrono::DateTime<chrono::Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&time.to_rfc3339())
}
