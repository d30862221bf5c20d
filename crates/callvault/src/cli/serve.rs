//! `callvault init` and `callvault serve`: first start (data dir, master key, certificate, first
//! admin) and the server itself. The first admin's one-time password is printed here, once.

use anyhow::Result;
use callvault_crypto::ExposeSecret;
use callvault_server::Bootstrapped;
use callvault_service::config::Config;
use std::io::Write;
use std::process::ExitCode;

pub async fn init(cfg: &Config) -> Result<ExitCode> {
    let b = callvault_server::init(cfg).await?;
    print_first_admin(&b);
    println!("initialised {}", cfg.data_dir.display());
    Ok(ExitCode::SUCCESS)
}

pub async fn serve(cfg: &Config) -> Result<ExitCode> {
    let b = callvault_server::init(cfg).await?;
    print_first_admin(&b);
    callvault_server::serve(b, |addr, tls, sip| {
        for (scheme, bound) in [("udp", sip.udp), ("tcp", sip.tcp), ("tls", sip.tls)] {
            if let Some(bound) = bound {
                println!("callvault sip listening on {scheme}://{bound}");
            }
        }
        println!(
            "callvault listening on {}://{addr}",
            if tls { "https" } else { "http" }
        );
        let _ = std::io::stdout().flush();
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

fn print_first_admin(b: &Bootstrapped) {
    if let Some((name, secret)) = &b.first_admin {
        // Printed once to the terminal, never through the logger.
        println!(
            "first admin created: username `{name}`, one-time password `{}`",
            secret.expose_secret()
        );
        println!("sign in and change it now; it is not shown again");
    }
}
