//! A bundle's version, ordered: numbers separated by dots (`1.4.2`, `0.1.0.812`), then optionally
//! a pre-release after `-` (which comes before the release) and build data after `+` (ignored in
//! the order), as in semantic versioning but with any count of numbers. Letters, digits, `.`, `-`
//! and `+` only: a version names a file.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// The longest version accepted, in bytes: it comes from a feed or a bundle.
const MAX_LEN: usize = 64;

/// A version, as the image's `IMAGE_VERSION` and its bundles' manifests give it.
#[derive(Debug, Clone)]
pub struct Version {
    text: String,
    release: Vec<u64>,
    pre: Option<String>,
}

/// Why a text is not a version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a version (numbers separated by dots, as in 1.4.2)")]
pub struct BadVersion(String);

impl FromStr for Version {
    type Err = BadVersion;

    fn from_str(text: &str) -> Result<Self, BadVersion> {
        let bad = || BadVersion(text.chars().take(MAX_LEN).collect());
        if text.len() > MAX_LEN
            || !text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-+".contains(c))
        {
            return Err(bad());
        }
        let without_build = text.split_once('+').map_or(text, |(v, _)| v);
        let (release, pre) = match without_build.split_once('-') {
            Some((r, p)) if !p.is_empty() => (r, Some(p.to_owned())),
            Some(_) => return Err(bad()),
            None => (without_build, None),
        };
        let release = release
            .split('.')
            .map(|n| n.parse::<u64>().map_err(|_| bad()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Version {
            text: text.to_owned(),
            release,
            pre,
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        // Missing numbers are zeros: 1.2 is 1.2.0.
        let len = self.release.len().max(other.release.len());
        let at = |v: &Version, i: usize| v.release.get(i).copied().unwrap_or(0);
        (0..len)
            .map(|i| at(self, i).cmp(&at(other, i)))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| match (&self.pre, &other.pre) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => pre_release(a, b),
            })
    }
}

/// Pre-releases as semantic versioning orders them: dot-separated parts, numbers by value and
/// before words, fewer parts first when all shared ones are equal.
fn pre_release(a: &str, b: &str) -> Ordering {
    let mut a = a.split('.');
    let mut b = b.split('.');
    loop {
        let order = match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => match (x.parse::<u64>(), y.parse::<u64>()) {
                (Ok(x), Ok(y)) => x.cmp(&y),
                (Ok(_), Err(_)) => Ordering::Less,
                (Err(_), Ok(_)) => Ordering::Greater,
                (Err(_), Err(_)) => x.cmp(y),
            },
        };
        if order.is_ne() {
            return order;
        }
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Version {}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn versions_order_by_their_numbers_then_pre_releases() {
        let ordered = [
            "0.1",
            "0.1.0.9",
            "0.1.0.10-rc.1",
            "0.1.0.10-rc.2",
            "0.1.0.10-rc.10",
            "0.1.0.10-rc.x",
            "0.1.0.10",
            "0.2",
            "1.0.0",
            "10.0",
        ];
        for pair in ordered.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(v("1.2"), v("1.2.0"));
        assert_eq!(v("1.2.0+gabc123"), v("1.2.0+gdef456.dirty"));
        assert_eq!(v("1.2.0+gabc123").to_string(), "1.2.0+gabc123");
    }

    #[test]
    fn anything_else_is_refused_and_shortened() {
        for text in [
            "",
            "abc",
            "1..2",
            "1.2-",
            "1.x",
            "1.2 ",
            "-rc1",
            "1.2\n",
            "1.0-../../x",
        ] {
            assert!(text.parse::<Version>().is_err(), "{text:?}");
        }
        let long = "1.".repeat(100);
        let e = long.parse::<Version>().unwrap_err().to_string();
        assert!(e.len() < 150, "{e}");
    }
}
