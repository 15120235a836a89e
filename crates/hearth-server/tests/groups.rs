//! Groups, join requests and request notes, end to end on both backends: a pending join
//! request ends when its user becomes a member by any route, notes and names refuse control
//! characters, every `group_added` event names its conversation, and an unknown role is
//! `bad_role`.

mod common;

use common::{Account, Backend, Deployment, Node};
use serde_json::{Value, json};

async fn create_group(node: &Node, owner: &Account, name: &str, members: &[&Account]) -> i64 {
    let ids: Vec<i64> = members.iter().map(|m| m.id).collect();
    node.ok(
        owner,
        "POST",
        "/api/groups",
        Some(json!({"name": name, "members": ids})),
    )
    .await["conversationId"]
        .as_i64()
        .expect("a conversation id")
}

/// The user ids of a group's pending join requests, as `admin` lists them.
async fn requesters(node: &Node, admin: &Account, group: i64) -> Vec<i64> {
    node.ok(
        admin,
        "GET",
        &format!("/api/groups/{group}/join-requests"),
        None,
    )
    .await
    .as_array()
    .expect("a list")
    .iter()
    .map(|r| r["user"]["id"].as_i64().expect("a user id"))
    .collect()
}

/// Every message of the group as `account` pulls it (tests stay under one page).
async fn messages(node: &Node, account: &Account, group: i64) -> Vec<Value> {
    node.ok(
        account,
        "GET",
        &format!("/api/conversations/{group}/messages?after=0&limit=200"),
        None,
    )
    .await["messages"]
        .as_array()
        .expect("messages")
        .clone()
}

/// The contents of the group's system messages of one `event`.
async fn system_events(node: &Node, account: &Account, group: i64, event: &str) -> Vec<Value> {
    messages(node, account, group)
        .await
        .iter()
        .filter(|m| m["kind"] == "system")
        .map(|m| serde_json::from_str::<Value>(m["content"].as_str().unwrap()).unwrap())
        .filter(|c| c["event"] == event)
        .collect()
}

/// The account's inbox events from the start.
async fn inbox(node: &Node, account: &Account) -> Vec<Value> {
    node.ok(account, "GET", "/api/sync?inboxAfter=0", None)
        .await["inbox"]
        .as_array()
        .expect("inbox events")
        .clone()
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["kind"].as_str().unwrap()).collect()
}

/// A refusal's status and `id`.
async fn refused(
    node: &Node,
    account: &Account,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, String) {
    let (status, body) = node.call(Some(account), method, path, body).await;
    assert!(
        status >= 400,
        "{method} {path} was not refused: {status} {body}"
    );
    (status, body["id"].as_str().unwrap_or_default().to_owned())
}

// Audit 1: X asks to join, is then invited, and the request must be gone — neither listed nor
// approvable (a second `joined` message), nor in the way of a later request.
on_both_backends!(
    invite_closes_pending_join_request,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let owner = node.register("owner").await;
        let x = node.register("xena").await;
        let y = node.register("yuri").await;
        node.befriend(&owner, &x).await;
        let g = create_group(&node, &owner, "team", &[]).await;

        for (who, note) in [(&x, "hi"), (&y, "me too")] {
            node.ok(
                who,
                "POST",
                &format!("/api/groups/{g}/join-requests"),
                Some(json!({"note": note})),
            )
            .await;
        }
        assert_eq!(requesters(&node, &owner, g).await, vec![x.id, y.id]);

        node.ok(
            &owner,
            "POST",
            &format!("/api/groups/{g}/invite"),
            Some(json!({"userIds": [x.id]})),
        )
        .await;
        // X's request ended with the invite; Y's is untouched.
        assert_eq!(requesters(&node, &owner, g).await, vec![y.id]);
        for decision in ["approve", "reject"] {
            assert_eq!(
                refused(
                    &node,
                    &owner,
                    "POST",
                    &format!("/api/groups/{g}/join-requests/{}/{decision}", x.id),
                    None,
                )
                .await,
                (409, "already_member".to_owned()),
                "{decision} of a member"
            );
        }
        let joined = system_events(&node, &owner, g, "joined").await;
        assert_eq!(
            joined.len(),
            1,
            "one joined message, the invite's: {joined:?}"
        );
        assert_eq!(joined[0]["userIds"], json!([x.id]));
        let x_inbox = inbox(&node, &x).await;
        let x_kinds = kinds(&x_inbox);
        assert!(x_kinds.contains(&"group_added"), "{x_kinds:?}");
        assert!(
            !x_kinds.contains(&"join_approved") && !x_kinds.contains(&"join_rejected"),
            "the invite answered the request; nothing else is said: {x_kinds:?}"
        );

        // Having left, X may ask again: no stale request stands in the way.
        node.ok(&x, "POST", &format!("/api/groups/{g}/leave"), None)
            .await;
        node.ok(
            &x,
            "POST",
            &format!("/api/groups/{g}/join-requests"),
            Some(json!({"note": "back again"})),
        )
        .await;
        assert_eq!(requesters(&node, &owner, g).await, vec![y.id, x.id]);
        node.ok(
            &owner,
            "POST",
            &format!("/api/groups/{g}/join-requests/{}/approve", x.id),
            None,
        )
        .await;
        assert_eq!(system_events(&node, &owner, g, "joined").await.len(), 2);

        node.stop().await;
        deployment.cleanup().await;
    }
);

