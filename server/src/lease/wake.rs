//! Wake-ups for waiting polls: one [`Notify`] per (organization, handler),
//! and one for push delivery. Whoever queues a job wakes its key; on
//! PostgreSQL, other server processes hear of it through LISTEN/NOTIFY.

use crate::account::OrgId;
use crate::store::WakeKey;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

#[derive(Default)]
pub struct Wakers {
    pull: Mutex<HashMap<(OrgId, String), Arc<Notify>>>,
    push: Arc<Notify>,
}

impl Wakers {
    /// The notifier a poll for `handler` waits on.
    pub fn pull(&self, org: OrgId, handler: &str) -> Arc<Notify> {
        let mut map = self.pull.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((org, handler.to_string()))
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone()
    }

    /// The notifier push delivery waits on.
    pub fn push(&self) -> Arc<Notify> {
        self.push.clone()
    }

    /// Wakes everyone waiting for `key`.
    pub fn wake(&self, key: &WakeKey) {
        match key {
            WakeKey::Push => self.push.notify_waiters(),
            WakeKey::Pull(org, handler) => {
                let map = self.pull.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(n) = map.get(&(*org, handler.clone())) {
                    n.notify_waiters();
                }
            }
        }
    }

    /// Wakes every waiting poll, so each looks at the store again: after
    /// notifications may have been missed.
    pub fn wake_all(&self) {
        let map = self.pull.lock().unwrap_or_else(|p| p.into_inner());
        for n in map.values() {
            n.notify_waiters();
        }
        self.push.notify_waiters();
    }

    /// Forgets notifiers nobody waits on (only the map holds them).
    pub fn prune(&self) {
        let mut map = self.pull.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, n| Arc::strong_count(n) > 1);
    }
}
