//! `login`: sign-ups, then logins, per second, with the server's real password hashing.
//!
//! Both cost one argon2id hash each, which the server runs at most one per core at a time, so
//! this measures the hashing budget of the machine: more client concurrency than cores only
//! adds queueing latency.

use super::{CpuWindow, per_second};
use crate::Common;
use crate::client::{self, Http};
use crate::stats::{Histogram, Report, round3};
use anyhow::{Result, bail};
use futures_util::StreamExt;
use tokio::time::Instant;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Accounts to create.
    #[arg(long, default_value_t = 50)]
    signups: usize,
    /// Logins to perform (round-robin over the new accounts).
    #[arg(long, default_value_t = 100)]
    logins: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
}

/// Latency and failures of one phase.
struct Phase {
    latency: Histogram,
    failures: u64,
    secs: f64,
    first_error: Option<String>,
}

/// Runs `jobs` with `concurrency` in flight, timing each.
async fn timed<F, Fut>(count: usize, concurrency: usize, job: F) -> Phase
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let started = Instant::now();
    let outcomes: Vec<(u64, Result<()>)> = futures_util::stream::iter(0..count)
        .map(|i| {
            let fut = job(i);
            async move {
                let begun = client::now_ns();
                let outcome = fut.await;
                (client::now_ns() - begun, outcome)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut phase = Phase {
        latency: Histogram::default(),
        failures: 0,
        secs: started.elapsed().as_secs_f64(),
        first_error: None,
    };
    for (ns, outcome) in outcomes {
        match outcome {
            Ok(()) => phase.latency.record(ns),
            Err(error) => {
                phase.failures += 1;
                phase
                    .first_error
                    .get_or_insert_with(|| format!("{error:#}"));
            }
        }
    }
    phase
}

pub async fn run(args: &Args) -> Result<Report> {
    if args.signups == 0 {
        bail!("--signups must be at least 1");
    }
    let tag = client::run_tag();
    let clients: Vec<Http> = args
        .common
        .urls
        .iter()
        .map(|u| Http::new(u))
        .collect::<Result<_>>()?;
    let email = |i: usize| format!("hb{tag}-l{i}@bench.test");

    eprintln!("login: {} sign-ups", args.signups);
    let cpu = CpuWindow::start(&args.common.server_pids)?;
    let signups = timed(args.signups, args.concurrency, |i| {
        let http = clients[i % clients.len()].clone();
        let email = email(i);
        let username = format!("hb{tag}-l{i}");
        async move { http.create_account(&username, &email).await.map(drop) }
    })
    .await;
    let created = signups.latency.count();

    eprintln!("login: {} logins", args.logins);
    let logins = timed(args.logins, args.concurrency, |i| {
        let http = clients[i % clients.len()].clone();
        let email = email(i % args.signups);
        async move { http.login(&email).await.map(drop) }
    })
    .await;

    let mut report = Report::new("login", args.common.label.clone());
    report
        .param("signups", args.signups)
        .param("logins", args.logins)
        .param("concurrency", args.concurrency)
        .result("signups_ok", created)
        .result("signup_failures", signups.failures)
        .result("signups_per_s", per_second(created, signups.secs))
        .result("signup_latency_ms", signups.latency.summary_ms())
        .result("logins_ok", logins.latency.count())
        .result("login_failures", logins.failures)
        .result(
            "logins_per_s",
            per_second(logins.latency.count(), logins.secs),
        )
        .result("login_latency_ms", logins.latency.summary_ms());
    if let Some(error) = signups.first_error.or(logins.first_error) {
        report.result("problems", vec![error]);
    }
    let total = created + logins.latency.count();
    cpu.finish(
        &mut report,
        round3(signups.secs + logins.secs),
        total,
        "request",
    )?;
    Ok(report)
}
