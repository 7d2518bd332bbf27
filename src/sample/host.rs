//! Host memory: `/proc/meminfo` and `/proc/pressure/memory`.

use std::io;

use super::held::HeldFiles;
use super::read::{ok_or_record, ReadError};
use crate::parse::{kv, pressure, ParseError};
use crate::roots::Roots;
use crate::snapshot::{ErrorCounts, ErrorSource, HostMemory, HostSample};

/// Samples host memory and pressure. PSI being absent (kernel built without it, or booted with
/// `psi=0`) is not an error: the pressure metrics are simply not exported.
pub fn sample(roots: &Roots, held: &mut HeldFiles, errors: &mut ErrorCounts) -> HostSample {
    let memory = ok_or_record(errors, ErrorSource::Meminfo, held.read_parsed(&roots.proc_file("meminfo"), meminfo));
    let pressure = match held.read_parsed(&roots.proc_file("pressure/memory"), pressure::pressure) {
        Ok(p) => Some(p),
        Err(ReadError::Io { source, .. })
            if matches!(source.kind(), io::ErrorKind::NotFound | io::ErrorKind::Unsupported)
                || source.raw_os_error() == Some(95) =>
        {
            None
        }
        Err(e) => {
            super::read::record(errors, ErrorSource::Pressure, &e);
            None
        }
    };
    HostSample { memory, pressure }
}

/// Parses `/proc/meminfo`; only `MemTotal` is required.
pub fn meminfo(bytes: &[u8]) -> Result<HostMemory, ParseError> {
    let m = kv::colon_keyed(bytes)?;
    Ok(HostMemory {
        total: m.bytes("MemTotal")?.ok_or_else(|| ParseError::at(0, "MemTotal is missing"))?,
        available: m.bytes("MemAvailable")?,
        free: m.bytes("MemFree")?,
        buffers: m.bytes("Buffers")?,
        cached: m.bytes("Cached")?,
        swap_total: m.bytes("SwapTotal")?,
        swap_free: m.bytes("SwapFree")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_needs_memtotal_and_tolerates_new_keys() {
        let m = meminfo(b"MemTotal: 1000 kB\nMemFree: 10 kB\nSomeNewKey2030: 5 kB\n").unwrap();
        assert_eq!(m.total, 1_024_000);
        assert_eq!(m.free, Some(10_240));
        assert_eq!(m.available, None);
        assert!(meminfo(b"MemFree: 10 kB\n").is_err());
    }
}
