//! The uploaded image, from any of the three ways DESIGN.md §2 accepts it:
//! multipart `file` (the seeds' clients), a raw `image/*` body, or JSON
//! `{"image": "<base64>"}`. Everything here is bounded: 6 MB of body, 6 MB of image.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use inferloop::ApiError;
use inferloop::http::{header_str, parse_json};
use inferloop::model::preprocess::PreprocessError;
use lambda_http::{Body, Request};
use serde::Deserialize;

/// Lambda's synchronous payload limit, and ours for a body and for an image.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;
/// The multipart field the seeds' clients send the image in.
pub const FILE_FIELD: &str = "file";

const ACCEPTED: &str = "multipart/form-data (field \"file\"), image/png, image/jpeg, image/bmp, image/gif, image/webp, application/octet-stream or application/json {\"image\": base64}";

fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    }
}

fn too_large(what: &str, len: usize) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "the {what} is {len} bytes; the limit is {MAX_BODY_BYTES} bytes (6 MB)"
    ))
}

fn invalid_image(message: impl Into<String>) -> ApiError {
    ApiError::unprocessable("invalid_image", message)
}

/// The image bytes of a predict request.
pub async fn image_bytes(req: &Request) -> Result<Vec<u8>, ApiError> {
    let body = body_bytes(req);
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "missing_body",
            format!("the request needs an image: {ACCEPTED}"),
        ));
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(too_large("body", body.len()));
    }
    let content_type = header_str(req, "content-type").unwrap_or("");
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let image = match media_type.as_str() {
        "multipart/form-data" => multipart_file(body, content_type).await?,
        "application/json" => json_image(req)?,
        // A client that does not know the format sends octet-stream; the bytes say what
        // they are either way (decoding sniffs the format, never trusts the header).
        t if t.starts_with("image/") || t == "application/octet-stream" => body.to_vec(),
        _ => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "Content-Type {:?} is not accepted; send {ACCEPTED}",
                if content_type.is_empty() {
                    "nothing"
                } else {
                    content_type
                }
            )));
        }
    };
    if image.is_empty() {
        return Err(invalid_image("the image is empty"));
    }
    Ok(image)
}

async fn multipart_file(body: &[u8], content_type: &str) -> Result<Vec<u8>, ApiError> {
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        ApiError::bad_request(
            "malformed_multipart",
            "the multipart Content-Type has no boundary",
        )
    })?;
    let limits = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(MAX_BODY_BYTES as u64)
            .per_field(MAX_BODY_BYTES as u64),
    );
    let chunk = body.to_vec();
    let stream =
        futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(chunk) });
    let mut form = multer::Multipart::with_constraints(stream, boundary, limits);
    let multipart_error = |e: multer::Error| match e {
        multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
            too_large("file", MAX_BODY_BYTES + 1)
        }
        other => ApiError::bad_request(
            "malformed_multipart",
            format!("the multipart body cannot be read: {other}"),
        ),
    };
    while let Some(field) = form.next_field().await.map_err(multipart_error)? {
        if field.name() == Some(FILE_FIELD) {
            let bytes = field.bytes().await.map_err(multipart_error)?;
            return Ok(bytes.to_vec());
        }
    }
    Err(ApiError::unprocessable(
        "missing_file",
        format!("the multipart body has no \"{FILE_FIELD}\" field"),
    ))
}

#[derive(Deserialize)]
struct JsonImage {
    image: String,
}

fn json_image(req: &Request) -> Result<Vec<u8>, ApiError> {
    let body: JsonImage = parse_json(req, MAX_BODY_BYTES)?;
    // Browsers produce data URLs (`data:image/png;base64,…`); take what follows the comma.
    let text = match body.image.split_once(',') {
        Some((head, data)) if head.starts_with("data:") => data,
        _ => body.image.as_str(),
    };
    let text: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    // Decoded size is 3/4 of the text: refuse before decoding anything too large.
    if text.len() / 4 * 3 > MAX_BODY_BYTES {
        return Err(too_large("image", text.len() / 4 * 3));
    }
    STANDARD
        .decode(&text)
        .or_else(|_| STANDARD_NO_PAD.decode(&text))
        .map_err(|e| {
            ApiError::unprocessable(
                "invalid_base64",
                format!("\"image\" is not valid base64: {e}"),
            )
        })
}

