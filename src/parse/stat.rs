//! The few fields of `/proc/PID/stat` that a process-tree scan needs, parsed without building the
//! whole record (a scan reads every process on the machine).

use super::ParseError;

/// State, parent and start time of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatBrief {
    /// The state letter (field 3): `R`, `S`, `D`, `Z`, `T`, `t`, `X`, `I`, ...
    pub state: u8,
    /// Parent pid (field 4).
    pub ppid: i32,
    /// Start time in clock ticks after boot (field 22).
    pub start_ticks: u64,
}

/// Parses `pid (comm) state ppid ... starttime ...`. `comm` may hold spaces and parentheses, so
/// the fields are taken after the *last* `)`.
pub fn brief(bytes: &[u8]) -> Result<StatBrief, ParseError> {
    let close = bytes.iter().rposition(|&b| b == b')').ok_or_else(|| ParseError::at(1, "no ')' after comm"))?;
    let rest = std::str::from_utf8(&bytes[close + 1..]).map_err(|_| ParseError::at(1, "fields are not UTF-8"))?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().take(20).collect();
    if fields.len() < 20 {
        return Err(ParseError::at(1, format!("{} fields after comm, expected at least 20", fields.len())));
    }
    let state = match fields[0].as_bytes() {
        [c] => *c,
        _ => return Err(ParseError::at(1, format!("state {:?} is not one letter", fields[0]))),
    };
    let ppid = fields[1].parse().map_err(|_| ParseError::at(1, format!("ppid {:?}", fields[1])))?;
    let start_ticks = super::parse_u64(fields[19], 1)?;
    Ok(StatBrief { state, ppid, start_ticks })
}

/// A process state, as named in `leakwatch_task_descendants{state}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProcState {
    /// `R`.
    Running,
    /// `S`: interruptible sleep.
    Sleeping,
    /// `D`: uninterruptible sleep (usually I/O).
    DiskSleep,
    /// `Z`: exited, not yet reaped by its parent.
    Zombie,
    /// `T` and `t`: stopped by a signal or a tracer.
    Stopped,
    /// `I`: an idle kernel thread.
    Idle,
    /// Anything else (`X` dead, `P` parked, ...).
    Other,
}

impl ProcState {
    /// Every state, in label order.
    pub const ALL: [ProcState; 7] = [
        ProcState::Running,
        ProcState::Sleeping,
        ProcState::DiskSleep,
        ProcState::Zombie,
        ProcState::Stopped,
        ProcState::Idle,
        ProcState::Other,
    ];

    /// From the state letter.
    pub fn from_letter(c: u8) -> Self {
        match c {
            b'R' => Self::Running,
            b'S' => Self::Sleeping,
            b'D' => Self::DiskSleep,
            b'Z' => Self::Zombie,
            b'T' | b't' => Self::Stopped,
            b'I' => Self::Idle,
            _ => Self::Other,
        }
    }

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Sleeping => "sleeping",
            Self::DiskSleep => "disk_sleep",
            Self::Zombie => "zombie",
            Self::Stopped => "stopped",
            Self::Idle => "idle",
            Self::Other => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_taken_after_the_last_paren() {
        let line = b"4242 (we ird) (name) Z 17 4242 4242 0 -1 4194560 100 0 0 0 1200 300 0 0 20 0 4 0 461031 1 2 3\n";
        assert_eq!(brief(line), Ok(StatBrief { state: b'Z', ppid: 17, start_ticks: 461031 }));
        assert!(brief(b"4242 (x) S 1 2 3").is_err());
        assert!(brief(b"no paren").is_err());
        assert!(brief(b"1 (x) SS 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5").is_err());
        assert_eq!(ProcState::from_letter(b't'), ProcState::Stopped);
        assert_eq!(ProcState::from_letter(b'X'), ProcState::Other);
    }
}
