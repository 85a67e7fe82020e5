//! Where the daemon's and the commands' `tracing` events go: stderr, filtered by
//! `NETWARDEN_LOG` (an `EnvFilter`, default `info`), in one of two formats:
//!
//! - `text` (default): human lines; ANSI colour only when stderr is a terminal and `NO_COLOR`
//!   is unset, so journald, pipes and log files get plain text;
//! - `json`: one JSON object per line (timestamp, level, target, fields), for log shippers.
//!
//! The format comes from `--log-format`, else `NETWARDEN_LOG_FORMAT`, else `text`.

use std::io::IsTerminal;

/// Environment variable naming the log format when `--log-format` is not given.
pub const FORMAT_ENV: &str = "NETWARDEN_LOG_FORMAT";
/// Environment variable holding the `EnvFilter` directives.
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

/// Installs the global subscriber. Call once, before anything logs.
pub fn init(flag: Option<LogFormat>) -> Result<(), BadFormat> {
    let format = LogFormat::resolve(flag, std::env::var(FORMAT_ENV).ok().as_deref())?;
    let filter = tracing_subscriber::EnvFilter::try_from_env(FILTER_ENV)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().with_ansi(false).init(),
        LogFormat::Text => builder
            .with_ansi(colour(
                std::io::stderr().is_terminal(),
                std::env::var("NO_COLOR").ok().as_deref(),
            ))
            .init(),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
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
