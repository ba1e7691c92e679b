//! The configuration file as D-Bus changes it: the whole TOML or one key, validated before
//! anything changes, written atomically (temp file, fsync, rename, fsync of the directory), with a
//! revision number kept in its first line.

use std::collections::hash_map::RandomState;
use std::fs::{File, OpenOptions};
use std::hash::BuildHasher;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use toml_edit::{ArrayOfTables, DocumentMut, Item, TableLike, Value};

use super::check::quote;
use super::{Config, ConfigError, MAX_CONFIG_BYTES};

/// The first line of a file the agent wrote: `# revision 7 (written by daisee-agent)`.
const REVISION_PREFIX: &str = "# revision ";

/// Why a change was not made.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The new configuration is invalid; nothing changed.
    #[error("{0}")]
    Invalid(ConfigError),
    /// There is no file to change (the built-in demo).
    #[error("the configuration is built in (the demo): run with --config FILE to change it")]
    BuiltIn,
    /// The revision number cannot count further; nothing changed.
    #[error(
        "the file is at revision {}, the last there is: remove its first line (`# revision …`) to count again from 0",
        u64::MAX
    )]
    LastRevision,
    /// Writing the file failed; the old file is intact.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// A change that was made.
#[derive(Debug, Clone)]
pub struct Change {
    /// The revision now on disk.
    pub revision: u64,
    /// The configuration now in force.
    pub config: Config,
    /// Whether only a restart applies it (devices changed); otherwise it applies at once.
    pub restart: bool,
}

/// The configuration file and what it says.
#[derive(Debug)]
pub struct ConfigFile {
    path: Option<PathBuf>,
    text: String,
    config: Config,
    revision: u64,
}

impl ConfigFile {
    /// A configuration read from `path` (or the built-in text, with no path), already validated.
    pub fn new(path: Option<PathBuf>, text: String, config: Config) -> Self {
        let revision = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix(REVISION_PREFIX))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        Self {
            path,
            text,
            config,
            revision,
        }
    }

    /// The whole TOML.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The revision on disk: 0 for a file the agent never wrote.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// One key (`control.import_limit_w`, `relay[1].priority`) as TOML.
    pub fn get(&self, key: &str) -> Result<String, ChangeError> {
        let doc = self.document()?;
        let item = lookup(doc.as_item(), key).ok_or_else(|| invalid(key, "no such key"))?;
        Ok(match item {
            Item::Value(v) => {
                // The value alone, without the comment or spacing around it in the file.
                let mut v = v.clone();
                v.decor_mut().clear();
                v.to_string()
            }
            other => other.to_string().trim().to_owned(),
        })
    }

    /// Replaces the whole TOML.
    pub fn set(&mut self, text: &str) -> Result<Change, ChangeError> {
        let blank = text
            .lines()
            .map(str::trim)
            .all(|l| l.is_empty() || l.starts_with('#'));
        if blank {
            return Err(invalid(
                "",
                "the configuration is empty: it would remove every device",
            ));
        }
        self.commit(text)
    }

    /// Sets one key to a TOML value (`7000`, `"on"`), keeping the rest of the file as it is.
    pub fn set_key(&mut self, key: &str, value: &str) -> Result<Change, ChangeError> {
        if value.len() > MAX_CONFIG_BYTES {
            return Err(invalid(
                key,
                &format!(
                    "the value is {} bytes, more than {MAX_CONFIG_BYTES}",
                    value.len()
                ),
            ));
        }
        let mut doc = self.document()?;
        let value: Value = value
            .parse()
            .map_err(|_| invalid(key, &format!("{} is not a TOML value", quote(value))))?;
        let (parent, last) = match key.rsplit_once('.') {
            Some((parent, last)) => (lookup_mut(doc.as_item_mut(), parent), last),
            None => (Some(doc.as_item_mut()), key),
        };
        let table = parent
            .and_then(Item::as_table_like_mut)
            .ok_or_else(|| invalid(key, "no such table"))?;
        insert(table, last, value);
        self.commit(&doc.to_string())
    }

    fn document(&self) -> Result<DocumentMut, ChangeError> {
        self.text
            .parse()
            .map_err(|e: toml_edit::TomlError| invalid("", &super::check::plain(&e.to_string())))
    }

    /// Checks `text` and writes it as the next revision, the configuration then in force.
    fn commit(&mut self, text: &str) -> Result<Change, ChangeError> {
        let path = self.path.clone().ok_or(ChangeError::BuiltIn)?;
        let revision = self
            .revision
            .checked_add(1)
            .ok_or(ChangeError::LastRevision)?;
        // The header replaces the caller's, or moves every line down one.
        let (body, added) = match text.lines().next() {
            Some(first) if first.starts_with(REVISION_PREFIX) => {
                (text.split_once('\n').map_or("", |(_, rest)| rest), 0)
            }
            _ => (text, 1),
        };
        let text = format!("{REVISION_PREFIX}{revision} (written by daisee-agent)\n{body}");
        // Parsed once, as the file will have it; errors name the caller's lines.
        let config = Config::parse(&text).map_err(|mut e| {
            e.line = e.line.map(|l| l.saturating_sub(added).max(1));
            ChangeError::Invalid(e)
        })?;
        write_atomically(&path, &text).map_err(|source| ChangeError::Write {
            path: path.display().to_string(),
            source,
        })?;
        let restart = self.config.needs_restart(&config);
        self.text = text;
        self.config = config.clone();
        self.revision = revision;
        Ok(Change {
            revision,
            config,
            restart,
        })
    }
}

