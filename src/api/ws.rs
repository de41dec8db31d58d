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

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::sinks::wallboard::{Frame, Hub};

/// Close code sent (when the socket still takes it) to a client that fell behind:
/// 1013 "try again later".
const CLOSE_LAGGED: u16 = 1013;
/// Close code when the daemon stops: 1001 "going away".
const CLOSE_GOING_AWAY: u16 = 1001;

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
        .on_upgrade(move |socket| serve(hub, socket, q))
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
                let sent = tokio::select! {
                    biased;
                    _ = kicked.notified() => false,
                    ok = send(&hub, &mut socket, f) => ok,
                };
                if !sent {
                    // The frame being sent and every one queued are lost to it.
                    hub.count_dropped(1 + sub.rx.len() as u64);
                    tracing::debug!("wallboard client too slow: disconnected");
                    return;
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
