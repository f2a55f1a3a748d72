//! What memory the process may still use: the kernel's `MemAvailable`, lowered to the
//! room left under a cgroup (v2 or v1) limit when one is set; and [`capacity`], what
//! hearth's loaded models may take in all, which the scheduler plans against.

use std::fs;

fn read_u64(path: &str) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `MemAvailable` from /proc/meminfo, in bytes.
fn mem_available() -> Option<u64> {
    let text = fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Room under the cgroup's memory limit, if the process is in a limited cgroup.
fn cgroup_room() -> Option<u64> {
    // v2: the process's own cgroup directory, else the root of the mount.
    let own = fs::read_to_string("/proc/self/cgroup").ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("0::").map(|p| p.trim().to_string()))
    });
    let mut dirs = Vec::new();
    if let Some(p) = own {
        dirs.push(format!("/sys/fs/cgroup{p}"));
    }
    dirs.push("/sys/fs/cgroup".to_string());
    for d in dirs {
        let max = fs::read_to_string(format!("{d}/memory.max")).ok();
        if let Some(max) = max {
            let max = max.trim();
            if max == "max" {
                return None;
            }
            let limit: u64 = max.parse().ok()?;
            let used = read_u64(&format!("{d}/memory.current")).unwrap_or(0);
            return Some(limit.saturating_sub(used));
        }
    }
    // v1
    let limit = read_u64("/sys/fs/cgroup/memory/memory.limit_in_bytes")?;
    if limit >= 1 << 60 {
        return None;
    }
    let used = read_u64("/sys/fs/cgroup/memory/memory.usage_in_bytes").unwrap_or(0);
    Some(limit.saturating_sub(used))
}

/// Bytes the process may still allocate (`u64::MAX` when nothing can be read), at
/// most `HEARTH_MAX_MEMORY`.
pub fn available() -> u64 {
    let a = mem_available().unwrap_or(u64::MAX);
    let a = match cgroup_room() {
        Some(c) => a.min(c),
        None => a,
    };
    a.min(crate::config::max_memory().unwrap_or(u64::MAX))
}

/// Kept free for everything else on the machine (and hearth's own heap).
pub const MARGIN: u64 = 512 << 20;

/// The process's resident anonymous and file-backed bytes (`RssAnon`, `RssFile`).
fn own_rss() -> (u64, u64) {
    let Ok(text) = fs::read_to_string("/proc/self/status") else {
        return (0, 0);
    };
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    (field("RssAnon:"), field("RssFile:"))
}

/// What hearth's loaded models may take in all (weights, caches and buffers), less
/// [`MARGIN`], at most `HEARTH_MAX_MEMORY`:
/// - `MemAvailable` already counts the page cache holding the mapped weights as
///   available (it is reclaimable), but not hearth's anonymous memory (caches, buffers),
///   so that is added back;
/// - a cgroup's usage counts both, so both are added back to its room.
///
/// The result is what hearth could hold if every model were unloaded: the scheduler
/// compares the sum of its models' estimates, the new one's included, against it.
pub fn capacity() -> u64 {
    let (anon, file) = own_rss();
    let sys = mem_available().map_or(u64::MAX, |a| a.saturating_add(anon));
    let cg = cgroup_room().map_or(u64::MAX, |r| r.saturating_add(anon + file));
    let c = sys.min(cg).saturating_sub(MARGIN);
    c.min(crate::config::max_memory().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_something_on_linux() {
        let a = super::available();
        assert!(a > 1 << 20, "{a}");
        assert!(super::capacity() > 1 << 20);
    }
}
