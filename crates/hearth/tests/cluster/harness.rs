//! Real `hearth serve` processes on loopback ports over one MariaDB + Redis, which the tests
//! can kill (`SIGKILL`), stop (`SIGTERM`) and restart; and private Redis and MariaDB servers
//! the tests may restart without disturbing anything else.

use crate::common::{Node, mysql_base, unique};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Waits until `ready` holds, for at most `within`.
pub async fn eventually(within: Duration, mut ready: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if ready().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A group of nodes sharing one database and one Redis prefix.
pub struct Cluster {
    pub database: String,
    pub redis: String,
    pub prefix: String,
    bus: Option<String>,
    node_ttl_secs: u64,
    dir: PathBuf,
    nodes: Vec<Option<Child>>,
    ports: Vec<u16>,
}

impl Cluster {
    /// `bus`: `None` for Redis pub/sub, or a `nats://` URL.
    pub fn new(redis: &str, bus: Option<&str>) -> Cluster {
        let name = unique("hearth_t_cluster");
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        Cluster {
            database: format!("{}/{name}", mysql_base()),
            redis: redis.to_owned(),
            prefix: format!("{name}:"),
            bus: bus.map(str::to_owned),
            node_ttl_secs: 3,
            dir,
            nodes: Vec::new(),
            ports: Vec::new(),
        }
    }

    pub fn with_database(mut self, url: &str) -> Cluster {
        self.database = url.to_owned();
        self
    }

    /// Starts node `i` (on a new port the first time, on its old port after a kill).
    pub async fn start(&mut self, i: usize) -> Node {
        while self.nodes.len() <= i {
            self.nodes.push(None);
            self.ports.push(free_port());
        }
        let port = self.ports[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("node{i}.log")))
            .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_hearth"));
        command
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--data-dir", &self.dir.display().to_string()])
            // The data directory is shared; a search index is one node's alone.
            .args([
                "--search-dir",
                &self.dir.join(format!("search{i}")).display().to_string(),
            ])
            .args(["--database", &self.database])
            .args(["--redis", &self.redis])
            .args(["--redis-prefix", &self.prefix])
            .args(["--node-ttl-secs", &self.node_ttl_secs.to_string()])
            .env("RUST_LOG", "info")
            // Hundreds of sessions from one address; the limits have their own tests.
            .env("HEARTH_RATE_LIMITS__ENABLED", "false")
            .env_remove("RUST_BACKTRACE")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log));
        if let Some(bus) = &self.bus {
            command.args(["--bus", bus]);
        }
        self.nodes[i] = Some(command.spawn().expect("hearth starts"));
        let node = Node::remote(&format!("http://127.0.0.1:{port}"));
        let up = eventually(Duration::from_secs(30), async || {
            node.http.get(node.url("/")).send().await.is_ok()
        })
        .await;
        assert!(up, "node {i} did not come up; log: {}", self.log(i));
        node
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("node{i}.log"))).unwrap_or_default()
    }

    /// `kill -9`: no goodbye, no clean-up.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes.get_mut(i).and_then(Option::take) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `SIGTERM`; returns once the process exited, and its exit status.
    pub fn terminate(&mut self, i: usize) -> Option<std::process::ExitStatus> {
        let mut child = self.nodes.get_mut(i).and_then(Option::take)?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        child.wait().ok()
    }

    /// Drops the database and the Redis keys.
    pub async fn cleanup(mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        use sqlx::Executor;
        sqlx::any::install_default_drivers();
        if let Ok(pool) = sqlx::AnyPool::connect(&format!("{}/mysql", mysql_base())).await {
            let name = self
                .database
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            let _ = pool
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS `{name}`"
                )))
                .await;
        }
        if let Ok(client) = redis::Client::open(self.redis.as_str())
            && let Ok(mut conn) = client.get_multiplexed_async_connection().await
        {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}*", self.prefix))
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            for key in keys {
                let _: Result<i64, _> = redis::cmd("DEL").arg(key).query_async(&mut conn).await;
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.nodes.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A Redis server of the test's own, which it may stop and start again on the same port.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub async fn start() -> PrivateRedis {
        let mut redis = PrivateRedis {
            port: free_port(),
            child: None,
        };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub async fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/services.sh installs it)");
        self.child = Some(child);
        let url = self.url();
        let up = eventually(Duration::from_secs(10), async || match redis::Client::open(
            url.as_str(),
        ) {
            Ok(client) => client.get_multiplexed_async_connection().await.is_ok(),
            Err(_) => false,
        })
        .await;
        assert!(up, "private redis-server did not start");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A MariaDB server of the test's own (fresh data directory), restartable on its port.
pub struct PrivateMariaDb {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateMariaDb {
    pub async fn start() -> PrivateMariaDb {
        let dir = std::env::temp_dir().join(unique("hearth_t_mariadb"));
        std::fs::create_dir_all(&dir).unwrap();
        let installed = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .args([
                "--user=root",
                "--skip-test-db",
                "--auth-root-authentication-method=normal",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("mariadb-install-db must be installed (scripts/services.sh installs it)");
        assert!(installed.success(), "mariadb-install-db failed");
        let mut db = PrivateMariaDb {
            port: free_port(),
            dir,
            child: None,
        };
        db.restart().await;
        db
    }

    pub fn url(&self, database: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{database}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub async fn restart(&mut self) {
        self.stop();
        let child = Command::new("/usr/sbin/mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", self.dir.join("data").display()))
            .arg(format!("--socket={}", self.dir.join("sock").display()))
            .arg(format!("--port={}", self.port))
            .args(["--bind-address=127.0.0.1", "--user=root", "--skip-log-bin"])
            .arg("--innodb-buffer-pool-size=32M")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd starts");
        self.child = Some(child);
        let url = self.url("mysql");
        sqlx::any::install_default_drivers();
        let up = eventually(Duration::from_secs(30), async || {
            sqlx::AnyPool::connect(&url).await.is_ok()
        })
        .await;
        assert!(up, "private mariadbd did not start");
    }
}

impl Drop for PrivateMariaDb {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
