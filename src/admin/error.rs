//! API errors: `{"error": "..."}` with the right status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, m)
    }
    pub fn unauthorized(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, m)
    }
    pub fn forbidden(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, m)
    }
    pub fn not_found(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, m)
    }
    pub fn conflict(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, m)
    }
    pub fn invalid(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m)
    }
    pub fn too_many(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, m)
    }
    pub fn bad_gateway(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_GATEWAY, m)
    }
    pub fn unavailable(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, m)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            StoreError::Conflict(m) => ApiError::conflict(m),
            StoreError::Invalid(m) => ApiError::invalid(m),
            other => {
                tracing::error!(error = %other, "store error in admin API");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the gateway log",
                )
            }
        }
    }
}

/// Every error's body.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub error: String,
}

/// The errors any call may answer with (each with an `ErrorBody`).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum Failures {
    /// The request is malformed.
    #[response(status = 400)]
    BadRequest(#[to_schema] ErrorBody),
    /// No valid bearer token.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The caller's role does not allow it.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// No such object (or one the caller may not see).
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// It exists already, is owned by the config file, or is in use.
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// A value is invalid.
    #[response(status = 422)]
    Invalid(ErrorBody),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message });
        (self.status, Json(body)).into_response()
    }
}

/// A deserializer's message as people read it: `role: unknown variant `root`, expected
/// one of `admin`, `auditor`, `standard` at line 1 column 68` → `role must be one of
/// admin, auditor, standard (not `root`)`.
pub fn humane(raw: &str) -> String {
    let text = raw
        .trim_start_matches("Failed to deserialize the JSON body into the target type: ")
        .trim_start_matches("Failed to deserialize query string: ")
        .trim_start_matches("Failed to parse the request body as JSON: ");
    let text = match text.rfind(" at line ") {
        Some(i) if text[i..].contains(" column ") => &text[..i],
        _ => text,
    };
    let (field, rest) = match text.split_once(": ") {
        Some((f, r)) if !f.contains(' ') => (Some(f), r),
        _ => (None, text),
    };
    let unquote = |s: &str| s.replace('`', "");
    let named = |f: Option<&str>| f.map_or("a value".to_owned(), |f| format!("`{f}`"));
    if let Some(r) = rest.strip_prefix("unknown variant ")
        && let Some((got, expected)) = r.split_once(", expected one of ")
    {
        let field = field.unwrap_or("the value");
        return format!("{field} must be one of {} (not {got})", unquote(expected));
    }
    if let Some(r) = rest.strip_prefix("unknown field ") {
        let (got, expected) = r.split_once(", expected one of ").unwrap_or((r, ""));
        let known = if expected.is_empty() {
            String::new()
        } else {
            format!(": the fields are {}", unquote(expected))
        };
        return format!("unknown field {got}{known}");
    }
    if let Some(r) = rest.strip_prefix("missing field ") {
        return format!("{r} is required");
    }
    if let Some(r) = rest.strip_prefix("invalid type: ") {
        let expected = r.split_once(", expected ").map_or(r, |(_, e)| e);
        return format!("{} must be {expected}", named(field));
    }
    if let Some(r) = rest.strip_prefix("invalid value: ") {
        let expected = r.split_once(", expected ").map_or(r, |(_, e)| e);
        return format!("{} must be {expected}", named(field));
    }
    match field {
        Some(f) => format!("{f}: {rest}"),
        None => rest.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::humane;

    #[test]
    fn deserializer_messages_read_as_sentences() {
        let raw = "Failed to deserialize the JSON body into the target type: role: unknown variant `root`, expected one of `admin`, `auditor`, `standard` at line 1 column 68";
        assert_eq!(
            humane(raw),
            "role must be one of admin, auditor, standard (not `root`)"
        );
        let raw = "Failed to deserialize the JSON body into the target type: missing field `name` at line 1 column 2";
        assert_eq!(humane(raw), "`name` is required");
        let raw = "Failed to deserialize the JSON body into the target type: nme: unknown field `nme`, expected one of `name`, `email` at line 1 column 7";
        assert_eq!(
            humane(raw),
            "unknown field `nme`: the fields are name, email"
        );
        let raw = "Failed to deserialize the JSON body into the target type: groups: invalid type: string \"a\", expected a sequence at line 1 column 30";
        assert_eq!(humane(raw), "`groups` must be a sequence");
    }
}
