//! What the benchmarks share: medians, and the traffic `coroner` reports on stderr when
//! it read an object (`coroner: fetched 9.3 MiB in 22 request(s) from s3://...`).

/// The median of `v` (the upper one of an even count); NaN when empty.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The bytes and requests of the first `coroner: fetched N UNIT in M request(s)` line
/// of `stderr`.
pub fn fetched(stderr: &str) -> Option<(u64, u64)> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("coroner: fetched "))?;
    let mut words = line
        .trim_start_matches("coroner: fetched ")
        .split_whitespace();
    let n: f64 = words.next()?.parse().ok()?;
    let scale = match words.next()? {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1048576.0,
        "GiB" => 1073741824.0,
        _ => return None,
    };
    let requests = words.nth(1)?.parse().ok()?;
    Some(((n * scale) as u64, requests))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_traffic_lines() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert!(median(Vec::new()).is_nan());
        let e = "x\ncoroner: fetched 1.50 MiB in 7 request(s) from s3://b/k\n";
        assert_eq!(fetched(e), Some((1572864, 7)));
        assert_eq!(
            fetched("coroner: fetched 12 B in 1 request(s) from s3://b/k"),
            Some((12, 1))
        );
        assert_eq!(fetched("nothing"), None);
    }
}