// Audit 1, the guard: a pending request of someone who is a member already (left from before
// invites closed them) cannot be approved; trying closes it and posts nothing.
on_both_backends!(
    approving_a_member_is_already_member,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let owner = node.register("owner").await;
        let x = node.register("xena").await;
        node.befriend(&owner, &x).await;
        let g = create_group(&node, &owner, "team", &[&x]).await;
        deployment
            .execute_with(
                "INSERT INTO join_requests \
                 (conversation_id, user_id, note, status, pending_key, created_ms) \
                 VALUES (?, ?, 'stale', 'pending', ?, 0)",
                &[json!(g), json!(x.id), json!(format!("{g}:{}", x.id))],
            )
            .await;
        let pending = "SELECT COUNT(*) FROM join_requests \
                       WHERE conversation_id = ? AND status = 'pending'";
        assert_eq!(deployment.count(pending, g).await, 1);
        let before = messages(&node, &owner, g).await.len();

        assert_eq!(
            refused(
                &node,
                &owner,
                "POST",
                &format!("/api/groups/{g}/join-requests/{}/approve", x.id),
                None,
            )
            .await,
            (409, "already_member".to_owned())
        );
        assert_eq!(
            messages(&node, &owner, g).await.len(),
            before,
            "nothing posted"
        );
        assert_eq!(
            deployment.count(pending, g).await,
            0,
            "the stale request is closed"
        );
        assert_eq!(requesters(&node, &owner, g).await, Vec::<i64>::new());
        let x_inbox = inbox(&node, &x).await;
        assert!(!kinds(&x_inbox).contains(&"join_approved"), "{x_inbox:?}");

        node.stop().await;
        deployment.cleanup().await;
    }
);

