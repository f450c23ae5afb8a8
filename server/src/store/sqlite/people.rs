//! Users, memberships, sessions and invites.

use super::accounts::org_from_row;
use super::{NOW, SqliteStore, corrupt, now_minus, now_plus, opt_ts, opt_uuid, ts, uuid};
use crate::account::people::{
    Accepted, Acceptor, Belonging, INVITE_TTL, InviteRecord, MemberChange, MemberRecord, NewInvite,
    NewSession, NewUser, SESSION_ABSOLUTE, SessionRecord, UserRecord, email_key,
};
use crate::account::{OrgId, USE_RECORDED_EVERY};
use crate::store::people::{INVITE_COLUMNS, USER_COLUMNS};
use crate::store::{Clock, PeopleStore, Result};
use async_trait::async_trait;
use chronos_proto::Role;
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::time::Duration;
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
    member: String,
    has_owner: String,
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
        let pending = format!("accepted_at IS NULL AND revoked_at IS NULL AND expires_at > {NOW}");
        let rank_of = |col: &str| {
            format!(
                "CASE {col} WHEN 'viewer' THEN 0 WHEN 'member' THEN 1 WHEN 'admin' THEN 2 ELSE 3 END"
            )
        };
        Sql {
            insert_user: clock.sqlite(format!(
                "INSERT INTO users AS u (id, email, email_key, name, password_hash, created_at, \
                 password_changed_at) VALUES (?1, ?2, ?3, ?4, ?5, {NOW}, {NOW}) \
                 ON CONFLICT (email_key) DO NOTHING RETURNING {cols}",
                cols = USER_COLUMNS.replace("u.", ""),
            )),
            user: format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?1"),
            user_by_email: format!("SELECT {USER_COLUMNS} FROM users u WHERE u.email_key = ?1"),
            set_password: clock.sqlite(format!(
                "UPDATE users SET password_hash = ?2, password_changed_at = {NOW} WHERE id = ?1"
            )),
            end_other_sessions: "DELETE FROM sessions WHERE user_id = ?1 AND token_sha256 <> ?2"
                .into(),
            add_member: clock.sqlite(format!(
                "INSERT INTO memberships (organization_id, user_id, role, created_at) \
                 VALUES (?1, ?2, ?3, {NOW}) \
                 ON CONFLICT (organization_id, user_id) DO UPDATE SET role = excluded.role \
                 WHERE {current} < {new}",
                current = rank_of("memberships.role"),
                new = rank_of("excluded.role"),
            )),
            membership: "SELECT role FROM memberships WHERE organization_id = ?1 AND user_id = ?2"
                .into(),
            belongings: "SELECT o.id, o.slug, o.name, o.created_at, o.plan, m.role \
                 FROM memberships m JOIN organizations o ON o.id = m.organization_id \
                 WHERE m.user_id = ?1 ORDER BY o.slug"
                .into(),
            members: format!(
                "SELECT {member_columns} FROM memberships m JOIN users u ON u.id = m.user_id \
                 WHERE m.organization_id = ?1 ORDER BY m.created_at, u.email_key"
            ),
            member: format!(
                "SELECT {member_columns} FROM memberships m JOIN users u ON u.id = m.user_id \
                 WHERE m.organization_id = ?1 AND m.user_id = ?2"
            ),
            has_owner: "SELECT EXISTS (SELECT 1 FROM memberships \
                 WHERE organization_id = ?1 AND role = 'owner')"
                .into(),
            member_role: "SELECT role, (SELECT count(*) FROM memberships \
                 WHERE organization_id = ?1 AND role = 'owner') AS owners \
                 FROM memberships WHERE organization_id = ?1 AND user_id = ?2"
                .into(),
            set_role:
                "UPDATE memberships SET role = ?3 WHERE organization_id = ?1 AND user_id = ?2"
                    .into(),
            remove_member: "DELETE FROM memberships WHERE organization_id = ?1 AND user_id = ?2"
                .into(),
            insert_session: clock.sqlite(format!(
                "INSERT INTO sessions (token_sha256, user_id, csrf_token, created_at, \
                     last_seen_at, expires_at) \
                 VALUES (?1, ?2, ?3, {NOW}, {NOW}, {end})",
                end = now_plus(SESSION_ABSOLUTE),
            )),
            end_expired_sessions: clock.sqlite(format!(
                "DELETE FROM sessions WHERE user_id = ?1 AND expires_at <= {NOW}"
            )),
            session: clock.sqlite(format!(
                "SELECT s.token_sha256, s.csrf_token, s.expires_at, \
                     s.last_seen_at < {touch} AS stale, {USER_COLUMNS} \
                 FROM sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.token_sha256 = ?1 AND s.expires_at > {NOW} \
                   AND s.last_seen_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?2)",
                touch = now_minus(USE_RECORDED_EVERY),
            )),
            touch_session: clock.sqlite(format!(
                "UPDATE sessions SET last_seen_at = {NOW} WHERE token_sha256 = ?1"
            )),
            delete_session: "DELETE FROM sessions WHERE token_sha256 = ?1".into(),
            insert_invite: clock.sqlite(format!(
                "INSERT INTO invites (id, organization_id, email, email_key, role, token_sha256, \
                     invited_by, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, {NOW}, {end}) \
                 RETURNING {INVITE_COLUMNS}",
                end = now_plus(INVITE_TTL),
            )),
            invites: format!(
                "SELECT {INVITE_COLUMNS} FROM invites WHERE organization_id = ?1 \
                 ORDER BY created_at DESC, rowid DESC"
            ),
            invite: format!(
                "SELECT {INVITE_COLUMNS} FROM invites WHERE organization_id = ?1 AND id = ?2"
            ),
            revoke_invite: clock.sqlite(format!(
                "UPDATE invites SET revoked_at = COALESCE(revoked_at, {NOW}) \
                 WHERE organization_id = ?1 AND id = ?2 AND accepted_at IS NULL \
                 RETURNING {INVITE_COLUMNS}"
            )),
            renew_invite: clock.sqlite(format!(
                "UPDATE invites SET token_sha256 = ?3, expires_at = {end} \
                 WHERE organization_id = ?1 AND id = ?2 \
                   AND accepted_at IS NULL AND revoked_at IS NULL \
                 RETURNING {INVITE_COLUMNS}",
                end = now_plus(INVITE_TTL),
            )),
            pending_invite: clock.sqlite(format!(
                "SELECT {INVITE_COLUMNS} FROM invites WHERE token_sha256 = ?1 AND {pending}"
            )),
            accept_invite: clock.sqlite(format!(
                "UPDATE invites SET accepted_at = {NOW} WHERE token_sha256 = ?1 AND {pending} \
                 RETURNING {INVITE_COLUMNS}"
            )),
        }
    }
}

