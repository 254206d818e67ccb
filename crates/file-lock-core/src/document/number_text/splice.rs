//! Splicing: number tokens put back at paths, only where the scalar there is
//! spelled as expected; every other byte copied verbatim (see `number_text`).

use super::*;

#[derive(Default)]
struct Node {
    keys: FxHashMap<Vec<u8>, usize>,
    indices: FxHashMap<usize, usize>,
    /// The replacement for a scalar here.
    leaf: Option<usize>,
}

struct Trie {
    nodes: Vec<Node>,
}

impl Trie {
    fn of(replacements: &[Replacement]) -> Trie {
        let mut nodes = vec![Node::default()];
        for (r, replacement) in replacements.iter().enumerate() {
            let mut at = 0;
            for step in &replacement.path {
                let next = nodes.len();
                let child = match step {
                    Step::Key(key) => *nodes[at].keys.entry(key.clone()).or_insert(next),
                    Step::Index(index) => *nodes[at].indices.entry(*index).or_insert(next),
                };
                if child == next {
                    nodes.push(Node::default());
                }
                at = child;
            }
            nodes[at].leaf = Some(r); // a later one for the same path wins
        }
        Trie { nodes }
    }
}

struct Splice<'r> {
    trie: Trie,
    replacements: &'r [Replacement],
    /// The trie node of each open container (skipped ones are never opened).
    open: Vec<usize>,
    /// (span, replacement), in document order.
    edits: Vec<(Range<usize>, usize)>,
    failure: Option<TextError>,
}

impl Splice<'_> {
    /// The trie node of the value at `stack`'s position, if any path goes there.
    fn here<U: Unit>(&mut self, text: &[U], stack: &[Frame]) -> Option<usize> {
        let Some(frame) = stack.last() else {
            return Some(0);
        };
        let node = &self.trie.nodes[*self.open.last()?];
        match *frame {
            Frame::Array { index, .. } => node.indices.get(&index).copied(),
            Frame::Object { key, .. } => {
                if node.keys.is_empty() {
                    return None;
                }
                let (start, end) = key?;
                let raw = U::text(&text[start..end]);
                match decode_key(raw.as_bytes()) {
                    Ok(key) => node.keys.get(key.as_ref()).copied(),
                    Err(e) => {
                        self.failure.get_or_insert(e);
                        None
                    }
                }
            }
        }
    }
}

impl<U: Unit> Visit<U> for Splice<'_> {
    fn open(&mut self, text: &[U], stack: &[Frame]) -> bool {
        let Some(node) = self.here(text, stack) else {
            return false;
        };
        self.open.push(node);
        true
    }

    fn close(&mut self) {
        self.open.pop();
    }

    fn scalar(&mut self, text: &[U], stack: &[Frame], _: Kind, span: Range<usize>) {
        let Some(node) = self.here(text, stack) else {
            return;
        };
        if let Some(r) = self.trie.nodes[node].leaf {
            let expected = self.replacements[r].expected.as_bytes();
            let found = &text[span.clone()];
            if found.len() == expected.len()
                && found
                    .iter()
                    .zip(expected)
                    .all(|(u, &b)| u.get() == u32::from(b))
            {
                self.edits.push((span, r));
            }
        }
    }
}

/// `text` with each replacement's token in place of the scalar at its path
/// (when that scalar is spelled as expected); everything else verbatim.
/// Fails when a `required` replacement found no place, or a token is not
/// JSON number syntax.
pub fn splice(text: &str, replacements: &[Replacement]) -> Result<String, TextError> {
    let out = spliced(text.as_bytes(), replacements)?;
    // Only whole scalar tokens were replaced, by ASCII: still UTF-8.
    String::from_utf8(out).map_err(|e| TextError(e.to_string()))
}

/// `splice` of a JS string's UTF-16 code units, as they are (napi copies
/// them both ways without transcoding).
pub fn splice_utf16(text: &[u16], replacements: &[Replacement]) -> Result<Vec<u16>, TextError> {
    spliced(text, replacements)
}

fn spliced<U: Unit>(text: &[U], replacements: &[Replacement]) -> Result<Vec<U>, TextError> {
    if let Some(bad) = replacements
        .iter()
        .find(|r| !is_number_token(r.token.as_bytes()))
    {
        return error(format!("{:?} is not a JSON number", bad.token));
    }
    let mut splice = Splice {
        trie: Trie::of(replacements),
        replacements,
        open: Vec::new(),
        edits: Vec::new(),
        failure: None,
    };
    walk(text, &mut splice)?;
    if let Some(failure) = splice.failure {
        return Err(failure);
    }
    let mut placed = vec![false; replacements.len()];
    for (_, r) in &splice.edits {
        placed[*r] = true;
    }
    // A replacement overridden by a later one for the same path is not missing.
    let winners: Vec<usize> = splice.trie.nodes.iter().filter_map(|n| n.leaf).collect();
    if let Some(&missing) = winners
        .iter()
        .find(|&&r| replacements[r].required && !placed[r])
    {
        return error(format!(
            "no value spelled {} at the path {:?}",
            replacements[missing].expected, replacements[missing].path
        ));
    }
    let grown: usize = splice
        .edits
        .iter()
        .map(|(_, r)| replacements[*r].token.len())
        .sum();
    let mut out = Vec::with_capacity(text.len() + grown);
    let mut copied = 0;
    for (span, r) in &splice.edits {
        out.extend_from_slice(&text[copied..span.start]);
        out.extend(replacements[*r].token.bytes().map(U::from_ascii));
        copied = span.end;
    }
    out.extend_from_slice(&text[copied..]);
    Ok(out)
}

/// Replacements from the JSON text `[[path, token, expected, required], …]`,
/// where a path holds indices (numbers) and keys, each key given as the JSON
/// text of the key (`JSON.stringify(key)`: a lone surrogate survives as its
/// escape, which a plain string across napi would not).
pub fn parse_replacements(json: &str) -> Result<Vec<Replacement>, TextError> {
    type Entry = (Vec<serde_json::Value>, String, String, bool);
    let entries: Vec<Entry> = serde_json::from_str(json).map_err(|e| {
        TextError(format!(
            "replacements are not [[path, token, expected, required], …]: {e}"
        ))
    })?;
    entries
        .into_iter()
        .map(|(path, token, expected, required)| {
            let path = path
                .iter()
                .map(|step| match step {
                    serde_json::Value::Number(n) => n
                        .as_u64()
                        .and_then(|n| usize::try_from(n).ok())
                        .map(Step::Index)
                        .ok_or_else(|| TextError(format!("{n} is not an array index"))),
                    serde_json::Value::String(quoted) => {
                        let raw = quoted
                            .strip_prefix('"')
                            .and_then(|q| q.strip_suffix('"'))
                            .ok_or_else(|| {
                                TextError(format!("the key {quoted:?} is not quoted JSON"))
                            })?;
                        Ok(Step::Key(decode_key(raw.as_bytes())?.into_owned()))
                    }
                    other => error(format!("{other} is not a key or an index")),
                })
                .collect::<Result<Vec<Step>, TextError>>()?;
            Ok(Replacement {
                path,
                token,
                expected,
                required,
            })
        })
        .collect()
}
