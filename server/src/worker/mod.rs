//! Long-lived workers over WebSocket: one [`session`] per connection, a way
//! into the lease engine like the HTTP endpoints, never a second state
//! machine.

pub mod polls;
pub mod session;
