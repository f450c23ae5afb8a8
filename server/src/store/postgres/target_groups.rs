//! Target groups and their members.

use super::{PgStore, ts};
use crate::account::OrgId;
use crate::store::target_groups::{DeleteGroup, MEMBER_COLUMNS, Renamed, TARGET_GROUP_COLUMNS};
use crate::store::{Clock, Result, StoreError, TargetGroupStore};
use crate::target_group::{FanOutRecord, MemberRecord, NewMember, TargetGroupRecord};
use async_trait::async_trait;
use chronos_proto::HttpMethod;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

pub(super) struct Sql {
    insert: String,
    get: String,
    list: String,
    rename: String,
    delete: String,
    add_member: String,
    members: String,
    remove_member: String,
}

impl Sql {
    pub(super) fn new(clock: &Clock) -> Self {
        // A member is the organization's through its group.
        let of_group = "group_id = (SELECT id FROM target_groups
                                    WHERE organization_id = $1 AND id = $2)";
        Sql {
            insert: clock.pg(format!(
                "INSERT INTO target_groups (id, organization_id, name, created_at, updated_at)
                 VALUES ($1, $2, $3, now(), now())
                 ON CONFLICT (organization_id, name) DO NOTHING
                 RETURNING {TARGET_GROUP_COLUMNS}"
            )),
            get: format!(
                "SELECT {TARGET_GROUP_COLUMNS} FROM target_groups
                 WHERE organization_id = $1 AND id = $2"
            ),
            list: format!(
                "SELECT {TARGET_GROUP_COLUMNS} FROM target_groups
                 WHERE organization_id = $1 ORDER BY created_at, id"
            ),
            rename: clock.pg(format!(
                "UPDATE target_groups SET name = $3, updated_at = now()
                 WHERE organization_id = $1 AND id = $2
                 RETURNING {TARGET_GROUP_COLUMNS}"
            )),
            // A queue naming the group keeps it (a queue changed meanwhile
            // breaks the foreign key instead).
            delete: "WITH named AS (SELECT name FROM queues
                                    WHERE organization_id = $1 AND default_target_group_id = $2
                                    ORDER BY name LIMIT 1),
                          gone AS (DELETE FROM target_groups
                                   WHERE organization_id = $1 AND id = $2
                                     AND NOT EXISTS (SELECT 1 FROM named)
                                   RETURNING id)
                     SELECT (SELECT name FROM named) AS named_by,
                            EXISTS (SELECT 1 FROM gone) AS deleted"
                .into(),
            add_member: clock.pg(format!(
                "INSERT INTO target_group_members
                     (id, group_id, target_url, method, headers, created_at)
                 SELECT $3, id, $4, $5, $6, now() FROM target_groups
                 WHERE organization_id = $1 AND id = $2
                 RETURNING {MEMBER_COLUMNS}"
            )),
            members: format!(
                "SELECT {MEMBER_COLUMNS} FROM target_group_members
                 WHERE {of_group} ORDER BY created_at, id"
            ),
            remove_member: format!("DELETE FROM target_group_members WHERE {of_group} AND id = $3"),
        }
    }
}

fn group_from_row(row: &Row) -> Result<TargetGroupRecord> {
    Ok(TargetGroupRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        created_at: ts(row.try_get("created_at")?),
        updated_at: ts(row.try_get("updated_at")?),
    })
}

pub(super) fn member_from_row(row: &Row) -> Result<MemberRecord> {
    let method: String = row.try_get("method")?;
    let headers: serde_json::Value = row.try_get("headers")?;
    Ok(MemberRecord {
        id: row.try_get("id")?,
        group_id: row.try_get("group_id")?,
        target_url: row.try_get("target_url")?,
        method: HttpMethod::parse(&method)
            .ok_or_else(|| StoreError::Corrupt(format!("member method {method:?}")))?,
        headers: serde_json::from_value(headers)
            .map_err(|e| StoreError::Corrupt(format!("member headers: {e}")))?,
        created_at: ts(row.try_get("created_at")?),
    })
}

