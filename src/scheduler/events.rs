//! A generation's events, from the stepping thread to the request's HTTP task, with a
//! count of those sent and not yet taken. The channel itself is unbounded (the stepping
//! thread must never block on one client), so the count is the bound: a sequence whose
//! client has [`MAX_BACKLOG`] events waiting (it reads its stream slowly) is not stepped
//! until the client catches up. Its slot stays, its cache stays, other sequences go on;
//! the buffered memory per request stays bounded.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::Event;

/// Events a client may leave unread before its sequence pauses (one per token, mostly:
/// a few tens of KB of text at most).
pub const MAX_BACKLOG: usize = 256;

/// The stepping thread's end.
#[derive(Clone)]
pub(super) struct EventSender {
    tx: mpsc::UnboundedSender<Event>,
    backlog: Arc<AtomicUsize>,
}

/// The request's end: [`Events::recv`] takes the next event.
pub struct Events {
    rx: mpsc::UnboundedReceiver<Event>,
    backlog: Arc<AtomicUsize>,
}

/// A connected pair.
pub(super) fn channel() -> (EventSender, Events) {
    let (tx, rx) = mpsc::unbounded_channel();
    let backlog = Arc::new(AtomicUsize::new(0));
    (
        EventSender {
            tx,
            backlog: Arc::clone(&backlog),
        },
        Events { rx, backlog },
    )
}

impl EventSender {
    /// Sends an event; false when the client has gone.
    pub fn send(&self, e: Event) -> bool {
        // Counted before the send, so that the receiver's decrement never comes first.
        self.backlog.fetch_add(1, Ordering::SeqCst);
        let ok = self.tx.send(e).is_ok();
        if !ok {
            self.backlog.fetch_sub(1, Ordering::SeqCst);
        }
        ok
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// The client has too many events waiting: do not produce more for now.
    pub fn backed_up(&self) -> bool {
        self.backlog.load(Ordering::SeqCst) >= MAX_BACKLOG
    }
}

impl Events {
    /// The next event; `None` once the generation has ended and everything was taken.
    pub async fn recv(&mut self) -> Option<Event> {
        let e = self.rx.recv().await;
        if e.is_some() {
            self.backlog.fetch_sub(1, Ordering::SeqCst);
        }
        e
    }
}
