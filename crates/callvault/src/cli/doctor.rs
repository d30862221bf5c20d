//! `callvault doctor`: the posture checks (`callvault_server::posture`) run from the command
//! line. Exits 2 on a critical finding, so it can gate a deployment.

use anyhow::Result;
use callvault_server::posture::{self, Severity};
use callvault_service::config::Config;
use std::process::ExitCode;

pub async fn run(cfg: &Config, json: bool) -> Result<ExitCode> {
    let mut f = posture::static_checks(cfg);
    // What is stored can be checked only once the deployment opens; a config that cannot even
    // open has its reason among the static findings already.
    if !f.iter().any(|x| x.severity == Severity::Critical)
        && let Ok(b) = callvault_server::open(cfg, false).await
    {
        f.extend(
            posture::live_checks(cfg, &b.state.meta, callvault_service::clock::unix_now()).await?,
        );
    }
    f.sort_by_key(|x| std::cmp::Reverse(x.severity));
    if json {
        println!("{}", serde_json::to_string_pretty(&f)?);
    } else if f.is_empty() {
        println!("no findings");
    } else {
        for x in &f {
            println!(
                "[{}] {}: {}\n    fix: {}",
                x.severity.as_str(),
                x.id,
                x.explanation,
                x.fix
            );
        }
    }
    let critical = f.iter().any(|x| x.severity == Severity::Critical);
    Ok(if critical {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
