//! `netwarden`: the gateway daemon (`run`) and its offline commands. This file parses the
//! arguments and dispatches; each command's flags, body and output live in `cli/<command>.rs`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use netwarden::cli::logging::{self, LogFormat};
use netwarden::cli::{
    alerts, calibrate, demo, features, history, learn, model, run, samples, validate,
};
#[cfg(feature = "central")]
use netwarden::cli::{eval, fleet, plot};

#[derive(Debug, Parser)]
#[command(
    name = "netwarden",
    version,
    about = "Network anomaly detection for branch routers: NetFlow/IPFIX in, scored on the box, alerts over MQTT"
)]
struct Cli {
    /// Log format on stderr [default: NETWARDEN_LOG_FORMAT, else text]. Text is coloured only
    /// on a terminal; json is one object per line.
    #[arg(long, value_enum, global = true, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway daemon (no config file needed: NetFlow on 0.0.0.0:2055, built-in model).
    Run(run::RunArgs),
    /// Write feature vectors as CSV (training data): flow-v1 from NetFlow export captures or
    /// from raw-packet captures (metered into flows), or series-v1 rows from a CSV of
    /// interface rate samples.
    Features(features::FeaturesArgs),
    /// Recompute a series bundle's threshold from this device's own normal traffic and write
    /// the result as a new bundle directory.
    Calibrate(calibrate::CalibrateArgs),
    /// Show the learning period's progress and fitted thresholds; `--restart` learns afresh.
    Learn(learn::LearnArgs),
    /// Export the feature rows kept for central training (`samples export --out FILE`).
    Samples(samples::SamplesArgs),
    /// List stored alerts (the daemon must not be running on the same data directory).
    Alerts(alerts::AlertsArgs),
    /// Query the stored history: flow summaries, scores, interface series, bucket sizes (the
    /// daemon must not be running on the same data directory).
    History(history::HistoryArgs),
    #[cfg(feature = "central")]
    /// Draw the dashboard's three plots (interface traffic with anomalous spans, error against
    /// the threshold, error distribution) from stored history into a PNG (stop the daemon
    /// first; sled locks its database).
    Plot(plot::PlotArgs),
    /// Replay a shipped capture (benign traffic and a port scan) through the whole pipeline.
    Demo(demo::DemoArgs),
    #[cfg(feature = "central")]
    /// Replay a lab run directory (capture, NetFlow exports, labels) through every configured
    /// detector and report detection, false alerts per hour and flow-level metrics
    /// (docs/evaluation.md). Exit 0: targets met, 1: not met, 2: error.
    Eval(eval::EvalArgs),
    /// Check a configuration file and print every problem in it.
    Validate(validate::ValidateArgs),
    /// Model bundle tools.
    Model(model::ModelArgs),
    #[cfg(feature = "central")]
    /// Fleet model delivery over MQTT (publish a signed bundle, read every appliance's state)
    /// and the central collector for fleet analytics (`fleet collect`).
    Fleet(fleet::FleetArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = logging::init(cli.log_format) {
        eprintln!("netwarden: {e}");
        return ExitCode::FAILURE;
    }
    if !matches!(cli.command, Command::Run(_)) {
        end_quietly_on_a_closed_stdout();
    }
    let result = match cli.command {
        Command::Run(a) => run::execute(a),
        Command::Features(a) => features::execute(a),
        Command::Calibrate(a) => calibrate::execute(a),
        Command::Learn(a) => learn::execute(a),
        Command::Samples(a) => samples::execute(a),
        Command::Alerts(a) => alerts::execute(a),
        Command::History(a) => history::execute(a),
        #[cfg(feature = "central")]
        Command::Plot(a) => plot::execute(a),
        Command::Demo(a) => demo::execute(a),
        #[cfg(feature = "central")]
        Command::Eval(a) => eval::execute(a),
        Command::Validate(a) => validate::execute(a),
        Command::Model(a) => model::execute(a),
        #[cfg(feature = "central")]
        Command::Fleet(a) => fleet::execute(a),
    };
    result.unwrap_or_else(|e| {
        let broken_pipe = e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        });
        if broken_pipe {
            // The reader went away (`| head`): not worth a message; the shell's status for it.
            return ExitCode::from(141);
        }
        eprintln!("netwarden: {e:#}");
        ExitCode::FAILURE
    })
}

/// Rust ignores SIGPIPE, so `println!` into a closed pipe (`netwarden model check DIR | head`)
/// panics. The offline commands end quietly instead, with the status a shell gives a command
/// killed by SIGPIPE (141), as other command-line tools do. The daemon keeps the default: its
/// stdout goes to a logger, and nothing it prints may end the monitoring silently.
fn end_quietly_on_a_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info.payload_as_str().unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info)
    }));
}
