//! Tests of `number_text`: which tokens are inexact (against an independent
//! oracle on generated tokens), the scan's paths, and the splice.

use super::*;
use crate::test_rng::XorShiftStar as Gen;

fn found(text: &str) -> Vec<(Vec<String>, String)> {
    inexact_numbers(text)
        .unwrap()
        .into_iter()
        .map(|f| {
            let path = f
                .path
                .iter()
                .map(|step| match *step {
                    RawStep::Key(start, end) => format!("k:{}", &text[start..end]),
                    RawStep::Index(index) => format!("i:{index}"),
                })
                .collect();
            (path, text[f.token].to_owned())
        })
        .collect()
}

fn path(steps: &[&str]) -> Vec<String> {
    steps.iter().map(|s| (*s).to_owned()).collect()
}

fn key(k: &str) -> Step {
    Step::Key(k.as_bytes().to_vec())
}

fn keep(path: Vec<Step>, token: &str, expected: &str) -> Replacement {
    Replacement {
        path,
        token: token.to_owned(),
        expected: expected.to_owned(),
        required: false,
    }
}

// ---------------------------------------------------------------------------
// Which tokens are exact

#[test]
fn tokens_js_holds_exactly_are_exact() {
    for token in [
        "0",
        "-1",
        "42",
        "123456789012345",
        "9007199254740992",
        "-9007199254740992",
        "0.1",
        "0.30000000000000004",
        "3.141592653589793",
        "1.0",
        "0.10",
        "1E2",
        "1e+2",
        "1.5e-7",
        "100000000000000000000",
        "1e21",
        "1e308",
        "1.7976931348623157e308",
        "2.2250738585072014e-308",
        "5e-324",
        "0.0",
        "0e999999999999999999999",
        "1234567890123456800",
    ] {
        assert!(is_exact(token.as_bytes()), "{token} should be exact");
    }
}

#[test]
fn tokens_js_changes_are_inexact() {
    for token in [
        "9007199254740993",
        "-9007199254740993",
        "1234567890123456789",
        "0.1000000000000000055511151231257827",
        "3.14159265358979323846",
        "1e400",
        "-1e400",
        "1E400",
        "1e-400",
        "-1e-400",
        "1.7976931348623159e308",
        "2e-324",
        "-0",
        "-0.0",
        "-0e10",
        "123456789012345678",
        "1e99999999999999999999999",
    ] {
        assert!(!is_exact(token.as_bytes()), "{token} should be inexact");
    }
}

// A second judgement, written differently (on strings): the token and the
// shortest text of the double nearest to it denote the same decimal. It
// checks the counting, the fast path and the zero and range rules; that
// serde_json's shortest text is JSON.stringify's is checked against V8
// itself in __test__/document-numbers.test.mjs.
fn oracle(token: &str) -> bool {
    let value: f64 = token.parse().unwrap();
    let zero_token = token
        .split(['e', 'E'])
        .next()
        .unwrap()
        .chars()
        .all(|c| matches!(c, '0' | '.' | '-'));
    if zero_token {
        return !token.starts_with('-');
    }
    if !value.is_finite() || value == 0.0 {
        return false;
    }
    normalize(token) == normalize(&serde_json::to_string(&value.abs()).unwrap())
}

// "-0012.3400e2" -> ("1234", 3): digits without zeros around, power of the first.
fn normalize(text: &str) -> (String, i64) {
    let text = text.trim_start_matches('-');
    let (mantissa, exp) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i64>().unwrap()),
        None => (text, 0),
    };
    let point = mantissa.find('.').unwrap_or(mantissa.len()) as i64;
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let lead = (digits.len() - digits.trim_start_matches('0').len()) as i64;
    let trimmed = digits
        .trim_start_matches('0')
        .trim_end_matches('0')
        .to_owned();
    (trimmed, point - 1 - lead + exp)
}

fn random_digits(gen: &mut Gen, n: u64) -> String {
    (0..n)
        .map(|_| char::from(b'0' + gen.below(10) as u8))
        .collect()
}

