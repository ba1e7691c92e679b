//! Where things are in the file, the error that names them, and the checks every table shares.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;

use daisee_hal::MilliWatts;
use serde::Deserialize;

/// The most characters of a value an error message repeats.
const QUOTE_CHARS: usize = 40;

/// The most characters of a message from the TOML parser, whatever it repeats of the input.
const MESSAGE_CHARS: usize = 300;

/// The longest name, in bytes: names become D-Bus object paths and log fields.
const MAX_NAME_BYTES: usize = 64;

/// A configuration error, located in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line of the offending key, when known.
    pub line: Option<usize>,
    /// Dotted path of the offending key (`sensor[2].address`), when known.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// An error about the whole file, at no key.
    pub(super) fn whole(message: impl Into<String>) -> Self {
        Self {
            line: None,
            key: None,
            message: message.into(),
        }
    }
}

/// A place in the file to point errors at: the whole file, or one table of it.
#[derive(Debug)]
pub(super) struct Locator<'s> {
    source: &'s str,
    /// The table's span; none for the file's top level.
    span: Option<Range<usize>>,
    /// The table's dotted path (`relay[1]`).
    path: String,
}

impl<'s> Locator<'s> {
    /// The top level of `source`.
    pub(super) fn file(source: &'s str) -> Self {
        Self {
            source,
            span: None,
            path: String::new(),
        }
    }

    /// The table at `span`, named `path` in errors.
    pub(super) fn table(&self, span: Range<usize>, path: impl Into<String>) -> Self {
        Self {
            source: self.source,
            span: Some(span),
            path: path.into(),
        }
    }

    /// The line of the table's header (1 at the top level).
    pub(super) fn line(&self) -> usize {
        self.line_of(self.span.as_ref().map_or(0, |s| s.start))
    }

    /// An error at `key` of the table (at the table itself if `key` is empty).
    pub(super) fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let line = self.span.as_ref().map(|span| self.key_line(span, key));
        let key = match (self.path.is_empty(), key.is_empty()) {
            (true, _) => key.to_owned(),
            (false, true) => self.path.clone(),
            (false, false) => format!("{}.{key}", self.path),
        };
        ConfigError {
            line,
            key: (!key.is_empty()).then_some(key),
            message: message.into(),
        }
    }

    /// The TOML parser's error, in the file's words.
    pub(super) fn syntax(&self, e: &toml::de::Error) -> ConfigError {
        ConfigError {
            line: e.span().map(|s| self.line_of(s.start)),
            key: e.span().and_then(|s| self.key_at(s.start)),
            message: plain(e.message()),
        }
    }

    fn line_of(&self, offset: usize) -> usize {
        self.source[..offset.min(self.source.len())]
            .bytes()
            .filter(|&b| b == b'\n')
            .count()
            + 1
    }

    /// The dotted path (`relay[1].safe_state`) of the key set on the line at `offset`, if any.
    fn key_at(&self, offset: usize) -> Option<String> {
        let offset = offset.min(self.source.len());
        let start = self.source[..offset].rfind('\n').map_or(0, |i| i + 1);
        let line = self.source[start..].lines().next()?;
        let key = line.split_once('=')?.0.trim();
        if key.is_empty() || key.starts_with('[') {
            return None;
        }
        // The table the line is in: the last header above it, counted if it is an array's.
        let above = &self.source[..start];
        let header = above
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('['))?;
        let path = match header.strip_prefix("[[").and_then(|h| h.strip_suffix("]]")) {
            Some(name) => {
                let index = above.lines().filter(|l| l.trim() == header).count() - 1;
                format!("{name}[{index}]")
            }
            None => header.trim_matches(|c| c == '[' || c == ']').to_owned(),
        };
        Some(shorten(&format!("{path}.{key}")))
    }

    /// The line of `key` in the table at `span`, or the header's own line.
    fn key_line(&self, span: &Range<usize>, key: &str) -> usize {
        let start = span.start.min(self.source.len());
        if key.is_empty() {
            return self.line_of(start);
        }
        let mut offset = start;
        // The table's body runs from its header to the next header.
        for (i, line) in self.source[start..].split_inclusive('\n').enumerate() {
            let trimmed = line.trim_start();
            if i > 0 && trimmed.starts_with('[') {
                break;
            }
            if trimmed
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
            {
                return self.line_of(offset);
            }
            offset += line.len();
        }
        self.line_of(start)
    }
}