// Audit 2: notes are checked like message content — no control characters but tabs and line
// breaks — and refused with `bad_content`; nothing is stored or shown.
on_both_backends!(
    notes_refuse_control_characters,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let ann = node.register("ann").await;
        let bob = node.register("bob").await;
        let owner = node.register("owner").await;
        let g = create_group(&node, &owner, "team", &[]).await;
        let bad_notes = [
            "hi\u{0000}there\u{001b}[31m",
            "bell\u{0007}",
            "delete\u{007f}",
            "next line\u{0085}",
        ];

        for note in bad_notes {
            assert_eq!(
                refused(
                    &node,
                    &ann,
                    "POST",
                    "/api/friends/requests",
                    Some(json!({"userId": bob.id, "note": note})),
                )
                .await,
                (400, "bad_content".to_owned()),
                "friend request note {note:?}"
            );
            assert_eq!(
                refused(
                    &node,
                    &ann,
                    "POST",
                    &format!("/api/groups/{g}/join-requests"),
                    Some(json!({"note": note})),
                )
                .await,
                (400, "bad_content".to_owned()),
                "join request note {note:?}"
            );
        }
        let pending = node.ok(&bob, "GET", "/api/friends/requests", None).await;
        assert_eq!(pending["incoming"], json!([]), "nothing stored");
        assert!(inbox(&node, &bob).await.is_empty(), "nothing shown");
        assert_eq!(requesters(&node, &owner, g).await, Vec::<i64>::new());
        let owner_inbox = inbox(&node, &owner).await;
        assert!(
            !kinds(&owner_inbox).contains(&"join_request"),
            "{owner_inbox:?}"
        );

        // Tabs and line breaks are fine, as in messages; the length limit still holds.
        let multi_line = "line one\nline two\tcell\r\nend";
        let (status, body) = node
            .call(
                Some(&ann),
                "POST",
                "/api/friends/requests",
                Some(json!({"userId": bob.id, "note": "x".repeat(201)})),
            )
            .await;
        assert_eq!((status, body["id"].as_str()), (400, Some("note_too_long")));
        node.ok(
            &ann,
            "POST",
            "/api/friends/requests",
            Some(json!({"userId": bob.id, "note": multi_line})),
        )
        .await;
        let pending = node.ok(&bob, "GET", "/api/friends/requests", None).await;
        assert_eq!(pending["incoming"][0]["note"], multi_line);
        node.ok(
            &ann,
            "POST",
            &format!("/api/groups/{g}/join-requests"),
            Some(json!({"note": multi_line})),
        )
        .await;
        let listed = node
            .ok(
                &owner,
                "GET",
                &format!("/api/groups/{g}/join-requests"),
                None,
            )
            .await;
        assert_eq!(listed[0]["note"], multi_line);

        node.stop().await;
        deployment.cleanup().await;
    }
);

// Audit 2: a group name is one line: no line breaks, tabs or other control characters, at
// creation as on renaming (`bad_name`).
on_both_backends!(group_names_are_one_line, |backend: Backend| async move {
    let deployment = Deployment::new(backend);
    let node = deployment.start().await;
    let owner = node.register("owner").await;
    let g = create_group(&node, &owner, "Équipe 团队 🚀", &[]).await;

    for name in [
        "line1\nline2",
        "line1\r\nline2",
        "tab\there",
        "bell\u{0007}",
        "nul\u{0000}",
        "next\u{0085}line",
        "line\u{2028}separator",
        "para\u{2029}separator",
    ] {
        assert_eq!(
            refused(
                &node,
                &owner,
                "POST",
                "/api/groups",
                Some(json!({"name": name, "members": []})),
            )
            .await,
            (400, "bad_name".to_owned()),
            "creating {name:?}"
        );
        assert_eq!(
            refused(
                &node,
                &owner,
                "POST",
                &format!("/api/groups/{g}/name"),
                Some(json!({"name": name})),
            )
            .await,
            (400, "bad_name".to_owned()),
            "renaming to {name:?}"
        );
    }
    let sync = node.ok(&owner, "GET", "/api/sync", None).await;
    let groups = sync["conversations"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "only the first group exists: {groups:?}");
    assert_eq!(groups[0]["name"], "Équipe 团队 🚀", "the name is unchanged");

    node.stop().await;
    deployment.cleanup().await;
});

