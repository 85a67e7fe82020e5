//! Where the daemon's and the commands' `tracing` events go: stderr, filtered by
//! `NETWARDEN_LOG` (level directives, default `info`), in one of two formats:
//!
//! - `text` (default): human lines; ANSI colour only when stderr is a terminal and `NO_COLOR`
//!   is unset, so journald, pipes and log files get plain text;
//! - `json`: one JSON object per line (timestamp, level, target, fields), for log shippers.
//!
//! The format comes from `--log-format`, else `NETWARDEN_LOG_FORMAT`, else `text`.

use std::io::IsTerminal;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Environment variable naming the log format when `--log-format` is not given.
pub const FORMAT_ENV: &str = "NETWARDEN_LOG_FORMAT";
/// Environment variable holding the level directives.
pub const FILTER_ENV: &str = "NETWARDEN_LOG";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{FORMAT_ENV}={0:?} is not a log format: use text or json")]
pub struct BadFormat(String);

impl LogFormat {
    /// The flag's value, else the environment's (`text`/`json`, any case), else `text`.
    pub fn resolve(flag: Option<LogFormat>, env: Option<&str>) -> Result<LogFormat, BadFormat> {
        if let Some(f) = flag {
            return Ok(f);
        }
        match env.map(str::trim) {
            None | Some("") => Ok(LogFormat::Text),
            Some(v) if v.eq_ignore_ascii_case("text") => Ok(LogFormat::Text),
            Some(v) if v.eq_ignore_ascii_case("json") => Ok(LogFormat::Json),
            Some(v) => Err(BadFormat(v.to_string())),
        }
    }
}

/// Whether text logs get colour: a person is watching and did not ask for none
/// (<https://no-color.org>: any non-empty `NO_COLOR`).
fn colour(stderr_is_terminal: bool, no_color: Option<&str>) -> bool {
    stderr_is_terminal && no_color.is_none_or(str::is_empty)
}

/// The level filter from `NETWARDEN_LOG`: comma-separated `LEVEL` or `target=LEVEL` directives
/// (`info`, `debug,sled=warn`, `info,netwarden::sinks::mqtt=trace`); unset or unparsable: `info`.
/// (tracing-subscriber's `Targets`: the `EnvFilter` syntax without span and field filters,
/// which would pull a regex engine into the router binary.)
fn filter(directives: Option<&str>) -> Targets {
    directives
        .and_then(|d| d.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO))
}

/// Installs the global subscriber. Call once, before anything logs.
pub fn init(flag: Option<LogFormat>) -> Result<(), BadFormat> {
    let format = LogFormat::resolve(flag, std::env::var(FORMAT_ENV).ok().as_deref())?;
    let filter = filter(std::env::var(FILTER_ENV).ok().as_deref());
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match format {
        LogFormat::Json => tracing_subscriber::registry()
            .with(layer.json().with_ansi(false).with_filter(filter))
            .init(),
        LogFormat::Text => tracing_subscriber::registry()
            .with(
                layer
                    .with_ansi(colour(
                        std::io::stderr().is_terminal(),
                        std::env::var("NO_COLOR").ok().as_deref(),
                    ))
                    .with_filter(filter),
            )
            .init(),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_directives_parse_and_bad_ones_fall_back_to_info() {
        use tracing::Level;
        let f = filter(Some("debug,sled=warn"));
        assert!(f.would_enable("netwarden::runtime", &Level::DEBUG));
        assert!(!f.would_enable("sled::tree", &Level::INFO));
        let f = filter(Some("info,netwarden::sinks::mqtt=trace"));
        assert!(f.would_enable("netwarden::sinks::mqtt::session", &Level::TRACE));
        assert!(!f.would_enable("netwarden::runtime", &Level::DEBUG));
        for bad in [None, Some("not a level=x=y")] {
            let f = filter(bad);
            assert!(f.would_enable("netwarden", &Level::INFO), "{bad:?}");
            assert!(!f.would_enable("netwarden", &Level::DEBUG), "{bad:?}");
        }
    }
    use rstest::rstest;

    #[rstest]
    #[case::default(None, None, Ok(LogFormat::Text))]
    #[case::env_json(None, Some("json"), Ok(LogFormat::Json))]
    #[case::env_any_case(None, Some(" JSON "), Ok(LogFormat::Json))]
    #[case::env_text(None, Some("text"), Ok(LogFormat::Text))]
    #[case::env_empty(None, Some(""), Ok(LogFormat::Text))]
    #[case::flag_wins(Some(LogFormat::Text), Some("json"), Ok(LogFormat::Text))]
    #[case::flag_wins_over_junk(Some(LogFormat::Json), Some("xml"), Ok(LogFormat::Json))]
    #[case::env_junk(None, Some("xml"), Err(BadFormat("xml".into())))]
    fn formats(
        #[case] flag: Option<LogFormat>,
        #[case] env: Option<&str>,
        #[case] want: Result<LogFormat, BadFormat>,
    ) {
        assert_eq!(LogFormat::resolve(flag, env), want);
    }

    #[rstest]
    #[case::terminal(true, None, true)]
    #[case::pipe(false, None, false)]
    #[case::no_color(true, Some("1"), false)]
    #[case::no_color_empty_is_unset(true, Some(""), true)]
    #[case::pipe_and_no_color(false, Some("1"), false)]
    fn colour_only_on_a_terminal(
        #[case] terminal: bool,
        #[case] no_color: Option<&str>,
        #[case] want: bool,
    ) {
        assert_eq!(colour(terminal, no_color), want);
    }
}
