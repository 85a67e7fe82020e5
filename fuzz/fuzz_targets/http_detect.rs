//! HTTP request bodies and query values from outside: the `POST /detect` body parser
//! (`sinks/http/detect.rs`, `parse_detect`: JSON, detector name, shapes, finiteness, limits) and
//! the time parser behind `?since=`/`?until=` and the CLI's `--since`/`--until`
//! (`records/time.rs`, `parse_time`), and `GET /samples?schema=` (`records/samples.rs`,
//! `SchemaPick::parse`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use netwarden::records::samples::SchemaPick;
use netwarden::records::time::parse_time;
use netwarden::sinks::http::detect::parse_detect;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = parse_detect(data) {
        let _ = req.kind();
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if text.len() <= 256 {
            let _ = parse_time(text, 1_800_000_000_000);
            let _ = SchemaPick::parse(text);
        }
    }
});
