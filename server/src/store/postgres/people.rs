//! Users, memberships, sessions and invites.

use super::accounts::org_from_row;
use super::{PgStore, interval, opt_ts, ts};
use crate::account::people::{
    Accepted, Acceptor, Belonging, INVITE_TTL, InviteRecord, MemberChange, MemberRecord, NewInvite,
    NewSession, NewUser, SESSION_ABSOLUTE, SessionRecord, UserRecord, email_key,
};
use crate::account::{OrgId, USE_RECORDED_EVERY};
use crate::store::people::{INVITE_COLUMNS, USER_COLUMNS};
use crate::store::{Clock, PeopleStore, Result, StoreError};
use async_trait::async_trait;
use chronos_proto::Role;
use deadpool_postgres::GenericClient;
use std::time::Duration;
use tokio_postgres::Row;
use uuid::Uuid;

pub(super) struct Sql {
    insert_user: String,
    user: String,
    user_by_email: String,
    set_password: String,
    end_other_sessions: String,
    add_member: String,
    membership: String,
    belongings: String,
    members: String,
    has_owner: String,
    lock_org: String,
    member_role: String,
    set_role: String,
    remove_member: String,
    insert_session: String,
    end_expired_sessions: String,
    session: String,
    touch_session: String,
    delete_session: String,
    insert_invite: String,
    invites: String,
    invite: String,
    revoke_invite: String,
    renew_invite: String,
    pending_invite: String,
    accept_invite: String,
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        let member_columns = "m.user_id, u.email, u.name, m.role, m.created_at AS joined_at";
        let pending = "accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()";
        Sql {
            insert_user: clock.pg(format!(
                "INSERT INTO users AS u (id, email, email_key, name, password_hash, created_at, \
                 password_changed_at) VALUES ($1, $2, $3, $4, $5, now(), now()) \
                 ON CONFLICT (email_key) DO NOTHING RETURNING {USER_COLUMNS}"
            )),
            user: format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1"),
            user_by_email: format!("SELECT {USER_COLUMNS} FROM users u WHERE u.email_key = $1"),
            set_password: clock.pg(
                "UPDATE users SET password_hash = $2, password_changed_at = now() WHERE id = $1"
                    .into(),
            ),
            end_other_sessions: "DELETE FROM sessions WHERE user_id = $1 AND token_sha256 <> $2"
                .into(),
            add_member: clock.pg(
                "INSERT INTO memberships (organization_id, user_id, role, created_at) \
                 VALUES ($1, $2, $3, now()) \
                 ON CONFLICT (organization_id, user_id) DO UPDATE SET role = EXCLUDED.role \
                 WHERE array_position(ARRAY['viewer', 'member', 'admin', 'owner'], memberships.role) \
                     < array_position(ARRAY['viewer', 'member', 'admin', 'owner'], EXCLUDED.role)"
                    .into(),
            ),
            membership: "SELECT role FROM memberships WHERE organization_id = $1 AND user_id = $2"
                .into(),
            belongings: "SELECT o.id, o.slug, o.name, o.created_at, o.plan, m.role \
                 FROM memberships m JOIN organizations o ON o.id = m.organization_id \
                 WHERE m.user_id = $1 ORDER BY o.slug"
                .into(),
            members: format!(
                "SELECT {member_columns} FROM memberships m JOIN users u ON u.id = m.user_id \
                 WHERE m.organization_id = $1 ORDER BY m.created_at, u.email_key"
            ),
            has_owner: "SELECT EXISTS (SELECT 1 FROM memberships \
                 WHERE organization_id = $1 AND role = 'owner')"
                .into(),
            // Changes of members are serialized per organization, so two
            // owners demoting each other can't both succeed.
            lock_org: "SELECT 1 FROM organizations WHERE id = $1 FOR UPDATE".into(),
            member_role: "SELECT role, (SELECT count(*) FROM memberships \
                 WHERE organization_id = $1 AND role = 'owner') AS owners \
                 FROM memberships WHERE organization_id = $1 AND user_id = $2"
                .into(),
            set_role: format!(
                "WITH m AS (UPDATE memberships SET role = $3 \
                     WHERE organization_id = $1 AND user_id = $2 RETURNING *) \
                 SELECT {member_columns} FROM m JOIN users u ON u.id = m.user_id"
            ),
            remove_member: "DELETE FROM memberships WHERE organization_id = $1 AND user_id = $2"
                .into(),
            insert_session: clock.pg(format!(
                "WITH s AS (
                     INSERT INTO sessions (token_sha256, user_id, csrf_token, created_at, \
                         last_seen_at, expires_at)
                     VALUES ($1, $2, $3, now(), now(), now() + {absolute}) RETURNING *
                 )
                 SELECT s.token_sha256, s.csrf_token, s.expires_at, false AS stale, {USER_COLUMNS}
                 FROM s JOIN users u ON u.id = s.user_id",
                absolute = interval(SESSION_ABSOLUTE),
            )),
            end_expired_sessions: clock
                .pg("DELETE FROM sessions WHERE user_id = $1 AND expires_at <= now()".into()),
            session: clock.pg(format!(
                "SELECT s.token_sha256, s.csrf_token, s.expires_at, \
                     s.last_seen_at < now() - {touch} AS stale, {USER_COLUMNS} \
                 FROM sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.token_sha256 = $1 AND s.expires_at > now() \
                   AND s.last_seen_at > now() - make_interval(secs => $2)",
                touch = interval(USE_RECORDED_EVERY),
            )),
            touch_session: clock
                .pg("UPDATE sessions SET last_seen_at = now() WHERE token_sha256 = $1".into()),
            delete_session: "DELETE FROM sessions WHERE token_sha256 = $1".into(),
            insert_invite: clock.pg(format!(
                "INSERT INTO invites (id, organization_id, email, email_key, role, token_sha256, \
                     invited_by, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, now(), now() + {ttl}) \
                 RETURNING {INVITE_COLUMNS}",
                ttl = interval(INVITE_TTL),
            )),
            invites: format!(
                "SELECT {INVITE_COLUMNS} FROM invites WHERE organization_id = $1 \
                 ORDER BY created_at DESC, id DESC"
            ),
            invite: format!(
                "SELECT {INVITE_COLUMNS} FROM invites WHERE organization_id = $1 AND id = $2"
            ),
            revoke_invite: clock.pg(format!(
                "UPDATE invites SET revoked_at = COALESCE(revoked_at, now()) \
                 WHERE organization_id = $1 AND id = $2 AND accepted_at IS NULL \
                 RETURNING {INVITE_COLUMNS}"
            )),
            renew_invite: clock.pg(format!(
                "UPDATE invites SET token_sha256 = $3, expires_at = now() + {ttl} \
                 WHERE organization_id = $1 AND id = $2 \
                   AND accepted_at IS NULL AND revoked_at IS NULL \
                 RETURNING {INVITE_COLUMNS}",
                ttl = interval(INVITE_TTL),
            )),
            pending_invite: clock.pg(format!(
                "SELECT {INVITE_COLUMNS} FROM invites WHERE token_sha256 = $1 AND {pending}"
            )),
            accept_invite: clock.pg(format!(
                "UPDATE invites SET accepted_at = now() WHERE token_sha256 = $1 AND {pending} \
                 RETURNING {INVITE_COLUMNS}"
            )),
        }
    }
}

