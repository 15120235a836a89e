//! The configuration: flags over `HEARTH_*` environment over a TOML file over defaults.

use clap::Args;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use hearth_core::files::FileLimits;
use hearth_core::{Limits, Policy, validate};
use hearth_server::FileSettings;
use hearth_server::MetricsConfig;
use hearth_server::{RateLimits, Security, ServerConfig};
use hearth_voice::TranscriberConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Options shared by every subcommand. Each can also be set as `HEARTH_<NAME>` or in the
/// config file; `hearth --help` lists them all.
#[derive(Args, Debug, Default, Serialize)]
pub struct Flags {
    /// TOML configuration file (keys as below, plus `[[rooms]]`, `[limits]`, `[im]` and
    /// `[transcriber]` tables).
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
    /// This node's search index directory; never shared between nodes [default:
    /// <data-dir>/search].
    #[arg(long, global = true)]
    #[serde(
        rename = "search",
        skip_serializing_if = "Option::is_none",
        serialize_with = "search_dir_flag"
    )]
    pub search_dir: Option<PathBuf>,
    /// Where uploaded files are kept: "local" (under the data directory) or
    /// s3://BUCKET[/PREFIX][?endpoint=URL&region=R&allow_http=true] (credentials from
    /// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the [files] table) [default: local]. Sets
    /// files.store.
    #[arg(long, global = true)]
    #[serde(skip)]
    pub files: Option<String>,
    /// Largest upload in bytes [default: 104857600 (100 MiB)]. Sets files.max_upload_bytes.
    #[arg(long, global = true)]
    #[serde(skip)]
    pub max_upload_bytes: Option<u64>,
    #[command(flatten)]
    #[serde(rename = "transcriber")]
    pub transcriber: TranscriberFlags,
}

/// `[transcriber]` options that have flags (the rest are in the file or `HEARTH_TRANSCRIBER__*`).
#[derive(Args, Debug, Default, Serialize)]
pub struct TranscriberFlags {
    /// Voice transcription: none or command [default: none].
    #[arg(long = "transcriber", global = true, value_name = "KIND")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The transcriber program and its arguments, split at whitespace, e.g.
    /// "$HOME/.cache/hearth-whisper/bin/python scripts/transcribe.py --worker" (use the config
    /// file's `command = [...]` for arguments that contain spaces).
    #[arg(
        long = "transcriber-command",
        global = true,
        value_name = "PROGRAM ARGS"
    )]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "split_command"
    )]
    pub command: Option<String>,
    /// Seconds one transcription may take before it is killed and retried [default: 120].
    #[arg(long = "transcriber-timeout-secs", global = true, value_name = "SECS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// Transcriptions running at once on this node [default: 1].
    #[arg(long = "transcriber-concurrency", global = true, value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
}

fn split_command<S: serde::Serializer>(
    command: &Option<String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let words: Vec<&str> = command
        .as_deref()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    words.serialize(serializer)
}

/// `--search-dir` is the `dir` key of the `[search]` table.
fn search_dir_flag<S: serde::Serializer>(dir: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
    SearchConfig { dir: dir.clone() }.serialize(s)
}

/// `[search]`: the full-text index.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// Where this node keeps its index [default: <data_dir>/search]. Each node needs its own
    /// (one process may write an index); a missing or broken index is rebuilt from the
    /// database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
}

/// `[files]`: where uploads are kept and how large they may be.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesConfig {
    /// `local` or an `s3://` URL.
    pub store: String,
    /// Local directory: blobs (when `store` is local) and uploads in progress [default:
    /// `<data_dir>/files`].
    pub dir: Option<PathBuf>,
    pub max_upload_bytes: u64,
    pub max_files_per_request: usize,
    pub max_concurrent_uploads: usize,
    pub idle_timeout_secs: u64,
    /// S3 credentials and region, if not in the `AWS_*` environment.
    pub s3_access_key_id: Option<String>,
    pub s3_secret_access_key: Option<String>,
    pub s3_region: Option<String>,
}

