//! Kubernetes' name rules. Each check returns the reason a name is refused, worded for operators.

fn alnum_lower(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// DNS-1123 label: at most 63 of `[a-z0-9-]`, starting and ending alphanumeric (containers,
/// namespaces).
pub fn dns1123_label(s: &str) -> Result<(), String> {
    if s.len() > 63 {
        return Err(format!("{s:?} is longer than 63 characters"));
    }
    if s.is_empty()
        || !s.chars().all(|c| alnum_lower(c) || c == '-')
        || !s.starts_with(alnum_lower)
        || !s.ends_with(alnum_lower)
    {
        return Err(format!(
            "{s:?} is not a valid DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit)"
        ));
    }
    Ok(())
}

/// DNS-1123 subdomain: at most 253 characters, dot-separated DNS-1123 labels (Pods, RCs).
pub fn dns1123_subdomain(s: &str) -> Result<(), String> {
    if s.len() > 253 {
        return Err(format!("name is longer than 253 characters ({})", s.len()));
    }
    if s.is_empty() || s.split('.').any(|part| dns1123_label(part).is_err()) {
        return Err(format!(
            "{s:?} is not a valid DNS-1123 subdomain (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit)"
        ));
    }
    Ok(())
}

/// DNS-1035 label: a DNS-1123 label that starts with a letter (Services).
pub fn dns1035_label(s: &str) -> Result<(), String> {
    dns1123_label(s)?;
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(format!(
            "{s:?} is not a valid DNS-1035 label (must start with a lowercase letter)"
        ));
    }
    Ok(())
}

/// IANA service name: at most 15 of `[a-z0-9-]`, at least one letter, no leading, trailing or
/// doubled '-' (port names).
pub fn port_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 15
        && s.chars().all(|c| alnum_lower(c) || c == '-')
        && s.chars().any(|c| c.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid port name (at most 15 lowercase letters, digits and '-', with at least one letter)"
        ))
    }
}

fn label_name_part(s: &str) -> bool {
    let edge = |c: char| c.is_ascii_alphanumeric();
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.starts_with(edge)
        && s.ends_with(edge)
}

/// Label and selector keys: an optional DNS subdomain prefix and `/`, then a name of at most 63.
pub fn label_key(s: &str) -> Result<(), String> {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if prefix.is_some_and(|p| dns1123_subdomain(p).is_err()) || !label_name_part(name) {
        return Err(format!("{s:?} is not a valid label key"));
    }
    Ok(())
}

/// Label values: empty, or at most 63 of `[A-Za-z0-9-_.]` starting and ending alphanumeric.
pub fn label_value(s: &str) -> Result<(), String> {
    if s.is_empty() || label_name_part(s) {
        Ok(())
    } else {
        Err(format!("{s:?} is not a valid label value"))
    }
}

/// Environment variable names: Kubernetes accepts any printable ASCII but `=`.
pub fn env_name(s: &str) -> Result<(), String> {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic() && c != '=') {
        Ok(())
    } else {
        Err(format!("{s:?} is not a valid environment variable name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kubernetes_rules() {
        assert!(dns1123_subdomain("redis-master.v1").is_ok());
        assert!(dns1123_subdomain("Web").is_err());
        assert!(dns1123_subdomain(&"a".repeat(254)).is_err());
        assert!(dns1123_label("php-redis").is_ok());
        assert!(dns1123_label("-x").is_err());
        assert!(dns1123_label(&"a".repeat(64)).is_err());
        assert!(dns1035_label("frontend").is_ok());
        assert!(dns1035_label("1frontend").is_err());
        assert!(port_name("http-server").is_ok());
        assert!(port_name("http-server-port").is_err());
        assert!(port_name("8080").is_err());
        assert!(port_name("a--b").is_err());
        assert!(label_key("app.kubernetes.io/name").is_ok());
        assert!(label_key("bad key").is_err());
        assert!(label_value("").is_ok());
        assert!(label_value("true").is_ok());
        assert!(label_value("-x").is_err());
        assert!(env_name("GET_HOSTS_FROM").is_ok());
        assert!(env_name("A=B").is_err());
    }
}