/// Why an image cannot be read, as the client is told.
pub fn preprocess_error(err: PreprocessError) -> ApiError {
    match err {
        // Every size limit (a side, the pixel count, pixels per byte, the decoder's
        // allocation cap) is a 413: the image is too large, for the service or for its
        // own bytes. The message names the limit and says to resize.
        PreprocessError::TooLarge { .. } => ApiError::PayloadTooLarge(err.to_string()),
        PreprocessError::NoInk => ApiError::unprocessable(
            "no_digit",
            "the image holds no visible ink: nothing to read",
        ),
        PreprocessError::UnknownFormat => invalid_image(err.to_string()),
        PreprocessError::Decode(_) | PreprocessError::Empty | PreprocessError::BadBuffer { .. } => {
            invalid_image(format!("the image is damaged or truncated: {err}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(content_type: Option<&str>, body: Body) -> Request {
        let mut builder = lambda_http::http::Request::builder()
            .method("POST")
            .uri("/api/v2/predict");
        if let Some(ct) = content_type {
            builder = builder.header("content-type", ct);
        }
        builder.body(body).unwrap()
    }

    fn multipart(boundary: &str, name: &str, data: &[u8]) -> Vec<u8> {
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"d.png\"\r\nContent-Type: image/png\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(data);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        body
    }

    /// Issue 19, finding 5: a small file claiming a huge image is a 413 whose message
    /// says the limit and to resize, from the header alone.
    #[test]
    fn images_too_large_for_the_service_or_their_bytes_are_413() {
        use inferloop::model::preprocess::{self, SizeLimit, bombs};
        let cases = [
            (bombs::webp(4096, 4096), "4,194,304 pixels (2048×2048)"),
            (bombs::gif((4096, 4096), (4096, 4096)), "4,194,304 pixels"),
            (bombs::jpeg(4096, 4096, 3, true), "4,194,304 pixels"),
            (bombs::png(4000, 4000, 1, true), "4,194,304 pixels"),
            (bombs::webp(2048, 2048), "pixels per byte"),
            (bombs::bmp(2048, 2048), "pixels per byte"),
            (bombs::jpeg_headers(2048, 2048, 3, false), "pixels per byte"),
        ];
        for (bytes, says) in cases {
            let err = preprocess::preprocess_bytes(&bytes).unwrap_err();
            assert!(
                matches!(
                    err,
                    PreprocessError::TooLarge {
                        limit: SizeLimit::Pixels | SizeLimit::Density { .. },
                        ..
                    }
                ),
                "{err:?}"
            );
            let api = preprocess_error(err);
            assert_eq!(api.status_code().as_u16(), 413);
            assert_eq!(api.code(), "payload_too_large");
            let message = api.public_message();
            assert!(message.contains(says), "{message}");
            assert!(message.contains("resize"), "{message}");
        }
        let allocation = preprocess_error(PreprocessError::TooLarge {
            width: 2048,
            height: 2048,
            limit: SizeLimit::Allocation,
        });
        assert_eq!(allocation.status_code().as_u16(), 413);
    }

    async fn status(req: Request) -> u16 {
        image_bytes(&req).await.unwrap_err().status_code().as_u16()
    }

    #[tokio::test]
    async fn each_accepted_form_gives_the_same_bytes() {
        let png = b"\x89PNG\r\n\x1a\nfake".to_vec();
        let raw = request(Some("image/png"), Body::Binary(png.clone()));
        assert_eq!(image_bytes(&raw).await.unwrap(), png);
        let octets = request(Some("application/octet-stream"), Body::Binary(png.clone()));
        assert_eq!(image_bytes(&octets).await.unwrap(), png);
        let form = request(
            Some("multipart/form-data; boundary=XyZ"),
            Body::Binary(multipart("XyZ", "file", &png)),
        );
        assert_eq!(image_bytes(&form).await.unwrap(), png);
        let json = request(
            Some("application/json"),
            Body::Text(format!(r#"{{"image":"{}"}}"#, STANDARD.encode(&png))),
        );
        assert_eq!(image_bytes(&json).await.unwrap(), png);
        let data_url = request(
            Some("application/json"),
            Body::Text(format!(
                r#"{{"image":"data:image/png;base64,{}"}}"#,
                STANDARD_NO_PAD.encode(&png)
            )),
        );
        assert_eq!(image_bytes(&data_url).await.unwrap(), png);
    }

    #[tokio::test]
    async fn bad_requests_get_the_documented_status() {
        assert_eq!(status(request(Some("image/png"), Body::Empty)).await, 400);
        assert_eq!(status(request(None, Body::Binary(vec![1]))).await, 415);
        assert_eq!(
            status(request(Some("text/plain"), Body::Text("7".into()))).await,
            415
        );
        assert_eq!(
            status(request(
                Some("image/png"),
                Body::Binary(vec![0; MAX_BODY_BYTES + 1])
            ))
            .await,
            413
        );
        // Multipart without a boundary, without the file field, and cut short.
        assert_eq!(
            status(request(
                Some("multipart/form-data"),
                Body::Binary(multipart("a", "file", b"x"))
            ))
            .await,
            400
        );
        assert_eq!(
            status(request(
                Some("multipart/form-data; boundary=a"),
                Body::Binary(multipart("a", "picture", b"x"))
            ))
            .await,
            422
        );
        let mut cut = multipart("a", "file", b"xxxx");
        cut.truncate(cut.len() - 12);
        assert_eq!(
            status(request(
                Some("multipart/form-data; boundary=a"),
                Body::Binary(cut)
            ))
            .await,
            400
        );
        assert_eq!(
            status(request(
                Some("multipart/form-data; boundary=a"),
                Body::Binary(multipart("a", "file", b""))
            ))
            .await,
            422
        );
        // JSON: broken, wrong shape, not base64.
        for (body, expected) in [
            ("{", 400),
            (r#"{"img":"AAAA"}"#, 422),
            (r#"{"image":7}"#, 422),
            (r#"{"image":"!!!not base64!!!"}"#, 422),
            (r#"{"image":""}"#, 422),
        ] {
            assert_eq!(
                status(request(Some("application/json"), Body::Text(body.into()))).await,
                expected,
                "{body}"
            );
        }
    }
}