fn role(row: &Row, col: &str) -> Result<Role> {
    let text: String = row.try_get(col)?;
    Role::parse(&text).ok_or_else(|| StoreError::Corrupt(format!("role {text:?}")))
}

fn user_from_row(row: &Row) -> Result<UserRecord> {
    Ok(UserRecord {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        password_hash: row.try_get("password_hash")?,
        created_at: ts(row.try_get("created_at")?),
    })
}

fn member_from_row(row: &Row) -> Result<MemberRecord> {
    Ok(MemberRecord {
        user_id: row.try_get("user_id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        role: role(row, "role")?,
        joined_at: ts(row.try_get("joined_at")?),
    })
}

fn session_from_row(row: &Row) -> Result<SessionRecord> {
    Ok(SessionRecord {
        token_sha256: row.try_get("token_sha256")?,
        csrf_token: row.try_get("csrf_token")?,
        expires_at: ts(row.try_get("expires_at")?),
        stale: row.try_get("stale")?,
        user: user_from_row(row)?,
    })
}

fn invite_from_row(row: &Row) -> Result<InviteRecord> {
    Ok(InviteRecord {
        id: row.try_get("id")?,
        organization_id: OrgId(row.try_get("organization_id")?),
        email: row.try_get("email")?,
        role: role(row, "role")?,
        invited_by: row.try_get("invited_by")?,
        created_at: ts(row.try_get("created_at")?),
        expires_at: ts(row.try_get("expires_at")?),
        accepted_at: opt_ts(row, "accepted_at")?,
        revoked_at: opt_ts(row, "revoked_at")?,
    })
}

async fn insert_user(
    client: &impl GenericClient,
    sql: &Sql,
    user: &NewUser,
) -> Result<Option<UserRecord>> {
    client
        .query_opt(
            &sql.insert_user,
            &[
                &user.id,
                &user.email.trim(),
                &email_key(&user.email),
                &user.name,
                &user.password_hash,
            ],
        )
        .await?
        .as_ref()
        .map(user_from_row)
        .transpose()
}

impl PgStore {
    /// Changes one member under the organization's lock: `change` runs
    /// unless it would leave the organization without an owner.
    async fn change_member(
        &self,
        org: OrgId,
        user: Uuid,
        new_role: Option<Role>,
    ) -> Result<MemberChange> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let sql = &self.sql.people;
        tx.execute(&sql.lock_org, &[&org.0]).await?;
        let Some(row) = tx.query_opt(&sql.member_role, &[&org.0, &user]).await? else {
            return Ok(MemberChange::NotFound);
        };
        let owners: i64 = row.try_get("owners")?;
        if role(&row, "role")? == Role::Owner && owners <= 1 && new_role != Some(Role::Owner) {
            return Ok(MemberChange::LastOwner);
        }
        let changed = match new_role {
            Some(r) => Some(member_from_row(
                &tx.query_one(&sql.set_role, &[&org.0, &user, &r.as_str()])
                    .await?,
            )?),
            None => {
                tx.execute(&sql.remove_member, &[&org.0, &user]).await?;
                None
            }
        };
        tx.commit().await?;
        Ok(MemberChange::Done(changed))
    }
}

