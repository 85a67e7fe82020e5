//! Templates that outlive the gateway and the exporter's source port.
//!
//! netflow_parser keeps v9/IPFIX templates (data and options) in a cache per source
//! (`AutoScopedParser`: address *with port* and source id / observation domain), writes every
//! template it accepts through to a [`TemplateStore`] and, on a cache miss, reads it back from
//! there before it would buffer the data. [`TemplateBook`] is that store. It keys templates
//! by exporter *address* (no port: a restarted router usually exports from a new one), v9
//! source id or IPFIX observation domain, cache kind and template id, so:
//!
//! - a gateway restarted on the same data directory decodes data sets at once (the runtime
//!   saves the book's changes to sled each second and restores it at start,
//!   `sinks/store/templates.rs`);
//! - an exporter that comes back from a new port, or whose new port hashes to another shard
//!   (the shards share one book), decodes at once too.
//!
//! Stale templates expire: one not announced for `ttl` is neither restored nor handed out
//! (counted). Memory is bounded: at most `max_per_exporter` templates per exporter address;
//! further ones are refused (counted; netflow_parser still keeps them in its own cache, so
//! decoding is not affected, only their survival).
//!
//! The hot path (`plan.rs`) learns plans only from template sets it sees, so the first data
//! sets from a new port go through netflow_parser until the exporter's next template refresh.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use netflow_parser::template_store::{
    TemplateKind, TemplateStore, TemplateStoreError, TemplateStoreKey,
};

/// A template announced again within this long is not rewritten to disk (its age is kept
/// to this precision).
const REFRESH_MS: u64 = 60_000;

#[derive(Debug, Clone)]
struct Kept {
    exporter: IpAddr,
    seen_ms: u64,
    bytes: Vec<u8>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, Kept>,
    per_exporter: HashMap<IpAddr, usize>,
    /// Keys to write (they are in `entries`) or delete (they are not) at the next save.
    changed: HashSet<String>,
}

/// Counters of the book (on `/metrics` as `netflow_templates_*`).
#[derive(Debug, Default)]
pub struct TemplateCounters {
    /// Restored from the store at start.
    pub restored: AtomicU64,
    /// Older than the time to live: not restored, or dropped when asked for.
    pub expired: AtomicU64,
    /// Over the per-exporter bound: not kept.
    pub refused: AtomicU64,
    /// Handed to a parser that had not seen them (a new source port, another shard, or a
    /// restart).
    pub read_through: AtomicU64,
}

/// The shared template store (see the module docs).
#[derive(Debug)]
pub struct TemplateBook {
    inner: Mutex<Inner>,
    ttl_ms: u64,
    max_per_exporter: usize,
    clock: fn() -> u64,
    pub counters: Arc<TemplateCounters>,
}

impl TemplateBook {
    pub fn new(ttl_ms: u64, max_per_exporter: usize, clock: fn() -> u64) -> TemplateBook {
        TemplateBook {
            inner: Mutex::default(),
            ttl_ms,
            max_per_exporter: max_per_exporter.max(1),
            clock,
            counters: Arc::default(),
        }
    }

    /// Takes back what the store kept (`(key, value)` as [`TemplateBook::take_changes`] gave
    /// them); expired or unreadable ones are dropped and queued for deletion. Returns how many
    /// were restored.
    pub fn restore(&self, saved: impl IntoIterator<Item = (String, Vec<u8>)>) -> usize {
        let now = (self.clock)();
        let Ok(mut inner) = self.inner.lock() else {
            return 0;
        };
        let mut restored = 0;
        for (key, value) in saved {
            let parsed = exporter_of_key(&key).zip(decode_value(&value));
            let Some((exporter, (seen_ms, bytes))) = parsed else {
                inner.changed.insert(key);
                continue;
            };
            if now.saturating_sub(seen_ms) > self.ttl_ms {
                self.counters.expired.fetch_add(1, Ordering::Relaxed);
                inner.changed.insert(key);
                continue;
            }
            let n = inner.per_exporter.entry(exporter).or_default();
            if *n >= self.max_per_exporter {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                inner.changed.insert(key);
                continue;
            }
            *n += 1;
            inner.entries.insert(
                key,
                Kept {
                    exporter,
                    seen_ms,
                    bytes: bytes.to_vec(),
                },
            );
            restored += 1;
        }
        self.counters
            .restored
            .fetch_add(restored as u64, Ordering::Relaxed);
        restored
    }

