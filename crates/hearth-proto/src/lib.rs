//! Hearth's wire types and nothing else.
//!
//! Everything a client and the server exchange is defined here, so the server, the load
//! generator and the tests agree on one definition:
//!
//! * [`room`] — the WebSocket frames of the public chat-room protocol, bit-for-bit compatible
//!   with the reference chat room (`{"type": …, "payload": …}` frames).
//! * [`native`] — the instant-messaging protocol: conversations with sequence numbers, acks,
//!   sync, receipts, typing, presence (frames on the same socket, and HTTP bodies).
//! * [`http`] — the JSON bodies of the account API.
//!
//! Decoding is strict: a missing, extra, repeated or mistyped key is an error, as in the
//! reference (repeated keys: [`strict`]). So is
//! any other shape serde's derives would let through: a struct written as an array of its
//! fields (`["ann@example.com", "pw"]`) or an enum as a map (`{"admin": null}`); the fuzz tests
//! (`tests/fuzz.rs`) check every decoder against a model of the documented schema.

pub mod http;
pub mod native;
pub mod room;
pub mod strict;

use serde::Deserialize;
use serde::de::{DeserializeOwned, Error as _};

/// Deserializes a struct from a JSON object only. serde's derive also reads a struct from an
/// array of its fields, in order, which the protocol does not allow.
pub(crate) fn object_only<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    let strict::StrictObject(object) = strict::StrictObject::deserialize(d)?;
    T::deserialize(serde_json::Value::Object(object)).map_err(D::Error::custom)
}
