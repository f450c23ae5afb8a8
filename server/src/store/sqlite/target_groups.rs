//! Target groups and their members.

use super::{NOW, SqliteStore, ts, uuid};
use crate::account::OrgId;
use crate::store::target_groups::{DeleteGroup, MEMBER_COLUMNS, Renamed, TARGET_GROUP_COLUMNS};
use crate::store::{Clock, Result, StoreError, TargetGroupStore};
use crate::target_group::{FanOutRecord, MemberRecord, NewMember, TargetGroupRecord};
use async_trait::async_trait;
use chronos_proto::HttpMethod;
use rusqlite::{ErrorCode, OptionalExtension, Row, params};
use uuid::Uuid;

pub(super) struct Sql {
    insert: String,
    get: String,
    list: String,
    rename: String,
    delete: String,
    named_by: String,
    add_member: String,
    members: String,
    remove_member: String,
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        // A member is the organization's through its group.
        let of_group = "group_id = (SELECT id FROM target_groups
                                    WHERE organization_id = ?1 AND id = ?2)";
        Sql {
            insert: clock.sqlite(format!(
                "INSERT INTO target_groups (id, organization_id, name, created_at, updated_at)
                 VALUES (?1, ?2, ?3, {NOW}, {NOW})
                 ON CONFLICT (organization_id, name) DO NOTHING
                 RETURNING {TARGET_GROUP_COLUMNS}"
            )),
            get: format!(
                "SELECT {TARGET_GROUP_COLUMNS} FROM target_groups
                 WHERE organization_id = ?1 AND id = ?2"
            ),
            list: format!(
                "SELECT {TARGET_GROUP_COLUMNS} FROM target_groups
                 WHERE organization_id = ?1 ORDER BY created_at, id"
            ),
            rename: clock.sqlite(format!(
                "UPDATE target_groups SET name = ?3, updated_at = {NOW}
                 WHERE organization_id = ?1 AND id = ?2
                 RETURNING {TARGET_GROUP_COLUMNS}"
            )),
            delete: "DELETE FROM target_groups WHERE organization_id = ?1 AND id = ?2".into(),
            named_by: "SELECT name FROM queues
                       WHERE organization_id = ?1 AND default_target_group_id = ?2
                       ORDER BY name LIMIT 1"
                .into(),
            add_member: clock.sqlite(format!(
                "INSERT INTO target_group_members
                     (id, group_id, target_url, method, headers, created_at)
                 SELECT ?3, id, ?4, ?5, ?6, {NOW} FROM target_groups
                 WHERE organization_id = ?1 AND id = ?2
                 RETURNING {MEMBER_COLUMNS}"
            )),
            members: format!(
                "SELECT {MEMBER_COLUMNS} FROM target_group_members
                 WHERE {of_group} ORDER BY created_at, id"
            ),
            remove_member: format!("DELETE FROM target_group_members WHERE {of_group} AND id = ?3"),
        }
    }
}

fn group_from_row(row: &Row) -> Result<TargetGroupRecord> {
    Ok(TargetGroupRecord {
        id: uuid(row.get("id")?)?,
        name: row.get("name")?,
        created_at: ts(row.get("created_at")?)?,
        updated_at: ts(row.get("updated_at")?)?,
    })
}

pub(super) fn member_from_row(row: &Row) -> Result<MemberRecord> {
    let method: String = row.get("method")?;
    let headers: String = row.get("headers")?;
    Ok(MemberRecord {
        id: uuid(row.get("id")?)?,
        group_id: uuid(row.get("group_id")?)?,
        target_url: row.get("target_url")?,
        method: HttpMethod::parse(&method)
            .ok_or_else(|| StoreError::Corrupt(format!("member method {method:?}")))?,
        headers: serde_json::from_str(&headers)
            .map_err(|e| StoreError::Corrupt(format!("member headers: {e}")))?,
        created_at: ts(row.get("created_at")?)?,
    })
}

#[async_trait]
impl TargetGroupStore for SqliteStore {
    async fn create_target_group(
        &self,
        org: OrgId,
        id: Uuid,
        name: &str,
    ) -> Result<Option<TargetGroupRecord>> {
        let name = name.to_string();
        self.call(move |conn, sql| {
            conn.prepare_cached(&sql.target_groups.insert)?
                .query_row(params![id.to_string(), org.0.to_string(), name], |row| {
                    Ok(group_from_row(row))
                })
                .optional()?
                .transpose()
        })
        .await
    }

