//! How long a WebSocket worker may be silent before it is taken for gone.
//! Worker sessions enforce it on their connections; the sweeper ends the
//! attempts of a worker that has not come back within it, on any server
//! process.

use std::time::Duration;

/// How often a worker must say something.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);

/// Silence for this long, and the connection is taken for dead; a worker
/// gone this long (and not back) loses its leases.
pub const WORKER_GRACE: Duration = Duration::from_secs(15);
