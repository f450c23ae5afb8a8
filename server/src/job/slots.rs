//! How one lease statement serves several takers (polls and worker
//! sessions) at once: the jobs it picks, best first, are dealt round-robin
//! over the takers' free slots.

/// One taker's share of a batched lease: up to `max` jobs, to run as
/// `worker_id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Taker {
    pub worker_id: Option<String>,
    pub max: u32,
}

/// The most jobs one lease statement takes.
pub const MAX_LEASE_BATCH: usize = 1000;

/// For each job a batched lease takes, in order, the index of the taker
/// who gets it: round-robin over those with room, so that when there are
/// fewer jobs than free slots they spread over the workers instead of
/// filling the first one. At most `limit` slots.
pub fn lease_slots(takers: &[Taker], limit: usize) -> Vec<usize> {
    let mut left: Vec<u32> = takers.iter().map(|t| t.max).collect();
    let mut slots = Vec::new();
    while slots.len() < limit && left.iter().any(|&l| l > 0) {
        for (i, l) in left.iter_mut().enumerate() {
            if *l > 0 && slots.len() < limit {
                *l -= 1;
                slots.push(i);
            }
        }
    }
    slots
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taker(max: u32) -> Taker {
        Taker {
            worker_id: None,
            max,
        }
    }

    #[test]
    fn slots_go_round_robin_within_the_limit() {
        assert_eq!(
            lease_slots(&[taker(2), taker(1), taker(3)], 10),
            vec![0, 1, 2, 0, 2, 2]
        );
        assert_eq!(lease_slots(&[taker(2), taker(2)], 3), vec![0, 1, 0]);
        assert!(lease_slots(&[taker(0)], 10).is_empty());
    }
}
