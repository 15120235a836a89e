//! The fan-out yardsticks account for everything they measure: `floor` against its own
//! readers, `redis-fanout` against the Redis the cluster tests use (`HEARTH_TEST_REDIS`).

use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

fn bench(args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_hearth-bench"))
        .args(args)
        .output()
        .expect("hearth-bench runs");
    assert!(
        output.status.success(),
        "hearth-bench {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("utf-8 report");
    serde_json::from_str(stdout.trim()).expect("one JSON line")
}

/// `host:port` of the test Redis; the run fails (never skips) without one.
fn redis_address() -> String {
    let url =
        std::env::var("HEARTH_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    url.trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_owned()
}

fn redis_pid(address: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap_or_else(|e| {
        panic!("Redis at {address} is required ({e}); scripts/services.sh starts it")
    });
    stream.write_all(b"INFO server\r\n").unwrap();
    let mut reply = Vec::new();
    let mut buf = [0; 4096];
    while !String::from_utf8_lossy(&reply).contains("process_id:") || !reply.ends_with(b"\r\n") {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "Redis closed the connection");
        reply.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&reply);
    text.lines()
        .find_map(|line| line.strip_prefix("process_id:"))
        .map(|pid| pid.trim().to_owned())
        .expect("INFO server names the process id")
}

#[test]
fn floor_writes_every_pass_to_every_socket_and_measures_its_thread() {
    let report = bench(&[
        "floor",
        "--connections",
        "40",
        "--rate",
        "20",
        "--duration",
        "1",
        "--payload",
        "300",
    ]);
    let r = &report["results"];
    assert_eq!(report["scenario"], "floor");
    assert_eq!(r["writes"], 40 * 20);
    assert_eq!(r["short_writes"], 0);
    assert_eq!(r["bytes_written"], 40 * 20 * 300);
    assert_eq!(r["bytes_received"], r["bytes_written"]);
    assert_eq!(r["pass_ms"]["count"], 20);
    assert!(r["writer_cpu_us_per_write"].as_f64().unwrap() >= 0.0);
}

#[test]
fn floor_refuses_an_empty_run() {
    let output = Command::new(env!("CARGO_BIN_EXE_hearth-bench"))
        .args(["floor", "--connections", "0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
}

#[test]
fn redis_fanout_checks_off_every_delivery_and_reads_redis_cpu() {
    let address = redis_address();
    let pid = redis_pid(&address);
    let report = bench(&[
        "redis-fanout",
        "--redis",
        &address,
        "--server-pid",
        &pid,
        "--subscribers",
        "25",
        "--rate",
        "40",
        "--duration",
        "0.5",
        "--payload",
        "80",
    ]);
    let r = &report["results"];
    assert_eq!(report["scenario"], "redis-fanout");
    let sent = r["sent"].as_u64().unwrap();
    assert_eq!(sent, 20);
    assert_eq!(r["deliveries"], sent * 25);
    assert_eq!(r["deliveries_expected"], sent * 25);
    assert_eq!(r["lost"], 0);
    assert_eq!(r["duplicated"], 0);
    assert_eq!(r["foreign"], 0);
    assert!(r.get("problems").is_none(), "{r}");
    assert_eq!(r["latency_ms"]["count"], sent * 25);
    assert!(r["server_cpu_us_per_delivery"].as_f64().is_some());
}

#[test]
fn redis_fanout_refuses_other_machines() {
    let output = Command::new(env!("CARGO_BIN_EXE_hearth-bench"))
        .args([
            "redis-fanout",
            "--redis",
            "10.1.2.3:6379",
            "--server-pid",
            "1",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("loopback"));
}
