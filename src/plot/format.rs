//! Tick and value labels: plain, short numbers (5000, 12.2, 0.25), never exponents or "1.5k";
//! the unit lives in the axis name, so a label is only the figure a reader compares.

/// Three significant figures at most, trailing zeros dropped: 5000, 12.2, 1.25, 0.125.
pub fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        trim(format!("{v:.1}"))
    } else if a >= 1.0 {
        trim(format!("{v:.2}"))
    } else {
        trim(format!("{v:.3}"))
    }
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::fmt_num;

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(fmt_num(5000.0), "5000");
        assert_eq!(fmt_num(0.5), "0.5");
        assert_eq!(fmt_num(12.25), "12.2");
        assert_eq!(fmt_num(-3.0), "-3");
        assert_eq!(fmt_num(0.0), "0");
    }
}