    /// What changed since the last call: `(key, Some(value))` to write, `(key, None)` to
    /// delete.
    pub fn take_changes(&self) -> Vec<(String, Option<Vec<u8>>)> {
        let Ok(mut inner) = self.inner.lock() else {
            return Vec::new();
        };
        let changed = std::mem::take(&mut inner.changed);
        changed
            .into_iter()
            .map(|k| {
                let v = inner
                    .entries
                    .get(&k)
                    .map(|e| encode_value(e.seen_ms, &e.bytes));
                (k, v)
            })
            .collect()
    }

    /// Templates kept now.
    pub fn len(&self) -> usize {
        self.inner.lock().map_or(0, |i| i.entries.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn remove_locked(inner: &mut Inner, key: &str) {
        if let Some(old) = inner.entries.remove(key) {
            if let Some(n) = inner.per_exporter.get_mut(&old.exporter) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    inner.per_exporter.remove(&old.exporter);
                }
            }
            inner.changed.insert(key.to_string());
        }
    }
}

fn lock_error() -> TemplateStoreError {
    TemplateStoreError::Backend("template book lock poisoned".into())
}

impl TemplateStore for TemplateBook {
    fn get(&self, key: &TemplateStoreKey) -> Result<Option<Vec<u8>>, TemplateStoreError> {
        let Some((k, _)) = book_key(key) else {
            return Ok(None);
        };
        let now = (self.clock)();
        let mut inner = self.inner.lock().map_err(|_| lock_error())?;
        let Some(e) = inner.entries.get(&k) else {
            return Ok(None);
        };
        if now.saturating_sub(e.seen_ms) > self.ttl_ms {
            self.counters.expired.fetch_add(1, Ordering::Relaxed);
            Self::remove_locked(&mut inner, &k);
            return Ok(None);
        }
        self.counters.read_through.fetch_add(1, Ordering::Relaxed);
        Ok(Some(e.bytes.clone()))
    }

    fn put(&self, key: &TemplateStoreKey, value: &[u8]) -> Result<(), TemplateStoreError> {
        let Some((k, exporter)) = book_key(key) else {
            return Ok(());
        };
        let now = (self.clock)();
        let mut inner = self.inner.lock().map_err(|_| lock_error())?;
        if let Some(e) = inner.entries.get_mut(&k) {
            if e.bytes == value && now.saturating_sub(e.seen_ms) < REFRESH_MS {
                return Ok(());
            }
            e.seen_ms = now;
            if e.bytes != value {
                e.bytes = value.to_vec();
            }
            inner.changed.insert(k);
            return Ok(());
        }
        let n = inner.per_exporter.entry(exporter).or_default();
        if *n >= self.max_per_exporter {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        *n += 1;
        inner.entries.insert(
            k.clone(),
            Kept {
                exporter,
                seen_ms: now,
                bytes: value.to_vec(),
            },
        );
        inner.changed.insert(k);
        Ok(())
    }

    fn remove(&self, key: &TemplateStoreKey) -> Result<(), TemplateStoreError> {
        // netflow_parser removes what its per-source cache evicts or an exporter withdraws.
        // An eviction from one source's cache says nothing about the exporter's other sources
        // (ports, shards); only a withdrawal does, and it is rare: the time to live covers it.
        let _ = key;
        Ok(())
    }
}

/// The book's key for a parser's store key: `v9:10.0.0.1/7/data/256` (family, exporter
/// address without the port, source id or domain, cache, template id), and the exporter.
/// `None` for a scope that names no exporter (a parser without `AutoScopedParser`).
fn book_key(key: &TemplateStoreKey) -> Option<(String, IpAddr)> {
    let (family, rest) = key.scope.split_once(':')?;
    let (source, domain) = rest.rsplit_once('/')?;
    let exporter = source.parse::<SocketAddr>().ok()?.ip();
    let domain: u32 = domain.parse().ok()?;
    let kind = match key.kind {
        TemplateKind::V9Data => "data",
        TemplateKind::V9Options => "options",
        TemplateKind::IpfixData => "data",
        TemplateKind::IpfixOptions => "options",
        TemplateKind::IpfixV9Data => "v9data",
        TemplateKind::IpfixV9Options => "v9options",
        _ => return None,
    };
    let family = match family {
        "v9" => "v9",
        "ipfix" => "ipfix",
        _ => return None,
    };
    Some((
        format!("{family}:{exporter}/{domain}/{kind}/{}", key.template_id),
        exporter,
    ))
}

/// The exporter named by a book key (see [`book_key`]).
fn exporter_of_key(key: &str) -> Option<IpAddr> {
    let (_, rest) = key.split_once(':')?;
    let mut parts = rest.rsplitn(4, '/');
    let (_id, _kind, _domain) = (parts.next()?, parts.next()?, parts.next()?);
    parts.next()?.parse().ok()
}

/// Stored value: when the template was last announced (epoch ms, big-endian) and
/// netflow_parser's own encoding of it.
fn encode_value(seen_ms: u64, bytes: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + bytes.len());
    v.extend_from_slice(&seen_ms.to_be_bytes());
    v.extend_from_slice(bytes);
    v
}

