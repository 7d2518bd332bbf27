//! Pressure-stall information (`/proc/pressure/memory`, cgroup v2 `memory.pressure`).

use super::{lines, parse_u64, ParseError};

/// One PSI line: the share of time stalled over 10/60/300 s windows and the total stall time.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PressureLine {
    /// Percent of the last 10 s.
    pub avg10: f64,
    /// Percent of the last 60 s.
    pub avg60: f64,
    /// Percent of the last 300 s.
    pub avg300: f64,
    /// Total stall time in microseconds.
    pub total_us: u64,
}

/// Memory pressure: `some` (at least one task stalled) and `full` (all non-idle tasks stalled).
/// Either line may be absent on some kernels.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Pressure {
    /// The `some` line.
    pub some: Option<PressureLine>,
    /// The `full` line.
    pub full: Option<PressureLine>,
}

/// Parses a PSI file. Unknown line kinds are ignored; a known line with a bad field is an error.
pub fn pressure(bytes: &[u8]) -> Result<Pressure, ParseError> {
    let mut out = Pressure::default();
    for (n, line) in lines(bytes) {
        let mut parts = line.split_ascii_whitespace();
        let slot = match parts.next() {
            Some("some") => &mut out.some,
            Some("full") => &mut out.full,
            _ => continue,
        };
        let (mut avg10, mut avg60, mut avg300, mut total) = (None, None, None, None);
        for field in parts {
            let (key, value) =
                field.split_once('=').ok_or_else(|| ParseError::at(n, format!("field {field:?} is not key=value")))?;
            let avg = || {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| ParseError::at(n, format!("{key}={value:?} is not a percentage")))
            };
            match key {
                "avg10" => avg10 = Some(avg()?),
                "avg60" => avg60 = Some(avg()?),
                "avg300" => avg300 = Some(avg()?),
                "total" => total = Some(parse_u64(value, n)?),
                _ => {}
            }
        }
        match (avg10, avg60, avg300, total) {
            (Some(avg10), Some(avg60), Some(avg300), Some(total_us)) => {
                *slot = Some(PressureLine { avg10, avg60, avg300, total_us })
            }
            _ => return Err(ParseError::at(n, "missing one of avg10, avg60, avg300, total")),
        }
    }
    if out.some.is_none() && out.full.is_none() {
        return Err(ParseError::Empty);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_lines() {
        let p = pressure(
            b"some avg10=1.50 avg60=0.25 avg300=0.00 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=42\n",
        )
        .unwrap();
        assert_eq!(p.some.unwrap().avg10, 1.5);
        assert_eq!(p.some.unwrap().total_us, 123_456);
        assert_eq!(p.full.unwrap().total_us, 42);
    }

    #[test]
    fn a_missing_full_line_leaves_full_absent() {
        let p = pressure(b"some avg10=0.00 avg60=0.00 avg300=0.00 total=1\n").unwrap();
        assert!(p.full.is_none());
    }

    #[test]
    fn bad_fields_are_errors_not_panics() {
        assert!(pressure(b"some avg10=x avg60=0 avg300=0 total=1\n").is_err());
        assert!(pressure(b"some avg10=0 avg60=0 avg300=0\n").is_err());
        assert!(pressure(b"some avg10=NaN avg60=0 avg300=0 total=1\n").is_err());
        assert_eq!(pressure(b""), Err(ParseError::Empty));
    }
}
