//! Token secrets: generated from the operating system's random source,
//! `topod_` followed by 43 characters of base64url (32 random bytes, no
//! padding). Only their SHA-256 hash is ever stored
//! ([`crate::model::token::hash_secret`]); the secret is shown once.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;

/// Every token starts with this.
pub const TOKEN_PREFIX: &str = "topod_";
/// Random bytes in a token.
pub const TOKEN_RANDOM_BYTES: usize = 32;
/// Length of a token string: the prefix and 43 base64url characters.
pub const TOKEN_LEN: usize = TOKEN_PREFIX.len() + 43;

/// A new random token secret.
pub fn generate() -> String {
    let mut bytes = [0u8; TOKEN_RANDOM_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Why a token file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("{key}: cannot read {path}: {error}")]
    Unreadable {
        key: &'static str,
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error("{key}: cannot write {path}: {error}")]
    Unwritable {
        key: &'static str,
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error("{key}: {path} is empty (it must hold one token on its first line)")]
    Empty {
        key: &'static str,
        path: std::path::PathBuf,
    },
    #[error("{key}: {path} holds a line of {len} bytes; a token is at most {max}")]
    TooLong {
        key: &'static str,
        path: std::path::PathBuf,
        len: usize,
        max: usize,
    },
}

/// Longest token accepted from a file or a header, bytes (far above
/// [`TOKEN_LEN`]: an operator may choose their own initial token).
pub const MAX_TOKEN_BYTES: usize = 512;

/// Reads a token file: its first line, trimmed. `key` names the setting
/// the path came from, for the error.
pub fn read_token_file(
    key: &'static str,
    path: &std::path::Path,
) -> Result<String, TokenFileError> {
    let text = std::fs::read_to_string(path).map_err(|error| TokenFileError::Unreadable {
        key,
        path: path.to_path_buf(),
        error,
    })?;
    let token = text.lines().next().unwrap_or("").trim();
    if token.is_empty() {
        return Err(TokenFileError::Empty {
            key,
            path: path.to_path_buf(),
        });
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenFileError::TooLong {
            key,
            path: path.to_path_buf(),
            len: token.len(),
            max: MAX_TOKEN_BYTES,
        });
    }
    Ok(token.to_string())
}

/// Writes a new random token to `path` with mode 0600 unless the file
/// exists, and returns the token in the file.
pub fn ensure_token_file(path: &std::path::Path) -> Result<String, TokenFileError> {
    const KEY: &str = "admin token file";
    if !path.exists() {
        let token = generate();
        write_private(path, &format!("{token}\n")).map_err(|error| TokenFileError::Unwritable {
            key: KEY,
            path: path.to_path_buf(),
            error,
        })?;
    }
    read_token_file(KEY, path)
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_base64url() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert_eq!(a.len(), TOKEN_LEN);
        let body = a.strip_prefix(TOKEN_PREFIX).unwrap();
        assert!(body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(URL_SAFE_NO_PAD.decode(body).unwrap().len(), 32);
    }

    #[test]
    fn token_files_are_created_private_kept_and_checked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/admin.token");
        let first = ensure_token_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(ensure_token_file(&path).unwrap(), first, "kept on restart");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let e = read_token_file("security.initial_admin_token_file", &empty).unwrap_err();
        assert!(e.to_string().contains("security.initial_admin_token_file"));
        assert!(matches!(e, TokenFileError::Empty { .. }));
        let missing = read_token_file("k", &dir.path().join("nope")).unwrap_err();
        assert!(matches!(missing, TokenFileError::Unreadable { .. }));
    }
}
