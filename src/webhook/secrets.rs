//! `--webhook-secret-file [PROVIDER=]FILE`: which secret each receiver checks.
//!
//! The setting is repeatable. `FILE` alone is the catch-all: one secret for every provider.
//! `PROVIDER=FILE` sets one provider's secret and wins over the catch-all. A provider with
//! neither has its receiver switched off (404), never open.
//!
//! Parsing ([`SecretFileSetting::parse`]) is pure; [`Secrets::load`] then reads the files.
//! Errors name the flag and the file, never a secret.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::secret::SecretError;
use super::{Provider, Secret};

/// The flag, as errors name it.
pub const FLAG: &str = "--webhook-secret-file";

/// One `--webhook-secret-file` value, parsed but not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFileSetting {
    /// `None` for the catch-all.
    pub provider: Option<Provider>,
    pub path: PathBuf,
}

/// A `--webhook-secret-file` value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The value is empty, or `PROVIDER=` has no file.
    #[error("{FLAG}: {value:?} is not FILE or PROVIDER=FILE")]
    Malformed { value: String },
    /// `NAME=FILE` where NAME is no provider (and, having no `/`, is not a path either).
    #[error("{FLAG}: {value:?}: {source}")]
    UnknownProvider {
        value: String,
        #[source]
        source: super::provider::UnknownProvider,
    },
    /// The same provider (or the catch-all) is given twice: which one was meant?
    #[error("{FLAG}: {} given twice ({first} and {second})", scope(*.provider))]
    Duplicate {
        provider: Option<Provider>,
        first: String,
        second: String,
    },
    /// The file cannot be read or is empty.
    #[error("{FLAG}: {source}")]
    File {
        #[source]
        source: SecretError,
    },
    /// A GitLab secret starting with `whsec_` (a signing token) whose rest is not base64.
    #[error("{FLAG}: {path}: a GitLab signing token is whsec_ followed by base64")]
    SigningToken { path: String },
}

fn scope(provider: Option<Provider>) -> String {
    match provider {
        Some(p) => format!("a secret for {p}"),
        None => "a secret for every provider".to_string(),
    }
}

impl SecretFileSetting {
    /// `FILE` or `PROVIDER=FILE`. The part before the first `=` is a provider name when it
    /// has no `/`; otherwise the whole value is a path (write `./a=b` for a file named `a=b`
    /// in the working directory). A name that is no provider is an error rather than a path,
    /// so `gihub=/etc/secret` is reported as a typo and not as a missing file.
    pub fn parse(value: &str) -> Result<SecretFileSetting, SecretsError> {
        let malformed = || SecretsError::Malformed {
            value: value.to_string(),
        };
        let (provider, path) = match value.split_once('=') {
            Some((name, path)) if !name.contains('/') => {
                let provider =
                    name.parse::<Provider>()
                        .map_err(|source| SecretsError::UnknownProvider {
                            value: value.to_string(),
                            source,
                        })?;
                (Some(provider), path)
            }
            _ => (None, value),
        };
        if path.is_empty() {
            return Err(malformed());
        }
        Ok(SecretFileSetting {
            provider,
            path: PathBuf::from(path),
        })
    }
}

/// The secret each provider's receiver checks.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    every: Option<Secret>,
    one: BTreeMap<Provider, Secret>,
}

