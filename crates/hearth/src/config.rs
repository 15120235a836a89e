//! The configuration: flags over `HEARTH_*` environment over a TOML file over defaults.

use clap::Args;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use hearth_core::{Limits, Policy, validate};
use hearth_server::ServerConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Options shared by every subcommand. Each can also be set as `HEARTH_<NAME>` or in the
/// config file; `hearth --help` lists them all.
#[derive(Args, Debug, Default, Serialize)]
pub struct Flags {
    /// TOML configuration file (keys as below, plus `[[rooms]]` and `[limits]` tables).
    #[arg(long, global = true, env = "HEARTH_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to serve HTTP and WebSocket on [default: 127.0.0.1:3000].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Directory for the embedded database and files [default: ./hearth-data].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or mysql://USER:PASS@HOST:PORT/DB [default: SQLite in the
    /// data directory].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Redis URL (cluster mode): sessions and recent room messages live in Redis.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<String>,
    /// Cross-node bus: nats://HOST:PORT to use NATS (needs --redis for presence) [default:
    /// Redis pub/sub in cluster mode, in-process otherwise].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bus: Option<String>,
    /// Seconds without a heartbeat after which a node counts as dead [default: 10].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_ttl_secs: Option<u64>,
    /// Prefix of every Redis key, to share one Redis between deployments [default: hearth:].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_prefix: Option<String>,
    /// Session lifetime in seconds [default: 86400].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_ttl_secs: Option<u64>,
    /// Mark the session cookie Secure (set when clients reach Hearth over HTTPS).
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub secure_cookies: bool,
    /// Log format: text or json [default: text].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomConfig {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    pub database: Option<String>,
    pub redis: Option<String>,
    pub bus: Option<String>,
    pub node_ttl_secs: u64,
    pub redis_prefix: String,
    pub session_ttl_secs: u64,
    pub secure_cookies: bool,
    pub log_format: String,
    /// Roughly how many recent messages each room's Redis stream keeps.
    pub stream_max_len: usize,
    /// Rooms that must exist; they are created (or renamed) at start-up.
    pub rooms: Vec<RoomConfig>,
    pub limits: Limits,
    /// Instant-messaging policies (`[im]`).
    pub im: Policy,
}

impl Default for Config {
    fn default() -> Self {
        let room = |id: &str, name: &str| RoomConfig {
            id: id.into(),
            name: name.into(),
        };
        Config {
            listen: "127.0.0.1:3000".into(),
            data_dir: "hearth-data".into(),
            database: None,
            redis: None,
            bus: None,
            node_ttl_secs: 10,
            redis_prefix: "hearth:".into(),
            session_ttl_secs: 86_400,
            secure_cookies: false,
            log_format: "text".into(),
            stream_max_len: 1_000,
            rooms: vec![
                room("general", "General"),
                room("random", "Random"),
                room("help", "Help & feedback"),
            ],
            limits: Limits::default(),
            im: Policy::default(),
        }
    }
}

/// Top-level keys that `HEARTH_*` environment variables may set.
const KNOWN_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "database",
    "redis",
    "bus",
    "node_ttl_secs",
    "redis_prefix",
    "session_ttl_secs",
    "secure_cookies",
    "log_format",
    "stream_max_len",
    "limits",
    "im",
];

