//! The daily re-check of verified domains: a domain proven once must stay
//! proven. Each pass takes the domains whose last check is a day old (a
//! store claim, so two servers don't both check one), checks their
//! challenges again and records what it found; one failing for a week
//! lapses ([`crate::store::domains::LAPSE_AFTER`]), and a lapsed one that
//! passes again is verified again.

use crate::push::verifier::Verifier;
use crate::store::DynStore;
use crate::store::domains::CheckResult;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the service looks for domains due a check.
const EVERY: Duration = Duration::from_secs(60);

/// The most domains one pass checks.
const BATCH: u32 = 20;

/// One pass: checks the domains due a check; how many it checked.
pub async fn pass(store: &DynStore, verifier: &Verifier) -> crate::store::Result<usize> {
    let due = store.claim_rechecks(BATCH).await?;
    let checks = due.iter().map(|(org, domain)| async move {
        let result = match verifier.check(&domain.domain, &domain.token).await {
            Ok(method) => CheckResult::Passed(method.as_str()),
            Err(failed) => CheckResult::Failed(failed.to_string()),
        };
        if let CheckResult::Failed(why) = &result {
            tracing::info!(domain = %domain.domain, reason = %why, "a verified domain failed its daily check");
        }
        store.record_check(*org, domain.id, &result).await
    });
    for recorded in futures_util::future::join_all(checks).await {
        recorded?;
    }
    Ok(due.len())
}

/// Runs [`pass`] every minute until `stop`.
pub async fn run(store: DynStore, verifier: Arc<Verifier>, mut stop: watch::Receiver<bool>) {
    loop {
        match pass(&store, &verifier).await {
            // A full batch: more may be due.
            Ok(n) if n == BATCH as usize => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "re-checking domains failed; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
    }
}
