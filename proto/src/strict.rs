//! Which way a type travels decides how it treats fields it does not know.
//!
//! - What a client sends (request bodies, worker frames) refuses them:
//!   `#[serde(deny_unknown_fields)]`, so a misspelt option is a 400 naming
//!   it rather than silently ignored.
//! - What the server sends (answers, server frames) ignores them, so that a
//!   newer server may add a field without breaking SDKs already shipped.
//!
//! A few objects travel both ways: [`Delay`] (a job's `delay`, a schedule's
//! `interval`), [`Delivery`] and the [`HttpTarget`] inside it. As types they
//! ignore unknown fields (they are in answers); the requests holding them
//! read them through the functions here, which refuse unknown fields at
//! every depth and keep serde's error messages and field paths.

use crate::job::{DeliveryFields, DeliveryKind};
use crate::{Delay, Delivery, HttpMethod, HttpTarget, TimeUnit};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use uuid::Uuid;

/// A request's [`Delay`], refusing unknown fields.
pub(crate) fn delay<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Delay>, D::Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Strict {
        value: u64,
        unit: TimeUnit,
    }
    Ok(Option::<Strict>::deserialize(d)?.map(|s| Delay {
        value: s.value,
        unit: s.unit,
    }))
}

/// A request's [`Delivery`], refusing unknown fields (its `http` too).
pub(crate) fn delivery<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Delivery>, D::Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Target {
        url: String,
        #[serde(default)]
        method: HttpMethod,
        #[serde(default)]
        headers: BTreeMap<String, String>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Fields {
        #[serde(rename = "type")]
        kind: DeliveryKind,
        http: Option<Target>,
        signing_secret_id: Option<Uuid>,
    }
    let Some(f) = Option::<Fields>::deserialize(d)? else {
        return Ok(None);
    };
    let fields = DeliveryFields {
        kind: f.kind,
        http: f.http.map(|t| HttpTarget {
            url: t.url,
            method: t.method,
            headers: t.headers,
        }),
        signing_secret_id: f.signing_secret_id,
    };
    Delivery::try_from(fields)
        .map(Some)
        .map_err(D::Error::custom)
}

#[cfg(test)]
mod tests {
    use crate::List;
    use crate::vectors::known;
    use crate::worker::{ServerMessage, WorkerMessage};
    use crate::{
        CreateJob, CreateMember, CreateMessage, CreateSchedule, CreateTargetGroup, ErrorBody,
        Execution, Job, LeasedJob,
    };
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use serde_json::Value;

    fn vectors() -> Value {
        serde_json::from_str(include_str!("../vectors/forward.json")).unwrap()
    }

    /// Reads `v` as `T` and checks that it kept every known field.
    fn reads_as<T: DeserializeOwned + Serialize>(v: &Value) {
        let read: T = serde_json::from_value(v.clone())
            .unwrap_or_else(|e| panic!("{} refused: {e}: {v}", std::any::type_name::<T>()));
        assert_eq!(serde_json::to_value(&read).unwrap(), known(v));
    }

    #[test]
    fn what_the_server_sends_is_read_whatever_it_adds() {
        let v = vectors();
        let frames = v["frames"].as_array().unwrap();
        assert!(frames.iter().any(|f| f["type"] == "job"));
        for frame in frames {
            reads_as::<ServerMessage>(frame);
        }
        let answers = &v["answers"];
        reads_as::<Job>(&answers["job"]);
        reads_as::<Job>(&answers["push_job"]);
        reads_as::<List<Job>>(&answers["jobs"]);
        reads_as::<List<LeasedJob>>(&answers["leased"]);
        reads_as::<List<Execution>>(&answers["executions"]);
        reads_as::<ErrorBody>(&answers["error"]);
        // A kind of frame this version does not know is not a ServerMessage
        // (the SDKs' workers skip it).
        for frame in v["unknown_frames"].as_array().unwrap() {
            assert!(serde_json::from_value::<ServerMessage>(frame.clone()).is_err());
        }
    }

    #[test]
    fn what_clients_send_is_refused_with_an_unknown_field() {
        let v = vectors();
        for r in v["requests"].as_array().unwrap() {
            let body = r["body"].clone();
            let err = match r["path"].as_str().unwrap() {
                "/v1/jobs" => serde_json::from_value::<CreateJob>(body).err(),
                "/v1/schedules" => serde_json::from_value::<CreateSchedule>(body).err(),
                "/v1/messages" => serde_json::from_value::<CreateMessage>(body).err(),
                "/v1/target-groups" => serde_json::from_value::<CreateTargetGroup>(body).err(),
                p if p.starts_with("/v1/target-groups/") && p.ends_with("/members") => {
                    serde_json::from_value::<CreateMember>(body).err()
                }
                other => panic!("no request type for {other}"),
            };
            let err = err.unwrap_or_else(|| panic!("accepted: {r}"));
            assert!(
                err.to_string().contains("unknown field `added_later`"),
                "{r}: {err}"
            );
        }
        for frame in v["worker_frames"].as_array().unwrap() {
            let err = serde_json::from_value::<WorkerMessage>(frame.clone()).unwrap_err();
            assert!(err.to_string().contains("added_later"), "{frame}: {err}");
        }
    }
}
