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
//! Decoding is strict: a missing, extra or mistyped key is an error, as in the reference.

pub mod http;
pub mod native;
pub mod room;
