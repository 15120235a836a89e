//! SQLite has two writers: the commit thread's own connection stores messages, the writer
//! pool does every other write. They take turns on the database's write lock; a transaction
//! that reads before it writes must not fail because the other writer committed in between.

mod common;

use common::TempSqlite;
use hearth_core::model::NewMessage;
use hearth_core::store::RoomDeletion;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const APPENDERS: usize = 8;
const ROOMS_DELETED: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_and_other_writes_take_turns() {
    let store = TempSqlite::open("hearth_t_writers").await;
    let stores = store.sql.clone().stores();
    let user = common::user(&stores, "busy").await;
    let mut busy = Vec::new();
    for task in 0..APPENDERS {
        let slug = format!("busy{task}");
        busy.push(stores.messages.upsert_room(&slug, "Busy").await.unwrap());
    }

    // Messages commit continuously on the commit thread (one room per task: appends to one
    // conversation in one batch would take the savepoint path, on the writer pool)...
    let stop = Arc::new(AtomicBool::new(false));
    let appenders: Vec<_> = busy
        .iter()
        .enumerate()
        .map(|(task, room)| {
            let (messages, stop) = (stores.messages.clone(), stop.clone());
            let (room, sender) = (room.conversation(), user.as_ref());
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let message = NewMessage::text(sender.clone(), format!("{task}/{n}"));
                    let stored = messages
                        .append_messages(&room, vec![message], hearth_core::now_ms())
                        .await
                        .expect("a message is stored beside the other writes");
                    seqs.extend(stored.iter().map(|m| m.seq));
                    n += 1;
                }
                seqs
            })
        })
        .collect();

    // ...while the writer pool creates rooms and deletes them: `delete_room` reads the room
    // before it deletes it, the case a deferred transaction would fail on.
    for i in 0..ROOMS_DELETED {
        let slug = format!("tmp{i}");
        stores.messages.upsert_room(&slug, "Tmp").await.unwrap();
        let deleted = stores.messages.delete_room(&slug, false).await;
        assert!(
            matches!(deleted, Ok(RoomDeletion::Deleted(0))),
            "room {i}: {deleted:?}"
        );
    }

    stop.store(true, Ordering::Relaxed);
    for (appender, room) in appenders.into_iter().zip(&busy) {
        let mut seqs = appender.await.unwrap();
        seqs.sort_unstable();
        let expected: Vec<i64> = (1..=seqs.len() as i64).collect();
        assert!(seqs.len() > 10, "messages were stored meanwhile");
        assert_eq!(seqs, expected, "every message once, without gaps");
        assert_eq!(
            stores
                .messages
                .last_seq(room.conversation_id)
                .await
                .unwrap(),
            seqs.len() as i64
        );
    }
    store.close().await;
}
