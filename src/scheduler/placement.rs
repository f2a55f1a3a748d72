//! Where a model goes: whether a model that is not loaded can load now (after
//! unloading which idle models), must wait for busy ones to finish, or can never fit.
//!
//! Victims are taken least recently used first, idle models before busy ones; a busy
//! model (one with leases: running or about to run requests) is never unloaded, only
//! drained: it takes no new requests until it is idle and then goes.

use std::time::Instant;

/// A loaded model, as placement sees it.
#[derive(Clone, Debug)]
pub struct Placed {
    pub id: u64,
    /// Its memory estimate, in bytes.
    pub bytes: u64,
    /// No request holds it.
    pub idle: bool,
    pub last_used: Instant,
}

/// What to do for a model that needs loading.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Unload these idle models (maybe none), then load.
    Load { evict: Vec<u64> },
    /// Wait until these busy models are idle (they take no new requests meanwhile).
    Wait { drain: Vec<u64> },
    /// It cannot fit even with nothing else loaded.
    Refuse { need: u64, capacity: u64 },
}

/// Plans the load of a model needing `need` bytes beside `loaded`, with at most
/// `max_loaded` models and `capacity` bytes for all of them together.
pub fn plan(loaded: &[Placed], need: u64, max_loaded: usize, capacity: u64) -> Plan {
    if need > capacity {
        return Plan::Refuse { need, capacity };
    }
    let mut order: Vec<&Placed> = loaded.iter().collect();
    order.sort_by_key(|p| (!p.idle, p.last_used));
    let mut kept: u64 = loaded.iter().map(|p| p.bytes).sum();
    let mut count = loaded.len();
    let fits = |kept: u64, count: usize| count < max_loaded.max(1) && kept + need <= capacity;
    let mut victims = Vec::new();
    for p in order {
        if fits(kept, count) {
            break;
        }
        victims.push(p);
        kept -= p.bytes;
        count -= 1;
    }
    if victims.iter().all(|p| p.idle) {
        Plan::Load {
            evict: victims.iter().map(|p| p.id).collect(),
        }
    } else {
        Plan::Wait {
            drain: victims.iter().filter(|p| !p.idle).map(|p| p.id).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(t0: Instant, secs: u64) -> Instant {
        t0 + Duration::from_secs(secs)
    }

    fn placed(id: u64, bytes: u64, idle: bool, last_used: Instant) -> Placed {
        Placed {
            id,
            bytes,
            idle,
            last_used,
        }
    }

    #[test]
    fn loads_beside_others_when_it_fits() {
        let t0 = Instant::now();
        let l = [placed(1, 100, true, t0)];
        assert_eq!(plan(&l, 100, 3, 1000), Plan::Load { evict: vec![] });
        assert_eq!(plan(&[], 1000, 3, 1000), Plan::Load { evict: vec![] });
    }

    #[test]
    fn count_limit_evicts_least_recently_used_idle_first() {
        let t0 = Instant::now();
        let l = [
            placed(1, 10, true, at(t0, 5)),
            placed(2, 10, true, at(t0, 1)),
            placed(3, 10, false, at(t0, 0)),
        ];
        // Three loaded, a limit of three: one goes, the idle one used longest ago.
        assert_eq!(plan(&l, 10, 3, 1000), Plan::Load { evict: vec![2] });
        // A limit of two: two go, both idle, oldest first.
        assert_eq!(plan(&l, 10, 2, 1000), Plan::Load { evict: vec![2, 1] });
        // A limit of one: the busy one must drain too.
        assert_eq!(plan(&l, 10, 1, 1000), Plan::Wait { drain: vec![3] });
    }

    #[test]
    fn memory_evicts_as_many_as_needed() {
        let t0 = Instant::now();
        let l = [
            placed(1, 400, true, at(t0, 1)),
            placed(2, 300, true, at(t0, 0)),
            placed(3, 200, true, at(t0, 2)),
        ];
        // 900 loaded of 1000: 300 needed frees model 2 (oldest), enough.
        assert_eq!(plan(&l, 300, 8, 1000), Plan::Load { evict: vec![2] });
        // 500 needed: 2 then 1.
        assert_eq!(plan(&l, 500, 8, 1000), Plan::Load { evict: vec![2, 1] });
    }

    #[test]
    fn busy_models_are_drained_never_evicted() {
        let t0 = Instant::now();
        let l = [placed(1, 600, false, t0), placed(2, 300, true, at(t0, 9))];
        assert_eq!(plan(&l, 500, 8, 1000), Plan::Wait { drain: vec![1] });
        // Freeing the idle one is enough: no waiting.
        assert_eq!(plan(&l, 300, 8, 1000), Plan::Load { evict: vec![2] });
    }

    #[test]
    fn too_large_is_refused_at_once() {
        let t0 = Instant::now();
        let l = [placed(1, 10, false, t0)];
        assert_eq!(
            plan(&l, 1001, 8, 1000),
            Plan::Refuse {
                need: 1001,
                capacity: 1000
            }
        );
    }
}