/// Puts `value` at `key` in `table`; a table it replaces keeps its comments and place.
fn insert(table: &mut dyn TableLike, key: &str, value: Value) {
    // An inline table would drop the comment block above the table it replaces.
    let item = match (table.get(key), value) {
        (Some(Item::Table(old)), Value::InlineTable(new)) => {
            let mut new = new.into_table();
            *new.decor_mut() = old.decor().clone();
            new.set_position(old.position());
            Item::Table(new)
        }
        (Some(Item::ArrayOfTables(old)), Value::Array(new))
            if new.iter().all(Value::is_inline_table) =>
        {
            let mut tables = ArrayOfTables::new();
            for (i, value) in new.into_iter().enumerate() {
                if let Value::InlineTable(t) = value {
                    let mut t = t.into_table();
                    if let Some(old) = old.get(i) {
                        *t.decor_mut() = old.decor().clone();
                        t.set_position(old.position());
                    }
                    tables.push(t);
                }
            }
            Item::ArrayOfTables(tables)
        }
        (_, value) => Item::Value(value),
    };
    table.insert(key, item);
}

fn invalid(key: &str, message: &str) -> ChangeError {
    ChangeError::Invalid(ConfigError {
        line: None,
        key: (!key.is_empty()).then(|| key.to_owned()),
        message: message.to_owned(),
    })
}

/// The segments of a key: `relay[1].priority` is `relay`, index 1, `priority`.
fn segments(key: &str) -> impl Iterator<Item = (&str, Option<usize>)> {
    key.split('.').map(|segment| match segment.split_once('[') {
        Some((name, index)) => (name, index.strip_suffix(']').and_then(|i| i.parse().ok())),
        None => (segment, None),
    })
}

fn lookup<'a>(mut item: &'a Item, key: &str) -> Option<&'a Item> {
    for (name, index) in segments(key) {
        item = item.get(name)?;
        if let Some(i) = index {
            item = item.get(i)?;
        }
    }
    Some(item)
}

fn lookup_mut<'a>(mut item: &'a mut Item, key: &str) -> Option<&'a mut Item> {
    for (name, index) in segments(key) {
        item = item.get_mut(name)?;
        if let Some(i) = index {
            item = item.get_mut(i)?;
        }
    }
    Some(item)
}