/// A number token, exact or not: up to 22 integer and fraction digits, an
/// exponent up to 329.
fn random_token(gen: &mut Gen) -> String {
    let mut t = String::new();
    if gen.below(4) == 0 {
        t.push('-');
    }
    let int_len = 1 + gen.below(22);
    let int = random_digits(gen, int_len);
    let int = if int.len() > 1 {
        int.trim_start_matches('0').to_owned()
    } else {
        int
    };
    t.push_str(if int.is_empty() { "0" } else { &int });
    if gen.below(2) == 0 {
        t.push('.');
        let frac_len = 1 + gen.below(22);
        t.push_str(&random_digits(gen, frac_len));
    }
    if gen.below(3) == 0 {
        t.push(['e', 'E'][gen.below(2) as usize]);
        t.push_str(["", "+", "-"][gen.below(3) as usize]);
        t.push_str(&gen.below(330).to_string());
    }
    t
}

/// How many draws of a property test came out each way: a test that met
/// one way only (or rarely the other) proved little.
#[derive(Default)]
struct BothWays {
    yes: usize,
    no: usize,
}

impl BothWays {
    fn count(&mut self, outcome: bool) {
        if outcome {
            self.yes += 1;
        } else {
            self.no += 1;
        }
    }

    fn assert_each_over(&self, at_least: usize, yes: &str, no: &str) {
        assert!(
            self.yes > at_least && self.no > at_least,
            "{} {yes}, {} {no}",
            self.yes,
            self.no
        );
    }
}

#[test]
fn exactness_agrees_with_an_independent_oracle_on_generated_tokens() {
    let mut gen = Gen(0x9e37_79b9_7f4a_7c15);
    let mut exact = BothWays::default();
    for _ in 0..200_000 {
        let token = random_token(&mut gen);
        let expected = oracle(&token);
        assert_eq!(is_exact(token.as_bytes()), expected, "{token}");
        exact.count(expected);
    }
    // Both kinds were exercised in earnest.
    exact.assert_each_over(20_000, "exact", "inexact");
}

#[test]
fn doubles_written_shortest_are_exact() {
    // What JSON.stringify writes is always exact: nothing of ours is reported.
    let mut gen = Gen(42);
    for _ in 0..100_000 {
        let value = f64::from_bits(gen.next());
        if !value.is_finite() || value == 0.0 {
            continue;
        }
        let text = serde_json::to_string(&value).unwrap();
        assert!(is_exact(text.as_bytes()), "{text}");
    }
}

#[test]
fn not_number_syntax_is_never_reported() {
    for token in ["", "-", "01", "1.", ".5", "1e", "1e+", "--1", "1-2", "+1"] {
        assert!(is_exact(token.as_bytes()), "{token:?}");
        assert!(!is_number_token(token.as_bytes()), "{token:?}");
    }
}

// ---------------------------------------------------------------------------
// Scanning

#[test]
fn a_text_of_exact_numbers_gives_nothing() {
    let text = r#"{"a": 1, "b": [0.5, -3, 1e21, 0.1], "c": "9007199254740993", "d": null}"#;
    assert!(inexact_numbers(text).unwrap().is_empty());
    assert_eq!(inexact_numbers_json(text).unwrap(), None);
}

#[test]
fn the_issue_case_is_found_with_paths_and_tokens() {
    let text = r#"{"big": 9007199254740993, "snowflake": 1234567890123456789, "huge": 1e400}"#;
    assert_eq!(
        found(text),
        vec![
            (path(&["k:big"]), "9007199254740993".to_owned()),
            (path(&["k:snowflake"]), "1234567890123456789".to_owned()),
            (path(&["k:huge"]), "1e400".to_owned()),
        ]
    );
    assert_eq!(
        inexact_numbers_json(text).unwrap().unwrap(),
        r#"[[["big"],"9007199254740993"],[["snowflake"],"1234567890123456789"],[["huge"],"1e400"]]"#
    );
}

#[test]
fn paths_go_through_nested_objects_and_arrays() {
    let text = r#"{
      "roles": [
        {"id": "a", "perms": [1, 2, 9007199254740993]},
        {"id": "b", "limits": {"max": -1e400, "min": 1e-400, "z": -0}}
      ],
      "top": [[1], [2, [3, 0.1000000000000000055511151231257827]]]
    }"#;
    assert_eq!(
        found(text),
        vec![
            (
                path(&["k:roles", "i:0", "k:perms", "i:2"]),
                "9007199254740993".to_owned()
            ),
            (
                path(&["k:roles", "i:1", "k:limits", "k:max"]),
                "-1e400".to_owned()
            ),
            (
                path(&["k:roles", "i:1", "k:limits", "k:min"]),
                "1e-400".to_owned()
            ),
            (
                path(&["k:roles", "i:1", "k:limits", "k:z"]),
                "-0".to_owned()
            ),
            (
                path(&["k:top", "i:1", "i:1", "i:1"]),
                "0.1000000000000000055511151231257827".to_owned()
            ),
        ]
    );
}

