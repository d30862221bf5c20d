//! `callvault-bench`: measures the figures of the product brief ("Figures to reach") on the
//! machine it runs on and prints them. One subcommand per figure:
//!
//! ```text
//! callvault-bench store-throughput [--mb 512] [--dir DIR] [--rounds 1] [--jobs 2]
//! callvault-bench playback-ttfb    [--minutes 60] [--iterations 200] [--dir DIR]
//! callvault-bench audit-append     [--entries 200000] [--writers 64] [--dir DIR]
//! callvault-bench live-ingest      [--calls 2000] [--secs 30] [--frame-ms 200] [--ramp-secs 10] [--bin PATH]
//! callvault-bench siprec-verify    --data-dir D --master-key K --left A.ul --right B.ul [--tenant bench]
//! callvault-bench rtp-send         --fifo F --left A.ul --right B.ul [--ptime-ms 20]
//! callvault-bench search           [--rows 2700000] [--backend sqlite|postgres] [--queries 300]
//!                                  [--dir DIR] [--pg-url URL] [--batch 10000] [--keep true]
//! callvault-bench erase            [--rows 1000000] [--batch 1000] [--backend sqlite|postgres] [--dir DIR]
//! ```
//!
//! Results go to stdout; `BENCHMARKS.md` at the repository root records a run.
#![forbid(unsafe_code)]

mod args;
mod audit_append;
mod erase;
mod live_ingest;
mod playback;
mod rtp_send;
mod search;
mod setup;
mod stats;
mod store_throughput;
mod stored;

use anyhow::{Result, bail};

const USAGE: &str = "usage:
  callvault-bench store-throughput [--mb N] [--dir DIR] [--rounds N] [--jobs N]
  callvault-bench s3-throughput    [--mb N] [--jobs N] [--dir DIR]   (starts a 3-node Garage cluster)
  callvault-bench playback-ttfb    [--minutes N] [--iterations N] [--dir DIR]
  callvault-bench audit-append     [--entries N] [--writers N] [--dir DIR]
  callvault-bench live-ingest      [--calls N] [--secs N] [--frame-ms N] [--ramp-secs N] [--bin PATH]
                                   (runs target/…/callvault serve as a child; build it first)
  callvault-bench siprec-verify    --data-dir D --master-key K --left A.ul --right B.ul [--tenant T]
                                   (every stored recording is A left, B right; scripts/siprec-bench)
  callvault-bench rtp-send         --fifo F --left A.ul --right B.ul [--ptime-ms N]
                                   (plays A to PORT, B to PORT+2 for each \"CALL PORT\" line read
                                   from F until its end; scripts/siprec-bench with RTP=sender)
  callvault-bench search           [--rows N] [--backend sqlite|postgres] [--queries N]
                                   [--dir DIR] [--pg-url URL] [--batch N] [--keep true]
  callvault-bench erase            [--rows N] [--batch N] [--backend sqlite|postgres] [--dir DIR]

DIR defaults to a fresh temporary directory under /var/tmp; data written there is removed
at the end (search --keep true keeps its SQLite file). search --backend postgres starts a
hermetic PostgreSQL cluster (callvault-testkit) unless --pg-url is given.";

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
        "s3-throughput" => rt.block_on(store_throughput::run_s3(&args)),
        "playback-ttfb" => rt.block_on(playback::run(&args)),
        "audit-append" => rt.block_on(audit_append::run(&args)),
        "search" => rt.block_on(search::run(&args)),
        "erase" => rt.block_on(erase::run(&args)),
        "live-ingest" => rt.block_on(live_ingest::run(&args)),
        "siprec-verify" => rt.block_on(stored::siprec_verify(&args)),
        "rtp-send" => rtp_send::run(&args),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown subcommand {other:?}\n{USAGE}"),
    }
}