    async fn target_group(&self, org: OrgId, id: Uuid) -> Result<Option<TargetGroupRecord>> {
        self.call(move |conn, sql| {
            conn.prepare_cached(&sql.target_groups.get)?
                .query_row(params![org.0.to_string(), id.to_string()], |row| {
                    Ok(group_from_row(row))
                })
                .optional()?
                .transpose()
        })
        .await
    }

    async fn list_target_groups(&self, org: OrgId) -> Result<Vec<TargetGroupRecord>> {
        self.call(move |conn, sql| {
            let mut stmt = conn.prepare_cached(&sql.target_groups.list)?;
            let rows = stmt.query_map(params![org.0.to_string()], |row| Ok(group_from_row(row)))?;
            rows.map(|r| r?).collect()
        })
        .await
    }

    async fn rename_target_group(&self, org: OrgId, id: Uuid, name: &str) -> Result<Renamed> {
        let name = name.to_string();
        self.call(move |conn, sql| {
            let renamed = conn
                .prepare_cached(&sql.target_groups.rename)?
                .query_row(params![org.0.to_string(), id.to_string(), name], |row| {
                    Ok(group_from_row(row))
                })
                .optional();
            match renamed {
                Ok(Some(group)) => Ok(Renamed::Done(group?)),
                Ok(None) => Ok(Renamed::NotFound),
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == ErrorCode::ConstraintViolation =>
                {
                    Ok(Renamed::NameTaken)
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn delete_target_group(&self, org: OrgId, id: Uuid) -> Result<DeleteGroup> {
        self.call(move |conn, sql| {
            let ids = params![org.0.to_string(), id.to_string()];
            // One connection writes at a time: no queue can name the group
            // between the look and the delete.
            let named: Option<String> = conn
                .prepare_cached(&sql.target_groups.named_by)?
                .query_row(ids, |row| row.get(0))
                .optional()?;
            if let Some(queue) = named {
                return Ok(DeleteGroup::NamedByQueue(queue));
            }
            let deleted = conn
                .prepare_cached(&sql.target_groups.delete)?
                .execute(ids)?;
            Ok(match deleted {
                0 => DeleteGroup::NotFound,
                _ => DeleteGroup::Deleted,
            })
        })
        .await
    }

    async fn add_member(
        &self,
        org: OrgId,
        group: Uuid,
        member: &NewMember,
    ) -> Result<Option<MemberRecord>> {
        let member = member.clone();
        self.call(move |conn, sql| {
            let headers = serde_json::to_string(&member.headers)
                .map_err(|e| StoreError::Other(format!("member headers: {e}")))?;
            conn.prepare_cached(&sql.target_groups.add_member)?
                .query_row(
                    params![
                        org.0.to_string(),
                        group.to_string(),
                        member.id.to_string(),
                        member.target_url,
                        member.method.as_str(),
                        headers
                    ],
                    |row| Ok(member_from_row(row)),
                )
                .optional()?
                .transpose()
        })
        .await
    }

    async fn members(&self, org: OrgId, group: Uuid) -> Result<Option<Vec<MemberRecord>>> {
        self.call(move |conn, sql| {
            let sql = &sql.target_groups;
            let ids = params![org.0.to_string(), group.to_string()];
            let mut stmt = conn.prepare_cached(&sql.members)?;
            let members: Vec<MemberRecord> = stmt
                .query_map(ids, |row| Ok(member_from_row(row)))?
                .map(|r| r?)
                .collect::<Result<_>>()?;
            // No rows: an empty group, or none at all.
            if members.is_empty()
                && conn
                    .prepare_cached(&sql.get)?
                    .query_row(ids, |_| Ok(()))
                    .optional()?
                    .is_none()
            {
                return Ok(None);
            }
            Ok(Some(members))
        })
        .await
    }

    async fn fan_out(&self, org: OrgId, id: Uuid) -> Result<Option<FanOutRecord>> {
        self.call(move |conn, sql| super::fan_outs::get(conn, &sql.fan_outs, org, id))
            .await
    }

    async fn remove_member(&self, org: OrgId, group: Uuid, member: Uuid) -> Result<bool> {
        self.call(move |conn, sql| {
            let removed = conn
                .prepare_cached(&sql.target_groups.remove_member)?
                .execute(params![
                    org.0.to_string(),
                    group.to_string(),
                    member.to_string()
                ])?;
            Ok(removed > 0)
        })
        .await
    }
}
