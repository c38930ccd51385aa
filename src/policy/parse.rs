//! Extracting the answer of a response: the content of the **last** `\mask{...}` or
//! `\boxed{...}` with balanced braces (DESIGN.md §3–4). An opening without its
//! closing brace does not count.

/// Content of the last `\{command}{...}` in `text` whose braces balance.
pub fn last_braced(text: &str, command: &str) -> Option<String> {
    let opener = format!("\\{command}{{");
    let mut found = None;
    let mut search_from = 0;
    while let Some(offset) = text[search_from..].find(&opener) {
        let content_start = search_from + offset + opener.len();
        if let Some(content_end) = matching_brace(&text[content_start..]) {
            found = Some(text[content_start..content_start + content_end].to_string());
        }
        search_from = content_start;
    }
    found
}

/// Byte offset of the `}` closing an already opened brace, if any.
fn matching_brace(text: &str) -> Option<usize> {
    let mut depth = 1usize;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_balanced_occurrence_wins() {
        assert_eq!(
            last_braced(r"a \boxed{x} b \boxed{y}", "boxed").as_deref(),
            Some("y")
        );
        assert_eq!(
            last_braced(r"\boxed{\frac{1}{2}}", "boxed").as_deref(),
            Some(r"\frac{1}{2}")
        );
        // The last opening never closes: the earlier complete one counts.
        assert_eq!(
            last_braced(r"\mask{Paris} then \mask{Lon", "mask").as_deref(),
            Some("Paris")
        );
        assert_eq!(last_braced("no answer", "boxed"), None);
        assert_eq!(last_braced(r"\boxed{", "boxed"), None);
        assert_eq!(
            last_braced(r"\mask{Zürich – 東京}", "mask").as_deref(),
            Some("Zürich – 東京")
        );
        // A mask inside a boxed answer is not a boxed answer.
        assert_eq!(last_braced(r"\mask{a}", "boxed"), None);
        assert_eq!(last_braced(r"\boxed{}", "boxed").as_deref(), Some(""));
    }
}