impl Config {
    pub fn load(flags: &Flags) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = &flags.config {
            anyhow::ensure!(path.exists(), "config file {} not found", path.display());
            figment = figment.merge(Toml::file(path));
        }
        let figment = figment
            .merge(Env::prefixed("HEARTH_").split("__").filter(|key| {
                // Other HEARTH_* variables (the test harness's, say) are not configuration.
                // Keys arrive here upper case ("LIMITS.MAX_CONTENT_CHARS").
                let top = key.as_str().split('.').next().unwrap_or_default();
                KNOWN_KEYS
                    .iter()
                    .any(|known| known.eq_ignore_ascii_case(top))
            }))
            .merge(Serialized::defaults(flags));
        let config: Config = figment.extract()?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> anyhow::Result<()> {
        for room in &self.rooms {
            validate::room_slug(&room.id)?;
            validate::room_name(&room.name)?;
        }
        let l = &self.limits;
        anyhow::ensure!(
            l.max_content_chars > 0,
            "limits.max_content_chars must be positive"
        );
        anyhow::ensure!(
            l.max_messages_per_frame > 0,
            "limits.max_messages_per_frame must be positive"
        );
        anyhow::ensure!(
            (1..=1000).contains(&l.history_page),
            "limits.history_page must be 1..=1000"
        );
        anyhow::ensure!(
            l.max_frame_bytes <= l.hard_max_frame_bytes,
            "limits.max_frame_bytes must not exceed limits.hard_max_frame_bytes"
        );
        anyhow::ensure!(
            self.session_ttl_secs > 0,
            "session_ttl_secs must be positive"
        );
        anyhow::ensure!(
            self.log_format == "text" || self.log_format == "json",
            "log_format must be text or json"
        );
        Ok(())
    }

    /// The database to use; SQLite in the data directory unless one was named.
    pub fn database_url(&self) -> anyhow::Result<String> {
        if let Some(url) = &self.database {
            return Ok(url.clone());
        }
        std::fs::create_dir_all(&self.data_dir)?;
        Ok(format!(
            "sqlite://{}?mode=rwc",
            self.data_dir.join("hearth.db").display()
        ))
    }

    pub fn server_config(&self) -> ServerConfig {
        ServerConfig {
            limits: self.limits.clone(),
            session_ttl: Duration::from_secs(self.session_ttl_secs),
            rooms: self
                .rooms
                .iter()
                .map(|r| (r.id.clone(), r.name.clone()))
                .collect(),
            secure_cookies: self.secure_cookies,
            policy: self.im.clone(),
            reap_interval: Duration::from_secs(self.node_ttl_secs).max(Duration::from_secs(3)) / 3,
        }
    }
}

/// A URL with its password replaced, for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
// figment's Jail closures must return its (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("mysql://root:pw@h/db"), "mysql://root:***@h/db");
        assert_eq!(redact("mysql://root@h/db"), "mysql://root@h/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }

    #[test]
    fn environment_sets_nested_keys_and_flags_win() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("HEARTH_LIMITS__MAX_CONTENT_CHARS", "7");
            jail.set_env("HEARTH_LISTEN", "127.0.0.1:1");
            jail.set_env("HEARTH_TEST_SOMETHING", "ignored");
            let flags = Flags {
                listen: Some("127.0.0.1:2".into()),
                ..Flags::default()
            };
            let config = Config::load(&flags).map_err(|e| e.to_string())?;
            assert_eq!(config.limits.max_content_chars, 7);
            assert_eq!(config.listen, "127.0.0.1:2");
            Ok(())
        });
    }

    #[test]
    fn flags_override_defaults() {
        // Inside a jail too: it serializes tests that touch the process environment.
        figment::Jail::expect_with(|_| {
            let flags = Flags {
                listen: Some("127.0.0.1:9".into()),
                ..Flags::default()
            };
            let config = Config::load(&flags).map_err(|e| e.to_string())?;
            assert_eq!(config.listen, "127.0.0.1:9");
            assert_eq!(config.limits.max_content_chars, 4_000);
            assert_eq!(config.rooms.len(), 3);
            Ok(())
        });
    }

    #[test]
    fn config_file_sets_rooms_and_rejects_typos() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "hearth.toml",
                "listen = \"127.0.0.1:7\"\n[[rooms]]\nid = \"beast\"\nname = \"Boost.Beast\"\n",
            )?;
            let flags = Flags {
                config: Some("hearth.toml".into()),
                ..Flags::default()
            };
            let config = Config::load(&flags).map_err(|e| e.to_string())?;
            assert_eq!(config.listen, "127.0.0.1:7");
            assert_eq!(config.rooms.len(), 1);
            assert_eq!(config.rooms[0].id, "beast");
            jail.create_file("typo.toml", "lisen = \"x\"\n")?;
            let typo = Flags {
                config: Some("typo.toml".into()),
                ..Flags::default()
            };
            assert!(Config::load(&typo).is_err());
            Ok(())
        });
    }
}