fn decode_value(value: &[u8]) -> Option<(u64, &[u8])> {
    let (head, bytes) = value.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*head), bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64 as Clock;

    static NOW: Clock = Clock::new(1_000_000);
    fn clock() -> u64 {
        NOW.load(Ordering::Relaxed)
    }

    fn key(scope: &str, id: u16) -> TemplateStoreKey {
        TemplateStoreKey::new(scope, TemplateKind::IpfixData, id)
    }

    #[test]
    fn the_source_port_is_not_part_of_the_key() {
        let book = TemplateBook::new(60_000, 8, clock);
        book.put(&key("ipfix:10.0.0.1:4000/7", 256), b"tmpl")
            .expect("put");
        let got = book.get(&key("ipfix:10.0.0.1:5555/7", 256)).expect("get");
        assert_eq!(got.as_deref(), Some(&b"tmpl"[..]));
        // Another domain or another address is another template.
        assert_eq!(
            book.get(&key("ipfix:10.0.0.1:5555/8", 256)).expect("get"),
            None
        );
        assert_eq!(
            book.get(&key("ipfix:10.0.0.2:4000/7", 256)).expect("get"),
            None
        );
        assert_eq!(book.get(&key("", 256)).expect("get"), None);
        let v6 = key("v9:[2001:db8::1]:9/3", 300);
        book.put(&v6, b"six").expect("put");
        let got = book.get(&key("v9:[2001:db8::1]:10/3", 300)).expect("get");
        assert_eq!(got.as_deref(), Some(&b"six"[..]));
    }

    #[test]
    fn saved_changes_restore_in_a_new_book_until_they_expire() {
        let book = TemplateBook::new(60_000, 8, clock);
        book.put(&key("ipfix:10.0.0.1:4000/7", 256), b"a")
            .expect("put");
        book.put(&key("v9:[2001:db8::1]:9/3", 300), b"b")
            .expect("put");
        let saved: Vec<(String, Vec<u8>)> = book
            .take_changes()
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
            .collect();
        assert_eq!(saved.len(), 2);
        assert!(book.take_changes().is_empty());
        let fresh = TemplateBook::new(60_000, 8, clock);
        assert_eq!(fresh.restore(saved.clone()), 2);
        assert!(fresh
            .get(&key("ipfix:10.0.0.1:1/7", 256))
            .expect("get")
            .is_some());
        // Past the time to live: not restored, and deleted at the next save.
        let old = TemplateBook::new(1_000, 8, || clock() + 5_000);
        assert_eq!(old.restore(saved), 0);
        assert_eq!(old.counters.expired.load(Ordering::Relaxed), 2);
        assert!(old.take_changes().iter().all(|(_, v)| v.is_none()));
    }

    #[test]
    fn templates_per_exporter_are_bounded_and_refusals_counted() {
        let book = TemplateBook::new(60_000, 2, clock);
        for id in 256..260 {
            book.put(&key("ipfix:10.0.0.1:4000/7", id), b"t")
                .expect("put");
        }
        book.put(&key("ipfix:10.0.0.9:4000/7", 256), b"t")
            .expect("put");
        assert_eq!(book.len(), 3);
        assert_eq!(book.counters.refused.load(Ordering::Relaxed), 2);
        // A refresh of a kept one is no refusal.
        book.put(&key("ipfix:10.0.0.1:4001/7", 256), b"t2")
            .expect("put");
        assert_eq!(book.counters.refused.load(Ordering::Relaxed), 2);
        assert!(exporter_of_key("garbage").is_none());
        assert!(decode_value(b"short").is_none());
    }
}