#[test]
fn keys_are_reported_as_spelled_and_strings_are_never_numbers() {
    let text =
        r#"{"a\"b": {"c\u0041": [9007199254740993]}, "s": "x\" 9007199254740993 \\", "[{": 1e400}"#;
    assert_eq!(
        found(text),
        vec![
            (
                path(&[r#"k:a\"b"#, r"k:c\u0041", "i:0"]),
                "9007199254740993".to_owned()
            ),
            (path(&["k:[{"]), "1e400".to_owned()),
        ]
    );
}

#[test]
fn a_byte_order_mark_is_skipped() {
    let text = "\u{feff}{\"n\": 9007199254740993}";
    assert_eq!(
        found(text),
        vec![(path(&["k:n"]), "9007199254740993".to_owned())]
    );
    let units: Vec<u16> = text.encode_utf16().collect();
    assert_eq!(
        inexact_numbers_utf16_json(&units).unwrap().unwrap(),
        r#"[[["n"],"9007199254740993"]]"#
    );
    let exact: Vec<u16> = "\u{feff}[1]".encode_utf16().collect();
    assert_eq!(inexact_numbers_utf16_json(&exact).unwrap(), None);
}

#[test]
fn deep_nesting_does_not_exhaust_the_stack() {
    let depth = 200_000;
    let text = format!("{}9007199254740993{}", "[".repeat(depth), "]".repeat(depth));
    let all = inexact_numbers(&text).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].path.len(), depth);
    let spliced = splice(
        &text,
        &[keep(vec![Step::Index(0); depth], "1", "9007199254740993")],
    )
    .unwrap();
    assert_eq!(
        spliced,
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    );
}

#[test]
fn malformed_text_is_an_error_not_a_panic() {
    for text in [
        r#"{"a": 1e400"#,
        r#"{"a": "1e400}"#,
        r#"{"a" 1e400}"#,
        r#"{"a": 1e400]"#,
        r#"[1e400, ?]"#,
        r#"{1e400: 1}"#,
        r#"{"a": 1e400, "b"}"#,
        r#"[1e400, nope]"#,
        "[1e400, \"\\",
    ] {
        assert!(inexact_numbers(text).is_err(), "{text}");
    }
    // Never a panic, whatever the bytes (truncations of a real document).
    let text = r#"{"k\"\\": [9007199254740993, {"x": "\u00e9", "y": [1e400]}], "z": -0}"#;
    for end in 0..text.len() {
        if let Some(prefix) = text.get(..end) {
            let _ = inexact_numbers(prefix);
            let _ = splice(prefix, &[keep(vec![key("z")], "-0", "0")]);
        }
    }
}

// ---------------------------------------------------------------------------
// Keys

#[test]
fn keys_decode_escapes_pairs_and_lone_surrogates() {
    assert_eq!(decode_key(br"plain").unwrap().as_ref(), b"plain");
    assert_eq!(
        decode_key(br#"a\"b\\c\/d\n"#).unwrap().as_ref(),
        b"a\"b\\c/d\n"
    );
    assert_eq!(
        decode_key(br"\u0041\u00e9").unwrap().as_ref(),
        "Aé".as_bytes()
    );
    // A pair decodes as the raw character does.
    assert_eq!(
        decode_key(br"\ud83d\ude00").unwrap().as_ref(),
        "😀".as_bytes()
    );
    // Lone surrogates stay distinct from each other and from U+FFFD.
    let high = decode_key(br"\ud800").unwrap().into_owned();
    let other = decode_key(br"\ud801").unwrap().into_owned();
    assert_ne!(high, other);
    assert_ne!(high, "\u{fffd}".as_bytes());
    assert_eq!(high, vec![0xed, 0xa0, 0x80]);
    // A high surrogate followed by a non-low escape is two code points.
    assert_eq!(
        decode_key(br"\ud800\u0041").unwrap().as_ref(),
        [0xed, 0xa0, 0x80, b'A']
    );
    assert!(decode_key(br"\x").is_err());
    assert!(decode_key(br"\u12").is_err());
}

// ---------------------------------------------------------------------------
// Splicing

const WRITTEN: &str = r#"{
  "big": 9007199254740992,
  "snowflake": 1234567890123456800,
  "huge": null,
  "other": 2
}"#;

