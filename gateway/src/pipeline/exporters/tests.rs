//! Tests of the exporter watch (`pipeline/exporters.rs`).

use super::*;

fn v9(datagrams: u64, missing: u64) -> ExporterStats {
    ExporterStats {
        datagrams,
        v9_datagrams: datagrams,
        records: datagrams * 30,
        sequence_missing: missing,
        ..ExporterStats::default()
    }
}

struct Run {
    watch: ExporterWatch,
    n: u32,
    out: Vec<Alert>,
}

impl Run {
    fn new(cfg: WatchConfig) -> Run {
        Run {
            watch: ExporterWatch::new(cfg, "s", "d"),
            n: 0,
            out: Vec::new(),
        }
    }

    fn tick(&mut self, now_ms: u64, stats: &[(&str, ExporterStats)]) -> Vec<Alert> {
        let n = &mut self.n;
        let mut id = || {
            *n += 1;
            format!("a{n}")
        };
        let mut got = Vec::new();
        self.watch.tick(
            now_ms,
            stats.iter().map(|(k, v)| (*k, v)),
            &mut id,
            &mut |a| got.push(a),
        );
        self.out.extend(got.iter().cloned());
        got
    }
}

fn subject(a: &Alert) -> &ExporterSubject {
    match &a.subject {
        Subject::Exporter(e) => e,
        other => panic!("not an exporter alert: {other:?}"),
    }
}

#[test]
fn silence_opens_one_incident_and_the_next_datagram_closes_it() {
    let mut r = Run::new(WatchConfig {
        silence: Some(Duration::from_secs(10)),
        loss_ratio: None,
        loss_window: Duration::from_secs(60),
    });
    let a = "127.0.0.1:9000";
    let b = "127.0.0.1:9001";
    for t in 0..=5u64 {
        assert!(r
            .tick(t * 1000, &[(a, v9(t + 1, 0)), (b, v9(t + 1, 0))])
            .is_empty());
    }
    // `a` stops at 6 datagrams (last moved at 5 s); `b` keeps sending.
    for t in 6..=14u64 {
        assert!(r
            .tick(t * 1000, &[(a, v9(6, 0)), (b, v9(t + 1, 0))])
            .is_empty());
    }
    let got = r.tick(15_000, &[(a, v9(6, 0)), (b, v9(16, 0))]);
    assert_eq!(got.len(), 1, "{got:?}");
    let open = &got[0];
    let inc = open.incident.as_ref().expect("incident");
    assert_eq!(
        (open.id.as_str(), inc.id.as_str(), inc.update),
        ("a1", "a1", 0)
    );
    assert_eq!(inc.pattern, "exporter_silent");
    assert_eq!(inc.initiator, a);
    assert_eq!(open.severity, "high");
    assert_eq!(open.detector, EXPORTER_DETECTOR);
    let s = subject(open);
    assert_eq!(
        (s.condition.as_str(), s.state.as_str(), s.silent_ms),
        ("silent", "open", 10_000)
    );
    // Still silent: no repeat.
    for t in 16..40u64 {
        assert!(r
            .tick(t * 1000, &[(a, v9(6, 0)), (b, v9(t + 1, 0))])
            .is_empty());
    }
    assert_eq!(r.watch.open_count(), 1);
    let got = r.tick(40_000, &[(a, v9(7, 0)), (b, v9(41, 0))]);
    assert_eq!(got.len(), 1);
    let rec = &got[0];
    let inc = rec.incident.as_ref().expect("incident");
    assert_eq!(
        (rec.id.as_str(), inc.id.as_str(), inc.update),
        ("a2", "a1", 1)
    );
    assert_eq!(subject(rec).state, "recovered");
    assert_eq!(subject(rec).silent_ms, 35_000);
    assert_eq!(r.watch.open_count(), 0);
    // The JSON names the kind, as docs/mqtt.md says.
    let json = serde_json::to_value(rec).expect("json");
    assert_eq!(json["subject"]["kind"], "exporter");
    assert_eq!(json["subject"]["state"], "recovered");
}

#[test]
fn loss_over_the_ratio_opens_and_a_clean_window_closes() {
    let mut r = Run::new(WatchConfig {
        silence: None,
        loss_ratio: Some(0.05),
        loss_window: Duration::from_secs(10),
    });
    let a = "10.0.0.1:2055";
    // 100 datagrams/s; from 20 s on every 10th is lost (10 %).
    let (mut got, mut missing, mut dgrams) = (Vec::new(), 0u64, 0u64);
    for t in 0..60u64 {
        if t >= 20 {
            missing += 10;
            dgrams += 90;
        } else {
            dgrams += 100;
        }
        got.extend(r.tick(t * 1000, &[(a, v9(dgrams, missing))]));
    }
    assert_eq!(got.len(), 1, "{got:?}");
    let s = subject(&got[0]);
    assert_eq!(
        (s.condition.as_str(), s.state.as_str()),
        ("sequence_loss", "open")
    );
    assert!(
        s.loss_ratio > 0.05 && s.loss_ratio <= 0.1,
        "{}",
        s.loss_ratio
    );
    assert_eq!(got[0].severity, "medium");
    // 3 % for a while: under the ratio but over half of it, still open.
    for t in 60..80u64 {
        missing += 3;
        dgrams += 97;
        assert!(r.tick(t * 1000, &[(a, v9(dgrams, missing))]).is_empty());
    }
    // Clean again: closed once a whole window is under 2.5 %.
    let mut closed = Vec::new();
    for t in 80..100u64 {
        dgrams += 100;
        closed.extend(r.tick(t * 1000, &[(a, v9(dgrams, missing))]));
    }
    assert_eq!(closed.len(), 1, "{closed:?}");
    let inc = closed[0].incident.as_ref().expect("incident");
    assert_eq!((inc.id.as_str(), inc.update), (got[0].id.as_str(), 1));
    assert_eq!(subject(&closed[0]).state, "recovered");
    assert!(inc.max_score >= 0.09, "{}", inc.max_score);
}

#[test]
fn thin_traffic_mixed_units_and_the_other_label_are_not_judged() {
    let mut r = Run::new(WatchConfig {
        silence: Some(Duration::from_secs(5)),
        loss_ratio: Some(0.05),
        loss_window: Duration::from_secs(10),
    });
    let mixed = ExporterStats {
        datagrams: 10,
        v9_datagrams: 5,
        v5_datagrams: 5,
        sequence_missing: 50,
        ..ExporterStats::default()
    };
    for t in 0..30u64 {
        // Half lost, but one datagram a second stays under MIN_EXPECTED per 10 s window...
        let thin = v9(t / 2 + 1, t / 2);
        let other = v9(1, 0);
        r.tick(
            t * 1000,
            &[("thin:1", thin), ("mixed:1", mixed.clone()), (OTHER, other)],
        );
    }
    // ...so `thin` (10 of 20 a window) never raised loss; `mixed` went silent (its counter never moved),
    // `other` is never watched.
    let kinds: Vec<(String, String)> = r
        .out
        .iter()
        .map(|a| (subject(a).exporter.clone(), subject(a).condition.clone()))
        .collect();
    assert_eq!(kinds, [("mixed:1".to_string(), "silent".to_string())]);
}
