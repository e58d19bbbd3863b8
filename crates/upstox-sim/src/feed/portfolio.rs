//! One portfolio-stream session: the paper engine's updates for one user as JSON text frames.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures::StreamExt;
use tokio::sync::broadcast::error::RecvError;

use crate::state::AppState;

/// Runs one connection: forwards the `update_types` updates of its user until the client leaves.
pub(super) async fn session(
    state: AppState,
    socket: WebSocket,
    mut updates: tokio::sync::broadcast::Receiver<std::sync::Arc<crate::engine::PortfolioUpdate>>,
    update_types: Vec<String>,
) {
    let (mut tx, mut rx) = socket.split();
    let mut drops = state.feed.drops();
    let mut stalled = state.feed.stalled();
    let ping_idle = Duration::from_millis(state.config.feed.ping_idle_ms.max(1));
    loop {
        if !crate::feed::hold_while_stalled(&mut stalled, &mut drops).await {
            return;
        }
        tokio::select! {
            _ = drops.recv() => return,
            r = stalled.changed() => if r.is_err() { return },
            msg = rx.next() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
            update = updates.recv() => match update {
                Ok(update) => {
                    let wanted = update_types.iter().any(|t| *t == update.update_type);
                    if wanted && !crate::feed::send_within(&mut tx, Message::Text(update.text.as_str().into())).await {
                        return;
                    }
                }
                // A slow connection skips what it missed rather than holding everyone up.
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            },
            () = tokio::time::sleep(ping_idle) => {
                if !crate::feed::send_within(&mut tx, Message::Ping(Vec::new().into())).await {
                    return;
                }
            }
        }
    }
}
