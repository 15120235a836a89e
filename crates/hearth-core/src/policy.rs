//! Instant-messaging policies and bounds, configurable under `[im]`.

use serde::{Deserialize, Serialize};

/// Who may open a direct conversation with whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectPolicy {
    /// Only friends (the default).
    Friends,
    /// Any two users who have not blocked each other.
    Anyone,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    pub direct_messages: DirectPolicy,
    /// How long after sending a message its sender may recall it.
    pub recall_window_secs: u64,
    /// Most members a group may have.
    pub group_member_limit: usize,
    /// Longest friend-request or join-request note, in characters.
    pub max_note_chars: usize,
    /// Longest group name, in characters.
    pub max_group_name_chars: usize,
    /// Most messages per pull, and inbox events per sync.
    pub max_page: usize,
    /// The largest group whose members' devices report what they received ("delivered"
    /// ticks): in a bigger one every message would cost a write and a broadcast per member.
    pub delivery_receipts_max_members: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            direct_messages: DirectPolicy::Friends,
            recall_window_secs: 120,
            group_member_limit: 2_000,
            max_note_chars: 200,
            max_group_name_chars: 100,
            max_page: 200,
            delivery_receipts_max_members: 32,
        }
    }
}
