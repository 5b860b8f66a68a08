//! `simguard`: one binary, one subcommand per job.

mod cells;
mod client;
mod cmd;
mod iot23;
mod score;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "simguard",
    version,
    about = "Real-time IoT connectivity security beside a mobile packet core"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the platform: RADIUS accounting in, live fleet state and API out.
    Serve {
        /// TOML configuration (default: the built-in one, see `simguard configfile`).
        #[arg(long, short, env = "SIMGUARD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Run the platform with a simulated fleet on embedded defaults and print the API URL and token.
    Demo(cmd::demo::DemoArgs),
    /// Drive a running server with a simulated fleet over RADIUS (load generator).
    Sim(Box<cmd::sim::SimArgs>),
    /// Run an attack-lab scenario through a real server and score detection against its ground truth.
    Eval(cmd::eval::EvalArgs),
    /// Print the commented default configuration.
    Configfile,
    /// Import devices (into a running server) or cell positions (into the store) from CSV.
    Import {
        #[command(subcommand)]
        what: cmd::import::ImportWhat,
    },
    /// Response rules: backtest a rule over the server's recorded history.
    Rules {
        #[command(subcommand)]
        cmd: cmd::rules::RulesCmd,
    },
    /// Console users (password from SIMGUARD_PASSWORD or stdin).
    Users {
        #[command(subcommand)]
        cmd: cmd::access::UsersCmd,
    },
    /// API keys (bearer tokens) for scripts and integrations.
    Apikeys {
        #[command(subcommand)]
        cmd: cmd::access::ApiKeysCmd,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Serve { config } => cmd::serve::run(config).await,
            Command::Demo(a) => cmd::demo::run(a).await,
            Command::Sim(a) => cmd::sim::run(*a).await,
            Command::Eval(a) => cmd::eval::run(a).await,
            Command::Configfile => {
                print!("{}", simguard_server::config::TEMPLATE);
                Ok(())
            }
            Command::Import { what } => cmd::import::run(what).await,
            Command::Rules { cmd } => cmd::rules::run(cmd).await,
            Command::Users { cmd } => cmd::access::users(cmd),
            Command::Apikeys { cmd } => cmd::access::apikeys(cmd),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