impl Default for FilesConfig {
    fn default() -> Self {
        let limits = FileLimits::default();
        FilesConfig {
            store: "local".into(),
            dir: None,
            max_upload_bytes: limits.max_upload_bytes,
            max_files_per_request: limits.max_files_per_request,
            max_concurrent_uploads: limits.max_concurrent_uploads,
            idle_timeout_secs: limits.idle_timeout_secs,
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_region: None,
        }
    }
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
    /// Allowed origins and proxy trust (`[security]`).
    pub security: Security,
    /// Abuse limits (`[rate_limits]`).
    pub rate_limits: RateLimits,
    /// Offline voice transcription (`[transcriber]`).
    pub transcriber: TranscriberConfig,
    /// Full-text search (`[search]`).
    pub search: SearchConfig,
    /// `GET /metrics` (`[metrics]`: `enabled`, `token`).
    pub metrics: MetricsConfig,
    /// File uploads (`[files]`).
    pub files: FilesConfig,
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
            security: Security::default(),
            rate_limits: RateLimits::default(),
            transcriber: TranscriberConfig::default(),
            search: SearchConfig::default(),
            metrics: MetricsConfig::default(),
            files: FilesConfig::default(),
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
    "transcriber",
    "search",
    "metrics",
    "security",
    "rate_limits",
    "files",
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
        let mut config: Config = figment.extract()?;
        // These flags set keys inside [files]; figment merges flags only at the top level.
        if let Some(store) = &flags.files {
            config.files.store = store.clone();
        }
        if let Some(max) = flags.max_upload_bytes {
            config.files.max_upload_bytes = max;
        }
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
        self.transcriber.check()?;
        anyhow::ensure!(
            self.metrics
                .token
                .as_ref()
                .is_none_or(|t| !t.trim().is_empty()),
            "metrics.token must not be empty (leave it out to serve /metrics without a token)"
        );
        let f = &self.files;
        anyhow::ensure!(
            f.max_upload_bytes > 0,
            "files.max_upload_bytes must be positive"
        );
        anyhow::ensure!(
            (1..=100).contains(&f.max_files_per_request),
            "files.max_files_per_request must be 1..=100"
        );
        anyhow::ensure!(
            f.max_concurrent_uploads > 0,
            "files.max_concurrent_uploads must be positive"
        );
        anyhow::ensure!(
            f.idle_timeout_secs > 0,
            "files.idle_timeout_secs must be positive"
        );
        anyhow::ensure!(
            f.store == "local" || f.store.starts_with("s3://"),
            "files.store must be \"local\" or an s3:// URL"
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

    pub fn search_dir(&self) -> PathBuf {
        self.search
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("search"))
    }

