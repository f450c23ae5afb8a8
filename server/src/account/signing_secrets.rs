//! Signing secrets: the keys push requests are signed with. Rotating one
//! keeps the previous value signing for a window, so receivers can move to
//! the new one without dropping requests.

use chronos_proto::Timestamp;
use uuid::Uuid;

/// A signing secret as stored: its value, and the previous one while it
/// still signs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningSecretRecord {
    pub id: Uuid,
    pub name: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub rotated_at: Option<Timestamp>,
}

impl SigningSecretRecord {
    /// As listed: never the values.
    pub fn to_wire(&self) -> chronos_proto::SigningSecret {
        chronos_proto::SigningSecret {
            id: self.id,
            name: self.name.clone(),
            created_at: self.created_at,
            rotated_at: self.rotated_at,
            previous_expires_at: self.previous_expires_at.filter(|t| *t > Timestamp::now()),
        }
    }

    /// The values that sign a request at `now`: the current one, and the
    /// previous one within its window.
    pub fn signing_values(&self, now: Timestamp) -> Vec<&str> {
        let mut values = vec![self.secret.as_str()];
        if let (Some(previous), Some(until)) = (&self.previous_secret, self.previous_expires_at)
            && until > now
        {
            values.push(previous);
        }
        values
    }
}
