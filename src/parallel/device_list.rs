//! `--devices 0,1,...`: the device indices of the chosen backend to train on.

use std::str::FromStr;

/// Distinct device indices, in the order given (the first holds the checkpoints and
/// the export).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceList(Vec<usize>);

impl DeviceList {
    /// One device: the backend's default.
    pub fn single() -> Self {
        Self(vec![0])
    }

    pub fn indices(&self) -> &[usize] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for DeviceList {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut indices = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            let index: usize = part.parse().map_err(|_| {
                format!("`{part}` is not a device index (expected e.g. `--devices 0,1`)")
            })?;
            if indices.contains(&index) {
                return Err(format!("device {index} is listed twice"));
            }
            indices.push(index);
        }
        if indices.is_empty() {
            return Err("no device given".into());
        }
        Ok(Self(indices))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_indices_and_refuses_repeats_and_words() {
        assert_eq!("0, 2,1".parse::<DeviceList>().unwrap().indices(), [0, 2, 1]);
        assert!("0,0".parse::<DeviceList>().unwrap_err().contains("twice"));
        assert!("cuda".parse::<DeviceList>().unwrap_err().contains("`cuda`"));
        assert!("".parse::<DeviceList>().is_err());
    }
}
