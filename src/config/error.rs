//! Why a node config was refused. Every variant names the key.

use std::path::PathBuf;

/// A config that cannot be loaded or is invalid. Start-up stops with this
/// message; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The config file given does not exist or cannot be read.
    #[error("cannot read config file {}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    /// A key that no config field has (a typo, or a removed key).
    #[error("unknown config key `{key}` ({origin})")]
    UnknownKey { key: String, origin: String },
    /// A required key is absent.
    #[error("missing config key `{key}`")]
    MissingKey { key: String },
    /// A value of the wrong type or shape.
    #[error("config key `{key}` ({origin}): {reason}")]
    Parse {
        key: String,
        origin: String,
        reason: String,
    },
    /// A well-formed value outside its limits.
    #[error("{key} {reason}")]
    Invalid { key: String, reason: String },
}

impl ConfigError {
    /// The dotted key the error is about (empty for [`ConfigError::File`]).
    pub fn key(&self) -> &str {
        match self {
            ConfigError::File { .. } => "",
            ConfigError::UnknownKey { key, .. }
            | ConfigError::MissingKey { key }
            | ConfigError::Parse { key, .. }
            | ConfigError::Invalid { key, .. } => key,
        }
    }

    pub(crate) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// Translates figment's error into one naming the dotted key and where
    /// the value came from (file or environment variable).
    pub(crate) fn from_figment(e: figment::Error) -> Self {
        use figment::error::Kind;
        let mut path = e.path.clone();
        match e.kind.clone() {
            // figment's path usually ends with the field already.
            Kind::UnknownField(field, _) => {
                if path.last() != Some(&field) {
                    path.push(field);
                }
                ConfigError::UnknownKey {
                    key: path.join("."),
                    origin: origin(&e, &path),
                }
            }
            Kind::MissingField(field) => {
                if path.last().map(String::as_str) != Some(&*field) {
                    path.push(field.into_owned());
                }
                ConfigError::MissingKey {
                    key: path.join("."),
                }
            }
            kind => ConfigError::Parse {
                key: path.join("."),
                origin: origin(&e, &path),
                reason: kind.to_string(),
            },
        }
    }
}

/// Where the offending value came from: the file, or the env variable
/// that sets `path`.
fn origin(e: &figment::Error, path: &[String]) -> String {
    let Some(md) = &e.metadata else {
        return "built-in default".to_string();
    };
    if let Some(figment::Source::File(p)) = &md.source {
        return format!("in {}", p.display());
    }
    if md.name.contains("environment") {
        // figment names the provider "`PREFIX_` environment variable(s)".
        let prefix = md.name.split('`').nth(1).unwrap_or(super::ENV_PREFIX);
        let var = path.join("__").to_ascii_uppercase();
        return format!("from env var {prefix}{var}");
    }
    md.name.to_string()
}