#[test]
fn the_issue_case_gets_its_tokens_back() {
    let out = splice(
        WRITTEN,
        &[
            keep(vec![key("big")], "9007199254740993", "9007199254740992"),
            keep(
                vec![key("snowflake")],
                "1234567890123456789",
                "1234567890123456800",
            ),
            keep(vec![key("huge")], "1e400", "null"),
        ],
    )
    .unwrap();
    assert_eq!(
        out,
        r#"{
  "big": 9007199254740993,
  "snowflake": 1234567890123456789,
  "huge": 1e400,
  "other": 2
}"#
    );
}

#[test]
fn a_token_goes_only_where_the_expected_text_is() {
    // Changed since it was read: the new value stays.
    let out = splice(WRITTEN, &[keep(vec![key("big")], "9007199254740993", "5")]).unwrap();
    assert_eq!(out, WRITTEN);
    // No such path.
    let out = splice(WRITTEN, &[keep(vec![key("gone")], "1e400", "null")]).unwrap();
    assert_eq!(out, WRITTEN);
    // A container where a scalar was expected.
    let text = r#"{"big": [9007199254740992]}"#;
    let out = splice(
        text,
        &[keep(
            vec![key("big")],
            "9007199254740993",
            "9007199254740992",
        )],
    )
    .unwrap();
    assert_eq!(out, text);
}

#[test]
fn strings_that_look_like_the_value_are_left_alone() {
    let text = r#"{"s": "9007199254740992", "a": ["null", null], "t": "\"null\""}"#;
    let out = splice(
        text,
        &[
            keep(vec![key("s")], "9007199254740993", "9007199254740992"),
            keep(vec![key("a"), Step::Index(0)], "1e400", "null"),
            keep(vec![key("a"), Step::Index(1)], "1e400", "null"),
            keep(vec![key("t")], "1e400", "null"),
        ],
    )
    .unwrap();
    assert_eq!(
        out,
        r#"{"s": "9007199254740992", "a": ["null", 1e400], "t": "\"null\""}"#
    );
    // A BigInt's placeholder is a string, matched only at its own path.
    let text = r#"{"n": "12345678901234567890", "m": "12345678901234567890"}"#;
    let mut bigint = keep(
        vec![key("m")],
        "12345678901234567890",
        "\"12345678901234567890\"",
    );
    bigint.required = true;
    let out = splice(text, &[bigint]).unwrap();
    assert_eq!(
        out,
        r#"{"n": "12345678901234567890", "m": 12345678901234567890}"#
    );
}

#[test]
fn keys_match_decoded_whatever_their_spelling() {
    let text = r#"{"\u0041": 1, "a\"b": {"\ud83d\ude00": 2}, "\ud800": 3, "\ud801": 4}"#;
    let out = splice(
        text,
        &[
            keep(vec![key("A")], "1.0", "1"),
            keep(vec![key("a\"b"), key("😀")], "2.0", "2"),
            keep(
                vec![Step::Key(decode_key(br"\ud801").unwrap().into_owned())],
                "4.0",
                "4",
            ),
        ],
    )
    .unwrap();
    assert_eq!(
        out,
        r#"{"\u0041": 1.0, "a\"b": {"\ud83d\ude00": 2.0}, "\ud800": 3, "\ud801": 4.0}"#
    );
}

#[test]
fn indices_count_elements_and_skipped_containers_hide_nothing() {
    let text = r#"[{"x": "]}\"[{", "y": [1, [2, 3]]}, {"z": 9007199254740992}, [null, 5]]"#;
    let out = splice(
        text,
        &[
            keep(
                vec![Step::Index(1), key("z")],
                "9007199254740993",
                "9007199254740992",
            ),
            keep(vec![Step::Index(2), Step::Index(1)], "5e0", "5"),
            keep(
                vec![Step::Index(0), key("y"), Step::Index(1), Step::Index(1)],
                "3.0",
                "3",
            ),
        ],
    )
    .unwrap();
    assert_eq!(
        out,
        r#"[{"x": "]}\"[{", "y": [1, [2, 3.0]]}, {"z": 9007199254740993}, [null, 5e0]]"#
    );
}