// Audit 3: the `group_added` of a group's creation names the conversation, live and in the
// inbox, as an invite's does.
on_both_backends!(
    group_added_names_the_conversation,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let owner = node.register("owner").await;
        let bob = node.register("bob").await;
        let cat = node.register("cat").await;
        node.befriend(&owner, &bob).await;
        node.befriend(&owner, &cat).await;
        let mut bob_socket = node.device(&bob, "web").await;

        let g = create_group(&node, &owner, "EV", &[&bob]).await;
        let live = bob_socket.event("group_added").await;
        assert_eq!(live["payload"]["conversationId"], g, "live: {live}");
        assert_eq!(live["payload"]["name"], "EV");
        assert_eq!(live["payload"]["by"]["id"], owner.id);
        let stored = inbox(&node, &bob).await;
        let added: Vec<&Value> = stored
            .iter()
            .filter(|e| e["kind"] == "group_added")
            .collect();
        assert_eq!(added.len(), 1, "{stored:?}");
        assert_eq!(added[0], &live, "the inbox holds what was pushed");

        // An invite's event has the same shape.
        node.ok(
            &owner,
            "POST",
            &format!("/api/groups/{g}/invite"),
            Some(json!({"userIds": [cat.id]})),
        )
        .await;
        let invited = inbox(&node, &cat).await;
        let invited = invited
            .iter()
            .find(|e| e["kind"] == "group_added")
            .expect("cat's group_added");
        let keys = |e: &Value| {
            let mut keys: Vec<String> = e["payload"].as_object().unwrap().keys().cloned().collect();
            keys.sort();
            keys
        };
        assert_eq!(keys(invited), keys(&live));
        assert_eq!(invited["payload"]["conversationId"], g);

        // The group itself is as before: both members see its creation first, then cat's joining.
        let events: Vec<Value> = messages(&node, &bob, g)
            .await
            .iter()
            .map(|m| serde_json::from_str::<Value>(m["content"].as_str().unwrap()).unwrap())
            .collect();
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0]["event"], "created");
        assert_eq!(events[0]["members"], json!([bob.id]));
        assert_eq!(events[1]["event"], "joined");
        let members = node
            .ok(
                &bob,
                "GET",
                &format!("/api/conversations/{g}/members"),
                None,
            )
            .await;
        let roles: Vec<(i64, &str)> = members
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["user"]["id"].as_i64().unwrap(),
                    m["role"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            roles,
            vec![(owner.id, "owner"), (bob.id, "member"), (cat.id, "member")]
        );

        node.stop().await;
        deployment.cleanup().await;
    }
);

// Audit 4: an unknown role is the documented `400 bad_role`, not a deserializer's message.
on_both_backends!(unknown_role_is_bad_role, |backend: Backend| async move {
    let deployment = Deployment::new(backend);
    let node = deployment.start().await;
    let owner = node.register("owner").await;
    let bob = node.register("bob").await;
    node.befriend(&owner, &bob).await;
    let g = create_group(&node, &owner, "team", &[&bob]).await;
    let role_path = format!("/api/groups/{g}/role");

    for role in ["superadmin", "Admin", "", "owner"] {
        let (status, body) = node
            .call(
                Some(&owner),
                "POST",
                &role_path,
                Some(json!({"userId": bob.id, "role": role})),
            )
            .await;
        assert_eq!(
            (status, body["id"].as_str()),
            (400, Some("bad_role")),
            "role {role:?}: {body}"
        );
        assert!(body["message"].is_string(), "{body}");
    }
    // A role that is not a string is a mistyped field, like any other.
    let (status, body) = node
        .call(
            Some(&owner),
            "POST",
            &role_path,
            Some(json!({"userId": bob.id, "role": 1})),
        )
        .await;
    assert_eq!((status, body["id"].as_str()), (400, Some("BAD_REQUEST")));
    let (status, body) = node
        .call(
            Some(&owner),
            "POST",
            &role_path,
            Some(json!({"userId": bob.id, "role": "admin", "extra": 1})),
        )
        .await;
    assert_eq!((status, body["id"].as_str()), (400, Some("BAD_REQUEST")));
    let role_of_bob = |members: Value| {
        members
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["user"]["id"] == bob.id)
            .map(|m| m["role"].as_str().unwrap().to_owned())
    };
    let members_path = format!("/api/conversations/{g}/members");
    assert_eq!(
        role_of_bob(node.ok(&owner, "GET", &members_path, None).await).as_deref(),
        Some("member"),
        "nothing changed"
    );

    node.ok(
        &owner,
        "POST",
        &role_path,
        Some(json!({"userId": bob.id, "role": "admin"})),
    )
    .await;
    assert_eq!(
        role_of_bob(node.ok(&owner, "GET", &members_path, None).await).as_deref(),
        Some("admin")
    );

    node.stop().await;
    deployment.cleanup().await;
});
