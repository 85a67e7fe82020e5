//! Graceful shutdown: one broadcast, every task and thread listens (after mini-redis
//! `shutdown.rs`). Async tasks wait with [`Shutdown::recv`]; plain threads poll
//! [`Shutdown::check`] between units of work.

use tokio::sync::broadcast::{self, error::TryRecvError};

/// Listens for the shutdown signal. Each task gets its own from the sender's `subscribe()`.
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

    /// Whether the signal has come, without waiting (for plain threads). A dropped sender
    /// counts as the signal: nobody is left to send it.
    pub fn check(&mut self) -> bool {
        if !self.seen {
            match self.rx.try_recv() {
                Err(TryRecvError::Empty) => {}
                Ok(()) | Err(TryRecvError::Closed | TryRecvError::Lagged(_)) => self.seen = true,
            }
        }
        self.seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_sees_the_signal_and_a_dropped_sender() {
        let (tx, _) = broadcast::channel(1);
        let mut a = Shutdown::new(tx.subscribe());
        let mut b = Shutdown::new(tx.subscribe());
        assert!(!a.check());
        tx.send(()).expect("send");
        assert!(a.check() && a.is_shutdown());
        assert!(a.check(), "stays seen");
        drop(tx);
        assert!(b.check(), "the signal was queued before the drop");
        let (tx, _) = broadcast::channel::<()>(1);
        let mut c = Shutdown::new(tx.subscribe());
        drop(tx);
        assert!(c.check(), "a dropped sender is a shutdown");
    }
}
