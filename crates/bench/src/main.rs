//! `callvault-bench`: measures the figures of the product brief ("Figures to reach") on the
//! machine it runs on and prints them. One subcommand per figure, each with its own `--help`;
//! the flags are declared next to the benchmark that reads them.
//!
//! Results go to stdout; `BENCHMARKS.md` at the repository root records a run.
#![forbid(unsafe_code)]

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

use anyhow::{Context, Result};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// Measures the figures of the product brief on this machine and prints them.
///
/// Data goes to --dir or a fresh temporary directory under /var/tmp, and is removed at the end
/// (search --keep true keeps its SQLite file).
#[derive(Parser)]
#[command(name = "callvault-bench", arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    figure: Figure,
}

#[derive(Subcommand)]
enum Figure {
    /// Bulk encrypt-and-store throughput against a raw sequential write to the same disk.
    StoreThroughput(store_throughput::Opts),
    /// Encrypt-and-store into a 3-node Garage cluster it starts, against the local directory.
    S3Throughput(store_throughput::S3Opts),
    /// Playback time to first byte at any seek offset of a long call.
    PlaybackTtfb(playback::Opts),
    /// Durable audit append with group commit, and verification of the whole chain.
    AuditAppend(audit_append::Opts),
    /// Concurrent live calls over HTTPS: chunk ack latency, server CPU and RSS.
    ///
    /// Runs target/…/callvault serve as a child process: build it first.
    LiveIngest(live_ingest::Opts),
    /// Every stored recording holds A left and B right (scripts/siprec-bench).
    SiprecVerify(stored::VerifyOpts),
    /// Plays the two streams of every call SIPp announces (scripts/siprec-bench with
    /// RTP=sender).
    RtpSend(rtp_send::Opts),
    /// Metadata search over millions of calls: p50/p99 per search shape.
    Search(search::Opts),
    /// Erasing expired recordings, metadata and blobs, in one retention run.
    Erase(erase::Opts),
}

fn main() -> Result<()> {
    let matches = Cli::command().get_matches();
    let name = matches
        .subcommand_name()
        .context("no subcommand")?
        .to_owned();
    let cli = Cli::from_arg_matches(&matches)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!("# callvault-bench {name}");
    println!("# {}", setup::machine_summary());
    println!("# {} at start", setup::loadavg());
    match &cli.figure {
        Figure::StoreThroughput(o) => rt.block_on(store_throughput::run(o)),
        Figure::S3Throughput(o) => rt.block_on(store_throughput::run_s3(o)),
        Figure::PlaybackTtfb(o) => rt.block_on(playback::run(o)),
        Figure::AuditAppend(o) => rt.block_on(audit_append::run(o)),
        Figure::Search(o) => rt.block_on(search::run(o)),
        Figure::Erase(o) => rt.block_on(erase::run(o)),
        Figure::LiveIngest(o) => rt.block_on(live_ingest::run(o)),
        Figure::SiprecVerify(o) => rt.block_on(stored::siprec_verify(o)),
        Figure::RtpSend(o) => rtp_send::run(o),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_command_lines_still_parse() {
        Cli::command().debug_assert();
        // From BENCHMARKS.md and scripts/siprec-bench.
        for line in [
            "store-throughput --mb 1024 --rounds 5 --dir /var/tmp/cvbench",
            "store-throughput --mb 1024 --rounds 3 --jobs 3 --dir /var/tmp/cvbench",
            "playback-ttfb --minutes 60 --iterations 200 --dir /var/tmp/cvbench",
            "audit-append --entries 1000000 --writers 64 --dir /var/tmp/cvbench",
            "search --rows 2700000 --backend sqlite --queries 300 --dir /var/tmp/cvsearch",
            "search --rows 2700000 --backend postgres --queries 300",
            "search --backend postgres --pg-url postgres://h/db --batch 10000 --keep true",
            "s3-throughput --mb 256 --jobs 2",
            "live-ingest --calls 2000 --secs 30 --ramp-secs 10 --frame-ms 200 --bin /x/callvault",
            "erase --rows 1000000 --backend postgres",
            "rtp-send --fifo f --left a.ul --right b.ul --ptime-ms 20",
            "siprec-verify --data-dir d --master-key k --tenant bench --left a.ul --right b.ul",
        ] {
            let argv = std::iter::once("callvault-bench").chain(line.split(' '));
            assert!(Cli::try_parse_from(argv).is_ok(), "{line}");
        }
    }
}
