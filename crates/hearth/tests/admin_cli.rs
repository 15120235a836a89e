//! `hearth admin …` against a SQLite data directory, beside a running `hearth serve` on the
//! same directory (JSON logs, a metrics token): rooms, users, bans, roles, stats.

#[path = "../../hearth-server/tests/common/mod.rs"]
mod common;

use common::{Node, unique};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// Runs `hearth admin <args> --data-dir <dir>`.
fn admin(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("admin")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("hearth runs")
}

/// Runs an admin command that must succeed; returns its stdout.
fn admin_ok(dir: &Path, args: &[&str]) -> String {
    let out = admin(dir, args);
    assert!(
        out.status.success(),
        "hearth admin {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

struct Serve {
    child: Child,
    log: PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn serve(dir: &Path) -> (Serve, Node) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let log = dir.join("serve.log");
    let file = std::fs::File::create(&log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("serve")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir)
        .args(["--log-format", "json"])
        .env("RUST_LOG", "info")
        .env("HEARTH_METRICS__TOKEN", "s3cret-token")
        .stdout(Stdio::from(file.try_clone().unwrap()))
        .stderr(Stdio::from(file))
        .spawn()
        .expect("hearth serve starts");
    let serve = Serve { child, log };
    let node = Node::remote(&format!("http://127.0.0.1:{port}"));
    for _ in 0..300 {
        if node.http.get(node.url("/healthz")).send().await.is_ok() {
            return (serve, node);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "hearth serve did not come up: {}",
        std::fs::read_to_string(&serve.log).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_manage_a_sqlite_deployment() {
    let dir = std::env::temp_dir().join(unique("hearth_t_admin_cli"));
    std::fs::create_dir_all(&dir).unwrap();

    // Rooms, before any server ran: the command migrates the fresh database itself.
    let out = admin_ok(&dir, &["rooms", "create", "beast", "Boost.Beast"]);
    assert!(out.contains("created room beast"), "{out}");
    let out = admin_ok(&dir, &["rooms", "list"]);
    assert!(out.lines().any(|l| l == "beast\tBoost.Beast\t0"), "{out}");
    let refused = admin(&dir, &["rooms", "create", "no spaces", "Bad"]);
    assert!(!refused.status.success());
    let refused = admin(&dir, &["rooms", "create", "beast", "Again"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("already exists"));

    // A server on the same directory serves the room.
    let (server, node) = serve(&dir).await;
    let account = node.register("cliuser").await;
    let (socket, hello) = node.connect(&account).await;
    common::room(&hello, "beast");
    socket.close().await;

    let out = admin_ok(&dir, &["users", "list", "--prefix", "CLIUSER"]);
    assert!(
        out.lines()
            .any(|l| l.contains(&account.username) && l.ends_with("\tuser\tno")),
        "{out}"
    );

    // The role the CLI grants is what the running server checks.
    let (status, _) = node
        .call(Some(&account), "GET", "/api/admin/stats", None)
        .await;
    assert_eq!(status, 403);
    admin_ok(&dir, &["users", "grant-admin", &account.username]);
    let stats = node.ok(&account, "GET", "/api/admin/stats", None).await;
    assert_eq!(stats["users"], 1);
    assert_eq!(stats["rooms"], 4, "{stats}");

    let out = admin_ok(&dir, &["stats"]);
    assert!(out.lines().any(|l| l == "users\t1"), "{out}");
    assert!(out.lines().any(|l| l == "rooms\t4"), "{out}");
    assert!(out.lines().any(|l| l == "sessions\t1"), "{out}");

    // A ban: no more logins, and the sessions are gone (the server sees it at once).
    let out = admin_ok(&dir, &["users", "ban", &account.username]);
    assert!(out.contains("banned"), "{out}");
    let login = node
        .post_json(
            "/api/login",
            json!({"email": account.email, "password": account.password}),
        )
        .await;
    assert_eq!(login.status(), 403);
    let (status, _) = node.call(Some(&account), "GET", "/api/me", None).await;
    assert_eq!(status, 401);
    let out = admin_ok(&dir, &["users", "list"]);
    assert!(
        out.lines()
            .any(|l| l.contains(&account.username) && l.ends_with("\tadmin\tyes")),
        "{out}"
    );
    admin_ok(&dir, &["users", "unban", &account.username]);
    let login = node
        .post_json(
            "/api/login",
            json!({"email": account.email, "password": account.password}),
        )
        .await;
    assert_eq!(login.status(), 204);
    let out = admin_ok(&dir, &["users", "remove-avatar", &account.username]);
    assert!(out.contains("removed the avatar of"), "{out}");
    assert!(
        !admin(&dir, &["users", "remove-avatar", "nobody-at-all"])
            .status
            .success()
    );
    let out = admin_ok(&dir, &["sessions", "revoke", &account.username]);
    assert!(out.contains("revoked 1 sessions"), "{out}");
    assert!(
        !admin(&dir, &["users", "ban", "nobody-at-all"])
            .status
            .success()
    );

    // Deleting: configured rooms are refused, others go.
    let refused = admin(&dir, &["rooms", "delete", "general"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("configuration"));
    let out = admin_ok(&dir, &["rooms", "delete", "beast"]);
    assert!(out.contains("deleted room beast"), "{out}");
    let out = admin_ok(&dir, &["rooms", "list"]);
    assert!(!out.contains("beast"), "{out}");

    // /metrics wants the configured token.
    let response = node.get_as("/metrics", None).await;
    assert_eq!(response.status(), 401);
    let response = node
        .http
        .get(node.url("/metrics"))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(
        text.contains("# TYPE hearth_connections_open gauge"),
        "{text}"
    );
    assert!(text.contains("hearth_frames_out_total"), "{text}");

    // JSON logs, with one line per request naming its route template.
    drop(server);
    let log = std::fs::read_to_string(dir.join("serve.log")).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["fields"]["message"] == "request"
            && l["span"]["route"] == "/api/create-account"
            && l["span"]["method"] == "POST"
            && l["fields"]["status"] == 204
            && l["fields"]["latency_ms"].is_number()),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
