//! Joins, one kind a file, as Kafka Streams has them: `stream_stream` (two streams within
//! [`JoinWindows`], over a window store a side, `window_join` its processors and
//! `outer_store` what a left or outer join holds back until its window closes),
//! `stream_table` (a stream's records with a table's current values) and `table_table`
//! (two tables into one, each change of either re-joined) and `foreign_key` (a table's rows
//! with the rows of another their foreign keys name).

mod foreign_key;
mod join_windows;
mod outer_store;
mod stream_stream;
mod stream_table;
mod table_table;
mod window_join;

pub use foreign_key::TableJoined;
pub use join_windows::JoinWindows;
pub use stream_stream::StreamJoined;
pub use stream_table::Joined;
