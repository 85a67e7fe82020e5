//! `[netflow]`: where the collector listens and how much it buffers.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetflow {
    pub listen: Option<String>,
    pub recv_buffer_bytes: Option<usize>,
    pub queue_datagrams: Option<usize>,
    pub max_exporters: Option<usize>,
    pub exporter_silence_secs: Option<u64>,
    pub exporter_loss_ratio: Option<f64>,
    pub exporter_loss_window_secs: Option<u64>,
    pub shards: Option<usize>,
    pub template_ttl: Option<String>,
    pub max_templates_per_exporter: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct NetflowConfig {
    pub listen: SocketAddr,
    /// Requested `SO_RCVBUF`; the kernel may grant less (it is logged and exported).
    pub recv_buffer_bytes: usize,
    /// Datagrams queued between the socket and the decoder before new ones are dropped.
    pub queue_datagrams: usize,
    /// Exporters (address + domain) whose templates and sequence state are kept.
    pub max_exporters: usize,
    /// An exporter without a datagram for this long is an incident (`None`: not watched).
    pub exporter_silence: Option<Duration>,
    /// Sequence-gap loss over this ratio of what was expected is an incident (`None`: off).
    pub exporter_loss_ratio: Option<f64>,
    /// The span the loss ratio is measured over.
    pub exporter_loss_window: Duration,
    /// Receive-and-decode shards, each with its own socket (`SO_REUSEPORT`), thread and
    /// template caches; an exporter always lands on the same one. Default: the cores netwarden
    /// may run on.
    pub shards: usize,
    /// Templates not announced for this long are not restored after a restart, nor handed to
    /// a new source port (`sources/netflow/templates.rs`). Default 24 h.
    pub template_ttl: std::time::Duration,
    /// Templates kept (and saved) per exporter address at most; more are refused, counted.
    pub max_templates_per_exporter: usize,
}

impl RawNetflow {
    /// The checked section; every problem goes to `problem`.
    pub fn validate(&self, problem: &mut impl FnMut(&str, String)) -> NetflowConfig {
        let listen = self.listen.as_deref().unwrap_or("0.0.0.0:2055");
        let listen = listen.parse::<SocketAddr>().unwrap_or_else(|e| {
            problem(
                "netflow.listen",
                format!("{listen:?} is not an address:port ({e})"),
            );
            SocketAddr::from(([0, 0, 0, 0], 2055))
        });
        let mut at_least_one = |key: &str, v: Option<usize>, default: usize| match v {
            Some(0) => {
                problem(key, "must be at least 1".to_string());
                default
            }
            v => v.unwrap_or(default),
        };
        let queue_datagrams = at_least_one("netflow.queue_datagrams", self.queue_datagrams, 8192);
        let max_exporters = at_least_one("netflow.max_exporters", self.max_exporters, 1024);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let shards = at_least_one("netflow.shards", self.shards, cores);
        let max_templates_per_exporter = at_least_one(
            "netflow.max_templates_per_exporter",
            self.max_templates_per_exporter,
            256,
        );
        let default_ttl = std::time::Duration::from_secs(24 * 3600);
        let template_ttl = match self.template_ttl.as_deref() {
            None => default_ttl,
            Some(t) => match humantime::parse_duration(t) {
                Ok(d) if !d.is_zero() => d,
                Ok(_) => {
                    problem("netflow.template_ttl", "must be longer than 0".to_string());
                    default_ttl
                }
                Err(e) => {
                    problem(
                        "netflow.template_ttl",
                        format!("{t:?} is not a duration such as \"24h\" ({e})"),
                    );
                    default_ttl
                }
            },
        };
        let recv_buffer_bytes = self.recv_buffer_bytes.unwrap_or(8 << 20);
        if recv_buffer_bytes < 65_536 {
            problem(
                "netflow.recv_buffer_bytes",
                format!("{recv_buffer_bytes} is below one datagram (65536)"),
            );
        }
        let exporter_silence = match self.exporter_silence_secs.unwrap_or(300) {
            0 => None,
            s => Some(Duration::from_secs(s)),
        };
        let exporter_loss_ratio = match self.exporter_loss_ratio.unwrap_or(0.05) {
            0.0 => None,
            r if r.is_finite() && r > 0.0 && r < 1.0 => Some(r),
            r => {
                problem(
                    "netflow.exporter_loss_ratio",
                    format!("{r} is not within 0..1 (0 turns the check off)"),
                );
                Some(0.05)
            }
        };
        let window = self.exporter_loss_window_secs.unwrap_or(60);
        if window == 0 {
            problem(
                "netflow.exporter_loss_window_secs",
                "must be at least 1".to_string(),
            );
        }
        NetflowConfig {
            exporter_silence,
            exporter_loss_ratio,
            exporter_loss_window: Duration::from_secs(window.max(1)),
            listen,
            recv_buffer_bytes,
            queue_datagrams,
            max_exporters,
            shards,
            template_ttl,
            max_templates_per_exporter,
        }
    }
}
