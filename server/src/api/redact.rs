//! Push headers at the API's edge. Answers show a sensitive header's value
//! as `***redacted***` (the rule is [`chronos_proto::headers`]); the store
//! keeps, and push delivery sends, the real one.
//!
//! Each wire type holding headers becomes an answer in one place, which
//! redacts them: a job in [`job`], a message in [`super::messages`], a
//! schedule in [`super::schedules`], Krafter's cron job in
//! [`super::krafter`]. No request may store `***redacted***` as a
//! sensitive header's value ([`refuse_redacted`]): it would be sent as is.

use super::error::ApiError;
use chronos_proto::headers::{REDACTED, is_sensitive, redacted};
use chronos_proto::{Delivery, HttpTarget, Job};
use std::collections::BTreeMap;

/// A job as every answer shows it.
pub(crate) fn job(job: Job) -> Job {
    Job {
        delivery: delivery(&job.delivery),
        ..job
    }
}

/// A delivery as answers show it: a push target's headers redacted.
pub(crate) fn delivery(delivery: &Delivery) -> Delivery {
    match delivery {
        Delivery::Pull => Delivery::Pull,
        Delivery::Push {
            http,
            signing_secret_id,
        } => Delivery::Push {
            http: HttpTarget {
                url: http.url.clone(),
                method: http.method,
                headers: redacted(&http.headers),
            },
            signing_secret_id: *signing_secret_id,
        },
    }
}

/// Refuses `***redacted***` as a sensitive header's value (422, `field`
/// `{prefix}headers.{name}`): it is what answers show, not a credential. A
/// change to a schedule has given such a header its stored value back
/// before this runs, so what is left here has nothing stored to keep.
pub(crate) fn refuse_redacted(
    prefix: &str,
    headers: &BTreeMap<String, String>,
) -> Result<(), ApiError> {
    match headers
        .iter()
        .find(|(name, value)| *value == REDACTED && is_sensitive(name))
    {
        Some((name, _)) => Err(ApiError::rule(
            &format!("{prefix}headers.{name}"),
            format!(
                "the value {REDACTED} can't be stored for the header {name}: answers show it in place of a sensitive header's value; send the real value (a change to a schedule may send {REDACTED} back for a header the schedule has, to keep its value)"
            ),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronos_proto::HttpMethod;

    fn headers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_push_delivery_shows_its_credentials_redacted() {
        let push = Delivery::Push {
            http: HttpTarget {
                url: "https://x.test/h".into(),
                method: HttpMethod::Put,
                headers: headers(&[("Authorization", "Bearer s"), ("X-Tenant", "a")]),
            },
            signing_secret_id: Some(uuid::Uuid::nil()),
        };
        let Delivery::Push {
            http,
            signing_secret_id,
        } = delivery(&push)
        else {
            panic!("still push");
        };
        assert_eq!(
            http.headers,
            headers(&[("Authorization", REDACTED), ("X-Tenant", "a")])
        );
        assert_eq!(
            (http.url.as_str(), http.method),
            ("https://x.test/h", HttpMethod::Put)
        );
        assert_eq!(signing_secret_id, Some(uuid::Uuid::nil()));
        assert_eq!(delivery(&Delivery::Pull), Delivery::Pull);
    }

    #[test]
    fn only_a_sensitive_header_may_not_be_redacted() {
        let refused = refuse_redacted("delivery.http.", &headers(&[("x-auth-TOKEN", REDACTED)]));
        match refused {
            Err(ApiError::Rule { field, message }) => {
                assert_eq!(field, "delivery.http.headers.x-auth-TOKEN");
                assert!(message.contains("can't be stored"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // A harmless header is sent as given, whatever its value.
        refuse_redacted(
            "",
            &headers(&[("X-Note", REDACTED), ("Authorization", "b")]),
        )
        .unwrap();
    }
}
