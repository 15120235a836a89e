//! Input validation, by bytes as the reference chat room does it.

/// Why an input was refused; the message is shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

pub fn username(s: &str) -> Result<(), Invalid> {
    if !(4..=100).contains(&s.len()) {
        return Err(Invalid("username must be 4 to 100 bytes long".into()));
    }
    if s.trim() != s || s.chars().any(char::is_control) {
        return Err(Invalid(
            "username must not start or end with spaces or contain control characters".into(),
        ));
    }
    Ok(())
}

pub fn password(s: &str) -> Result<(), Invalid> {
    if !(10..=100).contains(&s.len()) {
        return Err(Invalid("password must be 10 to 100 bytes long".into()));
    }
    Ok(())
}

/// An email is at most 100 bytes and looks like `local@domain.tld`.
pub fn email(s: &str) -> Result<(), Invalid> {
    let bad = || Invalid("email must be a valid address of at most 100 bytes".into());
    if s.is_empty() || s.len() > 100 {
        return Err(bad());
    }
    let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
    let local_ok = !local.is_empty()
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~.-".contains(&b))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if local_ok && domain_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// Emails are compared case-insensitively: stored and looked up in lower case.
pub fn normalize_email(s: &str) -> String {
    s.to_ascii_lowercase()
}

/// Room ids are short and URL-safe: `[A-Za-z0-9_.-]{1,64}`.
pub fn room_slug(s: &str) -> Result<(), Invalid> {
    if s.is_empty()
        || s.len() > 64
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Err(Invalid(format!(
            "room id {s:?} must be 1 to 64 characters of A-Z a-z 0-9 _ . -"
        )));
    }
    Ok(())
}

pub fn room_name(s: &str) -> Result<(), Invalid> {
    if s.trim().is_empty() || s.len() > 100 {
        return Err(Invalid("room name must be 1 to 100 bytes".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in ["a@b.co", "first.last+tag@mail.example.org", "x_y@d-1.io"] {
            assert!(email(ok).is_ok(), "{ok}");
        }
        let long = format!("{}@example.com", "a".repeat(90));
        for bad in [
            "", "a", "a@b", "@b.co", "a@.co", "a@b..co", "a b@c.de", ".a@b.co", "a@-b.co", &long,
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lengths_are_bytes() {
        assert!(username("abc").is_err());
        assert!(username("abcd").is_ok());
        assert!(username("éé").is_ok()); // 4 bytes
        assert!(username(&"a".repeat(101)).is_err());
        assert!(password("123456789").is_err());
        assert!(password("1234567890").is_ok());
        assert!(password(&"a".repeat(101)).is_err());
    }
}
