//! SQLite's write-ahead log is checkpointed by the store's checkpointer, not by the commit
//! that happens to cross SQLite's threshold (the writer's own threshold is ~80 MB).

use hearth_core::model::{NewMessage, NewUser};
use hearth_sql::SqlStore;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_pages_reach_the_database_file_without_the_writer() {
    let dir = std::env::temp_dir().join(format!(
        "hearth_t_wal_{}_{}",
        std::process::id(),
        hearth_core::now_ms()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("hearth.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let sql = SqlStore::open(&url).await.unwrap();
    let stores = sql.clone().stores();
    let user = stores
        .users
        .insert_user(NewUser {
            username: "writer".into(),
            email: "writer@example.com".into(),
            password_hash: "x".into(),
        })
        .await
        .unwrap();
    let room = stores.messages.upsert_room("log", "Log").await.unwrap();
    // Let the set-up be checkpointed, then measure from there.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let before = std::fs::metadata(&file).unwrap().len();
    // ~2 MB of messages: hundreds of log pages, far below the writer's own threshold.
    for batch in 0..20 {
        let messages = (0..100)
            .map(|i| NewMessage::text(user.as_ref(), format!("{batch}/{i} {}", "x".repeat(1_000))))
            .collect();
        stores
            .messages
            .append_messages(&room.conversation(), messages, 1_000)
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut after = before;
    while Instant::now() < deadline {
        after = std::fs::metadata(&file).unwrap().len();
        if after > before + 1_000_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        after > before + 1_000_000,
        "the database file grew from {before} to {after} bytes: the log was not checkpointed"
    );
    sql.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
