//! One module per scenario; each exposes `Args` (its flags) and `run` (returns the report).

pub mod connections;
pub mod dm;
pub mod fanout;
pub mod floor;
pub mod history;
pub mod login;
pub mod redis_fanout;

use crate::procfs;
use crate::stats::{Report, round3};
use anyhow::Result;
use std::time::Duration;
use tokio::time::Instant;

/// Server CPU seconds at the start of a measured window, so a scenario can report what the
/// server spent on exactly that window.
pub struct CpuWindow {
    pids: Vec<u32>,
    server_start: Option<f64>,
    /// User and system seconds at the start, reported apart in the result.
    server_split: (f64, f64),
    client_start: f64,
}

impl CpuWindow {
    pub fn start(pids: &[u32]) -> Result<Self> {
        Ok(CpuWindow {
            pids: pids.to_vec(),
            server_start: procfs::cpu_seconds(pids)?,
            server_split: procfs::user_system_seconds(pids)?,
            client_start: procfs::own_cpu_seconds()?,
        })
    }

    /// Adds `server_cpu_s`, `client_cpu_s`, `server_cores` (CPU seconds per wall second) and,
    /// when `units` is non-zero, `server_cpu_us_per_<unit_name>`; returns the server seconds.
    pub fn finish(
        &self,
        report: &mut Report,
        wall_secs: f64,
        units: u64,
        unit_name: &str,
    ) -> Result<Option<f64>> {
        let client = procfs::own_cpu_seconds()? - self.client_start;
        report.result("client_cpu_s", round3(client));
        let Some(start) = self.server_start else {
            return Ok(None);
        };
        let Some(end) = procfs::cpu_seconds(&self.pids)? else {
            return Ok(None);
        };
        let server = end - start;
        let (user, system) = procfs::user_system_seconds(&self.pids)?;
        report
            .result("server_cpu_s", round3(server))
            .result("server_user_s", round3(user - self.server_split.0))
            .result("server_sys_s", round3(system - self.server_split.1));
        if wall_secs > 0.0 {
            report.result("server_cores", round3(server / wall_secs));
        }
        if units > 0 {
            report.result(
                &format!("server_cpu_us_per_{unit_name}"),
                round3(server * 1e6 / units as f64),
            );
        }
        Ok(Some(server))
    }
}

/// `count / secs`, rounded; 0 for an empty window.
pub fn per_second(count: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        round3(count as f64 / secs)
    } else {
        0.0
    }
}

/// Waits until `pids` use less than 5 % of a core over a second (at most five minutes);
/// returns how long that took.
pub async fn settle(pids: &[u32]) -> Result<f64> {
    let started = Instant::now();
    let Some(mut before) = crate::procfs::cpu_seconds(pids)? else {
        return Ok(0.0);
    };
    eprintln!("waiting for the server to go quiet");
    while started.elapsed() < Duration::from_secs(300) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = crate::procfs::cpu_seconds(pids)?.unwrap_or(before);
        if now - before < 0.05 {
            break;
        }
        before = now;
    }
    Ok(started.elapsed().as_secs_f64())
}