impl Secrets {
    /// Parses and reads every `--webhook-secret-file` value.
    pub fn from_flags<S: AsRef<str>>(values: &[S]) -> Result<Secrets, SecretsError> {
        let settings = values
            .iter()
            .map(|v| SecretFileSetting::parse(v.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Secrets::load(&settings)
    }

    /// Reads the files of parsed settings, refusing duplicates.
    pub fn load(settings: &[SecretFileSetting]) -> Result<Secrets, SecretsError> {
        let mut secrets = Secrets::default();
        for (i, s) in settings.iter().enumerate() {
            if let Some(first) = settings[..i].iter().find(|f| f.provider == s.provider) {
                return Err(SecretsError::Duplicate {
                    provider: s.provider,
                    first: first.path.display().to_string(),
                    second: s.path.display().to_string(),
                });
            }
            let secret =
                Secret::from_file(&s.path).map_err(|source| SecretsError::File { source })?;
            let gitlab = matches!(s.provider, None | Some(Provider::Gitlab));
            if gitlab && super::hosts::gitlab::is_malformed_signing_token(&secret) {
                return Err(SecretsError::SigningToken {
                    path: s.path.display().to_string(),
                });
            }
            match s.provider {
                Some(p) => {
                    secrets.one.insert(p, secret);
                }
                None => secrets.every = Some(secret),
            }
        }
        Ok(secrets)
    }

    /// Builds secrets in code (tests, embedding): `every` for all providers, `one` overriding.
    pub fn new(
        every: Option<Secret>,
        one: impl IntoIterator<Item = (Provider, Secret)>,
    ) -> Secrets {
        Secrets {
            every,
            one: one.into_iter().collect(),
        }
    }

    /// The secret `provider`'s receiver checks; `None` means the receiver is off.
    pub fn get(&self, provider: Provider) -> Option<&Secret> {
        self.one.get(&provider).or(self.every.as_ref())
    }

    /// The providers whose receivers are on.
    pub fn enabled(&self) -> Vec<Provider> {
        Provider::ALL
            .into_iter()
            .filter(|p| self.get(*p).is_some())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &str) -> SecretFileSetting {
        SecretFileSetting::parse(v).unwrap()
    }

    #[test]
    fn a_bare_file_is_the_catch_all_and_a_prefix_names_one_provider() {
        assert_eq!(
            parse("/etc/berth/hook"),
            SecretFileSetting {
                provider: None,
                path: "/etc/berth/hook".into()
            }
        );
        assert_eq!(
            parse("gitlab=/etc/berth/gl"),
            SecretFileSetting {
                provider: Some(Provider::Gitlab),
                path: "/etc/berth/gl".into()
            }
        );
        assert_eq!(parse("forgejo=f").provider, Some(Provider::Gitea));
        assert_eq!(parse("/srv/a=b").provider, None);
        assert_eq!(parse("./a=b").path, PathBuf::from("./a=b"));
    }

    #[test]
    fn malformed_values_name_the_flag() {
        for v in ["", "github="] {
            let e = SecretFileSetting::parse(v).unwrap_err().to_string();
            assert!(e.starts_with("--webhook-secret-file: "), "{e}");
        }
        let e = SecretFileSetting::parse("gihub=/etc/s")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown webhook provider \"gihub\""), "{e}");
    }

    #[test]
    fn one_provider_overrides_the_catch_all_and_the_rest_stay_off() {
        let secrets = Secrets::new(
            Some(Secret::new("all")),
            [(Provider::Gitlab, Secret::new("gl"))],
        );
        assert!(secrets.get(Provider::Gitlab).unwrap().matches(b"gl"));
        assert!(secrets.get(Provider::Github).unwrap().matches(b"all"));
        let only = Secrets::new(None, [(Provider::Gitea, Secret::new("g"))]);
        assert_eq!(only.enabled(), vec![Provider::Gitea]);
        assert!(only.get(Provider::Github).is_none());
    }

    #[test]
    fn loading_reads_files_and_errors_name_the_file_not_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let all = dir.path().join("all");
        let gh = dir.path().join("gh");
        let empty = dir.path().join("empty");
        std::fs::write(&all, "catch-all-secret\n").unwrap();
        std::fs::write(&gh, "github-secret").unwrap();
        std::fs::write(&empty, "").unwrap();
        let flags = [
            all.display().to_string(),
            format!("github={}", gh.display()),
        ];
        let secrets = Secrets::from_flags(&flags).unwrap();
        assert!(secrets
            .get(Provider::Github)
            .unwrap()
            .matches(b"github-secret"));
        assert!(secrets
            .get(Provider::Bitbucket)
            .unwrap()
            .matches(b"catch-all-secret"));

        let e = Secrets::from_flags(&[format!("gitea={}", empty.display())])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "--webhook-secret-file: secret file {} is empty",
                empty.display()
            )
        );
        let twice = [
            format!("github={}", gh.display()),
            format!("github={}", all.display()),
        ];
        let e = Secrets::from_flags(&twice).unwrap_err().to_string();
        assert!(e.contains("a secret for github given twice"), "{e}");
        assert!(
            !e.contains("github-secret") && !e.contains("catch-all-secret"),
            "{e}"
        );
    }

    #[test]
    fn a_gitlab_signing_token_must_be_base64_after_whsec() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad");
        std::fs::write(&bad, "whsec_not base64!").unwrap();
        let e = Secrets::from_flags(&[format!("gitlab={}", bad.display())])
            .unwrap_err()
            .to_string();
        assert!(e.contains("whsec_ followed by base64"), "{e}");
        assert!(!e.contains("not base64!"), "{e}");
        // For the other providers it is just a string used as an HMAC key.
        assert!(Secrets::from_flags(&[format!("github={}", bad.display())]).is_ok());
    }
}
