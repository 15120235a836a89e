//! MySQL's commit task keeps one connection, with `autocommit` off, from one commit to the
//! next (`commits.rs`, `MySqlCommitter`). Two things must hold: a commit that fails is rolled
//! back before the connection commits anything else (or its half — the `seq`s it reserved —
//! would be committed with the next batch), and a kept connection that died while idle does
//! not fail the appends that find it dead.

mod common;

use common::TempMySql;
use hearth_core::model::{ConversationRef, NewMessage, UserRef};
use hearth_core::store::MessageStore;
use sqlx::Row;
use std::sync::Arc;

async fn send(
    messages: &Arc<dyn MessageStore>,
    room: &ConversationRef,
    sender: &UserRef,
    client_id: &str,
) -> Result<i64, hearth_core::StoreError> {
    let message = NewMessage {
        client_msg_id: Some(client_id.into()),
        ..NewMessage::text(sender.clone(), client_id.into())
    };
    let stored = messages
        .append_messages(room, vec![message], hearth_core::now_ms())
        .await?;
    Ok(stored[0].seq)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_is_rolled_back_and_a_dead_connection_replaced() {
    let store = TempMySql::open("hearth_t_mysql_commits").await;
    let stores = store.sql.clone().stores();
    let user = common::user(&stores, "keeper").await;
    let sender = user.as_ref();
    let room = stores
        .messages
        .upsert_room("kept", "Kept")
        .await
        .unwrap()
        .conversation();

    assert_eq!(
        send(&stores.messages, &room, &sender, "a").await.unwrap(),
        1
    );
    // A reused client id fails its commit (the unique key) after its `seq` was reserved.
    assert!(send(&stores.messages, &room, &sender, "a").await.is_err());
    // Rolled back: the next message takes the next `seq`, not one after a lost reservation.
    assert_eq!(
        send(&stores.messages, &room, &sender, "b").await.unwrap(),
        2
    );

    // The server drops every connection of this database, the commit task's among them.
    let mut admin = TempMySql::admin().await;
    let ids: Vec<i64> =
        sqlx::query("SELECT CAST(id AS SIGNED) FROM information_schema.processlist WHERE db = ?")
            .bind(&store.name)
            .fetch_all(&mut admin)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<i64, _>(0))
            .collect();
    assert!(!ids.is_empty(), "the store holds connections");
    for id in ids {
        // A connection may close by itself meanwhile.
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("KILL {id}")))
            .execute(&mut admin)
            .await;
    }

    assert_eq!(
        send(&stores.messages, &room, &sender, "c").await.unwrap(),
        3
    );
    let seqs: Vec<i64> = stores
        .messages
        .messages_after(room.id, 0, 0, 10)
        .await
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    store.close().await;
}