#[async_trait]
impl PeopleStore for PgStore {
    async fn create_user(&self, user: NewUser) -> Result<Option<UserRecord>> {
        let client = self.pool.get().await?;
        insert_user(&client, &self.sql.people, &user).await
    }

    async fn user(&self, id: Uuid) -> Result<Option<UserRecord>> {
        let client = self.pool.get().await?;
        client
            .query_opt(&self.sql.people.user, &[&id])
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn user_by_email(&self, key: &str) -> Result<Option<UserRecord>> {
        let client = self.pool.get().await?;
        client
            .query_opt(&self.sql.people.user_by_email, &[&key])
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn set_password(&self, user: Uuid, hash: &str, keep_session: &[u8]) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(&self.sql.people.set_password, &[&user, &hash])
            .await?;
        tx.execute(&self.sql.people.end_other_sessions, &[&user, &keep_session])
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn add_membership(&self, org: OrgId, user: Uuid, role: Role) -> Result<()> {
        let client = self.pool.get().await?;
        client
            .execute(
                &self.sql.people.add_member,
                &[&org.0, &user, &role.as_str()],
            )
            .await?;
        Ok(())
    }

    async fn membership(&self, org: OrgId, user: Uuid) -> Result<Option<Role>> {
        let client = self.pool.get().await?;
        client
            .query_opt(&self.sql.people.membership, &[&org.0, &user])
            .await?
            .map(|row| role(&row, "role"))
            .transpose()
    }

    async fn belongings(&self, user: Uuid) -> Result<Vec<Belonging>> {
        let client = self.pool.get().await?;
        client
            .query(&self.sql.people.belongings, &[&user])
            .await?
            .iter()
            .map(|row| {
                Ok(Belonging {
                    organization: org_from_row(row)?,
                    role: role(row, "role")?,
                })
            })
            .collect()
    }

    async fn memberships(&self, org: OrgId) -> Result<Vec<MemberRecord>> {
        let client = self.pool.get().await?;
        client
            .query(&self.sql.people.members, &[&org.0])
            .await?
            .iter()
            .map(member_from_row)
            .collect()
    }

    async fn has_owner(&self, org: OrgId) -> Result<bool> {
        let client = self.pool.get().await?;
        Ok(client
            .query_one(&self.sql.people.has_owner, &[&org.0])
            .await?
            .try_get(0)?)
    }

    async fn set_membership_role(
        &self,
        org: OrgId,
        user: Uuid,
        role: Role,
    ) -> Result<MemberChange> {
        self.change_member(org, user, Some(role)).await
    }

    async fn remove_membership(&self, org: OrgId, user: Uuid) -> Result<MemberChange> {
        self.change_member(org, user, None).await
    }

    async fn create_session(&self, session: NewSession) -> Result<SessionRecord> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(&self.sql.people.end_expired_sessions, &[&session.user_id])
            .await?;
        let row = tx
            .query_one(
                &self.sql.people.insert_session,
                &[&session.token_sha256, &session.user_id, &session.csrf_token],
            )
            .await?;
        tx.commit().await?;
        session_from_row(&row)
    }

    async fn session(&self, token_sha256: &[u8], idle: Duration) -> Result<Option<SessionRecord>> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&self.sql.people.session).await?;
        client
            .query_opt(&stmt, &[&token_sha256, &idle.as_secs_f64()])
            .await?
            .as_ref()
            .map(session_from_row)
            .transpose()
    }

    async fn touch_session(&self, token_sha256: &[u8]) -> Result<()> {
        let client = self.pool.get().await?;
        client
            .execute(&self.sql.people.touch_session, &[&token_sha256])
            .await?;
        Ok(())
    }

    async fn delete_session(&self, token_sha256: &[u8]) -> Result<()> {
        let client = self.pool.get().await?;
        client
            .execute(&self.sql.people.delete_session, &[&token_sha256])
            .await?;
        Ok(())
    }

    async fn create_invite(&self, invite: NewInvite) -> Result<InviteRecord> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                &self.sql.people.insert_invite,
                &[
                    &invite.id,
                    &invite.organization_id.0,
                    &invite.email.trim(),
                    &email_key(&invite.email),
                    &invite.role.as_str(),
                    &invite.token_sha256,
                    &invite.invited_by,
                ],
            )
            .await?;
        invite_from_row(&row)
    }

    async fn invites(&self, org: OrgId) -> Result<Vec<InviteRecord>> {
        let client = self.pool.get().await?;
        client
            .query(&self.sql.people.invites, &[&org.0])
            .await?
            .iter()
            .map(invite_from_row)
            .collect()
    }

    async fn invite(&self, org: OrgId, id: Uuid) -> Result<Option<InviteRecord>> {
        let client = self.pool.get().await?;
        client
            .query_opt(&self.sql.people.invite, &[&org.0, &id])
            .await?
            .as_ref()
            .map(invite_from_row)
            .transpose()
    }

    async fn revoke_invite(&self, org: OrgId, id: Uuid) -> Result<Option<InviteRecord>> {
        let client = self.pool.get().await?;
        client
            .query_opt(&self.sql.people.revoke_invite, &[&org.0, &id])
            .await?
            .as_ref()
            .map(invite_from_row)
            .transpose()
    }

    async fn renew_invite(
        &self,
        org: OrgId,
        id: Uuid,
        token_sha256: &[u8],
    ) -> Result<Option<InviteRecord>> {
        let client = self.pool.get().await?;
        client
            .query_opt(&self.sql.people.renew_invite, &[&org.0, &id, &token_sha256])
            .await?
            .as_ref()
            .map(invite_from_row)
            .transpose()
    }

    async fn pending_invite(&self, token_sha256: &[u8]) -> Result<Option<InviteRecord>> {
        let client = self.pool.get().await?;
        client
            .query_opt(&self.sql.people.pending_invite, &[&token_sha256])
            .await?
            .as_ref()
            .map(invite_from_row)
            .transpose()
    }

    async fn accept_invite(&self, token_sha256: &[u8], who: Acceptor) -> Result<Accepted> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let sql = &self.sql.people;
        let Some(row) = tx.query_opt(&sql.accept_invite, &[&token_sha256]).await? else {
            return Ok(Accepted::Invalid);
        };
        let invite = invite_from_row(&row)?;
        let user = match who {
            Acceptor::New(new) => match insert_user(&tx, sql, &new).await? {
                Some(user) => user,
                None => return Ok(Accepted::EmailTaken),
            },
            Acceptor::Existing(id) => match tx.query_opt(&sql.user, &[&id]).await? {
                Some(row) => user_from_row(&row)?,
                None => return Ok(Accepted::Invalid),
            },
        };
        tx.execute(
            &sql.add_member,
            &[&invite.organization_id.0, &user.id, &invite.role.as_str()],
        )
        .await?;
        let org = tx
            .query_one(
                self.sql.accounts.organization_sql(),
                &[&invite.organization_id.0],
            )
            .await?;
        let organization = org_from_row(&org)?;
        let role = match tx
            .query_opt(&sql.membership, &[&invite.organization_id.0, &user.id])
            .await?
        {
            Some(row) => role(&row, "role")?,
            None => invite.role,
        };
        tx.commit().await?;
        Ok(Accepted::Joined {
            user,
            organization: Box::new(organization),
            role,
        })
    }
}
