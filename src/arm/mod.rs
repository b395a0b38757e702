//! The ARM side shared by the client and the local cloud. For now only resource ids, which
//! both sides parse with the same code (the one thing, with the role table, they share).

pub mod id;
