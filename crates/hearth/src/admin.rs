//! `hearth admin …`: operator commands run against the database (and Redis) directly, with the
//! same configuration as `serve`. They go through the core's `Admin` service, as the
//! `/api/admin` endpoints do.

use crate::config::{self, Config};
use anyhow::Context;
use clap::Subcommand;
use hearth_core::admin::{Admin, UserInfo, UserRole};
use hearth_core::bus::Bus;
use hearth_nats::NatsBus;
use hearth_redis::{Redis, RedisBus};
use hearth_sql::SqlStore;
use std::sync::Arc;

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Public rooms. Running nodes pick up created and deleted rooms when they restart.
    #[command(subcommand)]
    Rooms(RoomsCommand),
    /// Accounts: list, ban, unban, roles.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Sessions of a user.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Counts of users, rooms, conversations, messages and sessions.
    Stats,
}

#[derive(Subcommand)]
pub enum RoomsCommand {
    /// Create a room (id: 1-64 characters of A-Z a-z 0-9 _ . -).
    Create { slug: String, name: String },
    /// List rooms with their message counts.
    List,
    /// Delete a room. One with messages is kept unless --force, which deletes them too.
    /// Rooms named in the configuration cannot be deleted (start-up would create them again).
    Delete {
        slug: String,
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
pub enum UsersCommand {
    /// List users, by username.
    List {
        /// Only usernames starting with this (case-insensitive).
        #[arg(long, default_value = "")]
        prefix: String,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Ban a user: no login, sessions revoked, sockets closed.
    Ban { username: String },
    /// Lift a ban.
    Unban { username: String },
    /// Take a user's avatar away (they see the generated one until they choose another).
    RemoveAvatar { username: String },
    /// Give a user the admin role (the /api/admin endpoints).
    GrantAdmin { username: String },
    /// Take the admin role away.
    RevokeAdmin { username: String },
}

#[derive(Subcommand)]
pub enum SessionsCommand {
    /// End every session of a user (they log in again) and close their sockets.
    Revoke { username: String },
}

/// The admin service over the configured stores. With Redis configured, sessions are Redis's
/// and the bus reaches the running nodes (to close a banned user's sockets at once); without,
/// those sockets end at their next session re-check (within 30 s).
async fn admin(config: &Config) -> anyhow::Result<(Admin, SqlStore)> {
    let database = config.database_url()?;
    let sql = SqlStore::open(&database)
        .await
        .with_context(|| format!("opening the database {}", config::redact(&database)))?;
    let (stores, bus) = match &config.redis {
        None => (sql.clone().stores(), None),
        Some(url) => {
            let redis = Redis::connect(url, &config.redis_prefix)
                .await
                .with_context(|| format!("connecting to Redis at {}", config::redact(url)))?;
            let bus: Arc<dyn Bus> = match config.bus.as_deref() {
                Some(nats) if nats.starts_with("nats://") => {
                    Arc::new(NatsBus::connect(nats, &config.redis_prefix).await?)
                }
                Some(other) => Arc::new(RedisBus::connect(other, &config.redis_prefix).await?),
                None => Arc::new(RedisBus::connect(url, &config.redis_prefix).await?),
            };
            let stores =
                hearth_redis::cluster_stores(sql.clone().stores(), redis, config.stream_max_len);
            (stores, Some(bus))
        }
    };
    let configured = config.rooms.iter().map(|r| r.id.clone()).collect();
    Ok((Admin::new(&stores, bus, configured), sql))
}

pub async fn run(config: &Config, command: AdminCommand) -> anyhow::Result<()> {
    let (admin, sql) = admin(config).await?;
    let result = execute(&admin, command).await;
    sql.close().await;
    result
}

async fn execute(admin: &Admin, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::Rooms(RoomsCommand::Create { slug, name }) => {
            let room = admin.create_room(&slug, &name).await?;
            println!("created room {} ({})", room.slug, room.name);
        }
        AdminCommand::Rooms(RoomsCommand::List) => {
            println!("ID\tNAME\tMESSAGES");
            for room in admin.rooms().await? {
                println!("{}\t{}\t{}", room.slug, room.name, room.messages);
            }
        }
        AdminCommand::Rooms(RoomsCommand::Delete { slug, force }) => {
            let deleted = admin.delete_room(&slug, force).await?;
            println!("deleted room {slug} and its {deleted} messages");
        }
        AdminCommand::Users(UsersCommand::List { prefix, limit }) => {
            println!("ID\tUSERNAME\tEMAIL\tROLE\tBANNED");
            for user in admin.list_users(&prefix, limit).await? {
                print_user(&user);
            }
        }
        AdminCommand::Users(UsersCommand::Ban { username }) => {
            let user = admin.find_user(&username).await?;
            admin.ban(user.id).await?;
            println!("banned {} (id {})", user.username, user.id);
        }
        AdminCommand::Users(UsersCommand::Unban { username }) => {
            let user = admin.find_user(&username).await?;
            admin.unban(user.id).await?;
            println!("unbanned {} (id {})", user.username, user.id);
        }
        AdminCommand::Users(UsersCommand::RemoveAvatar { username }) => {
            let user = admin.find_user(&username).await?;
            admin.remove_avatar(user.id).await?;
            println!("removed the avatar of {} (id {})", user.username, user.id);
        }
        AdminCommand::Users(UsersCommand::GrantAdmin { username }) => {
            let user = admin.find_user(&username).await?;
            admin.set_role(user.id, UserRole::Admin).await?;
            println!("{} (id {}) is an admin", user.username, user.id);
        }
        AdminCommand::Users(UsersCommand::RevokeAdmin { username }) => {
            let user = admin.find_user(&username).await?;
            admin.set_role(user.id, UserRole::User).await?;
            println!("{} (id {}) is no longer an admin", user.username, user.id);
        }
        AdminCommand::Sessions(SessionsCommand::Revoke { username }) => {
            let user = admin.find_user(&username).await?;
            let revoked = admin.revoke_sessions(user.id).await?;
            println!("revoked {revoked} sessions of {}", user.username);
        }
        AdminCommand::Stats => {
            let stats = admin.stats().await?;
            let c = &stats.counts;
            println!("users\t{}", c.users);
            println!("banned users\t{}", c.banned_users);
            println!("admins\t{}", c.admins);
            println!("rooms\t{}", c.rooms);
            println!("direct conversations\t{}", c.direct_conversations);
            println!("groups\t{}", c.groups);
            println!("messages\t{}", c.messages);
            match stats.sessions {
                Some(n) => println!("sessions\t{n}"),
                None => println!("sessions\tunknown"),
            }
        }
    }
    Ok(())
}

fn print_user(user: &UserInfo) {
    println!(
        "{}\t{}\t{}\t{}\t{}",
        user.id,
        user.username,
        user.email,
        user.role.as_str(),
        if user.banned_ms.is_some() {
            "yes"
        } else {
            "no"
        }
    );
}
