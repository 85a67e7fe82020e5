//! One panel of a chart on a [`Canvas`]: frame and title, time and value ticks (linear or log),
//! shaded spans, polylines with gaps, and the number and time formats of their labels. Used by
//! `netwarden plot`.

use super::raster::{Canvas, Rgb};

pub(super) const INK: Rgb = [29, 36, 48];
pub(super) const MUTE: Rgb = [107, 116, 131];
pub(super) const GRID: Rgb = [232, 235, 240];
pub(super) const ANOM: Rgb = [226, 70, 70];

pub(super) struct Panel {
    pub(super) x: f64,
    pub(super) y: f64,
    pub(super) w: f64,
    pub(super) h: f64,
}

impl Panel {
    pub(super) fn frame(&self, c: &mut Canvas, title: &str) {
        c.rect(
            self.x,
            self.y,
            self.x + self.w,
            self.y + self.h,
            [251, 251, 253],
            1.0,
        );
        c.text(self.x, self.y - 24.0, title, INK, 2, 0);
        for (xa, ya, xb, yb) in [
            (self.x, self.y, self.x + self.w, self.y),
            (self.x, self.y + self.h, self.x + self.w, self.y + self.h),
            (self.x, self.y, self.x, self.y + self.h),
            (self.x + self.w, self.y, self.x + self.w, self.y + self.h),
        ] {
            c.line(xa, ya, xb, yb, [210, 214, 221], 1.0);
        }
    }

    pub(super) fn px(&self, t: f64, x0: u64, x1: u64) -> f64 {
        self.x + (t - x0 as f64) / (x1 - x0) as f64 * self.w
    }

    pub(super) fn shade(&self, c: &mut Canvas, spans: &[(u64, u64)], x0: u64, x1: u64) {
        for (a, b) in spans {
            let xa = self.px(*a as f64, x0, x1).max(self.x);
            let xb = self.px(*b as f64, x0, x1).min(self.x + self.w);
            if xb > xa - 3.0 {
                c.rect(
                    xa,
                    self.y + 1.0,
                    xb.max(xa + 3.0),
                    self.y + self.h,
                    ANOM,
                    0.18,
                );
            }
        }
    }

    pub(super) fn grid(&self, c: &mut Canvas, f: f64, label: &str) {
        let y = self.y + self.h - f * self.h;
        c.line(self.x + 1.0, y, self.x + self.w - 1.0, y, GRID, 1.0);
        c.text(self.x - 10.0, y - 7.0, label, MUTE, 2, 2);
    }

    pub(super) fn y_ticks_linear(
        &self,
        c: &mut Canvas,
        lo: f64,
        hi: f64,
        fmt: impl Fn(f64) -> String,
    ) {
        let span = hi - lo;
        let raw = span / 5.0;
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|k| k * mag)
            .find(|s| span / s <= 5.0)
            .unwrap_or(10.0 * mag);
        let mut v = (lo / step).ceil() * step;
        while v <= hi {
            self.grid(c, (v - lo) / span, &fmt(v));
            v += step;
        }
    }

    pub(super) fn y_ticks_log(&self, c: &mut Canvas, lo: f64, hi: f64) {
        let mut e = lo.ceil();
        while e <= hi {
            self.grid(c, (e - lo) / (hi - lo), &sci(10f64.powf(e)));
            e += 1.0;
        }
    }

    pub(super) fn time_ticks(&self, c: &mut Canvas, x0: u64, x1: u64) {
        let span_s = (x1 - x0) / 1000;
        let step_s = [
            60u64, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400,
        ]
        .into_iter()
        .find(|s| span_s / s <= 8)
        .unwrap_or(86_400);
        let step = step_s * 1000;
        let mut t = x0.div_ceil(step) * step;
        while t <= x1 {
            let x = self.px(t as f64, x0, x1);
            c.line(x, self.y + self.h, x, self.y + self.h + 6.0, MUTE, 1.0);
            c.text(x, self.y + self.h + 12.0, &fmt_time(t, false), MUTE, 2, 1);
            t += step;
        }
    }

    pub(super) fn polyline(
        &self,
        c: &mut Canvas,
        pts: &[(f64, Option<f64>)],
        x0: u64,
        x1: u64,
        frac: impl Fn(f64) -> f64,
        col: Rgb,
    ) {
        let mut prev: Option<(f64, f64)> = None;
        for (t, v) in pts {
            let Some(v) = v.filter(|v| v.is_finite()) else {
                prev = None;
                continue;
            };
            let p = (
                self.px(*t, x0, x1),
                self.y + self.h - frac(v).clamp(0.0, 1.0) * self.h,
            );
            match prev {
                Some(q) => c.line(q.0, q.1, p.0, p.1, col, 2.0),
                None => c.rect(p.0 - 1.0, p.1 - 1.0, p.0 + 1.0, p.1 + 1.0, col, 1.0),
            }
            prev = Some(p);
        }
    }
}

pub(super) fn log_range(values: impl Iterator<Item = f32>, threshold: f32) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::from(threshold), f64::from(threshold));
    for v in values.filter(|v| *v > 0.0 && v.is_finite()) {
        lo = lo.min(f64::from(v));
        hi = hi.max(f64::from(v));
    }
    let lo = lo.max(1e-12).log10().floor();
    let hi = (hi * 1.5).log10().ceil().max(lo + 1.0);
    (lo, hi)
}

pub(super) fn si(v: f64) -> String {
    for (d, s) in [(1e9, "G"), (1e6, "M"), (1e3, "K")] {
        if v.abs() >= d {
            return format!("{}{s}", trim(v / d));
        }
    }
    trim(v)
}

pub(super) fn trim(v: f64) -> String {
    if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

pub(super) fn sci(v: f64) -> String {
    if (0.01..1000.0).contains(&v) {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.0e}")
    }
}

/// `HH:MM` (or `YYYY-MM-DD HH:MM` with `date`), UTC.
pub(super) fn fmt_time(ms: u64, date: bool) -> String {
    let t = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
    )
    .to_string();
    if date {
        format!("{} {}", &t[..10], &t[11..16])
    } else {
        t[11..16].to_string()
    }
}
