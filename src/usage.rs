//! Command-line input that the library checks where it enters: the usage error type (exit code
//! 2) and the validators shared by every subcommand. A leaf: it imports nothing from the crate,
//! so every layer can report a bad command line without depending on the CLI above it.

/// A bad command line found after parsing (clap's own errors already exit 2): exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Checks a forwarding unit URL: plain `http://host[:port][/]`, returned without the slash.
pub fn check_url(url: &str) -> Result<String, String> {
    let bad = || format!("bad forwarding unit URL '{url}': expected http://HOST[:PORT]");
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains('/') {
        return Err(bad());
    }
    // An IPv6 literal is bracketed and may be followed by :PORT; anything else is HOST[:PORT].
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let (addr, after) = inner.split_once(']').ok_or_else(bad)?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad());
        }
        match after {
            "" => (addr, None),
            p => (addr, Some(p.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    let host_ok = !host.is_empty()
        && (rest.starts_with('[')
            || host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    if !host_ok || !port_ok {
        return Err(bad());
    }
    Ok(format!("http://{rest}"))
}

/// N from the command line: a whole number between 1 and `max`.
pub fn parse_n(n: Option<&str>, max: u64) -> Result<u64, String> {
    let n = n.ok_or("missing N, the number of requests (e.g. `cmdunit 800 --emulate`)")?;
    match n.trim().parse::<i128>() {
        Ok(v) if v >= 1 && v <= i128::from(max) => Ok(v as u64),
        Ok(v) if v < 1 => Err(format!("N must be at least 1, got {v}")),
        Ok(v) => Err(format!("N must be at most {max}, got {v}")),
        Err(_) => Err(format!("N must be a whole number, got '{n}'")),
    }
}

/// A positive, finite number no larger than `max` (a flag's value, named in the message).
pub fn check_positive(flag: &str, value: f64, max: f64) -> Result<f64, String> {
    if value.is_finite() && value > 0.0 && value <= max {
        Ok(value)
    } else {
        Err(format!("{flag} must be > 0 and at most {max}, got {value}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n_is_checked() {
        assert_eq!(parse_n(Some("800"), 1000), Ok(800));
        for bad in [
            None,
            Some("0"),
            Some("-3"),
            Some("abc"),
            Some("1.5"),
            Some(""),
        ] {
            assert!(parse_n(bad, 1000).is_err(), "{bad:?}");
        }
        assert!(parse_n(Some("1001"), 1000).is_err());
        assert!(parse_n(Some("99999999999999999999999999"), 1000).is_err());
    }

    #[test]
    fn urls_are_checked() {
        assert_eq!(
            check_url("http://localhost:5000/").unwrap(),
            "http://localhost:5000"
        );
        assert!(check_url("http://127.0.0.1").is_ok());
        assert_eq!(check_url("http://[::1]:5000").unwrap(), "http://[::1]:5000");
        for bad in [
            "",
            "localhost:5000",
            "https://x",
            "http://",
            "http://h:99999",
            "http://h:0",
            "http://h:5/x",
            "ftp://h",
            "http://[::1",
            "http://[zz]:5",
            "http://[::1]x",
            "http://a:b:c",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn positive_values_are_bounded() {
        assert_eq!(check_positive("--timeout", 60.0, 3600.0), Ok(60.0));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e300] {
            assert!(check_positive("--timeout", bad, 3600.0).is_err(), "{bad}");
        }
    }
}
