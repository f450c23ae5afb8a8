//! The three request shapes `POST`, `PUT` and `PATCH /v1/schedules` accept,
//! named once: which one a body is, what it may not mix, and each one's
//! defaults. The answer is one shape whatever the request's
//! ([`chronos_proto::Schedule`]); Krafter's own routes answer in its shape
//! ([`super::super::krafter`]).
//!
//! Each product names three things its own way:
//!
//! | | Chronos (seed 000) | Krafter (seed 002) | CronPilot (seed 004) |
//! |---|---|---|---|
//! | timing | `interval` or `cron` | `schedule_type` + `schedule` | `cron` |
//! | timeout | `timeout` (seconds) | `timeout_ms` | — |
//! | retries | `max_retries` | `max_retries` | `retries` |
//!
//! The rule, in order:
//!
//! 1. a body with any of Krafter's own names (`schedule_type`, `schedule`,
//!    `timeout_ms`) is **Krafter**;
//! 2. else a body with `retries`, or with a `url` and no `handler`, is
//!    **CronPilot**;
//! 3. else it is **Chronos** (a `handler`).
//!
//! A body that names one thing in two dialects' words is refused (422
//! `validation_failed`, `field` naming the word that does not belong: the
//! document cannot state it, as each word alone is fine):
//! Krafter's names with `cron`, `interval`, `timeout` or `retries`; `retries`
//! with `max_retries`, or with a `handler`. Every other field means the same
//! in every dialect.

use super::super::error::ApiError;
use super::super::jobs::{DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_SECONDS};
use chronos_proto::CreateSchedule;

/// Which product's shape a schedule request is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// Seed 000: a `handler` with `interval` or `cron`.
    Chronos,
    /// Seed 002: `schedule_type` + `schedule`, a `url`, `timeout_ms`.
    Krafter,
    /// Seed 004: `cron`, a `url` with a `body`, `retries`.
    CronPilot,
}

/// What a dialect gives a field the request leaves out, where the
/// dialects differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Defaults {
    pub max_retries: u32,
    pub timeout_seconds: u32,
}

impl Dialect {
    /// Decides which dialect `req` is (see the module docs for the rule),
    /// or says which field mixes two of them.
    pub fn of(req: &CreateSchedule) -> Result<Dialect, ApiError> {
        let krafter = [
            ("schedule_type", req.schedule_type.is_some()),
            ("schedule", req.schedule.is_some()),
            ("timeout_ms", req.timeout_ms.is_some()),
        ];
        if let Some((marker, _)) = krafter.into_iter().find(|(_, given)| *given) {
            for (field, given, krafter_words) in [
                (
                    "cron",
                    req.cron.is_some(),
                    "schedule_type \"cron\" with the expression in schedule",
                ),
                (
                    "interval",
                    req.interval.is_some(),
                    "schedule_type \"interval\" with a preset in schedule",
                ),
                ("timeout", req.timeout.is_some(), "timeout_ms"),
                ("retries", req.retries.is_some(), "max_retries"),
            ] {
                if given {
                    return Err(ApiError::rule(
                        field,
                        format!(
                            "{field} mixes request shapes: {marker} is Krafter's, and Krafter says {field} as {krafter_words}"
                        ),
                    ));
                }
            }
            return Ok(Dialect::Krafter);
        }
        if req.retries.is_some() {
            if req.max_retries.is_some() {
                return Err(ApiError::rule(
                    "retries",
                    "give either max_retries or retries (CronPilot's name for it), not both",
                ));
            }
            if req.handler.is_some() {
                return Err(ApiError::rule(
                    "retries",
                    "retries mixes request shapes: it is CronPilot's, for a url schedule; a handler's schedule says max_retries",
                ));
            }
            return Ok(Dialect::CronPilot);
        }
        if req.url.is_some() && req.handler.is_none() {
            return Ok(Dialect::CronPilot);
        }
        Ok(Dialect::Chronos)
    }

