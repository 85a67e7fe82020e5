//! Graceful shutdown: one broadcast, every task listens (after mini-redis `shutdown.rs`).

use tokio::sync::broadcast;

/// Listens for the shutdown signal. Cheap to clone via [`Shutdown::subscribe`].
#[derive(Debug)]
pub struct Shutdown {
    seen: bool,
    rx: broadcast::Receiver<()>,
}

impl Shutdown {
    pub fn new(rx: broadcast::Receiver<()>) -> Self {
        Shutdown { seen: false, rx }
    }

    pub fn is_shutdown(&self) -> bool {
        self.seen
    }

    /// Waits for the signal (returns at once if already seen).
    pub async fn recv(&mut self) {
        if self.seen {
            return;
        }
        let _ = self.rx.recv().await;
        self.seen = true;
    }
}