fn role(row: &Row, col: &str) -> Result<Role> {
    let text: String = row.get(col)?;
    Role::parse(&text).ok_or_else(|| corrupt("role", &text))
}

fn user_from_row(row: &Row) -> Result<UserRecord> {
    Ok(UserRecord {
        id: uuid(row.get("id")?)?,
        email: row.get("email")?,
        name: row.get("name")?,
        password_hash: row.get("password_hash")?,
        created_at: ts(row.get("created_at")?)?,
    })
}

fn member_from_row(row: &Row) -> Result<MemberRecord> {
    Ok(MemberRecord {
        user_id: uuid(row.get("user_id")?)?,
        email: row.get("email")?,
        name: row.get("name")?,
        role: role(row, "role")?,
        joined_at: ts(row.get("joined_at")?)?,
    })
}

fn session_from_row(row: &Row) -> Result<SessionRecord> {
    Ok(SessionRecord {
        token_sha256: row.get("token_sha256")?,
        csrf_token: row.get("csrf_token")?,
        expires_at: ts(row.get("expires_at")?)?,
        stale: row.get("stale")?,
        user: user_from_row(row)?,
    })
}

fn invite_from_row(row: &Row) -> Result<InviteRecord> {
    Ok(InviteRecord {
        id: uuid(row.get("id")?)?,
        organization_id: OrgId(uuid(row.get("organization_id")?)?),
        email: row.get("email")?,
        role: role(row, "role")?,
        invited_by: opt_uuid(row.get("invited_by")?)?,
        created_at: ts(row.get("created_at")?)?,
        expires_at: ts(row.get("expires_at")?)?,
        accepted_at: opt_ts(row.get("accepted_at")?)?,
        revoked_at: opt_ts(row.get("revoked_at")?)?,
    })
}

