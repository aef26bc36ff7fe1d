//! A stand-in Slack Incoming Webhook for the tests: a local HTTP server that records
//! every request and answers each from a script, the way Slack answers (200 `ok`, 429
//! with `Retry-After`, a 5xx, a 400 with an error text such as `invalid_blocks`, or no
//! answer at all).
//!
//! Written by hand, a few lines over hyper (already linked by the AWS SDK): the HTTP
//! mocking crates match requests to canned responses, but none plays a scripted
//! sequence of Slack's answers, records arrival times for `Retry-After` checks, and
//! hangs on demand; what each test needs is the sequence.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One answer of the stand-in, as Slack gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// 200 `ok`: the message was posted.
    Ok,
    /// 429 `rate_limited` with `Retry-After: retry_after_secs`.
    TooMany { retry_after_secs: u64 },
    /// 500: Slack had trouble.
    ServerError,
    /// 400 with Slack's error text (`invalid_blocks`, `invalid_payload`, …).
    BadRequest(&'static str),
    /// Reads the request, then never answers.
    Hang,
}

#[derive(Default)]
struct State {
    script: Mutex<VecDeque<Reply>>,
    received: Mutex<Vec<(Instant, Value)>>,
}

/// A running stand-in; stops when dropped.
pub struct Standin {
    addr: SocketAddr,
    state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
}

impl Standin {
    /// Serves on 127.0.0.1 (a free port) on the current tokio runtime: the requests get
    /// `script`'s replies in order of arrival, then [`Reply::Ok`].
    pub async fn start(script: Vec<Reply>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free local port for the stand-in webhook");
        let addr = listener.local_addr().expect("the stand-in's address");
        let state = Arc::new(State {
            script: Mutex::new(script.into()),
            received: Mutex::new(Vec::new()),
        });
        let shared = Arc::clone(&state);
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |req| answer(Arc::clone(&state), req));
                    // A client that hangs up (a timed-out attempt) ends its connection.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            state,
            server,
        }
    }

    /// The webhook URL to post to.
    pub fn url(&self) -> String {
        format!("http://{}/services/T000/B000/standin", self.addr)
    }

    /// Every request so far, in order of arrival: when it arrived and its body (JSON,
    /// or the raw text as a JSON string when it is not JSON).
    pub fn received(&self) -> Vec<(Instant, Value)> {
        self.state
            .received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The bodies received so far.
    pub fn bodies(&self) -> Vec<Value> {
        self.received().into_iter().map(|(_, body)| body).collect()
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn answer(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let bytes = match req.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    // Recorded and scripted under one lock: the n-th request recorded gets the n-th reply.
    let reply = {
        let mut received = state.received.lock().unwrap_or_else(|e| e.into_inner());
        received.push((Instant::now(), body));
        state
            .script
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
            .unwrap_or(Reply::Ok)
    };
    let respond = |status: StatusCode, text: &str| {
        let mut response = Response::new(Full::new(Bytes::from(text.to_owned())));
        *response.status_mut() = status;
        response
    };
    Ok(match reply {
        Reply::Ok => respond(StatusCode::OK, "ok"),
        Reply::TooMany { retry_after_secs } => {
            let mut response = respond(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
            response.headers_mut().insert(
                "retry-after",
                retry_after_secs
                    .to_string()
                    .parse()
                    .expect("a header value"),
            );
            response
        }
        Reply::ServerError => respond(StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        Reply::BadRequest(text) => respond(StatusCode::BAD_REQUEST, text),
        Reply::Hang => std::future::pending().await,
    })
}
