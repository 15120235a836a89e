//! What the kernel knows about the server: CPU time and resident memory from `/proc`, and
//! this process's file-descriptor limit.
//!
//! CPU time is the fair cost measure here: the load generator and the server share two cores,
//! so wall-clock throughput says as much about the client as about the server, while the
//! server's own `utime + stime` per delivered message does not depend on who else ran.

use anyhow::{Context, Result, bail};

/// `utime + stime` in clock ticks from the text of `/proc/<pid>/stat`.
pub fn parse_stat_ticks(stat: &str) -> Result<u64> {
    let (user, system) = parse_stat_user_system(stat)?;
    Ok(user + system)
}

/// `(utime, stime)` in clock ticks from the text of `/proc/<pid>/stat`. The split matters on
/// loopback: the kernel runs the receiving side of a TCP write in the writer's context, so
/// the server's system time includes part of what the clients' reads cost.
///
/// The second field (the command name) is in parentheses and may itself hold spaces and
/// parentheses, so fields are counted from the *last* `)`.
pub fn parse_stat_user_system(stat: &str) -> Result<(u64, u64)> {
    let after = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .context("no ')' after the command name in /proc/<pid>/stat")?;
    // After the name: state (field 3), …, utime (field 14), stime (field 15).
    let fields: Vec<&str> = after.split_ascii_whitespace().collect();
    let field = |n: usize| -> Result<u64> {
        fields
            .get(n - 3)
            .with_context(|| format!("/proc/<pid>/stat has no field {n}"))?
            .parse::<u64>()
            .with_context(|| format!("field {n} of /proc/<pid>/stat is not a number"))
    };
    Ok((field(14)?, field(15)?))
}

/// `VmRSS` in bytes from the text of `/proc/<pid>/status` (the kernel reports kB = KiB).
pub fn parse_vm_rss_bytes(status: &str) -> Result<u64> {
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS line in /proc/<pid>/status (is it a kernel thread?)")?;
    let mut parts = line["VmRSS:".len()..].split_ascii_whitespace();
    let kib: u64 = parts
        .next()
        .context("empty VmRSS line")?
        .parse()
        .context("VmRSS is not a number")?;
    match parts.next() {
        Some("kB") | None => Ok(kib * 1024),
        Some(unit) => bail!("unexpected VmRSS unit {unit:?}"),
    }
}

fn clock_ticks_per_second() -> Result<f64> {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks <= 0 {
        bail!("sysconf(_SC_CLK_TCK) failed");
    }
    Ok(ticks as f64)
}

/// CPU seconds (user + system) used so far by all of `pids`, summed. `None` for no pids.
pub fn cpu_seconds(pids: &[u32]) -> Result<Option<f64>> {
    if pids.is_empty() {
        return Ok(None);
    }
    let per_second = clock_ticks_per_second()?;
    let mut ticks = 0;
    for pid in pids {
        let path = format!("/proc/{pid}/stat");
        let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        ticks += parse_stat_ticks(&stat).with_context(|| format!("parsing {path}"))?;
    }
    Ok(Some(ticks as f64 / per_second))
}

/// User and system CPU seconds of all of `pids`, summed.
pub fn user_system_seconds(pids: &[u32]) -> Result<(f64, f64)> {
    let per_second = clock_ticks_per_second()?;
    let (mut user, mut system) = (0, 0);
    for pid in pids {
        let path = format!("/proc/{pid}/stat");
        let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let (u, s) = parse_stat_user_system(&stat).with_context(|| format!("parsing {path}"))?;
        user += u;
        system += s;
    }
    Ok((user as f64 / per_second, system as f64 / per_second))
}

/// This process's CPU seconds, to show how much of the machine the load generator took.
pub fn own_cpu_seconds() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    Ok(parse_stat_ticks(&stat)? as f64 / clock_ticks_per_second()?)
}

/// The calling thread's own user and system CPU seconds (`floor` measures one thread, not the
/// process it shares with the readers).
pub fn own_thread_user_system_seconds() -> Result<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat")
        .context("reading /proc/thread-self/stat")?;
    let (user, system) = parse_stat_user_system(&stat)?;
    let per_second = clock_ticks_per_second()?;
    Ok((user as f64 / per_second, system as f64 / per_second))
}

/// Resident memory of all of `pids`, summed, in bytes. `None` for no pids.
pub fn rss_bytes(pids: &[u32]) -> Result<Option<u64>> {
    if pids.is_empty() {
        return Ok(None);
    }
    let mut total = 0;
    for pid in pids {
        let path = format!("/proc/{pid}/status");
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        total += parse_vm_rss_bytes(&status).with_context(|| format!("parsing {path}"))?;
    }
    Ok(Some(total))
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (an unprivileged process may go that far
/// and no further) and returns the new soft limit.
pub fn raise_fd_limit() -> Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            bail!("getrlimit: {}", std::io::Error::last_os_error());
        }
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            bail!("setrlimit: {}", std::io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_ticks_are_utime_plus_stime() {
        let stat = "4242 (hearth) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                    250 75 0 0 20 0 9 0 123456 987654321 2048 18446744073709551615";
        assert_eq!(parse_stat_ticks(stat).unwrap(), 325);
        assert_eq!(parse_stat_user_system(stat).unwrap(), (250, 75));
    }

    #[test]
    fn stat_command_names_may_hold_spaces_and_parens() {
        let stat = "7 (tokio (rt) worker) R 1 7 7 0 -1 0 0 0 0 0 11 22 0 0 20 0 1 0 5 6 7";
        assert_eq!(parse_stat_ticks(stat).unwrap(), 33);
    }

    #[test]
    fn truncated_stat_is_an_error() {
        assert!(parse_stat_ticks("1 (x) S 1 2 3").is_err());
        assert!(parse_stat_ticks("garbage").is_err());
    }

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\thearth\nVmPeak:\t  900000 kB\nVmRSS:\t   51200 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss_bytes(status).unwrap(), 51200 * 1024);
        assert!(parse_vm_rss_bytes("Name:\tkthreadd\n").is_err());
        assert!(parse_vm_rss_bytes("VmRSS:\t12 MB\n").is_err());
    }

    #[test]
    fn own_process_is_readable() {
        assert!(own_cpu_seconds().unwrap() >= 0.0);
        let (user, system) = own_thread_user_system_seconds().unwrap();
        assert!(user >= 0.0 && system >= 0.0);
        let me = std::process::id();
        assert!(rss_bytes(&[me]).unwrap().unwrap() > 0);
        assert!(cpu_seconds(&[me]).unwrap().is_some());
        assert_eq!(cpu_seconds(&[]).unwrap(), None);
    }
}
