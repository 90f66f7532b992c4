//! What the operating system lets one process hold: every simulated device is a connection, and
//! with the embedded broker the broker's end of it is in this process too. A fleet that cannot
//! fit is refused at start with what to do, instead of failing on accept halfway through.

/// Files the process keeps beyond the connections (listeners, the journal, standard streams).
const SPARE: u64 = 64;

/// Open files `devices` connections take, with the embedded broker's ends when it is in this
/// process.
pub fn open_files_needed(devices: usize, embedded_broker: bool) -> u64 {
    let per_device = if embedded_broker { 2 } else { 1 };
    (devices as u64).saturating_mul(per_device) + SPARE
}

/// Whether `devices` fit under `limit` open files; the error says what to do.
pub fn check_open_files(devices: usize, embedded_broker: bool, limit: u64) -> Result<(), String> {
    let needed = open_files_needed(devices, embedded_broker);
    if needed <= limit {
        return Ok(());
    }
    let hint = if embedded_broker {
        let most = limit.saturating_sub(SPARE) / 2;
        format!(
            "the embedded broker holds the other end of each connection in this process; run \
             at most {most} devices here, or give --broker an external broker (mosquitto)"
        )
    } else {
        format!(
            "run at most {} devices per process, or raise the hard limit (ulimit -Hn)",
            limit.saturating_sub(SPARE)
        )
    };
    Err(format!(
        "{devices} devices need about {needed} open files, and this process may open {limit}: {hint}"
    ))
}

/// Raises this process's open-files limit to its hard limit and returns it.
pub fn raise_open_files() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fleet_that_cannot_fit_is_refused_with_what_to_do() {
        assert!(check_open_files(9_000, true, 20_000).is_ok());
        let err = check_open_files(10_000, true, 20_000).expect_err("20,064 > 20,000");
        assert!(err.contains("20064"), "{err}");
        assert!(err.contains("at most 9968 devices"), "{err}");
        assert!(err.contains("--broker"), "{err}");
        assert!(check_open_files(10_000, false, 20_000).is_ok());
        let err = check_open_files(30_000, false, 20_000).expect_err("too many");
        assert!(err.contains("ulimit"), "{err}");
    }

    #[test]
    fn the_limit_is_raised_to_what_the_system_allows() {
        let limit = raise_open_files().expect("getrlimit works here");
        assert!(limit >= 256, "{limit}");
    }
}
