//! Who is here and what they share: connections, people, rooms, what was said lately, the
//! deadline queues and the flood buckets. Decides; renders nothing.

pub(crate) mod asks;
pub(crate) mod connection;
pub(crate) mod flood;
pub(crate) mod members;
pub(crate) mod moderation;
pub(crate) mod monitor;
pub(crate) mod names;
pub(crate) mod nickname;
pub(crate) mod past;
pub(crate) mod person;
pub(crate) mod pool;
pub(crate) mod rooms;
pub(crate) mod roster;
