//! `GET /ws` (SPEC §6): the wallboard's websocket. Each connection subscribes to the
//! [`Hub`] (a `snapshot`, or with `?since=N` — and `&boot=` of the run it came from — the
//! frames after N while the hub still has them) and then sends the frames of its own
//! bounded queue as JSON text, in `seq` order.
//!
//! A connection never slows the engine or the other connections: the hub drops a client
//! whose queue is full and notifies it here, and a socket that does not take a frame
//! within [`crate::sinks::wallboard::HubOptions::send_timeout`] is closed. The page
//! reconnects with `since=` by itself. Messages from the client are read (pings
//! answered, close honoured) and otherwise ignored.
//!
//! Cost per frame and client is what limits the fan-out to many clients
//! (`scripts/bench_wallboard.sh`, 1,000 clients): the frames already queued when the
//! connection wakes go out together with one flush (one write, one TCP segment when they
//! fit), and the read buffer is small, since tungstenite zero-fills the free part of it
//! on every read attempt and the connection looks for client messages after every send.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::SinkExt;
use serde::Deserialize;

use crate::sinks::wallboard::{Frame, Hub};

/// Close code sent (when the socket still takes it) to a client that fell behind:
/// 1013 "try again later".
const CLOSE_LAGGED: u16 = 1013;
/// Close code when the daemon stops: 1001 "going away".
const CLOSE_GOING_AWAY: u16 = 1001;
/// Most frames written with one flush.
const MAX_BATCH: usize = 64;
/// The socket's read buffer: clients send only pings and the close (a bigger message,
/// up to the 64 KiB limit, grows it for its own length).
const READ_BUFFER: usize = 4 * 1024;

/// The query of `GET /ws`.
#[derive(Debug, Default, Deserialize)]
pub struct WsQuery {
    /// The last `seq` the client processed.
    pub since: Option<u64>,
    /// The `boot` of the run that `since` belongs to.
    pub boot: Option<String>,
}

/// The `/ws` route with the wallboard page's routes ([`super::wallboard`]).
pub fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/ws", get(upgrade))
        .with_state(hub)
        .merge(super::wallboard::router())
}

async fn upgrade(
    State(hub): State<Arc<Hub>>,
    Query(q): Query<WsQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    if hub.clients() >= hub.options().max_clients {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many wallboard clients\n",
        )
            .into_response();
    }
    ws.max_message_size(64 * 1024)
        .max_frame_size(64 * 1024)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| serve(hub, socket, q))
}

/// How a batch of frames went.
enum Sent {
    Done,
    /// The hub gave up on this client (its queue overflowed) meanwhile.
    Kicked,
    /// Write error or send timeout.
    Failed,
}

enum Next {
    Frame(Option<Frame>),
    Incoming(Option<Result<Message, axum::Error>>),
    Kicked,
}

async fn send(hub: &Hub, socket: &mut WebSocket, frame: Frame) -> bool {
    matches!(
        tokio::time::timeout(
            hub.options().send_timeout,
            socket.send(Message::Text(frame.text))
        )
        .await,
        Ok(Ok(()))
    )
}

/// Sends `first` and every frame already queued behind it (up to [`MAX_BATCH`]) with
/// one flush, within the send timeout. `taken` counts the frames taken from the queue
/// for it (those lost when it fails).
async fn send_batch(
    hub: &Hub,
    socket: &mut WebSocket,
    first: Frame,
    rx: &mut tokio::sync::mpsc::Receiver<Frame>,
    taken: &mut u64,
) -> bool {
    *taken = 1;
    let write = async {
        socket.feed(Message::Text(first.text)).await?;
        while *taken < MAX_BATCH as u64 {
            let Ok(f) = rx.try_recv() else { break };
            *taken += 1;
            socket.feed(Message::Text(f.text)).await?;
        }
        socket.flush().await
    };
    matches!(
        tokio::time::timeout(hub.options().send_timeout, write).await,
        Ok(Ok(()))
    )
}

async fn serve(hub: Arc<Hub>, mut socket: WebSocket, q: WsQuery) {
    let mut sub = match hub.subscribe(q.since, q.boot.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!("wallboard client refused: {e}");
            return;
        }
    };
    let kicked = sub.kicked.clone();
    for f in std::mem::take(&mut sub.initial) {
        if !send(&hub, &mut socket, f).await {
            return;
        }
    }
    loop {
        let next = tokio::select! {
            biased;
            _ = kicked.notified() => Next::Kicked,
            f = sub.rx.recv() => Next::Frame(f),
            m = socket.recv() => Next::Incoming(m),
        };
        match next {
            Next::Frame(Some(f)) => {
                let mut taken = 0;
                let sent = tokio::select! {
                    biased;
                    _ = kicked.notified() => Sent::Kicked,
                    ok = send_batch(&hub, &mut socket, f, &mut sub.rx, &mut taken) => {
                        if ok { Sent::Done } else { Sent::Failed }
                    }
                };
                match sent {
                    Sent::Done => {}
                    // The hub counted what was queued when it gave up on this client;
                    // the frames being sent are lost too.
                    Sent::Kicked => {
                        hub.count_dropped(taken);
                        tracing::debug!("wallboard client fell behind: disconnected");
                        return;
                    }
                    Sent::Failed => {
                        // The frames being sent and every one queued are lost to it.
                        hub.count_dropped(taken + sub.rx.len() as u64);
                        tracing::debug!("wallboard client too slow: disconnected");
                        return;
                    }
                }
            }
            Next::Kicked | Next::Frame(None) => {
                let lagged = matches!(next, Next::Kicked);
                // Best effort: a stuck socket does not get the close frame either.
                let close = Message::Close(Some(CloseFrame {
                    code: if lagged {
                        CLOSE_LAGGED
                    } else {
                        CLOSE_GOING_AWAY
                    },
                    reason: if lagged {
                        "lagged: reconnect with since".into()
                    } else {
                        "shutting down".into()
                    },
                }));
                let _ =
                    tokio::time::timeout(std::time::Duration::from_millis(100), socket.send(close))
                        .await;
                if lagged {
                    tracing::debug!("wallboard client fell behind: disconnected");
                }
                return;
            }
            Next::Incoming(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return,
            Next::Incoming(Some(Ok(_))) => {}
        }
    }
}
