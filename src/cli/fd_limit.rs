//! Raises the open-file limit at start-up: every Docker host holds an event stream and a
//! connection pool, so thousands of hosts need thousands of descriptors, more than the usual
//! soft limit of 1024.

/// Descriptors wanted per configured host (event stream, requests in flight), plus a base for
/// Raft, the API, Git and probes.
const PER_HOST: u64 = 4;
const BASE: u64 = 1024;

/// What raising the limit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Raised {
    /// The soft limit was already at least what is needed.
    Enough { soft: u64 },
    /// Raised from `from` to `to`.
    Raised { from: u64, to: u64 },
    /// Still below what `hosts` need: the hard limit (or the call) does not allow more.
    Short { soft: u64, needed: u64, why: String },
}

/// The descriptors `hosts` Docker hosts need.
pub fn needed(hosts: usize) -> u64 {
    BASE + PER_HOST * hosts as u64
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (more is never allowed unprivileged).
pub fn raise(hosts: usize) -> Raised {
    let needed = needed(hosts);
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct passed; no other memory is touched.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Raised::Short {
            soft: 0,
            needed,
            why: std::io::Error::last_os_error().to_string(),
        };
    }
    let from = lim.rlim_cur;
    if from >= lim.rlim_max {
        return if from >= needed {
            Raised::Enough { soft: from }
        } else {
            Raised::Short {
                soft: from,
                needed,
                why: format!("the hard limit is {}", lim.rlim_max),
            }
        };
    }
    let want = libc::rlimit {
        rlim_cur: lim.rlim_max,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: setrlimit only reads the struct passed.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } != 0 {
        let why = std::io::Error::last_os_error().to_string();
        return if from >= needed {
            Raised::Enough { soft: from }
        } else {
            Raised::Short {
                soft: from,
                needed,
                why,
            }
        };
    }
    if lim.rlim_max < needed {
        return Raised::Short {
            soft: lim.rlim_max,
            needed,
            why: format!("the hard limit is {}", lim.rlim_max),
        };
    }
    Raised::Raised {
        from,
        to: lim.rlim_max,
    }
}

/// Raises the limit and says what happened in the log.
pub fn raise_and_say(hosts: usize) {
    match raise(hosts) {
        Raised::Enough { soft } => tracing::debug!(limit = soft, "open files limit"),
        Raised::Raised { from, to } => {
            tracing::info!(from, to, "open files limit raised for the Docker hosts' event streams")
        }
        Raised::Short { soft, needed, why } => tracing::warn!(
            limit = soft,
            needed,
            "open files limit cannot be raised enough for {hosts} Docker hosts ({why}): some hosts may become Unknown; raise it (ulimit -n, LimitNOFILE=)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_leaves_at_least_the_old_soft_limit() {
        let r = raise(1);
        match r {
            Raised::Enough { soft } => assert!(soft >= needed(1)),
            Raised::Raised { from, to } => assert!(to >= from),
            Raised::Short { needed: n, .. } => assert_eq!(n, needed(1)),
        }
    }
}