#[test]
fn a_required_token_that_finds_no_place_fails() {
    let mut missing = keep(vec![key("nowhere")], "1", "\"1\"");
    missing.required = true;
    let error = splice(WRITTEN, &[missing]).unwrap_err();
    assert!(error.to_string().contains("no value spelled"), "{error}");
}

#[test]
fn only_number_syntax_is_ever_spliced() {
    for token in ["1; rm -rf", "\"x\"", "null", "", "01", "1e"] {
        let error = splice(
            WRITTEN,
            &[keep(vec![key("big")], token, "9007199254740992")],
        );
        assert!(error.is_err(), "{token:?}");
    }
}

#[test]
fn the_later_of_two_replacements_for_one_path_wins() {
    let out = splice(
        WRITTEN,
        &[
            keep(vec![key("other")], "2.0", "2"),
            keep(vec![key("other")], "2e0", "2"),
        ],
    )
    .unwrap();
    assert!(out.contains("\"other\": 2e0"), "{out}");
}

#[test]
fn scan_then_splice_restores_every_token() {
    // What the document does: scan the file, write lossy text, splice back.
    let file = r#"{"a": [9007199254740993, {"b": 1e400, "c": -0}], "d": 0.1000000000000000055511151231257827}"#;
    let lossy = r#"{"a": [9007199254740992, {"b": null, "c": 0}], "d": 0.1}"#;
    let json = inexact_numbers_json(file).unwrap().unwrap();
    let entries: Vec<(Vec<serde_json::Value>, String)> = serde_json::from_str(&json).unwrap();
    let replacements: Vec<Replacement> = entries
        .into_iter()
        .map(|(path, token)| {
            let path = path
                .into_iter()
                .map(|s| match s {
                    serde_json::Value::String(k) => key(&k),
                    serde_json::Value::Number(n) => Step::Index(n.as_u64().unwrap() as usize),
                    _ => unreachable!(),
                })
                .collect();
            let value: f64 = token.parse().unwrap();
            let expected = if !value.is_finite() {
                "null".to_owned()
            } else if value == 0.0 {
                "0".to_owned()
            } else {
                serde_json::to_string(&value)
                    .unwrap()
                    .trim_end_matches(".0")
                    .to_owned()
            };
            keep(path, &token, &expected)
        })
        .collect();
    assert_eq!(splice(lossy, &replacements).unwrap(), file);
}

#[test]
fn replacements_parse_from_their_json_text() {
    let parsed = parse_replacements(
        r#"[[["\"a\\\"b\"", 3, "\"\\ud800\""], "1e400", "null", false], [[], "1", "\"1\"", true]]"#,
    )
    .unwrap();
    assert_eq!(
        parsed[0].path,
        vec![
            key("a\"b"),
            Step::Index(3),
            Step::Key(vec![0xed, 0xa0, 0x80])
        ]
    );
    assert_eq!(parsed[0].token, "1e400");
    assert_eq!(parsed[0].expected, "null");
    assert!(!parsed[0].required);
    assert!(parsed[1].path.is_empty() && parsed[1].required);
    for bad in [
        "{}",
        r#"[[["a"], "1", "1", false]]"#,
        r#"[[[-1], "1", "1", false]]"#,
        r#"[[[1.5], "1", "1", false]]"#,
        r#"[[[null], "1", "1", false]]"#,
        r#"[[[], "1", "1"]]"#,
    ] {
        assert!(parse_replacements(bad).is_err(), "{bad}");
    }
}

// Random JSON texts: strings full of the bytes the fast pass looks for
// (quotes, backslashes, digits, '-', multi-byte characters), numbers exact
// and not, nesting, whitespace.
fn random_json(gen: &mut Gen, depth: u32, out: &mut String, inexact: &mut usize) {
    let pick = if depth > 4 {
        3 + gen.below(3)
    } else {
        gen.below(6)
    };
    let ws = |gen: &mut Gen, out: &mut String| {
        for _ in 0..gen.below(3) {
            out.push([' ', '\n', '\t', '\r'][gen.below(4) as usize]);
        }
    };
    match pick {
        0 | 1 => {
            let object = pick == 0;
            out.push(if object { '{' } else { '[' });
            let n = gen.below(5);
            for i in 0..n {
                if i > 0 {
                    out.push(',');
                }
                ws(gen, out);
                if object {
                    random_string(gen, out);
                    ws(gen, out);
                    out.push(':');
                    ws(gen, out);
                }
                random_json(gen, depth + 1, out, inexact);
                ws(gen, out);
            }
            out.push(if object { '}' } else { ']' });
        }
        2 | 3 => {
            let token = random_token(gen);
            if !is_exact(token.as_bytes()) {
                *inexact += 1;
            }
            out.push_str(&token);
        }
        4 => random_string(gen, out),
        _ => out.push_str(["true", "false", "null", "0", "-1"][gen.below(5) as usize]),
    }
}

