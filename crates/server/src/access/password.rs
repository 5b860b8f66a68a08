//! Passwords: argon2id with the crate's recommended default parameters
//! (19 MiB, 2 passes, 1 lane), stored as PHC strings that carry their own
//! salt and parameters, so that stronger defaults later still verify old
//! hashes.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Shortest password accepted for a new user or a new password.
pub const MIN_PASSWORD: usize = 8;
/// Longest password accepted (bytes): hashing cost does not depend on it,
/// but nobody needs more, and a bound keeps request bodies small.
pub const MAX_PASSWORD: usize = 1024;
/// Longest user or API key name.
pub const MAX_NAME: usize = 64;

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Hashes a password with a fresh random salt.
pub fn hash(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches the PHC string. A malformed hash matches
/// nothing. Argon2's verification compares in constant time.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(e) => {
            tracing::warn!(error = %e, "a stored password hash does not parse");
            false
        }
    }
}

/// Checks a new password; the error says what is wrong.
pub fn check_new(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD {
        return Err(format!(
            "a password needs at least {MIN_PASSWORD} characters"
        ));
    }
    if password.len() > MAX_PASSWORD {
        return Err(format!("a password has at most {MAX_PASSWORD} bytes"));
    }
    Ok(())
}

/// Checks a user or API key name: 1 to 64 of letters, digits and `.-_@`
/// (names appear in the audit trail, in URLs and in logs).
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!("a name has 1 to {MAX_NAME} characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'))
    {
        return Err(format!(
            "{name:?}: a name has only letters, digits and . - _ @"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash("correct horse").unwrap();
        let b = hash("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(verify("correct horse", &a));
        assert!(!verify("correct horsE", &a));
        assert!(!verify("correct horse", "not a phc string"));
    }

    #[test]
    fn names_and_passwords_are_checked() {
        assert!(check_name("acme-viewer").is_ok());
        assert!(check_name("ann@acme.example").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("x/y").is_err());
        assert!(check_new("short").is_err());
        assert!(check_new("long enough").is_ok());
    }
}