    /// Seed 001 for Chronos (3 retries, 30 s); seed 002 for Krafter
    /// (`max_retries` 3, `timeout_ms` 30000); seed 004 for CronPilot
    /// (`retries` 0: fire and forget; it names no timeout, so Chronos' 30 s).
    pub fn defaults(self) -> Defaults {
        match self {
            Dialect::Chronos | Dialect::Krafter => Defaults {
                max_retries: DEFAULT_MAX_RETRIES,
                timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
            },
            Dialect::CronPilot => Defaults {
                max_retries: 0,
                timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronos_proto::{Delay, ScheduleType, TimeUnit};

    fn named() -> CreateSchedule {
        CreateSchedule {
            name: Some("n".into()),
            ..CreateSchedule::default()
        }
    }

    fn refused(req: &CreateSchedule) -> String {
        match Dialect::of(req) {
            Err(ApiError::Rule { field, .. }) => field,
            other => panic!("{req:?} → {other:?}"),
        }
    }

    #[test]
    fn each_seed_shape_is_its_dialect() {
        let chronos = CreateSchedule {
            handler: Some("hello".into()),
            interval: Some(Delay {
                value: 10,
                unit: TimeUnit::Minute,
            }),
            ..named()
        };
        assert_eq!(Dialect::of(&chronos).unwrap(), Dialect::Chronos);
        let krafter = CreateSchedule {
            schedule_type: Some(ScheduleType::Interval),
            schedule: Some("every_5m".into()),
            url: Some("https://example.com/api/health".into()),
            ..named()
        };
        assert_eq!(Dialect::of(&krafter).unwrap(), Dialect::Krafter);
        let cronpilot = CreateSchedule {
            cron: Some("0 */6 * * *".into()),
            url: Some("https://api.example.com/cleanup".into()),
            timezone: Some("America/New_York".into()),
            ..named()
        };
        assert_eq!(Dialect::of(&cronpilot).unwrap(), Dialect::CronPilot);
        // Any one of Krafter's names makes a body Krafter's.
        for req in [
            CreateSchedule {
                schedule: Some("every_1h".into()),
                handler: Some("h".into()),
                ..named()
            },
            CreateSchedule {
                timeout_ms: Some(1),
                ..named()
            },
        ] {
            assert_eq!(Dialect::of(&req).unwrap(), Dialect::Krafter);
        }
        // `retries` alone (a PATCH) is CronPilot's; no target is Chronos'.
        let retries = CreateSchedule {
            retries: Some(1),
            ..named()
        };
        assert_eq!(Dialect::of(&retries).unwrap(), Dialect::CronPilot);
        assert_eq!(Dialect::of(&named()).unwrap(), Dialect::Chronos);
    }

    #[test]
    fn one_thing_in_two_dialects_words_is_refused() {
        let krafter = CreateSchedule {
            schedule_type: Some(ScheduleType::Cron),
            schedule: Some("* * * * *".into()),
            url: Some("https://example.com".into()),
            ..named()
        };
        for (req, field) in [
            (
                CreateSchedule {
                    cron: Some("* * * * *".into()),
                    ..krafter.clone()
                },
                "cron",
            ),
            (
                CreateSchedule {
                    interval: Some(Delay {
                        value: 1,
                        unit: TimeUnit::Hour,
                    }),
                    ..krafter.clone()
                },
                "interval",
            ),
            (
                CreateSchedule {
                    timeout: Some(5),
                    ..krafter.clone()
                },
                "timeout",
            ),
            (
                CreateSchedule {
                    retries: Some(5),
                    ..krafter.clone()
                },
                "retries",
            ),
            (
                CreateSchedule {
                    retries: Some(1),
                    max_retries: Some(1),
                    url: Some("https://example.com".into()),
                    ..named()
                },
                "retries",
            ),
            (
                CreateSchedule {
                    retries: Some(1),
                    handler: Some("h".into()),
                    ..named()
                },
                "retries",
            ),
        ] {
            assert_eq!(refused(&req), field);
        }
    }

    #[test]
    fn defaults_differ_only_in_retries() {
        assert_eq!(Dialect::Chronos.defaults().max_retries, 3);
        assert_eq!(Dialect::Krafter.defaults().max_retries, 3);
        assert_eq!(Dialect::CronPilot.defaults().max_retries, 0);
        for d in [Dialect::Chronos, Dialect::Krafter, Dialect::CronPilot] {
            assert_eq!(d.defaults().timeout_seconds, 30);
        }
    }
}