    /// The local files directory: blobs (local store) and uploads in progress.
    pub fn files_dir(&self) -> PathBuf {
        self.files
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("files"))
    }

    /// Opens the configured blob store.
    pub fn file_settings(&self) -> anyhow::Result<FileSettings> {
        let dir = self.files_dir();
        let credentials = hearth_blobs::S3Credentials {
            access_key_id: self.files.s3_access_key_id.clone(),
            secret_access_key: self.files.s3_secret_access_key.clone(),
            region: self.files.s3_region.clone(),
        };
        let f = &self.files;
        Ok(FileSettings {
            limits: FileLimits {
                max_upload_bytes: f.max_upload_bytes,
                max_files_per_request: f.max_files_per_request,
                max_concurrent_uploads: f.max_concurrent_uploads,
                idle_timeout_secs: f.idle_timeout_secs,
            },
            staging: dir.join("tmp"),
            blobs: hearth_blobs::open(&f.store, &dir.join("blobs"), &credentials)?,
        })
    }

    pub fn server_config(&self) -> anyhow::Result<ServerConfig> {
        Ok(ServerConfig {
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
            security: self.security.clone(),
            rate_limits: self.rate_limits.clone(),
            search_dir: Some(self.search_dir()),
            metrics: self.metrics.clone(),
            files: self.file_settings()?,
            transcriber: self.transcriber.clone(),
        })
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
            jail.set_env("HEARTH_RATE_LIMITS__ENABLED", "false");
            jail.set_env("HEARTH_RATE_LIMITS__LOGINS_PER_IP__BURST", "3");
            jail.set_env("HEARTH_SECURITY__TRUST_PROXY_HEADERS", "true");
            let flags = Flags {
                listen: Some("127.0.0.1:2".into()),
                ..Flags::default()
            };
            let config = Config::load(&flags).map_err(|e| e.to_string())?;
            assert_eq!(config.limits.max_content_chars, 7);
            assert!(!config.rate_limits.enabled);
            assert_eq!(config.rate_limits.logins_per_ip.burst, 3);
            assert!(config.security.trust_proxy_headers);
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
    fn transcriber_from_file_env_and_flags() {
        figment::Jail::expect_with(|jail| {
            let config = Config::load(&Flags::default()).map_err(|e| e.to_string())?;
            assert!(!config.transcriber.enabled());
            assert_eq!(config.transcriber.timeout_secs, 120);
            jail.create_file(
                "voice.toml",
                "[transcriber]\nkind = \"command\"\ncommand = [\"/opt/py\", \"t.py\", \"--worker\"]\n\
                 mode = \"oneshot\"\ntimeout_secs = 30\n",
            )?;
            jail.set_env("HEARTH_TRANSCRIBER__MAX_ATTEMPTS", "5");
            let flags = Flags {
                config: Some("voice.toml".into()),
                transcriber: TranscriberFlags {
                    concurrency: Some(2),
                    ..TranscriberFlags::default()
                },
                ..Flags::default()
            };
            let config = Config::load(&flags).map_err(|e| e.to_string())?;
            let t = &config.transcriber;
            assert_eq!(t.kind, hearth_voice::Kind::Command);
            assert_eq!(t.command, ["/opt/py", "t.py", "--worker"]);
            assert_eq!(t.mode, hearth_voice::Mode::Oneshot);
            assert_eq!((t.timeout_secs, t.concurrency, t.max_attempts), (30, 2, 5));

            let flags = Flags {
                transcriber: TranscriberFlags {
                    kind: Some("command".into()),
                    command: Some("  python3  transcribe.py --worker ".into()),
                    timeout_secs: Some(9),
                    ..TranscriberFlags::default()
                },
                ..Flags::default()
            };
            let config = Config::load(&flags).map_err(|e| e.to_string())?;
            assert_eq!(
                config.transcriber.command,
                ["python3", "transcribe.py", "--worker"]
            );
            assert_eq!(config.transcriber.timeout_secs, 9);

            // kind = command without a program, or an unknown kind, is refused at start-up.
            let no_program = Flags {
                transcriber: TranscriberFlags {
                    kind: Some("command".into()),
                    ..TranscriberFlags::default()
                },
                ..Flags::default()
            };
            assert!(Config::load(&no_program).is_err());
            let unknown = Flags {
                transcriber: TranscriberFlags {
                    kind: Some("cloud".into()),
                    ..TranscriberFlags::default()
                },
                ..Flags::default()
            };
            assert!(Config::load(&unknown).is_err());
            Ok(())
        });
    }

    #[test]
    fn search_dir_defaults_under_the_data_dir_and_the_flag_wins() {
        figment::Jail::expect_with(|jail| {
            let load = |flags: Flags| Config::load(&flags).map_err(|e| e.to_string());
            let config = load(Flags {
                data_dir: Some("d".into()),
                ..Flags::default()
            })?;
            assert_eq!(config.search_dir(), PathBuf::from("d/search"));
            assert_eq!(
                config
                    .server_config()
                    .map_err(|e| e.to_string())?
                    .search_dir,
                Some("d/search".into())
            );
            jail.create_file("s.toml", "[search]\ndir = \"/idx\"\n")?;
            let file = || Flags {
                config: Some("s.toml".into()),
                ..Flags::default()
            };
            assert_eq!(load(file())?.search_dir(), PathBuf::from("/idx"));
            jail.set_env("HEARTH_SEARCH__DIR", "/env");
            assert_eq!(load(file())?.search_dir(), PathBuf::from("/env"));
            let flag = Flags {
                search_dir: Some("/flag".into()),
                ..file()
            };
            assert_eq!(load(flag)?.search_dir(), PathBuf::from("/flag"));
            Ok(())
        });
    }

    #[test]
    fn files_table_environment_and_flags() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "hearth.toml",
                "[files]\nstore = \"s3://media?endpoint=http://127.0.0.1:9000\"\nmax_upload_bytes = 5\n",
            )?;
            jail.set_env("HEARTH_FILES__MAX_FILES_PER_REQUEST", "3");
            let flags = Flags {
                config: Some("hearth.toml".into()),
                ..Flags::default()
            };
            let config = Config::load(&flags).map_err(|e| e.to_string())?;
            assert_eq!(
                config.files.store,
                "s3://media?endpoint=http://127.0.0.1:9000"
            );
            assert_eq!(config.files.max_upload_bytes, 5);
            assert_eq!(config.files.max_files_per_request, 3);
            let flags = Flags {
                config: Some("hearth.toml".into()),
                files: Some("local".into()),
                max_upload_bytes: Some(7),
                ..Flags::default()
            };
            let config = Config::load(&flags).map_err(|e| e.to_string())?;
            assert_eq!(config.files.store, "local");
            assert_eq!(config.files.max_upload_bytes, 7);
            let bad = Flags {
                files: Some("ftp://x".into()),
                ..Flags::default()
            };
            assert!(Config::load(&bad).is_err());
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
