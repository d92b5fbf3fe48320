//! `topoctl token list|create|revoke` (and `topod token create`, which runs
//! the same code), and where `topoctl` finds the token it sends: `--token`,
//! else `TOPOCTL_TOKEN`, else the file `admin.token` in `--data-dir`
//! (default `./data`, where `topod dev` writes it). Without any, requests
//! go without a token (enough for a node with `security.insecure`).

use std::io::Write;
use std::path::Path;

use clap::Subcommand;

use super::{ApiClient, CliError};
use crate::api::types::{CreateTokenRequest, CreatedToken, RevokedToken, TokensView};
use crate::model::token::Role;

/// The token file `topod dev` writes in its data dir.
pub const TOKEN_FILE: &str = "admin.token";

/// `token list|create|revoke`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Every token: name, role, created, expires (never a secret).
    List,
    /// Create a token and print its secret, once (needs an admin token).
    Create {
        /// read (GETs), operator (switch, optimize, policy, rules) or
        /// admin (membership, tokens, faults).
        #[arg(long)]
        role: Role,
        /// Unique name (letters, digits, `.`, `_`, `-`).
        #[arg(long)]
        name: String,
        /// Expire after this long: `90s`, `30m`, `12h`, `30d`. Default:
        /// never.
        #[arg(long, value_parser = parse_duration_ms)]
        expires_in: Option<u64>,
    },
    /// Revoke a token by name: requests with it get 401 at once.
    Revoke {
        /// The token's name.
        name: String,
    },
}

/// `30d`, `12h`, `30m`, `90s` or `500ms` as milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}` has no unit: use ms, s, m, h or d"))?;
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` does not start with a number"))?;
    let scale = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}`: use ms, s, m, h or d"
            ))
        }
    };
    match n.checked_mul(scale) {
        Some(0) => Err("the duration must be more than 0".into()),
        Some(ms) => Ok(ms),
        None => Err(format!("`{text}` is too long")),
    }
}

/// The token to send: `flag` (`--token` or `TOPOCTL_TOKEN`), else
/// `DATA_DIR/admin.token` when that file exists, else none.
pub fn resolve(flag: Option<&str>, data_dir: &Path) -> Result<Option<String>, CliError> {
    if let Some(t) = flag.map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(Some(t.to_string()));
    }
    let path = data_dir.join(TOKEN_FILE);
    if !path.exists() {
        return Ok(None);
    }
    crate::security::token::read_token_file("--data-dir", &path)
        .map(Some)
        .map_err(|e| CliError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })
}

/// Header of `token list`.
pub const TOKENS_HEADER: [&str; 4] = ["NAME", "ROLE", "CREATED", "EXPIRES"];

/// One row per token, by name.
pub fn rows(view: &TokensView) -> Vec<Vec<String>> {
    view.tokens
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                t.role.to_string(),
                super::render::format_unix_ms(t.created_ms),
                t.expires_ms
                    .map_or_else(|| "never".into(), super::render::format_unix_ms),
            ]
        })
        .collect()
}

/// Runs `token ...`.
pub async fn token(
    client: &ApiClient,
    cmd: &TokenCommand,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match cmd {
        TokenCommand::List => {
            let view = client.get::<TokensView>("/v1/tokens").await?.value;
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&view).expect("JSON")
                )?;
            } else {
                writeln!(out, "{}", super::render::table(&TOKENS_HEADER, rows(&view)))?;
            }
        }
        TokenCommand::Create {
            role,
            name,
            expires_in,
        } => {
            let body = CreateTokenRequest {
                name: name.clone(),
                role: *role,
                expires_in_ms: *expires_in,
                expires_at_ms: None,
            };
            let created = client
                .send::<CreatedToken>(
                    hyper::Method::POST,
                    "/v1/tokens",
                    &serde_json::to_value(&body).expect("JSON"),
                )
                .await?
                .value;
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&created).expect("JSON")
                )?;
            } else {
                let expires = created
                    .view
                    .expires_ms
                    .map_or_else(|| "never".into(), super::render::format_unix_ms);
                writeln!(
                    out,
                    "token {} (role {}, expires {expires}); shown once, keep it safe:\n{}",
                    created.view.name, created.view.role, created.token
                )?;
            }
        }
        TokenCommand::Revoke { name } => {
            crate::model::token::check_name(name)
                .map_err(|m| CliError::BadRequest(crate::api::types::BadRequest::new(m)))?;
            let path = format!("/v1/tokens/{name}");
            let revoked = client
                .request::<RevokedToken>(hyper::Method::DELETE, &path, None)
                .await?
                .value;
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&revoked).expect("JSON")
                )?;
            } else {
                writeln!(out, "revoked token {}", revoked.revoked)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_their_unit() {
        assert_eq!(parse_duration_ms("30d"), Ok(30 * 86_400_000));
        assert_eq!(parse_duration_ms("12h"), Ok(12 * 3_600_000));
        assert_eq!(parse_duration_ms("5m"), Ok(300_000));
        assert_eq!(parse_duration_ms("90s"), Ok(90_000));
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert!(parse_duration_ms("30").is_err());
        assert!(parse_duration_ms("0s").is_err());
        assert!(parse_duration_ms("3w").is_err());
        assert!(parse_duration_ms("d").is_err());
        assert!(parse_duration_ms("99999999999999999999d").is_err());
    }

    #[test]
    fn the_token_comes_from_the_flag_then_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(resolve(None, dir.path()).unwrap(), None);
        std::fs::write(dir.path().join(TOKEN_FILE), "topod_file\n").unwrap();
        assert_eq!(
            resolve(None, dir.path()).unwrap().as_deref(),
            Some("topod_file")
        );
        assert_eq!(
            resolve(Some("topod_flag"), dir.path()).unwrap().as_deref(),
            Some("topod_flag")
        );
        std::fs::write(dir.path().join(TOKEN_FILE), "").unwrap();
        assert!(resolve(None, dir.path()).is_err(), "an empty token file");
    }

    #[test]
    fn the_list_shows_no_secret_or_hash() {
        let view = TokensView {
            tokens: vec![crate::api::types::TokenView {
                name: "ci".into(),
                role: Role::Operator,
                created_ms: 0,
                expires_ms: None,
            }],
        };
        assert_eq!(
            rows(&view),
            vec![vec![
                "ci".to_string(),
                "operator".into(),
                "1970-01-01 00:00:00.000Z".into(),
                "never".into()
            ]]
        );
    }
}