/// Replaces `path` with `text` so that a power cut leaves either the old file or the new one.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // The new file keeps the old one's permissions (group-writable for daisee-admin, say).
    let permissions = std::fs::metadata(path)
        .map(|m| std::fs::Permissions::from_mode(m.permissions().mode() & 0o777))
        .ok();
    let (temp, mut file) = create_temp(dir, &name)?;
    let result = (|| {
        if let Some(p) = permissions {
            file.set_permissions(p)?;
        }
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// A new file in `dir` under a fresh random name.
fn create_temp(dir: &Path, name: &str) -> std::io::Result<(PathBuf, File)> {
    // daisee-admin may write the directory: `create_new` (O_EXCL) opens no file planted there
    // and follows no symbolic link.
    let mut tries = 0;
    loop {
        let random = RandomState::new().hash_one((std::process::id(), tries));
        let temp = dir.join(format!(".{name}.{random:016x}.tmp"));
        let opened = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp);
        match opened {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 8 => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# my gateway\n[gateway]\nname = \"home\"\n\n[sim]\n[[sim.load]]\nname = \"h\"\nprofile = \"constant\"\npower_w = 100\n\n\
                        [[sensor]]\nname = \"grid\"\nbackend = \"sim\"\nloads = [\"h\"]\n\n\
                        [control]\ngrid = \"grid\"\nimport_limit_w = 5000 # the fuse\n\n\
                        [[relay]]\nname = \"a\"\nbackend = \"sim\"\nsafe_state = \"off\"\n\n\
                        [[relay]]\nname = \"b\"\nbackend = \"sim\"\nsafe_state = \"on\"\nnominal_w = 1000\npriority = 2\n";

    fn file(name: &str) -> (ConfigFile, PathBuf) {
        let dir = std::env::temp_dir().join(format!("daisee-config-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("agent.toml");
        std::fs::write(&path, TEXT).unwrap();
        let config = Config::parse(TEXT).unwrap();
        (
            ConfigFile::new(Some(path.clone()), TEXT.to_owned(), config),
            path,
        )
    }

    #[test]
    fn one_key_changes_and_the_rest_stays_as_written() {
        let (mut f, path) = file("key");
        assert_eq!(f.get("control.import_limit_w").unwrap(), "5000");
        assert_eq!(f.get("relay[1].priority").unwrap(), "2");
        let change = f.set_key("control.import_limit_w", "7000").unwrap();
        assert_eq!(change.revision, 1);
        assert!(!change.restart, "the import limit applies at once");
        let on_disk = std::fs::read_to_string(&path).unwrap();
        assert!(
            on_disk.starts_with("# revision 1 (written by daisee-agent)\n# my gateway\n"),
            "{on_disk}"
        );
        assert!(on_disk.contains("import_limit_w = 7000"), "{on_disk}");
        // A second hot change, and one that adds a line: still no restart.
        let change = f.set_key("control.import_limit_w", "7500").unwrap();
        assert!(
            !change.restart,
            "the revision line moved nothing that matters"
        );
        let change = f.set_key("control.hysteresis_w", "300").unwrap();
        assert!(!change.restart);
        assert_eq!(change.revision, 3);
        let change = f.set_key("relay[1].priority", "3").unwrap();
        assert_eq!(change.revision, 4);
        assert!(change.restart, "a relay's settings need a restart");
        let reread = ConfigFile::new(
            Some(path.clone()),
            std::fs::read_to_string(&path).unwrap(),
            change.config,
        );
        assert_eq!(reread.revision(), 4);
        assert_eq!(reread.get("relay[1].priority").unwrap(), "3");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn an_invalid_change_names_the_key_and_changes_nothing() {
        let (mut f, path) = file("invalid");
        let err = f.set_key("relay[0].safe_state", "\"maybe\"").unwrap_err();
        assert!(err.to_string().contains("safe_state"), "{err}");
        let err = f.set_key("control.grid", "\"nowhere\"").unwrap_err();
        assert!(err.to_string().contains("control.grid"), "{err}");
        let err = f.set("[gateway]\npoll_interval_ms = 5\n").unwrap_err();
        assert!(
            err.to_string().contains("gateway.poll_interval_ms"),
            "{err}"
        );
        assert!(f.set_key("nowhere.at_all", "1").is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), TEXT);
        assert_eq!((f.revision(), f.text()), (0, TEXT));
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn the_built_in_demo_cannot_be_changed() {
        let config = Config::parse(TEXT).unwrap();
        let mut f = ConfigFile::new(None, TEXT.to_owned(), config);
        assert!(matches!(f.set(TEXT), Err(ChangeError::BuiltIn)));
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_planted_temporary_file_is_left_alone() {
        let (mut f, path) = file("planted");
        let dir = path.parent().unwrap();
        let target = dir.join("target");
        std::fs::write(&target, "precious").unwrap();
        let planted = dir.join(".agent.toml.new");
        std::os::unix::fs::symlink(&target, &planted).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
        f.set_key("control.import_limit_w", "7000").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
        assert!(
            std::fs::symlink_metadata(&planted)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("import_limit_w = 7000")
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o664, "the old file's permissions");
        assert_eq!(names_in(dir), [".agent.toml.new", "agent.toml", "target"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("daisee-config-fail-{}", std::process::id()));
        let path = dir.join("agent.toml");
        // A directory where the file should be: the rename fails after the temporary file is written.
        std::fs::create_dir_all(&path).unwrap();
        let config = Config::parse(TEXT).unwrap();
        let mut f = ConfigFile::new(Some(path.clone()), TEXT.to_owned(), config);
        let e = f.set_key("control.import_limit_w", "7000").unwrap_err();
        assert!(matches!(e, ChangeError::Write { .. }), "{e}");
        assert_eq!(names_in(&dir), ["agent.toml"]);
        assert_eq!((f.revision(), f.text()), (0, TEXT));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_empty_or_huge_configuration_is_refused() {
        let (mut f, path) = file("empty");
        for empty in ["", " \n\t\n", "# nothing\n\n   # at all\n"] {
            let e = f.set(empty).unwrap_err();
            assert!(e.to_string().contains("remove every device"), "{e}");
        }
        let huge = format!("{TEXT}#{}\n", "x".repeat(1_000_000));
        let e = f.set(&huge).unwrap_err().to_string();
        assert!(e.contains("65536") && e.len() < 100, "{e}");
        let e = f.set_key("gateway.name", &format!("\"{}\"", "x".repeat(1_000_000)));
        let e = e.unwrap_err().to_string();
        assert!(e.contains("65536") && e.len() < 100, "{e}");
        let e = f.set_key("gateway.name", &format!("\"{}", "x".repeat(10_000)));
        let e = e.unwrap_err().to_string();
        assert!(e.contains("not a TOML value") && e.len() < 100, "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), TEXT);
        assert_eq!(f.revision(), 0);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn the_last_revision_refuses_the_next_change() {
        let (_, path) = file("last");
        let text = format!("# revision {} (written by daisee-agent)\n{TEXT}", u64::MAX);
        std::fs::write(&path, &text).unwrap();
        let config = Config::parse(&text).unwrap();
        let mut f = ConfigFile::new(Some(path.clone()), text.clone(), config);
        assert_eq!(f.revision(), u64::MAX);
        let e = f.set_key("control.import_limit_w", "7000").unwrap_err();
        assert!(matches!(e, ChangeError::LastRevision), "{e}");
        assert!(e.to_string().contains("count again from 0"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn setting_a_whole_table_keeps_its_comments_and_place() {
        let (mut f, path) = file("table");
        let text = TEXT.replace("[control]", "# the fuse is 25 A\n[control]");
        f.set(&text).unwrap();
        let change = f
            .set_key("control", "{ grid = \"grid\", import_limit_w = 7000 }")
            .unwrap();
        assert!(!change.restart);
        let on_disk = std::fs::read_to_string(&path).unwrap();
        assert!(
            on_disk.contains(
                "\n\n# the fuse is 25 A\n[control]\ngrid = \"grid\"\nimport_limit_w = 7000\n"
            ),
            "{on_disk}"
        );
        assert!(
            on_disk.find("[control]") < on_disk.find("[[relay]]"),
            "{on_disk}"
        );
        let change = f
            .set_key(
                "relay",
                "[{ name = \"a\", backend = \"sim\", safe_state = \"on\" }, \
                 { name = \"b\", backend = \"sim\", safe_state = \"on\" }]",
            )
            .unwrap();
        assert!(change.restart);
        let on_disk = std::fs::read_to_string(&path).unwrap();
        assert_eq!(on_disk.matches("[[relay]]").count(), 2, "{on_disk}");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn errors_name_the_callers_lines() {
        let (mut f, path) = file("lines");
        let bad = "[gateway]\nname = \"x\"\npoll_interval_ms = 5\n";
        assert_eq!(line_of(f.set(bad)), Some(3));
        f.set_key("control.import_limit_w", "7000").unwrap();
        // The file now starts with its revision line; the caller's text may or may not.
        assert_eq!(line_of(f.set(bad)), Some(3));
        let with_header = f.text().replace("power_w = 100", "power_w = -1");
        assert_eq!(line_of(f.set(&with_header)), Some(10));
        assert_eq!(line_of(f.set_key("sim.load[0].power_w", "-1")), Some(10));
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    fn line_of(result: Result<Change, ChangeError>) -> Option<usize> {
        match result {
            Err(ChangeError::Invalid(e)) => e.line,
            other => panic!("{other:?}"),
        }
    }
}
