//! Number tokens: whether a text is JSON number syntax, and whether a
//! JavaScript number holds it exactly (see `number_text`'s invariants).

/// The parts of a number token; `None` when it is not JSON number syntax.
struct Parts<'t> {
    negative: bool,
    int: &'t [u8],
    frac: &'t [u8],
    /// The explicit exponent, saturated.
    exp: i64,
}

fn parts(token: &[u8]) -> Option<Parts<'_>> {
    let mut p = 0;
    let negative = token.first() == Some(&b'-');
    if negative {
        p = 1;
    }
    let int_start = p;
    while token.get(p).is_some_and(u8::is_ascii_digit) {
        p += 1;
    }
    let int = &token[int_start..p];
    if int.is_empty() || (int.len() > 1 && int[0] == b'0') {
        return None;
    }
    let mut frac: &[u8] = &[];
    if token.get(p) == Some(&b'.') {
        p += 1;
        let start = p;
        while token.get(p).is_some_and(u8::is_ascii_digit) {
            p += 1;
        }
        if p == start {
            return None;
        }
        frac = &token[start..p];
    }
    let mut exp: i64 = 0;
    if matches!(token.get(p), Some(b'e' | b'E')) {
        p += 1;
        let minus = match token.get(p) {
            Some(b'-') => {
                p += 1;
                true
            }
            Some(b'+') => {
                p += 1;
                false
            }
            _ => false,
        };
        let start = p;
        while let Some(&d) = token.get(p).filter(|d| d.is_ascii_digit()) {
            exp = exp.saturating_mul(10).saturating_add(i64::from(d - b'0'));
            p += 1;
        }
        if p == start {
            return None;
        }
        if minus {
            exp = -exp;
        }
    }
    (p == token.len()).then_some(Parts {
        negative,
        int,
        frac,
        exp,
    })
}

/// Whether `token` is JSON number syntax (what may be spliced into a text).
pub fn is_number_token(token: &[u8]) -> bool {
    parts(token).is_some()
}

/// The significant digits of a decimal (no leading or trailing zeros, as an
/// iterator over `int` then `frac`: nothing is allocated) and the power of
/// ten of the first one; no digits for zero.
fn significant<'d>(
    int: &'d [u8],
    frac: &'d [u8],
    exp: i64,
) -> (impl Iterator<Item = u8> + Clone + 'd, usize, i64) {
    let all = int.iter().chain(frac).copied();
    let lead = all.clone().take_while(|&d| d == b'0').count();
    let total = int.len() + frac.len();
    let trailing = all.clone().rev().take_while(|&d| d == b'0').count();
    let count = total.saturating_sub(lead + trailing);
    let int_len = i64::try_from(int.len()).unwrap_or(i64::MAX);
    let power = int_len
        .saturating_sub(1)
        .saturating_sub(i64::try_from(lead).unwrap_or(i64::MAX))
        .saturating_add(exp);
    (all.skip(lead).take(count), count, power)
}

/// Whether a JS number holds the value of `token` and JSON.stringify writes it
/// back as that value (see the invariants). Not number syntax: true (nothing
/// to keep).
pub fn is_exact(token: &[u8]) -> bool {
    // The common case: a short integer.
    if token.len() <= 15 && token.iter().all(u8::is_ascii_digit) {
        return true;
    }
    let Some(p) = parts(token) else {
        return true;
    };
    // Cheap counts first: up to 15 significant digits in the normal range
    // always round-trip (DBL_DIG), so no conversion is needed.
    let (_, count, power) = significant(p.int, p.frac, p.exp);
    if count == 0 {
        // Zero: exact unless negative (JSON.stringify(-0) is "0").
        return !p.negative;
    }
    if count <= 15 && (-300..=300).contains(&power) {
        return true;
    }
    exact_by_conversion(token, &p)
}

// The double nearest to the token, written shortest, must denote the token's
// value. "Shortest" as JSON.stringify means it: the fewest digits that read
// back as the double and, among those, the nearest to it. serde_json's
// formatter (zmij) chooses as V8 does; Rust's `{}` / `{:e}` do not always
// (602527533540400.2 is printed ...0.3: as short, and also reads back, but
// farther away), which would miss a token JSON.stringify changes.
fn exact_by_conversion(token: &[u8], p: &Parts<'_>) -> bool {
    let Some(value) = std::str::from_utf8(token)
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
    else {
        return true;
    };
    if !value.is_finite() || value == 0.0 {
        // Overflow, or underflow of a non-zero token (zero was handled).
        return false;
    }
    // At most 24 bytes ("-1.2345678901234567e-308"): written on the stack.
    let mut buffer = [0u8; 32];
    let mut rest = &mut buffer[..];
    if serde_json::to_writer(&mut rest, &value.abs()).is_err() {
        return false;
    }
    let written = 32 - rest.len();
    let shortest = &buffer[..written];
    let (mantissa, exponent) = match shortest.iter().position(|&b| b == b'e' || b == b'E') {
        Some(at) => match std::str::from_utf8(&shortest[at + 1..])
            .ok()
            .and_then(|e| e.parse::<i64>().ok())
        {
            Some(exponent) => (&shortest[..at], exponent),
            None => return false,
        },
        None => (shortest, 0),
    };
    let (int, frac) = match mantissa.iter().position(|&b| b == b'.') {
        Some(at) => (&mantissa[..at], &mantissa[at + 1..]),
        None => (mantissa, &[][..]),
    };
    let (ours, our_count, our_power) = significant(p.int, p.frac, p.exp);
    let (theirs, their_count, their_power) = significant(int, frac, exponent);
    our_count == their_count && our_power == their_power && ours.eq(theirs)
}
