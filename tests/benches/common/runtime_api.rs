//! A stand-in for the Lambda Runtime API (the interface a real Lambda host gives a
//! `provided.al2023` process), so a release binary can be started as Lambda starts it
//! and its cold start measured from process start to its first answer.
//!
//! Hand-written on purpose: it needs four routes of HTTP/1.1 on loopback; hyper's
//! server would add a feature to the workspace's hyper and rebuild everything above it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};

/// One answer the function gave: when it arrived, and what it said.
#[derive(Debug, Clone)]
pub struct Answer {
    pub at: Instant,
    pub request_id: String,
    pub ok: bool,
    pub body: String,
}

struct Shared {
    /// When the function first asked for an event: the end of its init phase.
    first_next: Mutex<Option<Instant>>,
    events: Mutex<VecDeque<(String, String)>>,
    queued: Notify,
    answers: mpsc::UnboundedSender<Answer>,
}

pub struct RuntimeApi {
    pub address: String,
    shared: Arc<Shared>,
    pub answers: mpsc::UnboundedReceiver<Answer>,
}

impl RuntimeApi {
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let (sender, answers) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            first_next: Mutex::new(None),
            events: Mutex::new(VecDeque::new()),
            queued: Notify::new(),
            answers: sender,
        });
        let accept = shared.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, accept.clone()));
            }
        });
        Ok(Self {
            address,
            shared,
            answers,
        })
    }

    /// When the function first called `next` (its init done), if it has.
    pub fn first_next(&self) -> Option<Instant> {
        *self.shared.first_next.lock().expect("first_next")
    }

    /// Queues one invocation; the function receives it on its next `next` call.
    pub fn invoke(&self, request_id: &str, event: String) {
        self.shared
            .events
            .lock()
            .expect("event queue")
            .push_back((request_id.to_owned(), event));
        self.shared.queued.notify_one();
    }
}

async fn serve(socket: TcpStream, shared: Arc<Shared>) {
    let mut stream = BufReader::new(socket);
    // Keep-alive: the runtime client reuses one connection for next/response pairs.
    while let Some((method, path, body)) = read_request(&mut stream).await {
        let reply: Vec<u8> = if method == "GET" && path.ends_with("/runtime/invocation/next") {
            shared
                .first_next
                .lock()
                .expect("first_next")
                .get_or_insert_with(Instant::now);
            let (id, event) = loop {
                let queued = shared.events.lock().expect("event queue").pop_front();
                match queued {
                    Some(next) => break next,
                    None => shared.queued.notified().await,
                }
            };
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() + 30_000)
                .unwrap_or_default();
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlambda-runtime-aws-request-id: {id}\r\nlambda-runtime-deadline-ms: {deadline}\r\nlambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:predict\r\nlambda-runtime-trace-id: Root=1-00000000-000000000000000000000000\r\ncontent-length: {}\r\n\r\n{event}",
                event.len()
            )
            .into_bytes()
        } else if method == "POST" && path.contains("/runtime/invocation/") {
            let ok = path.ends_with("/response");
            let request_id = path.split('/').rev().nth(1).unwrap_or_default().to_owned();
            let _ = shared.answers.send(Answer {
                at: Instant::now(),
                request_id,
                ok,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n".to_vec()
        } else if method == "POST" && path.ends_with("/runtime/init/error") {
            let _ = shared.answers.send(Answer {
                at: Instant::now(),
                request_id: "init".into(),
                ok: false,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n".to_vec()
        } else {
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec()
        };
        if stream.get_mut().write_all(&reply).await.is_err() {
            return;
        }
    }
}

/// Method, path and body of one request, or `None` when the connection closes.
async fn read_request(stream: &mut BufReader<TcpStream>) -> Option<(String, String, Vec<u8>)> {
    let mut line = String::new();
    if stream.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut length = 0usize;
    let mut chunked = false;
    loop {
        let mut header = String::new();
        if stream.read_line(&mut header).await.ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            if name == "content-length" {
                length = value.trim().parse().ok()?;
            } else if name == "transfer-encoding" && value.to_ascii_lowercase().contains("chunked")
            {
                chunked = true;
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            stream.read_line(&mut size).await.ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0u8; size + 2];
            stream.read_exact(&mut chunk).await.ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(length, 0);
        stream.read_exact(&mut body).await.ok()?;
    }
    Some((method, path, body))
}
