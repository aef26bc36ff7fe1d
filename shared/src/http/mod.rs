//! Request parsing at the edge, responses, and the route table every function declares
//! ([`router`]).

pub mod router;

pub use crate::service::Service;
pub use router::{Access, Admin, Anyone, AuditScope, Ctx, HandlerResult, Router};

use crate::error::ApiError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What every log line and audit entry says about the request it serves.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub request_id: String,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
}

impl RequestMeta {
    pub fn from_request(req: &Request) -> Self {
        // The Lambda request id is the one the runtime logs and CloudWatch shows; a request
        // built by hand in a test has none, so it gets a fresh one.
        let request_id = req
            .lambda_context_ref()
            .map(|ctx| ctx.request_id.clone())
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| ulid::Ulid::new().to_string());
        let source_ip = match req.request_context_ref() {
            Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) => {
                ctx.http.source_ip.clone()
            }
            _ => None,
        }
        .or_else(|| {
            header_str(req, "x-forwarded-for")
                .map(|v| v.split(',').next().unwrap_or(v).trim().to_owned())
        });
        Self {
            request_id,
            source_ip,
            user_agent: header_str(req, "user-agent").map(str::to_owned),
        }
    }
}

pub fn header_str<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

pub fn error_response(err: &ApiError, request_id: &str) -> Response<Body> {
    let status = err.status_code();
    if status.is_server_error() {
        tracing::error!(request_id, code = err.code(), detail = %err, "request failed");
    } else {
        tracing::info!(request_id, code = err.code(), "request refused");
    }
    let mut response = json_response(status, &err.body(request_id));
    if let Some(secs) = err.retry_after_secs() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if let Some(allow) = err.allowed_methods() {
        let names: Vec<&str> = allow.iter().map(http::Method::as_str).collect();
        if let Ok(value) = HeaderValue::from_str(&names.join(", ")) {
            response.headers_mut().insert(header::ALLOW, value);
        }
    }
    response
}

pub fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response<Body> {
    // Serialising our own response types cannot fail (no maps with non-string keys);
    // should it ever, the client still gets valid JSON.
    let text = serde_json::to_string(body)
        .unwrap_or_else(|_| r#"{"error":{"code":"internal_error"}}"#.to_owned());
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub fn empty_response(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = status;
    response
}

fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        // Any future body kind we do not know is treated as no body.
        #[allow(unreachable_patterns)]
        _ => &[],
    }
}

/// Parses a JSON body: 400 when it is missing or not JSON, 413 over `max_bytes`, 415 when it
/// is not declared as JSON, 422 when the JSON has the wrong shape (the message names the field).
pub fn parse_json<T: DeserializeOwned>(req: &Request, max_bytes: usize) -> Result<T, ApiError> {
    let bytes = body_bytes(req);
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "missing_body",
            "the request needs a JSON body",
        ));
    }
    if bytes.len() > max_bytes {
        return Err(ApiError::PayloadTooLarge(format!(
            "the body is {} bytes; the limit is {max_bytes}",
            bytes.len()
        )));
    }
    let content_type = header_str(req, "content-type").unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::UnsupportedMediaType(format!(
            "expected Content-Type: application/json, got {:?}",
            if content_type.is_empty() {
                "nothing"
            } else {
                content_type
            }
        )));
    }
    let parsed = serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            ApiError::unprocessable("invalid_body", format!("the JSON body is not valid: {e}"))
        }
        // 1e400 is well-formed JSON whose value no f64 holds: a value not acceptable
        // (DESIGN.md §6a: non-finite values are 422), not a body that does not parse.
        _ if e.to_string().starts_with("number out of range") => ApiError::unprocessable(
            "non_finite_number",
            format!("a number in the body is out of range: {e}"),
        ),
        _ => ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}")),
    })?;
    // serde's derived structs also take a JSON array of their fields in order
    // (`["deploy done"]` as `{"message": "deploy done"}`): every body here is an object.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::unprocessable(
            "invalid_body",
            "the JSON body must be an object",
        ));
    }
    Ok(parsed)
}

/// The value of one query-string parameter, if given and non-empty.
pub fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref()
        .and_then(|q| q.first(name))
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .or_else(|| {
            // Requests built without the API Gateway extension (tests, some local runners)
            // still carry the query in the URI.
            req.uri().query().and_then(|q| {
                q.split('&').find_map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (k == name && !v.is_empty()).then(|| percent_decode(v))
                })
            })
        })
}

