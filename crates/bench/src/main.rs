//! `callvault-bench`: measures the figures of the product brief ("Figures to reach") on the
//! machine it runs on and prints them. One subcommand per figure:
//!
//! ```text
//! callvault-bench store-throughput [--mb 512] [--dir DIR] [--rounds 1] [--jobs 2]
//! callvault-bench playback-ttfb    [--minutes 60] [--iterations 200] [--dir DIR]
//! callvault-bench audit-append     [--entries 200000] [--writers 64] [--dir DIR]
//! ```
//!
//! Results go to stdout; `BENCHMARKS.md` at the repository root records a run.
#![forbid(unsafe_code)]

mod args;
mod audit_append;
mod playback;
mod setup;
mod stats;
mod store_throughput;

use anyhow::{Result, bail};

const USAGE: &str = "usage:
  callvault-bench store-throughput [--mb N] [--dir DIR] [--rounds N] [--jobs N]
  callvault-bench playback-ttfb    [--minutes N] [--iterations N] [--dir DIR]
  callvault-bench audit-append     [--entries N] [--writers N] [--dir DIR]

DIR defaults to a fresh temporary directory under /var/tmp; data written there is removed
at the end.";

fn main() -> Result<()> {
    let mut argv = std::env::args().skip(1);
    let Some(cmd) = argv.next() else {
        bail!("{USAGE}");
    };
    let args = args::Args::parse(argv.collect())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!("# callvault-bench {cmd}");
    println!("# {}", setup::machine_summary());
    println!("# {} at start", setup::loadavg());
    match cmd.as_str() {
        "store-throughput" => rt.block_on(store_throughput::run(&args)),
        "playback-ttfb" => rt.block_on(playback::run(&args)),
        "audit-append" => rt.block_on(audit_append::run(&args)),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown subcommand {other:?}\n{USAGE}"),
    }
}
