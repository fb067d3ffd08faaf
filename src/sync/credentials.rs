//! Using the credentials of [`Credentials`]: checked once at start, read at each fetch.
//!
//! Secrets stay in memory for one fetch: the token becomes a request header (never a URL, a
//! config value or a log field), and the SSH key is a path handed to `ssh -i`.

use std::ffi::OsString;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use gix::url::Scheme;

use super::settings::Credentials;
use super::SyncError;

/// The user name sent with a token when the URL names none: GitHub's convention, and accepted
/// by the other forges that take "any user name".
const DEFAULT_TOKEN_USER: &str = "x-access-token";

/// A token read from its file. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// The `Authorization` header value: Basic, with `user` (the URL's) or the default.
    pub fn basic_header(&self, user: Option<&str>) -> String {
        use base64::Engine;
        let user = user.filter(|u| !u.is_empty()).unwrap_or(DEFAULT_TOKEN_USER);
        let pair = format!("{user}:{}", self.0);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

impl Credentials {
    /// Refuses, before any I/O on the mirror, what cannot work: a secret in the URL, a
    /// credential the scheme cannot use, a token for a non-loopback `http://` remote, or a
    /// credential file that cannot be read.
    pub(super) fn check(&self, url: &gix::Url, display: &str) -> Result<(), SyncError> {
        if url.password().is_some() {
            return Err(SyncError::SecretInUrl {
                remote: display.to_owned(),
            });
        }
        let not_for = |credential| SyncError::CredentialNotApplicable {
            credential,
            remote: display.to_owned(),
        };
        if self.token_file.is_some() {
            let usable = match url.scheme {
                Scheme::Https => true,
                Scheme::Http => url.host().is_some_and(is_loopback),
                _ => false,
            };
            if !usable {
                return Err(not_for("--repo-token-file (https:// remotes only)"));
            }
            self.read_token()?;
        }
        if url.scheme != Scheme::Ssh {
            if self.ssh_key_file.is_some() {
                return Err(not_for("--ssh-key-file (ssh remotes only)"));
            }
            if self.ssh_known_hosts.is_some() {
                return Err(not_for("--ssh-known-hosts (ssh remotes only)"));
            }
        }
        for path in [&self.ssh_key_file, &self.ssh_known_hosts]
            .into_iter()
            .flatten()
        {
            std::fs::File::open(path).map_err(|source| SyncError::CredentialFile {
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// The token, read now (so a rotated file is picked up at the next fetch); `None` without
    /// a token file. An empty file is an error: sending an empty password fails confusingly.
    pub(super) fn read_token(&self) -> Result<Option<Token>, SyncError> {
        let Some(path) = &self.token_file else {
            return Ok(None);
        };
        let unreadable = |source| SyncError::CredentialFile {
            path: path.clone(),
            source,
        };
        let content = std::fs::read_to_string(path).map_err(unreadable)?;
        let token = content.trim();
        if token.is_empty() || token.contains(['\n', '\r']) {
            return Err(unreadable(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "expected one token on one line",
            )));
        }
        Ok(Some(Token(token.to_owned())))
    }

    /// The `ssh` command line gix runs (through `sh -c`, hence the quoting) for ssh remotes.
    ///
    /// - `BatchMode=yes`: never ask for a passphrase or a host-key confirmation on a terminal.
    /// - `StrictHostKeyChecking=yes`: an unknown or changed host key refuses the connection.
    /// - `-i KEY -o IdentitiesOnly=yes`: only the configured key, not the agent's or defaults.
    /// - `ConnectTimeout` and `ServerAlive*`: a silent server is given up after about `stall`,
    ///   since gix cannot time out a read from the ssh process itself.
    /// - `-E LOG`: ssh's own messages go to `log`, where berth reads why a connection failed
    ///   (gix only recognizes a few of them and prints the rest to berth's stderr).
    pub(super) fn ssh_command(&self, stall: Duration, log: &Path) -> OsString {
        let stall_s = stall.as_secs().max(1);
        // Three unanswered keep-alives end the session.
        let alive_s = stall_s.div_ceil(3).max(1);
        let mut words = vec![
            "ssh".to_owned(),
            "-o".to_owned(),
            "BatchMode=yes".to_owned(),
            "-o".to_owned(),
            "StrictHostKeyChecking=yes".to_owned(),
            "-o".to_owned(),
            format!("ConnectTimeout={stall_s}"),
            "-o".to_owned(),
            format!("ServerAliveInterval={alive_s}"),
            "-o".to_owned(),
            "ServerAliveCountMax=3".to_owned(),
            "-E".to_owned(),
            path_word(log),
        ];
        if let Some(known_hosts) = &self.ssh_known_hosts {
            words.push("-o".to_owned());
            words.push(format!("UserKnownHostsFile={}", known_hosts.display()));
            // Also in place of /etc/ssh/ssh_known_hosts: only the given file decides.
            words.push("-o".to_owned());
            words.push("GlobalKnownHostsFile=/dev/null".to_owned());
        }
        if let Some(key) = &self.ssh_key_file {
            words.push("-i".to_owned());
            words.push(path_word(key));
            words.push("-o".to_owned());
            words.push("IdentitiesOnly=yes".to_owned());
        }
        let quoted: Vec<String> = words.iter().map(|w| shell_quote(w)).collect();
        OsString::from(quoted.join(" "))
    }
}

fn path_word(path: &Path) -> String {
    path.display().to_string()
}

/// Single-quotes `word` for `sh` unless it is made only of characters the shell leaves alone.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=./:,@+%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// `localhost`, `127.x.y.z`, `::1`: where plain http cannot be read by anyone else.
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn shell_quoting_survives_spaces_and_quotes_in_paths() {
        assert_eq!(shell_quote("IdentitiesOnly=yes"), "IdentitiesOnly=yes");
        assert_eq!(shell_quote("/srv/my keys/id"), "'/srv/my keys/id'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn ssh_command_checks_host_keys_strictly_and_uses_only_the_given_key() {
        let credentials = Credentials {
            token_file: None,
            ssh_key_file: Some(PathBuf::from("/etc/berth/deploy key")),
            ssh_known_hosts: Some(PathBuf::from("/etc/berth/known_hosts")),
        };
        let log = Path::new("/var/lib/berth/git/berth-ssh.log");
        let command = credentials.ssh_command(Duration::from_secs(20), log);
        assert_eq!(
            command.to_string_lossy(),
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=20 \
             -o ServerAliveInterval=7 -o ServerAliveCountMax=3 -E /var/lib/berth/git/berth-ssh.log \
             -o UserKnownHostsFile=/etc/berth/known_hosts -o GlobalKnownHostsFile=/dev/null \
             -i '/etc/berth/deploy key' -o IdentitiesOnly=yes"
        );
        let plain = Credentials::default().ssh_command(Duration::from_millis(300), log);
        assert!(
            plain.to_string_lossy().contains("ConnectTimeout=1 "),
            "{plain:?}"
        );
        assert!(!plain.to_string_lossy().contains("-i "), "{plain:?}");
    }

    #[test]
    fn token_goes_out_as_basic_auth_with_the_url_user_or_the_default() {
        let token = Token("t0k3n".to_owned());
        // base64("x-access-token:t0k3n") and base64("oauth2:t0k3n")
        assert_eq!(
            token.basic_header(None),
            "Basic eC1hY2Nlc3MtdG9rZW46dDBrM24="
        );
        assert_eq!(token.basic_header(Some("oauth2")), "Basic b2F1dGgyOnQwazNu");
        assert!(!format!("{token:?}").contains("t0k3n"));
    }

    #[test]
    fn loopback_hosts_are_recognized() {
        for host in ["localhost", "127.0.0.1", "127.8.9.10", "[::1]", "::1"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "example.com",
            "10.0.0.1",
            "[2001:db8::1]",
            "localhost.example",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
