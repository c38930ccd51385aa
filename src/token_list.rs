//! Parsing of comma-separated token id lists given on the command line.

/// `"1, 2,3"` → `[1, 2, 3]`; names the offending item on error.
pub fn parse_token_ids(text: &str) -> anyhow::Result<Vec<u32>> {
    let ids = text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<u32>().map_err(|_| {
                anyhow::anyhow!("`{item}` is not a token id (expected a non-negative integer)")
            })
        })
        .collect::<anyhow::Result<Vec<u32>>>()?;
    if ids.is_empty() {
        anyhow::bail!("the token id list is empty");
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ids_with_spaces() {
        assert_eq!(parse_token_ids("1, 2,3").unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn rejects_negative_and_empty() {
        assert!(parse_token_ids("1,-2")
            .unwrap_err()
            .to_string()
            .contains("`-2`"));
        assert!(parse_token_ids(" , ").is_err());
    }
}
