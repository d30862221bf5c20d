//! `callvault`: the server (`serve`) and the admin CLI. Errors here are `anyhow`; everything
//! below speaks typed errors.
#![forbid(unsafe_code)]

mod cli;

use clap::Parser;

/// The operator's `CALLVAULT_LOG` filter (default `info`), with database drivers held at `warn`
/// whatever it says: at debug they log statement parameters, which can be personal data.
fn log_filter() -> tracing_subscriber::EnvFilter {
    let wanted =
        std::env::var(callvault_service::config::ENV_LOG).unwrap_or_else(|_| "info".into());
    tracing_subscriber::EnvFilter::try_new(format!("{wanted},tokio_postgres=warn,rusqlite=warn"))
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new("info,tokio_postgres=warn,rusqlite=warn")
        })
}

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(log_filter())
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(cli::run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
