//! SSH remotes end to end against a real OpenSSH server on loopback: the configured key and
//! known-hosts file work, an untrusted host key and an unknown client key are fatal refusals.

mod git_support;

use std::path::PathBuf;

use anyhow::Result;
use berth::sync::{Credentials, FetchSettings, GitSource, SyncError};
use git_support::sshd::{keygen, Sshd};
use git_support::Upstream;

fn over_ssh(key: PathBuf, known_hosts: PathBuf) -> FetchSettings {
    FetchSettings {
        credentials: Credentials {
            token_file: None,
            ssh_key_file: Some(key),
            ssh_known_hosts: Some(known_hosts),
        },
        ..FetchSettings::default()
    }
}

#[test]
fn an_ssh_remote_is_fetched_with_the_given_key_and_known_hosts() -> Result<()> {
    if !Sshd::available()? {
        return Ok(());
    }
    let (up, first) = Upstream::with_first_commit()?;
    let key = keygen(up.tmp.path(), "deploy")?;
    let sshd = Sshd::start(&key.with_extension("pub"))?;
    let settings = over_ssh(key, sshd.known_hosts()?);
    let source = GitSource::open_with(&sshd.url(&up.bare), "main", &up.mirror_dir("m"), settings)?;
    assert_eq!(source.fetch()?.to_string(), first);

    let second = up.commit("second")?;
    up.push(false)?;
    let fetched = source.fetch_interruptible(&Default::default())?;
    assert_eq!(fetched.head.to_string(), second);
    assert!(fetched.moved());
    Ok(())
}

#[test]
fn an_untrusted_host_key_is_refused_as_fatal() -> Result<()> {
    if !Sshd::available()? {
        return Ok(());
    }
    let (up, _) = Upstream::with_first_commit()?;
    let key = keygen(up.tmp.path(), "deploy")?;
    let sshd = Sshd::start(&key.with_extension("pub"))?;

    // A known-hosts file naming another key for this host, and one not naming the host.
    let impostor = keygen(up.tmp.path(), "impostor")?;
    let other = std::fs::read_to_string(impostor.with_extension("pub"))?;
    let mut fields = other.split_whitespace();
    let wrong = up.tmp.path().join("wrong_known_hosts");
    std::fs::write(
        &wrong,
        format!(
            "[127.0.0.1]:{} {} {}\n",
            sshd.addr.port(),
            fields.next().unwrap_or_default(),
            fields.next().unwrap_or_default()
        ),
    )?;
    let empty = up.tmp.path().join("empty_known_hosts");
    std::fs::write(&empty, "")?;

    for (name, known_hosts) in [("changed", wrong), ("unknown", empty)] {
        let settings = over_ssh(key.clone(), known_hosts);
        let source =
            GitSource::open_with(&sshd.url(&up.bare), "main", &up.mirror_dir(name), settings)?;
        let err = source.fetch().expect_err("host key not trusted");
        assert!(
            matches!(err, SyncError::HostKeyNotTrusted { .. }),
            "{name}: {err:?}"
        );
        assert!(!err.is_transient());
    }
    Ok(())
}

#[test]
fn a_client_key_the_server_does_not_accept_is_access_denied() -> Result<()> {
    if !Sshd::available()? {
        return Ok(());
    }
    let (up, _) = Upstream::with_first_commit()?;
    let accepted = keygen(up.tmp.path(), "accepted")?;
    let stranger = keygen(up.tmp.path(), "stranger")?;
    let sshd = Sshd::start(&accepted.with_extension("pub"))?;
    let settings = over_ssh(stranger, sshd.known_hosts()?);
    let source = GitSource::open_with(&sshd.url(&up.bare), "main", &up.mirror_dir("m"), settings)?;
    let err = source.fetch().expect_err("key refused");
    assert!(matches!(err, SyncError::AccessDenied { .. }), "{err:?}");
    assert!(!err.is_transient());
    Ok(())
}