fn insert_user(conn: &Connection, sql: &Sql, user: &NewUser) -> Result<Option<UserRecord>> {
    conn.query_row(
        &sql.insert_user,
        params![
            user.id.to_string(),
            user.email.trim(),
            email_key(&user.email),
            user.name,
            user.password_hash
        ],
        |row| Ok(user_from_row(row)),
    )
    .optional()?
    .transpose()
}

fn query_user(conn: &Connection, sql: &str, key: String) -> Result<Option<UserRecord>> {
    conn.query_row(sql, params![key], |row| Ok(user_from_row(row)))
        .optional()?
        .transpose()
}

fn read_session(
    conn: &Connection,
    sql: &Sql,
    token: &[u8],
    idle: Duration,
) -> Result<Option<SessionRecord>> {
    conn.prepare_cached(&sql.session)?
        .query_row(
            params![token, format!("-{:.3} seconds", idle.as_secs_f64())],
            |row| Ok(session_from_row(row)),
        )
        .optional()?
        .transpose()
}

fn membership(conn: &Connection, sql: &Sql, org: OrgId, user: Uuid) -> Result<Option<Role>> {
    conn.query_row(
        &sql.membership,
        params![org.0.to_string(), user.to_string()],
        |row| Ok(role(row, "role")),
    )
    .optional()?
    .transpose()
}

impl SqliteStore {
    /// Changes one member, unless that leaves the organization without an
    /// owner (SQLite serializes writers: the count can't move meanwhile).
    async fn change_member(
        &self,
        org: OrgId,
        user: Uuid,
        new_role: Option<Role>,
    ) -> Result<MemberChange> {
        self.call(move |conn, sql| {
            let tx = conn.transaction()?;
            let sql = &sql.people;
            let (org_s, user_s) = (org.0.to_string(), user.to_string());
            let Some((current, owners)) = tx
                .query_row(&sql.member_role, params![org_s, user_s], |row| {
                    Ok((role(row, "role"), row.get::<_, i64>("owners")?))
                })
                .optional()?
            else {
                return Ok(MemberChange::NotFound);
            };
            if current? == Role::Owner && owners <= 1 && new_role != Some(Role::Owner) {
                return Ok(MemberChange::LastOwner);
            }
            let changed = match new_role {
                Some(r) => {
                    tx.execute(&sql.set_role, params![org_s, user_s, r.as_str()])?;
                    let mut stmt = tx.prepare(&sql.member)?;
                    let member =
                        stmt.query_row(params![org_s, user_s], |row| Ok(member_from_row(row)))??;
                    drop(stmt);
                    Some(member)
                }
                None => {
                    tx.execute(&sql.remove_member, params![org_s, user_s])?;
                    None
                }
            };
            tx.commit()?;
            Ok(MemberChange::Done(changed))
        })
        .await
    }
}

#[async_trait]
impl PeopleStore for SqliteStore {
    async fn create_user(&self, user: NewUser) -> Result<Option<UserRecord>> {
        self.call(move |conn, sql| insert_user(conn, &sql.people, &user))
            .await
    }