/// Decodes `%XX` escapes and `+`; malformed escapes are kept as they are.
// Hand-written: the one decoder needed here is a dozen lines; a crate would add little.
pub fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex_value(bytes[i + 1]), hex_value(bytes[i + 2]))
            {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// `limit` and `cursor` of a paginated list (DESIGN.md §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub cursor: Option<String>,
}

impl PageRequest {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 500;

    pub fn from_request(req: &Request) -> Result<Self, ApiError> {
        let limit = match query_param(req, "limit") {
            None => Self::DEFAULT_LIMIT,
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=Self::MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::unprocessable(
                        "invalid_parameter",
                        format!("limit must be a whole number from 1 to {}", Self::MAX_LIMIT),
                    )
                })?,
        };
        let cursor = query_param(req, "cursor")
            .map(|c| decode_cursor(&c))
            .transpose()?;
        Ok(Self { limit, cursor })
    }
}

/// Cursors are opaque to clients: base64url of what the store needs to resume.
pub fn encode_cursor(position: &str) -> String {
    URL_SAFE_NO_PAD.encode(position)
}

fn decode_cursor(raw: &str) -> Result<String, ApiError> {
    URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            ApiError::bad_request("invalid_cursor", "the cursor is not one this API issued")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Login {
        username: String,
        password: String,
    }

    fn request(content_type: Option<&str>, body: &str) -> Request {
        let mut builder = http::Request::builder().method("POST").uri("/login");
        if let Some(ct) = content_type {
            builder = builder.header("content-type", ct);
        }
        let body = if body.is_empty() {
            Body::Empty
        } else {
            Body::Text(body.to_owned())
        };
        builder.body(body).unwrap()
    }

    fn status_of<T: DeserializeOwned + std::fmt::Debug>(req: &Request) -> StatusCode {
        parse_json::<T>(req, 1024).unwrap_err().status_code()
    }

    #[test]
    fn json_bodies_are_checked_in_order() {
        let json = Some("application/json");
        assert_eq!(
            status_of::<Login>(&request(json, "")),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status_of::<Login>(&request(
                Some("text/plain"),
                r#"{"username":"a","password":"b"}"#
            )),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(
            status_of::<Login>(&request(None, r#"{"username":"a","password":"b"}"#)),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(
            status_of::<Login>(&request(json, "{not json")),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status_of::<Login>(&request(json, "[1,2]")),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            status_of::<Login>(&request(json, r#"{"username":"a"}"#)),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            status_of::<Login>(&request(
                json,
                &format!(r#"{{"username":"{}"}}"#, "a".repeat(2000))
            )),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let ok: Login = parse_json(
            &request(
                Some("application/json; charset=utf-8"),
                r#"{"username":"a","password":"b"}"#,
            ),
            1024,
        )
        .unwrap();
        assert_eq!(ok.username, "a");
    }

    #[test]
    fn percent_decoding_survives_any_input() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%C3%A9"), "é");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
        assert_eq!(percent_decode("%é%"), "%é%");
    }

    #[test]
    fn pages_are_bounded_and_cursors_round_trip() {
        let req = |q: &str| {
            http::Request::builder()
                .uri(format!("/users?{q}"))
                .body(Body::Empty)
                .unwrap()
        };
        assert_eq!(PageRequest::from_request(&req("")).unwrap().limit, 50);
        assert_eq!(
            PageRequest::from_request(&req("limit=500")).unwrap().limit,
            500
        );
        for bad in ["limit=0", "limit=501", "limit=-1", "limit=ten"] {
            assert_eq!(
                PageRequest::from_request(&req(bad))
                    .unwrap_err()
                    .status_code(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "{bad}"
            );
        }
        let cursor = encode_cursor("bob");
        let page = PageRequest::from_request(&req(&format!("cursor={cursor}"))).unwrap();
        assert_eq!(page.cursor.as_deref(), Some("bob"));
        assert_eq!(
            PageRequest::from_request(&req("cursor=!!!"))
                .unwrap_err()
                .status_code(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn errors_leave_in_the_one_shape_with_their_headers() {
        let response = error_response(
            &ApiError::TooManyRequests {
                code: "account_locked",
                message: "locked".into(),
                retry_after_secs: 60,
            },
            "req-1",
        );
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "60");
        let Body::Text(text) = response.body() else {
            panic!("expected a text body")
        };
        let body: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(body["error"]["code"], "account_locked");
        assert_eq!(body["error"]["request_id"], "req-1");

        let response = error_response(
            &ApiError::MethodNotAllowed {
                method: "PUT".into(),
                path: "/users".into(),
                allow: vec![http::Method::GET, http::Method::POST],
            },
            "req-2",
        );
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "GET, POST");
    }
}