/// `value` in backquotes, cut short with an ellipsis: a huge input never makes a huge message.
pub(super) fn quote(value: &str) -> String {
    format!("`{}`", shorten(value))
}

fn shorten(value: &str) -> String {
    match value.char_indices().nth(QUOTE_CHARS) {
        Some((end, _)) => format!("{}…", &value[..end]),
        None => value.to_owned(),
    }
}

/// A serde or TOML message without Rust type names and with every quoted value cut short.
pub(super) fn plain(message: &str) -> String {
    let message = message.trim_end();
    let message = match message.rsplit_once(", expected ") {
        Some((found, expected)) => format!(
            "{}, expected {}",
            found_in_words(found),
            expected_in_words(expected)
        ),
        None => message.to_owned(),
    };
    let (mut out, mut kept) = (String::new(), 0);
    // The quote being read (its closing character) and how many characters of it were kept.
    let mut quoted: Option<(char, usize)> = None;
    for c in message.chars() {
        if kept >= MESSAGE_CHARS {
            out.push('…');
            break;
        }
        let keep = match &mut quoted {
            Some((close, _)) if c == *close => {
                quoted = None;
                true
            }
            Some((_, n)) => {
                *n += 1;
                if *n == QUOTE_CHARS + 1 {
                    out.push('…');
                }
                *n <= QUOTE_CHARS
            }
            None => {
                if c == '`' || c == '"' {
                    quoted = Some((c, 0));
                }
                true
            }
        };
        if keep {
            out.push(c);
            kept += 1;
        }
    }
    out
}

/// What serde found, in TOML's words.
fn found_in_words(found: &str) -> String {
    for (serde, toml) in [
        ("sequence", "a list"),
        ("map", "a table"),
        ("floating point", "number"),
        ("integer", "whole number"),
    ] {
        for prefix in ["invalid type: ", "invalid value: "] {
            if let Some(rest) = found
                .strip_prefix(prefix)
                .and_then(|f| f.strip_prefix(serde))
            {
                return format!("{prefix}{toml}{rest}");
            }
        }
    }
    found.to_owned()
}

/// What serde expected, as the file's author would say it.
fn expected_in_words(expected: &str) -> String {
    let words = match expected {
        "f32" | "f64" => "a number",
        "u8" => "a whole number from 0 to 255",
        "u16" => "a whole number from 0 to 65535",
        "u32" => "a whole number from 0 to 4294967295",
        "u64" => "a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" => "a whole number",
        "a boolean" | "bool" => "true or false",
        "a sequence" => "a list",
        "a string" => "a string",
        "a map" => "a table",
        other if other.starts_with("struct ") => "a table",
        other if other.starts_with("enum ") => "a string",
        other => return other.to_owned(),
    };
    words.to_owned()
}

/// An http or https URL with a host (a feed, a proxy, a ledger's node).
pub(super) fn http_url(
    at: &Locator<'_>,
    key: &str,
    text: &str,
) -> Result<daisee_update::Url, ConfigError> {
    text.parse::<daisee_update::Url>()
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| at.error(key, format!("{} is not an http or https URL", quote(text))))
}