    async fn user(&self, id: Uuid) -> Result<Option<UserRecord>> {
        self.call(move |conn, sql| query_user(conn, &sql.people.user, id.to_string()))
            .await
    }

    async fn user_by_email(&self, key: &str) -> Result<Option<UserRecord>> {
        let key = key.to_string();
        self.call(move |conn, sql| query_user(conn, &sql.people.user_by_email, key))
            .await
    }

    async fn set_password(&self, user: Uuid, hash: &str, keep_session: &[u8]) -> Result<()> {
        let (hash, keep) = (hash.to_string(), keep_session.to_vec());
        self.call(move |conn, sql| {
            let tx = conn.transaction()?;
            tx.execute(&sql.people.set_password, params![user.to_string(), hash])?;
            tx.execute(
                &sql.people.end_other_sessions,
                params![user.to_string(), keep],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn add_membership(&self, org: OrgId, user: Uuid, role: Role) -> Result<()> {
        self.call(move |conn, sql| {
            conn.execute(
                &sql.people.add_member,
                params![org.0.to_string(), user.to_string(), role.as_str()],
            )?;
            Ok(())
        })
        .await
    }

    async fn membership(&self, org: OrgId, user: Uuid) -> Result<Option<Role>> {
        self.call(move |conn, sql| membership(conn, &sql.people, org, user))
            .await
    }

    async fn belongings(&self, user: Uuid) -> Result<Vec<Belonging>> {
        self.call(move |conn, sql| {
            let mut stmt = conn.prepare_cached(&sql.people.belongings)?;
            let rows = stmt.query_map(params![user.to_string()], |row| {
                Ok((|| {
                    Ok(Belonging {
                        organization: org_from_row(row)?,
                        role: role(row, "role")?,
                    })
                })())
            })?;
            rows.map(|r| r?).collect()
        })
        .await
    }

    async fn memberships(&self, org: OrgId) -> Result<Vec<MemberRecord>> {
        self.call(move |conn, sql| {
            let mut stmt = conn.prepare(&sql.people.members)?;
            let rows =
                stmt.query_map(params![org.0.to_string()], |row| Ok(member_from_row(row)))?;
            rows.map(|r| r?).collect()
        })
        .await
    }

    async fn has_owner(&self, org: OrgId) -> Result<bool> {
        self.call(move |conn, sql| {
            Ok(
                conn.query_row(&sql.people.has_owner, params![org.0.to_string()], |row| {
                    row.get(0)
                })?,
            )
        })
        .await
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
        self.call(move |conn, sql| {
            let tx = conn.transaction()?;
            let sql = &sql.people;
            tx.execute(
                &sql.end_expired_sessions,
                params![session.user_id.to_string()],
            )?;
            tx.execute(
                &sql.insert_session,
                params![
                    session.token_sha256,
                    session.user_id.to_string(),
                    session.csrf_token
                ],
            )?;
            let created = read_session(&tx, sql, &session.token_sha256, Duration::from_secs(60))?
                .ok_or_else(|| corrupt("session", "not found after insert"))?;
            tx.commit()?;
            Ok(created)
        })
        .await
    }

    async fn session(&self, token_sha256: &[u8], idle: Duration) -> Result<Option<SessionRecord>> {
        let token = token_sha256.to_vec();
        self.call(move |conn, sql| read_session(conn, &sql.people, &token, idle))
            .await
    }

    async fn touch_session(&self, token_sha256: &[u8]) -> Result<()> {
        let token = token_sha256.to_vec();
        self.call(move |conn, sql| {
            conn.prepare_cached(&sql.people.touch_session)?
                .execute(params![token])?;
            Ok(())
        })
        .await
    }

    async fn delete_session(&self, token_sha256: &[u8]) -> Result<()> {
        let token = token_sha256.to_vec();
        self.call(move |conn, sql| {
            conn.execute(&sql.people.delete_session, params![token])?;
            Ok(())
        })
        .await
    }

    async fn create_invite(&self, invite: NewInvite) -> Result<InviteRecord> {
        self.call(move |conn, sql| {
            conn.query_row(
                &sql.people.insert_invite,
                params![
                    invite.id.to_string(),
                    invite.organization_id.0.to_string(),
                    invite.email.trim(),
                    email_key(&invite.email),
                    invite.role.as_str(),
                    invite.token_sha256,
                    invite.invited_by.map(|u| u.to_string()),
                ],
                |row| Ok(invite_from_row(row)),
            )?
        })
        .await
    }

    async fn invites(&self, org: OrgId) -> Result<Vec<InviteRecord>> {
        self.call(move |conn, sql| {
            let mut stmt = conn.prepare(&sql.people.invites)?;
            let rows =
                stmt.query_map(params![org.0.to_string()], |row| Ok(invite_from_row(row)))?;
            rows.map(|r| r?).collect()
        })
        .await
    }

    async fn invite(&self, org: OrgId, id: Uuid) -> Result<Option<InviteRecord>> {
        self.call(move |conn, sql| {
            conn.query_row(
                &sql.people.invite,
                params![org.0.to_string(), id.to_string()],
                |row| Ok(invite_from_row(row)),
            )
            .optional()?
            .transpose()
        })
        .await
    }

    async fn revoke_invite(&self, org: OrgId, id: Uuid) -> Result<Option<InviteRecord>> {
        self.call(move |conn, sql| {
            conn.query_row(
                &sql.people.revoke_invite,
                params![org.0.to_string(), id.to_string()],
                |row| Ok(invite_from_row(row)),
            )
            .optional()?
            .transpose()
        })
        .await
    }

    async fn renew_invite(
        &self,
        org: OrgId,
        id: Uuid,
        token_sha256: &[u8],
    ) -> Result<Option<InviteRecord>> {
        let token = token_sha256.to_vec();
        self.call(move |conn, sql| {
            conn.query_row(
                &sql.people.renew_invite,
                params![org.0.to_string(), id.to_string(), token],
                |row| Ok(invite_from_row(row)),
            )
            .optional()?
            .transpose()
        })
        .await
    }

    async fn pending_invite(&self, token_sha256: &[u8]) -> Result<Option<InviteRecord>> {
        let token = token_sha256.to_vec();
        self.call(move |conn, sql| {
            conn.query_row(&sql.people.pending_invite, params![token], |row| {
                Ok(invite_from_row(row))
            })
            .optional()?
            .transpose()
        })
        .await
    }

    async fn accept_invite(&self, token_sha256: &[u8], who: Acceptor) -> Result<Accepted> {
        let token = token_sha256.to_vec();
        self.call(move |conn, sqls| {
            let tx = conn.transaction()?;
            let sql = &sqls.people;
            let Some(invite) = tx
                .query_row(&sql.accept_invite, params![token], |row| {
                    Ok(invite_from_row(row))
                })
                .optional()?
                .transpose()?
            else {
                return Ok(Accepted::Invalid);
            };
            let user = match who {
                Acceptor::New(new) => match insert_user(&tx, sql, &new)? {
                    Some(user) => user,
                    None => return Ok(Accepted::EmailTaken),
                },
                Acceptor::Existing(id) => match query_user(&tx, &sql.user, id.to_string())? {
                    Some(user) => user,
                    None => return Ok(Accepted::Invalid),
                },
            };
            let org_s = invite.organization_id.0.to_string();
            tx.execute(
                &sql.add_member,
                params![org_s, user.id.to_string(), invite.role.as_str()],
            )?;
            let organization =
                tx.query_row(&sqls.accounts.organization, params![org_s], |row| {
                    Ok(org_from_row(row))
                })??;
            let role =
                membership(&tx, sql, invite.organization_id, user.id)?.unwrap_or(invite.role);
            tx.commit()?;
            Ok(Accepted::Joined {
                user,
                organization: Box::new(organization),
                role,
            })
        })
        .await
    }
}
