//! The one error type every handler returns, and its mapping to HTTP (DESIGN.md §3).
//!
//! Every error leaves as `{"error":{"code","message","request_id"}}`. A 5xx carries a
//! generic message: its detail goes to the log under the same request id, never to the
//! client.

use http::StatusCode;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be read at all (no body, broken JSON, bad cursor).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 401: no token, a bad token, or wrong credentials.
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    /// 403: authenticated, but not allowed this (the message says why).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// 405: the path exists, not for this method; `allow` becomes the `Allow` header.
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed {
        method: String,
        path: String,
        allow: Vec<http::Method>,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed, but a value is not acceptable.
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    /// 429: too many requests or a locked account; the client may retry after this many seconds.
    #[error("{message}")]
    TooManyRequests {
        code: &'static str,
        message: String,
        retry_after_secs: u64,
    },
    /// 502: an outside service this request is about (Slack) refused or did not answer;
    /// the message says which, the detail stays in the log.
    #[error("{message}")]
    BadGateway { code: &'static str, message: String },
    /// 503: a feature whose configuration is missing here (no Slack webhook, no
    /// recipients); the message says what to configure.
    #[error("{0}")]
    NotConfigured(String),
    /// 503: a dependency (DynamoDB, S3, Redis, …) failed. The detail is for the log only.
    #[error("dependency failed: {0}")]
    Dependency(String),
    /// 500: a bug or an impossible state. The detail is for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::Unauthorized {
            code,
            message: message.into(),
        }
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::Unprocessable {
            code,
            message: message.into(),
        }
    }

    /// 422 `invalid_parameter`: a query or path parameter is not acceptable; the message
    /// names it.
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::unprocessable("invalid_parameter", message)
    }

    /// A parameter a domain type refused (its message starts with the parameter's name).
    pub fn bad_parameter(err: crate::domain::InvalidValue) -> Self {
        Self::invalid_parameter(err.to_string())
    }

    /// 403 for a caller without the admin role.
    pub fn admins_only() -> Self {
        Self::Forbidden("this action needs the admin role".into())
    }

    pub fn dependency(detail: impl std::fmt::Display) -> Self {
        Self::Dependency(detail.to_string())
    }

    /// A failure on our side that people should hear of (a critical alert): every 5xx
    /// but a feature left unconfigured, which is a setting, not an outage.
    pub fn is_fault(&self) -> bool {
        self.status_code().is_server_error() && !matches!(self, Self::NotConfigured(_))
    }

    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::BadGateway { .. } => StatusCode::BAD_GATEWAY,
            Self::NotConfigured(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Dependency(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable, machine-readable code clients branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Unauthorized { code, .. }
            | Self::Unprocessable { code, .. }
            | Self::TooManyRequests { code, .. }
            | Self::BadGateway { code, .. } => code,
            Self::NotConfigured(_) => "not_configured",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Dependency(_) => "dependency_unavailable",
            Self::Internal(_) => "internal_error",
        }
    }

    /// What the client is told. Server-side failures say only that they happened.
    pub fn public_message(&self) -> String {
        match self {
            Self::Dependency(_) => {
                "a service this request depends on is unavailable; try again shortly".to_owned()
            }
            Self::Internal(_) => "an internal error occurred".to_owned(),
            other => other.to_string(),
        }
    }

    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::TooManyRequests {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }

    /// The methods a 405 names in its `Allow` header.
    pub fn allowed_methods(&self) -> Option<&[http::Method]> {
        match self {
            Self::MethodNotAllowed { allow, .. } => Some(allow),
            _ => None,
        }
    }

    /// The JSON body of DESIGN.md §3.
    pub fn body(&self, request_id: &str) -> serde_json::Value {
        json!({
            "error": {
                "code": self.code(),
                "message": self.public_message(),
                "request_id": request_id,
            }
        })
    }
}

// Every library error's HTTP meaning, in one place.

impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match err {
            StoreError::Conflict => Self::Conflict(err.to_string()),
            StoreError::NotFound => Self::NotFound(err.to_string()),
            StoreError::Dynamo(_) => Self::dependency(err),
            StoreError::Corrupt(_) => Self::Internal(err.to_string()),
            StoreError::InvalidCursor => Self::bad_request(
                "invalid_cursor",
                "the cursor is not one this listing issued",
            ),
        }
    }
}

impl From<crate::audit::AuditError> for ApiError {
    fn from(err: crate::audit::AuditError) -> Self {
        // Nothing may happen that is not recorded: a state change whose entry could not be
        // written is reported as a dependency failure.
        Self::dependency(err)
    }
}

impl From<crate::audit::verify::VerifyError> for ApiError {
    fn from(err: crate::audit::verify::VerifyError) -> Self {
        use crate::audit::verify::VerifyError;
        match err {
            VerifyError::Store(err) => err.into(),
            VerifyError::TooLarge(_) => Self::unprocessable("range_too_large", err.to_string()),
        }
    }
}

#[cfg(feature = "model")]
impl From<crate::model::registry::RegistryError> for ApiError {
    fn from(err: crate::model::registry::RegistryError) -> Self {
        // Every registry failure means "no model to serve": a dependency failure, with
        // the detail in the log only.
        Self::dependency(err)
    }
}

impl From<crate::domain::InvalidValue> for ApiError {
    /// A value of the body that is not acceptable: 422 naming the field.
    fn from(err: crate::domain::InvalidValue) -> Self {
        Self::unprocessable("invalid_field", err.to_string())
    }
}

/// An error with all its causes, `: `-separated. The SDKs' `Display` alone says only
/// "service error"; the log needs the rest.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_never_carry_their_detail_to_the_client() {
        for err in [
            ApiError::Dependency("dynamodb: table UsersTable at 10.0.0.7 timed out".into()),
            ApiError::Internal("index out of bounds in users.rs".into()),
        ] {
            assert!(err.status_code().is_server_error());
            let body = err.body("req-1").to_string();
            assert!(!body.contains("10.0.0.7"), "{body}");
            assert!(!body.contains("users.rs"), "{body}");
        }
    }

    #[test]
    fn every_error_has_the_one_shape() {
        let err = ApiError::unprocessable("invalid_field", "username must be 3–64 characters");
        let body = err.body("abc");
        assert_eq!(body["error"]["code"], "invalid_field");
        assert_eq!(body["error"]["message"], "username must be 3–64 characters");
        assert_eq!(body["error"]["request_id"], "abc");
        assert_eq!(body.as_object().map(|o| o.len()), Some(1));
        assert_eq!(err.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn rate_limits_say_when_to_retry() {
        let err = ApiError::TooManyRequests {
            code: "account_locked",
            message: "locked".into(),
            retry_after_secs: 900,
        };
        assert_eq!(err.status_code(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(err.retry_after_secs(), Some(900));
    }
}