/// Checks a name: not blank, at most 64 bytes, no control characters.
pub(super) fn name(at: &Locator<'_>, key: &str, value: &str) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        return Err(at.error(key, "must not be empty"));
    }
    if value.len() > MAX_NAME_BYTES {
        return Err(at.error(
            key,
            format!(
                "{} is {} bytes long, more than {MAX_NAME_BYTES}",
                quote(value),
                value.len()
            ),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(at.error(key, "must not contain control characters"));
    }
    Ok(())
}

/// Names that must differ from each other (the channels, the relays, the buses, the loads).
#[derive(Debug, Default)]
pub(super) struct Names(HashSet<String>);

impl Names {
    /// Checks the table's `name` and takes it.
    pub(super) fn add(&mut self, at: &Locator<'_>, value: &str) -> Result<(), ConfigError> {
        name(at, "name", value)?;
        if !self.0.insert(value.to_owned()) {
            return Err(at.error("name", format!("{} is used twice", quote(value))));
        }
        Ok(())
    }

    /// Whether `value` is taken.
    pub(super) fn contains(&self, value: &str) -> bool {
        self.0.contains(value)
    }
}

/// Checks that `key`'s `value` names a channel: a sensor, meter or inverter of `channels`.
pub(super) fn channel(
    at: &Locator<'_>,
    channels: &Names,
    key: &str,
    value: &str,
) -> Result<(), ConfigError> {
    if !channels.contains(value) {
        return Err(at.error(
            key,
            format!("no sensor, meter or inverter named {}", quote(value)),
        ));
    }
    Ok(())
}

/// A required key's value, or an error saying what to give.
pub(super) fn required<T>(
    at: &Locator<'_>,
    key: &str,
    value: Option<T>,
    what: &str,
) -> Result<T, ConfigError> {
    value.ok_or_else(|| at.error(key, format!("missing: {what}")))
}

/// `w` watts as milliwatts: finite, at most `max_mw` MW, above 0 unless `zero` is allowed.
pub(super) fn watts(
    at: &Locator<'_>,
    key: &str,
    w: f64,
    zero: bool,
    max_mw: u32,
) -> Result<MilliWatts, ConfigError> {
    let max = f64::from(max_mw) * 1e6;
    if w.is_finite() && w <= max && (w > 0.0 || (zero && w == 0.0)) {
        return Ok(MilliWatts::from_watts(w));
    }
    let message = if zero {
        format!("{w} W is outside 0 to {max_mw} MW")
    } else {
        format!("{w} W must be above 0 and at most {max_mw} MW")
    };
    Err(at.error(key, message))
}

/// Where a sensor or relay is: real hardware through Linux or a Raspberry Pi, or simulated.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(super) enum Backend {
    Linux,
    Rpi,
    Sim,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_printable_and_not_blank() {
        let at = Locator::file("");
        assert!(name(&at, "name", "pv").is_ok());
        assert!(name(&at, "name", &"é".repeat(32)).is_ok());
        for bad in ["", "  ", &"x".repeat(65), "a\nb", "tab\there"] {
            assert!(name(&at, "name", bad).is_err(), "{bad:?}");
        }
        let e = name(&at, "name", &"x".repeat(1_000_000)).unwrap_err();
        assert!(e.message.len() < 100, "{e}");
    }

    #[test]
    fn messages_say_what_is_expected_in_words_and_never_echo_much() {
        assert_eq!(
            plain("invalid type: string \"0.1\", expected f64"),
            "invalid type: string \"0.1\", expected a number"
        );
        assert_eq!(
            plain("invalid type: integer `1`, expected a boolean"),
            "invalid type: whole number `1`, expected true or false"
        );
        assert_eq!(
            plain("invalid type: sequence, expected u8"),
            "invalid type: a list, expected a whole number from 0 to 255"
        );
        let long = format!(
            "invalid type: string \"{}\", expected f64",
            "x".repeat(1_000_000)
        );
        let short = plain(&long);
        assert!(short.len() < 120, "{short}");
        assert!(short.ends_with("…\", expected a number"), "{short}");
        assert_eq!(quote(&"y".repeat(50)), format!("`{}…`", "y".repeat(40)));
    }
}