/// A random JSON text, and how many inexact number tokens it holds.
fn random_document(gen: &mut Gen) -> (String, usize) {
    let (mut text, mut inexact) = (String::new(), 0);
    random_json(gen, 0, &mut text, &mut inexact);
    (text, inexact)
}

fn random_string(gen: &mut Gen, out: &mut String) {
    out.push('"');
    for _ in 0..gen.below(20) {
        match gen.below(10) {
            0 => out.push_str("\\\""),
            1 => out.push_str("\\\\"),
            2 => out.push_str("\\u00e9"),
            // Characters whose UTF-16 units end in the bytes of `"`, `\\`
            // and digits, and a surrogate pair.
            3 => out.push(['é', 'Ģ', '\u{225c}', '\u{2239}', '😀'][gen.below(5) as usize]),
            4 => out.push_str("9007199254740993"),
            5 => out.push_str("-1e400"),
            _ => out.push(char::from(b'a' + gen.below(26) as u8)),
        }
    }
    out.push('"');
}

#[test]
fn the_fast_pass_and_the_walk_agree_on_generated_documents() {
    let mut gen = Gen(7);
    let mut with_inexact = BothWays::default();
    for _ in 0..20_000 {
        let (text, inexact) = random_document(&mut gen);
        let fast = any_inexact(text.as_bytes()).unwrap();
        // Every fast pass agrees: SIMD where built, SWAR, bytes, UTF-16.
        let units: Vec<u16> = text.encode_utf16().collect();
        assert_eq!(any_inexact_swar(text.as_bytes()).unwrap(), fast, "{text}");
        assert_eq!(any_inexact_swar(&units[..]).unwrap(), fast, "{text}");
        assert_eq!(any_inexact(&units[..]).unwrap(), fast, "{text}");
        let mut collect = Collect { found: Vec::new() };
        walk(text.as_bytes(), &mut collect).unwrap();
        assert_eq!(fast, !collect.found.is_empty(), "{text}");
        assert_eq!(inexact_numbers(&text).unwrap(), collect.found, "{text}");
        // The same text as a JS string's UTF-16 units gives the same answer.
        assert_eq!(
            inexact_numbers_utf16_json(&units).unwrap(),
            inexact_numbers_json(&text).unwrap(),
            "{text}"
        );
        // Every inexact token is found, and only those.
        assert_eq!(collect.found.len(), inexact, "{text}");
        for f in &collect.found {
            assert!(!is_exact(text[f.token.clone()].as_bytes()));
        }
        with_inexact.count(fast);
    }
    with_inexact.assert_each_over(2_000, "with", "without");
}

#[test]
fn splicing_every_found_token_leaves_none_in_bytes_and_utf16_alike() {
    let mut gen = Gen(11);
    let mut spliced_some = 0;
    for _ in 0..5_000 {
        let (text, _) = random_document(&mut gen);
        let found = inexact_numbers(&text).unwrap();
        // Each found token replaced by 0, at its path (keys decoded).
        let replacements: Vec<Replacement> = found
            .iter()
            .map(|f| Replacement {
                path: f
                    .path
                    .iter()
                    .map(|step| match *step {
                        RawStep::Key(start, end) => Step::Key(
                            decode_key(&text.as_bytes()[start..end])
                                .unwrap()
                                .into_owned(),
                        ),
                        RawStep::Index(index) => Step::Index(index),
                    })
                    .collect(),
                token: "0".to_owned(),
                expected: text[f.token.clone()].to_owned(),
                required: true,
            })
            .collect();
        let out = splice(&text, &replacements).unwrap();
        let units: Vec<u16> = text.encode_utf16().collect();
        let out16 = splice_utf16(&units, &replacements).unwrap();
        assert_eq!(String::from_utf16(&out16).unwrap(), out, "{text}");
        assert!(inexact_numbers(&out).unwrap().is_empty(), "{text}\n{out}");
        if !found.is_empty() {
            spliced_some += 1;
        }
    }
    assert!(spliced_some > 500, "{spliced_some}");
}
