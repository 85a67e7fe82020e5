//! `netwarden model list|activate|rollback --http URL`: the same commands against a running
//! gateway's HTTP API (`/models/fleet`, docs/fleet.md), with the API token from `--token-file`
//! or `NETWARDEN_HTTP_TOKEN`. Plain HTTP/1.1 over a TCP stream: the API is meant for the
//! management network (put TLS in front of it otherwise), and one request needs no client crate.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::sinks::http::config::TOKEN_ENV;

/// Where the running gateway's API is.
#[derive(Debug, Clone, clap::Args)]
pub struct HttpArgs {
    /// The gateway's HTTP API, e.g. http://127.0.0.1:8080 (instead of --data-dir).
    #[arg(long, value_name = "URL")]
    pub http: Option<String>,
    /// File holding the API token (or NETWARDEN_HTTP_TOKEN).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

impl HttpArgs {
    fn token(&self) -> anyhow::Result<Option<String>> {
        if let Some(f) = &self.token_file {
            let t = std::fs::read_to_string(f)
                .with_context(|| format!("--token-file {}", f.display()))?;
            return Ok(Some(t.trim().to_string()));
        }
        Ok(std::env::var(TOKEN_ENV).ok().map(|t| t.trim().to_string()))
    }
}

/// One request; the JSON body of a 2xx answer, else an error with the API's message.
pub fn request(
    args: &HttpArgs,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> anyhow::Result<serde_json::Value> {
    let Some(url) = &args.http else {
        bail!("--http URL is needed");
    };
    let u = url::Url::parse(url).with_context(|| format!("--http {url:?}"))?;
    if u.scheme() != "http" {
        bail!("--http takes an http:// URL");
    }
    let host = u.host_str().context("--http has no host")?;
    let port = u.port().unwrap_or(80);
    let mut s =
        TcpStream::connect((host, port)).with_context(|| format!("cannot connect to {url}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.unwrap_or("");
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n");
    if let Some(t) = args.token()? {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes())?;
    let mut answer = Vec::new();
    s.take(16 << 20).read_to_end(&mut answer)?;
    let text = String::from_utf8_lossy(&answer);
    let (head, rest) = text.split_once("\r\n\r\n").context("no HTTP answer")?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no HTTP status")?;
    let json: serde_json::Value =
        serde_json::from_str(rest.trim()).unwrap_or(serde_json::Value::Null);
    if !(200..300).contains(&status) {
        bail!(
            "{status}: {}",
            json["error"]["message"].as_str().unwrap_or(rest.trim())
        );
    }
    Ok(json)
}

pub fn list(args: &HttpArgs) -> anyhow::Result<ExitCode> {
    let v = request(args, "GET", "/models/fleet", None)?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(ExitCode::SUCCESS)
}

pub fn activate(args: &HttpArgs, version: &str) -> anyhow::Result<ExitCode> {
    let body = serde_json::json!({ "version": version }).to_string();
    let v = request(args, "POST", "/models/fleet/activate", Some(&body))?;
    println!(
        "flow: activating {}",
        v["activating"].as_str().unwrap_or(version)
    );
    Ok(ExitCode::SUCCESS)
}

pub fn rollback(args: &HttpArgs) -> anyhow::Result<ExitCode> {
    let v = request(args, "POST", "/models/fleet/rollback", None)?;
    println!(
        "flow: rolling back to {}",
        v["activating"].as_str().unwrap_or("?")
    );
    Ok(ExitCode::SUCCESS)
}