#[async_trait]
impl TargetGroupStore for PgStore {
    async fn create_target_group(
        &self,
        org: OrgId,
        id: Uuid,
        name: &str,
    ) -> Result<Option<TargetGroupRecord>> {
        let client = self.pool.get().await?;
        let sql = &self.sql.target_groups;
        client
            .query_opt(&sql.insert, &[&id, &org.0, &name])
            .await?
            .as_ref()
            .map(group_from_row)
            .transpose()
    }

    async fn target_group(&self, org: OrgId, id: Uuid) -> Result<Option<TargetGroupRecord>> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&self.sql.target_groups.get).await?;
        client
            .query_opt(&stmt, &[&org.0, &id])
            .await?
            .as_ref()
            .map(group_from_row)
            .transpose()
    }

    async fn list_target_groups(&self, org: OrgId) -> Result<Vec<TargetGroupRecord>> {
        let client = self.pool.get().await?;
        client
            .query(&self.sql.target_groups.list, &[&org.0])
            .await?
            .iter()
            .map(group_from_row)
            .collect()
    }

    async fn rename_target_group(&self, org: OrgId, id: Uuid, name: &str) -> Result<Renamed> {
        let client = self.pool.get().await?;
        match client
            .query_opt(&self.sql.target_groups.rename, &[&org.0, &id, &name])
            .await
        {
            Ok(Some(row)) => Ok(Renamed::Done(group_from_row(&row)?)),
            Ok(None) => Ok(Renamed::NotFound),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(Renamed::NameTaken),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_target_group(&self, org: OrgId, id: Uuid) -> Result<DeleteGroup> {
        let client = self.pool.get().await?;
        let row = match client
            .query_one(&self.sql.target_groups.delete, &[&org.0, &id])
            .await
        {
            Ok(row) => row,
            Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
                return Ok(DeleteGroup::NamedByQueue(
                    "a queue changed meanwhile".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        Ok(match (row.try_get("named_by")?, row.try_get("deleted")?) {
            (_, true) => DeleteGroup::Deleted,
            (Some(queue), false) => DeleteGroup::NamedByQueue(queue),
            (None, false) => DeleteGroup::NotFound,
        })
    }

    async fn add_member(
        &self,
        org: OrgId,
        group: Uuid,
        member: &NewMember,
    ) -> Result<Option<MemberRecord>> {
        let client = self.pool.get().await?;
        let headers = serde_json::to_value(&member.headers)
            .map_err(|e| StoreError::Other(format!("member headers: {e}")))?;
        client
            .query_opt(
                &self.sql.target_groups.add_member,
                &[
                    &org.0,
                    &group,
                    &member.id,
                    &member.target_url,
                    &member.method.as_str(),
                    &headers,
                ],
            )
            .await?
            .as_ref()
            .map(member_from_row)
            .transpose()
    }

    async fn members(&self, org: OrgId, group: Uuid) -> Result<Option<Vec<MemberRecord>>> {
        let client = self.pool.get().await?;
        let sql = &self.sql.target_groups;
        // No rows: an empty group, or none at all.
        let rows = client.query(&sql.members, &[&org.0, &group]).await?;
        if rows.is_empty()
            && client
                .query_opt(&sql.get, &[&org.0, &group])
                .await?
                .is_none()
        {
            return Ok(None);
        }
        rows.iter()
            .map(member_from_row)
            .collect::<Result<_>>()
            .map(Some)
    }

    async fn fan_out(&self, org: OrgId, id: Uuid) -> Result<Option<FanOutRecord>> {
        super::fan_outs::get(self, org, id).await
    }

    async fn remove_member(&self, org: OrgId, group: Uuid, member: Uuid) -> Result<bool> {
        let client = self.pool.get().await?;
        let removed = client
            .execute(
                &self.sql.target_groups.remove_member,
                &[&org.0, &group, &member],
            )
            .await?;
        Ok(removed > 0)
    }
}
